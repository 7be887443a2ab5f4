//! The attestor served on a loopback port with a RocksDB in a temporary directory, called
//! through the generated gRPC client.
//!
//! Tile tests use the 15-entry log that Tessera's POSIX driver wrote
//! (`vectors/tessera-log`). Logs that need a known signing key are built here with
//! `build_tiles` and an Ed25519 note signer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_attestor::AttestorConfig;
use stella_bundle::{EvidenceInput, Limits, LogTilesInput, Subject, TilesInput, TrustSetInput};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::note::NoteSigner;
use stella_verify::tiles::{build_tiles, parse_entry_bundle, root_from_tiles};
use stella_verify::tlog_proof::TlogProof;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
const TESSERA_ORIGIN: &str = "example.com/log/testdata";
const TESSERA_VKEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const TESSERA_ROOT_15: &str = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=";
/// The log's entries, spelt as Tessera's test data spells them.
const ENTRY_WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf", "threeten",
    "fourten", "fivten",
];
/// Returns the vectors folder, or `None` (with a message) when it is absent.
fn vectors() -> Option<PathBuf> {
    let path = PathBuf::from(VECTORS);
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: test vectors not found at {VECTORS}");
        None
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A running attestor and what stops it.
struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(data_dir: &Path) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits: Limits::default(),
        };
        let task = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            stop: Some(stop),
            task,
        }
    }

    async fn client(&self) -> AttestorClient<Channel> {
        AttestorClient::connect(format!("http://{}", self.address))
            .await
            .expect("connect to attestor")
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("attestor stops within 10 s")
            .expect("attestor task joins");
        result.expect("attestor exits cleanly");
    }
}

fn far_future() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600
}

fn trust_set_archive(trusted_root: &Path, note_keys: &[String], version: u64) -> Vec<u8> {
    stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: read(trusted_root),
        note_keys: note_keys.to_vec(),
        kms_keys: BTreeMap::new(),
        version,
        expires_at: far_future(),
    })
    .expect("pack trust set")
}

fn tessera_trust_set(vectors: &Path) -> Vec<u8> {
    let root = vectors.join("sigstore-trust-roots/production.trusted_root.json");
    trust_set_archive(&root, &[TESSERA_VKEY.to_owned()], 1)
}

/// Packs the Tessera log at `size` (1..=15): its checkpoint, partial level-0 tile and
/// partial entry bundle.
fn tessera_tiles(vectors: &Path, size: u64) -> Vec<u8> {
    let log = vectors.join("tessera-log");
    let mut tiles = BTreeMap::new();
    tiles.insert(
        format!("tile/0/000.p/{size}"),
        read(&log.join(format!("tile/0/000.p/{size}"))),
    );
    tiles.insert(
        format!("tile/entries/000.p/{size}"),
        read(&log.join(format!("tile/entries/000.p/{size}"))),
    );
    stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: read(&log.join(format!("checkpoint.{size}"))),
            tiles,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles")
}

fn import_request(file_name: &str, archive: Vec<u8>) -> pb::ImportBundleRequest {
    pb::ImportBundleRequest {
        file_name: file_name.to_owned(),
        archive,
    }
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("<none>")
        .to_owned()
}

async fn inclusion(
    client: &mut AttestorClient<Channel>,
    origin: &str,
    index: u64,
    entry: &[u8],
) -> pb::VerifyInclusionResponse {
    client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: origin.to_owned(),
            index,
            entry: entry.to_vec(),
        })
        .await
        .expect("VerifyInclusion succeeds")
        .into_inner()
}

