//! The Rekor v2 cases of the Sigstore conformance suite's `bundle-verify` folder, and one call of
//! each verifier on them.
//!
//! A case uses the suite's defaults: the `artifact` file of its folder or else the suite's `a.txt`,
//! and the `identity` and `issuer` files of its folder or else the suite's default signer. Every
//! Rekor v2 case carries its own `trusted_root.json`.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use sigstore_verify::VerificationPolicy;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, Sha256Hash};
use stella_verify::cache::{CacheCapacity, VerificationCache};
use stella_verify::evidence::{
    Artifact, ExpectedSigner, Outcome, VerifyInput, verify_bundle_with_own_proof_signed_by,
    verify_bundle_with_own_proof_signed_by_cached,
};
use stella_verify::trust_root::{TrustSet, parse_trusted_root};

/// The version that `Cargo.toml` pins, printed with the results.
pub const SIGSTORE_VERIFY_VERSION: &str = "0.15.1";

/// The vectors folder shared by the workspace, read in place.
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Verification time of stella-verify, Unix seconds (2026-05-28, after every case's signing time).
/// The conformance tests of stella-verify use the same time. sigstore-verify 0.15.1 takes no time
/// input and reads the system clock (`jiff::Timestamp::now`).
pub const VERIFICATION_TIME: i64 = 1_780_000_000;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The verifiers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verifier {
    /// stella-verify without a cache, as `stella verify-bundle` calls it.
    Stella,
    /// stella-verify with a `VerificationCache` that lives as long as the prepared case, so
    /// every verification after the first finds the case's chains and checkpoint signatures.
    StellaCached,
    SigstoreVerify,
}

impl Verifier {
    /// Every verifier, in the column order of the printed tables.
    pub const ALL: [Verifier; 3] = [
        Verifier::Stella,
        Verifier::StellaCached,
        Verifier::SigstoreVerify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verifier::Stella => "stella-verify",
            Verifier::StellaCached => "stella-verify+cache",
            Verifier::SigstoreVerify => "sigstore-verify",
        }
    }

    pub fn from_name(name: &str) -> Option<Verifier> {
        Verifier::ALL
            .into_iter()
            .find(|verifier| verifier.name() == name)
    }
}

/// The files of one case, read once.
pub struct Case {
    pub name: String,
    pub bundle_json: String,
    pub trusted_root_json: String,
    pub artifact_sha256: [u8; 32],
    pub identity: String,
    pub issuer: String,
}

impl Case {
    /// Reads the case folder `name` of the suite's `bundle-verify` folder.
    pub fn load(name: &str) -> Result<Case, String> {
        let suite = suite_dir();
        let case_dir = suite.join(name);
        let key_path = case_dir.join("key.pub");
        if key_path.is_file() {
            return Err(format!(
                "case {name} requires the managed key {}, and this benchmark compares \
                 certificate identities only",
                key_path.display()
            ));
        }
        let artifact_path = if case_dir.join("artifact").is_file() {
            case_dir.join("artifact")
        } else {
            suite.join("a.txt")
        };
        let text_or_default = |file: &str, default: &str| -> Result<String, String> {
            let path = case_dir.join(file);
            if path.is_file() {
                Ok(read_text(&path)?.trim().to_owned())
            } else {
                Ok(default.to_owned())
            }
        };
        Ok(Case {
            name: name.to_owned(),
            bundle_json: read_text(&case_dir.join("bundle.sigstore.json"))?,
            trusted_root_json: read_text(&case_dir.join("trusted_root.json"))?,
            artifact_sha256: Sha256::digest(read(&artifact_path)?).into(),
            identity: text_or_default("identity", DEFAULT_IDENTITY)?,
            issuer: text_or_default("issuer", DEFAULT_ISSUER)?,
        })
    }

    /// Returns true when the suite expects every verifier to reject the case, which a folder
    /// name ending in `_fail` marks.
    pub fn expected_to_fail(&self) -> bool {
        self.name.ends_with("_fail")
    }
}

/// A case with the trust material of both verifiers prepared. A trusted root that a verifier
/// rejects is kept as that verifier's error, so the case still counts as rejected by it.
pub struct PreparedCase {
    pub case: Case,
    stella: Result<TrustSet, String>,
    cache: VerificationCache,
    sigstore: Result<SigstoreSetup, String>,
}

struct SigstoreSetup {
    verifier: sigstore_verify::Verifier,
    policy: VerificationPolicy,
}

impl PreparedCase {
    pub fn new(case: Case) -> PreparedCase {
        PreparedCase {
            stella: stella_trust_set(&case.trusted_root_json),
            cache: VerificationCache::new(CacheCapacity::default()),
            sigstore: sigstore_setup(&case),
            case,
        }
    }

