//! The operator runbook end to end: trust roots, tile/proof bundles, evidence, promotions, gate
//! decisions and decision records, with both services running as separate processes.
//!
//! `full_runbook_*` runs every step from an empty attestor and checks each step's output. The
//! other tests share one attestor and gate that contain the staging trust root and the inclusion
//! proofs of both happy-path cases. They use separate promotion ids, and they change no shared
//! state except by registering evidence.

use serde_json::Value;
use sha2::{Digest, Sha256};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv, read_file};
use stella_e2e::policy::{self, MSG, PROD, PROD_OTHER_IDENTITY, PROD_REGEX, PROD_REGEX_PARTIAL};
use stella_e2e::runbook::{Decision, LONG_EXPIRY, decision_record};
use stella_e2e::vectors::{
    DSSE_HAPPY, DSSE_INVALID_SIG, DSSE_MISMATCH_ENVELOPE, MSG_HAPPY, Vectors,
};
use stella_e2e::{IDENTITY, ISSUER, SLSA_PROVENANCE_V1, SUBJECT_SHA256, subject_digest};

/// Checkpoint of the DSSE case's inclusion proof.
const ALPHA3_ORIGIN: &str = "log2025-alpha3.rekor.sigstage.dev";
const ALPHA3_SIZE: u64 = 4_026_479;
const ALPHA3_ROOT: &str = "5iaX4xK6PMnp4ZFTP4iywMcwLgaTjzgRTkrTOUFIrfY=";

/// Checkpoint of the message-signature case's inclusion proof.
const ALPHA1_ORIGIN: &str = "log2025-alpha1.rekor.sigstage.dev";
const ALPHA1_SIZE: u64 = 736;
const ALPHA1_ROOT: &str = "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=";

/// Evidence registered by the shared environment's set-up.
struct Registered {
    dsse: String,
    msg: String,
}

static SHARED: SharedEnv<Registered> = SharedEnv::new();

fn shared(vectors: &Vectors) -> EnvGuard<'static, Registered> {
    SHARED.get(|| {
        let env = Env::builder("runbook").gate(&policy::standard()).start();
        let dsse = vectors.case(DSSE_HAPPY);
        let msg = vectors.case(MSG_HAPPY);
        env.install_trust(&vectors.staging_trusted_root(), &[]);
        env.install_proofs(&[&dsse.bundle(), &msg.bundle()]);
        let registered = Registered {
            dsse: env.register_case(&dsse),
            msg: env.register_case(&msg),
        };
        (env, registered)
    })
}

fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Returns the checkpoint `{origin, tree_size, root_hash}` with `origin` from a JSON array.
fn find_checkpoint<'a>(checkpoints: &'a Value, origin: &str) -> Option<&'a Value> {
    checkpoints
        .as_array()?
        .iter()
        .find(|checkpoint| checkpoint.get("origin").and_then(Value::as_str) == Some(origin))
}

#[track_caller]
fn assert_checkpoint(checkpoints: &Value, origin: &str, size: u64, root: &str) {
    let Some(checkpoint) = find_checkpoint(checkpoints, origin) else {
        panic!("no checkpoint of {origin} in {checkpoints}");
    };
    assert_eq!(
        checkpoint.get("tree_size").and_then(Value::as_u64),
        Some(size),
        "tree size of {origin} in {checkpoint}"
    );
    assert_eq!(
        checkpoint.get("root_hash").and_then(Value::as_str),
        Some(root),
        "root hash of {origin} in {checkpoint}"
    );
}

