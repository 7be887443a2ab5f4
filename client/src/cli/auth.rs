//! `stella auth keygen`, `stella auth jwks` and `stella auth token`: Authority signing keys, the
//! JWKS documents the services load, and ES256 tokens for development, tests and the demo.
//!
//! None of these commands calls a service. A production Authority mints its tokens elsewhere;
//! the services only need its JWKS file (`--authority-jwks`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;
use stella_access::{AUDIENCE_ATTESTOR, AUDIENCE_GATE, DEFAULT_ISSUER, generate_signing_key};
use stella_authority::{
    Claims, Jwks, Scope, SigningKey, Tenant, mint, signing_key_from_pem, signing_key_to_pem,
    thumbprint,
};

use super::args::{DurationFault, format_rfc3339, now_unix, parse_duration_secs};
use super::files;
use super::output::{Exit, Failure, Report};

/// Maximum lifetime of a token that `stella auth token` mints: 30 days, in seconds. A stolen token
/// stays valid until it expires, because the services check tokens offline and keep no
/// revocation list.
pub const MAX_TOKEN_TTL_SECS: u64 = 30 * 86_400;

/// Maximum size of an Authority key file, in bytes. A P-256 key in PEM has about 250 bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Bytes of randomness in a token ID (`jti`).
const TOKEN_ID_BYTES: usize = 16;

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Generate an Authority signing key (ECDSA P-256, PKCS#8 PEM, file mode 0600).
    Keygen(KeygenArgs),
    /// Write the JWKS document with the public keys of Authority signing keys, for the services'
    /// --authority-jwks.
    Jwks(JwksArgs),
    /// Mint an Authority token (ES256 JWT) for one tenant and a set of scopes.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Output file for the private key. It must not exist yet.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct JwksArgs {
    /// Authority signing key (PKCS#8 or SEC1 PEM). Repeatable, so that the services accept the
    /// tokens of an old and a new key during a key rotation.
    #[arg(long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,
    /// Output file. Default: print the JWKS document on stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Authority signing key (PKCS#8 or SEC1 PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Tenant whose data the token may touch: 1 to 63 characters from a-z, 0-9, '.', '_' and
    /// '-', starting with a letter or digit.
    #[arg(long, value_name = "TENANT", value_parser = parse_tenant)]
    pub tenant: Tenant,
    /// Scopes the token grants, separated by commas, such as evidence:verify,reports:read.
    #[arg(long, value_name = "SCOPE,...", required = true, value_delimiter = ',', value_parser = parse_scope)]
    pub scopes: Vec<Scope>,
    /// Service the token is for (`aud`). Repeatable. Default: both stella-attestor and
    /// stella-gate; the gate forwards a caller's token to the attestor, so a token for the gate
    /// also needs stella-attestor.
    #[arg(long = "audience", value_name = "AUDIENCE")]
    pub audiences: Vec<String>,
    /// Lifetime from now: a whole number followed by s, m, h or d, at most 30d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: u64,
    /// Issuer (`iss`); the services accept only the issuer of their --authority-issuer.
    #[arg(long, value_name = "ISSUER", default_value = DEFAULT_ISSUER)]
    pub issuer: String,
    /// Subject (`sub`): the user or workload the token is for. Default: operator@<TENANT>.
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
}

/// Runs an `auth` command.
pub fn run(command: &AuthCommand) -> Result<Report, Failure> {
    match command {
        AuthCommand::Keygen(args) => keygen(args),
        AuthCommand::Jwks(args) => jwks(args),
        AuthCommand::Token(args) => token(args),
    }
}

