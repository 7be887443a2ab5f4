//! Sigstore conformance bundles verified offline with each bundle's own inclusion proof.
//!
//! Every case of the suite's `bundle-verify` folder runs, with the suite's defaults: the case's
//! `trusted_root.json` or else the production trusted root, its `artifact` or else `a.txt`, its
//! `key.pub` (managed key) or else the default identity and issuer. Each case runs twice, as the
//! suite's client is called: with the digest of the artifact file, and with a `sha256:<hex>`
//! digest argument. A case whose folder name ends in `_fail` must fail with exactly the one reason
//! code listed in `EXPECTED_FAILURES`, and every other case must verify. The cases are read in
//! place from the shared vectors folder.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use stella_verify::evidence::{
    Artifact, BundleInclusionSource, CachedInclusion, EntryKind, EntryReport, ExpectedSigner,
    InclusionLookupError, InclusionSource, Outcome, ProofSource, VerifyInput, check_identity,
    verify_bundle, verify_bundle_signed_by, verify_bundle_with_own_proof,
    verify_bundle_with_own_proof_signed_by,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::report::VerificationReport;
use stella_verify::trust_root::{KmsKey, TrustSet, parse_trusted_root};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Verification time: 2026-05-28, after every case's signing time and inside no log's end.
const NOW: i64 = 1_780_000_000;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The one reason code each failing case must produce, and why.
const EXPECTED_FAILURES: &[(&str, ReasonCode)] = &[
    // The JSON ends in the middle of a string.
    (
        "bundle-malformed-json_fail",
        ReasonCode::SigstoreBundleInvalid,
    ),
    // Media type `version=99.9`.
    (
        "bundle-unknown-version_fail",
        ReasonCode::SigstoreBundleInvalid,
    ),
    // The checkpoint's signature line carries key hint c4d23d6a, not the log's c0d23d6a.
    (
        "checkpoint-bad-keyhint_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    // A correctly signed checkpoint of another tree size and root than the bundle's proof.
    (
        "checkpoint-wrong-roothash_fail",
        ReasonCode::RekorRootMismatch,
    ),
    // One proof hash has a flipped bit, so the proof leads to another root.
    (
        "inclusion-proof-corrupted-hash_fail",
        ReasonCode::RekorProofInvalid,
    ),
    // The checkpoint's log signature bytes are altered.
    (
        "invalid-checkpoint-signature_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    // Bundle v0.2 requires a checkpoint in the inclusion proof, and this old proof has none.
    (
        "invalid-inclusion-proof_fail",
        ReasonCode::SigstoreBundleInvalid,
    ),
    // The checkpoint lacks the log's own signature line.
    (
        "rekor2-checkpoint-missing-log-signature_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    // A checkpoint text line is removed, so the log signature no longer verifies.
    (
        "rekor2-checkpoint-missing-origin_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    (
        "rekor2-checkpoint-missing-root-hash_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    (
        "rekor2-checkpoint-missing-size_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    // Origin and key name are another log's, for which the trust root has no key.
    (
        "rekor2-checkpoint-no-matching-signature_fail",
        ReasonCode::RekorCheckpointInvalid,
    ),
    // The envelope signature was made with another key. The log contains the original signature,
    // but an invalid signature is reported without comparing it with the log.
    (
        "rekor2-dsse-invalid-sig_fail",
        ReasonCode::DsseSignatureInvalid,
    ),
    // A valid envelope that is not the logged one: PAE digest and signature differ from the entry.
    (
        "rekor2-dsse-mismatch-envelope_fail",
        ReasonCode::RekorEntryMismatch,
    ),
    // The logged entry carries another signature than the envelope.
    (
        "rekor2-dsse-mismatch-sig_fail",
        ReasonCode::RekorEntryMismatch,
    ),
    // Bundle v0.3 requires an inclusion proof, so the bundle is rejected before any lookup.
    (
        "rekor2-no-inclusion-proof_fail",
        ReasonCode::SigstoreBundleInvalid,
    ),
    // Rekor v2 has no integrated time, so a bundle without RFC 3161 timestamp has no signing time.
    ("rekor2-no-timestamp_fail", ReasonCode::TimestampMissing),
    // genTime lies after the TSA's validFor end in the trusted root.
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        ReasonCode::TimestampInvalid,
    ),
    // genTime lies outside the TSA certificate's validity.
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        ReasonCode::TimestampInvalid,
    ),
    // The timestamp covers other signature bytes.
    (
        "rekor2-timestamp-payload-mismatch_fail",
        ReasonCode::TimestampInvalid,
    ),
    // FreeTSA tokens: the TSA is not in the trusted root.
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        ReasonCode::TimestampInvalid,
    ),
    (
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        ReasonCode::TimestampInvalid,
    ),
    // genTime lies outside the Fulcio certificate's lifetime.
    (
        "rekor2-timestamp-with-incorrect-time_fail",
        ReasonCode::CertChainInvalid,
    ),
    // The signed entry timestamp is another entry's.
    ("set-invalid-signature_fail", ReasonCode::RekorSetInvalid),
    // A tlog key without validFor.start rejects the whole trusted root when it is loaded.
    (
        "trust-root-tlog-missing-validity-start_fail",
        ReasonCode::TrustRootInvalid,
    ),
];

fn conformance_dir() -> Option<PathBuf> {
    let dir = Path::new(VECTORS).join("sigstore-conformance/bundle-verify");
    if dir.is_dir() {
        Some(dir)
    } else {
        common::vectors_absent(&format!("conformance vectors folder {}", dir.display()));
        None
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

fn trust_set_from(trusted_root_json: &[u8]) -> Result<TrustSet, ReasonCode> {
    let trusted_root = parse_trusted_root(trusted_root_json).map_err(|e| e.reason_code())?;
    Ok(TrustSet {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(trusted_root_json))),
        version: 1,
        expires_at: 4_000_000_000,
        trusted_root,
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    })
}

fn trust_set(trusted_root_json: &[u8], source: &Path) -> TrustSet {
    trust_set_from(trusted_root_json)
        .unwrap_or_else(|code| panic!("trusted root {} rejected: {code}", source.display()))
}

/// The signer a case requires: the identity (or the defaults), or its managed key.
enum CaseSigner {
    Identity { identity: String, issuer: String },
    Key { spki_der: Vec<u8> },
}

impl CaseSigner {
    fn expected(&self) -> ExpectedSigner<'_> {
        match self {
            CaseSigner::Identity { identity, issuer } => {
                ExpectedSigner::Identity { identity, issuer }
            }
            CaseSigner::Key { spki_der } => ExpectedSigner::Key { spki_der },
        }
    }
}

