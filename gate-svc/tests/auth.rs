//! Token checks at the gate over real gRPC: every rejection gives UNAUTHENTICATED or
//! PERMISSION_DENIED with the `ERR_AUTH_*` reason code and a message naming the call and the
//! failed check, and a rejected call changes no state.

mod common;

use std::time::Duration;

use common::{Harness, POLICY, SUBJECT, TENANT, UNKNOWN_BUNDLE, closed_port_url, evaluate_request, write_policy};
use stella_access::dev::{DevAuthority, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, Scope};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use stella_proto::gate::v1::gate_client::GateClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The gate's calls with the scope each needs.
const RPCS: [(&str, Scope); 9] = [
    ("CreatePromotion", Scope::PromotionEvaluate),
    ("GetPromotion", Scope::PromotionPreview),
    ("PreviewGates", Scope::PromotionPreview),
    ("Evaluate", Scope::PromotionEvaluate),
    ("GetDecision", Scope::DecisionsRead),
    ("GetSigningKey", Scope::DecisionsRead),
    ("ListDecisions", Scope::DecisionsRead),
    ("ImportPolicy", Scope::PolicyImport),
    ("GetPolicy", Scope::PromotionPreview),
];

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Wraps `message` in a request that carries `token` as its bearer token, if any.
fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("ASCII metadata");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Makes the call `rpc` on promotion `rel-1` (or record `dr-1`, or the test policy) with `token`.
async fn call(client: &mut GateClient<Channel>, rpc: &str, token: Option<&str>) -> Result<(), Status> {
    match rpc {
        "CreatePromotion" => {
            let message = pb::CreatePromotionRequest {
                promotion_id: "rel-1".to_owned(),
                subject_digests: vec![SUBJECT.to_owned()],
                target_environment: "prod".to_owned(),
                evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
            };
            client.create_promotion(with_token(message, token)).await.map(drop)
        }
        "GetPromotion" => {
            let message = pb::GetPromotionRequest {
                promotion_id: "rel-1".to_owned(),
            };
            client.get_promotion(with_token(message, token)).await.map(drop)
        }
        "PreviewGates" => client
            .preview_gates(with_token(evaluate_request("rel-1"), token))
            .await
            .map(drop),
        "Evaluate" => client.evaluate(with_token(evaluate_request("rel-1"), token)).await.map(drop),
        "GetDecision" => {
            let message = pb::GetDecisionRequest {
                record_id: "dr-1".to_owned(),
            };
            client.get_decision(with_token(message, token)).await.map(drop)
        }
        "GetSigningKey" => client
            .get_signing_key(with_token(pb::GetSigningKeyRequest {}, token))
            .await
            .map(drop),
        "ListDecisions" => client
            .list_decisions(with_token(pb::ListDecisionsRequest::default(), token))
            .await
            .map(drop),
        "ImportPolicy" => {
            let message = pb::ImportPolicyRequest {
                policy_yaml: POLICY.as_bytes().to_vec(),
                file_name: "policy.yaml".to_owned(),
            };
            client.import_policy(with_token(message, token)).await.map(drop)
        }
        "GetPolicy" => client
            .get_policy(with_token(pb::GetPolicyRequest::default(), token))
            .await
            .map(drop),
        other => panic!("unknown call {other}"),
    }
}

