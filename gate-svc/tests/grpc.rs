//! The gate served on a loopback port with a RocksDB in a temporary directory, against a
//! real attestor, an attestor that is down, and one that accepts connections but never
//! responds. Every call carries a token of the development Authority.

mod common;

use std::time::{Duration, Instant};

use common::{
    Harness, OTHER_SUBJECT, POLICY, SUBJECT, TENANT, UNKNOWN_BUNDLE, closed_port_url, create, evaluate,
    prepare_attestor, vectors, write_policy,
};
use stella_access::AUDIENCE_GATE;
use stella_gate::GateConfig;
use stella_proto::gate::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn attestor_down_pending_within_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let timeout = Duration::from_millis(1_500);
    let gate = harness.gate(&dir.path().join("gate"), &policy, closed_port_url(), timeout).await;
    let mut client = harness.client(&gate).await;

    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let started = Instant::now();
    let response = evaluate(&mut client, "rel-1").await;
    assert!(
        started.elapsed() < timeout + Duration::from_millis(1_000),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(response.decision, "pending");
    assert!(
        response.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        response.reason_codes
    );
    assert!(response.record_id.starts_with("dr-"));

    let stored = client
        .get_decision(pb::GetDecisionRequest {
            record_id: response.record_id.clone(),
        })
        .await
        .expect("get decision")
        .into_inner();
    assert_eq!(stored.record_json, response.record_json);
    let record: serde_json::Value = serde_json::from_slice(&stored.record_json).expect("record JSON");
    assert_eq!(record["decision"], "pending");
    assert_eq!(record["schema"], "stella.decision-record/v3");
    assert_eq!(record["decision_digest"], response.decision_digest.as_str());

    // The strict environment denies instead.
    create(&mut client, "rel-2", SUBJECT, "strict", UNKNOWN_BUNDLE).await;
    let response = evaluate(&mut client, "rel-2").await;
    assert_eq!(response.decision, "deny");
    assert!(
        response.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        response.reason_codes
    );
    gate.stop().await;
}

#[tokio::test]
async fn silent_attestor_hits_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);

    // Accepts TCP connections but never speaks HTTP/2.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_address = silent.local_addr().expect("address");
    let holder = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });

    let timeout = Duration::from_millis(700);
    let gate = harness
        .gate(&dir.path().join("gate"), &policy, format!("http://{silent_address}"), timeout)
        .await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let started = Instant::now();
    let response = client
        .preview_gates(pb::EvaluateRequest {
            promotion_id: "rel-1".to_owned(),
            offline_rekor: true,
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner();
    let elapsed = started.elapsed();
    holder.abort();

    assert!(
        elapsed >= Duration::from_millis(600),
        "returned before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(1_000),
        "deadline not enforced: {elapsed:?}"
    );
    assert_eq!(response.decision, "pending");
    assert_eq!(response.reason_codes, vec!["ERR_ATTESTOR_UNAVAILABLE"]);
    assert!(response.record_id.is_empty(), "a preview writes no record");
    gate.stop().await;
}

#[tokio::test]
async fn real_attestor_allows_then_fails_closed() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let attestor = harness.attestor(&dir.path().join("attestor"), None).await;
    let mut attestor_client = harness.attestor_client_with(&attestor, &harness.token(TENANT)).await;
    let bundle_id = prepare_attestor(&mut attestor_client, &vectors).await;

    let gate = harness
        .gate(&dir.path().join("gate"), &policy, attestor.url(), Duration::from_secs(10))
        .await;
    let mut client = harness.client(&gate).await;

    create(&mut client, "rel-allow", SUBJECT, "prod", &bundle_id).await;
    let allowed = evaluate(&mut client, "rel-allow").await;
    assert_eq!(
        allowed.decision, "allow",
        "reasons {:?}, gates {:?}",
        allowed.reason_codes, allowed.gates
    );
    assert!(allowed.reason_codes.is_empty());
    assert!(allowed.gates.iter().all(|gate| gate.satisfied));
    assert_eq!(allowed.report_digests.len(), 1);
    let record: serde_json::Value = serde_json::from_slice(&allowed.record_json).expect("record JSON");
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["evidence_bundle_ids"][0], bundle_id.as_str());
    assert_eq!(record["checkpoints"].as_array().map(Vec::len), Some(1));

    // Same inputs at the same evaluation time, same decision digest.
    let preview = client
        .preview_gates(pb::EvaluateRequest {
            promotion_id: "rel-allow".to_owned(),
            offline_rekor: true,
            evaluation_time: allowed.evaluation_time,
            ..Default::default()
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.decision_digest, allowed.decision_digest);

    create(&mut client, "rel-other-subject", OTHER_SUBJECT, "prod", &bundle_id).await;
    let mismatch = evaluate(&mut client, "rel-other-subject").await;
    assert_eq!(mismatch.decision, "deny");
    assert_eq!(
        mismatch.reason_codes,
        vec!["ERR_POLICY_REQUIREMENT_UNMET", "ERR_SUBJECT_MISMATCH"]
    );

    create(&mut client, "rel-other-signer", SUBJECT, "other-signer", &bundle_id).await;
    let unmet = evaluate(&mut client, "rel-other-signer").await;
    assert_eq!(unmet.decision, "deny");
    assert_eq!(unmet.reason_codes, vec!["ERR_POLICY_REQUIREMENT_UNMET"]);

    create(&mut client, "rel-no-env", SUBJECT, "qa", &bundle_id).await;
    let no_env = evaluate(&mut client, "rel-no-env").await;
    assert_eq!(no_env.decision, "deny");
    assert!(
        no_env.reason_codes.contains(&"ERR_POLICY_INVALID".to_owned()),
        "{:?}",
        no_env.reason_codes
    );

    create(&mut client, "rel-unknown", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let unknown = evaluate(&mut client, "rel-unknown").await;
    assert_eq!(unknown.decision, "deny");
    assert!(
        unknown.reason_codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()),
        "{:?}",
        unknown.reason_codes
    );

    // With the attestor stopped, the promotion that was allowed is no longer allowed.
    attestor.stop().await;
    let down = evaluate(&mut client, "rel-allow").await;
    assert_eq!(down.decision, "pending");
    assert!(
        down.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        down.reason_codes
    );
    gate.stop().await;
}

