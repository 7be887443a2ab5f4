//! Harness for the end-to-end suites.
//!
//! The suites start both services, `stella-attestor` and `stella-gate`, as separate OS processes
//! on loopback ports with temporary data directories, and drive the operator runbook through the
//! `stella` binary exactly as an operator types it. Nothing is mocked: the services run RocksDB on
//! disk, speak gRPC over real sockets and verify real Sigstore bundles from the conformance suite.
//!
//! The binaries are not built by `cargo test -p stella-e2e`: run `cargo build --workspace --bins`
//! first, with the same profile as the tests. [`binaries::locate`] fails with that instruction when
//! a binary is missing.
//!
//! Every wait in the harness is bounded (service start, CLI runs, shutdown), so a broken service
//! makes a test fail with its log instead of hanging the suite.

pub mod access;
pub mod archive;
pub mod audit;
pub mod binaries;
pub mod cli;
pub mod codes;
pub mod compose;
pub mod conformance;
pub mod env;
pub mod expiry;
pub mod forge;
pub mod grpc;
pub mod policy;
pub mod runbook;
pub mod service;
pub mod tokens;
pub mod vectors;

/// The artifact every conformance case signs: `a.txt` of the conformance suite.
pub const SUBJECT_SHA256: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// [`SUBJECT_SHA256`] in the `sha256:<hex>` form of promotions and evidence subjects.
pub fn subject_digest() -> String {
    format!("sha256:{SUBJECT_SHA256}")
}

/// The certificate identity (SAN URI) of the conformance suite's signing workflow.
pub const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

/// The OIDC issuer of the conformance suite's signing workflow.
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The in-toto predicate type of the DSSE conformance cases.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
