//! The hash tiles of the bundle being imported, served over the stored tiles of the same origin,
//! so that a new checkpoint can be compared with the stored ones before anything is written.

use std::cell::RefCell;

use stella_verify::tiles::{TileError, TileId, TileSource};

use crate::cache::{OriginTiles, StoreErrorSlot};
use crate::error::ServiceError;
use crate::store::{Store, StoreError};

/// Number of hashes in a full tile.
const FULL_WIDTH: u16 = 256;

/// The hash tiles of one log of the bundle being imported, wherever they are kept.
pub(crate) trait FreshTiles {
    /// Returns the bytes of the tile at exactly `path`.
    fn tile(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Returns every (path, bytes) whose path starts with `prefix`, in path order. Callers ask
    /// for the partial versions of one tile, which are few.
    fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// No fresh tiles: a tlog-proof whose origin has no log in the bundle.
pub(crate) struct NoFreshTiles;

impl FreshTiles for NoFreshTiles {
    fn tile(&self, _path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    fn with_prefix(&self, _prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
}

/// Fresh tiles first, then the stored tiles of the origin.
pub(crate) struct FreshOverStored<'a> {
    fresh: &'a dyn FreshTiles,
    stored: OriginTiles<'a>,
    stored_errors: &'a StoreErrorSlot,
    /// The first error of reading `fresh`.
    fresh_error: RefCell<Option<StoreError>>,
}

impl<'a> FreshOverStored<'a> {
    /// Serves `fresh` over the stored tiles of `origin`; errors of the store go to `errors`.
    pub(crate) fn new(
        store: &'a Store,
        origin: &'a str,
        fresh: &'a dyn FreshTiles,
        errors: &'a StoreErrorSlot,
    ) -> Self {
        FreshOverStored {
            fresh,
            stored: OriginTiles::new(store, origin, errors),
            stored_errors: errors,
            fresh_error: RefCell::new(None),
        }
    }

    /// Returns the first storage error met while serving tiles, as an internal error.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Internal`] when reading the fresh or the stored tiles failed.
    pub(crate) fn take_error(&self) -> Result<(), ServiceError> {
        if let Some(error) = self.fresh_error.borrow_mut().take() {
            return Err(ServiceError::from(error));
        }
        self.stored_errors.take_error()
    }

    fn fresh_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, StoreError> {
        let full = TileId {
            level,
            index,
            width: FULL_WIDTH,
        }
        .path();
        if let Some(found) = self.fresh.tile(&full)? {
            return Ok(Some(found));
        }
        // The first hashes of a tile never change as the log grows, so the widest partial
        // version that is wide enough serves the request.
        let prefix = format!("{full}.p/");
        let widest = self
            .fresh
            .with_prefix(&prefix)?
            .into_iter()
            .filter_map(|(path, data)| {
                let found = path.strip_prefix(&prefix)?.parse::<u16>().ok()?;
                (found >= width).then_some((found, data))
            })
            .max_by_key(|(found, _)| *found)
            .map(|(_, data)| data);
        Ok(widest)
    }
}

impl TileSource for FreshOverStored<'_> {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        match self.fresh_tile(level, index, width) {
            Ok(Some(found)) => Ok(Some(found)),
            Ok(None) => self.stored.hash_tile(level, index, width),
            Err(error) => {
                let unreadable = TileError::Unreadable {
                    path: TileId { level, index, width }.path(),
                    reason: error.to_string(),
                };
                let mut slot = self.fresh_error.borrow_mut();
                if slot.is_none() {
                    *slot = Some(error);
                }
                Err(unreadable)
            }
        }
    }
}
