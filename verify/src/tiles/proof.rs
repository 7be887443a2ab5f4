//! Inclusion and consistency proofs, roots and leaf hashes computed from the
//! hash tiles of one tree size.
//!
//! Every hash a proof needs is the Merkle tree hash of a range `[start, end)`
//! that is either a perfect subtree or ends at the tree size. A perfect subtree
//! is read from one tile, hashing at most 128 tile hashes for the tree levels
//! between tile levels. A right-edge range is not stored anywhere, so it is rebuilt from the
//! perfect subtrees of its binary decomposition, which all lie in the
//! rightmost tile of their level. A source that keeps tile nodes
//! ([`super::CachedTiles`]) gives every perfect subtree inside a tile without
//! any hashing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    FULL_TILE_BYTES, MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH, TileError, TileId, TileNodes,
    TileSource,
};
use crate::merkle::{HASH_SIZE, Hash, empty_root, node_hash};

/// Lists the tiles that an inclusion proof for `index` in a tree of `size`
/// leaves reads, in (level, index) order.
///
/// For each level `L` with `size >> 8·L > 0` these are tile `index >> 8·(L+1)`
/// on the leaf's side and tile `(size − 1) >> 8·(L+1)` on the right edge, each
/// full or partial as the tree size makes it. Returns an empty list when
/// `index >= size`.
pub fn tiles_for_inclusion(index: u64, size: u64) -> Vec<TileId> {
    if index >= size {
        return Vec::new();
    }
    let mut tiles = BTreeSet::new();
    for level in 0..=MAX_TILE_LEVEL {
        let shift = TILE_HEIGHT.saturating_mul(u32::from(level));
        let hashes_at_level = size.checked_shr(shift).unwrap_or(0);
        if hashes_at_level == 0 {
            break;
        }
        for leaf in [index, size.saturating_sub(1)] {
            let tile_index = leaf
                .checked_shr(shift.saturating_add(TILE_HEIGHT))
                .unwrap_or(0);
            if let Some(id) = TileId::for_tree(level, tile_index, size) {
                tiles.insert(id);
            }
        }
    }
    tiles.into_iter().collect()
}

/// Lists the tiles that a consistency proof from `size1` to `size2` reads:
/// the tiles of an inclusion proof for leaf `size1 − 1` in the tree of
/// `size2`. Returns an empty list unless `0 < size1 < size2`.
pub fn tiles_for_consistency(size1: u64, size2: u64) -> Vec<TileId> {
    if size1 == 0 || size1 >= size2 {
        return Vec::new();
    }
    tiles_for_inclusion(size1.saturating_sub(1), size2)
}

/// Computes the RFC 6962 inclusion proof for leaf `index` in the tree of
/// `size` leaves from its tiles, leaf's sibling first.
///
/// # Errors
///
/// [`TileError::IndexOutOfRange`], [`TileError::Missing`] naming every absent
/// tile, [`TileError::WrongLength`] or the source's [`TileError::Unreadable`].
pub fn inclusion_proof_from_tiles(
    index: u64,
    size: u64,
    source: &dyn TileSource,
) -> Result<Vec<Hash>, TileError> {
    if index >= size {
        return Err(TileError::IndexOutOfRange { index, size });
    }
    let mut reader = TileReader::new(source, size);
    let mut proof = Vec::new();
    reader.build_path(index, 0, size, &mut proof)?;
    reader.finish(proof)
}

/// Computes the RFC 6962 consistency proof from the tree of `size1` leaves to
/// the tree of `size2` leaves from the tiles of `size2`.
///
/// # Errors
///
/// [`TileError::InvalidSizes`] unless `0 < size1 <= size2`,
/// [`TileError::Missing`] naming every absent tile, [`TileError::WrongLength`]
/// or the source's [`TileError::Unreadable`].
pub fn consistency_proof_from_tiles(
    size1: u64,
    size2: u64,
    source: &dyn TileSource,
) -> Result<Vec<Hash>, TileError> {
    if size1 == 0 || size1 > size2 {
        return Err(TileError::InvalidSizes { size1, size2 });
    }
    let mut reader = TileReader::new(source, size2);
    let mut proof = Vec::new();
    reader.build_subproof(size1, 0, size2, true, &mut proof)?;
    reader.finish(proof)
}

