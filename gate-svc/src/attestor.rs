//! gRPC client of the attestor, as the gate uses it: one `VerifyEvidence` call per
//! evidence bundle, each with its own deadline and the caller's own bearer token.
//!
//! The channel connects lazily, so the gate starts and serves requests while the attestor
//! is down.
//! Every failure to get a report (connection refused, a failed TLS handshake, `UNAVAILABLE`,
//! deadline exceeded, an internal error or a malformed response) becomes
//! `ERR_ATTESTOR_UNAVAILABLE`, which the policy turns into deny or pending, never allow. A
//! rejection that carries a reason code in the `stella-reason-code` metadata keeps that code.
//! An `UNAUTHENTICATED` or `PERMISSION_DENIED` status is the caller's fault, not an outage, so
//! it is returned as [`CallerRejected`] and the gate passes it back to its caller.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use stella_access::{AccessError, BearerToken};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1::VerifyEvidenceRequest;
use stella_proto::attestor::v1::attestor_client::AttestorClient as ProtoClient;
use stella_verify::reason::ReasonCode;
use stella_verify::report::VerificationReport;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::evaluate::EvidenceOutcome;

/// Default per-call deadline, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Maximum size of a `VerifyEvidence` response the gate accepts, in bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The attestor URL could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid attestor URL {url:?}: {why}")]
pub struct InvalidUrl {
    url: String,
    why: String,
}

/// The attestor client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error(transparent)]
    Url(#[from] InvalidUrl),
    /// A TLS file cannot be used.
    #[error("attestor TLS: {0}")]
    Tls(#[from] AccessError),
}

/// Files that secure the connection to the attestor.
#[derive(Debug, Clone)]
pub struct AttestorTls {
    /// PEM CA certificates; the attestor's certificate must be issued by one of them.
    pub ca: PathBuf,
    /// PEM certificate chain and private key that the gate presents to the attestor (mutual
    /// TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name checked against the attestor's certificate instead of the URL's host.
    pub domain: Option<String>,
}

/// Checks that `url` is a gRPC URL the gate may call: `https://HOST:PORT`, or
/// `http://HOST:PORT` with a loopback host (`localhost`, `127.0.0.0/8`, `::1`).
///
/// # Errors
///
/// [`InvalidUrl`] for another scheme, `http://` to a host that is not loopback, a missing host,
/// or text that is not a URI.
pub fn validate_url(url: &str) -> Result<(), InvalidUrl> {
    let invalid = |why: String| InvalidUrl {
        url: url.to_owned(),
        why,
    };
    let uri = url
        .parse::<tonic::transport::Uri>()
        .map_err(|error| invalid(format!("not a URI: {error}")))?;
    let scheme = match uri.scheme_str() {
        Some(scheme @ ("http" | "https")) => scheme,
        Some(other) => {
            return Err(invalid(format!(
                "the scheme {other}:// is not supported; use https://HOST:PORT"
            )));
        }
        None => return Err(invalid("no scheme; use https://HOST:PORT".to_owned())),
    };
    let Some(host) = uri.host().filter(|host| !host.is_empty()) else {
        return Err(invalid("no host; use https://HOST:PORT".to_owned()));
    };
    if scheme == "http" && !stella_access::is_loopback_host(host) {
        return Err(invalid(format!(
            "http:// is allowed only to a loopback host, not {host}; use https:// with --attestor-tls-ca"
        )));
    }
    Ok(())
}

/// Checks that an `https://` URL comes with TLS settings and an `http://` URL without them.
///
/// # Errors
///
/// [`InvalidUrl`] naming the missing `--attestor-tls-ca` or the superfluous TLS options.
pub fn check_url_tls(url: &str, has_tls: bool) -> Result<(), InvalidUrl> {
    // `validate_url` accepts the scheme in any case, such as `HTTPS://`, so this check does too.
    let https = url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    let why = match (https, has_tls) {
        (true, false) => "https:// needs the CA of the attestor's certificate (--attestor-tls-ca)",
        (false, true) => "TLS options were given for an http:// URL; use https://",
        _ => return Ok(()),
    };
    Err(InvalidUrl {
        url: url.to_owned(),
        why: why.to_owned(),
    })
}

/// The attestor rejected the credentials that the gate forwarded for its caller. The status is
/// the one to return to the caller: the attestor's code, and its message after "attestor: ".
#[derive(Debug, Clone)]
pub struct CallerRejected(pub Status);

/// Attestor client with a per-call deadline. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AttestorClient {
    client: ProtoClient<Channel>,
    timeout: Duration,
}

