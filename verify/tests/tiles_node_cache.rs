//! Proofs through a tile node cache ([`CachedTiles`]) compared with proofs from the same tiles
//! without it. Random (index, size) pairs over a three-level log run with a cache large enough
//! to keep every tile and with one small enough to evict on nearly every read. Further tests
//! cover right-edge partial tiles, missing and malformed tiles, separate logs sharing one cache,
//! and threads sharing one cache.

use std::collections::BTreeMap;

use stella_verify::merkle::{Hash, inclusion_proof, leaf_hash};
use stella_verify::tiles::{
    CachedTiles, TileError, TileNodeCache, TileSource, build_tiles, consistency_proof_from_tiles,
    inclusion_proof_from_tiles, leaf_hash_from_tiles, root_from_tiles,
};

/// Entries of the test log: 273 full level-0 tiles, a partial one, a full and a partial level-1
/// tile, and a one-hash level-2 tile, as in the tlog-tiles example of 70,000 entries.
const LOG_SIZE: u64 = 70_000;

fn entries(size: u64, label: &str) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| format!("{label} {i}").into_bytes())
        .collect()
}

/// A small xorshift generator, so that the sampled pairs are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Every result a proof function gives for one request, so that cached and uncached runs can be
/// compared in one assertion.
#[derive(Debug, PartialEq, Eq)]
struct Results {
    inclusion: Result<Vec<Hash>, TileError>,
    consistency: Result<Vec<Hash>, TileError>,
    root: Result<Hash, TileError>,
    leaf: Result<Hash, TileError>,
}

fn results(index: u64, size: u64, old_size: u64, source: &dyn TileSource) -> Results {
    Results {
        inclusion: inclusion_proof_from_tiles(index, size, source),
        consistency: consistency_proof_from_tiles(old_size, size, source),
        root: root_from_tiles(size, source),
        leaf: leaf_hash_from_tiles(index, size, source),
    }
}

/// Random (index, size, old size) triples with `index < size` and `0 < old size <= size`.
fn sample(count: usize, max_size: u64, seed: u64) -> Vec<(u64, u64, u64)> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let size = rng.below(max_size) + 1;
            let index = rng.below(size);
            let old_size = rng.below(size) + 1;
            (index, size, old_size)
        })
        .collect()
}

#[test]
fn random_pairs_match_uncached() {
    let tiles = build_tiles(&entries(LOG_SIZE, "entry")).expect("build tiles");
    let pairs = sample(1_500, LOG_SIZE, 0x5eed_1234);

    for capacity in [4_096, 3] {
        let cache = TileNodeCache::new(capacity);
        let cached = CachedTiles::new(&tiles, &cache, "test.example/log");
        // Two rounds: the second one reads warm entries, or entries rebuilt after eviction.
        for round in 0..2 {
            for &(index, size, old_size) in &pairs {
                assert_eq!(
                    results(index, size, old_size, &cached),
                    results(index, size, old_size, &tiles),
                    "capacity {capacity}, round {round}, index {index}, size {size}, old size {old_size}"
                );
            }
        }
        let stats = cache.stats();
        assert!(stats.hits > 0, "capacity {capacity}: no hits in {stats:?}");
        assert!(stats.entries <= capacity, "capacity {capacity}: {stats:?}");
        if capacity == 3 {
            assert!(
                stats.evictions > 1_000,
                "capacity 3: too few evictions in {stats:?}"
            );
        }
    }
}

#[test]
fn right_edge_sizes_match_uncached() {
    let tiles = build_tiles(&entries(LOG_SIZE, "entry")).expect("build tiles");
    let leaves: Vec<Hash> = entries(LOG_SIZE, "entry")
        .iter()
        .map(|entry| leaf_hash(entry))
        .collect();
    let cache = TileNodeCache::new(64);
    let cached = CachedTiles::new(&tiles, &cache, "test.example/log");
    let edge_sizes: [u64; 14] = [
        1, 2, 3, 255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, 69_999, 70_000,
    ];

    for size in edge_sizes {
        let prefix = &leaves[..usize::try_from(size).expect("size")];
        let mut indexes = vec![0, size / 2, size - 1];
        indexes.extend((size.saturating_sub(300)..size).step_by(37));
        for index in indexes {
            let expected = inclusion_proof(index, prefix).expect("proof from leaves");
            assert_eq!(
                inclusion_proof_from_tiles(index, size, &cached),
                Ok(expected),
                "index {index}, size {size}"
            );
            assert_eq!(
                results(index, size, index + 1, &cached),
                results(index, size, index + 1, &tiles),
                "index {index}, size {size}"
            );
        }
    }
}

