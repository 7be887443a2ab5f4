//! Split-view detection at import: a log must never show this attestor two different trees.
//!
//! A log shows a split view when it signs checkpoints of trees that are not prefixes of each
//! other, for example one view for the auditors and a forked one that contains a forged entry. The
//! attestor stores two kinds of checkpoints per origin and compares every new checkpoint with
//! both before an import is written:
//!
//! - tile-verified checkpoints, whose tiles are stored. A new one must have the stored root for
//!   an equal size, and be consistent with the nearest smaller and larger ones (RFC 6962
//!   consistency proofs computed from the new and stored tiles).
//! - tlog-proof checkpoints, which arrive inside tlog-proof files without tiles.
//!
//! Every tlog-proof checkpoint of size N is compared with the tiles when the origin has any:
//! with S the largest tile-verified size, N <= S needs the root that the stored tiles give for
//! size N, and N > S is rejected with the tiles that would prove it. A tile import of size T
//! likewise needs, for every stored tlog-proof checkpoint of size N <= T, the root the tiles give
//! for N. Two checkpoints of one size must always have the same root.
//!
//! A contradiction between two verified checkpoints is returned as a [`Finding`], which the
//! import turns into `ERR_REKOR_CHECKPOINT_INCONSISTENT` and an inconsistency record
//! ([`crate::inconsistency`]). Other failures, such as tiles that are missing for a comparison,
//! keep their own reason codes and leave no record.
//!
//! Left out: an origin without tiles (tlog-proofs only) can only be checked for equal sizes,
//! because a consistency proof between two sizes needs the tiles or a consistency proof file,
//! and tlog-proof files carry neither. `docs/security.md` states this limit.

mod overlay;

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{
    TileError, TileId, TileSource, consistency_proof_from_tiles, root_from_tiles, tiles_for_consistency,
    tiles_for_inclusion,
};

use crate::attestor::Attestor;
use crate::cache::{OriginTiles, StoreErrorSlot};
use crate::error::ServiceError;
use crate::imports::parse_stored_checkpoint;
use crate::inconsistency::{CheckFailure, CheckpointSource, Finding, InconsistencyKind};
pub(crate) use overlay::{FreshTiles, NoFreshTiles};
use overlay::FreshOverStored;

/// A checkpoint of the bundle being imported, with its note and its path inside the bundle.
#[derive(Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub file_name: &'a str,
    pub path: &'a str,
    pub checkpoint: &'a Checkpoint,
    pub note: &'a [u8],
}

/// A checkpoint that a new one is compared with: stored in the cache, or met earlier in the
/// bundle being imported.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub checkpoint: Checkpoint,
    pub note: Vec<u8>,
    pub source: CheckpointSource,
    /// Path inside the bundle being imported; `None` for a checkpoint stored in the cache.
    pub bundle_path: Option<String>,
}

impl Known {
    /// Describes the checkpoint for messages: "tile-verified checkpoint", plus where it is
    /// when it comes from the bundle being imported.
    fn describe(&self) -> String {
        match &self.bundle_path {
            Some(path) => format!("{} checkpoint (in this bundle at {path})", self.source.as_str()),
            None => format!("{} checkpoint", self.source.as_str()),
        }
    }
}

/// The tile-verified checkpoint of a bundle being imported, with the bundle's tiles of its log.
#[derive(Clone, Copy)]
pub(crate) struct BundleLog<'a> {
    pub known: &'a Known,
    pub tiles: &'a dyn FreshTiles,
}

