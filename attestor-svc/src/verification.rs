//! Offline verification requests: VerifyEvidence, GetReport and VerifyInclusion.
//!
//! Evidence is verified with `stella_verify::evidence::verify_bundle_cached` against the current
//! trust set, with inclusion proven from the local cache ([`Cache`]), never from the
//! bundle's own proof and never over the network. Reports contain no wall-clock time, so
//! verifying the same evidence against the same trust set and cache gives the same report
//! digest.
//!
//! The verification time enters a report only through the trust set's validity check. While the
//! trust set is valid, a report is therefore fixed by the evidence, the trust set digest, the
//! tenant's tlog state generation (which every import that changes the cache increments) and
//! [`REPORT_VERIFIER_VERSION`]. The attestor verifies each evidence bundle once for those inputs,
//! at registration or at the first VerifyEvidence, and indexes the report under them
//! ([`crate::store::ReportKey`]). Later calls return the stored bytes. A report for a trust set
//! that is not valid at the requested time is verified every time and never indexed.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::Digest as _;
use stella_bundle::{EvidenceBundle, open_evidence};
use stella_verify::bundle::{BundleContent, HashAlgorithm, parse_bundle};
use stella_verify::evidence::{
    Artifact, InclusionLookupError, InclusionSource, ProofSource, VerifyInput, verify_bundle_cached,
};
use stella_verify::merkle;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::report::{Outcome, REPORT_VERIFIER_VERSION, VerificationReport};
use stella_verify::trust_root::TrustSet;
use tracing::warn;

use crate::attestor::Attestor;
use crate::cache::Cache;
use crate::error::ServiceError;
use crate::store::{CheckpointSummary, ReportKey};

/// Result of VerifyEvidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceVerification {
    /// "sha256:<hex>" of `report_json`.
    pub report_digest: String,
    /// "verified" or "failed".
    pub outcome: String,
    /// Sorted reason code spellings.
    pub reason_codes: Vec<String>,
    /// RFC 8785 JSON.
    pub report_json: Vec<u8>,
    /// True when the report was read from the store instead of verified again.
    pub from_store: bool,
}

/// Result of VerifyInclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionResult {
    pub included: bool,
    /// The checkpoint the proof was checked against, when one was found.
    pub checkpoint: Option<CheckpointSummary>,
    /// "tiles", "tlog-proof", or empty when no proof was found.
    pub proof_source: String,
    /// Sorted reason code spellings; empty when included.
    pub reason_codes: Vec<String>,
    pub detail: String,
}

