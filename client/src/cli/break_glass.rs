//! Break-glass overrides in the CLI: the `--break-glass` options of `stella promotion
//! evaluate`, and the marker that every output of an overridden decision carries.
//!
//! An overridden decision is never shown as a standard verification: the text output starts
//! with `BREAK-GLASS OVERRIDE: not a standard verification`, the JSON output has a
//! `break_glass` object and `standard_verification: false`, and the exit code is 6, never 0.

use clap::Args;
use serde_json::{Value, json};
use stella_proto::gate::v1::{BreakGlass, BreakGlassRequest};

use super::args::{DurationFault, format_rfc3339, parse_duration_secs};
use super::output::{Exit, Failure, Report, codes_text, sorted_codes};

/// The reason code that marks an overridden decision.
pub const BREAK_GLASS_OVERRIDE: &str = "BREAK_GLASS_OVERRIDE";

/// The first text line of every overridden decision.
pub const MARKER_LINE: &str = "BREAK-GLASS OVERRIDE: not a standard verification";

/// Options of `stella promotion evaluate` that ask for a break-glass override.
#[derive(Debug, Clone, Default, Args)]
pub struct BreakGlassArgs {
    /// Override the failed checks of this one promotion. Needs a token with the
    /// promotion:break-glass scope, and --reason, --ticket and --expires. The decision is
    /// recorded as a break-glass override, never as a standard verification, and exits 6.
    #[arg(long, requires_all = ["reason", "ticket", "expires"])]
    pub break_glass: bool,
    /// The reason for overriding the checks, at most 1024 bytes (with --break-glass).
    #[arg(long, value_name = "TEXT", requires = "break_glass")]
    pub reason: Option<String>,
    /// Id of the change or incident ticket that approves the override, at most 128 bytes of
    /// printable ASCII (with --break-glass).
    #[arg(long, value_name = "ID", requires = "break_glass")]
    pub ticket: Option<String>,
    /// How long the override lasts from now: a whole number with unit s, m, h or d, such as
    /// 30m or 4h, at most the environment's break_glass.max_duration (with --break-glass).
    #[arg(long, value_name = "DURATION", requires = "break_glass", value_parser = parse_override_duration)]
    pub expires: Option<u64>,
}

/// Parses `--expires` of a break-glass override into seconds. Zero is passed on, so the gate
/// rejects it with its reason code like any other refused override.
fn parse_override_duration(text: &str) -> Result<u64, String> {
    parse_duration_secs(text).map_err(|fault| match fault {
        DurationFault::Unit | DurationFault::Number => format!(
            "invalid duration {text:?}: expected a whole number with unit s, m, h or d, such as 30m or 4h"
        ),
        DurationFault::TooLarge => format!("invalid duration {text:?}: the duration is too large"),
    })
}

/// Returns the `break_glass` field of the `Evaluate` request, or `None` without
/// `--break-glass`.
///
/// # Errors
///
/// A usage failure when `--break-glass` lacks one of its options. clap enforces this already,
/// so this only guards a caller that builds the arguments itself.
pub fn request(args: &BreakGlassArgs) -> Result<Option<BreakGlassRequest>, Failure> {
    if !args.break_glass {
        if args.reason.is_some() || args.ticket.is_some() || args.expires.is_some() {
            return Err(Failure::usage(
                "--reason, --ticket and --expires need --break-glass",
            ));
        }
        return Ok(None);
    }
    let (Some(reason), Some(ticket), Some(duration_seconds)) =
        (&args.reason, &args.ticket, args.expires)
    else {
        return Err(Failure::usage(
            "--break-glass needs --reason, --ticket and --expires",
        ));
    };
    Ok(Some(BreakGlassRequest {
        reason: reason.clone(),
        ticket: ticket.clone(),
        duration_seconds,
    }))
}

