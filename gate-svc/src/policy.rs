//! The gate policy: per target environment, the signed evidence a promotion needs, how fresh
//! that evidence and its log checkpoint must be, and what to decide when a check cannot be
//! completed yet.
//!
//! ```yaml
//! environments:
//!   prod:
//!     require:
//!       - predicate_type: https://slsa.dev/provenance/v1   # optional
//!         identity: /https://github\.com/acme/.+/  # exact SAN, or /regex/ (full match)
//!         issuer: https://token.actions.githubusercontent.com
//!       - predicate_type: https://stella.dev/scan/v1
//!         kms_key_id: release-signing-2026         # instead of identity and issuer
//!     min_witness_cosignatures: 1        # default 0
//!     max_evidence_age: 30d              # optional; units s, m, h, d
//!     max_checkpoint_age: 24h            # optional
//!     on_missing_proof: pending          # or deny (the default)
//!     on_attestor_unavailable: pending   # or deny (the default)
//!     on_stale_checkpoint: pending       # or deny (the default)
//!     break_glass:                       # absent: no break-glass for this environment
//!       max_duration: 4h
//! ```
//!
//! The file is validated completely on load. An error names the file, the line and column,
//! and the field, such as `policy.yaml:4:9: environments.prod.require[0].issuer: missing`.
//! Unknown fields and keys given twice are errors, so a misspelt key cannot silently weaken the
//! policy.

mod locate;
mod nesting;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use regex::Regex;
use sha2::{Digest, Sha256};
use stella_verify::reason::{HasReasonCode, ReasonCode};

pub use locate::Position;

/// Maximum policy file size, in bytes. Real policies are a few kilobytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Maximum `min_witness_cosignatures`. Real witness networks have a handful of witnesses, so a
/// larger number is a typo that no checkpoint could ever meet.
pub const MAX_WITNESS_COSIGNATURES: u32 = 64;

/// Maximum policy duration, in seconds: 36,500 days (about 100 years). Adding it to any Unix
/// time of this millennium stays far from `i64` overflow.
pub const MAX_DURATION_SECS: u64 = 36_500 * 86_400;

/// A loaded and validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// "sha256:<hex>" of the policy file bytes.
    pub digest: String,
    pub environments: BTreeMap<String, Environment>,
}

/// The rules for one target environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub require: Vec<Requirement>,
    /// Minimum number of distinct witnesses whose verified cosignatures the checkpoint of each
    /// counted entry carries. 0 to [`MAX_WITNESS_COSIGNATURES`].
    pub min_witness_cosignatures: u32,
    /// Maximum seconds from an entry's verified signing time to the evaluation time.
    pub max_evidence_age_secs: Option<u64>,
    /// Maximum seconds from the newest witness cosignature of an entry's checkpoint to the
    /// evaluation time.
    pub max_checkpoint_age_secs: Option<u64>,
    pub on_missing_proof: Fallback,
    pub on_attestor_unavailable: Fallback,
    /// Decision for `ERR_CHECKPOINT_STALE` and `ERR_WITNESS_COSIGNATURES_INSUFFICIENT`.
    pub on_stale_checkpoint: Fallback,
    /// `None` when the environment allows no break-glass override.
    pub break_glass: Option<BreakGlassPolicy>,
}

/// Limits of break-glass overrides in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakGlassPolicy {
    /// Maximum duration of an override, in seconds (at least 1).
    pub max_duration_secs: u64,
}

/// Decision to take when evidence cannot be checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Deny,
    Pending,
}

/// One piece of signed evidence that must cover every subject of a promotion.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// In-toto predicate type of a DSSE statement; `None` accepts any signed statement or
    /// message signature.
    pub predicate_type: Option<String>,
    pub signer: SignerMatcher,
}

/// The signers a requirement accepts.
#[derive(Debug, Clone)]
pub enum SignerMatcher {
    /// A signing certificate's identity (SAN) and OIDC issuer. The issuer is compared exactly
    /// and is never empty.
    Certificate { identity: IdentityMatcher, issuer: String },
    /// A managed key of the trust root set, by id. Reports name such a signer with identity
    /// `key:<id>` and an empty issuer.
    KmsKey(String),
}

impl SignerMatcher {
    /// Returns whether a verified signer with this identity and issuer is accepted.
    pub fn matches(&self, identity: &str, issuer: &str) -> bool {
        match self {
            SignerMatcher::Certificate {
                identity: expected_identity,
                issuer: expected_issuer,
            } => expected_identity.matches(identity) && issuer == expected_issuer,
            SignerMatcher::KmsKey(key_id) => {
                issuer.is_empty() && identity.strip_prefix("key:") == Some(key_id.as_str())
            }
        }
    }
}

/// The signer identity (certificate SAN) a requirement accepts.
#[derive(Debug, Clone)]
pub enum IdentityMatcher {
    Exact(String),
    /// Written `/pattern/` in the policy; must match the whole identity.
    Pattern {
        source: String,
        regex: Regex,
    },
}

