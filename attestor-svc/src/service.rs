//! The `stella.attestor.v1.Attestor` gRPC service: checks the caller's Authority token, reads
//! the clock once, runs the blocking logic of [`Attestor`] for the token's tenant on tokio's
//! blocking pool and maps the result.
//!
//! Every call is authorized first, before the handler reads its request or touches any state.
//! tonic has decoded a unary request by then, but a streaming call is rejected before its first
//! message is read. The tenant comes only from the verified token. The scope each call needs:
//!
//! | call | scope |
//! |---|---|
//! | ImportTrustRoots | `trust:import` |
//! | ImportTiles, ImportTilesStream | `tiles:import` |
//! | RegisterEvidence | `evidence:import` |
//! | VerifyEvidence, VerifyInclusion, VerifyInclusionStream, VerifyBundleStream, ProveConsistency | `evidence:verify` |
//! | GetReport, ListCheckpoints | `reports:read` |
//!
//! The import RPCs run one at a time, in arrival order. This keeps "check against the
//! stored state, then commit" sequences from interleaving, and bounds the memory of imports.
//! While one archive is imported, the other import requests wait here without a blocking thread.
//! Each unary one keeps its request bytes in memory (up to the transport limit), because tonic
//! decodes a request before the handler runs. ImportTilesStream spools its upload to disk first
//! ([`crate::spool`]) and waits for its turn only then.

use std::sync::Arc;

use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_server::Attestor as AttestorRpc;
use stella_access::{Authenticator, Scope};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status, Streaming};
use tracing::field::{Empty, display};
use tracing::{Span, info, instrument, warn};

use crate::attestor::{Attestor, AttestorState, rfc3339};
use crate::consistency;
use crate::error::{ServiceError, escape_for_log};
use crate::bundle_stream;
use crate::imports::TilesImport;
use crate::inclusion_stream;
use crate::spool;
use crate::inconsistency::{EvidenceCheckpoint, InconsistencyRecord, ListedCheckpoint, LogCheckpoints};
use crate::store::CheckpointSummary;

/// gRPC front of the attestor.
#[derive(Clone)]
pub struct AttestorService {
    state: Arc<AttestorState>,
    /// Checks the token and scope of every call before its request is read.
    authenticator: Authenticator,
    /// Held by the import RPC that runs; tokio's mutex queues the others in arrival order.
    import_turn: Arc<Mutex<()>>,
}

impl AttestorService {
    /// Serves `state` over gRPC to callers whose tokens `authenticator` accepts.
    pub fn new(state: Arc<AttestorState>, authenticator: Authenticator) -> Self {
        AttestorService {
            state,
            authenticator,
            import_turn: Arc::new(Mutex::new(())),
        }
    }

    /// Checks the caller's token for `rpc`, which needs `scope`, and returns the attestor of the
    /// token's tenant. The caller's tenant, subject and token id go into the current span, so
    /// every later log line of the call names them. The token itself is never logged.
    ///
    /// # Errors
    ///
    /// UNAUTHENTICATED or PERMISSION_DENIED from [`Authenticator::authorize`].
    fn authorize<T>(&self, request: &Request<T>, rpc: &'static str, scope: Scope) -> Result<Attestor, Status> {
        let principal = self.authenticator.authorize(request, rpc, scope)?;
        let span = Span::current();
        span.record("tenant", display(principal.tenant()));
        span.record("subject", display(escape_for_log(principal.subject())));
        span.record("token_id", display(escape_for_log(principal.token_id())));
        Ok(Attestor::for_tenant(&self.state, principal.tenant()))
    }

    /// Authorizes an import like [`AttestorService::authorize`] and logs the accepted call, so
    /// the log shows who imported into which tenant even when the import then fails.
    fn authorize_import<T>(&self, request: &Request<T>, rpc: &'static str, scope: Scope) -> Result<Attestor, Status> {
        let attestor = self.authorize(request, rpc, scope)?;
        info!("import call accepted");
        Ok(attestor)
    }