#[tokio::test]
async fn inclusion_all_tessera_entries() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    let trust = client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(&vectors)))
        .await
        .expect("import trust set")
        .into_inner();
    assert_eq!(trust.version, 1);
    assert!(!trust.already_imported);

    let imported = client
        .import_tiles(import_request("tessera-15.tgz", tessera_tiles(&vectors, 15)))
        .await
        .expect("import tiles")
        .into_inner();
    assert_eq!(imported.tiles_imported, 1);
    assert_eq!(imported.entry_bundles_imported, 1);
    assert_eq!(imported.proofs_imported, 0);
    assert_eq!(imported.checkpoints.len(), 1);
    let checkpoint = imported.checkpoints.first().expect("one checkpoint");
    assert_eq!((checkpoint.origin.as_str(), checkpoint.tree_size), (TESSERA_ORIGIN, 15));
    assert_eq!(checkpoint.root_hash, TESSERA_ROOT_15);

    let bundle = read(&vectors.join("tessera-log/tile/entries/000.p/15"));
    let entries = parse_entry_bundle(&bundle).expect("entry bundle parses");
    assert_eq!(entries.len(), 15);
    for (index, entry) in entries.iter().enumerate() {
        let word = ENTRY_WORDS.get(index).expect("word");
        assert_eq!(*entry, word.as_bytes(), "entry {index}");
        let index = u64::try_from(index).expect("index");
        let response = inclusion(&mut client, TESSERA_ORIGIN, index, entry).await;
        assert!(response.included, "entry {index}: {}", response.detail);
        assert_eq!(response.proof_source, "tiles", "entry {index}");
        assert!(
            response.reason_codes.is_empty(),
            "entry {index}: {:?}",
            response.reason_codes
        );
        let used = response.checkpoint.expect("checkpoint");
        assert_eq!(
            (used.tree_size, used.root_hash.as_str()),
            (15, TESSERA_ROOT_15),
            "entry {index}"
        );
    }

    // Index 3 is "four".
    let wrong = inclusion(&mut client, TESSERA_ORIGIN, 3, b"three").await;
    assert!(!wrong.included);
    assert_eq!(wrong.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"]);

    let beyond = inclusion(&mut client, TESSERA_ORIGIN, 15, b"sixteen").await;
    assert!(!beyond.included);
    assert_eq!(beyond.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);
    assert!(beyond.detail.contains("/15.tlog-proof"), "{}", beyond.detail);

    server.stop().await;
}

#[tokio::test]
async fn import_is_idempotent_and_persistent() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    let trust_archive = tessera_trust_set(&vectors);
    client
        .import_trust_roots(import_request("trust.tgz", trust_archive.clone()))
        .await
        .expect("import trust");
    let again = client
        .import_trust_roots(import_request("trust.tgz", trust_archive))
        .await
        .expect("re-import trust")
        .into_inner();
    assert!(again.already_imported);

    let tiles = tessera_tiles(&vectors, 15);
    let first = client
        .import_tiles(import_request("t.tgz", tiles.clone()))
        .await
        .expect("import")
        .into_inner();
    let second = client
        .import_tiles(import_request("t.tgz", tiles))
        .await
        .expect("re-import")
        .into_inner();
    assert!(!first.already_imported);
    assert!(second.already_imported);
    assert_eq!(first.bundle_digest, second.bundle_digest);
    assert_eq!(first.checkpoints, second.checkpoints);
    assert_eq!(second.tiles_imported, 1);
    server.stop().await;

    // A new server over the same directory still proves inclusion.
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;
    let response = inclusion(&mut client, TESSERA_ORIGIN, 14, b"fivten").await;
    assert!(response.included, "{}", response.detail);
    server.stop().await;
}

