//! Streaming reading of Rekor tile/proof bundles (`stella.rekor-tiles/v1`): each file is checked
//! and handed to the caller in archive order, so an import can store tiles as they arrive and
//! its memory does not grow with the size of the log.

use std::io::BufRead;

use stella_verify::tiles::{EntryBundleId, TileId};

use crate::error::{BundleError, malformed, rejected};
use crate::limits::Limits;
use crate::manifest::{BundleKind, LogRef, MANIFEST_PATH, Manifest, ManifestFields, bundle_digest};
use crate::reader::{EntryVisitor, Flow, read_entries};
use crate::tiles::{
    CHECKPOINT_NAME, LOGS_DIR, PROOFS_DIR, TileKind, TlogProofFile, check_tile, checkpoint_invalid,
    checkpoint_origin, open_proof,
};

/// The manifest of a Rekor tile/proof bundle, handed over before any other file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilesHeader {
    /// File name the bundle was read under, for messages.
    pub file_name: String,
    /// `sha256:<hex>` of `manifest.json`.
    pub digest: String,
    /// The exact `manifest.json` bytes.
    pub manifest_json: Vec<u8>,
    /// The parsed `manifest.json`.
    pub manifest: Manifest,
    /// Logs in ascending order of origin. Log `k` has the directory `logs/<k>`.
    pub logs: Vec<LogRef>,
}

/// One file of a tile/proof bundle, handed over in archive order after its size, digest, path
/// and structure were checked. Signatures, tile hashes and proofs are not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TilesItem<'a> {
    /// The signed checkpoint note of log `log`, whose origin matches the manifest.
    Checkpoint {
        /// Position of the log in [`TilesHeader::logs`].
        log: usize,
        /// Checkpoint origin.
        origin: &'a str,
        /// Directory of the log inside the archive, `logs/<k>`.
        dir: &'a str,
        /// Path inside the archive.
        path: &'a str,
        /// The note as stored.
        content: Vec<u8>,
    },
    /// A hash tile of log `log`, with as many hashes as its path states.
    HashTile {
        /// Position of the log in [`TilesHeader::logs`].
        log: usize,
        /// Path inside the archive.
        path: &'a str,
        /// tlog-tiles path relative to the log directory, such as `tile/0/x001/234.p/5`.
        tile_path: &'a str,
        /// The tile address parsed from `tile_path`.
        id: TileId,
        /// The tile as stored.
        content: Vec<u8>,
    },
    /// An entry bundle of log `log`, with as many entries as its path states.
    EntryBundle {
        /// Position of the log in [`TilesHeader::logs`].
        log: usize,
        /// Path inside the archive.
        path: &'a str,
        /// tlog-tiles path relative to the log directory, such as `tile/entries/000.p/5`.
        tile_path: &'a str,
        /// The bundle address parsed from `tile_path`.
        id: EntryBundleId,
        /// The bundle as stored.
        content: Vec<u8>,
    },
    /// A detached proof whose origin and index match its path.
    TlogProof(TlogProofFile),
}

/// Reads a `stella.rekor-tiles/v1` bundle from `reader` and hands over its files one at a time.
///
/// `on_manifest` is called once with the manifest, before any other file. When it returns
/// [`Flow::Stop`], such as for a bundle whose digest was imported before, the function returns
/// the header at once and checks nothing after the manifest. Otherwise `on_item` is called for
/// each file in archive order, as soon as it passed the checks of [`crate::open_tiles`] that
/// concern that file alone. The function keeps at most one file's content at a time, plus state
/// per entry (the manifest and the names it lists) that grows with the number of files.
///
/// The checks that need the whole archive run after the last `on_item` call. They cover the gzip
/// trailer, the end-of-archive marker and trailing data. They also check that every listed file
/// is present, that every log has a checkpoint, and that the bundle contains a log or a proof.
/// So a caller must not commit anything it received unless the function returns `Ok`, and must
/// discard all of it on `Err`.
///
/// `limits.max_archive_bytes` is checked as compressed bytes are read, so the reported size of
/// a too-large archive is the count at which reading stopped. At most `max_archive_bytes` plus
/// one byte are read from `reader`.
///
/// # Errors
///
/// The errors of [`crate::open_tiles`], converted into `E`, and any error of the callbacks
/// unchanged. A failing `reader` gives [`BundleError::Malformed`].
pub fn read_tiles_streaming<R, E, M, F>(
    file_name: &str,
    reader: R,
    limits: &Limits,
    on_manifest: M,
    on_item: F,
) -> Result<TilesHeader, E>
where
    R: BufRead,
    E: From<BundleError>,
    M: FnMut(&TilesHeader) -> Result<Flow, E>,
    F: FnMut(TilesItem<'_>) -> Result<(), E>,
{
    let archive = file_name;
    let mut visitor = TilesVisitor {
        archive,
        header: None,
        flow: Flow::Continue,
        has_checkpoint: Vec::new(),
        proofs: 0,
        on_manifest,
        on_item,
    };
    read_entries(
        archive,
        reader,
        limits,
        Some(BundleKind::RekorTiles),
        &mut visitor,
    )?;
    let Some(header) = visitor.header else {
        return Err(malformed(archive, MANIFEST_PATH, "missing").into());
    };
    if visitor.flow == Flow::Stop {
        return Ok(header);
    }

    for (log, seen) in header.logs.iter().zip(&visitor.has_checkpoint) {
        if !seen {
            let path = format!("{}/{CHECKPOINT_NAME}", log.dir);
            return Err(malformed(
                archive,
                &path,
                format!("missing, so log {:?} has no checkpoint", log.origin),
            )
            .into());
        }
    }
    if header.logs.is_empty() && visitor.proofs == 0 {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            "the bundle holds no log and no tlog-proof",
        )
        .into());
    }
    Ok(header)
}

