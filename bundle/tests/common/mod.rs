//! Shared helpers: vector loading, valid sample bundles of each kind, and readers that compare
//! the in-memory and streaming paths.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use stella_bundle::{
    BundleError, EvidenceInput, Flow, Limits, LogTiles, LogTilesInput, MANIFEST_PATH, Measure,
    Subject, TilesBundle, TilesInput, TilesItem, TlogProofFile, TrustSetInput, open_tiles,
    read_archive, read_archive_streaming, read_tiles_streaming,
};

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

/// A `BufRead` over bytes that hands out at most `chunk` bytes per `fill_buf` call, to show that
/// the streaming readers do not depend on how their input is split.
pub struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl<'a> Trickle<'a> {
    pub fn new(data: &'a [u8], chunk: usize) -> Self {
        Trickle { data, chunk }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Trickle<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let n = self.data.len().min(self.chunk);
        Ok(&self.data[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.data = &self.data[amount..];
    }
}

/// Input chunk sizes that every streaming comparison runs with.
pub const CHUNKS: [usize; 3] = [1, 7, 64 * 1024];

/// Returns `error` with the byte counts that depend on how the input was split set to zero: the
/// decompressed count and the compressed count at which reading stopped.
fn comparable(error: &BundleError) -> BundleError {
    match error {
        BundleError::TooLarge {
            archive,
            path,
            measure: measure @ (Measure::ArchiveBytes | Measure::DecompressedBytes),
            actual,
            limit,
        } => {
            assert!(actual > limit, "{error}: the count must pass the limit");
            BundleError::TooLarge {
                archive: archive.clone(),
                path: path.clone(),
                measure: *measure,
                actual: 0,
                limit: *limit,
            }
        }
        other => other.clone(),
    }
}

/// Checks that a streaming read gave the result of the in-memory read. The in-memory readers
/// reject an archive over `max_archive_bytes` before reading it, while a streaming reader reads
/// up to the limit and may find another fault first, so any error matches that case.
fn assert_same<T: PartialEq + std::fmt::Debug + Clone>(
    name: &str,
    chunk: usize,
    streamed: Result<T, BundleError>,
    in_memory: &Result<T, BundleError>,
) {
    if let Err(BundleError::TooLarge {
        measure: Measure::ArchiveBytes,
        ..
    }) = in_memory
    {
        assert!(
            streamed.is_err(),
            "{name}: reading in chunks of {chunk} bytes accepted an archive over the size limit"
        );
        return;
    }
    assert_eq!(
        streamed.map_err(|e| comparable(&e)),
        in_memory.clone().map_err(|e| comparable(&e)),
        "{name}: reading in chunks of {chunk} bytes differs from reading in memory"
    );
}

/// Reads `tgz` with `read_archive` and with `read_archive_streaming` in chunks of each of
/// [`CHUNKS`], checks that all give the same files or the same error, and returns the result of
/// `read_archive`.
pub fn read_both(
    name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let in_memory = read_archive(name, tgz, limits);
    for chunk in CHUNKS {
        let mut files = BTreeMap::new();
        let streamed =
            read_archive_streaming(name, Trickle::new(tgz, chunk), limits, |path, content| {
                assert!(
                    files.insert(path, content).is_none(),
                    "a path was handed over twice"
                );
                Ok::<(), BundleError>(())
            });
        let streamed = streamed.map(|(_, manifest_json)| {
            files.insert(MANIFEST_PATH.to_owned(), manifest_json);
            files
        });
        assert_same(name, chunk, streamed, &in_memory);
    }
    in_memory
}

/// Reads a tile bundle with `read_tiles_streaming` and groups its files as `open_tiles` does.
pub fn stream_tiles(
    name: &str,
    reader: impl BufRead,
    limits: &Limits,
) -> Result<TilesBundle, BundleError> {
    let mut checkpoints: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut tiles: BTreeMap<usize, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut bundles: BTreeMap<usize, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut tlog_proofs = Vec::new();
    let header = read_tiles_streaming(
        name,
        reader,
        limits,
        |_| Ok::<Flow, BundleError>(Flow::Continue),
        |item| {
            match item {
                TilesItem::Checkpoint { log, content, .. } => {
                    checkpoints.insert(log, content);
                }
                TilesItem::HashTile {
                    log,
                    tile_path,
                    id,
                    content,
                    ..
                } => {
                    assert_eq!(id.path(), tile_path);
                    tiles
                        .entry(log)
                        .or_default()
                        .insert(tile_path.to_owned(), content);
                }
                TilesItem::EntryBundle {
                    log,
                    tile_path,
                    id,
                    content,
                    ..
                } => {
                    assert_eq!(id.path(), tile_path);
                    bundles
                        .entry(log)
                        .or_default()
                        .insert(tile_path.to_owned(), content);
                }
                TilesItem::TlogProof(proof) => tlog_proofs.push(proof),
            }
            Ok(())
        },
    )?;
    let logs = header
        .logs
        .iter()
        .enumerate()
        .map(|(k, log)| LogTiles {
            origin: log.origin.clone(),
            dir: log.dir.clone(),
            checkpoint: checkpoints.remove(&k).unwrap_or_default(),
            tiles: tiles.remove(&k).unwrap_or_default(),
            entry_bundles: bundles.remove(&k).unwrap_or_default(),
        })
        .collect();
    tlog_proofs.sort_by(|a: &TlogProofFile, b| a.path.cmp(&b.path));
    Ok(TilesBundle {
        file_name: header.file_name,
        digest: header.digest,
        manifest_json: header.manifest_json,
        manifest: header.manifest,
        logs,
        tlog_proofs,
    })
}

/// Opens `tgz` with `open_tiles` and with `read_tiles_streaming` in chunks of each of
/// [`CHUNKS`], checks that all give the same bundle or the same error, and returns the result
/// of `open_tiles`.
pub fn open_tiles_both(
    name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<TilesBundle, BundleError> {
    let in_memory = open_tiles(name, tgz, limits);
    for chunk in CHUNKS {
        let streamed = stream_tiles(name, Trickle::new(tgz, chunk), limits);
        assert_same(name, chunk, streamed, &in_memory);
    }
    in_memory
}
