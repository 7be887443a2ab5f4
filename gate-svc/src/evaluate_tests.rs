//! Unit tests of the decision logic, one per branch.

use std::collections::{BTreeMap, BTreeSet};

use stella_verify::reason::ReasonCode;
use stella_verify::report::{EntryReport, Outcome, VerificationReport};

use super::*;
use crate::policy::{Environment, parse_policy};
use crate::promotion::Promotion;

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const IDENTITY: &str = "https://github.com/acme/widget/.github/workflows/release.yml@refs/tags/v1.0.0";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn digest(byte: &str) -> String {
    format!("sha256:{}", byte.repeat(32))
}

fn environment(
    on_missing_proof: &str,
    on_attestor_unavailable: &str,
    identity: &str,
    predicate: Option<&str>,
) -> Environment {
    let predicate_line = predicate
        .map(|p| format!("        predicate_type: {p}\n"))
        .unwrap_or_default();
    let text = format!(
        "environments:\n  prod:\n    require:\n      - identity: '{identity}'\n        issuer: {ISSUER}\n{predicate_line}    on_missing_proof: {on_missing_proof}\n    on_attestor_unavailable: {on_attestor_unavailable}\n"
    );
    let policy = parse_policy("policy.yaml", text.as_bytes()).expect("test policy is valid");
    policy.environments.get("prod").cloned().expect("prod environment")
}

fn prod() -> Environment {
    environment("deny", "deny", IDENTITY, Some(SLSA))
}

fn promotion(subjects: &[String]) -> Promotion {
    Promotion {
        promotion_id: "rel-1".to_owned(),
        subject_digests: subjects.to_vec(),
        target_environment: "prod".to_owned(),
        evidence_bundle_ids: vec![digest("e1")],
    }
}

/// Builds a verified entry signed by `identity` over `subjects` (hex digest patterns).
fn verified_entry(identity: &str, predicate: Option<&str>, subjects: &[&str]) -> EntryReport {
    crate::test_reports::entry(
        Outcome::Verified,
        &[],
        Some((identity, ISSUER)),
        predicate,
        subjects,
        Some(("log.example", 42, "cm9vdA==")),
    )
}

fn failed_entry(codes: &[ReasonCode]) -> EntryReport {
    crate::test_reports::entry(
        Outcome::Failed,
        codes,
        Some((IDENTITY, ISSUER)),
        Some(SLSA),
        &["aa"],
        None,
    )
}

fn report_result(bundle_id: &str, entries: Vec<(&str, EntryReport)>) -> EvidenceResult {
    let entries: BTreeMap<String, EntryReport> = entries
        .into_iter()
        .map(|(path, entry)| (path.to_owned(), entry))
        .collect();
    let report: VerificationReport = crate::test_reports::report(bundle_id, entries);
    EvidenceResult {
        bundle_id: bundle_id.to_owned(),
        outcome: EvidenceOutcome::Report {
            report_digest: format!("sha256:report-of-{bundle_id}"),
            report,
        },
    }
}

fn error_result(bundle_id: &str, code: ReasonCode) -> EvidenceResult {
    EvidenceResult {
        bundle_id: bundle_id.to_owned(),
        outcome: EvidenceOutcome::Error {
            code,
            detail: format!("{code}: test"),
        },
    }
}

fn codes(list: &[ReasonCode]) -> BTreeSet<ReasonCode> {
    list.iter().copied().collect()
}

#[test]
fn evaluate_all_verified_allows() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("provenance.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
    assert!(result.reason_codes.is_empty());
    assert_eq!(result.gates.len(), 2);
    assert!(result.gates.iter().all(|gate| gate.satisfied));
    assert_eq!(
        result.report_digests,
        vec![format!("sha256:report-of-{}", digest("e1"))]
    );
    let checkpoint = result.checkpoints.iter().next().expect("one checkpoint");
    assert_eq!(checkpoint.origin, "log.example");
    assert_eq!(checkpoint.tree_size, 42);
}

#[test]
fn evaluate_two_subjects_both_covered() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa", "bb"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa"), digest("bb")]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn evaluate_failed_entry_denies_per_code() {
    let rows = [
        ("checkpoint invalid", ReasonCode::RekorCheckpointInvalid),
        ("proof invalid", ReasonCode::RekorProofInvalid),
        ("root mismatch", ReasonCode::RekorRootMismatch),
        ("dsse signature", ReasonCode::DsseSignatureInvalid),
        ("cert chain", ReasonCode::CertChainInvalid),
        ("trust root expired", ReasonCode::TrustRootExpired),
        ("timestamp missing", ReasonCode::TimestampMissing),
    ];
    for (name, code) in rows {
        let evidence = [report_result(
            &digest("e1"),
            vec![
                ("good.json", verified_entry(IDENTITY, Some(SLSA), &["aa"])),
                ("bad.json", failed_entry(&[code])),
            ],
        )];
        // Even with lenient fallbacks, a real verification failure denies.
        let result = evaluate(
            &promotion(&[digest("aa")]),
            Some(&environment("pending", "pending", IDENTITY, Some(SLSA))),
            &evidence,
        );
        assert_eq!(result.decision, Decision::Deny, "row {name}: {result:?}");
        assert_eq!(result.reason_codes, codes(&[code]), "row {name}");
    }
}