impl Attestor {
    /// Checks a tile-verified checkpoint of a bundle being imported against the stored
    /// checkpoints of its origin. Tile-verified ones need an equal root for an equal size and
    /// consistency with the nearest smaller and larger sizes. Tlog-proof ones up to its size need
    /// the root that the tiles give for their size.
    pub(crate) fn check_tile_checkpoint(
        &self,
        new: Incoming<'_>,
        new_tiles: &dyn FreshTiles,
    ) -> Result<(), CheckFailure> {
        self.check_consistency(new, new_tiles)?;

        // Every stored tlog-proof checkpoint up to the largest tile-verified size stored so far
        // was compared with the tiles already: at its own import, or by the tile import that
        // first reached its size. The tiles agree with each other, so only larger sizes need
        // the computation here.
        let checkpoint = new.checkpoint;
        let origin = checkpoint.origin.as_str();
        let previous_largest = self.store.newest_checkpoint(origin)?.map(|(size, _)| size);
        for stored in self.stored_known(origin, CheckpointSource::TlogProof)? {
            let size = stored.checkpoint.size;
            if size > checkpoint.size {
                // NOTE: a tlog-proof checkpoint above this tree size cannot be compared with
                // these tiles. It is compared when a tile import reaches its size.
                continue;
            }
            if size == checkpoint.size {
                compare_roots(new, CheckpointSource::TileVerified, &stored)?;
                continue;
            }
            if previous_largest.is_some_and(|largest| size <= largest) {
                continue;
            }
            match self.root_from_cached_tiles(origin, size, new_tiles)? {
                Ok(root) if root == stored.checkpoint.root_hash => {}
                Ok(root) => {
                    let message = format!(
                        "{}: {}: origin {origin:?}: the tiles of this checkpoint (tree size {}, root {}) give root {} \
                         for tree size {size}, but the stored tlog-proof checkpoint of tree size {size} has root {}; \
                         the log shows two different trees",
                        new.file_name,
                        new.path,
                        checkpoint.size,
                        BASE64.encode(checkpoint.root_hash),
                        BASE64.encode(root),
                        BASE64.encode(stored.checkpoint.root_hash)
                    );
                    let proof = self.proof_for_evidence(origin, size, checkpoint.size, new_tiles);
                    return Err(finding(
                        InconsistencyKind::TileRoot,
                        new,
                        CheckpointSource::TileVerified,
                        &stored,
                        proof,
                        Some(root),
                        message,
                    ));
                }
                Err(TileError::Missing { paths, .. }) => {
                    return Err(ServiceError::invalid(
                        ReasonCode::RekorTileMissing,
                        format!(
                            "{}: {}: origin {origin:?}: cannot compare the stored tlog-proof checkpoint of tree size \
                             {size} (root {}) with the tiles of this checkpoint (tree size {}): missing {}; add the \
                             tiles of tree size {size} to the bundle",
                            new.file_name,
                            new.path,
                            BASE64.encode(stored.checkpoint.root_hash),
                            checkpoint.size,
                            origin_paths(origin, &paths),
                        ),
                    )
                    .into());
                }
                Err(other) => return Err(tile_error(new, size, &other).into()),
            }
        }
        Ok(())
    }

