//! Break-glass overrides through the `stella` binary, with both services as separate processes.
//!
//! The evidence of the DSSE conformance case verifies, but environment `bg-other-identity`
//! requires another signer, so its standard decision is a deny that an override turns into an
//! allow. An overridden decision must never look like a standard verification: exit code 6,
//! the text marker, `break_glass` and `standard_verification: false` in JSON, in the evaluation
//! and in `stella decisions get`. Refused requests exit non-zero with their reason code.

use std::thread;
use std::time::Duration;

use serde_json::Value;
use stella_access::Scope;
use stella_e2e::access::TENANT_A;
use stella_e2e::cli::{CliOutput, exit};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv};
use stella_e2e::runbook::{decision_record, path_arg};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};
use stella_e2e::{IDENTITY, ISSUER, SLSA_PROVENANCE_V1};

/// Reason code of a refused override request.
const BREAK_GLASS_REFUSED: &str = "ERR_BREAK_GLASS_REFUSED";
/// Reason code that marks an overridden decision.
const BREAK_GLASS_OVERRIDE: &str = "BREAK_GLASS_OVERRIDE";
/// First text line of an overridden decision.
const MARKER_LINE: &str = "BREAK-GLASS OVERRIDE: not a standard verification";

/// Requires a signer that no conformance bundle has; overrides last at most 1 hour.
const OVERRIDABLE: &str = "bg-other-identity";
/// Like [`OVERRIDABLE`], without a `break_glass` section.
const LOCKED: &str = "bg-locked";
/// Requires the conformance signer, so its promotions are a standard allow.
const STANDARD: &str = "bg-standard";

fn policy() -> String {
    let other = "https://github.com/example/other/.github/workflows/release.yml@refs/heads/main";
    format!(
        "# Written by the stella end-to-end suite.
environments:
  {OVERRIDABLE}:
    require:
      - predicate_type: '{SLSA_PROVENANCE_V1}'
        identity: '{other}'
        issuer: '{ISSUER}'
    break_glass:
      max_duration: 1h
  {LOCKED}:
    require:
      - predicate_type: '{SLSA_PROVENANCE_V1}'
        identity: '{other}'
        issuer: '{ISSUER}'
  {STANDARD}:
    require:
      - predicate_type: '{SLSA_PROVENANCE_V1}'
        identity: '{IDENTITY}'
        issuer: '{ISSUER}'
    break_glass:
      max_duration: 1h
"
    )
}

static SHARED: SharedEnv<String> = SharedEnv::new();

/// Returns the shared environment and the id of the registered DSSE evidence.
fn shared(vectors: &Vectors) -> EnvGuard<'static, String> {
    SHARED.get(|| {
        let env = Env::builder("break-glass").gate(&policy()).start();
        let dsse = vectors.case(DSSE_HAPPY);
        env.install_trust(&vectors.staging_trusted_root(), &[]);
        env.install_proofs(&[&dsse.bundle()]);
        let bundle_id = env.register_case(&dsse);
        (env, bundle_id)
    })
}

/// Returns the arguments of `stella promotion evaluate --break-glass`.
fn override_args<'a>(
    promotion_id: &'a str,
    reason: &'a str,
    ticket: &'a str,
    expires: &'a str,
) -> Vec<&'a str> {
    vec![
        "promotion",
        "evaluate",
        "--promotion",
        promotion_id,
        "--offline-rekor",
        "--break-glass",
        "--reason",
        reason,
        "--ticket",
        ticket,
        "--expires",
        expires,
    ]
}

#[track_caller]
fn string_list(output: &CliOutput, value: &Value, key: &str) -> Vec<String> {
    stella_e2e::cli::string_array(value, key, output)
}

