//! `stella rekor inclusion-batch` against a real attestor: RocksDB in a temporary directory,
//! served in process on a loopback port, called by the built `stella` binary. The log is the
//! 15-entry log that Tessera's POSIX driver wrote (`vectors/tessera-log`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::attestor::Attestor;
use common::bundles::write_tile_bundle;
use common::{Run, TESSERA_ORIGIN, TESSERA_VKEY, arg, production_root, stella, vectors};

const TESSERA_ROOT_15: &str = "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs=";
/// The log's entries, spelt as Tessera's test data spells them.
const ENTRY_WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

/// Starts an attestor and imports the Tessera trust set and its tiles at size 15 with `stella`.
fn tessera_attestor(dir: &Path, trusted_root: &Path, log: &Path) -> Attestor {
    let attestor = Attestor::start_trusting(dir, trusted_root, &[TESSERA_VKEY.to_owned()]);

    let read = |relative: &str| std::fs::read(log.join(relative)).expect("read Tessera file");
    let mut tiles = BTreeMap::new();
    tiles.insert("tile/0/000.p/15".to_owned(), read("tile/0/000.p/15"));
    tiles.insert(
        "tile/entries/000.p/15".to_owned(),
        read("tile/entries/000.p/15"),
    );
    let tiles_path = dir.join("tessera-15.tgz");
    write_tile_bundle(&tiles_path, read("checkpoint.15"), tiles);
    let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&tiles_path)]);
    assert_eq!(run.code, 0, "tiles import: {}", run.stderr);
    attestor
}

/// Runs `stella rekor inclusion-batch` on the Tessera log against `attestor`, with JSON output
/// when `json` is set.
fn inclusion_batch(attestor: &Attestor, entries: &Path, json: bool) -> Run {
    let mut args = Vec::new();
    if json {
        args.extend(["--output", "json"]);
    }
    args.extend([
        "rekor",
        "inclusion-batch",
        "--origin",
        TESSERA_ORIGIN,
        "--entries-file",
        arg(entries),
    ]);
    attestor.stella(&args)
}

fn entry_line(index: u64, entry: &[u8]) -> String {
    format!(
        "{{\"index\": {index}, \"entry_base64\": \"{}\"}}\n",
        BASE64.encode(entry)
    )
}

fn all_entries_file(path: &Path) {
    let text: String = (0u64..)
        .zip(ENTRY_WORDS)
        .map(|(index, word)| entry_line(index, word.as_bytes()))
        .collect();
    std::fs::write(path, text).expect("write entries file");
}

#[test]
fn batch_all_entries_included() {
    let (Some(trusted_root), Some(log)) = (production_root(), vectors("tessera-log")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = tessera_attestor(dir.path(), &trusted_root, &log);
    let entries = dir.path().join("entries.jsonl");
    all_entries_file(&entries);

    let run = inclusion_batch(&attestor, &entries, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 16, "{}", run.stdout);
    for (index, line) in lines.iter().take(15).enumerate() {
        let expected = format!(
            "line {} index {index}: included at tree size 15 root {TESSERA_ROOT_15} (proof from tiles)",
            index + 1
        );
        assert_eq!(*line, expected);
    }
    assert_eq!(
        lines.last().copied(),
        Some(format!("15 of 15 entries of {TESSERA_ORIGIN} included").as_str())
    );

    let json = inclusion_batch(&attestor, &entries, true);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let object = json.json();
    assert_eq!(object["total"], 15);
    assert_eq!(object["included"], 15);
    assert_eq!(object["all_included"], true);
    let results = object["results"].as_array().expect("results array");
    assert_eq!(results.len(), 15);
    let last = results.last().expect("last result");
    assert_eq!(last["line"], 15);
    assert_eq!(last["index"], 14);
    assert_eq!(last["checkpoint"]["root_hash"], TESSERA_ROOT_15);
}

#[test]
fn batch_wrong_entry_exits_one() {
    let (Some(trusted_root), Some(log)) = (production_root(), vectors("tessera-log")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = tessera_attestor(dir.path(), &trusted_root, &log);
    let entries = dir.path().join("entries.jsonl");
    let text = [
        entry_line(0, b"one"),
        entry_line(3, b"three"),
        "\n".to_owned(),
        entry_line(15, b"sixteen"),
        entry_line(0, &vec![b'x'; 65_536]),
        entry_line(14, b"fivten"),
    ]
    .concat();
    std::fs::write(&entries, text).expect("write entries file");

    let run = inclusion_batch(&attestor, &entries, true);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let object = run.json();
    assert_eq!(object["total"], 5);
    assert_eq!(object["included"], 2);
    assert_eq!(object["all_included"], false);
    let results = object["results"].as_array().expect("results array");
    // (file line, index, included, reason codes)
    let expected = [
        (1, 0, true, vec![]),
        (2, 3, false, vec!["ERR_REKOR_PROOF_INVALID"]),
        (4, 15, false, vec!["ERR_REKOR_TILE_MISSING"]),
        (5, 0, false, vec!["ERR_BUNDLE_TOO_LARGE"]),
        (6, 14, true, vec![]),
    ];
    assert_eq!(results.len(), expected.len());
    for (result, (line, index, included, codes)) in results.iter().zip(expected) {
        assert_eq!(result["line"], line, "line {line}");
        assert_eq!(result["index"], index, "line {line}");
        assert_eq!(result["included"], included, "line {line}");
        assert_eq!(
            result["reason_codes"],
            serde_json::json!(codes),
            "line {line}"
        );
    }

    let text = inclusion_batch(&attestor, &entries, false);
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("line 2 index 3: not included: ERR_REKOR_PROOF_INVALID: "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .ends_with(&format!("2 of 5 entries of {TESSERA_ORIGIN} included\n")),
        "{}",
        text.stdout
    );
}

#[test]
fn batch_without_trust_set_fails() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = Attestor::start(&dir.path().join("attestor"));
    let entries = dir.path().join("entries.jsonl");
    std::fs::write(&entries, entry_line(0, b"one")).expect("write entries file");

    let run = inclusion_batch(&attestor, &entries, true);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["reason_code"], "ERR_TRUST_ROOT_MISSING");
}

#[test]
fn batch_bad_file_names_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let entries = dir.path().join("entries.jsonl");
    std::fs::write(
        &entries,
        format!("{}{{\"index\": 1}}\n", entry_line(0, b"one")),
    )
    .expect("write entries file");

    // Nothing listens at the URL: the file is rejected before any connection.
    let url = common::closed_port_url();
    let run = stella(&[
        "--attestor",
        &url,
        "rekor",
        "inclusion-batch",
        "--origin",
        TESSERA_ORIGIN,
        "--entries-file",
        arg(&entries),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let expected = format!("error: {}: line 2: ", entries.display());
    assert!(run.stderr.starts_with(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("missing field `entry_base64`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}
