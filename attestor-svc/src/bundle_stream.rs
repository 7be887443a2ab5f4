//! VerifyBundleStream: verification of many Sigstore bundles over one bidirectional gRPC stream.
//!
//! Each request carries one Sigstore bundle, verified with
//! `stella_verify::evidence::verify_parsed_bundle_cached` and the attestor's shared verification cache
//! against the trust set that was read and checked against the clock once, when the call started,
//! and at that time. A call that lasts past the trust set's expiry therefore keeps using the set
//! that was valid at its start, as VerifyInclusionStream does. Inclusion comes from the tenant's
//! tile cache ([`Cache`]). With `allow_bundle_proof`, the bundle's own inclusion proof is used when
//! the cache has no proof of the entry ([`CacheThenBundle`]). Its checkpoint must then verify under
//! a log key of the trust set. The entry report names the proof source either way.
//!
//! Requests are verified in parallel on tokio's blocking pool. A reader task reads the requests,
//! starts the verification of each and passes the pending results, in request order, through a
//! channel of [`in_flight_limit`] slots to a writer task. The writer waits for each in turn, so
//! responses leave in request order, and at most about twice the available cores are verified at
//! once. When the client stops reading responses, the writer stops, the channel fills, the reader
//! stops reading requests, and HTTP/2 flow control holds back the client. A call carries at most
//! [`MAX_STREAM_REQUESTS`] requests.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::Arc;

use stella_proto::attestor::v1 as pb;
use stella_verify::evidence::{
    Artifact, BundleInclusionSource, CachedInclusion, EntryReport, InclusionLookupError, InclusionSource, Outcome,
    VerifyInput, parse_bundle_traced, verify_parsed_bundle_cached,
};
use stella_verify::reason::ReasonCode;
use stella_verify::trust_root::TrustSet;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracing::{Instrument as _, Span, info, warn};

use crate::attestor::Attestor;
use crate::cache::Cache;
use crate::error::{ServiceError, escape_for_log};
use crate::verification::{outcome_text, sorted_codes};

/// Maximum number of requests in one VerifyBundleStream call. Request number
/// `MAX_STREAM_REQUESTS + 1` ends the call with RESOURCE_EXHAUSTED.
pub const MAX_STREAM_REQUESTS: u64 = 1_000_000;

/// Maximum size of one Sigstore bundle, in bytes: 4 MiB. Bundles are a few KiB unless their DSSE
/// payload is large. The check runs after the message is decoded, so it limits the bundles that
/// are verified. The server's message size limit bounds the memory of one request.
pub const MAX_BUNDLE_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Maximum length, in bytes, of an artifact digest that a failed response quotes.
const MAX_SHOWN_DIGEST_CHARS: usize = 80;

/// Responses buffered for a client that reads slower than the attestor verifies.
pub const RESPONSE_BUFFER: usize = 64;

/// The response stream of VerifyBundleStream.
pub type ResponseStream = ReceiverStream<Result<pb::VerifyBundleResponse, Status>>;

/// The next response of the call, in request order.
enum Pending {
    /// A verification running on the blocking pool.
    Verifying(JoinHandle<Result<pb::VerifyBundleResponse, ServiceError>>),
    /// The response of a request rejected before verification.
    Ready(pb::VerifyBundleResponse),
    /// The status that ends the call.
    End(Status),
}

/// Returns the number of pending results the reader may queue ahead of the writer: twice the
/// available cores, so that every core has work while the writer waits for the oldest result.
pub fn in_flight_limit() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .saturating_mul(2)
}

/// Spawns the tasks that verify `requests` against `trust` at `now` and returns the response
/// stream.
///
/// `trust` must have been checked with [`Attestor::valid_trust_set`] at `now`.
pub fn start(
    attestor: Arc<Attestor>,
    trust: Arc<TrustSet>,
    now: i64,
    requests: Streaming<pb::VerifyBundleRequest>,
) -> ResponseStream {
    let (sender, receiver) = mpsc::channel(RESPONSE_BUFFER);
    let (pending_sender, pending_receiver) = mpsc::channel(in_flight_limit());
    let reader = read_requests(attestor, trust, now, requests, pending_sender);
    tokio::spawn(reader.instrument(Span::current()));
    tokio::spawn(send_responses(pending_receiver, sender).instrument(Span::current()));
    ReceiverStream::new(receiver)
}

