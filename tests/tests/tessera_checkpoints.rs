//! Every checkpoint of the Tessera test log, sizes 1 to 15, imported as its own tile bundle
//! into three attestors: in log order, in a fixed shuffled order and in descending order.
//!
//! After each import the newest checkpoint must be the largest imported so far, every smaller
//! one must be kept as history, and every entry below the newest size must prove inclusion while
//! the entry at that size must not. At the end the three attestors must give byte-identical
//! outputs, because the order of imports must not change what the cache proves.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use stella_e2e::cli::{CliOutput, Stella, exit};
use stella_e2e::codes;
use stella_e2e::env::{Env, create_dir, read_file, write_file};
use stella_e2e::forge::read_entry_bundle;
use stella_e2e::runbook::path_arg;
use stella_e2e::vectors::{TESSERA_ORIGIN, TESSERA_SIZE, TESSERA_VKEY, Vectors};

/// A fixed shuffle of 1 to 15 that grows, shrinks and grows again.
const SHUFFLED: [u64; 15] = [9, 3, 14, 1, 7, 12, 5, 15, 2, 10, 6, 13, 4, 11, 8];

/// One tile bundle per checkpoint size of the Tessera log.
struct SizeBundle {
    size: u64,
    /// Root hash (base64) on the third line of `checkpoint.<size>`.
    root_hash: String,
    bundle: PathBuf,
}

/// Outputs of an attestor once every bundle is imported.
struct FinalAnswers {
    checkpoints_stdout: String,
    inclusion_results: Value,
}

/// Builds a tiles directory for checkpoint `size` from symbolic links into the Tessera log,
/// holding only that checkpoint's partial tile and entry bundle, and packs it.
fn pack_size(stella: &Stella, log: &Path, work: &Path, size: u64) -> SizeBundle {
    let dir = work.join(format!("tessera-{size}"));
    for sub in ["tile/0/000.p", "tile/entries/000.p"] {
        create_dir(&dir.join(sub));
    }
    let links = [
        (format!("checkpoint.{size}"), "checkpoint".to_owned()),
        (format!("tile/0/000.p/{size}"), format!("tile/0/000.p/{size}")),
        (
            format!("tile/entries/000.p/{size}"),
            format!("tile/entries/000.p/{size}"),
        ),
    ];
    for (target, link) in links {
        if let Err(err) = std::os::unix::fs::symlink(log.join(&target), dir.join(&link)) {
            panic!("cannot link {} to {target}: {err}", dir.join(&link).display());
        }
    }

    let bundle = work.join(format!("tessera-{size}.tgz"));
    let output = stella.run_json([
        "rekor",
        "tiles",
        "pack",
        "--tiles-dir",
        &path_arg(&dir),
        "--out",
        &path_arg(&bundle),
    ]);
    output.assert_ok();
    assert_eq!(
        output.json().pointer("/logs/0/tree_size").and_then(Value::as_u64),
        Some(size),
        "{output}"
    );

    let note = String::from_utf8_lossy(&read_file(&log.join(format!("checkpoint.{size}")))).into_owned();
    let Some(root_hash) = note.lines().nth(2) else {
        panic!("checkpoint.{size} has no root hash line:\n{note}");
    };
    SizeBundle {
        size,
        root_hash: root_hash.to_owned(),
        bundle,
    }
}

/// Writes the entries file for `stella rekor inclusion-batch`: entries 0 to `newest - 1`, then
/// the entry at `newest` when the log has one, which no imported checkpoint covers yet.
fn write_entries_file(path: &Path, entries: &[Vec<u8>], newest: u64) {
    let mut lines = String::new();
    for (index, entry) in (0u64..).zip(entries).take_while(|(index, _)| *index <= newest) {
        lines.push_str(&format!(
            "{{\"index\": {index}, \"entry_base64\": \"{}\"}}\n",
            BASE64.encode(entry)
        ));
    }
    write_file(path, lines.as_bytes());
}