    /// Runs an import like [`AttestorService::run`], after the imports that arrived before it.
    async fn run_import<T, F>(&self, attestor: Attestor, call: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Attestor, i64) -> Result<T, ServiceError> + Send + 'static,
    {
        let turn = Arc::clone(&self.import_turn).lock_owned().await;
        // The guard moves into the blocking task, so a cancelled request keeps the turn until
        // its import has finished.
        self.run(attestor, move |attestor, now| {
            let _turn = turn;
            call(attestor, now)
        })
        .await
    }

    /// Runs `call` on `attestor` with the request time on the blocking pool.
    async fn run<T, F>(&self, attestor: Attestor, call: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Attestor, i64) -> Result<T, ServiceError> + Send + 'static,
    {
        let now = now_unix();
        // The blocking thread enters the RPC span, so the verification spans are its children.
        let span = Span::current();
        match tokio::task::spawn_blocking(move || span.in_scope(|| call(&attestor, now))).await {
            Ok(result) => result.map_err(ServiceError::into_status),
            Err(join_error) => Err(ServiceError::Internal(format!("request task failed: {join_error}")).into_status()),
        }
    }
}

/// Records the file name and size of an archive in the current span, once the call is authorized.
fn record_archive(file_name: &str, bytes: usize) {
    let span = Span::current();
    span.record("file_name", display(escape_for_log(file_name)));
    span.record("bytes", bytes);
}

/// Reads the clock: Unix seconds, UTC.
fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Logs a finished tile import and builds its response.
fn tiles_response(imported: TilesImport) -> pb::ImportTilesResponse {
    info!(
        digest = %imported.digest,
        tiles = imported.tiles,
        entry_bundles = imported.entry_bundles,
        proofs = imported.proofs,
        already_imported = imported.already_imported,
        "tile bundle imported"
    );
    pb::ImportTilesResponse {
        bundle_digest: imported.digest,
        checkpoints: imported.checkpoints.iter().map(checkpoint_ref).collect(),
        tiles_imported: imported.tiles,
        entry_bundles_imported: imported.entry_bundles,
        proofs_imported: imported.proofs,
        already_imported: imported.already_imported,
    }
}

fn checkpoint_ref(summary: &CheckpointSummary) -> pb::CheckpointRef {
    pb::CheckpointRef {
        origin: summary.origin.clone(),
        tree_size: summary.tree_size,
        root_hash: summary.root_hash.clone(),
    }
}

fn listed_log(log: LogCheckpoints) -> pb::LogCheckpoints {
    let stored = |listed: &ListedCheckpoint| pb::StoredCheckpoint {
        tree_size: listed.tree_size,
        root_hash: listed.root_hash.clone(),
        newest: listed.newest,
    };
    pb::LogCheckpoints {
        origin: log.origin,
        checkpoints: log.checkpoints.iter().map(stored).collect(),
        proof_checkpoints: log.proof_checkpoints.iter().map(stored).collect(),
        inconsistencies: log.inconsistencies.into_iter().map(inconsistency).collect(),
        inconsistencies_not_recorded: log.inconsistencies_not_recorded,
    }
}

fn inconsistency(record: InconsistencyRecord) -> pb::Inconsistency {
    let checkpoint = |evidence: EvidenceCheckpoint| pb::EvidenceCheckpoint {
        source: evidence.source.as_str().to_owned(),
        bundle_path: evidence.bundle_path.unwrap_or_default(),
        tree_size: evidence.tree_size,
        root_hash: evidence.root_hash,
        note: evidence.note,
    };
    pb::Inconsistency {
        id: record.id,
        recorded_at: rfc3339(record.recorded_at),
        bundle_file_name: record.bundle_file_name,
        bundle_digest: record.bundle_digest,
        origin: record.origin,
        kind: record.kind.as_str().to_owned(),
        rejected: Some(checkpoint(record.rejected)),
        conflicting: Some(checkpoint(record.conflicting)),
        proof: record.proof,
        tile_root_hash: record.tile_root_hash.unwrap_or_default(),
        detail: record.detail,
    }
}

