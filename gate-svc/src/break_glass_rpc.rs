//! The gRPC side of break-glass overrides: the second scope check of an `Evaluate` call that
//! requests an override, the statuses of refused requests, storing a granted override, and
//! applying the override in effect to an evaluation or preview.
//!
//! Each grant, refusal and use of an override is logged at WARN with the tenant, promotion,
//! ticket and requesting subject. The caller's token is never logged.

use stella_access::{Authenticator, Scope};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use stella_verify::reason::ReasonCode;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};
use tracing::warn;

use crate::break_glass::{self, AppliedOverride, Override, OverrideRequest, Refusal};
use crate::evaluate::Evaluation;
use crate::policy::Policy;
use crate::promotion::Promotion;
use crate::record::{rfc3339, sorted_code_strings};
use crate::service::{blocking, load_promotion};
use crate::store::TenantStore;

/// An override request that passed the scope check and the field checks, with the subject of
/// the token that sent it.
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    pub reason: String,
    pub ticket: String,
    pub duration_seconds: u64,
    pub requested_by: String,
}

impl CheckedRequest {
    fn as_request(&self) -> OverrideRequest<'_> {
        OverrideRequest {
            reason: &self.reason,
            ticket: &self.ticket,
            duration_seconds: self.duration_seconds,
        }
    }
}

/// Checks the `break_glass` field of an `Evaluate` call that already passed the
/// `promotion:evaluate` check. Returns `None` when the call requests no override.
///
/// # Errors
///
/// PERMISSION_DENIED (`ERR_AUTH_PERMISSION_DENIED`) from the authenticator when the token lacks
/// `promotion:break-glass`, and INVALID_ARGUMENT (`ERR_BREAK_GLASS_REFUSED`) for a blank or too
/// long reason or ticket, or a zero duration.
pub fn check_evaluate_request(
    authenticator: &Authenticator,
    request: &Request<pb::EvaluateRequest>,
) -> Result<Option<CheckedRequest>, Status> {
    let Some(break_glass) = &request.get_ref().break_glass else {
        return Ok(None);
    };
    // The first check put the verified token in the authenticator's cache, so this second check
    // normally reads the cached principal instead of verifying the signature again.
    let principal = authenticator.authorize(request, "Evaluate", Scope::PromotionBreakGlass)?;
    let checked = CheckedRequest {
        reason: break_glass.reason.clone(),
        ticket: break_glass.ticket.clone(),
        duration_seconds: break_glass.duration_seconds,
        requested_by: principal.subject().to_owned(),
    };
    if let Err(refusal) = break_glass::check_request(&checked.as_request()) {
        return Err(refused(&request.get_ref().promotion_id, &checked, &refusal));
    }
    Ok(Some(checked))
}

/// Rejects a `PreviewGates` call that requests an override, because only `Evaluate` grants one.
///
/// # Errors
///
/// INVALID_ARGUMENT with `ERR_BREAK_GLASS_REFUSED` when `break_glass` is set.
pub fn reject_in_preview(request: &pb::EvaluateRequest) -> Result<(), Status> {
    if request.break_glass.is_none() {
        return Ok(());
    }
    Err(refusal_status(
        Code::InvalidArgument,
        "break_glass is accepted only by Evaluate; PreviewGates never grants an override",
    ))
}

/// Validates an override request against the policy of the promotion's target environment and
/// returns the override to store, issued at `evaluation_time`. Reads only the promotion, so a
/// refused request neither verifies evidence nor writes anything.
///
/// # Errors
///
/// NOT_FOUND for a promotion this tenant does not have, FAILED_PRECONDITION with
/// `ERR_BREAK_GLASS_REFUSED` when the environment is unknown, has no `break_glass` section or
/// allows a shorter duration, and INVALID_ARGUMENT with that code for an expiry out of range.
pub async fn grant(
    store: &TenantStore,
    promotion_id: &str,
    policy: &Policy,
    request: &CheckedRequest,
    evaluation_time: i64,
) -> Result<Override, Status> {
    let promotion = load_promotion(store, promotion_id).await?;
    let environment = policy.environments.get(&promotion.target_environment);
    break_glass::grant(
        &request.as_request(),
        promotion_id,
        &promotion.target_environment,
        environment,
        &request.requested_by,
        evaluation_time,
    )
    .map_err(|refusal| refused(promotion_id, request, &refusal))
}

