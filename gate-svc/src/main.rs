//! `stella-gate`: the promotion gate gRPC server. Its flags, logs and exit codes are documented
//! in `docs/services.md`.

use std::io::IsTerminal;
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
    /// Address and port to listen on, such as 127.0.0.1:7402.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Directory of the gate's RocksDB database (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Attestor gRPC URL, such as http://127.0.0.1:7401 (plain-text http:// only; TLS is not built in).
    #[arg(long, value_name = "URL", value_parser = parse_attestor_url)]
    attestor: String,
    /// Policy YAML file, validated at start.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Deadline of each attestor call, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    attestor_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, so a log file or journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
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
            error!(error = error_chain(&run_error), "gate failed");
            ExitCode::FAILURE
        }
    }
}

/// Checks `--attestor` at start, so a URL the gate could never call is a usage error (exit 2).
fn parse_attestor_url(text: &str) -> Result<String, String> {
    stella_gate::attestor::validate_url(text).map_err(|error| error.to_string())?;
    Ok(text.to_owned())
}

/// Formats an error and its causes as `outer: inner`, leaving out a cause whose text the
/// message before it already contains (many errors print their source in their own message).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_skips_repeated_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let policy_error = stella_gate::policy::PolicyError::Read {
            file: "policy.yaml".to_owned(),
            source: io,
        };
        let error = anyhow::Error::new(policy_error).context("cannot start the gate");
        assert_eq!(
            error_chain(&error),
            "cannot start the gate: policy.yaml: cannot read the policy file: No such file or directory"
        );
    }

    #[test]
    fn attestor_url_parser_rejects_ftp() {
        let error = parse_attestor_url("ftp://x").expect_err("ftp accepted");
        assert!(error.contains("ftp://"), "{error}");
        assert_eq!(
            parse_attestor_url("http://127.0.0.1:7401").as_deref(),
            Ok("http://127.0.0.1:7401")
        );
    }
}