fn reason_code(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn invalid_tokens_unauthenticated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let gate = harness
        .gate(&dir.path().join("gate"), &policy, closed_port_url(), Duration::from_secs(1))
        .await;
    let mut client = GateClient::connect(gate.url()).await.expect("connect to gate");

    let valid = harness.authority.claims(TENANT, &all_scopes());
    let attestor_only = stella_authority::Claims {
        audience: vec![AUDIENCE_ATTESTOR.to_owned()],
        ..valid.clone()
    };
    let expired = stella_authority::Claims {
        issued_at: now() - 7_200,
        not_before: now() - 7_200,
        expires_at: now() - 3_600,
        ..valid.clone()
    };
    let not_yet_valid = stella_authority::Claims {
        not_before: now() + 3_600,
        expires_at: now() + 7_200,
        ..valid.clone()
    };
    let other_issuer = stella_authority::Claims {
        issuer: "other-authority".to_owned(),
        ..valid.clone()
    };
    let other_authority = DevAuthority::generate();

    let rows: [(&str, Option<String>, &str); 7] = [
        ("no token", None, "token"),
        ("malformed", Some("not-a-jwt".to_owned()), "format"),
        ("attestor audience only", Some(harness.authority.token_with(&attestor_only)), "aud"),
        ("expired", Some(harness.authority.token_with(&expired)), "exp"),
        ("not yet valid", Some(harness.authority.token_with(&not_yet_valid)), "nbf"),
        ("wrong issuer", Some(harness.authority.token_with(&other_issuer)), "iss"),
        ("unknown signing key", Some(other_authority.token(TENANT, &all_scopes())), "kid"),
    ];
    for (name, token, check) in &rows {
        for (rpc, _) in RPCS {
            let status = call(&mut client, rpc, token.as_deref())
                .await
                .expect_err(&format!("row {name}: {rpc} accepted"));
            assert_eq!(status.code(), Code::Unauthenticated, "row {name}: {rpc}: {status:?}");
            let prefix = format!("ERR_AUTH_UNAUTHENTICATED: {rpc}: {check} check failed");
            assert!(
                status.message().starts_with(&prefix),
                "row {name}: {rpc}: {:?} does not start with {prefix:?}",
                status.message()
            );
            assert_eq!(reason_code(&status), Some("ERR_AUTH_UNAUTHENTICATED"), "row {name}: {rpc}");
            if let Some(token) = token {
                assert!(!status.message().contains(token.as_str()), "row {name}: the message repeats the token");
            }
        }
    }

    // No rejected CreatePromotion or ImportPolicy stored anything.
    let mut accepted = harness.client(&gate).await;
    let policy_version = accepted
        .get_policy(pb::GetPolicyRequest::default())
        .await
        .expect("get the active policy")
        .into_inner()
        .version;
    assert_eq!(policy_version, 0, "a rejected import stored a policy version");
    let status = accepted
        .get_promotion(pb::GetPromotionRequest {
            promotion_id: "rel-1".to_owned(),
        })
        .await
        .expect_err("no promotion was created");
    assert_eq!(status.code(), Code::NotFound);
    gate.stop().await;
}

#[tokio::test]
async fn missing_scope_per_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let gate = harness
        .gate(&dir.path().join("gate"), &policy, closed_port_url(), Duration::from_secs(1))
        .await;
    let mut client = GateClient::connect(gate.url()).await.expect("connect to gate");

    for (rpc, needed) in RPCS {
        let others: Vec<Scope> = all_scopes().into_iter().filter(|scope| *scope != needed).collect();
        let token = harness.authority.token(TENANT, &others);
        let status = call(&mut client, rpc, Some(&token))
            .await
            .expect_err(&format!("{rpc} accepted without {}", needed.as_str()));
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {status:?}");
        let prefix = format!("ERR_AUTH_PERMISSION_DENIED: {rpc}: scope check failed");
        assert!(
            status.message().starts_with(&prefix),
            "{rpc}: {:?} does not start with {prefix:?}",
            status.message()
        );
        assert!(status.message().contains(needed.as_str()), "{rpc}: {:?}", status.message());
        assert_eq!(reason_code(&status), Some("ERR_AUTH_PERMISSION_DENIED"), "{rpc}");
    }

    // The one scope each call needs is enough to pass the token check: the calls then fail
    // (or succeed) for reasons of their own.
    for (rpc, needed) in RPCS {
        let token = harness.authority.token(TENANT, &[needed]);
        if let Err(status) = call(&mut client, rpc, Some(&token)).await {
            assert!(
                !matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied),
                "{rpc} with {}: {status:?}",
                needed.as_str()
            );
        }
    }
    gate.stop().await;
}
