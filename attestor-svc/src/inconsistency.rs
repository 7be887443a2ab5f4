//! Evidence of split views, and the per-log listing of stored checkpoints behind
//! `ListCheckpoints`.
//!
//! When an import brings a verified checkpoint that contradicts one the attestor already trusts
//! ([`crate::split_view`]), the import is rejected with `ERR_REKOR_CHECKPOINT_INCONSISTENT` and
//! nothing of its bundle is stored. The attestor then writes one inconsistency record, in its own
//! write batch and its own column family, because the record is evidence and not cache state. It
//! contains the rejected bundle's file name and digest, both checkpoint notes verbatim, their tree
//! sizes and roots, the consistency proof or the root that the tiles give, and the time. A third
//! party can check the split view from the record alone: two notes signed by the same log key,
//! whose roots or proof show that neither tree is a prefix of the other.
//!
//! Records are bounded: at most [`MAX_RECORDS_PER_ORIGIN`] per origin. Further ones are counted but
//! not stored, so the first evidence is never pushed out. Only a checkpoint signed by a log key of
//! the trust set can cause a record, so the number of origins is bounded by the trust set, and only
//! a log that signs forks (or whoever holds its key) can fill its quota. Importing the same bundle
//! again adds no second record, because the record id is a digest of the bundle digest and both
//! notes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use stella_verify::merkle::Hash;
use stella_verify::reason::ReasonCode;
use tracing::{error, warn};

use crate::attestor::Attestor;
use crate::error::{ServiceError, escape_for_log};
use crate::split_view::Known;
use crate::store::{EvidenceOutcome, StoreError};

/// Maximum number of inconsistency records kept per log origin.
pub const MAX_RECORDS_PER_ORIGIN: usize = 1000;

/// Source of a checkpoint: a tile bundle's log directory, or a tlog-proof file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointSource {
    TileVerified,
    TlogProof,
}

impl CheckpointSource {
    /// Returns the spelling used in messages and in the API: `tile-verified` or `tlog-proof`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointSource::TileVerified => "tile-verified",
            CheckpointSource::TlogProof => "tlog-proof",
        }
    }
}

/// Kind of contradiction between two verified checkpoints of one log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconsistencyKind {
    /// Equal tree sizes with different roots.
    SameSize,
    /// The consistency proof built from the tiles does not lead from the smaller tree's root to
    /// the larger tree's root.
    ConsistencyProof,
    /// The tiles of a tile-verified checkpoint give another root for the other checkpoint's tree
    /// size than that checkpoint's own root.
    TileRoot,
}

impl InconsistencyKind {
    /// Returns the spelling used in the API: `same_size`, `consistency_proof` or `tile_root`.
    pub fn as_str(self) -> &'static str {
        match self {
            InconsistencyKind::SameSize => "same_size",
            InconsistencyKind::ConsistencyProof => "consistency_proof",
            InconsistencyKind::TileRoot => "tile_root",
        }
    }
}

/// One of the two checkpoints of an inconsistency record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceCheckpoint {
    pub source: CheckpointSource,
    /// Path inside the rejected bundle; `None` for a checkpoint that was already stored.
    pub bundle_path: Option<String>,
    pub tree_size: u64,
    /// Standard base64, as in the checkpoint body.
    pub root_hash: String,
    /// The signed note, verbatim.
    pub note: String,
}

impl EvidenceCheckpoint {
    fn from_known(known: &Known) -> Self {
        EvidenceCheckpoint {
            source: known.source,
            bundle_path: known.bundle_path.clone(),
            tree_size: known.checkpoint.size,
            root_hash: BASE64.encode(known.checkpoint.root_hash),
            // Notes are UTF-8, or they would not have verified.
            note: String::from_utf8_lossy(&known.note).into_owned(),
        }
    }
}

/// The stored evidence of one rejected checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InconsistencyRecord {
    /// Lowercase hex SHA-256 of the bundle digest and both notes.
    pub id: String,
    /// Unix seconds.
    pub recorded_at: i64,
    pub bundle_file_name: String,
    /// "sha256:<hex>" of the rejected bundle's manifest.
    pub bundle_digest: String,
    pub origin: String,
    pub kind: InconsistencyKind,
    /// The checkpoint of the rejected bundle.
    pub rejected: EvidenceCheckpoint,
    /// The checkpoint it contradicts: a stored one, or one met earlier in the same bundle.
    pub conflicting: EvidenceCheckpoint,
    /// Base64 hashes of the RFC 6962 consistency proof from the smaller to the larger tree, as the
    /// tiles give it. Empty for equal sizes, and when the tiles could not give the proof.
    pub proof: Vec<String>,
    /// Base64 root of the smaller tree size as the larger tree's tiles give it, when computed.
    pub tile_root_hash: Option<String>,
    /// The rejection message.
    pub detail: String,
}

