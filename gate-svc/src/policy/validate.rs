//! Validation of the parsed policy document, field by field. Each error names the field and
//! the steps to its node, so that the caller can add the node's line and column.

use std::collections::BTreeMap;

use regex::Regex;
use serde_yaml_ng::{Mapping, Value};

use super::locate::{Field, Step};
use super::{
    BreakGlassPolicy, Environment, Fallback, IdentityMatcher, MAX_DURATION_SECS, MAX_WITNESS_COSIGNATURES, Requirement,
    SignerMatcher,
};
use crate::promotion::MAX_ID_LENGTH;

/// Maximum compiled size of one identity pattern, in bytes (the regex crate's own limit
/// is 10 MiB, which is far more than an identity pattern needs).
const MAX_PATTERN_SIZE: usize = 1024 * 1024;

const ENVIRONMENT_FIELDS: &[&str] = &[
    "require",
    "min_witness_cosignatures",
    "max_evidence_age",
    "max_checkpoint_age",
    "on_missing_proof",
    "on_attestor_unavailable",
    "on_stale_checkpoint",
    "break_glass",
];

const REQUIREMENT_FIELDS: &[&str] = &["predicate_type", "identity", "issuer", "kms_key_id"];

/// A field that failed validation.
#[derive(Debug)]
pub(super) struct Invalid {
    pub field: String,
    pub steps: Vec<Step>,
    pub why: String,
}

fn invalid(field: &Field, why: impl Into<String>) -> Invalid {
    Invalid {
        // Only a fault of the document root has an empty name.
        field: if field.name.is_empty() {
            "policy".to_owned()
        } else {
            field.name.clone()
        },
        steps: field.steps.clone(),
        why: why.into(),
    }
}

/// Validates the whole document and returns its environments.
pub(super) fn environments(document: &Value) -> Result<BTreeMap<String, Environment>, Invalid> {
    let root = Field::default();
    let top = Entries::new(document, &root, &["environments"])?;
    let (field, value) = top.required("environments")?;
    let Value::Mapping(mapping) = value else {
        return Err(invalid(&field, format!("expected a mapping, found {}", kind(value))));
    };
    if mapping.is_empty() {
        return Err(invalid(&field, "at least one environment is required"));
    }

    let mut environments = BTreeMap::new();
    for (index, (key, value)) in mapping.iter().enumerate() {
        let Value::String(name) = key else {
            return Err(invalid(
                &field.at_key(index),
                format!("environment names must be strings, found {}", kind(key)),
            ));
        };
        check_environment_name(&field.at_key(index), name)?;
        let environment = environment(&field.value(name, index), value)?;
        environments.insert(name.clone(), environment);
    }
    Ok(environments)
}

/// Rejects a name that no promotion could target, because a promotion's target environment
/// is 1 to [`MAX_ID_LENGTH`] bytes of `A-Z a-z 0-9 - _ . : /`.
fn check_environment_name(field: &Field, name: &str) -> Result<(), Invalid> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/');
    if name.is_empty() || name.len() > MAX_ID_LENGTH || !name.chars().all(allowed) {
        return Err(invalid(
            field,
            format!(
                "invalid environment name {name:?}: a promotion can only target 1 to {MAX_ID_LENGTH} letters, digits and - _ . : /"
            ),
        ));
    }
    Ok(())
}

