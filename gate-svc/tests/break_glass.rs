//! Break-glass overrides over real gRPC: a real attestor with the conformance suite's evidence,
//! the gate on a loopback port with its RocksDB in a temporary directory, and tokens of the
//! development Authority.
//!
//! The promotions name the subject [`OTHER_SUBJECT`], which the evidence does not cover, so the
//! standard decision is a deny that an override turns into an allow.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{
    Gate, Harness, OTHER_SUBJECT, Running, SUBJECT, TENANT, create, evaluate, evaluate_request,
    orchestrator_scopes, prepare_attestor, vectors, write_policy,
};
use stella_access::Scope;
use stella_access::dev::all_scopes;
use stella_client::cli::decision_chain::{TrustedKey, verify_chain};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use tonic::Code;

/// `prod` allows overrides of up to 4 hours; `locked` has the same requirement and no
/// `break_glass` section.
const POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/.+\.yml@refs/heads/main/
        issuer: https://token.actions.githubusercontent.com
    break_glass:
      max_duration: 4h
  locked:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/.+\.yml@refs/heads/main/
        issuer: https://token.actions.githubusercontent.com
"#;

const FOUR_HOURS: u64 = 4 * 3600;
const MARKER: &str = "BREAK_GLASS_OVERRIDE";
const REFUSED: &str = "ERR_BREAK_GLASS_REFUSED";

/// A running attestor with registered evidence and a gate in front of it.
struct Setup {
    dir: tempfile::TempDir,
    harness: Harness,
    attestor: Running,
    gate: Running,
    bundle_id: String,
}

impl Setup {
    /// Starts both services and registers the evidence as tenant [`TENANT`]. Returns `None`
    /// when the test vectors are absent.
    async fn start() -> Option<Setup> {
        let vectors = vectors()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let harness = Harness::new(dir.path());
        let policy = write_policy(dir.path(), POLICY);
        let attestor = harness.attestor(&dir.path().join("attestor"), None).await;
        let mut attestor_client = harness
            .attestor_client_with(&attestor, &harness.token(TENANT))
            .await;
        let bundle_id = prepare_attestor(&mut attestor_client, &vectors).await;
        let gate = harness
            .gate(
                &dir.path().join("gate"),
                &policy,
                attestor.url(),
                Duration::from_secs(10),
            )
            .await;
        Some(Setup {
            dir,
            harness,
            attestor,
            gate,
            bundle_id,
        })
    }

    fn gate_dir(&self) -> PathBuf {
        self.dir.path().join("gate")
    }

    /// Connects as tenant [`TENANT`] with every scope.
    async fn client(&self) -> Gate {
        self.harness.client(&self.gate).await
    }

    /// Connects as `tenant` with exactly `scopes`.
    async fn client_with(&self, tenant: &str, scopes: &[Scope]) -> Gate {
        let token = self.harness.authority.token(tenant, scopes);
        self.harness.client_with(&self.gate, &token).await
    }

    /// Creates a promotion to `target` whose subject the evidence does not cover.
    async fn create_denied(&self, client: &mut Gate, promotion_id: &str, target: &str) {
        create(client, promotion_id, OTHER_SUBJECT, target, &self.bundle_id).await;
    }

    async fn stop(self) {
        self.gate.stop().await;
        self.attestor.stop().await;
    }
}

fn break_glass(reason: &str, ticket: &str, duration_seconds: u64) -> pb::BreakGlassRequest {
    pb::BreakGlassRequest {
        reason: reason.to_owned(),
        ticket: ticket.to_owned(),
        duration_seconds,
    }
}

fn override_request(promotion_id: &str, request: pb::BreakGlassRequest) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        break_glass: Some(request),
        ..evaluate_request(promotion_id)
    }
}

fn preview_request(promotion_id: &str, evaluation_time: i64) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        evaluation_time,
        ..evaluate_request(promotion_id)
    }
}

async fn preview_at(
    client: &mut Gate,
    promotion_id: &str,
    evaluation_time: i64,
) -> pb::EvaluateResponse {
    client
        .preview_gates(preview_request(promotion_id, evaluation_time))
        .await
        .expect("preview")
        .into_inner()
}

fn reason_code(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
}

