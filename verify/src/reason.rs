//! The closed catalog of reason codes.
//!
//! Every failure that reaches an operator carries exactly one of these codes.
//! Codes are stable: a released code never changes its spelling or meaning.
//! `docs/reason-codes.md` documents each code with the operator's action, and a
//! test checks that the document and this enum list the same codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable reason code from the closed catalog.
///
/// Codes order by their spelling, so sorted sets of codes serialize in alphabetical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    // Offline bundle archives and manifests.
    #[serde(rename = "ERR_BUNDLE_MALFORMED")]
    BundleMalformed,
    #[serde(rename = "ERR_BUNDLE_ENTRY_REJECTED")]
    BundleEntryRejected,
    #[serde(rename = "ERR_BUNDLE_TOO_LARGE")]
    BundleTooLarge,
    #[serde(rename = "ERR_FILE_DIGEST_MISMATCH")]
    FileDigestMismatch,

    // Trust roots.
    #[serde(rename = "ERR_TRUST_ROOT_INVALID")]
    TrustRootInvalid,
    #[serde(rename = "ERR_TRUST_ROOT_MISSING")]
    TrustRootMissing,
    #[serde(rename = "ERR_TRUST_ROOT_EXPIRED")]
    TrustRootExpired,

    // Transparency log (Rekor) evidence.
    #[serde(rename = "ERR_REKOR_ENTRY_MISSING")]
    RekorEntryMissing,
    #[serde(rename = "ERR_REKOR_ENTRY_MISMATCH")]
    RekorEntryMismatch,
    #[serde(rename = "ERR_REKOR_ENTRY_UNSUPPORTED")]
    RekorEntryUnsupported,
    #[serde(rename = "ERR_REKOR_LOG_UNKNOWN")]
    RekorLogUnknown,
    #[serde(rename = "ERR_REKOR_TILE_MISSING")]
    RekorTileMissing,
    #[serde(rename = "ERR_REKOR_TILE_INVALID")]
    RekorTileInvalid,
    #[serde(rename = "ERR_REKOR_ROOT_MISMATCH")]
    RekorRootMismatch,
    #[serde(rename = "ERR_REKOR_PROOF_INVALID")]
    RekorProofInvalid,
    #[serde(rename = "ERR_REKOR_CHECKPOINT_INVALID")]
    RekorCheckpointInvalid,
    #[serde(rename = "ERR_REKOR_CHECKPOINT_INCONSISTENT")]
    RekorCheckpointInconsistent,
    #[serde(rename = "ERR_REKOR_SET_INVALID")]
    RekorSetInvalid,

    // Sigstore bundles and their signatures.
    #[serde(rename = "ERR_SIGSTORE_BUNDLE_INVALID")]
    SigstoreBundleInvalid,
    #[serde(rename = "ERR_DSSE_SIGNATURE_INVALID")]
    DsseSignatureInvalid,
    #[serde(rename = "ERR_DSSE_PAYLOAD_INVALID")]
    DssePayloadInvalid,
    #[serde(rename = "ERR_MESSAGE_SIGNATURE_INVALID")]
    MessageSignatureInvalid,
    #[serde(rename = "ERR_CERT_CHAIN_INVALID")]
    CertChainInvalid,
    #[serde(rename = "ERR_SCT_INVALID")]
    SctInvalid,
    #[serde(rename = "ERR_IDENTITY_MISMATCH")]
    IdentityMismatch,
    #[serde(rename = "ERR_TIMESTAMP_MISSING")]
    TimestampMissing,
    #[serde(rename = "ERR_TIMESTAMP_INVALID")]
    TimestampInvalid,
    #[serde(rename = "ERR_SUBJECT_MISMATCH")]
    SubjectMismatch,

    // Gate evaluation.
    #[serde(rename = "ERR_EVIDENCE_NOT_FOUND")]
    EvidenceNotFound,
    #[serde(rename = "ERR_POLICY_INVALID")]
    PolicyInvalid,
    #[serde(rename = "ERR_POLICY_REQUIREMENT_UNMET")]
    PolicyRequirementUnmet,
    #[serde(rename = "ERR_ATTESTOR_UNAVAILABLE")]
    AttestorUnavailable,
    #[serde(rename = "ERR_EVIDENCE_STALE")]
    EvidenceStale,
    #[serde(rename = "ERR_CHECKPOINT_STALE")]
    CheckpointStale,
    #[serde(rename = "ERR_WITNESS_COSIGNATURES_INSUFFICIENT")]
    WitnessCosignaturesInsufficient,
    #[serde(rename = "ERR_REQUEST_ID_CONFLICT")]
    RequestIdConflict,

    // Break-glass overrides.
    #[serde(rename = "ERR_BREAK_GLASS_REFUSED")]
    BreakGlassRefused,
    /// Not a failure: the marker that a break-glass override decided `allow`.
    #[serde(rename = "BREAK_GLASS_OVERRIDE")]
    BreakGlassOverride,

    // Authority tokens on service calls.
    #[serde(rename = "ERR_AUTH_UNAUTHENTICATED")]
    AuthUnauthenticated,
    #[serde(rename = "ERR_AUTH_PERMISSION_DENIED")]
    AuthPermissionDenied,

    // Audit trail.
    #[serde(rename = "ERR_DECISION_CHAIN_BROKEN")]
    DecisionChainBroken,
}

