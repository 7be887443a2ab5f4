//! The gate decision: a pure function of the promotion, the policy environment and the
//! attestor's verification reports (or the error that replaced each report).
//!
//! Rules, in order of precedence:
//! - deny when the environment has no policy (`ERR_POLICY_INVALID`), when an evidence
//!   bundle is unknown (`ERR_EVIDENCE_NOT_FOUND`) or failed verification for any reason
//!   other than a missing tile or proof, or when a requirement is unmet while no evidence
//!   is still pending (`ERR_POLICY_REQUIREMENT_UNMET`);
//! - otherwise the environment's `on_missing_proof` for `ERR_REKOR_TILE_MISSING`, and
//!   `on_attestor_unavailable` for `ERR_ATTESTOR_UNAVAILABLE` (deny or pending);
//! - allow only when every evidence bundle verified and every requirement is met for every
//!   subject digest. Anything else is a deny, and every deny or pending carries at least
//!   one reason code.
//!
//! Reads no clock and performs no I/O, so the same inputs give the same evaluation.

use std::collections::BTreeSet;

use stella_verify::reason::ReasonCode;
use stella_verify::report::{EntryReport, Outcome, VerificationReport};

use crate::policy::{Environment, Fallback, Requirement};
use crate::promotion::Promotion;

/// The gate's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Pending,
}

impl Decision {
    /// Returns "allow", "deny" or "pending".
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Pending => "pending",
        }
    }
}

/// The attestor's result for one evidence bundle of the promotion.
#[derive(Debug, Clone)]
pub struct EvidenceResult {
    pub bundle_id: String,
    pub outcome: EvidenceOutcome,
}

/// A verification report, or the reason code of the call that did not produce one.
#[derive(Debug, Clone)]
pub enum EvidenceOutcome {
    Report {
        /// "sha256:<hex>" of the canonical report JSON.
        report_digest: String,
        report: VerificationReport,
    },
    /// For example `ERR_ATTESTOR_UNAVAILABLE` or `ERR_EVIDENCE_NOT_FOUND`.
    Error { code: ReasonCode, detail: String },
}

/// Outcome of one gate: an evidence bundle or a policy requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateResult {
    /// "evidence <bundle id>" or the requirement as written in the policy.
    pub requirement: String,
    pub satisfied: bool,
    pub reason_codes: BTreeSet<ReasonCode>,
    /// One line per failure, for operators.
    pub detail: Vec<String>,
}

/// A checkpoint that a verified entry was proven against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointRef {
    pub origin: String,
    pub tree_size: u64,
    /// Standard base64.
    pub root_hash: String,
}

/// The full result of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub reason_codes: BTreeSet<ReasonCode>,
    /// Evidence gates first (in bundle id order), then requirement gates (in policy order).
    pub gates: Vec<GateResult>,
    pub checkpoints: BTreeSet<CheckpointRef>,
    /// Sorted and deduplicated.
    pub report_digests: Vec<String>,
}

/// How much one finding weighs on the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    None,
    Pending,
    Deny,
}

impl From<Fallback> for Severity {
    fn from(fallback: Fallback) -> Self {
        match fallback {
            Fallback::Deny => Severity::Deny,
            Fallback::Pending => Severity::Pending,
        }
    }
}

/// A verified entry's facts that requirements are checked against.
struct VerifiedEntry<'a> {
    identity: &'a str,
    issuer: &'a str,
    predicate_type: Option<&'a str>,
    /// "sha256:<hex>" subject digests.
    subjects: BTreeSet<String>,
}

