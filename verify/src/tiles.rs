//! C2SP transparency log tiles (<https://c2sp.org/tlog-tiles>).
//!
//! Hash tile `(L, N)` contains up to 256 hashes of the subtrees of height
//! `8·L` at indexes `N·256 ..`. Its path is `tile/<L>/<N>[.p/<W>]`, with `N`
//! in 3-digit groups (`x001/x234/067`), and `.p/W` only on a partial tile of
//! `W` hashes. Entry bundle `N` (`tile/entries/<N>[.p/<W>]`) contains the entries
//! whose leaf hashes make up level-0 tile `N`, each prefixed by its length as a
//! big-endian `u16`.
//!
//! This module maps tiles to RFC 6962 proofs: [`inclusion_proof_from_tiles`],
//! [`consistency_proof_from_tiles`] and [`root_from_tiles`] compute every hash
//! a proof needs from the tiles of one tree size, including right-edge nodes
//! that no tile stores. They read tiles through [`TileSource`] and report all
//! absent tiles at once as [`TileError::Missing`]. The proofs themselves are
//! untrusted until checked against a verified checkpoint with
//! [`crate::merkle`]. [`verify_tile_set`] authenticates a whole set of tiles
//! and entry bundles against a verified checkpoint before it is stored.
//!
//! [`CachedTiles`] keeps the interior nodes of tiles in a shared, bounded
//! [`TileNodeCache`], so that repeated proofs over the same tiles read nodes
//! instead of hashing.
//!
//! Left out: fetching (callers implement [`TileSource`]), gzip-encoded entry
//! bundles (callers decompress), and pruned logs' minimum index.

use std::collections::BTreeMap;
use std::sync::Arc;

use thiserror::Error;

use crate::merkle::{Hash, base64_text};
use crate::reason::{HasReasonCode, ReasonCode};

mod node_cache;
mod proof;
mod tile_set;

pub use node_cache::{CachedTiles, NodeCacheStats, TileNodeCache, TileNodes};

pub use proof::{
    consistency_proof_from_tiles, inclusion_proof_from_tiles, leaf_hash_from_tiles,
    root_from_tiles, tiles_for_consistency, tiles_for_inclusion,
};
pub use tile_set::{
    MAX_LISTED_MISSING, SetTileSource, TileSetSource, TileSetSummary, build_tiles,
    encode_entry_bundle, parse_entry_bundle, verify_tile_set, verify_tile_set_from,
};

/// Number of hashes in a full tile, and of entries in a full entry bundle.
pub const TILE_WIDTH: u64 = 256;

/// Tree levels covered by one tile level: tile level `L` stores height `8·L`.
pub const TILE_HEIGHT: u32 = 8;

/// Highest tile level a path may name. Level 8 already covers 2^64 leaves.
pub const MAX_TILE_LEVEL: u8 = 63;

/// Number of bytes in a full hash tile.
const FULL_TILE_BYTES: usize = 256 * 32;

/// `TILE_WIDTH` as the width type of [`TileId`].
const FULL_WIDTH: u16 = 256;

