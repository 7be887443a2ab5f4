//! Checks of the JOSE protected header.

use serde_json::{Map, Value};

use crate::error::{AuthError, shown};

/// Header parameters that are rejected outright.
///
/// `jku`, `jwk`, `x5u` and `x5c` would let the token supply or point to its
/// own verification key, and keys must come only from the configured JWKS.
/// `crit` demands extensions this validator does not implement (RFC 7515
/// section 4.1.11), and `b64` (RFC 7797) would change what the signature
/// covers.
const FORBIDDEN_PARAMETERS: [&str; 6] = ["crit", "jku", "jwk", "x5u", "x5c", "b64"];

/// `typ` values accepted in any ASCII case, since media type names are
/// case-insensitive (RFC 7515 section 4.1.9).
const ACCEPTED_TYPES: [&str; 4] = ["JWT", "application/JWT", "at+jwt", "application/at+jwt"];

/// Checks `alg`, `typ`, the forbidden parameters and `kid`, in that order,
/// and returns the key ID.
pub(crate) fn check_header(header: &Map<String, Value>) -> Result<String, AuthError> {
    match header.get("alg") {
        None => return Err(AuthError::MissingAlgorithm),
        // The comparison is exact: "es256" or "ES256 " is another algorithm.
        Some(Value::String(alg)) if alg == "ES256" => {}
        Some(other) => {
            return Err(AuthError::UnsupportedAlgorithm {
                alg: shown(&display_value(other)),
            });
        }
    }

    if let Some(typ) = header.get("typ") {
        let accepted = typ.as_str().is_some_and(|typ| {
            ACCEPTED_TYPES
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(typ))
        });
        if !accepted {
            return Err(AuthError::UnsupportedType {
                typ: shown(&display_value(typ)),
            });
        }
    }

    if let Some(name) = FORBIDDEN_PARAMETERS
        .into_iter()
        .find(|name| header.contains_key(*name))
    {
        return Err(AuthError::ForbiddenHeader { name });
    }

    match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => Ok(kid.clone()),
        _ => Err(AuthError::MissingKeyId),
    }
}

/// Returns a string value as is and any other JSON value as JSON text.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
