//! The gate's metrics endpoint and gRPC reflection, over real gRPC and HTTP on loopback with a
//! real attestor: counters move by exactly the calls made, and reflection lists the served
//! services.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Harness, OTHER_SUBJECT, SUBJECT, TENANT, create, evaluate, evaluate_request, prepare_attestor,
    vectors, write_policy,
};
use prometheus_client::registry::Registry;
use stella_access::AUDIENCE_GATE;
use stella_gate::GateConfig;
use stella_gate::metrics::GateMetrics;
use stella_metrics::dev::{sample, scrape};
use stella_proto::gate::v1 as pb;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// `prod` accepts the conformance suite's evidence and allows overrides of up to 4 hours.
const POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/.+\.yml@refs/heads/main/
        issuer: https://token.actions.githubusercontent.com
    break_glass:
      max_duration: 4h
"#;

const EVALUATE_OK: &str =
    r#"stella_grpc_requests_total{method="/stella.gate.v1.Gate/Evaluate",code="OK"}"#;

#[tokio::test]
async fn counters_follow_evaluations() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let attestor = harness.attestor(&dir.path().join("attestor"), None).await;
    let mut attestor_client = harness
        .attestor_client_with(&attestor, &harness.token(TENANT))
        .await;
    let bundle_id = prepare_attestor(&mut attestor_client, &vectors).await;

    let mut registry = Registry::default();
    let metrics = Arc::new(GateMetrics::register(&mut registry));
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics");
    let metrics_address = metrics_listener.local_addr().expect("metrics address");
    stella_metrics::spawn(metrics_listener, Arc::new(registry));
    let config = GateConfig {
        data_dir: dir.path().join("gate"),
        attestor_url: attestor.url(),
        attestor_tls: None,
        policy_path: write_policy(dir.path(), POLICY),
        signing_key: None,
        attestor_timeout: Duration::from_secs(10),
        authenticator: harness.authenticator(AUDIENCE_GATE),
        tls: None,
    };
    let gate = harness.gate_with_metrics(config, metrics).await;
    let mut client = harness.client(&gate).await;

    create(&mut client, "rel-allow", SUBJECT, "prod", &bundle_id).await;
    let allowed = evaluate(&mut client, "rel-allow").await;
    assert_eq!(allowed.decision, "allow", "{:?}", allowed.reason_codes);

    let text = scrape(metrics_address).await;
    assert_eq!(sample(&text, EVALUATE_OK), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, r#"stella_decisions_total{decision="allow"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stella_decisions_total{decision="deny"}"#),
        None,
        "{text}"
    );
    assert_eq!(
        sample(&text, "stella_break_glass_uses_total"),
        Some(0.0),
        "{text}"
    );

    // The evidence does not cover OTHER_SUBJECT: a deny, then an override of it.
    create(&mut client, "rel-deny", OTHER_SUBJECT, "prod", &bundle_id).await;
    let denied = evaluate(&mut client, "rel-deny").await;
    assert_eq!(denied.decision, "deny");
    let request = pb::EvaluateRequest {
        break_glass: Some(pb::BreakGlassRequest {
            reason: "hotfix for outage".to_owned(),
            ticket: "INC-42".to_owned(),
            duration_seconds: 3600,
        }),
        ..evaluate_request("rel-deny")
    };
    let overridden = client
        .evaluate(request)
        .await
        .expect("override")
        .into_inner();
    assert_eq!(overridden.decision, "allow");
    assert!(overridden.break_glass.is_some());

    let text = scrape(metrics_address).await;
    assert_eq!(sample(&text, EVALUATE_OK), Some(3.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"stella_grpc_requests_total{method="/stella.gate.v1.Gate/CreatePromotion",code="OK"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stella_decisions_total{decision="allow"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stella_decisions_total{decision="deny"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "stella_break_glass_uses_total"),
        Some(1.0),
        "{text}"
    );

    gate.stop().await;
    attestor.stop().await;
}

#[tokio::test]
async fn reflection_lists_gate_services() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let channel = Channel::from_shared(gate.url())
        .expect("URL")
        .connect()
        .await
        .expect("connect to gate");
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(listed)) = response.message_response else {
        panic!(
            "unexpected reflection response: {:?}",
            response.message_response
        );
    };
    let names: Vec<&str> = listed
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert!(names.contains(&"stella.gate.v1.Gate"), "{names:?}");
    assert!(!names.contains(&"stella.attestor.v1.Attestor"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    gate.stop().await;
}
