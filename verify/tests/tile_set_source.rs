//! Tile-set authentication through `TileSetSource`. A store that owns its data and returns
//! copies, as a database does, must give exactly the results of the in-memory maps on valid and
//! broken sets. It must read each tile a bounded number of times and cap the missing-tile list.

mod common;

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use stella_verify::checkpoint::{Checkpoint, VerifiedCheckpoint, verify_checkpoint};
use stella_verify::merkle::{Hash, leaf_hash, root_from_leaves};
use stella_verify::note::{NoteSigner, NoteVerifier};
use stella_verify::tiles::{
    MAX_LISTED_MISSING, SetTileSource, TileError, TileSetSource, TileSetSummary, TileSource,
    build_tiles, encode_entry_bundle, verify_tile_set, verify_tile_set_from,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const ENTRIES_PREFIX: &str = "tile/entries/";

/// Tiles or entry bundles keyed by C2SP path.
type Files = BTreeMap<String, Vec<u8>>;

/// A tile set in one sorted key space, like a database column family. It returns owned
/// copies and counts walks and reads.
struct StoreSet {
    files: BTreeMap<String, Vec<u8>>,
    /// Paths listed by the walks although `get` reports them absent.
    phantom: Vec<String>,
    /// Whether the hash tile walk lists paths in descending order.
    reversed: bool,
    gets: Cell<usize>,
    walks: Cell<usize>,
}

impl StoreSet {
    fn new(tiles: &BTreeMap<String, Vec<u8>>, bundles: &BTreeMap<String, Vec<u8>>) -> Self {
        let files = tiles
            .iter()
            .chain(bundles)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        StoreSet {
            files,
            phantom: Vec::new(),
            reversed: false,
            gets: Cell::new(0),
            walks: Cell::new(0),
        }
    }

    fn walk(&self, bundles: bool) -> Vec<String> {
        self.walks.set(self.walks.get() + 1);
        let mut paths: Vec<String> = self
            .files
            .keys()
            .chain(&self.phantom)
            .filter(|path| path.starts_with(ENTRIES_PREFIX) == bundles)
            .cloned()
            .collect();
        paths.sort();
        if self.reversed && !bundles {
            paths.reverse();
        }
        paths
    }
}

impl TileSetSource for StoreSet {
    fn hash_tile_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        Box::new(self.walk(false).into_iter().map(Ok))
    }

    fn entry_bundle_paths(&self) -> Box<dyn Iterator<Item = Result<String, TileError>> + '_> {
        Box::new(self.walk(true).into_iter().map(Ok))
    }

    fn get(&self, path: &str) -> Result<Option<Cow<'_, [u8]>>, TileError> {
        self.gets.set(self.gets.get() + 1);
        Ok(self.files.get(path).map(|data| Cow::Owned(data.clone())))
    }
}

/// Runs both entry points and checks that they agree.
fn verify_both(
    checkpoint: &VerifiedCheckpoint,
    tiles: &BTreeMap<String, Vec<u8>>,
    bundles: &BTreeMap<String, Vec<u8>>,
) -> Result<TileSetSummary, TileError> {
    let from_maps = verify_tile_set(checkpoint, tiles, bundles);
    let from_store = verify_tile_set_from(checkpoint, &StoreSet::new(tiles, bundles));
    assert_eq!(from_store, from_maps, "store and maps disagree");
    from_store
}

fn entries(size: u64) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| format!("entry {i}").into_bytes())
        .collect()
}

fn signed_checkpoint(size: u64, root: Hash) -> VerifiedCheckpoint {
    let signer = NoteSigner::ed25519("tiles.example/log", &[42; 32]);
    let body = Checkpoint {
        origin: "tiles.example/log".into(),
        size,
        root_hash: root,
        extensions: Vec::new(),
    };
    let note = signer.sign(&body.to_text()).expect("sign");
    verify_checkpoint(&note, &[signer.verifier()]).expect("verify")
}

