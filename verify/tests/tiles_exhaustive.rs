//! Proofs from tiles compared with proofs computed directly from the leaves,
//! for every tree size up to 100 and for multi-level trees. Also tests tile
//! selection, missing and malformed tiles, and tile-set authentication of
//! built logs.

use std::collections::BTreeMap;

use stella_verify::checkpoint::{Checkpoint, VerifiedCheckpoint, verify_checkpoint};
use stella_verify::merkle::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, root_from_leaves, verify_consistency,
    verify_inclusion,
};
use stella_verify::note::NoteSigner;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{
    TileError, TileId, TileSource, build_tiles, consistency_proof_from_tiles,
    inclusion_proof_from_tiles, leaf_hash_from_tiles, root_from_tiles, tiles_for_consistency,
    tiles_for_inclusion, verify_tile_set,
};

fn entries(size: u64) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| format!("entry {i}").into_bytes())
        .collect()
}

fn leaves_of(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries.iter().map(|entry| leaf_hash(entry)).collect()
}

fn prefix(leaves: &[Hash], size: u64) -> &[Hash] {
    &leaves[..usize::try_from(size).expect("size")]
}

/// Keeps only the listed tiles of a tile map.
fn restrict(tiles: &BTreeMap<String, Vec<u8>>, ids: &[TileId]) -> BTreeMap<String, Vec<u8>> {
    ids.iter()
        .map(|id| {
            let path = id.path();
            let data = tiles
                .get(&path)
                .unwrap_or_else(|| panic!("{path} not built"));
            (path, data.clone())
        })
        .collect()
}

fn paths(ids: &[TileId]) -> Vec<String> {
    ids.iter().map(TileId::path).collect()
}

#[test]
fn every_size_up_to_100() {
    for size in 1..=100u64 {
        let entries = entries(size);
        let leaves = leaves_of(&entries);
        let tiles = build_tiles(&entries).expect("build tiles");
        let root = root_from_leaves(&leaves);
        assert_eq!(
            root_from_tiles(size, &tiles).expect("root"),
            root,
            "size {size}"
        );

        for index in 0..size {
            let row = format!("leaf {index} in size {size}");
            let want = inclusion_proof(index, &leaves).expect("direct proof");
            let from_tiles = inclusion_proof_from_tiles(index, size, &tiles)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(from_tiles, want, "{row}");
            let leaf = leaf_hash_from_tiles(index, size, &tiles).expect("leaf");
            assert_eq!(
                leaf,
                leaves[usize::try_from(index).expect("index")],
                "{row}"
            );
            verify_inclusion(index, size, &leaf, &from_tiles, &root)
                .unwrap_or_else(|err| panic!("{row}: {err}"));

            // The listed tiles alone are enough.
            let listed = restrict(&tiles, &tiles_for_inclusion(index, size));
            let from_listed = inclusion_proof_from_tiles(index, size, &listed)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(from_listed, want, "{row}: listed tiles");
        }

        for size1 in 1..=size {
            let row = format!("{size1} -> {size}");
            let want = consistency_proof(size1, &leaves).expect("direct proof");
            let from_tiles = consistency_proof_from_tiles(size1, size, &tiles)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(from_tiles, want, "{row}");
            let root1 = root_from_leaves(prefix(&leaves, size1));
            verify_consistency(size1, size, &from_tiles, &root1, &root)
                .unwrap_or_else(|err| panic!("{row}: {err}"));

            let listed = restrict(&tiles, &tiles_for_consistency(size1, size));
            let from_listed = consistency_proof_from_tiles(size1, size, &listed)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(from_listed, want, "{row}: listed tiles");
        }
    }
}