#[tonic::async_trait]
impl AttestorRpc for AttestorService {
    #[instrument(name = "attestor.ImportTrustRoots", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, file_name = Empty, bytes = Empty))]
    async fn import_trust_roots(
        &self,
        request: Request<pb::ImportBundleRequest>,
    ) -> Result<Response<pb::ImportTrustRootsResponse>, Status> {
        let attestor = self.authorize_import(&request, "ImportTrustRoots", Scope::TrustImport)?;
        let pb::ImportBundleRequest { file_name, archive } = request.into_inner();
        record_archive(&file_name, archive.len());
        let imported = self
            .run_import(attestor, move |attestor, now| attestor.import_trust_roots(&file_name, &archive, now))
            .await?;
        info!(digest = %imported.digest, version = imported.version, already_imported = imported.already_imported, "trust root set imported");
        Ok(Response::new(pb::ImportTrustRootsResponse {
            trust_set_digest: imported.digest,
            version: imported.version,
            expires_at: imported.expires_at,
            already_imported: imported.already_imported,
        }))
    }

    #[instrument(name = "attestor.ImportTiles", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, file_name = Empty, bytes = Empty))]
    async fn import_tiles(
        &self,
        request: Request<pb::ImportBundleRequest>,
    ) -> Result<Response<pb::ImportTilesResponse>, Status> {
        let attestor = self.authorize_import(&request, "ImportTiles", Scope::TilesImport)?;
        let pb::ImportBundleRequest { file_name, archive } = request.into_inner();
        record_archive(&file_name, archive.len());
        let archive_bytes = archive.len() as u64;
        let imported = self
            .run_import(attestor, move |attestor, now| attestor.import_tiles(&file_name, &archive, now))
            .await?;
        self.state.metrics().observe_tile_import(&imported, archive_bytes);
        Ok(Response::new(tiles_response(imported)))
    }

    #[instrument(name = "attestor.ImportTilesStream", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty))]
    async fn import_tiles_stream(
        &self,
        request: Request<Streaming<pb::ImportChunk>>,
    ) -> Result<Response<pb::ImportTilesResponse>, Status> {
        // The token is checked before the first byte of the upload is read or spooled.
        let attestor = self.authorize_import(&request, "ImportTilesStream", Scope::TilesImport)?;
        // The upload is spooled before the import takes its turn, so uploads do not queue
        // behind a running import. The spool file is deleted when `spooled` is dropped.
        let max_bytes = self.state.stream_limits().max_archive_bytes;
        let spooled = spool::receive(request.into_inner(), self.state.spool(), max_bytes)
            .await
            .map_err(ServiceError::into_status)?;
        let archive_bytes = spooled.bytes;
        let imported = self
            .run_import(attestor, move |attestor, now| attestor.import_tiles_spooled(&spooled, now))
            .await?;
        self.state.metrics().observe_tile_import(&imported, archive_bytes);
        Ok(Response::new(tiles_response(imported)))
    }

