//! The attestor served on a loopback port with a RocksDB in a temporary directory, called
//! through the generated gRPC client.
//!
//! Tile tests use the 15-entry log that Tessera's POSIX driver wrote
//! (`vectors/tessera-log`). Logs that need a known signing key are built here with
//! `build_tiles` and an Ed25519 note signer.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use stella_bundle::{EvidenceInput, Limits, LogTilesInput, Subject, TilesInput, TrustSetInput};
use stella_proto::attestor::v1 as pb;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle;
use stella_verify::note::NoteSigner;
use stella_verify::tiles::{build_tiles, parse_entry_bundle, root_from_tiles};
use stella_verify::tlog_proof::TlogProof;
use tonic::Code;
use tonic::transport::Channel;

use common::{
    Client, Server, TESSERA_ORIGIN, TESSERA_VKEY, import_request, pack_trust_set, production_root, read, reason_of,
    tessera_tiles, tessera_trust_set, vectors,
};

const TESSERA_ROOT_15: &str = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=";
/// The log's entries, spelt as Tessera's test data spells them.
const ENTRY_WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf", "threeten",
    "fourten", "fivten",
];

async fn inclusion(
    client: &mut Client,
    origin: &str,
    index: u64,
    entry: &[u8],
) -> pb::VerifyInclusionResponse {
    client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: origin.to_owned(),
            index,
            entry: entry.to_vec(),
            sequence: 0,
        })
        .await
        .expect("VerifyInclusion succeeds")
        .into_inner()
}

#[tokio::test]
async fn inclusion_all_tessera_entries() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let response = inclusion(&mut client, TESSERA_ORIGIN, 14, b"fivten").await;
    assert!(response.included, "{}", response.detail);
    server.stop().await;
}

#[tokio::test]
async fn tiles_need_trust_set() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    // The production trusted root alone does not hold the Tessera log key.
    let root = production_root(&vectors);
    client
        .import_trust_roots(import_request("trust.tgz", pack_trust_set(&root, &[], 1)))
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
        .import_trust_roots(import_request("trust-v2.tgz", pack_trust_set(&root, &[TESSERA_VKEY.to_owned()], 2)))
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
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let origin = "split.example/log";
    let signer = NoteSigner::ed25519(origin, &[7_u8; 32]);
    let root = production_root(&vectors);
    let vkey = signer.verifier().to_vkey();
    client
        .import_trust_roots(import_request("trust.tgz", pack_trust_set(&root, &[vkey], 1)))
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
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
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
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());

    // An honest extension is accepted.
    client
        .import_tiles(import_request(
            "view-d.tgz",
            signed_log(&signer, origin, &["a", "b", "c", "d", "e"]),
        ))
        .await
        .expect("consistent extension imports");

    // After a split view no proof of the log counts, not even the honest extension's.
    let response = inclusion(&mut client, origin, 4, b"e").await;
    assert!(!response.included, "{}", response.detail);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT"]);
    server.stop().await;
}

#[tokio::test]
async fn tlog_proof_proves_inclusion() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
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
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let unknown = client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: format!("sha256:{}", "0".repeat(64)),
            verification_time: 0,
        })
        .await
        .expect_err("unknown bundle");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(reason_of(&unknown), "ERR_EVIDENCE_NOT_FOUND");

    client
        .import_trust_roots(import_request(
            "trust.tgz",
            pack_trust_set(&case.join("trusted_root.json"), &[], 1),
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
            verification_time: 0,
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
            verification_time: 0,
        })
        .await
        .expect("verify evidence")
        .into_inner();
    assert_eq!(verified.outcome, "verified", "reasons {:?}", verified.reason_codes);
    assert!(verified.reason_codes.is_empty());
    assert!(verified.report_digest.starts_with("sha256:"));

    // Same inputs, same report bytes; and the stored report is retrievable.
    let again = client
        .verify_evidence(pb::VerifyEvidenceRequest { bundle_id, verification_time: 0 })
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
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let root = production_root(&vectors);

    client
        .import_trust_roots(import_request(
            "v2.tgz",
            pack_trust_set(&root, &[TESSERA_VKEY.to_owned()], 2),
        ))
        .await
        .expect("import version 2");
    let status = client
        .import_trust_roots(import_request("v1.tgz", pack_trust_set(&root, &[], 1)))
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
    let server = Server::start(dir.path()).await;
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

/// A log built here, signed with a known key, so that tests can sign forked trees with the
/// log's own key.
struct OwnLog {
    origin: &'static str,
    signer: NoteSigner,
}

impl OwnLog {
    fn new(origin: &'static str) -> OwnLog {
        OwnLog {
            origin,
            signer: NoteSigner::ed25519(origin, &[11_u8; 32]),
        }
    }

    /// Imports a trust set that trusts this log's key.
    async fn trust(&self, client: &mut Client, vectors: &Path) {
        let root = production_root(&vectors);
        let vkey = self.signer.verifier().to_vkey();
        client
            .import_trust_roots(import_request("trust.tgz", pack_trust_set(&root, &[vkey], 1)))
            .await
            .expect("import trust");
    }

    fn checkpoint(&self, entries: &[Vec<u8>]) -> Vec<u8> {
        let checkpoint = Checkpoint {
            origin: self.origin.to_owned(),
            size: u64::try_from(entries.len()).expect("size"),
            root_hash: root_of(entries),
            extensions: Vec::new(),
        };
        self.signer.sign(&checkpoint.to_text()).expect("sign checkpoint")
    }

    /// Packs the tree of `entries`: its signed checkpoint and all its tiles.
    fn tiles_bundle(&self, entries: &[Vec<u8>]) -> Vec<u8> {
        stella_bundle::pack_tiles(&TilesInput {
            logs: vec![LogTilesInput {
                checkpoint: self.checkpoint(entries),
                tiles: build_tiles(entries).expect("build tiles"),
            }],
            tlog_proofs: Vec::new(),
        })
        .expect("pack tiles")
    }

    /// Returns the tlog-proof of leaf `index` in the tree of `entries`.
    fn tlog_proof(&self, entries: &[Vec<u8>], index: u64) -> Vec<u8> {
        let leaves: Vec<_> = entries.iter().map(|entry| merkle::leaf_hash(entry)).collect();
        TlogProof {
            extra: None,
            index,
            hashes: merkle::inclusion_proof(index, &leaves).expect("inclusion proof"),
            checkpoint: self.checkpoint(entries),
        }
        .to_bytes()
    }

    /// Packs the tlog-proof of leaf `index` in the tree of `entries`.
    fn proof_bundle(&self, entries: &[Vec<u8>], index: u64) -> Vec<u8> {
        proofs_bundle(vec![self.tlog_proof(entries, index)])
    }
}

