//! Direct gRPC calls to the attestor and the gate, bypassing the `stella` binary.
//!
//! The CLI checks bundles locally before it sends them, so a hostile archive that the CLI rejects
//! never reaches the attestor through it. Any gRPC client can send one, though, so the suites also
//! submit hostile archives with these calls to check the attestor's own defences. The CLI has no
//! command for some RPCs (`GetReport`, `GetPromotion`), so the tenancy tests call those here.
//!
//! Every call goes out as a [`Caller`]: a URL, the bearer token to attach (if any) and the TLS
//! settings of the connection.

use std::future::Future;
use std::time::Duration;

use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::attestor::v1::{
    GetReportRequest, ImportBundleRequest, ListCheckpointsRequest, ListCheckpointsResponse,
    VerifyEvidenceRequest, VerifyEvidenceResponse,
};
use stella_proto::gate::v1::gate_client::GateClient;
use stella_proto::gate::v1::{
    DecisionRecord, EvaluateRequest, EvaluateResponse, GetDecisionRequest, GetPromotionRequest,
    Promotion,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::access::ClientTls;

/// Maximum time for one direct call, including the connection.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response the direct calls accept; reports of many Sigstore bundles can be large.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Where a direct call goes and as whom.
#[derive(Debug, Clone)]
pub struct Caller {
    /// URL of the service, `http://` or `https://`.
    pub url: String,
    /// Bearer token sent in the `authorization` metadata, or `None` to send none.
    pub token: Option<String>,
    /// TLS settings for an `https://` URL.
    pub tls: Option<ClientTls>,
}

impl Caller {
    /// Returns the same caller with another token.
    pub fn with_token(&self, token: &str) -> Caller {
        Caller {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Returns the same caller without a token.
    pub fn without_token(&self) -> Caller {
        Caller {
            token: None,
            ..self.clone()
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            match MetadataValue::try_from(format!("Bearer {token}")) {
                Ok(value) => {
                    request.metadata_mut().insert("authorization", value);
                }
                Err(err) => panic!("the test token is not valid gRPC metadata: {err}"),
            }
        }
        request
    }
}

/// The import RPCs that take a bundle archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportRpc {
    /// `ImportTrustRoots`.
    TrustRoots,
    /// `ImportTiles`.
    Tiles,
    /// `RegisterEvidence`.
    Evidence,
}

impl ImportRpc {
    /// Every import RPC.
    pub const ALL: [ImportRpc; 3] = [ImportRpc::TrustRoots, ImportRpc::Tiles, ImportRpc::Evidence];

    /// Returns the RPC method name.
    pub fn method(self) -> &'static str {
        match self {
            ImportRpc::TrustRoots => "ImportTrustRoots",
            ImportRpc::Tiles => "ImportTiles",
            ImportRpc::Evidence => "RegisterEvidence",
        }
    }
}

/// A rejected RPC: status code, the `stella-reason-code` metadata and the message.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// gRPC status code.
    pub code: tonic::Code,
    /// Value of the `stella-reason-code` metadata, when present.
    pub reason_code: Option<String>,
    /// Status message.
    pub message: String,
}

impl Rejection {
    fn from_status(status: &tonic::Status) -> Rejection {
        Rejection {
            code: status.code(),
            reason_code: status
                .metadata()
                .get(REASON_CODE_METADATA_KEY)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            message: status.message().to_owned(),
        }
    }
}

/// Sends `archive` to one import RPC of the attestor.
///
/// Returns `Ok(())` when the attestor accepted the archive, and the rejection otherwise.
///
/// # Panics
///
/// Panics when the attestor cannot be reached or the call times out.
pub fn import(
    caller: &Caller,
    rpc: ImportRpc,
    file_name: &str,
    archive: Vec<u8>,
) -> Result<(), Rejection> {
    let request = caller.request(ImportBundleRequest {
        file_name: file_name.to_owned(),
        archive,
    });
    attestor_call(caller, rpc.method(), |mut client| async move {
        match rpc {
            ImportRpc::TrustRoots => client.import_trust_roots(request).await.map(drop),
            ImportRpc::Tiles => client.import_tiles(request).await.map(drop),
            ImportRpc::Evidence => client.register_evidence(request).await.map(drop),
        }
    })
}