#[tokio::test]
async fn tiles_need_trust_set() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    let status = client
        .import_tiles(import_request("t.tgz", tessera_tiles(&vectors, 15)))
        .await
        .expect_err("no trust set");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_MISSING");
    assert!(
        status.message().starts_with("ERR_TRUST_ROOT_MISSING: "),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn untrusted_checkpoint_rejected_whole() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    // The production trusted root alone does not hold the Tessera log key.
    let root = vectors.join("sigstore-trust-roots/production.trusted_root.json");
    client
        .import_trust_roots(import_request("trust.tgz", trust_set_archive(&root, &[], 1)))
        .await
        .expect("import trust");

    let status = client
        .import_tiles(import_request("tessera-15.tgz", tessera_tiles(&vectors, 15)))
        .await
        .expect_err("checkpoint not trusted");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INVALID");
    assert!(
        status
            .message()
            .starts_with("ERR_REKOR_CHECKPOINT_INVALID: tessera-15.tgz: logs/0/checkpoint: "),
        "{}",
        status.message()
    );

    // The log is unknown to this trust set.
    let response = inclusion(&mut client, TESSERA_ORIGIN, 0, b"one").await;
    assert!(!response.included);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_LOG_UNKNOWN"]);

    // Nothing of the rejected bundle was stored: once the log's key is trusted, its tiles are still missing.
    client
        .import_trust_roots(import_request("trust-v2.tgz", trust_set_archive(&root, &[TESSERA_VKEY.to_owned()], 2)))
        .await
        .expect("import trust with the log key");
    let response = inclusion(&mut client, TESSERA_ORIGIN, 0, b"one").await;
    assert!(!response.included);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);
    server.stop().await;
}

#[tokio::test]
async fn tampered_tile_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(&vectors)))
        .await
        .expect("import trust");

    let log = vectors.join("tessera-log");
    let mut tile = read(&log.join("tile/0/000.p/15"));
    if let Some(byte) = tile.get_mut(40) {
        *byte ^= 0x01;
    }
    let mut tiles = BTreeMap::new();
    tiles.insert("tile/0/000.p/15".to_owned(), tile);
    tiles.insert(
        "tile/entries/000.p/15".to_owned(),
        read(&log.join("tile/entries/000.p/15")),
    );
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: read(&log.join("checkpoint.15")),
            tiles,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");

    let status = client
        .import_tiles(import_request("tampered.tgz", archive))
        .await
        .expect_err("tampered tile");
    assert_eq!(status.code(), Code::InvalidArgument);
    // The root rebuilt from the altered right-edge tile no longer matches the checkpoint.
    assert_eq!(reason_of(&status), "ERR_REKOR_ROOT_MISMATCH", "{}", status.message());
    assert!(status.message().contains("tampered.tgz"), "{}", status.message());

    let response = inclusion(&mut client, TESSERA_ORIGIN, 0, b"one").await;
    assert!(!response.included, "nothing of the tampered bundle may be stored");
    server.stop().await;
}

#[tokio::test]
async fn growing_log_passes_consistency() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(&vectors)))
        .await
        .expect("import trust");

    for size in [5_u64, 10, 15, 7] {
        client
            .import_tiles(import_request(
                &format!("tessera-{size}.tgz"),
                tessera_tiles(&vectors, size),
            ))
            .await
            .unwrap_or_else(|status| panic!("import size {size}: {}", status.message()));
    }
    let response = inclusion(&mut client, TESSERA_ORIGIN, 12, b"threeten").await;
    assert!(response.included, "{}", response.detail);
    assert_eq!(response.checkpoint.map(|c| c.tree_size), Some(15));
    server.stop().await;
}

/// Signs a checkpoint for `entries` and returns the tiles bundle and the signer's vkey.
fn signed_log(signer: &NoteSigner, origin: &str, entries: &[&str]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = entries.iter().map(|entry| entry.as_bytes().to_vec()).collect();
    let tiles = build_tiles(&entries).expect("build tiles");
    let size = u64::try_from(entries.len()).expect("size");
    let root_hash = root_from_tiles(size, &tiles).expect("root from tiles");
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        size,
        root_hash,
        extensions: Vec::new(),
    };
    let note = signer.sign(&checkpoint.to_text()).expect("sign checkpoint");
    stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: note,
            tiles,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles")
}