    /// Checks the checkpoint of a tlog-proof file being imported. It must have the root of
    /// every stored or bundled checkpoint of its size, including `earlier_in_bundle`: the
    /// checkpoint of the same origin and size from an earlier tlog-proof of this bundle. When its
    /// origin has tile-verified checkpoints (stored, or `bundle_log` of the same bundle), its size
    /// must not exceed the largest of them, and the tiles must give its root for its size.
    ///
    /// Lookups are by exact size, so a bundle with many tlog-proofs costs a few reads each.
    pub(crate) fn check_proof_checkpoint(
        &self,
        new: Incoming<'_>,
        bundle_log: Option<BundleLog<'_>>,
        earlier_in_bundle: Option<&Known>,
    ) -> Result<(), CheckFailure> {
        let checkpoint = new.checkpoint;
        let origin = checkpoint.origin.as_str();
        let bundled = bundle_log.map(|log| log.known);
        let source = CheckpointSource::TlogProof;

        let same_tile = match bundled.filter(|log| log.checkpoint.size == checkpoint.size) {
            Some(log) => Some(log.clone()),
            None => self
                .store
                .checkpoint(origin, checkpoint.size)?
                .map(|note| stored_known(origin, CheckpointSource::TileVerified, checkpoint.size, note))
                .transpose()?,
        };
        if let Some(same) = &same_tile {
            compare_roots(new, source, same)?;
        }
        let same_proof = self
            .store
            .proof_checkpoint(origin, checkpoint.size)?
            .map(|note| stored_known(origin, CheckpointSource::TlogProof, checkpoint.size, note))
            .transpose()?;
        for same in same_proof.iter().chain(earlier_in_bundle) {
            compare_roots(new, source, same)?;
        }

        let stored_largest = self
            .store
            .newest_checkpoint(origin)?
            .map(|(size, note)| stored_known(origin, CheckpointSource::TileVerified, size, note))
            .transpose()?;
        let largest = match (stored_largest, bundled) {
            (Some(stored), Some(log)) if log.checkpoint.size > stored.checkpoint.size => Some(log.clone()),
            (Some(stored), _) => Some(stored),
            (None, log) => log.cloned(),
        };
        let Some(largest) = largest else {
            // NOTE: without tiles only equal sizes can be compared (above). A tlog-proof of
            // another size from a forked tree is accepted until tiles of its size arrive.
            return Ok(());
        };
        let largest_size = largest.checkpoint.size;
        if checkpoint.size > largest_size {
            return Err(ServiceError::invalid(
                ReasonCode::RekorTileMissing,
                format!(
                    "{}: {}: origin {origin:?}: the checkpoint of tree size {} (root {}) is larger than the largest \
                     tile-verified checkpoint (tree size {largest_size}, root {}), so its consistency with the \
                     stored tiles cannot be proven; import a tile bundle with a checkpoint of tree size {} or larger \
                     and its tiles, including {}",
                    new.file_name,
                    new.path,
                    checkpoint.size,
                    BASE64.encode(checkpoint.root_hash),
                    BASE64.encode(largest.checkpoint.root_hash),
                    checkpoint.size,
                    origin_paths(origin, &tiles_to_extend(largest_size, checkpoint.size))
                ),
            )
            .into());
        }
        if same_tile.is_some() {
            // Compared above.
            return Ok(());
        }

        let fresh = bundle_log.map_or(&NoFreshTiles as &dyn FreshTiles, |log| log.tiles);
        match self.root_from_cached_tiles(origin, checkpoint.size, fresh)? {
            Ok(root) if root == checkpoint.root_hash => Ok(()),
            Ok(root) => {
                let message = format!(
                    "{}: {}: origin {origin:?}: the checkpoint of tree size {} has root {}, but the stored tiles, \
                     consistent with the {} of tree size {largest_size} (root {}), give root {} for tree size {}; \
                     the log shows two different trees",
                    new.file_name,
                    new.path,
                    checkpoint.size,
                    BASE64.encode(checkpoint.root_hash),
                    largest.describe(),
                    BASE64.encode(largest.checkpoint.root_hash),
                    BASE64.encode(root),
                    checkpoint.size
                );
                let proof = self.proof_for_evidence(origin, checkpoint.size, largest_size, fresh);
                Err(finding(
                    InconsistencyKind::TileRoot,
                    new,
                    source,
                    &largest,
                    proof,
                    Some(root),
                    message,
                ))
            }
            Err(TileError::Missing { paths, .. }) => Err(ServiceError::invalid(
                ReasonCode::RekorTileMissing,
                format!(
                    "{}: {}: origin {origin:?}: cannot compare the checkpoint of tree size {} with the stored tiles \
                     (largest tile-verified tree size {largest_size}): missing {}; import a tile bundle that holds \
                     the tiles of tree size {}",
                    new.file_name,
                    new.path,
                    checkpoint.size,
                    origin_paths(origin, &paths),
                    checkpoint.size
                ),
            )
            .into()),
            Err(other) => Err(tile_error(new, checkpoint.size, &other).into()),
        }
    }