/// `stella auth keygen`: writes a new key to a file that did not exist, readable only by its
/// owner.
fn keygen(args: &KeygenArgs) -> Result<Report, Failure> {
    let key = generate_signing_key().map_err(|error| Failure::other(error.to_string()))?;
    let pem = signing_key_to_pem(&key).map_err(|error| Failure::other(error.to_string()))?;
    write_new_private_file(&args.out, pem.as_bytes())?;

    let kid = thumbprint(key.verifying_key());
    let out = args.out.display().to_string();
    let mut report = Report::new(Exit::Success);
    report
        .field("key_file", out.clone())
        .field("kid", kid.clone())
        .line(format!("wrote Authority signing key {out} (kid {kid})"));
    Ok(report)
}

/// Creates `path` with mode 0600 and writes `bytes`. An existing file, or a symbolic link at
/// `path`, is never replaced: `create_new` fails on both.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Failure::usage(format!(
                "{} already exists; stella auth keygen never overwrites a key, so choose a new \
                 path or remove the file first",
                path.display()
            )));
        }
        Err(error) => return Err(Failure::io("create", path, &error)),
    };
    if let Err(error) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(Failure::io("write", path, &error));
    }
    Ok(())
}

/// `stella auth jwks`: the public keys of one or more signing keys, each under its RFC 7638
/// thumbprint as `kid`.
fn jwks(args: &JwksArgs) -> Result<Report, Failure> {
    let mut keys = Vec::with_capacity(args.keys.len());
    for path in &args.keys {
        let key = read_signing_key(path)?;
        keys.push((thumbprint(key.verifying_key()), *key.verifying_key()));
    }
    let kids: Vec<String> = keys.iter().map(|(kid, _)| kid.clone()).collect();
    let document = Jwks::from_public_keys(keys)
        .map_err(|error| Failure::usage(format!("--key: {error}; give each key file once")))?
        .to_json();

    let mut report = Report::new(Exit::Success);
    report.field("kids", kids.clone());
    match &args.out {
        Some(out) => {
            files::write_atomically(out, document.as_bytes())?;
            let out = out.display().to_string();
            report.field("out", out.clone()).line(format!(
                "wrote JWKS with {} key(s) to {out}: {}",
                kids.len(),
                kids.join(", ")
            ));
        }
        None => {
            let parsed: Value = serde_json::from_str(&document)
                .map_err(|error| Failure::other(format!("the JWKS is not valid JSON: {error}")))?;
            report.field("jwks", parsed).line(document.trim_end());
        }
    }
    Ok(report)
}

/// `stella auth token`: mints a token that is valid from now for `--ttl`.
fn token(args: &TokenArgs) -> Result<Report, Failure> {
    let key = read_signing_key(&args.key)?;
    let kid = thumbprint(key.verifying_key());
    let audience = if args.audiences.is_empty() {
        vec![AUDIENCE_ATTESTOR.to_owned(), AUDIENCE_GATE.to_owned()]
    } else {
        args.audiences.clone()
    };
    let now = now_unix();
    let ttl = i64::try_from(args.ttl).map_err(|_| Failure::usage("--ttl is too large"))?;
    let claims = Claims {
        issuer: args.issuer.clone(),
        audience,
        subject: args
            .subject
            .clone()
            .unwrap_or_else(|| format!("operator@{}", args.tenant)),
        tenant: args.tenant.clone(),
        scopes: args.scopes.clone(),
        token_id: random_token_id()?,
        issued_at: now,
        not_before: now,
        expires_at: now.saturating_add(ttl),
    };
    let token = mint(&key, &kid, &claims).map_err(|error| Failure::usage(error.to_string()))?;

    let scopes: Vec<&str> = claims.scopes.iter().map(|scope| scope.as_str()).collect();
    let mut report = Report::new(Exit::Success);
    report
        .field("token", token.clone())
        .field("kid", kid)
        .field("tenant", claims.tenant.as_str())
        .field("subject", claims.subject.clone())
        .field("scopes", scopes)
        .field("audience", claims.audience.clone())
        .field("token_id", claims.token_id.clone())
        .field("expires_at", format_rfc3339(claims.expires_at))
        .line(token);
    Ok(report)
}

