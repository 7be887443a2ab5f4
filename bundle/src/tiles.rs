//! Rekor tile/proof bundles (`stella.rekor-tiles/v1`).
//!
//! Layout: the k-th log of the manifest's `logs` list (sorted by origin) has the directory
//! `logs/<k>`, laid out as C2SP tlog-tiles lays out a log. It contains `checkpoint` (the signed
//! note), hash tiles `tile/<L>/<N>[.p/<W>]` and entry bundles `tile/entries/<N>[.p/<W>]`. Detached proofs sit at
//! `proofs/<encoded origin>/<index>.tlog-proof` in the C2SP tlog-proof format, with the origin
//! encoded by [`crate::encode_origin`]; their logs need not appear in `logs`.
//!
//! Opening checks structure only. Every checkpoint must parse and name its log's origin. Every
//! tile path must be a tlog-tiles path whose width matches the content: 32 bytes per hash, or
//! that many entries in an entry bundle. Every tlog-proof must parse and match its path. The
//! importer checks signatures, tile hashes and proofs against its trust set.

use std::collections::BTreeMap;

use stella_verify::checkpoint::parse_checkpoint_body;
use stella_verify::note::parse_note;
use stella_verify::tiles::{EntryBundleId, TileId, parse_entry_bundle};
use stella_verify::tlog_proof::TlogProof;

use crate::archive::{check_archive_size, write_archive};
use crate::error::{BundleError, NEW_ARCHIVE, rejected};
use crate::limits::Limits;
use crate::manifest::{FileEntry, LogRef, MANIFEST_PATH, Manifest, ManifestFields};
use crate::path::{decode_origin, encode_origin};
use crate::reader::Flow;
use crate::tiles_stream::{TilesItem, read_tiles_streaming};

/// Directory of all logs' tiles.
pub(crate) const LOGS_DIR: &str = "logs/";
/// Name of a log's checkpoint file inside its directory.
pub(crate) const CHECKPOINT_NAME: &str = "checkpoint";
/// Prefix of entry bundle paths inside a log directory.
const ENTRIES_PREFIX: &str = "tile/entries/";
/// Prefix of hash tile paths inside a log directory.
const TILE_PREFIX: &str = "tile/";
/// Directory of detached proofs.
pub(crate) const PROOFS_DIR: &str = "proofs/";
/// File name suffix of a detached proof.
const PROOF_SUFFIX: &str = ".tlog-proof";

/// One log's tiles for [`pack_tiles`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTilesInput {
    /// Signed checkpoint note; its origin names the log.
    pub checkpoint: Vec<u8>,
    /// Hash tiles and entry bundles by tlog-tiles path, such as `tile/0/000.p/15` or
    /// `tile/entries/000.p/15`.
    pub tiles: BTreeMap<String, Vec<u8>>,
}

/// Input of [`pack_tiles`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TilesInput {
    /// Logs, in any order; two logs with the same origin are an error.
    pub logs: Vec<LogTilesInput>,
    /// C2SP tlog-proof files, stored byte for byte. A file repeated byte for byte is stored once.
    pub tlog_proofs: Vec<Vec<u8>>,
}

/// One log of an opened bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTiles {
    /// Checkpoint origin.
    pub origin: String,
    /// Directory inside the archive, `logs/<k>`.
    pub dir: String,
    /// Signed checkpoint note, unverified.
    pub checkpoint: Vec<u8>,
    /// Hash tiles by tlog-tiles path (`tile/<L>/<N>[.p/<W>]`), unverified.
    pub tiles: BTreeMap<String, Vec<u8>>,
    /// Entry bundles by tlog-tiles path (`tile/entries/<N>[.p/<W>]`), unverified.
    pub entry_bundles: BTreeMap<String, Vec<u8>>,
}

/// One detached proof of an opened bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProofFile {
    /// Path inside the archive.
    pub path: String,
    /// Origin of the proof's checkpoint.
    pub origin: String,
    /// Index of the proved entry.
    pub index: u64,
    /// The parsed proof, unverified.
    pub proof: TlogProof,
    /// The file as stored.
    pub bytes: Vec<u8>,
}

