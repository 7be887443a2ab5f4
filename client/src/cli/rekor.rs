//! `stella rekor tiles pack|import`, `stella rekor verify` and `stella rekor inclusion`.

use serde_json::{Value, json};

use crate::connect::StreamImportError;

use super::files;
use super::output::{Exit, Failure, OutputFormat, Report, codes_text, sorted_codes};
use super::progress::Progress;
use super::tiles_input;
use super::{
    BundleFileArgs, RekorInclusionArgs, RekorVerifyArgs, Services, TilesPackArgs, require_offline,
};

/// `stella rekor tiles pack`: builds a tile/proof bundle from Sigstore bundles and tlog-tiles
/// directories, without any service.
pub fn pack_tiles(args: &TilesPackArgs, format: OutputFormat) -> Result<Report, Failure> {
    if args.sigstore_bundles.is_empty() && args.tiles_dirs.is_empty() {
        return Err(Failure::usage(
            "nothing to pack: give at least one --sigstore-bundle FILE or --tiles-dir DIR",
        ));
    }
    let progress = Progress::files(format, "packing");
    let packed = tiles_input::pack(&args.sigstore_bundles, &args.tiles_dirs, &args.out, &progress)?;
    progress.set_message(format!("writing {}", args.out.display()));
    files::write_atomically(&args.out, &packed.archive)?;
    let tiles: usize = packed.logs.iter().map(|log| log.tiles + log.entry_bundles).sum();
    progress.finish(tiles as u64, packed.archive.len() as u64);

    let out = args.out.display().to_string();
    let digest = files::sha256_prefixed(&packed.archive);
    let mut report = Report::new(Exit::Success);
    report
        .field("out", out.clone())
        .field("sha256", digest)
        .field("bundle_digest", packed.bundle_digest.clone())
        .field("logs", packed.logs_json())
        .field("tlog_proofs", packed.proofs_json())
        .field("skipped", packed.skipped_json());
    report.line(format!("wrote {out}: tile bundle {}", packed.bundle_digest));
    for line in packed.summary_lines() {
        report.line(line);
    }
    Ok(report)
}

/// `stella rekor tiles import --bundle FILE`: streams the file to the attestor in chunks
/// (ImportTilesStream), so bundles of any size are sent without being read into memory.
pub async fn import_tiles(
    services: &Services,
    args: &BundleFileArgs,
    format: OutputFormat,
) -> Result<Report, Failure> {
    let (file, metadata) = files::open_regular(&args.bundle)
        .map_err(|error| error.into_failure("read", &args.bundle))?;
    let name = files::display_name(&args.bundle);
    let mut attestor = services.attestor().await?;
    let progress = Progress::upload(format, &name, metadata.len());
    let upload = progress.upload_reader(file, "importing on the attestor");
    let response = attestor
        .import_tiles_stream(&name, upload, metadata.len())
        .await
        .map_err(|error| match error {
            StreamImportError::Read { source, .. } => Failure::io("read", &args.bundle, &source),
            StreamImportError::Call(call) => Failure::from(call),
        })?;
    if response.already_imported {
        // Nothing was stored, so a rate would describe nothing.
        progress.clear();
    } else {
        progress.finish(response.tiles_imported + response.entry_bundles_imported, metadata.len());
    }

    let checkpoints: Vec<Value> = response
        .checkpoints
        .iter()
        .map(|checkpoint| {
            json!({
                "origin": checkpoint.origin,
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root_hash,
            })
        })
        .collect();
    let mut report = Report::new(Exit::Success);
    report
        .field("bundle_digest", response.bundle_digest.clone())
        .field("checkpoints", checkpoints)
        .field("tiles_imported", response.tiles_imported)
        .field("entry_bundles_imported", response.entry_bundles_imported)
        .field("proofs_imported", response.proofs_imported)
        .field("already_imported", response.already_imported);

    let state = if response.already_imported {
        "already imported"
    } else {
        "imported"
    };
    report.line(format!("{state} {name} ({})", response.bundle_digest));
    for checkpoint in &response.checkpoints {
        report.line(format!(
            "  checkpoint {} size {} root {}",
            checkpoint.origin, checkpoint.tree_size, checkpoint.root_hash
        ));
    }
    report.line(format!(
        "  hash tiles: {}, entry bundles: {}, tlog-proofs: {}",
        response.tiles_imported, response.entry_bundles_imported, response.proofs_imported
    ));
    Ok(report)
}

