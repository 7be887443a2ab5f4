//! Sigstore bundle JSON, versions 0.1 to 0.3.
//!
//! Implements the protobuf JSON form of `sigstore/protobuf-specs` `sigstore_bundle.proto` and
//! `sigstore_rekor.proto`: lowerCamelCase keys, int64 values as strings (numbers are accepted too),
//! bytes as base64 (standard or URL-safe, padding optional). Unknown fields are ignored.
//!
//! Structural rules enforced here, per bundle version:
//! - v0.1 and v0.2 carry `x509CertificateChain` or `publicKey`, and v0.3 carries one leaf
//!   `certificate` or `publicKey`.
//! - v0.1 requires an inclusion promise on each tlog entry, and v0.2 and later require an
//!   inclusion proof with a non-empty checkpoint.
//! - A bundle has exactly one of `messageSignature` and `dsseEnvelope`. A message signature must
//!   carry its `messageDigest`, because verification works from digests and never reads the
//!   artifact.
//!
//! Left out: nothing of the bundle is dropped except certificates after the leaf in an
//! `x509CertificateChain`, which the bundle spec says verifiers should ignore (the chain always
//! comes from the trusted root).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::Digest as _;
use thiserror::Error;

use crate::dsse::{DsseError, Envelope};
use crate::merkle::Hash;
use crate::reason::{HasReasonCode, ReasonCode};

mod json;

use json::{
    RawBundle, RawInclusionProof, RawInt64, RawMessageSignature, RawTlogEntry,
    RawVerificationMaterial,
};

/// Media type of bundle v0.3 in its current spelling.
pub const MEDIA_TYPE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Largest `logIndex` accepted: 2^53 - 1. Verification reports are RFC 8785 JSON, which carries
/// numbers as IEEE doubles, so a larger index could not be reported exactly.
pub const MAX_LOG_INDEX: u64 = (1 << 53) - 1;

/// Maximum number of tlog entries and of RFC 3161 timestamps in one bundle (sigstore-go's limit).
pub const MAX_ENTRIES: usize = 32;

/// Errors from parsing a Sigstore bundle. All map to `ERR_SIGSTORE_BUNDLE_INVALID`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// The document is not JSON of the expected shape.
    #[error("Sigstore bundle is not valid JSON: {detail}")]
    Json { detail: String },
    /// The media type is not a supported bundle version.
    #[error(
        "Sigstore bundle media type {media_type:?} is not supported (expected bundle v0.1, v0.2 or v0.3)"
    )]
    MediaType { media_type: String },
    /// A required field is absent or empty.
    #[error("Sigstore bundle field {field} is missing")]
    Missing { field: String },
    /// A field has a value this verifier rejects.
    #[error("Sigstore bundle field {field} is invalid: {reason}")]
    Invalid { field: String, reason: String },
    /// A bytes field is not valid base64.
    #[error("Sigstore bundle field {field} is not valid base64")]
    Base64 { field: String },
    /// A list is longer than the verifier accepts.
    #[error("Sigstore bundle field {field} has {count} items, the maximum is {max}")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    /// The DSSE envelope is malformed.
    #[error("Sigstore bundle field dsseEnvelope is invalid: {source}")]
    Envelope { source: DsseError },
}

impl HasReasonCode for BundleError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            BundleError::Json { .. }
            | BundleError::MediaType { .. }
            | BundleError::Missing { .. }
            | BundleError::Invalid { .. }
            | BundleError::Base64 { .. }
            | BundleError::TooMany { .. }
            | BundleError::Envelope { .. } => ReasonCode::SigstoreBundleInvalid,
        }
    }
}

/// Bundle format version, from the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    V0_1,
    V0_2,
    V0_3,
}

impl BundleVersion {
    /// Maps a bundle media type to its version, or `None` for unsupported media types.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Some(BundleVersion::V0_1),
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Some(BundleVersion::V0_2),
            "application/vnd.dev.sigstore.bundle+json;version=0.3" | MEDIA_TYPE_V0_3 => {
                Some(BundleVersion::V0_3)
            }
            _ => None,
        }
    }
}

/// Hash algorithms of `sigstore_common.proto` that this verifier supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashAlgorithm {
    Sha2_256,
    Sha2_384,
    Sha2_512,
}

