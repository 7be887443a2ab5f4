//! Entry bundle encoding, tile building, and authentication of a tile set
//! against a verified checkpoint before import.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod source;

use source::{MapTileSet, get_listed, ordered};
pub use source::{SetTileSource, TileSetSource};

use super::proof::TileReader;
use super::{EntryBundleId, TILE_WIDTH, TileError, TileId, tile_width_in_tree};
use crate::checkpoint::VerifiedCheckpoint;
use crate::merkle::{HASH_SIZE, Hash, leaf_hash, root_from_leaves};

/// Largest entry an entry bundle can hold, set by its `u16` length prefix.
const MAX_ENTRY_BYTES: usize = 65_535;

/// Number of entries in a full bundle and hashes in a full tile, as `usize`.
const TILE_WIDTH_USIZE: usize = 256;

/// Counts of what [`verify_tile_set`] and [`verify_tile_set_from`] authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSetSummary {
    /// Tree size of the checkpoint the set was checked against.
    pub tree_size: u64,
    /// Root hash of that checkpoint, which the right-edge tiles reproduce.
    pub root_hash: Hash,
    /// Hash tiles of the checkpoint's tree (full and right-edge partial).
    pub hash_tiles: usize,
    /// Partial hash tiles of smaller trees, checked as prefixes of this tree's tiles.
    pub earlier_partial_tiles: usize,
    /// Entry bundles checked against their level-0 tiles.
    pub entry_bundles: usize,
    /// Entries in those bundles.
    pub entries: u64,
}

/// Splits an entry bundle into its entries (each a big-endian `u16` length
/// followed by that many bytes).
///
/// # Errors
///
/// [`TileError::MalformedEntryBundle`] when the data ends inside an entry.
pub fn parse_entry_bundle(data: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    while offset < data.len() {
        let truncated = || TileError::MalformedEntryBundle { path: None, offset };
        let prefix = data
            .get(offset..offset.saturating_add(2))
            .ok_or_else(truncated)?;
        let prefix = <[u8; 2]>::try_from(prefix).map_err(|_| truncated())?;
        let len = usize::from(u16::from_be_bytes(prefix));
        let start = offset.saturating_add(2);
        let end = start.saturating_add(len);
        let entry = data.get(start..end).ok_or_else(truncated)?;
        entries.push(entry);
        offset = end;
    }
    Ok(entries)
}

/// Encodes entries as an entry bundle.
///
/// # Errors
///
/// [`TileError::EntryTooLarge`] for an entry above 65,535 bytes.
pub fn encode_entry_bundle(entries: &[&[u8]]) -> Result<Vec<u8>, TileError> {
    let total = entries
        .iter()
        .map(|entry| entry.len().saturating_add(2))
        .fold(0usize, usize::saturating_add);
    let mut bundle = Vec::with_capacity(total);
    for (index, entry) in entries.iter().enumerate() {
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge {
            index,
            len: entry.len(),
        })?;
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Ok(bundle)
}

/// Builds the hash tiles and entry bundles of a log holding `entries`, keyed
/// by path, as a tlog-tiles log would serve them at that tree size.
///
/// # Errors
///
/// [`TileError::EntryTooLarge`] for an entry above 65,535 bytes.
pub fn build_tiles(entries: &[Vec<u8>]) -> Result<BTreeMap<String, Vec<u8>>, TileError> {
    if let Some((index, entry)) = entries
        .iter()
        .enumerate()
        .find(|(_, entry)| entry.len() > MAX_ENTRY_BYTES)
    {
        return Err(TileError::EntryTooLarge {
            index,
            len: entry.len(),
        });
    }
    let mut files = BTreeMap::new();

    for (index, chunk) in (0u64..).zip(entries.chunks(TILE_WIDTH_USIZE)) {
        let id = EntryBundleId {
            index,
            width: chunk_width(chunk.len()),
        };
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        files.insert(id.path(), encode_entry_bundle(&refs)?);
    }

    let mut hashes: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    let mut level: u8 = 0;
    while !hashes.is_empty() {
        for (index, chunk) in (0u64..).zip(hashes.chunks(TILE_WIDTH_USIZE)) {
            let id = TileId {
                level,
                index,
                width: chunk_width(chunk.len()),
            };
            files.insert(id.path(), chunk.concat());
        }
        // Each full tile's root is one hash of the next tile level.
        hashes = hashes
            .chunks_exact(TILE_WIDTH_USIZE)
            .map(root_from_leaves)
            .collect();
        level = level.saturating_add(1);
    }
    Ok(files)
}

