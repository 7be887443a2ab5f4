//! Imports of Rekor tile/proof bundles at a memory cost that does not grow with the log.
//!
//! Both import RPCs end here: ImportTiles with the archive in its request, ImportTilesStream with
//! the archive in a spool file ([`crate::spool`]). Under the store's import lock, an import runs
//! these phases, each logged at info level as `import phase` with `phase` and `file` fields:
//!
//! 1. `staging`: the archive is read with the streaming reader of `stella-bundle`, which checks
//!    every file against the manifest and hands over one file at a time. Hash tiles and entry
//!    bundles go to the `staging` column family ([`crate::store::Staging`]), while checkpoints
//!    and tlog-proof files, which are few and small, stay in memory up to
//!    [`MAX_HELD_BYTES`]. When the manifest digest has an import record, nothing is staged and
//!    re-importing is a no-op. The rest of the archive is still read and checked against the
//!    manifest, so a corrupted copy of an imported bundle is rejected.
//! 2. `verifying`: each log's checkpoint signature, its tile set (`verify_tile_set_from` over the
//!    staged tiles) and the split-view checks ([`crate::split_view`]), then the tlog-proofs, as
//!    the in-memory import always did.
//! 3. `committing`: the staged tiles are compared with the stored ones (other bytes under a
//!    stored path are a conflict that writes nothing), written in key order to one SST file and
//!    ingested into the `tiles` column family. Then one `WriteBatch` stores the checkpoints,
//!    tlog-proofs and the import record.
//! 4. `done`.
//!
//! The staged keys are deleted when the import ends, whatever the outcome, and at startup.
//!
//! # Before or after, never a mix
//!
//! rust-rocksdb 0.25 ingests SST files into one column family per call, so the tiles land
//! before the batch and a crash can fall between the two. An undo log closes that gap
//! (`store/undo.rs`): the keys the SST file adds (all absent before, which the import lock keeps
//! true) are recorded with a marker synced to disk before the ingestion, and the batch deletes
//! the record. A marker found at start-up means the batch was never written, and the listed
//! tiles are deleted before the attestor serves anything. If the batch fails while the attestor
//! runs, the import takes its tiles back at once. Between the ingestion and the batch no reader
//! can reach the new tiles either: proofs and split-view checks read tiles only through a stored
//! checkpoint, and the checkpoints arrive with the batch.
//!
//! # Memory
//!
//! The memory of an import does not depend on the number of tiles. It keeps one file's content
//! from the reader, a fixed number of tiles in the verifier, and the checkpoints and tlog-proofs
//! (at most [`MAX_HELD_BYTES`]). The RocksDB memtables and block cache have the fixed sizes set
//! in [`crate::store`]. The parsed manifest is the exception: it lists every file, about 150 bytes
//! per file, which is one file per 128 log entries.

mod staged;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::BufRead;

use stella_bundle::{BundleError, Flow, Limits, TilesHeader, TilesItem, TlogProofFile, read_tiles_streaming};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::verify_tile_set_from;
use tracing::{info, warn};

use crate::attestor::Attestor;
use crate::error::{ServiceError, escape_for_log};
use crate::imports::{TilesImport, check_proof_shape, summary_of, tiles_import_from_record, verify_named_checkpoint};
use crate::inconsistency::{CheckpointSource, RejectedImport};
use crate::split_view::{BundleLog, Incoming, Known};
use crate::spool::{SpooledArchive, too_large};
use crate::store::{ImportBatch, ImportRecord, ImportSummary, Staging, StoreError};
use staged::StagedLog;

/// Maximum bytes of checkpoint notes and tlog-proof files that one import keeps in memory.
pub const MAX_HELD_BYTES: u64 = 64 * 1024 * 1024;

/// Buffer size of the reader over a spool file.
const SPOOL_READ_BUFFER_BYTES: usize = 1024 * 1024;

/// Returns the limits for streamed archives of at most `max_archive_bytes`. The in-memory
/// defaults are scaled by the ratio of the archive sizes: four times the archive size of file
/// content, and entries in proportion. Memory does not follow these limits, because a streamed
/// import keeps one file at a time.
pub fn streamed_limits(max_archive_bytes: u64) -> Limits {
    let defaults = Limits::default();
    let ratio = max_archive_bytes
        .checked_div(stella_bundle::DEFAULT_MAX_ARCHIVE_BYTES)
        .unwrap_or(1)
        .max(1);
    Limits {
        max_archive_bytes,
        max_total_bytes: defaults.max_total_bytes.max(max_archive_bytes.saturating_mul(4)),
        max_file_bytes: defaults.max_file_bytes,
        max_entries: defaults.max_entries.saturating_mul(ratio),
    }
}

