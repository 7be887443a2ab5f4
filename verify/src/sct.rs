//! Embedded Signed Certificate Timestamps (SCTs) in Fulcio certificates, RFC 6962.
//!
//! Fulcio submits a precertificate to a CT log and embeds the SCTs it gets back in the final
//! certificate, as extension 1.3.6.1.4.1.11129.2.4.2: an OCTET STRING holding a TLS-encoded
//! `SignedCertificateTimestampList` (RFC 6962 section 3.3). [`verify_embedded_scts`] checks each
//! SCT as RFC 6962 section 3.2 defines it:
//!
//! 1. the SCT names a CT log of the trusted root. The log ID is the SHA-256 of the log key's DER
//!    SubjectPublicKeyInfo, computed from the key here, so a trusted root's `logId` field cannot
//!    point an SCT at another key. SCTs of other logs are skipped;
//! 2. the log's `validFor` contains the SCT's timestamp, and the timestamp is not after the
//!    verification time;
//! 3. the log signed, with SHA-256 and ECDSA or RSA PKCS#1 v1.5, the `precert_entry` data: the
//!    SHA-256 of the issuer's SubjectPublicKeyInfo and the certificate's `tbsCertificate` without
//!    the SCT list extension, every other byte unchanged.
//!
//! NOTE: an SCT from a trusted log that fails a check rejects the certificate, even when another
//! SCT verifies. sigstore-go skips such SCTs instead. A failed SCT from a log the verifier trusts
//! means tampering or a broken log, not an SCT meant for someone else.
//!
//! Left out: SCTs delivered in a TLS extension or an OCSP response, and CT v2 SCTs (RFC 9162).
//! Precertificates signed by a separate Precertificate Signing Certificate (RFC 6962 section 3.1)
//! are not supported, because Fulcio signs precertificates with the issuing CA. Policies on how
//! many logs or operators must have logged a certificate are left to callers, who compare the
//! returned count with their threshold.

use const_oid::ObjectIdentifier;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bundle::HashAlgorithm;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::trust_root::{TransparencyLogInstance, format_bound, format_time};
use crate::x509::{Certificate, PublicKey, SignatureAlgorithm, X509Error, rsa_pkcs1_to_spki_der};

mod parse;

use parse::{parse_sct_list, split_sct_extension};

/// Extension that carries the embedded `SignedCertificateTimestampList`.
pub const OID_SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// The critical "poison" extension that marks a precertificate (RFC 6962 section 3.1).
pub const OID_PRECERTIFICATE_POISON: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.3");

/// Most SCTs one certificate may embed. Fulcio embeds one, so 32 leaves room for CAs that log to
/// several CT logs and only bounds the signature checks that one certificate can cause.
pub const MAX_SCTS: usize = 32;

/// `Version` v1 of RFC 6962 section 3.2.
const SCT_VERSION_V1: u8 = 0;
/// `SignatureType` certificate_timestamp.
const SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP: u8 = 0;
/// `LogEntryType` precert_entry.
const LOG_ENTRY_TYPE_PRECERT: u16 = 1;
/// TLS `HashAlgorithm` sha256 (RFC 5246 section 7.4.1.4.1), the only hash RFC 6962 allows.
const TLS_HASH_SHA256: u8 = 4;
/// TLS `SignatureAlgorithm` rsa.
const TLS_SIGNATURE_RSA: u8 = 1;
/// TLS `SignatureAlgorithm` ecdsa.
const TLS_SIGNATURE_ECDSA: u8 = 3;
/// Largest `tbs_certificate` that the 24-bit length prefix of the signed data can carry.
const MAX_TBS_LEN: usize = (1 << 24) - 1;
/// `keyDetails` prefix of CT log keys stored as a bare PKCS#1 `RSAPublicKey`.
const KEY_DETAILS_PKCS1_PREFIX: &str = "PKCS1_";

/// Errors from embedded SCT verification. All map to `ERR_SCT_INVALID`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SctError {
    /// The certificate has no SCT list extension.
    #[error("certificate {subject} has no embedded SCT list extension ({OID_SCT_LIST})")]
    MissingExtension { subject: String },
    /// The certificate has more than one SCT list extension.
    #[error("certificate {subject} has more than one SCT list extension ({OID_SCT_LIST})")]
    DuplicateExtension { subject: String },
    /// The certificate is a precertificate, which cannot carry embedded SCTs.
    #[error(
        "certificate {subject} is a precertificate (it carries the CT poison extension {OID_PRECERTIFICATE_POISON})"
    )]
    Precertificate { subject: String },
    /// The certificate or its SCT list is malformed.
    #[error("certificate {subject} has a malformed {structure}: {detail}")]
    Malformed {
        subject: String,
        structure: &'static str,
        detail: String,
    },
    /// The certificate embeds more SCTs than [`MAX_SCTS`].
    #[error("certificate {subject} embeds {count} SCTs, more than the limit of {max}")]
    TooMany {
        subject: String,
        count: usize,
        max: usize,
    },
    /// An SCT has a version other than v1.
    #[error("SCT {index} has version {version}, only v1 (0) is supported")]
    UnsupportedVersion { index: usize, version: u8 },
    /// The issuer passed in did not issue the certificate.
    #[error("certificate {subject} was not issued by {issuer}")]
    IssuerMismatch { subject: String, issuer: String },
    /// The trusted root's key for the CT log that signed an SCT cannot be used.
    #[error("CT log {log} of the trusted root has an unusable key: {source}")]
    LogKey { log: String, source: X509Error },
    /// The SCT's timestamp lies outside the log's `validFor`.
    #[error("SCT {index} from CT log {log} is dated {}, outside the log's validFor ({} to {})", format_millis(*.timestamp_ms), format_bound(*.start), format_bound(*.end))]
    LogNotValid {
        index: usize,
        log: String,
        timestamp_ms: u64,
        start: Option<i64>,
        end: Option<i64>,
    },
    /// The SCT's algorithm is not SHA-256 with ECDSA or RSA.
    #[error(
        "SCT {index} from CT log {log} uses TLS hash {hash} and signature {signature} (RFC 6962 allows SHA-256 (4) with ECDSA (3) or RSA (1))"
    )]
    UnsupportedAlgorithm {
        index: usize,
        log: String,
        hash: u8,
        signature: u8,
    },
    /// The log's signature does not verify over the precertificate entry.
    #[error("SCT {index} from CT log {log} has an invalid signature: {source}")]
    SignatureInvalid {
        index: usize,
        log: String,
        source: X509Error,
    },
    /// No SCT comes from a CT log of the trusted root.
    #[error(
        "certificate {subject} has {total} SCTs, none from the {ctlogs} CT logs of the trusted root"
    )]
    NoTrustedSct {
        subject: String,
        total: usize,
        ctlogs: usize,
    },
}

