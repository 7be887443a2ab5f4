//! The offline proof cache: hash tiles and tlog-proof files from the store, served to the
//! verification library through its `TileSource` and `InclusionSource` traits.
//!
//! The candidate proofs of (origin, index) are:
//! 1. when a stored tile-verified checkpoint with tree size above `index` has all the tiles of
//!    the proof, that one proof from tiles and nothing else. The largest such checkpoint is
//!    used, falling back to smaller ones. The tiles fix the leaf at `index`, so a tlog-proof
//!    for a forked tree cannot prove a leaf that the tiles contradict;
//! 2. otherwise every tlog-proof file stored for (origin, index), largest checkpoint tree size
//!    first, then in the store's order (by SHA-256 of the file).
//!
//! Verification accepts the entry when any candidate proves it, so a corrupted tlog-proof
//! imported after a good one (or before it) cannot hide the good one. The order depends only on
//! the stored data, which keeps reports deterministic.
//!
//! An origin with an inconsistency record (a split view detected at import, see
//! [`crate::inconsistency`]) gets no candidates at all. Every lookup fails with
//! `ERR_REKOR_CHECKPOINT_INCONSISTENT`, because the attestor cannot tell which of the two trees
//! the rest of its cache belongs to.
//!
//! Every checkpoint handed out is verified again against the current trust set, so a set
//! that drops a log key also stops its cached checkpoints from proving anything. Rekor v1
//! shards are looked up like any log, under their checkpoint origin (`<host> - <tree ID>`). When
//! nothing proves inclusion, the error lists the exact files that would close the gap:
//! the missing tile paths of the newest covering checkpoint (as `<origin>/tile/...`) and
//! the tlog-proof path of the tile bundle layout (`proofs/<encoded origin>/<index>.tlog-proof`).
//!
//! A RocksDB error inside a library callback is reported to the library as an unreadable
//! tile and also kept in a [`StoreErrorSlot`], so the caller turns the whole request into
//! an internal error ([`StoreErrorSlot::take_error`]) rather than a verification failure.
//!
//! Proofs from tiles read the stored tiles through the attestor's shared [`TileNodeCache`]
//! (at most [`NODE_CACHE_TILES`] tiles, keyed by tenant and origin: [`node_cache_key`]), so a
//! warm request reads neither
//! RocksDB nor hashes inside a hot tile. Stored tiles are never overwritten, and every stored
//! version of a tile starts with the same hashes, because each import is checked for
//! consistency with the stored checkpoints before it is written. The cached nodes therefore
//! give the same proofs as the stored tiles. An origin with an inconsistency record gets no
//! proof at all, cached or not.

use std::cell::RefCell;
use std::cmp::Reverse;

use stella_verify::checkpoint::{OriginRule, VerifiedCheckpoint, verify_checkpoint_with_rule};
use stella_verify::evidence::{CachedInclusion, InclusionLookupError, InclusionSource, ProofSource};
use stella_verify::note::NoteVerifier;
use stella_verify::tiles::{
    CachedTiles, TileError, TileId, TileNodeCache, TileSource, inclusion_proof_from_tiles, tiles_for_inclusion,
};
use stella_verify::tlog_proof::TlogProof;
use stella_verify::trust_root::TrustSet;

use crate::error::ServiceError;
use crate::inconsistency::InconsistencyRecord;
use crate::store::{Store, StoreError};

/// Number of hashes in a full tile.
const FULL_WIDTH: u16 = 256;

/// Tiles whose interior nodes the attestor keeps in memory: about 16.5 KiB each for a full
/// tile, so about 66 MiB at most. 4,096 tiles hold every level-0 tile of a log of one million
/// entries, or the hot right edge and recent tiles of a larger one.
pub const NODE_CACHE_TILES: usize = 4_096;

/// Returns the key of a log's tiles in the shared [`TileNodeCache`]: the tenant, a space, and the
/// origin. Each tenant stores its own tiles, so one origin may name different trees for two
/// tenants, and the key keeps them apart. A tenant id never contains a space, so no two
/// (tenant, origin) pairs share a key.
pub fn node_cache_key(tenant: &str, origin: &str) -> String {
    format!("{tenant} {origin}")
}

/// Holds the first storage error raised inside a library callback.
#[derive(Debug, Default)]
pub struct StoreErrorSlot {
    error: RefCell<Option<StoreError>>,
}