/// A conformance case with the suite's defaults applied.
struct Case {
    name: String,
    bundle: Vec<u8>,
    /// The trust set, or the reason code of the trusted root's rejection.
    trust: Result<TrustSet, ReasonCode>,
    artifact: Vec<u8>,
    signer: CaseSigner,
}

impl Case {
    /// Returns the trust set of a case whose trusted root must load.
    fn trust(&self) -> &TrustSet {
        self.trust
            .as_ref()
            .unwrap_or_else(|code| panic!("case {}: trusted root rejected: {code}", self.name))
    }

    fn artifact_sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.artifact).into()
    }
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
        let (label, spki_der) = der::pem::decode_vec(&pem)
            .unwrap_or_else(|e| panic!("case {name}: key.pub is not PEM: {e}"));
        assert_eq!(label, "PUBLIC KEY", "case {name}");
        CaseSigner::Key { spki_der }
    } else {
        let text_or = |file: &str, default: &str| {
            let path = case_dir.join(file);
            if path.is_file() {
                read_text(&path).trim().to_owned()
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
        trust: trust_set_from(&read(&root_path)),
        artifact: read(&artifact_path),
        signer,
    }
}

/// Parses a `sha256:<hex>` digest argument, as the suite passes one in place of the artifact.
fn parse_digest_argument(text: &str) -> [u8; 32] {
    let hex_digest = text
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{text:?} is not sha256:<hex>"));
    hex::decode(hex_digest)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or_else(|| panic!("{text:?} is not a hex SHA-256 digest"))
}

/// Verifies a case as the conformance client does, with the artifact's digest computed from the
/// file or given as a `sha256:` argument. A rejected trusted root fails like the client, with the
/// root's code and before the bundle is read.
fn verify_case_both_ways(case: &Case) -> [(&'static str, EntryReport); 2] {
    let from_file = Artifact::Sha256(case.artifact_sha256());
    let argument = format!("sha256:{}", hex::encode(case.artifact_sha256()));
    let from_digest = Artifact::Sha256(parse_digest_argument(&argument));
    [("artifact file", from_file), ("sha256 digest", from_digest)].map(|(way, artifact)| {
        let report = match &case.trust {
            Ok(trust) => verify_bundle_with_own_proof_signed_by(
                &VerifyInput {
                    bundle_json: &case.bundle,
                    trust,
                    artifact,
                    now: NOW,
                },
                &case.signer.expected(),
            ),
            Err(code) => root_rejected_report(*code),
        };
        (way, report)
    })
}

fn root_rejected_report(code: ReasonCode) -> EntryReport {
    EntryReport {
        outcome: Outcome::Failed,
        reason_codes: BTreeSet::from([code]),
        detail: vec![format!("{code}: trusted root rejected")],
        signer: None,
        signing_time: None,
        kind: None,
        predicate_type: None,
        subjects: Vec::new(),
        tlog: None,
    }
}

/// Verifies with the bundle's own proof, the default identity and no further signer check.
fn verify_plain(case: &Case, artifact: Artifact) -> EntryReport {
    verify_bundle_with_own_proof(&VerifyInput {
        bundle_json: &case.bundle,
        trust: case.trust(),
        artifact,
        now: NOW,
    })
}

fn case_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_type().ok()?.is_dir().then_some(())?;
            entry.file_name().into_string().ok()
        })
        .collect();
    names.sort();
    names
}

