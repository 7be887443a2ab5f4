//! ProveConsistency over real gRPC: the attestor served in process on a loopback port, with
//! RocksDB in a temporary directory.
//!
//! The Tessera log (15 entries, written by Tessera's POSIX driver) is imported at every tree
//! size, and every pair of sizes must give a proof that verifies here too. A log built with
//! `build_tiles` covers tiles of three levels. A store written directly, with a tile that the
//! proof needs left out, covers the missing-tile result.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use stella_attestor::store::{ImportBatch, ImportRecord, ImportSummary, Store};
use stella_bundle::{LogTilesInput, TilesInput};
use stella_proto::attestor::v1 as pb;
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::note::NoteSigner;
use stella_verify::tiles::{build_tiles, root_from_tiles};
use tonic::Code;

use common::{
    Client, Server, TENANT, TESSERA_ORIGIN, TESSERA_VKEY, pack_trust_set, production_root, read, reason_of, tenant,
    vectors,
};

/// The Tessera log's entries, in log order, as its test data spells them.
const TESSERA_ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf", "threeten",
    "fourten", "fivten",
];

/// Packs a trust set of the production Sigstore root plus the given note keys.
fn trust_set(vectors: &Path, note_keys: &[String]) -> Vec<u8> {
    pack_trust_set(&production_root(vectors), note_keys, 1)
}

async fn import_trust(client: &mut Client, archive: Vec<u8>) {
    client
        .import_trust_roots(pb::ImportBundleRequest {
            file_name: "trust.tgz".to_owned(),
            archive,
        })
        .await
        .expect("import trust set");
}

async fn import_tiles(client: &mut Client, file_name: &str, checkpoint: Vec<u8>, tiles: BTreeMap<String, Vec<u8>>) {
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput { checkpoint, tiles }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    client
        .import_tiles(pb::ImportBundleRequest {
            file_name: file_name.to_owned(),
            archive,
        })
        .await
        .unwrap_or_else(|status| panic!("import {file_name}: {}", status.message()));
}

/// Imports the Tessera log at tree `size`: its checkpoint and its partial level-0 tile.
async fn import_tessera(client: &mut Client, vectors: &Path, size: u64) {
    let log = vectors.join("tessera-log");
    let path = format!("tile/0/000.p/{size}");
    let tiles = BTreeMap::from([(path.clone(), read(&log.join(&path)))]);
    let checkpoint = read(&log.join(format!("checkpoint.{size}")));
    import_tiles(client, &format!("tessera-{size}.tgz"), checkpoint, tiles).await;
}

/// Returns the root hash of the Tessera checkpoint of `size`, from its note text.
fn tessera_root(vectors: &Path, size: u64) -> String {
    let note = read(&vectors.join(format!("tessera-log/checkpoint.{size}")));
    let text = String::from_utf8(note).expect("checkpoint is UTF-8");
    text.lines().nth(2).expect("root hash line").to_owned()
}