    /// Checks a new tile-verified checkpoint against the stored tile-verified checkpoints of
    /// its origin: equal roots for an equal size, and consistency proofs (built from the new
    /// and stored tiles) from the nearest smaller size and to the nearest larger size.
    fn check_consistency(&self, new: Incoming<'_>, new_tiles: &dyn FreshTiles) -> Result<(), CheckFailure> {
        let checkpoint = new.checkpoint;
        let origin = checkpoint.origin.as_str();
        let stored = self.stored_known(origin, CheckpointSource::TileVerified)?;
        if let Some(same) = stored.iter().find(|old| old.checkpoint.size == checkpoint.size) {
            return compare_roots(new, CheckpointSource::TileVerified, same);
        }
        let smaller = stored
            .iter()
            .filter(|old| old.checkpoint.size < checkpoint.size && old.checkpoint.size > 0)
            .max_by_key(|old| old.checkpoint.size);
        let larger = stored
            .iter()
            .filter(|old| old.checkpoint.size > checkpoint.size)
            .min_by_key(|old| old.checkpoint.size);

        let errors = StoreErrorSlot::default();
        let source = FreshOverStored::new(&self.store, origin, new_tiles, &errors);
        // Each pair is (stored checkpoint, whether the new tree is the larger one).
        let pairs = [smaller.map(|old| (old, true)), larger.map(|old| (old, false))];
        for (old, new_is_larger) in pairs.into_iter().flatten() {
            let (first, second) = if new_is_larger {
                (&old.checkpoint, checkpoint)
            } else {
                (checkpoint, &old.checkpoint)
            };
            if first.size == 0 {
                continue;
            }
            let proof = consistency_proof_from_tiles(first.size, second.size, &source);
            source.take_error()?;
            let proof = proof.map_err(|error| {
                ServiceError::invalid(
                    error.reason_code(),
                    format!(
                        "{}: {}: cannot prove consistency between tree sizes {} and {}: {error}",
                        new.file_name, new.path, first.size, second.size
                    ),
                )
            })?;
            if let Err(error) =
                merkle::verify_consistency(first.size, second.size, &proof, &first.root_hash, &second.root_hash)
            {
                let message = format!(
                    "{}: {}: origin {origin:?}: the tree of size {} (root {}) is not an extension of the tree of \
                     size {} (root {}): {error}",
                    new.file_name,
                    new.path,
                    second.size,
                    BASE64.encode(second.root_hash),
                    first.size,
                    BASE64.encode(first.root_hash)
                );
                // The root of the smaller tree as the larger tree's tiles give it: the new tiles
                // over the stored ones when the new tree is larger, the stored tiles otherwise.
                let tile_root = if new_is_larger {
                    evidence_root(first.size, &source, &errors)
                } else {
                    let scratch = StoreErrorSlot::default();
                    evidence_root(first.size, &OriginTiles::new(&self.store, origin, &scratch), &scratch)
                };
                return Err(finding(
                    InconsistencyKind::ConsistencyProof,
                    new,
                    CheckpointSource::TileVerified,
                    old,
                    proof,
                    tile_root,
                    message,
                ));
            }
        }
        Ok(())
    }

    /// Computes the root of the tree of `size` leaves from `fresh` tiles over the stored tiles
    /// of `origin`. The outer error is a storage failure, the inner one a tile failure.
    fn root_from_cached_tiles(
        &self,
        origin: &str,
        size: u64,
        fresh: &dyn FreshTiles,
    ) -> Result<Result<Hash, TileError>, ServiceError> {
        let errors = StoreErrorSlot::default();
        let source = FreshOverStored::new(&self.store, origin, fresh, &errors);
        let root = root_from_tiles(size, &source);
        source.take_error()?;
        Ok(root)
    }

    /// Builds the consistency proof from `size1` to `size2` from `fresh` tiles over the stored
    /// ones, for an inconsistency record. The record is evidence only, so a proof that the
    /// tiles cannot give (or a storage error) leaves it empty instead of failing the rejection.
    fn proof_for_evidence(&self, origin: &str, size1: u64, size2: u64, fresh: &dyn FreshTiles) -> Vec<Hash> {
        let errors = StoreErrorSlot::default();
        let source = FreshOverStored::new(&self.store, origin, fresh, &errors);
        let proof = consistency_proof_from_tiles(size1, size2, &source);
        match (proof, source.take_error()) {
            (Ok(proof), Ok(())) => proof,
            _ => Vec::new(),
        }
    }