    #[instrument(name = "attestor.RegisterEvidence", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, file_name = Empty, bytes = Empty))]
    async fn register_evidence(
        &self,
        request: Request<pb::ImportBundleRequest>,
    ) -> Result<Response<pb::RegisterEvidenceResponse>, Status> {
        let attestor = self.authorize_import(&request, "RegisterEvidence", Scope::EvidenceImport)?;
        let pb::ImportBundleRequest { file_name, archive } = request.into_inner();
        record_archive(&file_name, archive.len());
        let verifier = attestor.clone();
        let registered = self
            .run_import(attestor, move |attestor, now| attestor.register_evidence(&file_name, &archive, now))
            .await?;
        info!(bundle_id = %registered.bundle_id, already_registered = registered.already_registered, "evidence bundle registered");
        // Verified after the import turn is released, so other imports do not wait for it. A
        // failure here leaves the registration in place: the first VerifyEvidence verifies.
        let bundle_id = registered.bundle_id.clone();
        match self.run(verifier, move |attestor, now| attestor.verify_registered(&bundle_id, now)).await {
            Ok(Some(verified)) => {
                info!(bundle_id = %registered.bundle_id, report_digest = %verified.report_digest, outcome = %verified.outcome, from_store = verified.from_store, "registered evidence verified");
            }
            Ok(None) => {
                info!(bundle_id = %registered.bundle_id, "registered evidence not verified yet: no trust root set is valid now");
            }
            Err(status) => {
                warn!(bundle_id = %registered.bundle_id, code = ?status.code(), message = %escape_for_log(status.message()), "verifying registered evidence failed; VerifyEvidence verifies it later");
            }
        }
        Ok(Response::new(pb::RegisterEvidenceResponse {
            bundle_id: registered.bundle_id,
            sigstore_bundles: registered.sigstore_bundles,
            already_registered: registered.already_registered,
        }))
    }

    #[instrument(name = "attestor.VerifyEvidence", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, bundle_id = Empty, from_store = Empty))]
    async fn verify_evidence(
        &self,
        request: Request<pb::VerifyEvidenceRequest>,
    ) -> Result<Response<pb::VerifyEvidenceResponse>, Status> {
        let attestor = self.authorize(&request, "VerifyEvidence", Scope::EvidenceVerify)?;
        let pb::VerifyEvidenceRequest {
            bundle_id,
            verification_time,
        } = request.into_inner();
        Span::current().record("bundle_id", display(escape_for_log(&bundle_id)));
        let id = bundle_id.clone();
        // A nonzero time replays a past evaluation: the gate passes the time it evaluates at.
        let verified = self
            .run(attestor, move |attestor, now| {
                let at = if verification_time == 0 { now } else { verification_time };
                attestor.verify_evidence(&id, at)
            })
            .await?;
        Span::current().record("from_store", verified.from_store);
        info!(report_digest = %verified.report_digest, outcome = %verified.outcome, reason_codes = %verified.reason_codes.join(","), verification_time, from_store = verified.from_store, "evidence verified");
        self.state.metrics().observe_evidence(&verified);
        Ok(Response::new(pb::VerifyEvidenceResponse {
            bundle_id,
            report_digest: verified.report_digest,
            outcome: verified.outcome,
            reason_codes: verified.reason_codes,
            report_json: verified.report_json,
            from_store: verified.from_store,
        }))
    }

    #[instrument(name = "attestor.GetReport", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, report_digest = Empty))]
    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::GetReportResponse>, Status> {
        let attestor = self.authorize(&request, "GetReport", Scope::ReportsRead)?;
        let report_digest = request.into_inner().report_digest;
        Span::current().record("report_digest", display(escape_for_log(&report_digest)));
        let digest = report_digest.clone();
        let report_json = self.run(attestor, move |attestor, _now| attestor.report(&digest)).await?;
        Ok(Response::new(pb::GetReportResponse {
            report_digest,
            report_json,
        }))
    }

    #[instrument(name = "attestor.VerifyInclusion", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, origin = Empty, index = Empty))]
    async fn verify_inclusion(
        &self,
        request: Request<pb::VerifyInclusionRequest>,
    ) -> Result<Response<pb::VerifyInclusionResponse>, Status> {
        let attestor = self.authorize(&request, "VerifyInclusion", Scope::EvidenceVerify)?;
        let pb::VerifyInclusionRequest { origin, index, entry, sequence } = request.into_inner();
        let span = Span::current();
        span.record("origin", display(escape_for_log(&origin)));
        span.record("index", index);
        let result = self
            .run(attestor, move |attestor, now| attestor.verify_inclusion(&origin, index, &entry, now))
            .await?;
        info!(included = result.included, proof_source = %result.proof_source, reason_codes = %result.reason_codes.join(","), "inclusion checked");
        Ok(Response::new(inclusion_stream::response(result, sequence)))
    }

