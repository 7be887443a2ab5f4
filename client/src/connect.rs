//! Connections to the attestor and the gate with connect and request timeouts.
//!
//! Each connection wraps the generated tonic client, sends the request timeout to the server as
//! `grpc-timeout`, and maps every failure to [`ClientError`]. The channel, its transport security
//! and the bearer token on every call come from [`crate::transport`].

use std::io::Read;
use std::time::Duration;

use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::attestor::v1::import_chunk::Part;
use stella_proto::attestor::v1::{
    GetReportRequest, GetReportResponse, ImportBundleRequest, ImportChunk, ImportStart,
    ImportTilesResponse, ImportTrustRootsResponse, ListCheckpointsRequest, ListCheckpointsResponse,
    RegisterEvidenceResponse, VerifyEvidenceRequest,
    VerifyEvidenceResponse, VerifyInclusionRequest, VerifyInclusionResponse,
};
use stella_proto::gate::v1::gate_client::GateClient;
use stella_proto::gate::v1::{
    CreatePromotionRequest, DecisionRecord, EvaluateRequest, EvaluateResponse, GetDecisionRequest,
    GetPolicyRequest, GetPromotionRequest, GetSigningKeyRequest, ImportPolicyRequest,
    ListDecisionsRequest, ListDecisionsResponse, PolicyDocument, PolicyVersion, Promotion,
    SigningKey,
};
use tokio_stream::Stream;

use stella_proto::REASON_CODE_METADATA_KEY;
use stella_verify::reason::ReasonCode;
use tonic::Code;

use crate::error::{ClientError, Service};
use crate::transport::{AuthenticatedChannel, ConnectOptions, open_channel};

/// Bytes of archive data in each message of a streamed import.
pub const IMPORT_CHUNK_BYTES: usize = 1024 * 1024;
/// Slowest upload rate that the deadline of a streamed import allows for, in bytes per second:
/// 256 KiB/s, about 2 Mbit/s. The deadline is the request timeout plus the file size at this
/// rate, so a large bundle over a slow link does not hit a deadline sized for one small call.
pub const STREAM_IMPORT_MIN_BYTES_PER_SECOND: u64 = 256 * 1024;
/// Chunks read ahead of the upload; together with one chunk in flight this bounds the memory
/// of a streamed import on the client side.
const IMPORT_CHUNKS_AHEAD: usize = 2;

/// A failed streamed import: reading the local file failed, or the call failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamImportError {
    /// Reading the archive failed after `sent` bytes; the call was ended early, so the attestor
    /// rejected the incomplete upload and stored nothing.
    #[error("reading the archive failed after {sent} bytes: {source}")]
    Read {
        sent: u64,
        #[source]
        source: std::io::Error,
    },
    /// The call failed or the attestor rejected the bundle.
    #[error(transparent)]
    Call(#[from] ClientError),
}

/// Builds a request that carries the request timeout to the server. The channel has no timeout
/// of its own: tonic enforces the request's `grpc-timeout` on the client side as well, so each
/// call's deadline is the one set here.
fn request<T>(message: T, options: &ConnectOptions) -> tonic::Request<T> {
    request_with_deadline(message, options.request_timeout)
}

/// Builds a request with the deadline `timeout`, sent to the server as `grpc-timeout`, and the
/// process's W3C trace context ([`crate::trace_context`]).
fn request_with_deadline<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    if let Some(parent) = crate::trace_context::process_trace()
        && let Ok(value) = parent.header().parse()
    {
        request.metadata_mut().insert(crate::trace_context::TRACEPARENT_KEY, value);
    }
    request
}

/// Builds the plain request of an evaluation: now, with the active policy, offline only.
fn offline_request(promotion_id: &str) -> EvaluateRequest {
    EvaluateRequest {
        promotion_id: promotion_id.to_owned(),
        offline_rekor: true,
        ..Default::default()
    }
}

/// Returns the deadline of a streamed import of `size` bytes: the request timeout plus the time
/// the upload takes at [`STREAM_IMPORT_MIN_BYTES_PER_SECOND`].
pub fn stream_import_timeout(request_timeout: Duration, size: u64) -> Duration {
    let upload = Duration::from_secs(size.div_ceil(STREAM_IMPORT_MIN_BYTES_PER_SECOND));
    request_timeout.saturating_add(upload)
}

