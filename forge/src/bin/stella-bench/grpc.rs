//! The attestor in process on a loopback port with RocksDB in a temporary
//! directory: import of a forged log's tile bundle over gRPC, latency of
//! sequential `VerifyInclusion` calls, and raw RocksDB reads for comparison.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stella_attestor::AttestorConfig;
use stella_bundle::{Limits, LogTilesInput, TilesInput, TrustSetInput};
use stella_log_forge::{ForgedLog, MemoryTiles, Seed};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tokio::sync::oneshot;

/// Figures of the gRPC and RocksDB measurements.
pub struct GrpcFigures {
    pub archive_bytes: usize,
    pub import_time: Duration,
    pub imported_files: usize,
    pub latencies: Vec<Duration>,
    pub rocksdb_reads_per_second: f64,
}

/// Packs the forged log, imports it into a fresh attestor and times one
/// `VerifyInclusion` request per entry of `indexes`, one after another.
pub fn measure(
    log: &ForgedLog,
    tiles: &MemoryTiles,
    seed: &Seed,
    indexes: &[u64],
    trusted_root: &Path,
) -> Result<GrpcFigures, String> {
    let mut files: BTreeMap<String, Vec<u8>> = tiles.tiles.clone();
    files.extend(tiles.entry_bundles.clone());
    let imported_files = files.len();
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: log.note.clone(),
            tiles: files,
        }],
        tlog_proofs: Vec::new(),
    })
    .map_err(|error| format!("packing the tile bundle failed: {error}"))?;
    let trusted_root_json = std::fs::read(trusted_root)
        .map_err(|error| format!("reading {} failed: {error}", trusted_root.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| format!("system clock before 1970: {error}"))?
        .as_secs();
    let trust = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json,
        note_keys: vec![log.verifier.to_vkey()],
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at: i64::try_from(now + 30 * 24 * 3600).unwrap_or(i64::MAX),
    })
    .map_err(|error| format!("packing the trust set failed: {error}"))?;

    let rocksdb_reads_per_second = rocksdb_reads(tiles)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime failed: {error}"))?;
    let data_dir = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let origin = log.checkpoint.origin.clone();
    let size = log.checkpoint.size;
    let archive_bytes = archive.len();

    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("binding loopback failed: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("local address: {error}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let config = AttestorConfig {
            data_dir: data_dir.path().to_path_buf(),
            limits: Limits::default(),
        };
        let server = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        let mut client = AttestorClient::connect(format!("http://{address}"))
            .await
            .map_err(|error| format!("connecting to the attestor failed: {error}"))?;

        client
            .import_trust_roots(pb::ImportBundleRequest {
                file_name: "trust.tgz".to_owned(),
                archive: trust,
            })
            .await
            .map_err(|status| format!("trust set import failed: {status}"))?;

        let start = Instant::now();
        client
            .import_tiles(pb::ImportBundleRequest {
                file_name: "tiles.tgz".to_owned(),
                archive,
            })
            .await
            .map_err(|status| format!("tile import failed: {status}"))?;
        let import_time = start.elapsed();

        let mut latencies = Vec::with_capacity(indexes.len());
        for &index in indexes {
            let request = pb::VerifyInclusionRequest {
                origin: origin.clone(),
                index,
                entry: seed.entry(index).to_vec(),
                sequence: 0,
            };
            let start = Instant::now();
            let response = client
                .verify_inclusion(request)
                .await
                .map_err(|status| format!("VerifyInclusion of entry {index} failed: {status}"))?
                .into_inner();
            latencies.push(start.elapsed());
            if !response.included {
                return Err(format!(
                    "entry {index} of {size} not included: {:?} {}",
                    response.reason_codes, response.detail
                ));
            }
        }

        let _ = stop.send(());
        server
            .await
            .map_err(|error| format!("attestor task failed: {error}"))?
            .map_err(|error| format!("attestor failed: {error}"))?;
        Ok(GrpcFigures {
            archive_bytes,
            import_time,
            imported_files,
            latencies,
            rocksdb_reads_per_second,
        })
    })
}

/// Stores every hash tile under its path in a fresh RocksDB and returns
/// random point reads per second on one thread, after a warm-up pass.
fn rocksdb_reads(tiles: &MemoryTiles) -> Result<f64, String> {
    let dir = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let db = rocksdb::DB::open_default(dir.path())
        .map_err(|error| format!("opening RocksDB failed: {error}"))?;
    let keys: Vec<&String> = tiles.tiles.keys().collect();
    for (key, value) in &tiles.tiles {
        db.put(key.as_bytes(), value)
            .map_err(|error| format!("RocksDB put failed: {error}"))?;
    }
    let mut state = 0x9e37_79b9_u64;
    let mut next_key = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        keys[(state % keys.len() as u64) as usize]
    };
    for _ in 0..20_000 {
        db.get_pinned(next_key().as_bytes())
            .map_err(|error| format!("RocksDB get failed: {error}"))?;
    }
    let reads = 200_000;
    let start = Instant::now();
    for _ in 0..reads {
        let value = db
            .get_pinned(next_key().as_bytes())
            .map_err(|error| format!("RocksDB get failed: {error}"))?;
        if value.is_none() {
            return Err("RocksDB lost a stored tile".to_owned());
        }
    }
    Ok(f64::from(reads) / start.elapsed().as_secs_f64())
}

/// Returns the `percent` percentile of sorted latencies (nearest rank).
pub fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}
