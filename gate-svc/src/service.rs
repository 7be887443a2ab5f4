//! The `stella.gate.v1.Gate` gRPC service: checks the caller's Authority token, decodes
//! requests, calls the caller's tenant view of the store, the attestor client and the pure
//! evaluation, and maps failures to gRPC statuses.
//!
//! Every handler first calls [`Authenticator::authorize`] with the scope its call needs, before
//! it reads the request body or touches state. The tenant comes from the verified token only.
//!
//! Policy selection and the policy calls are in [`policies`], the writing of decision records
//! and their replay by request id in [`recording`].

mod policies;
mod recording;

use std::sync::Arc;

use stella_access::{Authenticator, BearerToken, Scope};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::gate::v1 as pb;
use stella_proto::gate::v1::gate_server::Gate;
use stella_verify::reason::ReasonCode;
use tokio::task::JoinSet;
use tonic::{Code, Request, Response, Status};
use tracing::{Instrument as _, error, info, instrument};

use crate::attestor::{AttestorClient, CallerRejected};
use crate::break_glass_rpc;
use crate::metrics::GateMetrics;
use crate::evaluate::{self, Evaluation, EvidenceOutcome, EvidenceResult};
use crate::policy::Policy;
use crate::policy_versions::PolicyVersions;
use crate::promotion::Promotion;
use crate::chain::StoredDecision;
use crate::record::{self, DecisionContext, sorted_code_strings};
use crate::signing::RecordSigner;
use crate::store::{CreateOutcome, Store, StoreError, TenantStore};
use recording::Recorded;

/// Records per `ListDecisions` page when the request sets no page size.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Maximum records per `ListDecisions` page.
const MAX_PAGE_SIZE: u32 = 1000;

/// State shared by all requests.
pub struct GateService {
    store: Store,
    policies: Arc<PolicyVersions>,
    attestor: AttestorClient,
    authenticator: Authenticator,
    signer: Arc<RecordSigner>,
    metrics: Arc<GateMetrics>,
}

/// An accepted caller: its tenant's view of the store and the token to forward.
struct Caller {
    store: TenantStore,
    token: BearerToken,
}

impl GateService {
    /// Creates the service over an opened store, the site-wide default policy and the tenants'
    /// versions, an attestor client, the token check for the audience `stella-gate` and the key
    /// that signs decision records.
    pub fn new(
        store: Store,
        policies: PolicyVersions,
        attestor: AttestorClient,
        authenticator: Authenticator,
        signer: Arc<RecordSigner>,
    ) -> Self {
        GateService {
            store,
            policies: Arc::new(policies),
            attestor,
            authenticator,
            signer,
            metrics: Arc::new(GateMetrics::default()),
        }
    }

