//! `stella-attestor`: the offline attestor gRPC server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use stella_access::{AUDIENCE_ATTESTOR, AccessError, ServerAccessArgs};
use stella_attestor::metrics::AttestorMetrics;
use stella_attestor::{AttestorConfig, DEFAULT_MAX_STREAM_BUNDLE_BYTES};
use stella_bundle::{DEFAULT_MAX_ARCHIVE_BYTES, Limits};
use stella_metrics::MetricsArgs;
use stella_telemetry::LogFormat;
use tracing::error;

/// Imports trust roots, Rekor tiles and evidence, and verifies inclusion offline.
#[derive(Debug, Parser)]
#[command(name = "stella-attestor", version)]
struct Args {
    /// Address to listen on, such as 127.0.0.1:7401.
    #[arg(long)]
    listen: SocketAddr,
    /// Directory of the attestor's RocksDB database (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Largest bundle archive accepted, in bytes. A larger archive is rejected with
    /// ERR_BUNDLE_TOO_LARGE naming the file. The gRPC transport accepts requests up to this size
    /// or 256 MiB (the default), whichever is larger, so that such an archive reaches the check.
    #[arg(long, default_value_t = DEFAULT_MAX_ARCHIVE_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_bundle_bytes: u64,
    /// Largest tile bundle archive accepted through the streaming import (ImportTilesStream, used
    /// by `stella rekor tiles import`), in bytes. The upload is spooled to <data-dir>/incoming and
    /// rejected with ERR_BUNDLE_TOO_LARGE as soon as it passes this size. Memory does not grow
    /// with it; disk space does.
    #[arg(long, default_value_t = DEFAULT_MAX_STREAM_BUNDLE_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
    max_stream_bundle_bytes: u64,
    /// Authority tokens (audience stella-attestor) and TLS.
    #[command(flatten)]
    access: ServerAccessArgs,
    /// Prometheus metrics endpoint.
    #[command(flatten)]
    metrics: MetricsArgs,
    /// Format of the log lines on standard error: text, or json with one object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Dropped when main returns, which flushes the spans not yet exported over OTLP.
    let _telemetry = match stella_telemetry::init("stella-attestor", args.log_format) {
        Ok(guard) => guard,
        Err(telemetry_error) => {
            if !telemetry_error.was_logged() {
                eprintln!("stella-attestor: {telemetry_error}");
            }
            return ExitCode::FAILURE;
        }
    };
    stella_access::install_crypto_provider();

    let authenticator = match args.access.authenticator(AUDIENCE_ATTESTOR) {
        Ok(authenticator) => authenticator,
        Err(access_error) => return start_failure(&access_error),
    };
    let tls = match args.access.server_tls(args.listen) {
        Ok(tls) => tls,
        Err(access_error) => return start_failure(&access_error),
    };

    let limits = Limits {
        max_archive_bytes: args.max_bundle_bytes,
        ..Limits::default()
    };
    let config = AttestorConfig {
        data_dir: args.data_dir,
        limits,
        authenticator,
        tls,
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(bind_error) => {
            error!(address = %args.listen, error = %bind_error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let metrics = match stella_metrics::start(&args.metrics, AttestorMetrics::register).await {
        Ok(metrics) => Arc::new(metrics),
        Err(start_error) => {
            error!(error = %start_error, "cannot start the attestor");
            return start_error.exit_code();
        }
    };
    match stella_attestor::run_with_metrics(listener, config, args.max_stream_bundle_bytes, metrics, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(run_error) => {
            error!(error = error_chain(&run_error), "attestor failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs an unusable token or TLS setting. Contradicting or missing transport options are a
/// usage error (exit 2), as in the gate. A file that cannot be read or parsed is a start failure
/// (exit 1).
fn start_failure(access_error: &AccessError) -> ExitCode {
    error!(error = %access_error, "cannot start the attestor");
    match access_error {
        AccessError::Transport(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
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

/// Formats an error with its causes, skipping a cause whose text the previous one already shows.
fn error_chain(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
