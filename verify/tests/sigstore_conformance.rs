//! Sigstore conformance bundles (Rekor v2) verified offline with each bundle's own inclusion proof.
//!
//! Every `rekor2-*` case of the suite runs: a case whose folder name ends in `_fail` must fail with
//! exactly the reason codes listed in `EXPECTED_FAILURES`, every other case must verify and name
//! the suite's default signer. The cases are read in place from the shared vectors folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use stella_verify::evidence::{
    Artifact, BundleInclusionSource, EntryKind, EntryReport, InclusionSource, Outcome, ProofSource,
    VerifyInput, verify_bundle, verify_bundle_with_own_proof,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::report::VerificationReport;
use stella_verify::trust_root::{KmsKey, TrustSet, parse_trusted_root};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Verification time: 2026-05-28, after every case's signing time and inside no log's end.
const NOW: i64 = 1_780_000_000;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The reason codes each failing Rekor v2 case must produce, and why.
const EXPECTED_FAILURES: &[(&str, &[ReasonCode])] = &[
    // The checkpoint lacks the log's own signature line.
    (
        "rekor2-checkpoint-missing-log-signature_fail",
        &[ReasonCode::RekorCheckpointInvalid],
    ),
    // A checkpoint text line is removed, so the log signature no longer verifies.
    (
        "rekor2-checkpoint-missing-origin_fail",
        &[ReasonCode::RekorCheckpointInvalid],
    ),
    (
        "rekor2-checkpoint-missing-root-hash_fail",
        &[ReasonCode::RekorCheckpointInvalid],
    ),
    (
        "rekor2-checkpoint-missing-size_fail",
        &[ReasonCode::RekorCheckpointInvalid],
    ),
    // Origin and key name are another log's, for which the trust root has no key.
    (
        "rekor2-checkpoint-no-matching-signature_fail",
        &[ReasonCode::RekorCheckpointInvalid],
    ),
    // The envelope signature was made with another key, and the log contains the original signature.
    (
        "rekor2-dsse-invalid-sig_fail",
        &[
            ReasonCode::RekorEntryMismatch,
            ReasonCode::DsseSignatureInvalid,
        ],
    ),
    // A valid envelope that is not the logged one: PAE digest and signature differ from the entry.
    (
        "rekor2-dsse-mismatch-envelope_fail",
        &[ReasonCode::RekorEntryMismatch],
    ),
    // The logged entry carries another signature than the envelope.
    (
        "rekor2-dsse-mismatch-sig_fail",
        &[ReasonCode::RekorEntryMismatch],
    ),
    // Bundle v0.3 requires an inclusion proof; the bundle is rejected before any lookup.
    (
        "rekor2-no-inclusion-proof_fail",
        &[ReasonCode::SigstoreBundleInvalid],
    ),
    // Rekor v2 has no integrated time, so a bundle without RFC 3161 timestamp has no signing time.
    ("rekor2-no-timestamp_fail", &[ReasonCode::TimestampMissing]),
    // genTime lies after the TSA's validFor end in the trusted root.
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        &[ReasonCode::TimestampInvalid],
    ),
    // genTime lies outside the TSA certificate's validity.
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        &[ReasonCode::TimestampInvalid],
    ),
    // The timestamp covers other signature bytes.
    (
        "rekor2-timestamp-payload-mismatch_fail",
        &[ReasonCode::TimestampInvalid],
    ),
    // FreeTSA tokens: the TSA is not in the trusted root.
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        &[ReasonCode::TimestampInvalid],
    ),
    (
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        &[ReasonCode::TimestampInvalid],
    ),
    // genTime lies outside the Fulcio certificate's lifetime.
    (
        "rekor2-timestamp-with-incorrect-time_fail",
        &[ReasonCode::CertChainInvalid],
    ),
];

/// Rekor v2 cases outside the `rekor2-` prefix that must verify.
const OTHER_PASSING_V2_CASES: &[&str] = &["trust-root-tsa-validity-end-inclusive"];

fn conformance_dir() -> Option<PathBuf> {
    let dir = Path::new(VECTORS).join("sigstore-conformance/bundle-verify");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: conformance vectors not found at {}",
            dir.display()
        );
        None
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn trust_set(trusted_root_json: &[u8], source: &Path) -> TrustSet {
    let trusted_root = parse_trusted_root(trusted_root_json)
        .unwrap_or_else(|e| panic!("trusted root {} rejected: {e}", source.display()));
    TrustSet {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(trusted_root_json))),
        version: 1,
        expires_at: 4_000_000_000,
        trusted_root,
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    }
}

