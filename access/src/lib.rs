//! Access control of the Stella services: Authority tokens carried in gRPC metadata, and the TLS
//! configuration of servers and clients.
//!
//! Servers check every call with an [`Authenticator`]: the `authorization: Bearer <jwt>`
//! metadata is validated offline by [`stella_authority::Validator`] against the Authority's JWKS
//! file, then the scope the call needs is checked. A rejection becomes a gRPC status whose
//! message starts with a reason code from the catalog (`ERR_AUTH_UNAUTHENTICATED` or
//! `ERR_AUTH_PERMISSION_DENIED`) and names the failed check. The token itself is never logged
//! and never repeated in a message.
//!
//! Clients attach a token with [`BearerToken`]. The gate forwards its caller's token to the
//! attestor ([`forwarded_token`]), so the attestor takes the tenant from a token it verified
//! itself.
//!
//! TLS uses rustls with the ring provider only ([`install_crypto_provider`]). Servers serve
//! plaintext only on a loopback address and only when asked to ([`ServerAccessArgs`]).
#![forbid(unsafe_code)]

mod args;
mod authenticate;
mod bearer;
mod error;
mod keygen;
mod tls;
mod token_cache;

#[cfg(feature = "dev")]
pub mod dev;

pub use args::ServerAccessArgs;
pub use authenticate::{Authenticator, forwarded_token};
pub use bearer::BearerToken;
pub use error::AccessError;
pub use keygen::generate_signing_key;
pub use stella_authority::{Principal, Scope, Tenant};
pub use tls::{client_tls, install_crypto_provider, is_loopback_host, server_tls, tls_failure};

/// Audience of tokens for the attestor service.
pub const AUDIENCE_ATTESTOR: &str = "stella-attestor";
/// Audience of tokens for the gate service.
pub const AUDIENCE_GATE: &str = "stella-gate";
/// Issuer name that the services expect unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "stella-authority";
/// gRPC metadata key of the bearer token.
pub const AUTHORIZATION: &str = "authorization";
