//! Sigstore trusted root (`TrustedRoot` JSON) and the imported trust set.
//!
//! Implements the JSON form of `sigstore/protobuf-specs` `sigstore_trustroot.proto` and
//! `sigstore_common.proto`: transparency logs, CT logs, Fulcio certificate authorities and RFC 3161
//! timestamp authorities, each with a `validFor` time range that includes both ends.
//!
//! Parsing is strict where verification depends on a field. A tlog or CT log without
//! `validFor.start` rejects the whole root, as in sigstore-go. Every certificate in a `certChain`
//! must be DER X.509, and each tlog needs a `baseUrl` whose host name is the checkpoint origin.
//! Unknown JSON fields are ignored, as protobuf JSON readers do for forward compatibility.
//!
//! Left out: CT log keys are kept as bytes and parsed only by [`crate::sct`] when an SCT names
//! them, and `operator` is stored but not used to merge timestamp authorities.

use serde::Deserialize;
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::bundle::decode_proto_base64;
use crate::note::{NoteError, NoteVerifier};
use crate::reason::{HasReasonCode, ReasonCode};

/// Media types accepted for a trusted root. The public-good roots use the `;version=0.1` form.
pub const TRUSTED_ROOT_MEDIA_TYPES: [&str; 3] = [
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    "application/vnd.dev.sigstore.trustedroot.v0.1+json",
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
];

/// `keyDetails` of an Ed25519 log key (Rekor v2 checkpoints).
pub const KEY_DETAILS_ED25519: &str = "PKIX_ED25519";
/// `keyDetails` of an ECDSA P-256 log key (Rekor v1 checkpoints, CT logs).
pub const KEY_DETAILS_ECDSA_P256: &str = "PKIX_ECDSA_P256_SHA_256";

/// DER SPKI prefix of an Ed25519 key (RFC 8410): SEQUENCE, AlgorithmIdentifier 1.3.101.112, BIT STRING.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Errors from parsing a trusted root or checking a trust set.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TrustRootError {
    /// The document is not JSON of the expected shape.
    #[error("trusted root is not valid JSON: {detail}")]
    Json { detail: String },
    /// The media type is not one of [`TRUSTED_ROOT_MEDIA_TYPES`].
    #[error("trusted root media type {media_type:?} is not supported")]
    MediaType { media_type: String },
    /// A required field is absent or empty.
    #[error("trusted root field {field} is missing")]
    Missing { field: String },
    /// A bytes field is not valid base64.
    #[error("trusted root field {field} is not valid base64")]
    Base64 { field: String },
    /// A timestamp field is not RFC 3339.
    #[error("trusted root field {field} has invalid RFC 3339 time {value:?}")]
    Time { field: String, value: String },
    /// A time range ends before it starts.
    #[error("trusted root field {field} ends ({}) before it starts ({})", format_time(*.end), format_time(*.start))]
    TimeRangeInverted { field: String, start: i64, end: i64 },
    /// A log's `baseUrl` has no host name to serve as checkpoint origin.
    #[error("trusted root field {field} has no host name in URL {url:?}")]
    BaseUrl { field: String, url: String },
    /// A certificate in a `certChain` is not DER X.509.
    #[error("trusted root field {field} is not a DER X.509 certificate: {detail}")]
    Certificate { field: String, detail: String },
    /// A log key cannot be turned into a checkpoint (signed-note) verifier.
    #[error("log {origin}: key ({key_details}) cannot verify checkpoints: {detail}")]
    NoteKey {
        origin: String,
        key_details: String,
        detail: String,
    },
    /// The trust set expired before the verification time.
    #[error("trust set version {version} expired at {}, verification time is {}", format_time(*.expires_at), format_time(*.now))]
    Expired {
        version: u64,
        expires_at: i64,
        now: i64,
    },
}

