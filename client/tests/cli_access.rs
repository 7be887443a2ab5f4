//! Tokens and TLS on service calls. A call without a token or scope is rejected by the attestor
//! with its message and the rejected exit code, and `--token-file` wins over `STELLA_TOKEN`. TLS
//! works only with the right CA, and with a client certificate when the attestor requires one.
//! Plain-text URLs to other hosts are rejected before any connection.

mod common;

use common::attestor::{Attestor, ClientAuth};
use common::authority::token_with_scopes;
use common::{arg, stella, stella_with_env, string_at};
use stella_access::Scope;
use stella_access::dev::DevPki;

/// Exit code of a rejected request.
const REJECTED: i32 = 1;

/// Runs `rekor checkpoints --output json` against `attestor` with extra arguments before the
/// command name, and the environment `env`.
fn checkpoints(attestor: &Attestor, global: &[&str], env: &[(&str, &str)]) -> common::Run {
    let mut args = vec!["--output", "json", "--attestor", attestor.url()];
    args.extend_from_slice(global);
    args.extend(["rekor", "checkpoints"]);
    stella_with_env(&args, env)
}

#[test]
fn call_without_token_unauthenticated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attestor = Attestor::start(&dir.path().join("attestor"));

    let run = checkpoints(&attestor, &[], &[("STELLA_TOKEN", "")]);
    assert_eq!(run.code, REJECTED, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_AUTH_UNAUTHENTICATED"
    );
    let message = string_at(&object, "error");
    assert!(
        message.contains("ERR_AUTH_UNAUTHENTICATED: ListCheckpoints"),
        "{message}"
    );
    assert!(
        run.stderr.contains("ERR_AUTH_UNAUTHENTICATED"),
        "{}",
        run.stderr
    );
    assert!(message.contains("stella sent no token"), "{message}");

    let accepted = checkpoints(&attestor, &[], &[]);
    assert_eq!(
        accepted.code, 0,
        "with the default token: {}",
        accepted.stderr
    );
}

#[test]
fn foreign_token_unauthenticated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attestor = Attestor::start(&dir.path().join("attestor"));
    let stranger = stella_access::dev::DevAuthority::generate();
    let token = stranger.token("tenant-a", &[Scope::ReportsRead]);

    let run = checkpoints(&attestor, &[], &[("STELLA_TOKEN", &token)]);
    assert_eq!(run.code, REJECTED, "stderr: {}", run.stderr);
    assert_eq!(
        string_at(&run.json(), "reason_code"),
        "ERR_AUTH_UNAUTHENTICATED"
    );
    assert!(!run.stderr.contains(&token), "the token was printed");
}

#[test]
fn missing_scope_permission_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attestor = Attestor::start(&dir.path().join("attestor"));
    let token = token_with_scopes(&[Scope::EvidenceVerify]);

    let run = checkpoints(&attestor, &[], &[("STELLA_TOKEN", &token)]);
    assert_eq!(run.code, REJECTED, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_AUTH_PERMISSION_DENIED"
    );
    let message = string_at(&object, "error");
    assert!(
        message.contains("ERR_AUTH_PERMISSION_DENIED: ListCheckpoints"),
        "{message}"
    );
    assert!(!message.contains(&token), "the token was printed");
}

#[test]
fn token_file_wins_over_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let attestor = Attestor::start(&dir.path().join("attestor"));
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        format!("{}\n", token_with_scopes(&[Scope::ReportsRead])),
    )
    .expect("write token file");
    let without_scope = token_with_scopes(&[Scope::TrustImport]);

    let run = checkpoints(
        &attestor,
        &["--token-file", arg(&token_file)],
        &[("STELLA_TOKEN", &without_scope)],
    );
    assert_eq!(
        run.code, 0,
        "the file's token should be used: {}",
        run.stderr
    );

    let env_only = checkpoints(&attestor, &[], &[("STELLA_TOKEN", &without_scope)]);
    assert_eq!(env_only.code, REJECTED, "stderr: {}", env_only.stderr);

    let empty_file = dir.path().join("empty");
    std::fs::write(&empty_file, "\n").expect("write");
    let empty = checkpoints(&attestor, &["--token-file", arg(&empty_file)], &[]);
    assert_eq!(empty.code, 2, "an empty token file: {}", empty.stderr);
    assert!(empty.stderr.contains("empty"), "{}", empty.stderr);
}

