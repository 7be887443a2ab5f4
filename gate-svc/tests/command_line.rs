//! The `stella-gate` binary's start-up checks: an attestor URL it could never call is a usage
//! error (exit 2) before any file or database is touched, and start-up errors name their cause
//! once, in a log without colour codes.

use std::path::Path;
use std::process::{Command, Output};

const VALID_POLICY: &str = "\
environments:
  prod:
    require:
      - identity: release@acme.example
        issuer: https://accounts.example
";

fn run_gate(attestor: &str, policy: &Path, data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella-gate"))
        .args(["--listen", "127.0.0.1:0", "--attestor", attestor])
        .arg("--policy")
        .arg(policy)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run stella-gate")
}

#[test]
fn unusable_attestor_url_exits_two() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let policy = temp.path().join("policy.yaml");
    std::fs::write(&policy, VALID_POLICY).expect("write policy");
    let data_dir = temp.path().join("gate-data");

    let rows = [
        ("ftp scheme", "ftp://x", "the scheme ftp:// is not supported"),
        ("https without TLS", "https://attestor:7401", "https:// is not supported"),
        ("no scheme", "127.0.0.1:7401", "no scheme"),
        ("not a URI", "http://a b", "not a URI"),
    ];
    for (name, url, expected) in rows {
        let output = run_gate(url, &policy, &data_dir);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "row {name}: stderr: {stderr}");
        assert!(stderr.contains("--attestor"), "row {name}: stderr: {stderr}");
        assert!(stderr.contains(expected), "row {name}: stderr: {stderr}");
        assert!(!data_dir.exists(), "row {name}: the gate created its database");
    }
}

#[test]
fn missing_policy_names_cause_once() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let policy = temp.path().join("absent.yaml");
    let output = run_gate("http://127.0.0.1:7401", &policy, &temp.path().join("gate-data"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("absent.yaml: cannot read the policy file"), "stderr: {stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the cause is repeated: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "colour codes in a log that is not a terminal: {stderr:?}");
}
