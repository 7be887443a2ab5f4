//! Imports of offline bundles: trust root sets, Rekor tile/proof bundles and evidence
//! bundles.
//!
//! Each import opens the archive with `stella-bundle` (structure, sizes, file digests),
//! authenticates its content against the current trust set, and writes everything in one
//! RocksDB batch, so a rejected bundle leaves nothing behind. Re-importing a bundle with
//! the same manifest digest is a no-op that returns the first import's summary.
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

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_bundle::{open_evidence, open_tiles, open_trust_set};
use stella_verify::checkpoint::{Checkpoint, VerifiedCheckpoint, parse_checkpoint_body, verify_checkpoint};
use stella_verify::merkle::{self, Hash};
use stella_verify::note::{NoteVerifier, parse_note};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::verify_tile_set;

use crate::attestor::{Attestor, rfc3339};
use crate::error::ServiceError;
use crate::inconsistency::{CheckpointSource, RejectedImport};
use crate::split_view::{BundleLog, Incoming, Known};
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
        let opened = open_trust_set(file_name, archive, &self.limits).map_err(|e| ServiceError::from_coded(&e))?;

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

    /// Imports a Rekor tile/proof bundle after authenticating every checkpoint, tile,
    /// entry bundle and tlog-proof checkpoint against the current trust set.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`;
    /// INVALID_ARGUMENT with the bundle's reason code, `ERR_REKOR_CHECKPOINT_INVALID`
    /// naming the checkpoint file, the tile set's code (`ERR_REKOR_TILE_INVALID`,
    /// `ERR_REKOR_ROOT_MISMATCH`, `ERR_REKOR_TILE_MISSING`),
    /// `ERR_REKOR_PROOF_INVALID` for a tlog-proof that cannot belong to its checkpoint, or
    /// `ERR_REKOR_CHECKPOINT_INCONSISTENT` for a checkpoint that contradicts a verified one of
    /// its log. That last rejection stores an inconsistency record, and nothing else.
    pub fn import_tiles(&self, file_name: &str, archive: &[u8], now: i64) -> Result<TilesImport, ServiceError> {
        let _guard = self.store.lock_imports();
        let opened = open_tiles(file_name, archive, &self.limits).map_err(|e| ServiceError::from_coded(&e))?;

        if let Some(record) = self.store.import_record(&opened.digest)? {
            return tiles_import_from_record(&record, true);
        }

        let trust = self.current_trust_set()?;
        trust
            .check_valid_at(now)
            .map_err(|error| ServiceError::precondition(error.reason_code(), error.to_string()))?;
        let verifiers = trust.checkpoint_verifiers();
        let rejected = RejectedImport {
            file_name,
            digest: &opened.digest,
            now,
        };

        let mut checkpoints = Vec::new();
        let mut pending: Vec<(String, u64, Vec<u8>)> = Vec::new();
        let mut tiles: Vec<(String, String, Vec<u8>)> = Vec::new();
        let (mut tile_count, mut entry_bundle_count) = (0_u64, 0_u64);
        // The bundle's tile-verified checkpoint and tiles per origin (origins are unique in a
        // bundle), which its tlog-proofs are checked against together with the stored ones.
        let mut bundle_logs: BTreeMap<String, (Known, &BTreeMap<String, Vec<u8>>)> = BTreeMap::new();

        for log in &opened.logs {
            let checkpoint_path = format!("{}/checkpoint", log.dir);
            let verified = verify_named_checkpoint(file_name, &checkpoint_path, &log.checkpoint, &verifiers)?;
            let body = verified.checkpoint().clone();

            verify_tile_set(&verified, &log.tiles, &log.entry_bundles).map_err(|error| {
                ServiceError::invalid(error.reason_code(), format!("{file_name}: {}: {error}", log.dir))
            })?;
            let incoming = Incoming {
                file_name,
                path: &checkpoint_path,
                checkpoint: &body,
                note: &log.checkpoint,
            };
            self.check_tile_checkpoint(incoming, &log.tiles)
                .map_err(|failure| self.reject_import(&rejected, failure))?;
            let known = Known {
                checkpoint: body.clone(),
                note: log.checkpoint.clone(),
                source: CheckpointSource::TileVerified,
                bundle_path: Some(checkpoint_path.clone()),
            };
            bundle_logs.insert(body.origin.clone(), (known, &log.tiles));

            checkpoints.push(summary_of(&body));
            pending.push((body.origin.clone(), body.size, log.checkpoint.clone()));
            for (path, data) in &log.tiles {
                tiles.push((body.origin.clone(), path.clone(), data.clone()));
                tile_count = tile_count.saturating_add(1);
            }
            for (path, data) in &log.entry_bundles {
                tiles.push((body.origin.clone(), path.clone(), data.clone()));
                entry_bundle_count = entry_bundle_count.saturating_add(1);
            }
        }

        let mut proofs = Vec::new();
        // The first checkpoint of each (origin, tree size) among the bundle's tlog-proofs.
        let mut proof_checkpoints: BTreeMap<(String, u64), Known> = BTreeMap::new();
        for proof_file in &opened.tlog_proofs {
            let verified =
                verify_named_checkpoint(file_name, &proof_file.path, &proof_file.proof.checkpoint, &verifiers)?;
            let body = verified.checkpoint();
            check_proof_shape(
                file_name,
                &proof_file.path,
                proof_file.proof.index,
                body,
                &proof_file.proof.hashes,
            )?;
            let bundle_log = bundle_logs
                .get(&body.origin)
                .map(|(known, tiles)| BundleLog { known, tiles });
            let key = (body.origin.clone(), body.size);
            let incoming = Incoming {
                file_name,
                path: &proof_file.path,
                checkpoint: body,
                note: &proof_file.proof.checkpoint,
            };
            self.check_proof_checkpoint(incoming, bundle_log, proof_checkpoints.get(&key))
                .map_err(|failure| self.reject_import(&rejected, failure))?;
            checkpoints.push(summary_of(body));
            proofs.push((body.origin.clone(), proof_file.proof.index, proof_file.bytes.clone()));
            proof_checkpoints.entry(key).or_insert_with(|| Known {
                checkpoint: body.clone(),
                note: proof_file.proof.checkpoint.clone(),
                source: CheckpointSource::TlogProof,
                bundle_path: Some(proof_file.path.clone()),
            });
        }

        // Every verified checkpoint is listed once, whether it came with tiles or inside a tlog-proof.
        checkpoints.sort();
        checkpoints.dedup();
        let summary = ImportSummary::Tiles {
            checkpoints,
            tiles: tile_count,
            entry_bundles: entry_bundle_count,
            proofs: u64::try_from(proofs.len()).unwrap_or(u64::MAX),
        };
        let record = ImportRecord {
            digest: opened.digest.clone(),
            file_name: file_name.to_owned(),
            imported_at: now,
            summary,
        };
        let mut batch = ImportBatch::new(record.clone());
        for (origin, size, note) in pending {
            batch.put_checkpoint(&origin, size, note);
        }
        for (origin, path, data) in tiles {
            batch.put_tile(&origin, &path, data);
        }
        for (origin, index, data) in proofs {
            batch.put_tlog_proof(&origin, index, data);
        }
        for ((origin, size), known) in proof_checkpoints {
            batch.put_proof_checkpoint(&origin, size, known.note);
        }

        let outcome = self.store.commit(batch).map_err(|error| match error {
            crate::store::StoreError::Conflict { what, key } => ServiceError::invalid(
                ReasonCode::RekorTileInvalid,
                format!("{file_name}: {what} {key} differs from the authenticated copy already stored"),
            ),
            other => ServiceError::from(other),
        })?;
        tiles_import_from_record(&record, matches!(outcome, CommitOutcome::AlreadyImported(_)))
    }

    /// Registers an evidence bundle after checking its manifest and file digests. Its
    /// signatures are checked later, by VerifyEvidence.
    ///
    /// # Errors
    ///
    /// INVALID_ARGUMENT with the bundle's reason code when the archive is rejected.
    pub fn register_evidence(&self, file_name: &str, archive: &[u8], now: i64) -> Result<EvidenceImport, ServiceError> {
        let _guard = self.store.lock_imports();
        let opened = open_evidence(file_name, archive, &self.limits).map_err(|e| ServiceError::from_coded(&e))?;

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

fn verify_named_checkpoint(
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
fn check_proof_shape(
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

fn summary_of(checkpoint: &Checkpoint) -> CheckpointSummary {
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

fn tiles_import_from_record(record: &ImportRecord, already_imported: bool) -> Result<TilesImport, ServiceError> {
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
