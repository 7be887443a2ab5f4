//! The gate decision: a pure function of the promotion, the policy environment, the
//! attestor's verification reports (or the error that replaced each report) and the
//! evaluation time.
//!
//! Rules, in order of precedence:
//! - deny when the environment has no policy (`ERR_POLICY_INVALID`), when an evidence
//!   bundle is unknown (`ERR_EVIDENCE_NOT_FOUND`) or failed verification for any reason
//!   other than a missing tile or proof, when a verified entry is older than
//!   `max_evidence_age` or has no signing time while a maximum is set (`ERR_EVIDENCE_STALE`),
//!   or when a requirement is unmet while no evidence is still pending
//!   (`ERR_POLICY_REQUIREMENT_UNMET`);
//! - otherwise the environment's `on_missing_proof` for `ERR_REKOR_TILE_MISSING`,
//!   `on_attestor_unavailable` for `ERR_ATTESTOR_UNAVAILABLE`, and `on_stale_checkpoint` for
//!   `ERR_CHECKPOINT_STALE` and `ERR_WITNESS_COSIGNATURES_INSUFFICIENT` (deny or pending);
//! - allow only when every evidence bundle verified, every verified entry passed the
//!   freshness and witness checks, and every requirement is met for every subject digest.
//!   Anything else is a deny, and every deny or pending carries at least one reason code.
//!
//! A verified entry that fails a freshness or witness check adds its code to its evidence
//! gate and does not count toward any requirement. Its checkpoint's time is the newest verified
//! witness cosignature on it, and its witness count is the number of distinct witness names
//! among those cosignatures.
//!
//! Reads no clock and performs no I/O, so the same inputs give the same evaluation.

use std::collections::BTreeSet;

use stella_verify::reason::ReasonCode;
use stella_verify::report::{EntryReport, Outcome, TlogRef, VerificationReport};

use crate::policy::{Environment, Fallback, Requirement, format_duration};
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

/// The environment's settings that apply to evidence gates. Without an environment, every
/// fallback is deny and no freshness check applies, because the decision is deny anyway.
struct EvidenceRules {
    /// Unix seconds.
    evaluation_time: i64,
    on_missing_proof: Fallback,
    on_attestor_unavailable: Fallback,
    on_stale_checkpoint: Fallback,
    max_evidence_age_secs: Option<u64>,
    max_checkpoint_age_secs: Option<u64>,
    min_witness_cosignatures: u32,
}

impl EvidenceRules {
    fn new(environment: Option<&Environment>, evaluation_time: i64) -> Self {
        EvidenceRules {
            evaluation_time,
            on_missing_proof: environment.map_or(Fallback::Deny, |env| env.on_missing_proof),
            on_attestor_unavailable: environment.map_or(Fallback::Deny, |env| env.on_attestor_unavailable),
            on_stale_checkpoint: environment.map_or(Fallback::Deny, |env| env.on_stale_checkpoint),
            max_evidence_age_secs: environment.and_then(|env| env.max_evidence_age_secs),
            max_checkpoint_age_secs: environment.and_then(|env| env.max_checkpoint_age_secs),
            min_witness_cosignatures: environment.map_or(0, |env| env.min_witness_cosignatures),
        }
    }

    /// Returns the weight of a code found in a verification report, or added to one by the
    /// freshness checks. Codes without a fallback in the policy deny.
    fn report_code_severity(&self, code: ReasonCode) -> Severity {
        match code {
            ReasonCode::RekorTileMissing => Severity::from(self.on_missing_proof),
            ReasonCode::CheckpointStale | ReasonCode::WitnessCosignaturesInsufficient => {
                Severity::from(self.on_stale_checkpoint)
            }
            _ => Severity::Deny,
        }
    }

    /// Checks a verified entry against the maximum ages and the witness minimum that the
    /// environment sets, and returns each failure's code with a detail line that starts with it.
    fn freshness_failures(&self, entry: &EntryReport) -> Vec<(ReasonCode, String)> {
        let mut failures = Vec::new();
        if let Some(max_age) = self.max_evidence_age_secs
            && let Some(why) = self.evidence_age_fault(entry, max_age)
        {
            let code = ReasonCode::EvidenceStale;
            let limit = format_duration(max_age);
            failures.push((code, format!("{code}: {why}, max_evidence_age is {limit}")));
        }
        if let Some(max_age) = self.max_checkpoint_age_secs
            && let Some(why) = self.checkpoint_age_fault(entry.tlog.as_ref(), max_age)
        {
            let code = ReasonCode::CheckpointStale;
            let limit = format_duration(max_age);
            failures.push((code, format!("{code}: {why}, max_checkpoint_age is {limit}")));
        }
        let minimum = self.min_witness_cosignatures;
        if minimum > 0
            && let Some(why) = witness_fault(entry.tlog.as_ref(), minimum)
        {
            let code = ReasonCode::WitnessCosignaturesInsufficient;
            failures.push((code, format!("{code}: {why}, min_witness_cosignatures is {minimum}")));
        }
        failures
    }