impl IdentityMatcher {
    /// Returns whether `identity` is accepted.
    pub fn matches(&self, identity: &str) -> bool {
        match self {
            IdentityMatcher::Exact(expected) => expected == identity,
            IdentityMatcher::Pattern { regex, .. } => regex.is_match(identity),
        }
    }
}

impl fmt::Display for IdentityMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityMatcher::Exact(identity) => f.write_str(identity),
            IdentityMatcher::Pattern { source, .. } => write!(f, "/{source}/"),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.predicate_type {
            Some(predicate_type) => write!(f, "predicate_type={predicate_type} ")?,
            None => f.write_str("predicate_type=any ")?,
        }
        match &self.signer {
            SignerMatcher::Certificate { identity, issuer } => write!(f, "identity={identity} issuer={issuer}"),
            SignerMatcher::KmsKey(key_id) => write!(f, "kms_key_id={key_id}"),
        }
    }
}

/// Formats seconds in the policy's duration syntax, with the largest unit that divides them
/// exactly, such as `30d` or `90s`.
pub fn format_duration(seconds: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds != 0 && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// A policy file that cannot be used. The gate does not start with one, and an import of one
/// is rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot read the policy file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes, maximum is {MAX_POLICY_BYTES}")]
    TooLarge { file: String, size: usize },
    /// The file nests too deeply to be a policy; checked before the YAML parse.
    #[error("{}: nesting too deep: {why}", Place { file, position: Some(*position) })]
    TooDeep {
        file: String,
        position: Position,
        why: String,
    },
    /// The bytes are not one valid YAML document. `position` is `None` for faults that
    /// `serde_yaml_ng` reports without one, such as a second document.
    #[error("{}: invalid YAML: {source}", Place { file, position: *position })]
    Yaml {
        file: String,
        position: Option<Position>,
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// Valid YAML with an invalid field. `position` is the field's value, or its key for an
    /// unknown or duplicate key, or the enclosing mapping for a missing field.
    #[error("{}: {field}: {why}", Place { file, position: *position })]
    Field {
        file: String,
        position: Option<Position>,
        field: String,
        why: String,
    },
}

/// `file:line:column`, or `file` alone without a position.
struct Place<'a> {
    file: &'a str,
    position: Option<Position>,
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(f, "{}:{}:{}", self.file, position.line, position.column),
            None => f.write_str(self.file),
        }
    }
}

impl HasReasonCode for PolicyError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            PolicyError::Read { .. }
            | PolicyError::TooLarge { .. }
            | PolicyError::TooDeep { .. }
            | PolicyError::Yaml { .. }
            | PolicyError::Field { .. } => ReasonCode::PolicyInvalid,
        }
    }
}

/// Reads and validates a policy file. Errors name the file as `path` displays.
///
/// # Errors
///
/// [`PolicyError::Read`] when the file cannot be read, otherwise as [`parse_policy`].
pub fn load_policy(path: &Path) -> Result<Policy, PolicyError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
        file: file.clone(),
        source,
    })?;
    parse_policy(&file, &bytes)
}

/// Parses and validates policy bytes; `file` names the source in errors.
///
/// # Errors
///
/// [`PolicyError::TooLarge`], [`PolicyError::Yaml`] for syntax errors, and
/// [`PolicyError::Field`] naming the first invalid field or duplicate key.
pub fn parse_policy(file: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            file: file.to_owned(),
            size: bytes.len(),
        });
    }
    if let Some(too_deep) = nesting::check_nesting(bytes) {
        return Err(PolicyError::TooDeep {
            file: file.to_owned(),
            position: too_deep.position,
            why: too_deep.why,
        });
    }
    let yaml_error = |source: serde_yaml_ng::Error| PolicyError::Yaml {
        file: file.to_owned(),
        position: source.location().map(|location| Position::from(&location)),
        source,
    };

    // The duplicate check runs first because the parse into a `Value` would reject a duplicate
    // key at the start of its mapping instead of at the key itself.
    match locate::find_duplicate_key(bytes) {
        Ok(None) => {}
        Ok(Some(duplicate)) => {
            return Err(PolicyError::Field {
                file: file.to_owned(),
                position: duplicate.position,
                field: duplicate.field,
                why: match duplicate.first {
                    Some(first) => format!("duplicate key, first given at line {}", first.line),
                    None => "duplicate key".to_owned(),
                },
            });
        }
        Err(source) => return Err(yaml_error(source)),
    }
    let document: serde_yaml_ng::Value = serde_yaml_ng::from_slice(bytes).map_err(yaml_error)?;

    let environments = validate::environments(&document).map_err(|invalid| PolicyError::Field {
        file: file.to_owned(),
        position: locate::locate(bytes, &invalid.steps),
        field: invalid.field,
        why: invalid.why,
    })?;

    Ok(Policy {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        environments,
    })
}

#[cfg(test)]
mod tests;
