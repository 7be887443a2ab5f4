//! Token rejections. Each names the failed check and never contains the
//! token or its signature.

use std::fmt;

use crate::scope::Scope;

/// Maximum number of characters of a token-supplied string (such as `alg`,
/// `kid` or `iss`) that a message repeats.
const SHOWN_CHARS: usize = 64;

/// The gRPC status class of a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureKind {
    /// The caller is not authenticated: the token is missing, malformed,
    /// badly signed, for another issuer or audience, or outside its
    /// validity window. Maps to gRPC `UNAUTHENTICATED`.
    Unauthenticated,
    /// The token is valid but lacks the scope the call needs. Maps to gRPC
    /// `PERMISSION_DENIED`.
    PermissionDenied,
}

/// The part of a compact JWS a format fault is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPart {
    /// The whole token.
    Token,
    /// The protected header, the first segment.
    Header,
    /// The claims, the second segment.
    Payload,
    /// The signature, the third segment.
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            TokenPart::Token => "token",
            TokenPart::Header => "header",
            TokenPart::Payload => "payload",
            TokenPart::Signature => "signature",
        })
    }
}

/// A format fault of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatFault {
    /// The token is not three segments separated by two dots.
    SegmentCount,
    /// A segment is not strict base64url: it has padding, a character
    /// outside the URL-safe alphabet, or non-zero trailing bits.
    Base64,
    /// A segment is not valid UTF-8 JSON.
    Json,
    /// A JSON object repeats a member name.
    DuplicateMember,
    /// A segment is JSON but not an object.
    NotObject,
    /// The signature is not 64 bytes, the raw `r || s` form that RFC 7518
    /// section 3.4 requires (a DER-encoded ECDSA signature fails here).
    SignatureLength,
}

impl fmt::Display for FormatFault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            FormatFault::SegmentCount => "is not three base64url segments separated by two dots",
            FormatFault::Base64 => "is not base64url without padding",
            FormatFault::Json => "is not valid JSON",
            FormatFault::DuplicateMember => "repeats a JSON member name",
            FormatFault::NotObject => "is not a JSON object",
            FormatFault::SignatureLength => "is not 64 bytes; ES256 requires raw r||s, not DER",
        })
    }
}

