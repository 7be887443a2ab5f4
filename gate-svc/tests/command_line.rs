//! The `stella-gate` binary's start-up checks: an attestor URL it could never call and missing
//! transport security are usage errors (exit 2) before any database is touched, and start-up
//! errors name their cause once, in a log without colour codes.

use std::path::Path;
use std::process::{Command, Output};

const VALID_POLICY: &str = "\
environments:
  prod:
    require:
      - identity: release@acme.example
        issuer: https://accounts.example
";

/// Runs the gate with the JWKS file `jwks.json` next to `data_dir`. Tests that check what comes
/// before the gate reads that file do not create it.
fn run_gate(attestor: &str, policy: &Path, data_dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella-gate"))
        .args(["--listen", "127.0.0.1:0", "--attestor", attestor])
        .arg("--policy")
        .arg(policy)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--authority-jwks")
        .arg(data_dir.with_file_name("jwks.json"))
        .args(extra)
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
        ("https without CA", "https://attestor:7401", "--attestor-tls-ca"),
        ("http to another host", "http://attestor:7401", "only to a loopback host"),
        ("no scheme", "127.0.0.1:7401", "no scheme"),
        ("not a URI", "http://a b", "not a URI"),
    ];
    for (name, url, expected) in rows {
        let output = run_gate(url, &policy, &data_dir, &["--plaintext-loopback"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "row {name}: stderr: {stderr}");
        assert!(stderr.contains("--attestor"), "row {name}: stderr: {stderr}");
        assert!(stderr.contains(expected), "row {name}: stderr: {stderr}");
        assert!(!data_dir.exists(), "row {name}: the gate created its database");
    }
}

#[test]
fn no_transport_security_exits_two() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let policy = temp.path().join("policy.yaml");
    std::fs::write(&policy, VALID_POLICY).expect("write policy");
    let data_dir = temp.path().join("gate-data");
    let authority = stella_access::dev::DevAuthority::generate();
    authority.write_jwks(&temp.path().join("jwks.json"));

    let output = run_gate("http://127.0.0.1:7401", &policy, &data_dir, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--plaintext-loopback"), "stderr: {stderr}");
    assert!(!data_dir.exists(), "the gate created its database");
}

#[test]
fn missing_jwks_names_file() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let policy = temp.path().join("policy.yaml");
    std::fs::write(&policy, VALID_POLICY).expect("write policy");
    let data_dir = temp.path().join("gate-data");

    let output = run_gate("http://127.0.0.1:7401", &policy, &data_dir, &["--plaintext-loopback"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("jwks.json"), "stderr: {stderr}");
    assert!(!data_dir.exists(), "the gate created its database");
}

#[test]
fn missing_policy_names_cause_once() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let policy = temp.path().join("absent.yaml");
    let authority = stella_access::dev::DevAuthority::generate();
    authority.write_jwks(&temp.path().join("jwks.json"));
    let output = run_gate(
        "http://127.0.0.1:7401",
        &policy,
        &temp.path().join("gate-data"),
        &["--plaintext-loopback"],
    );
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
