//! Proofs near the right edge of a tree of 2^40 leaves, computed from the
//! tiles of a [`PeriodicTree`] (six tile levels, none stored) and checked
//! against roots computed by RFC 6962 recursion over the same leaves.

use stella_log_forge::PeriodicTree;
use stella_verify::merkle::{
    ProofError, leaf_hash, root_from_leaves, verify_consistency, verify_inclusion,
};
use stella_verify::tiles::{
    TileId, consistency_proof_from_tiles, inclusion_proof_from_tiles, tiles_for_inclusion,
};

const TWO_POW_40: u64 = 1 << 40;

#[test]
fn periodic_tree_matches_leaves() {
    let tree = PeriodicTree::new(4);
    for size in [1u64, 2, 3, 15, 16, 17, 100, 255, 256, 257, 1000] {
        let leaves: Vec<_> = (0..size)
            .map(|index| leaf_hash(&(index % 16).to_be_bytes()))
            .collect();
        assert_eq!(tree.root(size), root_from_leaves(&leaves), "size {size}");
    }
}

#[test]
fn inclusion_near_two_pow_40() {
    let tree = PeriodicTree::new(12);
    let rows = [
        ("last leaf", TWO_POW_40 - 1, TWO_POW_40),
        ("second to last", TWO_POW_40 - 2, TWO_POW_40),
        ("last tile start", TWO_POW_40 - 256, TWO_POW_40),
        ("previous tile end", TWO_POW_40 - 257, TWO_POW_40),
        ("middle", TWO_POW_40 / 2, TWO_POW_40),
        ("first", 0, TWO_POW_40),
        ("last of smaller tree", TWO_POW_40 - 2, TWO_POW_40 - 1),
        ("ragged edge", TWO_POW_40 - 70_000, TWO_POW_40 - 12_345),
    ];
    for (name, index, size) in rows {
        let proof = inclusion_proof_from_tiles(index, size, &tree)
            .unwrap_or_else(|err| panic!("row {name}: {err}"));
        let root = tree.root(size);
        assert_eq!(
            verify_inclusion(index, size, &tree.leaf(index), &proof, &root),
            Ok(()),
            "row {name}"
        );
        // The leaf next door has a different hash, so the same proof must fail for it.
        let wrong = tree.leaf(index ^ 1);
        assert!(
            matches!(
                verify_inclusion(index, size, &wrong, &proof, &root),
                Err(ProofError::RootMismatch { .. })
            ),
            "row {name}"
        );
    }
}

#[test]
fn inclusion_reads_six_levels() {
    let tiles = tiles_for_inclusion(TWO_POW_40 - 1, TWO_POW_40);
    let top = TileId {
        level: 5,
        index: 0,
        width: 1,
    };
    assert!(tiles.contains(&top), "{tiles:?}");
    assert_eq!(tiles.iter().map(|id| id.level).max(), Some(5));
}

#[test]
fn consistency_near_two_pow_40() {
    let tree = PeriodicTree::new(12);
    let rows = [
        ("one leaf short", TWO_POW_40 - 1, TWO_POW_40),
        ("ragged to full", TWO_POW_40 - (1 << 20) - 3, TWO_POW_40),
        ("half to full", TWO_POW_40 / 2, TWO_POW_40),
        ("ragged to ragged", TWO_POW_40 - 99_999, TWO_POW_40 - 17),
    ];
    for (name, size1, size2) in rows {
        let proof = consistency_proof_from_tiles(size1, size2, &tree)
            .unwrap_or_else(|err| panic!("row {name}: {err}"));
        assert_eq!(
            verify_consistency(size1, size2, &proof, &tree.root(size1), &tree.root(size2)),
            Ok(()),
            "row {name}"
        );
    }
}
