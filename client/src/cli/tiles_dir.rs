//! Reading a C2SP tlog-tiles directory (<https://c2sp.org/tlog-tiles>) for `stella rekor tiles
//! pack`: its `checkpoint`, and the hash tiles and entry bundles of that checkpoint's tree.
//!
//! The tiles must rebuild the checkpoint's root hash. The checkpoint's signature is not checked
//! here, because the attestor verifies it on import against its trust root set.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_bundle::LogTilesInput;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{EntryBundleId, TileId, root_from_tiles};

use super::files;
use super::output::Failure;
use super::progress::Progress;
use super::tiles_input::checkpoint_body;

/// Name of the checkpoint file in a tlog-tiles directory.
const CHECKPOINT_FILE: &str = "checkpoint";

/// A file of a tiles directory that is not packed.
pub struct SkippedFile {
    pub file: String,
    pub kind: SkipKind,
    pub reason: String,
}

/// The reason a file of a tiles directory is not packed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// `checkpoint.<N>`: another checkpoint of the same log.
    OtherCheckpoint,
    /// A partial hash tile or entry bundle of a smaller tree.
    SmallerTree,
}

/// One log read from a tlog-tiles directory.
pub(super) struct TilesDir {
    pub(super) checkpoint: Checkpoint,
    pub(super) input: LogTilesInput,
    pub(super) tile_count: usize,
    pub(super) entry_bundle_count: usize,
    pub(super) skipped: Vec<SkippedFile>,
}

/// The placement of a file of a tiles directory.
enum Placement {
    /// Part of the checkpoint's tree: packed.
    Packed,
    /// Left out, with the reason.
    Skipped(SkipKind, String),
}

/// Reads a C2SP tlog-tiles directory: `checkpoint`, `tile/<L>/...` and `tile/entries/...`.
///
/// Partial tiles of smaller trees and `checkpoint.<N>` files (other checkpoints of the same
/// log, as Tessera's test data keeps them) are skipped and listed. Any other file is an error
/// naming it. Each file read advances `progress` by one file and its size.
pub(super) fn read_tiles_dir(dir: &Path, progress: &Progress) -> Result<TilesDir, Failure> {
    let label = dir.display().to_string();
    let mut all_files = BTreeMap::new();
    collect_files(dir, "", &mut all_files, progress)?;

    let checkpoint_note = all_files.remove(CHECKPOINT_FILE).ok_or_else(|| {
        Failure::rejected(
            format!(
                "{label}: no `checkpoint` file; a tlog-tiles directory starts from its checkpoint"
            ),
            ReasonCode::RekorCheckpointInvalid.as_str(),
        )
    })?;
    let checkpoint = checkpoint_body(&checkpoint_note, &format!("{label}/{CHECKPOINT_FILE}"))?;

    let mut tiles = BTreeMap::new();
    let mut tile_count = 0_usize;
    let mut entry_bundle_count = 0_usize;
    let mut skipped = Vec::new();
    for (relative, content) in all_files {
        let located = format!("{label}/{relative}");
        let placement = if let Some(number) = relative.strip_prefix("checkpoint.") {
            older_checkpoint(number, &content, &checkpoint, &located)?
        } else if relative.starts_with("tile/entries/") {
            let id = EntryBundleId::parse_path(&relative)
                .map_err(|error| unexpected(&located, &error.to_string()))?;
            place(0, id.index, id.width, checkpoint.size, &located)?
        } else if relative.starts_with("tile/") {
            let id = TileId::parse_path(&relative)
                .map_err(|error| unexpected(&located, &error.to_string()))?;
            place(id.level, id.index, id.width, checkpoint.size, &located)?
        } else {
            return Err(unexpected(
                &located,
                "not a checkpoint, hash tile or entry bundle",
            ));
        };
        match placement {
            Placement::Packed => {
                if relative.starts_with("tile/entries/") {
                    entry_bundle_count = entry_bundle_count.saturating_add(1);
                } else {
                    tile_count = tile_count.saturating_add(1);
                }
                tiles.insert(relative, content);
            }
            Placement::Skipped(kind, reason) => skipped.push(SkippedFile {
                file: located,
                kind,
                reason,
            }),
        }
    }

    let root = root_from_tiles(checkpoint.size, &tiles).map_err(|error| {
        Failure::rejected(
            format!(
                "{label}: the tiles cannot rebuild the root of checkpoint size {}: {error}",
                checkpoint.size
            ),
            error.reason_code().as_str(),
        )
    })?;
    if root != checkpoint.root_hash {
        return Err(Failure::rejected(
            format!(
                "{label}: the tiles rebuild root {}, but the checkpoint says {}",
                BASE64.encode(root),
                BASE64.encode(checkpoint.root_hash)
            ),
            ReasonCode::RekorRootMismatch.as_str(),
        ));
    }

    Ok(TilesDir {
        checkpoint,
        input: LogTilesInput {
            checkpoint: checkpoint_note,
            tiles,
        },
        tile_count,
        entry_bundle_count,
        skipped,
    })
}