/// Maps a decision to its exit code, failing closed on anything unknown. A decision that a
/// break-glass override made exits 6, never 0.
///
/// # Errors
///
/// A failure (exit 5) for an unknown decision, and for an override on a decision other than
/// `allow`, which the gate never returns.
pub fn decision_exit(decision: &str, overridden: bool) -> Result<Exit, Failure> {
    match (decision, overridden) {
        ("allow", false) => Ok(Exit::Success),
        ("allow", true) => Ok(Exit::BreakGlass),
        ("deny", false) => Ok(Exit::Failure),
        ("pending", false) => Ok(Exit::Pending),
        ("deny" | "pending", true) => Err(Failure::other(format!(
            "the gate returned the decision {decision:?} with a break-glass override, which always allows; \
             treat the promotion as not allowed and check the gate"
        ))),
        (other, _) => Err(Failure::other(format!(
            "the gate returned the unknown decision {other:?}; treat the promotion as not allowed"
        ))),
    }
}

/// Returns the `break_glass` JSON object of a response or record, or `None` for a standard
/// verification. `block` is the override as the gate sent it, already in JSON form.
///
/// # Errors
///
/// A failure (exit 5) when the reason codes and the block disagree: the marker
/// `BREAK_GLASS_OVERRIDE` without an override, or an override without the marker.
pub fn checked_block(
    block: Option<Value>,
    reason_codes: &[String],
) -> Result<Option<Value>, Failure> {
    let marked = reason_codes.iter().any(|code| code == BREAK_GLASS_OVERRIDE);
    match (block, marked) {
        (Some(block), true) => Ok(Some(block)),
        (None, false) => Ok(None),
        (Some(_), false) => Err(Failure::other(format!(
            "the gate returned a break-glass override without the reason code {BREAK_GLASS_OVERRIDE}; \
             treat the promotion as not allowed and check the gate"
        ))),
        (None, true) => Err(Failure::other(format!(
            "the gate returned the reason code {BREAK_GLASS_OVERRIDE} without the override's details; \
             treat the promotion as not allowed and check the gate"
        ))),
    }
}

/// Returns the `break_glass` object of a decision record, or `None` when it is null or absent.
///
/// # Errors
///
/// A failure (exit 5) when `break_glass` is neither an object nor null.
pub fn record_block(record: &Value) -> Result<Option<Value>, Failure> {
    match record.get("break_glass") {
        None | Some(Value::Null) => Ok(None),
        Some(block @ Value::Object(_)) => Ok(Some(block.clone())),
        Some(other) => Err(Failure::other(format!(
            "the gate returned a decision record whose break_glass is {other}, not an object or null"
        ))),
    }
}

/// Returns the `break_glass` JSON object of an `EvaluateResponse` block, with times in RFC 3339
/// as decision records write them.
pub fn response_json(block: &BreakGlass) -> Value {
    json!({
        "reason": block.reason,
        "ticket": block.ticket,
        "requested_by": block.requested_by,
        "issued_at": format_rfc3339(block.issued_at),
        "expires_at": format_rfc3339(block.expires_at),
        "overridden_decision": block.overridden_decision,
        "overridden_reason_codes": sorted_codes(&block.overridden_reason_codes),
    })
}