impl HasReasonCode for SctError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            SctError::MissingExtension { .. }
            | SctError::DuplicateExtension { .. }
            | SctError::Precertificate { .. }
            | SctError::Malformed { .. }
            | SctError::TooMany { .. }
            | SctError::UnsupportedVersion { .. }
            | SctError::IssuerMismatch { .. }
            | SctError::LogKey { .. }
            | SctError::LogNotValid { .. }
            | SctError::UnsupportedAlgorithm { .. }
            | SctError::SignatureInvalid { .. }
            | SctError::NoTrustedSct { .. } => ReasonCode::SctInvalid,
        }
    }
}

/// A version 1 SCT (RFC 6962 section 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificateTimestamp {
    /// SHA-256 of the log's DER SubjectPublicKeyInfo.
    pub log_id: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// `CtExtensions`, opaque to RFC 6962 but covered by the signature.
    pub extensions: Vec<u8>,
    /// TLS `HashAlgorithm` code of the signature.
    pub hash: u8,
    /// TLS `SignatureAlgorithm` code of the signature.
    pub signature_algorithm: u8,
    /// The signature: DER `ECDSA-Sig-Value` or RSA PKCS#1 v1.5 bytes.
    pub signature: Vec<u8>,
}

/// The certificate split for SCT verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedScts {
    /// The SCTs in the order the certificate lists them.
    pub scts: Vec<SignedCertificateTimestamp>,
    /// The `tbsCertificate` without the SCT list extension: the precertificate's TBS that the logs
    /// signed.
    pub precertificate_tbs: Vec<u8>,
}

/// Verifies the SCTs embedded in a Fulcio certificate against the trusted root's CT logs.
///
/// `issuer` is the certificate that issued `leaf` (see [`crate::x509::VerifiedPath`]). An SCT's
/// time is checked against its log's `validFor` only, not against the signing time, because CT
/// logs and timestamp authorities keep separate clocks (as sigstore-go does).
///
/// Returns the number of distinct trusted CT logs with a verified SCT, at least 1. SCTs of logs
/// the trusted root does not list are skipped and not counted, and a second SCT from the same log
/// does not raise the count.
///
/// # Errors
///
/// [`SctError::NoTrustedSct`] when no SCT comes from a trusted log. Otherwise the first failed
/// check: a malformed, missing or duplicated extension, [`SctError::IssuerMismatch`], and for an
/// SCT from a trusted log [`SctError::LogKey`], [`SctError::LogNotValid`],
/// [`SctError::UnsupportedAlgorithm`] or
/// [`SctError::SignatureInvalid`].
pub fn verify_embedded_scts(
    leaf: &Certificate,
    issuer: &Certificate,
    ctlogs: &[TransparencyLogInstance],
) -> Result<usize, SctError> {
    let embedded = parse_embedded_scts(leaf)?;
    verify_scts(leaf, issuer, &embedded, ctlogs)
}

/// Extracts the SCT list and rebuilds the precertificate's `tbsCertificate`.
///
/// # Errors
///
/// [`SctError::MissingExtension`], [`SctError::DuplicateExtension`],
/// [`SctError::Precertificate`], [`SctError::Malformed`], [`SctError::TooMany`] and
/// [`SctError::UnsupportedVersion`].
pub fn parse_embedded_scts(leaf: &Certificate) -> Result<EmbeddedScts, SctError> {
    let subject = leaf.subject();
    let (precertificate_tbs, list) = split_sct_extension(leaf.tbs_der(), &subject)?;
    let scts = parse_sct_list(&list, &subject)?;
    Ok(EmbeddedScts {
        scts,
        precertificate_tbs,
    })
}

/// Computes a CT log's ID: the SHA-256 of its key as a DER SubjectPublicKeyInfo. A key stored as a
/// bare PKCS#1 `RSAPublicKey` (`keyDetails` `PKCS1_…`) is wrapped first.
///
/// # Errors
///
/// [`X509Error::UnsupportedKey`] when a PKCS#1 key is malformed.
pub fn ct_log_id(log: &TransparencyLogInstance) -> Result<[u8; 32], X509Error> {
    Ok(Sha256::digest(log_spki_der(log)?).into())
}