#[tokio::test]
async fn split_view_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    let origin = "split.example/log";
    let signer = NoteSigner::ed25519(origin, &[7_u8; 32]);
    let root = vectors.join("sigstore-trust-roots/production.trusted_root.json");
    let vkey = signer.verifier().to_vkey();
    client
        .import_trust_roots(import_request("trust.tgz", trust_set_archive(&root, &[vkey], 1)))
        .await
        .expect("import trust");

    client
        .import_tiles(import_request(
            "view-a.tgz",
            signed_log(&signer, origin, &["a", "b", "c"]),
        ))
        .await
        .expect("first view imports");

    // The same log key signs a larger tree that does not extend the first one.
    let status = client
        .import_tiles(import_request(
            "view-b.tgz",
            signed_log(&signer, origin, &["a", "x", "c", "d"]),
        ))
        .await
        .expect_err("inconsistent view");
    assert_eq!(reason_of(&status), "ERR_REKOR_ROOT_MISMATCH", "{}", status.message());
    assert!(
        status.message().contains("view-b.tgz: logs/0/checkpoint"),
        "{}",
        status.message()
    );

    // Same size, other root.
    let status = client
        .import_tiles(import_request(
            "view-c.tgz",
            signed_log(&signer, origin, &["a", "b", "z"]),
        ))
        .await
        .expect_err("second tree of the same size");
    assert_eq!(reason_of(&status), "ERR_REKOR_ROOT_MISMATCH", "{}", status.message());

    // An honest extension is accepted.
    client
        .import_tiles(import_request(
            "view-d.tgz",
            signed_log(&signer, origin, &["a", "b", "c", "d", "e"]),
        ))
        .await
        .expect("consistent extension imports");
    let response = inclusion(&mut client, origin, 4, b"e").await;
    assert!(response.included, "{}", response.detail);
    server.stop().await;
}

#[tokio::test]
async fn tlog_proof_proves_inclusion() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(&vectors)))
        .await
        .expect("import trust");

    let proofs: serde_json::Value =
        serde_json::from_slice(&read(&vectors.join("tessera-log-proofs.json"))).expect("proofs JSON");
    let mut files = Vec::new();
    for case in proofs["inclusion"].as_array().expect("inclusion list") {
        if case["treeSize"] != 9 {
            continue;
        }
        let index = case["leafIdx"].as_u64().expect("leafIdx");
        let hashes = case["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|hash| {
                let bytes = BASE64.decode(hash.as_str().expect("base64 text")).expect("base64");
                <[u8; 32]>::try_from(bytes).expect("32-byte hash")
            })
            .collect();
        let checkpoint = read(&vectors.join("tessera-log/checkpoint.9"));
        files.push(
            TlogProof {
                extra: None,
                index,
                hashes,
                checkpoint,
            }
            .to_bytes(),
        );
    }
    assert_eq!(files.len(), 9);
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: Vec::new(),
        tlog_proofs: files,
    })
    .expect("pack proofs");
    let imported = client
        .import_tiles(import_request("proofs.tgz", archive))
        .await
        .expect("import proofs")
        .into_inner();
    assert_eq!(imported.proofs_imported, 9);

    for (index, word) in ENTRY_WORDS.iter().take(9).enumerate() {
        let index = u64::try_from(index).expect("index");
        let response = inclusion(&mut client, TESSERA_ORIGIN, index, word.as_bytes()).await;
        assert!(response.included, "entry {index}: {}", response.detail);
        assert_eq!(response.proof_source, "tlog-proof");
        assert_eq!(response.checkpoint.map(|c| c.tree_size), Some(9));
    }
    server.stop().await;
}

