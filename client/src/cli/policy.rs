//! `stella policy import|show`: the caller's tenant's policy versions at the gate.
//!
//! The gate validates an imported document before it stores anything, and names the file, line
//! and field of the first fault. The newest imported version is the active one, which every
//! later evaluation of the tenant uses. A tenant that imported none uses the gate's `--policy`
//! file, shown as version 0.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use stella_proto::gate::v1::PolicyDocument;
use stella_verify::reason::ReasonCode;

use super::Services;
use super::args::{self, Sha256Digest};
use super::files::{self, ReadError};
use super::output::{Exit, Failure, Report};

/// Maximum size of a policy document, in bytes: the gate's limit (1 MiB).
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file at the gate and make it the tenant's active policy.
    Import(PolicyImportArgs),
    /// Print or save one of the tenant's policy versions (default: the active one).
    Show(PolicyShowArgs),
}

#[derive(Debug, Args)]
pub struct PolicyImportArgs {
    /// Policy document (YAML), at most 1 MiB.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    /// Policy version to show (sha256:HEX), as `policy import` or a decision record's
    /// policy_digest names it. Default: the active policy.
    #[arg(long, value_name = "sha256:HEX", value_parser = args::parse_sha256_digest)]
    pub digest: Option<Sha256Digest>,
    /// Write the document to this file, byte for byte, instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs a `stella policy` command.
pub async fn run(services: &Services, command: &PolicyCommand) -> Result<Report, Failure> {
    match command {
        PolicyCommand::Import(args) => import(services, args).await,
        PolicyCommand::Show(args) => show(services, args).await,
    }
}

/// `stella policy import`.
async fn import(services: &Services, args: &PolicyImportArgs) -> Result<Report, Failure> {
    let document = read_policy(&args.file)?;
    let local_digest = files::sha256_prefixed(&document);
    let mut gate = services.gate().await?;
    let version = gate
        .import_policy(document, &args.file.display().to_string())
        .await?;
    if version.digest != local_digest {
        return Err(Failure::other(format!(
            "the gate stored the policy as {}, but {} has the digest {local_digest}; check the gate",
            version.digest,
            args.file.display()
        )));
    }

    let mut report = Report::new(Exit::Success);
    report
        .field("file", args.file.display().to_string())
        .field("digest", version.digest.clone())
        .field("version", version.version)
        .field("already_active", version.already_active);
    if version.already_active {
        report.line(format!(
            "policy {} is already the active version {}, so nothing changed",
            version.digest, version.version
        ));
    } else {
        report.line(format!(
            "policy {} imported as version {}, which is now the active policy",
            version.digest, version.version
        ));
    }
    Ok(report)
}

/// Reads a policy file. A file over [`MAX_POLICY_BYTES`] fails with `ERR_POLICY_INVALID`, as
/// the gate would reject it.
fn read_policy(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    files::read_regular(path, MAX_POLICY_BYTES).map_err(|error| match error {
        ReadError::TooLarge { size, limit } => Failure::rejected(
            format!(
                "{}: {size} bytes is over the limit of {limit} bytes for a policy document",
                path.display()
            ),
            ReasonCode::PolicyInvalid.as_str(),
        ),
        other => other.into_failure("read", path),
    })
}

/// `stella policy show`.
async fn show(services: &Services, args: &PolicyShowArgs) -> Result<Report, Failure> {
    let requested = args
        .digest
        .as_ref()
        .map(Sha256Digest::prefixed)
        .unwrap_or_default();
    let mut gate = services.gate().await?;
    let document = gate.get_policy(&requested).await?;
    check_document(&document, &requested)?;

    let mut report = Report::new(Exit::Success);
    report
        .field("digest", document.digest.clone())
        .field("version", document.version)
        .field("active", document.active);
    let summary = document_summary(&document);
    match &args.out {
        Some(out) => {
            files::write_atomically(out, &document.policy_yaml)?;
            report.field("out", out.display().to_string());
            report.line(format!("{summary} written to {}", out.display()));
        }
        None => {
            let text = String::from_utf8_lossy(&document.policy_yaml).into_owned();
            report.field("policy_yaml", text.clone());
            report.error_line(summary);
            for line in text.lines() {
                report.line(line);
            }
        }
    }
    Ok(report)
}

/// Checks that the gate returned the requested version and that its bytes have its digest.
fn check_document(document: &PolicyDocument, requested: &str) -> Result<(), Failure> {
    if !requested.is_empty() && document.digest != requested {
        return Err(Failure::other(format!(
            "the gate returned policy {} instead of the requested {requested}",
            document.digest
        )));
    }
    let actual = files::sha256_prefixed(&document.policy_yaml);
    if actual != document.digest {
        return Err(Failure::other(format!(
            "the gate returned a policy document whose digest is {actual}, not {} as stated",
            document.digest
        )));
    }
    Ok(())
}

/// Describes a version in one line, such as `policy sha256:... version 2 (active)`.
fn document_summary(document: &PolicyDocument) -> String {
    let origin = if document.version == 0 {
        "the gate's site-wide default"
    } else {
        "imported"
    };
    let state = if document.active {
        "active"
    } else {
        "not active"
    };
    format!(
        "policy {} version {} ({origin}, {state})",
        document.digest, document.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(yaml: &[u8], version: u64, active: bool) -> PolicyDocument {
        PolicyDocument {
            digest: files::sha256_prefixed(yaml),
            version,
            policy_yaml: yaml.to_vec(),
            active,
        }
    }

    #[test]
    fn document_digest_checked() {
        let mut changed = document(b"environments: {}\n", 1, true);
        assert!(check_document(&changed, "").is_ok());
        changed.policy_yaml.push(b' ');
        let failure = check_document(&changed, "").expect_err("altered bytes accepted");
        assert_eq!(failure.exit, Exit::Other);
    }

    #[test]
    fn document_must_match_request() {
        let returned = document(b"a: 1\n", 2, false);
        let other = format!("sha256:{}", "00".repeat(32));
        let failure = check_document(&returned, &other).expect_err("another version accepted");
        assert!(failure.message.contains(&other), "{}", failure.message);
        assert!(check_document(&returned, &returned.digest.clone()).is_ok());
    }

    #[test]
    fn summary_names_default_and_state() {
        let site = document(b"a: 1\n", 0, true);
        assert!(
            document_summary(&site).contains("version 0 (the gate's site-wide default, active)")
        );
        let old = document(b"a: 2\n", 3, false);
        assert!(document_summary(&old).contains("version 3 (imported, not active)"));
    }

    #[test]
    fn oversized_policy_is_policy_invalid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("policy.yaml");
        let size = usize::try_from(MAX_POLICY_BYTES).expect("small") + 1;
        std::fs::write(&path, vec![b'#'; size]).expect("write");
        let failure = read_policy(&path).expect_err("oversized policy accepted");
        assert_eq!(failure.exit, Exit::Failure);
        assert_eq!(failure.reason_code.as_deref(), Some("ERR_POLICY_INVALID"));
        assert!(
            failure.message.contains("policy.yaml"),
            "{}",
            failure.message
        );
    }
}
