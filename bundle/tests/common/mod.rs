//! Shared helpers: vector loading and valid sample bundles of each kind.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use stella_bundle::{EvidenceInput, LogTilesInput, Subject, TilesInput, TrustSetInput};

/// Verifier key of the Tessera test log in `tessera-log/`.
pub const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// SHA-256 of the conformance suite's `a.txt`.
pub const A_TXT_SHA256: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// 2027-01-01T00:00:00Z.
pub const EXPIRES_AT: i64 = 1_798_761_600;

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors"))
}

/// Returns true when the environment variable `CI` is set to a value other than empty, `0` or
/// `false`. CI services set `CI=true`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// Reads a vector file, or returns `None` after printing why the test skips. In CI, an absent
/// vectors folder fails the test instead, so a run without vectors cannot pass.
pub fn vector(relative: &str) -> Option<Vec<u8>> {
    let path = vectors_dir().join(relative);
    if !vectors_dir().is_dir() {
        assert!(
            !in_ci(),
            "vectors folder {} is absent, and CI is set, so the test fails instead of skipping",
            vectors_dir().display()
        );
        eprintln!("SKIP: vectors folder {} is absent", vectors_dir().display());
        return None;
    }
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(error) => panic!(
            "vectors folder exists but {} is unreadable: {error}",
            path.display()
        ),
    }
}

/// PEM of the staging Rekor v1 log key (an ECDSA P-256 SPKI taken from the staging trusted root).
pub fn sample_kms_pem(trusted_root_json: &[u8]) -> Vec<u8> {
    let root: serde_json::Value =
        serde_json::from_slice(trusted_root_json).expect("trusted root JSON");
    let raw = root["tlogs"][0]["publicKey"]["rawBytes"]
        .as_str()
        .expect("tlogs[0] key");
    let der = STANDARD.decode(raw).expect("base64 key");
    let body = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem.into_bytes()
}

pub fn trust_input() -> Option<TrustSetInput> {
    let trusted_root_json = vector("sigstore-trust-roots/staging.trusted_root.json")?;
    let mut kms_keys = BTreeMap::new();
    kms_keys.insert(
        "release-signer".to_owned(),
        sample_kms_pem(&trusted_root_json),
    );
    Some(TrustSetInput {
        trusted_root_json,
        note_keys: vec![TESSERA_VKEY.to_owned()],
        kms_keys,
        version: 7,
        expires_at: EXPIRES_AT,
    })
}

/// Builds a C2SP tlog-proof file by hand from the published Tessera proofs.
pub fn tessera_tlog_proof(index: u64) -> Option<Vec<u8>> {
    let checkpoint = vector("tessera-log/checkpoint")?;
    let proofs: serde_json::Value =
        serde_json::from_slice(&vector("tessera-log-proofs.json")?).expect("proofs JSON");
    let case = proofs["inclusion"]
        .as_array()
        .expect("inclusion array")
        .iter()
        .find(|case| case["treeSize"] == 15 && case["leafIdx"] == index)
        .expect("proof for size 15");
    let mut text = format!("c2sp.org/tlog-proof@v1\nindex {index}\n");
    for hash in case["proof"].as_array().expect("proof hashes") {
        text.push_str(hash.as_str().expect("base64 hash"));
        text.push('\n');
    }
    text.push('\n');
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(&checkpoint);
    Some(bytes)
}

pub fn tiles_input() -> Option<TilesInput> {
    let checkpoint = vector("tessera-log/checkpoint")?;
    let mut tiles = BTreeMap::new();
    for width in 1..=15 {
        for prefix in ["tile/0/000.p", "tile/entries/000.p"] {
            let path = format!("{prefix}/{width}");
            tiles.insert(path.clone(), vector(&format!("tessera-log/{path}"))?);
        }
    }
    Some(TilesInput {
        logs: vec![LogTilesInput { checkpoint, tiles }],
        tlog_proofs: vec![tessera_tlog_proof(3)?, tessera_tlog_proof(14)?],
    })
}

pub fn evidence_input() -> Option<EvidenceInput> {
    let mut sigstore_bundles = BTreeMap::new();
    sigstore_bundles.insert(
        "rekor2-happy-path".to_owned(),
        vector("sigstore-conformance/bundle-verify/rekor2-happy-path/bundle.sigstore.json")?,
    );
    sigstore_bundles.insert(
        "staging-rekor-v2.txt".to_owned(),
        vector("sigstore-python/staging-rekor-v2.txt.sigstore.json")?,
    );
    Some(EvidenceInput {
        sigstore_bundles,
        subjects: vec![Subject {
            name: "a.txt".to_owned(),
            digest: format!("sha256:{A_TXT_SHA256}"),
        }],
    })
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).expect("gzip write");
    encoder.finish().expect("gzip finish")
}
