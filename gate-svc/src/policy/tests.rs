//! Unit tests of policy parsing: valid documents, and one test per class of error with the
//! exact line, column and field of the message.

use super::*;

const VALID: &str = "\
environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\\.com/acme/[a-z]+/\\.github/workflows/release\\.yml@refs/tags/v.*/
        issuer: https://token.actions.githubusercontent.com
      - identity: release@acme.example
        issuer: https://accounts.example
      - predicate_type: https://stella.dev/scan/v1
        kms_key_id: release-signing-2026
    min_witness_cosignatures: 2
    max_evidence_age: 30d
    max_checkpoint_age: 24h
    on_missing_proof: pending
    on_attestor_unavailable: pending
    on_stale_checkpoint: pending
    break_glass:
      max_duration: 4h
  staging:
    require:
      - identity: ci@acme.example
        issuer: https://accounts.example
";

fn parse(text: &str) -> Result<Policy, PolicyError> {
    parse_policy("policy.yaml", text.as_bytes())
}

/// Returns the message of the field error that `text` must raise.
fn field_error(text: &str) -> String {
    match parse(text) {
        Err(error @ PolicyError::Field { .. }) => error.to_string(),
        Err(other) => panic!("expected a field error, got {other}"),
        Ok(_) => panic!("policy must be rejected:\n{text}"),
    }
}

struct Row {
    name: &'static str,
    text: &'static str,
    expected: &'static str,
}

/// Checks that each row's policy fails with exactly the expected message.
fn assert_rows(rows: &[Row]) {
    for row in rows {
        let message = field_error(row.text);
        assert_eq!(message, row.expected, "row {}", row.name);
    }
}

#[test]
fn parse_valid_policy() {
    let policy = parse(VALID).expect("valid policy");
    assert_eq!(policy.environments.len(), 2);
    let prod = policy.environments.get("prod").expect("prod");
    assert_eq!(prod.require.len(), 3);
    assert_eq!(prod.on_missing_proof, Fallback::Pending);
    assert_eq!(prod.on_attestor_unavailable, Fallback::Pending);
    assert_eq!(prod.on_stale_checkpoint, Fallback::Pending);
    assert_eq!(prod.min_witness_cosignatures, 2);
    assert_eq!(prod.max_evidence_age_secs, Some(30 * 86_400));
    assert_eq!(prod.max_checkpoint_age_secs, Some(24 * 3_600));
    assert_eq!(
        prod.break_glass,
        Some(BreakGlassPolicy {
            max_duration_secs: 4 * 3_600
        })
    );
    assert_eq!(
        prod.require.first().and_then(|r| r.predicate_type.as_deref()),
        Some("https://slsa.dev/provenance/v1")
    );
    assert!(policy.digest.starts_with("sha256:"));
    assert_eq!(policy.digest.len(), "sha256:".len() + 64);
}

#[test]
fn parse_defaults_when_absent() {
    let policy = parse(VALID).expect("valid policy");
    let staging = policy.environments.get("staging").expect("staging");
    assert_eq!(staging.on_missing_proof, Fallback::Deny);
    assert_eq!(staging.on_attestor_unavailable, Fallback::Deny);
    assert_eq!(staging.on_stale_checkpoint, Fallback::Deny);
    assert_eq!(staging.min_witness_cosignatures, 0);
    assert_eq!(staging.max_evidence_age_secs, None);
    assert_eq!(staging.max_checkpoint_age_secs, None);
    assert_eq!(staging.break_glass, None);
}

#[test]
fn regex_identity_full_match() {
    let policy = parse(VALID).expect("valid policy");
    let prod = policy.environments.get("prod").expect("prod");
    let requirement = prod.require.first().expect("first requirement");
    let good = "https://github.com/acme/widget/.github/workflows/release.yml@refs/tags/v1.2.3";
    let issuer = "https://token.actions.githubusercontent.com";
    assert!(requirement.signer.matches(good, issuer));
    assert!(
        !requirement.signer.matches(&format!("evil{good}"), issuer),
        "prefix must not match"
    );
    assert!(!requirement.signer.matches(
        "https://github.com/acme/widget/.github/workflows/release.yml@refs/heads/main",
        issuer
    ));
    assert!(!requirement.signer.matches(
        "https://github.com/acme/Widget/.github/workflows/release.yml@refs/tags/v1",
        issuer
    ));
    assert!(
        !requirement.signer.matches(good, "https://accounts.example"),
        "issuer must match"
    );
}

