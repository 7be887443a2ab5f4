//! A bounded, thread-safe cache of the interior nodes of hash tiles.
//!
//! A hash tile of width `w` stores the roots of `w` adjacent subtrees of height `8·L`. Those
//! hashes are the leaves of a small perfect-subtree forest of 8 more tree levels. Without a
//! cache, every proof rehashes the sibling subtrees it needs inside each tile (about 247 node
//! hashes per full tile). [`TileNodes`] computes every node of that forest once, and
//! [`TileNodeCache`] keeps the results of a fixed number of tiles, evicted by the CLOCK
//! algorithm. [`CachedTiles`] puts a cache in front of any [`TileSource`], so the proof
//! functions of [`crate::tiles`] read nodes instead of hashing.
//!
//! A tile of a given width is immutable in a log that never forks: a full tile never changes,
//! and the partial tile `.p/W` is always the first `W` hashes of the full one. Entries are keyed
//! by a caller-chosen log key plus (level, index, width), so another log or another width never
//! hits. The cache therefore never changes a result, provided that one log key names one tree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::proof::check_tile_length;
use super::{TILE_HEIGHT, TileError, TileId, TileSource};
use crate::merkle::{HASH_SIZE, Hash, node_hash};

/// Every node of the subtrees that the hashes of one tile form.
///
/// Height 0 contains the tile's `width` stored hashes, and height `h` contains the
/// `width >> h` roots of the perfect subtrees of `2^h` stored hashes, up to height 8. A full
/// tile has 256 + 128 + ... + 1 = 511 nodes (16,352 bytes). A partial tile has fewer nodes and
/// no root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileNodes {
    width: u16,
    /// Nodes by height, then position: height 0 first.
    nodes: Vec<Hash>,
}

impl TileNodes {
    /// Hashes every interior node of tile `id` from its data. Only the first `id.width` hashes
    /// are used, so a full or wider tile can stand in for a partial one.
    ///
    /// # Errors
    ///
    /// [`TileError::WrongLength`] unless `data` consists of whole hashes, at least `id.width` of
    /// them and at most 256.
    pub fn from_tile(id: &TileId, data: &[u8]) -> Result<TileNodes, TileError> {
        check_tile_length(id, data)?;
        let width = usize::from(id.width);
        let mut nodes: Vec<Hash> = Vec::with_capacity(width.saturating_mul(2));
        nodes.extend(
            data.chunks_exact(HASH_SIZE)
                .take(width)
                .filter_map(|chunk| Hash::try_from(chunk).ok()),
        );

        // Each height pairs up the nodes of the height below it; a trailing odd node has no
        // sibling inside the tile and gets no parent.
        let mut below_start: usize = 0;
        let mut below_len = width;
        for _ in 0..TILE_HEIGHT {
            let parents = below_len / 2;
            for position in 0..parents {
                let left = below_start.saturating_add(position.saturating_mul(2));
                let (Some(left_hash), Some(right_hash)) =
                    (nodes.get(left), nodes.get(left.saturating_add(1)))
                else {
                    break;
                };
                let parent = node_hash(left_hash, right_hash);
                nodes.push(parent);
            }
            below_start = below_start.saturating_add(below_len);
            below_len = parents;
        }
        Ok(TileNodes {
            width: id.width,
            nodes,
        })
    }

    /// Number of stored hashes the nodes were computed from.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Returns the root of the perfect subtree of `2^height` stored hashes that starts at
    /// stored hash `position << height`, or `None` when that subtree does not lie inside the
    /// tile's width or `height` is above 8.
    pub fn node(&self, height: u32, position: u64) -> Option<&Hash> {
        if height > TILE_HEIGHT {
            return None;
        }
        let width = usize::from(self.width);
        let count = width.checked_shr(height)?;
        let position = usize::try_from(position)
            .ok()
            .filter(|&position| position < count)?;
        // Offset of height `height`: the sum of the node counts of all lower heights.
        let offset: usize = (0..height).map(|lower| width >> lower).sum();
        self.nodes.get(offset.checked_add(position)?)
    }

