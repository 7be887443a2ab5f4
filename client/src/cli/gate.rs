//! `stella promotion create|preview-gates|evaluate` and `stella decisions get`, over the gate.
//!
//! The exit code follows the decision: 0 allow, 1 deny, 3 pending, and 6 for an allow that a
//! break-glass override made. A decision the CLI does not know fails closed with exit 5, never
//! as an allow.

use serde_json::{Value, json};
use stella_proto::gate::v1::{CreatePromotionRequest, EvaluateRequest, EvaluateResponse};

use super::args::format_rfc3339;
use super::break_glass;
use super::output::{Exit, Failure, Report, codes_text, sorted_codes};
use super::{
    DecisionsGetArgs, PromotionCreateArgs, PromotionEvaluateArgs, Services, require_offline,
};

/// Whether an evaluation writes a decision record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `PreviewGates`: no record.
    Preview,
    /// `Evaluate`: a persisted decision record.
    Record,
}

fn parse_record(record_json: &[u8], kind: &str) -> Result<Value, Failure> {
    serde_json::from_slice(record_json)
        .map_err(|error| Failure::other(format!("the gate returned an invalid {kind}: {error}")))
}

/// `stella promotion create`.
pub async fn create(services: &Services, args: &PromotionCreateArgs) -> Result<Report, Failure> {
    if args.promotion_id.is_empty() {
        return Err(Failure::usage("--promotion must not be empty"));
    }
    if args.target.is_empty() {
        return Err(Failure::usage("--target must not be empty"));
    }
    let message = CreatePromotionRequest {
        promotion_id: args.promotion_id.clone(),
        subject_digests: args
            .subjects
            .iter()
            .map(|digest| digest.prefixed())
            .collect(),
        target_environment: args.target.clone(),
        evidence_bundle_ids: args
            .evidence_bundle_ids
            .iter()
            .map(|id| id.prefixed())
            .collect(),
    };
    let mut gate = services.gate().await?;
    let promotion = gate.create_promotion(message).await?;

    let mut report = Report::new(Exit::Success);
    report
        .field("promotion_id", promotion.promotion_id.clone())
        .field("subject_digests", promotion.subject_digests.clone())
        .field("target_environment", promotion.target_environment.clone())
        .field("evidence_bundle_ids", promotion.evidence_bundle_ids.clone());
    report
        .line(format!("promotion: {}", promotion.promotion_id))
        .line(format!("target: {}", promotion.target_environment))
        .line(format!(
            "subjects: {}",
            promotion.subject_digests.join(", ")
        ))
        .line(format!(
            "evidence: {}",
            promotion.evidence_bundle_ids.join(", ")
        ));
    Ok(report)
}

/// `stella promotion evaluate`. `stella promotion preview-gates` is in [`super::preview`].
pub async fn evaluate(
    services: &Services,
    args: &PromotionEvaluateArgs,
) -> Result<Report, Failure> {
    require_offline(args.offline_rekor, "promotion evaluate", "--offline-rekor")?;
    if args.promotion_id.is_empty() {
        return Err(Failure::usage("--promotion must not be empty"));
    }
    let message = EvaluateRequest {
        promotion_id: args.promotion_id.clone(),
        offline_rekor: true,
        request_id: args.request_id.clone().unwrap_or_default(),
        break_glass: break_glass::request(&args.break_glass)?,
        ..Default::default()
    };

    let mut gate = services.gate().await?;
    let response = gate.evaluate_request(message).await?;
    if response.record_id.is_empty() {
        return Err(Failure::other(
            "the gate evaluated the promotion but returned no record id; the decision was not recorded",
        ));
    }
    let mut report = evaluation_report(&args.promotion_id, &response, Mode::Record)?;
    // The trace id lets an operator find this evaluation's spans in the trace collector.
    if let Some(parent) = crate::trace_context::process_trace() {
        report.field("trace_id", parent.trace_id());
    }
    Ok(report)
}

