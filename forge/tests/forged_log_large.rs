//! A forged log of 1,052,897 entries (three tile levels): its checkpoint
//! verifies, its whole tile set authenticates, and inclusion and consistency
//! proofs computed from its tiles verify for seeded random sizes and indexes.

mod common;

use common::{Rng, RootAccumulator};
use stella_log_forge::{ForgeConfig, KeyAlgorithm, MemoryTiles, Seed, forge_log};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use stella_verify::note::NoteVerifier;
use stella_verify::tiles::{
    consistency_proof_from_tiles, inclusion_proof_from_tiles, leaf_hash_from_tiles, verify_tile_set,
};

/// 2^20 entries fill level-2 tile hashes; the remainder leaves a partial tile on every level.
const SIZE: u64 = 1_048_576 + 4_321;

#[test]
fn forged_million_log_verifies() {
    let config = ForgeConfig {
        entries: SIZE,
        origin: "forge.example/million".to_owned(),
        seed: Seed::from_bytes(b"million"),
        key: KeyAlgorithm::Ed25519,
    };
    let mut tiles = MemoryTiles::default();
    let log = forge_log(&config, &mut tiles).expect("forge");

    // Three tile levels: 4113 full level-0 tiles, 16 full level-1 tiles, one level-2 tile.
    assert_eq!(log.checkpoint.size, SIZE);
    assert!(tiles.tiles.contains_key("tile/2/000.p/16"), "level-2 tile");
    assert!(
        tiles.tiles.contains_key("tile/1/016.p/16"),
        "level-1 edge tile"
    );
    assert!(
        tiles.tiles.contains_key("tile/0/x004/112.p/225"),
        "level-0 edge tile"
    );
    assert_eq!(tiles.tiles.len(), 4112 + 1 + 16 + 1 + 1);
    assert_eq!(tiles.entry_bundles.len(), 4113);

    // The checkpoint verifies under the vkey the forge publishes.
    let verifier = NoteVerifier::from_vkey(&log.verifier.to_vkey()).expect("vkey parses");
    let verified = verify_checkpoint(&log.note, &[verifier]).expect("checkpoint verifies");
    assert_eq!(verified.checkpoint(), &log.checkpoint);

    let summary =
        verify_tile_set(&verified, &tiles.tiles, &tiles.entry_bundles).expect("tile set verifies");
    assert_eq!(summary.entries, SIZE);
    assert_eq!(summary.entry_bundles, 4113);
    assert_eq!(summary.hash_tiles, tiles.tiles.len());

    // Seeded random tree sizes; their roots come from the leaves, not from tiles.
    let mut rng = Rng::new(0x5eed_0001);
    let mut sizes: Vec<u64> = (0..24).map(|_| rng.range(1, SIZE)).collect();
    sizes.extend([1, 256, 65_536, 1_048_576, SIZE]);
    sizes.sort_unstable();
    sizes.dedup();

    let mut leaves: Vec<Hash> = Vec::with_capacity(usize::try_from(SIZE).expect("size"));
    let mut accumulator = RootAccumulator::default();
    let mut roots = Vec::new();
    let mut next = sizes.iter().peekable();
    for index in 0..SIZE {
        let leaf = leaf_hash(&config.seed.entry(index));
        leaves.push(leaf);
        accumulator.push(leaf);
        if next.peek() == Some(&&(index + 1)) {
            roots.push((index + 1, accumulator.root()));
            next.next();
        }
    }
    assert_eq!(roots.len(), sizes.len());
    assert_eq!(
        roots.last().map(|row| row.1),
        Some(log.checkpoint.root_hash)
    );

    for &(size, root) in &roots {
        for _ in 0..4 {
            let index = rng.range(0, size);
            let leaf = leaves[usize::try_from(index).expect("index")];
            let proof = inclusion_proof_from_tiles(index, size, &tiles.tiles)
                .unwrap_or_else(|err| panic!("inclusion {index} in {size}: {err}"));
            assert_eq!(
                verify_inclusion(index, size, &leaf, &proof, &root),
                Ok(()),
                "inclusion {index} in {size}"
            );
            assert_eq!(
                leaf_hash_from_tiles(index, size, &tiles.tiles),
                Ok(leaf),
                "leaf {index} in {size}"
            );
        }
    }

    for _ in 0..40 {
        let first = &roots[rng.index(roots.len())];
        let second = &roots[rng.index(roots.len())];
        let (old, new) = if first.0 <= second.0 {
            (first, second)
        } else {
            (second, first)
        };
        let proof = consistency_proof_from_tiles(old.0, new.0, &tiles.tiles)
            .unwrap_or_else(|err| panic!("consistency {} to {}: {err}", old.0, new.0));
        assert_eq!(
            verify_consistency(old.0, new.0, &proof, &old.1, &new.1),
            Ok(()),
            "consistency {} to {}",
            old.0,
            new.0
        );
    }
}