/// Sample indexes around tile and level boundaries. Each direct proof hashes
/// the whole tree, so the samples are few to keep the test fast.
fn sample_indexes(size: u64) -> Vec<u64> {
    let mut indexes: Vec<u64> = [0, 255, 256, 511, 65_535, 65_536, 69_888, size / 2, size - 1]
        .into_iter()
        .filter(|&index| index < size)
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

#[test]
fn multi_level_trees() {
    for size in [256u64, 257, 511, 512, 65_537, 70_000] {
        let entries = entries(size);
        let leaves = leaves_of(&entries);
        let tiles = build_tiles(&entries).expect("build tiles");
        let root = root_from_leaves(&leaves);
        assert_eq!(
            root_from_tiles(size, &tiles).expect("root"),
            root,
            "size {size}"
        );

        for index in sample_indexes(size) {
            let row = format!("leaf {index} in size {size}");
            let from_tiles = inclusion_proof_from_tiles(index, size, &tiles)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(
                from_tiles,
                inclusion_proof(index, &leaves).expect("direct"),
                "{row}"
            );
            let leaf = leaves[usize::try_from(index).expect("index")];
            verify_inclusion(index, size, &leaf, &from_tiles, &root)
                .unwrap_or_else(|err| panic!("{row}: {err}"));

            let listed = restrict(&tiles, &tiles_for_inclusion(index, size));
            assert_eq!(
                inclusion_proof_from_tiles(index, size, &listed).expect("listed"),
                from_tiles,
                "{row}: listed tiles"
            );
        }

        for size1 in sample_indexes(size).into_iter().map(|index| index + 1) {
            let row = format!("{size1} -> {size}");
            let from_tiles = consistency_proof_from_tiles(size1, size, &tiles)
                .unwrap_or_else(|err| panic!("{row}: {err}"));
            assert_eq!(
                from_tiles,
                consistency_proof(size1, &leaves).expect("direct"),
                "{row}"
            );
            let root1 = root_from_leaves(prefix(&leaves, size1));
            verify_consistency(size1, size, &from_tiles, &root1, &root)
                .unwrap_or_else(|err| panic!("{row}: {err}"));

            let listed = restrict(&tiles, &tiles_for_consistency(size1, size));
            assert_eq!(
                consistency_proof_from_tiles(size1, size, &listed).expect("listed"),
                from_tiles,
                "{row}: listed tiles"
            );
        }
    }
}

#[test]
fn build_tiles_size_70000_layout() {
    let tiles = build_tiles(&entries(70_000)).expect("build tiles");
    let level0_full = tiles
        .keys()
        .filter(|path| path.starts_with("tile/0/") && !path.contains(".p/"))
        .count();
    assert_eq!(level0_full, 273);
    for path in [
        "tile/0/272",
        "tile/0/273.p/112",
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
        "tile/entries/273.p/112",
    ] {
        assert!(tiles.contains_key(path), "{path} missing");
    }
    let hash_tiles = tiles
        .keys()
        .filter(|path| !path.starts_with("tile/entries/"))
        .count();
    assert_eq!(hash_tiles, 273 + 1 + 2 + 1);
    assert_eq!(
        tiles
            .keys()
            .filter(|path| path.starts_with("tile/entries/"))
            .count(),
        274
    );
    assert_eq!(tiles["tile/2/000.p/1"].len(), 32);
}

#[test]
fn tiles_for_inclusion_reference_table() {
    let rows: [(&str, u64, u64, &[&str]); 4] = [
        (
            "rekor2-happy-path",
            735,
            736,
            &["tile/0/002.p/224", "tile/1/000.p/2"],
        ),
        (
            "rekor2-dsse-happy-path",
            4_026_478,
            4_026_479,
            &[
                "tile/0/x015/728.p/111",
                "tile/1/061.p/112",
                "tile/2/000.p/61",
            ],
        ),
        (
            "first leaf of 70000",
            0,
            70_000,
            &[
                "tile/0/000",
                "tile/0/273.p/112",
                "tile/1/000",
                "tile/1/001.p/17",
                "tile/2/000.p/1",
            ],
        ),
        (
            "level-1 tile boundary",
            5,
            65_537,
            &[
                "tile/0/000",
                "tile/0/256.p/1",
                "tile/1/000",
                "tile/2/000.p/1",
            ],
        ),
    ];
    for (name, index, size, want) in rows {
        assert_eq!(
            paths(&tiles_for_inclusion(index, size)),
            want.to_vec(),
            "row {name}"
        );
    }
    assert!(tiles_for_inclusion(5, 5).is_empty());
    assert_eq!(
        paths(&tiles_for_consistency(736, 737)),
        paths(&tiles_for_inclusion(735, 737))
    );
    assert!(tiles_for_consistency(5, 5).is_empty());
}

#[test]
fn missing_tiles_named_exactly() {
    let tiles = build_tiles(&entries(70_000)).expect("build tiles");

    let mut without_edge = tiles.clone();
    without_edge.remove("tile/0/273.p/112");
    without_edge.remove("tile/1/001.p/17");
    without_edge.remove("tile/0/100"); // not needed for leaf 5
    let err = inclusion_proof_from_tiles(5, 70_000, &without_edge).expect_err("missing edge");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/273.p/112".into(), "tile/1/001.p/17".into()],
            truncated: false
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorTileMissing);
    assert_eq!(
        err.to_string(),
        "missing tiles: tile/0/273.p/112, tile/1/001.p/17"
    );

    let mut without_leaf_tile = tiles.clone();
    without_leaf_tile.remove("tile/0/000");
    let err =
        inclusion_proof_from_tiles(5, 70_000, &without_leaf_tile).expect_err("missing leaf tile");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000".into()],
            truncated: false
        }
    );
    let err = leaf_hash_from_tiles(5, 70_000, &without_leaf_tile).expect_err("missing leaf tile");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000".into()],
            truncated: false
        }
    );
    let err =
        consistency_proof_from_tiles(6, 70_000, &without_leaf_tile).expect_err("missing old edge");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000".into()],
            truncated: false
        }
    );
    assert!(
        root_from_tiles(70_000, &without_leaf_tile).is_ok(),
        "the root does not need tile/0/000"
    );

    let empty = BTreeMap::new();
    let err = inclusion_proof_from_tiles(735, 736, &empty).expect_err("no tiles");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/002.p/224".into(), "tile/1/000.p/2".into()],
            truncated: false
        }
    );
}