/// Logs a break-glass override that was stored with its record, at WARN.
pub fn log_granted(tenant: &stella_access::Tenant, grant: &Override) {
    warn!(
        tenant = %tenant,
        promotion_id = grant.promotion_id.as_str(),
        ticket = grant.ticket.as_str(),
        requested_by = grant.requested_by.as_str(),
        reason = grant.reason.as_str(),
        expires_at = %rfc3339(grant.expires_at).unwrap_or_default(),
        "break-glass override granted"
    );
}


/// Decides which override, if any, applies to `evaluation`, made of `promotion` at
/// `evaluation_time`, and returns the evaluation to report with that override.
///
/// A `granted` override (from [`grant`]) is applied; the caller stores it with the record.
/// Without one, the override of this tenant's promotion that is in effect at `evaluation_time` is applied, if
/// there is one.
///
/// # Errors
///
/// INTERNAL when the store fails.
pub async fn decide(
    store: &TenantStore,
    promotion: &Promotion,
    evaluation: Evaluation,
    evaluation_time: i64,
    granted: Option<&Override>,
) -> Result<(Evaluation, Option<AppliedOverride>), Status> {
    let promotion_id = promotion.promotion_id.as_str();
    let grant = match granted {
        Some(grant) => {
            // The caller stores a new grant in the record's write batch (`SignedRecord::grant`),
            // so it takes effect only together with the record of its grant.
            Some(grant.clone())
        }
        None => {
            let tenant_store = store.clone();
            let id = promotion_id.to_owned();
            blocking(move || tenant_store.override_at(&id, evaluation_time)).await?
        }
    };

    let Some(grant) = grant else {
        return Ok((evaluation, None));
    };
    let Some((overridden, applied)) =
        break_glass::apply(&evaluation, &grant, promotion_id, evaluation_time)
    else {
        return Ok((evaluation, None));
    };
    warn!(
        tenant = %store.tenant(),
        promotion_id,
        ticket = grant.ticket.as_str(),
        requested_by = grant.requested_by.as_str(),
        expires_at = %rfc3339(grant.expires_at).unwrap_or_default(),
        overridden_decision = applied.overridden_decision.as_str(),
        overridden_reason_codes = %sorted_code_strings(&applied.overridden_reason_codes).join(","),
        "break-glass override applied; the decision is not a standard verification"
    );
    Ok((overridden, Some(applied)))
}

/// Converts an applied override to its response message.
pub fn to_proto(applied: &AppliedOverride) -> pb::BreakGlass {
    pb::BreakGlass {
        reason: applied.grant.reason.clone(),
        ticket: applied.grant.ticket.clone(),
        requested_by: applied.grant.requested_by.clone(),
        issued_at: applied.grant.issued_at,
        expires_at: applied.grant.expires_at,
        overridden_reason_codes: sorted_code_strings(&applied.overridden_reason_codes)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        overridden_decision: applied.overridden_decision.as_str().to_owned(),
    }
}

/// Logs a refused request and returns its status: FAILED_PRECONDITION when the policy refuses
/// it, INVALID_ARGUMENT for an invalid field.
fn refused(promotion_id: &str, request: &CheckedRequest, refusal: &Refusal) -> Status {
    warn!(
        reason_code = %ReasonCode::BreakGlassRefused,
        promotion_id,
        ticket = request.ticket.as_str(),
        requested_by = request.requested_by.as_str(),
        duration_seconds = request.duration_seconds,
        error = %refusal,
        "break-glass override refused"
    );
    let code = if refusal.is_policy_refusal() {
        Code::FailedPrecondition
    } else {
        Code::InvalidArgument
    };
    refusal_status(code, &format!("break-glass override refused: {refusal}"))
}

/// Builds a status whose message starts with `ERR_BREAK_GLASS_REFUSED` and whose reason-code
/// metadata carries it.
fn refusal_status(code: Code, message: &str) -> Status {
    let reason = ReasonCode::BreakGlassRefused;
    let mut status = Status::new(code, format!("{reason}: {message}"));
    status.metadata_mut().insert(
        REASON_CODE_METADATA_KEY,
        MetadataValue::from_static(reason.as_str()),
    );
    status
}