impl AttestorClient {
    /// Creates a client for `url` without connecting. The connection is made on the first
    /// call and re-made after failures. An `https://` URL needs `tls`; an `http://` URL takes
    /// none.
    ///
    /// # Errors
    ///
    /// [`ClientSetupError::Url`] when [`validate_url`] rejects `url` or the scheme does not
    /// match `tls`, and [`ClientSetupError::Tls`] when a TLS file cannot be used.
    pub fn connect_lazy(url: &str, tls: Option<&AttestorTls>, timeout: Duration) -> Result<Self, ClientSetupError> {
        validate_url(url)?;
        let invalid = |why: &str| InvalidUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|source| invalid(&source.to_string()))?
            .connect_timeout(timeout)
            .timeout(timeout);
        check_url_tls(url, tls.is_some())?;
        if let Some(files) = tls {
            let identity = files
                .identity
                .as_ref()
                .map(|(cert, key)| (cert.as_path(), key.as_path()));
            let config = stella_access::client_tls(&files.ca, identity, files.domain.as_deref())?;
            endpoint = endpoint
                .tls_config(config)
                .map_err(|error| invalid(&format!("cannot use the TLS settings: {error}")))?;
        }
        let client = ProtoClient::new(endpoint.connect_lazy()).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(AttestorClient { client, timeout })
    }

    /// Returns the per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the attestor to verify one evidence bundle on behalf of the caller whose bearer
    /// `token` it sends, and parses the report. Every failure but a rejected token is an
    /// [`EvidenceOutcome::Error`] with its reason code.
    ///
    /// # Errors
    ///
    /// [`CallerRejected`] when the attestor returns `UNAUTHENTICATED` or `PERMISSION_DENIED`.
    pub async fn verify_evidence(
        &self,
        bundle_id: &str,
        token: &BearerToken,
        verification_time: i64,
    ) -> Result<EvidenceOutcome, CallerRejected> {
        let mut request = tonic::Request::new(VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
            verification_time,
        });
        request.set_timeout(self.timeout);
        token.apply(&mut request);
        // W3C trace context, so that the attestor's spans join the gate's trace.
        stella_telemetry::inject_context(request.metadata_mut());
        let mut client = self.client.clone();

        // The outer timeout also bounds connection setup and any stall outside gRPC.
        let response = match tokio::time::timeout(self.timeout, client.verify_evidence(request)).await {
            Err(_elapsed) => {
                return Ok(unavailable(format!(
                    "the attestor did not answer within {} ms",
                    self.timeout.as_millis()
                )));
            }
            Ok(Err(status)) => {
                if let Some(rejected) = caller_rejection(&status) {
                    return Err(rejected);
                }
                return Ok(outcome_from_status(&status));
            }
            Ok(Ok(response)) => response.into_inner(),
        };

        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&response.report_json)));
        if computed != response.report_digest {
            return Ok(unavailable(format!(
                "the attestor returned report digest {} but the report hashes to {computed}",
                response.report_digest
            )));
        }
        Ok(match serde_json::from_slice::<VerificationReport>(&response.report_json) {
            Ok(report) => EvidenceOutcome::Report {
                report_digest: response.report_digest,
                report,
            },
            Err(error) => unavailable(format!("the attestor returned an unreadable report: {error}")),
        })
    }
}

/// Returns the status for the gate's caller when the attestor rejected the forwarded token:
/// the same code, the message prefixed with "attestor: ", and the matching `ERR_AUTH_*` reason
/// code. Returns `None` for every other status.
pub fn caller_rejection(status: &Status) -> Option<CallerRejected> {
    let reason = match status.code() {
        Code::Unauthenticated => ReasonCode::AuthUnauthenticated,
        Code::PermissionDenied => ReasonCode::AuthPermissionDenied,
        _ => return None,
    };
    let mut forwarded = Status::new(status.code(), format!("attestor: {}", status.message()));
    forwarded
        .metadata_mut()
        .insert(REASON_CODE_METADATA_KEY, MetadataValue::from_static(reason.as_str()));
    Some(CallerRejected(forwarded))
}

fn unavailable(detail: String) -> EvidenceOutcome {
    // A caught transport or TLS failure: the decision becomes deny or pending, and the operator
    // needs the cause in the log.
    tracing::warn!(error = %detail, "attestor call failed");
    EvidenceOutcome::Error {
        code: ReasonCode::AttestorUnavailable,
        detail: format!("{}: {detail}", ReasonCode::AttestorUnavailable),
    }
}