#[test]
fn exact_identity_no_substring() {
    let policy = parse(VALID).expect("valid policy");
    let prod = policy.environments.get("prod").expect("prod");
    let signer = &prod.require.get(1).expect("second requirement").signer;
    let issuer = "https://accounts.example";
    assert!(signer.matches("release@acme.example", issuer));
    assert!(!signer.matches("release@acme.example.evil", issuer));
    assert!(!signer.matches("xrelease@acme.example", issuer));
}

#[test]
fn kms_requirement_matches_key_signer() {
    let policy = parse(VALID).expect("valid policy");
    let prod = policy.environments.get("prod").expect("prod");
    let signer = &prod.require.get(2).expect("third requirement").signer;
    assert!(signer.matches("key:release-signing-2026", ""));
    assert!(
        !signer.matches("key:release-signing-2026", "https://accounts.example"),
        "a certificate identity that looks like a key name must not match"
    );
    assert!(!signer.matches("key:release-signing-2027", ""));
    assert!(!signer.matches("release-signing-2026", ""));
    assert!(!signer.matches("key:release-signing-2026x", ""));
}

#[test]
fn certificate_requirement_rejects_key_signer() {
    let text = "environments:\n  prod:\n    require:\n      - identity: key:release\n        issuer: i\n";
    let policy = parse(text).expect("valid policy");
    let prod = policy.environments.get("prod").expect("prod");
    let signer = &prod.require.first().expect("requirement").signer;
    assert!(signer.matches("key:release", "i"));
    assert!(
        !signer.matches("key:release", ""),
        "a managed-key signer has an empty issuer"
    );
}

#[test]
fn requirement_display_names_fields() {
    let policy = parse(VALID).expect("valid policy");
    let staging = policy.environments.get("staging").expect("staging");
    let requirement = staging.require.first().expect("requirement");
    assert_eq!(
        requirement.to_string(),
        "predicate_type=any identity=ci@acme.example issuer=https://accounts.example"
    );
    let prod = policy.environments.get("prod").expect("prod");
    let kms = prod.require.get(2).expect("third requirement");
    assert_eq!(
        kms.to_string(),
        "predicate_type=https://stella.dev/scan/v1 kms_key_id=release-signing-2026"
    );
}

#[test]
fn duration_units_parse() {
    let rows = [
        ("90s", 90),
        ("15m", 900),
        ("24h", 86_400),
        ("30d", 2_592_000),
        ("36500d", MAX_DURATION_SECS),
    ];
    for (text, seconds) in rows {
        let policy_text =
            format!("environments:\n  prod:\n    require:\n      - kms_key_id: k\n    max_evidence_age: {text}\n");
        let policy = parse(&policy_text).unwrap_or_else(|error| panic!("row {text}: {error}"));
        let prod = policy.environments.get("prod").expect("prod");
        assert_eq!(prod.max_evidence_age_secs, Some(seconds), "row {text}");
    }
}

#[test]
fn format_duration_picks_largest_unit() {
    assert_eq!(format_duration(2_592_000), "30d");
    assert_eq!(format_duration(86_400 + 3_600), "25h");
    assert_eq!(format_duration(90), "90s");
    assert_eq!(format_duration(120), "2m");
    assert_eq!(format_duration(0), "0s");
}

