//! The server side of tokens: checking the bearer token and scope of each call.

use std::path::Path;
use std::sync::Arc;

use stella_authority::{AuthError, AuthFailureKind, Jwks, Principal, Scope, Validator, ValidatorConfig, bearer_token};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_verify::reason::ReasonCode;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tracing::warn;

use crate::AUTHORIZATION;
use crate::bearer::BearerToken;
use crate::error::AccessError;
use crate::token_cache::TokenCache;

/// Checks the Authority token of each call against one service's audience.
#[derive(Clone, Debug)]
pub struct Authenticator {
    validator: Arc<Validator>,
    verified: Arc<TokenCache>,
}

impl Authenticator {
    /// Loads the Authority's public keys from the JWKS file `jwks_path` and accepts tokens
    /// from `issuer` for `audience`, with `clock_skew_secs` of tolerance on their times.
    ///
    /// # Errors
    ///
    /// [`AccessError::Read`] or [`AccessError::Jwks`] naming the file, or
    /// [`AccessError::ValidatorConfig`] for an empty issuer or audience or a too large skew.
    pub fn load(
        jwks_path: &Path,
        issuer: &str,
        audience: &str,
        clock_skew_secs: u32,
    ) -> Result<Self, AccessError> {
        let text = std::fs::read_to_string(jwks_path).map_err(|source| AccessError::Read {
            what: "JWKS file",
            path: jwks_path.to_owned(),
            source,
        })?;
        let jwks = Jwks::parse(&text).map_err(|source| AccessError::Jwks {
            path: jwks_path.to_owned(),
            source,
        })?;
        let config = ValidatorConfig {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            clock_skew_secs,
        };
        Ok(Authenticator::new(Validator::new(config, jwks)?))
    }

    /// Uses an already configured validator.
    pub fn new(validator: Validator) -> Self {
        Authenticator {
            validator: Arc::new(validator),
            verified: Arc::new(TokenCache::default()),
        }
    }

    /// Returns the audience this authenticator accepts.
    pub fn audience(&self) -> &str {
        &self.validator.config().audience
    }

    /// Validates the bearer token of `request` at the current time and checks that it grants
    /// `scope`, which the call `rpc` needs.
    ///
    /// # Errors
    ///
    /// A status `UNAUTHENTICATED` (reason `ERR_AUTH_UNAUTHENTICATED`) or `PERMISSION_DENIED`
    /// (reason `ERR_AUTH_PERMISSION_DENIED`) whose message names the call and the failed check.
    /// The rejection is logged with the call, the check and the peer address, never the token.
    pub fn authorize<T>(
        &self,
        request: &Request<T>,
        rpc: &'static str,
        scope: Scope,
    ) -> Result<Principal, Status> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.authorize_at(request, rpc, scope, now)
    }

    /// Does what [`Authenticator::authorize`] does at `now_unix`, for tests of the time checks.
    ///
    /// # Errors
    ///
    /// As for [`Authenticator::authorize`].
    pub fn authorize_at<T>(
        &self,
        request: &Request<T>,
        rpc: &'static str,
        scope: Scope,
        now_unix: i64,
    ) -> Result<Principal, Status> {
        let result = authorization_header(request)
            .and_then(|header| bearer_token(header))
            .and_then(|token| self.principal(token, now_unix))
            .and_then(|principal| principal.require(scope).map(|()| principal));
        result.map_err(|error| {
            let peer = request
                .remote_addr()
                .map_or_else(|| "unknown".to_owned(), |address| address.to_string());
            warn!(rpc, check = error.check(), peer = %peer, error = %error, "call rejected");
            rejection_status(rpc, &error)
        })
    }
}

impl Authenticator {
    /// Returns the principal of `token`: from the cache of verified tokens when the same token
    /// verified before and has not expired, else by full validation.
    fn principal(&self, token: &str, now_unix: i64) -> Result<Principal, AuthError> {
        let skew = self.validator.config().clock_skew_secs;
        if let Some(principal) = self.verified.get(token, now_unix, skew) {
            return Ok(principal);
        }
        let principal = self.validator.authenticate(token, now_unix)?;
        self.verified.insert(token, principal.clone(), now_unix, skew);
        Ok(principal)
    }
}

/// Returns the `authorization` value of `request`. A value that is not visible ASCII counts as
/// missing, because a JWT bearer token never contains such bytes.
fn authorization_header<T>(request: &Request<T>) -> Result<Option<&str>, AuthError> {
    match request.metadata().get(AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| AuthError::MissingToken),
    }
}

/// Builds the status of a rejected call. The message never contains the token: the
/// authority crate's messages repeat at most short header and claim values.
fn rejection_status(rpc: &str, error: &AuthError) -> Status {
    let (code, reason) = match error.kind() {
        AuthFailureKind::Unauthenticated => (Code::Unauthenticated, ReasonCode::AuthUnauthenticated),
        AuthFailureKind::PermissionDenied => (Code::PermissionDenied, ReasonCode::AuthPermissionDenied),
    };
    let mut status = Status::new(code, format!("{reason}: {rpc}: {} check failed: {error}", error.check()));
    status
        .metadata_mut()
        .insert(REASON_CODE_METADATA_KEY, MetadataValue::from_static(reason.as_str()));
    status
}

/// Returns the caller's `authorization` value, to send it on to another service on the
/// caller's behalf. Call it only after [`Authenticator::authorize`] accepted the request.
pub fn forwarded_token<T>(request: &Request<T>) -> Option<BearerToken> {
    request
        .metadata()
        .get(AUTHORIZATION)
        .cloned()
        .map(BearerToken::from_header)
}
