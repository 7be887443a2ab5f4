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
//! Left out: an origin without tiles (tlog-proofs only) can only be checked for equal sizes,
//! because a consistency proof between two sizes needs the tiles or a consistency proof file,
//! and tlog-proof files carry neither. `docs/security.md` states this limit.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{
    TileError, TileId, consistency_proof_from_tiles, root_from_tiles, tiles_for_consistency, tiles_for_inclusion,
};

use crate::attestor::Attestor;
use crate::cache::{OverlayTiles, StoreErrorSlot};
use crate::error::ServiceError;
use crate::imports::parse_stored_checkpoint;

/// The tile-verified checkpoint of a bundle being imported, with the bundle's tiles of its log.
#[derive(Clone, Copy)]
pub(crate) struct BundleLog<'a> {
    pub checkpoint: &'a Checkpoint,
    pub tiles: &'a BTreeMap<String, Vec<u8>>,
}

/// The bundle file and the path inside it of the checkpoint being checked, for error messages.
struct Named<'a> {
    file_name: &'a str,
    path: &'a str,
}

impl Attestor {
    /// Checks a tile-verified checkpoint of a bundle being imported against the stored
    /// checkpoints of its origin. Tile-verified ones need an equal root for an equal size and
    /// consistency with the nearest smaller and larger sizes. Tlog-proof ones up to its size need
    /// the root that the tiles give for their size.
    pub(crate) fn check_tile_checkpoint(
        &self,
        file_name: &str,
        checkpoint_path: &str,
        new: &Checkpoint,
        new_tiles: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), ServiceError> {
        let named = Named {
            file_name,
            path: checkpoint_path,
        };
        self.check_consistency(&named, new, new_tiles)?;

        // Every stored tlog-proof checkpoint up to the largest tile-verified size stored so far
        // was compared with the tiles already: at its own import, or by the tile import that
        // first reached its size. The tiles agree with each other, so only larger sizes need
        // the computation here.
        let previous_largest = self.store.newest_checkpoint(&new.origin)?.map(|(size, _)| size);
        for stored in self.stored_proof_checkpoints(&new.origin)? {
            if stored.size > new.size {
                // NOTE: a tlog-proof checkpoint above this tree size cannot be compared with
                // these tiles. It is compared when a tile import reaches its size.
                continue;
            }
            if stored.size == new.size {
                compare_roots(&named, &stored, new, "tlog-proof")?;
                continue;
            }
            if previous_largest.is_some_and(|largest| stored.size <= largest) {
                continue;
            }
            let root = self.root_from_cached_tiles(&new.origin, stored.size, new_tiles)?;
            match root {
                Ok(root) if root == stored.root_hash => {}
                Ok(root) => {
                    return Err(ServiceError::invalid(
                        ReasonCode::RekorRootMismatch,
                        format!(
                            "{file_name}: {checkpoint_path}: origin {:?}: the tiles of this checkpoint (tree size {}, \
                             root {}) give root {} for tree size {}, but the stored tlog-proof checkpoint of tree \
                             size {} has root {}; the log shows two different trees",
                            new.origin,
                            new.size,
                            BASE64.encode(new.root_hash),
                            BASE64.encode(root),
                            stored.size,
                            stored.size,
                            BASE64.encode(stored.root_hash)
                        ),
                    ));
                }
                Err(TileError::Missing { paths }) => {
                    return Err(ServiceError::invalid(
                        ReasonCode::RekorTileMissing,
                        format!(
                            "{file_name}: {checkpoint_path}: origin {:?}: cannot compare the stored tlog-proof \
                             checkpoint of tree size {} (root {}) with the tiles of this checkpoint (tree size {}): \
                             missing {}; add the tiles of tree size {} to the bundle",
                            new.origin,
                            stored.size,
                            BASE64.encode(stored.root_hash),
                            new.size,
                            origin_paths(&new.origin, &paths),
                            stored.size
                        ),
                    ));
                }
                Err(other) => return Err(tile_error(&named, &new.origin, stored.size, &other)),
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
        file_name: &str,
        path: &str,
        new: &Checkpoint,
        bundle_log: Option<BundleLog<'_>>,
        earlier_in_bundle: Option<&Checkpoint>,
    ) -> Result<(), ServiceError> {
        let named = Named { file_name, path };
        let origin = new.origin.as_str();
        let bundled = bundle_log.map(|log| log.checkpoint);

        let same_tile = match bundled.filter(|log| log.size == new.size) {
            Some(log) => Some(log.clone()),
            None => self
                .store
                .checkpoint(origin, new.size)?
                .map(|note| parse_one(origin, "checkpoint", new.size, &note))
                .transpose()?,
        };
        if let Some(same) = &same_tile {
            compare_roots(&named, same, new, "tile-verified")?;
        }
        let same_proof = self
            .store
            .proof_checkpoint(origin, new.size)?
            .map(|note| parse_one(origin, "tlog-proof checkpoint", new.size, &note))
            .transpose()?;
        for same in same_proof.iter().chain(earlier_in_bundle) {
            compare_roots(&named, same, new, "tlog-proof")?;
        }

        let stored_largest = self
            .store
            .newest_checkpoint(origin)?
            .map(|(size, note)| parse_one(origin, "checkpoint", size, &note))
            .transpose()?;
        let largest = match (stored_largest, bundled) {
            (Some(stored), Some(log)) if log.size > stored.size => Some(log.clone()),
            (Some(stored), _) => Some(stored),
            (None, log) => log.cloned(),
        };
        let Some(largest) = largest else {
            // NOTE: without tiles only equal sizes can be compared (above). A tlog-proof of
            // another size from a forked tree is accepted until tiles of its size arrive.
            return Ok(());
        };
        if new.size > largest.size {
            return Err(ServiceError::invalid(
                ReasonCode::RekorTileMissing,
                format!(
                    "{file_name}: {path}: origin {:?}: the checkpoint of tree size {} (root {}) is larger than the \
                     largest tile-verified checkpoint (tree size {}, root {}), so its consistency with the stored \
                     tiles cannot be proven; import a tile bundle with a checkpoint of tree size {} or larger and \
                     its tiles, including {}",
                    new.origin,
                    new.size,
                    BASE64.encode(new.root_hash),
                    largest.size,
                    BASE64.encode(largest.root_hash),
                    new.size,
                    origin_paths(&new.origin, &tiles_to_extend(largest.size, new.size))
                ),
            ));
        }
        if same_tile.is_some() {
            // Compared above.
            return Ok(());
        }

        let empty = BTreeMap::new();
        let fresh = bundle_log.map_or(&empty, |log| log.tiles);
        match self.root_from_cached_tiles(&new.origin, new.size, fresh)? {
            Ok(root) if root == new.root_hash => Ok(()),
            Ok(root) => Err(ServiceError::invalid(
                ReasonCode::RekorRootMismatch,
                format!(
                    "{file_name}: {path}: origin {:?}: the checkpoint of tree size {} has root {}, but the stored \
                     tiles, consistent with the tile-verified checkpoint of tree size {} (root {}), give root {} \
                     for tree size {}; the log shows two different trees",
                    new.origin,
                    new.size,
                    BASE64.encode(new.root_hash),
                    largest.size,
                    BASE64.encode(largest.root_hash),
                    BASE64.encode(root),
                    new.size
                ),
            )),
            Err(TileError::Missing { paths }) => Err(ServiceError::invalid(
                ReasonCode::RekorTileMissing,
                format!(
                    "{file_name}: {path}: origin {:?}: cannot compare the checkpoint of tree size {} with the stored \
                     tiles (largest tile-verified tree size {}): missing {}; import a tile bundle that holds the \
                     tiles of tree size {}",
                    new.origin,
                    new.size,
                    largest.size,
                    origin_paths(&new.origin, &paths),
                    new.size
                ),
            )),
            Err(other) => Err(tile_error(&named, &new.origin, new.size, &other)),
        }
    }

    /// Checks a new tile-verified checkpoint against the stored tile-verified checkpoints of
    /// its origin: equal roots for an equal size, and consistency proofs (built from the new
    /// and stored tiles) from the nearest smaller size and to the nearest larger size.
    fn check_consistency(
        &self,
        named: &Named<'_>,
        new: &Checkpoint,
        new_tiles: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), ServiceError> {
        let Named { file_name, path } = *named;
        let stored = self.stored_checkpoints(&new.origin)?;
        if let Some(same) = stored.iter().find(|old| old.size == new.size) {
            return compare_roots(named, same, new, "tile-verified");
        }
        let smaller = stored
            .iter()
            .filter(|old| old.size < new.size && old.size > 0)
            .max_by_key(|old| old.size);
        let larger = stored
            .iter()
            .filter(|old| old.size > new.size)
            .min_by_key(|old| old.size);

        let errors = StoreErrorSlot::default();
        let source = OverlayTiles::new(&self.store, &new.origin, new_tiles, &errors);
        let pairs = [smaller.map(|old| (old, new)), larger.map(|old| (new, old))];
        for (first, second) in pairs.into_iter().flatten() {
            if first.size == 0 {
                continue;
            }
            let proof = consistency_proof_from_tiles(first.size, second.size, &source);
            errors.take_error()?;
            let proof = proof.map_err(|error| {
                ServiceError::invalid(
                    error.reason_code(),
                    format!(
                        "{file_name}: {path}: cannot prove consistency between tree sizes {} and {}: {error}",
                        first.size, second.size
                    ),
                )
            })?;
            merkle::verify_consistency(first.size, second.size, &proof, &first.root_hash, &second.root_hash).map_err(
                |error| {
                    ServiceError::invalid(
                        ReasonCode::RekorRootMismatch,
                        format!(
                            "{file_name}: {path}: origin {:?}: the tree of size {} (root {}) is not an extension of \
                             the tree of size {} (root {}): {error}",
                            new.origin,
                            second.size,
                            BASE64.encode(second.root_hash),
                            first.size,
                            BASE64.encode(first.root_hash)
                        ),
                    )
                },
            )?;
        }
        Ok(())
    }

    /// Computes the root of the tree of `size` leaves from `fresh` tiles over the stored tiles
    /// of `origin`. The outer error is a storage failure, the inner one a tile failure.
    fn root_from_cached_tiles(
        &self,
        origin: &str,
        size: u64,
        fresh: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Result<Hash, TileError>, ServiceError> {
        let errors = StoreErrorSlot::default();
        let source = OverlayTiles::new(&self.store, origin, fresh, &errors);
        let root = root_from_tiles(size, &source);
        errors.take_error()?;
        Ok(root)
    }

    /// Returns the parsed bodies of the stored tile-verified checkpoints of an origin. They
    /// were authenticated at import, so only their text is parsed here.
    pub(crate) fn stored_checkpoints(&self, origin: &str) -> Result<Vec<Checkpoint>, ServiceError> {
        parse_all(origin, "checkpoint", self.store.checkpoints_newest_first(origin)?)
    }

    /// Returns the parsed bodies of the stored tlog-proof checkpoints of an origin.
    fn stored_proof_checkpoints(&self, origin: &str) -> Result<Vec<Checkpoint>, ServiceError> {
        parse_all(
            origin,
            "tlog-proof checkpoint",
            self.store.proof_checkpoints_newest_first(origin)?,
        )
    }
}

fn parse_all(origin: &str, what: &str, notes: Vec<(u64, Vec<u8>)>) -> Result<Vec<Checkpoint>, ServiceError> {
    notes
        .into_iter()
        .map(|(size, note)| parse_one(origin, what, size, &note))
        .collect()
}

/// Parses a stored checkpoint note of `origin` and tree `size`. It was authenticated at
/// import, so only its text is parsed.
fn parse_one(origin: &str, what: &str, size: u64, note: &[u8]) -> Result<Checkpoint, ServiceError> {
    parse_stored_checkpoint(note)
        .map_err(|why| ServiceError::Internal(format!("stored {what} {origin}/{size} is corrupt: {why}")))
}

/// Rejects a checkpoint whose root differs from a checkpoint of the same size. `kind` names
/// the kind of the stored one ("tile-verified" or "tlog-proof").
fn compare_roots(named: &Named<'_>, stored: &Checkpoint, new: &Checkpoint, kind: &str) -> Result<(), ServiceError> {
    if stored.root_hash == new.root_hash {
        return Ok(());
    }
    Err(ServiceError::invalid(
        ReasonCode::RekorRootMismatch,
        format!(
            "{}: {}: origin {:?}: the checkpoint of tree size {} has root {}, but the {kind} checkpoint of that size \
             has root {}; the log shows two different trees",
            named.file_name,
            named.path,
            new.origin,
            new.size,
            BASE64.encode(new.root_hash),
            BASE64.encode(stored.root_hash)
        ),
    ))
}

fn tile_error(named: &Named<'_>, origin: &str, size: u64, error: &TileError) -> ServiceError {
    ServiceError::invalid(
        error.reason_code(),
        format!(
            "{}: {}: origin {origin:?}: cannot compute the root of tree size {size} from the tiles: {error}",
            named.file_name, named.path
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
