//! Trust sets and tile bundles written to files for `stella ... import`, and a small log signed
//! with a test key whose tile bundles are built from a list of entries.

use std::collections::BTreeMap;
use std::path::Path;

use stella_bundle::{LogTilesInput, TilesInput, TrustSetInput};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::note::NoteSigner;
use stella_verify::tiles::build_tiles;

/// Writes to `path` a trust set (version 1, expiring in 30 days) of the trusted root at
/// `trusted_root` plus the note verifier keys `note_keys`.
pub fn write_trust_set(path: &Path, trusted_root: &Path, note_keys: &[String]) {
    let archive = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: std::fs::read(trusted_root).expect("read trusted root"),
        note_keys: note_keys.to_vec(),
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600,
    })
    .expect("pack trust set");
    std::fs::write(path, archive).expect("write trust set");
}

/// Writes to `path` a tile bundle of one log with the signed `checkpoint` note and `tiles` (hash
/// tiles and entry bundles keyed by tlog-tiles path). Returns the archive's size in bytes.
pub fn write_tile_bundle(
    path: &Path,
    checkpoint: Vec<u8>,
    tiles: BTreeMap<String, Vec<u8>>,
) -> usize {
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput { checkpoint, tiles }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    std::fs::write(path, &archive).expect("write tile bundle");
    archive.len()
}

/// Returns the entries `entry 0` to `entry {size - 1}`.
pub fn numbered_entries(size: usize) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| format!("entry {i}").into_bytes())
        .collect()
}

/// Computes the RFC 6962 leaf hashes of `entries`.
pub fn leaf_hashes(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries
        .iter()
        .map(|entry| merkle::leaf_hash(entry))
        .collect()
}

/// Computes the root hash of the tree of `entries`.
pub fn root_of(entries: &[Vec<u8>]) -> Hash {
    merkle::root_from_leaves(&leaf_hashes(entries))
}

/// A test log whose checkpoints are signed with an Ed25519 key derived from a one-byte seed.
pub struct SignedLog {
    origin: String,
    signer: NoteSigner,
}

impl SignedLog {
    /// Creates the log `origin` with the Ed25519 key whose 32 seed bytes all equal `seed`.
    pub fn new(origin: &str, seed: u8) -> SignedLog {
        SignedLog {
            origin: origin.to_owned(),
            signer: NoteSigner::ed25519(origin, &[seed; 32]),
        }
    }

    /// Returns the note verifier key of the log, for a trust set.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// Signs the checkpoint of the tree of `entries`.
    pub fn note(&self, entries: &[Vec<u8>]) -> Vec<u8> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: u64::try_from(entries.len()).expect("size"),
            root_hash: root_of(entries),
            extensions: Vec::new(),
        };
        self.signer
            .sign(&checkpoint.to_text())
            .expect("sign checkpoint")
    }

    /// Writes to `path` the tile bundle of the tree of `entries`, with its signed checkpoint.
    pub fn write_tiles(&self, path: &Path, entries: &[Vec<u8>]) {
        write_tile_bundle(
            path,
            self.note(entries),
            build_tiles(entries).expect("build tiles"),
        );
    }
}