#[tokio::test]
async fn requests_validated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let gate = harness
        .gate(&dir.path().join("gate"), &policy, closed_port_url(), Duration::from_secs(1))
        .await;
    let mut client = harness.client(&gate).await;

    let status = client
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: "rel-1".to_owned(),
            subject_digests: vec!["sha256:abc".to_owned()],
            target_environment: "prod".to_owned(),
            evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
        })
        .await
        .expect_err("short digest");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("subject_digests[0]"), "{}", status.message());

    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let status = client
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: "rel-1".to_owned(),
            subject_digests: vec![OTHER_SUBJECT.to_owned()],
            target_environment: "prod".to_owned(),
            evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
        })
        .await
        .expect_err("conflicting re-create");
    assert_eq!(status.code(), Code::AlreadyExists);

    let status = client
        .evaluate(pb::EvaluateRequest {
            promotion_id: "rel-1".to_owned(),
            offline_rekor: false,
            ..Default::default()
        })
        .await
        .expect_err("online Rekor is not offered");
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = client
        .evaluate(pb::EvaluateRequest {
            promotion_id: "rel-missing".to_owned(),
            offline_rekor: true,
            ..Default::default()
        })
        .await
        .expect_err("unknown promotion");
    assert_eq!(status.code(), Code::NotFound);

    let status = client
        .get_decision(pb::GetDecisionRequest {
            record_id: "dr-missing".to_owned(),
        })
        .await
        .expect_err("unknown record");
    assert_eq!(status.code(), Code::NotFound);
    gate.stop().await;
}

#[tokio::test]
async fn invalid_policy_stops_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(
        dir.path(),
        "environments:\n  prod:\n    require:\n      - identity: a@b\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = GateConfig {
        data_dir: dir.path().join("gate"),
        attestor_url: closed_port_url(),
        attestor_tls: None,
        policy_path: policy.clone(),
        signing_key: None,
        attestor_timeout: Duration::from_secs(1),
        authenticator: harness.authenticator(AUDIENCE_GATE),
        tls: None,
    };
    let error = stella_gate::run(listener, config, std::future::pending())
        .await
        .expect_err("invalid policy");
    // Line 4, column 9 is the start of the requirement mapping that lacks `issuer`.
    let expected = format!("{}:4:9: environments.prod.require[0].issuer: missing", policy.display());
    assert_eq!(format!("{error:#}"), expected);
}
