//! Decision records (`stella.decision-record/v3`): the canonical (RFC 8785) JSON that the
//! gate writes once per evaluation.
//!
//! The decision digest covers the record without `record_id` and the chain fields (`tenant`,
//! `sequence`, `previous_record_digest`). So two evaluations of the same promotion at the same
//! evaluation time, against the same policy and reports, have the same digest wherever they sit
//! in the chain: a preview at a record's `evaluated_at` replays its digest.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::break_glass::AppliedOverride;
use crate::evaluate::{CheckpointRef, Evaluation};
use crate::promotion::Promotion;

/// Schema id of decision records.
pub const DECISION_RECORD_SCHEMA: &str = "stella.decision-record/v3";

#[derive(Serialize)]
struct CheckpointJson<'a> {
    origin: &'a str,
    tree_size: u64,
    root_hash: &'a str,
}

/// The part of the record that the decision digest covers.
#[derive(Serialize)]
struct Body<'a> {
    schema: &'static str,
    promotion_id: &'a str,
    subject_digests: &'a [String],
    target_environment: &'a str,
    decision: &'static str,
    reason_codes: Vec<&'static str>,
    policy_digest: &'a str,
    evidence_bundle_ids: &'a [String],
    report_digests: &'a [String],
    checkpoints: Vec<CheckpointJson<'a>>,
    /// RFC 3339 UTC with whole seconds.
    evaluated_at: String,
    /// Null for a standard verification.
    break_glass: Option<BreakGlassJson<'a>>,
}

#[derive(Serialize)]
struct BreakGlassJson<'a> {
    reason: &'a str,
    ticket: &'a str,
    requested_by: &'a str,
    issued_at: String,
    expires_at: String,
    overridden_decision: &'static str,
    overridden_reason_codes: Vec<&'static str>,
}

/// The inputs of a decision besides the promotion and the evaluation.
#[derive(Debug, Clone, Copy)]
pub struct DecisionContext<'a> {
    /// "sha256:<hex>" of the policy version the evaluation used.
    pub policy_digest: &'a str,
    /// Unix seconds of the evaluation.
    pub evaluation_time: i64,
    /// The override that decided, if any.
    pub break_glass: Option<&'a AppliedOverride>,
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    body: &'a Body<'a>,
    decision_digest: &'a str,
    record_id: &'a str,
    tenant: &'a str,
    sequence: u64,
    previous_record_digest: Option<&'a str>,
}

/// The place of a new record in its tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPosition {
    /// Tenant whose chain the record extends.
    pub tenant: String,
    /// Sequence number of the record: 1 for the tenant's first record, then 2, 3, ...
    pub sequence: u64,
    /// "sha256:<hex>" of the previous record's canonical JSON; `None` for sequence 1.
    pub previous_record_digest: Option<String>,
}

/// Canonical decision body and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionPreview {
    /// RFC 8785 JSON of the body (no record id and no chain fields).
    pub body_json: Vec<u8>,
    /// "sha256:<hex>" of `body_json`.
    pub decision_digest: String,
}

/// A complete decision record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub record_id: String,
    pub decision_digest: String,
    /// RFC 8785 JSON of the whole record.
    pub record_json: Vec<u8>,
    /// "sha256:<hex>" of `record_json`, which the next record of the tenant names as
    /// `previous_record_digest`.
    pub record_digest: String,
}

/// Error building a record: JSON serialization failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot serialize the decision record: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("time {0} cannot be written as RFC 3339")]
    Time(i64),
}

/// Formats Unix seconds as RFC 3339 UTC text, such as `2026-12-04T10:00:00Z`.
///
/// # Errors
///
/// [`RecordError::Time`] for a time outside the years 0 to 9999.
pub fn rfc3339(unix_seconds: i64) -> Result<String, RecordError> {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|time| time.format(&time::format_description::well_known::Rfc3339).ok())
        .ok_or(RecordError::Time(unix_seconds))
}

fn break_glass_json(applied: &AppliedOverride) -> Result<BreakGlassJson<'_>, RecordError> {
    Ok(BreakGlassJson {
        reason: &applied.grant.reason,
        ticket: &applied.grant.ticket,
        requested_by: &applied.grant.requested_by,
        issued_at: rfc3339(applied.grant.issued_at)?,
        expires_at: rfc3339(applied.grant.expires_at)?,
        overridden_decision: applied.overridden_decision.as_str(),
        overridden_reason_codes: sorted_code_strings(&applied.overridden_reason_codes),
    })
}

