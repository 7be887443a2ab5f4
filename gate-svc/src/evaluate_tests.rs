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
    prod_environment(&text)
}

/// Parses a policy and returns its `prod` environment.
fn prod_environment(text: &str) -> Environment {
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa"), digest("bb")]), Some(&prod()), &evidence, 0);
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
            0,
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::IdentityMismatch));
}

#[test]
fn evaluate_attestor_unavailable_pending() {
    let evidence = [error_result(&digest("e1"), ReasonCode::AttestorUnavailable)];
    let env = environment("deny", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::AttestorUnavailable));
}

#[test]
fn evaluate_attestor_unavailable_deny() {
    let evidence = [error_result(&digest("e1"), ReasonCode::AttestorUnavailable)];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence, 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::AttestorUnavailable));
}

#[test]
fn evaluate_evidence_not_found_denies() {
    let evidence = [error_result(&digest("e1"), ReasonCode::EvidenceNotFound)];
    let env = environment("pending", "pending", IDENTITY, Some(SLSA));
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &[result_for_other], 0);
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
        let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &good, 0);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");

    let prefixed = format!("https://evil.example/{IDENTITY}");
    let bad = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(&prefixed, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &bad, 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_subject_mismatch_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[digest("aa"), digest("bb")]), Some(&prod()), &evidence, 0);
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
    let result = evaluate(&promotion(&[digest("aa")]), None, &evidence, 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyInvalid]));
}

#[test]
fn evaluate_no_evidence_denies() {
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &[], 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_no_subjects_denies() {
    let evidence = [report_result(
        &digest("e1"),
        vec![("p.json", verified_entry(IDENTITY, Some(SLSA), &["aa"]))],
    )];
    let result = evaluate(&promotion(&[]), Some(&prod()), &evidence, 0);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluate_empty_report_denies() {
    let evidence = [report_result(&digest("e1"), vec![])];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&prod()), &evidence, 0);
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
    let first = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, 0);
    let second = evaluate(&promotion(&[digest("aa")]), Some(&env), &reversed, 0);
    assert_eq!(first, second);
    assert_eq!(first.decision, Decision::Pending);
}

/// Signing time that `crate::test_reports::entry` gives every entry, in Unix seconds.
const SIGNED_AT: i64 = 1_750_000_000;

/// Builds the `prod` environment with the standard requirement followed by `settings`, YAML
/// lines indented by four spaces.
fn prod_with(settings: &str) -> Environment {
    let text = format!(
        "environments:\n  prod:\n    require:\n      - identity: '{IDENTITY}'\n        issuer: {ISSUER}\n        predicate_type: {SLSA}\n{settings}"
    );
    prod_environment(&text)
}

/// Returns a verified entry over subject `aa` whose checkpoint carries `cosignatures`
/// (witness name, Unix seconds).
fn cosigned_entry(cosignatures: &[(&str, i64)]) -> EntryReport {
    let mut entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    if let Some(tlog) = entry.tlog.as_mut() {
        tlog.cosignatures = cosignatures
            .iter()
            .map(|(witness, timestamp)| stella_verify::report::WitnessCosignature {
                witness: (*witness).to_owned(),
                timestamp: *timestamp,
            })
            .collect();
    }
    entry
}

fn evaluate_one(entry: EntryReport, environment: &Environment, evaluation_time: i64) -> Evaluation {
    let evidence = [report_result(&digest("e1"), vec![("p.json", entry)])];
    evaluate(
        &promotion(&[digest("aa")]),
        Some(environment),
        &evidence,
        evaluation_time,
    )
}

#[test]
fn evidence_age_at_maximum_allows() {
    let env = prod_with("    max_evidence_age: 30d\n");
    let result = evaluate_one(
        verified_entry(IDENTITY, Some(SLSA), &["aa"]),
        &env,
        SIGNED_AT + 30 * 86_400,
    );
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
    assert!(result.reason_codes.is_empty());
}

#[test]
fn evidence_age_one_second_over_denies() {
    let env = prod_with("    max_evidence_age: 30d\n    on_stale_checkpoint: pending\n");
    let result = evaluate_one(
        verified_entry(IDENTITY, Some(SLSA), &["aa"]),
        &env,
        SIGNED_AT + 30 * 86_400 + 1,
    );
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[ReasonCode::EvidenceStale, ReasonCode::PolicyRequirementUnmet])
    );
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(evidence_gate.reason_codes, codes(&[ReasonCode::EvidenceStale]));
    assert_eq!(
        evidence_gate.detail,
        vec!["p.json: ERR_EVIDENCE_STALE: signed 2592001s before the evaluation time, max_evidence_age is 30d"]
    );
}

#[test]
fn evidence_without_signing_time_denies() {
    let env = prod_with("    max_evidence_age: 30d\n");
    let mut entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    entry.signing_time = None;
    let result = evaluate_one(entry, &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::EvidenceStale), "{result:?}");
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(
        evidence_gate.detail,
        vec!["p.json: ERR_EVIDENCE_STALE: no verified signing time, max_evidence_age is 30d"]
    );
}