    /// Records into `metrics` instead of metrics registered nowhere.
    pub fn with_metrics(mut self, metrics: Arc<GateMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Checks the caller's token and `scope`, records the tenant in the current span and
    /// returns the caller's view of the store with the token to forward to the attestor.
    fn authorize<T>(&self, request: &Request<T>, rpc: &'static str, scope: Scope) -> Result<Caller, Status> {
        let principal = self.authenticator.authorize(request, rpc, scope)?;
        let token = stella_access::forwarded_token(request).ok_or_else(|| {
            // authorize() fails when this metadata is absent, so this branch is not reached.
            error!(rpc, "accepted call has no authorization metadata to forward");
            Status::internal("internal error; see the gate log")
        })?;
        // Free text (the subject here, ids in the handlers) is recorded as a string, which the
        // log writes quoted and escaped. A tenant has only the characters [a-z0-9._-].
        let span = tracing::Span::current();
        span.record("tenant", tracing::field::display(principal.tenant()));
        span.record("subject", principal.subject());
        Ok(Caller {
            store: self.store.for_tenant(principal.tenant()),
            token,
        })
    }

    /// Verifies every evidence bundle of the promotion concurrently, on the caller's behalf, at
    /// `evaluation_time`, and evaluates it against `policy`.
    ///
    /// # Errors
    ///
    /// NOT_FOUND for a promotion the caller's tenant does not have, and the attestor's
    /// UNAUTHENTICATED or PERMISSION_DENIED (message prefixed "attestor: ") when it rejects the
    /// caller's token. No evaluation is made then, so no decision can be recorded.
    async fn evaluate_promotion(
        &self,
        caller: &Caller,
        request: &pb::EvaluateRequest,
        policy: &Policy,
        evaluation_time: i64,
    ) -> Result<(Promotion, Evaluation), Status> {
        if !request.offline_rekor {
            return Err(rejection_without_code(Code::InvalidArgument, 
                "offline_rekor must be true: the gate proves Rekor inclusion only from the attestor's offline cache",
            ));
        }
        let promotion = load_promotion(&caller.store, &request.promotion_id).await?;

        let mut calls = JoinSet::new();
        for bundle_id in &promotion.evidence_bundle_ids {
            let client = self.attestor.clone();
            let token = caller.token.clone();
            let bundle_id = bundle_id.clone();
            // A child of the RPC span, so the attestor call carries this trace and the
            // attestor's spans join it.
            let span = tracing::info_span!("gate.verify_evidence", bundle_id = %bundle_id);
            calls.spawn(
                async move {
                    let outcome = client.verify_evidence(&bundle_id, &token, evaluation_time).await;
                    (bundle_id, outcome)
                }
                .instrument(span),
            );
        }
        let mut evidence = Vec::with_capacity(promotion.evidence_bundle_ids.len());
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((bundle_id, Ok(outcome))) => evidence.push(EvidenceResult { bundle_id, outcome }),
                Ok((bundle_id, Err(CallerRejected(status)))) => {
                    // Dropping `calls` aborts the calls still running.
                    let reason_code = status
                        .metadata()
                        .get(REASON_CODE_METADATA_KEY)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    info!(%bundle_id, reason_code, code = ?status.code(), detail = status.message(), "attestor rejected the caller's token");
                    return Err(status);
                }
                Err(join_error) => {
                    error!(error = %join_error, "attestor call task failed");
                    return Err(Status::internal("internal error; see the gate log"));
                }
            }
        }
        for result in &evidence {
            if let EvidenceOutcome::Error { code, detail } = &result.outcome {
                info!(bundle_id = %result.bundle_id, reason_code = %code, %detail, "evidence not verified");
            }
        }

        let environment = policy.environments.get(&promotion.target_environment);
        let evaluation = tracing::info_span!(
            "gate.evaluate_policy",
            promotion_id = %promotion.promotion_id,
            environment = %promotion.target_environment,
        )
        .in_scope(|| evaluate::evaluate(&promotion, environment, &evidence, evaluation_time));
        for gate in evaluation.gates.iter().filter(|gate| !gate.satisfied) {
            info!(
                gate = %gate.requirement,
                reason_codes = %sorted_code_strings(&gate.reason_codes).join(","),
                detail = ?gate.detail,
                "gate not satisfied"
            );
        }
        Ok((promotion, evaluation))
    }
}

#[tonic::async_trait]
impl Gate for GateService {
    #[instrument(name = "gate.CreatePromotion", skip_all, fields(tenant, subject, promotion_id))]
    async fn create_promotion(
        &self,
        request: Request<pb::CreatePromotionRequest>,
    ) -> Result<Response<pb::Promotion>, Status> {
        let caller = self.authorize(&request, "CreatePromotion", Scope::PromotionEvaluate)?;
        let request = request.into_inner();
        tracing::Span::current().record("promotion_id", request.promotion_id.as_str());
        let promotion = Promotion::new(
            &request.promotion_id,
            &request.subject_digests,
            &request.target_environment,
            &request.evidence_bundle_ids,
        )
        .map_err(|error| rejection_without_code(Code::InvalidArgument, format!("invalid promotion: {error}")))?;

        let store = caller.store;
        let to_store = promotion.clone();
        match blocking(move || store.create_promotion(&to_store)).await {
            Ok(CreateOutcome::Created) => info!("promotion created"),
            Ok(CreateOutcome::AlreadyExists) => info!("promotion already exists with the same content"),
            Err(status) => return Err(status),
        }
        Ok(Response::new(to_proto(&promotion)))
    }

    #[instrument(name = "gate.GetPromotion", skip_all, fields(tenant, subject, promotion_id))]
    async fn get_promotion(
        &self,
        request: Request<pb::GetPromotionRequest>,
    ) -> Result<Response<pb::Promotion>, Status> {
        let caller = self.authorize(&request, "GetPromotion", Scope::PromotionPreview)?;
        let promotion_id = &request.get_ref().promotion_id;
        tracing::Span::current().record("promotion_id", promotion_id.as_str());
        let promotion = load_promotion(&caller.store, promotion_id).await?;
        Ok(Response::new(to_proto(&promotion)))
    }

