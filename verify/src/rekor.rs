//! Rekor log entries bound to a Sigstore bundle.
//!
//! Rekor v2 logs only `hashedrekord` v0.0.2. Its leaf is `JCS(protojson(Entry))` (RFC 8785
//! canonical JSON), as `sigstore/rekor-tiles` writes it:
//!
//! ```json
//! {"apiVersion":"0.0.2","kind":"hashedrekord","spec":{"hashedRekordV002":{"data":{"algorithm":"SHA2_256","digest":"<base64>"},"signature":{"content":"<base64>","verifier":{"keyDetails":"PKIX_ECDSA_P256_SHA_256","x509Certificate":{"rawBytes":"<base64 DER>"}}}}}}
//! ```
//!
//! A managed key appears as `"publicKey":{"rawBytes":…}` in place of `x509Certificate`. A DSSE
//! envelope is logged as `hashedrekord` too: the digest is the hash of PAE(payloadType, payload)
//! and the signature is the envelope's only signature. Rebuilding the entry from the bundle binds
//! the bundle's signature, key and digest to the log leaf.
//!
//! A bundle's `canonicalizedBody`, when present, must be exactly the rebuilt bytes. Early Rekor v2
//! servers wrote the spec key `hashedRekordV0_0_2`, so that spelling of the same entry is accepted
//! too. The logged bytes are then used as the leaf.
//!
//! Rekor v1 entries (`hashedrekord` and `dsse` 0.0.1) are compared field by field in [`v1`], and
//! their signed entry timestamps are verified in [`set`].
//!
//! Left out: the deprecated Rekor v2 `dsse` v0.0.2 kind and the Rekor v1 `intoto` kinds, which
//! [`entry_format`] rejects.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use thiserror::Error;

use crate::bundle::{BundleContent, HashAlgorithm, TlogEntry};
use crate::dsse::DsseError;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::x509::PublicKey;

pub mod set;
pub mod v1;

pub use set::{SetError, verify_signed_entry_timestamp};
pub use v1::check_v1_body;

/// The only entry kind Rekor v2 logs, and one of the Rekor v1 kinds.
pub const KIND_HASHEDREKORD: &str = "hashedrekord";
/// The Rekor v1 kind that logs a whole DSSE envelope.
pub const KIND_DSSE: &str = "dsse";
/// The Rekor v1 API version of `hashedrekord` and `dsse`.
pub const API_VERSION_V001: &str = "0.0.1";
/// The Rekor v2 `hashedrekord` API version.
pub const API_VERSION_V002: &str = "0.0.2";
/// Spec key written by current Rekor v2 servers.
pub const SPEC_KEY_V002: &str = "hashedRekordV002";
/// Spec key written by early Rekor v2 servers, before a rename.
pub const SPEC_KEY_V0_0_2: &str = "hashedRekordV0_0_2";

/// Errors from rebuilding or matching a Rekor entry.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RekorError {
    /// The entry's kind and version are not one of the [`EntryFormat`]s.
    #[error(
        "Rekor entry kind {kind:?} version {version:?} is not supported (only hashedrekord 0.0.2, and hashedrekord or dsse 0.0.1)"
    )]
    Unsupported { kind: String, version: String },
    /// A Rekor v1 entry lacks its `canonicalizedBody`, which is the logged leaf.
    #[error("Rekor v1 entry has no canonicalizedBody, which is its log leaf")]
    BodyMissing,
    /// The logged body is not JSON of an entry.
    #[error("Rekor canonicalizedBody is not a valid entry: {detail}")]
    BodyInvalid { detail: String },
    /// The logged body describes another entry than the bundle.
    #[error("Rekor canonicalizedBody does not match the bundle: {detail}")]
    Mismatch { detail: String },
    /// The DSSE envelope cannot be logged as hashedrekord.
    #[error("DSSE envelope cannot be matched to a Rekor entry: {source}")]
    Envelope { source: DsseError },
    /// Canonical JSON encoding failed.
    #[error("Rekor entry cannot be encoded as canonical JSON: {detail}")]
    Encode { detail: String },
}

impl HasReasonCode for RekorError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            RekorError::Unsupported { .. } => ReasonCode::RekorEntryUnsupported,
            RekorError::BodyMissing => ReasonCode::SigstoreBundleInvalid,
            RekorError::BodyInvalid { .. }
            | RekorError::Mismatch { .. }
            | RekorError::Encode { .. } => ReasonCode::RekorEntryMismatch,
            RekorError::Envelope { source } => source.reason_code(),
        }
    }
}