/// A token rejection.
///
/// [`AuthError::kind`] gives the gRPC status class and [`AuthError::check`]
/// a stable name of the failed check for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was supplied.
    #[error("missing token: send the header \"authorization: Bearer <token>\"")]
    MissingToken,
    /// The token is longer than the size limit.
    #[error("token too large: {len} bytes, the limit is {max} bytes")]
    TokenTooLarge {
        /// Token length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The token is not a well-formed JWS compact serialization.
    #[error("malformed token: the {part} {fault}")]
    Malformed {
        /// The segment that contains the fault.
        part: TokenPart,
        /// The fault.
        fault: FormatFault,
    },
    /// The header has no `alg` member.
    #[error("missing algorithm: the token header has no alg; only ES256 is accepted")]
    MissingAlgorithm,
    /// The header names an algorithm other than ES256.
    #[error("unsupported algorithm {alg:?}: only ES256 is accepted")]
    UnsupportedAlgorithm {
        /// The `alg` value, shortened.
        alg: String,
    },
    /// The header `typ` is neither `JWT` nor `at+jwt`.
    #[error("unsupported token type {typ:?}: expected JWT or at+jwt")]
    UnsupportedType {
        /// The `typ` value, shortened.
        typ: String,
    },
    /// The header carries a parameter this validator never accepts.
    #[error(
        "header parameter {name} is not accepted: verification keys come only from the \
         configured JWKS, and no critical extensions are supported"
    )]
    ForbiddenHeader {
        /// The parameter name.
        name: &'static str,
    },
    /// The header has no `kid`, or it is not a non-empty string.
    #[error("missing key ID: the token header needs a non-empty kid string")]
    MissingKeyId,
    /// No key in the JWKS has the header's `kid`.
    #[error("unknown key ID {kid:?}: no key with this kid in the configured JWKS")]
    UnknownKeyId {
        /// The `kid` value, shortened.
        kid: String,
    },
    /// The signature does not verify with the selected key.
    #[error("invalid signature: the ES256 signature does not verify with key {kid:?}")]
    InvalidSignature {
        /// The key ID used.
        kid: String,
    },
    /// A required claim is absent.
    #[error("missing claim {claim}")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// A claim has the wrong type or syntax.
    #[error("invalid claim {claim}: {fault}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// The fault.
        fault: &'static str,
    },
    /// `iss` differs from the configured issuer.
    #[error("wrong issuer {found:?}: expected {expected:?}")]
    WrongIssuer {
        /// The token's `iss`, shortened.
        found: String,
        /// The configured issuer.
        expected: String,
    },
    /// `aud` does not contain the service's audience.
    #[error("wrong audience: the token's aud does not contain {expected:?}")]
    WrongAudience {
        /// The configured audience.
        expected: String,
    },
    /// `now` is at or after `exp` plus the clock skew.
    #[error("token expired: exp {exp} is before now {now} by more than the {skew} s clock skew")]
    Expired {
        /// The `exp` claim, Unix seconds.
        exp: i64,
        /// The validation time, Unix seconds.
        now: i64,
        /// The configured clock skew in seconds.
        skew: u32,
    },
    /// `now` is before `nbf` minus the clock skew.
    #[error(
        "token not yet valid: nbf {nbf} is after now {now} by more than the {skew} s clock skew"
    )]
    NotYetValid {
        /// The `nbf` claim, Unix seconds.
        nbf: i64,
        /// The validation time, Unix seconds.
        now: i64,
        /// The configured clock skew in seconds.
        skew: u32,
    },
    /// `iat` is after `now` plus the clock skew.
    #[error(
        "token issued in the future: iat {iat} is after now {now} by more than the {skew} s clock skew"
    )]
    IssuedInFuture {
        /// The `iat` claim, Unix seconds.
        iat: i64,
        /// The validation time, Unix seconds.
        now: i64,
        /// The configured clock skew in seconds.
        skew: u32,
    },
    /// The token is valid but does not grant the scope the call needs.
    #[error("permission denied: the token does not grant scope {required}")]
    MissingScope {
        /// The scope the call needs.
        required: Scope,
    },
}

impl AuthError {
    /// Returns the gRPC status class of this rejection.
    pub fn kind(&self) -> AuthFailureKind {
        match self {
            AuthError::MissingScope { .. } => AuthFailureKind::PermissionDenied,
            _ => AuthFailureKind::Unauthenticated,
        }
    }

    /// Returns a stable name of the failed check, for logs and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "token",
            AuthError::TokenTooLarge { .. } => "size",
            AuthError::Malformed { .. } => "format",
            AuthError::MissingAlgorithm | AuthError::UnsupportedAlgorithm { .. } => "alg",
            AuthError::UnsupportedType { .. } => "typ",
            AuthError::ForbiddenHeader { .. } => "header",
            AuthError::MissingKeyId | AuthError::UnknownKeyId { .. } => "kid",
            AuthError::InvalidSignature { .. } => "signature",
            AuthError::MissingClaim { .. } | AuthError::InvalidClaim { .. } => "claims",
            AuthError::WrongIssuer { .. } => "iss",
            AuthError::WrongAudience { .. } => "aud",
            AuthError::Expired { .. } => "exp",
            AuthError::NotYetValid { .. } => "nbf",
            AuthError::IssuedInFuture { .. } => "iat",
            AuthError::MissingScope { .. } => "scope",
        }
    }
}

/// Shortens a token-supplied string before a message repeats it.
pub(crate) fn shown(value: &str) -> String {
    value.chars().take(SHOWN_CHARS).collect()
}