/// Builds the report of an evaluation or preview. The evaluation time is printed as RFC 3339.
pub(super) fn evaluation_report(
    promotion_id: &str,
    response: &EvaluateResponse,
    mode: Mode,
) -> Result<Report, Failure> {
    let reason_codes = sorted_codes(&response.reason_codes);
    let record = if response.record_json.is_empty() {
        None
    } else {
        let kind = match mode {
            Mode::Preview => "preview",
            Mode::Record => "decision record",
        };
        Some(parse_record(&response.record_json, kind)?)
    };
    // A response without the block still shows the override that its record carries.
    let block = match (&response.break_glass, &record) {
        (Some(block), _) => Some(break_glass::response_json(block)),
        (None, Some(record)) => break_glass::record_block(record)?,
        (None, None) => None,
    };
    let block = break_glass::checked_block(block, &reason_codes)?;
    let exit = break_glass::decision_exit(&response.decision, block.is_some())?;
    let gates: Vec<Value> = response
        .gates
        .iter()
        .map(|gate| {
            json!({
                "requirement": gate.requirement,
                "satisfied": gate.satisfied,
                "reason_codes": sorted_codes(&gate.reason_codes),
            })
        })
        .collect();

    let mut report = Report::new(exit);
    report
        .field("promotion_id", promotion_id)
        .field("decision", response.decision.clone())
        .field("reason_codes", reason_codes.clone())
        .field("decision_digest", response.decision_digest.clone())
        .field("report_digests", response.report_digests.clone())
        .field("gates", gates)
        .field("policy_digest", response.policy_digest.clone())
        .field("evaluation_time", response.evaluation_time)
        .field("evaluated_at", format_rfc3339(response.evaluation_time));
    if mode == Mode::Record {
        report
            .field("record_id", response.record_id.clone())
            .field("replayed", response.replayed);
    }
    if let Some(record) = record {
        report.field("record", record);
    }

    report.line(format!("decision: {}", response.decision));
    report.line(format!("reason codes: {}", codes_text(&reason_codes)));
    for gate in &response.gates {
        let status = if gate.satisfied { "met" } else { "unmet" };
        let codes = sorted_codes(&gate.reason_codes);
        report.line(format!(
            "  gate {status}: {} [{}]",
            gate.requirement,
            codes_text(&codes)
        ));
    }
    if mode == Mode::Record {
        report.line(format!("record id: {}", response.record_id));
    }
    if response.replayed {
        report.line("replayed: the request id was used before; this is the stored record");
    }
    report.line(format!("decision digest: {}", response.decision_digest));
    report.line(format!("policy digest: {}", response.policy_digest));
    report.line(format!(
        "evaluated at: {}",
        format_rfc3339(response.evaluation_time)
    ));
    for digest in &response.report_digests {
        report.line(format!("report: {digest}"));
    }
    break_glass::mark_report(&mut report, promotion_id, block.as_ref());
    Ok(report)
}

/// `stella decisions get RECORD_ID`.
pub async fn get_decision(services: &Services, args: &DecisionsGetArgs) -> Result<Report, Failure> {
    if args.record_id.is_empty() {
        return Err(Failure::usage("RECORD_ID must not be empty"));
    }
    let mut gate = services.gate().await?;
    let stored = gate.get_decision(&args.record_id).await?;
    let record = parse_record(&stored.record_json, "decision record")?;
    decision_record_report(&stored.record_id, record)
}

/// Builds the report of a stored decision record, whose keys are those of
/// `stella.decision-record/v3`.
fn decision_record_report(record_id: &str, record: Value) -> Result<Report, Failure> {
    let decision = record
        .get("decision")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::other("the gate returned a decision record without a decision"))?
        .to_owned();
    let reason_codes = string_list(&record, "reason_codes")?;
    let block = break_glass::checked_block(break_glass::record_block(&record)?, &reason_codes)?;
    let exit = break_glass::decision_exit(&decision, block.is_some())?;
    let report_digests = string_list(&record, "report_digests")?;
    let decision_digest = record
        .get("decision_digest")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let promotion_id = record
        .get("promotion_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let policy_digest = record
        .get("policy_digest")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let evaluated_at = record
        .get("evaluated_at")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();

    let mut report = Report::new(exit);
    report
        .field("record_id", record_id)
        .field("promotion_id", promotion_id.clone())
        .field("decision", decision.clone())
        .field("reason_codes", reason_codes.clone())
        .field("decision_digest", decision_digest.clone())
        .field("report_digests", report_digests.clone())
        .field("record", record);
    report
        .line(format!("record id: {record_id}"))
        .line(format!("promotion: {promotion_id}"))
        .line(format!("decision: {decision}"))
        .line(format!("reason codes: {}", codes_text(&reason_codes)))
        .line(format!("decision digest: {decision_digest}"))
        .line(format!("policy digest: {policy_digest}"))
        .line(format!("evaluated at: {evaluated_at}"));
    for digest in &report_digests {
        report.line(format!("report: {digest}"));
    }
    break_glass::mark_report(&mut report, &promotion_id, block.as_ref());
    Ok(report)
}

