//! `stella-bench`: measures, in one run, the machine limit (single-core
//! SHA-256 throughput of `sha2`) and the tile operations that are bounded by
//! it: full authentication of a forged log's tile set and inclusion proofs
//! computed from tiles. Every figure runs on the calling thread, so it is a
//! single-core figure.
//!
//! With `--trusted-root`, it also runs the attestor in process on a loopback
//! port (see `grpc.rs`): import of the log's tile bundle over gRPC, inclusion
//! verification over gRPC (see `verification.rs`) and raw RocksDB reads for
//! comparison. With `--attestor-process` as well, it imports the same bundle
//! into the `stella-attestor` binary run as its own process (see `process.rs`),
//! reports that process's import phases and peak memory, and measures
//! verification over gRPC against it.

mod access;
mod cached;
mod grpc;
mod process;
mod verification;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sha2::{Digest as _, Sha256};
use stella_log_forge::{ENTRY_SIZE, ForgeConfig, KeyAlgorithm, MemoryTiles, Seed, forge_log};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::merkle::{Hash, leaf_hash, verify_inclusion};
use stella_verify::tiles::{inclusion_proof_from_tiles, verify_tile_set};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Measure single-core SHA-256, tile-set authentication and proofs from tiles")]
struct Args {
    /// Entries of the forged log.
    #[arg(long, default_value_t = 1_048_576)]
    entries: u64,
    /// MiB of data hashed to measure the SHA-256 rate.
    #[arg(long, default_value_t = 256)]
    sha_mib: usize,
    /// Inclusion proofs computed per timed pass.
    #[arg(long, default_value_t = 100_000)]
    proofs: u64,
    /// Timed passes of tile-set authentication. The fastest pass counts.
    #[arg(long, default_value_t = 3)]
    passes: u32,
    /// Sigstore `trusted_root.json` for the attestor's trust set; without it
    /// the gRPC and RocksDB measurements are skipped.
    #[arg(long)]
    trusted_root: Option<PathBuf>,
    /// Sequential `VerifyInclusion` calls timed over gRPC, in each of two passes (cold and warm
    /// node cache). The `VerifyInclusionStream` call sends all `--proofs` entries.
    #[arg(long, default_value_t = 2_000)]
    calls: usize,
    /// Also import the tile bundle with `stella rekor tiles import` into the
    /// `stella-attestor` binary run as a separate process, and report that
    /// process's import phases, peak RSS and verification over gRPC. Needs
    /// `--trusted-root` and the binaries built next to `stella-bench`.
    #[arg(long, requires = "trusted_root")]
    attestor_process: bool,
}

/// Estimate of the SHA-256 calls per proof in a 2^20-entry log: the sibling
/// subtrees inside the level-0 and level-1 tiles take 247 node hashes each
/// (127 + 63 + ... + 0), the 16-hash level-2 tile takes 11, and
/// `verify_inclusion` takes 20. Other `--entries` values change these counts, so the ratio to
/// this estimate is printed for 2^20 entries only.
const PROOF_HASHES_ESTIMATE: f64 = 247.0 + 247.0 + 11.0 + 20.0;

/// A small xorshift generator, so that proof indexes are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn mib_per_second(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
}

/// Hashes `mib` MiB in 64 KiB updates and returns MiB/s.
fn sha256_rate(mib: usize) -> f64 {
    let block = vec![0x5au8; 64 * 1024];
    let blocks = mib * 16;
    let start = Instant::now();
    let mut hasher = Sha256::new();
    for _ in 0..blocks {
        hasher.update(black_box(&block));
    }
    black_box(hasher.finalize());
    mib_per_second(blocks * block.len(), start.elapsed())
}