/// Reads an Authority signing key, naming the file in every error.
fn read_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let bytes = files::read_regular(path, MAX_KEY_FILE_BYTES)
        .map_err(|error| error.into_failure("read the key file", path))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::usage(format!(
            "{}: the key file is not UTF-8 PEM text",
            path.display()
        ))
    })?;
    signing_key_from_pem(&text).map_err(|error| {
        Failure::usage(format!(
            "{}: {error}; expected a P-256 private key as written by stella auth keygen",
            path.display()
        ))
    })
}

/// Returns a random token ID: 16 bytes from the operating system, in hex.
fn random_token_id() -> Result<String, Failure> {
    let mut bytes = [0_u8; TOKEN_ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| {
        Failure::other(format!(
            "cannot make a token ID: the system random number generator failed: {error}"
        ))
    })?;
    Ok(hex::encode(bytes))
}

/// Parses `--tenant`, naming the rejected value.
pub fn parse_tenant(text: &str) -> Result<Tenant, String> {
    Tenant::parse(text).map_err(|error| format!("{text:?}: {error}"))
}

/// Parses one scope name of `--scopes`.
pub fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse::<Scope>().map_err(|error| error.to_string())
}

/// Parses `--ttl`: a whole number followed by `s`, `m`, `h` or `d`, from 1 second to
/// [`MAX_TOKEN_TTL_SECS`]. Returns seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let seconds = match parse_duration_secs(text) {
        Ok(seconds) => Some(seconds),
        Err(DurationFault::Unit | DurationFault::Number) => {
            return Err(format!(
                "invalid lifetime {text:?}: expected a whole number followed by s, m, h or d (1h)"
            ));
        }
        Err(DurationFault::TooLarge) => None,
    };
    match seconds {
        Some(0) => Err(format!("invalid lifetime {text:?}: it must be positive")),
        Some(seconds) if seconds <= MAX_TOKEN_TTL_SECS => Ok(seconds),
        _ => Err(format!(
            "invalid lifetime {text:?}: the maximum is 30d ({MAX_TOKEN_TTL_SECS} s)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_accepts_each_unit() {
        let rows = [
            ("90s", 90),
            ("45m", 45 * 60),
            ("1h", 3_600),
            ("30d", MAX_TOKEN_TTL_SECS),
        ];
        for (text, want) in rows {
            assert_eq!(parse_ttl(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn ttl_rejects_zero_and_too_long() {
        for text in [
            "0s",
            "0d",
            "31d",
            "721h",
            "2592001s",
            "99999999999999999999d",
        ] {
            assert!(parse_ttl(text).is_err(), "{text:?} was accepted");
        }
        let error = parse_ttl("31d").expect_err("over 30 days");
        assert!(error.contains("30d"), "{error}");
    }

    #[test]
    fn ttl_rejects_bad_syntax() {
        for text in ["", "h", "1", "1w", "-1h", "1.5h", " 1h", "1H"] {
            assert!(parse_ttl(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn scope_names_checked() {
        assert_eq!(parse_scope("evidence:verify"), Ok(Scope::EvidenceVerify));
        let error = parse_scope("evidence:write").expect_err("unknown scope");
        assert!(error.contains("evidence:write"), "{error}");
        assert!(error.contains("reports:read"), "{error}");
    }

    #[test]
    fn tenant_syntax_checked() {
        assert_eq!(
            parse_tenant("team-a.prod").map(|tenant| tenant.as_str().to_owned()),
            Ok("team-a.prod".to_owned())
        );
        for text in ["", "Team", "-a", "a/b", "a b"] {
            let error = parse_tenant(text).expect_err("invalid tenant");
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn token_ids_differ() {
        let first = random_token_id().expect("random");
        let second = random_token_id().expect("random");
        assert_eq!(first.len(), 2 * TOKEN_ID_BYTES);
        assert_ne!(first, second);
    }
}
