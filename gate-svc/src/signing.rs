//! The gate's P-256 signing key and the DSSE envelopes it signs decision records with.
//!
//! Each record becomes the predicate of an in-toto Statement v1 whose subjects are the
//! promotion's artifact digests. The statement is the payload of a DSSE envelope with payload
//! type `application/vnd.in-toto+json` and one ECDSA P-256 SHA-256 signature in ASN.1 DER over
//! PAE(payloadType, payload), the form Sigstore uses. The envelope's `keyid` is the lowercase hex
//! SHA-256 of the key's DER SubjectPublicKeyInfo.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::Serialize;
use sha2::{Digest, Sha256};
use stella_verify::dsse::{IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V1, pae};

/// `predicateType` of the statements that carry decision records. It names the record format
/// and is never fetched.
pub const DECISION_PREDICATE_TYPE: &str = "https://stella.dev/decision-record/v3";

/// Name of the key file that the gate generates in its data directory when no key is given.
pub const GENERATED_KEY_FILE: &str = "signing-key.pem";

/// Errors loading, generating or using the signing key. Messages name the file and never
/// contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{file}: cannot read the signing key: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: invalid signing key: expected a P-256 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\"): {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file}: cannot write the generated signing key: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate the signing key: {0}")]
    Generate(String),
    #[error("cannot encode the signing key: {0}")]
    Encode(String),
    #[error("cannot serialize the signed statement: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Origin of the signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The file given with `--signing-key`.
    Given(PathBuf),
    /// The key generated earlier in the data directory.
    Reused(PathBuf),
    /// A key generated now and written to the data directory.
    Generated(PathBuf),
}

/// The gate's signing key with its public key PEM and key id.
pub struct RecordSigner {
    key: SigningKey,
    key_id: String,
    public_key_pem: String,
}

impl std::fmt::Debug for RecordSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct StatementSubject<'a> {
    name: &'a str,
    digest: SubjectDigest<'a>,
}

#[derive(Serialize)]
struct SubjectDigest<'a> {
    sha256: &'a str,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    statement_type: &'static str,
    subject: Vec<StatementSubject<'a>>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: serde_json::Value,
}

#[derive(Serialize)]
struct EnvelopeSignature<'a> {
    keyid: &'a str,
    sig: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: &'static str,
    signatures: [EnvelopeSignature<'a>; 1],
}

impl RecordSigner {
    /// Wraps a signing key.
    ///
    /// # Errors
    ///
    /// [`SigningError::Encode`] when the public key cannot be encoded.
    pub fn new(key: SigningKey) -> Result<Self, SigningError> {
        let verifying = key.verifying_key();
        let spki_der = verifying
            .to_public_key_der()
            .map_err(|error| SigningError::Encode(error.to_string()))?;
        let public_key_pem = verifying
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| SigningError::Encode(error.to_string()))?;
        Ok(RecordSigner {
            key,
            key_id: key_id(spki_der.as_bytes()),
            public_key_pem,
        })
    }

    /// Loads the key from `given` (`--signing-key`) or, without it, from
    /// `<data_dir>/signing-key.pem`, generating that file (mode 0600) on the first start.
    ///
    /// # Errors
    ///
    /// [`SigningError`] naming the file when it cannot be read, parsed or written.
    pub fn load_or_generate(given: Option<&Path>, data_dir: &Path) -> Result<(Self, KeySource), SigningError> {
        if let Some(path) = given {
            return Ok((Self::from_pem_file(path)?, KeySource::Given(path.to_owned())));
        }
        let path = data_dir.join(GENERATED_KEY_FILE);
        if path.exists() {
            return Ok((Self::from_pem_file(&path)?, KeySource::Reused(path)));
        }
        let key = stella_access::generate_signing_key().map_err(|error| SigningError::Generate(error.to_string()))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| SigningError::Encode(error.to_string()))?;
        write_new_private_file(&path, pem.as_bytes())?;
        Ok((Self::new(key)?, KeySource::Generated(path)))
    }

    /// Reads a PKCS#8 PEM P-256 private key file.
    ///
    /// # Errors
    ///
    /// [`SigningError::Read`] or [`SigningError::Invalid`], naming `path`.
    pub fn from_pem_file(path: &Path) -> Result<Self, SigningError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Read {
            file: file.clone(),
            source,
        })?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|error| SigningError::Invalid {
            file,
            reason: error.to_string(),
        })?;
        Self::new(key)
    }

    /// Returns the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns the public key as SPKI PEM.
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Signs a record: wraps `record_json` as the predicate of an in-toto statement about the
    /// promotion's subjects and returns the canonical JSON of the DSSE envelope.
    ///
    /// `subject_digests` are "sha256:<hex>" strings; each becomes one subject named
    /// `promotion_id`.
    ///
    /// # Errors
    ///
    /// [`SigningError::Serialize`] when `record_json` is not JSON or serialization fails.
    pub fn sign_record(
        &self,
        promotion_id: &str,
        subject_digests: &[String],
        record_json: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        let statement = Statement {
            statement_type: IN_TOTO_STATEMENT_V1,
            subject: subject_digests
                .iter()
                .map(|digest| StatementSubject {
                    name: promotion_id,
                    digest: SubjectDigest {
                        // Promotion::new accepts only "sha256:<64 hex>" subjects.
                        sha256: digest.strip_prefix("sha256:").unwrap_or(digest),
                    },
                })
                .collect(),
            predicate_type: DECISION_PREDICATE_TYPE,
            predicate: serde_json::from_slice(record_json)?,
        };
        let payload = serde_json_canonicalizer::to_vec(&statement)?;
        let signature: DerSignature = self.key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
        let envelope = Envelope {
            payload: STANDARD.encode(&payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE,
            signatures: [EnvelopeSignature {
                keyid: &self.key_id,
                sig: STANDARD.encode(signature.as_bytes()),
            }],
        };
        Ok(serde_json_canonicalizer::to_vec(&envelope)?)
    }
}

