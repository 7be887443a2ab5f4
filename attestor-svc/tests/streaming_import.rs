//! ImportTilesStream over real gRPC on a loopback port, with RocksDB in a temporary directory.
//! Streamed imports of a forged 100,000-entry log (three tile levels) are compared with the unary
//! import. Other tests cover re-imports, the size limit, interrupted uploads, tampered tiles and
//! the upload size checks (the import phase log lines are in `import_phases.rs`).
//!
//! The attestor is served in process from an [`Attestor`] that the test keeps, so it can inspect
//! the store (staging keys, tile keys, import records) while the server runs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use stella_attestor::AttestorConfig;
use stella_attestor::spool::INCOMING_DIR;
use stella_attestor::store::Store;
use stella_bundle::{Limits, LogTilesInput, TilesInput};
use stella_log_forge::{ForgeConfig, KeyAlgorithm, MemoryTiles, Seed, forge_log};
use stella_proto::attestor::v1 as pb;
use tokio::sync::{mpsc, oneshot};
use tonic::Code;

use common::{
    Client, STREAM_CHUNK_BYTES, Server, TENANT, TestAuthority, bearer, data_message, pack_trust_set, production_root, reason_of, start_message,
    stream_import, vectors,
};

const ORIGIN: &str = "stream.example/log";
/// Enough entries for level-0, level-1 and level-2 tiles.
const ENTRIES: u64 = 100_000;

/// The forged log, its tiles and its trust set, built once for all tests.
struct Forged {
    tiles: MemoryTiles,
    note: Vec<u8>,
    vkey: String,
}

fn forged() -> &'static Forged {
    static FORGED: OnceLock<Forged> = OnceLock::new();
    FORGED.get_or_init(|| {
        let config = ForgeConfig {
            entries: ENTRIES,
            origin: ORIGIN.to_owned(),
            seed: Seed::from_bytes(b"streaming-import-test"),
            key: KeyAlgorithm::Ed25519,
        };
        let mut tiles = MemoryTiles::default();
        let log = forge_log(&config, &mut tiles).expect("forge log");
        Forged {
            tiles,
            note: log.note,
            vkey: log.verifier.to_vkey(),
        }
    })
}

/// Packs the forged log, with `alter` applied to its tile map first.
fn pack(alter: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Vec<u8> {
    let forged = forged();
    let mut tiles = forged.tiles.tiles.clone();
    tiles.extend(forged.tiles.entry_bundles.clone());
    alter(&mut tiles);
    stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: forged.note.clone(),
            tiles,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles")
}

fn trust_set(vectors: &Path) -> Vec<u8> {
    pack_trust_set(&production_root(vectors), &[forged().vkey.clone()], 1)
}

async fn import_trust(client: &mut Client, vectors: &Path) {
    client
        .import_trust_roots(pb::ImportBundleRequest {
            file_name: "trust.tgz".to_owned(),
            archive: trust_set(vectors),
        })
        .await
        .expect("import trust roots");
}

async fn inclusion(client: &mut Client, index: u64) -> pb::VerifyInclusionResponse {
    let entry = Seed::from_bytes(b"streaming-import-test").entry(index);
    client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: ORIGIN.to_owned(),
            index,
            entry: entry.to_vec(),
            sequence: index,
        })
        .await
        .expect("VerifyInclusion succeeds")
        .into_inner()
}