/// Decides a promotion. `environment` is `None` when the policy has no entry for the
/// promotion's target environment.
pub fn evaluate(promotion: &Promotion, environment: Option<&Environment>, evidence: &[EvidenceResult]) -> Evaluation {
    let mut severity = Severity::None;
    let mut gates = Vec::new();
    let mut checkpoints = BTreeSet::new();
    let mut report_digests = BTreeSet::new();
    let mut verified = Vec::new();
    let mut pending_codes = BTreeSet::new();

    let missing_proof = environment.map_or(Fallback::Deny, |env| env.on_missing_proof);
    let attestor_unavailable = environment.map_or(Fallback::Deny, |env| env.on_attestor_unavailable);

    if environment.is_none() {
        severity = Severity::Deny;
        gates.push(GateResult {
            requirement: format!("policy for environment {}", promotion.target_environment),
            satisfied: false,
            reason_codes: BTreeSet::from([ReasonCode::PolicyInvalid]),
            detail: vec![format!(
                "the policy has no environment {:?}",
                promotion.target_environment
            )],
        });
    }

    let mut sorted: Vec<&EvidenceResult> = evidence.iter().collect();
    sorted.sort_by(|a, b| a.bundle_id.cmp(&b.bundle_id));
    for result in sorted {
        let mut gate = GateResult {
            requirement: format!("evidence {}", result.bundle_id),
            satisfied: false,
            reason_codes: BTreeSet::new(),
            detail: Vec::new(),
        };
        let gate_severity = match &result.outcome {
            EvidenceOutcome::Error { code, detail } => {
                gate.reason_codes.insert(*code);
                gate.detail.push(detail.clone());
                if *code == ReasonCode::AttestorUnavailable {
                    Severity::from(attestor_unavailable)
                } else {
                    Severity::Deny
                }
            }
            EvidenceOutcome::Report { report_digest, report } => {
                report_digests.insert(report_digest.clone());
                check_report(
                    &result.bundle_id,
                    report,
                    missing_proof,
                    &mut gate,
                    &mut verified,
                    &mut checkpoints,
                )
            }
        };
        gate.satisfied = gate_severity == Severity::None && gate.reason_codes.is_empty();
        if gate_severity == Severity::Pending {
            pending_codes.extend(gate.reason_codes.iter().copied());
        }
        severity = severity.max(gate_severity);
        gates.push(gate);
    }

    if let Some(environment) = environment {
        let evidence_pending = severity == Severity::Pending;
        for requirement in &environment.require {
            let mut gate = check_requirement(requirement, promotion, &verified);
            if !gate.satisfied {
                if evidence_pending {
                    // Pending evidence may still meet the requirement, so it is undecided
                    // rather than unmet, and carries the codes that keep it pending.
                    gate.reason_codes.clone_from(&pending_codes);
                    gate.detail
                        .push("undecided until the pending evidence is verified".to_owned());
                } else {
                    severity = Severity::Deny;
                }
            }
            gates.push(gate);
        }
    }

    let mut reason_codes: BTreeSet<ReasonCode> = gates
        .iter()
        .flat_map(|gate| gate.reason_codes.iter().copied())
        .collect();

    let all_satisfied = !gates.is_empty() && gates.iter().all(|gate| gate.satisfied);
    let decision = match severity {
        Severity::Deny => Decision::Deny,
        Severity::Pending => Decision::Pending,
        Severity::None if all_satisfied && reason_codes.is_empty() && environment.is_some() => Decision::Allow,
        Severity::None => Decision::Deny,
    };
    if decision != Decision::Allow && reason_codes.is_empty() {
        // Unreachable with well-formed inputs because every failing gate carries a code,
        // but a deny must always carry a reason code.
        reason_codes.insert(ReasonCode::PolicyRequirementUnmet);
    }

    Evaluation {
        decision,
        reason_codes,
        gates,
        checkpoints,
        report_digests: report_digests.into_iter().collect(),
    }
}