    /// Returns the stored checkpoints of one kind of an origin, largest tree size first. They
    /// were authenticated at import, so only their text is parsed here.
    pub(crate) fn stored_known(&self, origin: &str, source: CheckpointSource) -> Result<Vec<Known>, ServiceError> {
        let notes = match source {
            CheckpointSource::TileVerified => self.store.checkpoints_newest_first(origin)?,
            CheckpointSource::TlogProof => self.store.proof_checkpoints_newest_first(origin)?,
        };
        notes
            .into_iter()
            .map(|(size, note)| stored_known(origin, source, size, note))
            .collect()
    }
}

/// Parses a stored checkpoint note of `origin` and tree `size`. It was authenticated at
/// import, so only its text is parsed.
fn stored_known(origin: &str, source: CheckpointSource, size: u64, note: Vec<u8>) -> Result<Known, ServiceError> {
    let checkpoint = parse_stored_checkpoint(&note).map_err(|why| {
        ServiceError::Internal(format!("stored {} checkpoint {origin}/{size} is corrupt: {why}", source.as_str()))
    })?;
    Ok(Known {
        checkpoint,
        note,
        source,
        bundle_path: None,
    })
}

/// Computes a root for an inconsistency record, or `None` when the tiles or the store fail.
fn evidence_root(size: u64, source: &dyn TileSource, errors: &StoreErrorSlot) -> Option<Hash> {
    let root = root_from_tiles(size, source).ok();
    errors.take_error().ok().and(root)
}

/// Rejects a checkpoint whose root differs from a known checkpoint of the same size.
fn compare_roots(new: Incoming<'_>, new_source: CheckpointSource, known: &Known) -> Result<(), CheckFailure> {
    let checkpoint = new.checkpoint;
    if known.checkpoint.root_hash == checkpoint.root_hash {
        return Ok(());
    }
    let message = format!(
        "{}: {}: origin {:?}: the checkpoint of tree size {} has root {}, but the {} of that size has root {}; the \
         log shows two different trees",
        new.file_name,
        new.path,
        checkpoint.origin,
        checkpoint.size,
        BASE64.encode(checkpoint.root_hash),
        known.describe(),
        BASE64.encode(known.checkpoint.root_hash)
    );
    Err(finding(
        InconsistencyKind::SameSize,
        new,
        new_source,
        known,
        Vec::new(),
        None,
        message,
    ))
}

/// Builds the failure for a new checkpoint that contradicts `known`.
fn finding(
    kind: InconsistencyKind,
    new: Incoming<'_>,
    new_source: CheckpointSource,
    known: &Known,
    proof: Vec<Hash>,
    tile_root: Option<Hash>,
    message: String,
) -> CheckFailure {
    let rejected = Known {
        checkpoint: new.checkpoint.clone(),
        note: new.note.to_vec(),
        source: new_source,
        bundle_path: Some(new.path.to_owned()),
    };
    CheckFailure::Inconsistent(Box::new(Finding {
        kind,
        rejected,
        conflicting: known.clone(),
        proof,
        tile_root,
        message,
    }))
}

fn tile_error(new: Incoming<'_>, size: u64, error: &TileError) -> ServiceError {
    ServiceError::invalid(
        error.reason_code(),
        format!(
            "{}: {}: origin {:?}: cannot compute the root of tree size {size} from the tiles: {error}",
            new.file_name, new.path, new.checkpoint.origin
        ),
    )
}

/// Lists the tiles a tile bundle of tree size `size` needs so that its import proves it
/// consistent with the tile-verified tree of size `largest`: its right edge, and the tiles of
/// the consistency proof from `largest`.
fn tiles_to_extend(largest: u64, size: u64) -> Vec<String> {
    let mut ids: BTreeSet<TileId> = tiles_for_inclusion(size.saturating_sub(1), size).into_iter().collect();
    ids.extend(tiles_for_consistency(largest, size));
    ids.iter().map(TileId::path).collect()
}

/// Joins tile paths as `<origin>/<path>`.
fn origin_paths(origin: &str, paths: &[String]) -> String {
    paths
        .iter()
        .map(|path| format!("{origin}/{path}"))
        .collect::<Vec<_>>()
        .join(", ")
}