/// Asserts a standard deny: no marker and no override block.
#[track_caller]
fn assert_standard_deny(response: &pb::EvaluateResponse) {
    assert_eq!(response.decision, "deny", "{response:?}");
    assert!(
        !response.reason_codes.iter().any(|code| code == MARKER),
        "{:?}",
        response.reason_codes
    );
    assert_eq!(response.break_glass, None);
    let record: serde_json::Value =
        serde_json::from_slice(&response.record_json).expect("record JSON");
    assert!(record["break_glass"].is_null(), "{record}");
}

/// Evaluates `promotion_id` with a break-glass request that the gate must accept.
async fn grant_override(
    client: &mut Gate,
    promotion_id: &str,
    reason: &str,
    ticket: &str,
    duration_seconds: u64,
) -> pb::EvaluateResponse {
    client
        .evaluate(override_request(
            promotion_id,
            break_glass(reason, ticket, duration_seconds),
        ))
        .await
        .expect("break-glass evaluation")
        .into_inner()
}

/// Returns the decision records of the client's tenant, in sequence order.
async fn records(client: &mut Gate) -> Vec<pb::DecisionRecord> {
    client
        .list_decisions(pb::ListDecisionsRequest {
            after_sequence: 0,
            page_size: 0,
        })
        .await
        .expect("list decisions")
        .into_inner()
        .records
}

/// Returns the number of decision records of the client's tenant.
async fn record_count(client: &mut Gate) -> usize {
    records(client).await.len()
}

#[tokio::test]
async fn override_allows_with_marker() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    let standard = evaluate(&mut client, "rel-1").await;
    assert_standard_deny(&standard);
    assert!(!standard.reason_codes.is_empty());

    let response = grant_override(&mut client, "rel-1", "hotfix for outage", "INC-42", 3600).await;
    assert_eq!(response.decision, "allow");
    let mut expected_codes = standard.reason_codes.clone();
    expected_codes.push(MARKER.to_owned());
    expected_codes.sort();
    assert_eq!(
        response.reason_codes, expected_codes,
        "original codes and the marker"
    );

    let block = response
        .break_glass
        .clone()
        .expect("break_glass block in the response");
    assert_eq!(block.reason, "hotfix for outage");
    assert_eq!(block.ticket, "INC-42");
    assert_eq!(block.requested_by, format!("dev-user@{TENANT}"));
    assert_eq!(block.expires_at - block.issued_at, 3600);
    assert_eq!(block.overridden_decision, "deny");
    assert_eq!(block.overridden_reason_codes, standard.reason_codes);
    assert_eq!(
        response.gates, standard.gates,
        "gate results stay as evaluated"
    );

    let stored = client
        .get_decision(pb::GetDecisionRequest {
            record_id: response.record_id.clone(),
        })
        .await
        .expect("get decision")
        .into_inner();
    assert_eq!(stored.record_json, response.record_json);
    let record: serde_json::Value =
        serde_json::from_slice(&stored.record_json).expect("record JSON");
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["reason_codes"], serde_json::json!(expected_codes));
    let record_block = &record["break_glass"];
    assert_eq!(record_block["reason"], "hotfix for outage");
    assert_eq!(record_block["ticket"], "INC-42");
    assert_eq!(record_block["requested_by"], format!("dev-user@{TENANT}"));
    assert_eq!(record_block["overridden_decision"], "deny");
    assert_eq!(
        record_block["overridden_reason_codes"],
        serde_json::json!(standard.reason_codes)
    );
    assert!(
        record_block["issued_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{record}"
    );
    assert!(
        record_block["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')),
        "{record}"
    );

    // Every later evaluation and preview inside the window is overridden too.
    let later = evaluate(&mut client, "rel-1").await;
    assert_eq!(later.decision, "allow");
    assert_eq!(later.reason_codes, expected_codes);
    assert_eq!(
        later
            .break_glass
            .as_ref()
            .map(|block| block.ticket.as_str()),
        Some("INC-42")
    );
    let preview = client
        .preview_gates(evaluate_request("rel-1"))
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.decision, "allow");
    assert_eq!(
        preview
            .break_glass
            .as_ref()
            .map(|block| block.ticket.as_str()),
        Some("INC-42")
    );

    // The chain still verifies, and the verifier names the overridden records.
    let key = client
        .get_signing_key(pb::GetSigningKeyRequest {})
        .await
        .expect("signing key")
        .into_inner();
    let key = TrustedKey::from_pem(&key.public_key_pem).expect("public key PEM");
    let records = records(&mut client).await;
    let chain = verify_chain(
        records.iter().map(|record| record.envelope_json.as_slice()),
        &key,
    )
    .expect("chain verifies");
    assert_eq!(chain.count, 3);
    assert_eq!(
        chain.break_glass_record_ids,
        vec![response.record_id.clone(), later.record_id.clone()]
    );
    setup.stop().await;
}

