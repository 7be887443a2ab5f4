//! Break-glass overrides: a human decision to allow one promotion despite failed checks, with
//! a reason, a ticket and an expiry.
//!
//! An override never hides what it overrode: the decision becomes `allow`, gains the marker
//! `BREAK_GLASS_OVERRIDE`, keeps every reason code of the decision it replaced, and names that
//! decision. Reads no clock: the evaluation time is an input.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use stella_verify::reason::ReasonCode;

use crate::evaluate::{Decision, Evaluation};
use crate::policy::Environment;

/// Maximum length of an override's reason, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Maximum length of an override's ticket id, in bytes.
pub const MAX_TICKET_BYTES: usize = 128;

/// A stored break-glass override of one promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub promotion_id: String,
    pub reason: String,
    pub ticket: String,
    /// The `sub` claim of the token that requested the override.
    pub requested_by: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; the override applies only before this time.
    pub expires_at: i64,
}

impl Override {
    /// Returns true when this override decides an evaluation of `promotion_id` at
    /// `evaluation_time`: the promotion is the one it was granted for, and `issued_at <=
    /// evaluation_time < expires_at`.
    pub fn applies(&self, promotion_id: &str, evaluation_time: i64) -> bool {
        self.promotion_id == promotion_id
            && self.issued_at <= evaluation_time
            && evaluation_time < self.expires_at
    }
}

/// An override that decided an evaluation, with what it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedOverride {
    pub grant: Override,
    pub overridden_decision: Decision,
    pub overridden_reason_codes: BTreeSet<ReasonCode>,
}

/// A break-glass request as the caller sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideRequest<'a> {
    pub reason: &'a str,
    pub ticket: &'a str,
    pub duration_seconds: u64,
}

/// The reason a break-glass request was rejected. Each message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the reason is missing; state why the failed checks are overridden")]
    MissingReason,
    #[error("the reason is {length} bytes long; the maximum is {MAX_REASON_BYTES}")]
    ReasonTooLong { length: usize },
    #[error("the ticket is missing; name the change or incident ticket that approves the override")]
    MissingTicket,
    #[error("the ticket is {length} bytes long; the maximum is {MAX_TICKET_BYTES}")]
    TicketTooLong { length: usize },
    #[error(
        "the ticket contains a character that is not printable ASCII; use the ticket id as the tracker shows it"
    )]
    TicketNotPrintable,
    #[error(
        "the reason contains a control character or no letter or digit; write it as plain text, one line or several"
    )]
    ReasonNotText,
    #[error("the duration is 0 seconds; an override must last at least 1 second")]
    ZeroDuration,
    #[error("environment {environment:?} has no policy, so it allows no break-glass override")]
    UnknownEnvironment { environment: String },
    #[error(
        "the policy of environment {environment:?} has no break_glass section, so it allows no override"
    )]
    NotAllowed { environment: String },
    #[error(
        "the duration of {requested} seconds is longer than the {maximum} seconds that break_glass.max_duration of environment {environment:?} allows"
    )]
    DurationTooLong {
        environment: String,
        requested: u64,
        maximum: u64,
    },
    #[error(
        "the expiry of an override issued at {issued_at} after {duration_seconds} seconds is out of range"
    )]
    ExpiryOutOfRange {
        issued_at: i64,
        duration_seconds: u64,
    },
}

impl Refusal {
    /// Returns true when the request itself is valid but the environment's policy rejects it,
    /// as opposed to a field that is invalid whatever the policy contains.
    pub fn is_policy_refusal(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownEnvironment { .. }
                | Refusal::NotAllowed { .. }
                | Refusal::DurationTooLong { .. }
        )
    }
}

