//! The attestor in process on a loopback port with RocksDB in a temporary
//! directory: import of a forged log's tile bundle over gRPC, inclusion
//! verification over gRPC (`verification.rs`), and raw RocksDB reads for comparison.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stella_attestor::AttestorConfig;
use stella_bundle::{
    FileEntry, Limits, LogRef, MANIFEST_PATH, Manifest, ManifestFields, NEW_ARCHIVE, TrustSetInput,
    write_archive,
};
use stella_log_forge::{ForgedLog, MemoryTiles, Seed};
use stella_proto::attestor::v1 as pb;
use tokio::sync::oneshot;

use crate::access::BenchAuthority;
use crate::verification::{self, VerificationFigures};

/// Figures of the gRPC and RocksDB measurements.
pub struct GrpcFigures {
    pub archive_bytes: usize,
    pub import_time: Duration,
    pub imported_files: usize,
    pub verification: VerificationFigures,
    pub rocksdb_reads_per_second: f64,
}

/// The forged log packed for import, and a trust set that trusts its key.
pub struct Archives {
    /// The tile bundle (`.tgz`) with every hash tile and entry bundle.
    pub tiles: Vec<u8>,
    /// The trust root set (`.tgz`).
    pub trust: Vec<u8>,
    /// Number of hash tiles and entry bundles in the tile bundle.
    pub files: usize,
}

/// Packs every tile of the forged log into a tile bundle, and `trusted_root` with the log's
/// note key into a trust set that expires in 30 days.
pub fn pack_archives(log: &ForgedLog, tiles: &MemoryTiles, trusted_root: &Path) -> Result<Archives, String> {
    let file_count = tiles.tiles.len() + tiles.entry_bundles.len();
    let archive = pack_tile_bundle(log, tiles)?;
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
    Ok(Archives {
        tiles: archive,
        trust,
        files: file_count,
    })
}

/// Writes the tile bundle in the layout of `stella_bundle::pack_tiles`: the checkpoint and the
/// tiles under `logs/0/`, and a manifest listing them.
///
/// `pack_tiles` checks its result against the default limits, whose 256 MiB archive cap is below
/// the bundle of a 10-million-entry log, so this builds the bundle from the crate's public manifest
/// and archive functions instead. The attestor checks the bundle on import either way.
fn pack_tile_bundle(log: &ForgedLog, tiles: &MemoryTiles) -> Result<Vec<u8>, String> {
    const DIR: &str = "logs/0";
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(format!("{DIR}/checkpoint"), log.note.clone());
    for (path, content) in tiles.tiles.iter().chain(&tiles.entry_bundles) {
        files.insert(format!("{DIR}/{path}"), content.clone());
    }
    let entries = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    let logs = vec![LogRef {
        origin: log.checkpoint.origin.clone(),
        dir: DIR.to_owned(),
    }];
    let manifest = Manifest::new(entries, ManifestFields::RekorTiles { logs });
    let manifest_json = manifest
        .to_canonical_json(NEW_ARCHIVE)
        .map_err(|error| format!("writing the tile bundle's manifest failed: {error}"))?;
    files.insert(MANIFEST_PATH.to_owned(), manifest_json);
    write_archive(&files).map_err(|error| format!("packing the tile bundle failed: {error}"))
}

/// Imports the packed log into a fresh attestor with unary `ImportTiles`, then verifies the
/// entries of `call_indexes` with sequential calls and those of `stream_indexes` in one stream.
pub fn measure(
    log: &ForgedLog,
    tiles: &MemoryTiles,
    archives: &Archives,
    seed: &Seed,
    call_indexes: &[u64],
    stream_indexes: &[u64],
) -> Result<GrpcFigures, String> {
    let imported_files = archives.files;
    let archive = archives.tiles.clone();
    let trust = archives.trust.clone();
    let rocksdb_reads_per_second = rocksdb_reads(tiles)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime failed: {error}"))?;
    let data_dir = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let origin = log.checkpoint.origin.clone();
    let archive_bytes = archive.len();

    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("binding loopback failed: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("local address: {error}"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        // The default archive limit (256 MiB) is below the bundle of a 10-million-entry log.
        let limits = Limits {
            max_archive_bytes: Limits::default().max_archive_bytes.max(archive_bytes as u64),
            ..Limits::default()
        };
        let authority = BenchAuthority::create(data_dir.path())?;
        // Plain text on loopback, as `stella-attestor --plaintext-loopback` serves.
        let config = AttestorConfig {
            data_dir: data_dir.path().join("attestor"),
            limits,
            authenticator: authority.authenticator()?,
            tls: None,
        };
        let server = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        let mut client = authority.connect(&format!("http://{address}")).await?;

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

        let verification =
            verification::measure(&mut client, &origin, seed, call_indexes, stream_indexes).await?;

        let _ = stop.send(());
        server
            .await
            .map_err(|error| format!("attestor task failed: {error}"))?
            .map_err(|error| format!("attestor failed: {error}"))?;
        Ok(GrpcFigures {
            archive_bytes,
            import_time,
            imported_files,
            verification,
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