fn checkpoints(env: &Env) -> CliOutput {
    env.stella()
        .run_json(["rekor", "checkpoints", "--origin", TESSERA_ORIGIN])
}

/// Checks the stored checkpoints after importing the sizes in `imported`.
fn check_history(env: &Env, bundles: &[SizeBundle], imported: &[u64], label: &str) -> CliOutput {
    let output = checkpoints(env);
    output.assert_ok();
    assert!(output.reason_codes().is_empty(), "{label}\n{output}");
    let json = output.json();
    let Some(logs) = json.get("logs").and_then(Value::as_array) else {
        panic!("{label}: no `logs` array\n{output}");
    };
    assert_eq!(logs.len(), 1, "{label}: one log\n{output}");
    let log = &logs[0];
    assert_eq!(
        log.get("origin").and_then(Value::as_str),
        Some(TESSERA_ORIGIN),
        "{label}\n{output}"
    );
    assert_eq!(
        log.get("inconsistencies").and_then(Value::as_array).map(Vec::len),
        Some(0),
        "{label}: no inconsistency\n{output}"
    );

    let mut expected: Vec<u64> = imported.to_vec();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    let Some(stored) = log.get("checkpoints").and_then(Value::as_array) else {
        panic!("{label}: no `checkpoints` array\n{output}");
    };
    let sizes: Vec<u64> = stored
        .iter()
        .filter_map(|checkpoint| checkpoint.get("tree_size").and_then(Value::as_u64))
        .collect();
    assert_eq!(
        sizes, expected,
        "{label}: every imported checkpoint is kept, largest first\n{output}"
    );
    for (position, checkpoint) in stored.iter().enumerate() {
        let size = sizes[position];
        let newest = checkpoint.get("newest").and_then(Value::as_bool);
        assert_eq!(
            newest,
            Some(position == 0),
            "{label}: only the largest checkpoint is newest (size {size})\n{output}"
        );
        let Some(bundle) = bundles.iter().find(|bundle| bundle.size == size) else {
            panic!("{label}: size {size} was never imported\n{output}");
        };
        assert_eq!(
            checkpoint.get("root_hash").and_then(Value::as_str),
            Some(bundle.root_hash.as_str()),
            "{label}: root of size {size}\n{output}"
        );
    }
    output
}

/// Checks entries 0 to `newest - 1` prove inclusion at tree size `newest`, and the entry at
/// `newest` (when the log has one) fails as missing. Returns the per-entry results.
fn check_inclusion(env: &Env, entries: &[Vec<u8>], newest: u64, label: &str) -> Value {
    let file = env.root().join("entries.jsonl");
    write_entries_file(&file, entries, newest);
    let output = env.stella().run_json([
        "rekor",
        "inclusion-batch",
        "--origin",
        TESSERA_ORIGIN,
        "--entries-file",
        &path_arg(&file),
    ]);
    let covers_next = newest < TESSERA_SIZE;
    output.assert_code(if covers_next { exit::FAILED } else { exit::OK });
    let json = output.json();
    let Some(results) = json.get("results").and_then(Value::as_array) else {
        panic!("{label}: no `results` array\n{output}");
    };
    let expected_count = if covers_next { newest + 1 } else { newest };
    assert_eq!(results.len() as u64, expected_count, "{label}\n{output}");

    for result in results {
        let index = result.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX);
        let included = result.get("included").and_then(Value::as_bool);
        if index < newest {
            assert_eq!(included, Some(true), "{label}: entry {index}\n{output}");
            assert_eq!(
                result.pointer("/checkpoint/tree_size").and_then(Value::as_u64),
                Some(newest),
                "{label}: entry {index} is proven at the newest size\n{output}"
            );
            assert_eq!(
                result.get("proof_source").and_then(Value::as_str),
                Some("tiles"),
                "{label}: entry {index}\n{output}"
            );
        } else {
            assert_eq!(index, newest, "{label}: unexpected row\n{output}");
            assert_eq!(included, Some(false), "{label}: entry {index}\n{output}");
            assert_eq!(
                result.get("reason_codes"),
                Some(&Value::from(vec![codes::REKOR_TILE_MISSING])),
                "{label}: entry {index} lies beyond every imported checkpoint\n{output}"
            );
        }
    }
    json.get("results").cloned().unwrap_or(Value::Null)
}

