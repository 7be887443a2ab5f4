//! Minting of ES256 tokens for development, tests and the demo.
//!
//! A production Authority mints tokens elsewhere; services only validate.

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde::Serialize;
use serde_json::Value;

use crate::base64url;
use crate::claims::Claims;
use crate::scope::format_scope_claim;

/// Claims that [`mint`] does not sign because a validator would reject them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The key ID is empty.
    #[error("cannot mint token: the key ID is empty")]
    EmptyKeyId,
    /// A claim is invalid.
    #[error("cannot mint token: invalid claim {claim}: {fault}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// The fault.
        fault: &'static str,
    },
    /// JSON encoding failed.
    #[error("cannot mint token: failed to encode JSON: {reason}")]
    Encode {
        /// The encoder's error.
        reason: String,
    },
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    aud: Value,
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    tenant: &'a str,
    scope: String,
}

/// Mints a token: header `{"alg":"ES256","typ":"JWT","kid":…}` and `claims`,
/// signed with `key`.
///
/// # Errors
///
/// [`MintError`] for an empty key ID, an empty issuer, subject, token ID or
/// audience, no scopes, a negative time, or `expires_at` not after
/// `not_before`.
pub fn mint(key: &SigningKey, kid: &str, claims: &Claims) -> Result<String, MintError> {
    if kid.is_empty() {
        return Err(MintError::EmptyKeyId);
    }
    check_claims(claims)?;

    let audience = match claims.audience.as_slice() {
        [single] => Value::String(single.clone()),
        several => Value::from(several.to_vec()),
    };
    let header = Header {
        alg: "ES256",
        typ: "JWT",
        kid,
    };
    let payload = Payload {
        iss: &claims.issuer,
        aud: audience,
        sub: &claims.subject,
        iat: claims.issued_at,
        nbf: claims.not_before,
        exp: claims.expires_at,
        jti: &claims.token_id,
        tenant: claims.tenant.as_str(),
        scope: format_scope_claim(&claims.scopes),
    };
    let encode_error = |err: serde_json::Error| MintError::Encode {
        reason: err.to_string(),
    };
    let header = serde_json::to_vec(&header).map_err(encode_error)?;
    let payload = serde_json::to_vec(&payload).map_err(encode_error)?;
    Ok(sign_jws(key, &header, &payload))
}

/// Signs arbitrary header and payload bytes as an ES256 compact JWS.
///
/// Unlike [`mint`] this checks nothing, so tests can build tokens that a
/// validator must reject. Signing is deterministic (RFC 6979 nonces), and
/// the signature is normalized to low-S so that verifiers requiring low-S
/// also accept it.
pub fn sign_jws(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let mut token = base64url::encode(header);
    token.push('.');
    token.push_str(&base64url::encode(payload));
    let signature: Signature = key.sign(token.as_bytes());
    let signature = signature.normalize_s();
    token.push('.');
    token.push_str(&base64url::encode(&signature.to_bytes()));
    token
}

fn check_claims(claims: &Claims) -> Result<(), MintError> {
    let invalid = |claim, fault| Err(MintError::InvalidClaim { claim, fault });
    if claims.issuer.is_empty() {
        return invalid("iss", "the issuer is empty");
    }
    if claims.audience.is_empty() || claims.audience.iter().any(String::is_empty) {
        return invalid("aud", "expected at least one non-empty audience");
    }
    if claims.subject.is_empty() {
        return invalid("sub", "the subject is empty");
    }
    if claims.token_id.is_empty() {
        return invalid("jti", "the token ID is empty");
    }
    if claims.scopes.is_empty() {
        return invalid("scope", "expected at least one scope");
    }
    for (claim, seconds) in [
        ("iat", claims.issued_at),
        ("nbf", claims.not_before),
        ("exp", claims.expires_at),
    ] {
        if seconds < 0 {
            return invalid(claim, "expected seconds since the Unix epoch, not negative");
        }
    }
    if claims.expires_at <= claims.not_before {
        return invalid("exp", "expected a time after nbf");
    }
    Ok(())
}