#[test]
fn evidence_age_unchecked_without_maximum() {
    let mut entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    entry.signing_time = None;
    let result = evaluate_one(entry, &prod(), SIGNED_AT + 3_650 * 86_400);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn evidence_signed_after_evaluation_time_allows() {
    let env = prod_with("    max_evidence_age: 1h\n");
    let result = evaluate_one(verified_entry(IDENTITY, Some(SLSA), &["aa"]), &env, SIGNED_AT - 60);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn stale_entry_denies_beside_fresh_entry() {
    let env = prod_with("    max_evidence_age: 1h\n");
    let fresh = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    let mut old = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    old.signing_time = Some(SIGNED_AT - 2 * 3_600);
    let evidence = [report_result(
        &digest("e1"),
        vec![("fresh.json", fresh), ("old.json", old)],
    )];
    let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, SIGNED_AT);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::EvidenceStale]));
    let requirement_gate = result.gates.last().expect("requirement gate");
    assert!(requirement_gate.satisfied, "the fresh entry meets the requirement");
}

#[test]
fn checkpoint_age_at_maximum_allows() {
    let env = prod_with("    max_checkpoint_age: 24h\n");
    let cosigned_at = SIGNED_AT + 100;
    let entry = cosigned_entry(&[("witness.example/a", cosigned_at)]);
    let result = evaluate_one(entry, &env, cosigned_at + 86_400);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn checkpoint_age_one_second_over_denies() {
    let env = prod_with("    max_checkpoint_age: 24h\n");
    let cosigned_at = SIGNED_AT + 100;
    let entry = cosigned_entry(&[("witness.example/a", cosigned_at)]);
    let result = evaluate_one(entry, &env, cosigned_at + 86_401);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[ReasonCode::CheckpointStale, ReasonCode::PolicyRequirementUnmet])
    );
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(
        evidence_gate.detail,
        vec![
            "p.json: ERR_CHECKPOINT_STALE: checkpoint log.example size 42 was last cosigned 86401s before the evaluation time, max_checkpoint_age is 1d"
        ]
    );
}

#[test]
fn checkpoint_stale_pending_per_policy() {
    let env = prod_with("    max_checkpoint_age: 24h\n    on_stale_checkpoint: pending\n");
    let cosigned_at = SIGNED_AT + 100;
    let entry = cosigned_entry(&[("witness.example/a", cosigned_at)]);
    let result = evaluate_one(entry, &env, cosigned_at + 86_401);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::CheckpointStale]));
    let requirement_gate = result.gates.last().expect("requirement gate");
    assert!(!requirement_gate.satisfied);
    assert_eq!(requirement_gate.reason_codes, codes(&[ReasonCode::CheckpointStale]));
}

#[test]
fn checkpoint_age_uses_newest_cosignature() {
    let env = prod_with("    max_checkpoint_age: 1h\n");
    let entry = cosigned_entry(&[
        ("witness.example/a", SIGNED_AT - 86_400),
        ("witness.example/b", SIGNED_AT),
    ]);
    let result = evaluate_one(entry, &env, SIGNED_AT + 3_600);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn checkpoint_without_cosignature_stale() {
    let env = prod_with("    max_checkpoint_age: 24h\n");
    let result = evaluate_one(cosigned_entry(&[]), &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert!(result.reason_codes.contains(&ReasonCode::CheckpointStale), "{result:?}");
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(
        evidence_gate.detail,
        vec![
            "p.json: ERR_CHECKPOINT_STALE: checkpoint log.example size 42 has no witness cosignature to date it, max_checkpoint_age is 1d"
        ]
    );
}

#[test]
fn entry_without_tlog_fails_checkpoint_checks() {
    let env =
        prod_with("    max_checkpoint_age: 24h\n    min_witness_cosignatures: 1\n    on_stale_checkpoint: pending\n");
    let mut entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    entry.tlog = None;
    let result = evaluate_one(entry, &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[ReasonCode::CheckpointStale, ReasonCode::WitnessCosignaturesInsufficient])
    );
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(
        evidence_gate.detail,
        vec![
            "p.json: ERR_CHECKPOINT_STALE: no verified checkpoint, max_checkpoint_age is 1d",
            "p.json: ERR_WITNESS_COSIGNATURES_INSUFFICIENT: no verified checkpoint, min_witness_cosignatures is 1",
        ]
    );
}

#[test]
fn entry_without_tlog_passes_unset_checks() {
    let mut entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    entry.tlog = None;
    let result = evaluate_one(entry, &prod(), SIGNED_AT);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
    assert!(result.checkpoints.is_empty());
}

#[test]
fn witness_minimum_met_allows() {
    let env = prod_with("    min_witness_cosignatures: 2\n");
    let entry = cosigned_entry(&[("witness.example/a", SIGNED_AT), ("witness.example/b", SIGNED_AT)]);
    let result = evaluate_one(entry, &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
}

#[test]
fn witness_duplicates_counted_once() {
    let env = prod_with("    min_witness_cosignatures: 2\n");
    let entry = cosigned_entry(&[("witness.example/a", SIGNED_AT), ("witness.example/a", SIGNED_AT + 60)]);
    let result = evaluate_one(entry, &env, SIGNED_AT + 60);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[
            ReasonCode::WitnessCosignaturesInsufficient,
            ReasonCode::PolicyRequirementUnmet
        ])
    );
    let evidence_gate = result.gates.first().expect("evidence gate");
    assert_eq!(
        evidence_gate.detail,
        vec![
            "p.json: ERR_WITNESS_COSIGNATURES_INSUFFICIENT: checkpoint log.example size 42 has cosignatures from 1 distinct witnesses, min_witness_cosignatures is 2"
        ]
    );
}