fn body<'a>(
    promotion: &'a Promotion,
    evaluation: &'a Evaluation,
    context: DecisionContext<'a>,
) -> Result<Body<'a>, RecordError> {
    Ok(Body {
        schema: DECISION_RECORD_SCHEMA,
        promotion_id: &promotion.promotion_id,
        subject_digests: &promotion.subject_digests,
        target_environment: &promotion.target_environment,
        decision: evaluation.decision.as_str(),
        reason_codes: sorted_code_strings(&evaluation.reason_codes),
        policy_digest: context.policy_digest,
        evidence_bundle_ids: &promotion.evidence_bundle_ids,
        report_digests: &evaluation.report_digests,
        checkpoints: evaluation.checkpoints.iter().map(checkpoint_json).collect(),
        evaluated_at: rfc3339(context.evaluation_time)?,
        break_glass: context.break_glass.map(break_glass_json).transpose()?,
    })
}

/// Returns the codes' spellings in alphabetical order, the order every JSON output uses.
pub fn sorted_code_strings(codes: &std::collections::BTreeSet<stella_verify::reason::ReasonCode>) -> Vec<&'static str> {
    let mut strings: Vec<&'static str> = codes.iter().map(|code| code.as_str()).collect();
    strings.sort_unstable();
    strings
}

fn checkpoint_json(checkpoint: &CheckpointRef) -> CheckpointJson<'_> {
    CheckpointJson {
        origin: &checkpoint.origin,
        tree_size: checkpoint.tree_size,
        root_hash: &checkpoint.root_hash,
    }
}

/// Returns "sha256:" and the lowercase hex SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Builds the canonical decision body and its digest, as PreviewGates returns them.
///
/// # Errors
///
/// [`RecordError::Serialize`] if JSON serialization fails.
pub fn preview(
    promotion: &Promotion,
    evaluation: &Evaluation,
    context: DecisionContext<'_>,
) -> Result<DecisionPreview, RecordError> {
    let body_json = serde_json_canonicalizer::to_vec(&body(promotion, evaluation, context)?)?;
    let decision_digest = sha256_digest(&body_json);
    Ok(DecisionPreview {
        body_json,
        decision_digest,
    })
}

/// Builds the full record at `position` in its tenant's chain.
///
/// # Errors
///
/// [`RecordError::Serialize`] if JSON serialization fails.
pub fn build_record(
    promotion: &Promotion,
    evaluation: &Evaluation,
    context: DecisionContext<'_>,
    record_id: &str,
    position: &ChainPosition,
) -> Result<DecisionRecord, RecordError> {
    let body = body(promotion, evaluation, context)?;
    let decision_digest = sha256_digest(&serde_json_canonicalizer::to_vec(&body)?);
    let record = Record {
        body: &body,
        decision_digest: &decision_digest,
        record_id,
        tenant: &position.tenant,
        sequence: position.sequence,
        previous_record_digest: position.previous_record_digest.as_deref(),
    };
    let record_json = serde_json_canonicalizer::to_vec(&record)?;
    Ok(DecisionRecord {
        record_id: record_id.to_owned(),
        decision_digest,
        record_digest: sha256_digest(&record_json),
        record_json,
    })
}

