//! `stella rekor checkpoints`: the checkpoints the attestor trusts for each log, and the evidence
//! of checkpoints it rejected because they contradicted them (split views).

use serde_json::{Value, json};
use stella_proto::attestor::v1::{
    EvidenceCheckpoint, Inconsistency, LogCheckpoints, StoredCheckpoint,
};
use stella_verify::reason::ReasonCode;

use super::output::{Exit, Failure, Report};
use super::{RekorCheckpointsArgs, Services};

/// `stella rekor checkpoints [--origin O]`: exit 0, or 1 when any listed log has inconsistency
/// evidence.
pub async fn list(services: &Services, args: &RekorCheckpointsArgs) -> Result<Report, Failure> {
    if args.origin.as_deref().is_some_and(str::is_empty) {
        return Err(Failure::usage("--origin must not be empty"));
    }
    let mut attestor = services.attestor().await?;
    let response = attestor.list_checkpoints(args.origin.as_deref()).await?;

    let inconsistent: Vec<&LogCheckpoints> = response
        .logs
        .iter()
        .filter(|log| !log.inconsistencies.is_empty() || log.inconsistencies_not_recorded > 0)
        .collect();
    let (exit, reason_codes) = if inconsistent.is_empty() {
        (Exit::Success, Vec::new())
    } else {
        (
            Exit::Failure,
            vec![ReasonCode::RekorCheckpointInconsistent.as_str().to_owned()],
        )
    };

    let mut report = Report::new(exit);
    report
        .field(
            "logs",
            response.logs.iter().map(log_json).collect::<Vec<_>>(),
        )
        .field("reason_codes", reason_codes);

    if response.logs.is_empty() {
        match &args.origin {
            Some(origin) => report.line(format!("no checkpoints stored for {origin}")),
            None => report.line("no checkpoints stored"),
        };
    }
    for log in &response.logs {
        log_lines(&mut report, log);
    }
    for log in inconsistent {
        let stored = log.inconsistencies.len();
        report.error_line(format!(
            "{}: log {} signed checkpoints that contradict each other: {stored} inconsistency \
             record(s) stored, {} more not stored. Keep the records as evidence and report the log \
             as inconsistent.",
            ReasonCode::RekorCheckpointInconsistent.as_str(),
            log.origin,
            log.inconsistencies_not_recorded
        ));
    }
    Ok(report)
}

fn log_json(log: &LogCheckpoints) -> Value {
    let stored = |checkpoint: &StoredCheckpoint| {
        json!({
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "newest": checkpoint.newest,
        })
    };
    let proof_checkpoint = |checkpoint: &StoredCheckpoint| {
        json!({
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
        })
    };
    json!({
        "origin": log.origin,
        "checkpoints": log.checkpoints.iter().map(stored).collect::<Vec<_>>(),
        "proof_checkpoints": log.proof_checkpoints.iter().map(proof_checkpoint).collect::<Vec<_>>(),
        "inconsistencies": log.inconsistencies.iter().map(inconsistency_json).collect::<Vec<_>>(),
        "inconsistencies_not_recorded": log.inconsistencies_not_recorded,
    })
}

fn inconsistency_json(record: &Inconsistency) -> Value {
    json!({
        "id": record.id,
        "recorded_at": record.recorded_at,
        "bundle_file_name": record.bundle_file_name,
        "bundle_digest": record.bundle_digest,
        "origin": record.origin,
        "kind": record.kind,
        "rejected": record.rejected.as_ref().map_or(Value::Null, evidence_json),
        "conflicting": record.conflicting.as_ref().map_or(Value::Null, evidence_json),
        "proof": record.proof,
        "tile_root_hash": non_empty(&record.tile_root_hash),
        "detail": record.detail,
    })
}

fn evidence_json(checkpoint: &EvidenceCheckpoint) -> Value {
    json!({
        "source": checkpoint.source,
        "bundle_path": non_empty(&checkpoint.bundle_path),
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "note": checkpoint.note,
    })
}

/// Returns the text, or JSON `null` for an empty string (a field the attestor left unset).
fn non_empty(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    }
}

fn log_lines(report: &mut Report, log: &LogCheckpoints) {
    report.line(format!("log {}", log.origin));
    report.line(format!(
        "  tile-verified checkpoints: {}",
        log.checkpoints.len()
    ));
    for checkpoint in &log.checkpoints {
        let newest = if checkpoint.newest { " (newest)" } else { "" };
        report.line(format!(
            "    size {} root {}{newest}",
            checkpoint.tree_size, checkpoint.root_hash
        ));
    }
    report.line(format!(
        "  tlog-proof checkpoints: {}",
        log.proof_checkpoints.len()
    ));
    for checkpoint in &log.proof_checkpoints {
        report.line(format!(
            "    size {} root {}",
            checkpoint.tree_size, checkpoint.root_hash
        ));
    }
    report.line(format!(
        "  inconsistencies: {} stored, {} not stored",
        log.inconsistencies.len(),
        log.inconsistencies_not_recorded
    ));
    for record in &log.inconsistencies {
        inconsistency_lines(report, record);
    }
}

fn inconsistency_lines(report: &mut Report, record: &Inconsistency) {
    report.line(format!(
        "    record {} at {}: {}, rejected import {} ({})",
        record.id, record.recorded_at, record.kind, record.bundle_file_name, record.bundle_digest
    ));
    report.line(format!("      detail: {}", record.detail));
    if !record.tile_root_hash.is_empty() {
        report.line(format!("      root from tiles: {}", record.tile_root_hash));
    }
    if !record.proof.is_empty() {
        report.line(format!(
            "      consistency proof from tiles: {} hashes",
            record.proof.len()
        ));
        for hash in &record.proof {
            report.line(format!("        {hash}"));
        }
    }
    for (role, checkpoint) in [
        ("rejected", &record.rejected),
        ("conflicting", &record.conflicting),
    ] {
        let Some(checkpoint) = checkpoint else {
            report.line(format!("      {role}: (missing from the response)"));
            continue;
        };
        let place = if checkpoint.bundle_path.is_empty() {
            "stored".to_owned()
        } else {
            format!("in the bundle at {}", checkpoint.bundle_path)
        };
        report.line(format!(
            "      {role}: {} checkpoint {place}, size {} root {}",
            checkpoint.source, checkpoint.tree_size, checkpoint.root_hash
        ));
        for line in checkpoint.note.lines() {
            report.line(format!("        | {line}"));
        }
    }
}
