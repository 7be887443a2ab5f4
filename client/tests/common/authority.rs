//! The development Authority of a test binary: one key pair that signs every token the tests
//! send, and whose public key every attestor they start accepts.

use std::sync::OnceLock;

use stella_access::dev::{DevAuthority, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, Authenticator, DEFAULT_ISSUER, Scope};
use stella_authority::{DEFAULT_CLOCK_SKEW_SECS, Jwks, Validator, ValidatorConfig};

/// Tenant of the default token.
pub const DEFAULT_TENANT: &str = "tenant-a";

/// Returns the Authority of this test binary, generated on first use.
pub fn authority() -> &'static DevAuthority {
    static AUTHORITY: OnceLock<DevAuthority> = OnceLock::new();
    AUTHORITY.get_or_init(DevAuthority::generate)
}

/// Returns a token of [`DEFAULT_TENANT`] with every scope, valid for an hour from its first use.
pub fn default_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| authority().token(DEFAULT_TENANT, &all_scopes()))
}

/// Returns a token of [`DEFAULT_TENANT`] with only `scopes`.
pub fn token_with_scopes(scopes: &[Scope]) -> String {
    authority().token(DEFAULT_TENANT, scopes)
}

/// Returns the token check of an attestor that trusts [`authority`], with the services' default
/// issuer and clock skew.
pub fn attestor_authenticator() -> Authenticator {
    let jwks = Jwks::parse(&authority().jwks_json()).expect("the development JWKS parses");
    let config = ValidatorConfig {
        issuer: DEFAULT_ISSUER.to_owned(),
        audience: AUDIENCE_ATTESTOR.to_owned(),
        clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
    };
    Authenticator::new(Validator::new(config, jwks).expect("valid validator configuration"))
}
