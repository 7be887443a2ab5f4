//! Promotion gate behind `stella-gate`: promotions, policy evaluation over the attestor's
//! offline verification reports, and write-once decision records in RocksDB.

pub mod attestor;
pub mod break_glass;
pub mod break_glass_rpc;
pub mod chain;
pub mod evaluate;
pub mod idempotency;
pub mod metrics;
pub mod overrides;
pub mod policy;
pub mod policy_store;
pub mod policy_versions;
pub mod promotion;
pub mod record;
pub mod service;
pub mod signing;
pub mod store;

#[cfg(test)]
mod test_reports;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stella_access::Authenticator;
use stella_metrics::GrpcMetricsLayer;
use stella_proto::gate::v1::gate_server::GateServer;
use tokio::net::TcpListener;
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::TcpIncoming;
use tracing::info;

use crate::attestor::{AttestorClient, AttestorTls};
use crate::metrics::GateMetrics;
use crate::policy::{Policy, PolicyError};
use crate::policy_versions::PolicyVersions;
use crate::service::GateService;
use crate::signing::{KeySource, RecordSigner};
use crate::store::Store;

/// Encoded descriptor sets of every gRPC service the gate serves: its own, health and reflection.
const SERVED_DESCRIPTOR_SETS: &[&[u8]] = &[
    stella_proto::GATE_FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
];

/// Settings of one gate instance.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// Attestor gRPC URL: `https://HOST:PORT`, or `http://HOST:PORT` to a loopback host.
    pub attestor_url: String,
    /// CA, client identity and server name for an `https://` attestor URL; `None` for `http://`.
    pub attestor_tls: Option<AttestorTls>,
    /// Site-wide default policy (YAML file), used by every tenant that has not imported one.
    pub policy_path: PathBuf,
    /// PKCS#8 PEM P-256 key that signs decision records; `None` uses
    /// `<data_dir>/signing-key.pem`, generated on the first start.
    pub signing_key: Option<PathBuf>,
    /// Deadline of each attestor call.
    pub attestor_timeout: Duration,
    /// Token check of every gate call, for the audience `stella-gate`.
    pub authenticator: Authenticator,
    /// TLS of the gate's own server; `None` serves plaintext, which [`run`] allows only on a
    /// loopback listener.
    pub tls: Option<ServerTlsConfig>,
}

/// Loads the site-wide default policy, opens the store, loads or generates the signing key and serves the gate
/// and gRPC health on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Fails before serving when `config.tls` is `None` and `listener` is not on a loopback
/// address. It also fails then when the policy is invalid, when the attestor URL, a TLS file or
/// the signing key is unusable, or when the database cannot be opened. Afterwards it fails when
/// the server fails.
pub async fn run(
    listener: TcpListener,
    config: GateConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_with_metrics(listener, config, Arc::new(GateMetrics::default()), shutdown).await
}

/// Like [`run`], recording into `metrics`, which the caller serves (see
/// [`stella_metrics::spawn`]).
///
/// # Errors
///
/// As [`run`].
pub async fn run_with_metrics(
    listener: TcpListener,
    config: GateConfig,
    metrics: Arc<GateMetrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    if config.tls.is_none() && !address.ip().is_loopback() {
        anyhow::bail!(
            "plaintext is allowed only on a loopback address, not {address}; serve TLS with --tls-cert and --tls-key"
        );
    }
    stella_access::install_crypto_provider();

    let (policy, policy_document) = load_site_default(&config.policy_path)?;
    info!(
        policy_digest = %policy.digest,
        environments = policy.environments.len(),
        "site-wide default policy loaded"
    );

    let attestor =
        AttestorClient::connect_lazy(&config.attestor_url, config.attestor_tls.as_ref(), config.attestor_timeout)?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the gate database in {}", config.data_dir.display()))?;
    let (signer, key_source) = RecordSigner::load_or_generate(config.signing_key.as_deref(), &config.data_dir)?;
    match &key_source {
        KeySource::Given(path) => info!(key_id = signer.key_id(), file = %path.display(), "signing key loaded"),
        KeySource::Reused(path) => info!(key_id = signer.key_id(), file = %path.display(), "generated signing key reused"),
        KeySource::Generated(path) => info!(key_id = signer.key_id(), file = %path.display(), "signing key generated"),
    }

    // Earlier site-wide defaults stay stored, so their decisions can still be replayed.
    store
        .put_site_policy(&policy_document)
        .context("cannot store the site-wide default policy")?;
    let policies = PolicyVersions::new(policy, policy_document);
    let service = GateService::new(store, policies, attestor, config.authenticator, Arc::new(signer))
        .with_metrics(Arc::clone(&metrics));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<GateServer<GateService>>().await;
    // Reflection lets grpcurl list and call the gate and health services without the .proto files.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(stella_proto::GATE_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("cannot build the gRPC reflection service")?;
    let grpc_metrics = GrpcMetricsLayer::for_descriptor_sets(Arc::clone(&metrics.grpc), SERVED_DESCRIPTOR_SETS)
        .context("cannot list the gRPC methods for the metrics")?;

    let mut server = tonic::transport::Server::builder().layer(grpc_metrics);
    let transport = match config.tls {
        Some(tls) => {
            server = server.tls_config(tls).context("invalid TLS configuration of the gate server")?;
            "tls"
        }
        None => "plaintext",
    };
    info!(%address, transport, attestor = %config.attestor_url, "gate listening");
    server
        // One span per request, continuing the caller's W3C trace context when it sends one.
        .trace_fn(stella_telemetry::server_span)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(GateServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .context("gate server failed")?;
    info!("gate stopped");
    Ok(())
}

/// Reads and validates the site-wide default policy file, and returns it with its bytes, which
/// `GetPolicy` returns to tenants that have not imported a policy.
///
/// # Errors
///
/// [`PolicyError::Read`] when the file cannot be read, otherwise as [`policy::parse_policy`].
fn load_site_default(path: &std::path::Path) -> Result<(Policy, Vec<u8>), PolicyError> {
    let file = path.display().to_string();
    let document = std::fs::read(path).map_err(|source| PolicyError::Read {
        file: file.clone(),
        source,
    })?;
    let policy = policy::parse_policy(&file, &document)?;
    Ok((policy, document))
}