/// Hashes 65-byte node inputs (prefix byte and two child hashes) one digest at a time, as a
/// Merkle tree does, and returns digests per second.
fn sha256_node_rate(count: u64) -> f64 {
    let mut node = [0u8; 65];
    let start = Instant::now();
    for index in 0..count {
        node[1..9].copy_from_slice(&index.to_be_bytes());
        black_box(Sha256::digest(black_box(&node)));
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stella-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    // Machine limit: SHA-256 on one core.
    let sha_bulk = sha256_rate(args.sha_mib);
    let sha_nodes = sha256_node_rate(4_000_000);
    let sha_node_mib = sha_nodes * 65.0 / (1024.0 * 1024.0);

    // Forge the log in memory.
    let config = ForgeConfig {
        entries: args.entries,
        origin: "bench.example/log".to_owned(),
        seed: Seed::from_bytes(b"stella-bench"),
        key: KeyAlgorithm::Ed25519,
    };
    let mut tiles = MemoryTiles::default();
    let forge_start = Instant::now();
    let log = forge_log(&config, &mut tiles).map_err(|error| format!("forge failed: {error}"))?;
    let forge_time = forge_start.elapsed();
    let verified = verify_checkpoint(&log.note, std::slice::from_ref(&log.verifier))
        .map_err(|error| format!("checkpoint does not verify: {error}"))?;
    let tile_bytes: usize = tiles.tiles.values().map(Vec::len).sum();
    let bundle_bytes: usize = tiles.entry_bundles.values().map(Vec::len).sum();
    let tile_count = tiles.tiles.len() + tiles.entry_bundles.len();

    // Full authentication of the tile set. The fastest pass counts.
    let mut best = Duration::MAX;
    for _ in 0..args.passes.max(1) {
        let start = Instant::now();
        let summary = verify_tile_set(&verified, &tiles.tiles, &tiles.entry_bundles)
            .map_err(|error| format!("tile set does not verify: {error}"))?;
        best = best.min(start.elapsed());
        if summary.entries != args.entries {
            return Err(format!(
                "tile set authenticated {} entries, expected {}",
                summary.entries, args.entries
            ));
        }
    }
    let auth_mib = mib_per_second(tile_bytes, best);
    let auth_all_mib = mib_per_second(tile_bytes + bundle_bytes, best);
    let auth_tiles = tile_count as f64 / best.as_secs_f64();
    // What full authentication must hash, at most. That is one leaf hash per
    // entry (a 0x00 prefix and the entry) and 255 node hashes (a 0x01 prefix and
    // two child hashes) to rebuild each full hash tile's root. An import also
    // digests every file's bytes for the bundle manifest. Partial tiles need
    // fewer node hashes.
    let auth_hashes = args.entries as f64 + tiles.tiles.len() as f64 * 255.0;
    let tree_bytes = args.entries as f64 * (1 + ENTRY_SIZE) as f64 + tiles.tiles.len() as f64 * 255.0 * 65.0;
    let hashed_bytes = tree_bytes + (tile_bytes + bundle_bytes) as f64;
    // Floors of the authentication time. `verify_tile_set` computes the tree
    // hashes only, and an import also digests every file: tree hashes at the
    // measured per-hash rate, or every hashed byte at the bulk rate.
    let digest_seconds = (tile_bytes + bundle_bytes) as f64 / 1048576.0 / sha_bulk;
    let tree_floor = auth_hashes / sha_nodes;
    let floor_per_hash = tree_floor + digest_seconds;
    let floor_bulk = hashed_bytes / 1048576.0 / sha_bulk;

    // Leaf hashes to check proofs against, computed outside the timed loops.
    let source: &BTreeMap<String, Vec<u8>> = &tiles.tiles;
    let size = args.entries;
    let root = log.checkpoint.root_hash;
    let mut rng = Rng(0x5eed_b3c4);
    let indexes: Vec<u64> = (0..args.proofs).map(|_| rng.below(size)).collect();
    let leaves: Vec<Hash> = indexes
        .iter()
        .map(|&index| leaf_hash(&config.seed.entry(index)))
        .collect();

    // Warm-up pass, then proofs from tiles without and with verification.
    for &index in indexes.iter().take(10_000) {
        black_box(inclusion_proof_from_tiles(index, size, source).map_err(|e| e.to_string())?);
    }
    let start = Instant::now();
    for &index in &indexes {
        black_box(inclusion_proof_from_tiles(index, size, source).map_err(|e| e.to_string())?);
    }
    let proofs_per_second = indexes.len() as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for (&index, leaf) in indexes.iter().zip(&leaves) {
        let proof = inclusion_proof_from_tiles(index, size, source).map_err(|e| e.to_string())?;
        verify_inclusion(index, size, leaf, &proof, &root)
            .map_err(|error| format!("proof of entry {index} does not verify: {error}"))?;
    }
    let verified_per_second = indexes.len() as f64 / start.elapsed().as_secs_f64();

    // The same proofs through a warm node cache that contains every hash tile.
    let cached = cached::measure(source, tiles.tiles.len(), &config.origin, size, &indexes, &leaves, &root)?;

    let archives = match &args.trusted_root {
        Some(path) => Some(grpc::pack_archives(&log, &tiles, path)?),
        None => None,
    };
    let calls: Vec<u64> = indexes.iter().copied().take(args.calls).collect();
    let grpc_figures = match &archives {
        Some(archives) => Some(grpc::measure(&log, &tiles, archives, &config.seed, &calls, &indexes)?),
        None => None,
    };
    let process_figures = match &archives {
        Some(archives) if args.attestor_process => {
            // Room above the archive for the transport's framing.
            let max_bundle_bytes = (archives.tiles.len() as u64)
                .saturating_add(1 << 20)
                .max(stella_bundle::DEFAULT_MAX_ARCHIVE_BYTES);
            let input = process::VerificationInput {
                origin: &config.origin,
                seed: &config.seed,
                call_indexes: &calls,
                stream_indexes: &indexes,
            };
            Some(process::measure(&archives.trust, &archives.tiles, max_bundle_bytes, &input))
        }
        _ => None,
    };

    let peak_rss = peak_rss_kib();

    println!("stella-bench: {} entries, forged in {:.2} s", args.entries, forge_time.as_secs_f64());
    println!(
        "{} hash tiles ({:.1} MiB), {} entry bundles ({:.1} MiB)",
        tiles.tiles.len(),
        tile_bytes as f64 / 1048576.0,
        tiles.entry_bundles.len(),
        bundle_bytes as f64 / 1048576.0
    );
    println!();
    println!("| measurement | figure | ratio to limit |");
    println!("|---|---|---|");
    println!("| SHA-256, one core, {} MiB in 64 KiB updates | {sha_bulk:.0} MiB/s | limit |", args.sha_mib);
    println!(
        "| SHA-256, one core, 65-byte node inputs | {sha_nodes:.0} hashes/s ({sha_node_mib:.0} MiB/s) | |"
    );
    println!(
        "| verify_tile_set, hash-tile bytes | {auth_mib:.1} MiB/s | {:.3} of bulk SHA-256 |",
        auth_mib / sha_bulk
    );
    println!(
        "| verify_tile_set, hash tiles + entry bundles | {auth_all_mib:.1} MiB/s, {auth_tiles:.0} tiles/s ({:.3} s per pass) | {:.3} of bulk SHA-256 |",
        best.as_secs_f64(),
        auth_all_mib / sha_bulk
    );
    println!("| inclusion_proof_from_tiles, warm | {proofs_per_second:.0} proofs/s | |");
    // The estimate counts the hashes of a 2^20-entry log only.
    let estimate_ratio = if args.entries == 1 << 20 {
        format!("{:.3} of the hash-bound estimate", verified_per_second / (sha_nodes / PROOF_HASHES_ESTIMATE))
    } else {
        String::new()
    };
    println!("| inclusion_proof_from_tiles + verify_inclusion, warm | {verified_per_second:.0} proofs/s | {estimate_ratio} |");
    println!(
        "| inclusion_proof_from_tiles, warm node cache of {} tiles ({} misses while timed) | {:.0} proofs/s | |",
        cached.capacity, cached.timed_misses, cached.proofs_per_second
    );
    println!(
        "| the same + verify_inclusion | {:.0} proofs/s | {:.3} of the rate of the {:.1} node hashes per proof that verify_inclusion needs |",
        cached.verified_per_second,
        cached.verified_per_second / (sha_nodes / cached.mean_proof_hashes),
        cached.mean_proof_hashes
    );
    println!(
        "| verify_tile_set against its floor: {auth_hashes:.0} tree hashes at the node rate | floor {tree_floor:.3} s | {:.3} of the pass time |",
        tree_floor / best.as_secs_f64()
    );
    println!(
        "| import floor: the tree hashes at the node rate + file digests ({:.1} MiB) at the bulk rate | {floor_per_hash:.3} s | |",
        (tile_bytes + bundle_bytes) as f64 / 1048576.0
    );
    println!(
        "| import floor: every hashed byte ({:.1} MiB of tree-hash inputs, {:.1} MiB of file digests) at the bulk rate | {floor_bulk:.3} s | |",
        tree_bytes / 1048576.0,
        (tile_bytes + bundle_bytes) as f64 / 1048576.0
    );
    println!(
        "| highest possible import rate of hash-tile bytes, every hashed byte at the bulk rate | {:.1} MiB/s | {:.3} of bulk SHA-256 |",
        tile_bytes as f64 / 1048576.0 / floor_bulk,
        tile_bytes as f64 / hashed_bytes
    );
    let limits = Limits {
        sha_bulk,
        tile_bytes,
        floor_per_hash,
        floor_bulk,
    };
    if let Some(figures) = &grpc_figures {
        print_grpc(figures, &limits);
    }
    if let (Some(Err(message)), Some(archives)) = (&process_figures, &archives) {
        println!(
            "| `stella rekor tiles import` into a separate stella-attestor, {:.1} MiB archive | failed: {message} | |",
            archives.tiles.len() as f64 / 1048576.0
        );
    }
    if let (Some(Ok(figures)), Some(archives)) = (&process_figures, &archives) {
        let reads = grpc_figures.as_ref().map(|grpc| grpc.rocksdb_reads_per_second);
        print_process(figures, archives, &limits, reads);
    }
    match peak_rss {
        Some(kib) => println!("| peak RSS (VmHWM) of stella-bench | {:.0} MiB | |", kib as f64 / 1024.0),
        None => println!("| peak RSS (VmHWM) of stella-bench | unavailable | |"),
    }
    Ok(())
}

/// Machine limits and floors measured earlier in the run, for the ratios of the import rows.
struct Limits {
    /// Bulk SHA-256 in MiB/s.
    sha_bulk: f64,
    /// Bytes of hash tiles in the log.
    tile_bytes: usize,
    /// Authentication floor in seconds with tree hashes at the measured per-hash rate.
    floor_per_hash: f64,
    /// Authentication floor in seconds with every hashed byte at the bulk rate.
    floor_bulk: f64,
}

/// Prints the rows of an import that took `time`: rates and their ratios to the limits.
fn print_import_rates(what: &str, archive_bytes: usize, files: usize, time: Duration, limits: &Limits) {
    let seconds = time.as_secs_f64();
    let tile_rate = mib_per_second(limits.tile_bytes, time);
    println!(
        "| {what}, {:.1} MiB archive | {seconds:.2} s: {:.1} MiB/s of archive, {tile_rate:.1} MiB/s of hash tiles, {:.0} tiles/s | {:.4} of bulk SHA-256 (hash tiles); {:.3} of the per-hash floor, {:.3} of the bulk floor |",
        archive_bytes as f64 / 1048576.0,
        mib_per_second(archive_bytes, time),
        files as f64 / seconds,
        tile_rate / limits.sha_bulk,
        limits.floor_per_hash / seconds,
        limits.floor_bulk / seconds
    );
}

/// Prints the verification rows measured against one attestor.
fn print_verification(what: &str, figures: &verification::VerificationFigures, rocksdb_reads: Option<f64>) {
    let ratio = |rate: f64| match rocksdb_reads {
        Some(reads) => format!("{:.4} of RocksDB reads/s", rate / reads),
        None => String::new(),
    };
    let cold = &figures.cold_latencies;
    let warm = &figures.warm_latencies;
    println!(
        "| VerifyInclusion over gRPC ({what}), {} sequential calls, cold node cache | {} | {} |",
        cold.len(),
        verification::describe_latencies(cold),
        ratio(verification::calls_per_second(cold))
    );
    println!(
        "| VerifyInclusion over gRPC ({what}), the same {} calls again, warm node cache | {} | {} |",
        warm.len(),
        verification::describe_latencies(warm),
        ratio(verification::calls_per_second(warm))
    );
    let stream_rate = figures.stream_requests as f64 / figures.stream_time.as_secs_f64();
    println!(
        "| VerifyInclusionStream over gRPC ({what}), {} requests in one call | {stream_rate:.0} verifications/s ({:.2} s) | {} |",
        figures.stream_requests,
        figures.stream_time.as_secs_f64(),
        ratio(stream_rate)
    );
}

/// Prints the rows of the attestor in process.
fn print_grpc(figures: &grpc::GrpcFigures, limits: &Limits) {
    print_import_rates(
        "unary ImportTiles to the attestor in process",
        figures.archive_bytes,
        figures.imported_files,
        figures.import_time,
        limits,
    );
    println!(
        "| raw RocksDB point reads of 8 KiB tiles, one thread | {:.0} reads/s | limit |",
        figures.rocksdb_reads_per_second
    );
    print_verification("attestor in process", &figures.verification, Some(figures.rocksdb_reads_per_second));
}

/// Prints the rows of the separate attestor process.
fn print_process(
    figures: &process::ProcessFigures,
    archives: &grpc::Archives,
    limits: &Limits,
    rocksdb_reads: Option<f64>,
) {
    print_import_rates(
        "`stella rekor tiles import` (ImportTilesStream) into a separate stella-attestor",
        archives.tiles.len(),
        archives.files,
        figures.import_time,
        limits,
    );
    let phases: Vec<String> = figures
        .phases
        .iter()
        .map(|(name, time)| format!("{name} {:.2} s", time.as_secs_f64()))
        .collect();
    println!("| import phases (attestor log timestamps) | {} | |", phases.join(", "));
    println!(
        "| VmHWM of that stella-attestor: after start-up and trust import / after the tile import / after the verification rows | {:.0} MiB / {:.0} MiB / {:.0} MiB | |",
        figures.idle_rss_kib as f64 / 1024.0,
        figures.peak_rss_kib as f64 / 1024.0,
        figures.final_rss_kib as f64 / 1024.0
    );
    println!(
        "| manifest held during the import, at about 150 bytes per file (estimate) | {} files, {:.1} MiB | |",
        archives.files,
        archives.files as f64 * 150.0 / 1048576.0
    );
    print_verification("separate attestor process", &figures.verification, rocksdb_reads);
}

/// Reads the peak resident set size in KiB from `/proc/self/status` (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
