//! `stella-gate`: the promotion gate gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stella_gate::{GateConfig, attestor::DEFAULT_TIMEOUT_MS};
use tracing::error;

/// Evaluates promotions against a policy using the attestor's offline Rekor verification.
#[derive(Debug, Parser)]
#[command(name = "stella-gate", version)]
struct Args {
    /// Address to listen on, such as 127.0.0.1:7402.
    #[arg(long)]
    listen: SocketAddr,
    /// Directory of the gate's RocksDB database (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Attestor gRPC URL, such as http://127.0.0.1:7401.
    #[arg(long)]
    attestor: String,
    /// Policy YAML file, validated at start.
    #[arg(long)]
    policy: PathBuf,
    /// Deadline of each attestor call, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    attestor_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let config = GateConfig {
        data_dir: args.data_dir,
        attestor_url: args.attestor,
        policy_path: args.policy,
        attestor_timeout: Duration::from_millis(args.attestor_timeout_ms),
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(bind_error) => {
            error!(address = %args.listen, error = %bind_error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match stella_gate::run(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(run_error) => {
            error!(error = format!("{run_error:#}"), "gate failed");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(signal_error) = tokio::signal::ctrl_c().await {
            error!(error = %signal_error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(signal_error) => {
                error!(error = %signal_error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
