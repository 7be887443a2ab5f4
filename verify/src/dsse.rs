//! DSSE envelopes and in-toto Statement v1 payloads.
//!
//! Implements the DSSE protocol and envelope (`secure-systems-lab/dsse` `protocol.md`,
//! `envelope.md`): the pre-authentication encoding
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, and the JSON envelope
//! whose byte fields may use standard or URL-safe base64. Sigstore allows exactly one signature.
//!
//! A payload is parsed only after its signature verified: [`verify_envelope`] returns a
//! [`VerifiedEnvelope`], the only way to reach [`VerifiedEnvelope::statement`].
//!
//! Left out: payload types other than `application/vnd.in-toto+json`, and subject digests other
//! than SHA-256 (such subjects are kept with `sha256: None`).

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

use crate::bundle::decode_proto_base64;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::x509::PublicKey;

/// The payload type Sigstore requires for in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// Errors from DSSE envelopes and in-toto statements.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DsseError {
    /// The envelope is not JSON of the expected shape.
    #[error("DSSE envelope is not valid JSON: {detail}")]
    Json { detail: String },
    /// A byte field is not valid base64.
    #[error("DSSE envelope field {field} is not valid base64")]
    Base64 { field: String },
    /// A required envelope field is absent or empty.
    #[error("DSSE envelope field {field} is missing")]
    Missing { field: String },
    /// Sigstore requires exactly one signature.
    #[error("DSSE envelope has {count} signatures, expected exactly 1")]
    SignatureCount { count: usize },
    /// The signature does not verify over PAE(payloadType, payload).
    #[error("DSSE signature does not verify over PAE({payload_type:?}, payload): {detail}")]
    SignatureInvalid {
        payload_type: String,
        detail: String,
    },
    /// The payload type is not the in-toto one.
    #[error(
        "DSSE payload type {payload_type:?} is not supported (expected {IN_TOTO_PAYLOAD_TYPE:?})"
    )]
    PayloadType { payload_type: String },
    /// The payload is not an in-toto Statement v1.
    #[error("DSSE payload is not an in-toto Statement v1: {detail}")]
    Statement { detail: String },
}

impl HasReasonCode for DsseError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            DsseError::Json { .. } | DsseError::Base64 { .. } | DsseError::Missing { .. } => {
                ReasonCode::SigstoreBundleInvalid
            }
            DsseError::SignatureCount { .. } | DsseError::SignatureInvalid { .. } => {
                ReasonCode::DsseSignatureInvalid
            }
            DsseError::PayloadType { .. } | DsseError::Statement { .. } => {
                ReasonCode::DssePayloadInvalid
            }
        }
    }
}

/// One envelope signature. `keyid` is unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub keyid: Option<String>,
    pub sig: Vec<u8>,
}

/// A parsed, unverified DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Returns PAE(payloadType, payload), the bytes the signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Returns the envelope's only signature.
    ///
    /// # Errors
    ///
    /// [`DsseError::SignatureCount`] unless there is exactly one signature.
    pub fn single_signature(&self) -> Result<&EnvelopeSignature, DsseError> {
        match self.signatures.as_slice() {
            [only] => Ok(only),
            other => Err(DsseError::SignatureCount { count: other.len() }),
        }
    }

    pub(crate) fn from_raw(raw: RawEnvelope) -> Result<Self, DsseError> {
        // An empty payload is valid DSSE, so only absence is an error.
        let payload_text = raw.payload.ok_or_else(|| DsseError::Missing {
            field: "payload".to_owned(),
        })?;
        let payload = decode_proto_base64(&payload_text).ok_or_else(|| DsseError::Base64 {
            field: "payload".to_owned(),
        })?;
        let payload_type = raw
            .payload_type
            .filter(|payload_type| !payload_type.is_empty())
            .ok_or_else(|| DsseError::Missing {
                field: "payloadType".to_owned(),
            })?;
        let mut signatures = Vec::with_capacity(raw.signatures.len());
        for (i, signature) in raw.signatures.into_iter().enumerate() {
            let field = format!("signatures[{i}].sig");
            let text =
                signature
                    .sig
                    .filter(|sig| !sig.is_empty())
                    .ok_or_else(|| DsseError::Missing {
                        field: field.clone(),
                    })?;
            let sig = decode_proto_base64(&text).ok_or(DsseError::Base64 { field })?;
            signatures.push(EnvelopeSignature {
                keyid: signature.keyid.filter(|id| !id.is_empty()),
                sig,
            });
        }
        Ok(Envelope {
            payload,
            payload_type,
            signatures,
        })
    }
}

