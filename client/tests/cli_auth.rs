//! `stella auth keygen`, `jwks` and `token`: keys, JWKS documents and tokens that the services'
//! own validator accepts, and the errors for bad input.

mod common;

use std::path::Path;

use common::{arg, stella, string_at};
use stella_access::{AUDIENCE_ATTESTOR, AUDIENCE_GATE, DEFAULT_ISSUER};
use stella_authority::{
    AuthFailureKind, Jwks, Scope, Validator, ValidatorConfig, signing_key_from_pem, thumbprint,
};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn validator(jwks: &str, audience: &str) -> Validator {
    let jwks = Jwks::parse(jwks).expect("the printed JWKS parses");
    Validator::new(ValidatorConfig::new(DEFAULT_ISSUER, audience), jwks).expect("validator")
}

fn keygen(path: &Path) -> String {
    let run = stella(&["--output", "json", "auth", "keygen", "--out", arg(path)]);
    assert_eq!(run.code, 0, "keygen: {}", run.stderr);
    string_at(&run.json(), "kid").to_owned()
}

#[test]
fn keygen_jwks_token_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("authority-key.pem");
    let kid = keygen(&key);

    let pem = std::fs::read_to_string(&key).expect("read key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let signing_key = signing_key_from_pem(&pem).expect("PKCS#8 P-256 key");
    assert_eq!(kid, thumbprint(signing_key.verifying_key()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }

    let jwks = stella(&["auth", "jwks", "--key", arg(&key)]);
    assert_eq!(jwks.code, 0, "jwks: {}", jwks.stderr);
    assert!(jwks.stdout.contains(&kid), "{}", jwks.stdout);
    assert!(
        !jwks.stdout.contains("\"d\""),
        "the JWKS holds a private key: {}",
        jwks.stdout
    );

    let token = stella(&[
        "auth",
        "token",
        "--key",
        arg(&key),
        "--tenant",
        "team-blue",
        "--scopes",
        "evidence:verify,reports:read",
        "--ttl",
        "10m",
    ]);
    assert_eq!(token.code, 0, "token: {}", token.stderr);
    let token = token.stdout.trim_end();
    assert_eq!(token.split('.').count(), 3, "{token}");

    for audience in [AUDIENCE_ATTESTOR, AUDIENCE_GATE] {
        let principal = validator(&jwks.stdout, audience)
            .validate(token, now(), Scope::ReportsRead)
            .unwrap_or_else(|error| panic!("{audience}: {error}"));
        assert_eq!(principal.tenant().as_str(), "team-blue");
        assert_eq!(principal.subject(), "operator@team-blue");
        assert_eq!(principal.key_id(), kid);
        assert!(principal.has_scope(Scope::EvidenceVerify));
        assert!(
            principal.expires_at() <= now() + 600,
            "{}",
            principal.expires_at()
        );
    }
    let denied = validator(&jwks.stdout, AUDIENCE_GATE)
        .validate(token, now(), Scope::PromotionEvaluate)
        .expect_err("scope not granted");
    assert_eq!(denied.kind(), AuthFailureKind::PermissionDenied);
}

#[test]
fn token_options_reach_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.pem");
    keygen(&key);
    let jwks_file = dir.path().join("jwks.json");
    let written = stella(&["auth", "jwks", "--key", arg(&key), "--out", arg(&jwks_file)]);
    assert_eq!(written.code, 0, "jwks --out: {}", written.stderr);
    let jwks = std::fs::read_to_string(&jwks_file).expect("read JWKS");

    let run = stella(&[
        "--output",
        "json",
        "auth",
        "token",
        "--key",
        arg(&key),
        "--tenant",
        "t1",
        "--scopes",
        "decisions:read",
        "--audience",
        AUDIENCE_GATE,
        "--issuer",
        "site-authority",
        "--subject",
        "release-bot",
    ]);
    assert_eq!(run.code, 0, "token: {}", run.stderr);
    let object = run.json();
    let token = string_at(&object, "token");
    assert_eq!(string_at(&object, "tenant"), "t1");
    assert_eq!(string_at(&object, "subject"), "release-bot");
    assert_eq!(
        object.get("scopes"),
        Some(&serde_json::json!(["decisions:read"]))
    );

    let jwks_set = Jwks::parse(&jwks).expect("JWKS file parses");
    let config = ValidatorConfig::new("site-authority", AUDIENCE_GATE);
    let accepted = Validator::new(config, jwks_set.clone())
        .expect("validator")
        .validate(token, now(), Scope::DecisionsRead)
        .expect("the gate accepts the token");
    assert_eq!(accepted.subject(), "release-bot");

    // The token names only the gate, so the attestor rejects it, and the default issuer does not
    // match either.
    let attestor = Validator::new(
        ValidatorConfig::new("site-authority", AUDIENCE_ATTESTOR),
        jwks_set,
    )
    .expect("validator");
    let error = attestor
        .validate(token, now(), Scope::DecisionsRead)
        .expect_err("wrong audience");
    assert_eq!(error.kind(), AuthFailureKind::Unauthenticated);
    let error = validator(&jwks, AUDIENCE_GATE)
        .validate(token, now(), Scope::DecisionsRead)
        .expect_err("wrong issuer");
    assert_eq!(error.kind(), AuthFailureKind::Unauthenticated);
}