fn log_spki_der(log: &TransparencyLogInstance) -> Result<Vec<u8>, X509Error> {
    spki_der(&log.public_key_der, &log.key_details)
}

fn spki_der(public_key_der: &[u8], key_details: &str) -> Result<Vec<u8>, X509Error> {
    if key_details.starts_with(KEY_DETAILS_PKCS1_PREFIX) {
        rsa_pkcs1_to_spki_der(public_key_der)
    } else {
        Ok(public_key_der.to_vec())
    }
}

/// A CT log's ID and key, derived from its trusted-root entry when the trusted root is loaded.
///
/// Computing an ID wraps and validates a PKCS#1 key, and checking an SCT parses the log's key.
/// Both depend only on the trusted root, so doing them per certificate repeats the same work, and
/// validating an RSA key costs more than the SCT check itself. The values are used only while the
/// entry still contains the key they came from, so an entry changed after loading is derived again.
/// Equality ignores them, as it does for [`crate::x509::PreparedChain`].
#[derive(Debug, Clone)]
pub(crate) struct PreparedCtLog {
    /// The `public_key_der`, `key_details` and trusted `log_id` the values came from.
    source: (Vec<u8>, String, Vec<u8>),
    /// The computed log ID, or the trusted root's `logId` when the key cannot be wrapped.
    log_id: Vec<u8>,
    key: Result<PublicKey, X509Error>,
}

impl PartialEq for PreparedCtLog {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for PreparedCtLog {}

impl PreparedCtLog {
    /// Computes the log ID and parses the key of a trusted-root log entry: its
    /// `publicKey.rawBytes`, `publicKey.keyDetails` and `logId.keyId`.
    pub fn prepare(public_key_der: &[u8], key_details: &str, trusted_log_id: &[u8]) -> Self {
        let (log_id, key) = match spki_der(public_key_der, key_details) {
            Ok(spki) => (
                Sha256::digest(&spki).to_vec(),
                PublicKey::from_spki_der(&spki),
            ),
            Err(error) => (trusted_log_id.to_vec(), Err(error)),
        };
        PreparedCtLog {
            source: (
                public_key_der.to_vec(),
                key_details.to_owned(),
                trusted_log_id.to_vec(),
            ),
            log_id,
            key,
        }
    }

    fn matches(&self, instance: &TransparencyLogInstance) -> bool {
        let (der, details, log_id) = &self.source;
        *der == instance.public_key_der
            && *details == instance.key_details
            && *log_id == instance.log_id
    }
}

/// A trusted CT log with its ID and key, prepared at load time or derived for this call.
struct TrustedLog<'a> {
    instance: &'a TransparencyLogInstance,
    prepared: std::borrow::Cow<'a, PreparedCtLog>,
}

impl<'a> TrustedLog<'a> {
    fn new(instance: &'a TransparencyLogInstance) -> Self {
        let prepared = if instance.prepared_ct.matches(instance) {
            std::borrow::Cow::Borrowed(&instance.prepared_ct)
        } else {
            std::borrow::Cow::Owned(PreparedCtLog::prepare(
                &instance.public_key_der,
                &instance.key_details,
                &instance.log_id,
            ))
        };
        TrustedLog { instance, prepared }
    }

    fn log_id(&self) -> &[u8] {
        &self.prepared.log_id
    }

    fn key(&self) -> Result<&PublicKey, X509Error> {
        self.prepared.key.as_ref().map_err(Clone::clone)
    }

    fn name(&self) -> String {
        self.instance.base_url.clone()
    }
}

fn verify_scts(
    leaf: &Certificate,
    issuer: &Certificate,
    embedded: &EmbeddedScts,
    ctlogs: &[TransparencyLogInstance],
) -> Result<usize, SctError> {
    if !leaf.is_issued_by_name_of(issuer) {
        return Err(SctError::IssuerMismatch {
            subject: leaf.subject(),
            issuer: issuer.subject(),
        });
    }
    let issuer_key_hash: [u8; 32] = Sha256::digest(issuer.subject_public_key_info_der()).into();
    let logs: Vec<TrustedLog<'_>> = ctlogs.iter().map(TrustedLog::new).collect();

    let mut verified_logs: Vec<&[u8]> = Vec::new();
    for (index, sct) in embedded.scts.iter().enumerate() {
        let Some(log) = logs.iter().find(|log| log.log_id() == sct.log_id) else {
            continue;
        };
        let signed_data = signed_data(sct, &issuer_key_hash, &embedded.precertificate_tbs)
            .map_err(|detail| SctError::Malformed {
                subject: leaf.subject(),
                structure: "tbsCertificate",
                detail,
            })?;
        verify_sct(index, sct, log, &signed_data)?;
        if !verified_logs.contains(&log.log_id()) {
            verified_logs.push(log.log_id());
        }
    }
    if verified_logs.is_empty() {
        return Err(SctError::NoTrustedSct {
            subject: leaf.subject(),
            total: embedded.scts.len(),
            ctlogs: ctlogs.len(),
        });
    }
    Ok(verified_logs.len())
}

