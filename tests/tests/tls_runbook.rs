//! The runbook over TLS: both services serve certificates of a development PKI, the attestor
//! requires a client certificate of that PKI (mutual TLS), the gate presents one to it, and
//! `stella` uses `https://` URLs with `--tls-ca`, `--tls-cert` and `--tls-key`.

use serde_json::Value;
use stella_e2e::access::Transport;
use stella_e2e::cli::exit;
use stella_e2e::codes;
use stella_e2e::env::Env;
use stella_e2e::policy::{self, PROD};
use stella_e2e::runbook::{LONG_EXPIRY, decision_record, path_arg};
use stella_e2e::subject_digest;
use stella_e2e::vectors::{DSSE_HAPPY, MSG_HAPPY, Vectors};

#[test]
fn runbook_over_mutual_tls_allows() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("tls-runbook")
        .gate(&policy::standard())
        .transport(Transport::MutualTls)
        .start();
    let stella = env.stella();
    assert!(stella.attestor_url().starts_with("https://"), "{stella:?}");
    assert!(stella.gate_url().starts_with("https://"), "{stella:?}");
    assert!(
        stella
            .tls_settings()
            .is_some_and(|tls| tls.identity.is_some()),
        "the runner must present the client certificate: {stella:?}"
    );
    let dsse = vectors.case(DSSE_HAPPY);

    let trust = env.trust_pack(
        &env.scratch("trust"),
        &vectors.staging_trusted_root(),
        &[],
        1,
        LONG_EXPIRY,
    );
    let imported = env.trust_import(&trust);
    imported.assert_ok();
    assert!(!imported.bool_field("already_imported"), "{imported}");

    let tiles = env.install_proofs(&[&dsse.bundle()]);
    assert!(tiles.is_file(), "{}", tiles.display());

    let bundle_id = env.register_case(&dsse);
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    assert!(report.reason_codes.is_empty(), "{}", report.output);

    env.promotion_create("tls-dsse", PROD, &[&bundle_id]);
    let preview = env.preview_gates("tls-dsse");
    preview.assert_allow();
    let decision = env.evaluate("tls-dsse");
    decision.assert_allow();
    let replay = env.preview_at(
        "tls-dsse",
        &decision.output.str_field("evaluated_at"),
        &decision.output.str_field("policy_digest"),
    );
    assert_eq!(
        decision.output.str_field("decision_digest"),
        replay.output.str_field("decision_digest"),
        "preview and evaluation over TLS at the same time must decide the same"
    );

    let output = env.decision_get(&decision.record_id);
    output.assert_ok();
    let record = decision_record(&output);
    assert_eq!(
        record.get("record_id").and_then(Value::as_str),
        Some(decision.record_id.as_str()),
        "{record}"
    );
    assert_eq!(
        record.get("subject_digests"),
        Some(&serde_json::json!([subject_digest()])),
        "{record}"
    );
    assert_eq!(
        record.get("report_digests"),
        Some(&serde_json::json!([report.report_digest])),
        "the gate must record the report it fetched over mutual TLS: {record}"
    );
}

#[test]
fn tls_settings_from_environment_variables() {
    // No test vectors are needed: both calls are rejected before any bundle matters.
    let env = Env::builder("tls-env-vars")
        .gate(&policy::standard())
        .transport(Transport::MutualTls)
        .start();
    let Some(pki) = env.pki() else {
        panic!("a mutual TLS environment must have a PKI");
    };
    let from_env = env
        .stella()
        .clone()
        .without_tls()
        .env("STELLA_TLS_CA", &pki.ca)
        .env("STELLA_TLS_CERT", &pki.client_cert)
        .env("STELLA_TLS_KEY", &pki.client_key);

    // Both services respond: the attestor rejects an unknown evidence id, the gate an unknown
    // record id. Both are rejections after a completed handshake, not connection failures.
    let unknown = format!("sha256:{}", "0".repeat(64));
    from_env
        .run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            &unknown,
        ])
        .assert_rejected(codes::EVIDENCE_NOT_FOUND);
    from_env
        .run_json(["decisions", "get", "dr-00000000000000000000000000000000"])
        .assert_code(exit::FAILED);
}

#[test]
fn attestor_rejects_client_without_certificate() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("tls-no-client-cert")
        .transport(Transport::MutualTls)
        .start();
    let Some(tls) = env.stella().tls_settings().cloned() else {
        panic!("a mutual TLS environment must give the runner TLS settings");
    };
    let without_cert = env.operator_with(env.stella().clone().tls(tls.without_identity()));
    let msg = vectors.case(MSG_HAPPY);

    // Trust roots: rejected without a certificate, then imported for the first time with one.
    let trust = env.trust_pack(
        &env.scratch("trust"),
        &vectors.staging_trusted_root(),
        &[],
        1,
        LONG_EXPIRY,
    );
    let rejected = without_cert.trust_import(&trust);
    rejected.assert_code(exit::UNREACHABLE);
    assert!(
        !rejected.command_line.contains("--tls-cert"),
        "the rejected command must not present a certificate\n{rejected}"
    );
    let imported = env.trust_import(&trust);
    imported.assert_ok();
    assert!(
        !imported.bool_field("already_imported"),
        "the rejected import must have stored nothing\n{imported}"
    );

    // Evidence: the bundle id is known from packing, which needs no service.
    let dir = env.scratch("evidence");
    let bundle = dir.join("evidence.tgz");
    let packed = env.stella().run_json([
        "evidence",
        "pack",
        "--sigstore-bundle",
        &path_arg(&msg.bundle()),
        "--subject",
        &format!("a.txt={}", subject_digest()),
        "--out",
        &path_arg(&bundle),
    ]);
    packed.assert_ok();
    let bundle_id = packed.str_field("bundle_id");

    without_cert
        .evidence_verify(&bundle)
        .assert_code(exit::UNREACHABLE);
    env.stella()
        .run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            &bundle_id,
        ])
        .assert_rejected(codes::EVIDENCE_NOT_FOUND);
    let registered = env.evidence_verify(&bundle);
    registered.assert_ok();
    assert_eq!(registered.str_field("bundle_id"), bundle_id, "{registered}");
    assert!(
        !registered.bool_field("already_registered"),
        "the rejected registration must have stored nothing\n{registered}"
    );

    // The rejections are handshake failures: the attestor saw no call, so it logged no rejected
    // token either.
    let log = env.attestor().log_text();
    assert!(
        !log.contains("call rejected"),
        "a client without a certificate must not reach the token check\n{log}"
    );
}
