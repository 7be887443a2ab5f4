//! The verification cache never changes a result.
//!
//! Every case of the Sigstore conformance `bundle-verify` folder is verified with the bundle's own
//! inclusion proof and the case's signer, as the conformance client calls the verifier. Each case
//! runs without a cache, with a fresh cache, again with that now-warm cache, with a cache warmed
//! by every other case first, and with a cache of one entry that evicts on every new path. The
//! canonical JSON of the entry reports must be byte-identical across all of them. Further tests check that warm runs
//! hit the cache, that a hit still checks the time, that changed trust material misses, and that
//! the caches stay within their capacity. The last test checks that verifying a bundle parsed
//! beforehand, as the attestor's bundle stream does, gives the same report.

mod common;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use stella_verify::cache::{CacheCapacity, CacheStats, VerificationCache};
use stella_verify::evidence::{
    Artifact, BundleInclusionSource, CachedInclusion, EntryReport, ExpectedSigner,
    InclusionLookupError, InclusionSource, Outcome, VerifyInput, parse_bundle_traced,
    verify_bundle_with_own_proof, verify_bundle_with_own_proof_signed_by,
    verify_bundle_with_own_proof_signed_by_cached, verify_parsed_bundle_cached,
};
use stella_verify::note::{NoteSigner, verify_note, verify_note_cached};
use stella_verify::reason::ReasonCode;
use stella_verify::trust_root::{TrustSet, parse_trusted_root};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Verification time: 2026-05-28, after every case's signing time and inside no log's end.
const NOW: i64 = 1_780_000_000;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The signer a case requires: its identity (or the suite's defaults), or its managed key.
enum CaseSigner {
    Identity { identity: String, issuer: String },
    Key { spki_der: Vec<u8> },
}

/// A conformance case with the suite's defaults applied.
struct Case {
    name: String,
    bundle: Vec<u8>,
    /// `None` when the trusted root is rejected, so there is no verification to compare.
    trust: Option<TrustSet>,
    artifact_sha256: [u8; 32],
    signer: CaseSigner,
}

impl Case {
    /// Verifies the case and returns the report's canonical JSON.
    fn verify(&self, trust: &TrustSet, cache: Option<&VerificationCache>) -> Vec<u8> {
        let input = VerifyInput {
            bundle_json: &self.bundle,
            trust,
            artifact: Artifact::Sha256(self.artifact_sha256),
            now: NOW,
        };
        let signer = match &self.signer {
            CaseSigner::Identity { identity, issuer } => {
                ExpectedSigner::Identity { identity, issuer }
            }
            CaseSigner::Key { spki_der } => ExpectedSigner::Key { spki_der },
        };
        let report = match cache {
            Some(cache) => verify_bundle_with_own_proof_signed_by_cached(&input, &signer, cache),
            None => verify_bundle_with_own_proof_signed_by(&input, &signer),
        };
        canonical_json(&report)
    }

    /// Verifies the case with its own trust set.
    fn verify_own(&self, cache: Option<&VerificationCache>) -> Vec<u8> {
        let trust = self
            .trust
            .as_ref()
            .unwrap_or_else(|| panic!("case {}: trusted root rejected", self.name));
        self.verify(trust, cache)
    }
}

fn canonical_json(report: &EntryReport) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(report).expect("entry report serializes")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn trust_set(trusted_root_json: &[u8]) -> Option<TrustSet> {
    let trusted_root = parse_trusted_root(trusted_root_json).ok()?;
    Some(TrustSet {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(trusted_root_json))),
        version: 1,
        expires_at: 4_000_000_000,
        trusted_root,
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    })
}

fn load_case(dir: &Path, name: &str) -> Case {
    let case_dir = dir.join(name);
    let root_path = if case_dir.join("trusted_root.json").is_file() {
        case_dir.join("trusted_root.json")
    } else {
        Path::new(VECTORS).join("sigstore-trust-roots/production.trusted_root.json")
    };
    let artifact_path = if case_dir.join("artifact").is_file() {
        case_dir.join("artifact")
    } else {
        dir.join("a.txt")
    };
    let signer = if case_dir.join("key.pub").is_file() {
        let pem = read(&case_dir.join("key.pub"));
        let (_, spki_der) = der::pem::decode_vec(&pem)
            .unwrap_or_else(|e| panic!("case {name}: key.pub is not PEM: {e}"));
        CaseSigner::Key { spki_der }
    } else {
        let text_or = |file: &str, default: &str| {
            let path = case_dir.join(file);
            if path.is_file() {
                String::from_utf8_lossy(&read(&path)).trim().to_owned()
            } else {
                default.to_owned()
            }
        };
        CaseSigner::Identity {
            identity: text_or("identity", DEFAULT_IDENTITY),
            issuer: text_or("issuer", DEFAULT_ISSUER),
        }
    };
    Case {
        name: name.to_owned(),
        bundle: read(&case_dir.join("bundle.sigstore.json")),
        trust: trust_set(&read(&root_path)),
        artifact_sha256: Sha256::digest(read(&artifact_path)).into(),
        signer,
    }
}

