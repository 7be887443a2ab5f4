//! The typed error of the gRPC clients.
//!
//! A call fails in one of three ways that a release orchestrator must tell apart:
//!
//! - the service could not be reached, did not respond in time or dropped the connection during
//!   the call ([`ClientError::Unreachable`] and [`ClientError::ConnectionLost`]);
//! - the service rejected the request ([`ClientError::Rejected`], with the reason code from the
//!   `stella-reason-code` metadata);
//! - the service failed internally ([`ClientError::Failed`]).

use std::error::Error as StdError;
use std::fmt;

use stella_proto::REASON_CODE_METADATA_KEY;
use stella_verify::reason::ReasonCode;
use tonic::{Code, Status};

/// The service a client talks to, named in every error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The attestor (`stella-attestor`): imports and offline verification.
    Attestor,
    /// The promotion gate (`stella-gate`): promotions and decisions.
    Gate,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::Attestor => f.write_str("attestor"),
            Service::Gate => f.write_str("gate"),
        }
    }
}

/// A failed call to the attestor or the gate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service URL is invalid, is plain-text `http://` to a host that is not loopback, or is
    /// `https://` without TLS settings.
    #[error("invalid {service} URL {url:?}: {detail}")]
    InvalidUrl {
        service: Service,
        url: String,
        detail: String,
    },

    /// The connection failed, the service is unavailable, or it did not respond in time.
    #[error("{service} at {url} is unreachable: {detail}")]
    Unreachable {
        service: Service,
        url: String,
        detail: String,
    },

    /// The connection broke after the call was sent: the service stopped or the network dropped
    /// it. The call may or may not have taken effect on the service.
    #[error(
        "the connection to the {service} at {url} was lost during the call ({detail}); the call \
         may or may not have completed, so check the service and run the command again"
    )]
    ConnectionLost {
        service: Service,
        url: String,
        detail: String,
    },

    /// The service rejected the request: a bad bundle, an unknown id, a missing precondition.
    #[error("{service} at {url} rejected the request ({code:?}): {message}")]
    Rejected {
        service: Service,
        url: String,
        code: Code,
        /// The `stella-reason-code` metadata value, verbatim.
        reason_code: Option<String>,
        message: String,
    },

    /// The service failed while handling the request (internal error, unimplemented method,
    /// protocol error).
    #[error("{service} at {url} failed ({code:?}): {message}")]
    Failed {
        service: Service,
        url: String,
        code: Code,
        /// The `stella-reason-code` metadata value, verbatim.
        reason_code: Option<String>,
        message: String,
    },
}