    type VerifyInclusionStreamStream = inclusion_stream::ResponseStream;

    #[instrument(name = "attestor.VerifyInclusionStream", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty))]
    async fn verify_inclusion_stream(
        &self,
        request: Request<Streaming<pb::VerifyInclusionRequest>>,
    ) -> Result<Response<Self::VerifyInclusionStreamStream>, Status> {
        // The token is checked before the first request message is read.
        let attestor = self.authorize(&request, "VerifyInclusionStream", Scope::EvidenceVerify)?;
        let requests = request.into_inner();
        // One clock read and one trust set for the whole call.
        let tenant_attestor = attestor.clone();
        let trust = self
            .run(attestor, |attestor, now| attestor.valid_trust_set(now))
            .await?;
        info!(trust_set_version = trust.version, "inclusion stream started");
        let responses = inclusion_stream::start(Arc::new(tenant_attestor), trust, requests);
        Ok(Response::new(responses))
    }

    type VerifyBundleStreamStream = bundle_stream::ResponseStream;

    #[instrument(name = "attestor.VerifyBundleStream", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty))]
    async fn verify_bundle_stream(
        &self,
        request: Request<Streaming<pb::VerifyBundleRequest>>,
    ) -> Result<Response<Self::VerifyBundleStreamStream>, Status> {
        // The token is checked before the first request message is read.
        let attestor = self.authorize(&request, "VerifyBundleStream", Scope::EvidenceVerify)?;
        let requests = request.into_inner();
        // One clock read and one trust set for the whole call.
        let tenant_attestor = attestor.clone();
        let (trust, now) = self
            .run(attestor, |attestor, now| Ok((attestor.valid_trust_set(now)?, now)))
            .await?;
        info!(trust_set_version = trust.version, "bundle stream started");
        let responses = bundle_stream::start(Arc::new(tenant_attestor), trust, now, requests);
        Ok(Response::new(responses))
    }

    #[instrument(name = "attestor.ListCheckpoints", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, origin = Empty))]
    async fn list_checkpoints(
        &self,
        request: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let attestor = self.authorize(&request, "ListCheckpoints", Scope::ReportsRead)?;
        let origin = request.into_inner().origin;
        if let Some(origin) = &origin {
            Span::current().record("origin", display(escape_for_log(origin)));
        }
        let logs = self
            .run(attestor, move |attestor, _now| attestor.list_checkpoints(origin.as_deref()))
            .await?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            logs: logs.into_iter().map(listed_log).collect(),
        }))
    }

    #[instrument(name = "attestor.ProveConsistency", skip_all, fields(tenant = Empty, subject = Empty, token_id = Empty, origin = Empty, old_size = Empty, new_size = Empty))]
    async fn prove_consistency(
        &self,
        request: Request<pb::ProveConsistencyRequest>,
    ) -> Result<Response<pb::ProveConsistencyResponse>, Status> {
        let attestor = self.authorize(&request, "ProveConsistency", Scope::EvidenceVerify)?;
        let pb::ProveConsistencyRequest { origin, old_size, new_size } = request.into_inner();
        let span = Span::current();
        span.record("origin", display(escape_for_log(&origin)));
        span.record("old_size", old_size);
        span.record("new_size", new_size);
        let result = self
            .run(attestor, move |attestor, now| attestor.prove_consistency(&origin, old_size, new_size, now))
            .await?;
        info!(consistent = result.consistent, proof_hashes = result.proof.len(), reason_codes = %result.reason_codes.join(","), "consistency checked");
        Ok(Response::new(consistency::response(result)))
    }
}