#[test]
fn override_exits_six_with_marker() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    env.promotion_create("bg-marker", OVERRIDABLE, &[env.fixture().as_str()]);
    let standard = env.evaluate("bg-marker");
    standard.assert_deny(codes::POLICY_REQUIREMENT_UNMET);

    let output = env.stella().run_json(override_args(
        "bg-marker",
        "hotfix for the payment outage",
        "INC-4711",
        "30m",
    ));
    output.assert_code(exit::BREAK_GLASS);
    let json = output.json();
    assert_eq!(output.str_field("decision"), "allow", "{output}");
    assert!(!output.bool_field("standard_verification"), "{output}");
    let reason_codes = output.reason_codes();
    assert!(
        reason_codes.iter().any(|code| code == BREAK_GLASS_OVERRIDE),
        "{output}"
    );
    for code in &standard.reason_codes {
        assert!(
            reason_codes.contains(code),
            "overridden code {code} is missing\n{output}"
        );
    }
    let block = json.get("break_glass").cloned().unwrap_or(Value::Null);
    assert_eq!(block["ticket"], "INC-4711", "{output}");
    assert_eq!(block["reason"], "hotfix for the payment outage", "{output}");
    assert_eq!(
        block["requested_by"],
        format!("dev-user@{TENANT_A}"),
        "{output}"
    );
    assert_eq!(block["overridden_decision"], "deny", "{output}");
    assert_eq!(
        string_list(&output, &block, "overridden_reason_codes"),
        standard.reason_codes
    );
    let record_id = output.str_field("record_id");

    // The stored record carries the same block, and `decisions get` exits 6 as well.
    let stored = env.decision_get(&record_id);
    stored.assert_code(exit::BREAK_GLASS);
    assert!(!stored.bool_field("standard_verification"), "{stored}");
    let record = decision_record(&stored);
    assert_eq!(record["decision"], "allow", "{stored}");
    assert_eq!(record["break_glass"]["ticket"], "INC-4711", "{stored}");
    assert_eq!(
        record["break_glass"]["overridden_decision"], "deny",
        "{stored}"
    );
    assert_eq!(
        stored.json()["break_glass"],
        record["break_glass"],
        "{stored}"
    );

    // In text mode the marker is the first line of both commands.
    let text = env.stella().run(["decisions", "get", &record_id]);
    text.assert_code(exit::BREAK_GLASS);
    assert_eq!(text.stdout.lines().next(), Some(MARKER_LINE), "{text}");
    let again = env.stella().run([
        "promotion",
        "evaluate",
        "--promotion",
        "bg-marker",
        "--offline-rekor",
    ]);
    again.assert_code(exit::BREAK_GLASS);
    assert_eq!(again.stdout.lines().next(), Some(MARKER_LINE), "{again}");
    assert!(
        again.stdout.contains("break-glass ticket: INC-4711"),
        "{again}"
    );
    assert!(again.stderr.contains("INC-4711"), "{again}");

    // Previews inside the window are overridden too.
    let preview = env.preview_gates_output("bg-marker");
    preview.assert_code(exit::BREAK_GLASS);
    assert!(!preview.bool_field("standard_verification"), "{preview}");
}

#[test]
fn standard_allow_is_marked_standard() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    env.promotion_create("bg-standard", STANDARD, &[env.fixture().as_str()]);
    let decision = env.evaluate("bg-standard");
    decision.assert_allow();
    assert!(
        decision.output.bool_field("standard_verification"),
        "{}",
        decision.output
    );
    assert_eq!(
        decision.output.json().get("break_glass"),
        Some(&Value::Null)
    );
    let stored = env.decision_get(&decision.record_id);
    stored.assert_ok();
    assert!(stored.bool_field("standard_verification"), "{stored}");
}

#[test]
fn decisions_verify_names_overrides() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    env.promotion_create("bg-verify", OVERRIDABLE, &[env.fixture().as_str()]);
    let output = env
        .stella()
        .run_json(override_args("bg-verify", "verify test", "CHG-1", "10m"));
    output.assert_code(exit::BREAK_GLASS);
    let record_id = output.str_field("record_id");

    let dir = env.scratch("bg-verify");
    let export = dir.join("decisions.jsonl");
    let key = dir.join("gate-key.pem");
    env.stella()
        .run_json([
            "decisions",
            "export",
            "--out",
            &path_arg(&export),
            "--key-out",
            &path_arg(&key),
        ])
        .assert_ok();
    for source in [vec!["--file".to_owned(), path_arg(&export)], Vec::new()] {
        let mut args = vec![
            "decisions".to_owned(),
            "verify".to_owned(),
            "--public-key".to_owned(),
            path_arg(&key),
        ];
        args.extend(source);
        let verified = env.stella().run_json(&args);
        verified.assert_ok();
        assert!(verified.bool_field("verified"), "{verified}");
        let overridden = string_list(&verified, &verified.json(), "break_glass_record_ids");
        assert!(overridden.contains(&record_id), "{verified}");

        let text = env.stella().run(&args);
        text.assert_ok();
        assert!(
            text.stdout.contains(&format!(
                "BREAK-GLASS OVERRIDE: record {record_id} is not a standard verification"
            )),
            "{text}"
        );
    }
}

