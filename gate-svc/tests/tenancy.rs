//! Tenants at the gate over real gRPC. The tenant comes from the token only, and another
//! tenant's promotion or decision record reads as missing. The gate's calls to the attestor
//! carry the caller's own token, so they reach only the caller's tenant and its scopes.

mod common;

use std::time::Duration;

use common::{
    Harness, POLICY, SUBJECT, TENANT, UNKNOWN_BUNDLE, closed_port_url, create, evaluate, evaluate_request,
    orchestrator_scopes, prepare_attestor, stored_decision_ids, vectors, write_policy,
};
use stella_access::dev::all_scopes;
use stella_access::{AUDIENCE_GATE, Scope};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use tonic::Code;

/// The tenant that tries to reach [`TENANT`]'s data.
const OTHER_TENANT: &str = "globex";

#[tokio::test]
async fn other_tenant_sees_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let gate_dir = dir.path().join("gate");
    let gate = harness
        .gate(&gate_dir, &policy, closed_port_url(), Duration::from_secs(1))
        .await;
    let mut owner = harness.client(&gate).await;
    let mut other = harness.client_with(&gate, &harness.token(OTHER_TENANT)).await;

    create(&mut owner, "rel-a", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let owned = evaluate(&mut owner, "rel-a").await;
    assert_eq!(owned.decision, "pending", "the attestor is down");
    assert!(owned.record_id.starts_with("dr-"));

    // Each read of the owner's promotion gets the response for a promotion that does not exist.
    for (name, id) in [("owner's promotion", "rel-a"), ("missing promotion", "rel-missing")] {
        let expected = format!("promotion {id:?} does not exist");
        let get = other
            .get_promotion(pb::GetPromotionRequest {
                promotion_id: id.to_owned(),
            })
            .await
            .expect_err(name);
        let preview = other.preview_gates(evaluate_request(id)).await.expect_err(name);
        let evaluated = other.evaluate(evaluate_request(id)).await.expect_err(name);
        for (call, status) in [("GetPromotion", get), ("PreviewGates", preview), ("Evaluate", evaluated)] {
            assert_eq!(status.code(), Code::NotFound, "{name}: {call}");
            assert_eq!(status.message(), expected, "{name}: {call}");
        }
    }

    for (name, id) in [("owner's record", owned.record_id.as_str()), ("missing record", "dr-missing")] {
        let status = other
            .get_decision(pb::GetDecisionRequest {
                record_id: id.to_owned(),
            })
            .await
            .expect_err(name);
        assert_eq!(status.code(), Code::NotFound, "{name}");
        assert_eq!(status.message(), format!("decision record {id:?} does not exist"), "{name}");
    }

    // The same promotion id is free for the other tenant and leaves the owner's untouched.
    other
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: "rel-a".to_owned(),
            subject_digests: vec![common::OTHER_SUBJECT.to_owned()],
            target_environment: "strict".to_owned(),
            evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
        })
        .await
        .expect("the other tenant creates its own rel-a");
    let kept = owner
        .get_promotion(pb::GetPromotionRequest {
            promotion_id: "rel-a".to_owned(),
        })
        .await
        .expect("owner's promotion")
        .into_inner();
    assert_eq!(kept.subject_digests, vec![SUBJECT.to_owned()]);
    assert_eq!(kept.target_environment, "prod");

    // The owner still reads its record.
    let record = owner
        .get_decision(pb::GetDecisionRequest {
            record_id: owned.record_id.clone(),
        })
        .await
        .expect("owner's record")
        .into_inner();
    assert_eq!(record.record_json, owned.record_json);

    gate.stop().await;
    assert_eq!(stored_decision_ids(&gate_dir, TENANT), vec![owned.record_id.clone()]);
    assert!(stored_decision_ids(&gate_dir, OTHER_TENANT).is_empty());
}

