//! Streaming construction of the hash tiles of a tlog-tiles log.
//!
//! Leaf hashes arrive in log order. Each level keeps one buffer of at most
//! 256 hashes. A full buffer is written as a full tile, and its subtree hash
//! is appended to the level above. [`TileBuilder::finish`] writes the
//! right-edge partial tiles and computes the root from them alone, because
//! the root of a tree of `size` leaves reads only those tiles.

use std::collections::BTreeMap;

use stella_verify::merkle::{Hash, empty_root, root_from_leaves};
use stella_verify::tiles::{TileId, root_from_tiles};

use crate::error::ForgeError;
use crate::sink::TileSink;

/// Number of hashes in a full tile, as `usize`.
const FULL: usize = 256;

/// Builds hash tiles from leaf hashes appended in log order.
#[derive(Debug, Default)]
pub struct TileBuilder {
    /// Hashes of the current, not yet full, tile of each level.
    pending: Vec<Vec<Hash>>,
    /// Number of full tiles written at each level.
    full_tiles: Vec<u64>,
    /// Number of leaves appended.
    size: u64,
}

impl TileBuilder {
    /// Creates a builder for an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the next leaf hash, writing every tile it completes to `sink`.
    ///
    /// # Errors
    ///
    /// [`ForgeError::SizeOverflow`] past 2^64 − 1 leaves, or the sink's error.
    pub fn push_leaf(&mut self, leaf: Hash, sink: &mut dyn TileSink) -> Result<(), ForgeError> {
        self.size = self
            .size
            .checked_add(1)
            .ok_or(ForgeError::SizeOverflow { size: self.size })?;
        let mut level = 0usize;
        let mut hash = leaf;
        loop {
            if self.pending.len() <= level {
                self.pending.push(Vec::with_capacity(FULL));
                self.full_tiles.push(0);
            }
            let buffer = &mut self.pending[level];
            buffer.push(hash);
            if buffer.len() < FULL {
                return Ok(());
            }

            // The tile of this level is full: write it and carry its subtree hash up.
            let index = self.full_tiles[level];
            let id = TileId {
                level: tile_level(level, self.size)?,
                index,
                width: 256,
            };
            sink.put_tile(&id.path(), buffer.concat())?;
            hash = root_from_leaves(buffer);
            buffer.clear();
            self.full_tiles[level] = index.saturating_add(1);
            level = level.saturating_add(1);
        }
    }

    /// Writes the right-edge partial tiles and returns the tree's root hash.
    ///
    /// # Errors
    ///
    /// The sink's error, or a [`ForgeError::Tile`] if the partial tiles do not
    /// determine the root (a bug in this builder).
    pub fn finish(self, sink: &mut dyn TileSink) -> Result<Hash, ForgeError> {
        if self.size == 0 {
            return Ok(empty_root());
        }
        let mut edge = BTreeMap::new();
        for (level, (buffer, full_tiles)) in self.pending.iter().zip(&self.full_tiles).enumerate() {
            let Ok(width) = u16::try_from(buffer.len()) else {
                continue;
            };
            if width == 0 {
                continue;
            }
            let id = TileId {
                level: tile_level(level, self.size)?,
                index: *full_tiles,
                width,
            };
            let data = buffer.concat();
            sink.put_tile(&id.path(), data.clone())?;
            edge.insert(id.path(), data);
        }
        Ok(root_from_tiles(self.size, &edge)?)
    }
}

/// Converts a level number to a tile level; levels above 255 cannot occur
/// below 2^64 leaves.
fn tile_level(level: usize, size: u64) -> Result<u8, ForgeError> {
    u8::try_from(level).map_err(|_| ForgeError::SizeOverflow { size })
}
