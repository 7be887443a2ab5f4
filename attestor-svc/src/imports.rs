//! Imports of offline bundles: trust root sets, Rekor tile/proof bundles and evidence
//! bundles.
//!
//! Each import opens the archive with `stella-bundle` (structure, sizes, file digests),
//! authenticates its content against the current trust set, and writes everything in one
//! RocksDB batch, so a rejected bundle leaves nothing behind. Re-importing a bundle with
//! the same manifest digest is a no-op that returns the first import's summary. Tile imports
//! stream the archive through a staging area instead of opening it in memory
//! ([`crate::tile_import`]).
//!
//! Tile imports make the checks that c2sp.org/tlog-tiles requires of clients that cache
//! tiles. The checkpoint signature must verify, the root rebuilt from the right-edge tiles
//! must match it, every full tile must match its parent, and every entry bundle must match
//! its level-0 tile. Every new checkpoint, from a log directory or a tlog-proof file, is
//! then compared with the checkpoints already stored for its origin ([`crate::split_view`]),
//! so a log that shows two different trees is rejected at import. The evidence of that is kept
//! apart ([`crate::inconsistency`]).
//!
//! Imports run one at a time: each method holds the store's import lock from opening the
//! archive to writing its batch. Checks and commit therefore never interleave with another
//! import, and only one archive is expanded in memory at a time.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_bundle::{open_evidence, open_trust_set};
use stella_verify::checkpoint::{Checkpoint, VerifiedCheckpoint, parse_checkpoint_body, verify_checkpoint};
use stella_verify::merkle::{self, Hash};
use stella_verify::note::{NoteVerifier, parse_note};
use stella_verify::reason::{HasReasonCode, ReasonCode};

use crate::attestor::{Attestor, rfc3339};
use crate::error::ServiceError;
use crate::store::{CheckpointSummary, CommitOutcome, CurrentTrustSet, ImportBatch, ImportRecord, ImportSummary};

/// Result of a trust root set import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSetImport {
    pub digest: String,
    pub version: u64,
    /// RFC 3339 UTC.
    pub expires_at: String,
    pub already_imported: bool,
}

/// Result of a tile/proof bundle import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilesImport {
    pub digest: String,
    pub checkpoints: Vec<CheckpointSummary>,
    pub tiles: u64,
    pub entry_bundles: u64,
    pub proofs: u64,
    pub already_imported: bool,
}

/// Result of an evidence bundle registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceImport {
    pub bundle_id: String,
    pub sigstore_bundles: u64,
    pub already_registered: bool,
}

impl Attestor {
    /// Imports a trust root set and makes it current. The set must not be expired at
    /// `now`, and its version must be higher than the current set's. Importing the current
    /// set again changes nothing and reports it as already imported, unless it has expired.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT with the bundle's reason code when the archive is rejected, and
    /// `ERR_TRUST_ROOT_EXPIRED` when it has expired. FAILED_PRECONDITION with
    /// `ERR_TRUST_ROOT_INVALID` when its version does not exceed the current one, or when it
    /// was imported before and another set is current now, and with `ERR_TRUST_ROOT_EXPIRED`
    /// when it is the current set and has expired.
    pub fn import_trust_roots(
        &self,
        file_name: &str,
        archive: &[u8],
        now: i64,
    ) -> Result<TrustSetImport, ServiceError> {
        let _guard = self.store.lock_imports();
        let opened = open_trust_set(file_name, archive, &self.state.limits).map_err(|e| ServiceError::from_coded(&e))?;

        if let Some(record) = self.store.import_record(&opened.digest)? {
            let current = self.store.current_trust_set()?;
            return match current {
                Some(current) if current.digest != opened.digest => {
                    Err(superseded_trust_set(file_name, &record, &current))
                }
                _ => {
                    // "Already imported" would read as success for a set that no longer
                    // verifies anything.
                    opened.into_trust_set().check_valid_at(now).map_err(|error| {
                        ServiceError::precondition(
                            error.reason_code(),
                            format!(
                                "{file_name}: {error}; this is the current trust root set, so the attestor \
                                 verifies nothing until a set with a higher version and a later expiry is imported"
                            ),
                        )
                    })?;
                    trust_import_from_record(&record, true)
                }
            };
        }

        let trust = opened.into_trust_set();
        trust
            .check_valid_at(now)
            .map_err(|error| ServiceError::invalid(error.reason_code(), format!("{file_name}: {error}")))?;

        if let Some(current) = self.store.current_trust_set()?
            && trust.version <= current.version
        {
            return Err(ServiceError::precondition(
                ReasonCode::TrustRootInvalid,
                format!(
                    "{file_name}: version {} is not newer than the current trust root set version {} ({}); \
                     pack the new set with a higher --version",
                    trust.version, current.version, current.digest
                ),
            ));
        }

        let record = ImportRecord {
            digest: trust.digest.clone(),
            file_name: file_name.to_owned(),
            imported_at: now,
            summary: ImportSummary::TrustSet {
                version: trust.version,
                expires_at: trust.expires_at,
            },
        };
        let mut batch = ImportBatch::new(record.clone());
        batch.set_trust_set(
            CurrentTrustSet {
                digest: trust.digest.clone(),
                version: trust.version,
                expires_at: trust.expires_at,
            },
            archive.to_vec(),
        );
        let outcome = self.store.commit(batch)?;
        self.set_cached_trust_set(Arc::new(trust));
        trust_import_from_record(&record, matches!(outcome, CommitOutcome::AlreadyImported(_)))
    }