fn environment(field: &Field, value: &Value) -> Result<Environment, Invalid> {
    let entries = Entries::new(value, field, ENVIRONMENT_FIELDS)?;

    let (require_field, require_value) = entries.required("require")?;
    let Value::Sequence(items) = require_value else {
        return Err(invalid(
            &require_field,
            format!("expected a list, found {}", kind(require_value)),
        ));
    };
    if items.is_empty() {
        return Err(invalid(&require_field, "at least one requirement is required"));
    }
    let require = items
        .iter()
        .enumerate()
        .map(|(index, item)| requirement(&require_field.item(index), item))
        .collect::<Result<Vec<_>, _>>()?;

    let min_witness_cosignatures = match entries.get("min_witness_cosignatures") {
        Some((field, value)) => witness_count(&field, value)?,
        None => 0,
    };
    let optional_duration = |name: &str| -> Result<Option<u64>, Invalid> {
        entries
            .get(name)
            .map(|(field, value)| duration(&field, value))
            .transpose()
    };
    let break_glass = entries
        .get("break_glass")
        .map(|(field, value)| break_glass(&field, value))
        .transpose()?;

    Ok(Environment {
        require,
        min_witness_cosignatures,
        max_evidence_age_secs: optional_duration("max_evidence_age")?,
        max_checkpoint_age_secs: optional_duration("max_checkpoint_age")?,
        on_missing_proof: entries.fallback("on_missing_proof")?,
        on_attestor_unavailable: entries.fallback("on_attestor_unavailable")?,
        on_stale_checkpoint: entries.fallback("on_stale_checkpoint")?,
        break_glass,
    })
}

fn break_glass(field: &Field, value: &Value) -> Result<BreakGlassPolicy, Invalid> {
    let entries = Entries::new(value, field, &["max_duration"])?;
    let (field, value) = entries.required("max_duration")?;
    Ok(BreakGlassPolicy {
        max_duration_secs: duration(&field, value)?,
    })
}

fn requirement(field: &Field, value: &Value) -> Result<Requirement, Invalid> {
    let entries = Entries::new(value, field, REQUIREMENT_FIELDS)?;
    let predicate_type = entries
        .get("predicate_type")
        .map(|(field, value)| string(&field, value))
        .transpose()?;

    let identity = entries.get("identity");
    let issuer = entries.get("issuer");
    let signer = match entries.get("kms_key_id") {
        Some((kms_field, _)) if identity.is_some() || issuer.is_some() => {
            return Err(invalid(
                &kms_field,
                "cannot be combined with identity or issuer: a requirement names either a KMS key or a certificate identity and issuer",
            ));
        }
        Some((kms_field, kms_value)) => SignerMatcher::KmsKey(kms_key_id(&kms_field, kms_value)?),
        None if identity.is_none() && issuer.is_none() => {
            return Err(invalid(field, "missing identity and issuer, or kms_key_id"));
        }
        None => {
            let (identity_field, identity_value) = entries.required("identity")?;
            let identity_text = string(&identity_field, identity_value)?;
            let (issuer_field, issuer_value) = entries.required("issuer")?;
            SignerMatcher::Certificate {
                identity: identity_matcher(&identity_field, &identity_text)?,
                issuer: string(&issuer_field, issuer_value)?,
            }
        }
    };

    Ok(Requirement { predicate_type, signer })
}

/// Checks a KMS key id. Trust root sets hold managed keys as `kms/<id>.pem`, and bundle paths
/// allow only `A-Z a-z 0-9 . _ -`, so an id with any other character could never match.
fn kms_key_id(field: &Field, value: &Value) -> Result<String, Invalid> {
    let id = string(field, value)?;
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            field,
            format!(
                "character {bad:?} is not allowed: a trust root set names managed keys with letters, digits and . _ -"
            ),
        ));
    }
    Ok(id)
}

fn identity_matcher(field: &Field, text: &str) -> Result<IdentityMatcher, Invalid> {
    let Some(pattern) = text
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix('/'))
        .filter(|_| text.len() >= 2)
    else {
        return Ok(IdentityMatcher::Exact(text.to_owned()));
    };
    if pattern.is_empty() {
        return Err(invalid(field, "empty pattern \"//\""));
    }
    // Anchoring both ends makes the pattern match the whole identity, never a part.
    let regex: Regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(MAX_PATTERN_SIZE)
        .build()
        .map_err(|error| invalid(field, format!("invalid pattern: {error}")))?;
    Ok(IdentityMatcher::Pattern {
        source: pattern.to_owned(),
        regex,
    })
}