impl HasReasonCode for TrustRootError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            TrustRootError::Json { .. }
            | TrustRootError::MediaType { .. }
            | TrustRootError::Missing { .. }
            | TrustRootError::Base64 { .. }
            | TrustRootError::Time { .. }
            | TrustRootError::TimeRangeInverted { .. }
            | TrustRootError::BaseUrl { .. }
            | TrustRootError::Certificate { .. }
            | TrustRootError::NoteKey { .. } => ReasonCode::TrustRootInvalid,
            TrustRootError::Expired { .. } => ReasonCode::TrustRootExpired,
        }
    }
}

/// A validity period in Unix seconds. Both ends are included, and a missing end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeRange {
    /// Reports whether `t` lies in `[start, end]`.
    pub fn contains(&self, t: i64) -> bool {
        let after_start = self.start.is_none_or(|start| start <= t);
        let before_end = self.end.is_none_or(|end| t <= end);
        after_start && before_end
    }
}

/// One transparency log or CT log instance of the trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLogInstance {
    pub base_url: String,
    /// `hashAlgorithm` as spelled in the proto enum, such as `SHA2_256`.
    pub hash_algorithm: String,
    /// `logId.keyId`: for Rekor v2 the full (untruncated) key ID, for v1 SHA-256 of the key.
    pub log_id: Vec<u8>,
    /// `checkpointKeyId.keyId` (trusted root v0.2), when present.
    pub checkpoint_key_id: Option<Vec<u8>>,
    /// `publicKey.rawBytes`: DER SPKI, or PKCS#1 for some RSA CT logs.
    pub public_key_der: Vec<u8>,
    /// `publicKey.keyDetails`, such as `PKIX_ED25519`.
    pub key_details: String,
    pub valid_for: TimeRange,
    pub operator: Option<String>,
    origin: String,
    /// The CT log ID and key derived from `public_key_der` at load time; SCT verification uses
    /// them only while they match `public_key_der` and `key_details`.
    pub(crate) prepared_ct: crate::sct::PreparedCtLog,
    /// The checkpoint verifier built from `public_key_der` at load time.
    prepared_note: PreparedNoteVerifier,
}

impl TransparencyLogInstance {
    /// Returns the checkpoint origin: the host name of `baseUrl` (without scheme, port or path).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Builds the signed-note verifier for this log's checkpoints: Ed25519 keys use the
    /// origin-bound key ID, ECDSA P-256 keys the SHA-256 of their SPKI.
    ///
    /// # Errors
    ///
    /// [`TrustRootError::NoteKey`] when the key type cannot sign checkpoints (such as RSA) or the
    /// key bytes are malformed.
    pub fn note_verifier(&self) -> Result<NoteVerifier, TrustRootError> {
        if self.prepared_note.matches(self) {
            return self.prepared_note.verifier.clone();
        }
        build_note_verifier(&self.origin, &self.key_details, &self.public_key_der)
    }
}

/// The checkpoint verifier of a log entry, built when the trusted root is loaded. Building one
/// decompresses an Ed25519 point, which took about as many instructions as checking a checkpoint
/// signature (callgrind, `cargo bench -p stella-bench --bench bundle_verify`).
/// [`TransparencyLogInstance::note_verifier`] uses it only while the entry still contains the key it
/// came from. Equality ignores it.
#[derive(Debug, Clone)]
pub(crate) struct PreparedNoteVerifier {
    /// The `public_key_der` and `key_details` it was built from.
    source: (Vec<u8>, String),
    verifier: Result<NoteVerifier, TrustRootError>,
}

impl PartialEq for PreparedNoteVerifier {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for PreparedNoteVerifier {}

impl PreparedNoteVerifier {
    fn prepare(origin: &str, key_details: &str, public_key_der: &[u8]) -> Self {
        PreparedNoteVerifier {
            source: (public_key_der.to_vec(), key_details.to_owned()),
            verifier: build_note_verifier(origin, key_details, public_key_der),
        }
    }