/// The state of one [`read_tiles_streaming`] call.
struct TilesVisitor<'a, M, F> {
    archive: &'a str,
    header: Option<TilesHeader>,
    flow: Flow,
    /// Whether log `k` had its checkpoint yet.
    has_checkpoint: Vec<bool>,
    /// Number of detached proofs read.
    proofs: usize,
    on_manifest: M,
    on_item: F,
}

impl<E, M, F> EntryVisitor<E> for TilesVisitor<'_, M, F>
where
    E: From<BundleError>,
    M: FnMut(&TilesHeader) -> Result<Flow, E>,
    F: FnMut(TilesItem<'_>) -> Result<(), E>,
{
    fn manifest(&mut self, manifest: &Manifest, manifest_json: &[u8]) -> Result<Flow, E> {
        let ManifestFields::RekorTiles { logs } = &manifest.fields else {
            return Err(malformed(
                self.archive,
                MANIFEST_PATH,
                "manifest fields do not match its format",
            )
            .into());
        };
        let header = TilesHeader {
            file_name: self.archive.to_owned(),
            digest: bundle_digest(manifest_json),
            manifest_json: manifest_json.to_vec(),
            manifest: manifest.clone(),
            logs: logs.clone(),
        };
        self.has_checkpoint = vec![false; logs.len()];
        self.flow = (self.on_manifest)(&header)?;
        self.header = Some(header);
        Ok(self.flow)
    }

    fn file(&mut self, path: String, content: Vec<u8>) -> Result<(), E> {
        let archive = self.archive;
        let Some(header) = &self.header else {
            return Err(malformed(archive, MANIFEST_PATH, "missing").into());
        };
        if path.starts_with(PROOFS_DIR) {
            let proof = open_proof(archive, &path, &content)?;
            self.proofs = self.proofs.saturating_add(1);
            return (self.on_item)(TilesItem::TlogProof(proof));
        }

        let located = path
            .strip_prefix(LOGS_DIR)
            .and_then(|rest| rest.split_once('/'));
        let Some((number, relative)) = located else {
            return Err(rejected(
                archive,
                &path,
                "not part of the stella.rekor-tiles/v1 layout (logs/<k>/..., proofs/<origin>/<index>.tlog-proof)",
            )
            .into());
        };
        let slot = number
            .parse::<usize>()
            .ok()
            .filter(|k| k.to_string() == number)
            .and_then(|k| {
                let log = header.logs.get(k)?;
                let seen = self.has_checkpoint.get_mut(k)?;
                Some((k, log, seen))
            });
        let Some((k, log, seen_checkpoint)) = slot else {
            return Err(rejected(
                archive,
                &path,
                format!("no log in manifest.json uses directory logs/{number}"),
            )
            .into());
        };

        if relative == CHECKPOINT_NAME {
            let origin = checkpoint_origin(archive, &path, &content)?;
            if origin != log.origin {
                return Err(checkpoint_invalid(
                    archive,
                    &path,
                    format!(
                        "checkpoint origin {origin:?}, manifest says {:?}",
                        log.origin
                    ),
                )
                .into());
            }
            *seen_checkpoint = true;
            return (self.on_item)(TilesItem::Checkpoint {
                log: k,
                origin: &log.origin,
                dir: &log.dir,
                path: &path,
                content,
            });
        }
        let item = match check_tile(archive, &path, relative, &content)? {
            TileKind::EntryBundle(id) => TilesItem::EntryBundle {
                log: k,
                path: &path,
                tile_path: relative,
                id,
                content,
            },
            TileKind::HashTile(id) => TilesItem::HashTile {
                log: k,
                path: &path,
                tile_path: relative,
                id,
                content,
            },
        };
        (self.on_item)(item)
    }
}
