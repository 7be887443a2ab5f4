//! gRPC clients of the Stella attestor and promotion gate, for release orchestrators, and the
//! implementation of the `stella` command-line tool.
//!
//! ```no_run
//! # async fn example() -> Result<(), stella_client::ClientError> {
//! use stella_client::{ConnectOptions, connect_gate};
//!
//! let mut gate = connect_gate("http://127.0.0.1:7402", &ConnectOptions::default()).await?;
//! let result = gate.evaluate("release-42").await?;
//! println!("{} {:?}", result.decision, result.reason_codes);
//! # Ok(())
//! # }
//! ```
//!
//! Every call returns [`ClientError`] on failure, which distinguishes an unreachable service
//! ([`ClientError::is_unreachable`]) from a rejected request, and carries the reason code that the
//! service sent in the `stella-reason-code` metadata.
#![forbid(unsafe_code)]

pub mod cli;
mod connect;
mod error;

pub use connect::{
    AttestorConnection, ConnectOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT, GateConnection, IMPORT_CHUNK_BYTES, InclusionResponses,
    StreamImportError, connect_attestor, connect_gate,
};
pub use error::{ClientError, Service};

pub use stella_proto::REASON_CODE_METADATA_KEY;
/// The generated attestor API (`stella.attestor.v1`).
pub use stella_proto::attestor::v1 as attestor;
/// The generated gate API (`stella.gate.v1`).
pub use stella_proto::gate::v1 as gate;
pub use stella_verify::reason::ReasonCode;