impl ReasonCode {
    /// Every code in the catalog, in declaration order.
    pub const ALL: [ReasonCode; 41] = [
        ReasonCode::BundleMalformed,
        ReasonCode::BundleEntryRejected,
        ReasonCode::BundleTooLarge,
        ReasonCode::FileDigestMismatch,
        ReasonCode::TrustRootInvalid,
        ReasonCode::TrustRootMissing,
        ReasonCode::TrustRootExpired,
        ReasonCode::RekorEntryMissing,
        ReasonCode::RekorEntryMismatch,
        ReasonCode::RekorEntryUnsupported,
        ReasonCode::RekorLogUnknown,
        ReasonCode::RekorTileMissing,
        ReasonCode::RekorTileInvalid,
        ReasonCode::RekorRootMismatch,
        ReasonCode::RekorProofInvalid,
        ReasonCode::RekorCheckpointInvalid,
        ReasonCode::RekorCheckpointInconsistent,
        ReasonCode::RekorSetInvalid,
        ReasonCode::SigstoreBundleInvalid,
        ReasonCode::DsseSignatureInvalid,
        ReasonCode::DssePayloadInvalid,
        ReasonCode::MessageSignatureInvalid,
        ReasonCode::CertChainInvalid,
        ReasonCode::SctInvalid,
        ReasonCode::IdentityMismatch,
        ReasonCode::TimestampMissing,
        ReasonCode::TimestampInvalid,
        ReasonCode::SubjectMismatch,
        ReasonCode::EvidenceNotFound,
        ReasonCode::PolicyInvalid,
        ReasonCode::PolicyRequirementUnmet,
        ReasonCode::AttestorUnavailable,
        ReasonCode::EvidenceStale,
        ReasonCode::CheckpointStale,
        ReasonCode::WitnessCosignaturesInsufficient,
        ReasonCode::RequestIdConflict,
        ReasonCode::BreakGlassRefused,
        ReasonCode::BreakGlassOverride,
        ReasonCode::AuthUnauthenticated,
        ReasonCode::AuthPermissionDenied,
        ReasonCode::DecisionChainBroken,
    ];

