//! Tenants and tokens over the real binaries.
//!
//! Tenant A runs the runbook to an `allow`. Tenant B, with a valid token and every scope, must
//! not see anything of it through either service or through the gate's calls to the attestor:
//! evidence, reports, promotions, decision records and checkpoints are rejected exactly as
//! missing ones are. Tokens without the needed scope, from another Authority key, for another audience or
//! outside their validity are rejected with the reason code of the failed check.
//!
//! The shared environment contains A's runbook and B's own trust roots and proofs. A imported the
//! proof of the DSSE case (log `log2025-alpha3`), B the proof of the message-signature case (log
//! `log2025-alpha1`), so each tenant's checkpoint list shows which log it imported.

use serde_json::Value;
use stella_access::Scope;
use stella_access::dev::{DevAuthority, all_scopes};
use stella_e2e::access::{TENANT_A, TENANT_B};
use stella_e2e::cli::{CliOutput, Stella, exit};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv};
use stella_e2e::grpc::{self, Rejection};
use stella_e2e::policy::{self, PROD};
use stella_e2e::runbook::decision_record;
use stella_e2e::tokens::TokenParts;
use stella_e2e::vectors::{DSSE_HAPPY, MSG_HAPPY, Vectors};

/// Log of the DSSE case's inclusion proof, imported by tenant A.
const ALPHA3_ORIGIN: &str = "log2025-alpha3.rekor.sigstage.dev";
/// Log of the message-signature case's inclusion proof, imported by tenant B.
const ALPHA1_ORIGIN: &str = "log2025-alpha1.rekor.sigstage.dev";

/// Promotion of tenant A that reached `allow`.
const A_PROMOTION: &str = "tenant-a-release";

/// An evidence id that no tenant registered.
const UNKNOWN_EVIDENCE: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What tenant A's runbook left behind.
struct TenantA {
    bundle_id: String,
    report_digest: String,
    record_id: String,
}

static SHARED: SharedEnv<TenantA> = SharedEnv::new();

fn shared(vectors: &Vectors) -> EnvGuard<'static, TenantA> {
    SHARED.get(|| {
        let env = Env::builder("tenants").gate(&policy::standard()).start();
        let dsse = vectors.case(DSSE_HAPPY);

        // Tenant A: the whole runbook, through the environment's default runner.
        env.install_trust(&vectors.staging_trusted_root(), &[]);
        env.install_proofs(&[&dsse.bundle()]);
        let bundle_id = env.register_case(&dsse);
        let report = env.rekor_verify(&bundle_id);
        assert_eq!(report.outcome, "verified", "{}", report.output);
        env.promotion_create(A_PROMOTION, PROD, &[&bundle_id]);
        env.preview_gates(A_PROMOTION).assert_allow();
        let decision = env.evaluate(A_PROMOTION);
        decision.assert_allow();
        env.decision_get(&decision.record_id).assert_ok();

        // Tenant B: its own trust roots and the other log's proof, no evidence.
        let b = env.operator_with(env.stella_for_tenant(TENANT_B));
        b.install_trust(&vectors.staging_trusted_root(), &[]);
        b.install_proofs(&[&vectors.case(MSG_HAPPY).bundle()]);

        let fixture = TenantA {
            bundle_id,
            report_digest: report.report_digest,
            record_id: decision.record_id,
        };
        (env, fixture)
    })
}

/// Asserts a rejected direct call with `code` and, when given, `reason_code`.
#[track_caller]
fn assert_rejection<T: std::fmt::Debug>(
    result: Result<T, Rejection>,
    code: tonic::Code,
    reason_code: Option<&str>,
) -> Rejection {
    let rejection = match result {
        Ok(value) => panic!("expected {code:?}, the call succeeded: {value:?}"),
        Err(rejection) => rejection,
    };
    assert_eq!(rejection.code, code, "{rejection:?}");
    if let Some(reason_code) = reason_code {
        assert_eq!(
            rejection.reason_code.as_deref(),
            Some(reason_code),
            "{rejection:?}"
        );
    }
    rejection
}