/// `stella rekor verify --offline --evidence-bundle-id ID`: exit 0 when verified, 1 when failed.
pub async fn verify(services: &Services, args: &RekorVerifyArgs) -> Result<Report, Failure> {
    require_offline(args.offline, "rekor verify", "--offline")?;
    let bundle_id = args.evidence_bundle_id.prefixed();
    let mut attestor = services.attestor().await?;
    let response = attestor.verify_evidence(&bundle_id).await?;

    let exit = match response.outcome.as_str() {
        "verified" => Exit::Success,
        "failed" => Exit::Failure,
        other => {
            return Err(Failure::other(format!(
                "the attestor returned the unknown outcome {other:?} for {bundle_id}; treat the evidence as unverified"
            )));
        }
    };
    let report_json: Value = serde_json::from_slice(&response.report_json).map_err(|error| {
        Failure::other(format!(
            "the attestor returned an invalid verification report: {error}"
        ))
    })?;
    let computed = files::sha256_prefixed(&response.report_json);
    if computed != response.report_digest {
        return Err(Failure::other(format!(
            "the attestor's report digest {} does not match the report it sent ({computed})",
            response.report_digest
        )));
    }

    let reason_codes = sorted_codes(&response.reason_codes);
    let mut report = Report::new(exit);
    report
        .field("bundle_id", response.bundle_id.clone())
        .field("report_digest", response.report_digest.clone())
        .field("outcome", response.outcome.clone())
        .field("reason_codes", reason_codes.clone());
    report
        .line(format!("bundle id: {}", response.bundle_id))
        .line(format!("outcome: {}", response.outcome))
        .line(format!("reason codes: {}", codes_text(&reason_codes)))
        .line(format!("report digest: {}", response.report_digest));
    for line in failure_details(&report_json) {
        report.line(format!("  {line}"));
    }
    report.field("report", report_json);
    Ok(report)
}

/// Collects `<entry path>: <detail>` lines from a verification report's failed entries.
fn failure_details(report: &Value) -> Vec<String> {
    let Some(entries) = report.get("entries").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for (path, entry) in entries {
        let details = entry.get("detail").and_then(Value::as_array);
        for detail in details.into_iter().flatten() {
            if let Some(text) = detail.as_str() {
                lines.push(format!("{path}: {text}"));
            }
        }
    }
    lines
}

/// `stella rekor inclusion --origin O --index N --entry FILE`: exit 0 when included, 1 when not.
pub async fn inclusion(services: &Services, args: &RekorInclusionArgs) -> Result<Report, Failure> {
    if args.origin.is_empty() {
        return Err(Failure::usage("--origin must not be empty"));
    }
    let entry = files::read(&args.entry)?;
    let mut attestor = services.attestor().await?;
    let response = attestor
        .verify_inclusion(&args.origin, args.index, entry)
        .await?;

    let reason_codes = sorted_codes(&response.reason_codes);
    let exit = if response.included {
        Exit::Success
    } else {
        Exit::Failure
    };
    let checkpoint = response.checkpoint.as_ref().map(|checkpoint| {
        json!({
            "origin": checkpoint.origin,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
        })
    });
    let mut report = Report::new(exit);
    report
        .field("origin", args.origin.clone())
        .field("index", args.index)
        .field("included", response.included)
        .field("checkpoint", checkpoint.unwrap_or(Value::Null))
        .field("proof_source", response.proof_source.clone())
        .field("reason_codes", reason_codes.clone())
        .field("detail", response.detail.clone());

    let verdict = if response.included {
        "included"
    } else {
        "not proven included"
    };
    report.line(format!(
        "entry {} of {}: {verdict}",
        args.index, args.origin
    ));
    if let Some(checkpoint) = &response.checkpoint {
        report.line(format!(
            "checkpoint: size {} root {} (proof from {})",
            checkpoint.tree_size, checkpoint.root_hash, response.proof_source
        ));
    }
    if !response.included {
        report.line(format!("reason codes: {}", codes_text(&reason_codes)));
    }
    if !response.detail.is_empty() {
        report.line(format!("detail: {}", response.detail));
    }
    Ok(report)
}