/// Errors from tile paths, tile data and proofs built from tiles.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TileError {
    /// Tiles needed for the computation are absent.
    #[error("missing tiles: {}{}", .paths.join(", "), unlisted_note(*.truncated))]
    Missing {
        /// Paths of the absent tiles, in (level, index) order.
        paths: Vec<String>,
        /// Whether more tiles are absent than `paths` lists; only
        /// [`verify_tile_set_from`] cuts its list, at [`MAX_LISTED_MISSING`] paths.
        truncated: bool,
    },
    /// A tile source failed to read a tile.
    #[error("tile {path} could not be read: {reason}")]
    Unreadable { path: String, reason: String },
    /// A path is not a canonical C2SP tile or entry bundle path.
    #[error("{path:?} is not a canonical tlog-tiles path")]
    BadPath { path: String },
    /// A hash tile has the wrong number of bytes.
    #[error("tile {path} has {got} bytes, expected {want}")]
    WrongLength {
        path: String,
        got: usize,
        want: usize,
    },
    /// A tile or entry bundle does not exist in the tree of this size.
    #[error("{path} is not part of the tree of size {size}")]
    OutsideTree { path: String, size: u64 },
    /// A tile or entry bundle disagrees with the tile that authenticates it:
    /// `computed` is derived from `path`, `expected` is hash `position` of `authority`.
    #[error(
        "{path} does not match hash {position} of {authority}: computed {}, expected {}",
        base64_text(.computed),
        base64_text(.expected)
    )]
    HashMismatch {
        path: String,
        position: u64,
        authority: String,
        computed: Hash,
        expected: Hash,
    },
    /// An entry bundle ends inside an entry.
    #[error("entry bundle{}: entry at byte offset {offset} is truncated", .path.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    MalformedEntryBundle { path: Option<String>, offset: usize },
    /// An entry bundle has the wrong number of entries for its path.
    #[error("entry bundle {path} has {got} entries, expected {want}")]
    EntryCount { path: String, got: usize, want: u64 },
    /// An entry is longer than the 65,535 bytes a length prefix can state.
    #[error("entry {index} has {len} bytes, more than the maximum of 65535")]
    EntryTooLarge { index: usize, len: usize },
    /// The root rebuilt from tiles differs from the checkpoint's root.
    #[error("root rebuilt from tiles {} does not match checkpoint root {}", base64_text(.computed), base64_text(.expected))]
    RootMismatch { computed: Hash, expected: Hash },
    /// A leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// Consistency between these sizes is undefined: the old size is 0 or above the new size.
    #[error("invalid consistency sizes: old size {size1}, new size {size2} (need 0 < old <= new)")]
    InvalidSizes { size1: u64, size2: u64 },
}

/// Returns the tail of the [`TileError::Missing`] message: empty when every
/// absent tile is listed.
fn unlisted_note(truncated: bool) -> String {
    if truncated {
        format!(" and more tiles (only the first {MAX_LISTED_MISSING} are listed)")
    } else {
        String::new()
    }
}

impl HasReasonCode for TileError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            TileError::Missing { .. } | TileError::Unreadable { .. } => {
                ReasonCode::RekorTileMissing
            }
            TileError::BadPath { .. }
            | TileError::WrongLength { .. }
            | TileError::OutsideTree { .. }
            | TileError::HashMismatch { .. }
            | TileError::MalformedEntryBundle { .. }
            | TileError::EntryCount { .. }
            | TileError::EntryTooLarge { .. } => ReasonCode::RekorTileInvalid,
            TileError::RootMismatch { .. } => ReasonCode::RekorRootMismatch,
            TileError::IndexOutOfRange { .. } | TileError::InvalidSizes { .. } => {
                ReasonCode::RekorProofInvalid
            }
        }
    }
}

/// The address of a hash tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// Tile level `L`: the tile stores subtree hashes of height `8·L`.
    pub level: u8,
    /// Tile index `N` within the level.
    pub index: u64,
    /// Number of hashes, 1 to 256; 256 is a full tile.
    pub width: u16,
}

impl TileId {
    /// Returns the tile `(level, index)` of the tree with `size` leaves, with
    /// its width at that size, or `None` if the tree has no such tile.
    pub fn for_tree(level: u8, index: u64, size: u64) -> Option<TileId> {
        let width = tile_width_in_tree(level, index, size)?;
        Some(TileId {
            level,
            index,
            width,
        })
    }

    /// Reports whether this is a full tile of 256 hashes.
    pub fn is_full(&self) -> bool {
        self.width >= FULL_WIDTH
    }

    /// Formats the tile path, such as `tile/0/x001/234.p/17`.
    pub fn path(&self) -> String {
        let index = format_index(self.index);
        if self.is_full() {
            format!("tile/{}/{index}", self.level)
        } else {
            format!("tile/{}/{index}.p/{}", self.level, self.width)
        }
    }

