//! Tests on a real 15-entry log written by Tessera's POSIX driver. Proofs from
//! its tiles are checked against independently computed proofs and the log's
//! signed checkpoints. Tile-set authentication and tlog-proof files are tested
//! on the same log.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stella_verify::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use stella_verify::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use stella_verify::note::NoteVerifier;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{
    TileError, consistency_proof_from_tiles, inclusion_proof_from_tiles, leaf_hash_from_tiles,
    parse_entry_bundle, root_from_tiles, verify_tile_set,
};
use stella_verify::tlog_proof::TlogProof;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
const VKEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
/// The log's entries, spelled as in Tessera's test data.
const WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

struct TesseraLog {
    dir: PathBuf,
    /// Hash tiles keyed by C2SP path.
    tiles: BTreeMap<String, Vec<u8>>,
    /// Entry bundles keyed by C2SP path.
    bundles: BTreeMap<String, Vec<u8>>,
    proofs: Value,
}

impl TesseraLog {
    fn load() -> Option<Self> {
        let dir = Path::new(VECTORS).join("tessera-log");
        let proofs_path = Path::new(VECTORS).join("tessera-log-proofs.json");
        if !dir.is_dir() || !proofs_path.is_file() {
            common::vectors_absent(&format!("{} or {}", dir.display(), proofs_path.display()));
            return None;
        }
        let mut files = BTreeMap::new();
        read_tree(&dir, &dir.join("tile"), &mut files);
        let (bundles, tiles): (BTreeMap<_, _>, BTreeMap<_, _>) = files
            .into_iter()
            .partition(|(path, _)| path.starts_with("tile/entries/"));
        let proofs = serde_json::from_slice(&fs::read(&proofs_path).expect("read proofs"))
            .expect("parse proofs");
        Some(Self {
            dir,
            tiles,
            bundles,
            proofs,
        })
    }

    fn checkpoint(&self, size: u64) -> VerifiedCheckpoint {
        let path = self.dir.join(format!("checkpoint.{size}"));
        let note = fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
        let verifier = NoteVerifier::from_vkey(VKEY).expect("vkey");
        verify_checkpoint(&note, &[verifier])
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    /// Returns the tiles and bundles that belong to the tree of `size` leaves.
    fn files_at(&self, size: u64) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
        let tile = format!("tile/0/000.p/{size}");
        let bundle = format!("tile/entries/000.p/{size}");
        let pick = |files: &BTreeMap<String, Vec<u8>>, path: &str| {
            files
                .iter()
                .filter(|(key, _)| key.as_str() == path)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        (pick(&self.tiles, &tile), pick(&self.bundles, &bundle))
    }
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|err| panic!("read {}: {err}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            read_tree(root, &path, files);
        } else {
            let key = path
                .strip_prefix(root)
                .expect("under root")
                .to_str()
                .expect("utf-8 path")
                .to_owned();
            files.insert(key, fs::read(&path).expect("read tile"));
        }
    }
}

fn hash(value: &Value) -> Hash {
    let bytes = STANDARD
        .decode(value.as_str().expect("string"))
        .expect("base64");
    Hash::try_from(bytes.as_slice()).expect("32 bytes")
}

fn hashes(value: &Value) -> Vec<Hash> {
    value.as_array().expect("array").iter().map(hash).collect()
}

fn u64_field(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

#[test]
fn inclusion_proofs_match_reference() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let cases = log.proofs["inclusion"].as_array().expect("inclusion");
    assert_eq!(cases.len(), 120);
    for case in cases {
        let index = u64_field(case, "leafIdx");
        let size = u64_field(case, "treeSize");
        let row = format!("leaf {index} in size {size}");
        let checkpoint = log.checkpoint(size);
        let root = checkpoint.checkpoint().root_hash;
        assert_eq!(
            root,
            hash(&case["root"]),
            "{row}: reference root differs from signed checkpoint"
        );

        let proof = inclusion_proof_from_tiles(index, size, &log.tiles)
            .unwrap_or_else(|err| panic!("{row}: {err}"));
        assert_eq!(proof, hashes(&case["proof"]), "{row}");

        let leaf = leaf_hash_from_tiles(index, size, &log.tiles)
            .unwrap_or_else(|err| panic!("{row}: {err}"));
        assert_eq!(leaf, hash(&case["leafHash"]), "{row}");
        let word = WORDS[usize::try_from(index).expect("index")];
        assert_eq!(
            leaf,
            leaf_hash(word.as_bytes()),
            "{row}: leaf is not the hash of {word:?}"
        );
        verify_inclusion(index, size, &leaf, &proof, &root)
            .unwrap_or_else(|err| panic!("{row}: {err}"));
    }
}