impl HashAlgorithm {
    /// Parses the protobuf enum name, such as `SHA2_256`.
    pub fn from_proto_name(name: &str) -> Option<Self> {
        match name {
            "SHA2_256" => Some(HashAlgorithm::Sha2_256),
            "SHA2_384" => Some(HashAlgorithm::Sha2_384),
            "SHA2_512" => Some(HashAlgorithm::Sha2_512),
            _ => None,
        }
    }

    /// Returns the protobuf enum name.
    pub fn proto_name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha2_256 => "SHA2_256",
            HashAlgorithm::Sha2_384 => "SHA2_384",
            HashAlgorithm::Sha2_512 => "SHA2_512",
        }
    }

    /// Returns the digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha2_256 => 32,
            HashAlgorithm::Sha2_384 => 48,
            HashAlgorithm::Sha2_512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha2_256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha2_384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha2_512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// The signer's key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// DER leaf certificate: v0.3 `certificate`, or the first of a v0.1/v0.2 `x509CertificateChain`.
    Certificate(Vec<u8>),
    /// A managed key, named by its hint (may be empty).
    PublicKey { hint: String },
}

/// `InclusionProof` of a tlog entry. Verification trusts only the checkpoint, the hashes and the
/// top-level log index. It rejects a proof whose `root_hash` and `tree_size` differ from its
/// checkpoint's, or (Rekor v2) whose `log_index` differs from the entry's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub log_index: u64,
    pub root_hash: Vec<u8>,
    pub tree_size: u64,
    pub hashes: Vec<Hash>,
    /// `checkpoint.envelope`: the signed note, verbatim.
    pub checkpoint: String,
}

/// `TransparencyLogEntry` of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    /// Top-level log index (for Rekor v2 the index in the whole log).
    pub log_index: u64,
    /// `logId.keyId`.
    pub log_id: Vec<u8>,
    /// `kindVersion.kind`, such as `hashedrekord`.
    pub kind: String,
    /// `kindVersion.version`, such as `0.0.2`.
    pub version: String,
    /// Always 0 for Rekor v2. Rekor v1 times are trusted only through a verified inclusion promise.
    pub integrated_time: i64,
    /// `inclusionPromise.signedEntryTimestamp` (Rekor v1).
    pub inclusion_promise: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    /// `canonicalizedBody`: the logged entry bytes, when present.
    pub canonicalized_body: Option<Vec<u8>>,
}

/// `MessageDigest` of a message signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDigest {
    pub algorithm: HashAlgorithm,
    pub digest: Vec<u8>,
}

/// `MessageSignature`: a signature over an artifact, given by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    pub digest: MessageDigest,
    pub signature: Vec<u8>,
}

/// The signed content of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleContent {
    MessageSignature(MessageSignature),
    Dsse(Envelope),
}

impl BundleContent {
    /// Returns the signature bytes that RFC 3161 timestamps cover: the message signature, or the
    /// DSSE envelope's first signature (`None` when the envelope has none).
    pub fn signature_bytes(&self) -> Option<&[u8]> {
        match self {
            BundleContent::MessageSignature(message) => Some(&message.signature),
            BundleContent::Dsse(envelope) => envelope.signatures.first().map(|s| s.sig.as_slice()),
        }
    }
}

/// A parsed Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreBundle {
    pub media_type: String,
    pub version: BundleVersion,
    pub key_material: KeyMaterial,
    pub tlog_entries: Vec<TlogEntry>,
    /// DER `TimeStampResp` values of `timestampVerificationData.rfc3161Timestamps`.
    pub rfc3161_timestamps: Vec<Vec<u8>>,
    pub content: BundleContent,
}

impl SigstoreBundle {
    /// Returns the DER leaf certificate, when the bundle is signed with a certificate.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        match &self.key_material {
            KeyMaterial::Certificate(der) => Some(der),
            KeyMaterial::PublicKey { .. } => None,
        }
    }

    /// Returns the public key hint, when the bundle is signed with a managed key.
    pub fn public_key_hint(&self) -> Option<&str> {
        match &self.key_material {
            KeyMaterial::Certificate(_) => None,
            KeyMaterial::PublicKey { hint } => Some(hint),
        }
    }
}

