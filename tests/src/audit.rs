//! Checks of a persisted decision record: `stella decisions get` fetches the record that an
//! evaluation wrote, and [`assert_persisted`] compares each audit field with the evaluation's
//! output and with what the test expects.
//!
//! Digests are recomputed here from the fetched JSON. Decision records contain only strings,
//! integers, arrays, objects and null, so `serde_json`'s compact output with sorted keys (its
//! default map keeps keys sorted) is their RFC 8785 canonical form.

use std::ops::RangeInclusive;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::runbook::{Decision, Operator, decision_record};

/// Record fields that the decision digest leaves out: the record id and the chain fields.
const FIELDS_OUTSIDE_DECISION_DIGEST: [&str; 5] = [
    "decision_digest",
    "record_id",
    "tenant",
    "sequence",
    "previous_record_digest",
];

/// The audit fields a persisted record must carry, besides those copied from the evaluation
/// output (decision, reason codes, report digests, decision digest, evaluation time).
#[derive(Debug, Clone)]
pub struct ExpectedRecord<'a> {
    pub promotion_id: &'a str,
    pub target_environment: &'a str,
    pub subject_digests: &'a [String],
    /// In any order; the record lists them sorted.
    pub evidence_bundle_ids: &'a [&'a str],
    /// `sha256:<hex>` of the policy that decided.
    pub policy_digest: &'a str,
    pub tenant: &'a str,
    /// Position in the tenant's chain, from 1.
    pub sequence: u64,
    /// Record digest of the tenant's previous record; `None` for sequence 1.
    pub previous_record_digest: Option<&'a str>,
    /// The `checkpoints` array: `{origin, tree_size, root_hash}` objects.
    pub checkpoints: Value,
    /// Unix seconds between which the evaluation ran.
    pub evaluated_within: RangeInclusive<i64>,
}

/// A record fetched back from the gate.
#[derive(Debug, Clone)]
pub struct PersistedRecord {
    /// The record as `stella decisions get` printed it.
    pub record: Value,
    /// `sha256:<hex>` of the record's canonical JSON, which the tenant's next record names as
    /// `previous_record_digest`.
    pub record_digest: String,
}

/// Returns the current Unix time in seconds.
///
/// # Panics
///
/// Panics when the system clock is before 1970.
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        Err(err) => panic!("the system clock is before 1970: {err}"),
    }
}

/// Returns `sha256:` and the lowercase hex SHA-256 of the canonical JSON of `value`.
pub fn canonical_digest(value: &Value) -> String {
    let bytes = match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot serialize {value}: {err}"),
    };
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Fetches the record of `decision` with `stella decisions get`, asserts every audit field, and
/// returns it with its record digest.
///
/// # Panics
///
/// Panics with the record and the evaluation output when a field differs.
#[track_caller]
pub fn assert_persisted(
    operator: &Operator,
    decision: &Decision,
    expected: &ExpectedRecord<'_>,
) -> PersistedRecord {
    let evaluation = &decision.output;
    assert!(
        !decision.record_id.is_empty(),
        "the evaluation returned no record id\n{evaluation}"
    );
    let fetched = operator.decision_get(&decision.record_id);
    // `decisions get` exits by the stored decision, as `promotion evaluate` does.
    fetched.assert_code(evaluation.code);
    let record = decision_record(&fetched);
    let field = |key: &str| record.get(key).cloned().unwrap_or(Value::Null);
    let context = format!("record {record}\nevaluation:\n{evaluation}");

    assert_eq!(field("record_id"), decision.record_id.as_str(), "{context}");
    assert_eq!(field("promotion_id"), expected.promotion_id, "{context}");
    assert_eq!(
        field("target_environment"),
        expected.target_environment,
        "{context}"
    );
    assert_eq!(field("decision"), decision.decision.as_str(), "{context}");
    assert_eq!(
        field("reason_codes"),
        Value::from(decision.reason_codes.clone()),
        "{context}"
    );
    assert_eq!(
        field("subject_digests"),
        Value::from(expected.subject_digests.to_vec()),
        "{context}"
    );
    let mut bundle_ids = expected.evidence_bundle_ids.to_vec();
    bundle_ids.sort_unstable();
    assert_eq!(
        field("evidence_bundle_ids"),
        Value::from(bundle_ids),
        "{context}"
    );
    assert_eq!(
        field("report_digests"),
        evaluation
            .json()
            .get("report_digests")
            .cloned()
            .unwrap_or(Value::Null),
        "the record must name the reports the evaluation printed\n{context}"
    );
    assert_eq!(field("checkpoints"), expected.checkpoints, "{context}");
    assert_eq!(field("policy_digest"), expected.policy_digest, "{context}");
    assert_eq!(
        field("policy_digest"),
        evaluation.str_field("policy_digest").as_str(),
        "{context}"
    );
    assert_eq!(field("break_glass"), Value::Null, "{context}");

    // The record's time is the evaluation's time, and that time is when the command ran.
    assert_eq!(
        field("evaluated_at"),
        evaluation.str_field("evaluated_at").as_str(),
        "{context}"
    );
    let evaluation_time = evaluation
        .json()
        .get("evaluation_time")
        .and_then(Value::as_i64);
    assert!(
        evaluation_time.is_some_and(|time| expected.evaluated_within.contains(&time)),
        "evaluation_time {evaluation_time:?} is outside {:?}\n{context}",
        expected.evaluated_within
    );

    assert_eq!(field("tenant"), expected.tenant, "{context}");
    assert_eq!(field("sequence"), expected.sequence, "{context}");
    assert_eq!(
        field("previous_record_digest"),
        expected
            .previous_record_digest
            .map_or(Value::Null, Value::from),
        "{context}"
    );

    let decision_digest = evaluation.str_field("decision_digest");
    assert_eq!(
        field("decision_digest"),
        decision_digest.as_str(),
        "{context}"
    );
    let mut body = record.clone();
    if let Some(fields) = body.as_object_mut() {
        for key in FIELDS_OUTSIDE_DECISION_DIGEST {
            fields.remove(key);
        }
    }
    assert_eq!(
        canonical_digest(&body),
        decision_digest,
        "the decision digest must be the SHA-256 of the canonical record without its id and \
         chain fields\n{context}"
    );

    PersistedRecord {
        record_digest: canonical_digest(&record),
        record,
    }
}