/// Checks that the stored decision record matches the evaluation that wrote it.
#[track_caller]
fn assert_record_matches(
    env: &Env,
    decision: &Decision,
    promotion_id: &str,
    target: &str,
    evidence_ids: &[&str],
) -> Value {
    assert!(
        !decision.record_id.is_empty(),
        "evaluate must return a record id\n{}",
        decision.output
    );
    let output = env.decision_get(&decision.record_id);
    // `decisions get` exits by the stored decision, as `promotion evaluate` does.
    output.assert_code(decision.output.code);
    let record = decision_record(&output);
    let field = |key: &str| record.get(key).cloned().unwrap_or(Value::Null);

    assert_eq!(field("schema"), "stella.decision-record/v3", "{record}");
    assert_eq!(field("record_id"), decision.record_id.as_str(), "{record}");
    assert_eq!(field("promotion_id"), promotion_id, "{record}");
    assert_eq!(field("decision"), decision.decision.as_str(), "{record}");
    assert_eq!(field("target_environment"), target, "{record}");
    assert_eq!(
        field("subject_digests"),
        serde_json::json!([subject_digest()]),
        "{record}"
    );
    let mut expected_ids: Vec<&str> = evidence_ids.to_vec();
    expected_ids.sort_unstable();
    assert_eq!(
        field("evidence_bundle_ids"),
        serde_json::json!(expected_ids),
        "{record}"
    );
    assert_eq!(
        field("reason_codes"),
        serde_json::json!(decision.reason_codes),
        "{record}"
    );

    let decision_digest = decision.output.str_field("decision_digest");
    assert!(is_sha256_digest(&decision_digest), "{}", decision.output);
    assert_eq!(
        field("decision_digest"),
        decision_digest.as_str(),
        "{record}"
    );

    let policy_bytes = match env.policy_path() {
        Some(path) => read_file(path),
        None => panic!("environment {} has no policy", env.name()),
    };
    let policy_digest = format!("sha256:{}", hex::encode(Sha256::digest(&policy_bytes)));
    assert_eq!(field("policy_digest"), policy_digest.as_str(), "{record}");
    assert!(
        field("evaluated_at")
            .as_str()
            .is_some_and(|text| text.contains('T')),
        "evaluated_at must be RFC 3339: {record}"
    );
    record
}

/// Checks the verification report that `rekor verify` printed for the DSSE happy path, and that
/// `report_digest` is the SHA-256 of its canonical JSON.
#[track_caller]
fn assert_dsse_report(output: &Value, bundle_id: &str, trust_digest: &str, report_digest: &str) {
    let Some(report) = output.get("report") else {
        panic!("`rekor verify` printed no report: {output}");
    };
    assert_eq!(
        report["schema"], "stella.verification-report/v1",
        "{report}"
    );
    assert_eq!(report["bundle_id"], bundle_id, "{report}");
    assert_eq!(report["trust_set_digest"], trust_digest, "{report}");
    assert_eq!(report["outcome"], "verified", "{report}");

    let Some(entries) = report["entries"].as_object() else {
        panic!("report has no entries object: {report}");
    };
    assert_eq!(entries.len(), 1, "one Sigstore bundle, one entry: {report}");
    let Some(entry) = entries.values().next() else {
        panic!("report has no entry: {report}");
    };
    assert_eq!(entry["kind"], "dsse", "{entry}");
    assert_eq!(entry["predicate_type"], SLSA_PROVENANCE_V1, "{entry}");
    assert_eq!(entry["signer"]["identity"], IDENTITY, "{entry}");
    assert_eq!(entry["signer"]["issuer"], ISSUER, "{entry}");
    assert_eq!(entry["subjects"][0]["sha256"], SUBJECT_SHA256, "{entry}");
    assert_eq!(entry["tlog"]["origin"], ALPHA3_ORIGIN, "{entry}");
    assert_eq!(entry["tlog"]["log_index"], 4_026_478, "{entry}");
    assert_eq!(entry["tlog"]["checkpoint_size"], ALPHA3_SIZE, "{entry}");

    // For the report's strings, integers and ASCII keys, serde_json's sorted, compact output is
    // the RFC 8785 form, so this recomputes the digest independently of the services.
    let canonical = match serde_json::to_vec(report) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot serialise the report: {err}"),
    };
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&canonical)));
    assert_eq!(
        digest, report_digest,
        "report_digest must hash the canonical report"
    );
}