/// Asserts a gate rejection without a reason code (an unknown promotion or record id) and
/// returns its message.
#[track_caller]
fn assert_gate_not_found(output: &CliOutput) -> String {
    output.assert_code(exit::FAILED);
    assert_eq!(
        output.json().get("reason_code"),
        Some(&Value::Null),
        "{output}"
    );
    let message = output.error_message();
    assert!(message.contains("(NotFound)"), "{output}");
    message
}

/// Returns the origins of `rekor checkpoints --output json`.
#[track_caller]
fn listed_origins(stella: &Stella) -> Vec<String> {
    let output = stella.run_json(["rekor", "checkpoints"]);
    output.assert_ok();
    let Some(Value::Array(logs)) = output.json().get("logs").cloned() else {
        panic!("no `logs` array\n{output}");
    };
    logs.iter()
        .map(|log| match log.get("origin") {
            Some(Value::String(origin)) => origin.clone(),
            other => panic!("log without origin: {other:?}\n{output}"),
        })
        .collect()
}

#[test]
fn tenant_a_reads_own_records() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();

    // The controls of the tests below: the owner reaches everything that B must not.
    let report = env.rekor_verify(&a.bundle_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    let report_json = grpc::get_report(&env.attestor_caller(), &a.report_digest);
    assert!(report_json.is_ok_and(|json| !json.is_empty()));
    let promotion = grpc::get_promotion(&env.gate_caller(), A_PROMOTION);
    assert!(
        promotion.is_ok_and(|promotion| promotion.evidence_bundle_ids == [a.bundle_id.clone()])
    );
    let output = env.decision_get(&a.record_id);
    output.assert_ok();
    let record = decision_record(&output);
    assert_eq!(
        record.get("promotion_id").and_then(Value::as_str),
        Some(A_PROMOTION),
        "{record}"
    );
}

#[test]
fn tenant_b_cannot_verify_a_evidence() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let b = env.stella_for_tenant(TENANT_B);

    let output = b.run_json([
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        &a.bundle_id,
    ]);
    let message = output.assert_rejected(codes::EVIDENCE_NOT_FOUND);

    // A's id gets the same rejection as an id that no tenant registered, so B learns nothing.
    let unknown = b
        .run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            UNKNOWN_EVIDENCE,
        ])
        .assert_rejected(codes::EVIDENCE_NOT_FOUND);
    assert_eq!(
        message.replace(&a.bundle_id, "<id>"),
        unknown.replace(UNKNOWN_EVIDENCE, "<id>"),
        "another tenant's evidence must look missing"
    );

    let b_caller = env
        .attestor_caller()
        .with_token(&env.authority().all_scopes_token(TENANT_B));
    assert_rejection(
        grpc::verify_evidence(&b_caller, &a.bundle_id),
        tonic::Code::NotFound,
        Some(codes::EVIDENCE_NOT_FOUND),
    );
}

#[test]
fn tenant_b_cannot_read_a_report() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let b_caller = env
        .attestor_caller()
        .with_token(&env.authority().all_scopes_token(TENANT_B));

    let rejection = assert_rejection(
        grpc::get_report(&b_caller, &a.report_digest),
        tonic::Code::NotFound,
        Some(codes::EVIDENCE_NOT_FOUND),
    );
    assert!(
        !rejection.message.contains(&a.bundle_id),
        "the rejection must not reveal the report's evidence: {rejection:?}"
    );
}

#[test]
fn tenant_b_cannot_use_a_promotion() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let b = env.operator_with(env.stella_for_tenant(TENANT_B));
    let b_caller = env
        .gate_caller()
        .with_token(&env.authority().all_scopes_token(TENANT_B));

    assert_rejection(
        grpc::get_promotion(&b_caller, A_PROMOTION),
        tonic::Code::NotFound,
        None,
    );
    for record in [false, true] {
        assert_rejection(
            grpc::evaluate(&b_caller, A_PROMOTION, record),
            tonic::Code::NotFound,
            None,
        );
    }

    let preview = assert_gate_not_found(&b.preview_gates_output(A_PROMOTION));
    let unknown = assert_gate_not_found(&b.preview_gates_output("no-such-promotion"));
    assert_eq!(
        preview.replace(A_PROMOTION, "<id>"),
        unknown.replace("no-such-promotion", "<id>"),
        "another tenant's promotion must look missing"
    );
    assert_gate_not_found(&b.evaluate_output(A_PROMOTION));

    // B may use the same promotion id for its own promotion, which leaves A's untouched.
    b.promotion_create(A_PROMOTION, PROD, &[UNKNOWN_EVIDENCE]);
    let promotion = grpc::get_promotion(&env.gate_caller(), A_PROMOTION);
    assert!(
        promotion.is_ok_and(|promotion| promotion.evidence_bundle_ids == [a.bundle_id.clone()]),
        "tenant A's promotion must keep its evidence"
    );
}

