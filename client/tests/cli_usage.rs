//! Usage errors exit 2 before any file is read or any service is contacted.

mod common;

use common::{closed_port_url, stella};

const DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

#[test]
fn usage_errors_exit_two() {
    // The attestor and gate URLs point at a closed port: a usage error must win over exit 4.
    let closed = closed_port_url();
    let rows: Vec<(&str, Vec<&str>)> = vec![
        ("no command", vec![]),
        ("unknown command", vec!["launch"]),
        (
            "evidence verify without --offline",
            vec!["evidence", "verify", "--bundle", "missing.tgz"],
        ),
        (
            "rekor verify without --offline",
            vec!["rekor", "verify", "--evidence-bundle-id", DIGEST],
        ),
        (
            "evaluate without --offline-rekor",
            vec!["promotion", "evaluate", "--promotion", "p1"],
        ),
        (
            "preview without --offline-rekor",
            vec!["promotion", "preview-gates", "--promotion", "p1"],
        ),
        (
            "evaluate bad request id",
            vec![
                "promotion",
                "evaluate",
                "--promotion",
                "p1",
                "--offline-rekor",
                "--request-id",
                "run 1",
            ],
        ),
        (
            "evaluate with --at",
            vec![
                "promotion",
                "evaluate",
                "--promotion",
                "p1",
                "--offline-rekor",
                "--at",
                "1796378400",
            ],
        ),
        (
            "preview bad time",
            vec![
                "promotion",
                "preview-gates",
                "--promotion",
                "p1",
                "--offline-rekor",
                "--at",
                "yesterday",
            ],
        ),
        (
            "preview zero time",
            vec![
                "promotion",
                "preview-gates",
                "--promotion",
                "p1",
                "--offline-rekor",
                "--at",
                "0",
            ],
        ),
        (
            "preview bad policy digest",
            vec![
                "promotion",
                "preview-gates",
                "--promotion",
                "p1",
                "--offline-rekor",
                "--policy-digest",
                "abc",
            ],
        ),
        ("policy import without --file", vec!["policy", "import"]),
        (
            "policy show bad digest",
            vec!["policy", "show", "--digest", "sha256:xyz"],
        ),
        (
            "rekor verify bad id",
            vec![
                "rekor",
                "verify",
                "--offline",
                "--evidence-bundle-id",
                "abc",
            ],
        ),
        (
            "subject without name",
            vec![
                "evidence",
                "pack",
                "--sigstore-bundle",
                "b.json",
                "--subject",
                DIGEST,
                "--out",
                "x.tgz",
            ],
        ),
        (
            "evidence pack without bundles",
            vec!["evidence", "pack", "--out", "x.tgz"],
        ),
        (
            "tiles pack without inputs",
            vec!["rekor", "tiles", "pack", "--out", "x.tgz"],
        ),
        (
            "trust pack bad expiry",
            vec![
                "trust",
                "pack",
                "--trusted-root",
                "t.json",
                "--version",
                "1",
                "--expires",
                "soon",
                "--out",
                "x.tgz",
            ],
        ),
        (
            "trust pack bad kms key",
            vec![
                "trust",
                "pack",
                "--trusted-root",
                "t.json",
                "--version",
                "1",
                "--expires",
                "30d",
                "--kms-key",
                "nokey",
                "--out",
                "x.tgz",
            ],
        ),
        (
            "promotion bad subject",
            vec![
                "promotion",
                "create",
                "--promotion",
                "p1",
                "--subject",
                "sha256:xyz",
                "--target",
                "prod",
                "--evidence-bundle-id",
                DIGEST,
            ],
        ),
        (
            "bad output format",
            vec!["--output", "yaml", "decisions", "get", "r1"],
        ),
        (
            "https url",
            vec!["--gate", "https://gate.example", "decisions", "get", "r1"],
        ),
        (
            "zero request timeout",
            vec!["--request-timeout-ms", "0", "decisions", "get", "r1"],
        ),
        (
            "zero connect timeout",
            vec!["decisions", "get", "r1", "--connect-timeout-ms", "0"],
        ),
        (
            "trust pack version above 2^53 - 1",
            trust_pack_args("9007199254740992", "30d"),
        ),
        (
            "trust pack expiry duration past year 9999",
            trust_pack_args("1", "99999999d"),
        ),
        (
            "trust pack expiry time past year 9999",
            trust_pack_args("1", "9999-12-31T23:59:59-01:00"),
        ),
    ];
    for (name, args) in rows {
        let mut full = vec!["--attestor", closed.as_str(), "--gate", closed.as_str()];
        full.extend(args);
        let run = stella(&full);
        assert_eq!(run.code, 2, "row {name}: exit code; stderr: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "row {name}: no message on stderr");
    }
}

/// Arguments of `trust pack` with a trusted root file that does not exist: the option values
/// must be rejected before any file is read.
fn trust_pack_args(version: &'static str, expires: &'static str) -> Vec<&'static str> {
    vec![
        "trust",
        "pack",
        "--trusted-root",
        "absent-trusted-root.json",
        "--version",
        version,
        "--expires",
        expires,
        "--out",
        "x.tgz",
    ]
}