/// Reads requests and starts their verification until the client closes its side, an error ends
/// the call, or the writer has stopped.
async fn read_requests(
    attestor: Arc<Attestor>,
    trust: Arc<TrustSet>,
    now: i64,
    mut requests: Streaming<pb::VerifyBundleRequest>,
    pending: mpsc::Sender<Pending>,
) {
    let mut received: u64 = 0;
    loop {
        let request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(status) => {
                // The request stream failed (cancelled, or a message that does not decode).
                // Nothing more can be read, so the call ends with that status.
                warn!(received, code = ?status.code(), message = %escape_for_log(status.message()), "bundle stream failed");
                let _ = pending.send(Pending::End(status)).await;
                return;
            }
        };
        received = received.saturating_add(1);
        if received > MAX_STREAM_REQUESTS {
            let status = Status::resource_exhausted(format!(
                "VerifyBundleStream accepts at most {MAX_STREAM_REQUESTS} requests per call; \
                 split the bundles over several calls"
            ));
            warn!(received, "bundle stream over the request limit");
            let _ = pending.send(Pending::End(status)).await;
            return;
        }

        let next = match parse_request(&request) {
            Ok(artifact) => Pending::Verifying(spawn_verification(&attestor, &trust, now, request, artifact)),
            Err(rejection) => {
                attestor.state.metrics().observe_bundle(&rejection);
                Pending::Ready(rejection)
            }
        };
        if pending.send(next).await.is_err() {
            // The writer has stopped because the client went away.
            return;
        }
    }
}

/// Sends the pending results in order until the reader is done, an error ends the call, or the
/// client goes away.
async fn send_responses(
    mut pending: mpsc::Receiver<Pending>,
    sender: mpsc::Sender<Result<pb::VerifyBundleResponse, Status>>,
) {
    let mut sent: u64 = 0;
    let mut verified: u64 = 0;
    while let Some(next) = pending.recv().await {
        let message = match next {
            Pending::Ready(response) => Ok(response),
            Pending::Verifying(task) => match task.await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(error)) => Err(error.into_status()),
                Err(join_error) => {
                    Err(ServiceError::Internal(format!("bundle verification task failed: {join_error}")).into_status())
                }
            },
            Pending::End(status) => Err(status),
        };
        if let Ok(response) = &message
            && response.outcome == outcome_text(Outcome::Verified)
        {
            verified = verified.saturating_add(1);
        }
        let failed = message.is_err();
        if sender.send(message).await.is_err() {
            info!(sent, verified, "bundle stream closed by the client");
            return;
        }
        if failed {
            return;
        }
        sent = sent.saturating_add(1);
    }
    info!(sent, verified, "bundle stream finished");
}

/// Starts the verification of one request on the blocking pool, because the cache reads RocksDB
/// and signature checks take CPU time.
fn spawn_verification(
    attestor: &Arc<Attestor>,
    trust: &Arc<TrustSet>,
    now: i64,
    request: pb::VerifyBundleRequest,
    artifact: Artifact,
) -> JoinHandle<Result<pb::VerifyBundleResponse, ServiceError>> {
    let attestor = Arc::clone(attestor);
    let trust = Arc::clone(trust);
    let span = Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let entry = attestor.verify_sigstore_bundle(
                &trust,
                &request.bundle_json,
                artifact,
                now,
                request.allow_bundle_proof,
            )?;
            let verified = response(request.sequence, &entry);
            attestor.state.metrics().observe_bundle(&verified);
            Ok(verified)
        })
    })
}