#[test]
fn jwks_holds_rotated_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.pem");
    let new = dir.path().join("new.pem");
    let old_kid = keygen(&old);
    let new_kid = keygen(&new);
    assert_ne!(old_kid, new_kid);

    let jwks = stella(&["auth", "jwks", "--key", arg(&old), "--key", arg(&new)]);
    assert_eq!(jwks.code, 0, "jwks: {}", jwks.stderr);
    let set = Jwks::parse(&jwks.stdout).expect("JWKS parses");
    let kids: Vec<&str> = set.keys().iter().map(|key| key.kid()).collect();
    assert_eq!(kids, [old_kid.as_str(), new_kid.as_str()]);

    for key in [&old, &new] {
        let token = stella(&[
            "auth",
            "token",
            "--key",
            arg(key),
            "--tenant",
            "t",
            "--scopes",
            "reports:read",
        ]);
        assert_eq!(token.code, 0, "token: {}", token.stderr);
        validator(&jwks.stdout, AUDIENCE_ATTESTOR)
            .validate(token.stdout.trim_end(), now(), Scope::ReportsRead)
            .expect("a token of either key validates");
    }

    let twice = stella(&["auth", "jwks", "--key", arg(&old), "--key", arg(&old)]);
    assert_eq!(twice.code, 2, "the same key twice: {}", twice.stderr);
    assert!(twice.stderr.contains(&old_kid), "{}", twice.stderr);
}

#[test]
fn keygen_rejects_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("authority-key.pem");
    keygen(&key);
    let before = std::fs::read(&key).expect("read key");

    let again = stella(&["auth", "keygen", "--out", arg(&key)]);
    assert_eq!(again.code, 2, "second keygen: {}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(
        std::fs::read(&key).expect("read key"),
        before,
        "the key changed"
    );

    #[cfg(unix)]
    {
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(dir.path().join("target.pem"), &link).expect("symlink");
        let through_link = stella(&["auth", "keygen", "--out", arg(&link)]);
        assert_eq!(
            through_link.code, 2,
            "keygen through a link: {}",
            through_link.stderr
        );
        assert!(
            !dir.path().join("target.pem").exists(),
            "the link was followed"
        );
    }
}

#[test]
fn token_rejects_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.pem");
    keygen(&key);
    let key = arg(&key);

    let rows: [(&str, Vec<&str>, &str); 6] = [
        (
            "unknown scope",
            vec!["--tenant", "t", "--scopes", "reports:read,tiles:write"],
            "tiles:write",
        ),
        (
            "bad tenant",
            vec!["--tenant", "Team/A", "--scopes", "reports:read"],
            "Team/A",
        ),
        (
            "zero ttl",
            vec!["--tenant", "t", "--scopes", "reports:read", "--ttl", "0s"],
            "positive",
        ),
        (
            "ttl over 30 days",
            vec!["--tenant", "t", "--scopes", "reports:read", "--ttl", "31d"],
            "30d",
        ),
        (
            "ttl without unit",
            vec!["--tenant", "t", "--scopes", "reports:read", "--ttl", "60"],
            "s, m, h or d",
        ),
        ("no scopes", vec!["--tenant", "t"], "--scopes"),
    ];
    for (name, extra, expected) in rows {
        let mut args = vec!["auth", "token", "--key", key];
        args.extend(extra);
        let run = stella(&args);
        assert_eq!(run.code, 2, "row {name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "row {name}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "row {name} printed a token: {}",
            run.stdout
        );
    }

    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello\n").expect("write");
    let run = stella(&[
        "auth",
        "token",
        "--key",
        arg(&not_a_key),
        "--tenant",
        "t",
        "--scopes",
        "reports:read",
    ]);
    assert_eq!(run.code, 2, "not a key: {}", run.stderr);
    assert!(run.stderr.contains("not-a-key.pem"), "{}", run.stderr);

    let missing = dir.path().join("missing.pem");
    let run = stella(&["auth", "jwks", "--key", arg(&missing)]);
    assert_eq!(run.code, 5, "missing key file: {}", run.stderr);
    assert!(run.stderr.contains("missing.pem"), "{}", run.stderr);
}
