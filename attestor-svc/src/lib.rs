//! Attestor service behind `stella-attestor`: imports trust root sets, Rekor tile/proof
//! bundles and evidence bundles into RocksDB, and verifies evidence and log inclusion
//! offline from that cache.
//!
//! Every call carries an Authority token. The attestor checks it offline against the
//! Authority's JWKS, takes the caller's tenant from it and serves only that tenant's data.

pub mod attestor;
pub mod bundle_stream;
pub mod cache;
pub mod consistency;
pub mod error;
pub mod imports;
pub mod inclusion_stream;
pub mod inconsistency;
pub mod metrics;
pub mod service;
pub mod spool;
mod split_view;
pub mod store;
pub mod tile_import;
pub mod verification;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use stella_access::Authenticator;
use stella_bundle::Limits;
use stella_proto::attestor::v1::attestor_server::AttestorServer;
use tokio::net::TcpListener;
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::TcpIncoming;
use tracing::info;

use crate::attestor::AttestorState;
use crate::metrics::AttestorMetrics;
use stella_metrics::GrpcMetricsLayer;
use crate::service::AttestorService;
use crate::spool::SpoolDir;
use crate::store::Store;

/// Extra room in a request beyond the archive itself (file name, protobuf framing).
const REQUEST_OVERHEAD_BYTES: u64 = 64 * 1024;

/// HTTP/2 flow-control window of each stream, in bytes: 4 MiB.
const HTTP2_STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// HTTP/2 flow-control window of each connection, in bytes: 8 MiB.
const HTTP2_CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// Settings of one attestor instance.
#[derive(Debug, Clone)]
pub struct AttestorConfig {
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// Limits applied to every archive. The largest gRPC request accepted is the larger of
    /// `max_archive_bytes` and [`stella_bundle::DEFAULT_MAX_ARCHIVE_BYTES`], plus framing.
    pub limits: Limits,
    /// Checks the Authority token of every call; its audience should be
    /// [`stella_access::AUDIENCE_ATTESTOR`].
    pub authenticator: Authenticator,
    /// TLS of the listener, with client certificates required when it has a client CA. `None`
    /// serves plaintext: the binary allows that only on a loopback address
    /// ([`stella_access::ServerAccessArgs::server_tls`]), and this library leaves the check to
    /// its caller.
    pub tls: Option<ServerTlsConfig>,
}

/// Encoded descriptor sets of every gRPC service the attestor serves: its own, health and reflection.
const SERVED_DESCRIPTOR_SETS: &[&[u8]] = &[
    stella_proto::ATTESTOR_FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
];

/// Default largest archive that ImportTilesStream accepts: 16 GiB.
pub const DEFAULT_MAX_STREAM_BUNDLE_BYTES: u64 = 16 * 1024 * 1024 * 1024;

/// Opens the store and serves the attestor and gRPC health on `listener` until
/// `shutdown` completes, over TLS when `config.tls` is set. Streamed tile bundles may be up to
/// [`DEFAULT_MAX_STREAM_BUNDLE_BYTES`]. The health service needs no token.
///
/// # Errors
///
/// Fails before serving when the database cannot be opened or the TLS configuration is
/// rejected, and afterwards when the server fails.
pub async fn run(
    listener: TcpListener,
    config: AttestorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_with_stream_limit(listener, config, DEFAULT_MAX_STREAM_BUNDLE_BYTES, shutdown).await
}

/// Like [`run`], with ImportTilesStream accepting archives of up to `max_stream_bundle_bytes`.
///
/// # Errors
///
/// Fails before serving when the database or the spool directory cannot be opened or the TLS
/// configuration is rejected, and afterwards when the server fails.
pub async fn run_with_stream_limit(
    listener: TcpListener,
    config: AttestorConfig,
    max_stream_bundle_bytes: u64,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let metrics = Arc::new(AttestorMetrics::default());
    run_with_metrics(listener, config, max_stream_bundle_bytes, metrics, shutdown).await
}

/// Like [`run_with_stream_limit`], recording into `metrics`, which the caller serves (see
/// [`stella_metrics::spawn`]).
///
/// # Errors
///
/// As [`run_with_stream_limit`].
pub async fn run_with_metrics(
    listener: TcpListener,
    config: AttestorConfig,
    max_stream_bundle_bytes: u64,
    metrics: Arc<AttestorMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the attestor database in {}", config.data_dir.display()))?;
    let spool = SpoolDir::open(&config.data_dir).with_context(|| {
        format!(
            "cannot prepare the spool directory {}",
            config.data_dir.join(spool::INCOMING_DIR).display()
        )
    })?;
    // The transport accepts at least the default archive size, so that an archive over a smaller
    // configured limit reaches the import handler and gets ERR_BUNDLE_TOO_LARGE naming the file.
    let transport_limit = config.limits.max_archive_bytes.max(stella_bundle::DEFAULT_MAX_ARCHIVE_BYTES);
    let max_message =
        usize::try_from(transport_limit.saturating_add(REQUEST_OVERHEAD_BYTES)).unwrap_or(usize::MAX);
    let stream_limits = tile_import::streamed_limits(max_stream_bundle_bytes);
    let state = Arc::new(AttestorState::new(store, config.limits, stream_limits, spool).with_metrics(Arc::clone(&metrics)));

    let service = AttestorServer::new(AttestorService::new(state, config.authenticator))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<AttestorServer<AttestorService>>().await;
    // Reflection lets grpcurl list and call the attestor and health services without the .proto files.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(stella_proto::ATTESTOR_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")?;
    let grpc_metrics = GrpcMetricsLayer::for_descriptor_sets(Arc::clone(&metrics.grpc), SERVED_DESCRIPTOR_SETS)
        .context("cannot list the gRPC methods for the metrics")?;

    let address = listener.local_addr()?;
    let mut builder = tonic::transport::Server::builder().layer(grpc_metrics);
    let transport = match config.tls {
        Some(tls) => {
            builder = builder
                .tls_config(tls)
                .context("the TLS configuration of the attestor is rejected")?;
            "tls"
        }
        None => "plaintext",
    };
    info!(%address, transport, max_message_bytes = max_message, "attestor listening");
    builder
        // HTTP/2 starts with 64 KiB flow-control windows, which caps an upload over loopback near
        // 50 MiB/s. Larger windows let a streamed bundle arrive at disk speed.
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        // One span per request, continuing the gate's or the CLI's W3C trace context.
        .trace_fn(stella_telemetry::server_span)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .context("attestor server failed")?;
    info!("attestor stopped");
    Ok(())
}