#[test]
fn unknown_key_names_line() {
    assert_rows(&[
        Row {
            name: "requirement",
            text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n        isuer: j\n",
            expected: "policy.yaml:6:9: environments.prod.require[0].isuer: unknown field (expected one of: predicate_type, identity, issuer, kms_key_id)",
        },
        Row {
            name: "environment",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    max_evidence_ages: 30d\n",
            expected: "policy.yaml:5:5: environments.prod.max_evidence_ages: unknown field (expected one of: require, min_witness_cosignatures, max_evidence_age, max_checkpoint_age, on_missing_proof, on_attestor_unavailable, on_stale_checkpoint, break_glass)",
        },
        Row {
            name: "break_glass",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    break_glass:\n      max_duration: 1h\n      reason: none\n",
            expected: "policy.yaml:7:7: environments.prod.break_glass.reason: unknown field (expected one of: max_duration)",
        },
        Row {
            name: "top level",
            text: "# comment\nenvironment:\n  prod: {}\n",
            expected: "policy.yaml:2:1: environment: unknown field (expected one of: environments)",
        },
        Row {
            name: "number key",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n        7: x\n",
            expected: "policy.yaml:5:9: environments.prod.require[0].7: unknown field (expected one of: predicate_type, identity, issuer, kms_key_id)",
        },
    ]);
}

#[test]
fn missing_field_names_line() {
    assert_rows(&[
        Row {
            name: "issuer",
            text: "environments:\n  staging:\n    require:\n      - identity: a@b\n        issuer: i\n  prod:\n    require:\n      - identity: a@b\n        predicate_type: x\n",
            expected: "policy.yaml:8:9: environments.prod.require[0].issuer: missing",
        },
        Row {
            name: "identity",
            text: "environments:\n  prod:\n    require:\n      - issuer: https://i\n",
            expected: "policy.yaml:4:9: environments.prod.require[0].identity: missing",
        },
        Row {
            name: "identity and kms_key_id",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n      - predicate_type: y\n",
            expected: "policy.yaml:5:9: environments.prod.require[1]: missing identity and issuer, or kms_key_id",
        },
        Row {
            name: "require",
            text: "environments:\n  prod:\n    on_missing_proof: deny\n",
            expected: "policy.yaml:3:5: environments.prod.require: missing",
        },
        Row {
            name: "max_duration",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    break_glass: {}\n",
            expected: "policy.yaml:5:18: environments.prod.break_glass.max_duration: missing",
        },
        Row {
            name: "environments",
            text: "{}\n",
            expected: "policy.yaml:1:1: environments: missing",
        },
    ]);
}

#[test]
fn wrong_type_names_line() {
    assert_rows(&[
        Row {
            name: "number predicate type",
            text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n        predicate_type: 3\n",
            expected: "policy.yaml:6:25: environments.prod.require[0].predicate_type: expected a string, found a number",
        },
        Row {
            name: "require not a list",
            text: "environments:\n  prod:\n    require: yes\n",
            expected: "policy.yaml:3:14: environments.prod.require: expected a list, found a string",
        },
        Row {
            name: "environment not a mapping",
            text: "environments:\n  prod: [a]\n",
            expected: "policy.yaml:2:9: environments.prod: expected a mapping, found a list",
        },
        Row {
            name: "document not a mapping",
            text: "- environments\n",
            expected: "policy.yaml:1:1: policy: expected a mapping, found a list",
        },
        Row {
            name: "witness count as string",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    min_witness_cosignatures: '2'\n",
            expected: "policy.yaml:5:31: environments.prod.min_witness_cosignatures: expected a whole number from 0 to 64, found a string",
        },
        Row {
            name: "witness count above maximum",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    min_witness_cosignatures: 65\n",
            expected: "policy.yaml:5:31: environments.prod.min_witness_cosignatures: expected a whole number from 0 to 64, found 65",
        },
        Row {
            name: "witness count negative",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    min_witness_cosignatures: -1\n",
            expected: "policy.yaml:5:31: environments.prod.min_witness_cosignatures: expected a whole number from 0 to 64, found -1",
        },
        Row {
            name: "bad fallback",
            text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: i\n    on_stale_checkpoint: allow\n",
            expected: "policy.yaml:6:26: environments.prod.on_stale_checkpoint: \"allow\" is not \"deny\" or \"pending\"",
        },
        Row {
            name: "empty issuer",
            text: "environments:\n  prod:\n    require:\n      - identity: a@b\n        issuer: ''\n",
            expected: "policy.yaml:5:17: environments.prod.require[0].issuer: must not be empty",
        },
        Row {
            name: "blank kms key id",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: ' '\n",
            expected: "policy.yaml:4:21: environments.prod.require[0].kms_key_id: must not be empty",
        },
        Row {
            name: "kms key id with a slash",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: keys/release\n",
            expected: "policy.yaml:4:21: environments.prod.require[0].kms_key_id: character '/' is not allowed: a trust root set names managed keys with letters, digits and . _ -",
        },
        Row {
            name: "empty environments",
            text: "environments: {}\n",
            expected: "policy.yaml:1:15: environments: at least one environment is required",
        },
        Row {
            name: "empty require",
            text: "environments:\n  prod:\n    require: []\n",
            expected: "policy.yaml:3:14: environments.prod.require: at least one requirement is required",
        },
        Row {
            name: "environment name with a space",
            text: "environments:\n  'prod ':\n    require:\n      - kms_key_id: k\n",
            expected: "policy.yaml:2:3: environments: invalid environment name \"prod \": a promotion can only target 1 to 128 letters, digits and - _ . : /",
        },
        Row {
            name: "environment name a number",
            text: "environments:\n  7:\n    require:\n      - kms_key_id: k\n",
            expected: "policy.yaml:2:3: environments: environment names must be strings, found a number",
        },
    ]);
}