fn unexpected(located: &str, reason: &str) -> Failure {
    Failure::rejected(
        format!("{located}: unexpected file in a tlog-tiles directory: {reason}"),
        ReasonCode::RekorTileInvalid.as_str(),
    )
}

/// Decides whether the tile `(level, index)` of `width` hashes belongs to the tree of `size`.
fn place(
    level: u8,
    index: u64,
    width: u16,
    size: u64,
    located: &str,
) -> Result<Placement, Failure> {
    match TileId::for_tree(level, index, size) {
        Some(expected) if expected.width == width => Ok(Placement::Packed),
        Some(expected) if width < expected.width => Ok(Placement::Skipped(
            SkipKind::SmallerTree,
            format!(
                "partial tile of a smaller tree: width {width}, the tree of size {size} has width {}",
                expected.width
            ),
        )),
        _ => Err(Failure::rejected(
            format!(
                "{located}: lies outside the tree of size {size} that the checkpoint describes; \
                 use the checkpoint that matches these tiles"
            ),
            ReasonCode::RekorTileInvalid.as_str(),
        )),
    }
}

/// Accepts `checkpoint.<N>`, another checkpoint of the same log, as a skipped file.
fn older_checkpoint(
    number: &str,
    note: &[u8],
    current: &Checkpoint,
    located: &str,
) -> Result<Placement, Failure> {
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(unexpected(
            located,
            "not a checkpoint, hash tile or entry bundle",
        ));
    }
    let older = checkpoint_body(note, located)?;
    if older.origin != current.origin {
        return Err(Failure::rejected(
            format!(
                "{located}: checkpoint of log {:?}, but the directory's checkpoint is of {:?}",
                older.origin, current.origin
            ),
            ReasonCode::RekorCheckpointInvalid.as_str(),
        ));
    }
    Ok(Placement::Skipped(
        SkipKind::OtherCheckpoint,
        format!(
            "another checkpoint of the log (size {}); only `checkpoint` (size {}) is packed",
            older.size, current.size
        ),
    ))
}

/// Collects every file under `dir` by its relative path with `/` separators.
fn collect_files(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
    progress: &Progress,
) -> Result<(), Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| Failure::io("read directory", dir, &error))?;
    for entry in entries {
        let entry = entry.map_err(|error| Failure::io("read directory", dir, &error))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(unexpected(
                &path.display().to_string(),
                "the file name is not UTF-8",
            ));
        };
        let relative = format!("{prefix}{name}");
        // Symbolic links to files are followed, but not links to directories, which could form a cycle.
        let file_type = entry
            .file_type()
            .map_err(|error| Failure::io("inspect", &path, &error))?;
        if file_type.is_dir() {
            collect_files(&path, &format!("{relative}/"), out, progress)?;
            continue;
        }
        let metadata =
            std::fs::metadata(&path).map_err(|error| Failure::io("inspect", &path, &error))?;
        if file_type.is_symlink() && metadata.is_dir() {
            return Err(unexpected(
                &path.display().to_string(),
                "a symbolic link to a directory, which is not followed",
            ));
        }
        if !metadata.is_file() {
            return Err(unexpected(
                &path.display().to_string(),
                &format!("{}, not a regular file", files::describe_type(&metadata)),
            ));
        }
        let content = files::read(&path)?;
        progress.add_file(content.len() as u64);
        out.insert(relative, content);
    }
    Ok(())
}