/// Extracts the canonical record JSON from a stored DSSE envelope: the statement's predicate.
/// The signature is not checked here; the gate signed the envelope itself.
///
/// # Errors
///
/// A message naming the fault when the envelope, its payload or the predicate is invalid.
pub fn record_from_envelope(envelope_json: &[u8]) -> Result<Vec<u8>, String> {
    let envelope = stella_verify::dsse::parse_envelope(envelope_json).map_err(|error| error.to_string())?;
    let statement: serde_json::Value = serde_json::from_slice(&envelope.payload)
        .map_err(|error| format!("the envelope payload is not JSON: {error}"))?;
    let predicate = statement
        .get("predicate")
        .filter(|predicate| predicate.is_object())
        .ok_or("the statement has no predicate object")?;
    serde_json_canonicalizer::to_vec(predicate).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use stella_verify::reason::ReasonCode;

    use super::*;
    use crate::evaluate::{Decision, GateResult};

    fn promotion() -> Promotion {
        Promotion {
            promotion_id: "rel-1".to_owned(),
            subject_digests: vec![format!("sha256:{}", "aa".repeat(32))],
            target_environment: "prod".to_owned(),
            evidence_bundle_ids: vec![format!("sha256:{}", "bb".repeat(32))],
        }
    }

    fn context(evaluation_time: i64) -> DecisionContext<'static> {
        DecisionContext {
            policy_digest: "sha256:policy",
            evaluation_time,
            break_glass: None,
        }
    }

    fn first_position() -> ChainPosition {
        ChainPosition {
            tenant: "acme".to_owned(),
            sequence: 1,
            previous_record_digest: None,
        }
    }

    fn evaluation() -> Evaluation {
        Evaluation {
            decision: Decision::Pending,
            reason_codes: BTreeSet::from([ReasonCode::RekorTileMissing, ReasonCode::AttestorUnavailable]),
            gates: vec![GateResult {
                requirement: "evidence x".to_owned(),
                satisfied: false,
                reason_codes: BTreeSet::new(),
                detail: Vec::new(),
            }],
            checkpoints: BTreeSet::from([CheckpointRef {
                origin: "log.example".to_owned(),
                tree_size: 15,
                root_hash: "cm9vdA==".to_owned(),
            }]),
            report_digests: vec!["sha256:r1".to_owned()],
        }
    }

    #[test]
    fn record_has_contract_fields() {
        let record = build_record(
            &promotion(),
            &evaluation(),
            context(1_796_378_400),
            "dr-1",
            &first_position(),
        )
        .expect("build record");
        let value: serde_json::Value = serde_json::from_slice(&record.record_json).expect("valid JSON");
        assert_eq!(value["schema"], "stella.decision-record/v3");
        assert_eq!(value["record_id"], "dr-1");
        assert_eq!(value["promotion_id"], "rel-1");
        assert_eq!(value["decision"], "pending");
        assert_eq!(
            value["reason_codes"],
            serde_json::json!(["ERR_ATTESTOR_UNAVAILABLE", "ERR_REKOR_TILE_MISSING"]),
            "codes are sorted alphabetically"
        );
        assert_eq!(value["policy_digest"], "sha256:policy");
        assert_eq!(value["decision_digest"], record.decision_digest.as_str());
        assert_eq!(value["checkpoints"][0]["tree_size"], 15);
        assert_eq!(value["evaluated_at"], "2026-12-04T10:00:00Z");
        assert!(value["break_glass"].is_null());
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["sequence"], 1);
        assert!(value["previous_record_digest"].is_null(), "the first record has no predecessor");
        assert_eq!(value.as_object().map(serde_json::Map::len), Some(17));
        assert_eq!(record.record_digest, sha256_digest(&record.record_json));
    }

    #[test]
    fn record_json_is_canonical() {
        let record = build_record(
            &promotion(),
            &evaluation(),
            context(1_796_378_400),
            "dr-1",
            &first_position(),
        )
        .expect("build record");
        let value: serde_json::Value = serde_json::from_slice(&record.record_json).expect("valid JSON");
        let again = serde_json_canonicalizer::to_vec(&value).expect("canonicalize");
        assert_eq!(again, record.record_json);
    }

    #[test]
    fn digest_ignores_id_time_chain() {
        let first = build_record(
            &promotion(),
            &evaluation(),
            context(1_796_378_400),
            "dr-1",
            &first_position(),
        )
        .expect("build record");
        let second = build_record(
            &promotion(),
            &evaluation(),
            context(1_796_378_400),
            "dr-2",
            &ChainPosition {
                tenant: "acme".to_owned(),
                sequence: 2,
                previous_record_digest: Some(format!("sha256:{}", "cc".repeat(32))),
            },
        )
        .expect("build record");
        assert_eq!(first.decision_digest, second.decision_digest);
        let later = preview(&promotion(), &evaluation(), context(1_796_378_401)).expect("preview");
        assert_ne!(later.decision_digest, first.decision_digest, "the digest covers the evaluation time");
        assert_ne!(first.record_json, second.record_json);
        assert_ne!(first.record_digest, second.record_digest);
        let preview = preview(&promotion(), &evaluation(), context(1_796_378_400)).expect("preview");
        assert_eq!(preview.decision_digest, first.decision_digest);
        assert_eq!(preview.decision_digest, sha256_digest(&preview.body_json));
    }

    #[test]
    fn record_names_previous_digest() {
        let previous = format!("sha256:{}", "dd".repeat(32));
        let position = ChainPosition {
            tenant: "acme".to_owned(),
            sequence: 7,
            previous_record_digest: Some(previous.clone()),
        };
        let record = build_record(
            &promotion(),
            &evaluation(),
            context(1_796_378_400),
            "dr-7",
            &position,
        )
        .expect("build record");
        let value: serde_json::Value = serde_json::from_slice(&record.record_json).expect("valid JSON");
        assert_eq!(value["sequence"], 7);
        assert_eq!(value["previous_record_digest"], previous.as_str());
    }

    #[test]
    fn digest_covers_decision() {
        let mut denied = evaluation();
        denied.decision = Decision::Deny;
        let pending = preview(&promotion(), &evaluation(), context(1_796_378_400)).expect("preview");
        let deny = preview(&promotion(), &denied, context(1_796_378_400)).expect("preview");
        assert_ne!(pending.decision_digest, deny.decision_digest);
    }
}
