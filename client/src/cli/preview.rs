//! `stella promotion preview-gates`: evaluates a promotion without recording a decision, now or,
//! with `--at` and `--policy-digest`, as it was evaluated at a past time under a stored policy
//! version. A replay with the time and policy digest of a decision record returns that record's
//! decision digest, as long as the attestor still stores the same evidence, trust roots and
//! proofs.

use clap::Args;
use stella_proto::gate::v1::EvaluateRequest;

use super::args::{self, Sha256Digest};
use super::gate::{Mode, evaluation_report};
use super::output::{Failure, Report};
use super::{Services, require_offline};

#[derive(Debug, Args)]
pub struct PromotionPreviewArgs {
    /// Promotion id.
    #[arg(long = "promotion", value_name = "ID")]
    pub promotion_id: String,
    /// Required: prove Rekor inclusion only from the attestor's offline cache.
    #[arg(long)]
    pub offline_rekor: bool,
    /// Evaluation time, as an RFC 3339 time (2026-12-04T10:00:00Z) or Unix seconds. Evidence
    /// is verified and its age measured at this time. Default: now.
    #[arg(long, value_name = "TIME", value_parser = args::parse_time)]
    pub at: Option<i64>,
    /// Policy version to evaluate with (sha256:HEX), as a decision record's policy_digest
    /// names it. Default: the tenant's active policy.
    #[arg(long, value_name = "sha256:HEX", value_parser = args::parse_sha256_digest)]
    pub policy_digest: Option<Sha256Digest>,
}

/// Builds the `PreviewGates` request of `args`.
fn preview_request(args: &PromotionPreviewArgs) -> Result<EvaluateRequest, Failure> {
    require_offline(
        args.offline_rekor,
        "promotion preview-gates",
        "--offline-rekor",
    )?;
    if args.promotion_id.is_empty() {
        return Err(Failure::usage("--promotion must not be empty"));
    }
    Ok(EvaluateRequest {
        promotion_id: args.promotion_id.clone(),
        offline_rekor: true,
        evaluation_time: args.at.unwrap_or(0),
        policy_digest: args
            .policy_digest
            .as_ref()
            .map(Sha256Digest::prefixed)
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// `stella promotion preview-gates`.
pub async fn run(services: &Services, args: &PromotionPreviewArgs) -> Result<Report, Failure> {
    let message = preview_request(args)?;
    let mut gate = services.gate().await?;
    let response = gate.preview_gates_request(message).await?;
    evaluation_report(&args.promotion_id, &response, Mode::Preview)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::Exit;

    fn preview_args(at: Option<i64>, policy_digest: Option<Sha256Digest>) -> PromotionPreviewArgs {
        PromotionPreviewArgs {
            promotion_id: "rel-1".to_owned(),
            offline_rekor: true,
            at,
            policy_digest,
        }
    }

    #[test]
    fn request_carries_time_and_digest() {
        let digest = Sha256Digest {
            hex: "ab".repeat(32),
        };
        let message =
            preview_request(&preview_args(Some(1_796_378_400), Some(digest))).expect("valid");
        assert_eq!(message.evaluation_time, 1_796_378_400);
        assert_eq!(message.policy_digest, format!("sha256:{}", "ab".repeat(32)));
        assert!(message.offline_rekor);
        assert!(message.request_id.is_empty());
    }

    #[test]
    fn request_defaults_to_now_and_active() {
        let message = preview_request(&preview_args(None, None)).expect("valid");
        assert_eq!(
            message.evaluation_time, 0,
            "0 asks the gate to evaluate now"
        );
        assert!(message.policy_digest.is_empty());
    }

    #[test]
    fn request_needs_offline_flag() {
        let mut args = preview_args(None, None);
        args.offline_rekor = false;
        let failure = preview_request(&args).expect_err("accepted without --offline-rekor");
        assert_eq!(failure.exit, Exit::Usage);
    }
}