impl Attestor {
    /// Verifies one Sigstore bundle against `trust` at `now`, with inclusion from the tenant's tile
    /// cache, and from the bundle's own inclusion proof when `allow_bundle_proof` is set and the
    /// cache has no proof of the entry.
    ///
    /// # Errors
    ///
    /// Only internal errors (storage); a failed check is an entry report with outcome "failed".
    pub fn verify_sigstore_bundle(
        &self,
        trust: &TrustSet,
        bundle_json: &[u8],
        artifact: Artifact,
        now: i64,
        allow_bundle_proof: bool,
    ) -> Result<EntryReport, ServiceError> {
        let verification_cache = &self.state.verification_cache;
        let cache = Cache::with_node_cache(&self.store, trust, &self.state.node_cache);
        // The bundle is parsed once, for its own inclusion proof and for the checks. A bundle that
        // does not parse gets no fallback, and the report names the parse error.
        let parsed = parse_bundle_traced(bundle_json);
        let own_proof = match &parsed {
            Ok(bundle) if allow_bundle_proof => Some(BundleInclusionSource::with_cache(
                bundle,
                trust.checkpoint_verifiers(),
                verification_cache,
            )),
            _ => None,
        };
        let source = CacheThenBundle {
            cache: &cache,
            own_proof: own_proof.as_ref(),
        };
        let input = VerifyInput {
            bundle_json,
            trust,
            artifact,
            now,
        };
        let entry = verify_parsed_bundle_cached(
            &input,
            parsed.as_ref().map_err(Clone::clone),
            &source,
            verification_cache,
        );
        cache.take_error()?;
        Ok(entry)
    }
}

/// Proves inclusion from the tile cache, and from the bundle's own proof only when the cache has
/// no proof of the entry. Any other cache failure (invalid tiles, a recorded split view) is
/// returned as it is, so the bundle's proof never overrides what the cache records about the log.
struct CacheThenBundle<'a> {
    cache: &'a Cache<'a>,
    own_proof: Option<&'a BundleInclusionSource<'a>>,
}

impl InclusionSource for CacheThenBundle<'_> {
    fn inclusion(&self, origin: &str, index: u64) -> Result<CachedInclusion, InclusionLookupError> {
        self.inclusion_candidates(origin, index)?
            .into_iter()
            .next()
            .ok_or(InclusionLookupError::Missing { paths: Vec::new() })
    }

    fn inclusion_candidates(&self, origin: &str, index: u64) -> Result<Vec<CachedInclusion>, InclusionLookupError> {
        let from_cache = self.cache.inclusion_candidates(origin, index);
        let Some(own_proof) = self.own_proof else {
            return from_cache;
        };
        match from_cache {
            Err(InclusionLookupError::Missing { paths }) => match own_proof.inclusion_candidates(origin, index) {
                // Without a proof in the bundle either, the cache's list of missing files is the
                // more useful message.
                Err(InclusionLookupError::Missing { .. }) => Err(InclusionLookupError::Missing { paths }),
                other => other,
            },
            Ok(candidates) if candidates.is_empty() => own_proof.inclusion_candidates(origin, index),
            other => other,
        }
    }
}

/// Returns the artifact of a request that can be verified, or the failed response of one that
/// cannot: a bundle over [`MAX_BUNDLE_JSON_BYTES`] or a malformed artifact digest.
fn parse_request(request: &pb::VerifyBundleRequest) -> Result<Artifact, pb::VerifyBundleResponse> {
    if request.bundle_json.len() > MAX_BUNDLE_JSON_BYTES {
        return Err(rejected(
            request.sequence,
            ReasonCode::BundleTooLarge,
            format!(
                "request {}: Sigstore bundle of {} bytes is larger than {MAX_BUNDLE_JSON_BYTES} bytes, the limit of VerifyBundleStream",
                request.sequence,
                request.bundle_json.len()
            ),
        ));
    }
    if request.artifact_digest.is_empty() {
        return Ok(Artifact::None);
    }
    parse_sha256_digest(&request.artifact_digest).map(Artifact::Sha256).ok_or_else(|| {
        // A digest is 71 characters, so a longer value is described by its length only.
        let quoted_digest = if request.artifact_digest.len() <= MAX_SHOWN_DIGEST_CHARS {
            format!("{:?}", request.artifact_digest)
        } else {
            format!("of {} bytes", request.artifact_digest.len())
        };
        rejected(
            request.sequence,
            ReasonCode::SubjectMismatch,
            format!(
                "request {}: artifact_digest {quoted_digest} is not \"sha256:\" followed by 64 lowercase hex digits; \
                 send the artifact's digest in that form, or leave it empty",
                request.sequence,
            ),
        )
    })
}