#[test]
fn consistency_proofs_match_reference() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let cases = log.proofs["consistency"].as_array().expect("consistency");
    assert_eq!(cases.len(), 120);
    for case in cases {
        let size1 = u64_field(case, "size1");
        let size2 = u64_field(case, "size2");
        let row = format!("{size1} -> {size2}");
        let root1 = log.checkpoint(size1).checkpoint().root_hash;
        let root2 = log.checkpoint(size2).checkpoint().root_hash;
        assert_eq!(root1, hash(&case["root1"]), "{row}");
        assert_eq!(root2, hash(&case["root2"]), "{row}");

        let proof = consistency_proof_from_tiles(size1, size2, &log.tiles)
            .unwrap_or_else(|err| panic!("{row}: {err}"));
        assert_eq!(proof, hashes(&case["proof"]), "{row}");
        verify_consistency(size1, size2, &proof, &root1, &root2)
            .unwrap_or_else(|err| panic!("{row}: {err}"));
    }
}

#[test]
fn roots_from_tiles_match_checkpoints() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    for size in 0..=15u64 {
        let (tiles, _) = log.files_at(size);
        let root = root_from_tiles(size, &tiles).unwrap_or_else(|err| panic!("size {size}: {err}"));
        assert_eq!(
            root,
            log.checkpoint(size).checkpoint().root_hash,
            "size {size}"
        );
    }
}

#[test]
fn entry_bundles_hold_the_words() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let bundle = log.bundles.get("tile/entries/000.p/15").expect("bundle 15");
    let entries = parse_entry_bundle(bundle).expect("parse bundle");
    let expected: Vec<&[u8]> = WORDS.iter().map(|word| word.as_bytes()).collect();
    assert_eq!(entries, expected);
}

#[test]
fn tile_set_accepts_real_log() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let summary = verify_tile_set(&log.checkpoint(15), &log.tiles, &log.bundles).expect("real log");
    assert_eq!(summary.tree_size, 15);
    assert_eq!(summary.hash_tiles, 1);
    assert_eq!(summary.earlier_partial_tiles, 14);
    assert_eq!(summary.entry_bundles, 15);
    assert_eq!(summary.entries, (1..=15).sum::<u64>());

    for size in 1..=15u64 {
        let (tiles, bundles) = log.files_at(size);
        let summary = verify_tile_set(&log.checkpoint(size), &tiles, &bundles)
            .unwrap_or_else(|err| panic!("size {size}: {err}"));
        assert_eq!(
            (summary.hash_tiles, summary.entries),
            (1, size),
            "size {size}"
        );
    }

    let empty = BTreeMap::new();
    let summary = verify_tile_set(&log.checkpoint(0), &empty, &empty).expect("empty tree");
    assert_eq!(summary.hash_tiles, 0);
}

fn flip(files: &BTreeMap<String, Vec<u8>>, path: &str, offset: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = files.clone();
    let data = files
        .get_mut(path)
        .unwrap_or_else(|| panic!("{path} absent"));
    data[offset] ^= 0x01;
    files
}

#[test]
fn tile_set_flipped_right_edge_tile() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let checkpoint = log.checkpoint(15);
    let tiles = flip(&log.tiles, "tile/0/000.p/15", 100);
    let err = verify_tile_set(&checkpoint, &tiles, &log.bundles).expect_err("flipped");
    assert!(
        matches!(err, TileError::RootMismatch { expected, .. } if expected == checkpoint.checkpoint().root_hash),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorRootMismatch);
}