    /// Parses a canonical hash tile path.
    ///
    /// # Errors
    ///
    /// [`TileError::BadPath`] unless `path` is exactly what [`TileId::path`]
    /// writes for a level of at most 63 and a width of 1 to 256.
    pub fn parse_path(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::BadPath {
            path: path.to_owned(),
        };
        let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
        let (level, rest) = rest.split_once('/').ok_or_else(bad)?;
        let level = parse_decimal(level)
            .and_then(|level| u8::try_from(level).ok())
            .filter(|&level| level <= MAX_TILE_LEVEL);
        let level = level.ok_or_else(bad)?;
        let (index, width) = parse_index_and_width(rest).ok_or_else(bad)?;
        let id = TileId {
            level,
            index,
            width,
        };
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }
}

/// The address of an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryBundleId {
    /// Bundle index `N`, the same as its level-0 hash tile.
    pub index: u64,
    /// Number of entries, 1 to 256; 256 is a full bundle.
    pub width: u16,
}

impl EntryBundleId {
    /// Formats the bundle path, such as `tile/entries/x001/234.p/17`.
    pub fn path(&self) -> String {
        let index = format_index(self.index);
        if self.width < FULL_WIDTH {
            format!("tile/entries/{index}.p/{}", self.width)
        } else {
            format!("tile/entries/{index}")
        }
    }

    /// Parses a canonical entry bundle path.
    ///
    /// # Errors
    ///
    /// [`TileError::BadPath`] unless `path` is exactly what
    /// [`EntryBundleId::path`] writes for a width of 1 to 256.
    pub fn parse_path(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::BadPath {
            path: path.to_owned(),
        };
        let rest = path.strip_prefix("tile/entries/").ok_or_else(bad)?;
        let (index, width) = parse_index_and_width(rest).ok_or_else(bad)?;
        let id = EntryBundleId { index, width };
        if id.path() != path {
            return Err(bad());
        }
        Ok(id)
    }
}

/// Formats a tile index in 3-digit groups, each but the last prefixed by `x`.
fn format_index(index: u64) -> String {
    let mut text = format!("{:03}", index % 1000);
    let mut rest = index / 1000;
    while rest > 0 {
        text = format!("x{:03}/{text}", rest % 1000);
        rest /= 1000;
    }
    text
}

/// Parses `<index groups>[.p/<width>]`; canonical form is checked by the caller.
fn parse_index_and_width(text: &str) -> Option<(u64, u16)> {
    let (groups, width) = match text.split_once(".p/") {
        Some((groups, width)) => {
            let width = parse_decimal(width)
                .and_then(|width| u16::try_from(width).ok())
                .filter(|width| (1..FULL_WIDTH).contains(width))?;
            (groups, width)
        }
        None => (text, FULL_WIDTH),
    };

    let parts: Vec<&str> = groups.split('/').collect();
    let (last, leading) = parts.split_last()?;
    let mut index: u64 = 0;
    for group in leading {
        index = push_group(index, group.strip_prefix('x')?)?;
    }
    index = push_group(index, last)?;
    Some((index, width))
}

fn push_group(index: u64, group: &str) -> Option<u64> {
    if group.len() != 3 || !group.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let value: u64 = group.parse().ok()?;
    index.checked_mul(1000)?.checked_add(value)
}

/// Parses an ASCII decimal without sign or leading zeros.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Returns the width of tile `(level, index)` in the tree with `size` leaves:
/// 256 for a full tile, `(size >> 8·level) mod 256` for the right-edge partial
/// tile, or `None` if the tree has no such tile.
fn tile_width_in_tree(level: u8, index: u64, size: u64) -> Option<u16> {
    let hashes_at_level = size
        .checked_shr(TILE_HEIGHT.checked_mul(u32::from(level))?)
        .unwrap_or(0);
    let full_tiles = hashes_at_level / TILE_WIDTH;
    if index < full_tiles {
        return Some(FULL_WIDTH);
    }
    let width = u16::try_from(hashes_at_level % TILE_WIDTH).ok()?;
    (index == full_tiles && width > 0).then_some(width)
}

