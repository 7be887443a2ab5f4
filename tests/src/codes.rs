//! Reason codes the scenarios expect, spelled as the binaries print them.
//!
//! The suites test the binaries as a black box, so they do not link the library's catalog
//! (`stella_verify::reason::ReasonCode`). A misspelt code here fails the scenario that uses it.

/// A file inside a bundle does not match the digest in its manifest.
pub const FILE_DIGEST_MISMATCH: &str = "ERR_FILE_DIGEST_MISMATCH";
/// A tar entry is not a plain relative file (absolute path, `..`, link, device, fifo).
pub const BUNDLE_ENTRY_REJECTED: &str = "ERR_BUNDLE_ENTRY_REJECTED";
/// A bundle exceeds a size limit.
pub const BUNDLE_TOO_LARGE: &str = "ERR_BUNDLE_TOO_LARGE";
/// The trust root set has expired.
pub const TRUST_ROOT_EXPIRED: &str = "ERR_TRUST_ROOT_EXPIRED";
/// The logged entry does not match the signed content.
pub const REKOR_ENTRY_MISMATCH: &str = "ERR_REKOR_ENTRY_MISMATCH";
/// No cached tile or tlog proof covers the entry.
pub const REKOR_TILE_MISSING: &str = "ERR_REKOR_TILE_MISSING";
/// No log in the trust root set has the requested origin.
pub const REKOR_LOG_UNKNOWN: &str = "ERR_REKOR_LOG_UNKNOWN";
/// An inclusion proof does not lead to the checkpoint's root.
pub const REKOR_PROOF_INVALID: &str = "ERR_REKOR_PROOF_INVALID";
/// A checkpoint lacks a valid signature by its log.
pub const REKOR_CHECKPOINT_INVALID: &str = "ERR_REKOR_CHECKPOINT_INVALID";
/// The DSSE envelope signature does not verify.
pub const DSSE_SIGNATURE_INVALID: &str = "ERR_DSSE_SIGNATURE_INVALID";
/// The evidence bundle id is unknown to the attestor.
pub const EVIDENCE_NOT_FOUND: &str = "ERR_EVIDENCE_NOT_FOUND";
/// The target environment has no valid policy.
pub const POLICY_INVALID: &str = "ERR_POLICY_INVALID";
/// A policy requirement is not met.
pub const POLICY_REQUIREMENT_UNMET: &str = "ERR_POLICY_REQUIREMENT_UNMET";
/// The gate could not reach the attestor within its deadline.
pub const ATTESTOR_UNAVAILABLE: &str = "ERR_ATTESTOR_UNAVAILABLE";
/// A Sigstore bundle does not parse, has an unknown media type or lacks a required field.
pub const SIGSTORE_BUNDLE_INVALID: &str = "ERR_SIGSTORE_BUNDLE_INVALID";
/// A Rekor v1 signed entry timestamp does not verify.
pub const REKOR_SET_INVALID: &str = "ERR_REKOR_SET_INVALID";
/// The bundle has no RFC 3161 timestamp and no other trusted signing time.
pub const TIMESTAMP_MISSING: &str = "ERR_TIMESTAMP_MISSING";
/// An RFC 3161 timestamp is invalid or from an untrusted authority.
pub const TIMESTAMP_INVALID: &str = "ERR_TIMESTAMP_INVALID";
/// The signing certificate does not chain to a trusted CA at the signing time.
pub const CERT_CHAIN_INVALID: &str = "ERR_CERT_CHAIN_INVALID";
/// The trusted root does not parse or breaks a validity rule.
pub const TRUST_ROOT_INVALID: &str = "ERR_TRUST_ROOT_INVALID";
/// No trusted root is configured or present.
pub const TRUST_ROOT_MISSING: &str = "ERR_TRUST_ROOT_MISSING";
/// The signer is not the required identity, issuer or key.
pub const IDENTITY_MISMATCH: &str = "ERR_IDENTITY_MISMATCH";
/// The artifact digest is not the signed digest or a statement subject.
pub const SUBJECT_MISMATCH: &str = "ERR_SUBJECT_MISMATCH";
/// A proof names another tree root than the verified checkpoint.
pub const REKOR_ROOT_MISMATCH: &str = "ERR_REKOR_ROOT_MISMATCH";
/// The call carries no valid token: missing, malformed, badly signed, or with a wrong algorithm,
/// key, issuer, audience or validity time.
pub const AUTH_UNAUTHENTICATED: &str = "ERR_AUTH_UNAUTHENTICATED";
/// The call carries a valid token without the scope the call needs.
pub const AUTH_PERMISSION_DENIED: &str = "ERR_AUTH_PERMISSION_DENIED";