fn assert_verified(name: &str, way: &str, report: &EntryReport) {
    assert_eq!(
        report.outcome,
        Outcome::Verified,
        "case {name} ({way}): {:?}",
        report.detail
    );
    assert!(
        report.reason_codes.is_empty(),
        "case {name} ({way}): {:?}",
        report.reason_codes
    );
    assert!(report.signer.is_some(), "case {name} ({way}): no signer");
    assert!(
        report.signing_time.is_some(),
        "case {name} ({way}): no signing time"
    );
}

#[test]
fn conformance_cases_match_expectations() {
    let Some(dir) = conformance_dir() else { return };
    let names = case_names(&dir);
    assert!(
        names.len() >= 43,
        "expected the suite's 43 bundle-verify cases, found {}",
        names.len()
    );

    let mut failures = Vec::new();
    for name in &names {
        let case = load_case(&dir, name);
        let expected = EXPECTED_FAILURES
            .iter()
            .find(|(case_name, _)| case_name == name)
            .map(|(_, code)| *code);
        assert_eq!(
            expected.is_some(),
            name.ends_with("_fail"),
            "case {name}: a row in EXPECTED_FAILURES exactly for each _fail case"
        );
        for (way, report) in verify_case_both_ways(&case) {
            let outcome_ok = match expected {
                Some(code) => {
                    report.outcome == Outcome::Failed
                        && report.reason_codes == BTreeSet::from([code])
                        && report.detail.len() == 1
                }
                None => report.outcome == Outcome::Verified && report.reason_codes.is_empty(),
            };
            if !outcome_ok {
                failures.push(format!(
                    "case {name} ({way}): expected {expected:?}, got {:?} {:?}",
                    report.outcome, report.detail
                ));
            }
            for line in &report.detail {
                assert!(
                    !line.contains('\n'),
                    "case {name}: multi-line detail {line:?}"
                );
            }
            if expected.is_none() {
                assert_verified(name, way, &report);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every table row names an existing case, so a renamed case cannot silently drop out.
    for (case_name, _) in EXPECTED_FAILURES {
        assert!(
            names.iter().any(|name| name == case_name),
            "table row {case_name} names no case"
        );
    }
}

#[test]
fn dsse_happy_path_reports_statement() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-dsse-happy-path");
    let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
    assert_verified(&case.name, "plain", &report);
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
    assert_eq!(tlog.proof_source, ProofSource::Bundle);
}

#[test]
fn message_signature_reports_digest() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-happy-path");
    let report = verify_plain(&case, Artifact::None);
    assert_eq!(report.outcome, Outcome::Verified, "{:?}", report.detail);
    assert_eq!(report.kind, Some(EntryKind::MessageSignature));
    assert_eq!(report.signing_time, Some(1_749_729_740)); // 2025-06-12T12:02:20Z
    assert_eq!(report.subjects.len(), 1);
    assert_eq!(
        report.subjects[0].sha256,
        hex::encode(case.artifact_sha256())
    );
    let tlog = report.tlog.as_ref().expect("tlog reference");
    assert_eq!(
        tlog.root_hash,
        "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI="
    );
}

#[test]
fn rekor_v1_proof_uses_shard_index() {
    let Some(dir) = conformance_dir() else { return };
    let rows = [
        // (case, shard origin, proof index, tree size, integrated time)
        (
            "happy-path-v0.3",
            "rekor.sigstore.dev - 2605736670972794746",
            75_408_392,
            75_408_393,
            1_710_869_186,
        ),
        (
            "happy-path-v0.1",
            "rekor.sigstore.dev - 2605736670972794746",
            23_083_061,
            23_083_062,
            1_689_177_396,
        ),
        (
            "happy-path-intoto-in-dsse-v3",
            "rekor.sigstore.dev - 1193050959916656506",
            33_786_588,
            33_786_589,
            1_734_374_576,
        ),
    ];
    for (name, origin, index, size, integrated_time) in rows {
        let case = load_case(&dir, name);
        let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
        assert_verified(name, "plain", &report);
        assert_eq!(report.signing_time, Some(integrated_time), "case {name}");
        let tlog = report.tlog.as_ref().expect("tlog reference");
        assert_eq!(tlog.origin, origin, "case {name}");
        assert_eq!(
            (tlog.log_index, tlog.checkpoint_size),
            (index, size),
            "case {name}"
        );
        assert_eq!(tlog.proof_source, ProofSource::Bundle, "case {name}");
    }
}

/// Returns the bundle JSON with the inclusion proof of its only entry removed.
fn without_inclusion_proof(bundle: &[u8]) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(bundle).expect("bundle is JSON");
    let entry = json
        .pointer_mut("/verificationMaterial/tlogEntries/0")
        .and_then(serde_json::Value::as_object_mut)
        .expect("one tlog entry");
    entry.remove("inclusionProof");
    serde_json::to_vec(&json).expect("encodes")
}