fn conformance_dir() -> Option<PathBuf> {
    let dir = Path::new(VECTORS).join("sigstore-conformance/bundle-verify");
    if dir.is_dir() {
        Some(dir)
    } else {
        common::vectors_absent(&format!("conformance vectors folder {}", dir.display()));
        None
    }
}

/// Loads every case whose trusted root loads, sorted by name.
fn load_cases() -> Option<Vec<Case>> {
    let dir = conformance_dir()?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_type().ok()?.is_dir().then_some(())?;
            entry.file_name().into_string().ok()
        })
        .collect();
    names.sort();
    let cases: Vec<Case> = names
        .iter()
        .map(|name| load_case(&dir, name))
        .filter(|case| case.trust.is_some())
        .collect();
    assert!(
        cases.len() >= 40,
        "expected at least 40 conformance cases with a loadable trusted root, found {}",
        cases.len()
    );
    Some(cases)
}

fn load_named(name: &str) -> Option<Case> {
    let dir = conformance_dir()?;
    let case = load_case(&dir, name);
    assert!(case.trust.is_some(), "case {name}: trusted root rejected");
    Some(case)
}

fn outcome(json: &[u8]) -> Outcome {
    let report: EntryReport = serde_json::from_slice(json).expect("report JSON parses back");
    report.outcome
}

fn small_cache() -> VerificationCache {
    VerificationCache::new(CacheCapacity {
        chains: 1,
        signatures: 1,
    })
}

#[test]
fn cache_never_changes_conformance_reports() {
    let Some(cases) = load_cases() else { return };
    let tiny = small_cache();
    let mut verified = 0;
    let mut failed = 0;
    for (index, case) in cases.iter().enumerate() {
        let name = &case.name;
        let uncached = case.verify_own(None);
        match outcome(&uncached) {
            Outcome::Verified => verified += 1,
            Outcome::Failed => failed += 1,
        }

        let fresh = VerificationCache::default();
        let cold = case.verify_own(Some(&fresh));
        assert_eq!(cold, uncached, "case {name}: fresh cache");
        let warm = case.verify_own(Some(&fresh));
        assert_eq!(warm, uncached, "case {name}: warm cache");

        let others = VerificationCache::default();
        for (other_index, other) in cases.iter().enumerate() {
            if other_index != index {
                other.verify_own(Some(&others));
            }
        }
        let warmed_by_others = case.verify_own(Some(&others));
        assert_eq!(
            warmed_by_others, uncached,
            "case {name}: cache warmed by the other cases"
        );

        let evicting = case.verify_own(Some(&tiny));
        assert_eq!(evicting, uncached, "case {name}: one-entry cache");
    }
    // Both outcomes occur, so the comparison covers hits on success and the failure paths.
    assert!(verified >= 15, "{verified} cases verified");
    assert!(failed >= 15, "{failed} cases failed");

    let stats = tiny.stats();
    assert!(stats.chains.len <= 1, "{stats:?}");
    assert!(stats.signatures.len <= 1, "{stats:?}");
    assert!(stats.chains.evictions > 0, "{stats:?}");
}

#[test]
fn warm_cache_hits_chains_and_checkpoint() {
    let Some(case) = load_named("rekor2-dsse-happy-path") else {
        return;
    };
    let uncached = case.verify_own(None);
    assert_eq!(outcome(&uncached), Outcome::Verified);

    let cache = VerificationCache::default();
    assert_eq!(case.verify_own(Some(&cache)), uncached);
    let cold = cache.stats();
    assert_eq!(cold.chains.hits, 0, "{cold:?}");
    assert!(
        cold.chains.len >= 2,
        "Fulcio and TSA paths stored: {cold:?}"
    );
    assert!(
        cold.signatures.len >= 1,
        "checkpoint signature stored: {cold:?}"
    );

    assert_eq!(case.verify_own(Some(&cache)), uncached);
    let warm = cache.stats();
    assert!(
        warm.chains.hits >= 2,
        "Fulcio and TSA paths come from the cache: {warm:?}"
    );
    assert!(
        warm.signatures.hits >= 1,
        "the checkpoint signature comes from the cache: {warm:?}"
    );
    assert_eq!(warm.chains.len, cold.chains.len, "nothing new stored");
}