#[test]
fn full_runbook_allows_both_happy_paths() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("full-runbook")
        .gate(&policy::standard())
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    let msg = vectors.case(MSG_HAPPY);

    // Trust roots: pack, import, import again.
    let trust_dir = env.scratch("trust");
    let trust = env.trust_pack(
        &trust_dir,
        &vectors.staging_trusted_root(),
        &[],
        1,
        LONG_EXPIRY,
    );
    let imported = env.trust_import(&trust);
    imported.assert_ok();
    let trust_digest = imported.str_field("trust_set_digest");
    assert!(is_sha256_digest(&trust_digest), "{imported}");
    assert_eq!(
        imported.json().get("version").and_then(Value::as_u64),
        Some(1),
        "{imported}"
    );
    assert!(!imported.bool_field("already_imported"), "{imported}");
    let again = env.trust_import(&trust);
    again.assert_ok();
    assert!(again.bool_field("already_imported"), "{again}");
    assert_eq!(again.str_field("trust_set_digest"), trust_digest, "{again}");

    // Tile/proof bundle from both Sigstore bundles.
    let tiles = env.tiles_pack(&env.scratch("tiles"), &[&dsse.bundle(), &msg.bundle()], &[]);
    let imported = env.tiles_import(&tiles);
    imported.assert_ok();
    let json = imported.json();
    assert_eq!(
        json.get("proofs_imported").and_then(Value::as_u64),
        Some(2),
        "{imported}"
    );
    assert_eq!(
        json.get("tiles_imported").and_then(Value::as_u64),
        Some(0),
        "{imported}"
    );
    assert!(!imported.bool_field("already_imported"), "{imported}");

    // DSSE evidence through the prod gate.
    let dsse_id = env.register_case(&dsse);
    let report = env.rekor_verify(&dsse_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    assert!(report.reason_codes.is_empty(), "{}", report.output);
    assert!(is_sha256_digest(&report.report_digest), "{}", report.output);
    assert_dsse_report(
        &report.output.json(),
        &dsse_id,
        &trust_digest,
        &report.report_digest,
    );

    env.promotion_create("full-dsse", PROD, &[&dsse_id]);
    let preview = env.preview_gates("full-dsse");
    preview.assert_allow();
    assert!(
        preview.record_id.is_empty(),
        "preview-gates must not write a record\n{}",
        preview.output
    );
    let decision = env.evaluate("full-dsse");
    decision.assert_allow();
    // The digest covers the evaluation time, so the preview that repeats the evaluation runs at
    // the evaluation's time.
    let replay = env.preview_at(
        "full-dsse",
        &decision.output.str_field("evaluated_at"),
        &decision.output.str_field("policy_digest"),
    );
    assert_eq!(
        decision.output.str_field("decision_digest"),
        replay.output.str_field("decision_digest"),
        "preview and evaluation of the same promotion at the same time must decide the same"
    );
    let record = assert_record_matches(&env, &decision, "full-dsse", PROD, &[&dsse_id]);
    assert_eq!(
        record.get("report_digests"),
        Some(&serde_json::json!([report.report_digest])),
        "the gate must record the report that `rekor verify` produced: {record}"
    );
    let checkpoints = record.get("checkpoints").cloned().unwrap_or(Value::Null);
    assert_checkpoint(&checkpoints, ALPHA3_ORIGIN, ALPHA3_SIZE, ALPHA3_ROOT);

    // Message-signature evidence through the msg gate.
    let msg_id = env.register_case(&msg);
    let report = env.rekor_verify(&msg_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    env.promotion_create("full-msg", MSG, &[&msg_id]);
    env.preview_gates("full-msg").assert_allow();
    let decision = env.evaluate("full-msg");
    decision.assert_allow();
    let record = assert_record_matches(&env, &decision, "full-msg", MSG, &[&msg_id]);
    let checkpoints = record.get("checkpoints").cloned().unwrap_or(Value::Null);
    assert_checkpoint(&checkpoints, ALPHA1_ORIGIN, ALPHA1_SIZE, ALPHA1_ROOT);
}

#[test]
fn evidence_registration_is_idempotent() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let case = vectors.case(DSSE_HAPPY);
    let dir = env.scratch("evidence-again");
    let bundle = env.evidence_pack(&dir, &[&case.bundle()]);

    let output = env.evidence_verify(&bundle);
    output.assert_ok();
    assert_eq!(
        output.str_field("bundle_id"),
        env.fixture().dsse,
        "packing the same Sigstore bundle and subject must give the same bundle id\n{output}"
    );
    assert!(output.bool_field("already_registered"), "{output}");
}

#[test]
fn regex_identity_allows() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let decision = env.promote("regex-allow", PROD_REGEX, &[&env.fixture().dsse]);
    decision.assert_allow();
    assert_record_matches(
        &env,
        &decision,
        "regex-allow",
        PROD_REGEX,
        &[&env.fixture().dsse],
    );
}