impl StoreErrorSlot {
    fn record(&self, error: StoreError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    fn has_error(&self) -> bool {
        self.error.borrow().is_some()
    }

    /// Returns the recorded storage error as an internal error, if any.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Internal`] when a storage error was recorded.
    pub fn take_error(&self) -> Result<(), ServiceError> {
        match self.error.borrow_mut().take() {
            Some(error) => Err(ServiceError::from(error)),
            None => Ok(()),
        }
    }
}

/// Returns the path of the full tile and the path prefix of its partial versions.
fn tile_paths(level: u8, index: u64) -> (String, String) {
    let full = TileId {
        level,
        index,
        width: FULL_WIDTH,
    }
    .path();
    let partial_prefix = format!("{full}.p/");
    (full, partial_prefix)
}

/// Returns the width encoded in a partial tile path suffix.
fn partial_width(path: &str, prefix: &str) -> Option<u16> {
    path.strip_prefix(prefix)?.parse::<u16>().ok()
}

/// Picks the stored version of a tile with at least `width` hashes: the full tile, else
/// the widest partial tile that is wide enough. The first hashes of a tile never change as
/// the log grows, so any such version serves the request.
fn pick_tile<'a>(
    full: Option<&'a Vec<u8>>,
    partials: impl Iterator<Item = (&'a str, &'a Vec<u8>)>,
    prefix: &str,
    width: u16,
) -> Option<&'a Vec<u8>> {
    if full.is_some() {
        return full;
    }
    partials
        .filter_map(|(path, data)| partial_width(path, prefix).map(|found| (found, data)))
        .filter(|(found, _)| *found >= width)
        .max_by_key(|(found, _)| *found)
        .map(|(_, data)| data)
}

fn stored_tile(store: &Store, origin: &str, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, StoreError> {
    let (full_path, prefix) = tile_paths(level, index);
    if let Some(full) = store.tile(origin, &full_path)? {
        return Ok(Some(full));
    }
    let partials = store.tiles_with_prefix(origin, &prefix)?;
    let picked = pick_tile(
        None,
        partials.iter().map(|(path, data)| (path.as_str(), data)),
        &prefix,
        width,
    );
    Ok(picked.cloned())
}

/// The stored tiles of one origin.
pub struct OriginTiles<'a> {
    store: &'a Store,
    origin: &'a str,
    errors: &'a StoreErrorSlot,
}

impl<'a> OriginTiles<'a> {
    /// Serves the stored tiles of `origin`; storage errors go to `errors`.
    pub fn new(store: &'a Store, origin: &'a str, errors: &'a StoreErrorSlot) -> Self {
        OriginTiles { store, origin, errors }
    }
}

impl TileSource for OriginTiles<'_> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        match stored_tile(self.store, self.origin, level, index, width) {
            Ok(found) => Ok(found),
            Err(error) => {
                let unreadable = TileError::Unreadable {
                    path: format!("{}/{}", self.origin, TileId { level, index, width }.path()),
                    reason: error.to_string(),
                };
                self.errors.record(error);
                Err(unreadable)
            }
        }
    }
}

/// Verifies a stored checkpoint against the current trust set. The Rekor v1 rule also accepts
/// a shard origin such as `rekor.sigstore.dev - 2605736670972794746` signed by the key named
/// `rekor.sigstore.dev`. The library then requires exactly the requested origin and the key of
/// the entry's log.
fn verify_cached_checkpoint(note: &[u8], verifiers: &[NoteVerifier]) -> Option<VerifiedCheckpoint> {
    verify_checkpoint_with_rule(note, verifiers, OriginRule::RekorV1TreeId).ok()
}

/// Proves inclusion from the store for the verification library.
pub struct Cache<'a> {
    store: &'a Store,
    verifiers: Vec<NoteVerifier>,
    errors: StoreErrorSlot,
    node_cache: Option<&'a TileNodeCache>,
}

impl<'a> Cache<'a> {
    /// Creates a cache view that trusts the checkpoint keys of `trust` and hashes inside each
    /// tile it reads.
    pub fn new(store: &'a Store, trust: &TrustSet) -> Self {
        Cache {
            store,
            verifiers: trust.checkpoint_verifiers(),
            errors: StoreErrorSlot::default(),
            node_cache: None,
        }
    }

    /// Creates a cache view like [`Cache::new`] that reads tile nodes through `node_cache`,
    /// keyed by the tenant of `store` and the origin. `node_cache` must serve only this database.
    pub fn with_node_cache(store: &'a Store, trust: &TrustSet, node_cache: &'a TileNodeCache) -> Self {
        Cache {
            node_cache: Some(node_cache),
            ..Cache::new(store, trust)
        }
    }

