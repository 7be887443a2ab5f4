//! Policy versions, replay and retries through the `stella` binary, with both services running
//! as separate processes: a tenant imports its policy, evaluates with a request id, and after a
//! restart of the gate process replays the decision with `preview-gates --at --policy-digest`.

use stella_e2e::cli::exit;
use stella_e2e::codes;
use stella_e2e::env::{Env, read_file, write_file};
use stella_e2e::policy::{self, PROD};
use stella_e2e::runbook::{Decision, decision_record, path_arg};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Reason code of a request id sent again for another promotion.
const REQUEST_ID_CONFLICT: &str = "ERR_REQUEST_ID_CONFLICT";

/// Returns the string at `key` of a decision record.
#[track_caller]
fn record_text(record: &serde_json::Value, key: &str) -> String {
    match record.get(key).and_then(serde_json::Value::as_str) {
        Some(text) => text.to_owned(),
        None => panic!("the record has no string {key}: {record}"),
    }
}

#[track_caller]
fn decision_digest(decision: &Decision) -> String {
    decision.output.str_field("decision_digest")
}

#[test]
fn replay_after_gate_restart() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let mut env = Env::builder("replay").gate(&policy::standard()).start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);

    // The tenant's own version: the suite's policy with one more line, so its digest differs
    // from the gate's --policy file.
    let dir = env.scratch("policies");
    let tenant_policy = dir.join("tenant-policy.yaml");
    write_file(
        &tenant_policy,
        format!("{}# tenant version 1\n", policy::standard()).as_bytes(),
    );
    let imported = env.policy_import(&tenant_policy);
    imported.assert_ok();
    let policy_digest = imported.str_field("digest");
    assert_eq!(imported.json()["version"], 1, "{imported}");
    assert!(!imported.bool_field("already_active"), "{imported}");
    let again = env.policy_import(&tenant_policy);
    again.assert_ok();
    assert!(again.bool_field("already_active"), "{again}");

    env.promotion_create("replay-1", PROD, &[&bundle_id]);
    let recorded = env.evaluate_with_request_id("replay-1", "ci-run-1");
    recorded.assert_allow();
    let record = decision_record(&recorded.output);
    assert_eq!(record_text(&record, "policy_digest"), policy_digest);
    assert_eq!(recorded.output.str_field("policy_digest"), policy_digest);
    let evaluated_at = record_text(&record, "evaluated_at");
    assert_eq!(recorded.output.str_field("evaluated_at"), evaluated_at);
    let evaluation_time = recorded.output.json()["evaluation_time"]
        .as_i64()
        .unwrap_or_else(|| panic!("no evaluation_time\n{}", recorded.output));
    assert!(
        !recorded.output.bool_field("replayed"),
        "{}",
        recorded.output
    );

    // A retry with the same request id returns the stored record.
    let retried = env.evaluate_with_request_id("replay-1", "ci-run-1");
    retried.assert_allow();
    assert_eq!(retried.record_id, recorded.record_id);
    assert!(retried.output.bool_field("replayed"), "{}", retried.output);
    assert_eq!(decision_digest(&retried), decision_digest(&recorded));

    // A second version becomes active, so only the digest selects the recorded one.
    let second_policy = dir.join("tenant-policy-2.yaml");
    write_file(
        &second_policy,
        format!("{}# tenant version 2\n", policy::standard()).as_bytes(),
    );
    let second = env.policy_import(&second_policy);
    second.assert_ok();
    assert_eq!(second.json()["version"], 2, "{second}");

    let stop = env.gate_mut().restart();
    assert!(
        stop.status.success(),
        "the gate must exit cleanly on SIGTERM, got {}",
        stop.status
    );

    let replayed = env.preview_at("replay-1", &evaluated_at, &policy_digest);
    replayed.assert_allow();
    assert_eq!(
        decision_digest(&replayed),
        decision_digest(&recorded),
        "{}",
        replayed.output
    );
    assert_eq!(replayed.output.str_field("evaluated_at"), evaluated_at);
    assert_eq!(replayed.output.str_field("policy_digest"), policy_digest);
    let in_seconds = env.preview_at("replay-1", &evaluation_time.to_string(), &policy_digest);
    assert_eq!(
        decision_digest(&in_seconds),
        decision_digest(&recorded),
        "{}",
        in_seconds.output
    );

    let later = env.preview_at(
        "replay-1",
        &(evaluation_time + 1).to_string(),
        &policy_digest,
    );
    later.assert_allow();
    assert_ne!(
        decision_digest(&later),
        decision_digest(&recorded),
        "the digest covers the time"
    );

    // The request id and both policy versions survived the restart.
    let after_restart = env.evaluate_with_request_id("replay-1", "ci-run-1");
    assert_eq!(after_restart.record_id, recorded.record_id);
    assert!(
        after_restart.output.bool_field("replayed"),
        "{}",
        after_restart.output
    );
    let saved = dir.join("saved.yaml");
    let shown = env.policy_show(&["--digest", &policy_digest, "--out", &path_arg(&saved)]);
    shown.assert_ok();
    assert_eq!(shown.json()["version"], 1, "{shown}");
    assert!(!shown.bool_field("active"), "{shown}");
    assert_eq!(read_file(&saved), read_file(&tenant_policy));
    let active = env.policy_show(&[]);
    active.assert_ok();
    assert_eq!(active.json()["version"], 2, "{active}");
    assert!(active.bool_field("active"), "{active}");
}

#[test]
fn policy_and_request_id_errors() {
    let env = Env::builder("replay-errors")
        .gate(&policy::standard())
        .start();
    let dir = env.scratch("policies");

    // Line 6 sets a fallback that does not exist.
    let invalid = dir.join("bad-policy.yaml");
    write_file(
        &invalid,
        b"environments:\n  prod:\n    require:\n      - identity: a@example.com\n        issuer: https://issuer.example\n    on_missing_proof: maybe\n",
    );
    let rejected = env.policy_import(&invalid);
    let message = rejected.assert_rejected(codes::POLICY_INVALID);
    let place = format!("{}:6:", path_arg(&invalid));
    assert!(
        message.contains(&place),
        "the message does not name {place}: {message}"
    );
    assert!(message.contains("on_missing_proof"), "{message}");
    let active = env.policy_show(&[]);
    active.assert_ok();
    assert_eq!(
        active.json()["version"],
        0,
        "the default stays active\n{active}"
    );
    assert_eq!(
        active.str_field("policy_yaml").as_bytes(),
        read_file(env.policy_path().expect("the gate's policy file"))
    );

    let unknown = format!("sha256:{}", "0".repeat(64));
    let missing = env.policy_show(&["--digest", &unknown]);
    missing.assert_code(exit::FAILED);
    assert!(
        missing.error_message().contains("does not exist"),
        "{missing}"
    );

    // The attestor has no evidence with this id, so each evaluation decides deny.
    let evidence = format!("sha256:{}", "1".repeat(64));
    env.promotion_create("retry-1", PROD, &[&evidence]);
    env.promotion_create("retry-2", PROD, &[&evidence]);
    let first = env.evaluate_with_request_id("retry-1", "deploy-9");
    assert_eq!(first.decision, "deny", "{}", first.output);
    let conflict = env.stella().run_json([
        "promotion",
        "evaluate",
        "--promotion",
        "retry-2",
        "--offline-rekor",
        "--request-id",
        "deploy-9",
    ]);
    let message = conflict.assert_rejected(REQUEST_ID_CONFLICT);
    assert!(message.contains("\"retry-1\""), "{message}");
}