/// The signer's key as logged: a DER certificate or a DER SPKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryVerifier {
    X509Certificate(Vec<u8>),
    PublicKey(Vec<u8>),
}

/// A `hashedrekord` v0.0.2 entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedRekordV002 {
    pub data_algorithm: HashAlgorithm,
    pub data_digest: Vec<u8>,
    pub signature: Vec<u8>,
    pub verifier: EntryVerifier,
    /// `keyDetails` of the signing key's default algorithm, such as `PKIX_ECDSA_P256_SHA_256`.
    pub key_details: &'static str,
}

impl HashedRekordV002 {
    /// Rebuilds the entry the log must hold for this bundle content, signed by `key` and
    /// identified in the log by `verifier`.
    ///
    /// # Errors
    ///
    /// [`RekorError::Envelope`] when a DSSE envelope does not have exactly one signature.
    pub fn from_bundle(
        content: &BundleContent,
        verifier: EntryVerifier,
        key: &PublicKey,
    ) -> Result<Self, RekorError> {
        let (data_algorithm, data_digest, signature) = match content {
            BundleContent::MessageSignature(message) => (
                message.digest.algorithm,
                message.digest.digest.clone(),
                message.signature.clone(),
            ),
            BundleContent::Dsse(envelope) => {
                let signature = envelope
                    .single_signature()
                    .map_err(|source| RekorError::Envelope { source })?;
                let algorithm = key.hash_algorithm();
                (
                    algorithm,
                    algorithm.digest(&envelope.pae()),
                    signature.sig.clone(),
                )
            }
        };
        Ok(HashedRekordV002 {
            data_algorithm,
            data_digest,
            signature,
            verifier,
            key_details: key.key_details(),
        })
    }

    /// Returns the entry as Rekor v2 logs it today (RFC 8785 JSON, spec key `hashedRekordV002`).
    ///
    /// # Errors
    ///
    /// [`RekorError::Encode`], which the JSON values built here cannot trigger.
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, RekorError> {
        self.canonical_json_with_key(SPEC_KEY_V002)
    }

    fn canonical_json_with_key(&self, spec_key: &str) -> Result<Vec<u8>, RekorError> {
        let mut verifier = serde_json::Map::new();
        verifier.insert("keyDetails".to_owned(), Value::from(self.key_details));
        let (verifier_key, raw_bytes) = match &self.verifier {
            EntryVerifier::X509Certificate(der) => ("x509Certificate", der),
            EntryVerifier::PublicKey(der) => ("publicKey", der),
        };
        verifier.insert(
            verifier_key.to_owned(),
            json!({ "rawBytes": STANDARD.encode(raw_bytes) }),
        );
        let mut spec = serde_json::Map::new();
        spec.insert(
            spec_key.to_owned(),
            json!({
                "data": {
                    "algorithm": self.data_algorithm.proto_name(),
                    "digest": STANDARD.encode(&self.data_digest),
                },
                "signature": {
                    "content": STANDARD.encode(&self.signature),
                    "verifier": Value::Object(verifier),
                },
            }),
        );
        let entry = json!({
            "apiVersion": API_VERSION_V002,
            "kind": KIND_HASHEDREKORD,
            "spec": Value::Object(spec),
        });
        serde_json_canonicalizer::to_vec(&entry).map_err(|e| RekorError::Encode {
            detail: e.to_string(),
        })
    }
}

/// The log entry formats this verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFormat {
    /// Rekor v2 `hashedrekord` 0.0.2, over a message or over DSSE PAE.
    HashedRekordV002,
    /// Rekor v1 `hashedrekord` 0.0.1, over a message.
    HashedRekordV001,
    /// Rekor v1 `dsse` 0.0.1, over a whole DSSE envelope.
    DsseV001,
}

impl EntryFormat {
    /// Reports whether entries of this format come from a Rekor v1 log: signed entry timestamps,
    /// an integrated time and shard-local inclusion proofs.
    pub fn is_rekor_v1(self) -> bool {
        match self {
            EntryFormat::HashedRekordV002 => false,
            EntryFormat::HashedRekordV001 | EntryFormat::DsseV001 => true,
        }
    }
}

/// Returns the format of a bundle's tlog entry from its `kindVersion`.
///
/// # Errors
///
/// [`RekorError::Unsupported`] for any other kind or version, such as the Rekor v1 `intoto`
/// kinds.
pub fn entry_format(entry: &TlogEntry) -> Result<EntryFormat, RekorError> {
    match (entry.kind.as_str(), entry.version.as_str()) {
        (KIND_HASHEDREKORD, API_VERSION_V002) => Ok(EntryFormat::HashedRekordV002),
        (KIND_HASHEDREKORD, API_VERSION_V001) => Ok(EntryFormat::HashedRekordV001),
        (KIND_DSSE, API_VERSION_V001) => Ok(EntryFormat::DsseV001),
        _ => Err(RekorError::Unsupported {
            kind: entry.kind.clone(),
            version: entry.version.clone(),
        }),
    }
}