impl Attestor {
    /// Returns the verification report of a registered evidence bundle at `now`. When the trust
    /// set is valid at `now` and a report is indexed for the current inputs, that report is
    /// returned. Otherwise every Sigstore bundle is verified, and the report is stored under its
    /// digest and indexed. When the trust set is not valid at `now`, the bundle is verified (the
    /// report fails with the trust set's reason code) and the report is stored but not indexed.
    ///
    /// # Errors
    ///
    /// NOT_FOUND with `ERR_EVIDENCE_NOT_FOUND` for an unknown bundle id, and
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` without a trust set. Failed
    /// verification is not an error: it is a report with outcome "failed".
    pub fn verify_evidence(&self, bundle_id: &str, now: i64) -> Result<EvidenceVerification, ServiceError> {
        self.require_registered(bundle_id)?;
        let trust = self.current_trust_set()?;
        if trust.check_valid_at(now).is_err() {
            let report = self.verify_stored_evidence(bundle_id, &trust, now)?;
            let verified = fresh_result(&report);
            self.store.put_report(&verified.report_digest, &verified.report_json)?;
            return Ok(verified);
        }

        // The generation is read before verification reads the cache. An import that commits
        // meanwhile increments it, so this key is never looked up again and the report cannot
        // outlive the cache state it was verified against.
        let key = ReportKey {
            bundle_id: bundle_id.to_owned(),
            trust_set_digest: trust.digest.clone(),
            tlog_generation: self.store.tlog_generation()?,
            verifier_version: REPORT_VERIFIER_VERSION.to_owned(),
        };
        if let Some(stored) = self.stored_report(&key)? {
            return Ok(stored);
        }
        self.verify_and_index(&key, &trust, now)
    }

    /// Verifies a registered evidence bundle again, ignoring the stored-report index, then
    /// stores and indexes the report like a miss of [`Attestor::verify_evidence`]. The trust set
    /// must be valid at `now`.
    ///
    /// # Errors
    ///
    /// As [`Attestor::verify_evidence`], and FAILED_PRECONDITION with `ERR_TRUST_ROOT_EXPIRED`
    /// when the trust set is not valid at `now`.
    pub fn verify_evidence_again(&self, bundle_id: &str, now: i64) -> Result<EvidenceVerification, ServiceError> {
        self.require_registered(bundle_id)?;
        let trust = self.valid_trust_set(now)?;
        let key = ReportKey {
            bundle_id: bundle_id.to_owned(),
            trust_set_digest: trust.digest.clone(),
            tlog_generation: self.store.tlog_generation()?,
            verifier_version: REPORT_VERIFIER_VERSION.to_owned(),
        };
        self.verify_and_index(&key, &trust, now)
    }

    /// Verifies a just registered evidence bundle and indexes its report, so that the first
    /// VerifyEvidence finds it. Returns `None`, verifying nothing, when the tenant has no trust
    /// set or its trust set is not valid at `now`: the first VerifyEvidence verifies then.
    ///
    /// # Errors
    ///
    /// As [`Attestor::verify_evidence`].
    pub fn verify_registered(&self, bundle_id: &str, now: i64) -> Result<Option<EvidenceVerification>, ServiceError> {
        if self.store.current_trust_set()?.is_none() {
            return Ok(None);
        }
        if self.current_trust_set()?.check_valid_at(now).is_err() {
            return Ok(None);
        }
        self.verify_evidence(bundle_id, now).map(Some)
    }

    /// Verifies the evidence of `key` against `trust`, then stores and indexes the report.
    fn verify_and_index(
        &self,
        key: &ReportKey,
        trust: &TrustSet,
        now: i64,
    ) -> Result<EvidenceVerification, ServiceError> {
        let report = self.verify_stored_evidence(&key.bundle_id, trust, now)?;
        let verified = fresh_result(&report);
        self.store
            .put_indexed_report(key, &verified.report_digest, &verified.report_json)?;
        Ok(verified)
    }

    /// Returns the report indexed under `key`, or `None` when there is none or the stored bytes
    /// are not the report the index names. Such a damaged entry is logged and treated as a miss,
    /// so the caller verifies again instead of serving it.
    fn stored_report(&self, key: &ReportKey) -> Result<Option<EvidenceVerification>, ServiceError> {
        let Some(digest) = self.store.indexed_report_digest(key)? else {
            return Ok(None);
        };
        let Some(report_json) = self.store.report(&digest)? else {
            warn!(bundle_id = %key.bundle_id, report_digest = %digest, "indexed report is missing from the store; verifying again");
            return Ok(None);
        };
        let actual_digest = report_digest(&report_json);
        let report = serde_json::from_slice::<VerificationReport>(&report_json);
        let report = match report {
            Ok(report)
                if actual_digest == digest
                    && report.bundle_id == key.bundle_id
                    && report.trust_set_digest == key.trust_set_digest =>
            {
                report
            }
            _ => {
                warn!(bundle_id = %key.bundle_id, report_digest = %digest, %actual_digest, "indexed report does not match its index entry; verifying again");
                return Ok(None);
            }
        };
        Ok(Some(EvidenceVerification {
            report_digest: digest,
            outcome: outcome_text(report.outcome).to_owned(),
            reason_codes: sorted_codes(report.reason_codes.iter().copied()),
            report_json,
            from_store: true,
        }))
    }

    /// Verifies every Sigstore bundle of a registered evidence bundle against `trust` at `now`,
    /// with inclusion from the tile cache.
    fn verify_stored_evidence(
        &self,
        bundle_id: &str,
        trust: &TrustSet,
        now: i64,
    ) -> Result<VerificationReport, ServiceError> {
        let evidence = self.load_evidence(bundle_id)?;
        let cache = Cache::with_node_cache(&self.store, trust, &self.state.node_cache);

        let mut entries = BTreeMap::new();
        for (path, json) in &evidence.sigstore_bundles {
            let input = VerifyInput {
                bundle_json: json,
                trust,
                artifact: artifact_for(json, &evidence),
                now,
            };
            let entry = tracing::info_span!("attestor.verify_entry", bundle_id, entry_path = %path)
                .in_scope(|| verify_bundle_cached(&input, &cache, &self.state.verification_cache));
            cache.take_error()?;
            entries.insert(path.clone(), entry);
        }

        Ok(VerificationReport::new(&evidence.id, trust, entries))
    }

    /// Returns a stored report's JSON.
    ///
    /// # Errors
    ///
    /// NOT_FOUND with `ERR_EVIDENCE_NOT_FOUND` when no report has that digest.
    pub fn report(&self, report_digest: &str) -> Result<Vec<u8>, ServiceError> {
        self.store.report(report_digest)?.ok_or_else(|| {
            ServiceError::not_found(
                ReasonCode::EvidenceNotFound,
                format!("no verification report has digest {report_digest}; run VerifyEvidence first"),
            )
        })
    }

    /// Proves that `entry` is the leaf at `index` of log `origin`, from cached tiles or any
    /// cached tlog-proof of that leaf.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`.
    /// A missing or failing proof is not an error but a result with `included` false.
    pub fn verify_inclusion(
        &self,
        origin: &str,
        index: u64,
        entry: &[u8],
        now: i64,
    ) -> Result<InclusionResult, ServiceError> {
        let trust = self.valid_trust_set(now)?;
        self.verify_inclusion_with(&trust, origin, index, entry)
    }