/// Maps a failed call to the reason code the gate decides on.
pub fn outcome_from_status(status: &Status) -> EvidenceOutcome {
    let reported = status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
        .and_then(ReasonCode::parse);

    let transport_failure = matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Unimplemented
            | Code::DataLoss
    );
    let code = match reported {
        Some(code) if !transport_failure => code,
        _ if status.code() == Code::NotFound => ReasonCode::EvidenceNotFound,
        _ => ReasonCode::AttestorUnavailable,
    };
    let message = status.message();
    let detail = if message.starts_with(code.as_str()) {
        message.to_owned()
    } else {
        format!("{code}: attestor returned {:?}: {message}", status.code())
    };
    EvidenceOutcome::Error { code, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_code(code: Code, message: &str, reason: Option<&str>) -> Status {
        let mut status = Status::new(code, message);
        if let Some(reason) = reason {
            status
                .metadata_mut()
                .insert(REASON_CODE_METADATA_KEY, reason.parse().expect("ASCII metadata"));
        }
        status
    }

    /// Returns a syntactically valid token. These tests never reach a server that checks it.
    fn token() -> BearerToken {
        BearerToken::new("header.payload.signature").expect("valid token text")
    }

    fn code_of(outcome: &EvidenceOutcome) -> ReasonCode {
        match outcome {
            EvidenceOutcome::Error { code, .. } => *code,
            EvidenceOutcome::Report { .. } => panic!("expected an error outcome"),
        }
    }

    #[test]
    fn status_mapping_table() {
        let rows = [
            ("unavailable", Code::Unavailable, None, ReasonCode::AttestorUnavailable),
            (
                "deadline",
                Code::DeadlineExceeded,
                None,
                ReasonCode::AttestorUnavailable,
            ),
            ("internal", Code::Internal, None, ReasonCode::AttestorUnavailable),
            (
                "unknown transport",
                Code::Unknown,
                None,
                ReasonCode::AttestorUnavailable,
            ),
            ("not found bare", Code::NotFound, None, ReasonCode::EvidenceNotFound),
            (
                "not found coded",
                Code::NotFound,
                Some("ERR_EVIDENCE_NOT_FOUND"),
                ReasonCode::EvidenceNotFound,
            ),
            (
                "no trust root",
                Code::FailedPrecondition,
                Some("ERR_TRUST_ROOT_MISSING"),
                ReasonCode::TrustRootMissing,
            ),
            (
                "bad bundle",
                Code::InvalidArgument,
                Some("ERR_BUNDLE_MALFORMED"),
                ReasonCode::BundleMalformed,
            ),
            (
                "unknown code text",
                Code::InvalidArgument,
                Some("ERR_NOT_IN_CATALOG"),
                ReasonCode::AttestorUnavailable,
            ),
            (
                "code on unavailable",
                Code::Unavailable,
                Some("ERR_BUNDLE_MALFORMED"),
                ReasonCode::AttestorUnavailable,
            ),
        ];
        for (name, code, reason, expected) in rows {
            let outcome = outcome_from_status(&status_with_code(code, "message", reason));
            assert_eq!(code_of(&outcome), expected, "row {name}");
        }
    }

    #[test]
    fn detail_keeps_coded_message() {
        let status = status_with_code(
            Code::NotFound,
            "ERR_EVIDENCE_NOT_FOUND: evidence bundle sha256:ab is not registered",
            Some("ERR_EVIDENCE_NOT_FOUND"),
        );
        let EvidenceOutcome::Error { detail, .. } = outcome_from_status(&status) else {
            panic!("expected an error outcome");
        };
        assert_eq!(
            detail,
            "ERR_EVIDENCE_NOT_FOUND: evidence bundle sha256:ab is not registered"
        );
    }

    #[tokio::test]
    async fn unreachable_attestor_is_unavailable() {
        // Bind and drop a listener to get a loopback port that refuses connections.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);

        let client = AttestorClient::connect_lazy(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_millis(2_000),
        )
        .expect("valid URL");
        let started = std::time::Instant::now();
        let outcome = client
            .verify_evidence("sha256:00", &token(), 0)
            .await
            .expect("not a token rejection");
        assert_eq!(code_of(&outcome), ReasonCode::AttestorUnavailable);
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn silent_attestor_times_out() {
        // A listener that accepts TCP but never speaks HTTP/2 makes the call hang until
        // the deadline.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let accept = tokio::spawn(async move {
            let mut open_sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open_sockets.push(socket);
            }
        });

        let client = AttestorClient::connect_lazy(&format!("http://{address}"), None, Duration::from_millis(300))
            .expect("valid URL");
        let started = std::time::Instant::now();
        let outcome = client
            .verify_evidence("sha256:00", &token(), 0)
            .await
            .expect("not a token rejection");
        let elapsed = started.elapsed();
        accept.abort();

        assert_eq!(code_of(&outcome), ReasonCode::AttestorUnavailable);
        assert!(elapsed >= Duration::from_millis(250), "returned too early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(1_500),
            "deadline not enforced: {elapsed:?}"
        );
    }

    #[test]
    fn invalid_url_rejected() {
        let error = AttestorClient::connect_lazy("not a url", None, Duration::from_secs(1)).expect_err("invalid URL");
        assert!(
            error.to_string().starts_with("invalid attestor URL \"not a url\""),
            "{error}"
        );
    }

    #[test]
    fn https_without_ca_rejected() {
        let error =
            AttestorClient::connect_lazy("https://127.0.0.1:7401", None, Duration::from_secs(1)).expect_err("no CA");
        assert!(error.to_string().contains("--attestor-tls-ca"), "{error}");
    }

    #[test]
    fn uppercase_https_needs_ca() {
        assert!(check_url_tls("HTTPS://127.0.0.1:7401", false).is_err());
        assert!(check_url_tls("HTTPS://127.0.0.1:7401", true).is_ok());
        assert!(check_url_tls("http://127.0.0.1:7401", false).is_ok());
    }

    #[test]
    fn tls_files_on_http_rejected() {
        let tls = AttestorTls {
            ca: PathBuf::from("/nonexistent/ca.pem"),
            identity: None,
            domain: None,
        };
        let error = AttestorClient::connect_lazy("http://127.0.0.1:7401", Some(&tls), Duration::from_secs(1))
            .expect_err("TLS on http");
        assert!(error.to_string().contains("use https://"), "{error}");
    }

    #[test]
    fn missing_ca_file_named() {
        let tls = AttestorTls {
            ca: PathBuf::from("/nonexistent/ca.pem"),
            identity: None,
            domain: None,
        };
        let error = AttestorClient::connect_lazy("https://127.0.0.1:7401", Some(&tls), Duration::from_secs(1))
            .expect_err("missing CA file");
        assert!(matches!(error, ClientSetupError::Tls(_)), "{error:?}");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn caller_rejection_table() {
        let rows = [
            (Code::Unauthenticated, Some("ERR_AUTH_UNAUTHENTICATED")),
            (Code::PermissionDenied, Some("ERR_AUTH_PERMISSION_DENIED")),
            (Code::NotFound, None),
            (Code::Unavailable, None),
            (Code::InvalidArgument, None),
        ];
        for (code, expected_reason) in rows {
            let status = status_with_code(code, "ERR_AUTH_X: VerifyEvidence: scope check failed", None);
            let rejected = caller_rejection(&status);
            match expected_reason {
                None => assert!(rejected.is_none(), "{code:?} must not be a caller rejection"),
                Some(reason) => {
                    let CallerRejected(forwarded) = rejected.expect("caller rejection");
                    assert_eq!(forwarded.code(), code);
                    assert_eq!(
                        forwarded.message(),
                        "attestor: ERR_AUTH_X: VerifyEvidence: scope check failed"
                    );
                    let metadata = forwarded.metadata().get(REASON_CODE_METADATA_KEY).expect("reason code set");
                    assert_eq!(metadata.to_str().expect("ASCII"), reason);
                }
            }
        }
    }

    #[test]
    fn validate_url_table() {
        let rows = [
            ("loopback", "http://127.0.0.1:7401", None),
            ("localhost", "http://localhost:7401", None),
            ("IPv6 loopback", "http://[::1]:7401", None),
            ("https host name", "https://attestor.internal:7401", None),
            ("http host name", "http://attestor.internal:7401", Some("http:// is allowed only to a loopback host")),
            ("http any address", "http://0.0.0.0:7401", Some("http:// is allowed only to a loopback host")),
            ("ftp", "ftp://x", Some("the scheme ftp:// is not supported")),
            ("no scheme", "127.0.0.1:7401", Some("no scheme")),
            ("path only", "/attestor", Some("no scheme")),
            ("empty", "", Some("not a URI")),
            ("spaces", "http://a b", Some("not a URI")),
        ];
        for (name, url, expected) in rows {
            match (validate_url(url), expected) {
                (Ok(()), None) => {}
                (Err(error), Some(fragment)) => {
                    assert!(error.to_string().contains(fragment), "row {name}: {error}");
                }
                (Ok(()), Some(fragment)) => panic!("row {name}: {url:?} accepted, expected {fragment:?}"),
                (Err(error), None) => panic!("row {name}: {url:?} rejected: {error}"),
            }
        }
    }
}