#[test]
fn tenant_b_cannot_read_a_decision() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let b = env.stella_for_tenant(TENANT_B);

    let output = b.run_json(["decisions", "get", &a.record_id]);
    let message = assert_gate_not_found(&output);
    let unknown_id = "dr-00000000000000000000000000000000";
    let output = b.run_json(["decisions", "get", unknown_id]);
    let unknown = assert_gate_not_found(&output);
    assert_eq!(
        message.replace(&a.record_id, "<id>"),
        unknown.replace(unknown_id, "<id>"),
        "another tenant's decision record must look missing"
    );

    let b_caller = env
        .gate_caller()
        .with_token(&env.authority().all_scopes_token(TENANT_B));
    assert_rejection(
        grpc::get_decision(&b_caller, &a.record_id),
        tonic::Code::NotFound,
        None,
    );
}

#[test]
fn b_promotion_with_a_evidence_denied() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let b = env.operator_with(env.stella_for_tenant(TENANT_B));

    // The gate calls the attestor with B's token, so A's evidence is not found.
    let decision = b.promote("b-names-a-evidence", PROD, &[&a.bundle_id]);
    decision.assert_deny(codes::EVIDENCE_NOT_FOUND);
    let preview = b.preview_gates("b-names-a-evidence");
    preview.assert_deny(codes::EVIDENCE_NOT_FOUND);
    let output = b.decision_get(&decision.record_id);
    output.assert_code(exit::FAILED);
    assert_eq!(
        decision_record(&output)
            .get("decision")
            .and_then(Value::as_str),
        Some("deny"),
        "{output}"
    );
}

#[test]
fn checkpoint_lists_stay_per_tenant() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);

    let a_origins = listed_origins(env.stella());
    let b_origins = listed_origins(&env.stella_for_tenant(TENANT_B));
    assert!(
        a_origins.iter().any(|origin| origin == ALPHA3_ORIGIN),
        "{a_origins:?}"
    );
    assert!(
        !a_origins.iter().any(|origin| origin == ALPHA1_ORIGIN),
        "tenant A must not see B's log: {a_origins:?}"
    );
    assert!(
        b_origins.iter().any(|origin| origin == ALPHA1_ORIGIN),
        "{b_origins:?}"
    );
    assert!(
        !b_origins.iter().any(|origin| origin == ALPHA3_ORIGIN),
        "tenant B must not see A's log: {b_origins:?}"
    );

    let b_caller = env
        .attestor_caller()
        .with_token(&env.authority().all_scopes_token(TENANT_B));
    let listing = match grpc::list_checkpoints(&b_caller) {
        Ok(listing) => listing,
        Err(rejection) => panic!("ListCheckpoints as tenant B failed: {rejection:?}"),
    };
    let origins: Vec<&str> = listing.logs.iter().map(|log| log.origin.as_str()).collect();
    assert_eq!(origins, [ALPHA1_ORIGIN], "{listing:?}");
}

