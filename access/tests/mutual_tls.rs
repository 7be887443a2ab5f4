//! Server and client TLS built from the development PKI: a real handshake over loopback, with
//! and without the client certificate that mutual TLS requires.

use std::time::Duration;

use stella_access::dev::{DevPki, DevPkiPaths};
use stella_access::{client_tls, install_crypto_provider, server_tls};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Starts a health service with TLS that requires a client certificate; returns its URL.
async fn serve(paths: &DevPkiPaths) -> String {
    let tls = server_tls(&paths.server_cert, &paths.server_key, Some(&paths.ca)).expect("server TLS");
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let router = Server::builder().tls_config(tls).expect("TLS config").add_service(service);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    format!("https://localhost:{port}")
}

async fn check(url: &str, tls: tonic::transport::ClientTlsConfig) -> Result<(), String> {
    let channel: Channel = Endpoint::from_shared(url.to_owned())
        .expect("url")
        .tls_config(tls)
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|_| ())
        .map_err(|status| format!("check: {status:?}"))
}

#[tokio::test]
async fn client_certificate_required() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = DevPki::generate().write_to(dir.path());
    let url = serve(&paths).await;

    let with_identity = client_tls(&paths.ca, Some((&paths.client_cert, &paths.client_key)), None).expect("client TLS");
    check(&url, with_identity).await.expect("mutual TLS accepted");

    let without_identity = client_tls(&paths.ca, None, None).expect("client TLS");
    let error = check(&url, without_identity).await.expect_err("no client certificate");
    assert!(!error.is_empty());
}

#[tokio::test]
async fn server_from_other_ca_rejected() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = DevPki::generate().write_to(dir.path());
    let url = serve(&paths).await;

    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = DevPki::generate().write_to(other_dir.path());
    let tls = client_tls(&other.ca, Some((&paths.client_cert, &paths.client_key)), None).expect("client TLS");
    let error = check(&url, tls).await.expect_err("untrusted server certificate");
    assert!(!error.is_empty());
}

#[tokio::test]
async fn untrusted_server_is_tls_failure() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = DevPki::generate().write_to(dir.path());
    let url = serve(&paths).await;

    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = DevPki::generate().write_to(other_dir.path());
    let tls = client_tls(&other.ca, Some((&paths.client_cert, &paths.client_key)), None).expect("client TLS");
    let endpoint = Endpoint::from_shared(url).expect("url").tls_config(tls).expect("TLS config");
    let error = endpoint.connect().await.expect_err("untrusted server certificate");
    let failure = stella_access::tls_failure(&error).expect("a rustls error in the chain");
    assert!(failure.contains("certificate"), "{failure}");
}