#[test]
fn partial_request_served_by_wider_tile() {
    // Tiles of a 300-leaf tree serve proofs for 290 leaves, because
    // tile/0/001.p/44 starts with the hashes of tile/0/001.p/34.
    let entries = entries(300);
    let leaves = leaves_of(&entries);
    let tiles = build_tiles(&entries).expect("build tiles");
    assert!(!tiles.contains_key("tile/0/001.p/34"));
    let old = prefix(&leaves, 290);
    let root = root_from_leaves(old);
    assert_eq!(root_from_tiles(290, &tiles).expect("root"), root);
    for index in [0, 255, 256, 289] {
        let proof = inclusion_proof_from_tiles(index, 290, &tiles).expect("proof");
        assert_eq!(
            proof,
            inclusion_proof(index, old).expect("direct"),
            "leaf {index}"
        );
    }
}

#[test]
fn malformed_tile_data_rejected() {
    let mut tiles = build_tiles(&entries(20)).expect("build tiles");
    tiles
        .get_mut("tile/0/000.p/20")
        .expect("tile")
        .truncate(19 * 32);
    let err = inclusion_proof_from_tiles(3, 20, &tiles).expect_err("short tile");
    assert_eq!(
        err,
        TileError::WrongLength {
            path: "tile/0/000.p/20".into(),
            got: 19 * 32,
            want: 20 * 32
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorTileInvalid);
}

#[test]
fn out_of_range_requests_rejected() {
    let tiles = build_tiles(&entries(4)).expect("build tiles");
    assert_eq!(
        inclusion_proof_from_tiles(4, 4, &tiles),
        Err(TileError::IndexOutOfRange { index: 4, size: 4 })
    );
    assert_eq!(
        leaf_hash_from_tiles(9, 4, &tiles),
        Err(TileError::IndexOutOfRange { index: 9, size: 4 })
    );
    assert_eq!(
        consistency_proof_from_tiles(0, 4, &tiles),
        Err(TileError::InvalidSizes { size1: 0, size2: 4 })
    );
    assert_eq!(
        consistency_proof_from_tiles(5, 4, &tiles),
        Err(TileError::InvalidSizes { size1: 5, size2: 4 })
    );
    assert_eq!(consistency_proof_from_tiles(4, 4, &tiles), Ok(Vec::new()));
    assert_eq!(
        root_from_tiles(0, &BTreeMap::new()),
        Ok(stella_verify::merkle::empty_root())
    );
}

/// A source that fails, as a broken store would.
struct FailingSource;

impl TileSource for FailingSource {
    fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Option<Vec<u8>>, TileError> {
        Err(TileError::Unreadable {
            path: TileId {
                level,
                index,
                width,
            }
            .path(),
            reason: "disk I/O error".into(),
        })
    }
}

#[test]
fn source_failure_propagates() {
    let err = inclusion_proof_from_tiles(0, 2, &FailingSource).expect_err("failing source");
    assert_eq!(
        err,
        TileError::Unreadable {
            path: "tile/0/000.p/2".into(),
            reason: "disk I/O error".into()
        }
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorTileMissing);
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

fn split_bundles(
    files: BTreeMap<String, Vec<u8>>,
) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let (bundles, tiles) = files
        .into_iter()
        .partition(|(path, _)| path.starts_with("tile/entries/"));
    (tiles, bundles)
}

#[test]
fn tile_set_multi_level_accepted() {
    let entries = entries(70_000);
    let root = root_from_leaves(&leaves_of(&entries));
    let (tiles, bundles) = split_bundles(build_tiles(&entries).expect("build tiles"));
    let summary =
        verify_tile_set(&signed_checkpoint(70_000, root), &tiles, &bundles).expect("valid set");
    assert_eq!(summary.hash_tiles, 277);
    assert_eq!(summary.earlier_partial_tiles, 0);
    assert_eq!(summary.entry_bundles, 274);
    assert_eq!(summary.entries, 70_000);
    assert_eq!(summary.root_hash, root);
}

#[test]
fn tile_set_multi_level_tampering_rejected() {
    let entries = entries(70_000);
    let root = root_from_leaves(&leaves_of(&entries));
    let checkpoint = signed_checkpoint(70_000, root);
    let (tiles, bundles) = split_bundles(build_tiles(&entries).expect("build tiles"));

    // A full level-0 tile no longer matches its hash in tile/1/000.
    let mut bad_tiles = tiles.clone();
    bad_tiles.get_mut("tile/0/100").expect("tile")[5] ^= 1;
    let err = verify_tile_set(&checkpoint, &bad_tiles, &bundles).expect_err("flipped level-0 tile");
    assert!(
        matches!(&err, TileError::HashMismatch { path, position: 100, authority, .. } if path == "tile/0/100" && authority == "tile/1/000"),
        "{err:?}"
    );

    // A full level-1 tile no longer matches tile/2/000.p/1; its children see it first.
    let mut bad_tiles = tiles.clone();
    bad_tiles.get_mut("tile/1/000").expect("tile")[7 * 32] ^= 1;
    let err = verify_tile_set(&checkpoint, &bad_tiles, &bundles).expect_err("flipped level-1 tile");
    assert!(
        matches!(&err, TileError::HashMismatch { path, position: 7, authority, .. } if path == "tile/0/007" && authority == "tile/1/000"),
        "{err:?}"
    );

    // An entry of bundle 5 no longer hashes to tile/0/005.
    let mut bad_bundles = bundles.clone();
    bad_bundles.get_mut("tile/entries/005").expect("bundle")[3] ^= 1;
    let err = verify_tile_set(&checkpoint, &tiles, &bad_bundles).expect_err("flipped entry");
    assert!(
        matches!(&err, TileError::HashMismatch { path, position: 0, authority, .. } if path == "tile/entries/005" && authority == "tile/0/005"),
        "{err:?}"
    );

    // The parent needed to authenticate full level-1 tile 0 is absent.
    let mut no_parent = tiles.clone();
    no_parent.remove("tile/1/000");
    let err = verify_tile_set(&checkpoint, &no_parent, &bundles).expect_err("missing parent");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/1/000".into()],
            truncated: false
        }
    );

    // A checkpoint with another root.
    let other = signed_checkpoint(70_000, [9; 32]);
    let err = verify_tile_set(&other, &tiles, &bundles).expect_err("other root");
    assert_eq!(
        err,
        TileError::RootMismatch {
            computed: root,
            expected: [9; 32]
        }
    );
}