#[test]
fn option_range_errors_name_option() {
    let rows = [
        (
            "request timeout",
            vec!["--request-timeout-ms", "0", "decisions", "get", "r1"],
            "--request-timeout-ms",
        ),
        (
            "version",
            trust_pack_args("9007199254740993", "30d"),
            "--version",
        ),
        ("expiry", trust_pack_args("1", "99999999d"), "9999-12-31T23:59:59Z"),
    ];
    for (name, args, expected) in rows {
        let run = stella(&args);
        assert_eq!(run.code, 2, "row {name}: stderr: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "row {name}: stderr lacks {expected}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("ERR_BUNDLE_MALFORMED"),
            "row {name}: stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn usage_line_omits_env_urls() {
    let closed = closed_port_url();
    let run = common::stella_with_env(
        &["promotion", "create", "--promotion", "p1"],
        &[("STELLA_GATE_URL", &closed), ("STELLA_ATTESTOR_URL", &closed)],
    );
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    let usage = run
        .stderr
        .lines()
        .find(|line| line.starts_with("Usage:"))
        .expect("a usage line");
    assert!(!usage.contains("--gate"), "usage: {usage}");
    assert!(!usage.contains("--attestor"), "usage: {usage}");
}

#[test]
fn offline_usage_error_explains() {
    let run = stella(&["evidence", "verify", "--bundle", "missing.tgz"]);
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("--offline"), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("only offline verification exists"),
        "stderr: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
}

#[test]
fn usage_error_json_object() {
    let rows: Vec<(&str, Vec<&str>)> = vec![
        (
            "own check",
            vec![
                "--output",
                "json",
                "rekor",
                "verify",
                "--evidence-bundle-id",
                DIGEST,
            ],
        ),
        (
            "clap check",
            vec![
                "--output",
                "json",
                "promotion",
                "create",
                "--promotion",
                "p1",
            ],
        ),
        (
            "joined flag",
            vec![
                "--output=json",
                "rekor",
                "verify",
                "--offline",
                "--evidence-bundle-id",
                "x",
            ],
        ),
    ];
    for (name, args) in rows {
        let run = stella(&args);
        assert_eq!(run.code, 2, "row {name}: stderr: {}", run.stderr);
        let object = run.json();
        assert!(
            object
                .get("error")
                .and_then(|v| v.as_str())
                .is_some_and(|m| !m.is_empty()),
            "row {name}: {object:?}"
        );
        assert_eq!(
            object.get("reason_code"),
            Some(&serde_json::Value::Null),
            "row {name}"
        );
    }
}

#[test]
fn help_exits_zero() {
    let run = stella(&["--help"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    for group in ["trust", "rekor", "evidence", "promotion", "decisions"] {
        assert!(
            run.stdout.contains(group),
            "help lacks {group}: {}",
            run.stdout
        );
    }
}
