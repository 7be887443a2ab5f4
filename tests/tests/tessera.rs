//! A real tlog-tiles log written by Tessera: packed from its directory with `rekor tiles pack
//! --tiles-dir`, imported, and every entry proven included with `stella rekor inclusion`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stella_e2e::cli::{CliOutput, exit};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv, read_file, write_file};
use stella_e2e::runbook::path_arg;
use stella_e2e::vectors::{TESSERA_ORIGIN, TESSERA_SIZE, TESSERA_VKEY, Vectors};

/// The entries of the Tessera log, in log order, read from its entry bundle.
struct TesseraLog {
    entries: Vec<Vec<u8>>,
}

static SHARED: SharedEnv<TesseraLog> = SharedEnv::new();

fn shared(vectors: &Vectors) -> EnvGuard<'static, TesseraLog> {
    SHARED.get(|| {
        let env = Env::builder("tessera").start();
        env.install_trust(&vectors.staging_trusted_root(), &[TESSERA_VKEY]);

        let tiles = env.tiles_pack(&env.scratch("tessera"), &[], &[&vectors.tessera_log()]);
        let output = env.tiles_import(&tiles);
        output.assert_ok();
        let json = output.json();
        let checkpoint =
            json.get("checkpoints")
                .and_then(Value::as_array)
                .and_then(|checkpoints| {
                    checkpoints.iter().find(|checkpoint| {
                        checkpoint.get("origin").and_then(Value::as_str) == Some(TESSERA_ORIGIN)
                    })
                });
        let Some(checkpoint) = checkpoint else {
            panic!("the import must report the Tessera checkpoint\n{output}");
        };
        assert_eq!(
            checkpoint.get("tree_size").and_then(Value::as_u64),
            Some(TESSERA_SIZE),
            "{output}"
        );
        assert_eq!(
            checkpoint.get("root_hash").and_then(Value::as_str),
            Some("rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs="),
            "{output}"
        );

        let entries = read_entry_bundle(&vectors.tessera_log().join("tile/entries/000.p/15"));
        (env, TesseraLog { entries })
    })
}

/// Splits an entry bundle: each entry is prefixed by its length as a big-endian u16.
fn read_entry_bundle(path: &Path) -> Vec<Vec<u8>> {
    let bytes = read_file(path);
    let mut entries = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let [high, low, tail @ ..] = rest else {
            panic!("truncated length prefix in {}", path.display());
        };
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        assert!(
            tail.len() >= length,
            "truncated entry in {}",
            path.display()
        );
        entries.push(tail[..length].to_vec());
        rest = &tail[length..];
    }
    entries
}

fn inclusion(env: &Env, index: u64, entry: &Path) -> CliOutput {
    env.stella().run_json([
        "rekor",
        "inclusion",
        "--origin",
        TESSERA_ORIGIN,
        "--index",
        &index.to_string(),
        "--entry",
        &path_arg(entry),
    ])
}

fn write_entry(dir: &Path, name: &str, entry: &[u8]) -> PathBuf {
    let path = dir.join(name);
    write_file(&path, entry);
    path
}

#[test]
fn tessera_entries_prove_inclusion() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let entries = &env.fixture().entries;
    assert_eq!(entries.len(), 15, "the Tessera log has 15 entries");
    assert_eq!(entries[0], b"one", "entry 0 is the word one");

    let dir = env.scratch("entries");
    for (index, entry) in (0u64..).zip(entries) {
        let path = write_entry(&dir, &format!("entry-{index}"), entry);
        let output = inclusion(&env, index, &path);
        output.assert_ok();
        assert!(output.bool_field("included"), "entry {index}\n{output}");
        let json = output.json();
        assert_eq!(
            json.pointer("/checkpoint/tree_size")
                .and_then(Value::as_u64),
            Some(TESSERA_SIZE),
            "entry {index}\n{output}"
        );
        assert_eq!(
            json.get("proof_source").and_then(Value::as_str),
            Some("tiles"),
            "entry {index}\n{output}"
        );
    }
}

#[test]
fn tessera_wrong_entry_not_included() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let entries = &env.fixture().entries;
    let dir = env.scratch("wrong-entries");

    // Named rows: (name, index, entry bytes).
    let rows: Vec<(&str, u64, Vec<u8>)> = vec![
        ("next entry at index 0", 0, entries[1].clone()),
        ("previous entry at last index", 14, entries[13].clone()),
        ("unlogged word", 3, b"sixteen".to_vec()),
        (
            "entry with trailing newline",
            5,
            [entries[5].as_slice(), b"\n"].concat(),
        ),
        ("empty entry", 7, Vec::new()),
    ];
    for (name, index, entry) in rows {
        let path = write_entry(&dir, &format!("wrong-{index}"), &entry);
        let output = inclusion(&env, index, &path);
        assert_eq!(
            output.code,
            exit::FAILED,
            "{name}: wrong entries must fail\n{output}"
        );
        assert!(!output.bool_field("included"), "{name}\n{output}");
        assert_eq!(
            output.reason_codes(),
            vec![codes::REKOR_PROOF_INVALID],
            "{name}\n{output}"
        );
        assert_eq!(
            output.str_field("proof_source"),
            "tiles",
            "{name}: the proof came from the imported tiles\n{output}"
        );
    }
}

#[test]
fn tessera_index_beyond_checkpoint_fails() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let dir = env.scratch("beyond");
    let path = write_entry(&dir, "sixteen", b"sixteen");
    let output = inclusion(&env, TESSERA_SIZE, &path);
    assert_eq!(
        output.code,
        exit::FAILED,
        "index {TESSERA_SIZE} is outside a 15-entry tree\n{output}"
    );
    assert!(!output.bool_field("included"), "{output}");
    // A checkpoint of a larger tree would close the gap, so the proof counts as missing.
    assert_eq!(
        output.reason_codes(),
        vec![codes::REKOR_TILE_MISSING],
        "{output}"
    );
    assert!(
        output.str_field("detail").contains("checkpoint"),
        "the detail must say which import closes the gap\n{output}"
    );
}

#[test]
fn tessera_unknown_origin_fails() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let entries = &env.fixture().entries;
    let dir = env.scratch("unknown-origin");
    let path = write_entry(&dir, "entry-0", &entries[0]);
    let output = env.stella().run_json([
        "rekor",
        "inclusion",
        "--origin",
        "example.com/log/other",
        "--index",
        "0",
        "--entry",
        &path_arg(&path),
    ]);
    assert_eq!(output.code, exit::FAILED, "{output}");
    assert!(!output.bool_field("included"), "{output}");
    assert_eq!(output.reason_codes(), vec![codes::REKOR_LOG_UNKNOWN], "{output}");
}