    fn matches(&self, instance: &TransparencyLogInstance) -> bool {
        let (der, details) = &self.source;
        *der == instance.public_key_der && *details == instance.key_details
    }
}

fn build_note_verifier(
    origin: &str,
    key_details: &str,
    public_key_der: &[u8],
) -> Result<NoteVerifier, TrustRootError> {
    let key_error = |detail: String| TrustRootError::NoteKey {
        origin: origin.to_owned(),
        key_details: key_details.to_owned(),
        detail,
    };
    match key_details {
        KEY_DETAILS_ED25519 => {
            let raw = public_key_der
                .strip_prefix(&ED25519_SPKI_PREFIX[..])
                .ok_or_else(|| key_error("not a DER SPKI of an Ed25519 key".to_owned()))?;
            let key: [u8; 32] = raw.try_into().map_err(|_| {
                key_error(format!("Ed25519 key has {} bytes, expected 32", raw.len()))
            })?;
            NoteVerifier::ed25519(origin, &key).map_err(|e: NoteError| key_error(e.to_string()))
        }
        KEY_DETAILS_ECDSA_P256 => NoteVerifier::ecdsa_p256_spki(origin, public_key_der)
            .map_err(|e: NoteError| key_error(e.to_string())),
        _ => Err(key_error(
            "only Ed25519 and ECDSA P-256 log keys sign checkpoints".to_owned(),
        )),
    }
}

/// A Fulcio certificate authority or an RFC 3161 timestamp authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    /// `subject.commonName`, when present.
    pub common_name: Option<String>,
    /// `subject.organization`, when present.
    pub organization: Option<String>,
    pub uri: String,
    /// `certChain.certificates[].rawBytes` (DER), leaf or intermediate first. The last one is the
    /// trust anchor.
    pub cert_chain: Vec<Vec<u8>>,
    pub valid_for: TimeRange,
    pub operator: Option<String>,
    /// `cert_chain` parsed, with the issuer links whose signatures verified at load time; path
    /// validation uses it only while it matches `cert_chain`. `PreparedChain::default()` leaves
    /// every check to path validation.
    pub prepared: crate::x509::PreparedChain,
}

/// A parsed Sigstore trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    pub media_type: String,
    pub tlogs: Vec<TransparencyLogInstance>,
    pub ctlogs: Vec<TransparencyLogInstance>,
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

impl TrustedRoot {
    /// Returns the transparency log whose `logId.keyId` or `checkpointKeyId.keyId` equals `log_id`.
    pub fn tlog_by_id(&self, log_id: &[u8]) -> Option<&TransparencyLogInstance> {
        self.tlogs
            .iter()
            .find(|log| log.log_id == log_id || log.checkpoint_key_id.as_deref() == Some(log_id))
    }
}

/// A KMS or other managed public key that may sign bundles instead of a Fulcio certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    /// Identifier matched against the bundle's `publicKey.hint`.
    pub id: String,
    pub spki_der: Vec<u8>,
}

/// The imported trust root set: a Sigstore trusted root plus our own version, expiry, extra
/// signed-note keys (such as witnesses or private logs) and managed keys.
#[derive(Debug, Clone)]
pub struct TrustSet {
    /// `sha256:<hex>` of the trust set's manifest.
    pub digest: String,
    pub version: u64,
    /// Unix seconds. The set is valid up to and including this second.
    pub expires_at: i64,
    pub trusted_root: TrustedRoot,
    pub note_verifiers: Vec<NoteVerifier>,
    pub kms_keys: Vec<KmsKey>,
}

