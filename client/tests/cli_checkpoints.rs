//! `stella rekor checkpoints` against a real attestor: RocksDB in a temporary directory, served
//! in process on a loopback port, called by the built `stella` binary.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::attestor::Attestor;
use common::bundles::{SignedLog, numbered_entries, root_of};
use common::{arg, production_root};

const ORIGIN: &str = "fork.example/log";

/// The entries `entry 0` to `entry {size - 1}`, with `forged entry` in place of entry
/// `forged_at`.
fn entries(size: usize, forged_at: Option<usize>) -> Vec<Vec<u8>> {
    let mut entries = numbered_entries(size);
    if let Some(entry) = forged_at.and_then(|index| entries.get_mut(index)) {
        *entry = b"forged entry".to_vec();
    }
    entries
}

#[test]
fn checkpoints_lists_fork_evidence() {
    let Some(trusted_root) = production_root() else {
        return;
    };
    let test_log = SignedLog::new(ORIGIN, 11);
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = Attestor::start_trusting(dir.path(), &trusted_root, &[test_log.vkey()]);

    let empty = attestor.stella(&["rekor", "checkpoints"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert_eq!(empty.stdout, "no checkpoints stored\n");

    let honest = entries(20, None);
    let honest_tiles = dir.path().join("honest.tgz");
    test_log.write_tiles(&honest_tiles, &honest);
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
    test_log.write_tiles(&fork_tiles, &forked);
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
        text.stdout.contains(&quoted(&test_log.note(&forked))),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&quoted(&test_log.note(&honest))),
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
    let fork_note = String::from_utf8(test_log.note(&forked)).expect("UTF-8 note");
    let honest_note = String::from_utf8(test_log.note(&honest)).expect("UTF-8 note");
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