    /// Returns the current trust set after checking that it is valid at `now`.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`.
    pub fn valid_trust_set(&self, now: i64) -> Result<Arc<TrustSet>, ServiceError> {
        let trust = self.current_trust_set()?;
        trust
            .check_valid_at(now)
            .map_err(|error| ServiceError::precondition(error.reason_code(), error.to_string()))?;
        Ok(trust)
    }

    /// Proves inclusion like [`Attestor::verify_inclusion`], against a trust set that the caller
    /// has already checked with [`Attestor::valid_trust_set`].
    ///
    /// # Errors
    ///
    /// Only internal errors (storage); a missing or failing proof is a result.
    pub fn verify_inclusion_with(
        &self,
        trust: &TrustSet,
        origin: &str,
        index: u64,
        entry: &[u8],
    ) -> Result<InclusionResult, ServiceError> {
        let result = self.prove_inclusion(trust, origin, index, entry)?;
        self.state.metrics().observe_inclusion(&result);
        Ok(result)
    }

    /// Proves inclusion for [`Attestor::verify_inclusion_with`], without counting the result.
    fn prove_inclusion(
        &self,
        trust: &TrustSet,
        origin: &str,
        index: u64,
        entry: &[u8],
    ) -> Result<InclusionResult, ServiceError> {
        let known_origin = trust
            .checkpoint_verifiers()
            .iter()
            .any(|verifier| verifier.name() == origin);
        if !known_origin {
            return Ok(InclusionResult {
                included: false,
                checkpoint: None,
                proof_source: String::new(),
                reason_codes: sorted_codes([ReasonCode::RekorLogUnknown]),
                detail: format!(
                    "no log with origin {origin} in trust root set version {}; import a trust root set that holds its key",
                    trust.version
                ),
            });
        }
        let cache = Cache::with_node_cache(&self.store, trust, &self.state.node_cache);

        let found = cache.inclusion_candidates(origin, index);
        cache.take_error()?;
        let candidates = match found {
            Ok(candidates) => candidates,
            Err(error) => {
                let detail = match &error {
                    InclusionLookupError::Missing { paths } => format!(
                        "no cached proof for {origin} index {index}; import a tile bundle with any of: {}",
                        paths.join(", ")
                    ),
                    other => format!("no usable cached proof for {origin} index {index}: {other}"),
                };
                return Ok(InclusionResult {
                    included: false,
                    checkpoint: None,
                    proof_source: String::new(),
                    reason_codes: sorted_codes([error.reason_code()]),
                    detail,
                });
            }
        };

        // The entry is included when any candidate proves it. Otherwise the first candidate's
        // failure is returned; the cache orders candidates by stored data only, so the result
        // is the same on every run.
        let leaf = merkle::leaf_hash(entry);
        let mut first_failure = None;
        for found in &candidates {
            let checkpoint = found.checkpoint.checkpoint();
            let summary = CheckpointSummary {
                origin: checkpoint.origin.clone(),
                tree_size: checkpoint.size,
                root_hash: BASE64.encode(checkpoint.root_hash),
            };
            let proof_source = proof_source_text(found.source).to_owned();
            match merkle::verify_inclusion(index, checkpoint.size, &leaf, &found.proof, &checkpoint.root_hash) {
                Ok(()) => {
                    return Ok(InclusionResult {
                        included: true,
                        detail: format!("entry {index} is included in {origin} at tree size {}", checkpoint.size),
                        checkpoint: Some(summary),
                        proof_source,
                        reason_codes: Vec::new(),
                    });
                }
                Err(error) => {
                    first_failure.get_or_insert_with(|| InclusionResult {
                        included: false,
                        detail: format!(
                            "entry {index} of {origin} is not proven at tree size {}: {error}",
                            checkpoint.size
                        ),
                        checkpoint: Some(summary),
                        proof_source,
                        reason_codes: sorted_codes([error.reason_code()]),
                    });
                }
            }
        }
        Ok(first_failure.unwrap_or_else(|| InclusionResult {
            included: false,
            checkpoint: None,
            proof_source: String::new(),
            reason_codes: sorted_codes([ReasonCode::RekorTileMissing]),
            detail: format!("no cached proof for {origin} index {index}"),
        }))
    }