    /// Verifies the bundle once, parsing its JSON, and returns the verifier's error on rejection.
    pub fn verify(&self, verifier: Verifier) -> Result<(), String> {
        match verifier {
            Verifier::Stella => verify_with_stella(&self.case, self.stella.as_ref()?, None),
            Verifier::StellaCached => {
                verify_with_stella(&self.case, self.stella.as_ref()?, Some(&self.cache))
            }
            Verifier::SigstoreVerify => {
                let setup = self.sigstore.as_ref()?;
                verify_with_sigstore(&self.case, &setup.verifier, &setup.policy)
            }
        }
    }
}

/// Builds the trust set as `stella verify-bundle` does: no trust set bundle, so no set expiry.
pub fn stella_trust_set(trusted_root_json: &str) -> Result<TrustSet, String> {
    let trusted_root = parse_trusted_root(trusted_root_json.as_bytes())
        .map_err(|error| format!("trusted root rejected: {error}"))?;
    Ok(TrustSet {
        digest: format!(
            "sha256:{}",
            hex::encode(Sha256::digest(trusted_root_json.as_bytes()))
        ),
        version: 0,
        expires_at: i64::MAX,
        trusted_root,
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    })
}

/// Verifies with the call that `stella verify-bundle` makes: the bundle's own inclusion proof and
/// an exact identity and issuer. With a cache, the call is its `_cached` form.
pub fn verify_with_stella(
    case: &Case,
    trust: &TrustSet,
    cache: Option<&VerificationCache>,
) -> Result<(), String> {
    let input = VerifyInput {
        bundle_json: case.bundle_json.as_bytes(),
        trust,
        artifact: Artifact::Sha256(case.artifact_sha256),
        now: VERIFICATION_TIME,
    };
    let signer = ExpectedSigner::Identity {
        identity: &case.identity,
        issuer: &case.issuer,
    };
    let report = match cache {
        Some(cache) => verify_bundle_with_own_proof_signed_by_cached(&input, &signer, cache),
        None => verify_bundle_with_own_proof_signed_by(&input, &signer),
    };
    if report.outcome == Outcome::Verified && report.reason_codes.is_empty() {
        Ok(())
    } else {
        Err(report.detail.join("; "))
    }
}

fn sigstore_setup(case: &Case) -> Result<SigstoreSetup, String> {
    let trusted_root = TrustedRoot::from_json(&case.trusted_root_json)
        .map_err(|error| format!("trusted root rejected: {error}"))?;
    let verifier = sigstore_verify::Verifier::new(&trusted_root)
        .map_err(|error| format!("trusted root rejected: {error}"))?;
    Ok(SigstoreSetup {
        verifier,
        policy: VerificationPolicy::new(case.identity.as_str(), case.issuer.as_str()),
    })
}

/// Verifies with sigstore-verify's `Verifier::verify`, given the artifact's digest and an exact
/// identity and issuer.
fn verify_with_sigstore(
    case: &Case,
    verifier: &sigstore_verify::Verifier,
    policy: &VerificationPolicy,
) -> Result<(), String> {
    let bundle = Bundle::from_json(&case.bundle_json)
        .map_err(|error| format!("bundle rejected: {error}"))?;
    verifier
        .verify(Sha256Hash::new(case.artifact_sha256), &bundle, policy)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Verifies a freshly loaded case once with a verifier, preparing its trust material first, as a
/// new process does. A new process starts with an empty cache, so the cached verifier is measured
/// with a cache created here.
pub fn verify_from_scratch(case: &Case, verifier: Verifier) -> Result<(), String> {
    match verifier {
        Verifier::Stella => {
            verify_with_stella(case, &stella_trust_set(&case.trusted_root_json)?, None)
        }
        Verifier::StellaCached => {
            let cache = VerificationCache::new(CacheCapacity::default());
            verify_with_stella(
                case,
                &stella_trust_set(&case.trusted_root_json)?,
                Some(&cache),
            )
        }
        Verifier::SigstoreVerify => {
            let setup = sigstore_setup(case)?;
            verify_with_sigstore(case, &setup.verifier, &setup.policy)
        }
    }
}

fn suite_dir() -> PathBuf {
    Path::new(VECTORS).join("sigstore-conformance/bundle-verify")
}

/// Lists the `rekor2-*` case folders, sorted by name.
pub fn rekor2_case_names() -> Result<Vec<String>, String> {
    let suite = suite_dir();
    let entries = std::fs::read_dir(&suite).map_err(|error| {
        format!(
            "cannot list the conformance cases in {}: {error}",
            suite.display()
        )
    })?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| format!("cannot list {}: {error}", suite.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("rekor2-") && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(format!("no rekor2-* case folders in {}", suite.display()));
    }
    Ok(names)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read(path)?)
        .map_err(|error| format!("{} is not UTF-8: {error}", path.display()))
}