#[test]
fn rekor_v1_promise_alone_suffices_in_v01() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "happy-path-v0.1");
    case.bundle = without_inclusion_proof(&case.bundle);
    let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
    assert_verified(&case.name, "promise only", &report);
    assert_eq!(report.signing_time, Some(1_689_177_396));
    assert_eq!(report.tlog, None, "no inclusion proof was verified");

    // The altered signed entry timestamp is then the only log evidence, and fails alone.
    let mut case = load_case(&dir, "set-invalid-signature_fail");
    case.bundle = without_inclusion_proof(&case.bundle);
    let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorSetInvalid]),
        "{:?}",
        report.detail
    );
}

#[test]
fn rekor_v1_checkpoint_must_name_log_shard() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "happy-path-v0.3");
    let text = String::from_utf8(case.bundle.clone()).expect("UTF-8 bundle");
    case.bundle = text
        .replace(
            "rekor.sigstore.dev - 2605736670972794746\\n",
            "rekor.example - 2605736670972794746\\n",
        )
        .into_bytes();
    let report = verify_plain(&case, Artifact::None);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorCheckpointInvalid]),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail[0].contains("is not a shard of log \"rekor.sigstore.dev\""),
        "{:?}",
        report.detail
    );
}

#[test]
fn rekor_v1_entry_must_match_bundle() {
    let Some(dir) = conformance_dir() else { return };
    // The v0.1 and v0.3 happy paths sign the same artifact with different certificates and
    // signatures, so v0.1's log entry does not match v0.3's signature.
    let donor = load_case(&dir, "happy-path-v0.1");
    let mut case = load_case(&dir, "happy-path-v0.3");
    let donor_json: serde_json::Value = serde_json::from_slice(&donor.bundle).expect("JSON");
    let mut json: serde_json::Value = serde_json::from_slice(&case.bundle).expect("JSON");
    let body = donor_json
        .pointer("/verificationMaterial/tlogEntries/0/canonicalizedBody")
        .cloned()
        .expect("donor body");
    *json
        .pointer_mut("/verificationMaterial/tlogEntries/0/canonicalizedBody")
        .expect("body") = body;
    case.bundle = serde_json::to_vec(&json).expect("encodes");
    let report = verify_plain(&case, Artifact::None);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::RekorEntryMismatch]),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail[0].contains("spec.signature.content, spec.signature.publicKey.content"),
        "{:?}",
        report.detail
    );
}

