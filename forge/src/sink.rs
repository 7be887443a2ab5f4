//! Destinations for forged hash tiles and entry bundles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ForgeError;

/// Receives each tile once, keyed by its tlog-tiles path.
pub trait TileSink {
    /// Stores hash tile `path` (`tile/<L>/<N>[.p/<W>]`).
    ///
    /// # Errors
    ///
    /// [`ForgeError::Write`] when the sink cannot store it.
    fn put_tile(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError>;

    /// Stores entry bundle `path` (`tile/entries/<N>[.p/<W>]`).
    ///
    /// # Errors
    ///
    /// [`ForgeError::Write`] when the sink cannot store it.
    fn put_entry_bundle(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError>;
}

/// Tiles and entry bundles kept in memory, in the map shapes that
/// `stella_verify::tiles::verify_tile_set` and `stella_bundle::pack_tiles` take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTiles {
    /// Hash tiles by path.
    pub tiles: BTreeMap<String, Vec<u8>>,
    /// Entry bundles by path.
    pub entry_bundles: BTreeMap<String, Vec<u8>>,
}

impl TileSink for MemoryTiles {
    fn put_tile(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.tiles.insert(path.to_owned(), data);
        Ok(())
    }

    fn put_entry_bundle(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.entry_bundles.insert(path.to_owned(), data);
        Ok(())
    }
}

/// Writes tiles under a directory, as a static tlog-tiles server would serve them.
#[derive(Debug)]
pub struct DirSink {
    root: PathBuf,
    /// Directories already created, so that each is created once.
    created: BTreeSet<PathBuf>,
}

impl DirSink {
    /// Creates a sink that writes below `root`, creating directories as needed.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            created: BTreeSet::new(),
        }
    }

    fn write(&mut self, path: &str, data: &[u8]) -> Result<(), ForgeError> {
        let file = self.root.join(path);
        if let Some(dir) = file.parent()
            && !self.created.contains(dir)
        {
            fs::create_dir_all(dir).map_err(|source| ForgeError::Write {
                path: dir.to_owned(),
                source,
            })?;
            self.created.insert(dir.to_owned());
        }
        fs::write(&file, data).map_err(|source| ForgeError::Write { path: file, source })
    }
}

impl TileSink for DirSink {
    fn put_tile(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.write(path, &data)
    }

    fn put_entry_bundle(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.write(path, &data)
    }
}

/// Sends every tile to both sinks, such as a directory and a memory copy for a bundle.
impl<A: TileSink, B: TileSink> TileSink for (A, B) {
    fn put_tile(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.0.put_tile(path, data.clone())?;
        self.1.put_tile(path, data)
    }

    fn put_entry_bundle(&mut self, path: &str, data: Vec<u8>) -> Result<(), ForgeError> {
        self.0.put_entry_bundle(path, data.clone())?;
        self.1.put_entry_bundle(path, data)
    }
}