/// Parses a Sigstore bundle JSON document (a trailing newline is fine).
///
/// # Errors
///
/// A [`BundleError`] naming the faulty field: malformed JSON, an unsupported media type, a
/// missing or invalid field, invalid base64, too many entries, or a violation of the per-version
/// rules listed in the module docs.
pub fn parse_bundle(json: &[u8]) -> Result<SigstoreBundle, BundleError> {
    let raw: RawBundle = serde_json::from_slice(json).map_err(|e| BundleError::Json {
        detail: e.to_string(),
    })?;
    let media_type = raw.media_type.unwrap_or_default();
    let version =
        BundleVersion::from_media_type(&media_type).ok_or_else(|| BundleError::MediaType {
            media_type: media_type.clone(),
        })?;

    let material = raw
        .verification_material
        .ok_or_else(|| missing("verificationMaterial"))?;
    let key_material = convert_key_material(&material, version)?;

    if material.tlog_entries.len() > MAX_ENTRIES {
        return Err(BundleError::TooMany {
            field: "verificationMaterial.tlogEntries".to_owned(),
            count: material.tlog_entries.len(),
            max: MAX_ENTRIES,
        });
    }
    let mut tlog_entries = Vec::with_capacity(material.tlog_entries.len());
    for (i, entry) in material.tlog_entries.into_iter().enumerate() {
        let field = format!("verificationMaterial.tlogEntries[{i}]");
        tlog_entries.push(convert_tlog_entry(entry, &field, version)?);
    }

    let timestamps = material
        .timestamp_verification_data
        .map(|data| data.rfc3161_timestamps)
        .unwrap_or_default();
    if timestamps.len() > MAX_ENTRIES {
        return Err(BundleError::TooMany {
            field: "verificationMaterial.timestampVerificationData.rfc3161Timestamps".to_owned(),
            count: timestamps.len(),
            max: MAX_ENTRIES,
        });
    }
    let mut rfc3161_timestamps = Vec::with_capacity(timestamps.len());
    for (i, timestamp) in timestamps.into_iter().enumerate() {
        let field = format!(
            "verificationMaterial.timestampVerificationData.rfc3161Timestamps[{i}].signedTimestamp"
        );
        rfc3161_timestamps.push(decode_required(
            timestamp.signed_timestamp.as_deref(),
            &field,
        )?);
    }

    let content = match (raw.message_signature, raw.dsse_envelope) {
        (Some(message), None) => {
            BundleContent::MessageSignature(convert_message_signature(message)?)
        }
        (None, Some(envelope)) => BundleContent::Dsse(
            Envelope::from_raw(envelope).map_err(|source| BundleError::Envelope { source })?,
        ),
        (None, None) => return Err(missing("messageSignature or dsseEnvelope")),
        (Some(_), Some(_)) => {
            return Err(BundleError::Invalid {
                field: "messageSignature, dsseEnvelope".to_owned(),
                reason: "a bundle carries exactly one of them".to_owned(),
            });
        }
    };

    Ok(SigstoreBundle {
        media_type,
        version,
        key_material,
        tlog_entries,
        rfc3161_timestamps,
        content,
    })
}

/// Decodes protobuf JSON bytes: standard or URL-safe base64, with or without padding. Line breaks
/// are skipped, as Go's protojson reader (and so sigstore-go) skips them: some published bundles
/// wrap base64 at 76 columns.
pub(crate) fn decode_proto_base64(text: &str) -> Option<Vec<u8>> {
    const INDIFFERENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);
    // Most fields are standard base64 on one line: one pass decodes them, and the scans below
    // run only for text that pass rejects. Text that decodes here contains no '-', '_' or line
    // break, so the scans would have chosen the same engine and input.
    if let Ok(bytes) = STANDARD.decode(text) {
        return Some(bytes);
    }
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    if text.contains(['\n', '\r']) {
        let joined: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
        engine.decode(joined).ok()
    } else {
        engine.decode(text).ok()
    }
}

fn missing(field: &str) -> BundleError {
    BundleError::Missing {
        field: field.to_owned(),
    }
}

fn decode_required(text: Option<&str>, field: &str) -> Result<Vec<u8>, BundleError> {
    match text {
        Some(text) if !text.is_empty() => {
            decode_proto_base64(text).ok_or_else(|| BundleError::Base64 {
                field: field.to_owned(),
            })
        }
        _ => Err(missing(field)),
    }
}

