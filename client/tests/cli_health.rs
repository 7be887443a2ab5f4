//! `stella health`: `SERVING` exits 0 without any token, another status exits 1, an unreachable
//! service exits 4, and an attestor that requires client certificates needs one for the check too.

mod common;

use common::attestor::{Attestor, ClientAuth};
use common::{arg, closed_port_url, stella_with_env, string_at};
use stella_access::dev::DevPki;
use tonic_health::server::health_reporter;

/// Exit codes of `stella`.
const SERVING: i32 = 0;
const NOT_SERVING: i32 = 1;
const UNREACHABLE: i32 = 4;

#[test]
fn health_serving_needs_no_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attestor = Attestor::start(&dir.path().join("attestor"));

    // Text that is no token at all: a command that read STELLA_TOKEN would exit 2.
    let run = stella_with_env(
        &[
            "--output",
            "json",
            "--attestor",
            attestor.url(),
            "health",
            "attestor",
        ],
        &[("STELLA_TOKEN", "not a token!")],
    );
    assert_eq!(
        run.code, SERVING,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let object = run.json();
    assert_eq!(string_at(&object, "status"), "SERVING");
    assert_eq!(string_at(&object, "service"), "attestor");
    assert_eq!(string_at(&object, "url"), attestor.url());
    assert_eq!(
        string_at(&object, "grpc_service"),
        "stella.attestor.v1.Attestor"
    );

    let text = stella_with_env(&["--attestor", attestor.url(), "health", "attestor"], &[]);
    assert_eq!(text.code, SERVING, "stderr: {}", text.stderr);
    assert_eq!(
        text.stdout.trim(),
        format!("attestor at {}: SERVING", attestor.url())
    );
}

#[test]
fn health_not_serving_exits_1() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    // A health service alone, which reports the gate NOT_SERVING.
    runtime.spawn(async move {
        let (reporter, service) = health_reporter();
        reporter
            .set_service_status(
                "stella.gate.v1.Gate",
                tonic_health::ServingStatus::NotServing,
            )
            .await;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
    });

    let run = stella_with_env(&["--output", "json", "--gate", &url, "health", "gate"], &[]);
    assert_eq!(
        run.code, NOT_SERVING,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert_eq!(string_at(&run.json(), "status"), "NOT_SERVING");

    let text = stella_with_env(&["--gate", &url, "health", "gate"], &[]);
    assert_eq!(text.code, NOT_SERVING);
    assert!(
        text.stderr
            .contains("reports NOT_SERVING for stella.gate.v1.Gate"),
        "{}",
        text.stderr
    );
}

#[test]
fn health_unreachable_exits_4() {
    let url = closed_port_url();
    let run = stella_with_env(&["--output", "json", "--gate", &url, "health", "gate"], &[]);
    assert_eq!(
        run.code, UNREACHABLE,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let message = string_at(&run.json(), "error").to_owned();
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.contains(&url), "{message}");
}

#[test]
fn health_mutual_tls_needs_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir(&pki_dir).expect("create the PKI directory");
    let pki = DevPki::generate().write_to(&pki_dir);
    let attestor = Attestor::start_tls(&dir.path().join("attestor"), &pki, ClientAuth::Required);

    let with_certificate = stella_with_env(
        &[
            "--attestor",
            attestor.url(),
            "--tls-ca",
            arg(&pki.ca),
            "--tls-cert",
            arg(&pki.client_cert),
            "--tls-key",
            arg(&pki.client_key),
            "health",
            "attestor",
        ],
        &[],
    );
    assert_eq!(
        with_certificate.code, SERVING,
        "stderr: {}",
        with_certificate.stderr
    );

    let without_certificate = stella_with_env(
        &[
            "--attestor",
            attestor.url(),
            "--tls-ca",
            arg(&pki.ca),
            "health",
            "attestor",
        ],
        &[],
    );
    assert_eq!(
        without_certificate.code, UNREACHABLE,
        "a failed handshake exits 4\nstderr: {}",
        without_certificate.stderr
    );
}
