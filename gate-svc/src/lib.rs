//! Promotion gate behind `stella-gate`: promotions, policy evaluation over the attestor's
//! offline verification reports, and write-once decision records in RocksDB.

pub mod attestor;
pub mod evaluate;
pub mod policy;
pub mod promotion;
pub mod record;
pub mod service;
pub mod store;

#[cfg(test)]
mod test_reports;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stella_proto::gate::v1::gate_server::GateServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tracing::info;

use crate::attestor::AttestorClient;
use crate::service::GateService;
use crate::store::Store;

/// Settings of one gate instance.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// Attestor gRPC URL, such as `http://127.0.0.1:7401`.
    pub attestor_url: String,
    /// Policy YAML file.
    pub policy_path: PathBuf,
    /// Deadline of each attestor call.
    pub attestor_timeout: Duration,
}

/// Loads the policy, opens the store and serves the gate and gRPC health on `listener`
/// until `shutdown` completes.
///
/// # Errors
///
/// Fails before serving when the policy is invalid, the attestor URL is malformed or the
/// database cannot be opened, and afterwards when the server fails.
pub async fn run(
    listener: TcpListener,
    config: GateConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let policy = policy::load_policy(&config.policy_path)?;
    info!(policy_digest = %policy.digest, environments = policy.environments.len(), "policy loaded");

    let attestor = AttestorClient::connect_lazy(&config.attestor_url, config.attestor_timeout)?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open the gate database in {}", config.data_dir.display()))?;

    let service = GateService::new(Arc::new(store), Arc::new(policy), attestor);
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<GateServer<GateService>>().await;

    let address = listener.local_addr()?;
    info!(%address, attestor = %config.attestor_url, "gate listening");
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(GateServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .context("gate server failed")?;
    info!("gate stopped");
    Ok(())
}