/// Computes the root of the tree of `size` leaves from its right-edge tiles.
///
/// # Errors
///
/// [`TileError::Missing`] naming every absent tile, [`TileError::WrongLength`]
/// or the source's [`TileError::Unreadable`].
pub fn root_from_tiles(size: u64, source: &dyn TileSource) -> Result<Hash, TileError> {
    let mut reader = TileReader::new(source, size);
    let root = reader.range_hash(0, size)?;
    reader.finish(root)
}

/// Returns the leaf hash at `index` from the level-0 tiles of the tree of `size` leaves.
///
/// # Errors
///
/// [`TileError::IndexOutOfRange`], [`TileError::Missing`],
/// [`TileError::WrongLength`] or the source's [`TileError::Unreadable`].
pub fn leaf_hash_from_tiles(
    index: u64,
    size: u64,
    source: &dyn TileSource,
) -> Result<Hash, TileError> {
    if index >= size {
        return Err(TileError::IndexOutOfRange { index, size });
    }
    let mut reader = TileReader::new(source, size);
    let leaf = reader.stored_hash(0, index)?;
    reader.finish(leaf)
}

/// A tile as the reader keeps it: its stored hashes, or every node computed
/// from them when the source keeps nodes.
enum LoadedTile {
    Hashes(Vec<u8>),
    Nodes(Arc<TileNodes>),
}

/// Reads hashes from the tiles of one tree size, caching each tile and
/// recording absent ones instead of stopping at the first.
pub(super) struct TileReader<'a> {
    source: &'a dyn TileSource,
    size: u64,
    tiles: BTreeMap<(u8, u64), Option<LoadedTile>>,
    missing: BTreeSet<TileId>,
}

impl<'a> TileReader<'a> {
    pub(super) fn new(source: &'a dyn TileSource, size: u64) -> Self {
        Self {
            source,
            size,
            tiles: BTreeMap::new(),
            missing: BTreeSet::new(),
        }
    }

    /// Returns `value` if every tile was present, otherwise the missing tiles.
    ///
    /// Hashes computed while tiles were missing contain placeholders, so a
    /// caller must not use any value unless this returns `Ok`.
    pub(super) fn finish<T>(self, value: T) -> Result<T, TileError> {
        if self.missing.is_empty() {
            Ok(value)
        } else {
            Err(TileError::Missing {
                paths: self.missing.iter().map(TileId::path).collect(),
                truncated: false,
            })
        }
    }

    /// Reports whether any tile was absent so far.
    pub(super) fn has_missing(&self) -> bool {
        !self.missing.is_empty()
    }