/// A built log: its checkpoint, hash tiles and entry bundles.
struct Built {
    checkpoint: VerifiedCheckpoint,
    tiles: BTreeMap<String, Vec<u8>>,
    bundles: BTreeMap<String, Vec<u8>>,
}

fn built(size: u64) -> Built {
    let entries = entries(size);
    let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    let (bundles, tiles) = build_tiles(&entries)
        .expect("build tiles")
        .into_iter()
        .partition(|(path, _)| path.starts_with(ENTRIES_PREFIX));
    Built {
        checkpoint: signed_checkpoint(size, root_from_leaves(&leaves)),
        tiles,
        bundles,
    }
}

#[test]
fn built_logs_verify_alike() {
    for size in [1, 7, 255, 256, 257, 300, 65_536, 65_836] {
        let log = built(size);
        let summary = verify_both(&log.checkpoint, &log.tiles, &log.bundles)
            .unwrap_or_else(|err| panic!("size {size}: {err}"));
        assert_eq!(summary.tree_size, size);
        assert_eq!(summary.entries, size);
        assert_eq!(summary.hash_tiles, log.tiles.len());
        assert_eq!(summary.entry_bundles, log.bundles.len());
    }
}

#[test]
fn tampered_full_tile_alike() {
    let log = built(300);
    let mut tiles = log.tiles.clone();
    tiles.get_mut("tile/0/000").expect("full tile")[40] ^= 1;
    let err = verify_both(&log.checkpoint, &tiles, &log.bundles).expect_err("tampered");
    match err {
        TileError::HashMismatch {
            path, authority, ..
        } => {
            assert_eq!(path, "tile/0/000");
            assert_eq!(authority, "tile/1/000.p/1");
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
}

#[test]
fn missing_parent_tile_alike() {
    let log = built(300);
    let mut tiles = log.tiles.clone();
    tiles.remove("tile/1/000.p/1");
    let err = verify_both(&log.checkpoint, &tiles, &log.bundles).expect_err("missing");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/1/000.p/1".into()],
            truncated: false
        }
    );
}

#[test]
fn missing_level0_tile_alike() {
    let log = built(300);
    let mut tiles = log.tiles.clone();
    tiles.remove("tile/0/000");
    let err = verify_both(&log.checkpoint, &tiles, &log.bundles).expect_err("missing");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000".into()],
            truncated: false
        }
    );
}

#[test]
fn wrong_root_alike() {
    let log = built(300);
    let checkpoint = signed_checkpoint(300, [7; 32]);
    let err = verify_both(&checkpoint, &log.tiles, &log.bundles).expect_err("wrong root");
    assert!(matches!(err, TileError::RootMismatch { .. }), "{err:?}");
}

