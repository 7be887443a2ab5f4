//! Builders of verification reports for unit tests.

use std::collections::{BTreeMap, BTreeSet};

use stella_verify::reason::ReasonCode;
use stella_verify::report::{
    EntryKind, EntryReport, Outcome, ProofSource, REPORT_SCHEMA, Signer, Subject, TlogRef, VerificationReport,
};

/// Builds an entry report. `subjects` are hex SHA-256 digests; `tlog` is (origin, tree
/// size, base64 root hash).
pub fn entry(
    outcome: Outcome,
    codes: &[ReasonCode],
    signer: Option<(&str, &str)>,
    predicate_type: Option<&str>,
    subjects: &[&str],
    tlog: Option<(&str, u64, &str)>,
) -> EntryReport {
    EntryReport {
        outcome,
        reason_codes: codes.iter().copied().collect(),
        detail: codes.iter().map(|code| format!("{code}: test failure")).collect(),
        signer: signer.map(|(identity, issuer)| Signer {
            identity: identity.to_owned(),
            issuer: issuer.to_owned(),
        }),
        signing_time: Some(1_750_000_000),
        kind: Some(if predicate_type.is_some() {
            EntryKind::Dsse
        } else {
            EntryKind::MessageSignature
        }),
        predicate_type: predicate_type.map(str::to_owned),
        subjects: subjects
            .iter()
            .map(|hex| Subject {
                name: format!("artifact-{hex}"),
                sha256: hex.repeat(32),
            })
            .collect(),
        tlog: tlog.map(|(origin, size, root)| TlogRef {
            origin: origin.to_owned(),
            log_index: size.saturating_sub(1),
            checkpoint_size: size,
            root_hash: root.to_owned(),
            proof_source: ProofSource::Tiles,
            cosignatures: Vec::new(),
        }),
    }
}

/// Builds a report the way the attestor does: outcome and codes from the entries.
pub fn report(bundle_id: &str, entries: BTreeMap<String, EntryReport>) -> VerificationReport {
    let mut reason_codes: BTreeSet<ReasonCode> = entries
        .values()
        .flat_map(|entry| entry.reason_codes.iter().copied())
        .collect();
    if entries.is_empty() {
        reason_codes.insert(ReasonCode::BundleMalformed);
    }
    let all_verified = entries.values().all(|entry| entry.outcome == Outcome::Verified);
    VerificationReport {
        schema: REPORT_SCHEMA.to_owned(),
        bundle_id: bundle_id.to_owned(),
        trust_set_digest: "sha256:trust".to_owned(),
        trust_set_version: 1,
        outcome: if all_verified && reason_codes.is_empty() {
            Outcome::Verified
        } else {
            Outcome::Failed
        },
        reason_codes,
        entries,
    }
}