fn proofs_bundle(tlog_proofs: Vec<Vec<u8>>) -> Vec<u8> {
    stella_bundle::pack_tiles(&TilesInput {
        logs: Vec::new(),
        tlog_proofs,
    })
    .expect("pack proofs")
}

/// Returns the entries `entry 0` to `entry <size-1>`.
fn honest_entries(size: usize) -> Vec<Vec<u8>> {
    (0..size).map(|i| format!("entry {i}").into_bytes()).collect()
}

/// Returns the honest entries with `forged entry` at `index`: the tree a forking log would
/// show to hide an entry from the auditors.
fn forked_entries(size: usize, index: usize) -> Vec<Vec<u8>> {
    let mut entries = honest_entries(size);
    if let Some(entry) = entries.get_mut(index) {
        *entry = b"forged entry".to_vec();
    }
    entries
}

fn root_of(entries: &[Vec<u8>]) -> [u8; 32] {
    let leaves: Vec<_> = entries.iter().map(|entry| merkle::leaf_hash(entry)).collect();
    merkle::root_from_leaves(&leaves)
}

fn root_text(entries: &[Vec<u8>]) -> String {
    BASE64.encode(root_of(entries))
}

#[tokio::test]
async fn forked_proof_within_tiles_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    // Tiles of the honest tree of 300 entries: a full level-0 tile and two partial tiles.
    client
        .import_tiles(import_request("tiles-300.tgz", log.tiles_bundle(&honest_entries(300))))
        .await
        .expect("honest tiles import");

    // The log signs a tree of 270 entries whose leaf 260 is forged.
    let forked = forked_entries(270, 260);
    let status = client
        .import_tiles(import_request("fork-270.tgz", log.proof_bundle(&forked, 260)))
        .await
        .expect_err("forked tlog-proof below the tile size");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    let message = status.message();
    for part in [
        "fork-270.tgz: proofs/",
        "/260.tlog-proof",
        "tree size 270",
        "tree size 300",
        &root_text(&forked),
        &root_text(&honest_entries(270)),
        &root_text(&honest_entries(300)),
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }

    // The recorded split view blocks every inclusion check of the log.
    let response = inclusion(&mut client, log.origin, 260, b"forged entry").await;
    assert!(!response.included, "{}", response.detail);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT"]);

    // The honest tree of the same size is accepted, and so is the tree of the tile size itself,
    // but neither proves inclusion while the split view is on record.
    for (name, size) in [("honest-270.tgz", 270), ("honest-300.tgz", 300)] {
        client
            .import_tiles(import_request(name, log.proof_bundle(&honest_entries(size), 260)))
            .await
            .unwrap_or_else(|status| panic!("{name}: {}", status.message()));
    }
    let response = inclusion(&mut client, log.origin, 260, b"entry 260").await;
    assert!(!response.included, "{}", response.detail);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT"]);
    server.stop().await;
}

#[tokio::test]
async fn forked_proof_beyond_tiles_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;
    client
        .import_tiles(import_request("tiles-300.tgz", log.tiles_bundle(&honest_entries(300))))
        .await
        .expect("honest tiles import");

    // The forged entry is appended past the tiles, as in a fork of the next checkpoint.
    let mut forked = honest_entries(300);
    forked.push(b"forged entry".to_vec());
    let status = client
        .import_tiles(import_request("fork-301.tgz", log.proof_bundle(&forked, 300)))
        .await
        .expect_err("tlog-proof above the tile size");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "ERR_REKOR_TILE_MISSING", "{}", status.message());
    let message = status.message();
    for part in [
        "fork-301.tgz: proofs/",
        "tree size 301",
        "tree size 300",
        "fork.example/log/tile/0/001.p/45",
        "fork.example/log/tile/1/000.p/1",
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
    let response = inclusion(&mut client, log.origin, 300, b"forged entry").await;
    assert!(!response.included, "{}", response.detail);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);

    // With the honest tiles of size 301, the fork is a second tree of the same size.
    let mut honest = honest_entries(300);
    honest.push(b"entry 300".to_vec());
    client
        .import_tiles(import_request("tiles-301.tgz", log.tiles_bundle(&honest)))
        .await
        .expect("honest extension imports");
    let status = client
        .import_tiles(import_request("fork-301.tgz", log.proof_bundle(&forked, 300)))
        .await
        .expect_err("forked tlog-proof of the tile size");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    client
        .import_tiles(import_request("honest-301.tgz", log.proof_bundle(&honest, 300)))
        .await
        .expect("honest tlog-proof of the tile size");
    server.stop().await;
}

#[tokio::test]
async fn tiles_checked_against_stored_proofs() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    // Without tiles, tlog-proofs of different sizes cannot be compared, so both forks import.
    let small_fork = forked_entries(6, 5);
    let large_fork = forked_entries(12, 11);
    client
        .import_tiles(import_request(
            "forks.tgz",
            proofs_bundle(vec![log.tlog_proof(&small_fork, 5), log.tlog_proof(&large_fork, 11)]),
        ))
        .await
        .expect("tlog-proofs of an origin without tiles");

    // Honest tiles of size 10 give another root for size 6 than the stored tlog-proof. The
    // stored fork of size 12 cannot be compared with size 10.
    let status = client
        .import_tiles(import_request("tiles-10.tgz", log.tiles_bundle(&honest_entries(10))))
        .await
        .expect_err("tiles that contradict a stored tlog-proof");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    let message = status.message();
    for part in [
        "tiles-10.tgz: logs/0/checkpoint",
        "tree size 6",
        "tree size 10",
        &root_text(&small_fork),
        &root_text(&honest_entries(6)),
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }

    // A fresh attestor that holds forks of sizes 11 and 13 only. Tiles of size 10 cannot be
    // compared with them and import. Tiles of size 12 give another root for size 11, and tiles
    // of size 13 meet the other fork at its own size.
    let dir = tempfile::tempdir().expect("temp dir");
    let other = Server::start(dir.path()).await;
    let mut client = other.client().await;
    log.trust(&mut client, &vectors).await;
    client
        .import_tiles(import_request(
            "forks-11-13.tgz",
            proofs_bundle(vec![
                log.tlog_proof(&forked_entries(11, 10), 10),
                log.tlog_proof(&forked_entries(13, 12), 12),
            ]),
        ))
        .await
        .expect("tlog-proofs without tiles");
    client
        .import_tiles(import_request("tiles-10.tgz", log.tiles_bundle(&honest_entries(10))))
        .await
        .expect("tiles below the stored tlog-proof sizes");
    let status = client
        .import_tiles(import_request("tiles-12.tgz", log.tiles_bundle(&honest_entries(12))))
        .await
        .expect_err("tiles above a stored fork");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    let message = status.message();
    for part in [
        "tiles-12.tgz: logs/0/checkpoint",
        "stored tlog-proof checkpoint of tree size 11",
        &root_text(&forked_entries(11, 10)),
        &root_text(&honest_entries(11)),
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
    let status = client
        .import_tiles(import_request("tiles-13.tgz", log.tiles_bundle(&honest_entries(13))))
        .await
        .expect_err("tiles of the stored fork's size");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    assert!(
        status.message().contains("tlog-proof checkpoint of that size"),
        "{}",
        status.message()
    );
    other.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn proofs_without_tiles_compare_sizes() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    client
        .import_tiles(import_request("honest-8.tgz", log.proof_bundle(&honest_entries(8), 2)))
        .await
        .expect("first tlog-proof");
    let status = client
        .import_tiles(import_request("fork-8.tgz", log.proof_bundle(&forked_entries(8, 7), 7)))
        .await
        .expect_err("second tree of the same size");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    assert!(status.message().contains("fork-8.tgz: proofs/"), "{}", status.message());

    // Two forks of one size in one bundle.
    let status = client
        .import_tiles(import_request(
            "two-views.tgz",
            proofs_bundle(vec![
                log.tlog_proof(&honest_entries(9), 1),
                log.tlog_proof(&forked_entries(9, 8), 8),
            ]),
        ))
        .await
        .expect_err("two trees of one size in one bundle");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    server.stop().await;
}

