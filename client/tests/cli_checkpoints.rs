//! `stella rekor checkpoints` against a real attestor: RocksDB in a temporary directory, served
//! in process on a loopback port, called by the built `stella` binary.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{Run, arg, stella, vectors};
use stella_bundle::{Limits, LogTilesInput, TilesInput, TrustSetInput};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle;
use stella_verify::note::NoteSigner;
use stella_verify::tiles::build_tiles;

const ORIGIN: &str = "fork.example/log";

/// An attestor running on its own tokio runtime, so that the test thread can run `stella`.
struct Attestor {
    url: String,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server task; its error as text, so that this test needs no `anyhow`.
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

    /// Runs `stella --attestor URL` with `args`.
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
    NoteSigner::ed25519(ORIGIN, &[11_u8; 32])
}

fn entries(size: usize, forged_at: Option<usize>) -> Vec<Vec<u8>> {
    (0..size)
        .map(|i| {
            if Some(i) == forged_at {
                b"forged entry".to_vec()
            } else {
                format!("entry {i}").into_bytes()
            }
        })
        .collect()
}

fn root_of(entries: &[Vec<u8>]) -> [u8; 32] {
    let leaves: Vec<_> = entries
        .iter()
        .map(|entry| merkle::leaf_hash(entry))
        .collect();
    merkle::root_from_leaves(&leaves)
}

/// Signs the checkpoint of the tree of `entries` with the log's key.
fn note(entries: &[Vec<u8>]) -> Vec<u8> {
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: u64::try_from(entries.len()).expect("size"),
        root_hash: root_of(entries),
        extensions: Vec::new(),
    };
    signer()
        .sign(&checkpoint.to_text())
        .expect("sign checkpoint")
}

/// Writes the tile bundle of the tree of `entries` to `path`.
fn write_tiles(path: &Path, entries: &[Vec<u8>]) {
    let archive = stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: note(entries),
            tiles: build_tiles(entries).expect("build tiles"),
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles");
    std::fs::write(path, archive).expect("write tile bundle");
}