    /// Number of nodes kept, stored hashes included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Reports whether the tile had no hashes, which a valid tile never has.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Counters of a [`TileNodeCache`] since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that found no entry, so the caller hashed the tile.
    pub misses: u64,
    /// Entries dropped to make room for new ones.
    pub evictions: u64,
    /// Entries held now.
    pub entries: usize,
}

/// A cache of [`TileNodes`] for at most a fixed number of tiles, shared across threads.
///
/// Memory: about 16.5 KiB per full tile (511 hashes of 32 bytes plus bookkeeping), so the
/// attestor's 4,096 tiles take about 66 MiB when full. Partial tiles take less. Eviction follows
/// the CLOCK algorithm: a hit sets the entry's reference bit, and the eviction hand skips (and
/// clears) referenced entries once before it drops one. The lock is held only for the lookup or
/// insert, never while hashing.
#[derive(Debug)]
pub struct TileNodeCache {
    capacity: usize,
    state: Mutex<ClockState>,
}

/// Entries of the cache and the position of the CLOCK hand.
#[derive(Debug, Default)]
struct ClockState {
    /// Slot of each entry, by log key and tile.
    slots_by_key: HashMap<String, HashMap<TileId, usize>>,
    slots: Vec<Slot>,
    hand: usize,
    stats: NodeCacheStats,
}

#[derive(Debug)]
struct Slot {
    log: String,
    tile: TileId,
    nodes: Arc<TileNodes>,
    referenced: bool,
}

impl TileNodeCache {
    /// Creates a cache that keeps the nodes of at most `capacity` tiles. With a capacity of 0
    /// it keeps nothing, and [`CachedTiles`] hashes every tile again on each read.
    pub fn new(capacity: usize) -> TileNodeCache {
        TileNodeCache {
            capacity,
            state: Mutex::new(ClockState::default()),
        }
    }

    /// Maximum number of tiles kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns the hit, miss and eviction counters and the number of entries.
    pub fn stats(&self) -> NodeCacheStats {
        let state = self.lock();
        NodeCacheStats {
            entries: state.slots.len(),
            ..state.stats
        }
    }

    /// Returns the cached nodes of `tile` of log `log`, counting a hit or a miss.
    pub fn get(&self, log: &str, tile: &TileId) -> Option<Arc<TileNodes>> {
        let mut state = self.lock();
        let slot_index = state
            .slots_by_key
            .get(log)
            .and_then(|tiles| tiles.get(tile))
            .copied();
        let found = slot_index
            .and_then(|index| state.slots.get_mut(index))
            .map(|slot| {
                slot.referenced = true;
                Arc::clone(&slot.nodes)
            });
        if found.is_some() {
            state.stats.hits = state.stats.hits.saturating_add(1);
        } else {
            state.stats.misses = state.stats.misses.saturating_add(1);
        }
        found
    }

    /// Stores the nodes of `tile` of log `log` and returns the cached entry. When another
    /// thread stored the same tile first, its entry is kept and returned instead.
    pub fn insert(&self, log: &str, tile: TileId, nodes: TileNodes) -> Arc<TileNodes> {
        let nodes = Arc::new(nodes);
        if self.capacity == 0 {
            return nodes;
        }
        let mut state = self.lock();
        let existing = state
            .slots_by_key
            .get(log)
            .and_then(|tiles| tiles.get(&tile))
            .and_then(|&index| state.slots.get(index))
            .map(|slot| Arc::clone(&slot.nodes));
        if let Some(existing) = existing {
            return existing;
        }

        let slot = Slot {
            log: log.to_owned(),
            tile,
            nodes: Arc::clone(&nodes),
            referenced: false,
        };
        let index = if state.slots.len() < self.capacity {
            state.slots.push(slot);
            state.slots.len().saturating_sub(1)
        } else {
            let victim = state.advance_hand();
            if let Some(old) = state
                .slots
                .get_mut(victim)
                .map(|old| std::mem::replace(old, slot))
            {
                state.forget(&old.log, &old.tile);
                state.stats.evictions = state.stats.evictions.saturating_add(1);
            }
            victim
        };
        state
            .slots_by_key
            .entry(log.to_owned())
            .or_default()
            .insert(tile, index);
        nodes
    }