/// Returns a copy of a tlog-proof with one bit of its first hash flipped, chosen so that its
/// SHA-256 sorts before the original's. The attestor offers the stored proofs of one checkpoint
/// in that order, so the corrupted proof is tried first.
fn corrupted_sorting_first(good: &[u8]) -> Vec<u8> {
    let parsed = TlogProof::parse(good).expect("proof parses");
    let good_digest = Sha256::digest(good);
    for byte in 0..32 {
        for bit in 0..8 {
            let mut corrupted = parsed.clone();
            if let Some(hash) = corrupted.hashes.first_mut() {
                hash[byte] ^= 1 << bit;
            }
            let bytes = corrupted.to_bytes();
            if Sha256::digest(&bytes) < good_digest {
                return bytes;
            }
        }
    }
    panic!("no single-bit change of the first hash sorts before the original");
}

#[tokio::test]
async fn corrupted_proof_never_hides_good() {
    let Some(vectors) = vectors() else { return };
    let log = OwnLog::new("fork.example/log");
    let entries = honest_entries(20);
    let good = log.tlog_proof(&entries, 3);
    let corrupted = corrupted_sorting_first(&good);

    for (name, order) in [
        ("good first", [&good, &corrupted]),
        ("corrupted first", [&corrupted, &good]),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path()).await;
        let mut client = server.client().await;
        log.trust(&mut client, &vectors).await;

        let [first, second] = order;
        client
            .import_tiles(import_request("first.tgz", proofs_bundle(vec![first.clone()])))
            .await
            .expect("first proof imports");
        let after_first = inclusion(&mut client, log.origin, 3, b"entry 3").await;
        assert_eq!(after_first.included, first == &good, "{name}: {}", after_first.detail);

        client
            .import_tiles(import_request("second.tgz", proofs_bundle(vec![second.clone()])))
            .await
            .expect("second proof imports");
        let response = inclusion(&mut client, log.origin, 3, b"entry 3").await;
        assert!(response.included, "{name}: {}", response.detail);
        assert_eq!(response.proof_source, "tlog-proof", "{name}");

        // Both proofs stay stored, and re-importing either changes nothing.
        let again = client
            .import_tiles(import_request("first.tgz", proofs_bundle(vec![first.clone()])))
            .await
            .expect("re-import")
            .into_inner();
        assert!(again.already_imported, "{name}");
        let response = inclusion(&mut client, log.origin, 3, b"entry 3").await;
        assert!(response.included, "{name}: {}", response.detail);

        // A wrong entry is still rejected with the first candidate's failure.
        let wrong = inclusion(&mut client, log.origin, 3, b"entry 4").await;
        assert!(!wrong.included, "{name}");
        assert_eq!(wrong.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"], "{name}");
        server.stop().await;
    }
}

#[tokio::test]
async fn corrupted_proof_keeps_evidence_verified() {
    let Some(vectors) = vectors() else { return };
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));
    let good = tlog_proof_from_bundle(&bundle_json);
    let corrupted = corrupted_sorting_first(&good);

    let mut sigstore_bundles = BTreeMap::new();
    sigstore_bundles.insert("provenance".to_owned(), bundle_json);
    let evidence = stella_bundle::pack_evidence(&EvidenceInput {
        sigstore_bundles,
        subjects: vec![Subject {
            name: "a.txt".to_owned(),
            digest: "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf".to_owned(),
        }],
    })
    .expect("pack evidence");

    // One trust set for both servers: the report names its digest.
    let trust = pack_trust_set(&case.join("trusted_root.json"), &[], 1);
    let mut verified_digests = Vec::new();
    for (name, order) in [
        ("good first", [&good, &corrupted]),
        ("corrupted first", [&corrupted, &good]),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path()).await;
        let mut client = server.client().await;
        client
            .import_trust_roots(import_request("trust.tgz", trust.clone()))
            .await
            .expect("import trust");
        let bundle_id = client
            .register_evidence(import_request("evidence.tgz", evidence.clone()))
            .await
            .expect("register evidence")
            .into_inner()
            .bundle_id;
        let verify = |mut client: Client, bundle_id: String| async move {
            client
                .verify_evidence(pb::VerifyEvidenceRequest { bundle_id, verification_time: 0 })
                .await
                .expect("verify evidence")
                .into_inner()
        };

        let [first, second] = order;
        client
            .import_tiles(import_request("first.tgz", proofs_bundle(vec![first.clone()])))
            .await
            .expect("first proof imports");
        let after_first = verify(client.clone(), bundle_id.clone()).await;
        if first == &good {
            assert_eq!(
                after_first.outcome, "verified",
                "{name}: {:?}",
                after_first.reason_codes
            );
        } else {
            assert_eq!(after_first.outcome, "failed", "{name}");
            assert_eq!(after_first.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"], "{name}");
        }

        client
            .import_tiles(import_request("second.tgz", proofs_bundle(vec![second.clone()])))
            .await
            .expect("second proof imports");
        let both = verify(client.clone(), bundle_id.clone()).await;
        assert_eq!(both.outcome, "verified", "{name}: {:?}", both.reason_codes);
        let again = verify(client.clone(), bundle_id.clone()).await;
        assert_eq!(
            again.report_json, both.report_json,
            "{name}: reports must be deterministic"
        );
        if first == &good {
            // The corrupted proof changes nothing in the report.
            assert_eq!(both.report_digest, after_first.report_digest, "{name}");
        }
        verified_digests.push(both.report_digest);
        server.stop().await;
    }
    // The import order does not change the report either.
    assert_eq!(verified_digests.first(), verified_digests.last());
}

