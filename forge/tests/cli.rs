//! The `stella-log-forge` binary: a tiles directory, checkpoint and vkey on
//! disk, a tile bundle that opens, and identical output for identical seeds.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use stella_bundle::{Limits, open_tiles};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::note::NoteVerifier;
use stella_verify::tiles::verify_tile_set;

fn run_forge(out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_stella-log-forge"))
        .args([
            "--entries",
            "70000",
            "--seed",
            "c0ffee",
            "--origin",
            "forge.example/cli",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .status()
        .expect("run stella-log-forge");
    assert!(status.success(), "stella-log-forge failed: {status}");
}

/// Reads every file under `dir/tile` into maps keyed by tlog-tiles path.
fn read_tiles(dir: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let mut tiles = BTreeMap::new();
    let mut bundles = BTreeMap::new();
    let mut stack = vec![dir.join("tile")];
    while let Some(next) = stack.pop() {
        for entry in fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(dir)
                .expect("below dir")
                .to_str()
                .expect("UTF-8 path")
                .to_owned();
            let data = fs::read(&path).expect("read tile");
            if key.starts_with("tile/entries/") {
                bundles.insert(key, data);
            } else {
                tiles.insert(key, data);
            }
        }
    }
    (tiles, bundles)
}


/// Returns the path of the vkey file that the forge writes for the log in `out`: `<out>.vkey`.
fn vkey_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".vkey");
    PathBuf::from(name)
}

#[test]
fn cli_ecdsa_log_with_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("log");
    let bundle = dir.path().join("tiles.tar.gz");
    run_forge(
        &out,
        &[
            "--key",
            "ecdsa-p256",
            "--bundle",
            bundle.to_str().expect("path"),
        ],
    );

    let vkey = fs::read_to_string(vkey_path(&out)).expect("vkey");
    let verifier = NoteVerifier::from_vkey(vkey.trim_end()).expect("vkey parses");
    assert_eq!(verifier.key_type().type_byte(), 0x02);
    let note = fs::read(out.join("checkpoint")).expect("checkpoint");
    let verified = verify_checkpoint(&note, &[verifier]).expect("checkpoint verifies");
    assert_eq!(verified.checkpoint().size, 70_000);

    // The tlog-tiles example size: 273 full level-0 tiles plus 0/273.p/112, 1/000, 1/001.p/17, 2/000.p/1.
    let (tiles, bundles) = read_tiles(&out);
    assert!(tiles.contains_key("tile/0/273.p/112"));
    assert!(tiles.contains_key("tile/1/001.p/17"));
    assert!(tiles.contains_key("tile/2/000.p/1"));
    let summary = verify_tile_set(&verified, &tiles, &bundles).expect("tile set verifies");
    assert_eq!(summary.entries, 70_000);

    let archive = fs::read(&bundle).expect("bundle");
    let opened = open_tiles("tiles.tar.gz", &archive, &Limits::default()).expect("bundle opens");
    assert_eq!(opened.logs.len(), 1);
    assert_eq!(opened.logs[0].origin, "forge.example/cli");
    assert_eq!(opened.logs[0].tiles, tiles);
    assert_eq!(opened.logs[0].entry_bundles, bundles);
    let indexes: Vec<u64> = opened.tlog_proofs.iter().map(|proof| proof.index).collect();
    assert_eq!(indexes.len(), 3);
    for index in [0, 35_000, 69_999] {
        assert!(indexes.contains(&index), "proof for {index} in {indexes:?}");
    }
}

#[test]
fn cli_same_seed_same_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    run_forge(&first, &[]);
    run_forge(&second, &[]);
    assert_eq!(
        fs::read(vkey_path(&first)).expect("first"),
        fs::read(vkey_path(&second)).expect("second"),
        "vkey"
    );
    assert!(!first.join("vkey").exists(), "the vkey must not be inside the tiles directory");
    for name in ["checkpoint"] {
        assert_eq!(
            fs::read(first.join(name)).expect("first"),
            fs::read(second.join(name)).expect("second"),
            "{name}"
        );
    }
    assert_eq!(read_tiles(&first), read_tiles(&second));
}