    #[instrument(
        name = "gate.PreviewGates",
        skip_all,
        fields(tenant, subject, promotion_id, policy_digest, evaluation_time)
    )]
    async fn preview_gates(
        &self,
        request: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::EvaluateResponse>, Status> {
        let caller = self.authorize(&request, "PreviewGates", Scope::PromotionPreview)?;
        let message = request.get_ref();
        let span = tracing::Span::current();
        span.record("promotion_id", message.promotion_id.as_str());
        break_glass_rpc::reject_in_preview(message)?;
        if !message.request_id.is_empty() {
            return Err(rejection_without_code(Code::InvalidArgument, 
                "request_id applies only to Evaluate: a preview writes no record to return again",
            ));
        }
        let evaluation_time = preview_time(message.evaluation_time)?;
        let selected = self.preview_policy(&caller.store, &message.policy_digest).await?;
        span.record("policy_digest", selected.policy.digest.as_str());
        span.record("evaluation_time", evaluation_time);

        let (promotion, evaluation) = self
            .evaluate_promotion(&caller, message, &selected.policy, evaluation_time)
            .await?;
        let (evaluation, applied) =
            break_glass_rpc::decide(&caller.store, &promotion, evaluation, evaluation_time, None).await?;
        let context = DecisionContext {
            policy_digest: &selected.policy.digest,
            evaluation_time,
            break_glass: applied.as_ref(),
        };
        let preview = record::preview(&promotion, &evaluation, context).map_err(internal)?;
        info!(
            decision = evaluation.decision.as_str(),
            reason_codes = %sorted_code_strings(&evaluation.reason_codes).join(","),
            policy_version = selected.version,
            "gates previewed"
        );
        Ok(Response::new(response(
            &evaluation,
            &context,
            preview.decision_digest,
            String::new(),
            preview.body_json,
        )))
    }

    #[instrument(
        name = "gate.Evaluate",
        skip_all,
        fields(tenant, subject, promotion_id, request_id, record_id, policy_digest)
    )]
    async fn evaluate(&self, request: Request<pb::EvaluateRequest>) -> Result<Response<pb::EvaluateResponse>, Status> {
        let caller = self.authorize(&request, "Evaluate", Scope::PromotionEvaluate)?;
        let message = request.get_ref();
        let span = tracing::Span::current();
        span.record("promotion_id", message.promotion_id.as_str());
        recording::check_evaluate_request(message)?;
        let break_glass = break_glass_rpc::check_evaluate_request(&self.authenticator, &request)?;
        if !message.request_id.is_empty() {
            span.record("request_id", message.request_id.as_str());
            let stored = recording::stored_response(&caller.store, &message.request_id, &message.promotion_id).await?;
            if let Some(stored) = stored {
                return Ok(Response::new(stored));
            }
        }

        let evaluation_time = unix_now();
        let selected = self.active_policy(&caller.store).await?;
        span.record("policy_digest", selected.policy.digest.as_str());
        // A requested override is checked against the policy before any evidence is verified,
        // and stored after the evaluation, before the record is written.
        let granted = match &break_glass {
            Some(requested) => Some(
                break_glass_rpc::grant(&caller.store, &message.promotion_id, &selected.policy, requested, evaluation_time)
                    .await?,
            ),
            None => None,
        };
        let (promotion, evaluation) = self
            .evaluate_promotion(&caller, message, &selected.policy, evaluation_time)
            .await?;
        let (evaluation, applied) =
            break_glass_rpc::decide(&caller.store, &promotion, evaluation, evaluation_time, granted.as_ref()).await?;
        let context = DecisionContext {
            policy_digest: &selected.policy.digest,
            evaluation_time,
            break_glass: applied.as_ref(),
        };

        let recorded = self
            .record_decision(&caller.store, &promotion, &evaluation, context, &message.request_id, granted.as_ref())
            .await?;
        match recorded {
            Recorded::New { record, sequence } => {
                if let Some(grant) = &granted {
                    break_glass_rpc::log_granted(caller.store.tenant(), grant);
                }
                self.metrics.observe_decision(evaluation.decision, applied.is_some());
                info!(
                    decision = evaluation.decision.as_str(),
                    reason_codes = %sorted_code_strings(&evaluation.reason_codes).join(","),
                    policy_version = selected.version,
                    sequence,
                    record_digest = %record.record_digest,
                    "decision recorded"
                );
                Ok(Response::new(response(
                    &evaluation,
                    &context,
                    record.decision_digest,
                    record.record_id,
                    record.record_json,
                )))
            }
            // A concurrent request with the same id was recorded first.
            Recorded::RequestSeen(entry) => {
                let stored = recording::replay(&caller.store, &message.request_id, &message.promotion_id, entry).await?;
                Ok(Response::new(stored))
            }
        }
    }

    #[instrument(name = "gate.GetDecision", skip_all, fields(tenant, subject, record_id))]
    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::DecisionRecord>, Status> {
        let caller = self.authorize(&request, "GetDecision", Scope::DecisionsRead)?;
        let record_id = request.into_inner().record_id;
        tracing::Span::current().record("record_id", record_id.as_str());
        let store = caller.store;
        let id = record_id.clone();
        // Another tenant's record is NOT_FOUND with the same message as a missing one.
        match blocking(move || store.decision(&id)).await? {
            Some(stored) => Ok(Response::new(decision_message(stored, true)?)),
            None => Err(rejection_without_code(Code::NotFound, format!(
                "decision record {record_id:?} does not exist"
            ))),
        }
    }

    #[instrument(name = "gate.GetSigningKey", skip_all, fields(tenant, subject))]
    async fn get_signing_key(
        &self,
        request: Request<pb::GetSigningKeyRequest>,
    ) -> Result<Response<pb::SigningKey>, Status> {
        self.authorize(&request, "GetSigningKey", Scope::DecisionsRead)?;
        Ok(Response::new(pb::SigningKey {
            public_key_pem: self.signer.public_key_pem().to_owned(),
            key_id: self.signer.key_id().to_owned(),
        }))
    }

    #[instrument(name = "gate.ListDecisions", skip_all, fields(tenant, subject, after_sequence))]
    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        let caller = self.authorize(&request, "ListDecisions", Scope::DecisionsRead)?;
        let request = request.into_inner();
        tracing::Span::current().record("after_sequence", request.after_sequence);
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size if size <= MAX_PAGE_SIZE => usize::try_from(size).unwrap_or(DEFAULT_PAGE_SIZE),
            size => {
                return Err(rejection_without_code(Code::InvalidArgument, format!(
                    "page_size {size} is too large; the maximum is {MAX_PAGE_SIZE}"
                )));
            }
        };
        let store = caller.store;
        let after = request.after_sequence;
        let (stored, more) = blocking(move || store.decisions_after(after, page_size)).await?;
        let records = stored
            .into_iter()
            .map(|record| decision_message(record, false))
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(pb::ListDecisionsResponse { records, more }))
    }

    #[instrument(name = "gate.ImportPolicy", skip_all, fields(tenant, subject, policy_digest))]
    async fn import_policy(
        &self,
        request: Request<pb::ImportPolicyRequest>,
    ) -> Result<Response<pb::PolicyVersion>, Status> {
        let caller = self.authorize(&request, "ImportPolicy", Scope::PolicyImport)?;
        let version = self.import_policy_version(caller.store, request.into_inner()).await?;
        Ok(Response::new(version))
    }

    #[instrument(name = "gate.GetPolicy", skip_all, fields(tenant, subject, policy_digest))]
    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::PolicyDocument>, Status> {
        let caller = self.authorize(&request, "GetPolicy", Scope::PromotionPreview)?;
        let document = self.policy_document(caller.store, request.into_inner().digest).await?;
        Ok(Response::new(document))
    }
}