    /// Returns the tiles found absent so far.
    pub(super) fn missing(&self) -> impl Iterator<Item = TileId> + '_ {
        self.missing.iter().copied()
    }

    /// Returns stored hash `index` of tile level `level`: the root of the
    /// perfect subtree of height `8·level` at that index.
    pub(super) fn stored_hash(&mut self, level: u8, index: u64) -> Result<Hash, TileError> {
        let tile_index = index / TILE_WIDTH;
        let position = usize::try_from(index % TILE_WIDTH).unwrap_or(usize::MAX);
        let size = self.size;
        let outside = || TileError::OutsideTree {
            path: TileId {
                level,
                index: tile_index,
                width: 256,
            }
            .path(),
            size,
        };
        let id = TileId::for_tree(level, tile_index, self.size).ok_or_else(outside)?;
        if position >= usize::from(id.width) {
            return Err(outside());
        }

        let Some(tile) = self.load(id)? else {
            self.missing.insert(id);
            return Ok([0; HASH_SIZE]);
        };
        match tile {
            LoadedTile::Nodes(nodes) => nodes
                .node(0, index % TILE_WIDTH)
                .copied()
                .ok_or_else(outside),
            LoadedTile::Hashes(data) => {
                let start = position.saturating_mul(HASH_SIZE);
                let bytes = data
                    .get(start..start.saturating_add(HASH_SIZE))
                    .ok_or_else(|| wrong_length(&id, data))?;
                Hash::try_from(bytes).map_err(|_| wrong_length(&id, data))
            }
        }
    }

    /// Returns tile `id` of this tree size, reading it from the source on first
    /// use: its nodes when the source keeps them, else its hashes. Returns
    /// `None` when the source does not store it.
    fn load(&mut self, id: TileId) -> Result<Option<&LoadedTile>, TileError> {
        let key = (id.level, id.index);
        if !self.tiles.contains_key(&key) {
            let loaded = match self.source.tile_nodes(&id)? {
                Some(nodes) => Some(LoadedTile::Nodes(nodes)),
                None => {
                    let data = self.source.hash_tile(id.level, id.index, id.width)?;
                    if let Some(data) = &data {
                        check_tile_length(&id, data)?;
                    }
                    data.map(LoadedTile::Hashes)
                }
            };
            self.tiles.insert(key, loaded);
        }
        Ok(self.tiles.get(&key).and_then(Option::as_ref))
    }

    /// Returns the root of the perfect subtree of `height` at `index` from the
    /// nodes of its tile, or `None` when the source keeps no nodes for that
    /// tile or the subtree is not inside the tree. The caller then hashes
    /// from stored hashes, which records absent tiles and reports errors.
    fn subtree_from_nodes(&mut self, height: u32, index: u64) -> Result<Option<Hash>, TileError> {
        let level = u8::try_from(height / TILE_HEIGHT).map_err(|_| self.out_of_range(index))?;
        let below = height % TILE_HEIGHT;
        let per_tile = TILE_WIDTH >> below;
        let tile_index = index / per_tile;
        let Some(id) = TileId::for_tree(level, tile_index, self.size) else {
            return Ok(None);
        };
        match self.load(id)? {
            Some(LoadedTile::Nodes(nodes)) => Ok(nodes.node(below, index % per_tile).copied()),
            Some(LoadedTile::Hashes(_)) | None => Ok(None),
        }
    }

    /// Returns the root of the perfect subtree of `height` at `index`.
    fn subtree_hash(&mut self, height: u32, index: u64) -> Result<Hash, TileError> {
        if height.is_multiple_of(TILE_HEIGHT) {
            let level = u8::try_from(height / TILE_HEIGHT).map_err(|_| self.out_of_range(index))?;
            return self.stored_hash(level, index);
        }
        if let Some(hash) = self.subtree_from_nodes(height, index)? {
            return Ok(hash);
        }
        self.hash_subtree(height, index)
    }

    /// Computes the root of the perfect subtree of `height` at `index` from
    /// the stored hashes below it.
    fn hash_subtree(&mut self, height: u32, index: u64) -> Result<Hash, TileError> {
        if height.is_multiple_of(TILE_HEIGHT) {
            let level = u8::try_from(height / TILE_HEIGHT).map_err(|_| self.out_of_range(index))?;
            return self.stored_hash(level, index);
        }
        // Tree levels between tile levels are not stored: hash the two children.
        let left_index = index
            .checked_mul(2)
            .ok_or_else(|| self.out_of_range(index))?;
        let child_height = height.saturating_sub(1);
        let left = self.hash_subtree(child_height, left_index)?;
        let right = self.hash_subtree(child_height, left_index | 1)?;
        Ok(node_hash(&left, &right))
    }

    /// Returns the Merkle tree hash of leaves `[start, end)`, where the range
    /// is a perfect subtree or, at the right edge, starts at a multiple of the
    /// largest power of two below its length.
    pub(super) fn range_hash(&mut self, start: u64, end: u64) -> Result<Hash, TileError> {
        let len = end
            .checked_sub(start)
            .ok_or_else(|| self.out_of_range(start))?;
        if len == 0 {
            return Ok(empty_root());
        }
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let height = len.trailing_zeros();
            return self.subtree_hash(height, start >> height);
        }
        let mid = start
            .checked_add(largest_power_of_two_below(len))
            .ok_or_else(|| self.out_of_range(start))?;
        let left = self.range_hash(start, mid)?;
        let right = self.range_hash(mid, end)?;
        Ok(node_hash(&left, &right))
    }

    /// Appends the RFC 6962 `PATH` for leaf `index` within `[start, end)`.
    fn build_path(
        &mut self,
        index: u64,
        start: u64,
        end: u64,
        proof: &mut Vec<Hash>,
    ) -> Result<(), TileError> {
        let len = end.saturating_sub(start);
        if len <= 1 {
            return Ok(());
        }
        let mid = start
            .checked_add(largest_power_of_two_below(len))
            .ok_or_else(|| self.out_of_range(start))?;
        if index < mid {
            self.build_path(index, start, mid, proof)?;
            proof.push(self.range_hash(mid, end)?);
        } else {
            self.build_path(index, mid, end, proof)?;
            proof.push(self.range_hash(start, mid)?);
        }
        Ok(())
    }

    /// Appends the RFC 6962 `SUBPROOF` for the old tree ending at `old_end`
    /// within `[start, end)`; `whole_old_tree` is the RFC's flag `b`.
    fn build_subproof(
        &mut self,
        old_end: u64,
        start: u64,
        end: u64,
        whole_old_tree: bool,
        proof: &mut Vec<Hash>,
    ) -> Result<(), TileError> {
        if old_end == end {
            if !whole_old_tree {
                proof.push(self.range_hash(start, end)?);
            }
            return Ok(());
        }
        let len = end.saturating_sub(start);
        let mid = start
            .checked_add(largest_power_of_two_below(len))
            .ok_or_else(|| self.out_of_range(start))?;
        if old_end <= mid {
            self.build_subproof(old_end, start, mid, whole_old_tree, proof)?;
            proof.push(self.range_hash(mid, end)?);
        } else {
            self.build_subproof(old_end, mid, end, false, proof)?;
            proof.push(self.range_hash(start, mid)?);
        }
        Ok(())
    }

    /// Error for index arithmetic that leaves the tree; callers validate
    /// indexes first, so this marks a broken internal invariant.
    fn out_of_range(&self, index: u64) -> TileError {
        TileError::IndexOutOfRange {
            index,
            size: self.size,
        }
    }
}

/// Checks that tile data consists of whole hashes, at least `id.width` of them
/// and at most a full tile.
pub(super) fn check_tile_length(id: &TileId, data: &[u8]) -> Result<(), TileError> {
    let needed = usize::from(id.width).saturating_mul(HASH_SIZE);
    if !data.len().is_multiple_of(HASH_SIZE) || data.len() < needed || data.len() > FULL_TILE_BYTES
    {
        return Err(wrong_length(id, data));
    }
    Ok(())
}

fn wrong_length(id: &TileId, data: &[u8]) -> TileError {
    TileError::WrongLength {
        path: id.path(),
        got: data.len(),
        want: usize::from(id.width).saturating_mul(HASH_SIZE),
    }
}

/// Returns the largest power of two strictly below `n`, for `n >= 2`.
fn largest_power_of_two_below(n: u64) -> u64 {
    match n.checked_sub(1) {
        Some(below) if below > 0 => 1u64.checked_shl(below.ilog2()).unwrap_or(0),
        _ => 0,
    }
}
