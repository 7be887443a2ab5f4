//! Inclusion proofs from tiles through a warm tile node cache ([`CachedTiles`]), on the calling
//! thread.

use std::hint::black_box;
use std::time::Instant;

use stella_verify::merkle::{Hash, verify_inclusion};
use stella_verify::tiles::{CachedTiles, TileNodeCache, TileSource, inclusion_proof_from_tiles};

/// Proofs per second through a node cache, without and with `verify_inclusion`.
pub struct CachedFigures {
    /// Tiles the cache can hold: every hash tile of the log, so that the timed passes never evict.
    pub capacity: usize,
    pub proofs_per_second: f64,
    pub verified_per_second: f64,
    /// Cache lookups that missed during the timed passes; 0 when the cache was warm.
    pub timed_misses: u64,
    /// Mean number of hashes per proof, each one node hash in `verify_inclusion`.
    pub mean_proof_hashes: f64,
}

/// Fills a node cache large enough for every tile with one pass over `indexes`, then times a pass of
/// proofs and a pass of proofs checked by `verify_inclusion` against `root`.
pub fn measure(
    source: &dyn TileSource,
    tile_count: usize,
    log: &str,
    size: u64,
    indexes: &[u64],
    leaves: &[Hash],
    root: &Hash,
) -> Result<CachedFigures, String> {
    let cache = TileNodeCache::new(tile_count);
    let cached = CachedTiles::new(source, &cache, log);
    for &index in indexes {
        black_box(inclusion_proof_from_tiles(index, size, &cached).map_err(|e| e.to_string())?);
    }
    let warm_misses = cache.stats().misses;

    let start = Instant::now();
    for &index in indexes {
        black_box(inclusion_proof_from_tiles(index, size, &cached).map_err(|e| e.to_string())?);
    }
    let proofs_per_second = indexes.len() as f64 / start.elapsed().as_secs_f64();

    let mut proof_hashes = 0_usize;
    let start = Instant::now();
    for (&index, leaf) in indexes.iter().zip(leaves) {
        let proof = inclusion_proof_from_tiles(index, size, &cached).map_err(|e| e.to_string())?;
        verify_inclusion(index, size, leaf, &proof, root)
            .map_err(|error| format!("cached proof of entry {index} does not verify: {error}"))?;
        proof_hashes = proof_hashes.saturating_add(proof.len());
    }
    let verified_per_second = indexes.len() as f64 / start.elapsed().as_secs_f64();

    Ok(CachedFigures {
        capacity: tile_count,
        proofs_per_second,
        verified_per_second,
        timed_misses: cache.stats().misses.saturating_sub(warm_misses),
        mean_proof_hashes: proof_hashes as f64 / indexes.len().max(1) as f64,
    })
}