#[tokio::test]
async fn replaced_trust_set_not_reimported() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let root = production_root(&vectors);
    let first = pack_trust_set(&root, &[], 1);
    let second = pack_trust_set(&root, &[TESSERA_VKEY.to_owned()], 2);

    let imported_first = client
        .import_trust_roots(import_request("v1.tgz", first.clone()))
        .await
        .expect("import version 1")
        .into_inner();
    let imported_second = client
        .import_trust_roots(import_request("v2.tgz", second.clone()))
        .await
        .expect("import version 2")
        .into_inner();

    let status = client
        .import_trust_roots(import_request("v1-again.tgz", first))
        .await
        .expect_err("replaced set");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_INVALID");
    let message = status.message();
    for part in [
        "v1-again.tgz: ",
        "(version 1)",
        "version 2",
        &imported_first.trust_set_digest,
        &imported_second.trust_set_digest,
    ] {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }

    // The current set again is a no-op, and it stays current.
    let again = client
        .import_trust_roots(import_request("v2.tgz", second))
        .await
        .expect("current set again")
        .into_inner();
    assert!(again.already_imported);
    assert_eq!(again.version, 2);
    let response = inclusion(&mut client, TESSERA_ORIGIN, 0, b"one").await;
    assert_eq!(
        response.reason_codes,
        vec!["ERR_REKOR_TILE_MISSING"],
        "version 2, which trusts the Tessera key, must still be current: {}",
        response.detail
    );
    server.stop().await;
}

#[tokio::test]
async fn concurrent_forks_one_wins() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    // Eight trees of one size with different roots arrive at once. Imports run one at a time,
    // so the first one stored makes every other a second tree of that size.
    let mut tasks = Vec::new();
    for fork in 0..8_usize {
        let archive = log.tiles_bundle(&forked_entries(40, fork));
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .import_tiles(import_request(&format!("fork-{fork}.tgz"), archive))
                .await
        }));
    }
    let mut imported = 0;
    for task in tasks {
        match task.await.expect("import task") {
            Ok(_) => imported += 1,
            Err(status) => assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message()),
        }
    }
    assert_eq!(imported, 1, "exactly one of the forks may be stored");
    server.stop().await;
}

/// Returns the manifest digest of a tile bundle, as the attestor names the bundle.
fn bundle_digest(archive: &[u8]) -> String {
    stella_bundle::open_tiles("bundle.tgz", archive, &Limits::default())
        .expect("open tile bundle")
        .digest
}

fn hash_of(base64_text: &str) -> [u8; 32] {
    let bytes = BASE64.decode(base64_text).expect("base64 hash");
    <[u8; 32]>::try_from(bytes).expect("32-byte hash")
}

async fn list_checkpoints(client: &mut Client, origin: Option<&str>) -> Vec<pb::LogCheckpoints> {
    client
        .list_checkpoints(pb::ListCheckpointsRequest {
            origin: origin.map(str::to_owned),
        })
        .await
        .expect("ListCheckpoints succeeds")
        .into_inner()
        .logs
}

/// The state of the cache as a client observes it in the fork tests: inclusion responses of the
/// own log, the evidence report of the Sigstore entry, and the stored checkpoints.
#[derive(Debug, PartialEq)]
struct CacheView {
    inclusion: Vec<pb::VerifyInclusionResponse>,
    report: pb::VerifyEvidenceResponse,
    checkpoints: Vec<pb::StoredCheckpoint>,
    proof_checkpoints: Vec<pb::StoredCheckpoint>,
}

async fn cache_view(client: &mut Client, log: &OwnLog, bundle_id: &str) -> CacheView {
    let mut answers = Vec::new();
    for index in [0_u64, 5, 10, 259, 260, 289, 299, 300, 305] {
        let entry = format!("entry {index}");
        answers.push(inclusion(client, log.origin, index, entry.as_bytes()).await);
    }
    answers.push(inclusion(client, log.origin, 260, b"forged entry").await);
    let report = client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
            verification_time: 0,
        })
        .await
        .expect("verify evidence")
        .into_inner();
    let logs = list_checkpoints(client, Some(log.origin)).await;
    let listed = logs.first().expect("the own log is listed");
    CacheView {
        inclusion: answers,
        report,
        checkpoints: listed.checkpoints.clone(),
        proof_checkpoints: listed.proof_checkpoints.clone(),
    }
}