#[test]
fn regex_must_match_whole_identity() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let decision = env.promote("regex-prefix", PROD_REGEX_PARTIAL, &[&env.fixture().dsse]);
    decision.assert_deny(codes::POLICY_REQUIREMENT_UNMET);
}

#[test]
fn other_identity_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let decision = env.promote(
        "other-identity",
        PROD_OTHER_IDENTITY,
        &[&env.fixture().dsse],
    );
    decision.assert_deny(codes::POLICY_REQUIREMENT_UNMET);
    assert_record_matches(
        &env,
        &decision,
        "other-identity",
        PROD_OTHER_IDENTITY,
        &[&env.fixture().dsse],
    );
}

#[test]
fn message_signature_lacks_prod_predicate() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    // The message signature verifies, but prod requires a signed SLSA provenance statement.
    let report = env.rekor_verify(&env.fixture().msg);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    let decision = env.promote("msg-in-prod", PROD, &[&env.fixture().msg]);
    decision.assert_deny(codes::POLICY_REQUIREMENT_UNMET);
}

#[test]
fn two_evidence_bundles_allow() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let ids = [env.fixture().dsse.as_str(), env.fixture().msg.as_str()];
    let decision = env.promote("two-bundles", PROD, &ids);
    decision.assert_allow();
    let record = assert_record_matches(&env, &decision, "two-bundles", PROD, &ids);
    let digests = record.get("report_digests").and_then(Value::as_array);
    assert_eq!(
        digests.map(Vec::len),
        Some(2),
        "one report per bundle: {record}"
    );
}

#[test]
fn repeated_evaluation_same_digest() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let first = env.promote("repeat", PROD, &[&env.fixture().dsse]);
    first.assert_allow();
    let second = env.evaluate("repeat");
    second.assert_allow();
    assert_ne!(
        first.record_id, second.record_id,
        "each evaluation writes its own record"
    );
    // The decision digest leaves out the record id and chain fields but covers the evaluation
    // time, so a preview at each record's time with its policy repeats that record's digest.
    for decision in [&first, &second] {
        let replay = env.preview_at(
            "repeat",
            &decision.output.str_field("evaluated_at"),
            &decision.output.str_field("policy_digest"),
        );
        replay.assert_allow();
        assert_eq!(
            decision.output.str_field("decision_digest"),
            replay.output.str_field("decision_digest"),
            "{}",
            replay.output
        );
    }
}

#[test]
fn dsse_invalid_signature_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let case = vectors.case(DSSE_INVALID_SIG);
    let bundle_id = env.register_case(&case);

    // The envelope signature fails. The log entry is not compared with an invalid signature,
    // so the signature failure is the only one.
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "failed", "{}", report.output);
    assert_eq!(
        report.reason_codes,
        vec![codes::DSSE_SIGNATURE_INVALID],
        "{}",
        report.output
    );

    let decision = env.promote("dsse-invalid-sig", PROD, &[&bundle_id]);
    decision.assert_deny(codes::DSSE_SIGNATURE_INVALID);
    assert_record_matches(&env, &decision, "dsse-invalid-sig", PROD, &[&bundle_id]);
}

#[test]
fn dsse_mismatched_envelope_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let case = vectors.case(DSSE_MISMATCH_ENVELOPE);
    let bundle_id = env.register_case(&case);

    // The envelope verifies on its own, but Hash(PAE(envelope)) is not the logged digest.
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "failed", "{}", report.output);
    assert_eq!(
        report.reason_codes,
        vec![codes::REKOR_ENTRY_MISMATCH],
        "{}",
        report.output
    );

    let decision = env.promote("dsse-mismatch", PROD, &[&bundle_id]);
    decision.assert_deny(codes::REKOR_ENTRY_MISMATCH);
}

#[test]
fn unknown_environment_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let decision = env.promote("no-such-env", "staging", &[&env.fixture().dsse]);
    decision.assert_deny(codes::POLICY_INVALID);
}

#[test]
fn unknown_evidence_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let unknown = format!("sha256:{}", "0".repeat(64));
    let decision = env.promote("unknown-evidence", PROD, &[&unknown]);
    decision.assert_deny(codes::EVIDENCE_NOT_FOUND);
}
