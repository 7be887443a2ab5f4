//! Writing decision records, and returning the stored record again for a request id that was
//! seen before (see [`crate::idempotency`]).

use std::sync::Arc;

use stella_proto::gate::v1 as pb;
use stella_verify::reason::ReasonCode;
use tonic::{Code, Status};
use tracing::info;

use super::{GateService, blocking, internal, new_record_id, rejection, rejection_without_code};
use crate::chain::{AppendOutcome, SignedRecord};
use crate::break_glass::Override;
use crate::evaluate::Evaluation;
use crate::idempotency::{self, RequestEntry, StoredGate, validate_request_id};
use crate::promotion::Promotion;
use crate::record::{self, DecisionContext, DecisionRecord};
use crate::store::{StoreError, TenantStore};

/// Result of [`GateService::record_decision`].
pub(super) enum Recorded {
    /// The record was appended at `sequence`.
    New { record: DecisionRecord, sequence: u64 },
    /// A concurrent request with the same id appended first, so nothing was written.
    RequestSeen(RequestEntry),
}

/// Checks the fields that only `PreviewGates` accepts, and the request id.
///
/// # Errors
///
/// INVALID_ARGUMENT naming the field.
pub(super) fn check_evaluate_request(message: &pb::EvaluateRequest) -> Result<(), Status> {
    if message.evaluation_time != 0 {
        return Err(rejection_without_code(Code::InvalidArgument, 
            "evaluation_time applies only to PreviewGates: Evaluate always evaluates at the gate's clock",
        ));
    }
    if !message.policy_digest.is_empty() {
        return Err(rejection_without_code(Code::InvalidArgument, 
            "policy_digest applies only to PreviewGates: Evaluate always uses the tenant's active policy",
        ));
    }
    if !message.request_id.is_empty() {
        validate_request_id(&message.request_id).map_err(|message| rejection_without_code(Code::InvalidArgument, message))?;
    }
    Ok(())
}

/// Returns the stored response for `request_id`, or `None` when this tenant never used the id.
///
/// # Errors
///
/// As [`replay`].
pub(super) async fn stored_response(
    store: &TenantStore,
    request_id: &str,
    promotion_id: &str,
) -> Result<Option<pb::EvaluateResponse>, Status> {
    let reader = store.clone();
    let id = request_id.to_owned();
    let Some(entry) = blocking(move || reader.request_entry(&id)).await? else {
        return Ok(None);
    };
    replay(store, request_id, promotion_id, entry).await.map(Some)
}

/// Rebuilds the response of the record that `entry` names, with `replayed` set.
///
/// # Errors
///
/// ALREADY_EXISTS with `ERR_REQUEST_ID_CONFLICT` when the id was used for another promotion,
/// and INTERNAL when the record is missing or unreadable.
pub(super) async fn replay(
    store: &TenantStore,
    request_id: &str,
    promotion_id: &str,
    entry: RequestEntry,
) -> Result<pb::EvaluateResponse, Status> {
    if entry.promotion_id != promotion_id {
        return Err(rejection(
            Code::AlreadyExists,
            ReasonCode::RequestIdConflict,
            format!(
                "request id {request_id:?} was already used to evaluate promotion {:?}; send a new \
                 request id to evaluate promotion {promotion_id:?}",
                entry.promotion_id
            ),
        ));
    }
    let reader = store.clone();
    let record_id = entry.record_id.clone();
    let stored = blocking(move || reader.decision(&record_id)).await?.ok_or_else(|| {
        internal(format!(
            "request id {request_id:?} names decision record {}, which is missing",
            entry.record_id
        ))
    })?;
    let response = idempotency::replayed_response(&entry, &stored).map_err(|error| {
        internal(format!(
            "stored decision record {} (sequence {}) is corrupt: {error}",
            stored.record_id, stored.sequence
        ))
    })?;
    tracing::Span::current().record("record_id", stored.record_id.as_str());
    info!(
        decision = response.decision.as_str(),
        sequence = stored.sequence,
        "request id seen before; returned the stored record"
    );
    Ok(response)
}

impl GateService {
    /// Signs and appends the record of `evaluation`. With a non-empty `request_id`, the record
    /// is appended only when the id is new, and the id's entry is written with it.
    ///
    /// # Errors
    ///
    /// INTERNAL when building, signing or storing the record fails. Nothing is written then.
    pub(super) async fn record_decision(
        &self,
        store: &TenantStore,
        promotion: &Promotion,
        evaluation: &Evaluation,
        context: DecisionContext<'_>,
        request_id: &str,
        granted: Option<&Override>,
    ) -> Result<Recorded, Status> {
        let record_id = new_record_id().map_err(internal)?;
        tracing::Span::current().record("record_id", record_id.as_str());
        let entry = RequestEntry {
            record_id,
            promotion_id: promotion.promotion_id.clone(),
            gates: evaluation.gates.iter().map(StoredGate::from_result).collect(),
        };

        // The record is built inside the append, because its chain fields depend on the
        // tenant's chain head at the moment of writing.
        let store = store.clone();
        let signer = Arc::clone(&self.signer);
        let (promotion, evaluation) = (promotion.clone(), evaluation.clone());
        let policy_digest = context.policy_digest.to_owned();
        let evaluation_time = context.evaluation_time;
        let break_glass = context.break_glass.cloned();
        let request_id = request_id.to_owned();
        let granted = granted.cloned();
        blocking(move || {
            let mut built = None;
            let build = |position: &record::ChainPosition| {
                let context = DecisionContext {
                    policy_digest: &policy_digest,
                    evaluation_time,
                    break_glass: break_glass.as_ref(),
                };
                let record = record::build_record(&promotion, &evaluation, context, &entry.record_id, position)?;
                let envelope_json =
                    signer.sign_record(&promotion.promotion_id, &promotion.subject_digests, &record.record_json)?;
                let signed = SignedRecord {
                    envelope_json,
                    record_digest: record.record_digest.clone(),
                    grant: granted,
                };
                built = Some(record);
                Ok(signed)
            };
            let outcome = if request_id.is_empty() {
                let (position, signed) = store.append_decision(&entry.record_id, build)?;
                AppendOutcome::Appended(position, signed)
            } else {
                store.append_decision_once(&request_id, &entry, build)?
            };
            match outcome {
                AppendOutcome::Appended(position, _) => {
                    let record = built
                        .ok_or_else(|| StoreError::Build("the append returned without building a record".into()))?;
                    Ok(Recorded::New {
                        record,
                        sequence: position.sequence,
                    })
                }
                AppendOutcome::RequestSeen(seen) => Ok(Recorded::RequestSeen(seen)),
            }
        })
        .await
    }
}
