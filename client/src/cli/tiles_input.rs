//! Inputs of `stella rekor tiles pack`: tlog-proof files from Sigstore bundles, and logs from
//! C2SP tlog-tiles directories.
//!
//! A Sigstore bundle's tlog entry becomes a C2SP tlog-proof (<https://c2sp.org/tlog-proof>) with
//! the entry's top-level `logIndex`, the inclusion proof's hashes and the checkpoint envelope
//! verbatim. A tiles directory (<https://c2sp.org/tlog-tiles>) contributes its `checkpoint` and
//! the hash tiles and entry bundles of that checkpoint's tree.
//!
//! Packing checks what needs no trust root: each proof must lead from the logged entry to its
//! checkpoint's root, and each directory's tiles must rebuild its checkpoint's root (see
//! `tiles_dir`). Signatures are checked by the attestor on import, against its trust root set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use stella_bundle::{Limits, TilesInput, open_tiles, pack_tiles};
use stella_verify::bundle::parse_bundle;
use stella_verify::checkpoint::{Checkpoint, parse_checkpoint_body};
use stella_verify::merkle::{leaf_hash, verify_inclusion};
use stella_verify::note::parse_note;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tlog_proof::TlogProof;

use super::files;
use super::output::Failure;
use super::progress::Progress;
use super::tiles_dir::{SkipKind, SkippedFile, read_tiles_dir};

/// A packed tile/proof bundle and what went into it.
pub struct Packed {
    pub archive: Vec<u8>,
    /// `sha256:<hex>` of the bundle's manifest, as the attestor reports it on import.
    pub bundle_digest: String,
    pub logs: Vec<PackedLog>,
    pub proofs: Vec<PackedProof>,
    /// Files of tiles directories left out, each with the reason.
    pub skipped: Vec<SkippedFile>,
}

/// One log read from a tiles directory.
pub struct PackedLog {
    pub dir: PathBuf,
    pub checkpoint: Checkpoint,
    pub tiles: usize,
    pub entry_bundles: usize,
}

/// One tlog-proof made from a Sigstore bundle entry.
pub struct PackedProof {
    pub file: PathBuf,
    pub origin: String,
    pub index: u64,
    pub tree_size: u64,
}

impl Packed {
    /// Returns the `logs` list of the JSON output.
    pub fn logs_json(&self) -> Value {
        let logs: Vec<Value> = self
            .logs
            .iter()
            .map(|log| {
                json!({
                    "origin": log.checkpoint.origin,
                    "tree_size": log.checkpoint.size,
                    "root_hash": BASE64.encode(log.checkpoint.root_hash),
                    "tiles": log.tiles,
                    "entry_bundles": log.entry_bundles,
                    "dir": log.dir.display().to_string(),
                })
            })
            .collect();
        Value::Array(logs)
    }

    /// Returns the `tlog_proofs` list of the JSON output.
    pub fn proofs_json(&self) -> Value {
        let proofs: Vec<Value> = self
            .proofs
            .iter()
            .map(|proof| {
                json!({
                    "origin": proof.origin,
                    "index": proof.index,
                    "tree_size": proof.tree_size,
                    "file": proof.file.display().to_string(),
                })
            })
            .collect();
        Value::Array(proofs)
    }

    /// Returns the `skipped` list of the JSON output.
    pub fn skipped_json(&self) -> Value {
        let skipped: Vec<Value> = self
            .skipped
            .iter()
            .map(|skipped| json!({"file": skipped.file, "reason": skipped.reason}))
            .collect();
        Value::Array(skipped)
    }

    /// Returns one text line per log and proof, and one line counting the skipped files.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for log in &self.logs {
            lines.push(format!(
                "  log {} size {} from {}: hash tiles {}, entry bundles {}",
                log.checkpoint.origin,
                log.checkpoint.size,
                log.dir.display(),
                log.tiles,
                log.entry_bundles
            ));
        }
        for proof in &self.proofs {
            lines.push(format!(
                "  tlog-proof {} index {} (tree size {}) from {}",
                proof.origin,
                proof.index,
                proof.tree_size,
                proof.file.display()
            ));
        }
        let count = |kind: SkipKind| {
            self.skipped
                .iter()
                .filter(|skipped| skipped.kind == kind)
                .count()
        };
        let checkpoints = count(SkipKind::OtherCheckpoint);
        let smaller = count(SkipKind::SmallerTree);
        if checkpoints > 0 || smaller > 0 {
            lines.push(format!(
                "  skipped {checkpoints} other checkpoints and {smaller} partial tiles of smaller trees \
                 (listed by --output json)"
            ));
        }
        lines
    }
}