/// An opened Rekor tile/proof bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilesBundle {
    /// File name the bundle was opened under, for messages.
    pub file_name: String,
    /// `sha256:<hex>` of `manifest.json`.
    pub digest: String,
    /// The exact `manifest.json` bytes.
    pub manifest_json: Vec<u8>,
    pub manifest: Manifest,
    /// Logs in ascending order of origin.
    pub logs: Vec<LogTiles>,
    /// Detached proofs in ascending order of path.
    pub tlog_proofs: Vec<TlogProofFile>,
}

pub(crate) fn checkpoint_invalid(archive: &str, path: &str, why: impl Into<String>) -> BundleError {
    BundleError::CheckpointInvalid {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.into(),
    }
}

fn proof_invalid(archive: &str, path: &str, why: impl Into<String>) -> BundleError {
    BundleError::TlogProofInvalid {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.into(),
    }
}

/// Returns the origin of a signed checkpoint note, without verifying any signature.
pub(crate) fn checkpoint_origin(
    archive: &str,
    path: &str,
    note: &[u8],
) -> Result<String, BundleError> {
    let note = parse_note(note)
        .map_err(|e| checkpoint_invalid(archive, path, format!("not a signed note: {e}")))?;
    let checkpoint = parse_checkpoint_body(&note.text)
        .map_err(|e| checkpoint_invalid(archive, path, format!("not a checkpoint: {e}")))?;
    Ok(checkpoint.origin)
}

/// A path inside a log directory, parsed as an entry bundle or a hash tile.
pub(crate) enum TileKind {
    EntryBundle(EntryBundleId),
    HashTile(TileId),
}

/// Size of one hash in a hash tile, in bytes.
const HASH_BYTES: usize = 32;

/// Checks a hash tile or entry bundle. Its path relative to the log directory must be a
/// canonical tlog-tiles path. Its content must match the width in the path: 32 bytes per hash,
/// or that many length-prefixed entries. Hashes are not checked here.
pub(crate) fn check_tile(
    archive: &str,
    shown_path: &str,
    relative: &str,
    content: &[u8],
) -> Result<TileKind, BundleError> {
    let tile_invalid = |why: String| BundleError::TileInvalid {
        archive: archive.to_owned(),
        path: shown_path.to_owned(),
        why,
    };
    if relative.starts_with(ENTRIES_PREFIX) {
        let id = EntryBundleId::parse_path(relative)
            .map_err(|e| tile_invalid(format!("invalid entry bundle path: {e}")))?;
        let entries = parse_entry_bundle(content)
            .map_err(|e| tile_invalid(format!("invalid entry bundle: {e}")))?;
        if entries.len() != usize::from(id.width) {
            return Err(tile_invalid(format!(
                "entry bundle holds {} entries, its path says {}",
                entries.len(),
                id.width
            )));
        }
        Ok(TileKind::EntryBundle(id))
    } else if relative.starts_with(TILE_PREFIX) {
        let id = TileId::parse_path(relative)
            .map_err(|e| tile_invalid(format!("invalid hash tile path: {e}")))?;
        let expected = usize::from(id.width).saturating_mul(HASH_BYTES);
        if content.len() != expected {
            return Err(tile_invalid(format!(
                "hash tile is {} bytes, its width {} needs {expected}",
                content.len(),
                id.width
            )));
        }
        Ok(TileKind::HashTile(id))
    } else {
        Err(rejected(
            archive,
            shown_path,
            "not part of a log directory (checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>])",
        ))
    }
}

