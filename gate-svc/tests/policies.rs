//! Policy versions per tenant over real gRPC: `ImportPolicy` and `GetPolicy`, and the version
//! that decides each evaluation. The attestor is down, so each environment's
//! `on_attestor_unavailable` decides: a version that sets it to `pending` and one that leaves
//! the default `deny` give different decisions for the same promotion.

mod common;

use common::{Gate, Harness, POLICY, SUBJECT, TENANT, UNKNOWN_BUNDLE, create, evaluate, evaluate_request};
use stella_access::Scope;
use stella_access::dev::all_scopes;
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use tonic::{Code, Status};

/// Decides `pending` in `prod` while the attestor is unavailable.
const PENDING_POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
    on_attestor_unavailable: pending
"#;

/// Decides `deny` in `prod` while the attestor is unavailable (the default).
const DENY_POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
"#;

/// Invalid at line 6, column 23: `maybe` is neither `deny` nor `pending`.
const INVALID_POLICY: &str = r#"environments:
  prod:
    require:
      - identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
    on_missing_proof: maybe
"#;

/// The tenant that must not see [`TENANT`]'s policies.
const OTHER_TENANT: &str = "globex";

fn digest_of(text: &str) -> String {
    format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())))
}

async fn import(client: &mut Gate, file_name: &str, text: &str) -> Result<pb::PolicyVersion, Status> {
    client
        .import_policy(pb::ImportPolicyRequest {
            policy_yaml: text.as_bytes().to_vec(),
            file_name: file_name.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_policy(client: &mut Gate, digest: &str) -> Result<pb::PolicyDocument, Status> {
    client
        .get_policy(pb::GetPolicyRequest {
            digest: digest.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn reason_code(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
}

fn record_policy_digest(response: &pb::EvaluateResponse) -> String {
    let record: serde_json::Value = serde_json::from_slice(&response.record_json).expect("record JSON");
    record["policy_digest"].as_str().expect("policy_digest").to_owned()
}

#[tokio::test]
async fn versions_decide_evaluations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    // Before any import, the site-wide default decides and is shown as version 0.
    let default = get_policy(&mut client, "").await.expect("get default policy");
    assert_eq!(default.version, 0);
    assert!(default.active);
    assert_eq!(default.digest, digest_of(POLICY));
    assert_eq!(default.policy_yaml, POLICY.as_bytes());
    let before = evaluate(&mut client, "rel-1").await;
    assert_eq!(before.policy_digest, digest_of(POLICY));
    assert_eq!(record_policy_digest(&before), digest_of(POLICY));

    let v1 = import(&mut client, "pending.yaml", PENDING_POLICY).await.expect("import v1");
    assert_eq!(v1.version, 1);
    assert_eq!(v1.digest, digest_of(PENDING_POLICY));
    assert!(!v1.already_active);
    let first = evaluate(&mut client, "rel-1").await;
    assert_eq!(first.decision, "pending");
    assert_eq!(first.policy_digest, v1.digest);
    assert_eq!(record_policy_digest(&first), v1.digest);

    let v2 = import(&mut client, "deny.yaml", DENY_POLICY).await.expect("import v2");
    assert_eq!(v2.version, 2);
    let second = evaluate(&mut client, "rel-1").await;
    assert_eq!(second.decision, "deny");
    assert_eq!(second.policy_digest, v2.digest);
    assert_eq!(record_policy_digest(&second), v2.digest);

    let again = import(&mut client, "deny.yaml", DENY_POLICY).await.expect("import v2 again");
    assert!(again.already_active);
    assert_eq!(again.version, 2);
    assert_eq!(again.digest, v2.digest);

    // An older document imported again becomes active under a new version number.
    let back = import(&mut client, "pending.yaml", PENDING_POLICY).await.expect("import v1 again");
    assert!(!back.already_active);
    assert_eq!(back.version, 3);
    assert_eq!(back.digest, v1.digest);
    assert_eq!(evaluate(&mut client, "rel-1").await.decision, "pending");

    let active = get_policy(&mut client, "").await.expect("get active policy");
    assert_eq!(active.digest, v1.digest);
    assert_eq!(active.version, 3);
    assert!(active.active);
    let older = get_policy(&mut client, &v2.digest).await.expect("get v2");
    assert_eq!(older.version, 2);
    assert!(!older.active);
    assert_eq!(older.policy_yaml, DENY_POLICY.as_bytes());
    let site = get_policy(&mut client, &digest_of(POLICY)).await.expect("get the default by digest");
    assert_eq!(site.version, 0);
    assert!(!site.active, "the tenant's imported version replaced the default");
    gate.stop().await;
}

#[tokio::test]
async fn preview_with_older_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let v1 = import(&mut client, "pending.yaml", PENDING_POLICY).await.expect("import v1");
    import(&mut client, "deny.yaml", DENY_POLICY).await.expect("import v2");

    let active = client
        .preview_gates(evaluate_request("rel-1"))
        .await
        .expect("preview with the active version")
        .into_inner();
    assert_eq!(active.decision, "deny");
    let older = client
        .preview_gates(pb::EvaluateRequest {
            policy_digest: v1.digest.clone(),
            ..evaluate_request("rel-1")
        })
        .await
        .expect("preview with v1")
        .into_inner();
    assert_eq!(older.decision, "pending");
    assert_eq!(older.policy_digest, v1.digest);
    let body: serde_json::Value = serde_json::from_slice(&older.record_json).expect("preview JSON");
    assert_eq!(body["policy_digest"], v1.digest.as_str());

    let site = client
        .preview_gates(pb::EvaluateRequest {
            policy_digest: digest_of(POLICY),
            ..evaluate_request("rel-1")
        })
        .await
        .expect("preview with the site-wide default")
        .into_inner();
    assert_eq!(site.policy_digest, digest_of(POLICY));
    gate.stop().await;
}

#[tokio::test]
async fn invalid_policy_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut client = harness.client(&gate).await;
    let v1 = import(&mut client, "pending.yaml", PENDING_POLICY).await.expect("import v1");

    let status = import(&mut client, "bad.yaml", INVALID_POLICY)
        .await
        .expect_err("invalid policy accepted");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_code(&status), Some("ERR_POLICY_INVALID"));
    assert!(
        status.message().starts_with("ERR_POLICY_INVALID: bad.yaml:6:"),
        "the message does not name the file and line: {:?}",
        status.message()
    );
    assert!(status.message().contains("on_missing_proof"), "{:?}", status.message());

    let oversized = format!("{PENDING_POLICY}#{}\n", "x".repeat(1024 * 1024));
    let status = import(&mut client, "big.yaml", &oversized).await.expect_err("oversized policy accepted");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_code(&status), Some("ERR_POLICY_INVALID"));
    assert!(status.message().contains("big.yaml"), "{:?}", status.message());

    let status = import(&mut client, "", "environments: [").await.expect_err("broken YAML accepted");
    assert_eq!(reason_code(&status), Some("ERR_POLICY_INVALID"));
    assert!(status.message().contains("policy.yaml"), "an unnamed document is policy.yaml: {:?}", status.message());

    let active = get_policy(&mut client, "").await.expect("get active policy");
    assert_eq!(active.digest, v1.digest);
    assert_eq!(active.version, 1);
    let status = get_policy(&mut client, &digest_of(INVALID_POLICY)).await.expect_err("invalid policy stored");
    assert_eq!(status.code(), Code::NotFound);
    // A rejected import takes no version number.
    let v2 = import(&mut client, "deny.yaml", DENY_POLICY).await.expect("import v2");
    assert_eq!(v2.version, 2);
    gate.stop().await;
}

#[tokio::test]
async fn tenants_see_only_own_policies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let mut owner = harness.client(&gate).await;
    let mut other = harness.client_with(&gate, &harness.token(OTHER_TENANT)).await;
    let imported = import(&mut owner, "deny.yaml", DENY_POLICY).await.expect("import");

    let unknown = format!("sha256:{}", "0".repeat(64));
    for (name, digest) in [("owner's version", imported.digest.as_str()), ("unknown digest", unknown.as_str())] {
        let status = get_policy(&mut other, digest).await.expect_err(name);
        assert_eq!(status.code(), Code::NotFound, "{name}");
        assert_eq!(
            status.message(),
            format!(
                "policy {digest} does not exist: it is neither a version imported by this tenant nor the gate's default policy"
            ),
            "{name}"
        );
    }
    let visible = get_policy(&mut other, "").await.expect("other tenant's active policy");
    assert_eq!(visible.version, 0, "the other tenant still uses the site-wide default");
    assert_eq!(visible.digest, digest_of(POLICY));

    create(&mut other, "rel-b", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let status = other
        .preview_gates(pb::EvaluateRequest {
            policy_digest: imported.digest.clone(),
            ..evaluate_request("rel-b")
        })
        .await
        .expect_err("preview with another tenant's version");
    assert_eq!(status.code(), Code::NotFound);
    let evaluated = evaluate(&mut other, "rel-b").await;
    assert_eq!(evaluated.policy_digest, digest_of(POLICY));
    assert_eq!(evaluated.decision, "pending", "the default's prod section sets pending");

    // The same document imported by the other tenant is its own version 1.
    let own = import(&mut other, "deny.yaml", DENY_POLICY).await.expect("import by the other tenant");
    assert_eq!(own.version, 1);
    assert!(!own.already_active);
    gate.stop().await;
}

#[tokio::test]
async fn import_needs_policy_scope() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = Harness::new(dir.path());
    let gate = harness.gate_with_attestor_down(dir.path()).await;
    let without: Vec<Scope> = all_scopes()
        .into_iter()
        .filter(|scope| *scope != Scope::PolicyImport)
        .collect();
    let mut denied = harness.client_with(&gate, &harness.authority.token(TENANT, &without)).await;

    let status = import(&mut denied, "deny.yaml", DENY_POLICY).await.expect_err("import without the scope");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_code(&status), Some("ERR_AUTH_PERMISSION_DENIED"));
    assert!(status.message().contains("policy:import"), "{:?}", status.message());
    let active = get_policy(&mut denied, "").await.expect("GetPolicy needs only promotion:preview");
    assert_eq!(active.version, 0, "the rejected import stored nothing");

    let mut reader = harness
        .client_with(&gate, &harness.authority.token(TENANT, &[Scope::PromotionPreview]))
        .await;
    assert_eq!(get_policy(&mut reader, "").await.expect("get policy").version, 0);
    let mut importer = harness
        .client_with(&gate, &harness.authority.token(TENANT, &[Scope::PolicyImport]))
        .await;
    assert_eq!(import(&mut importer, "deny.yaml", DENY_POLICY).await.expect("import").version, 1);
    gate.stop().await;
}