#[test]
fn witness_shortfall_pending_per_policy() {
    let env = prod_with("    min_witness_cosignatures: 1\n    on_stale_checkpoint: pending\n");
    let result = evaluate_one(cosigned_entry(&[]), &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Pending, "{result:?}");
    assert_eq!(
        result.reason_codes,
        codes(&[ReasonCode::WitnessCosignaturesInsufficient])
    );
}

#[test]
fn stale_checkpoint_with_missing_proof() {
    let rows = [
        ("both pending", "pending", "pending", Decision::Pending),
        ("stale checkpoint denies", "pending", "deny", Decision::Deny),
        ("missing proof denies", "deny", "pending", Decision::Deny),
    ];
    for (name, on_missing_proof, on_stale_checkpoint, expected) in rows {
        let env = prod_with(&format!(
            "    max_checkpoint_age: 1h\n    on_missing_proof: {on_missing_proof}\n    on_stale_checkpoint: {on_stale_checkpoint}\n"
        ));
        let evidence = [report_result(
            &digest("e1"),
            vec![
                ("missing.json", failed_entry(&[ReasonCode::RekorTileMissing])),
                ("old.json", cosigned_entry(&[("witness.example/a", SIGNED_AT - 7_200)])),
            ],
        )];
        let result = evaluate(&promotion(&[digest("aa")]), Some(&env), &evidence, SIGNED_AT);
        assert_eq!(result.decision, expected, "row {name}: {result:?}");
        assert!(
            result.reason_codes.contains(&ReasonCode::RekorTileMissing),
            "row {name}"
        );
        assert!(result.reason_codes.contains(&ReasonCode::CheckpointStale), "row {name}");
    }
}

/// Builds the `prod` environment with one KMS requirement for key `release`.
fn kms_env() -> Environment {
    let text =
        format!("environments:\n  prod:\n    require:\n      - predicate_type: {SLSA}\n        kms_key_id: release\n");
    prod_environment(&text)
}

fn signed_by(identity: &str, issuer: &str) -> EntryReport {
    crate::test_reports::entry(
        Outcome::Verified,
        &[],
        Some((identity, issuer)),
        Some(SLSA),
        &["aa"],
        Some(("log.example", 42, "cm9vdA==")),
    )
}

#[test]
fn kms_requirement_matches_key_signer() {
    let result = evaluate_one(signed_by("key:release", ""), &kms_env(), SIGNED_AT);
    assert_eq!(result.decision, Decision::Allow, "{result:?}");
    let requirement_gate = result.gates.last().expect("requirement gate");
    assert_eq!(
        requirement_gate.requirement,
        format!("predicate_type={SLSA} kms_key_id=release")
    );
}

#[test]
fn kms_requirement_rejects_other_signers() {
    let rows = [
        ("other key", signed_by("key:other", "")),
        ("certificate named like a key", signed_by("key:release", ISSUER)),
        ("certificate", signed_by(IDENTITY, ISSUER)),
        ("bare key id", signed_by("release", "")),
    ];
    for (name, entry) in rows {
        let result = evaluate_one(entry, &kms_env(), SIGNED_AT);
        assert_eq!(result.decision, Decision::Deny, "row {name}: {result:?}");
        assert_eq!(
            result.reason_codes,
            codes(&[ReasonCode::PolicyRequirementUnmet]),
            "row {name}"
        );
    }
}

#[test]
fn certificate_requirement_rejects_key_signer() {
    let env = environment("deny", "deny", "key:release", Some(SLSA));
    let result = evaluate_one(signed_by("key:release", ""), &env, SIGNED_AT);
    assert_eq!(result.decision, Decision::Deny, "{result:?}");
    assert_eq!(result.reason_codes, codes(&[ReasonCode::PolicyRequirementUnmet]));
}

#[test]
fn evaluation_time_changes_decision_only_past_limits() {
    let env = prod_with("    max_evidence_age: 1d\n");
    let entry = verified_entry(IDENTITY, Some(SLSA), &["aa"]);
    let before = evaluate_one(entry.clone(), &env, SIGNED_AT + 86_400);
    let again = evaluate_one(entry.clone(), &env, SIGNED_AT + 86_400);
    let after = evaluate_one(entry, &env, SIGNED_AT + 86_401);
    assert_eq!(before, again);
    assert_eq!(before.decision, Decision::Allow);
    assert_eq!(after.decision, Decision::Deny);
}