/// Records a report's failures on the evidence gate, collects its verified entries and
/// returns the report's severity.
fn check_report<'a>(
    bundle_id: &str,
    report: &'a VerificationReport,
    missing_proof: Fallback,
    gate: &mut GateResult,
    verified: &mut Vec<VerifiedEntry<'a>>,
    checkpoints: &mut BTreeSet<CheckpointRef>,
) -> Severity {
    if report.bundle_id != bundle_id {
        gate.reason_codes.insert(ReasonCode::EvidenceNotFound);
        gate.detail.push(format!(
            "the attestor returned a report for {}, expected {bundle_id}",
            report.bundle_id
        ));
        return Severity::Deny;
    }

    let mut codes: BTreeSet<ReasonCode> = report.reason_codes.iter().copied().collect();
    for (path, entry) in &report.entries {
        if entry.outcome == Outcome::Verified && entry.reason_codes.is_empty() {
            if let Some(facts) = verified_entry(entry) {
                verified.push(facts);
            }
            if let Some(tlog) = &entry.tlog {
                checkpoints.insert(CheckpointRef {
                    origin: tlog.origin.clone(),
                    tree_size: tlog.checkpoint_size,
                    root_hash: tlog.root_hash.clone(),
                });
            }
            continue;
        }
        codes.extend(entry.reason_codes.iter().copied());
        for line in &entry.detail {
            gate.detail.push(format!("{path}: {line}"));
        }
        if entry.reason_codes.is_empty() {
            gate.detail
                .push(format!("{path}: verification failed without a reason code"));
        }
    }

    let report_failed = report.outcome != Outcome::Verified;
    if codes.is_empty() && !report_failed {
        return Severity::None;
    }
    let only_missing_proof = !codes.is_empty() && codes.iter().all(|code| *code == ReasonCode::RekorTileMissing);
    gate.reason_codes.extend(codes);
    if only_missing_proof {
        Severity::from(missing_proof)
    } else {
        Severity::Deny
    }
}

fn verified_entry(entry: &EntryReport) -> Option<VerifiedEntry<'_>> {
    let signer = entry.signer.as_ref()?;
    Some(VerifiedEntry {
        identity: signer.identity.as_str(),
        issuer: signer.issuer.as_str(),
        predicate_type: entry.predicate_type.as_deref(),
        subjects: entry
            .subjects
            .iter()
            .map(|subject| format!("sha256:{}", subject.sha256.to_ascii_lowercase()))
            .collect(),
    })
}

/// Checks that, for every subject digest, some verified entry by an accepted signer
/// covers it.
fn check_requirement(requirement: &Requirement, promotion: &Promotion, verified: &[VerifiedEntry<'_>]) -> GateResult {
    let mut gate = GateResult {
        requirement: requirement.to_string(),
        satisfied: false,
        reason_codes: BTreeSet::new(),
        detail: Vec::new(),
    };

    let candidates: Vec<&VerifiedEntry<'_>> = verified
        .iter()
        .filter(|entry| {
            requirement.identity.matches(entry.identity)
                && entry.issuer == requirement.issuer
                && requirement
                    .predicate_type
                    .as_deref()
                    .is_none_or(|wanted| entry.predicate_type == Some(wanted))
        })
        .collect();

    if promotion.subject_digests.is_empty() {
        gate.reason_codes.insert(ReasonCode::PolicyRequirementUnmet);
        gate.detail.push("the promotion has no subject digests".to_owned());
        return gate;
    }
    if candidates.is_empty() {
        gate.reason_codes.insert(ReasonCode::PolicyRequirementUnmet);
        gate.detail
            .push("no verified evidence from an accepted signer".to_owned());
        return gate;
    }
    for subject in &promotion.subject_digests {
        if !candidates.iter().any(|entry| entry.subjects.contains(subject)) {
            gate.reason_codes.insert(ReasonCode::PolicyRequirementUnmet);
            gate.reason_codes.insert(ReasonCode::SubjectMismatch);
            gate.detail
                .push(format!("no accepted evidence covers subject {subject}"));
        }
    }
    gate.satisfied = gate.reason_codes.is_empty();
    gate
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