/// Imports the bundles of `order` one by one into a fresh attestor, checking after each.
fn import_in_order(vectors: &Vectors, bundles: &[SizeBundle], entries: &[Vec<u8>], name: &str, order: &[u64]) -> FinalAnswers {
    let env = Env::builder(name).start();
    env.install_trust(&vectors.staging_trusted_root(), &[TESSERA_VKEY]);

    let mut imported: Vec<u64> = Vec::new();
    let mut last_checkpoints = None;
    for &size in order {
        let label = format!("{name}: after importing {size} (imported before: {imported:?})");
        let Some(bundle) = bundles.iter().find(|bundle| bundle.size == size) else {
            panic!("no bundle for size {size}");
        };
        let output = env.tiles_import(&bundle.bundle);
        output.assert_ok();
        assert!(!output.bool_field("already_imported"), "{label}\n{output}");
        assert_eq!(
            output.json().pointer("/checkpoints/0/tree_size").and_then(Value::as_u64),
            Some(size),
            "{label}\n{output}"
        );

        imported.push(size);
        last_checkpoints = Some(check_history(&env, bundles, &imported, &label));
        let newest = imported.iter().copied().max().unwrap_or(0);
        check_inclusion(&env, entries, newest, &label);
    }

    let Some(checkpoints) = last_checkpoints else {
        panic!("{name}: no bundle imported");
    };
    let inclusion_results = check_inclusion(&env, entries, TESSERA_SIZE, name);
    FinalAnswers {
        checkpoints_stdout: checkpoints.stdout,
        inclusion_results,
    }
}

#[test]
fn tessera_checkpoints_any_order() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let log = vectors.tessera_log();
    let entries = read_entry_bundle(&log.join("tile/entries/000.p/15"));
    assert_eq!(entries.len() as u64, TESSERA_SIZE, "the Tessera log has 15 entries");

    let work = tempfile::tempdir().unwrap_or_else(|err| panic!("cannot create a temporary directory: {err}"));
    let stella = Stella::offline(work.path());
    let bundles: Vec<SizeBundle> = (1..=TESSERA_SIZE)
        .map(|size| pack_size(&stella, &log, work.path(), size))
        .collect();

    let ascending: Vec<u64> = (1..=TESSERA_SIZE).collect();
    let descending: Vec<u64> = (1..=TESSERA_SIZE).rev().collect();
    let mut shuffled = SHUFFLED.to_vec();
    shuffled.sort_unstable();
    assert_eq!(shuffled, ascending, "the shuffle holds every size once");

    let orders: [(&str, &[u64]); 3] = [
        ("tessera-ascending", &ascending),
        ("tessera-shuffled", &SHUFFLED),
        ("tessera-descending", &descending),
    ];
    let answers: Vec<(&str, FinalAnswers)> = orders
        .iter()
        .map(|(name, order)| (*name, import_in_order(&vectors, &bundles, &entries, name, order)))
        .collect();

    let (first_name, first) = &answers[0];
    for (name, answer) in &answers[1..] {
        assert_eq!(
            answer.checkpoints_stdout, first.checkpoints_stdout,
            "`stella rekor checkpoints` differs between {first_name} and {name}"
        );
        assert_eq!(
            answer.inclusion_results, first.inclusion_results,
            "`stella rekor inclusion-batch` differs between {first_name} and {name}"
        );
    }
}