#[test]
fn tile_set_bad_paths_and_lengths_rejected() {
    let entries = entries(300);
    let root = root_from_leaves(&leaves_of(&entries));
    let checkpoint = signed_checkpoint(300, root);
    let (tiles, bundles) = split_bundles(build_tiles(&entries).expect("build tiles"));
    let none = BTreeMap::new();

    let rows: [(&str, &str, Vec<u8>, TileError); 5] = [
        (
            "non-canonical path",
            "tile/0/0001",
            vec![0; 32],
            TileError::BadPath {
                path: "tile/0/0001".into(),
            },
        ),
        (
            "beyond the tree",
            "tile/0/002",
            vec![0; 8192],
            TileError::OutsideTree {
                path: "tile/0/002".into(),
                size: 300,
            },
        ),
        (
            "wider than the tree",
            "tile/0/001.p/45",
            vec![0; 45 * 32],
            TileError::OutsideTree {
                path: "tile/0/001.p/45".into(),
                size: 300,
            },
        ),
        (
            "level above the tree",
            "tile/2/000.p/1",
            vec![0; 32],
            TileError::OutsideTree {
                path: "tile/2/000.p/1".into(),
                size: 300,
            },
        ),
        (
            "wrong length",
            "tile/0/001.p/44",
            vec![0; 44 * 32 + 1],
            TileError::WrongLength {
                path: "tile/0/001.p/44".into(),
                got: 44 * 32 + 1,
                want: 44 * 32,
            },
        ),
    ];
    for (name, path, data, want) in rows {
        let mut bad = tiles.clone();
        bad.insert(path.to_owned(), data);
        assert_eq!(
            verify_tile_set(&checkpoint, &bad, &none).expect_err(name),
            want,
            "row {name}"
        );
    }

    let mut bad_bundles = bundles.clone();
    let short = bad_bundles.remove("tile/entries/001.p/44").expect("bundle");
    let fewer = stella_verify::tiles::encode_entry_bundle(
        &stella_verify::tiles::parse_entry_bundle(&short).expect("parse")[..43],
    )
    .expect("encode");
    bad_bundles.insert("tile/entries/001.p/44".into(), fewer);
    let err = verify_tile_set(&checkpoint, &tiles, &bad_bundles).expect_err("entry count");
    assert_eq!(
        err,
        TileError::EntryCount {
            path: "tile/entries/001.p/44".into(),
            got: 43,
            want: 44
        }
    );
}
