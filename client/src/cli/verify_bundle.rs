//! `stella verify-bundle`: verifies one Sigstore bundle offline, with the command line of the
//! Sigstore conformance suite's client.
//!
//! The command runs `stella_verify::evidence` in this process with the bundle's own inclusion
//! proof and checkpoint. It calls no service, opens no socket and starts no async runtime. The
//! library also checks the required signer: `--certificate-identity` and
//! `--certificate-oidc-issuer` must equal the certificate's SAN and OIDC issuer exactly (no
//! patterns), and `--key` requires a bundle signed with that key.
//!
//! Without `--trusted-root`, the trusted root comes from the directory that `config` names
//! (`production.trusted_root.json`, or `staging.trusted_root.json` with `--staging`), because an
//! air-gapped site cannot fetch it with TUF.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stella_verify::evidence::{
    Artifact, EntryReport, ExpectedSigner, Outcome, VerifyInput,
    verify_bundle_with_own_proof_signed_by,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::trust_root::{TrustSet, parse_trusted_root};
use stella_verify::x509::PublicKey;

use super::VerifyBundleArgs;
use super::args;
use super::config::{self, TrustRootsDir};
use super::files;
use super::output::{Exit, Failure, Report, codes_text};

/// File name of the public-good production trusted root in the trust roots directory.
pub const PRODUCTION_TRUSTED_ROOT: &str = "production.trusted_root.json";
/// File name of the public-good staging trusted root in the trust roots directory.
pub const STAGING_TRUSTED_ROOT: &str = "staging.trusted_root.json";
/// PEM label of a `--key` file.
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// Read buffer for hashing an artifact file, in bytes.
const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// The signer that the command line requires.
enum RequiredSigner {
    /// A Fulcio certificate with exactly this SAN and OIDC issuer.
    Identity { identity: String, issuer: String },
    /// A bundle signed with this public key (DER `SubjectPublicKeyInfo`).
    Key { spki_der: Vec<u8> },
}

/// The outcome of one verification, before it is printed.
struct Verdict {
    /// Reason codes of every failed check, sorted.
    codes: BTreeSet<ReasonCode>,
    /// One line per failure, each starting with its reason code.
    detail: Vec<String>,
    /// The library's report, or `None` when the trusted root was rejected before verification.
    entry: Option<EntryReport>,
}

impl Verdict {
    fn verified(&self) -> bool {
        self.codes.is_empty()
            && self
                .entry
                .as_ref()
                .is_some_and(|entry| entry.outcome == Outcome::Verified)
    }

    /// Builds the verdict of a verification that could not start.
    fn rejected(code: ReasonCode, detail: &str) -> Verdict {
        Verdict {
            codes: BTreeSet::from([code]),
            detail: vec![format!("{code}: {detail}")],
            entry: None,
        }
    }
}

/// `stella verify-bundle`: exit 0 when the bundle verifies, 1 when it does not.
pub fn run(args: &VerifyBundleArgs) -> Result<Report, Failure> {
    let required = required_signer(args)?;
    let artifact = artifact_digest(&args.artifact)?;
    let bundle_json = files::read(&args.bundle)?;
    let trusted_root_path = trusted_root_path(args, &config::process_env)?;
    let trusted_root_json = read_trusted_root(&trusted_root_path, args.trusted_root.is_none())?;

    let verdict = verify(
        &bundle_json,
        &trusted_root_json,
        &trusted_root_path,
        &required,
        artifact,
        args::now_unix(),
    );
    Ok(render(args, &trusted_root_path, artifact, &verdict))
}

fn required_signer(args: &VerifyBundleArgs) -> Result<RequiredSigner, Failure> {
    match (
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
        &args.key,
    ) {
        (Some(identity), Some(issuer), None) => Ok(RequiredSigner::Identity {
            identity: identity.clone(),
            issuer: issuer.clone(),
        }),
        (None, None, Some(file)) => Ok(RequiredSigner::Key {
            spki_der: read_public_key(file)?,
        }),
        // clap's argument groups make every other combination a usage error first.
        _ => Err(Failure::usage(
            "give either --certificate-identity ID with --certificate-oidc-issuer URL, or --key PEM",
        )),
    }
}

/// Reads a `--key` file: one PEM `PUBLIC KEY` block of a key type the verifier supports.
fn read_public_key(file: &Path) -> Result<Vec<u8>, Failure> {
    let pem = files::read(file)?;
    let invalid = |detail: String| {
        Failure::usage(format!(
            "--key {}: {detail}. Expected a PEM \"{PUBLIC_KEY_LABEL}\" block (SubjectPublicKeyInfo)",
            file.display()
        ))
    };
    let (label, der_bytes) =
        der::pem::decode_vec(&pem).map_err(|error| invalid(format!("invalid PEM: {error}")))?;
    if label != PUBLIC_KEY_LABEL {
        return Err(invalid(format!("the PEM label is {label:?}")));
    }
    PublicKey::from_spki_der(&der_bytes)
        .map_err(|error| invalid(format!("unsupported public key: {error}")))?;
    Ok(der_bytes)
}

