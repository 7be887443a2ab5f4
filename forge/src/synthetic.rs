//! A tile source for regular trees too large to store.
//!
//! Leaf `i` of a [`PeriodicTree`] is `leaf_hash((i mod 2^p) as big-endian u64)`.
//! Every aligned perfect subtree of height at least `p` then spans whole
//! periods, so all such subtrees of one height share one hash, and a tile of
//! any level is computed from at most `2^(p+1)` memoised node hashes. Proofs
//! from a tree of 2^40 leaves (six tile levels) take milliseconds and write
//! no tile.

use std::cell::RefCell;
use std::collections::HashMap;

use stella_verify::merkle::{Hash, empty_root, leaf_hash, node_hash};
use stella_verify::tiles::{TILE_HEIGHT, TileError, TileId, TileSource};

/// A tree whose leaves repeat with period `2^period_log2`.
#[derive(Debug)]
pub struct PeriodicTree {
    period_log2: u32,
    /// Subtree hashes by (height, index reduced modulo the period).
    memo: RefCell<HashMap<(u32, u64), Hash>>,
}

impl PeriodicTree {
    /// Creates a tree whose leaves repeat every `2^period_log2` leaves;
    /// `period_log2` is clamped to 20 to bound memory.
    pub fn new(period_log2: u32) -> Self {
        Self {
            period_log2: period_log2.min(20),
            memo: RefCell::new(HashMap::new()),
        }
    }

    /// Returns the leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Hash {
        leaf_hash(&self.reduce(0, index).to_be_bytes())
    }

    /// Returns the hash of the perfect subtree of `2^height` leaves that
    /// starts at leaf `index << height`.
    pub fn subtree(&self, height: u32, index: u64) -> Hash {
        let key = (height, self.reduce(height, index));
        if let Some(hash) = self.memo.borrow().get(&key) {
            return *hash;
        }
        let hash = match height.checked_sub(1) {
            None => self.leaf(key.1),
            Some(child) => node_hash(
                &self.subtree(child, key.1.saturating_mul(2)),
                &self.subtree(child, key.1.saturating_mul(2).saturating_add(1)),
            ),
        };
        self.memo.borrow_mut().insert(key, hash);
        hash
    }

    /// Returns the RFC 6962 Merkle tree hash of leaves `[start, end)`. Only
    /// ranges of the RFC 6962 recursion from 0 are valid, because their
    /// left halves are aligned perfect subtrees.
    fn range(&self, start: u64, end: u64) -> Hash {
        let count = end.saturating_sub(start);
        if count == 0 {
            return empty_root();
        }
        if count.is_power_of_two() {
            let height = count.trailing_zeros();
            return self.subtree(height, start.checked_shr(height).unwrap_or(0));
        }
        // Largest power of two strictly below `count`.
        let split = 1u64 << (63 - count.leading_zeros());
        let middle = start.saturating_add(split);
        node_hash(&self.range(start, middle), &self.range(middle, end))
    }

    /// Returns the root of the tree of `size` leaves.
    pub fn root(&self, size: u64) -> Hash {
        self.range(0, size)
    }

    /// Reduces a subtree index modulo the number of distinct subtrees of its height.
    fn reduce(&self, height: u32, index: u64) -> u64 {
        match self.period_log2.checked_sub(height) {
            Some(bits) if bits > 0 => index & ((1u64 << bits) - 1),
            _ => 0,
        }
    }
}

impl TileSource for PeriodicTree {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        let height = TILE_HEIGHT.saturating_mul(u32::from(level));
        let unreadable = |reason: &str| TileError::Unreadable {
            path: TileId {
                level,
                index,
                width,
            }
            .path(),
            reason: reason.to_owned(),
        };
        let first = index
            .checked_mul(256)
            .ok_or_else(|| unreadable("tile index overflows"))?;
        let mut data = Vec::with_capacity(usize::from(width).saturating_mul(32));
        for offset in 0..u64::from(width) {
            let position = first
                .checked_add(offset)
                .ok_or_else(|| unreadable("hash index overflows"))?;
            data.extend_from_slice(&self.subtree(height, position));
        }
        Ok(Some(data))
    }
}
