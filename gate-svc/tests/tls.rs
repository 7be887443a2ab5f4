//! The gate and the attestor over TLS: the gate serves TLS, verifies the attestor's certificate
//! against its configured CA and presents a client certificate (mutual TLS). A CA that does not
//! match or a missing client certificate fails closed with `ERR_ATTESTOR_UNAVAILABLE`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    Attestor, Gate, Harness, POLICY, Running, SUBJECT, TENANT, UNKNOWN_BUNDLE, attestor_tls, create, evaluate,
    prepare_attestor, tls_channel, vectors, write_policy,
};
use stella_access::dev::{DevPki, DevPkiPaths};
use stella_access::{AUDIENCE_GATE, BearerToken};
use stella_gate::GateConfig;
use stella_gate::attestor::AttestorTls;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::gate::v1::gate_client::GateClient;

/// Starts an attestor that serves TLS with `pki`'s server certificate and requires client
/// certificates issued by `pki`'s CA.
async fn mtls_attestor(harness: &Harness, dir: &Path, pki: &DevPkiPaths) -> Running {
    let tls = stella_access::server_tls(&pki.server_cert, &pki.server_key, Some(&pki.ca)).expect("server TLS");
    harness.attestor(&dir.join("attestor"), Some(tls)).await
}

/// Starts a gate that serves TLS with `pki`'s server certificate and calls `attestor` with
/// `attestor_tls`.
async fn tls_gate(harness: &Harness, data_dir: &Path, attestor: &Running, pki: &DevPkiPaths, attestor_tls: AttestorTls) -> Running {
    let policy = write_policy(data_dir.parent().expect("parent"), POLICY);
    let tls = stella_access::server_tls(&pki.server_cert, &pki.server_key, None).expect("server TLS");
    harness
        .gate_with(GateConfig {
            data_dir: data_dir.to_path_buf(),
            attestor_url: attestor.url(),
            attestor_tls: Some(attestor_tls),
            policy_path: policy,
            signing_key: None,
            attestor_timeout: Duration::from_secs(5),
            authenticator: harness.authenticator(AUDIENCE_GATE),
            tls: Some(tls),
        })
        .await
}

async fn gate_client(harness: &Harness, gate: &Running, pki: &DevPkiPaths) -> Gate {
    let channel = tls_channel(gate, &pki.ca, None).await;
    GateClient::with_interceptor(channel, BearerToken::new(&harness.token(TENANT)).expect("token"))
}

#[tokio::test]
async fn mtls_mismatch_fails_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let pki_dir = dir.path().join("pki");
    let other_dir = dir.path().join("other-pki");
    std::fs::create_dir_all(&pki_dir).expect("create PKI dir");
    std::fs::create_dir_all(&other_dir).expect("create PKI dir");
    let pki = DevPki::generate().write_to(&pki_dir);
    let other_pki = DevPki::generate().write_to(&other_dir);
    let attestor = mtls_attestor(&harness, dir.path(), &pki).await;

    // Matching CA and client certificate: the call reaches the attestor, which does not have
    // the bundle.
    let working = tls_gate(&harness, &dir.path().join("gate-working"), &attestor, &pki, attestor_tls(&pki.ca, &pki, true)).await;
    let mut client = gate_client(&harness, &working, &pki).await;
    create(&mut client, "rel-1", SUBJECT, "strict", UNKNOWN_BUNDLE).await;
    let response = evaluate(&mut client, "rel-1").await;
    assert_eq!(response.decision, "deny");
    assert!(
        response.reason_codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()),
        "{:?}",
        response.reason_codes
    );
    working.stop().await;

    let rows = [
        ("CA does not match the attestor", attestor_tls(&other_pki.ca, &pki, true)),
        ("no client certificate", attestor_tls(&pki.ca, &pki, false)),
        (
            "client certificate from another CA",
            AttestorTls {
                ca: pki.ca.clone(),
                identity: Some((other_pki.client_cert.clone(), other_pki.client_key.clone())),
                domain: None,
            },
        ),
    ];
    for (index, (name, files)) in rows.into_iter().enumerate() {
        let gate = tls_gate(&harness, &dir.path().join(format!("gate-{index}")), &attestor, &pki, files).await;
        let mut client = gate_client(&harness, &gate, &pki).await;
        for (target, expected) in [("prod", "pending"), ("strict", "deny")] {
            let id = format!("rel-{target}");
            create(&mut client, &id, SUBJECT, target, UNKNOWN_BUNDLE).await;
            let response = evaluate(&mut client, &id).await;
            assert_eq!(response.decision, expected, "row {name}: {target}");
            let codes = &response.reason_codes;
            assert!(codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()), "row {name}: {target}: {codes:?}");
            assert!(!codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()), "row {name}: {target}: {codes:?}");
        }
        gate.stop().await;
    }
    attestor.stop().await;
}

#[tokio::test]
async fn runbook_over_mtls_allows() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).expect("create PKI dir");
    let pki = DevPki::generate().write_to(&pki_dir);
    let attestor = mtls_attestor(&harness, dir.path(), &pki).await;

    let channel = tls_channel(&attestor, &pki.ca, Some((&pki.client_cert, &pki.client_key))).await;
    let mut attestor_client: Attestor =
        AttestorClient::with_interceptor(channel, BearerToken::new(&harness.token(TENANT)).expect("token"));
    let bundle_id = prepare_attestor(&mut attestor_client, &vectors).await;

    let gate = tls_gate(&harness, &dir.path().join("gate"), &attestor, &pki, attestor_tls(&pki.ca, &pki, true)).await;
    let mut client = gate_client(&harness, &gate, &pki).await;
    create(&mut client, "rel-1", SUBJECT, "strict", &bundle_id).await;
    let response = evaluate(&mut client, "rel-1").await;
    assert_eq!(
        response.decision, "allow",
        "reasons {:?}, gates {:?}",
        response.reason_codes, response.gates
    );
    assert_eq!(response.report_digests.len(), 1);
    gate.stop().await;
    attestor.stop().await;
}
