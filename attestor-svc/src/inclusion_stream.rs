//! VerifyInclusionStream: bulk inclusion verification over one bidirectional gRPC stream.
//!
//! Each request is verified like a unary VerifyInclusion call (the same code,
//! [`Attestor::verify_inclusion_with`]), but the trust set is read and checked against the
//! clock once, when the call starts. A call that lasts past the trust set's expiry therefore
//! keeps using the set that was valid at its start.
//!
//! Requests are verified one at a time, in arrival order, so responses leave in request order.
//! The response channel holds at most [`RESPONSE_BUFFER`] responses. When the client stops
//! reading them, the attestor stops reading requests, and HTTP/2 flow control holds back the
//! client. A call carries at most [`MAX_STREAM_REQUESTS`] requests.

use std::sync::Arc;

use stella_proto::attestor::v1 as pb;
use stella_verify::reason::ReasonCode;
use stella_verify::trust_root::TrustSet;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracing::{Instrument as _, Span, info, warn};

use crate::attestor::Attestor;
use crate::error::{ServiceError, escape_for_log};
use crate::store::CheckpointSummary;
use crate::verification::{InclusionResult, sorted_codes};

/// Maximum number of requests in one VerifyInclusionStream call. Request number
/// `MAX_STREAM_REQUESTS + 1` ends the call with RESOURCE_EXHAUSTED.
pub const MAX_STREAM_REQUESTS: u64 = 1_000_000;

/// Maximum size of one entry, in bytes: the largest entry that the 16-bit length prefix of a
/// C2SP tlog-tiles entry bundle can hold. A larger entry cannot be in a tiled log.
pub const MAX_STREAM_ENTRY_BYTES: usize = 65_535;

/// Responses buffered for a client that reads slower than the attestor verifies.
pub const RESPONSE_BUFFER: usize = 64;

/// The response stream of VerifyInclusionStream.
pub type ResponseStream = ReceiverStream<Result<pb::VerifyInclusionResponse, Status>>;

/// Spawns the task that verifies `requests` and returns the response stream.
///
/// `trust` must have been checked with [`Attestor::valid_trust_set`] at the call's start.
pub fn start(
    attestor: Arc<Attestor>,
    trust: Arc<TrustSet>,
    requests: Streaming<pb::VerifyInclusionRequest>,
) -> ResponseStream {
    let (sender, receiver) = mpsc::channel(RESPONSE_BUFFER);
    let task = respond_to_requests(attestor, trust, requests, sender);
    tokio::spawn(task.instrument(Span::current()));
    ReceiverStream::new(receiver)
}

type Sender = mpsc::Sender<Result<pb::VerifyInclusionResponse, Status>>;

/// Reads and verifies requests and sends their responses until the client closes its side, an
/// error ends the call, or the client goes away.
async fn respond_to_requests(
    attestor: Arc<Attestor>,
    trust: Arc<TrustSet>,
    mut requests: Streaming<pb::VerifyInclusionRequest>,
    sender: Sender,
) {
    let mut received: u64 = 0;
    let mut included: u64 = 0;
    loop {
        let request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(status) => {
                // The request stream failed (cancelled, or a message that does not decode).
                // Nothing more can be read, so the call ends with that status.
                warn!(received, code = ?status.code(), message = %escape_for_log(status.message()), "inclusion stream failed");
                let _ = sender.send(Err(status)).await;
                return;
            }
        };
        received = received.saturating_add(1);
        if received > MAX_STREAM_REQUESTS {
            let status = Status::resource_exhausted(format!(
                "VerifyInclusionStream accepts at most {MAX_STREAM_REQUESTS} requests per call; \
                 split the entries over several calls"
            ));
            warn!(received, "inclusion stream over the request limit");
            let _ = sender.send(Err(status)).await;
            return;
        }

        let sequence = request.sequence;
        let result = match rejected_request(&request) {
            Some(rejection) => Ok(rejection),
            None => verify_blocking(&attestor, &trust, request).await,
        };
        let message = match result {
            Ok(result) => {
                if result.included {
                    included = included.saturating_add(1);
                }
                Ok(response(result, sequence))
            }
            Err(error) => Err(error.into_status()),
        };
        let failed = message.is_err();
        if sender.send(message).await.is_err() {
            info!(received, included, "inclusion stream closed by the client");
            return;
        }
        if failed {
            return;
        }
    }
    info!(received, included, "inclusion stream finished");
}

