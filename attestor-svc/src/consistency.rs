//! ProveConsistency: the RFC 6962 consistency proof between two stored tile-verified
//! checkpoints of one log.
//!
//! The proof is built from the cached tiles of the newer checkpoint (through the shared node
//! cache) and verified against the roots of both checkpoints, each verified again against the
//! current trust set. Imports already check every new checkpoint against its nearest stored
//! neighbours, so this RPC lets an auditor get and check the proof between any two of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_proto::attestor::v1 as pb;
use stella_verify::checkpoint::VerifiedCheckpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{TileError, consistency_proof_from_tiles};
use tracing::warn;

use crate::attestor::Attestor;
use crate::cache::Cache;
use crate::error::ServiceError;
use crate::store::CheckpointSummary;
use crate::verification::sorted_codes;

/// Stored sizes named in a NOT_FOUND message, largest first; more are counted, not listed.
const LISTED_SIZES: usize = 20;

/// Result of ProveConsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyResult {
    /// True when the proof verifies against both roots.
    pub consistent: bool,
    /// The stored checkpoint of the old size; `None` when the log is unknown.
    pub old_checkpoint: Option<CheckpointSummary>,
    /// The stored checkpoint of the new size; `None` when the log is unknown.
    pub new_checkpoint: Option<CheckpointSummary>,
    /// The consistency proof; empty for equal sizes or when the tiles could not give it.
    pub proof: Vec<Hash>,
    /// Sorted reason code spellings; empty when consistent.
    pub reason_codes: Vec<String>,
    pub detail: String,
    /// Tiles the proof needs and the cache lacks, as `<origin>/tile/...`.
    pub missing_tiles: Vec<String>,
}

impl ConsistencyResult {
    fn failed(reason: ReasonCode, detail: String) -> ConsistencyResult {
        ConsistencyResult {
            consistent: false,
            old_checkpoint: None,
            new_checkpoint: None,
            proof: Vec::new(),
            reason_codes: sorted_codes([reason]),
            detail,
            missing_tiles: Vec::new(),
        }
    }
}

impl Attestor {
    /// Proves that the stored tile-verified checkpoint of `new_size` extends the one of
    /// `old_size`, both of log `origin`.
    ///
    /// # Errors
    ///
    /// - INVALID_ARGUMENT for an empty origin (`ERR_REKOR_LOG_UNKNOWN`) or sizes outside
    ///   `0 < old_size <= new_size` (`ERR_REKOR_PROOF_INVALID`).
    /// - FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`.
    /// - NOT_FOUND with `ERR_REKOR_TILE_MISSING` when a size is not a stored checkpoint of the
    ///   origin.
    /// - An internal error when the store fails.
    ///
    /// A proof that is missing tiles or does not verify is a result with `consistent` false.
    pub fn prove_consistency(
        &self,
        origin: &str,
        old_size: u64,
        new_size: u64,
        now: i64,
    ) -> Result<ConsistencyResult, ServiceError> {
        if origin.is_empty() {
            return Err(ServiceError::invalid(
                ReasonCode::RekorLogUnknown,
                "the origin is empty; give the log origin as on the first line of its checkpoint",
            ));
        }
        if old_size == 0 || old_size > new_size {
            return Err(ServiceError::invalid(
                ReasonCode::RekorProofInvalid,
                format!(
                    "invalid tree sizes: old size {old_size}, new size {new_size}; a consistency proof needs \
                     0 < old size <= new size"
                ),
            ));
        }
        let trust = self.valid_trust_set(now)?;
        let known_origin = trust
            .checkpoint_verifiers()
            .iter()
            .any(|verifier| verifier.name() == origin);
        if !known_origin {
            return Ok(ConsistencyResult::failed(
                ReasonCode::RekorLogUnknown,
                format!(
                    "no log with origin {origin} in trust root set version {}; import a trust root set that holds its key",
                    trust.version
                ),
            ));
        }

        let cache = Cache::with_node_cache(&self.store, &trust, &self.state.node_cache);
        if let Some(detail) = cache.split_view_detail(origin)? {
            return Ok(ConsistencyResult::failed(ReasonCode::RekorCheckpointInconsistent, detail));
        }

        let old_note = stored_note(&cache, origin, old_size)?;
        let new_note = stored_note(&cache, origin, new_size)?;
        let old = match verified(&cache, origin, old_size, &old_note) {
            Ok(checkpoint) => checkpoint,
            Err(failure) => return Ok(*failure),
        };
        let new = match verified(&cache, origin, new_size, &new_note) {
            Ok(checkpoint) => checkpoint,
            Err(failure) => return Ok(*failure),
        };
        let old_checkpoint = old.checkpoint();
        let new_checkpoint = new.checkpoint();

        let built = cache.with_tiles(origin, |tiles| consistency_proof_from_tiles(old_size, new_size, tiles));
        cache.take_error()?;
        let mut result = ConsistencyResult {
            consistent: false,
            old_checkpoint: Some(summary(old_checkpoint.origin.as_str(), old_size, &old_checkpoint.root_hash)),
            new_checkpoint: Some(summary(new_checkpoint.origin.as_str(), new_size, &new_checkpoint.root_hash)),
            proof: Vec::new(),
            reason_codes: Vec::new(),
            detail: String::new(),
            missing_tiles: Vec::new(),
        };
        let proof = match built {
            Ok(proof) => proof,
            // Proof builders list every absent tile, so `paths` is never cut here.
            Err(TileError::Missing { paths, .. }) => {
                result.missing_tiles = paths.iter().map(|path| format!("{origin}/{path}")).collect();
                result.reason_codes = sorted_codes([ReasonCode::RekorTileMissing]);
                result.detail = format!(
                    "the cache lacks tiles of tree size {new_size} needed to prove consistency with tree size \
                     {old_size}; import a tile bundle with: {}",
                    result.missing_tiles.join(", ")
                );
                return Ok(result);
            }
            Err(error) => {
                result.reason_codes = sorted_codes([error.reason_code()]);
                result.detail = format!(
                    "the cached tiles of tree size {new_size} do not give a consistency proof from tree size \
                     {old_size}: {error}"
                );
                return Ok(result);
            }
        };

        let checked = merkle::verify_consistency(
            old_size,
            new_size,
            &proof,
            &old_checkpoint.root_hash,
            &new_checkpoint.root_hash,
        );
        result.proof = proof;
        match checked {
            Ok(()) => {
                result.consistent = true;
                result.detail = format!("tree size {new_size} of {origin} is consistent with tree size {old_size}");
            }
            Err(error) => {
                // Imports check each checkpoint against its stored neighbours, so this points to
                // a store that was changed outside the attestor.
                warn!(origin = %origin, old_size, new_size, error = %error, "stored checkpoints are not consistent");
                result.reason_codes = sorted_codes([error.reason_code()]);
                result.detail = format!(
                    "the proof from the cached tiles does not verify between tree sizes {old_size} and {new_size} \
                     of {origin}: {error}"
                );
            }
        }
        Ok(result)
    }
}