#[tokio::test]
async fn forked_checkpoint_kept_as_evidence() {
    let Some(vectors) = vectors() else { return };
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    // One trust set for the Sigstore entry's log and the log built here.
    let log = OwnLog::new("fork.example/log");
    let vkey = log.signer.verifier().to_vkey();
    client
        .import_trust_roots(import_request(
            "trust.tgz",
            pack_trust_set(&case.join("trusted_root.json"), &[vkey], 1),
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
    let bundle_id = client
        .register_evidence(import_request("evidence.tgz", evidence))
        .await
        .expect("register evidence")
        .into_inner()
        .bundle_id;

    let honest = honest_entries(300);
    client
        .import_tiles(import_request("tiles-300.tgz", log.tiles_bundle(&honest)))
        .await
        .expect("honest tiles import");
    client
        .import_tiles(import_request("proof-280.tgz", log.proof_bundle(&honest_entries(280), 5)))
        .await
        .expect("honest tlog-proof import");
    let before = cache_view(&mut client, &log, &bundle_id).await;
    assert_eq!(before.report.outcome, "failed", "the Sigstore entry's proof is not imported yet");
    assert_eq!(before.report.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);
    let listed_sizes: Vec<(u64, bool)> = before.checkpoints.iter().map(|c| (c.tree_size, c.newest)).collect();
    assert_eq!(listed_sizes, vec![(300, true)]);
    assert_eq!(before.proof_checkpoints.len(), 1);
    assert_eq!(before.proof_checkpoints.first().map(|c| c.tree_size), Some(280));

    // Three forks signed with the log's own key. The first also carries the Sigstore entry's
    // good tlog-proof: if any part of a rejected bundle were stored, the report would change.
    let same_size = forked_entries(300, 260);
    let same_size_note = log.checkpoint(&same_size);
    let fork_a = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: same_size_note.clone(),
            tiles: build_tiles(&same_size).expect("build tiles"),
        }],
        tlog_proofs: vec![tlog_proof_from_bundle(&bundle_json)],
    })
    .expect("pack fork");
    let not_extension = forked_entries(310, 10);
    let fork_b = log.tiles_bundle(&not_extension);
    let smaller = forked_entries(290, 5);
    let fork_c = log.proof_bundle(&smaller, 5);

    let mut record_ids = Vec::new();
    for (name, archive) in [("fork-a.tgz", &fork_a), ("fork-b.tgz", &fork_b), ("fork-c.tgz", &fork_c)] {
        let status = client
            .import_tiles(import_request(name, archive.clone()))
            .await
            .expect_err("forked checkpoint");
        assert_eq!(status.code(), Code::InvalidArgument, "{name}");
        assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{name}: {}", status.message());
        assert!(status.message().contains(&format!("{name}: ")), "{}", status.message());
        let id = status
            .message()
            .split("inconsistency record ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("{name}: no record id in {}", status.message()))
            .to_owned();
        record_ids.push(id);
    }
    // The same rejected bundle again adds no second record.
    let again = client
        .import_tiles(import_request("fork-a.tgz", fork_a.clone()))
        .await
        .expect_err("forked checkpoint again");
    assert_eq!(reason_of(&again), "ERR_REKOR_CHECKPOINT_INCONSISTENT");
    assert!(again.message().contains(&record_ids[0]), "{}", again.message());

    // A rejected import leaves the cache unchanged. The recorded split view makes every
    // inclusion check of the own log fail, and leaves the Sigstore entry's log alone.
    let after = cache_view(&mut client, &log, &bundle_id).await;
    assert_eq!(after.report, before.report, "a rejected import must leave the cache unchanged");
    assert_eq!(after.checkpoints, before.checkpoints);
    assert_eq!(after.proof_checkpoints, before.proof_checkpoints);
    assert_eq!(after.inclusion.len(), before.inclusion.len());
    for response in &after.inclusion {
        assert!(!response.included, "{}", response.detail);
        assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT"], "{}", response.detail);
    }

    let logs = list_checkpoints(&mut client, None).await;
    let origins: Vec<&str> = logs.iter().map(|listed| listed.origin.as_str()).collect();
    assert_eq!(origins, vec![log.origin], "nothing of the Sigstore entry's log was stored");
    let listed = logs.first().expect("own log");
    assert_eq!(listed.inconsistencies_not_recorded, 0);
    let records: BTreeMap<&str, &pb::Inconsistency> = listed
        .inconsistencies
        .iter()
        .map(|record| (record.bundle_file_name.as_str(), record))
        .collect();
    assert_eq!(listed.inconsistencies.len(), 3, "{records:?}");
    let honest_note = String::from_utf8(log.checkpoint(&honest)).expect("UTF-8 note");

    for (name, archive, id) in [
        ("fork-a.tgz", &fork_a, &record_ids[0]),
        ("fork-b.tgz", &fork_b, &record_ids[1]),
        ("fork-c.tgz", &fork_c, &record_ids[2]),
    ] {
        let record = records.get(name).unwrap_or_else(|| panic!("no record for {name}"));
        assert_eq!(&record.id, id, "{name}");
        assert_eq!(record.bundle_digest, bundle_digest(archive), "{name}");
        assert_eq!(record.origin, log.origin, "{name}");
        assert!(
            time::OffsetDateTime::parse(&record.recorded_at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{name}: {}",
            record.recorded_at
        );
        assert!(record.detail.starts_with(&format!("{name}: ")), "{name}: {}", record.detail);
    }

    // Same size, other root: both notes verbatim, no proof needed.
    let same = records["fork-a.tgz"];
    assert_eq!(same.kind, "same_size");
    let rejected = same.rejected.as_ref().expect("rejected checkpoint");
    let conflicting = same.conflicting.as_ref().expect("conflicting checkpoint");
    assert_eq!(rejected.note.as_bytes(), same_size_note.as_slice());
    assert_eq!((rejected.source.as_str(), rejected.bundle_path.as_str()), ("tile-verified", "logs/0/checkpoint"));
    assert_eq!((rejected.tree_size, rejected.root_hash.clone()), (300, root_text(&same_size)));
    assert_eq!(conflicting.note, honest_note);
    assert_eq!((conflicting.source.as_str(), conflicting.bundle_path.as_str()), ("tile-verified", ""));
    assert_eq!((conflicting.tree_size, conflicting.root_hash.clone()), (300, root_text(&honest)));
    assert!(same.proof.is_empty());
    assert_eq!(same.tile_root_hash, "");

    // A larger tree that does not extend the stored one: the proof from its tiles fails
    // against the stored root, but leads from the root its own tiles give for size 300.
    let larger = records["fork-b.tgz"];
    assert_eq!(larger.kind, "consistency_proof");
    let rejected = larger.rejected.as_ref().expect("rejected checkpoint");
    let conflicting = larger.conflicting.as_ref().expect("conflicting checkpoint");
    assert_eq!(rejected.note.as_bytes(), log.checkpoint(&not_extension).as_slice());
    assert_eq!((rejected.tree_size, rejected.root_hash.clone()), (310, root_text(&not_extension)));
    assert_eq!(conflicting.note, honest_note);
    assert_eq!(larger.tile_root_hash, root_text(&not_extension[..300]));
    let proof: Vec<[u8; 32]> = larger.proof.iter().map(|hash| hash_of(hash)).collect();
    assert!(!proof.is_empty());
    assert!(merkle::verify_consistency(300, 310, &proof, &root_of(&honest), &root_of(&not_extension)).is_err());
    merkle::verify_consistency(300, 310, &proof, &root_of(&not_extension[..300]), &root_of(&not_extension))
        .expect("the recorded proof fits the forked tree");

    // A smaller tlog-proof checkpoint whose root the stored tiles contradict.
    let tile_root = records["fork-c.tgz"];
    assert_eq!(tile_root.kind, "tile_root");
    let rejected = tile_root.rejected.as_ref().expect("rejected checkpoint");
    let conflicting = tile_root.conflicting.as_ref().expect("conflicting checkpoint");
    assert_eq!(rejected.note.as_bytes(), log.checkpoint(&smaller).as_slice());
    assert_eq!((rejected.source.as_str(), rejected.tree_size), ("tlog-proof", 290));
    assert!(rejected.bundle_path.ends_with("/5.tlog-proof"), "{}", rejected.bundle_path);
    assert_eq!((conflicting.source.as_str(), conflicting.tree_size), ("tile-verified", 300));
    assert_eq!(conflicting.note, honest_note);
    assert_eq!(tile_root.tile_root_hash, root_text(&honest_entries(290)));
    let proof: Vec<[u8; 32]> = tile_root.proof.iter().map(|hash| hash_of(hash)).collect();
    merkle::verify_consistency(290, 300, &proof, &root_of(&honest_entries(290)), &root_of(&honest))
        .expect("the recorded proof leads from the tiles' root to the stored root");
    assert!(merkle::verify_consistency(290, 300, &proof, &root_of(&smaller), &root_of(&honest)).is_err());

    // The evidence survives a restart.
    server.stop().await;
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let reopened = list_checkpoints(&mut client, Some(log.origin)).await;
    assert_eq!(reopened, logs);
    assert!(list_checkpoints(&mut client, Some("unknown.example/log")).await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn frozen_shard_checkpoint_imports() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("frozen.example/shard-2025");
    log.trust(&mut client, &vectors).await;

    // The last checkpoint before the freeze, then the frozen shard's final checkpoint: the same
    // tree, signed again with an extension line.
    let entries = honest_entries(300);
    client
        .import_tiles(import_request("last.tgz", log.tiles_bundle(&entries)))
        .await
        .expect("last checkpoint before the freeze");
    let frozen = Checkpoint {
        origin: log.origin.to_owned(),
        size: 300,
        root_hash: root_of(&entries),
        extensions: vec!["Log frozen — 2026-01-01T00:00:00Z".to_owned()],
    };
    let frozen_note = log.signer.sign(&frozen.to_text()).expect("sign frozen checkpoint");
    let frozen_proof = TlogProof {
        extra: None,
        index: 299,
        hashes: merkle::inclusion_proof(299, &entries.iter().map(|e| merkle::leaf_hash(e)).collect::<Vec<_>>())
            .expect("inclusion proof"),
        checkpoint: frozen_note.clone(),
    }
    .to_bytes();
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: frozen_note.clone(),
            tiles: build_tiles(&entries).expect("build tiles"),
        }],
        tlog_proofs: vec![frozen_proof],
    })
    .expect("pack frozen shard");
    let imported = client
        .import_tiles(import_request("frozen.tgz", archive))
        .await
        .unwrap_or_else(|status| panic!("frozen checkpoint: {}", status.message()))
        .into_inner();
    assert_eq!(imported.checkpoints.len(), 1, "{:?}", imported.checkpoints);
    let checkpoint = imported.checkpoints.first().expect("checkpoint");
    assert_eq!((checkpoint.tree_size, checkpoint.root_hash.clone()), (300, root_text(&entries)));

    for index in [0_u64, 255, 256, 299] {
        let entry = format!("entry {index}");
        let response = inclusion(&mut client, log.origin, index, entry.as_bytes()).await;
        assert!(response.included, "entry {index}: {}", response.detail);
    }

    // A fresh attestor that imports only the frozen checkpoint also proves every entry from it.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = Server::start(other_dir.path()).await;
    let mut other_client = other.client().await;
    log.trust(&mut other_client, &vectors).await;
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: frozen_note,
            tiles: build_tiles(&entries).expect("build tiles"),
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack frozen shard");
    other_client
        .import_tiles(import_request("frozen.tgz", archive))
        .await
        .unwrap_or_else(|status| panic!("frozen checkpoint alone: {}", status.message()));
    for (index, entry) in entries.iter().enumerate() {
        let index = u64::try_from(index).expect("index");
        let response = inclusion(&mut other_client, log.origin, index, entry).await;
        assert!(response.included, "entry {index}: {}", response.detail);
        assert_eq!(response.proof_source, "tiles", "entry {index}");
    }
    let wrong = inclusion(&mut other_client, log.origin, 7, b"entry 8").await;
    assert_eq!(wrong.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"]);
    other.stop().await;
    server.stop().await;
}

