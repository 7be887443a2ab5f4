//! One log of the bundle being imported, read back from the staging column family: the tile set
//! that `verify_tile_set_from` authenticates, and the fresh tiles of the split-view checks.

use std::borrow::Cow;
use std::cell::RefCell;

use stella_verify::tiles::{TileError, TileSetSource};

use crate::error::ServiceError;
use crate::split_view::FreshTiles;
use crate::store::{StagedPaths, Staging, StoreError};

/// First path of the hash tiles of a log: every hash tile path is `tile/<level>/...`.
const HASH_TILES_FROM: &str = "tile/";
/// First path of the entry bundles, which is also the end of the hash tiles: levels are decimal
/// digits, and every digit sorts below `e`.
const ENTRY_BUNDLES_FROM: &str = "tile/entries/";
/// The smallest path above every entry bundle path (`/` + 1 is `0`).
const ENTRY_BUNDLES_TO: &str = "tile/entries0";

/// The staged hash tiles and entry bundles of one origin.
pub(crate) struct StagedLog<'s, 'a> {
    staging: &'s Staging<'a>,
    origin: &'s str,
    /// The first storage error, which makes the import fail as an internal error rather than as
    /// a tile failure.
    error: RefCell<Option<StoreError>>,
}

impl<'s, 'a> StagedLog<'s, 'a> {
    pub(crate) fn new(staging: &'s Staging<'a>, origin: &'s str) -> Self {
        StagedLog {
            staging,
            origin,
            error: RefCell::new(None),
        }
    }

    /// Returns the first storage error met while reading, as an internal error.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Internal`] when a read from the staging column family failed.
    pub(crate) fn take_error(&self) -> Result<(), ServiceError> {
        match self.error.borrow_mut().take() {
            Some(error) => Err(ServiceError::from(error)),
            None => Ok(()),
        }
    }

    fn unreadable(&self, path: &str, error: StoreError) -> TileError {
        let unreadable = TileError::Unreadable {
            path: format!("{}/{path}", self.origin),
            reason: error.to_string(),
        };
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        unreadable
    }

    fn walk(&self, from: &'static str, to: &'static str) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        match self.staging.paths(self.origin, from, Some(to)) {
            Ok(paths) => Box::new(PathWalk { log: self, paths }),
            Err(error) => Box::new(std::iter::once(Err(self.unreadable(from, error)))),
        }
    }
}

/// Staged paths with storage errors recorded in their [`StagedLog`].
struct PathWalk<'l, 's, 'a> {
    log: &'l StagedLog<'s, 'a>,
    paths: StagedPaths<'a>,
}

impl Iterator for PathWalk<'_, '_, '_> {
    type Item = Result<String, TileError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.paths.next()?;
        Some(item.map_err(|error| self.log.unreadable("tile/", error)))
    }
}

impl TileSetSource for StagedLog<'_, '_> {
    fn hash_tile_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        self.walk(HASH_TILES_FROM, ENTRY_BUNDLES_FROM)
    }

    fn entry_bundle_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        self.walk(ENTRY_BUNDLES_FROM, ENTRY_BUNDLES_TO)
    }

    fn get(&self, path: &str) -> Result<Option<Cow<'_, [u8]>>, TileError> {
        match self.staging.get(self.origin, path) {
            Ok(found) => Ok(found.map(Cow::Owned)),
            Err(error) => Err(self.unreadable(path, error)),
        }
    }
}

impl FreshTiles for StagedLog<'_, '_> {
    fn tile(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.staging.get(self.origin, path)
    }

    fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.staging.with_prefix(self.origin, prefix)
    }
}
