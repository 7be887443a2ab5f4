//! Offline validation of Authority tokens against a configured issuer,
//! audience and JWKS.

use crate::claims::{Expectations, check_claims};
use crate::error::AuthError;
use crate::jwks::Jwks;
use crate::jws::verify_token;
use crate::principal::Principal;
use crate::scope::Scope;

/// Default tolerance in seconds for clock differences between the Authority
/// and the service.
pub const DEFAULT_CLOCK_SKEW_SECS: u32 = 60;

/// Largest accepted clock skew in seconds. A larger tolerance would keep
/// expired tokens usable for too long.
pub const MAX_CLOCK_SKEW_SECS: u32 = 300;

/// Largest accepted token in bytes. Tokens with a few scopes are well under
/// 1 KiB, and the cap bounds the work an unauthenticated caller can cause.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The issuer, audience and clock skew that a service accepts tokens with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// Required `iss`, compared exactly.
    pub issuer: String,
    /// This service's audience; `aud` must contain it.
    pub audience: String,
    /// Tolerance in seconds applied to `exp`, `nbf` and `iat`.
    pub clock_skew_secs: u32,
}

impl ValidatorConfig {
    /// Creates a configuration with the default clock skew.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        ValidatorConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        }
    }
}

/// An invalid [`ValidatorConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The issuer is empty.
    #[error("invalid token validation config: the issuer is empty")]
    EmptyIssuer,
    /// The audience is empty.
    #[error("invalid token validation config: the audience is empty")]
    EmptyAudience,
    /// The clock skew exceeds [`MAX_CLOCK_SKEW_SECS`].
    #[error("invalid token validation config: clock skew {skew} s exceeds the maximum of {max} s")]
    ClockSkewTooLarge {
        /// The configured skew in seconds.
        skew: u32,
        /// The maximum in seconds.
        max: u32,
    },
}

/// Validates Authority tokens without network access or clock reads: the
/// caller passes the current time.
#[derive(Debug, Clone)]
pub struct Validator {
    config: ValidatorConfig,
    jwks: Jwks,
}

impl Validator {
    /// Creates a validator that accepts tokens signed by any key in `jwks`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an empty issuer or audience or a clock skew above
    /// [`MAX_CLOCK_SKEW_SECS`].
    pub fn new(config: ValidatorConfig, jwks: Jwks) -> Result<Self, ConfigError> {
        if config.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if config.audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        if config.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(ConfigError::ClockSkewTooLarge {
                skew: config.clock_skew_secs,
                max: MAX_CLOCK_SKEW_SECS,
            });
        }
        Ok(Validator { config, jwks })
    }

    /// Returns the configuration.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// Returns the verification keys.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Validates `token` at `now_unix` (Unix seconds) and checks that it
    /// grants `required`.
    ///
    /// # Errors
    ///
    /// The first failed check as an [`AuthError`]; see [`Validator::authenticate`]
    /// for the order. A missing scope is the last check.
    pub fn validate(
        &self,
        token: &str,
        now_unix: i64,
        required: Scope,
    ) -> Result<Principal, AuthError> {
        let principal = self.authenticate(token, now_unix)?;
        principal.require(required)?;
        Ok(principal)
    }

    /// Validates `token` at `now_unix` (Unix seconds) without a scope check.
    ///
    /// Checks run in this order and stop at the first failure. First come
    /// presence and size, the three segments and the header: `alg` exactly
    /// `ES256`, `typ`, no `crit`, `jku`, `jwk`, `x5u`, `x5c` or `b64`, and a
    /// `kid`. Then the key is selected by `kid` and the signature verified.
    /// Only then are the claims read and checked: `iss`, `aud`, `exp`,
    /// `nbf`, `iat`, `sub`, `jti`, `tenant` and the `scope` syntax.
    ///
    /// # Errors
    ///
    /// The first failed check as an [`AuthError`]; all of them classify as
    /// [`crate::AuthFailureKind::Unauthenticated`].
    pub fn authenticate(&self, token: &str, now_unix: i64) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge {
                len: token.len(),
                max: MAX_TOKEN_BYTES,
            });
        }

        let verified = verify_token(token, &self.jwks)?;
        let expected = Expectations {
            issuer: &self.config.issuer,
            audience: &self.config.audience,
            clock_skew_secs: self.config.clock_skew_secs,
            now: now_unix,
        };
        let claims = check_claims(&verified.claims, &expected)?;

        Ok(Principal {
            tenant: claims.tenant,
            subject: claims.subject,
            scopes: claims.scopes,
            token_id: claims.token_id,
            expires_at: claims.expires_at,
            key_id: verified.kid,
        })
    }
}

/// Extracts the token from an `authorization` header value of the form
/// `Bearer <token>` (RFC 6750 section 2.1; the scheme name is
/// case-insensitive).
///
/// # Errors
///
/// [`AuthError::MissingToken`] if the header is absent, uses another scheme
/// or carries no token.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingToken)?;
    let (scheme, rest) = value.split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}
