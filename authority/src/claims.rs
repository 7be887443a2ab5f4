//! Token claims: the set a development token is minted with, and the checks
//! of a verified token's claims.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::{AuthError, shown};
use crate::scope::{Scope, parse_scope_claim};
use crate::tenant::Tenant;

/// The claims of an Authority token.
///
/// Times are Unix seconds (JWT NumericDate). In the token, `scopes` become
/// the space-separated `scope` claim and `tenant` the `tenant` claim. A
/// single audience is written as a string, several as an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `iss`: the Authority's issuer name.
    pub issuer: String,
    /// `aud`: the services the token is for.
    pub audience: Vec<String>,
    /// `sub`: the user or workload the token was issued to.
    pub subject: String,
    /// `tenant`: the tenant whose data the token may touch.
    pub tenant: Tenant,
    /// `scope`: the granted scopes.
    pub scopes: Vec<Scope>,
    /// `jti`: a unique token ID.
    pub token_id: String,
    /// `iat`: issue time.
    pub issued_at: i64,
    /// `nbf`: start of validity.
    pub not_before: i64,
    /// `exp`: end of validity; the token is rejected from this second on.
    pub expires_at: i64,
}

/// The claims of a verified token after all checks except the scope check.
pub(crate) struct CheckedClaims {
    pub(crate) subject: String,
    pub(crate) tenant: Tenant,
    pub(crate) scopes: BTreeSet<Scope>,
    pub(crate) token_id: String,
    pub(crate) expires_at: i64,
}

/// The expected issuer and audience, the clock skew and the validation time.
pub(crate) struct Expectations<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) clock_skew_secs: u32,
    pub(crate) now: i64,
}

/// Checks the claims in the order `iss`, `aud`, `exp`, `nbf`, `iat`, `sub`,
/// `jti`, `tenant`, `scope` and stops at the first failure.
///
/// Call it only on claims whose signature has verified.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expectations<'_>,
) -> Result<CheckedClaims, AuthError> {
    let issuer = required_string(claims, "iss")?;
    if issuer != expected.issuer {
        return Err(AuthError::WrongIssuer {
            found: shown(issuer),
            expected: expected.issuer.to_owned(),
        });
    }

    let audience = audience(claims)?;
    if !audience.contains(&expected.audience) {
        return Err(AuthError::WrongAudience {
            expected: expected.audience.to_owned(),
        });
    }

    let expires_at = check_times(claims, expected)?;

    let subject = non_empty_string(claims, "sub")?;
    let token_id = non_empty_string(claims, "jti")?;
    let tenant =
        Tenant::parse(required_string(claims, "tenant")?).map_err(|_| AuthError::InvalidClaim {
            claim: "tenant",
            fault: "expected 1 to 63 characters from a-z, 0-9, '.', '_' and '-', \
                    starting with a letter or digit",
        })?;
    let scopes = scopes(claims)?;

    Ok(CheckedClaims {
        subject: subject.to_owned(),
        tenant,
        scopes,
        token_id: token_id.to_owned(),
        expires_at,
    })
}

/// Checks `exp`, `nbf` and `iat` against `now`, each with the clock skew,
/// and returns `exp`.
fn check_times(claims: &Map<String, Value>, expected: &Expectations<'_>) -> Result<i64, AuthError> {
    let now = expected.now;
    let skew = expected.clock_skew_secs;
    let skew_secs = i64::from(skew);

    // RFC 7519 section 4.1.4: the token must not be accepted on or after `exp`.
    let exp = numeric_date(claims, "exp")?;
    if now >= exp.saturating_add(skew_secs) {
        return Err(AuthError::Expired { exp, now, skew });
    }

    let nbf = numeric_date(claims, "nbf")?;
    if now < nbf.saturating_sub(skew_secs) {
        return Err(AuthError::NotYetValid { nbf, now, skew });
    }

    let iat = numeric_date(claims, "iat")?;
    if iat > now.saturating_add(skew_secs) {
        return Err(AuthError::IssuedInFuture { iat, now, skew });
    }
    Ok(exp)
}

fn required_string<'a>(
    claims: &'a Map<String, Value>,
    claim: &'static str,
) -> Result<&'a str, AuthError> {
    match claims.get(claim) {
        None => Err(AuthError::MissingClaim { claim }),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(AuthError::InvalidClaim {
            claim,
            fault: "expected a string",
        }),
    }
}

fn non_empty_string<'a>(
    claims: &'a Map<String, Value>,
    claim: &'static str,
) -> Result<&'a str, AuthError> {
    let value = required_string(claims, claim)?;
    if value.is_empty() {
        return Err(AuthError::InvalidClaim {
            claim,
            fault: "expected a non-empty string",
        });
    }
    Ok(value)
}

/// Reads a NumericDate: a JSON integer from 0 to `i64::MAX`. Fractions and
/// exponent forms such as `1.7e9` are rejected, so every accepted value is
/// exact.
fn numeric_date(claims: &Map<String, Value>, claim: &'static str) -> Result<i64, AuthError> {
    let value = claims.get(claim).ok_or(AuthError::MissingClaim { claim })?;
    value
        .as_i64()
        .filter(|seconds| *seconds >= 0)
        .ok_or(AuthError::InvalidClaim {
            claim,
            fault: "expected a non-negative integer of seconds since the Unix epoch",
        })
}

/// Reads `aud`: one string or a non-empty array of strings (RFC 7519 section 4.1.3).
fn audience(claims: &Map<String, Value>) -> Result<Vec<&str>, AuthError> {
    let invalid = AuthError::InvalidClaim {
        claim: "aud",
        fault: "expected a string or a non-empty array of strings",
    };
    match claims.get("aud") {
        None => Err(AuthError::MissingClaim { claim: "aud" }),
        Some(Value::String(audience)) => Ok(vec![audience.as_str()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().ok_or(invalid.clone()))
            .collect(),
        Some(_) => Err(invalid),
    }
}

/// Reads `scope`. A token without it grants no scope, so every call that
/// needs one is denied with `PERMISSION_DENIED`.
fn scopes(claims: &Map<String, Value>) -> Result<BTreeSet<Scope>, AuthError> {
    match claims.get("scope") {
        None => Ok(BTreeSet::new()),
        Some(value) => value
            .as_str()
            .and_then(parse_scope_claim)
            .ok_or(AuthError::InvalidClaim {
                claim: "scope",
                fault: "expected scope names separated by single spaces",
            }),
    }
}