/// An import failure raised inside the reader's callbacks.
struct Failure(ServiceError);

impl From<BundleError> for Failure {
    fn from(error: BundleError) -> Self {
        Failure(ServiceError::from_coded(&error))
    }
}

impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Self {
        Failure(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure(ServiceError::from(error))
    }
}

/// Checkpoints, tlog-proofs and counts that the staging phase keeps in memory.
#[derive(Default)]
struct Staged {
    /// Checkpoint notes by log number.
    notes: BTreeMap<usize, Vec<u8>>,
    proofs: Vec<TlogProofFile>,
    held_bytes: u64,
    tiles: u64,
    entry_bundles: u64,
}

impl Staged {
    /// Counts `bytes` against [`MAX_HELD_BYTES`].
    fn hold(&mut self, file_name: &str, path: &str, bytes: usize) -> Result<(), ServiceError> {
        let length = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.held_bytes = self.held_bytes.saturating_add(length);
        if self.held_bytes > MAX_HELD_BYTES {
            return Err(ServiceError::invalid(
                ReasonCode::BundleTooLarge,
                format!(
                    "{file_name}: {path}: checkpoints and tlog-proof files total more than {MAX_HELD_BYTES} bytes, \
                     the most one import keeps in memory; split the tlog-proofs over several bundles"
                ),
            ));
        }
        Ok(())
    }
}

impl Attestor {
    /// Imports a Rekor tile/proof bundle whose whole archive is in `archive`, after
    /// authenticating every checkpoint, tile, entry bundle and tlog-proof checkpoint against the
    /// current trust set. Uses the limits of in-memory archives.
    ///
    /// # Errors
    ///
    /// - FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` or `ERR_TRUST_ROOT_EXPIRED`.
    /// - INVALID_ARGUMENT with the bundle's reason code, or `ERR_REKOR_CHECKPOINT_INVALID` naming
    ///   the checkpoint file.
    /// - INVALID_ARGUMENT with the tile set's code: `ERR_REKOR_TILE_INVALID`,
    ///   `ERR_REKOR_ROOT_MISMATCH` or `ERR_REKOR_TILE_MISSING`.
    /// - INVALID_ARGUMENT with `ERR_REKOR_PROOF_INVALID` for a tlog-proof that cannot belong to
    ///   its checkpoint.
    /// - `ERR_REKOR_CHECKPOINT_INCONSISTENT` for a checkpoint that contradicts a verified one of
    ///   its log. This rejection stores an inconsistency record, and nothing else.
    pub fn import_tiles(&self, file_name: &str, archive: &[u8], now: i64) -> Result<TilesImport, ServiceError> {
        let size = u64::try_from(archive.len()).unwrap_or(u64::MAX);
        let limits = self.state.limits;
        self.import_tiles_from(file_name, archive, size, &limits, now)
    }

    /// Imports a tile/proof bundle from its spool file, with the errors of
    /// [`Attestor::import_tiles`] and the limits of streamed archives.
    ///
    /// # Errors
    ///
    /// As [`Attestor::import_tiles`]; an internal error when the spool file cannot be read.
    pub fn import_tiles_spooled(&self, spooled: &SpooledArchive, now: i64) -> Result<TilesImport, ServiceError> {
        let file = spooled.open().map_err(|error| {
            ServiceError::Internal(format!(
                "cannot read the spool file {} of {}: {error}",
                spooled.path().display(),
                escape_for_log(&spooled.file_name)
            ))
        })?;
        let reader = std::io::BufReader::with_capacity(SPOOL_READ_BUFFER_BYTES, file);
        let limits = self.state.stream_limits;
        self.import_tiles_from(&spooled.file_name, reader, spooled.bytes, &limits, now)
    }