/// Checks the fields that do not depend on the policy: a non-blank reason of at most
/// [`MAX_REASON_BYTES`], a non-blank ticket of at most [`MAX_TICKET_BYTES`] of printable ASCII,
/// and a positive duration.
///
/// # Errors
///
/// The first [`Refusal`] found, in field order.
pub fn check_request(request: &OverrideRequest<'_>) -> Result<(), Refusal> {
    if request.reason.trim().is_empty() {
        return Err(Refusal::MissingReason);
    }
    if request.reason.len() > MAX_REASON_BYTES {
        return Err(Refusal::ReasonTooLong {
            length: request.reason.len(),
        });
    }
    // The reason is printed on operators' terminals, so it may contain line breaks and tabs but
    // no other control character, such as an escape sequence. It must also contain a letter or
    // digit, so that invisible characters alone do not pass as a reason.
    let control = |character: char| character.is_control() && !matches!(character, '\n' | '\t');
    if request.reason.chars().any(control) || !request.reason.chars().any(char::is_alphanumeric) {
        return Err(Refusal::ReasonNotText);
    }
    if request.ticket.trim().is_empty() {
        return Err(Refusal::MissingTicket);
    }
    if request.ticket.len() > MAX_TICKET_BYTES {
        return Err(Refusal::TicketTooLong {
            length: request.ticket.len(),
        });
    }
    if !request
        .ticket
        .bytes()
        .all(|byte| byte == b' ' || byte.is_ascii_graphic())
    {
        return Err(Refusal::TicketNotPrintable);
    }
    if request.duration_seconds == 0 {
        return Err(Refusal::ZeroDuration);
    }
    Ok(())
}

/// Validates `request` against the policy of the promotion's target environment and returns
/// the override to store: issued at `evaluation_time`, expiring `duration_seconds` later.
///
/// `environment` is `None` when the policy has no environment `environment_name`.
///
/// # Errors
///
/// A [`Refusal`] from [`check_request`], or when the environment is unknown, has no
/// `break_glass` section, or allows a shorter duration.
pub fn grant(
    request: &OverrideRequest<'_>,
    promotion_id: &str,
    environment_name: &str,
    environment: Option<&Environment>,
    requested_by: &str,
    evaluation_time: i64,
) -> Result<Override, Refusal> {
    check_request(request)?;
    let environment = environment.ok_or_else(|| Refusal::UnknownEnvironment {
        environment: environment_name.to_owned(),
    })?;
    let policy = environment
        .break_glass
        .as_ref()
        .ok_or_else(|| Refusal::NotAllowed {
            environment: environment_name.to_owned(),
        })?;
    if request.duration_seconds > policy.max_duration_secs {
        return Err(Refusal::DurationTooLong {
            environment: environment_name.to_owned(),
            requested: request.duration_seconds,
            maximum: policy.max_duration_secs,
        });
    }
    let expires_at = i64::try_from(request.duration_seconds)
        .ok()
        .and_then(|duration| evaluation_time.checked_add(duration))
        .ok_or(Refusal::ExpiryOutOfRange {
            issued_at: evaluation_time,
            duration_seconds: request.duration_seconds,
        })?;
    Ok(Override {
        promotion_id: promotion_id.to_owned(),
        reason: request.reason.to_owned(),
        ticket: request.ticket.to_owned(),
        requested_by: requested_by.to_owned(),
        issued_at: evaluation_time,
        expires_at,
    })
}

