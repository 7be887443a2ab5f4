//! Prometheus metrics shared by the attestor and the gate: the `--metrics-listen` flags, the
//! HTTP endpoint that serves `GET /metrics`, and the per-RPC counters and latency histograms of a
//! tonic server ([`grpc`]).
//!
//! The endpoint serves plain HTTP without authentication. It exposes counts, method names,
//! gRPC status names and reason codes, and no tenant ids, tokens or request contents. It listens
//! on a loopback address unless the operator passes `--metrics-public`.

#[cfg(feature = "dev")]
pub mod dev;
pub mod grpc;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{error, info};

pub use crate::grpc::{GrpcMetrics, GrpcMetricsLayer};

/// Content type of the OpenMetrics text format that `prometheus-client` writes. Prometheus
/// scrapes it like its own text format.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics flags of a service.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Address and port of the Prometheus metrics endpoint, such as 127.0.0.1:9401. The service
    /// then serves `GET /metrics` over plain HTTP without authentication. Without this flag the
    /// service serves no metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Allow --metrics-listen on an address other than loopback. The endpoint has no TLS and no
    /// authentication. It shows request counts, latencies and reason codes, but no tenant ids,
    /// tokens or request contents.
    #[arg(long, requires = "metrics_listen")]
    pub metrics_public: bool,
}

impl MetricsArgs {
    /// Returns the address of the metrics endpoint, or `None` when metrics are off.
    ///
    /// # Errors
    ///
    /// Returns a message naming the address when it is not loopback and `--metrics-public` is
    /// not set.
    pub fn checked_address(&self) -> Result<Option<SocketAddr>, String> {
        match self.metrics_listen {
            Some(address) if !address.ip().is_loopback() && !self.metrics_public => Err(format!(
                "--metrics-listen {address} is not a loopback address; the metrics endpoint has no TLS and no \
                 authentication, so pass --metrics-public to serve it there anyway"
            )),
            address => Ok(address),
        }
    }
}

/// Failure to start the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address is not allowed: a usage error.
    #[error("{0}")]
    Address(String),
    /// The address cannot be bound.
    #[error("cannot listen for metrics on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

impl StartError {
    /// Returns the exit code of a service that cannot start its metrics endpoint: 2 for a
    /// usage error, 1 for an address that cannot be bound.
    pub fn exit_code(&self) -> std::process::ExitCode {
        match self {
            StartError::Address(_) => std::process::ExitCode::from(2),
            StartError::Bind { .. } => std::process::ExitCode::FAILURE,
        }
    }
}

/// Builds a registry with `register` and, when `args` give an address, serves it there with
/// [`spawn`]. Returns what `register` returned.
///
/// # Errors
///
/// [`StartError::Address`] from [`MetricsArgs::checked_address`], or [`StartError::Bind`].
pub async fn start<T>(
    args: &MetricsArgs,
    register: impl FnOnce(&mut Registry) -> T,
) -> Result<T, StartError> {
    let address = args.checked_address().map_err(StartError::Address)?;
    let mut registry = Registry::default();
    let metrics = register(&mut registry);
    if let Some(address) = address {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartError::Bind { address, source })?;
        spawn(listener, Arc::new(registry));
    }
    Ok(metrics)
}

/// Serves `GET /metrics` from `registry` on `listener` in a new task, until the process exits.
/// Any other path gets 404.
pub fn spawn(listener: TcpListener, registry: Arc<Registry>) -> JoinHandle<()> {
    let address = listener
        .local_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    let app = Router::new().route("/metrics", get(move || scrape(Arc::clone(&registry))));
    tokio::spawn(async move {
        info!(%address, "metrics endpoint listening");
        if let Err(serve_error) = axum::serve(listener, app).await {
            error!(%address, error = %serve_error, "metrics endpoint failed");
        }
    })
}

/// Encodes every metric of `registry` in the OpenMetrics text format.
async fn scrape(registry: Arc<Registry>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => ([(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)], text).into_response(),
        Err(encode_error) => {
            error!(error = %encode_error, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics; see the service log\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(address: &str, public: bool) -> MetricsArgs {
        MetricsArgs {
            metrics_listen: Some(address.parse().expect("address")),
            metrics_public: public,
        }
    }

    #[test]
    fn non_loopback_address_needs_public_flag() {
        let error = args("0.0.0.0:9401", false)
            .checked_address()
            .expect_err("accepted");
        assert!(error.contains("0.0.0.0:9401"), "{error}");
        assert!(error.contains("--metrics-public"), "{error}");
        assert_eq!(
            args("0.0.0.0:9401", true).checked_address(),
            Ok(Some("0.0.0.0:9401".parse().expect("address")))
        );
    }

    #[test]
    fn loopback_address_is_accepted() {
        assert_eq!(
            args("127.0.0.1:9401", false).checked_address(),
            Ok(Some("127.0.0.1:9401".parse().expect("address")))
        );
        assert_eq!(
            args("[::1]:9401", false).checked_address(),
            Ok(Some("[::1]:9401".parse().expect("address")))
        );
        let off = MetricsArgs {
            metrics_listen: None,
            metrics_public: false,
        };
        assert_eq!(off.checked_address(), Ok(None));
    }
}