    fn import_tiles_from(
        &self,
        file_name: &str,
        reader: impl BufRead,
        size: u64,
        limits: &Limits,
        now: i64,
    ) -> Result<TilesImport, ServiceError> {
        let _guard = self.store.lock_imports();
        if size > limits.max_archive_bytes {
            return Err(too_large(file_name, size, limits.max_archive_bytes));
        }
        let logged_name = escape_for_log(file_name).to_string();
        let staging = self.store.begin_staging();

        let origins: RefCell<Vec<String>> = RefCell::new(Vec::new());
        let earlier: RefCell<Option<ImportRecord>> = RefCell::new(None);
        let mut staged = Staged::default();
        let read = read_tiles_streaming(
            file_name,
            reader,
            limits,
            |header: &TilesHeader| -> Result<Flow, Failure> {
                if let Some(record) = self.store.import_record(&header.digest)? {
                    *earlier.borrow_mut() = Some(record);
                    return Ok(Flow::Continue);
                }
                self.current_trust_set()?
                    .check_valid_at(now)
                    .map_err(|error| ServiceError::precondition(error.reason_code(), error.to_string()))?;
                *origins.borrow_mut() = header.logs.iter().map(|log| log.origin.clone()).collect();
                info!(phase = "staging", file = %logged_name, digest = %header.digest, "import phase");
                Ok(Flow::Continue)
            },
            |item: TilesItem<'_>| -> Result<(), Failure> {
                if earlier.borrow().is_some() {
                    return Ok(());
                }
                stage_item(file_name, &staging, &origins.borrow(), &mut staged, item)
            },
        );
        let header = read.map_err(|failure| failure.0)?;
        if let Some(record) = earlier.into_inner() {
            info!(phase = "done", file = %logged_name, digest = %record.digest, already_imported = true, "import phase");
            return tiles_import_from_record(&record, true);
        }

        info!(phase = "verifying", file = %logged_name, tiles = staged.tiles, entry_bundles = staged.entry_bundles, "import phase");
        let (record, batch) = self.verify_staged(file_name, &header, &staging, staged, now)?;

        info!(phase = "committing", file = %logged_name, "import phase");
        let written = staging.commit_tiles(self.state.spool.path(), &record.digest).map_err(|error| match error {
            StoreError::Conflict { what, key } => ServiceError::invalid(
                ReasonCode::RekorTileInvalid,
                format!("{file_name}: {what} {key} differs from the authenticated copy already stored"),
            ),
            other => ServiceError::from(other),
        })?;
        if let Err(error) = self.store.commit(batch) {
            // The tiles are ingested but the batch failed, so delete them now rather than at the
            // next start-up. The import lock is held, so no other import reads them meanwhile.
            if let Err(undo_error) = self.store.roll_back_interrupted_ingests() {
                warn!(error = %undo_error, "failed to roll back the tiles of a failed import; the next start-up rolls them back");
            }
            return Err(error.into());
        }
        info!(phase = "done", file = %logged_name, digest = %record.digest, tiles_written = written, already_imported = false, "import phase");
        tiles_import_from_record(&record, false)
    }

    /// Authenticates the staged bundle and builds its import record and batch (without the tiles,
    /// which stay staged).
    fn verify_staged(
        &self,
        file_name: &str,
        header: &TilesHeader,
        staging: &Staging<'_>,
        staged: Staged,
        now: i64,
    ) -> Result<(ImportRecord, ImportBatch), ServiceError> {
        let trust = self.current_trust_set()?;
        trust
            .check_valid_at(now)
            .map_err(|error| ServiceError::precondition(error.reason_code(), error.to_string()))?;
        let verifiers = trust.checkpoint_verifiers();
        let rejected = RejectedImport {
            file_name,
            digest: &header.digest,
            now,
        };

        let mut checkpoints = Vec::new();
        let mut pending: Vec<(String, u64, Vec<u8>)> = Vec::new();
        // The bundle's tile-verified checkpoint and staged tiles per origin (origins are unique in
        // a bundle), which its tlog-proofs are checked against together with the stored ones.
        let mut bundle_logs: BTreeMap<String, (Known, StagedLog<'_, '_>)> = BTreeMap::new();

        for (number, log) in header.logs.iter().enumerate() {
            let checkpoint_path = format!("{}/checkpoint", log.dir);
            let Some(note) = staged.notes.get(&number) else {
                return Err(ServiceError::Internal(format!(
                    "{}: the bundle reader accepted log {} without its checkpoint",
                    escape_for_log(file_name),
                    log.dir
                )));
            };
            let verified = verify_named_checkpoint(file_name, &checkpoint_path, note, &verifiers)?;
            let body = verified.checkpoint().clone();

            let tiles = StagedLog::new(staging, &log.origin);
            let checked = verify_tile_set_from(&verified, &tiles);
            tiles.take_error()?;
            checked.map_err(|error| {
                ServiceError::invalid(error.reason_code(), format!("{file_name}: {}: {error}", log.dir))
            })?;
            let incoming = Incoming {
                file_name,
                path: &checkpoint_path,
                checkpoint: &body,
                note,
            };
            self.check_tile_checkpoint(incoming, &tiles)
                .map_err(|failure| self.reject_import(&rejected, failure))?;
            let known = Known {
                checkpoint: body.clone(),
                note: note.clone(),
                source: CheckpointSource::TileVerified,
                bundle_path: Some(checkpoint_path.clone()),
            };
            checkpoints.push(summary_of(&body));
            pending.push((body.origin.clone(), body.size, note.clone()));
            bundle_logs.insert(body.origin.clone(), (known, tiles));
        }

        let mut proofs = Vec::new();
        // The first checkpoint of each (origin, tree size) among the bundle's tlog-proofs.
        let mut proof_checkpoints: BTreeMap<(String, u64), Known> = BTreeMap::new();
        for proof_file in &staged.proofs {
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
            let bundle_log = bundle_logs.get(&body.origin).map(|(known, tiles)| BundleLog {
                known,
                tiles: tiles as &dyn crate::split_view::FreshTiles,
            });
            let key = (body.origin.clone(), body.size);
            let incoming = Incoming {
                file_name,
                path: &proof_file.path,
                checkpoint: body,
                note: &proof_file.proof.checkpoint,
            };
            let checked = self.check_proof_checkpoint(incoming, bundle_log, proof_checkpoints.get(&key));
            if let Some((_, tiles)) = bundle_logs.get(&body.origin) {
                tiles.take_error()?;
            }
            checked.map_err(|failure| self.reject_import(&rejected, failure))?;
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
            tiles: staged.tiles,
            entry_bundles: staged.entry_bundles,
            proofs: u64::try_from(proofs.len()).unwrap_or(u64::MAX),
        };
        let record = ImportRecord {
            digest: header.digest.clone(),
            file_name: file_name.to_owned(),
            imported_at: now,
            summary,
        };
        let mut batch = ImportBatch::new(record.clone());
        for (origin, size, note) in pending {
            batch.put_checkpoint(&origin, size, note);
        }
        for (origin, index, data) in proofs {
            batch.put_tlog_proof(&origin, index, data);
        }
        for ((origin, size), known) in proof_checkpoints {
            batch.put_proof_checkpoint(&origin, size, known.note);
        }
        Ok((record, batch))
    }
}