/// Calls the attestor's `VerifyEvidence` for an evidence bundle id.
///
/// # Panics
///
/// Panics when the attestor cannot be reached or the call times out.
pub fn verify_evidence(
    caller: &Caller,
    bundle_id: &str,
) -> Result<VerifyEvidenceResponse, Rejection> {
    let request = caller.request(VerifyEvidenceRequest {
        bundle_id: bundle_id.to_owned(),
        verification_time: 0,
    });
    attestor_call(caller, "VerifyEvidence", |mut client| async move {
        client
            .verify_evidence(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// Calls the attestor's `GetReport` and returns the report JSON.
///
/// # Panics
///
/// Panics when the attestor cannot be reached or the call times out.
pub fn get_report(caller: &Caller, report_digest: &str) -> Result<Vec<u8>, Rejection> {
    let request = caller.request(GetReportRequest {
        report_digest: report_digest.to_owned(),
    });
    attestor_call(caller, "GetReport", |mut client| async move {
        client
            .get_report(request)
            .await
            .map(|response| response.into_inner().report_json)
    })
}

/// Calls the attestor's `ListCheckpoints` for every log.
///
/// # Panics
///
/// Panics when the attestor cannot be reached or the call times out.
pub fn list_checkpoints(caller: &Caller) -> Result<ListCheckpointsResponse, Rejection> {
    let request = caller.request(ListCheckpointsRequest { origin: None });
    attestor_call(caller, "ListCheckpoints", |mut client| async move {
        client
            .list_checkpoints(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// Calls the gate's `GetPromotion`.
///
/// # Panics
///
/// Panics when the gate cannot be reached or the call times out.
pub fn get_promotion(caller: &Caller, promotion_id: &str) -> Result<Promotion, Rejection> {
    let request = caller.request(GetPromotionRequest {
        promotion_id: promotion_id.to_owned(),
    });
    gate_call(caller, "GetPromotion", |mut client| async move {
        client
            .get_promotion(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

/// Calls the gate's `PreviewGates`, or `Evaluate` when `record` is true, with `offline_rekor`.
///
/// # Panics
///
/// Panics when the gate cannot be reached or the call times out.
pub fn evaluate(
    caller: &Caller,
    promotion_id: &str,
    record: bool,
) -> Result<EvaluateResponse, Rejection> {
    let request = caller.request(EvaluateRequest {
        promotion_id: promotion_id.to_owned(),
        offline_rekor: true,
        ..Default::default()
    });
    let method = if record { "Evaluate" } else { "PreviewGates" };
    gate_call(caller, method, |mut client| async move {
        let response = if record {
            client.evaluate(request).await
        } else {
            client.preview_gates(request).await
        };
        response.map(tonic::Response::into_inner)
    })
}

/// Calls the gate's `GetDecision`.
///
/// # Panics
///
/// Panics when the gate cannot be reached or the call times out.
pub fn get_decision(caller: &Caller, record_id: &str) -> Result<DecisionRecord, Rejection> {
    let request = caller.request(GetDecisionRequest {
        record_id: record_id.to_owned(),
    });
    gate_call(caller, "GetDecision", |mut client| async move {
        client
            .get_decision(request)
            .await
            .map(tonic::Response::into_inner)
    })
}

fn attestor_call<T, F, Fut>(caller: &Caller, method: &str, call: F) -> Result<T, Rejection>
where
    F: FnOnce(AttestorClient<Channel>) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    run_call(caller, method, |channel| {
        call(AttestorClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
    })
}

fn gate_call<T, F, Fut>(caller: &Caller, method: &str, call: F) -> Result<T, Rejection>
where
    F: FnOnce(GateClient<Channel>) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    run_call(caller, method, |channel| {
        call(GateClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
    })
}

/// Connects to the caller's URL, runs one call on a new single-threaded runtime and maps a
/// rejection. An unreachable service or a timeout panics, because the suites start the services
/// they call and a missing one is a harness failure, not a result.
fn run_call<T, F, Fut>(caller: &Caller, method: &str, call: F) -> Result<T, Rejection>
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("cannot build a tokio runtime: {err}"),
    };
    runtime.block_on(async {
        let channel = connect(caller).await;
        call(channel).await.map_err(|status| {
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) {
                panic!("{method} on {} failed to run: {status}", caller.url);
            }
            Rejection::from_status(&status)
        })
    })
}

async fn connect(caller: &Caller) -> Channel {
    let url = &caller.url;
    let mut endpoint = match Endpoint::from_shared(url.clone()) {
        Ok(endpoint) => endpoint.connect_timeout(CALL_TIMEOUT).timeout(CALL_TIMEOUT),
        Err(err) => panic!("invalid service URL {url}: {err}"),
    };
    if let Some(tls) = &caller.tls {
        endpoint = match endpoint.tls_config(tls.config()) {
            Ok(endpoint) => endpoint,
            Err(err) => panic!("invalid TLS configuration for {url}: {err}"),
        };
    }
    match endpoint.connect().await {
        Ok(channel) => channel,
        Err(err) => panic!("cannot connect to {url}: {err}"),
    }
}
