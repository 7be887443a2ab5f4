//! gRPC clients of the Stella attestor and promotion gate, for release orchestrators, and the
//! implementation of the `stella` command-line tool.
//!
//! ```no_run
//! # async fn example() -> Result<(), stella_client::ClientError> {
//! use stella_client::{BearerToken, ConnectOptions, connect_gate};
//!
//! stella_access::install_crypto_provider();
//! let token = std::env::var("STELLA_TOKEN").unwrap_or_default();
//! let ca = std::path::Path::new("ca.pem");
//! let options = ConnectOptions {
//!     token: Some(BearerToken::new(&token).expect("a JWT")),
//!     tls: Some(stella_access::client_tls(ca, None, None).expect("CA file")),
//!     ..ConnectOptions::default()
//! };
//! let mut gate = connect_gate("https://gate.example:7402", &options).await?;
//! let result = gate.evaluate("release-42").await?;
//! println!("{} {:?}", result.decision, result.reason_codes);
//! # Ok(())
//! # }
//! ```
//!
//! Call `stella_access::install_crypto_provider()` once before the first TLS connection, as above.
//! Every call returns [`ClientError`] on failure, which distinguishes an unreachable service
//! ([`ClientError::is_unreachable`]) from a rejected request, and carries the reason code that the
//! service sent in the `stella-reason-code` metadata.
#![forbid(unsafe_code)]

pub mod cli;
mod connect;
mod error;
pub mod trace_context;
mod transport;

pub use connect::{
    AttestorConnection, GateConnection, IMPORT_CHUNK_BYTES, InclusionResponses,
    StreamImportError, connect_attestor, connect_gate,
};
pub use stella_access::BearerToken;
pub use transport::{
    AuthenticatedChannel, CallCredentials, ConnectOptions, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT,
};
pub use error::{ClientError, Service};

pub use stella_proto::REASON_CODE_METADATA_KEY;
/// The generated attestor API (`stella.attestor.v1`).
pub use stella_proto::attestor::v1 as attestor;
/// The generated gate API (`stella.gate.v1`).
pub use stella_proto::gate::v1 as gate;
pub use stella_verify::reason::ReasonCode;
