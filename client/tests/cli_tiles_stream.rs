//! `stella rekor tiles import` streams the bundle file to a real attestor (RocksDB in a temporary
//! directory, served in process on a loopback port): bundles of several chunks, re-imports,
//! the deadline that grows with the file, and the attestor's size limit for streamed bundles.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{Run, arg, stella, vectors};
use stella_bundle::{Limits, LogTilesInput, TilesInput, TrustSetInput};
use stella_log_forge::{ForgeConfig, KeyAlgorithm, MemoryTiles, Seed, forge_log};

const ORIGIN: &str = "chunks.example/log";
/// About 7 MB of archive: several 1 MiB chunks.
const ENTRIES: u64 = 70_000;

/// An attestor on its own tokio runtime, so that the test thread can run `stella`.
struct Attestor {
    url: String,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Attestor {
    fn start(data_dir: &Path, max_stream_bytes: u64) -> Attestor {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = stella_attestor::AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits: Limits::default(),
        };
        let server =
            stella_attestor::run_with_stream_limit(listener, config, max_stream_bytes, async {
                let _ = stopped.await;
            });
        let task = runtime.spawn(async move { server.await.map_err(|error| format!("{error:#}")) });
        Attestor {
            url: format!("http://{address}"),
            runtime,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn stella(&self, args: &[&str]) -> Run {
        let mut full = vec!["--attestor", self.url.as_str(), "--output", "json"];
        full.extend_from_slice(args);
        stella(&full)
    }
}

impl Drop for Attestor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            if !std::thread::panicking() {
                let result = stopped
                    .expect("attestor stops within 10 s")
                    .expect("attestor task joins");
                result.expect("attestor exits cleanly");
            }
        }
    }
}

/// Writes the trust set with the forged log's key and the forged log's bundle into `dir`, and
/// returns their paths.
fn write_bundles(dir: &Path, trusted_root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = ForgeConfig {
        entries: ENTRIES,
        origin: ORIGIN.to_owned(),
        seed: Seed::from_bytes(b"cli-tiles-stream"),
        key: KeyAlgorithm::Ed25519,
    };
    let mut tiles = MemoryTiles::default();
    let log = forge_log(&config, &mut tiles).expect("forge log");
    let mut files = tiles.tiles;
    files.extend(tiles.entry_bundles);
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: log.note,
            tiles: files,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    let trust = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: std::fs::read(trusted_root).expect("read trusted root"),
        note_keys: vec![log.verifier.to_vkey()],
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600,
    })
    .expect("pack trust set");

    let trust_path = dir.join("trust.tgz");
    let tiles_path = dir.join("forged-tiles.tgz");
    std::fs::write(&trust_path, trust).expect("write trust set");
    std::fs::write(&tiles_path, &archive).expect("write tiles");
    assert!(
        archive.len() > 3 * 1024 * 1024,
        "the bundle must span several chunks"
    );
    (trust_path, tiles_path)
}

#[test]
fn import_streams_several_chunks() {
    let Some(trusted_root) = vectors("sigstore-trust-roots/production.trusted_root.json") else {
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let (trust, tiles) = write_bundles(files.path(), &trusted_root);
    let attestor = Attestor::start(data.path(), 1 << 30);

    let run = attestor.stella(&["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&tiles)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let first = run.json();
    assert_eq!(
        first.get("already_imported"),
        Some(&serde_json::Value::Bool(false))
    );
    let checkpoint = first
        .get("checkpoints")
        .and_then(|list| list.get(0))
        .cloned()
        .expect("one checkpoint");
    assert_eq!(
        checkpoint.get("origin").and_then(|v| v.as_str()),
        Some(ORIGIN)
    );
    assert_eq!(
        checkpoint
            .get("tree_size")
            .and_then(serde_json::Value::as_u64),
        Some(ENTRIES)
    );
    // 70,000 entries fill 273 entry bundles and a partial one.
    assert_eq!(
        first
            .get("entry_bundles_imported")
            .and_then(serde_json::Value::as_u64),
        Some(274)
    );

    let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&tiles)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let second = run.json();
    assert_eq!(
        second.get("already_imported"),
        Some(&serde_json::Value::Bool(true))
    );
    assert_eq!(second.get("bundle_digest"), first.get("bundle_digest"));
}

#[test]
fn import_deadline_scales_with_size() {
    let Some(trusted_root) = vectors("sigstore-trust-roots/production.trusted_root.json") else {
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let (trust, tiles) = write_bundles(files.path(), &trusted_root);
    let attestor = Attestor::start(data.path(), 1 << 30);
    let run = attestor.stella(&["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    // A 1 ms request timeout is far too short for this import, but the streamed import of this
    // bundle (over 3 MiB) also gets 1 s per 256 KiB of file, more than 12 s in all.
    let run = attestor.stella(&[
        "--request-timeout-ms",
        "1",
        "rekor",
        "tiles",
        "import",
        "--bundle",
        arg(&tiles),
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        run.json().get("already_imported"),
        Some(&serde_json::Value::Bool(false))
    );
}

#[test]
fn oversized_tiles_rejected_by_attestor() {
    let data = tempfile::tempdir().expect("temporary directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let big = files.path().join("huge-tiles.tgz");
    // A sparse file: 300 MiB long, but it takes no disk space. It is above the in-memory limit
    // of 256 MiB as well as the 1 MiB stream limit of this attestor.
    let size: u64 = 300 * 1024 * 1024;
    let file = std::fs::File::create(&big).expect("create file");
    file.set_len(size).expect("extend file");
    drop(file);
    let limit: u64 = 1024 * 1024;
    let attestor = Attestor::start(data.path(), limit);

    let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&big)]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        object.get("reason_code").and_then(|v| v.as_str()),
        Some("ERR_BUNDLE_TOO_LARGE"),
        "{object:?}"
    );
    let message = object
        .get("error")
        .and_then(|v| v.as_str())
        .expect("error message");
    assert!(message.contains("huge-tiles.tgz"), "{message}");
    assert!(message.contains(&format!("{size} bytes")), "{message}");
    assert!(
        message.contains(&format!("limit of {limit} bytes")),
        "{message}"
    );

    let incoming = data.path().join(stella_attestor::spool::INCOMING_DIR);
    let left: Vec<_> = std::fs::read_dir(&incoming).expect("list spool").collect();
    assert!(left.is_empty(), "spool files remain: {left:?}");
}
