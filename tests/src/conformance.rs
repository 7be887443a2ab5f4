//! The Sigstore conformance suite's bundle-verification cases, run as the suite runs its client.
//!
//! The suite calls `CLIENT verify-bundle [--staging] --bundle FILE (--certificate-identity ID
//! --certificate-oidc-issuer URL | --key PEM) [--trusted-root FILE] (ARTIFACT | sha256:HEX)`, in
//! that order, and reads only the exit status. A case folder may contain `artifact`, `identity`,
//! `issuer`, `key.pub` and `trusted_root.json`. Without them the artifact is the suite's `a.txt`,
//! the signer is [`crate::IDENTITY`] issued by [`crate::ISSUER`], and the trusted root is the
//! public-good production one, which `stella` reads from `STELLA_SIGSTORE_TRUST_ROOTS_DIR`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::cli::{CliOutput, Stella};
use crate::vectors::Vectors;

/// Environment variable naming the directory with the public-good trusted roots.
pub const TRUST_ROOTS_DIR_ENV: &str = "STELLA_SIGSTORE_TRUST_ROOTS_DIR";
/// Environment variable naming the `stella` configuration file.
pub const CONFIG_ENV: &str = "STELLA_CONFIG";

/// How the artifact is passed on the command line. The suite runs every case both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactForm {
    /// The artifact file's path.
    File,
    /// `sha256:<hex>` of the artifact file.
    Digest,
}

/// The signer a case requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredSigner {
    /// `--certificate-identity` and `--certificate-oidc-issuer`.
    Identity { identity: String, issuer: String },
    /// `--key`, from the case's `key.pub`.
    Key(PathBuf),
}

/// One bundle-verification case with the suite's defaults applied.
#[derive(Debug, Clone)]
pub struct SuiteCase {
    /// Folder name. A name ending in `_fail` must fail verification.
    pub name: String,
    pub bundle: PathBuf,
    pub artifact: PathBuf,
    pub signer: RequiredSigner,
    /// The case's own `trusted_root.json`, or `None` for the configured production root.
    pub trusted_root: Option<PathBuf>,
}

impl SuiteCase {
    /// Loads case `name` of `bundle_verify_dir`, reading its optional files.
    ///
    /// # Panics
    ///
    /// Panics when the case has no bundle or an optional file cannot be read.
    pub fn load(bundle_verify_dir: &Path, name: &str) -> SuiteCase {
        let dir = bundle_verify_dir.join(name);
        let bundle = dir.join("bundle.sigstore.json");
        assert!(
            bundle.is_file(),
            "conformance case {name} has no bundle.sigstore.json in {}",
            dir.display()
        );
        let artifact = if dir.join("artifact").is_file() {
            dir.join("artifact")
        } else {
            bundle_verify_dir.join("a.txt")
        };
        let signer = if dir.join("key.pub").is_file() {
            RequiredSigner::Key(dir.join("key.pub"))
        } else {
            RequiredSigner::Identity {
                identity: optional_text(&dir.join("identity"))
                    .unwrap_or_else(|| crate::IDENTITY.to_owned()),
                issuer: optional_text(&dir.join("issuer"))
                    .unwrap_or_else(|| crate::ISSUER.to_owned()),
            }
        };
        let trusted_root = Some(dir.join("trusted_root.json")).filter(|path| path.is_file());
        SuiteCase {
            name: name.to_owned(),
            bundle,
            artifact,
            signer,
            trusted_root,
        }
    }

    /// Returns true when the case must fail verification.
    pub fn must_fail(&self) -> bool {
        self.name.ends_with("_fail")
    }

    /// Returns `sha256:<hex>` of the artifact file.
    pub fn artifact_digest(&self) -> String {
        let bytes = std::fs::read(&self.artifact).unwrap_or_else(|err| {
            panic!("cannot read artifact {}: {err}", self.artifact.display())
        });
        format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
    }

    /// Returns the `verify-bundle` arguments in the suite's order.
    pub fn args(&self, form: ArtifactForm) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["verify-bundle".into(), "--bundle".into()];
        args.push(self.bundle.clone().into());
        match &self.signer {
            RequiredSigner::Identity { identity, issuer } => {
                args.push("--certificate-identity".into());
                args.push(identity.into());
                args.push("--certificate-oidc-issuer".into());
                args.push(issuer.into());
            }
            RequiredSigner::Key(path) => {
                args.push("--key".into());
                args.push(path.clone().into());
            }
        }
        if let Some(path) = &self.trusted_root {
            args.push("--trusted-root".into());
            args.push(path.clone().into());
        }
        args.push(match form {
            ArtifactForm::File => self.artifact.clone().into(),
            ArtifactForm::Digest => self.artifact_digest().into(),
        });
        args
    }
}

fn optional_text(path: &Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    Some(text.trim().to_owned())
}

/// Returns the names of every case folder of `bundle_verify_dir`, sorted.
pub fn case_names(bundle_verify_dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(bundle_verify_dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", bundle_verify_dir.display()));
    let mut names: Vec<String> = entries
        .map(|entry| {
            entry.unwrap_or_else(|err| panic!("cannot list {}: {err}", bundle_verify_dir.display()))
        })
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            entry
                .file_name()
                .into_string()
                .unwrap_or_else(|name| panic!("case folder name {name:?} is not UTF-8"))
        })
        .collect();
    names.sort();
    names
}

/// Returns a runner for `stella verify-bundle` that calls no service, with the public-good
/// trusted roots configured through `STELLA_SIGSTORE_TRUST_ROOTS_DIR`.
///
/// `HOME` and `XDG_CONFIG_HOME` point at `working_dir`, so no configuration file of the machine
/// takes part.
pub fn offline_stella(vectors: &Vectors, working_dir: &Path) -> Stella {
    unconfigured_stella(working_dir).env(TRUST_ROOTS_DIR_ENV, vectors.sigstore_trust_roots())
}

/// Returns a runner like [`offline_stella`] without any trust roots directory configured.
pub fn unconfigured_stella(working_dir: &Path) -> Stella {
    Stella::offline(working_dir)
        .env_remove(TRUST_ROOTS_DIR_ENV)
        .env_remove(CONFIG_ENV)
        .env("HOME", working_dir)
        .env("XDG_CONFIG_HOME", working_dir.join("xdg"))
}

/// Returns the reason codes that a text-mode `verify-bundle` printed on stderr, one
/// `reason code: CODE` line each.
pub fn stderr_reason_codes(output: &CliOutput) -> BTreeSet<String> {
    output
        .stderr
        .lines()
        .filter_map(|line| line.strip_prefix("reason code: "))
        .map(|code| code.trim().to_owned())
        .collect()
}