/// Converts a stored record to its message, with the record JSON from the envelope when
/// `with_record` is set. An envelope that no longer parses is then an internal error, so
/// `GetDecision` returns no record that differs from the signed one.
fn decision_message(stored: StoredDecision, with_record: bool) -> Result<pb::DecisionRecord, Status> {
    let record_json = if with_record {
        record::record_from_envelope(&stored.envelope_json).map_err(|error| {
            internal(format!(
                "stored decision record {} (sequence {}) is corrupt: {error}",
                stored.record_id, stored.sequence
            ))
        })?
    } else {
        Vec::new()
    };
    Ok(pb::DecisionRecord {
        record_id: stored.record_id,
        record_json,
        envelope_json: stored.envelope_json,
        sequence: stored.sequence,
    })
}

/// Reads a promotion of the store's tenant. Another tenant's promotion is NOT_FOUND with the
/// same message as a missing one, so the response does not reveal that the id exists elsewhere.
pub(crate) async fn load_promotion(store: &TenantStore, promotion_id: &str) -> Result<Promotion, Status> {
    let store = store.clone();
    let id = promotion_id.to_owned();
    match blocking(move || store.promotion(&id)).await? {
        Some(promotion) => Ok(promotion),
        None => Err(rejection_without_code(Code::NotFound, format!("promotion {promotion_id:?} does not exist"))),
    }
}

