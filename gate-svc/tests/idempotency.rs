//! Idempotent evaluations over real gRPC: an `Evaluate` that repeats a request id returns the
//! record written for it, even after a gate restart and under concurrent duplicates, and never
//! writes a second record. The attestor is down, so every evaluation records `pending`.

mod common;

use std::collections::BTreeSet;

use common::{
    Gate, Harness, SUBJECT, TENANT, UNKNOWN_BUNDLE, create, evaluate, evaluate_request, stored_decision_ids,
};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use tonic::Code;

fn with_request_id(promotion_id: &str, request_id: &str) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        request_id: request_id.to_owned(),
        ..evaluate_request(promotion_id)
    }
}

async fn evaluate_once(client: &mut Gate, promotion_id: &str, request_id: &str) -> pb::EvaluateResponse {
    client
        .evaluate(with_request_id(promotion_id, request_id))
        .await
        .expect("evaluate with a request id")
        .into_inner()
}

async fn record_count(client: &mut Gate) -> usize {
    client
        .list_decisions(pb::ListDecisionsRequest {
            after_sequence: 0,
            page_size: 1000,
        })
        .await
        .expect("list decisions")
        .into_inner()
        .records
        .len()
}

#[tokio::test]
async fn repeated_request_returns_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let first = evaluate_once(&mut client, "rel-1", "ci:run-42.1").await;
    assert!(!first.replayed);
    assert_eq!(first.decision, "pending");
    let second = evaluate_once(&mut client, "rel-1", "ci:run-42.1").await;
    assert!(second.replayed);
    assert_eq!(second.record_id, first.record_id);
    assert_eq!(second.decision, first.decision);
    assert_eq!(second.reason_codes, first.reason_codes);
    assert_eq!(second.decision_digest, first.decision_digest);
    assert_eq!(second.report_digests, first.report_digests);
    assert_eq!(second.record_json, first.record_json);
    assert_eq!(second.gates, first.gates, "the gate results are stored with the request id");
    assert_eq!(second.policy_digest, first.policy_digest);
    assert_eq!(second.evaluation_time, first.evaluation_time);
    assert_eq!(second.break_glass, None);
    assert_eq!(record_count(&mut client).await, 1);

    // Without a request id, every evaluation writes a record.
    let plain = evaluate(&mut client, "rel-1").await;
    assert_ne!(plain.record_id, first.record_id);
    assert!(!plain.replayed);
    assert_eq!(record_count(&mut client).await, 2);
    gate.stop().await;

    // The id survives a restart of the gate.
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    let after_restart = evaluate_once(&mut client, "rel-1", "ci:run-42.1").await;
    assert!(after_restart.replayed);
    assert_eq!(after_restart.record_id, first.record_id);
    assert_eq!(after_restart.record_json, first.record_json);
    assert_eq!(record_count(&mut client).await, 2);
    gate.stop().await;
}

#[tokio::test]
async fn request_id_for_other_promotion_conflicts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    create(&mut client, "rel-2", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    evaluate_once(&mut client, "rel-1", "req-1").await;

    let status = client
        .evaluate(with_request_id("rel-2", "req-1"))
        .await
        .expect_err("request id reused for another promotion");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    let code = status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok());
    assert_eq!(code, Some("ERR_REQUEST_ID_CONFLICT"));
    assert!(status.message().starts_with("ERR_REQUEST_ID_CONFLICT: "), "{:?}", status.message());
    assert!(status.message().contains("\"rel-1\""), "{:?}", status.message());
    assert!(status.message().contains("\"rel-2\""), "{:?}", status.message());
    assert_eq!(record_count(&mut client).await, 1);
    gate.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_one_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut task_client = client.clone();
        tasks.spawn(async move { evaluate_once(&mut task_client, "rel-1", "deploy-7").await });
    }
    let mut responses = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        responses.push(joined.expect("evaluation task"));
    }

    let record_ids: BTreeSet<&str> = responses.iter().map(|response| response.record_id.as_str()).collect();
    assert_eq!(record_ids.len(), 1, "{record_ids:?}");
    let written = responses.iter().filter(|response| !response.replayed).count();
    assert_eq!(written, 1, "exactly one response wrote the record");
    assert_eq!(record_count(&mut client).await, 1);
    gate.stop().await;
    let stored = stored_decision_ids(&dir.path().join("gate"), TENANT);
    assert_eq!(stored.len(), 1);
    assert!(record_ids.contains(stored[0].as_str()));
}

#[tokio::test]
async fn invalid_request_id_rejected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let too_long = "r".repeat(129);
    for (name, request_id) in [
        ("too long", too_long.as_str()),
        ("space", "run 1"),
        ("slash", "run/1"),
        ("non-ASCII", "caf\u{e9}"),
        ("newline", "run\n1"),
    ] {
        let status = client
            .evaluate(with_request_id("rel-1", request_id))
            .await
            .expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(status.message().starts_with("request_id"), "{name}: {:?}", status.message());
    }
    assert_eq!(record_count(&mut client).await, 0);
    let longest = "r".repeat(128);
    assert!(!evaluate_once(&mut client, "rel-1", &longest).await.replayed);
    gate.stop().await;
}

#[tokio::test]
async fn request_ids_separate_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut owner = harness.client(&gate).await;
    let mut other = harness.client_with(&gate, &harness.token("globex")).await;
    create(&mut owner, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    create(&mut other, "rel-2", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let owned = evaluate_once(&mut owner, "rel-1", "req-1").await;
    // The other tenant's id space is its own: no conflict, and its own record.
    let separate = evaluate_once(&mut other, "rel-2", "req-1").await;
    assert!(!separate.replayed);
    assert_ne!(separate.record_id, owned.record_id);
    // The other tenant's req-1 names its own rel-2, so sending it with rel-1 conflicts with
    // that record, and the message names nothing of the owner's.
    let status = other
        .evaluate(with_request_id("rel-1", "req-1"))
        .await
        .expect_err("request id reused for another promotion");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("\"rel-2\""), "{:?}", status.message());
    assert_eq!(record_count(&mut owner).await, 1);
    assert_eq!(record_count(&mut other).await, 1);
    gate.stop().await;
}