impl TrustSet {
    /// Checks that the set has not expired at `now` (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`TrustRootError::Expired`] when `now > expires_at`.
    pub fn check_valid_at(&self, now: i64) -> Result<(), TrustRootError> {
        if now > self.expires_at {
            return Err(TrustRootError::Expired {
                version: self.version,
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }

    /// Returns the keys that may sign checkpoints: each tlog key that is Ed25519 or ECDSA P-256,
    /// named by its origin, followed by the extra note verifiers.
    ///
    /// Tlogs with other key types, which sign no checkpoints today, are left out. So is a key whose
    /// fields were edited after [`parse_trusted_root`] into a malformed one, because parsing
    /// rejects a root with a malformed Ed25519 or ECDSA P-256 tlog key.
    pub fn checkpoint_verifiers(&self) -> Vec<NoteVerifier> {
        let mut verifiers: Vec<NoteVerifier> = self
            .trusted_root
            .tlogs
            .iter()
            .filter_map(|log| log.note_verifier().ok())
            .collect();
        verifiers.extend(self.note_verifiers.iter().cloned());
        verifiers
    }

    /// Returns the managed key whose id equals `hint`.
    pub fn kms_key(&self, hint: &str) -> Option<&KmsKey> {
        self.kms_keys.iter().find(|key| key.id == hint)
    }
}

/// Parses a Sigstore trusted root JSON document.
///
/// # Errors
///
/// Every [`TrustRootError`] variant except `Expired`. Examples are malformed JSON, an unsupported
/// media type, a log without `validFor.start` and a range that ends before it starts. Others are
/// invalid base64 or RFC 3339 text, a tlog `baseUrl` without host, a certificate that is not DER,
/// and a malformed Ed25519 or ECDSA P-256 tlog key (`NoteKey`).
pub fn parse_trusted_root(json: &[u8]) -> Result<TrustedRoot, TrustRootError> {
    let raw: RawTrustedRoot = serde_json::from_slice(json).map_err(|e| TrustRootError::Json {
        detail: e.to_string(),
    })?;

    if !TRUSTED_ROOT_MEDIA_TYPES.contains(&raw.media_type.as_str()) {
        return Err(TrustRootError::MediaType {
            media_type: raw.media_type,
        });
    }

    let mut tlogs = Vec::with_capacity(raw.tlogs.len());
    for (i, log) in raw.tlogs.into_iter().enumerate() {
        let log = convert_log(log, &format!("tlogs[{i}]"))?;
        // Fail at load time on a malformed checkpoint key, not on the first verification.
        if matches!(
            log.key_details.as_str(),
            KEY_DETAILS_ED25519 | KEY_DETAILS_ECDSA_P256
        ) {
            log.note_verifier()?;
        }
        tlogs.push(log);
    }

    let mut ctlogs = Vec::with_capacity(raw.ctlogs.len());
    for (i, log) in raw.ctlogs.into_iter().enumerate() {
        ctlogs.push(convert_log(log, &format!("ctlogs[{i}]"))?);
    }

    let mut certificate_authorities = Vec::with_capacity(raw.certificate_authorities.len());
    for (i, ca) in raw.certificate_authorities.into_iter().enumerate() {
        certificate_authorities.push(convert_authority(
            ca,
            &format!("certificateAuthorities[{i}]"),
        )?);
    }

    let mut timestamp_authorities = Vec::with_capacity(raw.timestamp_authorities.len());
    for (i, tsa) in raw.timestamp_authorities.into_iter().enumerate() {
        timestamp_authorities.push(convert_authority(
            tsa,
            &format!("timestampAuthorities[{i}]"),
        )?);
    }

    Ok(TrustedRoot {
        media_type: raw.media_type,
        tlogs,
        ctlogs,
        certificate_authorities,
        timestamp_authorities,
    })
}

/// Returns the host of a URL such as `https://host:443/path`: no scheme, user info, port or path.
/// Returns `None` when no host remains.
pub fn url_host(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        // IPv6 literal: the host is inside the brackets.
        bracketed.split_once(']').map(|(host, _)| host)?
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() { None } else { Some(host) }
}

/// Formats Unix seconds as RFC 3339 UTC for messages, or as the bare number when out of range.
pub fn format_time(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// Formats an optional bound for messages: RFC 3339, or `unbounded`.
pub(crate) fn format_bound(t: Option<i64>) -> String {
    t.map_or_else(|| "unbounded".to_owned(), format_time)
}

/// Parses a protobuf JSON `Timestamp` (RFC 3339) into Unix seconds, dropping fractions.
pub(crate) fn parse_rfc3339(value: &str) -> Option<i64> {
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

fn convert_log(raw: RawLog, field: &str) -> Result<TransparencyLogInstance, TrustRootError> {
    let base_url = raw.base_url.unwrap_or_default();
    let origin = url_host(&base_url)
        .ok_or_else(|| TrustRootError::BaseUrl {
            field: format!("{field}.baseUrl"),
            url: base_url.clone(),
        })?
        .to_owned();

    let key = raw.public_key.ok_or_else(|| TrustRootError::Missing {
        field: format!("{field}.publicKey"),
    })?;
    let public_key_der = decode_required(
        key.raw_bytes.as_deref(),
        &format!("{field}.publicKey.rawBytes"),
    )?;
    let key_details = key
        .key_details
        .filter(|details| !details.is_empty())
        .ok_or_else(|| TrustRootError::Missing {
            field: format!("{field}.publicKey.keyDetails"),
        })?;

    let valid_field = format!("{field}.publicKey.validFor");
    let valid_for = convert_range(key.valid_for, &valid_field)?;
    if valid_for.start.is_none() {
        // sigstore-go rejects the whole root here: a log key needs a known first day of use.
        return Err(TrustRootError::Missing {
            field: format!("{valid_field}.start"),
        });
    }

    let log_id = decode_required(
        raw.log_id.and_then(|id| id.key_id).as_deref(),
        &format!("{field}.logId.keyId"),
    )?;
    let checkpoint_key_id = match raw.checkpoint_key_id.and_then(|id| id.key_id) {
        Some(text) => Some(decode_field(
            &text,
            &format!("{field}.checkpointKeyId.keyId"),
        )?),
        None => None,
    };

    // NOTE: a CT log key that does not parse is not rejected here. It fails only the SCTs that
    // name its log (ERR_SCT_INVALID), and a root whose other CT logs are valid still loads.
    let prepared_ct = crate::sct::PreparedCtLog::prepare(&public_key_der, &key_details, &log_id);
    let prepared_note = PreparedNoteVerifier::prepare(&origin, &key_details, &public_key_der);
    Ok(TransparencyLogInstance {
        base_url,
        hash_algorithm: raw.hash_algorithm.unwrap_or_default(),
        log_id,
        checkpoint_key_id,
        public_key_der,
        key_details,
        valid_for,
        operator: raw.operator,
        origin,
        prepared_ct,
        prepared_note,
    })
}

fn convert_authority(
    raw: RawAuthority,
    field: &str,
) -> Result<CertificateAuthority, TrustRootError> {
    let certificates = raw
        .cert_chain
        .map(|chain| chain.certificates)
        .unwrap_or_default();
    if certificates.is_empty() {
        return Err(TrustRootError::Missing {
            field: format!("{field}.certChain.certificates"),
        });
    }
    let mut cert_chain = Vec::with_capacity(certificates.len());
    for (i, cert) in certificates.into_iter().enumerate() {
        let cert_field = format!("{field}.certChain.certificates[{i}].rawBytes");
        let der = decode_required(cert.raw_bytes.as_deref(), &cert_field)?;
        crate::x509::Certificate::from_der(&der).map_err(|e| TrustRootError::Certificate {
            field: cert_field,
            detail: e.to_string(),
        })?;
        cert_chain.push(der);
    }
    let subject = raw.subject.unwrap_or_default();
    let prepared = crate::x509::PreparedChain::prepare(&cert_chain);
    Ok(CertificateAuthority {
        common_name: subject.common_name,
        organization: subject.organization,
        uri: raw.uri.unwrap_or_default(),
        prepared,
        cert_chain,
        valid_for: convert_range(raw.valid_for, &format!("{field}.validFor"))?,
        operator: raw.operator,
    })
}

fn convert_range(raw: Option<RawTimeRange>, field: &str) -> Result<TimeRange, TrustRootError> {
    let Some(raw) = raw else {
        return Ok(TimeRange::default());
    };
    let parse = |value: Option<String>, name: &str| -> Result<Option<i64>, TrustRootError> {
        match value {
            None => Ok(None),
            Some(text) => parse_rfc3339(&text)
                .map(Some)
                .ok_or_else(|| TrustRootError::Time {
                    field: format!("{field}.{name}"),
                    value: text,
                }),
        }
    };
    let range = TimeRange {
        start: parse(raw.start, "start")?,
        end: parse(raw.end, "end")?,
    };
    if let (Some(start), Some(end)) = (range.start, range.end)
        && end < start
    {
        return Err(TrustRootError::TimeRangeInverted {
            field: field.to_owned(),
            start,
            end,
        });
    }
    Ok(range)
}

fn decode_required(text: Option<&str>, field: &str) -> Result<Vec<u8>, TrustRootError> {
    match text {
        Some(text) if !text.is_empty() => decode_field(text, field),
        _ => Err(TrustRootError::Missing {
            field: field.to_owned(),
        }),
    }
}

fn decode_field(text: &str, field: &str) -> Result<Vec<u8>, TrustRootError> {
    decode_proto_base64(text).ok_or_else(|| TrustRootError::Base64 {
        field: field.to_owned(),
    })
}

// Protobuf JSON shapes. `null` deserializes like an absent field.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrustedRoot {
    media_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    tlogs: Vec<RawLog>,
    #[serde(default, deserialize_with = "null_as_default")]
    ctlogs: Vec<RawLog>,
    #[serde(default, deserialize_with = "null_as_default")]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default, deserialize_with = "null_as_default")]
    timestamp_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    base_url: Option<String>,
    hash_algorithm: Option<String>,
    public_key: Option<RawPublicKey>,
    log_id: Option<RawLogId>,
    checkpoint_key_id: Option<RawLogId>,
    operator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<RawTimeRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawTimeRange {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    subject: Option<RawSubject>,
    uri: Option<String>,
    cert_chain: Option<RawCertChain>,
    valid_for: Option<RawTimeRange>,
    operator: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSubject {
    organization: Option<String>,
    common_name: Option<String>,
}

#[derive(Deserialize)]
struct RawCertChain {
    #[serde(default, deserialize_with = "null_as_default")]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: Option<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGING: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-trust-roots/staging.trusted_root.json"
    );
    const PRODUCTION: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-trust-roots/production.trusted_root.json"
    );

    fn read_vector(path: &str) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                crate::test_vectors::skip_or_fail(&format!("vector {path} not readable: {e}"));
                None
            }
        }
    }

    fn minimal_root(tlog_valid_for: &str) -> String {
        format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs":[{{"baseUrl":"https://log.example:8443/api","hashAlgorithm":"SHA2_256",
              "publicKey":{{"rawBytes":"MCowBQYDK2VwAyEAPn+AREHoBaZ7wgS1zBqpxmLSGnyhxXj4lFxSdWVB8o8=",
                "keyDetails":"PKIX_ED25519","validFor":{tlog_valid_for}}},
              "logId":{{"keyId":"8w1amZ2S5mJIQkQmPxdMuOrL/oJkvFg9MnQXmeOCXck="}}}}]}}"#
        )
    }

    #[test]
    fn time_range_includes_both_ends() {
        let range = TimeRange {
            start: Some(10),
            end: Some(20),
        };
        assert!(!range.contains(9));
        assert!(range.contains(10));
        assert!(range.contains(20));
        assert!(!range.contains(21));
        assert!(
            TimeRange {
                start: Some(10),
                end: None
            }
            .contains(i64::MAX)
        );
        assert!(TimeRange::default().contains(i64::MIN));
    }

    #[test]
    fn format_time_is_rfc3339() {
        assert_eq!(format_time(1_749_729_740), "2025-06-12T12:02:20Z");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_bound(None), "unbounded");
    }

    #[test]
    fn url_host_strips_scheme_port_path() {
        let rows = [
            (
                "https url",
                "https://log2025-1.rekor.sigstore.dev",
                Some("log2025-1.rekor.sigstore.dev"),
            ),
            (
                "port and path",
                "http://rekor-local:3003/api/v2",
                Some("rekor-local"),
            ),
            (
                "user info",
                "https://user@host.example/",
                Some("host.example"),
            ),
            ("ipv6 literal", "https://[::1]:8080/x", Some("::1")),
            ("no scheme", "host.example/path", Some("host.example")),
            ("empty", "", None),
            ("scheme only", "https://", None),
        ];
        for (name, url, want) in rows {
            assert_eq!(url_host(url), want, "row {name}: url {url:?}");
        }
    }

    #[test]
    fn parse_staging_root_logs() {
        let Some(json) = read_vector(STAGING) else {
            return;
        };
        let root = parse_trusted_root(&json).expect("staging root parses");
        let origins: Vec<&str> = root
            .tlogs
            .iter()
            .map(TransparencyLogInstance::origin)
            .collect();
        assert_eq!(
            origins,
            [
                "rekor.sigstage.dev",
                "log2025-alpha1.rekor.sigstage.dev",
                "log2025-alpha2.rekor.sigstage.dev",
                "log2025-alpha3.rekor.sigstage.dev"
            ]
        );
        let alpha1 = &root.tlogs[1];
        assert_eq!(alpha1.valid_for.start, Some(1_744_761_600)); // 2025-04-16T00:00:00Z
        assert_eq!(alpha1.valid_for.end, Some(1_756_944_000)); // 2025-09-04T00:00:00Z
        let verifier = alpha1.note_verifier().expect("Ed25519 log key");
        assert_eq!(verifier.name(), "log2025-alpha1.rekor.sigstage.dev");
        assert_eq!(verifier.key_id(), 0xf30d_5a99);
        assert_eq!(root.timestamp_authorities.len(), 1);
        assert_eq!(root.certificate_authorities[0].cert_chain.len(), 2);
    }

    #[test]
    fn changed_log_key_rebuilds_note_verifier() {
        let Some(json) = read_vector(PRODUCTION) else {
            return;
        };
        let root = parse_trusted_root(&json).expect("production root parses");
        let find = |origin: &str| {
            root.tlogs
                .iter()
                .find(|log| log.origin() == origin)
                .cloned()
                .expect("log listed")
        };
        let v1 = find("rekor.sigstore.dev");
        let mut changed = find("log2025-1.rekor.sigstore.dev");

        // The entry now contains the v1 P-256 key: the verifier prepared for its Ed25519 key at
        // load time must not be used.
        changed.public_key_der = v1.public_key_der.clone();
        changed.key_details = v1.key_details.clone();
        let verifier = changed.note_verifier().expect("P-256 key");
        assert_eq!(
            verifier.key_id(),
            build_note_verifier(changed.origin(), &v1.key_details, &v1.public_key_der)
                .expect("P-256 key")
                .key_id()
        );
        assert_ne!(verifier.key_id(), 0xcf11_9915);

        changed.public_key_der.truncate(5);
        assert!(matches!(
            changed.note_verifier(),
            Err(TrustRootError::NoteKey { .. })
        ));
    }

    #[test]
    fn parse_production_root_verifiers() {
        let Some(json) = read_vector(PRODUCTION) else {
            return;
        };
        let root = parse_trusted_root(&json).expect("production root parses");
        let log2025 = root
            .tlogs
            .iter()
            .find(|log| log.origin() == "log2025-1.rekor.sigstore.dev")
            .expect("log2025-1 listed");
        assert_eq!(
            log2025.note_verifier().expect("Ed25519 key").key_id(),
            0xcf11_9915
        );
        let v1 = root
            .tlogs
            .iter()
            .find(|log| log.origin() == "rekor.sigstore.dev")
            .expect("v1 listed");
        assert_eq!(v1.note_verifier().expect("P-256 key").key_id(), 0xc0d2_3d6a);
        // Fractional seconds are dropped: 2022-10-31T23:59:59.999Z.
        assert_eq!(root.ctlogs[0].valid_for.end, Some(1_667_260_799));
        let set = TrustSet {
            digest: "sha256:00".to_owned(),
            version: 1,
            expires_at: 2_000_000_000,
            trusted_root: root,
            note_verifiers: Vec::new(),
            kms_keys: Vec::new(),
        };
        assert_eq!(set.checkpoint_verifiers().len(), 2);
    }

    #[test]
    fn parse_rejects_missing_tlog_start() {
        let json = minimal_root(r#"{"end":"2030-01-01T00:00:00Z"}"#);
        let err = parse_trusted_root(json.as_bytes()).expect_err("tlog without start");
        assert_eq!(
            err,
            TrustRootError::Missing {
                field: "tlogs[0].publicKey.validFor.start".to_owned()
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::TrustRootInvalid);
    }

    #[test]
    fn parse_accepts_null_end_and_port() {
        let json = minimal_root(r#"{"start":"2025-04-16T00:00:00Z","end":null}"#);
        let root = parse_trusted_root(json.as_bytes()).expect("valid root");
        assert_eq!(root.tlogs[0].origin(), "log.example");
        assert_eq!(root.tlogs[0].valid_for.end, None);
    }

    #[test]
    fn parse_rejects_bad_inputs() {
        type Row = (&'static str, String, fn(&TrustRootError) -> bool);
        let rows: [Row; 5] = [
            ("not json", "{".to_owned(), |e| {
                matches!(e, TrustRootError::Json { .. })
            }),
            (
                "unknown media type",
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot.v9+json"}"#.to_owned(),
                |e| matches!(e, TrustRootError::MediaType { .. }),
            ),
            (
                "inverted range",
                minimal_root(r#"{"start":"2030-01-01T00:00:00Z","end":"2020-01-01T00:00:00Z"}"#),
                |e| matches!(e, TrustRootError::TimeRangeInverted { .. }),
            ),
            ("bad time", minimal_root(r#"{"start":"yesterday"}"#), |e| {
                matches!(e, TrustRootError::Time { .. })
            }),
            (
                "no host",
                minimal_root(r#"{"start":"2025-04-16T00:00:00Z"}"#)
                    .replace("https://log.example:8443/api", "https://"),
                |e| matches!(e, TrustRootError::BaseUrl { .. }),
            ),
        ];
        for (name, json, check) in rows {
            let err = parse_trusted_root(json.as_bytes()).expect_err(name);
            assert!(check(&err), "row {name}: unexpected error {err:?}");
            assert_eq!(
                err.reason_code(),
                ReasonCode::TrustRootInvalid,
                "row {name}"
            );
        }
    }

    #[test]
    fn trust_set_expiry_is_inclusive() {
        let json = minimal_root(r#"{"start":"2025-04-16T00:00:00Z"}"#);
        let set = TrustSet {
            digest: "sha256:00".to_owned(),
            version: 7,
            expires_at: 100,
            trusted_root: parse_trusted_root(json.as_bytes()).expect("valid root"),
            note_verifiers: Vec::new(),
            kms_keys: Vec::new(),
        };
        assert_eq!(set.check_valid_at(100), Ok(()));
        let err = set.check_valid_at(101).expect_err("expired");
        assert_eq!(
            err,
            TrustRootError::Expired {
                version: 7,
                expires_at: 100,
                now: 101
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::TrustRootExpired);
    }
}