#[test]
fn wrong_artifact_is_subject_mismatch() {
    let Some(dir) = conformance_dir() else { return };
    for name in [
        "rekor2-happy-path",
        "rekor2-dsse-happy-path",
        "happy-path-v0.3",
        "happy-path-intoto-in-dsse-v3",
    ] {
        let case = load_case(&dir, name);
        let report = verify_plain(&case, Artifact::Sha256([0x11; 32]));
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
fn identity_must_match_exactly() {
    let Some(dir) = conformance_dir() else { return };
    let rows = [
        (
            "other identity",
            "https://github.com/other/repo",
            DEFAULT_ISSUER,
        ),
        (
            "other issuer",
            DEFAULT_IDENTITY,
            "https://accounts.google.com",
        ),
        (
            "identity prefix",
            "https://github.com/sigstore-conformance/",
            DEFAULT_ISSUER,
        ),
        (
            "identity with newline",
            &format!("{DEFAULT_IDENTITY}\n"),
            DEFAULT_ISSUER,
        ),
    ];
    for name in ["rekor2-happy-path", "happy-path-v0.3"] {
        let case = load_case(&dir, name);
        for (row, identity, issuer) in &rows {
            let report = verify_bundle_with_own_proof_signed_by(
                &VerifyInput {
                    bundle_json: &case.bundle,
                    trust: case.trust(),
                    artifact: Artifact::Sha256(case.artifact_sha256()),
                    now: NOW,
                },
                &ExpectedSigner::Identity { identity, issuer },
            );
            assert_eq!(
                report.reason_codes,
                BTreeSet::from([ReasonCode::IdentityMismatch]),
                "case {name} row {row}: {:?}",
                report.detail
            );
            let err = check_identity(&report, identity, issuer).expect_err(row);
            assert_eq!(err.reason_code(), ReasonCode::IdentityMismatch, "row {row}");
        }
        let report = verify_plain(&case, Artifact::None);
        assert_eq!(
            check_identity(&report, DEFAULT_IDENTITY, DEFAULT_ISSUER),
            Ok(())
        );
    }
}

#[test]
fn key_and_certificate_signers_differ() {
    let Some(dir) = conformance_dir() else { return };
    let key_case = load_case(&dir, "managed-key-happy-path");
    let CaseSigner::Key { spki_der } = &key_case.signer else {
        panic!("managed-key-happy-path has key.pub");
    };

    // A certificate-signed bundle does not satisfy a key requirement.
    let cert_case = load_case(&dir, "happy-path-v0.3");
    let input = VerifyInput {
        bundle_json: &cert_case.bundle,
        trust: cert_case.trust(),
        artifact: Artifact::None,
        now: NOW,
    };
    let report = verify_bundle_with_own_proof_signed_by(&input, &ExpectedSigner::Key { spki_der });
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::IdentityMismatch]),
        "{:?}",
        report.detail
    );

    // A key-signed bundle does not satisfy an identity requirement.
    let input = VerifyInput {
        bundle_json: &key_case.bundle,
        trust: key_case.trust(),
        artifact: Artifact::None,
        now: NOW,
    };
    let identity = ExpectedSigner::Identity {
        identity: DEFAULT_IDENTITY,
        issuer: DEFAULT_ISSUER,
    };
    let report = verify_bundle_with_own_proof_signed_by(&input, &identity);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::IdentityMismatch]),
        "{:?}",
        report.detail
    );

    // Another key (the P-256 base point as public key) does not verify the signature.
    let other_key = hex::decode(
        "3059301306072a8648ce3d020106082a8648ce3d030107034200046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    )
    .expect("hex");
    let report = verify_bundle_with_own_proof_signed_by(
        &input,
        &ExpectedSigner::Key {
            spki_der: &other_key,
        },
    );
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::MessageSignatureInvalid]),
        "{:?}",
        report.detail
    );
}