/// Converts a chunk length (1 to 256) to a tile width.
fn chunk_width(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// Maximum number of missing tiles that [`verify_tile_set_from`] names in [`TileError::Missing`].
pub const MAX_LISTED_MISSING: usize = 1000;

/// Number of hash tiles that [`verify_tile_set_from`] keeps in memory to authenticate others.
/// Tiles are walked in path order, so consecutive tiles share their parent and a few slots hit.
const AUTHORITY_CACHE_TILES: usize = 8;

/// Authenticates hash tiles and entry bundles against a verified checkpoint
/// before they are stored, following Go's `sumdb/tlog.TileHashReader`. Both
/// maps are keyed by C2SP path: `tiles` by `tile/<L>/...`, `entry_bundles` by
/// `tile/entries/...`. The checks are those of [`verify_tile_set_from`].
///
/// # Errors
///
/// The errors of [`verify_tile_set_from`].
pub fn verify_tile_set(
    checkpoint: &VerifiedCheckpoint,
    tiles: &BTreeMap<String, Vec<u8>>,
    entry_bundles: &BTreeMap<String, Vec<u8>>,
) -> Result<TileSetSummary, TileError> {
    verify_tile_set_from(
        checkpoint,
        &MapTileSet {
            tiles,
            entry_bundles,
        },
    )
}

/// Authenticates the hash tiles and entry bundles of `set` against a verified
/// checkpoint before they are stored. The checks are:
///
/// 1. every path must be canonical and name a tile or bundle of the
///    checkpoint's tree, with exactly as many hashes or entries as its path states;
/// 2. the right-edge tiles must reproduce the checkpoint's root;
/// 3. each full tile's root must equal its hash in the tile one level up;
/// 4. partial tiles of smaller trees must be prefixes of this tree's tiles;
/// 5. each entry bundle's leaf hashes must equal its level-0 tile.
///
/// The checkpoint's own consistency with earlier checkpoints of the same log
/// is the caller's check.
///
/// Memory does not grow with the number of tiles: the function walks the path
/// lists of `set` again for each step and keeps a fixed number of tiles. It
/// reads each hash tile about three times, and each entry bundle and its
/// level-0 tile once.
///
/// # Errors
///
/// [`TileError::BadPath`], [`TileError::OutsideTree`],
/// [`TileError::WrongLength`], [`TileError::MalformedEntryBundle`],
/// [`TileError::EntryCount`], [`TileError::RootMismatch`],
/// [`TileError::HashMismatch`], or [`TileError::Missing`] naming the tiles
/// the set lacks to authenticate what it contains. That list stops at the
/// [`MAX_LISTED_MISSING`] first tiles in (level, index) order, and the error's
/// `truncated` flag states that the list was cut. [`TileError::Unreadable`] when `set`
/// fails, lists paths out of order, or lacks a path it lists; errors of `set`
/// are returned unchanged.
pub fn verify_tile_set_from(
    checkpoint: &VerifiedCheckpoint,
    set: &dyn TileSetSource,
) -> Result<TileSetSummary, TileError> {
    let size = checkpoint.checkpoint().size;
    let expected_root = checkpoint.checkpoint().root_hash;

    // Step 1: check every hash tile's path and length, and count this tree's
    // tiles and earlier partial tiles.
    let counts = classify_tiles(set, size)?;

    // Step 2: the right edge reproduces the root.
    let mut missing = MissingTiles::default();
    {
        let source = SetTileSource(set);
        let mut reader = TileReader::new(&source, size);
        let root = reader.range_hash(0, size)?;
        if !reader.has_missing() && root != expected_root {
            return Err(TileError::RootMismatch {
                computed: root,
                expected: expected_root,
            });
        }
        for id in reader.missing() {
            missing.insert(id);
        }
    }

    let mut authorities = AuthorityCache::new(set);
    // Step 3: each full tile hashes to its entry in the parent tile.
    check_full_tiles(set, size, &mut authorities, &mut missing)?;
    // Step 4: earlier partial tiles are prefixes of this tree's tiles.
    check_earlier_tiles(set, size, &mut authorities, &mut missing)?;
    // Step 5: entry bundles hash to their level-0 tiles.
    let (entry_bundles, entries) = check_entry_bundles(set, size, &mut authorities, &mut missing)?;

    missing.into_result()?;
    Ok(TileSetSummary {
        tree_size: size,
        root_hash: expected_root,
        hash_tiles: counts.current,
        earlier_partial_tiles: counts.earlier,
        entry_bundles,
        entries,
    })
}

/// Numbers of hash tiles by kind.
struct TileCounts {
    /// Tiles of the checkpoint's tree.
    current: usize,
    /// Partial tiles of smaller trees.
    earlier: usize,
}

/// A hash tile of the set, with the width the checkpoint's tree gives it.
struct ListedTile {
    path: String,
    id: TileId,
    tree_width: u16,
}

/// Parses a hash tile path of the set and checks that the tile exists in the
/// tree of `size` leaves, at most as wide as the tree makes it.
fn parse_listed_tile(path: String, size: u64) -> Result<ListedTile, TileError> {
    let id = TileId::parse_path(&path)?;
    let Some(tree_width) = tile_width_in_tree(id.level, id.index, size) else {
        return Err(TileError::OutsideTree { path, size });
    };
    if id.width > tree_width {
        return Err(TileError::OutsideTree { path, size });
    }
    Ok(ListedTile {
        path,
        id,
        tree_width,
    })
}

/// Walks the hash tiles of `set`, checking each path and length.
fn classify_tiles(set: &dyn TileSetSource, size: u64) -> Result<TileCounts, TileError> {
    let mut counts = TileCounts {
        current: 0,
        earlier: 0,
    };
    for path in ordered(set.hash_tile_paths()) {
        let tile = parse_listed_tile(path?, size)?;
        let data = get_listed(set, &tile.path)?;
        let want = usize::from(tile.id.width).saturating_mul(HASH_SIZE);
        if data.len() != want {
            return Err(TileError::WrongLength {
                path: tile.path,
                got: data.len(),
                want,
            });
        }
        if tile.id.width == tile.tree_width {
            counts.current = counts.current.saturating_add(1);
        } else {
            counts.earlier = counts.earlier.saturating_add(1);
        }
    }
    Ok(counts)
}

/// Checks that each full tile of this tree hashes to its entry in the parent
/// tile, recording absent parents in `missing`.
fn check_full_tiles(
    set: &dyn TileSetSource,
    size: u64,
    authorities: &mut AuthorityCache<'_>,
    missing: &mut MissingTiles,
) -> Result<(), TileError> {
    for path in ordered(set.hash_tile_paths()) {
        let tile = parse_listed_tile(path?, size)?;
        if tile.id.width != tile.tree_width || !tile.id.is_full() {
            continue;
        }
        let parent_level = tile.id.level.saturating_add(1);
        let Some(parent) = TileId::for_tree(parent_level, tile.id.index / TILE_WIDTH, size) else {
            continue;
        };
        let Some(parent_data) = authorities.get(parent)? else {
            missing.insert(parent);
            continue;
        };
        let position = tile.id.index % TILE_WIDTH;
        let expected = hash_at(&parent, parent_data, position)?;
        let data = get_listed(set, &tile.path)?;
        let computed = root_from_leaves(&tile_hashes(&data));
        if computed != expected {
            return Err(TileError::HashMismatch {
                path: tile.id.path(),
                position,
                authority: parent.path(),
                computed,
                expected,
            });
        }
    }
    Ok(())
}

/// Checks that each partial tile of a smaller tree is a prefix of this tree's
/// tile at the same place, recording absent tiles in `missing`.
fn check_earlier_tiles(
    set: &dyn TileSetSource,
    size: u64,
    authorities: &mut AuthorityCache<'_>,
    missing: &mut MissingTiles,
) -> Result<(), TileError> {
    for path in ordered(set.hash_tile_paths()) {
        let tile = parse_listed_tile(path?, size)?;
        if tile.id.width == tile.tree_width {
            continue;
        }
        let Some(authority) = TileId::for_tree(tile.id.level, tile.id.index, size) else {
            continue;
        };
        let data = get_listed(set, &tile.path)?;
        let hashes = tile_hashes(&data);
        let Some(authority_data) = authorities.get(authority)? else {
            missing.insert(authority);
            continue;
        };
        compare_hashes(&tile.path, &hashes, &authority, authority_data)?;
    }
    Ok(())
}

/// Checks entry bundles against this tree's level-0 tiles, recording absent
/// tiles in `missing`. Returns the number of bundles and of entries checked.
fn check_entry_bundles(
    set: &dyn TileSetSource,
    size: u64,
    authorities: &mut AuthorityCache<'_>,
    missing: &mut MissingTiles,
) -> Result<(usize, u64), TileError> {
    let mut bundle_count: usize = 0;
    let mut entry_count: u64 = 0;
    for path in ordered(set.entry_bundle_paths()) {
        let path = path?;
        let id = EntryBundleId::parse_path(&path)?;
        let Some(tree_width) = tile_width_in_tree(0, id.index, size) else {
            return Err(TileError::OutsideTree { path, size });
        };
        if id.width > tree_width {
            return Err(TileError::OutsideTree { path, size });
        }
        let data = get_listed(set, &path)?;
        let entries = parse_entry_bundle(&data).map_err(|err| match err {
            TileError::MalformedEntryBundle { offset, .. } => TileError::MalformedEntryBundle {
                path: Some(path.clone()),
                offset,
            },
            other => other,
        })?;
        if entries.len() != usize::from(id.width) {
            return Err(TileError::EntryCount {
                path,
                got: entries.len(),
                want: u64::from(id.width),
            });
        }
        bundle_count = bundle_count.saturating_add(1);
        entry_count = entry_count.saturating_add(u64::from(id.width));

        let Some(authority) = TileId::for_tree(0, id.index, size) else {
            continue;
        };
        let Some(authority_data) = authorities.get(authority)? else {
            missing.insert(authority);
            continue;
        };
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
        compare_hashes(&path, &leaves, &authority, authority_data)?;
    }
    Ok((bundle_count, entry_count))
}

/// Returns hash `position` of the tile `id` with content `data`.
fn hash_at(id: &TileId, data: &[u8], position: u64) -> Result<Hash, TileError> {
    let wrong_length = || TileError::WrongLength {
        path: id.path(),
        got: data.len(),
        want: usize::from(id.width).saturating_mul(HASH_SIZE),
    };
    let start = usize::try_from(position)
        .map_err(|_| wrong_length())?
        .saturating_mul(HASH_SIZE);
    let bytes = data
        .get(start..start.saturating_add(HASH_SIZE))
        .ok_or_else(wrong_length)?;
    Hash::try_from(bytes).map_err(|_| wrong_length())
}

/// The last few tiles of the checkpoint's tree read from the set, so that a
/// run of tiles with one parent reads that parent once.
struct AuthorityCache<'a> {
    set: &'a dyn TileSetSource,
    /// Tiles by address, most recently added last; `None` records an absent tile.
    slots: VecDeque<(TileId, Option<Cow<'a, [u8]>>)>,
}

impl<'a> AuthorityCache<'a> {
    fn new(set: &'a dyn TileSetSource) -> Self {
        AuthorityCache {
            set,
            slots: VecDeque::with_capacity(AUTHORITY_CACHE_TILES),
        }
    }

    /// Returns the content of the tile `id` of the checkpoint's tree, whose
    /// length step 1 checked, or `None` when the set lacks it.
    fn get(&mut self, id: TileId) -> Result<Option<&[u8]>, TileError> {
        let position = match self.slots.iter().position(|(cached, _)| *cached == id) {
            Some(position) => position,
            None => {
                let data = self.set.get(&id.path())?;
                if let Some(data) = &data {
                    let want = usize::from(id.width).saturating_mul(HASH_SIZE);
                    if data.len() != want {
                        return Err(TileError::WrongLength {
                            path: id.path(),
                            got: data.len(),
                            want,
                        });
                    }
                }
                if self.slots.len() >= AUTHORITY_CACHE_TILES {
                    self.slots.pop_front();
                }
                self.slots.push_back((id, data));
                self.slots.len().saturating_sub(1)
            }
        };
        Ok(self
            .slots
            .get(position)
            .and_then(|(_, data)| data.as_deref()))
    }
}

/// Tiles found absent, keeping only the [`MAX_LISTED_MISSING`] first in
/// (level, index) order.
#[derive(Default)]
struct MissingTiles {
    listed: BTreeSet<TileId>,
    /// Whether a tile beyond the listed ones was dropped.
    truncated: bool,
}

impl MissingTiles {
    fn insert(&mut self, id: TileId) {
        if !self.listed.insert(id) {
            return;
        }
        if self.listed.len() > MAX_LISTED_MISSING {
            self.listed.pop_last();
            self.truncated = true;
        }
    }

    /// Returns [`TileError::Missing`] when any tile was absent.
    fn into_result(self) -> Result<(), TileError> {
        if self.listed.is_empty() {
            return Ok(());
        }
        Err(TileError::Missing {
            paths: self.listed.iter().map(TileId::path).collect(),
            truncated: self.truncated,
        })
    }
}

/// Checks that `hashes`, derived from `path`, equal the first hashes of the
/// authenticated tile `authority`.
fn compare_hashes(
    path: &str,
    hashes: &[Hash],
    authority: &TileId,
    authority_data: &[u8],
) -> Result<(), TileError> {
    let expected_hashes = tile_hashes(authority_data);
    for (position, (computed, expected)) in (0u64..).zip(hashes.iter().zip(expected_hashes.iter()))
    {
        if computed != expected {
            return Err(TileError::HashMismatch {
                path: path.to_owned(),
                position,
                authority: authority.path(),
                computed: *computed,
                expected: *expected,
            });
        }
    }
    if hashes.len() > expected_hashes.len() {
        // Callers compare only sets no wider than the authority, so this
        // marks a broken invariant rather than bad input.
        return Err(TileError::WrongLength {
            path: path.to_owned(),
            got: hashes.len().saturating_mul(HASH_SIZE),
            want: authority_data.len(),
        });
    }
    Ok(())
}

/// Splits tile data into hashes; a trailing partial hash is ignored, since
/// tile lengths are checked before.
fn tile_hashes(data: &[u8]) -> Vec<Hash> {
    data.chunks_exact(HASH_SIZE)
        .filter_map(|chunk| Hash::try_from(chunk).ok())
        .collect()
}