/// Read access to stored hash tiles.
pub trait TileSource {
    /// Returns the stored hash tile `(level, index)` with at least `width`
    /// hashes. A full tile, or a wider partial tile, may be returned for a
    /// partial request, because the first hashes of a tile never change as the
    /// log grows. Returns `Ok(None)` when the source does not store it.
    ///
    /// # Errors
    ///
    /// [`TileError::Unreadable`] when the source fails; absence is not an error.
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError>;

    /// Returns every interior node of hash tile `id`, computed from its first `id.width`
    /// hashes, when this source keeps such nodes ([`CachedTiles`] does). The proof functions
    /// call this before [`TileSource::hash_tile`] and use the nodes instead of hashing inside
    /// the tile. The default returns `Ok(None)`, so the tile is read with `hash_tile`. A
    /// source that keeps nodes also returns `Ok(None)` for a tile it does not store.
    ///
    /// # Errors
    ///
    /// [`TileError::Unreadable`] when the source fails, and [`TileError::WrongLength`] for a
    /// stored tile of the wrong length.
    fn tile_nodes(&self, id: &TileId) -> Result<Option<Arc<TileNodes>>, TileError> {
        let _ = id;
        Ok(None)
    }
}

/// Tiles keyed by their C2SP path (`tile/0/000.p/5`), as read from a tiles
/// directory or archive. Other keys, such as entry bundles, are ignored.
impl TileSource for BTreeMap<String, Vec<u8>> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        // Try the exact width, then the full tile, then wider partial tiles.
        let mut candidates = vec![width];
        if width < FULL_WIDTH {
            candidates.push(FULL_WIDTH);
            candidates.extend(width.saturating_add(1)..FULL_WIDTH);
        }
        for candidate in candidates {
            let path = TileId {
                level,
                index,
                width: candidate,
            }
            .path();
            if let Some(data) = self.get(&path) {
                return Ok(Some(data.clone()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_path_examples() {
        let rows = [
            (
                "index zero",
                TileId {
                    level: 0,
                    index: 0,
                    width: 256,
                },
                "tile/0/000",
            ),
            (
                "partial",
                TileId {
                    level: 0,
                    index: 0,
                    width: 15,
                },
                "tile/0/000.p/15",
            ),
            (
                "grouped",
                TileId {
                    level: 0,
                    index: 1_234_067,
                    width: 256,
                },
                "tile/0/x001/x234/067",
            ),
            (
                "grouped partial",
                TileId {
                    level: 0,
                    index: 1234,
                    width: 17,
                },
                "tile/0/x001/234.p/17",
            ),
            (
                "level 2",
                TileId {
                    level: 2,
                    index: 0,
                    width: 61,
                },
                "tile/2/000.p/61",
            ),
            (
                "rekor v2",
                TileId {
                    level: 0,
                    index: 15_728,
                    width: 111,
                },
                "tile/0/x015/728.p/111",
            ),
            (
                "u64 max",
                TileId {
                    level: 63,
                    index: u64::MAX,
                    width: 256,
                },
                "tile/63/x018/x446/x744/x073/x709/x551/615",
            ),
        ];
        for (name, id, path) in rows {
            assert_eq!(id.path(), path, "row {name}");
            assert_eq!(TileId::parse_path(path), Ok(id), "row {name}");
        }
    }

    #[test]
    fn tile_path_non_canonical_rejected() {
        let rows = [
            ("missing prefix", "0/000"),
            ("entries", "tile/entries/000"),
            ("level leading zero", "tile/00/000"),
            ("level too high", "tile/64/000"),
            ("two digits", "tile/0/00"),
            ("four digits", "tile/0/0000"),
            ("x on last group", "tile/0/x000"),
            ("missing x", "tile/0/001/234"),
            ("leading zero group", "tile/0/x000/001"),
            ("width zero", "tile/0/000.p/0"),
            ("width 256", "tile/0/000.p/256"),
            ("width leading zero", "tile/0/000.p/07"),
            ("index overflow", "tile/0/x018/x446/x744/x073/x709/x551/616"),
            ("trailing slash", "tile/0/000/"),
            ("empty", ""),
        ];
        for (name, path) in rows {
            assert_eq!(
                TileId::parse_path(path),
                Err(TileError::BadPath {
                    path: path.to_owned()
                }),
                "row {name}"
            );
        }
    }

    #[test]
    fn entry_bundle_paths() {
        let id = EntryBundleId {
            index: 1234,
            width: 17,
        };
        assert_eq!(id.path(), "tile/entries/x001/234.p/17");
        assert_eq!(
            EntryBundleId::parse_path("tile/entries/x001/234.p/17"),
            Ok(id)
        );
        assert_eq!(
            EntryBundleId::parse_path("tile/entries/000"),
            Ok(EntryBundleId {
                index: 0,
                width: 256
            })
        );
        for path in ["tile/0/000", "tile/entries/000.p/0", "tile/entries/0"] {
            assert_eq!(
                EntryBundleId::parse_path(path),
                Err(TileError::BadPath {
                    path: path.to_owned()
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn tile_widths_for_size_70000() {
        // The tlog-tiles example: 273 full level-0 tiles, 0/273.p/112, 1/000, 1/001.p/17, 2/000.p/1.
        let size = 70_000;
        assert_eq!(tile_width_in_tree(0, 272, size), Some(256));
        assert_eq!(tile_width_in_tree(0, 273, size), Some(112));
        assert_eq!(tile_width_in_tree(0, 274, size), None);
        assert_eq!(tile_width_in_tree(1, 0, size), Some(256));
        assert_eq!(tile_width_in_tree(1, 1, size), Some(17));
        assert_eq!(tile_width_in_tree(2, 0, size), Some(1));
        assert_eq!(tile_width_in_tree(3, 0, size), None);
        assert_eq!(tile_width_in_tree(63, 0, u64::MAX), None);
        assert_eq!(tile_width_in_tree(7, 0, u64::MAX), Some(255));
    }

    #[test]
    fn map_source_falls_back_to_wider_tiles() {
        let mut tiles = BTreeMap::new();
        tiles.insert("tile/0/000.p/9".to_owned(), vec![9; 9 * 32]);
        tiles.insert("tile/0/001".to_owned(), vec![1; 8192]);
        tiles.insert("tile/0/001.p/5".to_owned(), vec![5; 5 * 32]);
        tiles.insert("tile/0/001.p/7".to_owned(), vec![7; 7 * 32]);

        let read = |level, index, width| tiles.hash_tile(level, index, width).expect("map source");
        assert_eq!(read(0, 0, 9), Some(vec![9; 9 * 32]), "exact");
        assert_eq!(read(0, 0, 3), Some(vec![9; 9 * 32]), "wider partial");
        assert_eq!(read(0, 0, 10), None, "narrower only");
        assert_eq!(read(0, 1, 5), Some(vec![5; 5 * 32]), "exact before full");
        assert_eq!(
            read(0, 1, 6),
            Some(vec![1; 8192]),
            "full before wider partial"
        );
        assert_eq!(read(0, 1, 256), Some(vec![1; 8192]), "full");
        assert_eq!(read(1, 0, 1), None, "absent");
    }

    #[test]
    fn missing_error_lists_paths() {
        let err = TileError::Missing {
            paths: vec!["tile/0/000.p/5".into(), "tile/1/000.p/2".into()],
            truncated: false,
        };
        assert_eq!(
            err.to_string(),
            "missing tiles: tile/0/000.p/5, tile/1/000.p/2"
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorTileMissing);
    }

    #[test]
    fn missing_error_states_cut_list() {
        let err = TileError::Missing {
            paths: vec!["tile/0/000".into()],
            truncated: true,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "missing tiles: tile/0/000 and more tiles (only the first {MAX_LISTED_MISSING} are listed)"
            )
        );
    }
}