#[test]
fn bad_earlier_partial_tile_alike() {
    let log = built(300);
    let mut tiles = log.tiles.clone();
    // A partial tile of the tree of size 266 whose hash 3 is wrong.
    let mut earlier = log.tiles["tile/0/001.p/44"][..10 * 32].to_vec();
    earlier[3 * 32] ^= 1;
    tiles.insert("tile/0/001.p/10".into(), earlier);
    let err = verify_both(&log.checkpoint, &tiles, &log.bundles).expect_err("earlier");
    match err {
        TileError::HashMismatch {
            path,
            position,
            authority,
            ..
        } => {
            assert_eq!(path, "tile/0/001.p/10");
            assert_eq!(position, 3);
            assert_eq!(authority, "tile/0/001.p/44");
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
}

#[test]
fn good_earlier_partial_tile_counted() {
    let log = built(300);
    let mut tiles = log.tiles.clone();
    tiles.insert(
        "tile/0/001.p/10".into(),
        log.tiles["tile/0/001.p/44"][..10 * 32].to_vec(),
    );
    let summary = verify_both(&log.checkpoint, &tiles, &log.bundles).expect("earlier prefix");
    assert_eq!(summary.earlier_partial_tiles, 1);
    assert_eq!(summary.hash_tiles, log.tiles.len());
}

#[test]
fn entry_bundle_mismatch_alike() {
    let log = built(300);
    let mut bundles = log.bundles.clone();
    let others: Vec<Vec<u8>> = (0..44).map(|i| format!("other {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = others.iter().map(Vec::as_slice).collect();
    bundles.insert(
        "tile/entries/001.p/44".into(),
        encode_entry_bundle(&refs).expect("encode"),
    );
    let err = verify_both(&log.checkpoint, &log.tiles, &bundles).expect_err("mismatch");
    match err {
        TileError::HashMismatch {
            path,
            position,
            authority,
            computed,
            ..
        } => {
            assert_eq!(path, "tile/entries/001.p/44");
            assert_eq!(position, 0);
            assert_eq!(authority, "tile/0/001.p/44");
            assert_eq!(computed, leaf_hash(b"other 0"));
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
}

#[test]
fn wrong_length_and_outside_alike() {
    let log = built(300);
    let mut short = log.tiles.clone();
    short.get_mut("tile/0/000").expect("tile").pop();
    let err = verify_both(&log.checkpoint, &short, &log.bundles).expect_err("short");
    assert!(matches!(err, TileError::WrongLength { .. }), "{err:?}");

    let mut beyond = log.tiles.clone();
    beyond.insert("tile/0/002.p/1".into(), vec![0; 32]);
    let err = verify_both(&log.checkpoint, &beyond, &log.bundles).expect_err("beyond");
    assert!(matches!(err, TileError::OutsideTree { .. }), "{err:?}");
}

#[test]
fn reads_per_tile_bounded() {
    let log = built(65_836);
    let store = StoreSet::new(&log.tiles, &log.bundles);
    verify_tile_set_from(&log.checkpoint, &store).expect("verifies");
    // Steps 1 and 3 read each hash tile, and the cache misses of step 3 read parents. Each
    // bundle reads itself and its level-0 tile. Step 2 reads a few right-edge tiles.
    let bound = 3 * log.tiles.len() + 2 * log.bundles.len() + 64;
    assert!(
        store.gets.get() <= bound,
        "{} reads for {} tiles and {} bundles, bound {bound}",
        store.gets.get(),
        log.tiles.len(),
        log.bundles.len()
    );
    assert_eq!(
        store.walks.get(),
        4,
        "three hash tile walks and one bundle walk"
    );
}

#[test]
fn unordered_paths_rejected() {
    let log = built(300);
    let mut store = StoreSet::new(&log.tiles, &log.bundles);
    store.reversed = true;
    let err = verify_tile_set_from(&log.checkpoint, &store).expect_err("unordered");
    assert!(
        matches!(&err, TileError::Unreadable { reason, .. } if reason.contains("ascending")),
        "{err:?}"
    );
}

#[test]
fn listed_but_absent_rejected() {
    let log = built(300);
    let mut store = StoreSet::new(&log.tiles, &log.bundles);
    store.phantom.push("tile/0/000.p/5".into());
    let err = verify_tile_set_from(&log.checkpoint, &store).expect_err("phantom");
    assert!(
        matches!(&err, TileError::Unreadable { path, .. } if path == "tile/0/000.p/5"),
        "{err:?}"
    );
}

#[test]
fn missing_list_capped() {
    // 1,001 full bundles and one partial, with no hash tile at all.
    let log = built(256 * 1001 + 1);
    let err = verify_both(&log.checkpoint, &BTreeMap::new(), &log.bundles).expect_err("missing");
    let TileError::Missing { paths, truncated } = &err else {
        panic!("expected Missing, got {err:?}");
    };
    assert_eq!(paths.len(), MAX_LISTED_MISSING);
    assert_eq!(paths[0], "tile/0/000");
    assert_eq!(paths[MAX_LISTED_MISSING - 1], "tile/0/999");
    assert!(
        paths.iter().all(|path| path.starts_with("tile/")),
        "every listed element is a tile path"
    );
    assert!(truncated, "the cut is flagged");
    assert!(err.to_string().ends_with("and more tiles (only the first 1000 are listed)"), "{err}");
}

#[test]
fn set_source_width_fallback() {
    let log = built(300);
    let full = log.tiles["tile/0/000"].clone();
    let partial = log.tiles["tile/0/001.p/44"].clone();
    let store = StoreSet::new(&log.tiles, &BTreeMap::new());
    let source = SetTileSource(&store);
    assert_eq!(source.hash_tile(0, 0, 5).expect("read"), Some(full.clone()));
    assert_eq!(source.hash_tile(0, 0, 256).expect("read"), Some(full));
    assert_eq!(
        source.hash_tile(0, 1, 10).expect("read"),
        Some(partial.clone())
    );
    assert_eq!(source.hash_tile(0, 1, 44).expect("read"), Some(partial));
    assert_eq!(source.hash_tile(0, 1, 45).expect("read"), None);
    assert_eq!(source.hash_tile(0, 2, 1).expect("read"), None);
}

/// Reads the Tessera test log's tiles and bundles, or `None` when the vectors are absent.
fn tessera() -> Option<(PathBuf, Files, Files)> {
    let dir = Path::new(VECTORS).join("tessera-log");
    if !dir.is_dir() {
        common::vectors_absent(&dir.display().to_string());
        return None;
    }
    let mut files = BTreeMap::new();
    read_tree(&dir, &dir.join("tile"), &mut files);
    let (bundles, tiles) = files
        .into_iter()
        .partition(|(path, _)| path.starts_with(ENTRIES_PREFIX));
    Some((dir, tiles, bundles))
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

fn tessera_checkpoint(dir: &Path, size: u64) -> VerifiedCheckpoint {
    let note = fs::read(dir.join(format!("checkpoint.{size}"))).expect("read checkpoint");
    let verifier = NoteVerifier::from_vkey(TESSERA_VKEY).expect("vkey");
    verify_checkpoint(&note, &[verifier]).expect("checkpoint verifies")
}

#[test]
fn tessera_cases_alike() {
    let Some((dir, tiles, bundles)) = tessera() else {
        return;
    };
    let checkpoint = tessera_checkpoint(&dir, 15);
    let summary = verify_both(&checkpoint, &tiles, &bundles).expect("real log");
    assert_eq!(summary.tree_size, 15);
    assert_eq!(summary.entry_bundles, bundles.len());

    let flip = |files: &BTreeMap<String, Vec<u8>>, path: &str, offset: usize| {
        let mut files = files.clone();
        files.get_mut(path).expect("file")[offset] ^= 1;
        files
    };
    let right_edge = flip(&tiles, "tile/0/000.p/15", 100);
    let err = verify_both(&checkpoint, &right_edge, &bundles).expect_err("right edge");
    assert!(matches!(err, TileError::RootMismatch { .. }), "{err:?}");

    let earlier = flip(&tiles, "tile/0/000.p/7", 100);
    let err = verify_both(&checkpoint, &earlier, &bundles).expect_err("earlier");
    assert!(matches!(err, TileError::HashMismatch { .. }), "{err:?}");

    let bundle = flip(&bundles, "tile/entries/000.p/15", 8);
    let err = verify_both(&checkpoint, &tiles, &bundle).expect_err("bundle");
    assert!(matches!(err, TileError::HashMismatch { .. }), "{err:?}");

    let mut truncated = bundles.clone();
    truncated
        .get_mut("tile/entries/000.p/15")
        .expect("bundle")
        .pop();
    let err = verify_both(&checkpoint, &tiles, &truncated).expect_err("truncated");
    assert!(
        matches!(err, TileError::MalformedEntryBundle { .. }),
        "{err:?}"
    );

    let mut missing = tiles.clone();
    missing.remove("tile/0/000.p/15");
    let err = verify_both(&checkpoint, &missing, &bundles).expect_err("missing");
    assert!(matches!(err, TileError::Missing { .. }), "{err:?}");

    let err =
        verify_both(&tessera_checkpoint(&dir, 9), &tiles, &BTreeMap::new()).expect_err("beyond");
    assert!(matches!(err, TileError::OutsideTree { .. }), "{err:?}");
}
