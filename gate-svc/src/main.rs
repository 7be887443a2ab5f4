//! `stella-gate`: the promotion gate gRPC server. Its flags, logs and exit codes are documented
//! in `docs/services.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use stella_access::{AUDIENCE_GATE, AccessError, ServerAccessArgs};
use stella_gate::GateConfig;
use stella_gate::attestor::{AttestorTls, DEFAULT_TIMEOUT_MS};
use stella_gate::metrics::GateMetrics;
use stella_metrics::MetricsArgs;
use stella_telemetry::LogFormat;
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
    /// Attestor gRPC URL: https://HOST:PORT with --attestor-tls-ca, or http://HOST:PORT to a
    /// loopback host only, such as http://127.0.0.1:7401.
    #[arg(long, value_name = "URL", value_parser = parse_attestor_url)]
    attestor: String,
    /// PEM CA certificates that the attestor's certificate must be issued by. Needed for an
    /// https:// attestor URL.
    #[arg(long, value_name = "FILE")]
    attestor_tls_ca: Option<PathBuf>,
    /// PEM certificate chain that the gate presents to the attestor (mutual TLS). Needs
    /// --attestor-tls-key and --attestor-tls-ca.
    #[arg(long, value_name = "FILE", requires_all = ["attestor_tls_key", "attestor_tls_ca"])]
    attestor_tls_cert: Option<PathBuf>,
    /// PEM private key of --attestor-tls-cert.
    #[arg(long, value_name = "FILE", requires = "attestor_tls_cert")]
    attestor_tls_key: Option<PathBuf>,
    /// Name to check the attestor's certificate against, when it differs from the URL's host.
    /// Needs --attestor-tls-ca.
    #[arg(long, value_name = "NAME", requires = "attestor_tls_ca")]
    attestor_tls_domain: Option<String>,
    /// Site-wide default policy (YAML), validated at start. Tenants that have imported no
    /// policy of their own (`stella policy import`) are evaluated against it.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// P-256 private key in PKCS#8 PEM that signs decision records. Without it, the gate uses
    /// signing-key.pem in --data-dir, which it generates (mode 0600) on the first start.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Deadline of each attestor call, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    attestor_timeout_ms: u64,
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
    let _telemetry = match stella_telemetry::init("stella-gate", args.log_format) {
        Ok(guard) => guard,
        Err(telemetry_error) => {
            if !telemetry_error.was_logged() {
                eprintln!("stella-gate: {telemetry_error}");
            }
            return ExitCode::FAILURE;
        }
    };
    stella_access::install_crypto_provider();

    if let Err(url_error) = stella_gate::attestor::check_url_tls(&args.attestor, args.attestor_tls_ca.is_some()) {
        error!(error = %url_error, "cannot start the gate");
        return ExitCode::from(2);
    }
    let authenticator = match args.access.authenticator(AUDIENCE_GATE) {
        Ok(authenticator) => authenticator,
        Err(access_error) => return start_failure(&access_error),
    };
    let tls = match args.access.server_tls(args.listen) {
        Ok(tls) => tls,
        Err(access_error) => return start_failure(&access_error),
    };
    let attestor_tls = args.attestor_tls_ca.map(|ca| AttestorTls {
        ca,
        identity: args.attestor_tls_cert.zip(args.attestor_tls_key),
        domain: args.attestor_tls_domain,
    });
    let config = GateConfig {
        data_dir: args.data_dir,
        attestor_url: args.attestor,
        attestor_tls,
        policy_path: args.policy,
        signing_key: args.signing_key,
        attestor_timeout: Duration::from_millis(args.attestor_timeout_ms),
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
    let metrics = match stella_metrics::start(&args.metrics, GateMetrics::register).await {
        Ok(metrics) => Arc::new(metrics),
        Err(start_error) => {
            error!(error = %start_error, "cannot start the gate");
            return start_error.exit_code();
        }
    };
    match stella_gate::run_with_metrics(listener, config, metrics, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(run_error) => {
            error!(error = error_chain(&run_error), "gate failed");
            ExitCode::FAILURE
        }
    }
}

/// Logs an unusable token or TLS setting. Contradicting or missing transport options are a
/// usage error (exit 2); a file that cannot be read or parsed is a start failure (exit 1).
fn start_failure(access_error: &AccessError) -> ExitCode {
    error!(error = %access_error, "cannot start the gate");
    match access_error {
        AccessError::Transport(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
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