fn verify_sct(
    index: usize,
    sct: &SignedCertificateTimestamp,
    log: &TrustedLog<'_>,
    signed_data: &[u8],
) -> Result<(), SctError> {
    let key = log.key().map_err(|source| SctError::LogKey {
        log: log.name(),
        source,
    })?;

    // u64::MAX / 1000 is below i64::MAX, so the fallback is unreachable.
    let seconds = i64::try_from(sct.timestamp_ms / 1000).unwrap_or(i64::MAX);
    let valid_for = log.instance.valid_for;
    if !valid_for.contains(seconds) {
        return Err(SctError::LogNotValid {
            index,
            log: log.name(),
            timestamp_ms: sct.timestamp_ms,
            start: valid_for.start,
            end: valid_for.end,
        });
    }

    let algorithm = match (sct.hash, sct.signature_algorithm) {
        (TLS_HASH_SHA256, TLS_SIGNATURE_ECDSA) => {
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_256)
        }
        (TLS_HASH_SHA256, TLS_SIGNATURE_RSA) => {
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256)
        }
        (hash, signature) => {
            return Err(SctError::UnsupportedAlgorithm {
                index,
                log: log.name(),
                hash,
                signature,
            });
        }
    };
    key.verify_with_algorithm(signed_data, algorithm, &sct.signature)
        .map_err(|source| SctError::SignatureInvalid {
            index,
            log: log.name(),
            source,
        })
}