/// Reads an array of strings from the record, sorted. A missing key gives an empty list.
fn string_list(record: &Value, key: &str) -> Result<Vec<String>, Failure> {
    let Some(value) = record.get(key) else {
        return Ok(Vec::new());
    };
    let invalid = || {
        Failure::other(format!(
            "the gate returned a decision record whose {key} is not a list of strings"
        ))
    };
    let items = value.as_array().ok_or_else(invalid)?;
    let mut strings = Vec::with_capacity(items.len());
    for item in items {
        strings.push(item.as_str().ok_or_else(invalid)?.to_owned());
    }
    Ok(sorted_codes(&strings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_exit_fails_closed() {
        assert_eq!(
            break_glass::decision_exit("allow", false).map_err(|f| f.message),
            Ok(Exit::Success)
        );
        assert_eq!(
            break_glass::decision_exit("deny", false).map_err(|f| f.message),
            Ok(Exit::Failure)
        );
        assert_eq!(
            break_glass::decision_exit("pending", false).map_err(|f| f.message),
            Ok(Exit::Pending)
        );
        for unknown in ["", "ALLOW", "allowed", "break-glass"] {
            let failure = break_glass::decision_exit(unknown, false).expect_err("unknown decision accepted");
            assert_eq!(failure.exit, Exit::Other, "decision {unknown:?}");
        }
    }

    #[test]
    fn override_record_exits_six() {
        let record = json!({
            "schema": "stella.decision-record/v3",
            "decision": "allow",
            "promotion_id": "rel-1",
            "reason_codes": ["BREAK_GLASS_OVERRIDE", "ERR_SUBJECT_MISMATCH"],
            "report_digests": [],
            "decision_digest": "sha256:00",
            "break_glass": {
                "reason": "outage fix",
                "ticket": "INC-42",
                "requested_by": "alice@acme",
                "issued_at": "2026-12-04T10:00:00Z",
                "expires_at": "2026-12-04T11:00:00Z",
                "overridden_decision": "deny",
                "overridden_reason_codes": ["ERR_SUBJECT_MISMATCH"],
            },
        });
        let report = decision_record_report("dr-1", record).expect("valid record");
        assert_eq!(report.exit, Exit::BreakGlass);
        assert_eq!(report.json.get("standard_verification"), Some(&json!(false)));
        assert_eq!(report.json["break_glass"]["ticket"], "INC-42");
        assert_eq!(report.text.first().map(String::as_str), Some(break_glass::MARKER_LINE));
    }

    #[test]
    fn standard_record_is_standard() {
        let record = json!({
            "decision": "allow",
            "reason_codes": [],
            "break_glass": null,
        });
        let report = decision_record_report("dr-1", record).expect("valid record");
        assert_eq!(report.exit, Exit::Success);
        assert_eq!(report.json.get("standard_verification"), Some(&json!(true)));
    }

    #[test]
    fn decision_record_sets_exit() {
        let record = json!({
            "schema": "stella.decision-record/v3",
            "decision": "pending",
            "promotion_id": "rel-1",
            "reason_codes": ["ERR_REKOR_TILE_MISSING", "ERR_ATTESTOR_UNAVAILABLE"],
            "report_digests": [],
            "decision_digest": "sha256:00",
        });
        let report = decision_record_report("rec-1", record).expect("valid record");
        assert_eq!(report.exit, Exit::Pending);
        assert_eq!(
            report.json.get("reason_codes"),
            Some(&json!([
                "ERR_ATTESTOR_UNAVAILABLE",
                "ERR_REKOR_TILE_MISSING"
            ]))
        );
    }

    #[test]
    fn decision_record_without_decision_fails() {
        let failure =
            decision_record_report("rec-1", json!({"reason_codes": []})).expect_err("accepted");
        assert_eq!(failure.exit, Exit::Other);
    }
}