/// A connection to the attestor service.
#[derive(Debug, Clone)]
pub struct AttestorConnection {
    client: AttestorClient<AuthenticatedChannel>,
    url: String,
    options: ConnectOptions,
}

/// Connects to the attestor at `url` (such as `http://127.0.0.1:7401`).
///
/// # Errors
///
/// [`ClientError::InvalidUrl`] for a URL that is neither `https://` nor `http://` to a loopback
/// host, or `https://` without [`ConnectOptions::tls`], and
/// [`ClientError::Unreachable`] when the connection fails or times out.
pub async fn connect_attestor(
    url: &str,
    options: &ConnectOptions,
) -> Result<AttestorConnection, ClientError> {
    let channel = open_channel(Service::Attestor, url, options).await?;
    let client = AttestorClient::new(channel).max_decoding_message_size(options.max_response_bytes);
    Ok(AttestorConnection {
        client,
        url: url.to_owned(),
        options: options.clone(),
    })
}

impl AttestorConnection {
    /// Returns the URL this connection was opened to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the generated client, for calls this wrapper does not cover. The channel sets no
    /// deadline, so such a call needs its own `tonic::Request::set_timeout`.
    pub fn client(&mut self) -> &mut AttestorClient<AuthenticatedChannel> {
        &mut self.client
    }

    fn fail(&self, status: tonic::Status) -> ClientError {
        ClientError::from_status(Service::Attestor, &self.url, status)
    }

