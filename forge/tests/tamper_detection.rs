//! Seeded property tests on small forged logs (1 to 5000 entries, both key
//! types): a single flipped byte in a hash tile, entry bundle, tlog-proof or
//! checkpoint is rejected with the reason code of the component it hit.

mod common;

use std::collections::BTreeMap;

use common::Rng;
use stella_log_forge::{
    ForgeConfig, ForgedLog, KeyAlgorithm, MemoryTiles, Seed, forge_log, tlog_proof,
};
use stella_verify::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use stella_verify::merkle::{leaf_hash, root_from_leaves, verify_inclusion};
use stella_verify::note::NoteVerifier;
use stella_verify::reason::{HasReasonCode, ReasonCode};
use stella_verify::tiles::{TileError, TileId, verify_tile_set};
use stella_verify::tlog_proof::TlogProof;

/// Flips sampled per artifact kind and log.
const FLIPS: usize = 40;

struct Forged {
    config: ForgeConfig,
    log: ForgedLog,
    tiles: MemoryTiles,
    verified: VerifiedCheckpoint,
}

fn forge(size: u64, key: KeyAlgorithm, seed: u64) -> Forged {
    let config = ForgeConfig {
        entries: size,
        origin: "forge.example/tamper".to_owned(),
        seed: Seed::from_bytes(&seed.to_be_bytes()),
        key,
    };
    let mut tiles = MemoryTiles::default();
    let log = forge_log(&config, &mut tiles).expect("forge");
    let verified =
        verify_checkpoint(&log.note, std::slice::from_ref(&log.verifier)).expect("checkpoint");
    verify_tile_set(&verified, &tiles.tiles, &tiles.entry_bundles).expect("untouched tile set");
    Forged {
        config,
        log,
        tiles,
        verified,
    }
}

/// Returns a copy of `map` with one byte of the file at `path` flipped.
fn flip_in(
    map: &BTreeMap<String, Vec<u8>>,
    path: &str,
    offset: usize,
    mask: u8,
) -> BTreeMap<String, Vec<u8>> {
    let mut copy = map.clone();
    let data = copy.get_mut(path).expect("path present");
    data[offset] ^= mask;
    copy
}

fn random_key(rng: &mut Rng, map: &BTreeMap<String, Vec<u8>>) -> String {
    map.keys()
        .nth(rng.index(map.len()))
        .expect("non-empty map")
        .clone()
}

/// Verifies a tlog-proof for `entry` as a gate would: parse, checkpoint, inclusion.
fn check_tlog_proof(
    bytes: &[u8],
    entry: &[u8],
    verifiers: &[NoteVerifier],
) -> Result<(), ReasonCode> {
    let proof = TlogProof::parse(bytes).map_err(|err| err.reason_code())?;
    let verified =
        verify_checkpoint(&proof.checkpoint, verifiers).map_err(|err| err.reason_code())?;
    let checkpoint = verified.checkpoint();
    verify_inclusion(
        proof.index,
        checkpoint.size,
        &leaf_hash(entry),
        &proof.hashes,
        &checkpoint.root_hash,
    )
    .map_err(|err| err.reason_code())
}

/// Sizes with edge cases first, then seeded random sizes up to 5000.
fn sizes(rng: &mut Rng) -> Vec<u64> {
    let mut sizes = vec![1, 2, 255, 256, 257, 512, 4096, 5000];
    sizes.extend((0..16).map(|_| rng.range(1, 5001)));
    sizes
}

fn key_for(round: usize) -> KeyAlgorithm {
    if round.is_multiple_of(2) {
        KeyAlgorithm::Ed25519
    } else {
        KeyAlgorithm::EcdsaP256
    }
}

#[test]
fn forged_root_matches_leaves() {
    let mut rng = Rng::new(0x700d);
    for (round, size) in sizes(&mut rng).into_iter().enumerate() {
        let forged = forge(size, key_for(round), size);
        let leaves: Vec<_> = (0..size)
            .map(|index| leaf_hash(&forged.config.seed.entry(index)))
            .collect();
        assert_eq!(
            forged.log.checkpoint.root_hash,
            root_from_leaves(&leaves),
            "size {size}"
        );
    }
}