#[test]
fn separate_logs_share_cache() {
    let first = build_tiles(&entries(1_000, "first")).expect("build first");
    let second = build_tiles(&entries(1_000, "second")).expect("build second");
    let cache = TileNodeCache::new(64);
    let first_cached = CachedTiles::new(&first, &cache, "first.example/log");
    let second_cached = CachedTiles::new(&second, &cache, "second.example/log");

    for (index, size) in [
        (0, 1_000),
        (500, 1_000),
        (999, 1_000),
        (10, 300),
        (299, 300),
    ] {
        for round in 0..2 {
            assert_eq!(
                results(index, size, 1, &first_cached),
                results(index, size, 1, &first),
                "first log, round {round}, index {index}, size {size}"
            );
            assert_eq!(
                results(index, size, 1, &second_cached),
                results(index, size, 1, &second),
                "second log, round {round}, index {index}, size {size}"
            );
        }
    }
    assert_ne!(
        root_from_tiles(1_000, &first_cached),
        root_from_tiles(1_000, &second_cached),
        "the two logs must have different roots for the test to mean anything"
    );
}

#[test]
fn missing_tiles_match_uncached() {
    let mut tiles = build_tiles(&entries(LOG_SIZE, "entry")).expect("build tiles");
    tiles.remove("tile/0/000");
    tiles.remove("tile/1/000");
    let cache = TileNodeCache::new(64);
    let cached = CachedTiles::new(&tiles, &cache, "test.example/log");

    let err = inclusion_proof_from_tiles(5, LOG_SIZE, &cached).expect_err("missing tiles");
    assert_eq!(
        err,
        TileError::Missing {
            paths: vec!["tile/0/000".to_owned(), "tile/1/000".to_owned()],
            truncated: false
        }
    );
    for (index, size, old_size) in sample(300, LOG_SIZE, 0x0bad_cafe) {
        assert_eq!(
            results(index, size, old_size, &cached),
            results(index, size, old_size, &tiles),
            "index {index}, size {size}, old size {old_size}"
        );
    }
}

#[test]
fn short_tile_matches_uncached() {
    let mut tiles = build_tiles(&entries(600, "entry")).expect("build tiles");
    let short = tiles.get("tile/0/001").expect("tile/0/001")[..200].to_vec();
    tiles.insert("tile/0/001".to_owned(), short);
    let cache = TileNodeCache::new(64);
    let cached = CachedTiles::new(&tiles, &cache, "test.example/log");

    let expected = TileError::WrongLength {
        path: "tile/0/001".to_owned(),
        got: 200,
        want: 8192,
    };
    assert_eq!(
        inclusion_proof_from_tiles(300, 600, &cached),
        Err(expected.clone())
    );
    assert_eq!(inclusion_proof_from_tiles(300, 600, &tiles), Err(expected));
    assert_eq!(cache.stats().entries, 0, "{:?}", cache.stats());
}

#[test]
fn threads_share_one_cache() {
    let tiles = build_tiles(&entries(LOG_SIZE, "entry")).expect("build tiles");
    let cache = TileNodeCache::new(16);
    let pairs = sample(400, LOG_SIZE, 0x7777_0001);
    let expected: BTreeMap<(u64, u64, u64), Results> = pairs
        .iter()
        .map(|&(index, size, old_size)| {
            (
                (index, size, old_size),
                results(index, size, old_size, &tiles),
            )
        })
        .collect();

    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (tiles, cache, pairs, expected) = (&tiles, &cache, &pairs, &expected);
            scope.spawn(move || {
                let cached = CachedTiles::new(tiles, cache, "test.example/log");
                for &key in pairs.iter().skip(thread * 50) {
                    let (index, size, old_size) = key;
                    assert_eq!(
                        &results(index, size, old_size, &cached),
                        expected.get(&key).expect("expected result"),
                        "thread {thread}, index {index}, size {size}, old size {old_size}"
                    );
                }
            });
        }
    });
    assert!(cache.stats().hits > 0, "{:?}", cache.stats());
}