#[tokio::test]
async fn other_tenant_cannot_use_evidence() {
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
    let mut owner = harness.client(&gate).await;
    let mut other = harness.client_with(&gate, &harness.token(OTHER_TENANT)).await;

    create(&mut owner, "rel-a", SUBJECT, "prod", &bundle_id).await;
    let allowed = evaluate(&mut owner, "rel-a").await;
    assert_eq!(allowed.decision, "allow", "reasons {:?}", allowed.reason_codes);

    // The other tenant names the owner's evidence in a promotion of its own. The gate forwards
    // the other tenant's token, so the attestor looks the bundle up under that tenant.
    create(&mut other, "rel-b", SUBJECT, "prod", &bundle_id).await;
    for response in [
        evaluate(&mut other, "rel-b").await,
        other
            .preview_gates(evaluate_request("rel-b"))
            .await
            .expect("preview")
            .into_inner(),
    ] {
        assert_eq!(response.decision, "deny");
        assert!(
            response.reason_codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()),
            "{:?}",
            response.reason_codes
        );
        assert!(response.report_digests.is_empty(), "the owner's report leaked: {:?}", response.report_digests);
    }
    gate.stop().await;
    attestor.stop().await;
}

#[tokio::test]
async fn attestor_rejection_reaches_caller() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let policy = write_policy(dir.path(), POLICY);
    let attestor = harness.attestor(&dir.path().join("attestor"), None).await;
    let gate_dir = dir.path().join("gate");
    let gate = harness
        .gate(&gate_dir, &policy, attestor.url(), Duration::from_secs(10))
        .await;

    // With every scope the call reaches the attestor, which does not have the bundle.
    let mut full = harness.client(&gate).await;
    create(&mut full, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let preview = full
        .preview_gates(evaluate_request("rel-1"))
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.decision, "deny");
    assert!(
        preview.reason_codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()),
        "{:?}",
        preview.reason_codes
    );

    let gate_scopes: Vec<Scope> = orchestrator_scopes()
        .into_iter()
        .filter(|scope| *scope != Scope::EvidenceVerify)
        .collect();
    let mut gate_only_claims = harness.authority.claims(TENANT, &all_scopes());
    gate_only_claims.audience = vec![AUDIENCE_GATE.to_owned()];
    let rows = [
        (
            "no evidence:verify",
            harness.authority.token(TENANT, &gate_scopes),
            Code::PermissionDenied,
            "attestor: ERR_AUTH_PERMISSION_DENIED: VerifyEvidence: scope check failed",
            "ERR_AUTH_PERMISSION_DENIED",
        ),
        (
            "gate audience only",
            harness.authority.token_with(&gate_only_claims),
            Code::Unauthenticated,
            "attestor: ERR_AUTH_UNAUTHENTICATED: VerifyEvidence: aud check failed",
            "ERR_AUTH_UNAUTHENTICATED",
        ),
    ];
    for (name, token, code, prefix, reason) in rows {
        let mut client = harness.client_with(&gate, &token).await;
        let evaluated = client.evaluate(evaluate_request("rel-1")).await.expect_err(name);
        let previewed = client.preview_gates(evaluate_request("rel-1")).await.expect_err(name);
        for (call, status) in [("Evaluate", evaluated), ("PreviewGates", previewed)] {
            assert_eq!(status.code(), code, "{name}: {call}: {status:?}");
            assert!(
                status.message().starts_with(prefix),
                "{name}: {call}: {:?} does not start with {prefix:?}",
                status.message()
            );
            let metadata = status
                .metadata()
                .get(REASON_CODE_METADATA_KEY)
                .and_then(|value| value.to_str().ok());
            assert_eq!(metadata, Some(reason), "{name}: {call}");
        }
    }

    gate.stop().await;
    attestor.stop().await;
    assert!(
        stored_decision_ids(&gate_dir, TENANT).is_empty(),
        "a rejected evaluation wrote a decision record"
    );
}