    /// Returns the archive of a registered evidence bundle.
    ///
    /// # Errors
    ///
    /// NOT_FOUND with `ERR_EVIDENCE_NOT_FOUND` for an unknown bundle id.
    fn require_registered(&self, bundle_id: &str) -> Result<Vec<u8>, ServiceError> {
        self.store.evidence_archive(bundle_id)?.ok_or_else(|| {
            ServiceError::not_found(
                ReasonCode::EvidenceNotFound,
                format!(
                    "evidence bundle {bundle_id} is not registered; run `stella evidence verify --bundle FILE --offline` first"
                ),
            )
        })
    }

    fn load_evidence(&self, bundle_id: &str) -> Result<EvidenceBundle, ServiceError> {
        let archive = self.require_registered(bundle_id)?;
        let label = format!("stored evidence bundle {bundle_id}");
        let opened = open_evidence(&label, &archive, &self.state.limits)
            .map_err(|error| ServiceError::Internal(format!("cannot reopen {label}: {error}")))?;
        if opened.id != bundle_id {
            return Err(ServiceError::Internal(format!(
                "{label} now has id {}; the store was modified",
                opened.id
            )));
        }
        Ok(opened)
    }
}

/// Chooses the artifact digest a message signature is checked against: the manifest
/// subject whose digest the bundle signs, else the only subject. DSSE statements name
/// their subjects themselves.
fn artifact_for(bundle_json: &[u8], evidence: &EvidenceBundle) -> Artifact {
    let Ok(bundle) = parse_bundle(bundle_json) else {
        return Artifact::None;
    };
    let BundleContent::MessageSignature(message) = &bundle.content else {
        return Artifact::None;
    };
    let subject_digests: Vec<[u8; 32]> = evidence
        .subjects
        .iter()
        .filter_map(|subject| hex::decode(subject.sha256_hex()).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .collect();
    let signed = (message.digest.algorithm == HashAlgorithm::Sha2_256).then_some(message.digest.digest.as_slice());
    if let Some(matching) = subject_digests.iter().find(|digest| Some(digest.as_slice()) == signed) {
        return Artifact::Sha256(*matching);
    }
    match subject_digests.as_slice() {
        [only] => Artifact::Sha256(*only),
        _ => Artifact::None,
    }
}

/// Returns the proof source as VerifyInclusion spells it.
fn proof_source_text(source: ProofSource) -> &'static str {
    match source {
        ProofSource::Tiles => "tiles",
        ProofSource::TlogProof => "tlog-proof",
        ProofSource::Bundle => "bundle",
    }
}

/// Returns `sha256:<hex>` of canonical report JSON, as [`VerificationReport::digest`] computes it.
fn report_digest(report_json: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(report_json)))
}

/// Returns the response fields of a report that was just verified.
fn fresh_result(report: &VerificationReport) -> EvidenceVerification {
    let report_json = report.to_canonical_json();
    EvidenceVerification {
        report_digest: report_digest(&report_json),
        outcome: outcome_text(report.outcome).to_owned(),
        reason_codes: sorted_codes(report.reason_codes.iter().copied()),
        report_json,
        from_store: false,
    }
}

/// Returns the outcome as the report JSON spells it.
pub(crate) fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Verified => "verified",
        Outcome::Failed => "failed",
    }
}

pub(crate) fn sorted_codes(codes: impl IntoIterator<Item = ReasonCode>) -> Vec<String> {
    let mut strings: Vec<String> = codes.into_iter().map(|code| code.as_str().to_owned()).collect();
    strings.sort_unstable();
    strings.dedup();
    strings
}