/// Adds the override to a report: `break_glass` and `standard_verification` in JSON, the marker
/// as the first text line with the override's details at the end, and a warning on stderr.
/// `block` is the `break_glass` JSON object, or `None` for a standard verification.
pub fn mark_report(report: &mut Report, promotion_id: &str, block: Option<&Value>) {
    let Some(block) = block else {
        report
            .field("break_glass", Value::Null)
            .field("standard_verification", true);
        return;
    };
    report
        .field("break_glass", block.clone())
        .field("standard_verification", false);

    report.text.insert(0, MARKER_LINE.to_owned());
    let text = |key: &str| {
        block
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let overridden_codes: Vec<String> = block
        .get("overridden_reason_codes")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    report
        .line(format!("break-glass reason: {}", text("reason")))
        .line(format!("break-glass ticket: {}", text("ticket")))
        .line(format!(
            "break-glass requested by: {}",
            text("requested_by")
        ))
        .line(format!("break-glass issued at: {}", text("issued_at")))
        .line(format!("break-glass expires at: {}", text("expires_at")))
        .line(format!(
            "overridden decision: {}",
            text("overridden_decision")
        ))
        .line(format!(
            "overridden reason codes: {}",
            codes_text(&overridden_codes)
        ));
    report.error_line(format!(
        "warning: promotion {promotion_id} is allowed only by a break-glass override (ticket {}), not by a standard verification",
        text("ticket")
    ));
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        break_glass: BreakGlassArgs,
    }

    fn parse(arguments: &[&str]) -> Result<BreakGlassArgs, clap::Error> {
        let mut all = vec!["evaluate"];
        all.extend_from_slice(arguments);
        Command::try_parse_from(all).map(|command| command.break_glass)
    }

    #[test]
    fn all_options_build_request() {
        let args = parse(&[
            "--break-glass",
            "--reason",
            "outage fix",
            "--ticket",
            "INC-42",
            "--expires",
            "2h",
        ])
        .expect("valid options");
        let request = request(&args)
            .expect("valid")
            .expect("a break-glass request");
        assert_eq!(request.reason, "outage fix");
        assert_eq!(request.ticket, "INC-42");
        assert_eq!(request.duration_seconds, 7_200);
    }

    #[test]
    fn no_options_no_request() {
        let args = parse(&[]).expect("valid options");
        assert_eq!(request(&args).expect("valid"), None);
    }

    #[test]
    fn break_glass_needs_all_options() {
        let cases: [&[&str]; 4] = [
            &["--break-glass"],
            &["--break-glass", "--reason", "r", "--ticket", "T-1"],
            &["--break-glass", "--reason", "r", "--expires", "1h"],
            &["--break-glass", "--ticket", "T-1", "--expires", "1h"],
        ];
        for arguments in cases {
            let error = parse(arguments).expect_err("accepted without every option");
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{arguments:?}"
            );
        }
    }

    #[test]
    fn options_need_break_glass() {
        for arguments in [
            &["--reason", "r"][..],
            &["--ticket", "T-1"],
            &["--expires", "1h"],
        ] {
            let error = parse(arguments).expect_err("accepted without --break-glass");
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{arguments:?}"
            );
        }
        let built_by_hand = BreakGlassArgs {
            reason: Some("r".to_owned()),
            ..BreakGlassArgs::default()
        };
        assert_eq!(
            request(&built_by_hand).expect_err("accepted").exit,
            Exit::Usage
        );
    }

    #[test]
    fn expires_takes_units() {
        assert_eq!(parse_override_duration("90s"), Ok(90));
        assert_eq!(parse_override_duration("30m"), Ok(1_800));
        assert_eq!(parse_override_duration("4h"), Ok(14_400));
        assert_eq!(parse_override_duration("1d"), Ok(86_400));
        assert_eq!(
            parse_override_duration("0s"),
            Ok(0),
            "the gate rejects zero with its code"
        );
        for invalid in ["4", "h", "4 h", "-1h", "2w", ""] {
            assert!(parse_override_duration(invalid).is_err(), "{invalid:?}");
        }
    }

    #[test]
    fn override_exit_never_zero() {
        assert_eq!(
            decision_exit("allow", true).map_err(|f| f.message),
            Ok(Exit::BreakGlass)
        );
        assert_eq!(Exit::BreakGlass.code(), 6);
        assert_eq!(
            decision_exit("allow", false).map_err(|f| f.message),
            Ok(Exit::Success)
        );
        assert_eq!(
            decision_exit("deny", false).map_err(|f| f.message),
            Ok(Exit::Failure)
        );
        assert_eq!(
            decision_exit("pending", false).map_err(|f| f.message),
            Ok(Exit::Pending)
        );
        for decision in ["deny", "pending", "ALLOW", ""] {
            let failure =
                decision_exit(decision, true).expect_err("inconsistent override accepted");
            assert_eq!(failure.exit, Exit::Other, "{decision:?}");
        }
    }

    #[test]
    fn marked_report_says_not_standard() {
        let block = response_json(&BreakGlass {
            reason: "outage fix".to_owned(),
            ticket: "INC-42".to_owned(),
            requested_by: "alice@acme".to_owned(),
            issued_at: 1_796_378_400,
            expires_at: 1_796_382_000,
            overridden_reason_codes: vec![
                "ERR_SUBJECT_MISMATCH".to_owned(),
                "ERR_POLICY_REQUIREMENT_UNMET".to_owned(),
            ],
            overridden_decision: "deny".to_owned(),
        });
        let mut report = Report::new(Exit::BreakGlass);
        report.line("decision: allow");
        mark_report(&mut report, "rel-1", Some(&block));

        assert_eq!(report.text.first().map(String::as_str), Some(MARKER_LINE));
        assert_eq!(
            report.json.get("standard_verification"),
            Some(&Value::Bool(false))
        );
        let json_block = report.json.get("break_glass").expect("break_glass object");
        assert_eq!(json_block["ticket"], "INC-42");
        assert_eq!(json_block["issued_at"], "2026-12-04T10:00:00Z");
        assert_eq!(json_block["expires_at"], "2026-12-04T11:00:00Z");
        assert_eq!(
            json_block["overridden_reason_codes"],
            json!(["ERR_POLICY_REQUIREMENT_UNMET", "ERR_SUBJECT_MISMATCH"])
        );
        assert!(
            report
                .text
                .iter()
                .any(|line| line == "overridden decision: deny"),
            "{:?}",
            report.text
        );
        assert!(
            report.stderr.iter().any(|line| line.contains("INC-42")),
            "{:?}",
            report.stderr
        );
    }

    #[test]
    fn block_and_marker_must_agree() {
        let marked = vec![
            BREAK_GLASS_OVERRIDE.to_owned(),
            "ERR_SUBJECT_MISMATCH".to_owned(),
        ];
        let unmarked = vec!["ERR_SUBJECT_MISMATCH".to_owned()];
        let block = json!({"ticket": "INC-42"});
        assert_eq!(
            checked_block(Some(block.clone()), &marked).map_err(|f| f.message),
            Ok(Some(block.clone()))
        );
        assert_eq!(
            checked_block(None, &unmarked).map_err(|f| f.message),
            Ok(None)
        );
        assert_eq!(
            checked_block(Some(block), &unmarked)
                .expect_err("no marker")
                .exit,
            Exit::Other
        );
        assert_eq!(
            checked_block(None, &marked).expect_err("no block").exit,
            Exit::Other
        );
    }

    #[test]
    fn record_block_null_or_object() {
        assert_eq!(
            record_block(&json!({"break_glass": null})).map_err(|f| f.message),
            Ok(None)
        );
        assert_eq!(record_block(&json!({})).map_err(|f| f.message), Ok(None));
        let block = json!({"ticket": "INC-42"});
        assert_eq!(
            record_block(&json!({"break_glass": block})).map_err(|f| f.message),
            Ok(Some(block))
        );
        assert_eq!(
            record_block(&json!({"break_glass": "yes"}))
                .expect_err("string")
                .exit,
            Exit::Other
        );
    }

    #[test]
    fn standard_report_says_standard() {
        let mut report = Report::new(Exit::Success);
        report.line("decision: allow");
        mark_report(&mut report, "rel-1", None);
        assert_eq!(
            report.json.get("standard_verification"),
            Some(&Value::Bool(true))
        );
        assert_eq!(report.json.get("break_glass"), Some(&Value::Null));
        assert_eq!(report.text, vec!["decision: allow"]);
        assert!(report.stderr.is_empty());
    }
}
