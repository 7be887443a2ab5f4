//! Errors of the log forge.

use std::path::PathBuf;

use stella_verify::note::NoteError;
use stella_verify::tiles::TileError;
use thiserror::Error;

/// Errors from forging a log.
#[derive(Debug, Error)]
pub enum ForgeError {
    /// A tile, entry bundle or other output file could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Tile encoding or a proof computed from the forged tiles failed.
    #[error("tile computation failed: {0}")]
    Tile(#[from] TileError),
    /// The checkpoint note could not be signed.
    #[error("signing the checkpoint failed: {0}")]
    Note(#[from] NoteError),
    /// The ECDSA P-256 key could not be derived or encoded.
    #[error("ECDSA P-256 key failed: {reason}")]
    EcdsaKey { reason: String },
    /// The tree has more leaves than tile indexes can address.
    #[error("log size overflows after {size} entries")]
    SizeOverflow { size: u64 },
}