/// A split view found while checking an import, before it is recorded.
#[derive(Debug)]
pub(crate) struct Finding {
    pub kind: InconsistencyKind,
    pub rejected: Known,
    pub conflicting: Known,
    pub proof: Vec<Hash>,
    pub tile_root: Option<Hash>,
    /// "<file>: <path>: origin ...", without the reason code.
    pub message: String,
}

/// Failure of the checks of one checkpoint of an import.
#[derive(Debug)]
pub(crate) enum CheckFailure {
    /// Any failure other than a split view, with its own reason code.
    Rejected(ServiceError),
    /// The checkpoint contradicts a verified one: `ERR_REKOR_CHECKPOINT_INCONSISTENT` and a record.
    Inconsistent(Box<Finding>),
}

impl From<ServiceError> for CheckFailure {
    fn from(error: ServiceError) -> Self {
        CheckFailure::Rejected(error)
    }
}

impl From<StoreError> for CheckFailure {
    fn from(error: StoreError) -> Self {
        CheckFailure::Rejected(ServiceError::from(error))
    }
}

/// The rejected import that a finding belongs to.
pub(crate) struct RejectedImport<'a> {
    pub file_name: &'a str,
    pub digest: &'a str,
    /// Unix seconds.
    pub now: i64,
}

impl Attestor {
    /// Turns a failed check of an import into the import's error. A split view is first
    /// recorded as evidence ([`InconsistencyRecord`]); the import itself writes nothing.
    ///
    /// Call it with the import lock held.
    pub(crate) fn reject_import(&self, import: &RejectedImport<'_>, failure: CheckFailure) -> ServiceError {
        let finding = match failure {
            CheckFailure::Rejected(error) => return error,
            CheckFailure::Inconsistent(finding) => *finding,
        };
        let record = record_of(import, &finding);
        let stored = serde_json::to_vec(&record)
            .map_err(|error| StoreError::Corrupt {
                what: "inconsistency record",
                key: record.id.clone(),
                why: error.to_string(),
            })
            .and_then(|bytes| {
                self.store
                    .put_inconsistency(&record.origin, &record.id, &bytes, MAX_RECORDS_PER_ORIGIN)
            });

        let outcome = match stored {
            Ok(EvidenceOutcome::Stored | EvidenceOutcome::AlreadyStored) => {
                warn!(
                    origin = %escape_for_log(&record.origin),
                    record_id = %record.id,
                    file_name = %escape_for_log(&record.bundle_file_name),
                    kind = record.kind.as_str(),
                    "split view detected, evidence stored"
                );
                format!(
                    "the evidence is stored as inconsistency record {}, which `stella rekor checkpoints` shows",
                    record.id
                )
            }
            Ok(EvidenceOutcome::LimitReached { not_recorded }) => {
                warn!(
                    origin = %escape_for_log(&record.origin),
                    record_id = %record.id,
                    not_recorded,
                    "split view detected, evidence not stored: the origin has reached its record limit"
                );
                format!(
                    "the evidence was not stored, because origin {:?} already holds {MAX_RECORDS_PER_ORIGIN} \
                     inconsistency records ({not_recorded} more not stored)",
                    record.origin
                )
            }
            Err(store_error) => {
                error!(
                    origin = %escape_for_log(&record.origin),
                    record_id = %record.id,
                    error = %store_error,
                    "cannot store split-view evidence"
                );
                "the evidence could not be stored; see the attestor log".to_owned()
            }
        };
        ServiceError::invalid(
            ReasonCode::RekorCheckpointInconsistent,
            format!("{}; {outcome}", finding.message),
        )
    }
}