/// Parses a detached proof at `proofs/<encoded origin>/<index>.tlog-proof` and checks that its
/// checkpoint origin and index match the path.
pub(crate) fn open_proof(
    archive: &str,
    path: &str,
    bytes: &[u8],
) -> Result<TlogProofFile, BundleError> {
    let layout_error = || {
        rejected(
            archive,
            path,
            "not a detached proof path (proofs/<encoded origin>/<index>.tlog-proof)",
        )
    };
    let rest = path.strip_prefix(PROOFS_DIR).ok_or_else(layout_error)?;
    let (encoded, file) = rest.split_once('/').ok_or_else(layout_error)?;
    let index_text = file.strip_suffix(PROOF_SUFFIX).ok_or_else(layout_error)?;
    let origin = decode_origin(encoded)
        .map_err(|why| rejected(archive, path, format!("invalid origin directory: {why}")))?;
    let canonical_index = index_text
        .parse::<u64>()
        .ok()
        .filter(|index| index.to_string() == index_text);
    let Some(index) = canonical_index else {
        return Err(rejected(
            archive,
            path,
            format!("{index_text:?} is not a decimal index without leading zeros"),
        ));
    };

    let proof = TlogProof::parse(bytes)
        .map_err(|e| proof_invalid(archive, path, format!("not a tlog-proof: {e}")))?;
    if proof.index != index {
        return Err(proof_invalid(
            archive,
            path,
            format!("proof is for index {}, file name says {index}", proof.index),
        ));
    }
    let proof_origin = checkpoint_origin(archive, path, &proof.checkpoint)?;
    if proof_origin != origin {
        return Err(checkpoint_invalid(
            archive,
            path,
            format!("checkpoint origin {proof_origin:?}, directory says {origin:?}"),
        ));
    }
    Ok(TlogProofFile {
        path: path.to_owned(),
        origin,
        index,
        proof,
        bytes: bytes.to_vec(),
    })
}