/// Returns the Ed25519 public key of a signer, decoded from its vkey (`name+hex8+base64(0x01 || key)`).
fn ed25519_public_key(signer: &NoteSigner) -> Vec<u8> {
    let vkey = signer.verifier().to_vkey();
    // Key names cannot contain '+', but base64 can, so split at the first two.
    let encoded = vkey.splitn(3, '+').nth(2).expect("vkey key part");
    let bytes = BASE64.decode(encoded).expect("vkey base64");
    assert_eq!(bytes.first(), Some(&0x01), "Ed25519 vkey");
    bytes.get(1..).expect("key bytes").to_vec()
}

/// Adds a Rekor v2 style log entry for `signer` to a trusted root: an Ed25519 key valid from
/// `start` until `end` (open when `None`), with the origin as the host of its base URL.
fn add_tlog(root: &mut serde_json::Value, signer: &NoteSigner, origin: &str, start: &str, end: Option<&str>) {
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend(ed25519_public_key(signer));
    let mut valid_for = serde_json::json!({ "start": start });
    if let Some(end) = end {
        valid_for["end"] = serde_json::Value::from(end);
    }
    let entry = serde_json::json!({
        "baseUrl": format!("https://{origin}"),
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": BASE64.encode(&spki),
            "keyDetails": "PKIX_ED25519",
            "validFor": valid_for,
        },
        "logId": { "keyId": BASE64.encode(Sha256::digest(&spki)) },
    });
    root["tlogs"].as_array_mut().expect("tlogs list").push(entry);
}