/// Returns the SHA-256 digest of the artifact: the `sha256:HEX` argument itself, or the hash of
/// the file it names.
fn artifact_digest(artifact: &Path) -> Result<[u8; 32], Failure> {
    if let Some(text) = artifact.to_str()
        && text.starts_with("sha256:")
    {
        let digest = args::parse_sha256_digest(text).map_err(Failure::usage)?;
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(&digest.hex, &mut bytes)
            .map_err(|error| Failure::usage(format!("invalid digest {text:?}: {error}")))?;
        return Ok(bytes);
    }
    hash_file(artifact)
}

/// Hashes a regular file as it streams, so an artifact of any size fits in a fixed buffer.
fn hash_file(path: &Path) -> Result<[u8; 32], Failure> {
    let (mut file, _) =
        files::open_regular(path).map_err(|error| error.into_failure("read", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; HASH_BUFFER_BYTES];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(Failure::io("read", path, &error)),
        };
        if read == 0 {
            break;
        }
        // `Read::read` returns at most the buffer's length, so the range always exists.
        hasher.update(buffer.get(..read).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

/// Returns `--trusted-root`, else the production or staging file of the trust roots directory.
fn trusted_root_path(
    args: &VerifyBundleArgs,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf, Failure> {
    if let Some(path) = &args.trusted_root {
        return Ok(path.clone());
    }
    let TrustRootsDir { dir, setting } = config::trust_roots_dir(env)?;
    let name = if args.staging {
        STAGING_TRUSTED_ROOT
    } else {
        PRODUCTION_TRUSTED_ROOT
    };
    let path = dir.join(name);
    if !path.exists() {
        return Err(Failure::rejected(
            format!(
                "trusted root {} not found: {setting} names the directory {}, which must contain \
                 {name}",
                path.display(),
                dir.display()
            ),
            ReasonCode::TrustRootMissing.as_str(),
        ));
    }
    Ok(path)
}

fn read_trusted_root(path: &Path, from_directory: bool) -> Result<Vec<u8>, Failure> {
    files::read_regular(path, files::MAX_INPUT_BYTES).map_err(|error| {
        if from_directory && error.is_not_found() {
            Failure::rejected(
                format!("trusted root {} not found", path.display()),
                ReasonCode::TrustRootMissing.as_str(),
            )
        } else {
            error.into_failure("read the trusted root", path)
        }
    })
}

fn verify(
    bundle_json: &[u8],
    trusted_root_json: &[u8],
    trusted_root_path: &Path,
    required: &RequiredSigner,
    artifact: [u8; 32],
    now: i64,
) -> Verdict {
    let trusted_root = match parse_trusted_root(trusted_root_json) {
        Ok(trusted_root) => trusted_root,
        Err(error) => {
            let detail = format!(
                "trusted root {}: {}",
                trusted_root_path.display(),
                one_line(&error.to_string())
            );
            return Verdict::rejected(error.reason_code(), &detail);
        }
    };

    // This command has no trust root set bundle, so no set expiry applies: `expires_at` is the
    // largest time, and only the trusted root's own validity windows (of each log, CA and
    // timestamp authority) limit what verifies.
    let trust = TrustSet {
        digest: files::sha256_prefixed(trusted_root_json),
        version: 0,
        expires_at: i64::MAX,
        trusted_root,
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    };
    let expected = match required {
        RequiredSigner::Identity { identity, issuer } => {
            ExpectedSigner::Identity { identity, issuer }
        }
        RequiredSigner::Key { spki_der } => ExpectedSigner::Key { spki_der },
    };
    let entry = verify_bundle_with_own_proof_signed_by(
        &VerifyInput {
            bundle_json,
            trust: &trust,
            artifact: Artifact::Sha256(artifact),
            now,
        },
        &expected,
    );
    Verdict {
        codes: entry.reason_codes.clone(),
        detail: entry.detail.clone(),
        entry: Some(entry),
    }
}

fn render(
    args: &VerifyBundleArgs,
    trusted_root_path: &Path,
    artifact: [u8; 32],
    verdict: &Verdict,
) -> Report {
    let verified = verdict.verified();
    let bundle = args.bundle.display().to_string();
    let artifact_digest = format!("sha256:{}", hex::encode(artifact));
    let codes: Vec<String> = verdict.codes.iter().map(|code| code.to_string()).collect();
    let entry = verdict.entry.as_ref();
    let signer = entry.and_then(|entry| entry.signer.as_ref());
    let signing_time = entry.and_then(|entry| entry.signing_time);

    let mut report = Report::new(if verified {
        Exit::Success
    } else {
        Exit::Failure
    });
    report
        .field("bundle", bundle.clone())
        .field("artifact", artifact_digest.clone())
        .field("trusted_root", trusted_root_path.display().to_string())
        .field("outcome", if verified { "verified" } else { "failed" })
        .field("reason_codes", codes.clone())
        .field("detail", verdict.detail.clone())
        .field(
            "signer",
            signer.map_or(
                Value::Null,
                |signer| json!({"identity": signer.identity, "issuer": signer.issuer}),
            ),
        )
        .field(
            "signing_time",
            signing_time.map_or(Value::Null, |time| Value::from(args::format_rfc3339(time))),
        )
        .field(
            "report",
            entry
                .and_then(|entry| serde_json::to_value(entry).ok())
                .unwrap_or(Value::Null),
        );

    if !verified {
        report.error_line(format!("error: {bundle} did not verify"));
        for code in &codes {
            report.error_line(format!("reason code: {code}"));
        }
        if codes.is_empty() {
            // The library records a code with every failure, so this only guards a future gap.
            report.error_line(format!("reason codes: {}", codes_text(&codes)));
        }
        for line in &verdict.detail {
            report.error_line(format!("  {line}"));
        }
        return report;
    }

    report.line(format!("verified {bundle}"));
    report.line(format!("  artifact: {artifact_digest}"));
    if let Some(signer) = signer {
        if signer.issuer.is_empty() {
            report.line(format!("  signer: {}", signer.identity));
        } else {
            report.line(format!(
                "  signer: {} (issuer {})",
                signer.identity, signer.issuer
            ));
        }
    }
    if let Some(time) = signing_time {
        report.line(format!("  signing time: {}", args::format_rfc3339(time)));
    }
    if let Some(tlog) = entry.and_then(|entry| entry.tlog.as_ref()) {
        report.line(format!(
            "  log entry: {} index {}, checkpoint size {}",
            tlog.origin, tlog.log_index, tlog.checkpoint_size
        ));
    }
    report
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_digest_parses_prefix() {
        let hex = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
        let digest = artifact_digest(Path::new(&format!("sha256:{hex}"))).expect("valid digest");
        assert_eq!(hex::encode(digest), hex);
    }

    #[test]
    fn artifact_digest_rejects_bad_hex() {
        let rows = [
            ("short", "sha256:abcd"),
            (
                "uppercase",
                "sha256:A0CFC71271D6E278E57CD332FF957C3F7043FDDA354C4CBB190A30D56EFA01BF",
            ),
            ("empty", "sha256:"),
        ];
        for (name, text) in rows {
            let failure = artifact_digest(Path::new(text)).expect_err(name);
            assert_eq!(failure.exit, Exit::Usage, "row {name}");
        }
    }

    #[test]
    fn artifact_file_is_hashed() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("artifact");
        // Larger than the read buffer, so the loop runs more than once.
        let content = vec![0x61_u8; HASH_BUFFER_BYTES * 2 + 7];
        std::fs::write(&path, &content).expect("write artifact");
        let digest = artifact_digest(&path).expect("hashed");
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&content)));
    }

    #[test]
    fn missing_artifact_names_file() {
        let failure = artifact_digest(Path::new("/nonexistent/a.txt")).expect_err("missing");
        assert_eq!(failure.exit, Exit::Other);
        assert!(
            failure.message.contains("/nonexistent/a.txt"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn public_key_rejects_bad_pem() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let rows = [
            ("not pem", "hello\n"),
            (
                "certificate label",
                "-----BEGIN CERTIFICATE-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExRRST79+PsrRBnGAI4cMu6Omz2Jh\nfwlMW+gIutNKVRaMyS4rQKvgngc5p8UbLj55pVHhIoAxi/SRgURZI0J3Xw==\n-----END CERTIFICATE-----\n",
            ),
            (
                "not a key",
                "-----BEGIN PUBLIC KEY-----\naGVsbG8=\n-----END PUBLIC KEY-----\n",
            ),
        ];
        for (name, text) in rows {
            let path = temp.path().join("key.pem");
            std::fs::write(&path, text).expect("write key");
            let failure = read_public_key(&path).expect_err(name);
            assert_eq!(failure.exit, Exit::Usage, "row {name}: {}", failure.message);
            assert!(
                failure.message.contains("key.pem"),
                "row {name}: {}",
                failure.message
            );
        }
    }

    #[test]
    fn public_key_accepts_p256() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("key.pub");
        std::fs::write(
            &path,
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExRRST79+PsrRBnGAI4cMu6Omz2Jh\nfwlMW+gIutNKVRaMyS4rQKvgngc5p8UbLj55pVHhIoAxi/SRgURZI0J3Xw==\n-----END PUBLIC KEY-----\n",
        )
        .expect("write key");
        let der_bytes = read_public_key(&path).expect("valid key");
        assert_eq!(der_bytes.len(), 91);
    }
}
