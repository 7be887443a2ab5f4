//! The benchmark's development Authority: the JWKS the attestor checks tokens against, one token
//! with every scope, and gRPC clients that send it on every call.

use std::path::{Path, PathBuf};

use stella_access::dev::{DevAuthority, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, Authenticator, BearerToken, DEFAULT_ISSUER};
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Tenant of the benchmark's token.
const TENANT: &str = "bench";

/// Lifetime of the token, in seconds: a day, longer than a run of the largest log takes.
const TOKEN_TTL_SECS: i64 = 86_400;

/// Clock skew the attestor allows, in seconds: the services' default.
const CLOCK_SKEW_SECS: u32 = 60;

/// A gRPC client of the attestor whose calls carry the benchmark's token.
pub type BenchClient = AttestorClient<InterceptedService<Channel, BearerToken>>;

/// A development Authority with its JWKS written to a file.
pub struct BenchAuthority {
    jwks_path: PathBuf,
    token: String,
}

impl BenchAuthority {
    /// Generates a key, writes its JWKS to `dir/jwks.json` and mints the token.
    pub fn create(dir: &Path) -> Result<BenchAuthority, String> {
        let authority = DevAuthority::generate();
        let jwks_path = dir.join("jwks.json");
        std::fs::write(&jwks_path, authority.jwks_json())
            .map_err(|error| format!("writing {} failed: {error}", jwks_path.display()))?;
        let mut claims = authority.claims(TENANT, &all_scopes());
        claims.expires_at = claims.issued_at.saturating_add(TOKEN_TTL_SECS);
        Ok(BenchAuthority {
            jwks_path,
            token: authority.token_with(&claims),
        })
    }

    /// Returns the path of the JWKS file, for `stella-attestor --authority-jwks`.
    pub fn jwks_path(&self) -> &Path {
        &self.jwks_path
    }

    /// Returns the token, for `STELLA_TOKEN`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Returns the token check of an in-process attestor.
    pub fn authenticator(&self) -> Result<Authenticator, String> {
        Authenticator::load(
            &self.jwks_path,
            DEFAULT_ISSUER,
            AUDIENCE_ATTESTOR,
            CLOCK_SKEW_SECS,
        )
        .map_err(|error| error.to_string())
    }

    /// Connects to the attestor at `url` with a client that sends the token on every call.
    pub async fn connect(&self, url: &str) -> Result<BenchClient, String> {
        let token = BearerToken::new(&self.token).map_err(|error| error.to_string())?;
        let channel = Channel::from_shared(url.to_owned())
            .map_err(|error| format!("invalid attestor URL {url}: {error}"))?
            .connect()
            .await
            .map_err(|error| format!("connecting to the attestor at {url} failed: {error}"))?;
        Ok(AttestorClient::with_interceptor(channel, token))
    }
}