/// Returns the result for a request that cannot be verified as sent, or `None` for a request
/// to verify.
fn rejected_request(request: &pb::VerifyInclusionRequest) -> Option<InclusionResult> {
    let (code, detail) = if request.origin.is_empty() {
        (
            ReasonCode::RekorLogUnknown,
            format!("request {}: the origin is empty; set it to the first line of the log's checkpoint", request.sequence),
        )
    } else if request.entry.len() > MAX_STREAM_ENTRY_BYTES {
        (
            ReasonCode::BundleTooLarge,
            format!(
                "request {}: entry of {} bytes is larger than {MAX_STREAM_ENTRY_BYTES} bytes, the largest entry a tiled log holds",
                request.sequence,
                request.entry.len()
            ),
        )
    } else {
        return None;
    };
    Some(InclusionResult {
        included: false,
        checkpoint: None,
        proof_source: String::new(),
        reason_codes: sorted_codes([code]),
        detail,
    })
}

/// Verifies one request on the blocking pool, because the cache reads RocksDB.
async fn verify_blocking(
    attestor: &Arc<Attestor>,
    trust: &Arc<TrustSet>,
    request: pb::VerifyInclusionRequest,
) -> Result<InclusionResult, ServiceError> {
    let attestor = Arc::clone(attestor);
    let trust = Arc::clone(trust);
    let task = tokio::task::spawn_blocking(move || {
        attestor.verify_inclusion_with(&trust, &request.origin, request.index, &request.entry)
    });
    match task.await {
        Ok(result) => result,
        Err(join_error) => Err(ServiceError::Internal(format!("inclusion task failed: {join_error}"))),
    }
}

/// Builds the response message of `result`, echoing the request's sequence number.
pub fn response(result: InclusionResult, sequence: u64) -> pb::VerifyInclusionResponse {
    pb::VerifyInclusionResponse {
        included: result.included,
        checkpoint: result.checkpoint.as_ref().map(checkpoint_ref),
        proof_source: result.proof_source,
        reason_codes: result.reason_codes,
        detail: result.detail,
        sequence,
    }
}

fn checkpoint_ref(summary: &CheckpointSummary) -> pb::CheckpointRef {
    pb::CheckpointRef {
        origin: summary.origin.clone(),
        tree_size: summary.tree_size,
        root_hash: summary.root_hash.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: &str, entry_bytes: usize) -> pb::VerifyInclusionRequest {
        pb::VerifyInclusionRequest {
            origin: origin.to_owned(),
            index: 0,
            entry: vec![b'x'; entry_bytes],
            sequence: 7,
        }
    }

    #[test]
    fn rejected_request_empty_origin() {
        let result = rejected_request(&request("", 3)).expect("rejected");
        assert!(!result.included);
        assert_eq!(result.reason_codes, vec!["ERR_REKOR_LOG_UNKNOWN".to_owned()]);
        assert!(result.detail.starts_with("request 7:"), "{}", result.detail);
    }

    #[test]
    fn rejected_request_entry_size_limit() {
        assert!(rejected_request(&request("log", MAX_STREAM_ENTRY_BYTES)).is_none());
        let result = rejected_request(&request("log", MAX_STREAM_ENTRY_BYTES + 1)).expect("rejected");
        assert!(!result.included);
        assert_eq!(result.reason_codes, vec!["ERR_BUNDLE_TOO_LARGE".to_owned()]);
    }
}