fn convert_key_material(
    material: &RawVerificationMaterial,
    version: BundleVersion,
) -> Result<KeyMaterial, BundleError> {
    let field = "verificationMaterial";
    match (
        &material.certificate,
        &material.x509_certificate_chain,
        &material.public_key,
    ) {
        (Some(cert), None, None) => {
            if version < BundleVersion::V0_3 {
                return Err(BundleError::Invalid {
                    field: format!("{field}.certificate"),
                    reason: "only bundle v0.3 carries a single certificate".to_owned(),
                });
            }
            let der = decode_required(
                cert.raw_bytes.as_deref(),
                &format!("{field}.certificate.rawBytes"),
            )?;
            Ok(KeyMaterial::Certificate(der))
        }
        (None, Some(chain), None) => {
            if version >= BundleVersion::V0_3 {
                return Err(BundleError::Invalid {
                    field: format!("{field}.x509CertificateChain"),
                    reason: "bundle v0.3 carries one leaf certificate, not a chain".to_owned(),
                });
            }
            let leaf = chain
                .certificates
                .first()
                .ok_or_else(|| missing(&format!("{field}.x509CertificateChain.certificates")))?;
            let der = decode_required(
                leaf.raw_bytes.as_deref(),
                &format!("{field}.x509CertificateChain.certificates[0].rawBytes"),
            )?;
            Ok(KeyMaterial::Certificate(der))
        }
        (None, None, Some(key)) => Ok(KeyMaterial::PublicKey {
            hint: key.hint.clone().unwrap_or_default(),
        }),
        (None, None, None) => Err(missing(
            "verificationMaterial.certificate, x509CertificateChain or publicKey",
        )),
        _ => Err(BundleError::Invalid {
            field: field.to_owned(),
            reason: "more than one of certificate, x509CertificateChain and publicKey".to_owned(),
        }),
    }
}

fn convert_tlog_entry(
    raw: RawTlogEntry,
    field: &str,
    version: BundleVersion,
) -> Result<TlogEntry, BundleError> {
    let log_index = convert_index(raw.log_index, &format!("{field}.logIndex"))?;
    let log_id = decode_required(
        raw.log_id.and_then(|id| id.key_id).as_deref(),
        &format!("{field}.logId.keyId"),
    )?;
    let kind_version = raw
        .kind_version
        .ok_or_else(|| missing(&format!("{field}.kindVersion")))?;
    let kind = kind_version
        .kind
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| missing(&format!("{field}.kindVersion.kind")))?;
    let kind_version_version = kind_version
        .version
        .filter(|version| !version.is_empty())
        .ok_or_else(|| missing(&format!("{field}.kindVersion.version")))?;
    let integrated_time = match raw.integrated_time {
        Some(value) => value.to_i64(&format!("{field}.integratedTime"))?,
        None => 0,
    };

    let inclusion_promise = match raw.inclusion_promise {
        Some(promise) => Some(decode_required(
            promise.signed_entry_timestamp.as_deref(),
            &format!("{field}.inclusionPromise.signedEntryTimestamp"),
        )?),
        None => None,
    };
    let inclusion_proof = match raw.inclusion_proof {
        Some(proof) => Some(convert_inclusion_proof(
            proof,
            &format!("{field}.inclusionProof"),
        )?),
        None => None,
    };
    let canonicalized_body = match raw.canonicalized_body {
        Some(body) => Some(decode_required(
            Some(&body),
            &format!("{field}.canonicalizedBody"),
        )?),
        None => None,
    };

    if version == BundleVersion::V0_1 && inclusion_promise.is_none() {
        return Err(BundleError::Missing {
            field: format!("{field}.inclusionPromise (required by bundle v0.1)"),
        });
    }
    if version >= BundleVersion::V0_2 && inclusion_proof.is_none() {
        return Err(BundleError::Missing {
            field: format!("{field}.inclusionProof (required by bundle v0.2 and later)"),
        });
    }

    Ok(TlogEntry {
        log_index,
        log_id,
        kind,
        version: kind_version_version,
        integrated_time,
        inclusion_promise,
        inclusion_proof,
        canonicalized_body,
    })
}