/// Computes the DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let payload_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        16usize
            .saturating_add(payload_type.len())
            .saturating_add(payload.len()),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Parses a standalone DSSE envelope JSON document.
///
/// # Errors
///
/// [`DsseError::Json`], [`DsseError::Missing`] or [`DsseError::Base64`].
pub fn parse_envelope(json: &[u8]) -> Result<Envelope, DsseError> {
    let raw: RawEnvelope = serde_json::from_slice(json).map_err(|e| DsseError::Json {
        detail: e.to_string(),
    })?;
    Envelope::from_raw(raw)
}

/// An envelope whose single signature verified under a given key.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedEnvelope<'a> {
    envelope: &'a Envelope,
}

impl<'a> VerifiedEnvelope<'a> {
    /// Returns the verified envelope.
    pub fn envelope(&self) -> &'a Envelope {
        self.envelope
    }

    /// Parses the payload as an in-toto Statement v1.
    ///
    /// # Errors
    ///
    /// [`DsseError::PayloadType`] for another payload type, [`DsseError::Statement`] when the
    /// payload is not a Statement v1 with at least one subject and a predicate type.
    pub fn statement(&self) -> Result<Statement, DsseError> {
        if self.envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(DsseError::PayloadType {
                payload_type: self.envelope.payload_type.clone(),
            });
        }
        parse_statement(&self.envelope.payload)
    }
}

/// Verifies the envelope's single signature over PAE with `key`.
///
/// # Errors
///
/// [`DsseError::SignatureCount`] or [`DsseError::SignatureInvalid`].
pub fn verify_envelope<'a>(
    envelope: &'a Envelope,
    key: &PublicKey,
) -> Result<VerifiedEnvelope<'a>, DsseError> {
    let signature = envelope.single_signature()?;
    key.verify(&envelope.pae(), &signature.sig)
        .map_err(|e| DsseError::SignatureInvalid {
            payload_type: envelope.payload_type.clone(),
            detail: e.to_string(),
        })?;
    Ok(VerifiedEnvelope { envelope })
}

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StatementSubject {
    pub name: String,
    /// The `sha256` digest, when the subject lists one.
    pub sha256: Option<[u8; 32]>,
}

/// The parts of an in-toto Statement v1 that verification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub predicate_type: String,
    pub subjects: Vec<StatementSubject>,
}

fn parse_statement(payload: &[u8]) -> Result<Statement, DsseError> {
    let statement_error = |detail: String| DsseError::Statement { detail };
    let raw: RawStatement =
        serde_json::from_slice(payload).map_err(|e| statement_error(e.to_string()))?;
    if raw.type_ != IN_TOTO_STATEMENT_V1 {
        return Err(statement_error(format!(
            "_type is {:?}, expected {IN_TOTO_STATEMENT_V1:?}",
            raw.type_
        )));
    }
    if raw.predicate_type.is_empty() {
        return Err(statement_error("predicateType is empty".to_owned()));
    }
    if raw.subject.is_empty() {
        return Err(statement_error("subject list is empty".to_owned()));
    }
    let mut subjects = Vec::with_capacity(raw.subject.len());
    for (i, subject) in raw.subject.into_iter().enumerate() {
        let sha256 = match subject.digest.get("sha256") {
            None => None,
            Some(text) => {
                let bytes = hex::decode(text).map_err(|_| {
                    statement_error(format!("subject[{i}].digest.sha256 is not hex: {text:?}"))
                })?;
                let digest: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    statement_error(format!(
                        "subject[{i}].digest.sha256 has {} bytes, expected 32",
                        bytes.len()
                    ))
                })?;
                Some(digest)
            }
        };
        subjects.push(StatementSubject {
            name: subject.name,
            sha256,
        });
    }
    Ok(Statement {
        predicate_type: raw.predicate_type,
        subjects,
    })
}