fn spool_files(data_dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data_dir.join(INCOMING_DIR)) {
        Ok(entries) => entries.map(|entry| entry.expect("spool entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until the spool directory is empty, for up to 10 s: the server deletes the file when the
/// handler ends, which can come shortly after the client sees the status.
async fn wait_for_empty_spool(data_dir: &Path) {
    for _ in 0..100 {
        if spool_files(data_dir).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spool files remain: {:?}", spool_files(data_dir));
}

/// Asserts that the store contains nothing of the forged log.
fn assert_nothing_stored(store: &Store, digest: Option<&str>) {
    assert_eq!(
        store.staging_key_count().expect("count staging"),
        0,
        "staging keys remain"
    );
    assert_eq!(
        store.tile_key_count().expect("count tiles"),
        0,
        "tile keys were written"
    );
    assert_eq!(
        store.newest_checkpoint(ORIGIN).expect("checkpoint"),
        None,
        "a checkpoint was stored"
    );
    if let Some(digest) = digest {
        assert_eq!(
            store.import_record(digest).expect("import record"),
            None,
            "an import record was stored"
        );
    }
}

fn bundle_digest(archive: &[u8]) -> String {
    stella_bundle::open_tiles("digest.tgz", archive, &Limits::default())
        .expect("open bundle")
        .digest
}

#[tokio::test]
async fn stream_matches_unary_import() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let unary_dir = tempfile::tempdir().expect("temp dir");
    let stream_dir = tempfile::tempdir().expect("temp dir");
    let unary = Server::start_in_process(unary_dir.path(), 1 << 34).await;
    let streamed = Server::start_in_process(stream_dir.path(), 1 << 34).await;
    let mut unary_client = unary.client().await;
    let mut stream_client = streamed.client().await;
    import_trust(&mut unary_client, &vectors).await;
    import_trust(&mut stream_client, &vectors).await;

    let by_unary = unary_client
        .import_tiles(pb::ImportBundleRequest {
            file_name: "log.tgz".to_owned(),
            archive: archive.clone(),
        })
        .await
        .expect("unary import")
        .into_inner();
    let by_stream = stream_import(&mut stream_client, "log.tgz", &archive)
        .await
        .expect("streamed import");

    assert_eq!(by_stream, by_unary);
    assert!(!by_stream.already_imported);
    assert_eq!(by_stream.checkpoints.len(), 1);
    assert_eq!(by_stream.checkpoints.first().map(|c| c.tree_size), Some(ENTRIES));
    let expected_tiles = u64::try_from(forged().tiles.tiles.len()).expect("count");
    assert_eq!(by_stream.tiles_imported, expected_tiles);
    assert!(
        forged().tiles.tiles.keys().any(|path| path.starts_with("tile/2/")),
        "the forged log must reach level 2"
    );

    let listed = |list: pb::ListCheckpointsResponse| list.logs;
    let unary_list = unary_client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect("list")
        .into_inner();
    let stream_list = stream_client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed(stream_list), listed(unary_list));

    for index in [0, 1, 255, 256, 65_535, 65_536, 99_999] {
        let from_unary = inclusion(&mut unary_client, index).await;
        let from_stream = inclusion(&mut stream_client, index).await;
        assert!(from_stream.included, "entry {index}: {:?}", from_stream);
        assert_eq!(from_stream, from_unary, "entry {index}");
    }
    let stored = by_stream.tiles_imported + by_stream.entry_bundles_imported;
    assert_eq!(streamed.store().tile_key_count().expect("count"), stored);
    assert_eq!(unary.store().tile_key_count().expect("count"), stored);
    assert_eq!(streamed.store().staging_key_count().expect("count"), 0);
    wait_for_empty_spool(stream_dir.path()).await;
    unary.stop().await;
    streamed.stop().await;
}

#[tokio::test]
async fn stream_reimport_is_noop() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;

    let first = stream_import(&mut client, "log.tgz", &archive)
        .await
        .expect("first import");
    let tiles_after_first = server.store().tile_key_count().expect("count");
    let second = stream_import(&mut client, "again.tgz", &archive)
        .await
        .expect("second import");

    assert!(!first.already_imported);
    assert!(second.already_imported);
    assert_eq!(second.bundle_digest, first.bundle_digest);
    assert_eq!(second.checkpoints, first.checkpoints);
    assert_eq!(second.tiles_imported, first.tiles_imported);
    assert_eq!(server.store().tile_key_count().expect("count"), tiles_after_first);
    let unary = client
        .import_tiles(pb::ImportBundleRequest {
            file_name: "unary.tgz".to_owned(),
            archive,
        })
        .await
        .expect("unary re-import")
        .into_inner();
    assert!(unary.already_imported);
    wait_for_empty_spool(dir.path()).await;
    server.stop().await;
}

#[tokio::test]
async fn stream_over_limit_rejected() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let limit: u64 = 256 * 1024;
    let dir = tempfile::tempdir().expect("temp dir");
    // This server goes through the same entry point as the binary's --max-stream-bundle-bytes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let authority = TestAuthority::generate();
    let config = AttestorConfig {
        data_dir: dir.path().to_path_buf(),
        limits: Limits::default(),
        authenticator: authority.authenticator(),
        tls: None,
    };
    let task = tokio::spawn(stella_attestor::run_with_stream_limit(listener, config, limit, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("URI")
        .connect()
        .await
        .expect("connect");
    let mut client: Client =
        stella_proto::attestor::v1::attestor_client::AttestorClient::with_interceptor(channel, bearer(&authority.token(TENANT)));
    import_trust(&mut client, &vectors).await;

    // Declared size over the limit: rejected before any data is read.
    let status = stream_import(&mut client, "declared.tgz", &archive)
        .await
        .expect_err("declared size over the limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_BUNDLE_TOO_LARGE", "{}", status.message());
    assert!(status.message().contains("declared.tgz"), "{}", status.message());

    // No declared size: rejected once the bytes received pass the limit.
    let mut messages = vec![start_message("undeclared.tgz", 0)];
    messages.extend(archive.chunks(STREAM_CHUNK_BYTES).map(data_message));
    let status = client
        .import_tiles_stream(tokio_stream::iter(messages))
        .await
        .expect_err("upload over the limit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_BUNDLE_TOO_LARGE", "{}", status.message());
    assert!(status.message().contains("undeclared.tgz"), "{}", status.message());
    assert!(
        status.message().contains(&format!("over the limit of {limit} bytes")),
        "{}",
        status.message()
    );

    wait_for_empty_spool(dir.path()).await;
    let listed = client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.logs.is_empty(), "{listed:?}");
    let _ = stop.send(());
    task.await.expect("join").expect("attestor exits cleanly");
}

#[tokio::test]
async fn truncated_stream_leaves_nothing() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let digest = bundle_digest(&archive);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;

    let half = archive.get(..archive.len() / 2).expect("half");
    let mut messages = vec![start_message("short.tgz", u64::try_from(archive.len()).expect("size"))];
    messages.extend(half.chunks(STREAM_CHUNK_BYTES).map(data_message));
    let status = client
        .import_tiles_stream(tokio_stream::iter(messages))
        .await
        .expect_err("short upload");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_BUNDLE_MALFORMED", "{}", status.message());
    assert!(status.message().contains("short.tgz"), "{}", status.message());

    wait_for_empty_spool(dir.path()).await;
    assert_nothing_stored(&server.store(), Some(&digest));
    server.stop().await;
}