#[test]
fn tile_set_flipped_earlier_partial_tile() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    // Byte 100 is in hash 3 of the width-7 tile.
    let tiles = flip(&log.tiles, "tile/0/000.p/7", 100);
    let err = verify_tile_set(&log.checkpoint(15), &tiles, &log.bundles).expect_err("flipped");
    match &err {
        TileError::HashMismatch {
            path,
            position,
            authority,
            ..
        } => {
            assert_eq!(path, "tile/0/000.p/7");
            assert_eq!(*position, 3);
            assert_eq!(authority, "tile/0/000.p/15");
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert_eq!(err.reason_code(), ReasonCode::RekorTileInvalid);
}

#[test]
fn tile_set_flipped_entry_bundle() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    // Offset 8 is the 'w' of "two", the second entry (length prefix at 5 and 6).
    let bundles = flip(&log.bundles, "tile/entries/000.p/15", 8);
    let err = verify_tile_set(&log.checkpoint(15), &log.tiles, &bundles).expect_err("flipped");
    match &err {
        TileError::HashMismatch {
            path,
            position,
            authority,
            computed,
            expected,
        } => {
            assert_eq!(path, "tile/entries/000.p/15");
            assert_eq!(*position, 1);
            assert_eq!(authority, "tile/0/000.p/15");
            assert_eq!(*computed, leaf_hash(b"tvo"));
            assert_eq!(*expected, leaf_hash(b"two"));
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
}

#[test]
fn tile_set_truncated_entry_bundle() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let mut bundles = log.bundles.clone();
    let bundle = bundles.get_mut("tile/entries/000.p/15").expect("bundle");
    bundle.truncate(bundle.len() - 1);
    let last_offset: usize = WORDS[..14].iter().map(|word| 2 + word.len()).sum();
    let err = verify_tile_set(&log.checkpoint(15), &log.tiles, &bundles).expect_err("truncated");
    assert_eq!(
        err,
        TileError::MalformedEntryBundle {
            path: Some("tile/entries/000.p/15".into()),
            offset: last_offset
        }
    );
}

#[test]
fn tile_set_missing_right_edge_tile() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let mut tiles = log.tiles.clone();
    tiles.remove("tile/0/000.p/15");
    let err = verify_tile_set(&log.checkpoint(15), &tiles, &log.bundles).expect_err("missing");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000.p/15".into()],
            truncated: false
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorTileMissing);
}

#[test]
fn tile_set_rejects_tiles_beyond_checkpoint() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    // Tiles of size 15 cannot be authenticated by the checkpoint of size 9.
    let err =
        verify_tile_set(&log.checkpoint(9), &log.tiles, &BTreeMap::new()).expect_err("beyond");
    assert_eq!(
        err,
        TileError::OutsideTree {
            path: "tile/0/000.p/10".into(),
            size: 9
        }
    );
}

#[test]
fn tlog_proof_round_trip_verifies() {
    let Some(log) = TesseraLog::load() else {
        return;
    };
    let checkpoint_note = fs::read(log.dir.join("checkpoint")).expect("checkpoint");
    let verifier = NoteVerifier::from_vkey(VKEY).expect("vkey");
    for index in 0..15u64 {
        let proof = TlogProof {
            extra: (index % 2 == 0).then(|| format!("entry {index}").into_bytes()),
            index,
            hashes: inclusion_proof_from_tiles(index, 15, &log.tiles).expect("proof"),
            checkpoint: checkpoint_note.clone(),
        };
        let parsed = TlogProof::parse(&proof.to_bytes())
            .unwrap_or_else(|err| panic!("index {index}: {err}"));
        assert_eq!(parsed, proof, "index {index}");

        let verified = verify_checkpoint(&parsed.checkpoint, std::slice::from_ref(&verifier))
            .expect("checkpoint");
        let leaf = leaf_hash(WORDS[usize::try_from(index).expect("index")].as_bytes());
        let checkpoint = verified.checkpoint();
        verify_inclusion(
            parsed.index,
            checkpoint.size,
            &leaf,
            &parsed.hashes,
            &checkpoint.root_hash,
        )
        .unwrap_or_else(|err| panic!("index {index}: {err}"));
    }
}