fn record_of(import: &RejectedImport<'_>, finding: &Finding) -> InconsistencyRecord {
    let rejected = EvidenceCheckpoint::from_known(&finding.rejected);
    let conflicting = EvidenceCheckpoint::from_known(&finding.conflicting);
    InconsistencyRecord {
        id: record_id(import.digest, &rejected, &conflicting),
        recorded_at: import.now,
        bundle_file_name: import.file_name.to_owned(),
        bundle_digest: import.digest.to_owned(),
        origin: finding.rejected.checkpoint.origin.clone(),
        kind: finding.kind,
        rejected,
        conflicting,
        proof: finding.proof.iter().map(|hash| BASE64.encode(hash)).collect(),
        tile_root_hash: finding.tile_root.map(|hash| BASE64.encode(hash)),
        detail: finding.message.clone(),
    }
}

/// Hashes the bundle digest, then path and note of each checkpoint, each field prefixed with
/// its length so that no two field lists give the same input.
fn record_id(digest: &str, rejected: &EvidenceCheckpoint, conflicting: &EvidenceCheckpoint) -> String {
    let mut hasher = Sha256::new();
    let fields = [
        digest,
        rejected.bundle_path.as_deref().unwrap_or_default(),
        &rejected.note,
        conflicting.bundle_path.as_deref().unwrap_or_default(),
        &conflicting.note,
    ];
    for field in fields {
        let length = u64::try_from(field.len()).unwrap_or(u64::MAX);
        hasher.update(length.to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A stored checkpoint in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCheckpoint {
    pub tree_size: u64,
    /// Standard base64.
    pub root_hash: String,
    /// True for the largest tile-verified checkpoint: the tree that new checkpoints must extend.
    pub newest: bool,
}

/// Stored checkpoints and inconsistency records of one log origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCheckpoints {
    pub origin: String,
    /// Tile-verified checkpoints, largest tree size first.
    pub checkpoints: Vec<ListedCheckpoint>,
    /// Checkpoints of imported tlog-proof files, largest tree size first.
    pub proof_checkpoints: Vec<ListedCheckpoint>,
    /// Oldest first, then by id.
    pub inconsistencies: Vec<InconsistencyRecord>,
    /// Records not stored because the origin had reached [`MAX_RECORDS_PER_ORIGIN`].
    pub inconsistencies_not_recorded: u64,
}

impl Attestor {
    /// Lists the stored checkpoints and inconsistency records of `origin`, or of every origin
    /// with anything stored, sorted by origin. An origin with nothing stored is left out.
    ///
    /// # Errors
    ///
    /// An internal error when the store fails or a stored note or record no longer parses.
    pub fn list_checkpoints(&self, origin: Option<&str>) -> Result<Vec<LogCheckpoints>, ServiceError> {
        let origins = match origin {
            Some(origin) => vec![origin.to_owned()],
            None => self.store.origins()?,
        };
        let mut logs = Vec::new();
        for origin in origins {
            let log = self.log_checkpoints(&origin)?;
            let empty = log.checkpoints.is_empty()
                && log.proof_checkpoints.is_empty()
                && log.inconsistencies.is_empty()
                && log.inconsistencies_not_recorded == 0;
            if !empty {
                logs.push(log);
            }
        }
        Ok(logs)
    }

    fn log_checkpoints(&self, origin: &str) -> Result<LogCheckpoints, ServiceError> {
        let listed = |known: Vec<Known>, mark_newest: bool| -> Vec<ListedCheckpoint> {
            known
                .iter()
                .enumerate()
                .map(|(position, known)| ListedCheckpoint {
                    tree_size: known.checkpoint.size,
                    root_hash: BASE64.encode(known.checkpoint.root_hash),
                    newest: mark_newest && position == 0,
                })
                .collect()
        };
        let checkpoints = listed(self.stored_known(origin, CheckpointSource::TileVerified)?, true);
        let proof_checkpoints = listed(self.stored_known(origin, CheckpointSource::TlogProof)?, false);

        let mut inconsistencies = self
            .store
            .inconsistencies(origin)?
            .iter()
            .map(|bytes| {
                serde_json::from_slice::<InconsistencyRecord>(bytes).map_err(|error| {
                    ServiceError::Internal(format!("stored inconsistency record of {origin} is corrupt: {error}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        inconsistencies.sort_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then_with(|| a.id.cmp(&b.id)));

        Ok(LogCheckpoints {
            origin: origin.to_owned(),
            checkpoints,
            proof_checkpoints,
            inconsistencies,
            inconsistencies_not_recorded: self.store.inconsistencies_not_recorded(origin)?,
        })
    }
}