#[tokio::test]
async fn stream_longer_than_declared_rejected_early() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let digest = bundle_digest(&archive);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;

    // The upload declares 10 bytes and then sends the whole archive, followed by more data. The
    // attestor must stop at the first chunk past the declared size, not spool everything.
    let mut messages = vec![start_message("long.tgz", 10)];
    messages.extend(archive.chunks(STREAM_CHUNK_BYTES).map(data_message));
    messages.extend((0..64).map(|_| data_message(&vec![0; STREAM_CHUNK_BYTES])));
    let status = client
        .import_tiles_stream(tokio_stream::iter(messages))
        .await
        .expect_err("long upload");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_BUNDLE_MALFORMED", "{}", status.message());
    assert!(status.message().contains("long.tgz"), "{}", status.message());
    assert!(status.message().contains("longer than the 10 bytes"), "{}", status.message());

    wait_for_empty_spool(dir.path()).await;
    assert_nothing_stored(&server.store(), Some(&digest));
    server.stop().await;
}

#[tokio::test]
async fn dropped_stream_leaves_nothing() {
    let Some(vectors) = vectors() else { return };
    let archive = pack(|_| {});
    let digest = bundle_digest(&archive);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;

    let (sender, receiver) = mpsc::channel::<pb::ImportChunk>(4);
    let mut upload_client = client.clone();
    let upload = tokio::spawn(async move {
        upload_client
            .import_tiles_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    let total = u64::try_from(archive.len()).expect("size");
    sender
        .send(start_message("dropped.tgz", total))
        .await
        .expect("send start");
    for chunk in archive.chunks(STREAM_CHUNK_BYTES).take(8) {
        sender.send(data_message(chunk)).await.expect("send chunk");
    }
    // Wait until the server has spooled something, then drop the call mid-upload.
    for _ in 0..100 {
        if !spool_files(dir.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !spool_files(dir.path()).is_empty(),
        "the upload never reached the spool"
    );
    upload.abort();
    let _ = upload.await;
    drop(sender);

    wait_for_empty_spool(dir.path()).await;
    assert_nothing_stored(&server.store(), Some(&digest));

    // The attestor still imports the whole bundle afterwards.
    let imported = stream_import(&mut client, "whole.tgz", &archive)
        .await
        .expect("import after drop");
    assert_eq!(imported.bundle_digest, digest);
    server.stop().await;
}

#[tokio::test]
async fn tampered_tile_stores_nothing() {
    let Some(vectors) = vectors() else { return };
    // A full level-0 tile in the middle of the log: its parent tile no longer matches it.
    let archive = pack(|tiles| {
        let tile = tiles.get_mut("tile/0/100").expect("tile/0/100 exists");
        if let Some(byte) = tile.get_mut(100) {
            *byte ^= 0x01;
        }
    });
    let digest = bundle_digest(&archive);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;

    let status = stream_import(&mut client, "tampered.tgz", &archive)
        .await
        .expect_err("tampered tile");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_REKOR_TILE_INVALID", "{}", status.message());
    assert!(status.message().contains("tampered.tgz"), "{}", status.message());

    wait_for_empty_spool(dir.path()).await;
    assert_nothing_stored(&server.store(), Some(&digest));
    let response = inclusion(&mut client, 25_600).await;
    assert!(!response.included, "nothing of the tampered bundle may be stored");
    server.stop().await;
}

#[tokio::test]
async fn altered_bundle_after_import_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_process(dir.path(), 1 << 34).await;
    let mut client = server.client().await;
    import_trust(&mut client, &vectors).await;
    stream_import(&mut client, "log.tgz", &pack(|_| {}))
        .await
        .expect("first import");
    let tiles_before = server.store().tile_key_count().expect("count");

    // The same tree with one byte of an entry altered: the entry bundle no longer matches its
    // level-0 tile, so the bundle is rejected before the commit and the stored copy stays.
    let archive = pack(|tiles| {
        let bundle = tiles.get_mut("tile/entries/001").expect("tile/entries/001 exists");
        if let Some(byte) = bundle.get_mut(10) {
            *byte ^= 0x01;
        }
    });
    let status = stream_import(&mut client, "altered.tgz", &archive)
        .await
        .expect_err("altered entry bundle");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_REKOR_TILE_INVALID", "{}", status.message());
    assert!(status.message().contains("altered.tgz"), "{}", status.message());
    assert_eq!(server.store().tile_key_count().expect("count"), tiles_before);
    assert_eq!(server.store().staging_key_count().expect("count"), 0);
    server.stop().await;
}
