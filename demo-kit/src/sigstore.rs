//! Sigstore JSON documents of the kit: the Rekor v2 log entry, bundles v0.3 and the trusted root.
//!
//! Shapes follow sigstore/protobuf-specs (`sigstore_bundle.proto`, `sigstore_rekor.proto`,
//! `sigstore_trustroot.proto`) in proto3 JSON: lowerCamelCase keys, int64 values as decimal
//! strings, bytes as padded standard base64. The log entry is the RFC 8785 canonical JSON of a
//! Rekor v2 `hashedrekord` v0.0.2 entry with an X.509 certificate verifier, the form Rekor v2
//! logs and returns as `canonicalizedBody`. Only ECDSA P-256 signers with SHA-256 are produced.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Media type of the bundles the kit writes.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Media type of the kit's trusted root, the one the public Sigstore trusted roots use.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// DSSE payload type of in-toto statements, the only one Sigstore accepts.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Serializes a value as RFC 8785 canonical JSON.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value).context("canonical JSON encoding failed")
}

/// Serializes a document for a file: indented JSON with a final newline.
pub fn pretty_json(value: &Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).context("JSON encoding failed")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Builds the canonical Rekor v2 entry for a SHA-256 digest signed by a P-256 certificate.
///
/// For a message signature, `digest` is SHA-256 of the artifact. For a DSSE envelope, `digest` is
/// SHA-256 of the envelope's pre-authentication encoding and `signature` is the DSSE signature.
pub fn hashedrekord_entry(digest: &[u8; 32], signature: &[u8], certificate_der: &[u8]) -> Result<Vec<u8>> {
    let entry = json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {
            "hashedRekordV002": {
                "data": { "algorithm": "SHA2_256", "digest": STANDARD.encode(digest) },
                "signature": {
                    "content": STANDARD.encode(signature),
                    "verifier": {
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                        "x509Certificate": { "rawBytes": STANDARD.encode(certificate_der) },
                    },
                },
            },
        },
    });
    canonical_json(&entry)
}

/// A log entry's position and its inclusion proof against a signed checkpoint.
pub struct TlogEntry<'a> {
    pub log_index: u64,
    /// Full 32-byte log key ID (`logId.keyId`).
    pub log_id: &'a [u8; 32],
    /// Canonical entry bytes, the leaf data.
    pub body: &'a [u8],
    pub tree_size: u64,
    pub root_hash: &'a [u8; 32],
    /// Audit path, the leaf's sibling first.
    pub proof: &'a [[u8; 32]],
    /// Signed checkpoint note covering `tree_size`.
    pub checkpoint: &'a str,
}

impl TlogEntry<'_> {
    fn to_json(&self) -> Value {
        let hashes: Vec<String> = self.proof.iter().map(|hash| STANDARD.encode(hash)).collect();
        json!({
            "logIndex": self.log_index.to_string(),
            "logId": { "keyId": STANDARD.encode(self.log_id) },
            "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
            "inclusionProof": {
                "logIndex": self.log_index.to_string(),
                "rootHash": STANDARD.encode(self.root_hash),
                "treeSize": self.tree_size.to_string(),
                "hashes": hashes,
                "checkpoint": { "envelope": self.checkpoint },
            },
            "canonicalizedBody": STANDARD.encode(self.body),
        })
    }
}

/// Signed content of a bundle.
pub enum BundleContent<'a> {
    /// A signature over an artifact whose SHA-256 is `digest`.
    MessageSignature { digest: &'a [u8; 32], signature: &'a [u8] },
    /// A DSSE envelope with one signature.
    Dsse { payload_type: &'a str, payload: &'a [u8], signature: &'a [u8] },
}

/// Builds a v0.3 bundle with a leaf certificate, one tlog entry and one RFC 3161 timestamp.
pub fn bundle(
    certificate_der: &[u8],
    entry: &TlogEntry<'_>,
    timestamp_response_der: &[u8],
    content: &BundleContent<'_>,
) -> Value {
    let mut bundle = json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "certificate": { "rawBytes": STANDARD.encode(certificate_der) },
            "tlogEntries": [entry.to_json()],
            "timestampVerificationData": {
                "rfc3161Timestamps": [
                    { "signedTimestamp": STANDARD.encode(timestamp_response_der) },
                ],
            },
        },
    });
    let (key, value) = match content {
        BundleContent::MessageSignature { digest, signature } => (
            "messageSignature",
            json!({
                "messageDigest": { "algorithm": "SHA2_256", "digest": STANDARD.encode(digest) },
                "signature": STANDARD.encode(signature),
            }),
        ),
        BundleContent::Dsse { payload_type, payload, signature } => (
            "dsseEnvelope",
            json!({
                "payload": STANDARD.encode(payload),
                "payloadType": payload_type,
                "signatures": [{ "sig": STANDARD.encode(signature) }],
            }),
        ),
    };
    if let Value::Object(fields) = &mut bundle {
        fields.insert(key.to_owned(), value);
    }
    bundle
}

/// Builds an in-toto Statement v1 with one subject and the given predicate.
pub fn statement(subject_name: &str, subject_sha256_hex: &str, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": subject_name, "digest": { "sha256": subject_sha256_hex } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// The kit's transparency log as a trusted root lists it.
pub struct TlogInstance<'a> {
    pub base_url: &'a str,
    /// DER SubjectPublicKeyInfo of the Ed25519 checkpoint key.
    pub public_key_der: &'a [u8],
    pub log_id: &'a [u8; 32],
    pub valid_from: &'a str,
}

/// A certificate authority or timestamp authority as a trusted root lists it.
pub struct AuthorityInstance<'a> {
    pub organization: &'a str,
    pub common_name: &'a str,
    pub uri: &'a str,
    /// DER certificates, leaf or intermediate first and the root last.
    pub chain: Vec<&'a [u8]>,
    pub valid_from: &'a str,
}

impl AuthorityInstance<'_> {
    fn to_json(&self) -> Value {
        let certificates: Vec<Value> = self
            .chain
            .iter()
            .map(|der| json!({ "rawBytes": STANDARD.encode(der) }))
            .collect();
        json!({
            "subject": { "organization": self.organization, "commonName": self.common_name },
            "uri": self.uri,
            "certChain": { "certificates": certificates },
            "validFor": { "start": self.valid_from },
        })
    }
}

/// Builds a trusted root with one Rekor v2 log, one CA, one TSA and no CT logs.
pub fn trusted_root(
    tlog: &TlogInstance<'_>,
    certificate_authority: &AuthorityInstance<'_>,
    timestamp_authority: &AuthorityInstance<'_>,
) -> Value {
    json!({
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [{
            "baseUrl": tlog.base_url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": STANDARD.encode(tlog.public_key_der),
                "keyDetails": "PKIX_ED25519",
                "validFor": { "start": tlog.valid_from },
            },
            "logId": { "keyId": STANDARD.encode(tlog.log_id) },
        }],
        "certificateAuthorities": [certificate_authority.to_json()],
        "ctlogs": [],
        "timestampAuthorities": [timestamp_authority.to_json()],
    })
}