/// Reads all inputs, checks them and packs the bundle. `out` names the bundle in errors.
pub fn pack(
    sigstore_bundles: &[PathBuf],
    tiles_dirs: &[PathBuf],
    out: &Path,
    progress: &Progress,
) -> Result<Packed, Failure> {
    let mut input = TilesInput::default();
    let mut logs = Vec::new();
    let mut skipped = Vec::new();
    let mut origins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in tiles_dirs {
        progress.set_message(format!("reading {}", dir.display()));
        let read = read_tiles_dir(dir, progress)?;
        if let Some(first) = origins.insert(read.checkpoint.origin.clone(), dir.clone()) {
            return Err(Failure::usage(format!(
                "{} and {} both hold log {:?}; give one directory per log",
                first.display(),
                dir.display(),
                read.checkpoint.origin
            )));
        }
        skipped.extend(read.skipped);
        logs.push(PackedLog {
            dir: dir.clone(),
            checkpoint: read.checkpoint,
            tiles: read.tile_count,
            entry_bundles: read.entry_bundle_count,
        });
        input.logs.push(read.input);
    }

    // Maps (origin, index) to the file that first gave a proof for it, and the proof bytes.
    let mut seen: BTreeMap<(String, u64), (PathBuf, Vec<u8>)> = BTreeMap::new();
    let mut proofs = Vec::new();
    for file in sigstore_bundles {
        for proof in proofs_from_sigstore_bundle(file)? {
            let key = (proof.origin.clone(), proof.index);
            if let Some((first, bytes)) = seen.get(&key) {
                if *bytes == proof.bytes {
                    continue;
                }
                return Err(Failure::rejected(
                    format!(
                        "{} and {} hold different proofs for entry {} of {:?} (different checkpoints); \
                         pack one of them",
                        first.display(),
                        file.display(),
                        proof.index,
                        proof.origin
                    ),
                    ReasonCode::RekorProofInvalid.as_str(),
                ));
            }
            seen.insert(key, (file.clone(), proof.bytes.clone()));
            input.tlog_proofs.push(proof.bytes);
            proofs.push(PackedProof {
                file: file.clone(),
                origin: proof.origin,
                index: proof.index,
                tree_size: proof.tree_size,
            });
        }
    }

    progress.set_message(format!("compressing {}", files::display_name(out)));
    let archive = pack_tiles(&input)
        .map_err(|error| files::pack_failure("cannot pack the tile bundle", out, &error))?;
    let opened =
        open_tiles(&files::display_name(out), &archive, &Limits::default()).map_err(|error| {
            Failure::other(format!(
                "the packed tile bundle does not open again: {error}"
            ))
        })?;
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(Packed {
        archive,
        bundle_digest: opened.digest,
        logs,
        proofs,
        skipped,
    })
}

/// A tlog-proof made from one tlog entry of a Sigstore bundle.
struct MadeProof {
    origin: String,
    index: u64,
    tree_size: u64,
    bytes: Vec<u8>,
}

/// Parses the unsigned body of a checkpoint note. `source` names the note in errors.
pub(super) fn checkpoint_body(note: &[u8], source: &str) -> Result<Checkpoint, Failure> {
    let invalid = |detail: String| {
        Failure::rejected(
            format!("{source}: invalid checkpoint: {detail}"),
            ReasonCode::RekorCheckpointInvalid.as_str(),
        )
    };
    let note = parse_note(note).map_err(|error| invalid(error.to_string()))?;
    parse_checkpoint_body(&note.text).map_err(|error| invalid(error.to_string()))
}

fn proofs_from_sigstore_bundle(file: &Path) -> Result<Vec<MadeProof>, Failure> {
    let label = file.display().to_string();
    let json = files::read(file)?;
    let bundle = parse_bundle(&json).map_err(|error| {
        Failure::rejected(
            format!("{label}: invalid Sigstore bundle: {error}"),
            error.reason_code().as_str(),
        )
    })?;
    if bundle.tlog_entries.is_empty() {
        return Err(Failure::rejected(
            format!("{label}: the bundle has no transparency log entry"),
            ReasonCode::RekorEntryMissing.as_str(),
        ));
    }

    let mut proofs = Vec::with_capacity(bundle.tlog_entries.len());
    for (position, entry) in bundle.tlog_entries.iter().enumerate() {
        let at = format!(
            "{label}: tlog entry {position} (log index {})",
            entry.log_index
        );
        let missing = |what: &str| {
            Failure::rejected(
                format!("{at}: {what}; a tlog-proof needs the inclusion proof and its checkpoint"),
                ReasonCode::RekorEntryMissing.as_str(),
            )
        };
        let Some(proof) = &entry.inclusion_proof else {
            return Err(missing("no inclusion proof"));
        };
        if proof.checkpoint.is_empty() {
            return Err(missing("the inclusion proof has no checkpoint"));
        }
        if proof.log_index != entry.log_index {
            return Err(Failure::rejected(
                format!(
                    "{at}: the inclusion proof is for index {} of a log shard (Rekor v1); tlog-proof \
                     files need the index in the whole log, as Rekor v2 gives it",
                    proof.log_index
                ),
                ReasonCode::RekorEntryUnsupported.as_str(),
            ));
        }
        let checkpoint = checkpoint_body(proof.checkpoint.as_bytes(), &at)?;

        // The proof must lead from the logged entry to the checkpoint's root. The checkpoint's
        // signature is checked later, by the attestor.
        let Some(body) = &entry.canonicalized_body else {
            return Err(missing(
                "no canonicalizedBody, so the proof cannot be checked",
            ));
        };
        verify_inclusion(
            entry.log_index,
            checkpoint.size,
            &leaf_hash(body),
            &proof.hashes,
            &checkpoint.root_hash,
        )
        .map_err(|error| {
            Failure::rejected(
                format!(
                    "{at}: the inclusion proof does not lead to the root of checkpoint {:?} size {}: {error}",
                    checkpoint.origin, checkpoint.size
                ),
                error.reason_code().as_str(),
            )
        })?;

        let tlog_proof = TlogProof {
            extra: None,
            index: entry.log_index,
            hashes: proof.hashes.clone(),
            checkpoint: proof.checkpoint.as_bytes().to_vec(),
        };
        proofs.push(MadeProof {
            origin: checkpoint.origin,
            index: entry.log_index,
            tree_size: checkpoint.size,
            bytes: tlog_proof.to_bytes(),
        });
    }
    Ok(proofs)
}
