//! Forging a whole log: deterministic entries, tiles, entry bundles and a
//! signed checkpoint.

use sha2::{Digest, Sha256};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{Hash, leaf_hash};
use stella_verify::note::NoteVerifier;
use stella_verify::tiles::{
    EntryBundleId, TileSource, encode_entry_bundle, inclusion_proof_from_tiles,
};
use stella_verify::tlog_proof::TlogProof;

use crate::error::ForgeError;
use crate::key::{ForgeKey, KeyAlgorithm};
use crate::sink::TileSink;
use crate::tree::TileBuilder;

/// Size in bytes of every forged entry.
pub const ENTRY_SIZE: usize = 64;

/// Entries per entry bundle.
const BUNDLE_WIDTH: u64 = 256;

/// The 32-byte digest from which entries and keys are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed([u8; 32]);

impl Seed {
    /// Derives the seed from arbitrary bytes, such as a `--seed` value.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"stella-log-forge seed\n");
        hasher.update(bytes);
        Self(hasher.finalize().into())
    }

    /// Returns the seed digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns entry `index`: `SHA-256(seed || index || 0) || SHA-256(seed || index || 1)`,
    /// with `index` as a big-endian `u64`.
    pub fn entry(&self, index: u64) -> [u8; ENTRY_SIZE] {
        let mut entry = [0u8; ENTRY_SIZE];
        let (first, second) = entry.split_at_mut(ENTRY_SIZE / 2);
        for (half, part) in [(0u8, first), (1u8, second)] {
            let mut hasher = Sha256::new();
            hasher.update(self.0);
            hasher.update(index.to_be_bytes());
            hasher.update([half]);
            part.copy_from_slice(&hasher.finalize());
        }
        entry
    }
}

/// Parameters of a forged log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeConfig {
    /// Number of entries (the checkpoint's tree size).
    pub entries: u64,
    /// Checkpoint origin, also the key name.
    pub origin: String,
    /// Seed of entries and key.
    pub seed: Seed,
    /// Checkpoint key algorithm.
    pub key: KeyAlgorithm,
}

/// A forged log: its signed checkpoint and the key that verifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgedLog {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The signed checkpoint note.
    pub note: Vec<u8>,
    /// The verifier of the checkpoint key; `to_vkey` gives its vkey.
    pub verifier: NoteVerifier,
}

/// Forges the log described by `config`, writing every hash tile and entry
/// bundle to `sink` in log order, and signs its checkpoint.
///
/// # Errors
///
/// The sink's [`ForgeError::Write`], [`ForgeError::EcdsaKey`],
/// [`ForgeError::Note`] for an origin that is not a valid key name, or
/// [`ForgeError::Tile`].
pub fn forge_log(config: &ForgeConfig, sink: &mut dyn TileSink) -> Result<ForgedLog, ForgeError> {
    let key = ForgeKey::derive(config.key, &config.origin, config.seed.as_bytes())?;
    let verifier = key.verifier()?;

    let mut builder = TileBuilder::new();
    let mut bundle_index = 0u64;
    let mut start = 0u64;
    while start < config.entries {
        let end = start.saturating_add(BUNDLE_WIDTH).min(config.entries);
        let entries: Vec<[u8; ENTRY_SIZE]> =
            (start..end).map(|index| config.seed.entry(index)).collect();
        let refs: Vec<&[u8]> = entries.iter().map(|entry| entry.as_slice()).collect();
        let id = EntryBundleId {
            index: bundle_index,
            width: u16::try_from(end - start)
                .map_err(|_| ForgeError::SizeOverflow { size: start })?,
        };
        sink.put_entry_bundle(&id.path(), encode_entry_bundle(&refs)?)?;
        for entry in &entries {
            builder.push_leaf(leaf_hash(entry), sink)?;
        }
        bundle_index = bundle_index.saturating_add(1);
        start = end;
    }
    let root_hash = builder.finish(sink)?;

    let checkpoint = Checkpoint {
        origin: config.origin.clone(),
        size: config.entries,
        root_hash,
        extensions: Vec::new(),
    };
    let note = key.sign(&checkpoint.to_text())?;
    Ok(ForgedLog {
        checkpoint,
        note,
        verifier,
    })
}

/// Builds the C2SP tlog-proof of entry `index` of `log` from its tiles.
///
/// # Errors
///
/// [`ForgeError::Tile`] for an index outside the log or a missing tile.
pub fn tlog_proof(
    log: &ForgedLog,
    index: u64,
    tiles: &dyn TileSource,
) -> Result<Vec<u8>, ForgeError> {
    let hashes: Vec<Hash> = inclusion_proof_from_tiles(index, log.checkpoint.size, tiles)?;
    let proof = TlogProof {
        extra: None,
        index,
        hashes,
        checkpoint: log.note.clone(),
    };
    Ok(proof.to_bytes())
}
