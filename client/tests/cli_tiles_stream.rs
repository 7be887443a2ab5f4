//! `stella rekor tiles import` streams the bundle file to a real attestor, served in process on a
//! loopback port with RocksDB in a temporary directory. The tests cover bundles of several
//! chunks, re-imports, the deadline that grows with the file, and the attestor's size limit for
//! streamed bundles.

mod common;

use std::path::{Path, PathBuf};

use common::attestor::Attestor;
use common::bundles::{write_tile_bundle, write_trust_set};
use common::{Run, arg, production_root, string_at};
use stella_log_forge::{ForgeConfig, KeyAlgorithm, MemoryTiles, Seed, forge_log};

const ORIGIN: &str = "chunks.example/log";
/// About 7 MB of archive: several 1 MiB chunks.
const ENTRIES: u64 = 70_000;

/// Runs `stella --attestor URL --output json` with `args`.
fn stella_json(attestor: &Attestor, args: &[&str]) -> Run {
    let mut full = vec!["--output", "json"];
    full.extend_from_slice(args);
    attestor.stella(&full)
}

/// Writes the trust set with the forged log's key and the forged log's bundle into `dir`, and
/// returns their paths.
fn write_bundles(dir: &Path, trusted_root: &Path) -> (PathBuf, PathBuf) {
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

    let trust_path = dir.join("trust.tgz");
    let tiles_path = dir.join("forged-tiles.tgz");
    write_trust_set(&trust_path, trusted_root, &[log.verifier.to_vkey()]);
    let archive_bytes = write_tile_bundle(&tiles_path, log.note, files);
    assert!(
        archive_bytes > 3 * 1024 * 1024,
        "the bundle must span several chunks"
    );
    (trust_path, tiles_path)
}

#[test]
fn import_streams_several_chunks() {
    let Some(trusted_root) = production_root() else {
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let (trust, tiles) = write_bundles(files.path(), &trusted_root);
    let attestor = Attestor::start_with_stream_limit(data.path(), 1 << 30);

    let run = stella_json(&attestor, &["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    let run = stella_json(
        &attestor,
        &["rekor", "tiles", "import", "--bundle", arg(&tiles)],
    );
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

    let run = stella_json(
        &attestor,
        &["rekor", "tiles", "import", "--bundle", arg(&tiles)],
    );
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
    let Some(trusted_root) = production_root() else {
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let (trust, tiles) = write_bundles(files.path(), &trusted_root);
    let attestor = Attestor::start_with_stream_limit(data.path(), 1 << 30);
    let run = stella_json(&attestor, &["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);

    // A 1 ms request timeout is far too short for this import, but the streamed import of this
    // bundle (over 3 MiB) also gets 1 s per 256 KiB of file, more than 12 s in all.
    let run = stella_json(
        &attestor,
        &[
            "--request-timeout-ms",
            "1",
            "rekor",
            "tiles",
            "import",
            "--bundle",
            arg(&tiles),
        ],
    );
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
    let attestor = Attestor::start_with_stream_limit(data.path(), limit);

    let run = stella_json(
        &attestor,
        &["rekor", "tiles", "import", "--bundle", arg(&big)],
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_BUNDLE_TOO_LARGE",
        "{object:?}"
    );
    let message = string_at(&object, "error");
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
