//! `stella decisions export` and `stella decisions verify`: the signed decision record chain of
//! the caller's tenant, written for an auditor and verified offline.
//!
//! The export file has one DSSE envelope JSON per line, in sequence order. `verify` exits 0
//! when the whole chain verifies and 1 at the first broken link.

use std::path::Path;

use serde_json::json;

use super::decision_chain::{BrokenLink, TrustedKey, VerifiedChain, verify_chain};
use super::output::{Exit, Failure, Report};
use super::{DecisionsExportArgs, DecisionsVerifyArgs, Services};
use crate::GateConnection;

/// Records per `ListDecisions` call. A page of typical records, a few KiB each, stays far below
/// tonic's default limit of 4 MiB on a decoded message.
const PAGE_SIZE: u32 = 100;

/// `stella decisions export`.
pub async fn export(services: &Services, args: &DecisionsExportArgs) -> Result<Report, Failure> {
    let mut gate = services.gate().await?;
    let envelopes = fetch_envelopes(&mut gate).await?;
    let mut text = Vec::new();
    for envelope in &envelopes {
        text.extend_from_slice(envelope);
        text.push(b'\n');
    }
    std::fs::write(&args.out, &text).map_err(|error| Failure::io("write", &args.out, &error))?;

    let mut report = Report::new(Exit::Success);
    report
        .field("records", envelopes.len())
        .field("out", args.out.display().to_string());
    report.line(format!(
        "exported {} decision records to {}",
        envelopes.len(),
        args.out.display()
    ));
    if let Some(key_out) = &args.key_out {
        let key = gate.signing_key().await?;
        std::fs::write(key_out, key.public_key_pem.as_bytes())
            .map_err(|error| Failure::io("write", key_out, &error))?;
        report
            .field("key_out", key_out.display().to_string())
            .field("key_id", key.key_id.clone());
        report.line(format!(
            "gate signing key {} written to {}; compare its key id with the one you trust before verifying",
            key.key_id,
            key_out.display()
        ));
    }
    Ok(report)
}

/// `stella decisions verify`: from `--file` offline, or else from the gate.
pub async fn verify(services: &Services, args: &DecisionsVerifyArgs) -> Result<Report, Failure> {
    if args.file.is_some() {
        return verify_file(args);
    }
    let key = read_trusted_key(&args.public_key)?;
    let mut gate = services.gate().await?;
    let envelopes = fetch_envelopes(&mut gate).await?;
    Ok(chain_report(
        &key,
        verify_chain(envelopes.iter().map(Vec::as_slice), &key),
    ))
}

/// `stella decisions verify --file`, which opens no connection.
///
/// # Errors
///
/// A [`Failure`] naming the file that cannot be read or the key that cannot be parsed.
pub fn verify_file(args: &DecisionsVerifyArgs) -> Result<Report, Failure> {
    let Some(file) = &args.file else {
        return Err(Failure::usage(
            "--file is required to verify without the gate",
        ));
    };
    let key = read_trusted_key(&args.public_key)?;
    let envelopes = read_export(file)?;
    Ok(chain_report(
        &key,
        verify_chain(envelopes.iter().map(Vec::as_slice), &key),
    ))
}

fn read_trusted_key(path: &Path) -> Result<TrustedKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| Failure::io("read", path, &error))?;
    TrustedKey::from_pem(&text).map_err(|fault| {
        Failure::usage(format!(
            "{}: invalid public key: {fault}; pass the gate's P-256 public key as PEM (BEGIN PUBLIC KEY)",
            path.display()
        ))
    })
}

/// Reads an export file: one envelope per line. A final newline ends the last line; any other
/// empty line is kept, so the verifier reports it as a broken record.
fn read_export(path: &Path) -> Result<Vec<Vec<u8>>, Failure> {
    let bytes = std::fs::read(path).map_err(|error| Failure::io("read", path, &error))?;
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body
        .split(|byte| *byte == b'\n')
        .map(<[u8]>::to_vec)
        .collect())
}

async fn fetch_envelopes(gate: &mut GateConnection) -> Result<Vec<Vec<u8>>, Failure> {
    let mut envelopes = Vec::new();
    let mut after = 0;
    loop {
        let page = gate.list_decisions(after, PAGE_SIZE).await?;
        let Some(last) = page.records.last() else {
            break;
        };
        if last.sequence <= after {
            return Err(Failure::other(format!(
                "the gate returned sequence {} after asking for records above {after}",
                last.sequence
            )));
        }
        after = last.sequence;
        let more = page.more;
        envelopes.extend(page.records.into_iter().map(|record| record.envelope_json));
        if !more {
            break;
        }
    }
    Ok(envelopes)
}

fn chain_report(key: &TrustedKey, outcome: Result<VerifiedChain, BrokenLink>) -> Report {
    match outcome {
        Ok(chain) => {
            let mut report = Report::new(Exit::Success);
            report
                .field("verified", true)
                .field("records", chain.count)
                .field("tenant", chain.tenant.clone())
                .field("head_digest", chain.head_digest.clone())
                .field("key_id", key.key_id().to_owned())
                .field("break_glass_record_ids", chain.break_glass_record_ids.clone());
            report.line(format!(
                "OK: {} decision records of tenant {} verified with key {}, head {}",
                chain.count,
                chain.tenant.as_deref().unwrap_or("-"),
                key.key_id(),
                chain.head_digest.as_deref().unwrap_or("-"),
            ));
            // The chain is intact, but these decisions are not standard verifications.
            for record_id in &chain.break_glass_record_ids {
                report.line(format!(
                    "BREAK-GLASS OVERRIDE: record {record_id} is not a standard verification"
                ));
            }
            report
        }
        Err(broken) => {
            let mut report = Report::new(Exit::Failure);
            report
                .field("verified", false)
                .field("key_id", key.key_id().to_owned())
                .field(
                    "broken_link",
                    json!({
                        "sequence": broken.sequence,
                        "line": broken.line,
                        "record_id": broken.record_id,
                        "error": broken.fault,
                        "reason_code": broken.reason_code.map(|code| code.as_str()),
                    }),
                );
            report.error_line(broken.to_string());
            if let Some(code) = broken.reason_code {
                report.error_line(format!("reason code: {}", code.as_str()));
            }
            report
        }
    }
}