#[tokio::test]
async fn override_needs_scope() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;

    let mut without_scope = setup.client_with(TENANT, &orchestrator_scopes()).await;
    let status = without_scope
        .evaluate(override_request(
            "rel-1",
            break_glass("hotfix", "INC-42", 3600),
        ))
        .await
        .expect_err("override without the break-glass scope");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(reason_code(&status), Some("ERR_AUTH_PERMISSION_DENIED"));
    assert!(
        status.message().contains("promotion:break-glass"),
        "{}",
        status.message()
    );
    assert_eq!(
        record_count(&mut client).await,
        0,
        "a refused request writes no record"
    );

    // The break-glass scope alone is not enough: Evaluate needs promotion:evaluate first.
    let mut only_break_glass = setup
        .client_with(TENANT, &[Scope::PromotionBreakGlass, Scope::EvidenceVerify])
        .await;
    let status = only_break_glass
        .evaluate(override_request(
            "rel-1",
            break_glass("hotfix", "INC-42", 3600),
        ))
        .await
        .expect_err("override without the evaluate scope");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("promotion:evaluate"),
        "{}",
        status.message()
    );

    assert_standard_deny(&evaluate(&mut client, "rel-1").await);
    setup.stop().await;
}

#[tokio::test]
async fn refusals_write_nothing() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    setup
        .create_denied(&mut client, "rel-locked", "locked")
        .await;

    let long_reason = "r".repeat(1025);
    let cases = [
        (
            "missing reason",
            "rel-1",
            break_glass("", "INC-42", 3600),
            Code::InvalidArgument,
            "reason",
        ),
        (
            "blank reason",
            "rel-1",
            break_glass("  \n", "INC-42", 3600),
            Code::InvalidArgument,
            "reason",
        ),
        (
            "long reason",
            "rel-1",
            break_glass(&long_reason, "INC-42", 3600),
            Code::InvalidArgument,
            "1025 bytes",
        ),
        (
            "missing ticket",
            "rel-1",
            break_glass("hotfix", "", 3600),
            Code::InvalidArgument,
            "ticket",
        ),
        (
            "control ticket",
            "rel-1",
            break_glass("hotfix", "INC\t42", 3600),
            Code::InvalidArgument,
            "ASCII",
        ),
        (
            "zero duration",
            "rel-1",
            break_glass("hotfix", "INC-42", 0),
            Code::InvalidArgument,
            "0 seconds",
        ),
        (
            "duration over max",
            "rel-1",
            break_glass("hotfix", "INC-42", FOUR_HOURS + 1),
            Code::FailedPrecondition,
            "break_glass.max_duration",
        ),
        (
            "environment without break_glass",
            "rel-locked",
            break_glass("hotfix", "INC-42", 60),
            Code::FailedPrecondition,
            "\"locked\"",
        ),
    ];
    for (case, promotion_id, request, code, message_part) in cases {
        let status = client
            .evaluate(override_request(promotion_id, request))
            .await
            .expect_err(case);
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert_eq!(reason_code(&status), Some(REFUSED), "{case}: {status:?}");
        assert!(
            status.message().starts_with(REFUSED),
            "{case}: {}",
            status.message()
        );
        assert!(
            status.message().contains(message_part),
            "{case}: {}",
            status.message()
        );
    }
    assert_eq!(
        record_count(&mut client).await,
        0,
        "refused requests write no record"
    );

    // The maximum itself is accepted.
    let accepted = grant_override(&mut client, "rel-1", "hotfix", "INC-42", FOUR_HOURS).await;
    assert_eq!(accepted.decision, "allow");
    assert_standard_deny(&evaluate(&mut client, "rel-locked").await);
    setup.stop().await;
}

#[tokio::test]
async fn refusal_stores_no_override() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    let status = client
        .evaluate(override_request(
            "rel-1",
            break_glass("hotfix", "INC-42", FOUR_HOURS + 1),
        ))
        .await
        .expect_err("duration over the maximum");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let gate_dir = setup.gate_dir();
    setup.stop().await;

    // With the gate stopped, the database shows neither an override nor a record.
    let store = stella_gate::store::Store::open(&gate_dir).expect("open the gate database");
    let tenant = stella_access::Tenant::parse(TENANT).expect("valid tenant");
    let tenant_store = store.for_tenant(&tenant);
    assert_eq!(
        tenant_store
            .override_at("rel-1", i64::MAX)
            .expect("read overrides"),
        None
    );
    assert!(
        tenant_store
            .decision_ids()
            .expect("list records")
            .is_empty()
    );
}