    /// Registers an evidence bundle after checking its manifest and file digests. Its
    /// signatures are checked later, by VerifyEvidence.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT with the bundle's reason code when the archive is rejected.
    pub fn register_evidence(&self, file_name: &str, archive: &[u8], now: i64) -> Result<EvidenceImport, ServiceError> {
        let _guard = self.store.lock_imports();
        let opened = open_evidence(file_name, archive, &self.state.limits).map_err(|e| ServiceError::from_coded(&e))?;

        let sigstore_bundles = u64::try_from(opened.sigstore_bundles.len()).unwrap_or(u64::MAX);
        let record = ImportRecord {
            digest: opened.id.clone(),
            file_name: file_name.to_owned(),
            imported_at: now,
            summary: ImportSummary::Evidence { sigstore_bundles },
        };
        let mut batch = ImportBatch::new(record);
        batch.put_evidence(&opened.id, archive.to_vec());
        let outcome = self.store.commit(batch)?;
        let already_registered = matches!(outcome, CommitOutcome::AlreadyImported(_));
        Ok(EvidenceImport {
            bundle_id: opened.id,
            sigstore_bundles,
            already_registered,
        })
    }
}

/// Parses the body of a stored checkpoint note without verifying its signatures.
pub(crate) fn parse_stored_checkpoint(note: &[u8]) -> Result<Checkpoint, String> {
    let parsed = parse_note(note).map_err(|error| error.to_string())?;
    parse_checkpoint_body(&parsed.text).map_err(|error| error.to_string())
}

pub(crate) fn verify_named_checkpoint(
    file_name: &str,
    path: &str,
    note: &[u8],
    verifiers: &[NoteVerifier],
) -> Result<VerifiedCheckpoint, ServiceError> {
    verify_checkpoint(note, verifiers).map_err(|error| {
        ServiceError::invalid(
            ReasonCode::RekorCheckpointInvalid,
            format!("{file_name}: {path}: {error}"),
        )
    })
}

/// Checks that a tlog-proof's index and hash count fit its checkpoint's tree size. The
/// leaf is unknown until an entry is verified, so the hashes themselves are checked then.
pub(crate) fn check_proof_shape(
    file_name: &str,
    path: &str,
    index: u64,
    checkpoint: &Checkpoint,
    hashes: &[Hash],
) -> Result<(), ServiceError> {
    let any_leaf: Hash = [0; 32];
    merkle::root_from_inclusion(index, checkpoint.size, &any_leaf, hashes)
        .map(|_| ())
        .map_err(|error| ServiceError::invalid(error.reason_code(), format!("{file_name}: {path}: {error}")))
}

/// Rejects re-importing a trust root set that another set has replaced: making it current
/// again would roll back the trust roots, and "already imported" would hide that it is not in
/// use.
fn superseded_trust_set(file_name: &str, record: &ImportRecord, current: &CurrentTrustSet) -> ServiceError {
    let version = match &record.summary {
        ImportSummary::TrustSet { version, .. } => version.to_string(),
        other => format!("unknown ({:?} import)", other.kind()),
    };
    ServiceError::precondition(
        ReasonCode::TrustRootInvalid,
        format!(
            "{file_name}: trust root set {} (version {version}) was imported before, but the current set is \
             version {} ({}); a replaced set cannot be made current again, so pack a new set with a version above {}",
            record.digest, current.version, current.digest, current.version
        ),
    )
}

pub(crate) fn summary_of(checkpoint: &Checkpoint) -> CheckpointSummary {
    CheckpointSummary {
        origin: checkpoint.origin.clone(),
        tree_size: checkpoint.size,
        root_hash: BASE64.encode(checkpoint.root_hash),
    }
}

fn trust_import_from_record(record: &ImportRecord, already_imported: bool) -> Result<TrustSetImport, ServiceError> {
    match &record.summary {
        ImportSummary::TrustSet { version, expires_at } => Ok(TrustSetImport {
            digest: record.digest.clone(),
            version: *version,
            expires_at: rfc3339(*expires_at),
            already_imported,
        }),
        other => Err(mismatched_kind(record, other)),
    }
}

pub(crate) fn tiles_import_from_record(record: &ImportRecord, already_imported: bool) -> Result<TilesImport, ServiceError> {
    match &record.summary {
        ImportSummary::Tiles {
            checkpoints,
            tiles,
            entry_bundles,
            proofs,
        } => Ok(TilesImport {
            digest: record.digest.clone(),
            checkpoints: checkpoints.clone(),
            tiles: *tiles,
            entry_bundles: *entry_bundles,
            proofs: *proofs,
            already_imported,
        }),
        other => Err(mismatched_kind(record, other)),
    }
}

fn mismatched_kind(record: &ImportRecord, summary: &ImportSummary) -> ServiceError {
    ServiceError::Internal(format!(
        "digest {} is recorded as a {:?} import",
        record.digest,
        summary.kind()
    ))
}
