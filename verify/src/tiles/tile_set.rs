//! Entry bundle encoding, tile building, and authentication of a tile set
//! against a verified checkpoint before import.

use std::collections::{BTreeMap, BTreeSet};

use super::proof::TileReader;
use super::{EntryBundleId, TILE_WIDTH, TileError, TileId, TileSource, tile_width_in_tree};
use crate::checkpoint::VerifiedCheckpoint;
use crate::merkle::{HASH_SIZE, Hash, leaf_hash, root_from_leaves};

/// Largest entry an entry bundle can hold, set by its `u16` length prefix.
const MAX_ENTRY_BYTES: usize = 65_535;

/// Number of entries in a full bundle and hashes in a full tile, as `usize`.
const TILE_WIDTH_USIZE: usize = 256;

/// Counts of what [`verify_tile_set`] authenticated.
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

/// Authenticates hash tiles and entry bundles against a verified checkpoint
/// before they are stored, following Go's `sumdb/tlog.TileHashReader`. Both
/// maps are keyed by C2SP path: `tiles` by `tile/<L>/...`, `entry_bundles` by
/// `tile/entries/...`. The checks are:
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
/// # Errors
///
/// [`TileError::BadPath`], [`TileError::OutsideTree`],
/// [`TileError::WrongLength`], [`TileError::MalformedEntryBundle`],
/// [`TileError::EntryCount`], [`TileError::RootMismatch`],
/// [`TileError::HashMismatch`], or [`TileError::Missing`] naming every tile
/// the set lacks to authenticate what it contains.
pub fn verify_tile_set(
    checkpoint: &VerifiedCheckpoint,
    tiles: &BTreeMap<String, Vec<u8>>,
    entry_bundles: &BTreeMap<String, Vec<u8>>,
) -> Result<TileSetSummary, TileError> {
    let size = checkpoint.checkpoint().size;
    let expected_root = checkpoint.checkpoint().root_hash;

    // Step 1: sort hash tiles into this tree's tiles and earlier partial tiles.
    let (current, earlier) = classify_tiles(tiles, size)?;

    let mut reader = TileReader::new(&current, size);
    let mut missing = BTreeSet::new();

    // Step 2: the right edge reproduces the root.
    let root = reader.range_hash(0, size)?;
    if !reader.has_missing() && root != expected_root {
        return Err(TileError::RootMismatch {
            computed: root,
            expected: expected_root,
        });
    }

    // Step 3: each full tile hashes to its entry in the parent tile.
    for (id, data) in current.tiles.values().filter(|(id, _)| id.is_full()) {
        let parent_level = id.level.saturating_add(1);
        let expected = reader.stored_hash(parent_level, id.index)?;
        let parent = TileId::for_tree(parent_level, id.index / TILE_WIDTH, size);
        let Some(parent) =
            parent.filter(|parent| current.tiles.contains_key(&(parent.level, parent.index)))
        else {
            continue;
        };
        let computed = root_from_leaves(&tile_hashes(data));
        if computed != expected {
            return Err(TileError::HashMismatch {
                path: id.path(),
                position: id.index % TILE_WIDTH,
                authority: parent.path(),
                computed,
                expected,
            });
        }
    }

    // Step 4: earlier partial tiles are prefixes of this tree's tiles.
    for (id, data) in &earlier {
        let Some((authority, authority_data)) = current.tiles.get(&(id.level, id.index)) else {
            missing.extend(TileId::for_tree(id.level, id.index, size));
            continue;
        };
        compare_hashes(&id.path(), &tile_hashes(data), authority, authority_data)?;
    }

    // Step 5: entry bundles hash to their level-0 tiles.
    let entry_count = check_entry_bundles(entry_bundles, &current, size, &mut missing)?;

    missing.extend(reader.missing());
    if !missing.is_empty() {
        return Err(TileError::Missing {
            paths: missing.iter().map(TileId::path).collect(),
        });
    }
    Ok(TileSetSummary {
        tree_size: size,
        root_hash: expected_root,
        hash_tiles: current.tiles.len(),
        earlier_partial_tiles: earlier.len(),
        entry_bundles: entry_bundles.len(),
        entries: entry_count,
    })
}

/// Hash tiles of the checkpoint's tree, and partial tiles of smaller trees.
type ClassifiedTiles<'a> = (CurrentTiles<'a>, Vec<(TileId, &'a [u8])>);

/// Parses tile paths and splits the tiles into those of the tree of `size`
/// leaves and partial tiles of smaller trees, checking each tile's length.
fn classify_tiles(
    tiles: &BTreeMap<String, Vec<u8>>,
    size: u64,
) -> Result<ClassifiedTiles<'_>, TileError> {
    let mut current = CurrentTiles::default();
    let mut earlier = Vec::new();
    for (path, data) in tiles {
        let id = TileId::parse_path(path)?;
        let outside = || TileError::OutsideTree {
            path: path.clone(),
            size,
        };
        let tree_width = tile_width_in_tree(id.level, id.index, size).ok_or_else(outside)?;
        if id.width > tree_width {
            return Err(outside());
        }
        let want = usize::from(id.width).saturating_mul(HASH_SIZE);
        if data.len() != want {
            return Err(TileError::WrongLength {
                path: path.clone(),
                got: data.len(),
                want,
            });
        }
        if id.width == tree_width {
            current
                .tiles
                .insert((id.level, id.index), (id, data.as_slice()));
        } else {
            earlier.push((id, data.as_slice()));
        }
    }
    Ok((current, earlier))
}

/// Checks entry bundles against this tree's level-0 tiles, recording absent
/// tiles in `missing`, and returns the number of entries checked.
fn check_entry_bundles(
    entry_bundles: &BTreeMap<String, Vec<u8>>,
    current: &CurrentTiles<'_>,
    size: u64,
    missing: &mut BTreeSet<TileId>,
) -> Result<u64, TileError> {
    let mut entry_count: u64 = 0;
    for (path, data) in entry_bundles {
        let id = EntryBundleId::parse_path(path)?;
        let outside = || TileError::OutsideTree {
            path: path.clone(),
            size,
        };
        let tree_width = tile_width_in_tree(0, id.index, size).ok_or_else(outside)?;
        if id.width > tree_width {
            return Err(outside());
        }
        let entries = parse_entry_bundle(data).map_err(|err| match err {
            TileError::MalformedEntryBundle { offset, .. } => TileError::MalformedEntryBundle {
                path: Some(path.clone()),
                offset,
            },
            other => other,
        })?;
        if entries.len() != usize::from(id.width) {
            return Err(TileError::EntryCount {
                path: path.clone(),
                got: entries.len(),
                want: u64::from(id.width),
            });
        }
        entry_count = entry_count.saturating_add(u64::from(id.width));

        let Some((authority, authority_data)) = current.tiles.get(&(0, id.index)) else {
            missing.extend(TileId::for_tree(0, id.index, size));
            continue;
        };
        let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
        compare_hashes(path, &leaves, authority, authority_data)?;
    }
    Ok(entry_count)
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

/// The hash tiles of the checkpoint's tree, keyed by (level, index).
#[derive(Default)]
struct CurrentTiles<'a> {
    tiles: BTreeMap<(u8, u64), (TileId, &'a [u8])>,
}

impl TileSource for CurrentTiles<'_> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        let tile = self
            .tiles
            .get(&(level, index))
            .filter(|(id, _)| id.width >= width);
        Ok(tile.map(|(_, data)| data.to_vec()))
    }
}
