//! Signed entry timestamps (SETs) of Rekor v1: the log's signed promise that it included an entry
//! at a given time.
//!
//! A SET is an ECDSA signature by the log's key, with SHA-256, over the RFC 8785 canonical JSON
//!
//! ```json
//! {"body":"<base64 canonicalizedBody>","integratedTime":<Unix seconds>,"logID":"<hex log ID>","logIndex":<top-level index>}
//! ```
//!
//! as `sigstore/rekor` signs it and sigstore-go (`pkg/tlog/entry.go`) checks it. The log key must
//! be valid at the integrated time: its `validFor` needs a start, and start <= integratedTime <=
//! end, both ends included. Only a verified SET makes `integratedTime` a trusted observer time.
//!
//! Left out: Rekor v2 has no SETs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::bundle::{HashAlgorithm, TlogEntry};
use crate::reason::{HasReasonCode, ReasonCode};
use crate::trust_root::{TransparencyLogInstance, format_bound, format_time};
use crate::x509::{PublicKey, X509Error};

/// Errors from verifying a signed entry timestamp. All map to `ERR_REKOR_SET_INVALID`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SetError {
    /// The entry carries no `inclusionPromise`.
    #[error("tlog entry has no signed entry timestamp (inclusionPromise)")]
    Missing,
    /// The SET signs the body, which the entry does not carry.
    #[error("tlog entry has a signed entry timestamp but no canonicalizedBody for it to cover")]
    BodyMissing,
    /// The log key's validity window does not cover the integrated time, or has no start.
    #[error("log {origin}: key validFor ({} to {}) does not cover the integrated time {}", format_bound(*.start), format_bound(*.end), format_time(*.integrated_time))]
    KeyNotValid {
        origin: String,
        integrated_time: i64,
        start: Option<i64>,
        end: Option<i64>,
    },
    /// The log key cannot verify signatures.
    #[error("log {origin}: key cannot verify signed entry timestamps: {source}")]
    Key { origin: String, source: X509Error },
    /// The signature does not verify over the entry's fields.
    #[error("signed entry timestamp of log index {log_index} (integrated time {}) does not verify under the key of log {origin}", format_time(*.integrated_time))]
    Signature {
        origin: String,
        log_index: u64,
        integrated_time: i64,
    },
    /// The signed fields cannot be encoded as canonical JSON.
    #[error("signed entry timestamp payload cannot be encoded as canonical JSON: {detail}")]
    Encode { detail: String },
}

impl HasReasonCode for SetError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            SetError::Missing
            | SetError::BodyMissing
            | SetError::KeyNotValid { .. }
            | SetError::Key { .. }
            | SetError::Signature { .. }
            | SetError::Encode { .. } => ReasonCode::RekorSetInvalid,
        }
    }
}

/// Verifies the signed entry timestamp of a Rekor v1 entry with the key of `log` (the log its
/// `logId` selects) and returns the integrated time it vouches for.
///
/// # Errors
///
/// [`SetError::Missing`] or [`SetError::BodyMissing`] when the entry lacks what is signed,
/// [`SetError::KeyNotValid`] when the log key was not valid at the integrated time,
/// [`SetError::Key`] for an unusable log key and [`SetError::Signature`] for a wrong signature.
pub fn verify_signed_entry_timestamp(
    entry: &TlogEntry,
    log: &TransparencyLogInstance,
) -> Result<i64, SetError> {
    let signature = entry.inclusion_promise.as_ref().ok_or(SetError::Missing)?;
    let body = entry
        .canonicalized_body
        .as_ref()
        .ok_or(SetError::BodyMissing)?;
    let integrated_time = entry.integrated_time;
    let origin = log.origin().to_owned();

    let valid_for = log.valid_for;
    if valid_for.start.is_none() || !valid_for.contains(integrated_time) {
        return Err(SetError::KeyNotValid {
            origin,
            integrated_time,
            start: valid_for.start,
            end: valid_for.end,
        });
    }
    let key = PublicKey::from_spki_der(&log.public_key_der).map_err(|source| SetError::Key {
        origin: origin.clone(),
        source,
    })?;

    let payload = signed_payload(entry, body)?;
    key.verify_with_hash(&payload, HashAlgorithm::Sha2_256, signature)
        .map_err(|_| SetError::Signature {
            origin,
            log_index: entry.log_index,
            integrated_time,
        })?;
    Ok(integrated_time)
}