fn convert_inclusion_proof(
    raw: RawInclusionProof,
    field: &str,
) -> Result<InclusionProof, BundleError> {
    let log_index = convert_index(raw.log_index, &format!("{field}.logIndex"))?;
    let tree_size = match raw.tree_size {
        Some(value) => value.to_u64(&format!("{field}.treeSize"))?,
        None => return Err(missing(&format!("{field}.treeSize"))),
    };
    let root_hash = decode_required(raw.root_hash.as_deref(), &format!("{field}.rootHash"))?;
    let mut hashes = Vec::with_capacity(raw.hashes.len());
    for (i, text) in raw.hashes.iter().enumerate() {
        let hash_field = format!("{field}.hashes[{i}]");
        let bytes = decode_required(Some(text), &hash_field)?;
        let hash: Hash = bytes
            .as_slice()
            .try_into()
            .map_err(|_| BundleError::Invalid {
                field: hash_field,
                reason: format!("hash has {} bytes, expected 32", bytes.len()),
            })?;
        hashes.push(hash);
    }
    let checkpoint = raw
        .checkpoint
        .and_then(|checkpoint| checkpoint.envelope)
        .filter(|envelope| !envelope.is_empty())
        .ok_or_else(|| missing(&format!("{field}.checkpoint.envelope")))?;
    Ok(InclusionProof {
        log_index,
        root_hash,
        tree_size,
        hashes,
        checkpoint,
    })
}

fn convert_message_signature(raw: RawMessageSignature) -> Result<MessageSignature, BundleError> {
    let field = "messageSignature";
    let digest = raw
        .message_digest
        .ok_or_else(|| missing("messageSignature.messageDigest"))?;
    let algorithm_name = digest.algorithm.unwrap_or_default();
    let algorithm =
        HashAlgorithm::from_proto_name(&algorithm_name).ok_or_else(|| BundleError::Invalid {
            field: format!("{field}.messageDigest.algorithm"),
            reason: format!("hash algorithm {algorithm_name:?} is not supported"),
        })?;
    let digest_bytes = decode_required(
        digest.digest.as_deref(),
        &format!("{field}.messageDigest.digest"),
    )?;
    if digest_bytes.len() != algorithm.output_len() {
        return Err(BundleError::Invalid {
            field: format!("{field}.messageDigest.digest"),
            reason: format!(
                "{} digest has {} bytes, expected {}",
                algorithm.proto_name(),
                digest_bytes.len(),
                algorithm.output_len()
            ),
        });
    }
    let signature = decode_required(raw.signature.as_deref(), &format!("{field}.signature"))?;
    Ok(MessageSignature {
        digest: MessageDigest {
            algorithm,
            digest: digest_bytes,
        },
        signature,
    })
}