    /// Returns the store of this view.
    pub(crate) fn store(&self) -> &'a Store {
        self.store
    }

    /// Verifies a stored checkpoint note against the trust set of this view, or returns
    /// `None` when none of its keys signed it.
    pub(crate) fn verify_checkpoint(&self, note: &[u8]) -> Option<VerifiedCheckpoint> {
        verify_cached_checkpoint(note, &self.verifiers)
    }

    /// Runs `read` over the stored tiles of `origin`, through the node cache when this view
    /// has one. Storage errors go to this view's error slot.
    pub(crate) fn with_tiles<T>(&self, origin: &str, read: impl FnOnce(&dyn TileSource) -> T) -> T {
        let tiles = OriginTiles::new(self.store, origin, &self.errors);
        match self.node_cache {
            Some(node_cache) => {
                let key = node_cache_key(self.store.tenant(), origin);
                read(&CachedTiles::new(&tiles, node_cache, &key))
            }
            None => read(&tiles),
        }
    }

    /// Returns the detail of the split view recorded for `origin`, or `None` when it has none.
    ///
    /// # Errors
    ///
    /// An internal error when the store fails.
    pub(crate) fn split_view_detail(&self, origin: &str) -> Result<Option<String>, ServiceError> {
        let found = self.split_view(origin);
        self.take_error()?;
        Ok(found.map(|error| error.to_string()))
    }

    /// Returns a storage error raised during a lookup as an internal error.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Internal`] when a storage error was recorded.
    pub fn take_error(&self) -> Result<(), ServiceError> {
        self.errors.take_error()
    }

    /// Returns the tlog-proof path that would prove (origin, index), as laid out in a
    /// tile/proof bundle.
    pub fn tlog_proof_path(origin: &str, index: u64) -> String {
        format!("proofs/{}/{index}.tlog-proof", stella_bundle::encode_origin(origin))
    }

    fn lookup(&self, origin: &str, index: u64) -> Result<Vec<CachedInclusion>, InclusionLookupError> {
        if let Some(split_view) = self.split_view(origin) {
            return Err(split_view);
        }
        let mut candidates = Vec::new();
        let (from_tiles, gap) = self.tile_candidate(origin, index);
        match from_tiles {
            Some(found) => candidates.push(found),
            None => candidates.extend(self.tlog_proof_candidates(origin, index)),
        }

        if self.errors.has_error() {
            return Err(store_unavailable());
        }
        if !candidates.is_empty() {
            return Ok(candidates);
        }
        let mut paths: Vec<String> = match gap {
            Some(tile_paths) => tile_paths.into_iter().map(|path| format!("{origin}/{path}")).collect(),
            None => vec![format!(
                "{origin}/checkpoint (a checkpoint with tree size above {index})"
            )],
        };
        paths.push(Self::tlog_proof_path(origin, index));
        Err(InclusionLookupError::Missing { paths })
    }

    /// Returns the lookup failure for an origin with a recorded split view, naming the oldest
    /// inconsistency record, or `None` when the origin has none.
    ///
    /// NOTE: there is no in-place reset of this state yet. Recovery means investigating the
    /// evidence, then starting the attestor on a fresh data directory and importing trusted
    /// material again (docs/security.md). A split view whose record could not be written (a
    /// storage error at rejection time) leaves no record and so does not block lookups.
    fn split_view(&self, origin: &str) -> Option<InclusionLookupError> {
        let records = match self.store.inconsistencies(origin) {
            Ok(records) => records,
            Err(error) => {
                self.errors.record(error);
                return Some(store_unavailable());
            }
        };
        let not_recorded = match self.store.inconsistencies_not_recorded(origin) {
            Ok(count) => count,
            Err(error) => {
                self.errors.record(error);
                return Some(store_unavailable());
            }
        };
        if records.is_empty() && not_recorded == 0 {
            return None;
        }
        // A record that no longer parses still marks the split view; only its id is lost.
        let oldest = records
            .iter()
            .filter_map(|bytes| serde_json::from_slice::<InconsistencyRecord>(bytes).ok())
            .min_by(|a, b| a.recorded_at.cmp(&b.recorded_at).then_with(|| a.id.cmp(&b.id)));
        let record = match &oldest {
            Some(record) => format!("inconsistency record {}", record.id),
            None => "an inconsistency record that the attestor could not read".to_owned(),
        };
        Some(InclusionLookupError::SplitView {
            detail: format!(
                "log {origin:?} has shown this attestor two different trees ({record}), so no inclusion proof \
                 of it is trusted; inspect the evidence with `stella rekor checkpoints --origin {origin}`, \
                 then recover as docs/security.md describes"
            ),
        })
    }

    /// Builds the proof from the tiles of the largest stored checkpoint that has them all.
    /// Without one, returns the missing tile paths of the largest checkpoint above `index`.
    fn tile_candidate(&self, origin: &str, index: u64) -> (Option<CachedInclusion>, Option<Vec<String>>) {
        let checkpoints = match self.store.checkpoints_newest_first(origin) {
            Ok(found) => found,
            Err(error) => {
                self.errors.record(error);
                Vec::new()
            }
        };

        let mut gap: Option<Vec<String>> = None;
        for (size, note) in checkpoints.iter().filter(|(size, _)| *size > index) {
            let Some(checkpoint) = verify_cached_checkpoint(note, &self.verifiers) else {
                // Signed by a key the current trust set no longer holds.
                continue;
            };
            let proof = self.with_tiles(origin, |tiles| inclusion_proof_from_tiles(index, *size, tiles));
            match proof {
                Ok(proof) => {
                    let found = CachedInclusion {
                        checkpoint,
                        proof,
                        source: ProofSource::Tiles,
                    };
                    return (Some(found), gap);
                }
                Err(TileError::Missing { paths, .. }) => {
                    gap.get_or_insert(paths);
                }
                Err(_) => {
                    // Stored tiles were authenticated at import; a tile that no longer
                    // fits is treated as absent, so the missing-paths list shows it.
                    let paths = tiles_for_inclusion(index, *size).iter().map(TileId::path).collect();
                    gap.get_or_insert(paths);
                }
            }
        }
        (None, gap)
    }

    /// Returns the stored tlog-proofs of (origin, index) whose checkpoints the current trust
    /// set verifies, largest tree size first.
    fn tlog_proof_candidates(&self, origin: &str, index: u64) -> Vec<CachedInclusion> {
        let files = match self.store.tlog_proofs(origin, index) {
            Ok(files) => files,
            Err(error) => {
                self.errors.record(error);
                return Vec::new();
            }
        };
        // Files were parsed at import. One that no longer parses, or whose checkpoint's key
        // the current trust set dropped, proves nothing and is left out.
        let mut candidates: Vec<CachedInclusion> = files
            .iter()
            .filter_map(|bytes| {
                let proof = TlogProof::parse(bytes).ok()?;
                let checkpoint = verify_cached_checkpoint(&proof.checkpoint, &self.verifiers)?;
                Some(CachedInclusion {
                    checkpoint,
                    proof: proof.hashes,
                    source: ProofSource::TlogProof,
                })
            })
            .collect();
        // A stable sort keeps the store's digest order among equal tree sizes.
        candidates.sort_by_key(|candidate| Reverse(candidate.checkpoint.checkpoint().size));
        candidates
    }
}