#[test]
fn bad_duration_names_line() {
    let syntax = "use a whole number followed by s, m, h or d, such as 90s, 15m, 24h or 30d";
    let rows = [
        ("unknown unit", "15x", format!("invalid duration \"15x\": {syntax}")),
        ("weeks", "2w", format!("invalid duration \"2w\": {syntax}")),
        ("no number", "h", format!("invalid duration \"h\": {syntax}")),
        ("negative", "-5m", format!("invalid duration \"-5m\": {syntax}")),
        ("fraction", "1.5h", format!("invalid duration \"1.5h\": {syntax}")),
        ("inner space", "5 m", format!("invalid duration \"5 m\": {syntax}")),
        ("zero", "0s", "invalid duration \"0s\": must be greater than zero".to_owned()),
        ("above maximum", "36501d", "invalid duration \"36501d\": maximum is 36500d".to_owned()),
        (
            "overflow",
            "99999999999999999999s",
            "invalid duration \"99999999999999999999s\": maximum is 36500d".to_owned(),
        ),
        (
            "number",
            "30",
            "expected a duration (a whole number followed by s, m, h or d, such as 90s, 15m, 24h or 30d), found a number".to_owned(),
        ),
    ];
    for (name, value, why) in rows {
        // The duration value starts at line 5, column 23.
        let text =
            format!("environments:\n  prod:\n    require:\n      - kms_key_id: k\n    max_evidence_age: {value}\n");
        assert_eq!(
            field_error(&text),
            format!("policy.yaml:5:23: environments.prod.max_evidence_age: {why}"),
            "row {name}"
        );
    }

    let text =
        "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    break_glass:\n      max_duration: 0h\n";
    assert_eq!(
        field_error(text),
        "policy.yaml:6:21: environments.prod.break_glass.max_duration: invalid duration \"0h\": must be greater than zero"
    );
    let text = "environments:\n  prod:\n    require:\n      - kms_key_id: k\n    max_checkpoint_age: 1y\n";
    assert_eq!(
        field_error(text),
        format!("policy.yaml:5:25: environments.prod.max_checkpoint_age: invalid duration \"1y\": {syntax}")
    );
}

#[test]
fn kms_with_identity_names_line() {
    assert_rows(&[
        Row {
            name: "identity and issuer",
            text: "environments:\n  prod:\n    require:\n      - predicate_type: x\n        identity: a@b\n        issuer: i\n      - predicate_type: y\n        identity: a@b\n        kms_key_id: release\n",
            expected: "policy.yaml:9:21: environments.prod.require[1].kms_key_id: cannot be combined with identity or issuer: a requirement names either a KMS key or a certificate identity and issuer",
        },
        Row {
            name: "issuer only",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: release\n        issuer: i\n",
            expected: "policy.yaml:4:21: environments.prod.require[0].kms_key_id: cannot be combined with identity or issuer: a requirement names either a KMS key or a certificate identity and issuer",
        },
    ]);
}

