//! Direct gRPC calls to the attestor, bypassing the `stella` binary.
//!
//! The CLI checks bundles locally before it sends them, so a hostile archive that the CLI rejects
//! never reaches the attestor through it. Any gRPC client can send one, though, so the suites also
//! submit hostile archives with these calls to check the attestor's own defences.

use std::time::Duration;

use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1::ImportBundleRequest;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tonic::transport::{Channel, Endpoint};

/// Maximum time for one direct call, including the connection.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Sends `archive` to one import RPC of the attestor at `url`.
///
/// Returns `Ok(())` when the attestor accepted the archive, and the rejection otherwise.
///
/// # Panics
///
/// Panics when the attestor cannot be reached or the call times out.
pub fn import(
    url: &str,
    rpc: ImportRpc,
    file_name: &str,
    archive: Vec<u8>,
) -> Result<(), Rejection> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("cannot build a tokio runtime: {err}"),
    };
    runtime.block_on(async {
        let mut client = connect(url).await;
        let request = ImportBundleRequest {
            file_name: file_name.to_owned(),
            archive,
        };
        let result = match rpc {
            ImportRpc::TrustRoots => client.import_trust_roots(request).await.map(drop),
            ImportRpc::Tiles => client.import_tiles(request).await.map(drop),
            ImportRpc::Evidence => client.register_evidence(request).await.map(drop),
        };
        result.map_err(|status| {
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ) {
                panic!("{} on {url} failed to run: {status}", rpc.method());
            }
            Rejection {
                code: status.code(),
                reason_code: status
                    .metadata()
                    .get(REASON_CODE_METADATA_KEY)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned),
                message: status.message().to_owned(),
            }
        })
    })
}

async fn connect(url: &str) -> AttestorClient<Channel> {
    let endpoint = match Endpoint::from_shared(url.to_owned()) {
        Ok(endpoint) => endpoint.connect_timeout(CALL_TIMEOUT).timeout(CALL_TIMEOUT),
        Err(err) => panic!("invalid attestor URL {url}: {err}"),
    };
    match endpoint.connect().await {
        Ok(channel) => AttestorClient::new(channel).max_decoding_message_size(64 << 20),
        Err(err) => panic!("cannot connect to the attestor at {url}: {err}"),
    }
}
