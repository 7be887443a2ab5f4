//! Replay of recorded decisions over real gRPC: `PreviewGates` at a record's evaluation time
//! with the record's policy version returns the record's decision digest, also after the gate
//! restarts on the same database. The attestor is real and verifies the conformance suite's
//! evidence at the requested time.

mod common;

use std::time::Duration;

use common::{
    Gate, Harness, POLICY, SUBJECT, TENANT, UNKNOWN_BUNDLE, create, evaluate, evaluate_request, prepare_attestor,
    vectors, write_policy,
};
use stella_proto::gate::v1 as pb;
use tonic::Code;

/// Record keys that the decision digest does not cover.
const RECORD_ONLY_KEYS: [&str; 5] = ["record_id", "decision_digest", "tenant", "sequence", "previous_record_digest"];

/// The conformance workflow's requirement in `prod`, like [`POLICY`], but with a second
/// environment so that its digest differs.
const IMPORTED_POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/.+\.yml@refs/heads/main/
        issuer: https://token.actions.githubusercontent.com
  staging:
    require:
      - identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
"#;

async fn preview_at(client: &mut Gate, promotion_id: &str, time: i64, policy_digest: &str) -> pb::EvaluateResponse {
    client
        .preview_gates(pb::EvaluateRequest {
            evaluation_time: time,
            policy_digest: policy_digest.to_owned(),
            ..evaluate_request(promotion_id)
        })
        .await
        .expect("preview")
        .into_inner()
}

#[tokio::test]
async fn preview_replays_record_after_restart() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let attestor = harness.attestor(&dir.path().join("attestor"), None).await;
    let mut attestor_client = harness.attestor_client_with(&attestor, &harness.token(TENANT)).await;
    let bundle_id = prepare_attestor(&mut attestor_client, &vectors).await;
    let gate_dir = dir.path().join("gate");

    let gate = harness
        .gate(&gate_dir, &policy, attestor.url(), Duration::from_secs(10))
        .await;
    let mut client = harness.client(&gate).await;
    let imported = client
        .import_policy(pb::ImportPolicyRequest {
            policy_yaml: IMPORTED_POLICY.as_bytes().to_vec(),
            file_name: "imported.yaml".to_owned(),
        })
        .await
        .expect("import policy")
        .into_inner();
    create(&mut client, "rel-1", SUBJECT, "prod", &bundle_id).await;
    let recorded = evaluate(&mut client, "rel-1").await;
    assert_eq!(recorded.decision, "allow", "reasons {:?}", recorded.reason_codes);
    assert_eq!(recorded.policy_digest, imported.digest);
    let time = recorded.evaluation_time;
    assert!(time > 0, "the response names the evaluation time");

    // A later version becomes active, so only the record's digest selects the version it used.
    client
        .import_policy(pb::ImportPolicyRequest {
            policy_yaml: format!("{IMPORTED_POLICY}# second version\n").into_bytes(),
            file_name: "second.yaml".to_owned(),
        })
        .await
        .expect("import a second version");
    gate.stop().await;

    let gate = harness
        .gate(&gate_dir, &policy, attestor.url(), Duration::from_secs(10))
        .await;
    let mut client = harness.client(&gate).await;

    let replayed = preview_at(&mut client, "rel-1", time, &recorded.policy_digest).await;
    assert_eq!(replayed.decision_digest, recorded.decision_digest);
    assert_eq!(replayed.decision, recorded.decision);
    assert_eq!(replayed.reason_codes, recorded.reason_codes);
    assert_eq!(replayed.report_digests, recorded.report_digests);
    assert_eq!(replayed.evaluation_time, time);
    assert_eq!(replayed.policy_digest, imported.digest);
    assert!(replayed.record_id.is_empty(), "a preview writes no record");

    // The preview body is the record without the keys that the digest leaves out.
    let mut record: serde_json::Value = serde_json::from_slice(&recorded.record_json).expect("record JSON");
    let record_object = record.as_object_mut().expect("record object");
    for key in RECORD_ONLY_KEYS {
        assert!(record_object.remove(key).is_some(), "the record has no {key}");
    }
    let body: serde_json::Value = serde_json::from_slice(&replayed.record_json).expect("preview JSON");
    assert_eq!(body, record);

    let later = preview_at(&mut client, "rel-1", time + 1, &recorded.policy_digest).await;
    assert_eq!(later.decision, recorded.decision);
    assert_ne!(later.decision_digest, recorded.decision_digest, "the digest covers the evaluation time");
    let active = preview_at(&mut client, "rel-1", time, "").await;
    assert_ne!(active.policy_digest, recorded.policy_digest);
    assert_ne!(active.decision_digest, recorded.decision_digest, "the digest covers the policy version");
    gate.stop().await;
}

#[tokio::test]
async fn evaluate_rejects_replay_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let digest = format!("sha256:{}", "ab".repeat(32));

    let rows = [
        (
            "evaluation time",
            pb::EvaluateRequest {
                evaluation_time: 1_796_378_400,
                ..evaluate_request("rel-1")
            },
            "evaluation_time",
        ),
        (
            "policy digest",
            pb::EvaluateRequest {
                policy_digest: digest.clone(),
                ..evaluate_request("rel-1")
            },
            "policy_digest",
        ),
    ];
    for (name, request, field) in rows {
        let status = client.evaluate(request).await.expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(status.message().starts_with(field), "{name}: {:?}", status.message());
    }
    let listed = client
        .list_decisions(pb::ListDecisionsRequest::default())
        .await
        .expect("list decisions")
        .into_inner();
    assert!(listed.records.is_empty(), "a rejected evaluation wrote a record");
    gate.stop().await;
}

#[tokio::test]
async fn preview_checks_time_and_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let rows = [
        ("negative time", -1, String::new(), Code::InvalidArgument),
        ("time after year 9999", 253_402_300_800, String::new(), Code::InvalidArgument),
        ("digest without prefix", 0, "ab".repeat(32), Code::InvalidArgument),
        ("uppercase digest", 0, format!("sha256:{}", "AB".repeat(32)), Code::InvalidArgument),
        ("unknown digest", 0, format!("sha256:{}", "ab".repeat(32)), Code::NotFound),
    ];
    for (name, time, digest, code) in rows {
        let request = pb::EvaluateRequest {
            evaluation_time: time,
            policy_digest: digest,
            ..evaluate_request("rel-1")
        };
        let status = client.preview_gates(request).await.expect_err(name);
        assert_eq!(status.code(), code, "{name}: {status:?}");
    }
    let status = client
        .preview_gates(pb::EvaluateRequest {
            request_id: "req-1".to_owned(),
            ..evaluate_request("rel-1")
        })
        .await
        .expect_err("request id in a preview");
    assert_eq!(status.code(), Code::InvalidArgument);

    // The latest representable time is accepted: a preview may look ahead, such as past the
    // expiry of a break-glass override.
    let latest = preview_at(&mut client, "rel-1", 253_402_300_799, "").await;
    assert_eq!(latest.evaluation_time, 253_402_300_799);
    let body: serde_json::Value = serde_json::from_slice(&latest.record_json).expect("preview JSON");
    assert_eq!(body["evaluated_at"], "9999-12-31T23:59:59Z");
    gate.stop().await;
}