#[test]
fn token_without_needed_scope_denied() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();

    // `promotion:break-glass` is needed by no call yet, so this token opens nothing. A token
    // whose scope claim is empty is malformed instead: see `invalid_tokens_unauthenticated`.
    let stella = env.stella_with_scopes(TENANT_A, &[Scope::PromotionBreakGlass]);

    let output = stella.run_json([
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        &a.bundle_id,
    ]);
    let message = output.assert_rejected(codes::AUTH_PERMISSION_DENIED);
    assert!(message.contains("evidence:verify"), "{output}");
    stella
        .run_json(["rekor", "checkpoints"])
        .assert_rejected(codes::AUTH_PERMISSION_DENIED);
    stella
        .run_json(["decisions", "get", &a.record_id])
        .assert_rejected(codes::AUTH_PERMISSION_DENIED);
    stella
        .run_json([
            "promotion",
            "preview-gates",
            "--promotion",
            A_PROMOTION,
            "--offline-rekor",
        ])
        .assert_rejected(codes::AUTH_PERMISSION_DENIED);

    // One scope opens its calls and no other: reading reports is not verifying.
    let reader = env
        .attestor_caller()
        .with_token(&env.authority().token(TENANT_A, &[Scope::ReportsRead]));
    assert!(grpc::get_report(&reader, &a.report_digest).is_ok());
    assert_rejection(
        grpc::verify_evidence(&reader, &a.bundle_id),
        tonic::Code::PermissionDenied,
        Some(codes::AUTH_PERMISSION_DENIED),
    );
}

#[test]
fn invalid_tokens_unauthenticated() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let authority = env.authority().dev();
    let now = authority.claims(TENANT_A, &all_scopes()).issued_at;

    let other_authority = DevAuthority::generate();
    let mut tokens: Vec<(&str, String)> = vec![(
        "another Authority key",
        other_authority.token(TENANT_A, &all_scopes()),
    )];

    let mut claims = authority.claims(TENANT_A, &all_scopes());
    claims.issued_at = now - 7200;
    claims.not_before = now - 7200;
    claims.expires_at = now - 3600;
    tokens.push(("expired an hour ago", authority.token_with(&claims)));

    let mut claims = authority.claims(TENANT_A, &all_scopes());
    claims.not_before = now + 3600;
    claims.expires_at = now + 7200;
    tokens.push(("valid from an hour on", authority.token_with(&claims)));

    let mut claims = authority.claims(TENANT_A, &all_scopes());
    claims.issuer = "another-authority".to_owned();
    tokens.push(("another issuer", authority.token_with(&claims)));

    // A token for the gate alone, replayed to the attestor.
    let mut claims = authority.claims(TENANT_A, &all_scopes());
    claims.audience = vec![stella_access::AUDIENCE_GATE.to_owned()];
    tokens.push(("gate audience only", authority.token_with(&claims)));

    let valid = TokenParts::decode(&env.authority().all_scopes_token(TENANT_A));
    let mut none = valid.clone();
    none.header["alg"] = Value::String("none".to_owned());
    tokens.push(("alg none", none.with_signature(&[])));
    let mut hs256 = valid.clone();
    hs256.header["alg"] = Value::String("HS256".to_owned());
    tokens.push(("alg HS256", hs256.with_signature(&[0x5a; 32])));
    // `mint` returns an error for an empty scope list, so this token is signed by hand with the
    // environment's key. The validator rejects the empty claim as malformed.
    let mut empty_scope = valid.clone();
    empty_scope.payload["scope"] = Value::String(String::new());
    tokens.push((
        "empty scope claim",
        empty_scope.sign(authority.signing_key()),
    ));
    let mut unknown_kid = valid.clone();
    unknown_kid.header["kid"] = Value::String("unknown-key".to_owned());
    tokens.push(("unknown kid", unknown_kid.sign(authority.signing_key())));

    for (case, token) in &tokens {
        let stella = env.stella().clone().token(token);
        let output = stella.run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            &a.bundle_id,
        ]);
        assert_eq!(
            output.code,
            exit::FAILED,
            "case {case}: unexpected exit code\n{output}"
        );
        assert_eq!(
            output.error_reason_code(),
            codes::AUTH_UNAUTHENTICATED,
            "case {case}\n{output}"
        );
        assert!(
            !output.stdout.contains(token.as_str()) && !output.stderr.contains(token.as_str()),
            "case {case}: the message must not repeat the token\n{output}"
        );
    }

    // The same Authority key's tokens for the attestor audience still work, so the rejections
    // above come from the changed claims.
    let report = env.rekor_verify(&a.bundle_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);

    // No token at all, to each service.
    let without = env.stella_without_token();
    without
        .run_json(["rekor", "checkpoints"])
        .assert_rejected(codes::AUTH_UNAUTHENTICATED);
    without
        .run_json(["decisions", "get", &a.record_id])
        .assert_rejected(codes::AUTH_UNAUTHENTICATED);

    // The token of another Authority key, to the gate.
    env.stella()
        .clone()
        .token(&other_authority.token(TENANT_A, &all_scopes()))
        .run_json(["decisions", "get", &a.record_id])
        .assert_rejected(codes::AUTH_UNAUTHENTICATED);

    let log = env.attestor().log_text();
    for (case, token) in &tokens {
        assert!(
            !log.contains(token.as_str()),
            "case {case}: the attestor logged the token"
        );
    }
}