#[test]
fn evaluate_missing_proof_pending() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", failed_entry(&[ReasonCode::RekorTileMissing]))],
    )];
    let env = environment("pending", "deny", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::RekorTileMissing));
}

#[test]
fn evaluate_missing_proof_deny() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", failed_entry(&[ReasonCode::RekorTileMissing]))],
    )];
    let env = environment("deny", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::RekorTileMissing));
}

#[test]
fn evaluate_missing_proof_plus_other_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![(
            "p.json",
            failed_entry(&[ReasonCode::RekorTileMissing, ReasonCode::IdentityMismatch]),
        )],
    )];
    let env = environment("pending", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::IdentityMismatch));
}

#[test]
fn evaluate_attestor_unavailable_pending() {
    let evidence = [error_result(&digest("e1"), ReasonCode::AttestorUnavailable)];
    let env = environment("deny", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::AttestorUnavailable));
}

#[test]
fn evaluate_attestor_unavailable_deny() {
    let evidence = [error_result(&digest("e1"), ReasonCode::AttestorUnavailable)];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::AttestorUnavailable));
}

#[test]
fn evaluate_evidence_not_found_denies() {
    let evidence = [error_result(&digest("e1"), ReasonCode::EvidenceNotFound)];
    let env = environment("pending", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::EvidenceNotFound));
}

#[test]
fn evaluate_report_for_other_bundle_denies() {
    let mut result_for_other = report_result(
        &digest("e2"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    );
    result_for_other.bundle_id = digest("e1");
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &[result_for_other]);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::EvidenceNotFound));
}

#[test]
fn evaluate_unmet_requirement_denies() {
    let rows = [
        (
            "other identity",
            verified_entry(
                "https://github.com/mallory/x/.github/workflows/r.yml@refs/heads/main",
                Some(SLSA),
                &["aa"],
            ),
        ),
        (
            "other predicate",
            verified_entry(IDENTITY, Some("https://spdx.dev/Document"), &["aa"]),
        ),
        ("no predicate", verified_entry(IDENTITY, None, &["aa"])),
    ];
    for (name, entry) in rows {
        let evidence = [report_result(&digest("e1"), vec![("p.json", entry)])];
        let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence);
        assert_eq!(result.decision, Decision::Deny, "row {name}: {result:?}");
        assert_eq!(
            result.reason_codes,
            codes(&[ReasonCode::PolicyRequirementUnmet]),
            "row {name}"
        );
    }
}

#[test]
fn evaluate_unmet_while_pending_stays_pending() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", failed_entry(&[ReasonCode::RekorTileMissing]))],
    )];
    let env = environment("pending", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    let requirement_gate = result.gates.last().expect("requirement gate");
    assert!(!requirement_gate.satisfied);
    assert_eq!(requirement_gate.reason_codes, codes(&[ReasonCode::RekorTileMissing]));
    assert_eq!(result.reason_codes, codes(&[ReasonCode::RekorTileMissing]));
}

#[test]
fn evaluate_regex_identity_matches() {
    let env = environment(
        "deny",
        "deny",
        "/https://github\\.com/acme/[a-z]+/\\.github/workflows/release\\.yml@refs/tags/v.*/",
        Some(SLSA),
    );
    let good = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &good);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");

    let prefixed = format!("https://evil.example/{IDENTITY}");
    let bad = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(&prefixed, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &bad);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_subject_mismatch_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa"), digest("bb")]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[ReasonCode::SubjectMismatch, ReasonCode::PolicyRequirementUnmet])
    );
}

#[test]
fn evaluate_environment_missing_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), None, &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyInvalid]));
}

#[test]
fn evaluate_no_evidence_denies() {
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &[]);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_no_subjects_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_empty_report_denies() {
    let evidence = [report_result(&digest("e1"), vec![])];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
}

#[test]
fn evaluate_is_deterministic() {
    let evidence = [
        report_result(
            &digest("e2"),
            vec![("p.json", failed_entry(&[ReasonCode::RekorTileMissing]))],
        ),
        report_result(
            &digest("e1"),
            vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
        ),
    ];
    let mut reversed = evidence.clone();
    reversed.reverse();
    let env = environment("pending", "pending", IDENTITY, Some(SLSA));
    let first = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence);
    let second = evaluate(&promotion(&[digest("aa")]), Some(&env), &reversed);
    assert_eq!(first, second);
    assert_eq!(first.decision, Decision::Pending);
}
