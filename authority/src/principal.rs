//! The identity a verified token establishes.

use std::collections::BTreeSet;

use crate::error::AuthError;
use crate::scope::Scope;
use crate::tenant::Tenant;

/// The caller a verified token identifies.
///
/// Only [`crate::Validator`] creates a `Principal`, so a value of this type
/// always comes from a token whose signature, issuer, audience and validity
/// window were checked. Services take the tenant from here and never from a
/// request field or header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub(crate) tenant: Tenant,
    pub(crate) subject: String,
    pub(crate) scopes: BTreeSet<Scope>,
    pub(crate) token_id: String,
    pub(crate) expires_at: i64,
    pub(crate) key_id: String,
}

impl Principal {
    /// Returns the tenant (`tenant` claim).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Returns the subject (`sub` claim).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Returns the known scopes the token grants (`scope` claim).
    pub fn scopes(&self) -> &BTreeSet<Scope> {
        &self.scopes
    }

    /// Returns the token ID (`jti` claim), which identifies the token in
    /// logs. ES256 signatures are malleable, so the token bytes do not
    /// identify a token and must not be used as its key.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// Returns the expiry time (`exp` claim) in Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Returns the key ID of the JWKS key that verified the token.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns whether the token grants `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Checks that the token grants `scope`.
    ///
    /// # Errors
    ///
    /// [`AuthError::MissingScope`], a `PERMISSION_DENIED` rejection.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope { required: scope })
        }
    }
}
