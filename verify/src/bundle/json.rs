//! Protobuf JSON shapes of the Sigstore bundle, as read before validation. Every field is
//! optional here, and the parent module decides what is required.

use serde::Deserialize;

use super::BundleError;
use crate::dsse::RawEnvelope;

/// A protobuf JSON int64: a decimal string, or a plain JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawInt64 {
    Text(String),
    Number(i64),
}

impl RawInt64 {
    pub(super) fn to_i64(&self, field: &str) -> Result<i64, BundleError> {
        match self {
            RawInt64::Number(value) => Ok(*value),
            RawInt64::Text(text) => text.parse::<i64>().map_err(|_| BundleError::Invalid {
                field: field.to_owned(),
                reason: format!("{text:?} is not a decimal int64"),
            }),
        }
    }

    pub(super) fn to_u64(&self, field: &str) -> Result<u64, BundleError> {
        let value = self.to_i64(field)?;
        u64::try_from(value).map_err(|_| BundleError::Invalid {
            field: field.to_owned(),
            reason: format!("{value} is negative"),
        })
    }
}

/// The top-level bundle object. Unknown fields are rejected, as protobuf JSON parsers do by
/// default, so that a bundle cannot carry content that verification never looks at.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawBundle {
    pub(super) media_type: Option<String>,
    pub(super) verification_material: Option<RawVerificationMaterial>,
    pub(super) message_signature: Option<RawMessageSignature>,
    pub(super) dsse_envelope: Option<RawEnvelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawVerificationMaterial {
    pub(super) certificate: Option<RawBytesField>,
    pub(super) x509_certificate_chain: Option<RawCertificateChain>,
    pub(super) public_key: Option<RawPublicKeyIdentifier>,
    #[serde(default)]
    pub(super) tlog_entries: Vec<RawTlogEntry>,
    pub(super) timestamp_verification_data: Option<RawTimestampData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawBytesField {
    pub(super) raw_bytes: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawCertificateChain {
    #[serde(default)]
    pub(super) certificates: Vec<RawBytesField>,
}

#[derive(Deserialize)]
pub(super) struct RawPublicKeyIdentifier {
    pub(super) hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawTimestampData {
    #[serde(default)]
    pub(super) rfc3161_timestamps: Vec<RawSignedTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawSignedTimestamp {
    pub(super) signed_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawTlogEntry {
    pub(super) log_index: Option<RawInt64>,
    pub(super) log_id: Option<RawLogId>,
    pub(super) kind_version: Option<RawKindVersion>,
    pub(super) integrated_time: Option<RawInt64>,
    pub(super) inclusion_promise: Option<RawInclusionPromise>,
    pub(super) inclusion_proof: Option<RawInclusionProof>,
    pub(super) canonicalized_body: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawLogId {
    pub(super) key_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawKindVersion {
    pub(super) kind: Option<String>,
    pub(super) version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawInclusionPromise {
    pub(super) signed_entry_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawInclusionProof {
    pub(super) log_index: Option<RawInt64>,
    pub(super) root_hash: Option<String>,
    pub(super) tree_size: Option<RawInt64>,
    #[serde(default)]
    pub(super) hashes: Vec<String>,
    pub(super) checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
pub(super) struct RawCheckpoint {
    pub(super) envelope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMessageSignature {
    pub(super) message_digest: Option<RawMessageDigest>,
    pub(super) signature: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawMessageDigest {
    pub(super) algorithm: Option<String>,
    pub(super) digest: Option<String>,
}