fn witness_count(field: &Field, value: &Value) -> Result<u32, Invalid> {
    let expected = format!("expected a whole number from 0 to {MAX_WITNESS_COSIGNATURES}");
    let Value::Number(number) = value else {
        return Err(invalid(field, format!("{expected}, found {}", kind(value))));
    };
    number
        .as_u64()
        .and_then(|count| u32::try_from(count).ok())
        .filter(|count| *count <= MAX_WITNESS_COSIGNATURES)
        .ok_or_else(|| invalid(field, format!("{expected}, found {number}")))
}

/// Parses a duration: a whole number followed by `s`, `m`, `h` or `d`, such as `90s`, `15m`,
/// `24h` or `30d`. Returns seconds, from 1 to [`MAX_DURATION_SECS`].
fn duration(field: &Field, value: &Value) -> Result<u64, Invalid> {
    const SYNTAX: &str = "a whole number followed by s, m, h or d, such as 90s, 15m, 24h or 30d";
    let Value::String(text) = value else {
        return Err(invalid(
            field,
            format!("expected a duration ({SYNTAX}), found {}", kind(value)),
        ));
    };
    let units = [('s', 1), ('m', 60), ('h', 3_600), ('d', 86_400)];
    let parts = units
        .iter()
        .find_map(|(unit, unit_seconds)| Some((text.strip_suffix(*unit)?, *unit_seconds)));
    let Some((digits, unit_seconds)) =
        parts.filter(|(digits, _)| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(invalid(field, format!("invalid duration {text:?}: use {SYNTAX}")));
    };
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_seconds))
        .filter(|seconds| *seconds <= MAX_DURATION_SECS);
    match seconds {
        Some(0) => Err(invalid(
            field,
            format!("invalid duration {text:?}: must be greater than zero"),
        )),
        Some(seconds) => Ok(seconds),
        None => Err(invalid(
            field,
            format!("invalid duration {text:?}: maximum is {}d", MAX_DURATION_SECS / 86_400),
        )),
    }
}

fn string(field: &Field, value: &Value) -> Result<String, Invalid> {
    match value {
        Value::String(text) if text.trim().is_empty() => Err(invalid(field, "must not be empty")),
        Value::String(text) => Ok(text.clone()),
        other => Err(invalid(field, format!("expected a string, found {}", kind(other)))),
    }
}

/// A mapping whose keys were checked against the known fields.
struct Entries<'v> {
    field: Field,
    mapping: &'v Mapping,
}

impl<'v> Entries<'v> {
    fn new(value: &'v Value, field: &Field, known: &[&str]) -> Result<Self, Invalid> {
        let Value::Mapping(mapping) = value else {
            return Err(invalid(field, format!("expected a mapping, found {}", kind(value))));
        };
        for (index, key) in mapping.keys().enumerate() {
            let name = match key {
                Value::String(name) => name.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(value) => value.to_string(),
                Value::Null => "null".to_owned(),
                Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => "?".to_owned(),
            };
            if !known.contains(&name.as_str()) {
                return Err(invalid(
                    &field.key(&name, index),
                    format!("unknown field (expected one of: {})", known.join(", ")),
                ));
            }
        }
        Ok(Entries {
            field: field.clone(),
            mapping,
        })
    }

    /// Returns the value of `name` and its field, or `None` when the key is absent.
    fn get(&self, name: &str) -> Option<(Field, &'v Value)> {
        self.mapping
            .iter()
            .enumerate()
            .find(|(_, (key, _))| key.as_str() == Some(name))
            .map(|(index, (_, value))| (self.field.value(name, index), value))
    }

    fn required(&self, name: &str) -> Result<(Field, &'v Value), Invalid> {
        self.get(name)
            .ok_or_else(|| invalid(&self.field.missing(name), "missing"))
    }

    /// Reads `deny` or `pending`. An absent key is `deny`.
    fn fallback(&self, name: &str) -> Result<Fallback, Invalid> {
        let Some((field, value)) = self.get(name) else {
            return Ok(Fallback::Deny);
        };
        match string(&field, value)?.as_str() {
            "deny" => Ok(Fallback::Deny),
            "pending" => Ok(Fallback::Pending),
            other => Err(invalid(&field, format!("{other:?} is not \"deny\" or \"pending\""))),
        }
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