    /// Locks the state. A panic in another thread while it held the lock cannot leave an entry
    /// half-written (each update is a few plain stores), so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClockState {
    /// Moves the hand to the next unreferenced slot, clearing reference bits on the way, and
    /// returns that slot's index. The hand then points past it. The slots must not be empty.
    fn advance_hand(&mut self) -> usize {
        let len = self.slots.len();
        // Two rounds always reach an unreferenced slot: the first round clears every bit.
        for _ in 0..len.saturating_mul(2) {
            let index = self.hand % len.max(1);
            self.hand = index.saturating_add(1) % len.max(1);
            match self.slots.get_mut(index) {
                Some(slot) if slot.referenced => slot.referenced = false,
                _ => return index,
            }
        }
        self.hand
    }

    fn forget(&mut self, log: &str, tile: &TileId) {
        if let Some(tiles) = self.slots_by_key.get_mut(log) {
            tiles.remove(tile);
            if tiles.is_empty() {
                self.slots_by_key.remove(log);
            }
        }
    }
}

/// A [`TileSource`] that serves the tiles of `source` and keeps their interior nodes in a
/// shared [`TileNodeCache`] under the key `log`.
///
/// The proof functions of [`crate::tiles`] take their hashes from the cached nodes when given
/// this source, and their results are the same as with `source` alone. `log` must name one
/// tree: use a distinct key for each log (its origin) and for each store that might hold a
/// different copy of it.
pub struct CachedTiles<'a> {
    source: &'a dyn TileSource,
    cache: &'a TileNodeCache,
    log: &'a str,
}

impl<'a> CachedTiles<'a> {
    /// Serves `source` through `cache`, with its entries keyed by `log`.
    pub fn new(
        source: &'a dyn TileSource,
        cache: &'a TileNodeCache,
        log: &'a str,
    ) -> CachedTiles<'a> {
        CachedTiles { source, cache, log }
    }
}