/// Builds the `digitally-signed` data of an SCT over a precertificate (RFC 6962 section 3.2).
fn signed_data(
    sct: &SignedCertificateTimestamp,
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
) -> Result<Vec<u8>, String> {
    if tbs.len() > MAX_TBS_LEN {
        return Err(format!(
            "the precertificate has {} bytes, more than the {MAX_TBS_LEN} a 24-bit length can carry",
            tbs.len()
        ));
    }
    let extensions_len = u16::try_from(sct.extensions.len()).map_err(|_| {
        format!(
            "SCT extensions have {} bytes, more than a 16-bit length can carry",
            sct.extensions.len()
        )
    })?;
    let tbs_len = u32::try_from(tbs.len())
        .map_err(|_| format!("{} bytes", tbs.len()))?
        .to_be_bytes();

    let mut data = Vec::new();
    data.push(SCT_VERSION_V1);
    data.push(SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP);
    data.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
    data.extend_from_slice(&LOG_ENTRY_TYPE_PRECERT.to_be_bytes());
    data.extend_from_slice(issuer_key_hash);
    // The low three bytes of the big-endian u32: the 24-bit length.
    data.extend_from_slice(tbs_len.get(1..).unwrap_or_default());
    data.extend_from_slice(tbs);
    data.extend_from_slice(&extensions_len.to_be_bytes());
    data.extend_from_slice(&sct.extensions);
    Ok(data)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds, for messages.
fn format_millis(ms: u64) -> String {
    let seconds = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let text = format_time(seconds);
    match text.strip_suffix('Z') {
        Some(without_zone) => format!("{without_zone}.{:03}Z", ms % 1000),
        None => format!("{ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use der::{Decode, Encode};

    use super::*;
    use crate::bundle::decode_proto_base64;
    use crate::trust_root::{TimeRange, TrustedRoot, parse_trusted_root};
    use crate::x509::verify_fulcio_chain_path;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

    // A 2048-bit RSA test key made with `openssl genrsa` for these tests only, as PKCS#1
    // `RSAPublicKey`, and its PKCS#1 v1.5 SHA-256 signature (`openssl dgst -sha256 -sign`) over
    // the precert_entry signed data of rekor2-happy-path's leaf, with that leaf's SCT timestamp and
    // empty extensions. The signed data was built independently of this module.
    const RSA_LOG_KEY_PKCS1: &str = "MIIBCgKCAQEAjIV0C9bWXoyVoBdgaz6HM2WS/aBt/IyxB0pG6jmQwaIXwwqThdcwHm+bLPgCOkBbsAqzOI67A1nubyggLXttqzavtc9BFLv9xDai21ZlWlEn4FjUoFDq3TCtTf2fkT6L8PWEzjJLVTfnkq5g4Hilgvw5jg8bKTEiWCLI/Yep6bQtNQs1HtqVuyt0hjAqchBYovZHyCUzhRxIBWG75n7EpWh7mMKI6LT3bw9myAiuhW1zuTSJCF/6YoWXDj0mv22RsXBFbbi17ghbbDugOgFhQSfeEEIjue7pN8mt/tMbpv6oQag2AGC1nc4yWfA1uOJIs2NyWX8DijDnATQ0D0VehwIDAQAB";
    const RSA_SCT_SIGNATURE: &str = "3468eb637c134b3095a69f7fa84d9305464d2e230532bc3b6920ba86d4b7f0407bde8ccf1a300e56bd3eec40d977b8a5c49250ad4e76c44bc972fa60a3e07f1a839c3a30f837bd16261c3d60104029c78d408ea1fb26236902ad9dce252d440dbea6aa4ccc71d84a0c3084735820296991cbcf1fe8b6a530d203ecd4b7c6efc44d6d201a5cb1074ddc91ed3b795cce26ece525498813f39f73ae33d3770d671809e18d4138f314adf396e6a902a9b9e507cbca6faa2efa98d976aca1f1bba04df7738b2e0863aa868697e1282c95ee37c41a30ae520e71e27ca7e2f1ee93179b46258e6d0bfbd653ccba1be656e55c40ad35a4349ec09339f8fc7cb194c028b8";
    // SHA-256 of the test key's SubjectPublicKeyInfo, from `openssl rsa -pubout -outform der`.
    const RSA_LOG_ID: &str = "5f9aec3a72b8a7969db7f5dcf68584b453187f16f676624db86cf9352b10d913";
    // rekor2-happy-path's SCT: 2025-06-12T12:02:16.682Z.
    const HAPPY_SCT_MS: u64 = 1_749_729_736_682;
    const HAPPY_SCT_SECONDS: i64 = 1_749_729_736;

    /// A Fulcio leaf from a bundle with the trusted root that verifies it.
    struct Case {
        name: String,
        leaf: Certificate,
        root: TrustedRoot,
    }

    fn read_json(path: &str) -> Option<serde_json::Value> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Returns the leaf certificate of a bundle: `certificate` (v0.3) or the first certificate of
    /// `x509CertificateChain` (v0.1, v0.2). `None` for key-signed bundles.
    fn bundle_leaf(bundle: &serde_json::Value) -> Option<Certificate> {
        let material = &bundle["verificationMaterial"];
        let raw = material["certificate"]["rawBytes"]
            .as_str()
            .or_else(|| material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())?;
        let der = decode_proto_base64(raw).expect("leaf base64");
        Some(Certificate::from_der(&der).expect("leaf parses"))
    }

    /// Loads every certificate-signed bundle of the conformance cases and the sigstore-python
    /// bundle. Cases whose bundle is not JSON or whose trusted root does not parse are returned by
    /// name in the second list.
    fn fulcio_cases() -> Option<(Vec<Case>, Vec<String>)> {
        let conformance = format!("{VECTORS}/sigstore-conformance/bundle-verify");
        let Ok(entries) = std::fs::read_dir(&conformance) else {
            crate::test_vectors::skip_or_fail(&format!("conformance vectors not found at {conformance}"));
            return None;
        };
        let production = format!("{VECTORS}/sigstore-trust-roots/production.trusted_root.json");
        let staging = format!("{VECTORS}/sigstore-trust-roots/staging.trusted_root.json");

        let mut sources = Vec::new();
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let case_root = format!("{conformance}/{name}/trusted_root.json");
            let root = if std::path::Path::new(&case_root).is_file() {
                case_root
            } else {
                production.clone()
            };
            sources.push((
                name.clone(),
                format!("{conformance}/{name}/bundle.sigstore.json"),
                root,
            ));
        }
        sources.push((
            "sigstore-python/staging-rekor-v2".to_owned(),
            format!("{VECTORS}/sigstore-python/staging-rekor-v2.txt.sigstore.json"),
            staging,
        ));

        let mut cases = Vec::new();
        let mut unusable = Vec::new();
        for (name, bundle_path, root_path) in sources {
            let Some(bundle) = read_json(&bundle_path) else {
                unusable.push(name);
                continue;
            };
            let Some(leaf) = bundle_leaf(&bundle) else {
                continue;
            };
            let root_bytes = std::fs::read(&root_path).expect("trusted root readable");
            let Ok(root) = parse_trusted_root(&root_bytes) else {
                unusable.push(name);
                continue;
            };
            cases.push(Case { name, leaf, root });
        }
        Some((cases, unusable))
    }

    fn case(name: &str) -> Option<Case> {
        let (cases, _) = fulcio_cases()?;
        cases.into_iter().find(|case| case.name == name)
    }

    fn issuer_of(case: &Case) -> Certificate {
        verify_fulcio_chain_path(
            &case.leaf,
            &case.root.certificate_authorities,
            case.leaf.not_before(),
        )
        .unwrap_or_else(|e| panic!("case {}: chain does not verify: {e}", case.name))
        .issuer
    }

    fn verify_case(case: &Case) -> Result<usize, SctError> {
        verify_embedded_scts(&case.leaf, &issuer_of(case), &case.root.ctlogs)
    }

    /// Returns a copy of `der` with the first occurrence of `needle` replaced by `replacement`
    /// of the same length.
    fn replace_once(der: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
        assert_eq!(needle.len(), replacement.len());
        let position = der
            .windows(needle.len())
            .position(|window| window == needle)
            .expect("needle present");
        let mut out = der.to_vec();
        out.splice(
            position..position + needle.len(),
            replacement.iter().copied(),
        );
        out
    }

    fn minimal_sct(version: u8) -> Vec<u8> {
        let mut sct = vec![version];
        sct.extend_from_slice(&[0x11; 32]);
        sct.extend_from_slice(&HAPPY_SCT_MS.to_be_bytes());
        sct.extend_from_slice(&[0, 0, TLS_HASH_SHA256, TLS_SIGNATURE_ECDSA, 0, 0]);
        sct
    }

    fn tls_list(items: &[Vec<u8>]) -> Vec<u8> {
        let mut list = Vec::new();
        for item in items {
            list.extend_from_slice(&u16::try_from(item.len()).expect("short").to_be_bytes());
            list.extend_from_slice(item);
        }
        let mut out = u16::try_from(list.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(&list);
        out
    }

    #[test]
    fn every_conformance_leaf_has_verified_sct() {
        let Some((cases, unusable)) = fulcio_cases() else {
            return;
        };
        assert_eq!(
            unusable,
            [
                "bundle-malformed-json_fail",
                "trust-root-tlog-missing-validity-start_fail"
            ],
            "only these cases have no usable bundle or trusted root"
        );
        // 39 conformance cases with a certificate plus the sigstore-python bundle.
        assert_eq!(cases.len(), 40, "certificate-signed bundles found");
        for case in &cases {
            assert!(
                !case.root.ctlogs.is_empty(),
                "case {}: no ctlogs",
                case.name
            );
            assert_eq!(verify_case(case), Ok(1), "case {}", case.name);
        }
    }

    #[test]
    fn sct_with_extensions_under_rsa_ca() {
        let Some(case) = case("bundle-with-sct-with-extensions") else {
            return;
        };
        let issuer = issuer_of(&case);
        assert_eq!(
            issuer.public_key().expect("RSA key").key_details(),
            "PKIX_RSA_PKCS1V15_4096_SHA256"
        );
        let embedded = parse_embedded_scts(&case.leaf).expect("SCT list");
        assert_eq!(embedded.scts.len(), 1);
        assert_eq!(
            embedded.scts[0].extensions,
            hex::decode("0000050000000070").expect("hex")
        );
        assert_eq!(verify_case(&case), Ok(1));
    }

    #[test]
    fn flipped_sct_signature_byte_rejected() {
        let Some(case) = case("rekor2-happy-path") else {
            return;
        };
        let issuer = issuer_of(&case);
        let embedded = parse_embedded_scts(&case.leaf).expect("SCT list");
        let signature = &embedded.scts[0].signature;
        let mut flipped = signature.clone();
        // The last byte belongs to the INTEGER s, so the DER stays valid.
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        let der = replace_once(case.leaf.der(), signature, &flipped);
        let tampered = Certificate::from_der(&der).expect("still DER");

        let err =
            verify_embedded_scts(&tampered, &issuer, &case.root.ctlogs)
                .expect_err("signature flipped");
        assert!(
            matches!(
                &err,
                SctError::SignatureInvalid {
                    index: 0,
                    source: X509Error::SignatureInvalid { key: "P-256" },
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.reason_code(), ReasonCode::SctInvalid);
    }

    #[test]
    fn changed_tbs_byte_rejected() {
        let Some(case) = case("rekor2-happy-path") else {
            return;
        };
        let issuer = issuer_of(&case);
        // The first occurrence is in the subject alternative name, outside the SCT extension.
        let der = replace_once(case.leaf.der(), b"extremely", b"Extremely");
        let tampered = Certificate::from_der(&der).expect("still DER");
        let err =
            verify_embedded_scts(&tampered, &issuer, &case.root.ctlogs)
                .expect_err("TBS changed");
        assert!(
            matches!(
                &err,
                SctError::SignatureInvalid {
                    index: 0,
                    source: X509Error::SignatureInvalid { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn sct_of_unknown_log_not_counted() {
        let (Some(production_case), Some(staging_case)) =
            (case("happy-path-v0.3"), case("rekor2-happy-path"))
        else {
            return;
        };
        let issuer = issuer_of(&production_case);
        let err = verify_embedded_scts(
            &production_case.leaf,
            &issuer,
            &staging_case.root.ctlogs,
        )
        .expect_err("staging logs do not know the production SCT");
        assert_eq!(
            err,
            SctError::NoTrustedSct {
                subject: production_case.leaf.subject(),
                total: 1,
                ctlogs: staging_case.root.ctlogs.len(),
            }
        );
        let err = verify_embedded_scts(&production_case.leaf, &issuer, &[])
            .expect_err("no CT logs");
        assert!(
            matches!(err, SctError::NoTrustedSct { ctlogs: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn sct_timestamp_checks_include_bounds() {
        let Some(mut case) = case("rekor2-happy-path") else {
            return;
        };
        let issuer = issuer_of(&case);
        let verify = |case: &Case| verify_embedded_scts(&case.leaf, &issuer, &case.root.ctlogs);
        assert_eq!(verify(&case), Ok(1), "SCT inside the log's validFor");

        let log_id = embedded_log_id(&case);
        let log = case
            .root
            .ctlogs
            .iter_mut()
            .find(|log| ct_log_id(log).ok() == Some(log_id))
            .expect("SCT's log listed");
        log.valid_for = TimeRange {
            start: None,
            end: Some(HAPPY_SCT_SECONDS),
        };
        assert_eq!(verify(&case), Ok(1), "validFor end is inclusive");
        let log = case
            .root
            .ctlogs
            .iter_mut()
            .find(|log| ct_log_id(log).ok() == Some(log_id))
            .expect("SCT's log listed");
        log.valid_for = TimeRange {
            start: Some(HAPPY_SCT_SECONDS + 1),
            end: None,
        };
        let err = verify(&case).expect_err("log not yet valid");
        assert!(
            matches!(
                err,
                SctError::LogNotValid {
                    index: 0,
                    timestamp_ms: HAPPY_SCT_MS,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn embedded_log_id(case: &Case) -> [u8; 32] {
        parse_embedded_scts(&case.leaf).expect("SCT list").scts[0].log_id
    }

    #[test]
    fn certificate_extension_faults_rejected() {
        let Some(case) = case("rekor2-happy-path") else {
            return;
        };
        let issuer = issuer_of(&case);
        let sct_oid = OID_SCT_LIST.to_der().expect("OID");
        // 1.3.6.1.4.1.57264.1.2 (Fulcio's GitHub workflow trigger) has an OID of the same length.
        let trigger_oid = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.2")
            .to_der()
            .expect("OID");
        let poison_oid = OID_PRECERTIFICATE_POISON.to_der().expect("OID");

        let duplicate =
            Certificate::from_der(&replace_once(case.leaf.der(), &trigger_oid, &sct_oid))
                .expect("still DER");
        let err = parse_embedded_scts(&duplicate).expect_err("two SCT lists");
        assert!(
            matches!(err, SctError::DuplicateExtension { .. }),
            "{err:?}"
        );

        let poisoned =
            Certificate::from_der(&replace_once(case.leaf.der(), &trigger_oid, &poison_oid))
                .expect("still DER");
        let err = parse_embedded_scts(&poisoned).expect_err("precertificate");
        assert!(matches!(err, SctError::Precertificate { .. }), "{err:?}");

        let err = parse_embedded_scts(&issuer).expect_err("CA certificate has no SCTs");
        assert_eq!(
            err,
            SctError::MissingExtension {
                subject: issuer.subject()
            }
        );

        let err = verify_embedded_scts(&case.leaf, &case.leaf, &case.root.ctlogs)
            .expect_err("the leaf did not issue itself");
        assert!(matches!(err, SctError::IssuerMismatch { .. }), "{err:?}");
    }

    #[test]
    fn precertificate_tbs_drops_only_sct_extension() {
        let Some(case) = case("rekor2-happy-path") else {
            return;
        };
        let embedded = parse_embedded_scts(&case.leaf).expect("SCT list");
        let original = x509_cert::TbsCertificate::from_der(case.leaf.tbs_der()).expect("TBS");
        let rebuilt = x509_cert::TbsCertificate::from_der(&embedded.precertificate_tbs)
            .expect("rebuilt TBS is DER");
        let original_ids: Vec<_> = original
            .extensions()
            .expect("extensions")
            .iter()
            .map(|extension| extension.extn_id)
            .filter(|oid| *oid != OID_SCT_LIST)
            .collect();
        let rebuilt_ids: Vec<_> = rebuilt
            .extensions()
            .expect("extensions")
            .iter()
            .map(|extension| extension.extn_id)
            .collect();
        assert_eq!(rebuilt_ids, original_ids);
        assert_eq!(
            rebuilt.subject_public_key_info(),
            original.subject_public_key_info()
        );
        assert_eq!(rebuilt.serial_number(), original.serial_number());
    }

    #[test]
    fn ct_log_ids_match_trusted_roots() {
        for file in ["production", "staging"] {
            let path = format!("{VECTORS}/sigstore-trust-roots/{file}.trusted_root.json");
            let Ok(bytes) = std::fs::read(&path) else {
                crate::test_vectors::skip_or_fail(&format!("{path} not readable"));
                return;
            };
            let root = parse_trusted_root(&bytes).expect("trusted root parses");
            for log in &root.ctlogs {
                assert_eq!(
                    ct_log_id(log).map(|id| id.to_vec()),
                    Ok(log.log_id.clone()),
                    "{file} CT log {} ({})",
                    log.base_url,
                    log.key_details
                );
            }
        }
    }

    #[test]
    fn changed_log_key_ignores_preparation() {
        let (Some(production_case), Some(staging_case)) =
            (case("happy-path-v0.3"), case("rekor2-happy-path"))
        else {
            return;
        };
        let issuer = issuer_of(&staging_case);
        assert_eq!(verify_case(&staging_case), Ok(1));
        // Give every staging CT log a production key after loading: the SCT's log is then
        // unknown, as it is for a root loaded with those keys, whatever was prepared at load.
        let production_log = &production_case.root.ctlogs[0];
        let mut changed = staging_case.root.ctlogs.clone();
        for log in &mut changed {
            log.public_key_der = production_log.public_key_der.clone();
            log.key_details = production_log.key_details.clone();
        }
        let err = verify_embedded_scts(&staging_case.leaf, &issuer, &changed)
            .expect_err("the SCT's log key was replaced");
        assert!(matches!(err, SctError::NoTrustedSct { .. }), "{err:?}");
        // A key that no longer parses after loading fails as it does at load time.
        let mut broken = staging_case.root.ctlogs.clone();
        for log in &mut broken {
            log.public_key_der.truncate(10);
        }
        let loaded_broken: Vec<_> = broken
            .iter()
            .map(|log| {
                let mut fresh = log.clone();
                fresh.prepared_ct =
                    PreparedCtLog::prepare(&log.public_key_der, &log.key_details, &log.log_id);
                fresh
            })
            .collect();
        assert_eq!(
            verify_embedded_scts(&staging_case.leaf, &issuer, &broken),
            verify_embedded_scts(&staging_case.leaf, &issuer, &loaded_broken),
        );

        // A key that cannot be wrapped falls back to the trusted root's `logId`, so a `logId`
        // edited after loading must be read again too.
        let mut relabelled = rsa_log_root().ctlogs;
        relabelled[0].public_key_der.truncate(8);
        let reloaded = PreparedCtLog::prepare(
            &relabelled[0].public_key_der,
            &relabelled[0].key_details,
            &relabelled[0].log_id,
        );
        relabelled[0].prepared_ct = reloaded;
        relabelled[0].log_id = vec![0x42; 32];
        let log = TrustedLog::new(&relabelled[0]);
        assert_eq!(log.log_id(), [0x42; 32].as_slice());
    }

    /// Builds a trusted root whose only CT log has the RSA test key, stored as PKCS#1.
    fn rsa_log_root() -> TrustedRoot {
        let json = format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "ctlogs":[{{"baseUrl":"https://ct.example/rsa","hashAlgorithm":"SHA2_256",
              "publicKey":{{"rawBytes":"{RSA_LOG_KEY_PKCS1}","keyDetails":"PKCS1_RSA_PKCS1V5",
                "validFor":{{"start":"2025-01-01T00:00:00Z"}}}},
              "logId":{{"keyId":"X5rsOnK4p5adt/Xc9oWEtFMYfxb2dmJNuGz5NSsQ2RM="}}}}]}}"#
        );
        parse_trusted_root(json.as_bytes()).expect("test root parses")
    }

    #[test]
    fn rsa_sct_verifies_over_precertificate() {
        let Some(case) = case("rekor2-happy-path") else {
            return;
        };
        let issuer = issuer_of(&case);
        let root = rsa_log_root();
        let log_id = ct_log_id(&root.ctlogs[0]).expect("PKCS#1 key wraps");
        assert_eq!(hex::encode(log_id), RSA_LOG_ID);

        let mut embedded = parse_embedded_scts(&case.leaf).expect("SCT list");
        embedded.scts = vec![SignedCertificateTimestamp {
            log_id,
            timestamp_ms: HAPPY_SCT_MS,
            extensions: Vec::new(),
            hash: TLS_HASH_SHA256,
            signature_algorithm: TLS_SIGNATURE_RSA,
            signature: hex::decode(RSA_SCT_SIGNATURE).expect("hex"),
        }];
        assert_eq!(
            verify_scts(&case.leaf, &issuer, &embedded, &root.ctlogs),
            Ok(1)
        );

        type Row = (
            &'static str,
            fn(&mut SignedCertificateTimestamp),
            fn(&SctError) -> bool,
        );
        let rows: [Row; 3] = [
            (
                "flipped signature byte",
                |sct| sct.signature[100] ^= 0x01,
                |e| {
                    matches!(
                        e,
                        SctError::SignatureInvalid {
                            source: X509Error::SignatureInvalid { key: "RSA" },
                            ..
                        }
                    )
                },
            ),
            (
                "ECDSA code for an RSA key",
                |sct| sct.signature_algorithm = TLS_SIGNATURE_ECDSA,
                |e| {
                    matches!(
                        e,
                        SctError::SignatureInvalid {
                            source: X509Error::KeyAlgorithmMismatch { key: "RSA", .. },
                            ..
                        }
                    )
                },
            ),
            (
                "SHA-384 hash code",
                |sct| sct.hash = 5,
                |e| {
                    matches!(
                        e,
                        SctError::UnsupportedAlgorithm {
                            hash: 5,
                            signature: TLS_SIGNATURE_RSA,
                            ..
                        }
                    )
                },
            ),
        ];
        for (name, change, check) in rows {
            let mut changed = embedded.clone();
            change(&mut changed.scts[0]);
            let err =
                verify_scts(&case.leaf, &issuer, &changed, &root.ctlogs).expect_err(name);
            assert!(check(&err), "row {name}: unexpected error {err:?}");
        }
    }

    #[test]
    fn sct_list_parsing_rejects_malformed() {
        let subject = "test";
        let too_many: Vec<Vec<u8>> = vec![minimal_sct(0); MAX_SCTS + 1];
        let mut trailing = tls_list(&[minimal_sct(0)]);
        trailing.push(0);
        let mut long_sct = minimal_sct(0);
        long_sct.push(0);

        type Row = (&'static str, Vec<u8>, fn(&SctError) -> bool);
        let rows: [Row; 7] = [
            ("empty input", Vec::new(), |e| {
                matches!(e, SctError::Malformed { .. })
            }),
            ("empty list", vec![0, 0], |e| {
                matches!(e, SctError::Malformed { .. })
            }),
            ("trailing bytes", trailing, |e| {
                matches!(e, SctError::Malformed { .. })
            }),
            (
                "truncated SCT",
                tls_list(&[vec![0, 1, 2]]),
                |e| matches!(e, SctError::Malformed { detail, .. } if detail.starts_with("SCT 0:")),
            ),
            ("bytes after SCT", tls_list(&[long_sct]), |e| {
                matches!(e, SctError::Malformed { .. })
            }),
            (
                "version 2",
                tls_list(&[minimal_sct(0), minimal_sct(1)]),
                |e| {
                    matches!(
                        e,
                        SctError::UnsupportedVersion {
                            index: 1,
                            version: 1
                        }
                    )
                },
            ),
            (
                "too many",
                tls_list(&too_many),
                |e| matches!(e, SctError::TooMany { count, max: MAX_SCTS, .. } if *count == MAX_SCTS + 1),
            ),
        ];
        for (name, bytes, check) in rows {
            let err = parse_sct_list(&bytes, subject).expect_err(name);
            assert!(check(&err), "row {name}: unexpected error {err:?}");
            assert_eq!(err.reason_code(), ReasonCode::SctInvalid, "row {name}");
        }

        let parsed = parse_sct_list(&tls_list(&[minimal_sct(0)]), subject).expect("valid list");
        assert_eq!(parsed[0].timestamp_ms, HAPPY_SCT_MS);
        assert_eq!(parsed[0].log_id, [0x11; 32]);
    }

    #[test]
    fn sct_error_messages_name_times() {
        let err = SctError::LogNotValid {
            index: 0,
            log: "https://ct.example".to_owned(),
            timestamp_ms: HAPPY_SCT_MS,
            start: Some(0),
            end: None,
        };
        assert_eq!(
            err.to_string(),
            "SCT 0 from CT log https://ct.example is dated 2025-06-12T12:02:16.682Z, outside the log's validFor (1970-01-01T00:00:00Z to unbounded)"
        );
    }
}