impl ClientError {
    /// Classifies a gRPC status returned by `service` at `url`.
    ///
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED` and a client-side timeout count as unreachable. A status
    /// that tonic made on this side from a transport error (it carries a source error, which a
    /// status sent by the service never does) counts as a lost connection. Statuses that describe a problem with the request (`INVALID_ARGUMENT`,
    /// `FAILED_PRECONDITION`, `NOT_FOUND`, `ALREADY_EXISTS`, `OUT_OF_RANGE`,
    /// `RESOURCE_EXHAUSTED`, `PERMISSION_DENIED`, `UNAUTHENTICATED`) count as rejections, and
    /// every other status as a service failure.
    pub fn from_status(service: Service, url: &str, status: Status) -> ClientError {
        let url = url.to_owned();
        if is_timeout(&status) {
            return ClientError::Unreachable {
                service,
                url,
                detail: "no response before the request timeout".to_owned(),
            };
        }

        let reason_code = status
            .metadata()
            .get(REASON_CODE_METADATA_KEY)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let message = status.message().to_owned();
        let local_transport_error = status.source().is_some();
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => ClientError::Unreachable {
                service,
                url,
                detail: format!("{:?}: {}", status.code(), status_detail(&status)),
            },
            // A TLS alert means the handshake failed, so the request never reached the service.
            // NOTE: when the server closes the connection before this side reads its alert (seen
            // with a missing client certificate), only "connection closed" is left, and the
            // error stays ConnectionLost.
            _ if local_transport_error && tls_alert(&status).is_some() => ClientError::Unreachable {
                service,
                url,
                detail: format!(
                    "the TLS handshake failed: {}; check --tls-ca, and --tls-cert and --tls-key when \
                     the service requires a client certificate",
                    tls_alert(&status).unwrap_or_default()
                ),
            },
            Code::Unknown | Code::Internal | Code::Cancelled if local_transport_error => {
                ClientError::ConnectionLost {
                    service,
                    url,
                    detail: status_detail(&status),
                }
            }
            Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::NotFound
            | Code::AlreadyExists
            | Code::OutOfRange
            | Code::ResourceExhausted
            | Code::PermissionDenied
            | Code::Unauthenticated => ClientError::Rejected {
                service,
                url,
                code: status.code(),
                reason_code,
                message,
            },
            _ => ClientError::Failed {
                service,
                url,
                code: status.code(),
                reason_code,
                message,
            },
        }
    }

    /// Returns true when the service could not be reached, did not respond in time or dropped
    /// the connection during the call.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::ConnectionLost { .. }
        )
    }

    /// Returns the service the failed call went to.
    pub fn service(&self) -> Service {
        match self {
            ClientError::InvalidUrl { service, .. }
            | ClientError::Unreachable { service, .. }
            | ClientError::ConnectionLost { service, .. }
            | ClientError::Rejected { service, .. }
            | ClientError::Failed { service, .. } => *service,
        }
    }

    /// Returns the reason code as the service sent it, or `ERR_ATTESTOR_UNAVAILABLE` when the
    /// attestor was unreachable or the connection to it was lost.
    ///
    /// An unreachable gate has no code in the catalog, so this returns `None` for it.
    pub fn reason_code(&self) -> Option<String> {
        match self {
            ClientError::InvalidUrl { .. } => None,
            ClientError::Unreachable { service, .. }
            | ClientError::ConnectionLost { service, .. } => match service {
                Service::Attestor => Some(ReasonCode::AttestorUnavailable.as_str().to_owned()),
                Service::Gate => None,
            },
            ClientError::Rejected { reason_code, .. } | ClientError::Failed { reason_code, .. } => {
                reason_code.clone()
            }
        }
    }

    /// Returns the reason code parsed into the catalog, or `None` when there is none or the
    /// service sent a code this client does not know.
    pub fn known_reason_code(&self) -> Option<ReasonCode> {
        self.reason_code().as_deref().and_then(ReasonCode::parse)
    }
}

/// Returns true when the status comes from tonic's client-side request timeout.
fn is_timeout(status: &Status) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(error) = source {
        if error.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Formats a status's message with the chain of its source error, skipping repeated texts, such
/// as `transport error: connection error: stream closed because of a broken pipe`.
/// Returns the TLS failure behind a status that tonic made from a transport error.
fn tls_alert(status: &Status) -> Option<String> {
    status.source().and_then(|source| stella_access::tls_failure(source))
}

fn status_detail(status: &Status) -> String {
    let message = status.message();
    let Some(source) = status.source() else {
        return message.to_owned();
    };
    let chain = error_chain(source);
    if message.is_empty() || chain.starts_with(message) {
        chain
    } else {
        format!("{message}: {chain}")
    }
}

/// Formats an error with its source chain, `outer: inner: innermost`, skipping repeated texts.
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_code(code: Code, reason: Option<&str>) -> Status {
        let mut status = Status::new(code, "ERR_FILE_DIGEST_MISMATCH: e.tgz: manifest.json: x");
        if let Some(reason) = reason {
            let value = reason.parse().expect("ASCII metadata value");
            status
                .metadata_mut()
                .insert(REASON_CODE_METADATA_KEY, value);
        }
        status
    }

    #[test]
    fn from_status_classifies_codes() {
        let rows = [
            ("unavailable", Code::Unavailable, "unreachable"),
            ("deadline", Code::DeadlineExceeded, "unreachable"),
            ("invalid argument", Code::InvalidArgument, "rejected"),
            ("failed precondition", Code::FailedPrecondition, "rejected"),
            ("not found", Code::NotFound, "rejected"),
            ("too large", Code::ResourceExhausted, "rejected"),
            ("internal", Code::Internal, "failed"),
            ("unknown", Code::Unknown, "failed"),
            ("unimplemented", Code::Unimplemented, "failed"),
        ];
        for (name, code, want) in rows {
            let error = ClientError::from_status(
                Service::Attestor,
                "http://x",
                status_with_code(code, None),
            );
            let got = match error {
                ClientError::Unreachable { .. } => "unreachable",
                ClientError::Rejected { .. } => "rejected",
                ClientError::Failed { .. } => "failed",
                ClientError::ConnectionLost { .. } => "connection lost",
                ClientError::InvalidUrl { .. } => "invalid url",
            };
            assert_eq!(got, want, "row {name}");
        }
    }

    #[test]
    fn rejected_carries_metadata_code() {
        let status = status_with_code(Code::InvalidArgument, Some("ERR_FILE_DIGEST_MISMATCH"));
        let error = ClientError::from_status(Service::Attestor, "http://x", status);
        assert_eq!(
            error.reason_code().as_deref(),
            Some("ERR_FILE_DIGEST_MISMATCH")
        );
        assert_eq!(
            error.known_reason_code(),
            Some(ReasonCode::FileDigestMismatch)
        );
        assert!(error.to_string().contains("http://x"), "{error}");
    }

    #[test]
    fn unknown_metadata_code_kept_verbatim() {
        let status = status_with_code(Code::InvalidArgument, Some("ERR_FROM_THE_FUTURE"));
        let error = ClientError::from_status(Service::Gate, "http://x", status);
        assert_eq!(error.reason_code().as_deref(), Some("ERR_FROM_THE_FUTURE"));
        assert_eq!(error.known_reason_code(), None);
    }

    #[test]
    fn unreachable_attestor_has_code() {
        let status = status_with_code(Code::Unavailable, None);
        let attestor = ClientError::from_status(Service::Attestor, "http://x", status);
        assert_eq!(
            attestor.known_reason_code(),
            Some(ReasonCode::AttestorUnavailable)
        );

        let status = status_with_code(Code::Unavailable, None);
        let gate = ClientError::from_status(Service::Gate, "http://x", status);
        assert_eq!(gate.reason_code(), None);
        assert!(gate.is_unreachable());
    }

    #[test]
    fn local_transport_error_is_connection_lost() {
        let rows = [
            ("unknown", Code::Unknown),
            ("internal", Code::Internal),
            ("cancelled", Code::Cancelled),
        ];
        for (name, code) in rows {
            // tonic's transport layer builds such a status with the transport error as source.
            let cause = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed");
            let mut status = Status::new(code, "transport error");
            status.set_source(std::sync::Arc::new(cause));
            let error = ClientError::from_status(Service::Attestor, "http://x", status);
            assert!(
                matches!(error, ClientError::ConnectionLost { .. }),
                "row {name}: {error:?}"
            );
            assert!(error.is_unreachable(), "row {name}");
            assert_eq!(
                error.known_reason_code(),
                Some(ReasonCode::AttestorUnavailable),
                "row {name}"
            );
            assert!(
                error
                    .to_string()
                    .contains("connection to the attestor at http://x was lost"),
                "row {name}: {error}"
            );
        }
    }

    #[test]
    fn auth_rejections_keep_service_message() {
        use crate::cli::output::{Exit, Failure};

        let rows = [
            (
                Code::Unauthenticated,
                ReasonCode::AuthUnauthenticated,
                "ERR_AUTH_UNAUTHENTICATED: GetReport: token check failed: missing token",
            ),
            (
                Code::PermissionDenied,
                ReasonCode::AuthPermissionDenied,
                "ERR_AUTH_PERMISSION_DENIED: Evaluate: scope check failed: promotion:evaluate",
            ),
        ];
        for (code, reason, message) in rows {
            let mut status = Status::new(code, message);
            let value = reason.as_str().parse().expect("ASCII metadata value");
            status
                .metadata_mut()
                .insert(REASON_CODE_METADATA_KEY, value);
            let error = ClientError::from_status(Service::Gate, "https://gate:7402", status);

            assert!(
                matches!(error, ClientError::Rejected { .. }),
                "{code:?}: {error:?}"
            );
            assert!(!error.is_unreachable(), "{code:?}");
            assert_eq!(error.known_reason_code(), Some(reason), "{code:?}");
            assert!(error.to_string().contains(message), "{code:?}: {error}");

            let failure = Failure::from(error);
            assert_eq!(failure.exit, Exit::Failure, "{code:?}");
            assert_eq!(
                failure.reason_code.as_deref(),
                Some(reason.as_str()),
                "{code:?}"
            );
            assert!(
                failure.message.contains(message),
                "{code:?}: {}",
                failure.message
            );
        }
    }

    #[test]
    fn service_status_is_not_connection_lost() {
        // A status the service sent has no source error, so Unknown and Internal stay failures.
        for code in [Code::Unknown, Code::Internal, Code::Cancelled] {
            let error =
                ClientError::from_status(Service::Gate, "http://x", status_with_code(code, None));
            assert!(
                matches!(error, ClientError::Failed { .. }),
                "{code:?}: {error:?}"
            );
        }
    }
}