    /// Returns the stable spelling, such as `ERR_REKOR_TILE_MISSING`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BundleMalformed => "ERR_BUNDLE_MALFORMED",
            ReasonCode::BundleEntryRejected => "ERR_BUNDLE_ENTRY_REJECTED",
            ReasonCode::BundleTooLarge => "ERR_BUNDLE_TOO_LARGE",
            ReasonCode::FileDigestMismatch => "ERR_FILE_DIGEST_MISMATCH",
            ReasonCode::TrustRootInvalid => "ERR_TRUST_ROOT_INVALID",
            ReasonCode::TrustRootMissing => "ERR_TRUST_ROOT_MISSING",
            ReasonCode::TrustRootExpired => "ERR_TRUST_ROOT_EXPIRED",
            ReasonCode::RekorEntryMissing => "ERR_REKOR_ENTRY_MISSING",
            ReasonCode::RekorEntryMismatch => "ERR_REKOR_ENTRY_MISMATCH",
            ReasonCode::RekorEntryUnsupported => "ERR_REKOR_ENTRY_UNSUPPORTED",
            ReasonCode::RekorLogUnknown => "ERR_REKOR_LOG_UNKNOWN",
            ReasonCode::RekorTileMissing => "ERR_REKOR_TILE_MISSING",
            ReasonCode::RekorTileInvalid => "ERR_REKOR_TILE_INVALID",
            ReasonCode::RekorRootMismatch => "ERR_REKOR_ROOT_MISMATCH",
            ReasonCode::RekorProofInvalid => "ERR_REKOR_PROOF_INVALID",
            ReasonCode::RekorCheckpointInvalid => "ERR_REKOR_CHECKPOINT_INVALID",
            ReasonCode::RekorCheckpointInconsistent => "ERR_REKOR_CHECKPOINT_INCONSISTENT",
            ReasonCode::RekorSetInvalid => "ERR_REKOR_SET_INVALID",
            ReasonCode::SigstoreBundleInvalid => "ERR_SIGSTORE_BUNDLE_INVALID",
            ReasonCode::DsseSignatureInvalid => "ERR_DSSE_SIGNATURE_INVALID",
            ReasonCode::DssePayloadInvalid => "ERR_DSSE_PAYLOAD_INVALID",
            ReasonCode::MessageSignatureInvalid => "ERR_MESSAGE_SIGNATURE_INVALID",
            ReasonCode::CertChainInvalid => "ERR_CERT_CHAIN_INVALID",
            ReasonCode::SctInvalid => "ERR_SCT_INVALID",
            ReasonCode::IdentityMismatch => "ERR_IDENTITY_MISMATCH",
            ReasonCode::TimestampMissing => "ERR_TIMESTAMP_MISSING",
            ReasonCode::TimestampInvalid => "ERR_TIMESTAMP_INVALID",
            ReasonCode::SubjectMismatch => "ERR_SUBJECT_MISMATCH",
            ReasonCode::EvidenceNotFound => "ERR_EVIDENCE_NOT_FOUND",
            ReasonCode::PolicyInvalid => "ERR_POLICY_INVALID",
            ReasonCode::PolicyRequirementUnmet => "ERR_POLICY_REQUIREMENT_UNMET",
            ReasonCode::AttestorUnavailable => "ERR_ATTESTOR_UNAVAILABLE",
            ReasonCode::EvidenceStale => "ERR_EVIDENCE_STALE",
            ReasonCode::CheckpointStale => "ERR_CHECKPOINT_STALE",
            ReasonCode::WitnessCosignaturesInsufficient => "ERR_WITNESS_COSIGNATURES_INSUFFICIENT",
            ReasonCode::RequestIdConflict => "ERR_REQUEST_ID_CONFLICT",
            ReasonCode::BreakGlassRefused => "ERR_BREAK_GLASS_REFUSED",
            ReasonCode::BreakGlassOverride => "BREAK_GLASS_OVERRIDE",
            ReasonCode::AuthUnauthenticated => "ERR_AUTH_UNAUTHENTICATED",
            ReasonCode::AuthPermissionDenied => "ERR_AUTH_PERMISSION_DENIED",
            ReasonCode::DecisionChainBroken => "ERR_DECISION_CHAIN_BROKEN",
        }
    }

    /// Parses the stable spelling back into a code.
    pub fn parse(text: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl Ord for ReasonCode {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for ReasonCode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that maps to exactly one reason code.
pub trait HasReasonCode {
    /// Returns the catalog code for this error.
    fn reason_code(&self) -> ReasonCode;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_codes_round_trip() {
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(code), "{code}");
            let json = serde_json::to_string(&code).expect("serialize code");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn codes_order_by_spelling() {
        let mut codes = ReasonCode::ALL.to_vec();
        codes.sort();
        let spellings: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
        let mut sorted = spellings.clone();
        sorted.sort_unstable();
        assert_eq!(spellings, sorted);
    }

    #[test]
    fn all_codes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ReasonCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
        }
    }
}