/// Builds the canonical JSON that the log signed.
fn signed_payload(entry: &TlogEntry, body: &[u8]) -> Result<Vec<u8>, SetError> {
    let payload = serde_json::json!({
        "body": STANDARD.encode(body),
        "integratedTime": entry.integrated_time,
        "logID": hex::encode(&entry.log_id),
        "logIndex": entry.log_index,
    });
    serde_json_canonicalizer::to_vec(&payload).map_err(|e| SetError::Encode {
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{SigstoreBundle, parse_bundle};
    use crate::trust_root::{TrustedRoot, parse_trusted_root};

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

    fn load(case: &str) -> Option<(SigstoreBundle, TrustedRoot)> {
        let bundle_path =
            format!("{VECTORS}/sigstore-conformance/bundle-verify/{case}/bundle.sigstore.json");
        let root_path = format!("{VECTORS}/sigstore-trust-roots/production.trusted_root.json");
        match (std::fs::read(&bundle_path), std::fs::read(&root_path)) {
            (Ok(bundle), Ok(root)) => Some((
                parse_bundle(&bundle).expect("bundle parses"),
                parse_trusted_root(&root).expect("root parses"),
            )),
            _ => {
                crate::test_vectors::skip_or_fail(&format!("vectors {bundle_path} or {root_path} not readable"));
                None
            }
        }
    }

    #[test]
    fn set_verifies_production_entries() {
        for case in [
            "happy-path-v0.1",
            "happy-path-v0.3",
            "happy-path-intoto-in-dsse-v3",
        ] {
            let Some((bundle, root)) = load(case) else {
                return;
            };
            let entry = &bundle.tlog_entries[0];
            let log = root
                .tlog_by_id(&entry.log_id)
                .expect("rekor.sigstore.dev listed");
            assert_eq!(
                verify_signed_entry_timestamp(entry, log),
                Ok(entry.integrated_time),
                "case {case}"
            );
        }
    }

    #[test]
    fn set_rejects_altered_fields() {
        let Some((bundle, root)) = load("happy-path-v0.1") else {
            return;
        };
        let entry = &bundle.tlog_entries[0];
        let log = root.tlog_by_id(&entry.log_id).expect("log listed");
        type Edit = fn(&mut TlogEntry);
        let rows: [(&str, Edit); 4] = [
            ("integrated time", |e| e.integrated_time += 1),
            ("log index", |e| e.log_index += 1),
            ("body", |e| {
                if let Some(body) = e.canonicalized_body.as_mut() {
                    body.push(b' ');
                }
            }),
            ("signature", |e| {
                if let Some(set) = e.inclusion_promise.as_mut() {
                    set[10] ^= 1;
                }
            }),
        ];
        for (name, edit) in rows {
            let mut altered = entry.clone();
            edit(&mut altered);
            let err = verify_signed_entry_timestamp(&altered, log).expect_err(name);
            assert!(
                matches!(err, SetError::Signature { .. }),
                "row {name}: {err:?}"
            );
            assert_eq!(err.reason_code(), ReasonCode::RekorSetInvalid, "row {name}");
        }
    }

    #[test]
    fn set_checks_log_key_validity() {
        let Some((bundle, root)) = load("happy-path-v0.1") else {
            return;
        };
        let entry = &bundle.tlog_entries[0];
        let mut log = root.tlog_by_id(&entry.log_id).expect("log listed").clone();
        let t = entry.integrated_time;

        // Both ends are included.
        log.valid_for.start = Some(t);
        log.valid_for.end = Some(t);
        assert_eq!(verify_signed_entry_timestamp(entry, &log), Ok(t));

        for (name, start, end) in [
            ("ended before", Some(t - 100), Some(t - 1)),
            ("starts after", Some(t + 1), None),
            ("no start", None, None),
        ] {
            log.valid_for.start = start;
            log.valid_for.end = end;
            let err = verify_signed_entry_timestamp(entry, &log).expect_err(name);
            assert_eq!(
                err,
                SetError::KeyNotValid {
                    origin: "rekor.sigstore.dev".to_owned(),
                    integrated_time: t,
                    start,
                    end
                },
                "row {name}"
            );
        }
    }

    #[test]
    fn set_needs_promise_and_body() {
        let Some((bundle, root)) = load("happy-path-v0.1") else {
            return;
        };
        let log = root
            .tlog_by_id(&bundle.tlog_entries[0].log_id)
            .expect("log listed");
        let mut entry = bundle.tlog_entries[0].clone();
        entry.canonicalized_body = None;
        assert_eq!(
            verify_signed_entry_timestamp(&entry, log),
            Err(SetError::BodyMissing)
        );
        entry.inclusion_promise = None;
        assert_eq!(
            verify_signed_entry_timestamp(&entry, log),
            Err(SetError::Missing)
        );
    }
}