impl TileSource for CachedTiles<'_> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        self.source.hash_tile(level, index, width)
    }

    fn tile_nodes(&self, id: &TileId) -> Result<Option<Arc<TileNodes>>, TileError> {
        if let Some(nodes) = self.cache.get(self.log, id) {
            return Ok(Some(nodes));
        }
        let Some(data) = self.source.hash_tile(id.level, id.index, id.width)? else {
            // NOTE: the reader then asks `hash_tile` again, so an absent tile costs two reads.
            return Ok(None);
        };
        let nodes = TileNodes::from_tile(id, &data)?;
        Ok(Some(self.cache.insert(self.log, *id, nodes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root_from_leaves};

    fn hashes(count: u64) -> Vec<Hash> {
        (0..count).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn tile(level: u8, index: u64, width: u16) -> TileId {
        TileId {
            level,
            index,
            width,
        }
    }

    #[test]
    fn nodes_equal_subtree_roots() {
        for width in [1u16, 2, 3, 17, 128, 255, 256] {
            let stored = hashes(u64::from(width));
            let nodes = TileNodes::from_tile(&tile(0, 0, width), &stored.concat()).expect("nodes");
            for height in 0..=TILE_HEIGHT {
                let span = 1usize << height;
                let count = usize::from(width) >> height;
                for position in 0..count {
                    let start = position * span;
                    let expected = root_from_leaves(&stored[start..start + span]);
                    let position = u64::try_from(position).expect("position");
                    assert_eq!(
                        nodes.node(height, position),
                        Some(&expected),
                        "width {width} height {height} position {position}"
                    );
                }
                let count = u64::try_from(count).expect("count");
                assert_eq!(
                    nodes.node(height, count),
                    None,
                    "width {width} height {height} past end"
                );
            }
            assert_eq!(
                nodes.node(TILE_HEIGHT + 1, 0),
                None,
                "width {width} above tile height"
            );
        }
    }

    #[test]
    fn full_tile_has_511_nodes() {
        let nodes = TileNodes::from_tile(&tile(0, 0, 256), &hashes(256).concat()).expect("nodes");
        assert_eq!(nodes.len(), 511);
        assert_eq!(nodes.node(8, 0), Some(&root_from_leaves(&hashes(256))));
    }

    #[test]
    fn wider_data_uses_first_hashes() {
        let full = hashes(256);
        let narrow = TileNodes::from_tile(&tile(0, 0, 10), &full.concat()).expect("nodes");
        let exact = TileNodes::from_tile(&tile(0, 0, 10), &full[..10].concat()).expect("nodes");
        assert_eq!(narrow, exact);
    }

    #[test]
    fn short_data_rejected() {
        let err = TileNodes::from_tile(&tile(1, 2, 5), &hashes(4).concat()).expect_err("short");
        assert_eq!(
            err,
            TileError::WrongLength {
                path: "tile/1/002.p/5".to_owned(),
                got: 128,
                want: 160
            }
        );
    }

    #[test]
    fn cache_keys_by_log_and_width() {
        let cache = TileNodeCache::new(8);
        let nodes = TileNodes::from_tile(&tile(0, 0, 4), &hashes(4).concat()).expect("nodes");
        cache.insert("log-a", tile(0, 0, 4), nodes);
        assert!(cache.get("log-a", &tile(0, 0, 4)).is_some(), "same key");
        assert!(cache.get("log-b", &tile(0, 0, 4)).is_none(), "other log");
        assert!(cache.get("log-a", &tile(0, 0, 5)).is_none(), "other width");
        assert!(cache.get("log-a", &tile(1, 0, 4)).is_none(), "other level");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 1));
    }

    #[test]
    fn cache_stays_within_capacity() {
        let cache = TileNodeCache::new(3);
        let data = hashes(2).concat();
        for index in 0..10u64 {
            let id = tile(0, index, 2);
            cache.insert("log", id, TileNodes::from_tile(&id, &data).expect("nodes"));
            assert!(cache.stats().entries <= 3, "after insert {index}");
        }
        let stats = cache.stats();
        assert_eq!(stats.entries, 3);
        assert_eq!(stats.evictions, 7);
        let kept = (0..10u64)
            .filter(|&index| cache.get("log", &tile(0, index, 2)).is_some())
            .count();
        assert_eq!(kept, 3);
    }

    #[test]
    fn clock_keeps_referenced_entry() {
        let cache = TileNodeCache::new(2);
        let data = hashes(2).concat();
        let insert = |index: u64| {
            let id = tile(0, index, 2);
            cache.insert("log", id, TileNodes::from_tile(&id, &data).expect("nodes"));
        };
        insert(0);
        insert(1);
        assert!(cache.get("log", &tile(0, 0, 2)).is_some(), "tile 0 cached");
        // The hand passes referenced tile 0 and evicts tile 1.
        insert(2);
        assert!(cache.get("log", &tile(0, 0, 2)).is_some(), "tile 0 kept");
        assert!(cache.get("log", &tile(0, 1, 2)).is_none(), "tile 1 evicted");
        assert!(cache.get("log", &tile(0, 2, 2)).is_some(), "tile 2 cached");
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let cache = TileNodeCache::new(0);
        let id = tile(0, 0, 2);
        let nodes = cache.insert(
            "log",
            id,
            TileNodes::from_tile(&id, &hashes(2).concat()).expect("nodes"),
        );
        assert_eq!(nodes.width(), 2);
        assert!(cache.get("log", &id).is_none());
        assert_eq!(cache.stats().entries, 0);
    }
}