/// A conformance case: its bundle, trust set and artifact digest.
struct Case {
    name: String,
    bundle: Vec<u8>,
    trust: TrustSet,
    artifact: [u8; 32],
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
    Case {
        name: name.to_owned(),
        bundle: read(&case_dir.join("bundle.sigstore.json")),
        trust: trust_set(&read(&root_path), &root_path),
        artifact: Sha256::digest(read(&artifact_path)).into(),
    }
}

fn verify_case(case: &Case) -> EntryReport {
    verify_bundle_with_own_proof(&VerifyInput {
        bundle_json: &case.bundle,
        trust: &case.trust,
        artifact: Artifact::Sha256(case.artifact),
        now: NOW,
    })
}

fn rekor2_case_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("rekor2-"))
        .collect();
    names.sort();
    names
}

fn assert_verified(case: &Case, report: &EntryReport) {
    assert_eq!(
        report.outcome,
        Outcome::Verified,
        "case {}: {:?}",
        case.name,
        report.detail
    );
    assert!(
        report.reason_codes.is_empty(),
        "case {}: {:?}",
        case.name,
        report.reason_codes
    );
    let signer = report
        .signer
        .as_ref()
        .unwrap_or_else(|| panic!("case {}: no signer", case.name));
    assert_eq!(signer.identity, DEFAULT_IDENTITY, "case {}", case.name);
    assert_eq!(signer.issuer, DEFAULT_ISSUER, "case {}", case.name);
    assert!(
        report.signing_time.is_some(),
        "case {}: no signing time",
        case.name
    );
    let tlog = report
        .tlog
        .as_ref()
        .unwrap_or_else(|| panic!("case {}: no tlog reference", case.name));
    assert_eq!(tlog.proof_source, ProofSource::Bundle, "case {}", case.name);
}

#[test]
fn rekor2_cases_match_expectations() {
    let Some(dir) = conformance_dir() else { return };
    let names = rekor2_case_names(&dir);
    assert!(
        names.len() >= 26,
        "expected the suite's 26 rekor2 cases, found {}",
        names.len()
    );

    for name in &names {
        let case = load_case(&dir, name);
        let report = verify_case(&case);
        if name.ends_with("_fail") {
            let expected = EXPECTED_FAILURES
                .iter()
                .find(|(case_name, _)| case_name == name)
                .unwrap_or_else(|| panic!("case {name} has no row in EXPECTED_FAILURES"))
                .1;
            let expected: BTreeSet<ReasonCode> = expected.iter().copied().collect();
            assert_eq!(report.outcome, Outcome::Failed, "case {name} verified");
            assert_eq!(
                report.reason_codes, expected,
                "case {name}: detail {:?}",
                report.detail
            );
            assert_eq!(
                report.detail.len(),
                expected.len(),
                "case {name}: {:?}",
                report.detail
            );
            for line in &report.detail {
                assert!(
                    !line.contains('\n'),
                    "case {name}: multi-line detail {line:?}"
                );
            }
        } else {
            assert_verified(&case, &report);
        }
    }

    // Every table row names an existing case, so a renamed case cannot silently drop out.
    for (case_name, _) in EXPECTED_FAILURES {
        assert!(
            names.iter().any(|name| name == case_name),
            "table row {case_name} names no case"
        );
    }
}

#[test]
fn other_rekor2_bundles_verify() {
    let Some(dir) = conformance_dir() else { return };
    for name in OTHER_PASSING_V2_CASES {
        let case = load_case(&dir, name);
        let report = verify_case(&case);
        assert_eq!(
            report.outcome,
            Outcome::Verified,
            "case {name}: {:?}",
            report.detail
        );
        assert!(report.signer.is_some(), "case {name}: no signer");
    }
}

#[test]
fn rsa_fulcio_chain_is_unsupported() {
    // This case must pass upstream, but its local Fulcio CA signs with RSA, which the verifier
    // does not support yet. It fails closed with the chain error only.
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "bundle-with-sct-with-extensions");
    let report = verify_case(&case);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::CertChainInvalid]),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail[0].contains("1.2.840.113549.1.1.11"),
        "{:?}",
        report.detail
    );
    let tlog = report.tlog.as_ref().expect("inclusion still verified");
    assert_eq!(tlog.origin, "rekor-local");
}