/// Stages one file of the archive: tiles go to the staging column family, checkpoints and
/// tlog-proofs stay in memory.
fn stage_item(
    file_name: &str,
    staging: &Staging<'_>,
    origins: &[String],
    staged: &mut Staged,
    item: TilesItem<'_>,
) -> Result<(), Failure> {
    let origin_of = |log: usize, path: &str| {
        origins.get(log).ok_or_else(|| {
            ServiceError::Internal(format!(
                "{}: {path}: the bundle reader returned log {log}, which the manifest does not list",
                escape_for_log(file_name)
            ))
        })
    };
    match item {
        TilesItem::Checkpoint { log, path, content, .. } => {
            staged.hold(file_name, path, content.len())?;
            staged.notes.insert(log, content);
        }
        TilesItem::HashTile {
            log,
            path,
            tile_path,
            content,
            ..
        } => {
            staging.put(origin_of(log, path)?, tile_path, &content)?;
            staged.tiles = staged.tiles.saturating_add(1);
        }
        TilesItem::EntryBundle {
            log,
            path,
            tile_path,
            content,
            ..
        } => {
            staging.put(origin_of(log, path)?, tile_path, &content)?;
            staged.entry_bundles = staged.entry_bundles.saturating_add(1);
        }
        TilesItem::TlogProof(proof) => {
            staged.hold(file_name, &proof.path, proof.bytes.len())?;
            staged.proofs.push(proof);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_limits_scale_with_archive() {
        let limits = streamed_limits(16 * 1024 * 1024 * 1024);
        assert_eq!(limits.max_archive_bytes, 16 * 1024 * 1024 * 1024);
        assert_eq!(limits.max_total_bytes, 64 * 1024 * 1024 * 1024);
        assert_eq!(limits.max_entries, stella_bundle::DEFAULT_MAX_ENTRIES * 64);
        assert_eq!(limits.max_file_bytes, stella_bundle::DEFAULT_MAX_FILE_BYTES);
    }

    #[test]
    fn streamed_limits_never_below_defaults() {
        let limits = streamed_limits(1024);
        let defaults = Limits::default();
        assert_eq!(limits.max_archive_bytes, 1024);
        assert_eq!(limits.max_total_bytes, defaults.max_total_bytes);
        assert_eq!(limits.max_entries, defaults.max_entries);
    }
}