    /// Returns why the entry is older than `max_age` seconds, or `None` when it is not.
    fn evidence_age_fault(&self, entry: &EntryReport, max_age: u64) -> Option<String> {
        let Some(signing_time) = entry.signing_time else {
            return Some("no verified signing time".to_owned());
        };
        let age = self.age_beyond(signing_time, max_age)?;
        Some(format!("signed {age} before the evaluation time"))
    }

    /// Returns why the entry's checkpoint is older than `max_age` seconds, or has no known
    /// age, or `None` when it is recent enough. The newest witness cosignature dates it.
    fn checkpoint_age_fault(&self, tlog: Option<&TlogRef>, max_age: u64) -> Option<String> {
        let Some(tlog) = tlog else {
            return Some("no verified checkpoint".to_owned());
        };
        let checkpoint = checkpoint_name(tlog);
        let Some(newest) = tlog.cosignatures.iter().map(|cosignature| cosignature.timestamp).max() else {
            return Some(format!("{checkpoint} has no witness cosignature to date it"));
        };
        let age = self.age_beyond(newest, max_age)?;
        Some(format!(
            "{checkpoint} was last cosigned {age} before the evaluation time"
        ))
    }

    /// Returns the age of `time` at the evaluation time, formatted, when it exceeds
    /// `max_age_secs`. An age exactly at the maximum is allowed, and a time after the
    /// evaluation time has no age.
    fn age_beyond(&self, time: i64, max_age_secs: u64) -> Option<String> {
        let age = i128::from(self.evaluation_time) - i128::from(time);
        if age <= i128::from(max_age_secs) {
            return None;
        }
        Some(u64::try_from(age).map_or_else(|_| format!("{age}s"), format_duration))
    }
}

/// Returns why the entry's checkpoint has verified cosignatures from fewer than `minimum`
/// distinct witnesses, or `None` when it has enough.
fn witness_fault(tlog: Option<&TlogRef>, minimum: u32) -> Option<String> {
    let Some(tlog) = tlog else {
        return Some("no verified checkpoint".to_owned());
    };
    let witnesses: BTreeSet<&str> = tlog
        .cosignatures
        .iter()
        .map(|cosignature| cosignature.witness.as_str())
        .collect();
    let count = witnesses.len();
    if u32::try_from(count).unwrap_or(u32::MAX) >= minimum {
        return None;
    }
    Some(format!(
        "{} has cosignatures from {count} distinct witnesses",
        checkpoint_name(tlog)
    ))
}

fn checkpoint_name(tlog: &TlogRef) -> String {
    format!("checkpoint {} size {}", tlog.origin, tlog.checkpoint_size)
}

/// Decides a promotion at `evaluation_time` (Unix seconds). `environment` is `None` when the
/// policy has no entry for the promotion's target environment.
pub fn evaluate(
    promotion: &Promotion,
    environment: Option<&Environment>,
    evidence: &[EvidenceResult],
    evaluation_time: i64,
) -> Evaluation {
    let mut severity = Severity::None;
    let mut gates = Vec::new();
    let mut checkpoints = BTreeSet::new();
    let mut report_digests = BTreeSet::new();
    let mut verified = Vec::new();
    let mut pending_codes = BTreeSet::new();

    let rules = EvidenceRules::new(environment, evaluation_time);

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
                    Severity::from(rules.on_attestor_unavailable)
                } else {
                    Severity::Deny
                }
            }
            EvidenceOutcome::Report { report_digest, report } => {
                report_digests.insert(report_digest.clone());
                check_report(
                    &result.bundle_id,
                    report,
                    &rules,
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

/// Records a report's failures on the evidence gate, collects its verified entries that pass
/// the freshness checks, and returns the report's severity.
fn check_report<'a>(
    bundle_id: &str,
    report: &'a VerificationReport,
    rules: &EvidenceRules,
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
            if let Some(tlog) = &entry.tlog {
                checkpoints.insert(CheckpointRef {
                    origin: tlog.origin.clone(),
                    tree_size: tlog.checkpoint_size,
                    root_hash: tlog.root_hash.clone(),
                });
            }
            let failures = rules.freshness_failures(entry);
            if failures.is_empty()
                && let Some(facts) = verified_entry(entry)
            {
                verified.push(facts);
            }
            for (code, line) in failures {
                codes.insert(code);
                gate.detail.push(format!("{path}: {line}"));
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
    if codes.is_empty() {
        // A failed report without a reason code is malformed, so it denies.
        return if report_failed { Severity::Deny } else { Severity::None };
    }
    let severity = codes
        .iter()
        .map(|code| rules.report_code_severity(*code))
        .max()
        .unwrap_or(Severity::Deny);
    gate.reason_codes.extend(codes);
    severity
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
            requirement.signer.matches(entry.identity, entry.issuer)
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