#[test]
fn dsse_happy_path_reports_statement() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-dsse-happy-path");
    let report = verify_case(&case);
    assert_verified(&case, &report);
    assert_eq!(report.kind, Some(EntryKind::Dsse));
    assert_eq!(
        report.predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );
    assert_eq!(report.subjects.len(), 1, "{:?}", report.subjects);
    assert_eq!(report.subjects[0].name, "a.txt");
    assert_eq!(
        report.subjects[0].sha256,
        "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
    );
    let tlog = report.tlog.as_ref().expect("tlog reference");
    assert_eq!(tlog.origin, "log2025-alpha3.rekor.sigstage.dev");
    assert_eq!(
        (tlog.log_index, tlog.checkpoint_size),
        (4_026_478, 4_026_479)
    );
    assert_eq!(
        tlog.root_hash,
        "5iaX4xK6PMnp4ZFTP4iywMcwLgaTjzgRTkrTOUFIrfY="
    );
}

#[test]
fn message_signature_reports_digest() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-happy-path");
    let report = verify_bundle_with_own_proof(&VerifyInput {
        bundle_json: &case.bundle,
        trust: &case.trust,
        artifact: Artifact::None,
        now: NOW,
    });
    assert_eq!(report.outcome, Outcome::Verified, "{:?}", report.detail);
    assert_eq!(report.kind, Some(EntryKind::MessageSignature));
    assert_eq!(report.signing_time, Some(1_749_729_740)); // 2025-06-12T12:02:20Z
    assert_eq!(report.subjects.len(), 1);
    assert_eq!(report.subjects[0].sha256, hex::encode(case.artifact));
    let tlog = report.tlog.as_ref().expect("tlog reference");
    assert_eq!(
        tlog.root_hash,
        "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI="
    );
}

#[test]
fn wrong_artifact_is_subject_mismatch() {
    let Some(dir) = conformance_dir() else { return };
    for name in ["rekor2-happy-path", "rekor2-dsse-happy-path"] {
        let case = load_case(&dir, name);
        let report = verify_bundle_with_own_proof(&VerifyInput {
            bundle_json: &case.bundle,
            trust: &case.trust,
            artifact: Artifact::Sha256([0x11; 32]),
            now: NOW,
        });
        assert_eq!(report.outcome, Outcome::Failed, "case {name}");
        assert_eq!(
            report.reason_codes,
            BTreeSet::from([ReasonCode::SubjectMismatch]),
            "case {name}: {:?}",
            report.detail
        );
    }
}

#[test]
fn expired_trust_set_fails_closed() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "rekor2-happy-path");
    case.trust.expires_at = NOW - 1;
    let report = verify_case(&case);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::TrustRootExpired]),
        "{:?}",
        report.detail
    );
}

#[test]
fn unknown_log_is_reported() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "rekor2-happy-path");
    case.trust
        .trusted_root
        .tlogs
        .retain(|log| log.origin() != "log2025-alpha1.rekor.sigstage.dev");
    let report = verify_case(&case);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorLogUnknown]),
        "{:?}",
        report.detail
    );
}

/// An inclusion source that has nothing cached, as an attestor without tiles.
struct EmptyCache;

impl InclusionSource for EmptyCache {
    fn inclusion(
        &self,
        origin: &str,
        index: u64,
    ) -> Result<
        stella_verify::evidence::CachedInclusion,
        stella_verify::evidence::InclusionLookupError,
    > {
        Err(stella_verify::evidence::InclusionLookupError::Missing {
            paths: vec![format!("{origin}/tile/0/{index}")],
        })
    }
}

#[test]
fn missing_proof_is_tile_missing() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-happy-path");
    let input = VerifyInput {
        bundle_json: &case.bundle,
        trust: &case.trust,
        artifact: Artifact::None,
        now: NOW,
    };
    let report = verify_bundle(&input, &EmptyCache);
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorTileMissing]),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail[0].contains("log2025-alpha1.rekor.sigstage.dev/tile/0/735"),
        "{:?}",
        report.detail
    );
    assert!(report.tlog.is_none());
}

#[test]
fn bundle_source_checks_origin() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-happy-path");
    let bundle = stella_verify::bundle::parse_bundle(&case.bundle).expect("bundle parses");
    let source = BundleInclusionSource::new(&bundle, case.trust.checkpoint_verifiers());
    let cached = source
        .inclusion("log2025-alpha1.rekor.sigstage.dev", 735)
        .expect("own proof");
    assert_eq!(cached.checkpoint.checkpoint().size, 736);
    assert_eq!(cached.proof.len(), 8);
    let err = source
        .inclusion("rekor.sigstage.dev", 735)
        .expect_err("other origin");
    assert_eq!(
        err.reason_code(),
        ReasonCode::RekorCheckpointInvalid,
        "{err}"
    );
    let err = source
        .inclusion("log2025-alpha1.rekor.sigstage.dev", 734)
        .expect_err("other index");
    assert_eq!(err.reason_code(), ReasonCode::RekorTileMissing, "{err}");
}