#[test]
fn invalid_regex_names_line() {
    let text = "environments:\n  prod:\n    require:\n      - issuer: i\n        identity: /a(/\n";
    let message = field_error(text);
    let expected = "policy.yaml:5:19: environments.prod.require[0].identity: invalid pattern: regex parse error:";
    assert!(
        message.starts_with(expected),
        "got {message:?}, expected prefix {expected:?}"
    );

    assert_rows(&[Row {
        name: "empty pattern",
        text: "environments:\n  prod:\n    require:\n      - issuer: i\n        identity: //\n",
        expected: "policy.yaml:5:19: environments.prod.require[0].identity: empty pattern \"//\"",
    }]);
}

#[test]
fn duplicate_key_names_both_lines() {
    assert_rows(&[
        Row {
            name: "environment",
            text: "environments:\n  prod:\n    require:\n      - identity: a\n        issuer: i\n  prod:\n    require:\n      - identity: b\n        issuer: i\n",
            expected: "policy.yaml:6:3: environments.prod: duplicate key, first given at line 2",
        },
        Row {
            name: "requirement field",
            text: "environments:\n  prod:\n    require:\n      - identity: a\n        issuer: i\n        issuer: j\n",
            expected: "policy.yaml:6:9: environments.prod.require[0].issuer: duplicate key, first given at line 5",
        },
        Row {
            name: "numbers written differently",
            text: "environments:\n  prod:\n    require:\n      - kms_key_id: k\n        1: a\n        0x1: b\n",
            expected: "policy.yaml:6:9: environments.prod.require[0].1: duplicate key, first given at line 5",
        },
    ]);
}

#[test]
fn yaml_syntax_error_names_line() {
    let error = parse("environments: [unclosed\n").expect_err("syntax error");
    assert!(matches!(error, PolicyError::Yaml { .. }), "unexpected {error:?}");
    let message = error.to_string();
    assert!(message.starts_with("policy.yaml:2:1: invalid YAML: "), "{message}");
    assert_eq!(error.reason_code(), ReasonCode::PolicyInvalid);
}

#[test]
fn second_document_rejected() {
    let error = parse("environments: {}\n---\nenvironments: {}\n").expect_err("two documents");
    assert!(matches!(error, PolicyError::Yaml { .. }), "unexpected {error:?}");
}

#[test]
fn empty_file_rejected() {
    assert_eq!(
        field_error(""),
        "policy.yaml:1:1: policy: expected a mapping, found null"
    );
    // A document of comments only is null too, and its position is the end of the file.
    assert_eq!(
        field_error("# only a comment\n"),
        "policy.yaml:2:1: policy: expected a mapping, found null"
    );
}

#[test]
fn oversized_policy_rejected() {
    let text = vec![b'#'; MAX_POLICY_BYTES + 1];
    let error = parse_policy("policy.yaml", &text).expect_err("too large");
    assert!(matches!(error, PolicyError::TooLarge { size, .. } if size == MAX_POLICY_BYTES + 1));
}

#[test]
fn load_policy_missing_file() {
    let error = load_policy(Path::new("/nonexistent/policy.yaml")).expect_err("missing file");
    assert!(matches!(error, PolicyError::Read { .. }), "unexpected {error:?}");
    assert!(error.to_string().starts_with("/nonexistent/policy.yaml: "), "{error}");
}

#[test]
fn deeply_nested_policy_rejected() {
    let text = "environments: ".to_owned() + &"{a: ".repeat(50_000);
    let error = parse_policy("policy.yaml", text.as_bytes()).expect_err("too deep");
    assert!(matches!(error, PolicyError::TooDeep { .. }), "unexpected {error:?}");
    assert!(error.to_string().starts_with("policy.yaml:1:"), "{error}");
}