async fn prove(
    client: &mut Client,
    origin: &str,
    old_size: u64,
    new_size: u64,
) -> Result<pb::ProveConsistencyResponse, tonic::Status> {
    client
        .prove_consistency(pb::ProveConsistencyRequest {
            origin: origin.to_owned(),
            old_size,
            new_size,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn decode_proof(proof: &[String]) -> Vec<Hash> {
    proof
        .iter()
        .map(|text| {
            let bytes = BASE64.decode(text).expect("proof hash is base64");
            Hash::try_from(bytes.as_slice()).expect("proof hash has 32 bytes")
        })
        .collect()
}

fn decode_root(text: &str) -> Hash {
    let bytes = BASE64.decode(text).expect("root is base64");
    Hash::try_from(bytes.as_slice()).expect("root has 32 bytes")
}

/// Checks a response that must be consistent: both checkpoints, the proof against the roots,
/// and the proof against the one computed from `leaves` of the new size.
fn assert_consistent(response: &pb::ProveConsistencyResponse, origin: &str, old_size: u64, new_size: u64, leaves: &[Hash]) {
    let pair = format!("{origin} {old_size} -> {new_size}");
    assert!(response.consistent, "{pair}: {}", response.detail);
    assert!(response.reason_codes.is_empty(), "{pair}: {:?}", response.reason_codes);
    assert!(response.missing_tiles.is_empty(), "{pair}: {:?}", response.missing_tiles);
    let old = response.old_checkpoint.as_ref().expect("old checkpoint");
    let new = response.new_checkpoint.as_ref().expect("new checkpoint");
    assert_eq!((old.origin.as_str(), old.tree_size), (origin, old_size), "{pair}");
    assert_eq!((new.origin.as_str(), new.tree_size), (origin, new_size), "{pair}");

    let proof = decode_proof(&response.proof);
    let new_leaves = &leaves[..usize::try_from(new_size).expect("size")];
    let expected = merkle::consistency_proof(old_size, new_leaves).expect("proof from leaves");
    assert_eq!(proof, expected, "{pair}: proof differs from the one computed from the leaves");
    merkle::verify_consistency(old_size, new_size, &proof, &decode_root(&old.root_hash), &decode_root(&new.root_hash))
        .unwrap_or_else(|error| panic!("{pair}: proof does not verify: {error}"));
}

#[tokio::test]
async fn every_tessera_pair_consistent() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust(&mut client, trust_set(&vectors, &[TESSERA_VKEY.to_owned()])).await;
    for size in 1..=15 {
        import_tessera(&mut client, &vectors, size).await;
    }
    let leaves: Vec<Hash> = TESSERA_ENTRIES.iter().map(|entry| merkle::leaf_hash(entry.as_bytes())).collect();

    // Twice, so that the second round reads the warm node cache.
    for round in 0..2 {
        for new_size in 1..=15_u64 {
            for old_size in 1..=new_size {
                let response = prove(&mut client, TESSERA_ORIGIN, old_size, new_size)
                    .await
                    .unwrap_or_else(|status| panic!("round {round}, {old_size} -> {new_size}: {status:?}"));
                assert_consistent(&response, TESSERA_ORIGIN, old_size, new_size, &leaves);
                let old = response.old_checkpoint.as_ref().expect("old checkpoint");
                let new = response.new_checkpoint.as_ref().expect("new checkpoint");
                assert_eq!(old.root_hash, tessera_root(&vectors, old_size), "root of size {old_size}");
                assert_eq!(new.root_hash, tessera_root(&vectors, new_size), "root of size {new_size}");
                if old_size == new_size {
                    assert!(response.proof.is_empty(), "equal sizes {old_size}: {:?}", response.proof);
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn sizes_not_stored_not_found() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust(&mut client, trust_set(&vectors, &[TESSERA_VKEY.to_owned()])).await;
    for size in [3, 7, 15] {
        import_tessera(&mut client, &vectors, size).await;
    }

    for (old_size, new_size, absent) in [(5, 15, 5), (3, 16, 16), (3, 8, 8)] {
        let status = prove(&mut client, TESSERA_ORIGIN, old_size, new_size)
            .await
            .expect_err("size never imported");
        assert_eq!(status.code(), Code::NotFound, "{old_size} -> {new_size}: {status:?}");
        assert_eq!(reason_of(&status), "ERR_REKOR_TILE_MISSING", "{old_size} -> {new_size}");
        let message = status.message();
        assert!(message.contains(&format!("with tree size {absent} is stored")), "{message}");
        assert!(message.contains("stored sizes: 15, 7, 3"), "{message}");
    }

    // The stored pairs still prove; a failed request changes nothing.
    let leaves: Vec<Hash> = TESSERA_ENTRIES.iter().map(|entry| merkle::leaf_hash(entry.as_bytes())).collect();
    for (old_size, new_size) in [(3, 7), (3, 15), (7, 15), (15, 15)] {
        let response = prove(&mut client, TESSERA_ORIGIN, old_size, new_size).await.expect("stored pair");
        assert_consistent(&response, TESSERA_ORIGIN, old_size, new_size, &leaves);
    }

    let other_log = prove(&mut client, "other.example/log", 3, 7).await.expect("unknown log is a result");
    assert!(!other_log.consistent);
    assert_eq!(other_log.reason_codes, vec!["ERR_REKOR_LOG_UNKNOWN".to_owned()]);
    server.stop().await;
}

#[tokio::test]
async fn invalid_requests_rejected() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let status = prove(&mut client, TESSERA_ORIGIN, 3, 7).await.expect_err("no trust set");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_MISSING");

    import_trust(&mut client, trust_set(&vectors, &[TESSERA_VKEY.to_owned()])).await;
    let cases = [
        ("old size 0", TESSERA_ORIGIN, 0, 7, "ERR_REKOR_PROOF_INVALID"),
        ("old above new", TESSERA_ORIGIN, 8, 7, "ERR_REKOR_PROOF_INVALID"),
        ("empty origin", "", 3, 7, "ERR_REKOR_LOG_UNKNOWN"),
    ];
    for (name, origin, old_size, new_size, reason) in cases {
        let status = prove(&mut client, origin, old_size, new_size).await.expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert_eq!(reason_of(&status), reason, "{name}");
    }
    server.stop().await;
}

/// A log signed by a test key, with its tiles built at any size.
struct TestLog {
    origin: &'static str,
    signer: NoteSigner,
    entries: Vec<Vec<u8>>,
}

impl TestLog {
    fn new(origin: &'static str, size: u64) -> TestLog {
        TestLog {
            origin,
            signer: NoteSigner::ed25519(origin, &[42_u8; 32]),
            entries: (0..size).map(|i| format!("{origin} entry {i}").into_bytes()).collect(),
        }
    }

    fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    fn leaves(&self) -> Vec<Hash> {
        self.entries.iter().map(|entry| merkle::leaf_hash(entry)).collect()
    }

    /// Returns the tiles of the tree of `size` and its signed checkpoint.
    fn at(&self, size: u64) -> (BTreeMap<String, Vec<u8>>, Vec<u8>) {
        let tiles = build_tiles(&self.entries[..usize::try_from(size).expect("size")]).expect("build tiles");
        let checkpoint = Checkpoint {
            origin: self.origin.to_owned(),
            size,
            root_hash: root_from_tiles(size, &tiles).expect("root"),
            extensions: Vec::new(),
        };
        let note = self.signer.sign(&checkpoint.to_text()).expect("sign checkpoint");
        (tiles, note)
    }
}

#[tokio::test]
async fn three_level_log_consistent() {
    let Some(vectors) = vectors() else { return };
    let log = TestLog::new("levels.example/log", 70_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust(&mut client, trust_set(&vectors, &[log.vkey()])).await;

    let sizes = [1_u64, 255, 256, 1_000, 65_536, 65_537, 70_000];
    for size in sizes {
        let (tiles, note) = log.at(size);
        import_tiles(&mut client, &format!("levels-{size}.tgz"), note, tiles).await;
    }
    let leaves = log.leaves();
    for round in 0..2 {
        for (position, &new_size) in sizes.iter().enumerate() {
            for &old_size in &sizes[..=position] {
                let response = prove(&mut client, log.origin, old_size, new_size)
                    .await
                    .unwrap_or_else(|status| panic!("round {round}, {old_size} -> {new_size}: {status:?}"));
                assert_consistent(&response, log.origin, old_size, new_size, &leaves);
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn missing_tile_named() {
    let Some(vectors) = vectors() else { return };
    let log = TestLog::new("gap.example/log", 600);
    let dir = tempfile::tempdir().expect("temp dir");

    // Imports never leave such a gap, because each one is checked against its stored
    // neighbours. A store written directly has one: sizes 100 and 600 without tile/0/000,
    // which the proof from 100 to 600 needs.
    {
        let store = Store::open(dir.path()).expect("open store").for_tenant(&tenant(TENANT));
        let mut batch = ImportBatch::new(ImportRecord {
            digest: "sha256:00".to_owned(),
            file_name: "written-directly".to_owned(),
            imported_at: 0,
            summary: ImportSummary::Tiles {
                checkpoints: Vec::new(),
                tiles: 0,
                entry_bundles: 0,
                proofs: 0,
            },
        });
        let (small_tiles, small_note) = log.at(100);
        let (large_tiles, large_note) = log.at(600);
        batch.put_checkpoint(log.origin, 100, small_note);
        batch.put_checkpoint(log.origin, 600, large_note);
        let path = "tile/0/000.p/100";
        batch.put_tile(log.origin, path, small_tiles.get(path).expect(path).clone());
        for path in ["tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2"] {
            batch.put_tile(log.origin, path, large_tiles.get(path).expect(path).clone());
        }
        store.commit(batch).expect("commit");
    }

    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust(&mut client, trust_set(&vectors, &[log.vkey()])).await;

    let response = prove(&mut client, log.origin, 100, 600).await.expect("missing tile is a result");
    assert!(!response.consistent, "{response:?}");
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_TILE_MISSING".to_owned()]);
    assert_eq!(response.missing_tiles, vec!["gap.example/log/tile/0/000".to_owned()]);
    assert!(response.detail.contains("gap.example/log/tile/0/000"), "{}", response.detail);
    assert!(response.proof.is_empty(), "{:?}", response.proof);
    assert_eq!(response.old_checkpoint.map(|checkpoint| checkpoint.tree_size), Some(100));
    assert_eq!(response.new_checkpoint.map(|checkpoint| checkpoint.tree_size), Some(600));

    // Pairs that need no absent tile still prove.
    let leaves = log.leaves();
    for (old_size, new_size) in [(100, 100), (600, 600)] {
        let response = prove(&mut client, log.origin, old_size, new_size).await.expect("stored pair");
        assert_consistent(&response, log.origin, old_size, new_size, &leaves);
    }
    server.stop().await;
}

#[tokio::test]
async fn split_view_refused_after_warm_cache() {
    let Some(vectors) = vectors() else { return };
    let honest = TestLog::new("fork.example/log", 600);
    let mut forked = TestLog::new("fork.example/log", 600);
    if let Some(entry) = forked.entries.get_mut(13) {
        *entry = b"forged entry".to_vec();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust(&mut client, trust_set(&vectors, &[honest.vkey()])).await;
    for size in [100, 600] {
        let (tiles, note) = honest.at(size);
        import_tiles(&mut client, &format!("honest-{size}.tgz"), note, tiles).await;
    }

    // Warm the node cache through both RPCs that read it.
    let leaves = honest.leaves();
    let response = prove(&mut client, honest.origin, 100, 600).await.expect("honest pair");
    assert_consistent(&response, honest.origin, 100, 600, &leaves);
    let inclusion = client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: honest.origin.to_owned(),
            index: 13,
            entry: honest.entries[13].clone(),
            sequence: 0,
        })
        .await
        .expect("VerifyInclusion")
        .into_inner();
    assert!(inclusion.included, "{}", inclusion.detail);

    // The log signs another tree of size 600; the import is rejected and recorded.
    let (tiles, note) = forked.at(600);
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput { checkpoint: note, tiles }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    let status = client
        .import_tiles(pb::ImportBundleRequest {
            file_name: "forked-600.tgz".to_owned(),
            archive,
        })
        .await
        .expect_err("forked checkpoint rejected");
    assert_eq!(reason_of(&status), "ERR_REKOR_CHECKPOINT_INCONSISTENT", "{status:?}");

    // Warm cache entries must not keep proving anything for the origin.
    let response = prove(&mut client, honest.origin, 100, 600).await.expect("result after split view");
    assert!(!response.consistent, "{response:?}");
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT".to_owned()]);
    assert!(response.proof.is_empty(), "{:?}", response.proof);
    let inclusion = client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: honest.origin.to_owned(),
            index: 13,
            entry: honest.entries[13].clone(),
            sequence: 0,
        })
        .await
        .expect("VerifyInclusion")
        .into_inner();
    assert!(!inclusion.included, "{}", inclusion.detail);
    assert_eq!(inclusion.reason_codes, vec!["ERR_REKOR_CHECKPOINT_INCONSISTENT".to_owned()]);
    server.stop().await;
}