#[test]
fn managed_key_from_trust_set() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "managed-key-happy-path");
    let hint = "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk=";

    let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::CertChainInvalid]),
        "{:?}",
        report.detail
    );
    assert!(
        report.detail.iter().any(|line| line.contains(hint)),
        "{:?}",
        report.detail
    );
    assert_eq!(report.signer, None);

    let CaseSigner::Key { spki_der } = &case.signer else {
        panic!("managed-key-happy-path has key.pub");
    };
    let spki_der = spki_der.clone();
    let mut trust = case.trust().clone();
    trust.kms_keys.push(KmsKey {
        id: hint.to_owned(),
        spki_der,
    });
    case.trust = Ok(trust);
    let report = verify_plain(&case, Artifact::Sha256(case.artifact_sha256()));
    assert_verified(&case.name, "trust set key", &report);
    let signer = report.signer.as_ref().expect("managed key signer");
    assert_eq!(signer.identity, format!("key:{hint}"));
    assert_eq!(signer.issuer, "");
    assert_eq!(report.subjects.len(), 1, "{:?}", report.subjects);
    assert_eq!(
        report.subjects[0].sha256,
        hex::encode(case.artifact_sha256())
    );
}

#[test]
fn expired_trust_set_fails_closed() {
    let Some(dir) = conformance_dir() else { return };
    let mut case = load_case(&dir, "rekor2-happy-path");
    let mut trust = case.trust().clone();
    trust.expires_at = NOW - 1;
    case.trust = Ok(trust);
    let report = verify_plain(&case, Artifact::None);
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
    for (name, origin) in [
        ("rekor2-happy-path", "log2025-alpha1.rekor.sigstage.dev"),
        ("happy-path-v0.3", "rekor.sigstore.dev"),
    ] {
        let mut case = load_case(&dir, name);
        let mut trust = case.trust().clone();
        trust
            .trusted_root
            .tlogs
            .retain(|log| log.origin() != origin);
        case.trust = Ok(trust);
        let report = verify_plain(&case, Artifact::None);
        assert_eq!(
            report.reason_codes,
            BTreeSet::from([ReasonCode::RekorLogUnknown]),
            "case {name}: {:?}",
            report.detail
        );
    }
}

#[test]
fn timestamps_ignored_without_authorities() {
    let Some(dir) = conformance_dir() else { return };
    // The Rekor v1 integrated time still gives an observer time.
    let mut case = load_case(&dir, "managed-key-happy-path");
    let mut trust = case.trust().clone();
    trust.trusted_root.timestamp_authorities.clear();
    case.trust = Ok(trust);
    let [(_, report), _] = verify_case_both_ways(&case);
    assert_verified(&case.name, "no authorities", &report);
    assert_eq!(report.signing_time, Some(1_766_077_479));

    // A Rekor v2 bundle then has no observer time at all.
    let mut case = load_case(&dir, "rekor2-happy-path");
    let mut trust = case.trust().clone();
    trust.trusted_root.timestamp_authorities.clear();
    case.trust = Ok(trust);
    let report = verify_plain(&case, Artifact::None);
    assert_eq!(
        report.reason_codes,
        BTreeSet::from([ReasonCode::TimestampMissing]),
        "{:?}",
        report.detail
    );
}

#[test]
fn certificate_needs_trusted_sct() {
    let Some(dir) = conformance_dir() else { return };
    let staging_path = Path::new(VECTORS).join("sigstore-trust-roots/staging.trusted_root.json");
    let staging = trust_set(&read(&staging_path), &staging_path);
    for name in ["happy-path-v0.3", "happy-path-intoto-in-dsse-v3"] {
        // Only the staging CT logs: the production SCT names none of them.
        let mut case = load_case(&dir, name);
        let mut trust = case.trust().clone();
        trust.trusted_root.ctlogs = staging.trusted_root.ctlogs.clone();
        case.trust = Ok(trust);
        let report = verify_plain(&case, Artifact::None);
        assert_eq!(
            report.reason_codes,
            BTreeSet::from([ReasonCode::SctInvalid]),
            "case {name}: {:?}",
            report.detail
        );

        // A root without CT logs cannot check SCTs and skips them.
        let mut trust = case.trust().clone();
        trust.trusted_root.ctlogs.clear();
        case.trust = Ok(trust);
        let report = verify_plain(&case, Artifact::None);
        assert_verified(name, "no CT logs", &report);
    }
}

