//! Request failures and their gRPC form.
//!
//! A rejected request becomes a status whose message starts with its reason code
//! (`"<CODE>: <file>: <detail>"`) and whose `stella-reason-code` metadata carries the
//! same code. Internal failures (storage, a stored record that no longer opens) are
//! logged once here and reach the client as a generic `INTERNAL` status.

use stella_proto::REASON_CODE_METADATA_KEY;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use tonic::{Code, Status};
use tracing::{error, info};

use crate::store::StoreError;

/// Escapes a client-supplied string for a log field: control characters such as newline and
/// ESC become Rust escapes (`\n`, `\u{1b}`), so a file name cannot forge log lines or
/// terminal sequences. Quotes and backslashes are escaped as well.
pub fn escape_for_log(text: &str) -> std::str::EscapeDebug<'_> {
    text.escape_debug()
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The client's input was rejected, or the request cannot run in the current state.
    #[error("{reason}: {message}")]
    Rejected {
        code: Code,
        reason: ReasonCode,
        /// "<file>: <detail>", or just the detail when no file is involved.
        message: String,
    },
    /// A failure on the attestor's side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// INVALID_ARGUMENT: a bundle or request that is bad in itself.
    pub fn invalid(reason: ReasonCode, message: impl Into<String>) -> Self {
        ServiceError::Rejected {
            code: Code::InvalidArgument,
            reason,
            message: message.into(),
        }
    }

    /// FAILED_PRECONDITION: valid input that the current state cannot accept.
    pub fn precondition(reason: ReasonCode, message: impl Into<String>) -> Self {
        ServiceError::Rejected {
            code: Code::FailedPrecondition,
            reason,
            message: message.into(),
        }
    }

    /// NOT_FOUND: an unknown bundle id or report digest.
    pub fn not_found(reason: ReasonCode, message: impl Into<String>) -> Self {
        ServiceError::Rejected {
            code: Code::NotFound,
            reason,
            message: message.into(),
        }
    }

    /// INVALID_ARGUMENT with the code of a library error; the error's text names the
    /// file and the fault.
    pub fn from_coded(error: &(impl HasReasonCode + std::fmt::Display)) -> Self {
        ServiceError::invalid(error.reason_code(), error.to_string())
    }

    /// Returns the reason code of a rejection.
    pub fn reason(&self) -> Option<ReasonCode> {
        match self {
            ServiceError::Rejected { reason, .. } => Some(*reason),
            ServiceError::Internal(_) => None,
        }
    }

    /// Converts to a status, logging once: rejections at info with their code, internal
    /// errors at error.
    pub fn into_status(self) -> Status {
        match self {
            ServiceError::Rejected { code, reason, message } => {
                // Recorded as a string, so the log formatter quotes and escapes the request's
                // text once (escaping it here too would double every backslash).
                info!(reason_code = %reason, detail = message.as_str(), "request rejected");
                let mut status = Status::new(code, format!("{reason}: {message}"));
                if let Ok(value) = reason.as_str().parse() {
                    status.metadata_mut().insert(REASON_CODE_METADATA_KEY, value);
                }
                status
            }
            ServiceError::Internal(detail) => {
                error!(error = %detail, "internal error");
                Status::internal("internal error; see the attestor log")
            }
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        ServiceError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_carries_code_twice() {
        let status = ServiceError::invalid(
            ReasonCode::FileDigestMismatch,
            "rekor-tiles.tgz: logs/0/checkpoint: sha256 aa, manifest says bb",
        )
        .into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "ERR_FILE_DIGEST_MISMATCH: rekor-tiles.tgz: logs/0/checkpoint: sha256 aa, manifest says bb"
        );
        let metadata = status.metadata().get(REASON_CODE_METADATA_KEY).expect("metadata");
        assert_eq!(metadata.to_str().expect("ASCII"), "ERR_FILE_DIGEST_MISMATCH");
    }

    #[test]
    fn log_escape_neutralizes_controls() {
        let cases = [
            ("newline", "a.tgz\nINFO forged line", "a.tgz\\nINFO forged line"),
            ("carriage return", "a.tgz\rX", "a.tgz\\rX"),
            ("escape sequence", "a\u{1b}[31mred", "a\\u{1b}[31mred"),
            ("tab", "a\tb", "a\\tb"),
            ("plain", "rekor-tiles.tgz", "rekor-tiles.tgz"),
            ("non-ASCII letters kept", "données.tgz", "données.tgz"),
        ];
        for (name, input, expected) in cases {
            let escaped = escape_for_log(input).to_string();
            assert_eq!(escaped, expected, "{name}");
            assert!(!escaped.contains(['\n', '\r', '\u{1b}']), "{name}: {escaped:?}");
        }
    }

    #[test]
    fn internal_hides_detail() {
        let status = ServiceError::Internal("RocksDB put failed: disk full".to_owned()).into_status();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk full"));
        assert!(status.metadata().get(REASON_CODE_METADATA_KEY).is_none());
    }

    #[test]
    fn precondition_and_not_found_codes() {
        let missing = ServiceError::precondition(ReasonCode::TrustRootMissing, "no trust root set imported");
        assert_eq!(missing.reason(), Some(ReasonCode::TrustRootMissing));
        assert_eq!(missing.into_status().code(), Code::FailedPrecondition);
        let unknown = ServiceError::not_found(ReasonCode::EvidenceNotFound, "evidence bundle sha256:ab");
        assert_eq!(unknown.into_status().code(), Code::NotFound);
    }
}