    /// Maps a failed import. The transport rejects a message over its size limit before the
    /// attestor sees it, with no reason code, so that case becomes ERR_BUNDLE_TOO_LARGE naming the file.
    fn fail_import(&self, file_name: &str, size: usize, status: tonic::Status) -> ClientError {
        let has_reason_code = status.metadata().get(REASON_CODE_METADATA_KEY).is_some();
        let too_large = matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted);
        if too_large && !has_reason_code {
            return ClientError::Rejected {
                service: Service::Attestor,
                url: self.url.clone(),
                code: status.code(),
                reason_code: Some(ReasonCode::BundleTooLarge.as_str().to_owned()),
                message: format!(
                    "{}: {file_name}: archive of {size} bytes is larger than the attestor accepts ({})",
                    ReasonCode::BundleTooLarge.as_str(),
                    status.message()
                ),
            };
        }
        self.fail(status)
    }

    /// Imports a trust root set bundle (`.tgz`). `file_name` appears only in messages.
    pub async fn import_trust_roots(
        &mut self,
        file_name: &str,
        archive: Vec<u8>,
    ) -> Result<ImportTrustRootsResponse, ClientError> {
        let size = archive.len();
        let message = ImportBundleRequest {
            file_name: file_name.to_owned(),
            archive,
        };
        let result = self
            .client
            .import_trust_roots(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail_import(file_name, size, status))
    }

    /// Imports a Rekor tile/proof bundle (`.tgz`).
    pub async fn import_tiles(
        &mut self,
        file_name: &str,
        archive: Vec<u8>,
    ) -> Result<ImportTilesResponse, ClientError> {
        let size = archive.len();
        let message = ImportBundleRequest {
            file_name: file_name.to_owned(),
            archive,
        };
        let result = self
            .client
            .import_tiles(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail_import(file_name, size, status))
    }

    /// Imports a Rekor tile/proof bundle through ImportTilesStream, reading `archive` in chunks of
    /// [`IMPORT_CHUNK_BYTES`], so that the file is never in memory as a whole. `size` is the
    /// archive size in bytes, which the attestor checks against its limit before any data is
    /// sent and against the bytes received at the end. `file_name` appears only in messages.
    ///
    /// The deadline covers the whole upload and import and grows with the file:
    /// [`stream_import_timeout`] of the request timeout and `size`.
    ///
    /// # Errors
    ///
    /// [`StreamImportError::Read`] when reading `archive` fails, and [`StreamImportError::Call`]
    /// when the call fails or the attestor rejects the bundle.
    pub async fn import_tiles_stream<R>(
        &mut self,
        file_name: &str,
        archive: R,
        size: u64,
    ) -> Result<ImportTilesResponse, StreamImportError>
    where
        R: Read + Send + 'static,
    {
        let (sender, receiver) = tokio::sync::mpsc::channel::<ImportChunk>(IMPORT_CHUNKS_AHEAD);
        let start = ImportChunk {
            part: Some(Part::Start(ImportStart {
                file_name: file_name.to_owned(),
                total_bytes: size,
            })),
        };
        let reader = tokio::task::spawn_blocking(move || send_chunks(archive, start, &sender));
        let chunks = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let result = self
            .client
            .import_tiles_stream(request_with_deadline(
                chunks,
                stream_import_timeout(self.options.request_timeout, size),
            ))
            .await;
        // A rejection ends the call while chunks are still being read; the reader then stops at
        // its next send.
        let read = reader.await;
        if let Ok(Err((sent, source))) = read {
            return Err(StreamImportError::Read { sent, source });
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| StreamImportError::Call(self.fail_import(file_name, size, status)))
    }

    /// Registers a portable evidence bundle (`.tgz`) and returns its bundle id.
    pub async fn register_evidence(
        &mut self,
        file_name: &str,
        archive: Vec<u8>,
    ) -> Result<RegisterEvidenceResponse, ClientError> {
        let size = archive.len();
        let message = ImportBundleRequest {
            file_name: file_name.to_owned(),
            archive,
        };
        let result = self
            .client
            .register_evidence(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail_import(file_name, size, status))
    }

    /// Verifies a registered evidence bundle offline and returns the stored report.
    pub async fn verify_evidence(
        &mut self,
        bundle_id: &str,
    ) -> Result<VerifyEvidenceResponse, ClientError> {
        let message = VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
            verification_time: 0,
        };
        let result = self
            .client
            .verify_evidence(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches a stored verification report by its digest.
    pub async fn get_report(
        &mut self,
        report_digest: &str,
    ) -> Result<GetReportResponse, ClientError> {
        let message = GetReportRequest {
            report_digest: report_digest.to_owned(),
        };
        let result = self
            .client
            .get_report(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Verifies that `entry` is the log entry at `index` of the log `origin`, from the cache.
    pub async fn verify_inclusion(
        &mut self,
        origin: &str,
        index: u64,
        entry: Vec<u8>,
    ) -> Result<VerifyInclusionResponse, ClientError> {
        let message = VerifyInclusionRequest {
            origin: origin.to_owned(),
            index,
            entry,
            sequence: 0,
        };
        let result = self
            .client
            .verify_inclusion(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Verifies many log entries in one VerifyInclusionStream call and returns the responses,
    /// which arrive one per request and in request order. Each response echoes its request's
    /// `sequence`.
    ///
    /// The request timeout covers the whole call. The attestor accepts at most 1,000,000
    /// requests per call and ends the call with RESOURCE_EXHAUSTED after that.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the call cannot start, for example FAILED_PRECONDITION with
    /// `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`. Errors later in the call come from
    /// [`InclusionResponses::next`].
    pub async fn verify_inclusion_stream<S>(
        &mut self,
        requests: S,
    ) -> Result<InclusionResponses, ClientError>
    where
        S: Stream<Item = VerifyInclusionRequest> + Send + 'static,
    {
        let result = self
            .client
            .verify_inclusion_stream(request(requests, &self.options))
            .await;
        let responses = result.map_err(|status| self.fail(status))?.into_inner();
        Ok(InclusionResponses {
            responses,
            url: self.url.clone(),
        })
    }

    /// Lists the stored checkpoints and inconsistency records of `origin`, or of every log
    /// origin the attestor has stored anything for.
    pub async fn list_checkpoints(
        &mut self,
        origin: Option<&str>,
    ) -> Result<ListCheckpointsResponse, ClientError> {
        let message = ListCheckpointsRequest {
            origin: origin.map(str::to_owned),
        };
        let result = self
            .client
            .list_checkpoints(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }
}

/// Sends `start` and then the content of `archive` in chunks, until the end of the file or until
/// the call stops receiving. Returns the bytes sent, or the bytes sent before a read error.
fn send_chunks<R: Read>(
    mut archive: R,
    start: ImportChunk,
    sender: &tokio::sync::mpsc::Sender<ImportChunk>,
) -> Result<u64, (u64, std::io::Error)> {
    let mut sent: u64 = 0;
    if sender.blocking_send(start).is_err() {
        return Ok(sent);
    }
    loop {
        let mut chunk = vec![0_u8; IMPORT_CHUNK_BYTES];
        let mut filled = 0;
        while filled < chunk.len() {
            let Some(free) = chunk.get_mut(filled..) else {
                break;
            };
            match archive.read(free) {
                Ok(0) => break,
                Ok(read) => filled = filled.saturating_add(read),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                // Dropping the sender ends the stream early; the attestor rejects the short upload.
                Err(error) => return Err((sent, error)),
            }
        }
        if filled == 0 {
            return Ok(sent);
        }
        chunk.truncate(filled);
        let message = ImportChunk {
            part: Some(Part::Data(chunk)),
        };
        if sender.blocking_send(message).is_err() {
            // The call ended: the attestor sent its response (a rejection) or the connection broke.
            return Ok(sent);
        }
        sent = sent.saturating_add(u64::try_from(filled).unwrap_or(u64::MAX));
    }
}

/// The responses of a VerifyInclusionStream call, in request order.
#[derive(Debug)]
pub struct InclusionResponses {
    responses: tonic::Streaming<VerifyInclusionResponse>,
    url: String,
}

impl InclusionResponses {
    /// Waits for the next response. Returns `None` once the attestor has sent the response to every request
    /// and ended the call.
    ///
    /// # Errors
    ///
    /// [`ClientError`] when the call ends with an error status (such as RESOURCE_EXHAUSTED past
    /// the request limit) or the connection is lost.
    pub async fn next(&mut self) -> Result<Option<VerifyInclusionResponse>, ClientError> {
        self.responses
            .message()
            .await
            .map_err(|status| ClientError::from_status(Service::Attestor, &self.url, status))
    }
}

/// A connection to the promotion gate service.
#[derive(Debug, Clone)]
pub struct GateConnection {
    client: GateClient<AuthenticatedChannel>,
    url: String,
    options: ConnectOptions,
}

/// Connects to the gate at `url` (such as `http://127.0.0.1:7402`).
///
/// # Errors
///
/// [`ClientError::InvalidUrl`] for a URL that is neither `https://` nor `http://` to a loopback
/// host, or `https://` without [`ConnectOptions::tls`], and
/// [`ClientError::Unreachable`] when the connection fails or times out.
pub async fn connect_gate(
    url: &str,
    options: &ConnectOptions,
) -> Result<GateConnection, ClientError> {
    let channel = open_channel(Service::Gate, url, options).await?;
    let client = GateClient::new(channel).max_decoding_message_size(options.max_response_bytes);
    Ok(GateConnection {
        client,
        url: url.to_owned(),
        options: options.clone(),
    })
}

impl GateConnection {
    /// Returns the URL this connection was opened to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the generated client, for calls this wrapper does not cover. The channel sets no
    /// deadline, so such a call needs its own `tonic::Request::set_timeout`.
    pub fn client(&mut self) -> &mut GateClient<AuthenticatedChannel> {
        &mut self.client
    }

    fn fail(&self, status: tonic::Status) -> ClientError {
        ClientError::from_status(Service::Gate, &self.url, status)
    }

    /// Creates a promotion of `subject_digests` to an environment with its evidence bundle ids.
    pub async fn create_promotion(
        &mut self,
        message: CreatePromotionRequest,
    ) -> Result<Promotion, ClientError> {
        let result = self
            .client
            .create_promotion(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches a promotion by its id.
    pub async fn get_promotion(&mut self, promotion_id: &str) -> Result<Promotion, ClientError> {
        let message = GetPromotionRequest {
            promotion_id: promotion_id.to_owned(),
        };
        let result = self
            .client
            .get_promotion(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Evaluates the gates of a promotion now, with the tenant's active policy, without writing
    /// a decision record. Inclusion is proven only from the attestor's offline cache.
    pub async fn preview_gates(
        &mut self,
        promotion_id: &str,
    ) -> Result<EvaluateResponse, ClientError> {
        self.preview_gates_request(offline_request(promotion_id))
            .await
    }

    /// Sends `message` as a `PreviewGates` call, which can set an evaluation time and a policy
    /// digest to replay a past decision.
    pub async fn preview_gates_request(
        &mut self,
        message: EvaluateRequest,
    ) -> Result<EvaluateResponse, ClientError> {
        let result = self
            .client
            .preview_gates(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Evaluates the gates of a promotion and persists a decision record. Inclusion is proven
    /// only from the attestor's offline cache.
    pub async fn evaluate(&mut self, promotion_id: &str) -> Result<EvaluateResponse, ClientError> {
        self.evaluate_request(offline_request(promotion_id)).await
    }

    /// Sends `message` as an `Evaluate` call, which can carry a request id (a retry with the same
    /// id returns the stored record) or a break-glass request.
    pub async fn evaluate_request(
        &mut self,
        message: EvaluateRequest,
    ) -> Result<EvaluateResponse, ClientError> {
        let result = self.client.evaluate(request(message, &self.options)).await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Validates a policy document at the gate and stores it as the tenant's newest version.
    /// `file_name` names the document in the gate's validation errors.
    pub async fn import_policy(
        &mut self,
        policy_yaml: Vec<u8>,
        file_name: &str,
    ) -> Result<PolicyVersion, ClientError> {
        let message = ImportPolicyRequest {
            policy_yaml,
            file_name: file_name.to_owned(),
        };
        let result = self
            .client
            .import_policy(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches one policy version of the tenant by its `sha256:<hex>` digest, or the active
    /// policy when `digest` is empty.
    pub async fn get_policy(&mut self, digest: &str) -> Result<PolicyDocument, ClientError> {
        let message = GetPolicyRequest {
            digest: digest.to_owned(),
        };
        let result = self
            .client
            .get_policy(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches a stored decision record by its id.
    pub async fn get_decision(&mut self, record_id: &str) -> Result<DecisionRecord, ClientError> {
        let message = GetDecisionRequest {
            record_id: record_id.to_owned(),
        };
        let result = self
            .client
            .get_decision(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches the public key that signs the caller's tenant's decision records, as the gate
    /// presents it. An auditor verifies with a key obtained out of band, not with this one.
    pub async fn signing_key(&mut self) -> Result<SigningKey, ClientError> {
        let result = self
            .client
            .get_signing_key(request(GetSigningKeyRequest {}, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }

    /// Fetches one page of the caller's tenant's signed decision records with sequence numbers
    /// above `after_sequence`, in sequence order. A `page_size` of 0 lets the gate choose.
    pub async fn list_decisions(
        &mut self,
        after_sequence: u64,
        page_size: u32,
    ) -> Result<ListDecisionsResponse, ClientError> {
        let message = ListDecisionsRequest {
            after_sequence,
            page_size,
        };
        let result = self
            .client
            .list_decisions(request(message, &self.options))
            .await;
        result
            .map(tonic::Response::into_inner)
            .map_err(|status| self.fail(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_deadline_grows_with_size() {
        let base = Duration::from_secs(120);
        assert_eq!(stream_import_timeout(base, 0), base);
        assert_eq!(stream_import_timeout(base, 1), base + Duration::from_secs(1));
        assert_eq!(
            stream_import_timeout(base, STREAM_IMPORT_MIN_BYTES_PER_SECOND),
            base + Duration::from_secs(1)
        );
        // 1 GiB at 256 KiB/s takes 4,096 s.
        assert_eq!(
            stream_import_timeout(base, 1 << 30),
            base + Duration::from_secs(4096)
        );
    }

    #[test]
    fn stream_deadline_saturates() {
        let deadline = stream_import_timeout(Duration::MAX, u64::MAX);
        assert_eq!(deadline, Duration::MAX);
    }
}
