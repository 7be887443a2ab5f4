//! `stella rekor consistency` against a real attestor: RocksDB in a temporary directory, served
//! in process on a loopback port, called by the built `stella` binary.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Run, arg, stella, vectors};
use stella_bundle::{Limits, LogTilesInput, TilesInput, TrustSetInput};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::note::NoteSigner;
use stella_verify::tiles::build_tiles;

const ORIGIN: &str = "grow.example/log";

/// An attestor on its own tokio runtime, so that the test thread can run `stella`.
struct Attestor {
    url: String,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Attestor {
    fn start(data_dir: &Path) -> Attestor {
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
        let server = stella_attestor::run(listener, config, async {
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
        let mut full = vec!["--attestor", self.url.as_str()];
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

fn signer() -> NoteSigner {
    NoteSigner::ed25519(ORIGIN, &[23_u8; 32])
}

fn entries(size: usize) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| format!("entry {i}").into_bytes())
        .collect()
}

fn leaves(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries
        .iter()
        .map(|entry| merkle::leaf_hash(entry))
        .collect()
}

/// Writes the tile bundle of the tree of `entries`, with its signed checkpoint, to `path`.
fn write_tiles(path: &Path, entries: &[Vec<u8>]) {
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: u64::try_from(entries.len()).expect("size"),
        root_hash: merkle::root_from_leaves(&leaves(entries)),
        extensions: Vec::new(),
    };
    let note = signer()
        .sign(&checkpoint.to_text())
        .expect("sign checkpoint");
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: note,
            tiles: build_tiles(entries).expect("build tiles"),
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    std::fs::write(path, archive).expect("write tile bundle");
}

fn write_trust_set(path: &Path, trusted_root: &Path) {
    let archive = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: std::fs::read(trusted_root).expect("read trusted root"),
        note_keys: vec![signer().verifier().to_vkey()],
        kms_keys: std::collections::BTreeMap::new(),
        version: 1,
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600,
    })
    .expect("pack trust set");
    std::fs::write(path, archive).expect("write trust set");
}

#[test]
fn consistency_command_outcomes() {
    let Some(trusted_root) = vectors("sigstore-trust-roots/production.trusted_root.json") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = Attestor::start(&dir.path().join("attestor"));

    let trust = dir.path().join("trust.tgz");
    write_trust_set(&trust, &trusted_root);
    let run = attestor.stella(&["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "trust import: {}", run.stderr);

    let all = entries(300);
    for size in [10, 300] {
        let bundle = dir.path().join(format!("tiles-{size}.tgz"));
        write_tiles(&bundle, &all[..size]);
        let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&bundle)]);
        assert_eq!(run.code, 0, "import size {size}: {}", run.stderr);
    }

    // Consistent: exit 0, and the JSON proof equals the one computed from the leaves.
    let run = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "10",
        "--to",
        "300",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let object = run.json();
    assert_eq!(
        object.get("consistent"),
        Some(&serde_json::Value::Bool(true))
    );
    assert_eq!(object.get("reason_codes"), Some(&serde_json::json!([])));
    let expected: Vec<String> = merkle::consistency_proof(10, &leaves(&all))
        .expect("proof from leaves")
        .iter()
        .map(|hash| BASE64.encode(hash))
        .collect();
    assert_eq!(object.get("proof"), Some(&serde_json::json!(expected)));
    let new_root = BASE64.encode(merkle::root_from_leaves(&leaves(&all)));
    assert_eq!(
        object.get("new_checkpoint"),
        Some(&serde_json::json!({"origin": ORIGIN, "tree_size": 300, "root_hash": new_root}))
    );

    // Text output names the verdict and lists the proof.
    let text = attestor.stella(&[
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "10",
        "--to",
        "300",
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with(&format!(
            "{ORIGIN}: tree size 300 is consistent with tree size 10\n"
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("proof: {} hashes\n", expected.len())),
        "{}",
        text.stdout
    );

    // Equal sizes: an empty proof.
    let same = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "300",
        "--to",
        "300",
    ]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert_eq!(same.json().get("proof"), Some(&serde_json::json!([])));

    // A size that was never imported: exit 1 with the catalog code.
    let absent = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "20",
        "--to",
        "300",
    ]);
    assert_eq!(absent.code, 1, "{}", absent.stderr);
    let error = absent.json();
    assert_eq!(
        error.get("reason_code"),
        Some(&serde_json::json!("ERR_REKOR_TILE_MISSING"))
    );
    let message = error
        .get("error")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    assert!(message.contains("tree size 20"), "{message}");
    assert!(message.contains("stored sizes: 300, 10"), "{message}");

    // A log outside the trust set: exit 1 with ERR_REKOR_LOG_UNKNOWN.
    let unknown = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "consistency",
        "--origin",
        "other.example/log",
        "--from",
        "1",
        "--to",
        "2",
    ]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert_eq!(
        unknown.json().get("reason_codes"),
        Some(&serde_json::json!(["ERR_REKOR_LOG_UNKNOWN"]))
    );
}

#[test]
fn consistency_usage_errors() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "from above to",
            &[
                "rekor",
                "consistency",
                "--origin",
                ORIGIN,
                "--from",
                "9",
                "--to",
                "3",
            ],
        ),
        (
            "from zero",
            &[
                "rekor",
                "consistency",
                "--origin",
                ORIGIN,
                "--from",
                "0",
                "--to",
                "3",
            ],
        ),
        (
            "empty origin",
            &[
                "rekor",
                "consistency",
                "--origin",
                "",
                "--from",
                "1",
                "--to",
                "3",
            ],
        ),
    ];
    for (name, args) in cases {
        // Port 9 on loopback is never served here; usage errors must come before any connection.
        let mut full = vec!["--attestor", "http://127.0.0.1:9"];
        full.extend_from_slice(args);
        let run = stella(&full);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
    }
}

#[test]
fn consistency_unreachable_attestor() {
    let run = stella(&[
        "--attestor",
        "http://127.0.0.1:9",
        "--connect-timeout-ms",
        "500",
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "1",
        "--to",
        "2",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
}