fn store_unavailable() -> InclusionLookupError {
    InclusionLookupError::Unavailable {
        detail: "the attestor's store failed; see its log".to_owned(),
    }
}

impl InclusionSource for Cache<'_> {
    fn inclusion(&self, origin: &str, index: u64) -> Result<CachedInclusion, InclusionLookupError> {
        self.lookup(origin, index)?
            .into_iter()
            .next()
            .ok_or(InclusionLookupError::Missing { paths: Vec::new() })
    }

    fn inclusion_candidates(&self, origin: &str, index: u64) -> Result<Vec<CachedInclusion>, InclusionLookupError> {
        self.lookup(origin, index)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tiles(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(path, data)| ((*path).to_owned(), data.as_bytes().to_vec()))
            .collect()
    }

    fn pick_from(map: &BTreeMap<String, Vec<u8>>, width: u16) -> Option<String> {
        let (full, prefix) = tile_paths(0, 0);
        let partials = map
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .map(|(path, data)| (path.as_str(), data));
        pick_tile(map.get(&full), partials, &prefix, width).map(|data| String::from_utf8_lossy(data).into_owned())
    }

    #[test]
    fn pick_prefers_full_tile() {
        let map = tiles(&[("tile/0/000", "full"), ("tile/0/000.p/200", "w200")]);
        assert_eq!(pick_from(&map, 10).as_deref(), Some("full"));
    }

    #[test]
    fn pick_widest_wide_enough_partial() {
        let map = tiles(&[
            ("tile/0/000.p/3", "w3"),
            ("tile/0/000.p/12", "w12"),
            ("tile/0/000.p/7", "w7"),
        ]);
        assert_eq!(pick_from(&map, 5).as_deref(), Some("w12"));
        assert_eq!(pick_from(&map, 12).as_deref(), Some("w12"));
        assert_eq!(pick_from(&map, 13), None);
    }

    #[test]
    fn pick_ignores_other_indexes() {
        let map = tiles(&[("tile/0/001.p/20", "other"), ("tile/1/000.p/20", "level 1")]);
        assert_eq!(pick_from(&map, 1), None);
    }

    #[test]
    fn tlog_proof_path_layout() {
        let path = Cache::tlog_proof_path("log2025-1.rekor.sigstore.dev", 42);
        assert!(path.starts_with("proofs/"), "{path}");
        assert!(path.ends_with("/42.tlog-proof"), "{path}");
    }
}
