//! The gate policy: per target environment, the signed evidence a promotion needs and what
//! to decide when proofs are missing or the attestor cannot be reached.
//!
//! ```yaml
//! environments:
//!   prod:
//!     require:
//!       - predicate_type: https://slsa.dev/provenance/v1   # optional
//!         identity: /https://github\.com/acme/.+/  # exact SAN, or /regex/ (full match)
//!         issuer: https://token.actions.githubusercontent.com
//!     on_missing_proof: pending          # or deny (the default)
//!     on_attestor_unavailable: pending   # or deny (the default)
//! ```
//!
//! The file is validated completely on load, and an error names the file and the field,
//! such as `policy.yaml: environments.prod.require[0].issuer: missing`. Unknown fields are
//! errors, so a misspelt key cannot silently weaken the policy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use regex::Regex;
use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};
use stella_verify::reason::{HasReasonCode, ReasonCode};

/// Maximum policy file size, in bytes. Real policies are a few kilobytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Maximum compiled size of one identity pattern, in bytes (the regex crate's own limit
/// is 10 MiB, which is far more than an identity pattern needs).
const MAX_PATTERN_SIZE: usize = 1024 * 1024;

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
    pub on_missing_proof: Fallback,
    pub on_attestor_unavailable: Fallback,
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
    pub identity: IdentityMatcher,
    /// OIDC issuer of the signing certificate, compared exactly.
    // NOTE: reports give managed-key signers an empty issuer, and an issuer here must not
    // be empty, so evidence signed with a managed (KMS) key cannot meet any requirement yet.
    pub issuer: String,
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
        write!(f, "identity={} issuer={}", self.identity, self.issuer)
    }
}

/// A policy file that cannot be used. The gate does not start with one.
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
    #[error("{file}: invalid YAML: {source}")]
    Yaml {
        file: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("{file}: {field}: {why}")]
    Field { file: String, field: String, why: String },
}

impl HasReasonCode for PolicyError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            PolicyError::Read { .. }
            | PolicyError::TooLarge { .. }
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
/// [`PolicyError::Field`] naming the first invalid field.
pub fn parse_policy(file: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            file: file.to_owned(),
            size: bytes.len(),
        });
    }
    let document: Value = serde_yaml_ng::from_slice(bytes).map_err(|source| PolicyError::Yaml {
        file: file.to_owned(),
        source,
    })?;
    let parser = Parser { file };

    let top = parser.mapping(&document, "policy")?;
    parser.reject_unknown(top, "", &["environments"])?;
    let environments_value = top
        .get("environments")
        .ok_or_else(|| parser.error("environments", "missing"))?;
    let environments_map = parser.mapping(environments_value, "environments")?;
    if environments_map.is_empty() {
        return Err(parser.error("environments", "at least one environment is required"));
    }

    let mut environments = BTreeMap::new();
    for (key, value) in environments_map {
        let name = match key {
            Value::String(name) if !name.is_empty() => name.clone(),
            _ => return Err(parser.error("environments", "environment names must be non-empty strings")),
        };
        let environment = parser.environment(&format!("environments.{name}"), value)?;
        environments.insert(name, environment);
    }

    Ok(Policy {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        environments,
    })
}

struct Parser<'a> {
    file: &'a str,
}