/// Opens a Rekor tile/proof bundle held in memory and groups its files per log. It makes the
/// checks of [`read_tiles_streaming`], and checks the archive size before decompressing.
///
/// # Errors
///
/// - Any error of [`crate::read_archive`] and of the manifest checks.
/// - [`BundleError::Malformed`] when the format is not `stella.rekor-tiles/v1`, a log has no
///   checkpoint, or the bundle contains no log and no proof.
/// - [`BundleError::EntryRejected`] for a path outside the layout.
/// - [`BundleError::CheckpointInvalid`] for a checkpoint that does not parse or names another
///   origin.
/// - [`BundleError::TileInvalid`] for an invalid tile path, or content that does not match the
///   width in the path.
/// - [`BundleError::TlogProofInvalid`] for a tlog-proof that does not parse or whose index
///   differs from its file name.
pub fn open_tiles(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<TilesBundle, BundleError> {
    check_archive_size(file_name, tgz, limits)?;
    let mut logs: Vec<LogTiles> = Vec::new();
    let mut tlog_proofs = Vec::new();
    let header = read_tiles_streaming(
        file_name,
        tgz,
        limits,
        |_| Ok::<Flow, BundleError>(Flow::Continue),
        |item| {
            collect_item(&mut logs, &mut tlog_proofs, item);
            Ok(())
        },
    )?;

    // Every log has a checkpoint, so `logs` has an element per log, and the streaming reader
    // has checked each checkpoint's origin. The directory and origin come from the manifest.
    logs.resize_with(header.logs.len(), empty_log);
    for (log, log_ref) in logs.iter_mut().zip(&header.logs) {
        log.origin.clone_from(&log_ref.origin);
        log.dir.clone_from(&log_ref.dir);
    }
    tlog_proofs.sort_by(|a: &TlogProofFile, b| a.path.cmp(&b.path));

    Ok(TilesBundle {
        file_name: header.file_name,
        digest: header.digest,
        manifest_json: header.manifest_json,
        manifest: header.manifest,
        logs,
        tlog_proofs,
    })
}

/// Returns a log with no files, to be filled from the archive.
fn empty_log() -> LogTiles {
    LogTiles {
        origin: String::new(),
        dir: String::new(),
        checkpoint: Vec::new(),
        tiles: BTreeMap::new(),
        entry_bundles: BTreeMap::new(),
    }
}

/// Returns log `k` of `logs`, adding empty logs up to it.
fn log_at(logs: &mut Vec<LogTiles>, k: usize) -> Option<&mut LogTiles> {
    if logs.len() <= k {
        logs.resize_with(k.saturating_add(1), empty_log);
    }
    logs.get_mut(k)
}

/// Stores one file of a tile bundle in the log or proof list it belongs to.
fn collect_item(
    logs: &mut Vec<LogTiles>,
    tlog_proofs: &mut Vec<TlogProofFile>,
    item: TilesItem<'_>,
) {
    match item {
        TilesItem::Checkpoint { log, content, .. } => {
            if let Some(log) = log_at(logs, log) {
                log.checkpoint = content;
            }
        }
        TilesItem::HashTile {
            log,
            tile_path,
            content,
            ..
        } => {
            if let Some(log) = log_at(logs, log) {
                log.tiles.insert(tile_path.to_owned(), content);
            }
        }
        TilesItem::EntryBundle {
            log,
            tile_path,
            content,
            ..
        } => {
            if let Some(log) = log_at(logs, log) {
                log.entry_bundles.insert(tile_path.to_owned(), content);
            }
        }
        TilesItem::TlogProof(proof) => tlog_proofs.push(proof),
    }
}

/// Packs logs' tiles and detached proofs.
///
/// # Errors
///
/// Errors name the archive [`NEW_ARCHIVE`].
///
/// - [`BundleError::CheckpointInvalid`] for a checkpoint that does not parse.
/// - [`BundleError::TileInvalid`] for an invalid tile path or content.
/// - [`BundleError::TlogProofInvalid`] for a proof that does not parse.
/// - [`BundleError::EntryRejected`] for two logs with one origin, or two different proofs for
///   one origin and index.
/// - Any error of opening the result under [`Limits::default`].
pub fn pack_tiles(input: &TilesInput) -> Result<Vec<u8>, BundleError> {
    let mut by_origin: BTreeMap<String, &LogTilesInput> = BTreeMap::new();
    for (index, log) in input.logs.iter().enumerate() {
        let shown = format!("input log {index} checkpoint");
        let origin = checkpoint_origin(NEW_ARCHIVE, &shown, &log.checkpoint)?;
        if by_origin.insert(origin.clone(), log).is_some() {
            return Err(rejected(
                NEW_ARCHIVE,
                &shown,
                format!("two logs have origin {origin:?}"),
            ));
        }
    }

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut log_refs = Vec::with_capacity(by_origin.len());
    for (k, (origin, log)) in by_origin.into_iter().enumerate() {
        let dir = format!("logs/{k}");
        files.insert(format!("{dir}/{CHECKPOINT_NAME}"), log.checkpoint.clone());
        for (relative, content) in &log.tiles {
            let path = format!("{dir}/{relative}");
            check_tile(NEW_ARCHIVE, &path, relative, content)?;
            files.insert(path, content.clone());
        }
        log_refs.push(LogRef { origin, dir });
    }

    for (position, bytes) in input.tlog_proofs.iter().enumerate() {
        let shown = format!("input tlog-proof {position}");
        let proof = TlogProof::parse(bytes)
            .map_err(|e| proof_invalid(NEW_ARCHIVE, &shown, format!("not a tlog-proof: {e}")))?;
        let origin = checkpoint_origin(NEW_ARCHIVE, &shown, &proof.checkpoint)?;
        let path = format!(
            "{PROOFS_DIR}{}/{}{PROOF_SUFFIX}",
            encode_origin(&origin),
            proof.index
        );
        if let Some(existing) = files.get(&path)
            && existing != bytes
        {
            return Err(rejected(
                NEW_ARCHIVE,
                &path,
                format!(
                    "two different tlog-proofs for origin {origin:?} and index {}",
                    proof.index
                ),
            ));
        }
        files.insert(path, bytes.clone());
    }

    let entries = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    let manifest = Manifest::new(entries, ManifestFields::RekorTiles { logs: log_refs });
    files.insert(
        MANIFEST_PATH.to_owned(),
        manifest.to_canonical_json(NEW_ARCHIVE)?,
    );
    let tgz = write_archive(&files)?;
    open_tiles(NEW_ARCHIVE, &tgz, &Limits::default())?;
    Ok(tgz)
}