fn convert_index(value: Option<RawInt64>, field: &str) -> Result<u64, BundleError> {
    let value = value.ok_or_else(|| missing(field))?.to_u64(field)?;
    if value > MAX_LOG_INDEX {
        return Err(BundleError::Invalid {
            field: field.to_owned(),
            reason: format!("{value} exceeds the supported maximum {MAX_LOG_INDEX}"),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFORMANCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-conformance/bundle-verify"
    );

    fn read_case(case: &str) -> Option<Vec<u8>> {
        let path = format!("{CONFORMANCE}/{case}/bundle.sigstore.json");
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                crate::test_vectors::skip_or_fail(&format!("vector {path} not readable: {e}"));
                None
            }
        }
    }

    #[test]
    fn parse_rekor2_happy_path_fields() {
        let Some(json) = read_case("rekor2-happy-path") else {
            return;
        };
        let bundle = parse_bundle(&json).expect("bundle parses");
        assert_eq!(bundle.version, BundleVersion::V0_3);
        assert!(bundle.certificate_der().is_some_and(|der| der.len() > 1000));
        assert_eq!(bundle.tlog_entries.len(), 1);
        let entry = &bundle.tlog_entries[0];
        assert_eq!(entry.log_index, 735);
        assert_eq!(
            (entry.kind.as_str(), entry.version.as_str()),
            ("hashedrekord", "0.0.2")
        );
        let proof = entry.inclusion_proof.as_ref().expect("proof present");
        assert_eq!((proof.tree_size, proof.hashes.len()), (736, 8));
        assert!(
            proof
                .checkpoint
                .starts_with("log2025-alpha1.rekor.sigstage.dev\n736\n")
        );
        assert_eq!(bundle.rfc3161_timestamps.len(), 1);
        let BundleContent::MessageSignature(message) = &bundle.content else {
            panic!("expected a message signature, got {:?}", bundle.content);
        };
        assert_eq!(
            hex::encode(&message.digest.digest),
            "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
        );
    }

    #[test]
    fn parse_accepts_trailing_newline() {
        let Some(mut json) = read_case("rekor2-dsse-happy-path") else {
            return;
        };
        json.extend_from_slice(b"\n");
        let bundle = parse_bundle(&json).expect("bundle parses");
        assert!(matches!(bundle.content, BundleContent::Dsse(_)));
    }

    #[test]
    fn parse_rejects_unknown_top_level_field() {
        let Some(json) = read_case("rekor2-happy-path") else {
            return;
        };
        let mut value: serde_json::Value = serde_json::from_slice(&json).expect("bundle JSON");
        value["extra"] = serde_json::Value::Bool(true);
        let tampered = serde_json::to_vec(&value).expect("serialize bundle");
        let error = parse_bundle(&tampered).expect_err("unknown field accepted");
        assert!(
            matches!(&error, BundleError::Json { detail } if detail.contains("unknown field `extra`")),
            "{error:?}"
        );
        assert_eq!(error.reason_code(), ReasonCode::SigstoreBundleInvalid);
    }

    #[test]
    fn parse_rejects_conformance_failures() {
        let rows = [
            ("unknown version", "bundle-unknown-version_fail"),
            ("malformed json", "bundle-malformed-json_fail"),
            ("no inclusion proof", "rekor2-no-inclusion-proof_fail"),
        ];
        for (name, case) in rows {
            let Some(json) = read_case(case) else { return };
            let err = parse_bundle(&json).expect_err(name);
            assert_eq!(
                err.reason_code(),
                ReasonCode::SigstoreBundleInvalid,
                "row {name}: {err}"
            );
        }
    }

    #[test]
    fn parse_rejects_bad_structure() {
        let digest = r#""messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"oM/HEnHW4njlfNMy/5V8P3BD/do1TEy7GQow1W76Ab8="},"signature":"MEUC"}"#;
        type Row = (&'static str, String, fn(&BundleError) -> bool);
        let rows: [Row; 6] = [
            (
                "media type",
                r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.4+json"}"#.to_owned(),
                |e| matches!(e, BundleError::MediaType { .. }),
            ),
            (
                "chain in v0.3",
                format!(
                    r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"x509CertificateChain":{{"certificates":[{{"rawBytes":"AA=="}}]}}}},{digest}}}"#
                ),
                |e| matches!(e, BundleError::Invalid { .. }),
            ),
            (
                "no content",
                format!(
                    r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"publicKey":{{"hint":"k"}}}}}}"#
                ),
                |e| matches!(e, BundleError::Missing { .. }),
            ),
            (
                "negative index",
                format!(
                    r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"publicKey":{{}},"tlogEntries":[{{"logIndex":"-1"}}]}},{digest}}}"#
                ),
                |e| matches!(e, BundleError::Invalid { .. }),
            ),
            (
                "short digest",
                format!(
                    r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"publicKey":{{}}}},"messageSignature":{{"messageDigest":{{"algorithm":"SHA2_256","digest":"AAAA"}},"signature":"MEUC"}}}}"#
                ),
                |e| matches!(e, BundleError::Invalid { .. }),
            ),
            (
                "bad base64",
                format!(
                    r#"{{"mediaType":"{MEDIA_TYPE_V0_3}","verificationMaterial":{{"certificate":{{"rawBytes":"!!"}}}},{digest}}}"#
                ),
                |e| matches!(e, BundleError::Base64 { .. }),
            ),
        ];
        for (name, json, check) in rows {
            let err = parse_bundle(json.as_bytes()).expect_err(name);
            assert!(check(&err), "row {name}: unexpected error {err:?}");
        }
    }

    #[test]
    fn base64_accepts_both_alphabets() {
        assert_eq!(decode_proto_base64("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_proto_base64("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_proto_base64("+_8="), None);
        assert_eq!(
            decode_proto_base64("AAEC\nAwQF\r\n"),
            Some(vec![0, 1, 2, 3, 4, 5])
        );
        assert_eq!(decode_proto_base64("AAEC AwQF"), None);
    }
}