/// Returns the key id of a public key: the lowercase hex SHA-256 of its DER
/// SubjectPublicKeyInfo.
pub fn key_id(spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(spki_der))
}

/// Writes `bytes` to `path`, readable by the owner only, without replacing an existing file.
///
/// The bytes go to a temporary file first and are hard-linked into place, so a crash never
/// leaves a partial key at `path`, and a key that another process wrote first is kept.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    let write_error = |source| SigningError::Write {
        file: path.display().to_string(),
        source,
    };
    let temporary = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    linked.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use stella_verify::dsse::{parse_envelope, verify_envelope};
    use stella_verify::x509::PublicKey;

    use super::*;

    fn signer(seed: u8) -> RecordSigner {
        RecordSigner::new(SigningKey::from_slice(&[seed; 32]).expect("valid scalar")).expect("signer")
    }

    fn public_key(signer: &RecordSigner) -> PublicKey {
        let der = signer.key.verifying_key().to_public_key_der().expect("encode");
        PublicKey::from_spki_der(der.as_bytes()).expect("P-256 key")
    }

    fn signed() -> Vec<u8> {
        let subjects = vec![format!("sha256:{}", "ab".repeat(32))];
        signer(7)
            .sign_record("rel-1", &subjects, br#"{"decision":"allow","sequence":1}"#)
            .expect("sign")
    }

    #[test]
    fn envelope_verifies_with_own_key() {
        let envelope = parse_envelope(&signed()).expect("parse envelope");
        let verified = verify_envelope(&envelope, &public_key(&signer(7))).expect("signature verifies");
        let statement = verified.statement().expect("in-toto statement");
        assert_eq!(statement.predicate_type, DECISION_PREDICATE_TYPE);
        assert_eq!(statement.subjects.len(), 1);
        assert_eq!(statement.subjects[0].name, "rel-1");
        assert_eq!(statement.subjects[0].sha256, Some([0xab; 32]));
        assert_eq!(envelope.signatures[0].keyid.as_deref(), Some(signer(7).key_id()));
    }

    #[test]
    fn envelope_fails_other_key() {
        let envelope = parse_envelope(&signed()).expect("parse envelope");
        assert!(verify_envelope(&envelope, &public_key(&signer(8))).is_err());
    }

    #[test]
    fn predicate_is_record_bytes() {
        let envelope = parse_envelope(&signed()).expect("parse envelope");
        let statement: serde_json::Value = serde_json::from_slice(&envelope.payload).expect("payload JSON");
        let predicate = serde_json_canonicalizer::to_vec(&statement["predicate"]).expect("canonicalize");
        assert_eq!(predicate, br#"{"decision":"allow","sequence":1}"#.to_vec());
    }

    #[test]
    fn key_generated_once_then_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, source) = RecordSigner::load_or_generate(None, dir.path()).expect("generate");
        let path = dir.path().join(GENERATED_KEY_FILE);
        assert_eq!(source, KeySource::Generated(path.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("key file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        let (second, source) = RecordSigner::load_or_generate(None, dir.path()).expect("reuse");
        assert_eq!(source, KeySource::Reused(path));
        assert_eq!(first.key_id(), second.key_id());
        assert!(!dir.path().join("signing-key.pem.tmp").exists());
    }

    #[test]
    fn invalid_key_file_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, "not a key").expect("write");
        let error = RecordSigner::load_or_generate(Some(&path), dir.path()).expect_err("accepted");
        let message = error.to_string();
        assert!(message.contains("bad.pem"), "{message}");
        assert!(message.contains("PKCS#8"), "{message}");
        assert!(!dir.path().join(GENERATED_KEY_FILE).exists(), "a given key must not generate one");
    }
}