#[tokio::test]
async fn override_stays_with_promotion() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    setup.create_denied(&mut client, "rel-10", "prod").await;
    let response = grant_override(&mut client, "rel-1", "hotfix", "INC-42", 3600).await;
    assert_eq!(response.decision, "allow");

    assert_standard_deny(&evaluate(&mut client, "rel-10").await);
    let preview = client
        .preview_gates(evaluate_request("rel-10"))
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.decision, "deny");
    assert_eq!(preview.break_glass, None);
    setup.stop().await;
}

#[tokio::test]
async fn override_stays_with_tenant() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut acme = setup.client().await;
    setup.create_denied(&mut acme, "rel-1", "prod").await;
    let granted = grant_override(&mut acme, "rel-1", "hotfix", "INC-42", 3600).await;
    assert_eq!(granted.decision, "allow");

    // Another tenant with every scope and a promotion of the same id gets its own decision.
    let mut globex = setup.client_with("globex", &all_scopes()).await;
    setup.create_denied(&mut globex, "rel-1", "prod").await;
    let response = evaluate(&mut globex, "rel-1").await;
    assert_standard_deny(&response);
    let status = globex
        .get_decision(pb::GetDecisionRequest {
            record_id: granted.record_id.clone(),
        })
        .await
        .expect_err("another tenant's record");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        record_count(&mut globex).await,
        1,
        "only globex's own record"
    );
    setup.stop().await;
}

#[tokio::test]
async fn preview_after_expiry_standard() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    let granted = grant_override(&mut client, "rel-1", "hotfix", "INC-42", 3600).await;
    let block = granted.break_glass.expect("break_glass block");

    let last_second = preview_at(&mut client, "rel-1", block.expires_at - 1).await;
    assert_eq!(last_second.decision, "allow");
    assert_eq!(
        last_second.break_glass.as_ref().map(|b| b.ticket.as_str()),
        Some("INC-42")
    );
    assert_eq!(last_second.evaluation_time, block.expires_at - 1);

    let at_expiry = preview_at(&mut client, "rel-1", block.expires_at).await;
    assert_eq!(at_expiry.decision, "deny", "{at_expiry:?}");
    assert_eq!(at_expiry.break_glass, None);
    assert!(!at_expiry.reason_codes.iter().any(|code| code == MARKER));

    let before_issue = preview_at(&mut client, "rel-1", block.issued_at - 1).await;
    assert_eq!(before_issue.decision, "deny", "{before_issue:?}");
    assert_eq!(before_issue.break_glass, None);
    setup.stop().await;
}

#[tokio::test]
async fn override_expires() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    let granted = grant_override(&mut client, "rel-1", "hotfix", "INC-42", 2).await;
    assert_eq!(granted.decision, "allow");
    let expires_at = granted.break_glass.expect("break_glass block").expires_at;

    // Wait until the gate's clock, in whole seconds, has reached the expiry.
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if now >= expires_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expired = evaluate(&mut client, "rel-1").await;
    assert_standard_deny(&expired);
    setup.stop().await;
}

#[tokio::test]
async fn preview_rejects_override_request() {
    let Some(setup) = Setup::start().await else {
        return;
    };
    let mut client = setup.client().await;
    setup.create_denied(&mut client, "rel-1", "prod").await;
    let status = client
        .preview_gates(override_request(
            "rel-1",
            break_glass("hotfix", "INC-42", 3600),
        ))
        .await
        .expect_err("preview with break_glass");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_code(&status), Some(REFUSED));
    assert_standard_deny(&evaluate(&mut client, "rel-1").await);

    // A promotion whose evidence covers its subject is a standard allow, without the marker.
    create(&mut client, "rel-ok", SUBJECT, "prod", &setup.bundle_id).await;
    let allowed = evaluate(&mut client, "rel-ok").await;
    assert_eq!(allowed.decision, "allow", "{allowed:?}");
    assert!(allowed.reason_codes.is_empty());
    assert_eq!(allowed.break_glass, None);
    setup.stop().await;
}