#[test]
fn hash_tile_flip_rejected() {
    let mut rng = Rng::new(0x7117);
    let (mut full_flips, mut partial_flips) = (0usize, 0usize);
    for (round, size) in sizes(&mut rng).into_iter().enumerate() {
        let forged = forge(size, key_for(round), size);
        for _ in 0..FLIPS {
            let path = random_key(&mut rng, &forged.tiles.tiles);
            let offset = rng.index(forged.tiles.tiles[&path].len());
            let tiles = flip_in(&forged.tiles.tiles, &path, offset, rng.mask());
            let err = verify_tile_set(&forged.verified, &tiles, &forged.tiles.entry_bundles)
                .expect_err(&format!("size {size}: flip in {path} at {offset}"));

            // The root reads every hash of the right-edge partial tiles and no
            // full tile, and every full tile is checked against its parent.
            let id = TileId::parse_path(&path).expect("forged path");
            if id.is_full() {
                full_flips += 1;
                assert!(
                    matches!(err, TileError::HashMismatch { .. }),
                    "size {size}: flip in {path} at {offset}: {err}"
                );
                assert_eq!(err.reason_code(), ReasonCode::RekorTileInvalid);
            } else {
                partial_flips += 1;
                assert!(
                    matches!(err, TileError::RootMismatch { .. }),
                    "size {size}: flip in {path} at {offset}: {err}"
                );
                assert_eq!(err.reason_code(), ReasonCode::RekorRootMismatch);
            }
        }
    }
    assert!(full_flips > 0, "no flip hit a full tile");
    assert!(partial_flips > 0, "no flip hit a partial tile");
}

#[test]
fn entry_bundle_flip_rejected() {
    let mut rng = Rng::new(0xe471);
    for (round, size) in sizes(&mut rng).into_iter().enumerate() {
        let forged = forge(size, key_for(round), size);
        for _ in 0..FLIPS {
            let path = random_key(&mut rng, &forged.tiles.entry_bundles);
            let offset = rng.index(forged.tiles.entry_bundles[&path].len());
            let bundles = flip_in(&forged.tiles.entry_bundles, &path, offset, rng.mask());
            let err = verify_tile_set(&forged.verified, &forged.tiles.tiles, &bundles)
                .expect_err(&format!("size {size}: flip in {path} at {offset}"));
            assert!(
                matches!(
                    err,
                    TileError::HashMismatch { .. }
                        | TileError::MalformedEntryBundle { .. }
                        | TileError::EntryCount { .. }
                ),
                "size {size}: flip in {path} at {offset}: {err}"
            );
            assert_eq!(err.reason_code(), ReasonCode::RekorTileInvalid);
        }
    }
}

#[test]
fn checkpoint_flip_rejected() {
    let mut rng = Rng::new(0xc4ec);
    for (round, size) in sizes(&mut rng).into_iter().enumerate() {
        let forged = forge(size, key_for(round), size);
        let verifiers = [forged.log.verifier.clone()];
        // Every byte of the note, each with a seeded mask.
        for offset in 0..forged.log.note.len() {
            let mut note = forged.log.note.clone();
            note[offset] ^= rng.mask();
            let err = verify_checkpoint(&note, &verifiers)
                .expect_err(&format!("size {size}: flip at {offset}"));
            assert_eq!(
                err.reason_code(),
                ReasonCode::RekorCheckpointInvalid,
                "size {size}: flip at {offset}: {err}"
            );
        }
    }
}

#[test]
fn tlog_proof_flip_rejected() {
    let mut rng = Rng::new(0x9f00);
    for (round, size) in sizes(&mut rng).into_iter().enumerate() {
        let forged = forge(size, key_for(round), size);
        let verifiers = [forged.log.verifier.clone()];
        let index = rng.range(0, size);
        let entry = forged.config.seed.entry(index);
        let proof = tlog_proof(&forged.log, index, &forged.tiles.tiles).expect("tlog-proof");
        assert_eq!(
            check_tlog_proof(&proof, &entry, &verifiers),
            Ok(()),
            "size {size}"
        );

        // Bytes before the embedded checkpoint are the proof's own; the rest is the note.
        let checkpoint_start = proof.len() - forged.log.note.len();
        assert_eq!(&proof[checkpoint_start..], forged.log.note.as_slice());
        for offset in 0..proof.len() {
            let mut bytes = proof.clone();
            bytes[offset] ^= rng.mask();
            let expected = if offset < checkpoint_start {
                ReasonCode::RekorProofInvalid
            } else {
                ReasonCode::RekorCheckpointInvalid
            };
            assert_eq!(
                check_tlog_proof(&bytes, &entry, &verifiers),
                Err(expected),
                "size {size}, index {index}: flip at {offset}"
            );
        }
    }
}