/// Parses `sha256:<64 lowercase hex digits>`.
fn parse_sha256_digest(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_prefix("sha256:")?;
    let lowercase = digits
        .bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if digits.len() != 64 || !lowercase {
        return None;
    }
    <[u8; 32]>::try_from(hex::decode(digits).ok()?).ok()
}

/// Builds the failed response of a request that was not verified, with an entry report that
/// contains the reason code and the detail.
fn rejected(sequence: u64, code: ReasonCode, detail: String) -> pb::VerifyBundleResponse {
    let entry = EntryReport {
        outcome: Outcome::Failed,
        reason_codes: BTreeSet::from([code]),
        detail: vec![format!("{code}: {detail}")],
        signer: None,
        signing_time: None,
        kind: None,
        predicate_type: None,
        subjects: Vec::new(),
        tlog: None,
    };
    response(sequence, &entry)
}

/// Builds the response message of an entry report, echoing the request's sequence number.
pub fn response(sequence: u64, entry: &EntryReport) -> pb::VerifyBundleResponse {
    pb::VerifyBundleResponse {
        sequence,
        outcome: outcome_text(entry.outcome).to_owned(),
        reason_codes: sorted_codes(entry.reason_codes.iter().copied()),
        // Serialization cannot fail: every map key is a string and the report has no floats.
        entry_report_json: serde_json_canonicalizer::to_vec(entry).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bundle_bytes: usize, artifact_digest: &str) -> pb::VerifyBundleRequest {
        pb::VerifyBundleRequest {
            sequence: 7,
            bundle_json: vec![b'x'; bundle_bytes],
            artifact_digest: artifact_digest.to_owned(),
            allow_bundle_proof: false,
        }
    }

    #[test]
    fn parse_request_size_limit() {
        assert_eq!(parse_request(&request(MAX_BUNDLE_JSON_BYTES, "")), Ok(Artifact::None));
        let rejection = parse_request(&request(MAX_BUNDLE_JSON_BYTES + 1, "")).expect_err("too large");
        assert_eq!(rejection.sequence, 7);
        assert_eq!(rejection.outcome, "failed");
        assert_eq!(rejection.reason_codes, vec!["ERR_BUNDLE_TOO_LARGE".to_owned()]);
        let entry: EntryReport = serde_json::from_slice(&rejection.entry_report_json).expect("entry report JSON");
        assert!(
            entry.detail[0].starts_with("ERR_BUNDLE_TOO_LARGE: request 7:"),
            "{:?}",
            entry.detail
        );
    }

    #[test]
    fn parse_request_artifact_digest() {
        let hex_digits = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
        let Ok(Artifact::Sha256(digest)) = parse_request(&request(10, &format!("sha256:{hex_digits}"))) else {
            panic!("a well-formed digest must parse");
        };
        assert_eq!(hex::encode(digest), hex_digits);

        for malformed in [
            hex_digits.to_owned(),
            format!("sha256:{}", hex_digits.to_uppercase()),
            format!("sha256:{}", &hex_digits[1..]),
            format!("sha512:{hex_digits}"),
            format!("sha256:{hex_digits}00"),
        ] {
            let rejection = parse_request(&request(10, &malformed)).expect_err(&malformed);
            assert_eq!(
                rejection.reason_codes,
                vec!["ERR_SUBJECT_MISMATCH".to_owned()],
                "{malformed}"
            );
        }
    }
}