#[tokio::test]
async fn two_logs_one_bundle() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    // Two logs of the trusted root with overlapping validity windows, each with its own key.
    let (origin_a, origin_b) = ("log-a.stella.example", "log-b.stella.example");
    let signer_a = NoteSigner::ed25519(origin_a, &[21_u8; 32]);
    let signer_b = NoteSigner::ed25519(origin_b, &[22_u8; 32]);
    let production = production_root(&vectors);
    let mut root: serde_json::Value = serde_json::from_slice(&read(&production)).expect("trusted root JSON");
    add_tlog(&mut root, &signer_a, origin_a, "2025-01-01T00:00:00Z", None);
    add_tlog(&mut root, &signer_b, origin_b, "2025-06-01T00:00:00Z", Some("2030-01-01T00:00:00Z"));
    let root_file = dir.path().join("two-logs.trusted_root.json");
    std::fs::write(&root_file, serde_json::to_vec(&root).expect("JSON")).expect("write trusted root");
    client
        .import_trust_roots(import_request("trust.tgz", pack_trust_set(&root_file, &[], 1)))
        .await
        .expect("import trust with two logs");

    let log_a = OwnLog {
        origin: origin_a,
        signer: signer_a,
    };
    let log_b = OwnLog {
        origin: origin_b,
        signer: signer_b,
    };
    let entries_a: Vec<Vec<u8>> = (0..40).map(|i| format!("a {i}").into_bytes()).collect();
    let entries_b: Vec<Vec<u8>> = (0..300).map(|i| format!("b {i}").into_bytes()).collect();
    let both = |entries_a: &[Vec<u8>], entries_b: &[Vec<u8>]| {
        stella_bundle::pack_tiles(&TilesInput {
            logs: vec![
                LogTilesInput {
                    checkpoint: log_a.checkpoint(entries_a),
                    tiles: build_tiles(entries_a).expect("build tiles a"),
                },
                LogTilesInput {
                    checkpoint: log_b.checkpoint(entries_b),
                    tiles: build_tiles(entries_b).expect("build tiles b"),
                },
            ],
            tlog_proofs: vec![log_b.tlog_proof(entries_b, 7)],
        })
        .expect("pack two logs")
    };
    let imported = client
        .import_tiles(import_request("two-logs.tgz", both(&entries_a, &entries_b)))
        .await
        .unwrap_or_else(|status| panic!("two logs: {}", status.message()))
        .into_inner();
    let sizes: Vec<(&str, u64)> = imported
        .checkpoints
        .iter()
        .map(|checkpoint| (checkpoint.origin.as_str(), checkpoint.tree_size))
        .collect();
    assert_eq!(sizes, vec![(origin_a, 40), (origin_b, 300)]);

    for (log, entries) in [(&log_a, &entries_a), (&log_b, &entries_b)] {
        for index in [0_usize, 7, 39] {
            let entry = entries.get(index).expect("entry");
            let response = inclusion(&mut client, log.origin, u64::try_from(index).expect("index"), entry).await;
            assert!(response.included, "{} entry {index}: {}", log.origin, response.detail);
        }
    }
    // An entry of one log does not prove inclusion in the other.
    let crossed = inclusion(&mut client, origin_b, 3, b"a 3").await;
    assert_eq!(crossed.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"]);

    // A bundle that extends log A honestly but forks log B is rejected whole: log A does not
    // grow, and the evidence is kept for log B only.
    let grown_a: Vec<Vec<u8>> = (0..50).map(|i| format!("a {i}").into_bytes()).collect();
    let mut forked_b = entries_b.clone();
    if let Some(entry) = forked_b.get_mut(100) {
        *entry = b"forged entry".to_vec();
    }
    let status = client
        .import_tiles(import_request("fork-b.tgz", both(&grown_a, &forked_b)))
        .await
        .expect_err("log B forked");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    assert!(status.message().contains(origin_b), "{}", status.message());
    let not_grown = inclusion(&mut client, origin_a, 45, b"a 45").await;
    assert_eq!(not_grown.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);

    let logs = list_checkpoints(&mut client, None).await;
    let summary: Vec<(&str, Vec<u64>, Vec<u64>, usize)> = logs
        .iter()
        .map(|listed| {
            (
                listed.origin.as_str(),
                listed.checkpoints.iter().map(|c| c.tree_size).collect(),
                listed.proof_checkpoints.iter().map(|c| c.tree_size).collect(),
                listed.inconsistencies.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(origin_a, vec![40], vec![], 0), (origin_b, vec![300], vec![300], 1)]
    );
    server.stop().await;
}

fn stream_request(origin: &str, index: u64, entry: &[u8], sequence: u64) -> pb::VerifyInclusionRequest {
    pb::VerifyInclusionRequest {
        origin: origin.to_owned(),
        index,
        entry: entry.to_vec(),
        sequence,
    }
}

/// Sends `requests` in one VerifyInclusionStream call and collects every response.
async fn inclusion_stream(
    client: &mut Client,
    requests: Vec<pb::VerifyInclusionRequest>,
) -> Result<Vec<pb::VerifyInclusionResponse>, tonic::Status> {
    let mut responses = client
        .verify_inclusion_stream(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut collected = Vec::new();
    while let Some(response) = responses.message().await? {
        collected.push(response);
    }
    Ok(collected)
}

/// An attestor with the Tessera trust set and its 15-entry tiles imported.
async fn tessera_attestor(vectors: &Path, data_dir: &Path) -> (Server, Client) {
    let server = Server::start(data_dir).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(vectors)))
        .await
        .expect("import trust set");
    client
        .import_tiles(import_request("tessera-15.tgz", tessera_tiles(vectors, 15)))
        .await
        .expect("import tiles");
    (server, client)
}

/// Sequence, origin, index, entry, and the expected reason codes (none when included).
type StreamRow = (u64, &'static str, u64, Vec<u8>, Vec<&'static str>);

#[tokio::test]
async fn inclusion_stream_responds_in_order() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = tessera_attestor(&vectors, dir.path()).await;

    let oversized = vec![b'x'; 65_536];
    let largest = vec![b'x'; 65_535];
    let mut rows: Vec<StreamRow> = Vec::new();
    for (index, word) in (0u64..).zip(ENTRY_WORDS) {
        rows.push((1000 + index, TESSERA_ORIGIN, index, word.as_bytes().to_vec(), vec![]));
    }
    rows.push((5, TESSERA_ORIGIN, 3, b"three".to_vec(), vec!["ERR_REKOR_PROOF_INVALID"]));
    rows.push((4, TESSERA_ORIGIN, 15, b"sixteen".to_vec(), vec!["ERR_REKOR_TILE_MISSING"]));
    rows.push((3, "example.com/other-log", 0, b"one".to_vec(), vec!["ERR_REKOR_LOG_UNKNOWN"]));
    rows.push((2, "", 0, b"one".to_vec(), vec!["ERR_REKOR_LOG_UNKNOWN"]));
    rows.push((1, TESSERA_ORIGIN, 0, oversized, vec!["ERR_BUNDLE_TOO_LARGE"]));
    rows.push((0, TESSERA_ORIGIN, 1, largest, vec!["ERR_REKOR_PROOF_INVALID"]));
    rows.push((7, TESSERA_ORIGIN, 14, b"fivten".to_vec(), vec![]));
    // Two requests with the same sequence number are each answered.
    rows.push((7, TESSERA_ORIGIN, 14, b"fivten".to_vec(), vec![]));

    let requests = rows
        .iter()
        .map(|(sequence, origin, index, entry, _)| stream_request(origin, *index, entry, *sequence))
        .collect();
    let responses = inclusion_stream(&mut client, requests).await.expect("stream succeeds");
    assert_eq!(responses.len(), rows.len());

    for (position, (row, response)) in rows.iter().zip(&responses).enumerate() {
        let (sequence, _, index, _, codes) = row;
        assert_eq!(response.sequence, *sequence, "position {position}");
        assert_eq!(&response.reason_codes, codes, "position {position}: {}", response.detail);
        assert_eq!(response.included, codes.is_empty(), "position {position}: {}", response.detail);
        if codes.is_empty() {
            assert_eq!(response.proof_source, "tiles", "position {position}");
            let used = response.checkpoint.as_ref().expect("checkpoint");
            assert_eq!((used.tree_size, used.root_hash.as_str()), (15, TESSERA_ROOT_15), "index {index}");
        }
    }
    let empty_origin = responses.get(18).expect("empty origin response");
    assert!(empty_origin.detail.contains("origin is empty"), "{}", empty_origin.detail);
    assert!(empty_origin.checkpoint.is_none());

    server.stop().await;
}