/// Returns the stored tile-verified checkpoint note of (origin, size).
///
/// # Errors
///
/// NOT_FOUND with `ERR_REKOR_TILE_MISSING`, listing the stored sizes, when there is none.
fn stored_note(cache: &Cache<'_>, origin: &str, size: u64) -> Result<Vec<u8>, ServiceError> {
    let store = cache.store();
    if let Some(note) = store.checkpoint(origin, size)? {
        return Ok(note);
    }
    let sizes: Vec<u64> = store
        .checkpoints_newest_first(origin)?
        .into_iter()
        .map(|(stored_size, _)| stored_size)
        .collect();
    let stored = if sizes.is_empty() {
        "none".to_owned()
    } else {
        let mut listed: Vec<String> = sizes.iter().take(LISTED_SIZES).map(u64::to_string).collect();
        if sizes.len() > LISTED_SIZES {
            listed.push(format!("and {} more", sizes.len().saturating_sub(LISTED_SIZES)));
        }
        listed.join(", ")
    };
    Err(ServiceError::not_found(
        ReasonCode::RekorTileMissing,
        format!(
            "no tile-verified checkpoint of {origin} with tree size {size} is stored (stored sizes: {stored}); \
             import a tile bundle with that checkpoint, or use a stored size"
        ),
    ))
}

/// Verifies a stored checkpoint against the current trust set, or returns the failed result.
fn verified(
    cache: &Cache<'_>,
    origin: &str,
    size: u64,
    note: &[u8],
) -> Result<VerifiedCheckpoint, Box<ConsistencyResult>> {
    let found = cache.verify_checkpoint(note).filter(|checkpoint| {
        let checkpoint = checkpoint.checkpoint();
        checkpoint.origin == origin && checkpoint.size == size
    });
    found.ok_or_else(|| {
        Box::new(ConsistencyResult::failed(
            ReasonCode::RekorCheckpointInvalid,
            format!(
                "the stored checkpoint of {origin} with tree size {size} no longer verifies under the current trust \
                 root set; import a trust root set that holds the log's key"
            ),
        ))
    })
}

fn summary(origin: &str, size: u64, root_hash: &Hash) -> CheckpointSummary {
    CheckpointSummary {
        origin: origin.to_owned(),
        tree_size: size,
        root_hash: BASE64.encode(root_hash),
    }
}

/// Converts a result to its gRPC response.
pub fn response(result: ConsistencyResult) -> pb::ProveConsistencyResponse {
    let checkpoint_ref = |summary: CheckpointSummary| pb::CheckpointRef {
        origin: summary.origin,
        tree_size: summary.tree_size,
        root_hash: summary.root_hash,
    };
    pb::ProveConsistencyResponse {
        consistent: result.consistent,
        old_checkpoint: result.old_checkpoint.map(checkpoint_ref),
        new_checkpoint: result.new_checkpoint.map(checkpoint_ref),
        proof: result.proof.iter().map(|hash| BASE64.encode(hash)).collect(),
        reason_codes: result.reason_codes,
        detail: result.detail,
        missing_tiles: result.missing_tiles,
    }
}