#[test]
fn gate_caller_without_verify_scope_gets_no_decision() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let a = env.fixture();
    let promotion = "forwarding-check";
    env.promotion_create(promotion, PROD, &[&a.bundle_id]);

    // Enough for every gate call, but the gate forwards this token to the attestor, whose
    // VerifyEvidence needs `evidence:verify`.
    let gate_scopes = [
        Scope::PromotionPreview,
        Scope::PromotionEvaluate,
        Scope::DecisionsRead,
    ];
    let orchestrator = env.operator_with(env.stella_with_scopes(TENANT_A, &gate_scopes));
    let recorded = |env: &Env| {
        env.gate()
            .log_text()
            .lines()
            .filter(|line| line.contains("decision recorded") && line.contains(promotion))
            .count()
    };

    for output in [
        orchestrator.evaluate_output(promotion),
        orchestrator.preview_gates_output(promotion),
    ] {
        let message = output.assert_rejected(codes::AUTH_PERMISSION_DENIED);
        assert!(message.contains("attestor: "), "{output}");
        assert!(output.json().get("record_id").is_none(), "{output}");
    }
    let token = env.authority().token(TENANT_A, &gate_scopes);
    let rejection = assert_rejection(
        grpc::evaluate(&env.gate_caller().with_token(&token), promotion, true),
        tonic::Code::PermissionDenied,
        Some(codes::AUTH_PERMISSION_DENIED),
    );
    assert!(rejection.message.starts_with("attestor: "), "{rejection:?}");
    assert_eq!(
        recorded(&env),
        0,
        "a rejected caller must get no decision record"
    );

    // Control: with `evidence:verify` added, the same promotion is decided and recorded.
    let mut scopes = gate_scopes.to_vec();
    scopes.push(Scope::EvidenceVerify);
    let allowed = env.operator_with(env.stella_with_scopes(TENANT_A, &scopes));
    allowed.evaluate(promotion).assert_allow();
    assert_eq!(
        recorded(&env),
        1,
        "the allowed evaluation must be recorded once"
    );
}

#[test]
fn same_evidence_registered_per_tenant() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    // An owned environment: B registers A's evidence here, which the shared one must not see.
    let env = Env::builder("tenants-same-evidence")
        .gate(&policy::standard())
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    let b = env.operator_with(env.stella_for_tenant(TENANT_B));
    for operator in [&*env, &b] {
        operator.install_trust(&vectors.staging_trusted_root(), &[]);
        operator.install_proofs(&[&dsse.bundle()]);
    }

    let a_id = env.register_case(&dsse);
    let bundle = b.evidence_pack(&b.scratch("evidence-b"), &[&dsse.bundle()]);
    let registered = b.evidence_verify(&bundle);
    registered.assert_ok();
    assert_eq!(registered.str_field("bundle_id"), a_id, "{registered}");
    assert!(
        !registered.bool_field("already_registered"),
        "tenant B's registration must not find tenant A's\n{registered}"
    );

    // Each tenant reaches an allow with its own copy.
    let report = b.rekor_verify(&a_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    b.promote("b-own-evidence", PROD, &[&a_id]).assert_allow();
    env.promote("a-own-evidence", PROD, &[&a_id]).assert_allow();
}