#[test]
fn warm_cache_rechecks_signing_time() {
    // Both cases carry the same Fulcio certificate under the same trusted root. The failing one's
    // timestamp lies outside the certificate's lifetime.
    let (Some(good), Some(late)) = (
        load_named("rekor2-happy-path"),
        load_named("rekor2-timestamp-with-incorrect-time_fail"),
    ) else {
        return;
    };
    let uncached = late.verify_own(None);
    let report: EntryReport = serde_json::from_slice(&uncached).expect("report parses");
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.reason_codes.contains(&ReasonCode::CertChainInvalid),
        "{:?}",
        report.detail
    );

    let cache = VerificationCache::default();
    assert_eq!(outcome(&good.verify_own(Some(&cache))), Outcome::Verified);
    let before = cache.stats().chains.hits;
    assert_eq!(late.verify_own(Some(&cache)), uncached);
    assert!(
        cache.stats().chains.hits > before,
        "the failing chain check was a cache hit: {:?}",
        cache.stats()
    );
}

#[test]
fn changed_trust_material_misses() {
    let Some(case) = load_named("rekor2-dsse-happy-path") else {
        return;
    };
    let cache = VerificationCache::default();
    case.verify_own(Some(&cache));

    // Move every CA's and TSA's validFor start one second earlier: the windows still contain
    // every time the bundle uses, but the authorities differ from those the cache was warmed with.
    let mut changed = case.trust.clone().expect("trust set");
    changed.digest.push_str("-changed");
    let root = &mut changed.trusted_root;
    for authority in root
        .certificate_authorities
        .iter_mut()
        .chain(root.timestamp_authorities.iter_mut())
    {
        authority.valid_for.start = authority.valid_for.start.map(|start| start - 1);
    }

    let before: CacheStats = cache.stats();
    let uncached = case.verify(&changed, None);
    assert_eq!(outcome(&uncached), Outcome::Verified);
    assert_eq!(case.verify(&changed, Some(&cache)), uncached);
    let after = cache.stats();
    assert_eq!(after.chains.hits, before.chains.hits, "{after:?}");
    assert!(after.chains.misses > before.chains.misses, "{after:?}");
}

#[test]
fn note_cache_stays_bounded() {
    let capacity = 8;
    let cache = VerificationCache::new(CacheCapacity {
        chains: 1,
        signatures: capacity,
    });
    let signer = NoteSigner::ed25519("log.example", &[7; 32]);
    let verifiers = [signer.verifier()];
    let notes = 50;
    for index in 0..notes {
        let note = signer.sign(&format!("note {index}\n")).expect("sign");
        let cached = verify_note_cached(&note, &verifiers, &cache);
        assert_eq!(cached, verify_note(&note, &verifiers), "note {index}");
        assert!(cached.is_ok(), "note {index}");
        let stats = cache.stats().signatures;
        assert!(stats.len <= capacity, "note {index}: {stats:?}");
    }
    let stats = cache.stats().signatures;
    assert_eq!(stats.misses, notes, "{stats:?}");
    assert_eq!(stats.evictions, notes - stats.len as u64, "{stats:?}");

    // A tampered note is rejected as without the cache, and its failure is not stored: the
    // second lookup misses again.
    let mut tampered = signer.sign("note 0\n").expect("sign");
    tampered[0] = b'N';
    let uncached = verify_note(&tampered, &verifiers);
    assert!(uncached.is_err());
    for attempt in 1..=2 {
        let before = cache.stats().signatures;
        assert_eq!(
            verify_note_cached(&tampered, &verifiers, &cache),
            uncached,
            "attempt {attempt}"
        );
        let after = cache.stats().signatures;
        assert_eq!(after.hits, before.hits, "attempt {attempt}");
        assert_eq!(after.misses, before.misses + 1, "attempt {attempt}");
    }
}

/// An inclusion source with no proofs, for bundles that do not parse.
struct NoProofs;

impl InclusionSource for NoProofs {
    fn inclusion(&self, _origin: &str, _index: u64) -> Result<CachedInclusion, InclusionLookupError> {
        Err(InclusionLookupError::Missing { paths: Vec::new() })
    }
}

#[test]
fn pre_parsed_bundle_gives_same_report() {
    let Some(cases) = load_cases() else { return };
    let mut compared = 0;
    for case in &cases {
        let Some(trust) = case.trust.as_ref() else {
            continue;
        };
        let input = VerifyInput {
            bundle_json: &case.bundle,
            trust,
            artifact: Artifact::Sha256(case.artifact_sha256),
            now: NOW,
        };
        let expected = canonical_json(&verify_bundle_with_own_proof(&input));

        // The attestor's path: parse once, prove inclusion from the parsed bundle's own proof.
        let cache = VerificationCache::default();
        let parsed = parse_bundle_traced(&case.bundle);
        let report = match &parsed {
            Ok(bundle) => {
                let source =
                    BundleInclusionSource::with_cache(bundle, trust.checkpoint_verifiers(), &cache);
                verify_parsed_bundle_cached(&input, Ok(bundle), &source, &cache)
            }
            Err(error) => {
                verify_parsed_bundle_cached(&input, Err(error.clone()), &NoProofs, &cache)
            }
        };
        assert_eq!(canonical_json(&report), expected, "case {}", case.name);
        compared += 1;
    }
    assert!(compared >= 30, "{compared} cases compared");
}
