//! gRPC client of the attestor, as the gate uses it: one `VerifyEvidence` call per
//! evidence bundle, each with its own deadline.
//!
//! The channel connects lazily, so the gate starts and serves requests while the attestor
//! is down.
//! Every failure to get a report (connection refused, `UNAVAILABLE`, deadline exceeded,
//! an internal error or a malformed response) becomes `ERR_ATTESTOR_UNAVAILABLE`, which the
//! policy turns into deny or pending, never allow. A rejection that carries a reason code
//! in the `stella-reason-code` metadata keeps that code.

use std::time::Duration;

use sha2::{Digest, Sha256};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1::VerifyEvidenceRequest;
use stella_proto::attestor::v1::attestor_client::AttestorClient as ProtoClient;
use stella_verify::reason::ReasonCode;
use stella_verify::report::VerificationReport;
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

/// Checks that `url` is a plain-text gRPC URL with a host, such as `http://127.0.0.1:7401`.
///
/// # Errors
///
/// [`InvalidUrl`] for another scheme (`https://` too, because this build has no TLS), a missing
/// host, or text that is not a URI.
pub fn validate_url(url: &str) -> Result<(), InvalidUrl> {
    let invalid = |why: String| InvalidUrl {
        url: url.to_owned(),
        why,
    };
    let uri = url
        .parse::<tonic::transport::Uri>()
        .map_err(|error| invalid(format!("not a URI: {error}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https:// is not supported: this build has no TLS, so use http:// on a trusted network"
                    .to_owned(),
            ));
        }
        Some(other) => {
            return Err(invalid(format!(
                "the scheme {other}:// is not supported; use http://HOST:PORT"
            )));
        }
        None => return Err(invalid("no scheme; use http://HOST:PORT".to_owned())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host; use http://HOST:PORT".to_owned()));
    }
    Ok(())
}

/// Attestor client with a per-call deadline. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AttestorClient {
    client: ProtoClient<Channel>,
    timeout: Duration,
}

impl AttestorClient {
    /// Creates a client for `url` without connecting. The connection is made on the first
    /// call and re-made after failures.
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`] when [`validate_url`] rejects `url`.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, InvalidUrl> {
        validate_url(url)?;
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|source| InvalidUrl {
                url: url.to_owned(),
                why: source.to_string(),
            })?
            .connect_timeout(timeout)
            .timeout(timeout);
        let client = ProtoClient::new(endpoint.connect_lazy()).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(AttestorClient { client, timeout })
    }

    /// Returns the per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the attestor to verify one evidence bundle and parses its report. Never
    /// returns an error: a failure is an [`EvidenceOutcome::Error`] with its reason code.
    pub async fn verify_evidence(&self, bundle_id: &str) -> EvidenceOutcome {
        let mut request = tonic::Request::new(VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();

        // The outer timeout also bounds connection setup and any stall outside gRPC.
        let response = match tokio::time::timeout(self.timeout, client.verify_evidence(request)).await {
            Err(_elapsed) => {
                return unavailable(format!(
                    "the attestor did not answer within {} ms",
                    self.timeout.as_millis()
                ));
            }
            Ok(Err(status)) => return outcome_from_status(&status),
            Ok(Ok(response)) => response.into_inner(),
        };

        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&response.report_json)));
        if computed != response.report_digest {
            return unavailable(format!(
                "the attestor returned report digest {} but the report hashes to {computed}",
                response.report_digest
            ));
        }
        match serde_json::from_slice::<VerificationReport>(&response.report_json) {
            Ok(report) => EvidenceOutcome::Report {
                report_digest: response.report_digest,
                report,
            },
            Err(error) => unavailable(format!("the attestor returned an unreadable report: {error}")),
        }
    }
}

fn unavailable(detail: String) -> EvidenceOutcome {
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

        let client = AttestorClient::connect_lazy(&format!("http://127.0.0.1:{port}"), Duration::from_millis(2_000))
            .expect("valid URL");
        let started = std::time::Instant::now();
        let outcome = client.verify_evidence("sha256:00").await;
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

        let client =
            AttestorClient::connect_lazy(&format!("http://{address}"), Duration::from_millis(300)).expect("valid URL");
        let started = std::time::Instant::now();
        let outcome = client.verify_evidence("sha256:00").await;
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
        let error = AttestorClient::connect_lazy("not a url", Duration::from_secs(1)).expect_err("invalid URL");
        assert!(
            error.to_string().starts_with("invalid attestor URL \"not a url\""),
            "{error}"
        );
    }

    #[test]
    fn validate_url_table() {
        let rows = [
            ("loopback", "http://127.0.0.1:7401", None),
            ("host name", "http://attestor.internal:7401", None),
            ("ftp", "ftp://x", Some("the scheme ftp:// is not supported")),
            ("https", "https://attestor:7401", Some("https:// is not supported")),
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
