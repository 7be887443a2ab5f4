//! Paths of the public test vectors that the suites read in place.
//!
//! The vectors live outside the repository (`../shared/vectors` next to it). A test whose vectors
//! are absent skips with a message on stderr, or fails when the environment variable `CI` is set.
//! When they are present it must check things.

use std::path::{Path, PathBuf};

/// Verifier key of the Tessera test log in `tessera-log/`.
pub const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// Origin line of the Tessera test log's checkpoints.
pub const TESSERA_ORIGIN: &str = "example.com/log/testdata";

/// Number of entries in the Tessera test log.
pub const TESSERA_SIZE: u64 = 15;

/// Rekor v2 message-signature case on `log2025-alpha1` (index 735).
pub const MSG_HAPPY: &str = "rekor2-happy-path";
/// Rekor v2 DSSE case on `log2025-alpha3` (index 4026478), with SLSA provenance for `a.txt`.
pub const DSSE_HAPPY: &str = "rekor2-dsse-happy-path";
/// [`DSSE_HAPPY`] with an envelope signature made by an unrelated key.
pub const DSSE_INVALID_SIG: &str = "rekor2-dsse-invalid-sig_fail";
/// [`DSSE_HAPPY`] with a valid envelope that is not the one logged.
pub const DSSE_MISMATCH_ENVELOPE: &str = "rekor2-dsse-mismatch-envelope_fail";
/// [`MSG_HAPPY`] whose checkpoint signature names another log.
pub const CHECKPOINT_NO_MATCHING_SIGNATURE: &str = "rekor2-checkpoint-no-matching-signature_fail";

/// Returns true when the environment variable `CI` is set to a value other than empty, `0` or
/// `false` (CI services set `CI=true`). Tests then fail instead of skipping for absent vectors.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false")))
}

/// The shared vectors directory.
#[derive(Debug, Clone)]
pub struct Vectors {
    root: PathBuf,
}

impl Vectors {
    /// Returns the vectors directory, or `None` after printing why the calling test skips.
    pub fn locate() -> Option<Vectors> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
        let probe = root.join("sigstore-conformance/bundle-verify");
        if probe.is_dir() && root.join("tessera-log").is_dir() {
            Some(Vectors { root })
        } else {
            assert!(!in_ci(), "test vectors not found at {}, and CI is set", root.display());
            eprintln!(
                "SKIPPED: test vectors not found at {}; the end-to-end scenarios need \
                 sigstore-conformance/bundle-verify and tessera-log there",
                root.display()
            );
            None
        }
    }

    /// Returns the vectors directory for the Sigstore conformance tests, which need only
    /// `sigstore-conformance/bundle-verify` and `sigstore-trust-roots`, or `None` after printing
    /// why the calling test skips.
    pub fn locate_sigstore() -> Option<Vectors> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
        let vectors = Vectors { root };
        if vectors.bundle_verify_dir().is_dir() && vectors.sigstore_trust_roots().is_dir() {
            Some(vectors)
        } else {
            assert!(!in_ci(), "test vectors not found at {}, and CI is set", vectors.root.display());
            eprintln!(
                "SKIPPED: test vectors not found at {}; the conformance tests need \
                 sigstore-conformance/bundle-verify and sigstore-trust-roots there",
                vectors.root.display()
            );
            None
        }
    }

    /// Returns the folder of the suite's bundle-verification cases.
    pub fn bundle_verify_dir(&self) -> PathBuf {
        self.root.join("sigstore-conformance/bundle-verify")
    }

    /// Returns the folder with the public-good `production.trusted_root.json` and
    /// `staging.trusted_root.json`.
    pub fn sigstore_trust_roots(&self) -> PathBuf {
        self.root.join("sigstore-trust-roots")
    }

    /// Returns the folder of one conformance case, such as `rekor2-happy-path`.
    ///
    /// # Panics
    ///
    /// Panics when the case folder is missing, because the vectors directory exists.
    pub fn case(&self, name: &str) -> ConformanceCase {
        let dir = self
            .root
            .join("sigstore-conformance/bundle-verify")
            .join(name);
        assert!(
            dir.join("bundle.sigstore.json").is_file(),
            "conformance case {name} has no bundle.sigstore.json in {}",
            dir.display()
        );
        ConformanceCase {
            name: name.to_owned(),
            dir,
        }
    }

    /// Returns the staging trusted root that the suites import.
    ///
    /// It is the one shipped with [`DSSE_HAPPY`], which lists both Rekor v2 staging logs that the
    /// scenarios use (`log2025-alpha1` until 2025-09-04, `log2025-alpha3` from 2025-09-22), so one
    /// trust root set covers the message-signature and the DSSE cases.
    pub fn staging_trusted_root(&self) -> PathBuf {
        self.case(DSSE_HAPPY).trusted_root()
    }

    /// Returns the Tessera test log directory (`checkpoint`, `tile/0/...`, `tile/entries/...`).
    pub fn tessera_log(&self) -> PathBuf {
        self.root.join("tessera-log")
    }
}

/// One case of the Sigstore conformance suite.
#[derive(Debug, Clone)]
pub struct ConformanceCase {
    /// Folder name; a name ending in `_fail` must fail verification.
    pub name: String,
    /// The case folder.
    pub dir: PathBuf,
}

impl ConformanceCase {
    /// Returns the Sigstore bundle of the case.
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle.sigstore.json")
    }

    /// Returns the case's own trusted root (the Rekor v2 cases ship the staging root).
    ///
    /// # Panics
    ///
    /// Panics when the case has no `trusted_root.json`.
    pub fn trusted_root(&self) -> PathBuf {
        let path = self.dir.join("trusted_root.json");
        assert!(
            path.is_file(),
            "conformance case {} has no trusted_root.json",
            self.name
        );
        path
    }
}