fn to_proto(promotion: &Promotion) -> pb::Promotion {
    pb::Promotion {
        promotion_id: promotion.promotion_id.clone(),
        subject_digests: promotion.subject_digests.clone(),
        target_environment: promotion.target_environment.clone(),
        evidence_bundle_ids: promotion.evidence_bundle_ids.clone(),
    }
}

/// Builds the response of an evaluation that `context` describes, with the break-glass block
/// when an override decided.
fn response(
    evaluation: &Evaluation,
    context: &DecisionContext<'_>,
    decision_digest: String,
    record_id: String,
    record_json: Vec<u8>,
) -> pb::EvaluateResponse {
    pb::EvaluateResponse {
        decision: evaluation.decision.as_str().to_owned(),
        reason_codes: owned(sorted_code_strings(&evaluation.reason_codes)),
        gates: evaluation
            .gates
            .iter()
            .map(|gate| pb::GateResult {
                requirement: gate.requirement.clone(),
                satisfied: gate.satisfied,
                reason_codes: owned(sorted_code_strings(&gate.reason_codes)),
            })
            .collect(),
        decision_digest,
        report_digests: evaluation.report_digests.clone(),
        record_id,
        record_json,
        break_glass: context.break_glass.map(break_glass_rpc::to_proto),
        policy_digest: context.policy_digest.to_owned(),
        evaluation_time: context.evaluation_time,
        replayed: false,
    }
}

fn owned(codes: Vec<&'static str>) -> Vec<String> {
    codes.into_iter().map(str::to_owned).collect()
}

/// Runs a blocking call off the async runtime.
async fn off_runtime<T, F>(call: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(call).await.map_err(internal)
}

/// Runs a RocksDB call off the async runtime and maps store errors to statuses.
pub(crate) async fn blocking<T, F>(call: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(StoreError::PromotionConflict { promotion_id })) => Err(rejection_without_code(Code::AlreadyExists, format!(
            "promotion {promotion_id:?} already exists with different subjects, target or evidence"
        ))),
        Ok(Err(store_error)) => Err(internal(store_error)),
        Err(join_error) => Err(internal(join_error)),
    }
}

/// Builds the status of a rejected request and logs it at INFO: the message starts with the
/// reason code, which the `stella-reason-code` metadata carries as well.
pub(crate) fn rejection(code: Code, reason: ReasonCode, message: impl std::fmt::Display) -> Status {
    let message = message.to_string();
    // Recorded as a string, so the log quotes and escapes text that came from the request.
    info!(reason_code = %reason, detail = message.as_str(), "request rejected");
    let mut status = Status::new(code, format!("{reason}: {message}"));
    if let Ok(value) = reason.as_str().parse() {
        status.metadata_mut().insert(REASON_CODE_METADATA_KEY, value);
    }
    status
}

/// Builds the status of a rejected request that has no reason code (a malformed field, an
/// unknown id, a conflicting promotion) and logs it at INFO, as [`rejection`] does for coded
/// rejections.
pub(crate) fn rejection_without_code(code: Code, message: impl std::fmt::Display) -> Status {
    let message = message.to_string();
    info!(code = ?code, detail = message.as_str(), "request rejected");
    Status::new(code, message)
}

/// Logs an internal error once and returns a generic status.
fn internal(error: impl std::fmt::Display) -> Status {
    error!(error = %error, "internal error");
    Status::internal("internal error; see the gate log")
}

/// Returns the gate's clock in whole Unix seconds.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Latest evaluation time, in Unix seconds: 9999-12-31T23:59:59Z, the last second that a
/// record's RFC 3339 `evaluated_at` can hold.
const MAX_EVALUATION_TIME: i64 = 253_402_300_799;

/// Returns the evaluation time of a preview: `requested`, or the gate's clock for 0.
fn preview_time(requested: i64) -> Result<i64, Status> {
    match requested {
        0 => Ok(unix_now()),
        1..=MAX_EVALUATION_TIME => Ok(requested),
        other => Err(rejection_without_code(Code::InvalidArgument, format!(
            "evaluation_time {other} is out of range: give Unix seconds from 1 to {MAX_EVALUATION_TIME} \
             (9999-12-31T23:59:59Z), or 0 to evaluate now"
        ))),
    }
}

/// Returns a new random record id: "dr-" and 32 hex digits (128 bits).
fn new_record_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(format!("dr-{}", hex::encode(bytes)))
}