/// Packs a tlog-proof from a Sigstore bundle's own inclusion proof and checkpoint, as
/// `stella rekor tiles pack --sigstore-bundle` does.
fn tlog_proof_from_bundle(bundle_json: &[u8]) -> Vec<u8> {
    let bundle = stella_verify::bundle::parse_bundle(bundle_json).expect("bundle parses");
    let entry = bundle.tlog_entries.first().expect("one tlog entry");
    let proof = entry.inclusion_proof.as_ref().expect("inclusion proof");
    TlogProof {
        extra: None,
        index: proof.log_index,
        hashes: proof.hashes.clone(),
        checkpoint: proof.checkpoint.as_bytes().to_vec(),
    }
    .to_bytes()
}

#[tokio::test]
async fn evidence_verified_from_cache_only() {
    let Some(vectors) = vectors() else { return };
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;

    let unknown = client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: format!("sha256:{}", "0".repeat(64)),
        })
        .await
        .expect_err("unknown bundle");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason_of(&unknown), "ERR_EVIDENCE_NOT_FOUND");

    client
        .import_trust_roots(import_request(
            "trust.tgz",
            trust_set_archive(&case.join("trusted_root.json"), &[], 1),
        ))
        .await
        .expect("import trust");

    let mut sigstore_bundles = BTreeMap::new();
    sigstore_bundles.insert("provenance".to_owned(), bundle_json.clone());
    let evidence = stella_bundle::pack_evidence(&EvidenceInput {
        sigstore_bundles,
        subjects: vec![Subject {
            name: "a.txt".to_owned(),
            digest: "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf".to_owned(),
        }],
    })
    .expect("pack evidence");
    let registered = client
        .register_evidence(import_request("evidence.tgz", evidence))
        .await
        .expect("register evidence")
        .into_inner();
    assert_eq!(registered.sigstore_bundles, 1);
    let bundle_id = registered.bundle_id;

    // Without cached proofs, the bundle's own proof is not used.
    let missing = client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.clone(),
        })
        .await
        .expect("verify evidence")
        .into_inner();
    assert_eq!(missing.outcome, "failed");
    assert_eq!(missing.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);

    let proofs = stella_bundle::pack_tiles(&TilesInput {
        logs: Vec::new(),
        tlog_proofs: vec![tlog_proof_from_bundle(&bundle_json)],
    })
    .expect("pack proof");
    client
        .import_tiles(import_request("proofs.tgz", proofs))
        .await
        .expect("import proof");

    let verified = client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.clone(),
        })
        .await
        .expect("verify evidence")
        .into_inner();
    assert_eq!(verified.outcome, "verified", "reasons {:?}", verified.reason_codes);
    assert!(verified.reason_codes.is_empty());
    assert!(verified.report_digest.starts_with("sha256:"));

    // Same inputs, same report bytes; and the stored report is retrievable.
    let again = client
        .verify_evidence(pb::VerifyEvidenceRequest { bundle_id })
        .await
        .expect("verify again")
        .into_inner();
    assert_eq!(again.report_json, verified.report_json);
    let stored = client
        .get_report(pb::GetReportRequest {
            report_digest: verified.report_digest.clone(),
        })
        .await
        .expect("get report")
        .into_inner();
    assert_eq!(stored.report_json, verified.report_json);
    server.stop().await;
}

#[tokio::test]
async fn trust_set_rollback_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let mut client = server.client().await;
    let root = vectors.join("sigstore-trust-roots/production.trusted_root.json");

    client
        .import_trust_roots(import_request(
            "v2.tgz",
            trust_set_archive(&root, &[TESSERA_VKEY.to_owned()], 2),
        ))
        .await
        .expect("import version 2");
    let status = client
        .import_trust_roots(import_request("v1.tgz", trust_set_archive(&root, &[], 1)))
        .await
        .expect_err("older version");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_INVALID");
    assert!(
        status.message().contains("v1.tgz: version 1 is not newer"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Running::start(dir.path()).await;
    let channel = Channel::from_shared(format!("http://{}", server.address))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "stella.attestor.v1.Attestor".to_owned(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        response.status,
        i32::from(tonic_health::pb::health_check_response::ServingStatus::Serving)
    );
    server.stop().await;
}
