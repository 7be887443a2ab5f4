//! Transport security of the attestor: TLS with required client certificates (mutual TLS) over
//! real gRPC, and the binary rejecting plaintext on an address that is not loopback.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use stella_access::dev::DevPki;
use stella_access::{client_tls, install_crypto_provider, server_tls};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tonic::transport::{Channel, ClientTlsConfig};

use common::{Server, TENANT, TestAuthority, bearer};

/// Connects over TLS to `server` and lists checkpoints with a valid token.
async fn list_over_tls(server: &Server, tls: ClientTlsConfig) -> Result<(), String> {
    let channel = Channel::from_shared(format!("https://127.0.0.1:{}", server.address.port()))
        .expect("URI")
        .tls_config(tls)
        .expect("client TLS configuration")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    let mut client = AttestorClient::with_interceptor(channel, bearer(&server.authority.token(TENANT)));
    client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .map(drop)
        .map_err(|status| format!("call: {status:?}"))
}

#[tokio::test]
async fn mutual_tls_requires_client_certificate() {
    install_crypto_provider();
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let pki = DevPki::generate().write_to(pki_dir.path());
    let tls = server_tls(&pki.server_cert, &pki.server_key, Some(&pki.ca)).expect("server TLS");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_configured(
        dir.path(),
        stella_bundle::Limits::default(),
        Some(tls),
        Arc::new(TestAuthority::generate()),
    )
    .await;
    // Let the server start listening before the rejected connections.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let with_certificate = client_tls(&pki.ca, Some((&pki.client_cert, &pki.client_key)), Some("localhost"))
        .expect("client TLS with identity");
    list_over_tls(&server, with_certificate)
        .await
        .expect("a client with the CA's certificate is served");

    let without_certificate = client_tls(&pki.ca, None, Some("localhost")).expect("client TLS");
    let rejected = list_over_tls(&server, without_certificate).await;
    assert!(rejected.is_err(), "a client without a certificate was served");

    // A client certificate from another CA is rejected as well.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = DevPki::generate().write_to(other_dir.path());
    let foreign = client_tls(&pki.ca, Some((&other.client_cert, &other.client_key)), Some("localhost"))
        .expect("client TLS with a foreign identity");
    let rejected = list_over_tls(&server, foreign).await;
    assert!(rejected.is_err(), "a client certificate of another CA was accepted");

    // Plaintext gRPC to the TLS port fails too.
    let mut plaintext = server.client().await;
    let status = plaintext
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect_err("plaintext to a TLS listener");
    assert_ne!(status.code(), tonic::Code::Ok);
    server.stop().await;
}

/// Runs the attestor binary with `arguments` and returns its exit status and standard error.
/// The binary must exit by itself within 20 s.
fn run_attestor(arguments: &[&str], jwks: &Path, data_dir: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stella-attestor"))
        .arg("--authority-jwks")
        .arg(jwks)
        .arg("--data-dir")
        .arg(data_dir)
        .args(arguments)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stella-attestor");
    for _ in 0..200 {
        if let Some(_status) = child.try_wait().expect("wait for stella-attestor") {
            let output = child.wait_with_output().expect("collect output");
            return (output.status, String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("stella-attestor {arguments:?} kept running");
}

#[test]
fn plaintext_rejected_off_loopback() {
    let authority = TestAuthority::generate();
    let dir = tempfile::tempdir().expect("temp dir");

    let (status, stderr) = run_attestor(
        &["--listen", "0.0.0.0:0", "--plaintext-loopback"],
        &authority.jwks_path,
        dir.path(),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--plaintext-loopback needs a loopback listen address"), "{stderr}");
    assert!(!stderr.contains("attestor listening"), "{stderr}");

    // Neither TLS nor --plaintext-loopback: rejected even on loopback.
    let (status, stderr) = run_attestor(&["--listen", "127.0.0.1:0"], &authority.jwks_path, dir.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no transport security configured"), "{stderr}");

    // A JWKS file that does not parse stops the start, naming the file.
    let bad_jwks = dir.path().join("bad.jwks.json");
    std::fs::write(&bad_jwks, "{}").expect("write");
    let (status, stderr) = run_attestor(&["--listen", "127.0.0.1:0", "--plaintext-loopback"], &bad_jwks, dir.path());
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.jwks.json"), "{stderr}");
}