#[tokio::test]
async fn inclusion_stream_matches_unary_call() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = tessera_attestor(&vectors, dir.path()).await;

    let cases: [(u64, &[u8]); 3] = [(2, b"three"), (3, b"three"), (15, b"sixteen")];
    let requests = cases
        .iter()
        .zip(0u64..)
        .map(|((index, entry), sequence)| stream_request(TESSERA_ORIGIN, *index, entry, sequence))
        .collect();
    let streamed = inclusion_stream(&mut client, requests).await.expect("stream succeeds");
    assert_eq!(streamed.len(), cases.len());
    for ((index, entry), streamed) in cases.iter().zip(&streamed) {
        let unary = inclusion(&mut client, TESSERA_ORIGIN, *index, entry).await;
        let mut expected = unary.clone();
        expected.sequence = streamed.sequence;
        assert_eq!(*streamed, expected, "index {index}");
    }

    server.stop().await;
}

#[tokio::test]
async fn inclusion_stream_empty_call_ends() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = tessera_attestor(&vectors, dir.path()).await;

    let responses = inclusion_stream(&mut client, Vec::new()).await.expect("stream succeeds");
    assert!(responses.is_empty());

    server.stop().await;
}

#[tokio::test]
async fn inclusion_stream_needs_trust_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let requests = vec![stream_request(TESSERA_ORIGIN, 0, b"one", 0)];
    let status = inclusion_stream(&mut client, requests).await.expect_err("no trust set");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_MISSING");

    server.stop().await;
}

#[tokio::test]
async fn inclusion_stream_request_limit() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = tessera_attestor(&vectors, dir.path()).await;

    // Empty origins are answered without a store read, which keeps a million requests quick.
    let limit = stella_attestor::inclusion_stream::MAX_STREAM_REQUESTS;
    let requests = tokio_stream::iter((0..=limit).map(|sequence| stream_request("", 0, b"", sequence)));
    let mut responses = client
        .verify_inclusion_stream(requests)
        .await
        .expect("stream starts")
        .into_inner();
    let mut answered: u64 = 0;
    let status = loop {
        match responses.message().await {
            Ok(Some(response)) => {
                assert_eq!(response.sequence, answered);
                assert_eq!(response.reason_codes, vec!["ERR_REKOR_LOG_UNKNOWN"]);
                answered += 1;
            }
            Ok(None) => panic!("stream ended without an error after {answered} responses"),
            Err(status) => break status,
        }
    };
    assert_eq!(answered, limit);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("at most 1000000 requests"), "{}", status.message());

    server.stop().await;
}

#[tokio::test]
async fn tiles_override_forked_proof() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    // A fork of size 12 with a forged leaf 5 arrives first. Without tiles it cannot be compared
    // with anything, and the honest tiles of size 10 cannot be compared with size 12 either.
    let forked = forked_entries(12, 5);
    client
        .import_tiles(import_request(
            "fork-12.tgz",
            proofs_bundle(vec![log.tlog_proof(&forked, 5), log.tlog_proof(&forked, 11)]),
        ))
        .await
        .expect("tlog-proofs of an origin without tiles");
    client
        .import_tiles(import_request("tiles-10.tgz", log.tiles_bundle(&honest_entries(10))))
        .await
        .expect("tiles smaller than the stored fork");

    // The tiles cover leaf 5, so only their proof counts there.
    let response = inclusion(&mut client, log.origin, 5, b"forged entry").await;
    assert!(!response.included, "{}", response.detail);
    assert_eq!(response.proof_source, "tiles", "{}", response.detail);
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"]);
    let response = inclusion(&mut client, log.origin, 5, b"entry 5").await;
    assert!(response.included, "{}", response.detail);
    assert_eq!(response.proof_source, "tiles");

    // Leaf 11 lies beyond the tiles, so the stored tlog-proof is still offered there.
    let response = inclusion(&mut client, log.origin, 11, b"entry 11").await;
    assert!(response.included, "{}", response.detail);
    assert_eq!(response.proof_source, "tlog-proof");
    server.stop().await;
}

#[tokio::test]
async fn split_view_blocks_inclusion() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let log = OwnLog::new("fork.example/log");
    log.trust(&mut client, &vectors).await;

    // A smaller fork first, then the honest tiles, which the attestor rejects as a split view.
    client
        .import_tiles(import_request("fork-6.tgz", log.proof_bundle(&forked_entries(6, 5), 5)))
        .await
        .expect("tlog-proof of an origin without tiles");
    let status = client
        .import_tiles(import_request("tiles-10.tgz", log.tiles_bundle(&honest_entries(10))))
        .await
        .expect_err("tiles that contradict the stored fork");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{}", status.message());
    let logs = list_checkpoints(&mut client, Some(log.origin)).await;
    let record_id = logs
        .first()
        .and_then(|listed| listed.inconsistencies.first())
        .map(|record| record.id.clone())
        .expect("an inconsistency record");

    // Neither tree proves anything now, the forged entry included.
    for entry in [b"forged entry".as_slice(), b"entry 5".as_slice()] {
        let response = inclusion(&mut client, log.origin, 5, entry).await;
        assert!(!response.included, "{}", response.detail);
        assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT"]);
        assert!(response.detail.contains(&record_id), "{}", response.detail);
        assert!(response.detail.contains("stella rekor checkpoints"), "{}", response.detail);
    }
    server.stop().await;
}

#[tokio::test]
async fn expired_current_set_reimport_fails() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    let expires_at = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    let archive = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: read(&production_root(&vectors)),
        note_keys: vec![TESSERA_VKEY.to_owned()],
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at,
    })
    .expect("pack trust set");
    client
        .import_trust_roots(import_request("short.tgz", archive.clone()))
        .await
        .expect("import before expiry");

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let status = client
        .import_trust_roots(import_request("short.tgz", archive))
        .await
        .expect_err("expired current set");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_EXPIRED", "{}", status.message());
    let expiry = stella_verify::trust_root::format_time(expires_at);
    assert!(status.message().contains(&expiry), "lacks {expiry}: {}", status.message());
    assert!(status.message().contains("short.tgz: "), "{}", status.message());
    server.stop().await;
}
