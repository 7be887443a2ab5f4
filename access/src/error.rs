//! Configuration errors of tokens and TLS. Each names the file or option at fault.

use std::path::PathBuf;

/// A token or TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The JWKS file is not a valid key set.
    #[error("invalid JWKS file {path}: {source}")]
    Jwks {
        path: PathBuf,
        #[source]
        source: stella_authority::JwksError,
    },
    /// The issuer, audience or clock skew is invalid.
    #[error(transparent)]
    ValidatorConfig(#[from] stella_authority::ConfigError),
    /// A PEM file contains no usable certificate or key.
    #[error("invalid {what} {path}: {why}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    /// The transport options contradict each other or are missing.
    #[error("{0}")]
    Transport(String),
    /// A token cannot be sent in gRPC metadata.
    #[error("invalid token: {0}")]
    Token(&'static str),
    /// The operating system's random number generator failed.
    #[error("cannot generate a key: the system random number generator failed: {0}")]
    Random(String),
}