#[test]
fn tls_with_right_ca_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir(&pki_dir).expect("mkdir");
    let pki = DevPki::generate().write_to(&pki_dir);
    let attestor = Attestor::start_tls(&dir.path().join("attestor"), &pki, ClientAuth::None);
    assert!(attestor.url().starts_with("https://"), "{}", attestor.url());

    let run = checkpoints(&attestor, &["--tls-ca", arg(&pki.ca)], &[]);
    assert_eq!(run.code, 0, "with the right CA: {}", run.stderr);
    let from_env = checkpoints(&attestor, &[], &[("STELLA_TLS_CA", arg(&pki.ca))]);
    assert_eq!(from_env.code, 0, "with STELLA_TLS_CA: {}", from_env.stderr);

    let other_dir = dir.path().join("other-pki");
    std::fs::create_dir(&other_dir).expect("mkdir");
    let other = DevPki::generate().write_to(&other_dir);
    let wrong = checkpoints(&attestor, &["--tls-ca", arg(&other.ca)], &[]);
    assert_eq!(wrong.code, 4, "with another CA: {}", wrong.stderr);
    assert!(
        wrong.json().get("checkpoints").is_none(),
        "{}",
        wrong.stdout
    );

    let no_ca = checkpoints(&attestor, &[], &[]);
    assert_eq!(no_ca.code, 2, "https without a CA: {}", no_ca.stderr);
    assert!(no_ca.stderr.contains("--tls-ca"), "{}", no_ca.stderr);

    let plain = stella(&[
        "--attestor",
        &attestor.url().replacen("https://", "http://", 1),
        "rekor",
        "checkpoints",
    ]);
    assert_ne!(
        plain.code, 0,
        "plain text to a TLS port must fail: {}",
        plain.stdout
    );
}

#[test]
fn mutual_tls_needs_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir(&pki_dir).expect("mkdir");
    let pki = DevPki::generate().write_to(&pki_dir);
    let attestor = Attestor::start_tls(&dir.path().join("attestor"), &pki, ClientAuth::Required);

    let anonymous = checkpoints(&attestor, &["--tls-ca", arg(&pki.ca)], &[]);
    assert_ne!(
        anonymous.code, 0,
        "no client certificate: {}",
        anonymous.stdout
    );
    assert_ne!(
        anonymous.code, 2,
        "a usage error hides the handshake: {}",
        anonymous.stderr
    );
    assert_eq!(anonymous.code, 4, "unreachable: {}", anonymous.stderr);

    let identified = checkpoints(
        &attestor,
        &[
            "--tls-ca",
            arg(&pki.ca),
            "--tls-cert",
            arg(&pki.client_cert),
            "--tls-key",
            arg(&pki.client_key),
        ],
        &[],
    );
    assert_eq!(
        identified.code, 0,
        "with the client certificate: {}",
        identified.stderr
    );

    let from_env = checkpoints(
        &attestor,
        &[],
        &[
            ("STELLA_TLS_CA", arg(&pki.ca)),
            ("STELLA_TLS_CERT", arg(&pki.client_cert)),
            ("STELLA_TLS_KEY", arg(&pki.client_key)),
        ],
    );
    assert_eq!(
        from_env.code, 0,
        "with the STELLA_TLS_* variables: {}",
        from_env.stderr
    );

    let half = checkpoints(
        &attestor,
        &[
            "--tls-ca",
            arg(&pki.ca),
            "--tls-cert",
            arg(&pki.client_cert),
        ],
        &[],
    );
    assert_eq!(
        half.code, 2,
        "a certificate without its key: {}",
        half.stderr
    );
    assert!(half.stderr.contains("--tls-key"), "{}", half.stderr);
}

#[test]
fn plaintext_to_remote_host_rejected() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737); the URL is rejected before any connection.
    let rows = [
        (
            "attestor",
            vec![
                "--attestor",
                "http://192.0.2.1:7401",
                "rekor",
                "checkpoints",
            ],
        ),
        (
            "gate",
            vec![
                "--gate",
                "http://gate.example:7402",
                "decisions",
                "get",
                "dr-1",
            ],
        ),
    ];
    for (name, args) in rows {
        let run = stella(&args);
        assert_eq!(run.code, 2, "row {name}: {}", run.stderr);
        assert!(
            run.stderr.contains("loopback"),
            "row {name}: {}",
            run.stderr
        );
    }
}