/// DSSE envelope JSON, shared with the bundle parser (the bundle's `dsseEnvelope` has the same
/// shape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawEnvelope {
    payload: Option<String>,
    payload_type: Option<String>,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    sig: Option<String>,
    keyid: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<RawSubject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: String,
    digest: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;

    fn test_key() -> (p256::ecdsa::SigningKey, PublicKey) {
        let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("valid scalar");
        let public = PublicKey::try_from(*signing.verifying_key()).expect("valid P-256 key");
        (signing, public)
    }

    fn signed_envelope(payload_type: &str, payload: &[u8]) -> Envelope {
        let (signing, _) = test_key();
        let signature: p256::ecdsa::DerSignature = signing.sign(&pae(payload_type, payload));
        Envelope {
            payload: payload.to_vec(),
            payload_type: payload_type.to_owned(),
            signatures: vec![EnvelopeSignature {
                keyid: None,
                sig: signature.to_bytes().to_vec(),
            }],
        }
    }

    #[test]
    fn pae_matches_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn parse_envelope_accepts_url_safe() {
        // payload bytes 0xfb 0xff encode as "-_8" in URL-safe base64.
        let json =
            br#"{"payload":"-_8","payloadType":"t","signatures":[{"sig":"+/8=","keyid":""}]}"#;
        let envelope = parse_envelope(json).expect("valid envelope");
        assert_eq!(envelope.payload, vec![0xfb, 0xff]);
        assert_eq!(envelope.signatures[0].sig, vec![0xfb, 0xff]);
        assert_eq!(envelope.signatures[0].keyid, None);
    }

    #[test]
    fn parse_envelope_rejects_bad_fields() {
        let rows: [(&str, &[u8], DsseError); 3] = [
            (
                "no payload type",
                br#"{"payload":"","signatures":[]}"#,
                DsseError::Missing {
                    field: "payloadType".to_owned(),
                },
            ),
            (
                "bad payload base64",
                br#"{"payload":"!","payloadType":"t"}"#,
                DsseError::Base64 {
                    field: "payload".to_owned(),
                },
            ),
            (
                "empty sig",
                br#"{"payload":"","payloadType":"t","signatures":[{"sig":""}]}"#,
                DsseError::Missing {
                    field: "signatures[0].sig".to_owned(),
                },
            ),
        ];
        for (name, json, want) in rows {
            assert_eq!(parse_envelope(json).expect_err(name), want, "row {name}");
        }
    }

    #[test]
    fn verify_envelope_then_statement() {
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a.txt","digest":{"sha256":"a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"}},{"name":"b","digest":{"sha512":"00"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
        let envelope = signed_envelope(IN_TOTO_PAYLOAD_TYPE, payload);
        let (_, key) = test_key();
        let verified = verify_envelope(&envelope, &key).expect("signature verifies");
        let statement = verified.statement().expect("statement parses");
        assert_eq!(statement.predicate_type, "https://slsa.dev/provenance/v1");
        assert_eq!(statement.subjects.len(), 2);
        assert_eq!(statement.subjects[0].name, "a.txt");
        assert_eq!(
            statement.subjects[0].sha256.map(hex::encode).as_deref(),
            Some("a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf")
        );
        assert_eq!(statement.subjects[1].sha256, None);
    }

    #[test]
    fn verify_envelope_rejects_tampering() {
        let (_, key) = test_key();
        let mut envelope = signed_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}");
        envelope.payload_type = "application/other".to_owned();
        let err = verify_envelope(&envelope, &key).expect_err("changed payload type");
        assert!(matches!(err, DsseError::SignatureInvalid { .. }), "{err:?}");
        assert_eq!(err.reason_code(), ReasonCode::DsseSignatureInvalid);

        let mut two = signed_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}");
        two.signatures.push(two.signatures[0].clone());
        assert_eq!(
            verify_envelope(&two, &key).expect_err("two signatures"),
            DsseError::SignatureCount { count: 2 }
        );
    }

    #[test]
    fn statement_rejects_bad_payloads() {
        let (_, key) = test_key();
        let rows: [(&str, &str, &[u8]); 4] = [
            ("other payload type", "application/json", b"{}"),
            ("not json", IN_TOTO_PAYLOAD_TYPE, b"[1"),
            (
                "wrong statement type",
                IN_TOTO_PAYLOAD_TYPE,
                br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{}}],"predicateType":"p"}"#,
            ),
            (
                "short digest",
                IN_TOTO_PAYLOAD_TYPE,
                br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"00"}}],"predicateType":"p"}"#,
            ),
        ];
        for (name, payload_type, payload) in rows {
            let envelope = signed_envelope(payload_type, payload);
            let verified = verify_envelope(&envelope, &key).expect("signature verifies");
            let err = verified.statement().expect_err(name);
            assert_eq!(
                err.reason_code(),
                ReasonCode::DssePayloadInvalid,
                "row {name}: {err}"
            );
        }
    }
}
