//! Idempotent evaluations: a caller-chosen request id names the decision record that its first
//! `Evaluate` wrote, so a retry returns that record instead of writing a second one.
//!
//! Column family `decision_requests`: the key is the tenant and the request id, each
//! length-prefixed (see [`crate::store`]); the value is the JSON [`RequestEntry`]. The entry is
//! written in the same `WriteBatch` as the record it names, under the store's write lock (see
//! [`crate::chain`]), so two concurrent requests with one id append one record.
//!
//! A replayed response is rebuilt from the signed record, plus the gate results that the entry
//! keeps because the record does not contain them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stella_proto::gate::v1 as pb;

use crate::chain::StoredDecision;
use crate::evaluate::GateResult;
use crate::record::{record_from_envelope, sorted_code_strings};
use crate::store::{CF_DECISION_REQUESTS, StoreError, TenantStore, rocks};

/// Maximum length of a request id, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Checks a request id: 1 to [`MAX_REQUEST_ID_BYTES`] bytes of ASCII letters, digits and `.`,
/// `_`, `:`, `-`.
///
/// # Errors
///
/// A message naming the fault, for an INVALID_ARGUMENT status.
pub fn validate_request_id(request_id: &str) -> Result<(), String> {
    if request_id.is_empty() || request_id.len() > MAX_REQUEST_ID_BYTES {
        return Err(format!(
            "request_id must have 1 to {MAX_REQUEST_ID_BYTES} bytes, not {}",
            request_id.len()
        ));
    }
    if let Some(invalid) = request_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "request_id contains {invalid:?}; only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Entry of a request id: the record that its first evaluation wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEntry {
    pub record_id: String,
    /// The promotion that was evaluated. The same id for another promotion is a conflict.
    pub promotion_id: String,
    /// The gate results of the response, which the record does not contain.
    pub gates: Vec<StoredGate>,
}

/// One gate result, as the response to the first request listed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGate {
    pub requirement: String,
    pub satisfied: bool,
    /// Sorted reason code spellings.
    pub reason_codes: Vec<String>,
}

impl StoredGate {
    /// Copies an evaluation's gate result.
    pub fn from_result(gate: &GateResult) -> StoredGate {
        StoredGate {
            requirement: gate.requirement.clone(),
            satisfied: gate.satisfied,
            reason_codes: sorted_code_strings(&gate.reason_codes)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl RequestEntry {
    /// Encodes the entry as its stored JSON.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|error| StoreError::Corrupt {
            what: "request entry",
            key: self.record_id.clone(),
            why: error.to_string(),
        })
    }
}

impl TenantStore {
    /// Returns the entry of `request_id`, or `None` when this tenant never used the id.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for an unreadable entry, and RocksDB errors.
    pub fn request_entry(&self, request_id: &str) -> Result<Option<RequestEntry>, StoreError> {
        let cf = self.cf(CF_DECISION_REQUESTS)?;
        let Some(bytes) = self
            .db
            .get_cf(cf, self.key(request_id))
            .map_err(rocks("get request entry"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                what: "request entry",
                key: request_id.to_owned(),
                why: error.to_string(),
            })
    }
}

/// Rebuilds the response of the evaluation that wrote `stored`, with `replayed` set. Every
/// field but the gate results comes from the signed record.
///
/// # Errors
///
/// A message naming the fault when the envelope or the record in it is invalid.
pub fn replayed_response(entry: &RequestEntry, stored: &StoredDecision) -> Result<pb::EvaluateResponse, String> {
    let record_json = record_from_envelope(&stored.envelope_json)?;
    let record: Value =
        serde_json::from_slice(&record_json).map_err(|error| format!("the record is not JSON: {error}"))?;
    let evaluation_time = unix_time(text(&record, "evaluated_at")?)?;
    let break_glass = match record.get("break_glass") {
        None | Some(Value::Null) => None,
        Some(block) => Some(break_glass_message(block)?),
    };
    Ok(pb::EvaluateResponse {
        decision: text(&record, "decision")?.to_owned(),
        reason_codes: texts(&record, "reason_codes")?,
        gates: entry
            .gates
            .iter()
            .map(|gate| pb::GateResult {
                requirement: gate.requirement.clone(),
                satisfied: gate.satisfied,
                reason_codes: gate.reason_codes.clone(),
            })
            .collect(),
        decision_digest: text(&record, "decision_digest")?.to_owned(),
        report_digests: texts(&record, "report_digests")?,
        record_id: stored.record_id.clone(),
        break_glass,
        policy_digest: text(&record, "policy_digest")?.to_owned(),
        evaluation_time,
        replayed: true,
        record_json,
    })
}

fn break_glass_message(block: &Value) -> Result<pb::BreakGlass, String> {
    Ok(pb::BreakGlass {
        reason: text(block, "reason")?.to_owned(),
        ticket: text(block, "ticket")?.to_owned(),
        requested_by: text(block, "requested_by")?.to_owned(),
        issued_at: unix_time(text(block, "issued_at")?)?,
        expires_at: unix_time(text(block, "expires_at")?)?,
        overridden_reason_codes: texts(block, "overridden_reason_codes")?,
        overridden_decision: text(block, "overridden_decision")?.to_owned(),
    })
}

fn text<'a>(object: &'a Value, key: &str) -> Result<&'a str, String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the record has no string {key}"))
}

fn texts(object: &Value, key: &str) -> Result<Vec<String>, String> {
    let invalid = || format!("the record has no list of strings {key}");
    object
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(invalid)?
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect()
}

fn unix_time(rfc3339: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|error| format!("the record time {rfc3339:?} is not RFC 3339: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_rules() {
        let longest = "x".repeat(MAX_REQUEST_ID_BYTES);
        for valid in ["a", "ci:run-42.attempt_1", longest.as_str()] {
            assert_eq!(validate_request_id(valid), Ok(()), "{valid:?}");
        }
        let too_long = "x".repeat(MAX_REQUEST_ID_BYTES + 1);
        for invalid in ["", "a b", "a/b", "caf\u{e9}", "a\nb", too_long.as_str()] {
            assert!(validate_request_id(invalid).is_err(), "{invalid:?} was accepted");
        }
    }

    #[test]
    fn entry_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::Store::open(dir.path())
            .expect("open")
            .for_tenant(&stella_access::Tenant::parse("acme").expect("tenant"));
        let entry = RequestEntry {
            record_id: "dr-1".to_owned(),
            promotion_id: "rel-1".to_owned(),
            gates: vec![StoredGate {
                requirement: "evidence x".to_owned(),
                satisfied: false,
                reason_codes: vec!["ERR_REKOR_TILE_MISSING".to_owned()],
            }],
        };
        store
            .append_decision_once("req-1", &entry, |_| {
                Ok(crate::chain::SignedRecord {
                    envelope_json: b"{}".to_vec(),
                    record_digest: "sha256:00".to_owned(),
                    grant: None,
                })
            })
            .expect("append");
        assert_eq!(store.request_entry("req-1").expect("get"), Some(entry));
        assert_eq!(store.request_entry("req-2").expect("get"), None);
    }
}