#[test]
fn rekor_v1_cases_are_unsupported() {
    let Some(dir) = conformance_dir() else { return };
    for name in ["happy-path-v0.3", "happy-path-intoto-in-dsse-v3"] {
        let case = load_case(&dir, name);
        let report = verify_case(&case);
        assert_eq!(report.outcome, Outcome::Failed, "case {name}");
        assert!(
            report
                .reason_codes
                .contains(&ReasonCode::RekorEntryUnsupported),
            "case {name}: {:?}",
            report.detail
        );
    }
}

#[test]
fn managed_key_needs_trust_set_key() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "managed-key-happy-path");
    let hint = "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk=";

    let report = verify_case(&case);
    assert!(
        report.reason_codes.contains(&ReasonCode::CertChainInvalid),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail.iter().any(|line| line.contains(hint)),
        "{:?}",
        report.detail
    );
    assert_eq!(report.signer, None);

    let pem =
        String::from_utf8(read(&dir.join("managed-key-happy-path/key.pub"))).expect("UTF-8 PEM");
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let spki_der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body");
    case.trust.kms_keys.push(KmsKey {
        id: hint.to_owned(),
        spki_der,
    });
    let report = verify_case(&case);
    // The key is trusted now; the Rekor v1 entry is what remains unsupported.
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorEntryUnsupported]),
        "{:?}",
        report.detail
    );
    let signer = report.signer.as_ref().expect("managed key signer");
    assert_eq!(signer.identity, format!("key:{hint}"));
    assert_eq!(signer.issuer, "");
    assert_eq!(report.subjects.len(), 1, "{:?}", report.subjects);
    assert_eq!(report.subjects[0].sha256, hex::encode(case.artifact));
}

#[test]
fn trust_root_without_tlog_start_rejected() {
    let Some(dir) = conformance_dir() else { return };
    let path = dir.join("trust-root-tlog-missing-validity-start_fail/trusted_root.json");
    let err = parse_trusted_root(&read(&path)).expect_err("tlog without validFor.start");
    assert_eq!(err.reason_code(), ReasonCode::TrustRootInvalid, "{err}");
    assert!(
        err.to_string()
            .contains("tlogs[1].publicKey.validFor.start"),
        "{err}"
    );
}

#[test]
fn sigstore_python_staging_bundle_verifies() {
    let dir = Path::new(VECTORS).join("sigstore-python");
    if !dir.is_dir() {
        eprintln!("skipping: {} not found", dir.display());
        return;
    }
    let root_path = Path::new(VECTORS).join("sigstore-trust-roots/staging.trusted_root.json");
    let trust = trust_set(&read(&root_path), &root_path);
    let bundle = read(&dir.join("staging-rekor-v2.txt.sigstore.json"));
    let artifact: [u8; 32] = Sha256::digest(read(&dir.join("staging-rekor-v2.txt"))).into();
    let report = verify_bundle_with_own_proof(&VerifyInput {
        bundle_json: &bundle,
        trust: &trust,
        artifact: Artifact::Sha256(artifact),
        now: NOW,
    });
    assert_eq!(report.outcome, Outcome::Verified, "{:?}", report.detail);
    let tlog = report.tlog.as_ref().expect("tlog reference");
    assert_eq!(tlog.origin, "log2025-alpha1.rekor.sigstage.dev");
    assert_eq!((tlog.log_index, tlog.checkpoint_size), (645, 646));
}

#[test]
fn report_is_byte_identical_across_runs() {
    let Some(dir) = conformance_dir() else { return };
    let build = || {
        let mut entries = std::collections::BTreeMap::new();
        for name in [
            "rekor2-dsse-happy-path",
            "rekor2-happy-path",
            "rekor2-no-timestamp_fail",
        ] {
            let case = load_case(&dir, name);
            entries.insert(format!("sigstore/{name}.json"), verify_case(&case));
        }
        let trust = load_case(&dir, "rekor2-happy-path").trust;
        VerificationReport::new("sha256:0123", &trust, entries)
    };
    let (first, second) = (build(), build());
    assert_eq!(first.to_canonical_json(), second.to_canonical_json());
    assert_eq!(first.digest(), second.digest());
    assert_eq!(first.outcome, Outcome::Failed);
    assert_eq!(
        first.reason_codes,
        BTreeSet::from([ReasonCode::TimestampMissing])
    );
    let parsed: VerificationReport =
        serde_json::from_slice(&first.to_canonical_json()).expect("report parses back");
    assert_eq!(parsed, first);
}