/// Returns the bytes whose leaf hash must be in the log: the bundle's `canonicalizedBody` when it
/// is the expected entry (under either spec key), otherwise the rebuilt entry when the body is
/// absent.
///
/// # Errors
///
/// [`RekorError::Unsupported`] when the body is of another kind or version,
/// [`RekorError::BodyInvalid`] when it is not an entry, [`RekorError::Mismatch`] when it describes
/// another signature, digest or key.
pub fn logged_entry_bytes(
    entry: &TlogEntry,
    expected: &HashedRekordV002,
) -> Result<Vec<u8>, RekorError> {
    let rebuilt = expected.to_canonical_json()?;
    let Some(body) = &entry.canonicalized_body else {
        return Ok(rebuilt);
    };
    if *body == rebuilt || *body == expected.canonical_json_with_key(SPEC_KEY_V0_0_2)? {
        return Ok(body.clone());
    }
    Err(explain_mismatch(body, expected)?)
}

/// Builds the error that names the fields in which `body` differs from `expected`.
fn explain_mismatch(body: &[u8], expected: &HashedRekordV002) -> Result<RekorError, RekorError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RekorError::BodyInvalid {
        detail: e.to_string(),
    })?;
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (kind, api_version) = (text("/kind"), text("/apiVersion"));
    if kind != KIND_HASHEDREKORD || api_version != API_VERSION_V002 {
        return Ok(RekorError::Unsupported {
            kind,
            version: api_version,
        });
    }
    let spec_key = [SPEC_KEY_V002, SPEC_KEY_V0_0_2]
        .into_iter()
        .find(|key| value.pointer(&format!("/spec/{key}")).is_some())
        .ok_or_else(|| RekorError::BodyInvalid {
            detail: "spec holds no hashedRekordV002".to_owned(),
        })?;
    let field = |path: &str| text(&format!("/spec/{spec_key}/{path}"));

    let (verifier_key, raw_bytes) = match &expected.verifier {
        EntryVerifier::X509Certificate(der) => ("x509Certificate", der),
        EntryVerifier::PublicKey(der) => ("publicKey", der),
    };
    let checks = [
        (
            "data.algorithm",
            field("data/algorithm"),
            expected.data_algorithm.proto_name().to_owned(),
        ),
        (
            "data.digest",
            field("data/digest"),
            STANDARD.encode(&expected.data_digest),
        ),
        (
            "signature.content",
            field("signature/content"),
            STANDARD.encode(&expected.signature),
        ),
        (
            "signature.verifier.keyDetails",
            field("signature/verifier/keyDetails"),
            expected.key_details.to_owned(),
        ),
        (
            "signature.verifier key",
            field(&format!("signature/verifier/{verifier_key}/rawBytes")),
            STANDARD.encode(raw_bytes),
        ),
    ];
    let differing: Vec<&str> = checks
        .iter()
        .filter(|(_, logged, rebuilt)| logged != rebuilt)
        .map(|(name, _, _)| *name)
        .collect();
    let detail = if differing.is_empty() {
        "the logged bytes are not the canonical encoding of the bundle's entry".to_owned()
    } else {
        format!(
            "fields that differ between the logged entry and the bundle: {}",
            differing.join(", ")
        )
    };
    Ok(RekorError::Mismatch { detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{SigstoreBundle, parse_bundle};
    use crate::merkle::leaf_hash;

    const CONFORMANCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-conformance/bundle-verify"
    );

    fn load(case: &str) -> Option<SigstoreBundle> {
        let path = format!("{CONFORMANCE}/{case}/bundle.sigstore.json");
        match std::fs::read(&path) {
            Ok(json) => Some(parse_bundle(&json).expect("bundle parses")),
            Err(e) => {
                crate::test_vectors::skip_or_fail(&format!("vector {path} not readable: {e}"));
                None
            }
        }
    }

    fn rebuild(bundle: &SigstoreBundle) -> HashedRekordV002 {
        let der = bundle.certificate_der().expect("certificate").to_vec();
        let key = crate::x509::Certificate::from_der(&der)
            .expect("leaf")
            .public_key()
            .expect("key");
        HashedRekordV002::from_bundle(&bundle.content, EntryVerifier::X509Certificate(der), &key)
            .expect("entry")
    }

    #[test]
    fn rebuild_matches_logged_bodies() {
        for case in ["rekor2-happy-path", "rekor2-dsse-happy-path"] {
            let Some(bundle) = load(case) else { return };
            let entry = &bundle.tlog_entries[0];
            let rebuilt = rebuild(&bundle).to_canonical_json().expect("encodes");
            assert_eq!(
                Some(&rebuilt),
                entry.canonicalized_body.as_ref(),
                "case {case}"
            );
            assert_eq!(
                logged_entry_bytes(entry, &rebuild(&bundle)),
                Ok(rebuilt),
                "case {case}"
            );
        }
    }

    #[test]
    fn rebuild_happy_path_leaf_hash() {
        let Some(bundle) = load("rekor2-happy-path") else {
            return;
        };
        let bytes = rebuild(&bundle).to_canonical_json().expect("encodes");
        assert_eq!(
            hex::encode(leaf_hash(&bytes)),
            "78470eff2921878c2141726b650bf349099c37850a731f287a6accf35d40441f"
        );
    }

    #[test]
    fn logged_bytes_accept_legacy_spec_key() {
        let Some(mut bundle) = load("rekor2-happy-path") else {
            return;
        };
        let expected = rebuild(&bundle);
        let legacy = expected
            .canonical_json_with_key(SPEC_KEY_V0_0_2)
            .expect("encodes");
        bundle.tlog_entries[0].canonicalized_body = Some(legacy.clone());
        assert_eq!(
            logged_entry_bytes(&bundle.tlog_entries[0], &expected),
            Ok(legacy)
        );
        bundle.tlog_entries[0].canonicalized_body = None;
        assert_eq!(
            logged_entry_bytes(&bundle.tlog_entries[0], &expected),
            expected.to_canonical_json()
        );
    }

    #[test]
    fn logged_bytes_name_the_mismatch() {
        let Some(bundle) = load("rekor2-dsse-mismatch-sig_fail") else {
            return;
        };
        let err = logged_entry_bytes(&bundle.tlog_entries[0], &rebuild(&bundle))
            .expect_err("other signature");
        assert_eq!(
            err,
            RekorError::Mismatch {
                detail:
                    "fields that differ between the logged entry and the bundle: signature.content"
                        .to_owned()
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorEntryMismatch);

        let Some(bundle) = load("rekor2-dsse-mismatch-envelope_fail") else {
            return;
        };
        let err = logged_entry_bytes(&bundle.tlog_entries[0], &rebuild(&bundle))
            .expect_err("other envelope");
        assert!(
            matches!(&err, RekorError::Mismatch { detail } if detail.contains("data.digest")),
            "{err:?}"
        );
    }

    #[test]
    fn unsupported_kinds_rejected() {
        let Some(mut bundle) = load("rekor2-happy-path") else {
            return;
        };
        let expected = rebuild(&bundle);
        let entry = &mut bundle.tlog_entries[0];
        entry.canonicalized_body =
            Some(br#"{"apiVersion":"0.0.2","kind":"dsse","spec":{}}"#.to_vec());
        assert_eq!(
            logged_entry_bytes(entry, &expected),
            Err(RekorError::Unsupported {
                kind: "dsse".to_owned(),
                version: "0.0.2".to_owned()
            })
        );
        entry.canonicalized_body = Some(b"not json".to_vec());
        assert!(matches!(
            logged_entry_bytes(entry, &expected),
            Err(RekorError::BodyInvalid { .. })
        ));
    }

    #[test]
    fn entry_formats_by_kind_version() {
        let Some(bundle) = load("rekor2-happy-path") else {
            return;
        };
        let mut entry = bundle.tlog_entries[0].clone();
        let rows = [
            ("hashedrekord", "0.0.2", Some(EntryFormat::HashedRekordV002)),
            ("hashedrekord", "0.0.1", Some(EntryFormat::HashedRekordV001)),
            ("dsse", "0.0.1", Some(EntryFormat::DsseV001)),
            ("dsse", "0.0.2", None),
            ("intoto", "0.0.2", None),
        ];
        for (kind, version, want) in rows {
            entry.kind = kind.to_owned();
            entry.version = version.to_owned();
            match want {
                Some(format) => assert_eq!(entry_format(&entry), Ok(format), "{kind} {version}"),
                None => {
                    let err = entry_format(&entry).expect_err(kind);
                    assert_eq!(
                        err.reason_code(),
                        ReasonCode::RekorEntryUnsupported,
                        "{kind} {version}"
                    );
                }
            }
        }
    }
}