#[test]
fn refusals_exit_with_code() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    env.promotion_create("bg-refused", OVERRIDABLE, &[env.fixture().as_str()]);
    env.promotion_create("bg-refused-locked", LOCKED, &[env.fixture().as_str()]);

    // A token without promotion:break-glass.
    let without_scope = env.stella_with_scopes(
        TENANT_A,
        &[
            Scope::PromotionEvaluate,
            Scope::PromotionPreview,
            Scope::DecisionsRead,
            Scope::EvidenceVerify,
        ],
    );
    let output = without_scope.run_json(override_args("bg-refused", "hotfix", "INC-1", "30m"));
    output.assert_rejected(codes::AUTH_PERMISSION_DENIED);

    // Longer than the environment allows, in an environment without break_glass, a blank
    // reason, a blank ticket and a zero duration.
    let cases = [
        (
            "bg-refused",
            "hotfix",
            "INC-1",
            "2h",
            "break_glass.max_duration",
        ),
        ("bg-refused-locked", "hotfix", "INC-1", "30m", LOCKED),
        ("bg-refused", " ", "INC-1", "30m", "reason"),
        ("bg-refused", "hotfix", " ", "30m", "ticket"),
        ("bg-refused", "hotfix", "INC-1", "0s", "0 seconds"),
    ];
    for (promotion_id, reason, ticket, expires, message_part) in cases {
        let output = env
            .stella()
            .run_json(override_args(promotion_id, reason, ticket, expires));
        let message = output.assert_rejected(BREAK_GLASS_REFUSED);
        assert!(message.contains(message_part), "{output}");
    }

    // Without one of its options, --break-glass is a usage error that calls no service.
    let missing_ticket = env.stella().run_json([
        "promotion",
        "evaluate",
        "--promotion",
        "bg-refused",
        "--offline-rekor",
        "--break-glass",
        "--reason",
        "hotfix",
        "--expires",
        "30m",
    ]);
    missing_ticket.assert_code(exit::USAGE);
    assert!(
        missing_ticket.stderr.contains("--ticket"),
        "{missing_ticket}"
    );
    let without_flag = env.stella().run_json([
        "promotion",
        "evaluate",
        "--promotion",
        "bg-refused",
        "--offline-rekor",
        "--reason",
        "hotfix",
    ]);
    without_flag.assert_code(exit::USAGE);

    // Nothing was granted: the promotions still get their standard deny.
    env.evaluate("bg-refused")
        .assert_deny(codes::POLICY_REQUIREMENT_UNMET);
    env.evaluate("bg-refused-locked")
        .assert_deny(codes::POLICY_REQUIREMENT_UNMET);
}

#[test]
fn expired_override_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    env.promotion_create("bg-expiry", OVERRIDABLE, &[env.fixture().as_str()]);
    env.stella()
        .run_json(override_args("bg-expiry", "short override", "INC-2", "2s"))
        .assert_code(exit::BREAK_GLASS);
    // The override was issued before the command returned, so it has expired 3 seconds later.
    thread::sleep(Duration::from_secs(3));
    let expired = env.evaluate("bg-expiry");
    expired.assert_deny(codes::POLICY_REQUIREMENT_UNMET);
    assert!(
        !expired
            .reason_codes
            .iter()
            .any(|code| code == BREAK_GLASS_OVERRIDE),
        "{}",
        expired.output
    );
    assert!(
        expired.output.bool_field("standard_verification"),
        "{}",
        expired.output
    );
}
