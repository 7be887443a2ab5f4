//! Authority tokens: offline validation of ES256-signed JWTs against a JWKS,
//! and minting for development and tests.
//!
//! Services inside an air gap cannot call an identity provider, so they
//! check each token locally: the signature against the Authority's public
//! keys (a JWKS file, keys selected by `kid`), then issuer, audience,
//! validity window, tenant and scopes. [`Validator::validate`] returns the
//! [`Principal`] or an [`AuthError`] that names the failed check and
//! classifies as `UNAUTHENTICATED` or `PERMISSION_DENIED`
//! ([`AuthError::kind`]). The crate performs no I/O and never reads the
//! clock: callers pass the token, the JWKS text and the current time.
//!
//! Only ES256 is accepted. The header's `alg` must be exactly `ES256`, so
//! `none`, HS256 with the public key as the HMAC secret, and other
//! algorithms are rejected before any key is used. Keys come only from the
//! configured JWKS, never from `jku`, `jwk`, `x5u` or `x5c` in the token.
//! Segments are strict base64url, JSON objects with repeated member names
//! are rejected, and no claim is read before the signature verifies.
//!
//! The JWS code is written here rather than taken from `jsonwebtoken`.
//! Version 12.0 of that crate can use the same RustCrypto generation
//! (`p256` 0.14) through its `rust_crypto` feature. But it also enables
//! `rsa`'s `getrandom` feature and adds `pem` and `simple_asn1`. It reads
//! the system clock for `exp` unless that check is turned off, and it does
//! not reject `jku`, `jwk`, `x5u` or `x5c` headers. Duplicate members,
//! strict tenant syntax and the check order would still need code around
//! it, while compact ES256 itself is a split, a base64url decode and one
//! ECDSA verification.
#![forbid(unsafe_code)]

mod base64url;
mod claims;
mod error;
mod header;
mod json;
mod jwks;
mod jws;
mod keys;
mod mint;
mod principal;
mod scope;
mod tenant;
mod validator;

pub use claims::Claims;
pub use error::{AuthError, AuthFailureKind, FormatFault, TokenPart};
pub use jwks::{Jwk, JwkFault, Jwks, JwksError, thumbprint};
pub use keys::{
    KeyError, signing_key_from_pem, signing_key_to_pem, verifying_key_from_pem,
    verifying_key_to_pem,
};
pub use mint::{MintError, mint, sign_jws};
pub use principal::Principal;
pub use scope::{Scope, UnknownScope, format_scope_claim};
pub use tenant::{InvalidTenant, Tenant};
pub use validator::{
    ConfigError, DEFAULT_CLOCK_SKEW_SECS, MAX_CLOCK_SKEW_SECS, MAX_TOKEN_BYTES, Validator,
    ValidatorConfig, bearer_token,
};

/// The P-256 key types this crate signs and verifies with.
pub use p256::ecdsa::{SigningKey, VerifyingKey};
