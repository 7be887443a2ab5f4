//! A real attestor for the CLI tests: RocksDB in a directory the test chooses, served on a
//! loopback port from its own tokio runtime, so that the test thread can run `stella` against it.
//! It accepts the tokens of the test binary's development Authority and serves plain text, as
//! `stella-attestor --plaintext-loopback` does, or TLS with certificates of a development PKI.

use std::path::Path;
use std::time::Duration;

use stella_access::dev::DevPkiPaths;
use stella_bundle::Limits;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::ServerTlsConfig;

use super::authority::attestor_authenticator;
use super::bundles::write_trust_set;
use super::{Run, arg, stella};

/// Whether a TLS attestor requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Any client may connect; the token alone authorizes calls.
    None,
    /// Only clients with a certificate issued by the PKI's CA may connect (mutual TLS).
    Required,
}

/// An attestor served in process. Dropping it stops the server and, unless the test is already
/// panicking, fails the test when the server does not exit cleanly within 10 s.
pub struct Attestor {
    url: String,
    runtime: Runtime,
    stop: Option<oneshot::Sender<()>>,
    /// The server task, with its error as text so that the tests need no `anyhow`.
    task: Option<JoinHandle<Result<(), String>>>,
}

impl Attestor {
    /// Starts an attestor on `data_dir` with the default limits.
    pub fn start(data_dir: &Path) -> Attestor {
        Attestor::start_with_stream_limit(
            data_dir,
            stella_attestor::DEFAULT_MAX_STREAM_BUNDLE_BYTES,
        )
    }

    /// Starts an attestor on `dir/attestor`, writes a trust set of the trusted root at
    /// `trusted_root` plus `note_keys` to `dir/trust.tgz`, and imports it with `stella trust
    /// import`. Fails the test unless the import exits 0.
    pub fn start_trusting(dir: &Path, trusted_root: &Path, note_keys: &[String]) -> Attestor {
        let attestor = Attestor::start(&dir.join("attestor"));
        let trust = dir.join("trust.tgz");
        write_trust_set(&trust, trusted_root, note_keys);
        let run = attestor.stella(&["trust", "import", "--bundle", arg(&trust)]);
        assert_eq!(run.code, 0, "trust import: {}", run.stderr);
        attestor
    }

    /// Starts an attestor on `data_dir` that accepts streamed tile bundles of up to
    /// `max_stream_bytes`.
    pub fn start_with_stream_limit(data_dir: &Path, max_stream_bytes: u64) -> Attestor {
        Attestor::serve(data_dir, max_stream_bytes, None)
    }

    /// Starts an attestor on `data_dir` that serves TLS with the server certificate of `pki`,
    /// and with `client_auth`, requires client certificates issued by its CA. Its URL is
    /// `https://127.0.0.1:<port>`, a name the development server certificate covers.
    pub fn start_tls(data_dir: &Path, pki: &DevPkiPaths, client_auth: ClientAuth) -> Attestor {
        let client_ca = match client_auth {
            ClientAuth::None => None,
            ClientAuth::Required => Some(pki.ca.as_path()),
        };
        let tls = stella_access::server_tls(&pki.server_cert, &pki.server_key, client_ca)
            .expect("server TLS configuration from the development PKI");
        Attestor::serve(
            data_dir,
            stella_attestor::DEFAULT_MAX_STREAM_BUNDLE_BYTES,
            Some(tls),
        )
    }

    fn serve(data_dir: &Path, max_stream_bytes: u64, tls: Option<ServerTlsConfig>) -> Attestor {
        stella_access::install_crypto_provider();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = stella_attestor::AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits: Limits::default(),
            authenticator: attestor_authenticator(),
            tls,
        };
        let server =
            stella_attestor::run_with_stream_limit(listener, config, max_stream_bytes, async {
                let _ = stopped.await;
            });
        let task = runtime.spawn(async move { server.await.map_err(|error| format!("{error:#}")) });
        Attestor {
            url: format!("{scheme}://{address}"),
            runtime,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Returns the attestor's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `stella --attestor URL` with `args`.
    pub fn stella(&self, args: &[&str]) -> Run {
        let mut full = vec!["--attestor", self.url.as_str()];
        full.extend_from_slice(args);
        stella(&full)
    }
}

impl Drop for Attestor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            if !std::thread::panicking() {
                let result = stopped
                    .expect("attestor stops within 10 s")
                    .expect("attestor task joins");
                result.expect("attestor exits cleanly");
            }
        }
    }
}