/// An inclusion source that has nothing cached, as an attestor without tiles. It records the
/// requested lookups.
#[derive(Default)]
struct EmptyCache {
    requests: std::cell::RefCell<Vec<(String, u64)>>,
}

impl InclusionSource for EmptyCache {
    fn inclusion(&self, origin: &str, index: u64) -> Result<CachedInclusion, InclusionLookupError> {
        self.requests.borrow_mut().push((origin.to_owned(), index));
        Err(InclusionLookupError::Missing {
            paths: vec![format!("{origin}/tile/0/{index}")],
        })
    }
}

#[test]
fn missing_proof_is_tile_missing() {
    let Some(dir) = conformance_dir() else { return };
    let rows = [
        (
            "rekor2-happy-path",
            "log2025-alpha1.rekor.sigstage.dev",
            735,
        ),
        // A Rekor v1 entry is looked up under its shard's origin and shard-local index.
        (
            "happy-path-v0.3",
            "rekor.sigstore.dev - 2605736670972794746",
            75_408_392,
        ),
    ];
    for (name, origin, index) in rows {
        let case = load_case(&dir, name);
        let input = VerifyInput {
            bundle_json: &case.bundle,
            trust: case.trust(),
            artifact: Artifact::None,
            now: NOW,
        };
        let cache = EmptyCache::default();
        let report = verify_bundle(&input, &cache);
        assert_eq!(report.outcome, Outcome::Failed, "case {name}");
        assert_eq!(
            report.reason_codes,
            BTreeSet::from([ReasonCode::RekorTileMissing]),
            "case {name}: {:?}",
            report.detail
        );
        assert_eq!(
            *cache.requests.borrow(),
            [(origin.to_owned(), index)],
            "case {name}"
        );
        assert!(
            report.detail[0].contains(&format!("{origin}/tile/0/{index}")),
            "case {name}: {:?}",
            report.detail
        );
        assert!(report.tlog.is_none(), "case {name}");

        let report = verify_bundle_signed_by(
            &input,
            &ExpectedSigner::Identity {
                identity: DEFAULT_IDENTITY,
                issuer: DEFAULT_ISSUER,
            },
            &EmptyCache::default(),
        );
        assert_eq!(
            report.reason_codes,
            BTreeSet::from([ReasonCode::RekorTileMissing]),
            "case {name}: {:?}",
            report.detail
        );
    }
}

#[test]
fn bundle_source_checks_origin() {
    let Some(dir) = conformance_dir() else { return };
    let case = load_case(&dir, "rekor2-happy-path");
    let bundle = stella_verify::bundle::parse_bundle(&case.bundle).expect("bundle parses");
    let source = BundleInclusionSource::new(&bundle, case.trust().checkpoint_verifiers());
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

    // A Rekor v1 proof is found by its shard-local index, and its checkpoint verifies under the
    // log key named after the host.
    let case = load_case(&dir, "happy-path-v0.3");
    let bundle = stella_verify::bundle::parse_bundle(&case.bundle).expect("bundle parses");
    let source = BundleInclusionSource::new(&bundle, case.trust().checkpoint_verifiers());
    let cached = source
        .inclusion("rekor.sigstore.dev - 2605736670972794746", 75_408_392)
        .expect("own proof");
    assert_eq!(cached.checkpoint.checkpoint().size, 75_408_393);
    assert_eq!(cached.checkpoint.verifier_name(), "rekor.sigstore.dev");
    assert_eq!(cached.checkpoint.key_id(), 0xc0d2_3d6a);
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
        common::vectors_absent(&format!("vectors folder {}", dir.display()));
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
            "happy-path-v0.1",
        ] {
            let case = load_case(&dir, name);
            entries.insert(
                format!("sigstore/{name}.json"),
                verify_plain(&case, Artifact::None),
            );
        }
        let trust = load_case(&dir, "rekor2-happy-path").trust().clone();
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