impl Parser<'_> {
    fn error(&self, field: &str, why: impl Into<String>) -> PolicyError {
        PolicyError::Field {
            file: self.file.to_owned(),
            field: field.to_owned(),
            why: why.into(),
        }
    }

    fn mapping<'v>(&self, value: &'v Value, field: &str) -> Result<&'v Mapping, PolicyError> {
        match value {
            Value::Mapping(mapping) => Ok(mapping),
            other => Err(self.error(field, format!("expected a mapping, found {}", kind(other)))),
        }
    }

    fn reject_unknown(&self, mapping: &Mapping, parent: &str, known: &[&str]) -> Result<(), PolicyError> {
        for key in mapping.keys() {
            let name = match key {
                Value::String(name) => name.clone(),
                other => format!("{other:?}"),
            };
            if !known.contains(&name.as_str()) {
                let field = if parent.is_empty() {
                    name
                } else {
                    format!("{parent}.{name}")
                };
                return Err(self.error(&field, format!("unknown field (expected one of: {})", known.join(", "))));
            }
        }
        Ok(())
    }

    fn string(&self, value: &Value, field: &str) -> Result<String, PolicyError> {
        match value {
            Value::String(text) if text.trim().is_empty() => Err(self.error(field, "must not be empty")),
            Value::String(text) => Ok(text.clone()),
            other => Err(self.error(field, format!("expected a string, found {}", kind(other)))),
        }
    }

    fn environment(&self, field: &str, value: &Value) -> Result<Environment, PolicyError> {
        let mapping = self.mapping(value, field)?;
        self.reject_unknown(
            mapping,
            field,
            &["require", "on_missing_proof", "on_attestor_unavailable"],
        )?;

        let require_field = format!("{field}.require");
        let require_value = mapping
            .get("require")
            .ok_or_else(|| self.error(&require_field, "missing"))?;
        let Value::Sequence(items) = require_value else {
            return Err(self.error(
                &require_field,
                format!("expected a list, found {}", kind(require_value)),
            ));
        };
        if items.is_empty() {
            return Err(self.error(&require_field, "at least one requirement is required"));
        }
        let require = items
            .iter()
            .enumerate()
            .map(|(position, item)| self.requirement(&format!("{require_field}[{position}]"), item))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Environment {
            require,
            on_missing_proof: self.fallback(mapping, field, "on_missing_proof")?,
            on_attestor_unavailable: self.fallback(mapping, field, "on_attestor_unavailable")?,
        })
    }

    fn fallback(&self, mapping: &Mapping, parent: &str, name: &str) -> Result<Fallback, PolicyError> {
        let field = format!("{parent}.{name}");
        match mapping.get(name) {
            None => Ok(Fallback::Deny),
            Some(value) => match self.string(value, &field)?.as_str() {
                "deny" => Ok(Fallback::Deny),
                "pending" => Ok(Fallback::Pending),
                other => Err(self.error(&field, format!("{other:?} is not \"deny\" or \"pending\""))),
            },
        }
    }

    fn requirement(&self, field: &str, value: &Value) -> Result<Requirement, PolicyError> {
        let mapping = self.mapping(value, field)?;
        self.reject_unknown(mapping, field, &["predicate_type", "identity", "issuer"])?;

        let required = |name: &str| -> Result<String, PolicyError> {
            let child = format!("{field}.{name}");
            let value = mapping.get(name).ok_or_else(|| self.error(&child, "missing"))?;
            self.string(value, &child)
        };

        let predicate_type = mapping
            .get("predicate_type")
            .map(|value| self.string(value, &format!("{field}.predicate_type")))
            .transpose()?;
        let identity_text = required("identity")?;
        let identity = self.identity(&format!("{field}.identity"), &identity_text)?;
        let issuer = required("issuer")?;

        Ok(Requirement {
            predicate_type,
            identity,
            issuer,
        })
    }

    fn identity(&self, field: &str, text: &str) -> Result<IdentityMatcher, PolicyError> {
        let Some(pattern) = text
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
            .filter(|_| text.len() >= 2)
        else {
            return Ok(IdentityMatcher::Exact(text.to_owned()));
        };
        if pattern.is_empty() {
            return Err(self.error(field, "empty pattern \"//\""));
        }
        // Anchoring both ends makes the pattern match the whole identity, never a part.
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(MAX_PATTERN_SIZE)
            .build()
            .map_err(|error| self.error(field, format!("invalid pattern: {error}")))?;
        Ok(IdentityMatcher::Pattern {
            source: pattern.to_owned(),
            regex,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\\.com/acme/[a-z]+/\\.github/workflows/release\\.yml@refs/tags/v.*/
        issuer: https://token.actions.githubusercontent.com
      - identity: release@acme.example
        issuer: https://accounts.example
    on_missing_proof: pending
    on_attestor_unavailable: pending
  staging:
    require:
      - identity: ci@acme.example
        issuer: https://accounts.example
";

    fn field_error(text: &str) -> String {
        match parse_policy("policy.yaml", text.as_bytes()) {
            Err(error @ PolicyError::Field { .. }) => error.to_string(),
            Err(other) => panic!("expected a field error, got {other}"),
            Ok(_) => panic!("policy must be rejected:\n{text}"),
        }
    }

    #[test]
    fn parse_valid_policy() {
        let policy = parse_policy("policy.yaml", VALID.as_bytes()).expect("valid policy");
        assert_eq!(policy.environments.len(), 2);
        let prod = policy.environments.get("prod").expect("prod");
        assert_eq!(prod.require.len(), 2);
        assert_eq!(prod.on_missing_proof, Fallback::Pending);
        assert_eq!(prod.on_attestor_unavailable, Fallback::Pending);
        assert_eq!(
            prod.require.first().and_then(|r| r.predicate_type.as_deref()),
            Some("https://slsa.dev/provenance/v1")
        );
        let staging = policy.environments.get("staging").expect("staging");
        assert_eq!(staging.on_missing_proof, Fallback::Deny);
        assert_eq!(staging.on_attestor_unavailable, Fallback::Deny);
        assert!(policy.digest.starts_with("sha256:"));
        assert_eq!(policy.digest.len(), "sha256:".len() + 64);
    }

    #[test]
    fn regex_identity_full_match() {
        let policy = parse_policy("policy.yaml", VALID.as_bytes()).expect("valid policy");
        let prod = policy.environments.get("prod").expect("prod");
        let identity = &prod.require.first().expect("first requirement").identity;
        let good = "https://github.com/acme/widget/.github/workflows/release.yml@refs/tags/v1.2.3";
        assert!(identity.matches(good));
        assert!(!identity.matches(&format!("evil{good}")), "prefix must not match");
        assert!(!identity.matches("https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main"));
        assert!(!identity.matches("https://github.com/acme/Widget/.github/workflows/release.yml@refs/tags/v1"));
    }

    #[test]
    fn exact_identity_no_substring() {
        let policy = parse_policy("policy.yaml", VALID.as_bytes()).expect("valid policy");
        let prod = policy.environments.get("prod").expect("prod");
        let identity = &prod.require.get(1).expect("second requirement").identity;
        assert!(identity.matches("release@acme.example"));
        assert!(!identity.matches("release@acme.example.evil"));
        assert!(!identity.matches("xrelease@acme.example"));
    }

    #[test]
    fn errors_name_file_and_field() {
        struct Row {
            name: &'static str,
            text: &'static str,
            expected: &'static str,
        }
        let rows = [
            Row {
                name: "missing issuer",
                text: "environments:\n  prod:\n    require:\n      - identity: a@b\n",
                expected: "policy.yaml: environments.prod.require[0].issuer: missing",
            },
            Row {
                name: "missing identity",
                text: "environments:\n  prod:\n    require:\n      - issuer: https://i\n",
                expected: "policy.yaml: environments.prod.require[0].identity: missing",
            },
            Row {
                name: "empty issuer",
                text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: ''\n",
                expected: "policy.yaml: environments.prod.require[0].issuer: must not be empty",
            },
            Row {
                name: "bad fallback",
                text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n    on_missing_proof: allow\n",
                expected: "policy.yaml: environments.prod.on_missing_proof: \"allow\" is not \"deny\" or \"pending\"",
            },
            Row {
                name: "unknown requirement field",
                text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n        isuer: j\n",
                expected: "policy.yaml: environments.prod.require[0].isuer: unknown field (expected one of: predicate_type, identity, issuer)",
            },
            Row {
                name: "unknown top field",
                text: "environment:\n  prod: {}\n",
                expected: "policy.yaml: environment: unknown field (expected one of: environments)",
            },
            Row {
                name: "missing environments",
                text: "{}\n",
                expected: "policy.yaml: environments: missing",
            },
            Row {
                name: "empty environments",
                text: "environments: {}\n",
                expected: "policy.yaml: environments: at least one environment is required",
            },
            Row {
                name: "empty require",
                text: "environments:\n  prod:\n    require: []\n",
                expected: "policy.yaml: environments.prod.require: at least one requirement is required",
            },
            Row {
                name: "require not a list",
                text: "environments:\n  prod:\n    require: yes\n",
                expected: "policy.yaml: environments.prod.require: expected a list, found a string",
            },
            Row {
                name: "invalid regex",
                text: "environments:\n  prod:\n    require:\n      - identity: /a(/\n        issuer: i\n",
                expected: "policy.yaml: environments.prod.require[0].identity: invalid pattern",
            },
            Row {
                name: "empty regex",
                text: "environments:\n  prod:\n    require:\n      - identity: //\n        issuer: i\n",
                expected: "policy.yaml: environments.prod.require[0].identity: empty pattern \"//\"",
            },
            Row {
                name: "numeric predicate type",
                text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n        predicate_type: 3\n",
                expected: "policy.yaml: environments.prod.require[0].predicate_type: expected a string, found a number",
            },
        ];
        for row in rows {
            let message = field_error(row.text);
            assert!(
                message.starts_with(row.expected),
                "row {}: got {message:?}, expected prefix {:?}",
                row.name,
                row.expected
            );
        }
    }

    #[test]
    fn yaml_syntax_error_names_file() {
        let error = parse_policy("policy.yaml", b"environments: [unclosed\n").expect_err("syntax error");
        assert!(matches!(error, PolicyError::Yaml { .. }), "unexpected {error:?}");
        assert!(error.to_string().starts_with("policy.yaml: invalid YAML: "), "{error}");
        assert_eq!(error.reason_code(), ReasonCode::PolicyInvalid);
    }

    #[test]
    fn duplicate_environment_rejected() {
        let text = "environments:\n  prod:\n    require:\n      - identity: a\n        issuer: i\n  prod:\n    require:\n      - identity: b\n        issuer: i\n";
        let error = parse_policy("policy.yaml", text.as_bytes()).expect_err("duplicate key");
        assert!(matches!(error, PolicyError::Yaml { .. }), "unexpected {error:?}");
    }

    #[test]
    fn oversized_policy_rejected() {
        let text = vec![b'#'; MAX_POLICY_BYTES + 1];
        let error = parse_policy("policy.yaml", &text).expect_err("too large");
        assert!(matches!(error, PolicyError::TooLarge { size, .. } if size == MAX_POLICY_BYTES + 1));
    }

    #[test]
    fn load_policy_missing_file() {
        let error = load_policy(Path::new("/nonexistent/policy.yaml")).expect_err("missing file");
        assert!(matches!(error, PolicyError::Read { .. }), "unexpected {error:?}");
        assert!(error.to_string().starts_with("/nonexistent/policy.yaml: "), "{error}");
    }

    #[test]
    fn requirement_display_names_fields() {
        let policy = parse_policy("policy.yaml", VALID.as_bytes()).expect("valid policy");
        let staging = policy.environments.get("staging").expect("staging");
        let requirement = staging.require.first().expect("requirement");
        assert_eq!(
            requirement.to_string(),
            "predicate_type=any identity=ci@acme.example issuer=https://accounts.example"
        );
    }
}
