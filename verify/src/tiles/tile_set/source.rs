//! The source of a tile set that [`super::verify_tile_set_from`] authenticates, its in-memory
//! form, and its view as a [`TileSource`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::tiles::{TILE_WIDTH, TileError, TileId, TileSource};

/// Prefix of every entry bundle path.
const ENTRIES_PREFIX: &str = "tile/entries/";

/// A set of hash tiles and entry bundles to authenticate, wherever it is stored.
pub trait TileSetSource {
    /// Returns the C2SP paths of every hash tile in the set (`tile/<L>/...`) in strictly
    /// ascending byte order. Each call starts a new walk, because verification walks the
    /// list several times.
    fn hash_tile_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_>;

    /// Returns the C2SP paths of every entry bundle in the set (`tile/entries/...`) in
    /// strictly ascending byte order. Each call starts a new walk.
    fn entry_bundle_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_>;

    /// Returns the content stored at exactly `path`, a hash tile or an entry bundle, or
    /// `Ok(None)` when the set does not contain it.
    ///
    /// # Errors
    ///
    /// [`TileError::Unreadable`] when the storage fails; absence is not an error.
    fn get(&self, path: &str) -> Result<Option<Cow<'_, [u8]>>, TileError>;
}

/// Reads the hash tiles of a [`TileSetSource`] as a [`TileSource`], with the width fallback of
/// the `BTreeMap` source: the exact width, then the full tile, then wider partial tiles.
#[derive(Clone, Copy)]
pub struct SetTileSource<'a>(pub &'a dyn TileSetSource);

impl TileSource for SetTileSource<'_> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        let full = u16::try_from(TILE_WIDTH).unwrap_or(u16::MAX);
        let wider = width.saturating_add(1)..full;
        let fallback = (width < full).then_some(full).into_iter().chain(wider);
        for candidate in std::iter::once(width).chain(fallback) {
            let path = TileId {
                level,
                index,
                width: candidate,
            }
            .path();
            if let Some(data) = self.0.get(&path)? {
                return Ok(Some(data.into_owned()));
            }
        }
        Ok(None)
    }
}

/// Tile and entry bundle maps keyed by C2SP path, as [`super::verify_tile_set`] takes them.
pub(super) struct MapTileSet<'a> {
    pub(super) tiles: &'a BTreeMap<String, Vec<u8>>,
    pub(super) entry_bundles: &'a BTreeMap<String, Vec<u8>>,
}

impl TileSetSource for MapTileSet<'_> {
    fn hash_tile_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        Box::new(self.tiles.keys().cloned().map(Ok))
    }

    fn entry_bundle_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        Box::new(self.entry_bundles.keys().cloned().map(Ok))
    }

    fn get(&self, path: &str) -> Result<Option<Cow<'_, [u8]>>, TileError> {
        // Verification requests only canonical paths, and no canonical hash tile path starts
        // with the entry bundle prefix, so the prefix picks the map.
        let map = if path.starts_with(ENTRIES_PREFIX) {
            self.entry_bundles
        } else {
            self.tiles
        };
        Ok(map.get(path).map(|data| Cow::Borrowed(data.as_slice())))
    }
}

/// Returns the content of a path that `set` listed.
pub(super) fn get_listed<'a>(
    set: &'a dyn TileSetSource,
    path: &str,
) -> Result<Cow<'a, [u8]>, TileError> {
    set.get(path)?.ok_or_else(|| TileError::Unreadable {
        path: path.to_owned(),
        reason: "the tile set lists it but returns no content".to_owned(),
    })
}

/// Passes paths through and fails on the first path that is not after the previous one,
/// because the steps rely on every walk listing the same paths once.
pub(super) fn ordered<'a>(
    paths: Box<dyn Iterator<Item = Result<String, TileError>> + 'a>,
) -> impl Iterator<Item = Result<String, TileError>> + 'a {
    let mut previous: Option<String> = None;
    paths.map(move |path| {
        let path = path?;
        if let Some(before) = &previous
            && before.as_str() >= path.as_str()
        {
            return Err(TileError::Unreadable {
                path,
                reason: format!("the tile set lists it after {before}, out of ascending order"),
            });
        }
        previous = Some(path.clone());
        Ok(path)
    })
}