/// Writes a trust root set that trusts the log's key to `path`.
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
fn checkpoints_lists_fork_evidence() {
    let Some(trusted_root) = vectors("sigstore-trust-roots/production.trusted_root.json") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = Attestor::start(&dir.path().join("attestor"));

    let trust = dir.path().join("trust.tgz");
    write_trust_set(&trust, &trusted_root);
    let run = attestor.stella(&["trust", "import", "--bundle", arg(&trust)]);
    assert_eq!(run.code, 0, "trust import: {}", run.stderr);

    let empty = attestor.stella(&["rekor", "checkpoints"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert_eq!(empty.stdout, "no checkpoints stored\n");

    let honest = entries(20, None);
    let honest_tiles = dir.path().join("honest.tgz");
    write_tiles(&honest_tiles, &honest);
    let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&honest_tiles)]);
    assert_eq!(run.code, 0, "honest import: {}", run.stderr);
    let honest_root = BASE64.encode(root_of(&honest));

    let clean = attestor.stella(&["rekor", "checkpoints"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(
        clean.stdout.starts_with(&format!("log {ORIGIN}\n")),
        "{}",
        clean.stdout
    );
    assert!(
        clean
            .stdout
            .contains(&format!("    size 20 root {honest_root} (newest)\n")),
        "{}",
        clean.stdout
    );
    assert!(
        clean
            .stdout
            .contains("  inconsistencies: 0 stored, 0 not stored\n"),
        "{}",
        clean.stdout
    );
    assert!(clean.stderr.is_empty(), "{}", clean.stderr);

    // The log signs a second tree of the same size.
    let forked = entries(20, Some(13));
    let fork_tiles = dir.path().join("fork.tgz");
    write_tiles(&fork_tiles, &forked);
    let rejected = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&fork_tiles)]);
    assert_eq!(rejected.code, 1, "{}", rejected.stderr);
    assert!(
        rejected
            .stderr
            .contains("reason code: ERR_REKOR_CHECKPOINT_INCONSISTENT"),
        "{}",
        rejected.stderr
    );

    let text = attestor.stella(&["rekor", "checkpoints"]);
    assert_eq!(text.code, 1, "evidence is stored: {}", text.stderr);
    assert!(
        text.stdout
            .contains("  inconsistencies: 1 stored, 0 not stored\n"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("same_size, rejected import fork.tgz (sha256:"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "      rejected: tile-verified checkpoint in the bundle at logs/0/checkpoint, size 20 root {}\n",
            BASE64.encode(root_of(&forked))
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "      conflicting: tile-verified checkpoint stored, size 20 root {honest_root}\n"
        )),
        "{}",
        text.stdout
    );
    // Both notes, each line quoted, signature lines included.
    let quoted = |note: &[u8]| -> String {
        String::from_utf8(note.to_vec())
            .expect("UTF-8 note")
            .lines()
            .map(|line| format!("        | {line}\n"))
            .collect()
    };
    assert!(
        text.stdout.contains(&quoted(&note(&forked))),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&quoted(&note(&honest))),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr
            .starts_with(&format!("ERR_REKOR_CHECKPOINT_INCONSISTENT: log {ORIGIN} ")),
        "{}",
        text.stderr
    );

    let json = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "checkpoints",
        "--origin",
        ORIGIN,
    ]);
    assert_eq!(json.code, 1, "{}", json.stderr);
    let object = json.json();
    assert_eq!(
        object["reason_codes"],
        serde_json::json!(["ERR_REKOR_CHECKPOINT_INCONSISTENT"])
    );
    let logs = object["logs"].as_array().expect("logs list");
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["origin"], ORIGIN);
    assert_eq!(
        log["checkpoints"],
        serde_json::json!([{"tree_size": 20, "root_hash": honest_root, "newest": true}])
    );
    assert_eq!(log["proof_checkpoints"], serde_json::json!([]));
    assert_eq!(log["inconsistencies_not_recorded"], 0);
    let records = log["inconsistencies"]
        .as_array()
        .expect("inconsistencies list");
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["kind"], "same_size");
    assert_eq!(record["bundle_file_name"], "fork.tgz");
    assert_eq!(record["origin"], ORIGIN);
    assert_eq!(record["tile_root_hash"], serde_json::Value::Null);
    assert_eq!(record["proof"], serde_json::json!([]));
    let fork_note = String::from_utf8(note(&forked)).expect("UTF-8 note");
    let honest_note = String::from_utf8(note(&honest)).expect("UTF-8 note");
    assert_eq!(record["rejected"]["note"], fork_note.as_str());
    assert_eq!(record["rejected"]["bundle_path"], "logs/0/checkpoint");
    assert_eq!(record["conflicting"]["note"], honest_note.as_str());
    assert_eq!(
        record["conflicting"]["bundle_path"],
        serde_json::Value::Null
    );
    assert_eq!(record["conflicting"]["source"], "tile-verified");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|detail| detail.starts_with("fork.tgz: logs/0/checkpoint: ")),
        "{record}"
    );

    // Another origin has nothing stored: exit 0.
    let other = attestor.stella(&["rekor", "checkpoints", "--origin", "other.example/log"]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    assert_eq!(
        other.stdout,
        "no checkpoints stored for other.example/log\n"
    );
    let other_json = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "checkpoints",
        "--origin",
        "other.example/log",
    ]);
    assert_eq!(other_json.code, 0, "{}", other_json.stderr);
    assert_eq!(
        serde_json::Value::Object(other_json.json()),
        serde_json::json!({"logs": [], "reason_codes": []})
    );

    let blank = attestor.stella(&["rekor", "checkpoints", "--origin", ""]);
    assert_eq!(blank.code, 2, "{}", blank.stderr);
}