/// Applies `grant` to the evaluation of `promotion_id` at `evaluation_time`.
///
/// Returns `None` when the grant does not apply (see [`Override::applies`]). Otherwise returns
/// the overridden evaluation, whose decision is `allow` and whose reason codes are the original
/// codes plus `BREAK_GLASS_OVERRIDE`, and the [`AppliedOverride`] with the original decision and
/// codes. The gate results stay as evaluated, so an unmet gate still reads unmet.
pub fn apply(
    evaluation: &Evaluation,
    grant: &Override,
    promotion_id: &str,
    evaluation_time: i64,
) -> Option<(Evaluation, AppliedOverride)> {
    if !grant.applies(promotion_id, evaluation_time) {
        return None;
    }
    let mut overridden = evaluation.clone();
    overridden.decision = Decision::Allow;
    overridden
        .reason_codes
        .insert(ReasonCode::BreakGlassOverride);
    let applied = AppliedOverride {
        grant: grant.clone(),
        overridden_decision: evaluation.decision,
        overridden_reason_codes: evaluation.reason_codes.clone(),
    };
    Some((overridden, applied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::GateResult;

    const ISSUED_AT: i64 = 1_796_378_400;
    const FOUR_HOURS: u64 = 4 * 3600;

    fn request<'a>(reason: &'a str, ticket: &'a str, duration_seconds: u64) -> OverrideRequest<'a> {
        OverrideRequest {
            reason,
            ticket,
            duration_seconds,
        }
    }

    /// Returns environment "prod" of a parsed policy, with `break_glass.max_duration` set to
    /// `max_duration` when given.
    fn environment(max_duration: Option<&str>) -> Environment {
        let section = max_duration.map_or_else(String::new, |duration| {
            format!("    break_glass:\n      max_duration: {duration}\n")
        });
        let yaml = format!(
            "environments:\n  prod:\n    require:\n      - identity: https://ci.example/release\n        issuer: https://issuer.example\n{section}"
        );
        let policy =
            crate::policy::parse_policy("policy.yaml", yaml.as_bytes()).expect("valid policy");
        policy
            .environments
            .get("prod")
            .cloned()
            .expect("environment prod")
    }

    fn denied() -> Evaluation {
        Evaluation {
            decision: Decision::Deny,
            reason_codes: BTreeSet::from([
                ReasonCode::PolicyRequirementUnmet,
                ReasonCode::SubjectMismatch,
            ]),
            gates: vec![GateResult {
                requirement: "predicate_type https://slsa.dev/provenance/v1".to_owned(),
                satisfied: false,
                reason_codes: BTreeSet::from([ReasonCode::PolicyRequirementUnmet]),
                detail: vec!["no accepted entry".to_owned()],
            }],
            checkpoints: BTreeSet::new(),
            report_digests: vec!["sha256:r1".to_owned()],
        }
    }

    fn granted() -> Override {
        grant(
            &request("hotfix for outage", "INC-42", 3600),
            "rel-1",
            "prod",
            Some(&environment(Some("4h"))),
            "alice@acme",
            ISSUED_AT,
        )
        .expect("valid request")
    }

    #[test]
    fn grant_sets_window() {
        let grant = granted();
        assert_eq!(grant.promotion_id, "rel-1");
        assert_eq!(grant.reason, "hotfix for outage");
        assert_eq!(grant.ticket, "INC-42");
        assert_eq!(grant.requested_by, "alice@acme");
        assert_eq!(grant.issued_at, ISSUED_AT);
        assert_eq!(grant.expires_at, ISSUED_AT + 3600);
    }

    #[test]
    fn grant_accepts_max_duration() {
        let grant = grant(
            &request("r", "T-1", FOUR_HOURS),
            "rel-1",
            "prod",
            Some(&environment(Some("4h"))),
            "alice",
            ISSUED_AT,
        )
        .expect("the maximum itself is allowed");
        assert_eq!(grant.expires_at - grant.issued_at, 14_400);
    }

    #[test]
    fn request_field_refusals() {
        let long_reason = "r".repeat(MAX_REASON_BYTES + 1);
        let long_ticket = "T".repeat(MAX_TICKET_BYTES + 1);
        let cases = [
            (request("", "T-1", 60), Refusal::MissingReason),
            (request(" \t\n", "T-1", 60), Refusal::MissingReason),
            (
                request(&long_reason, "T-1", 60),
                Refusal::ReasonTooLong { length: 1025 },
            ),
            (request("r", "", 60), Refusal::MissingTicket),
            (request("r", "   ", 60), Refusal::MissingTicket),
            (
                request("r", &long_ticket, 60),
                Refusal::TicketTooLong { length: 129 },
            ),
            (request("r", "INC\n42", 60), Refusal::TicketNotPrintable),
            (request("fix\u{1b}[2J", "INC-1", 60), Refusal::ReasonNotText),
            (request("\u{200b}", "INC-1", 60), Refusal::ReasonNotText),
            (request("\u{1}", "INC-1", 60), Refusal::ReasonNotText),
            (request("r", "INC-4\u{e9}", 60), Refusal::TicketNotPrintable),
            (request("r", "T-1", 0), Refusal::ZeroDuration),
        ];
        for (request, expected) in cases {
            assert_eq!(
                check_request(&request),
                Err(expected.clone()),
                "{request:?}"
            );
            let refused = grant(
                &request,
                "rel-1",
                "prod",
                Some(&environment(Some("4h"))),
                "alice",
                ISSUED_AT,
            );
            assert_eq!(refused, Err(expected.clone()), "{request:?}");
            assert!(!expected.is_policy_refusal(), "{expected:?}");
        }
    }

    #[test]
    fn request_limits_inclusive() {
        let reason = "r".repeat(MAX_REASON_BYTES);
        let ticket = "T".repeat(MAX_TICKET_BYTES);
        assert_eq!(check_request(&request(&reason, &ticket, 1)), Ok(()));
        assert_eq!(check_request(&request("r", "CHG 2026/12 #7", 1)), Ok(()));
    }

    #[test]
    fn policy_refusals() {
        let over = grant(
            &request("r", "T-1", FOUR_HOURS + 1),
            "rel-1",
            "prod",
            Some(&environment(Some("4h"))),
            "alice",
            ISSUED_AT,
        );
        assert_eq!(
            over,
            Err(Refusal::DurationTooLong {
                environment: "prod".to_owned(),
                requested: 14_401,
                maximum: 14_400,
            })
        );
        let without_section = grant(
            &request("r", "T-1", 60),
            "rel-1",
            "prod",
            Some(&environment(None)),
            "alice",
            ISSUED_AT,
        );
        assert_eq!(
            without_section,
            Err(Refusal::NotAllowed {
                environment: "prod".to_owned()
            })
        );
        let unknown = grant(
            &request("r", "T-1", 60),
            "rel-1",
            "qa",
            None,
            "alice",
            ISSUED_AT,
        );
        assert_eq!(
            unknown,
            Err(Refusal::UnknownEnvironment {
                environment: "qa".to_owned()
            })
        );
        for refusal in [over, without_section, unknown] {
            assert!(refusal.expect_err("refused").is_policy_refusal());
        }
    }

    #[test]
    fn expiry_overflow_refused() {
        let refused = grant(
            &request("r", "T-1", 60),
            "rel-1",
            "prod",
            Some(&environment(Some("4h"))),
            "alice",
            i64::MAX - 10,
        );
        assert!(
            matches!(refused, Err(Refusal::ExpiryOutOfRange { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn apply_marks_and_keeps_codes() {
        let original = denied();
        let (overridden, applied) =
            apply(&original, &granted(), "rel-1", ISSUED_AT).expect("applies at issue time");
        assert_eq!(overridden.decision, Decision::Allow);
        assert_eq!(
            overridden.reason_codes,
            BTreeSet::from([
                ReasonCode::BreakGlassOverride,
                ReasonCode::PolicyRequirementUnmet,
                ReasonCode::SubjectMismatch,
            ])
        );
        assert_eq!(
            overridden.gates, original.gates,
            "gate results stay as evaluated"
        );
        assert_eq!(overridden.report_digests, original.report_digests);
        assert_eq!(applied.overridden_decision, Decision::Deny);
        assert_eq!(applied.overridden_reason_codes, original.reason_codes);
        assert_eq!(applied.grant, granted());
    }

    #[test]
    fn apply_marks_allow_too() {
        let mut allowed = denied();
        allowed.decision = Decision::Allow;
        allowed.reason_codes.clear();
        let (overridden, applied) =
            apply(&allowed, &granted(), "rel-1", ISSUED_AT + 1).expect("applies");
        assert_eq!(
            overridden.reason_codes,
            BTreeSet::from([ReasonCode::BreakGlassOverride])
        );
        assert_eq!(applied.overridden_decision, Decision::Allow);
        assert!(applied.overridden_reason_codes.is_empty());
    }

    #[test]
    fn apply_only_inside_window() {
        let grant = granted();
        let original = denied();
        assert!(
            apply(&original, &grant, "rel-1", ISSUED_AT - 1).is_none(),
            "before issue"
        );
        assert!(
            apply(&original, &grant, "rel-1", ISSUED_AT + 3599).is_some(),
            "last second"
        );
        assert!(
            apply(&original, &grant, "rel-1", ISSUED_AT + 3600).is_none(),
            "at expiry"
        );
        assert!(
            apply(&original, &grant, "rel-1", ISSUED_AT + 7200).is_none(),
            "after expiry"
        );
    }

    #[test]
    fn apply_only_to_its_promotion() {
        assert!(apply(&denied(), &granted(), "rel-2", ISSUED_AT).is_none());
        assert!(apply(&denied(), &granted(), "rel-10", ISSUED_AT).is_none());
    }

    #[test]
    fn refusal_messages_name_field() {
        let message = Refusal::DurationTooLong {
            environment: "prod".to_owned(),
            requested: 18_000,
            maximum: 14_400,
        }
        .to_string();
        assert!(message.contains("break_glass.max_duration"), "{message}");
        assert!(message.contains("18000"), "{message}");
        assert!(Refusal::MissingTicket.to_string().contains("ticket"));
        assert!(Refusal::MissingReason.to_string().contains("reason"));
    }
}
