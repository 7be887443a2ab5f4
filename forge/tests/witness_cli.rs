//! `stella-log-forge --witness-name`: the checkpoint on disk and in every tlog-proof of the tile
//! bundle carries one cosignature/v1 line that verifies under the witness vkey written beside the
//! directory, and fixed seeds and time give identical files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stella_bundle::{Limits, open_tiles};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::note::{KeyType, NoteVerifier};

const WITNESS: &str = "witness.example/w1";
const WITNESS_TIME: u64 = 1_767_225_600;

fn forge(out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stella-log-forge"))
        .args([
            "--entries",
            "300",
            "--seed",
            "0a",
            "--origin",
            "forge.example/witness",
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run stella-log-forge")
}

fn cosigned_forge(out: &Path, bundle: &Path) {
    let time = WITNESS_TIME.to_string();
    let output = forge(
        out,
        &[
            "--witness-name",
            WITNESS,
            "--witness-seed",
            "0b",
            "--witness-time",
            &time,
            "--bundle",
            bundle.to_str().expect("UTF-8 path"),
        ],
    );
    assert!(
        output.status.success(),
        "stella-log-forge failed: {output:?}"
    );
}

/// Returns `<out><suffix>`, a file the forge writes beside the directory.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_verifier(path: &Path) -> NoteVerifier {
    let vkey = fs::read_to_string(path).expect("read vkey");
    NoteVerifier::from_vkey(vkey.trim_end()).expect("vkey parses")
}

#[test]
fn witness_cosigns_forged_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("log");
    let bundle = dir.path().join("tiles.tgz");
    cosigned_forge(&out, &bundle);

    let log = read_verifier(&beside(&out, ".vkey"));
    let witness = read_verifier(&beside(&out, ".witness.vkey"));
    assert_eq!(witness.key_type(), KeyType::CosignatureEd25519);
    assert_eq!(witness.name(), WITNESS);

    let note = fs::read(out.join("checkpoint")).expect("checkpoint");
    let verified = verify_checkpoint(&note, &[log.clone(), witness.clone()]).expect("verifies");
    let cosignatures = verified.cosignatures();
    assert_eq!(cosignatures.len(), 1);
    assert_eq!(cosignatures[0].name, WITNESS);
    assert_eq!(cosignatures[0].timestamp, Some(WITNESS_TIME));
    // A verifier without the witness key ignores the cosignature line.
    let log_only = verify_checkpoint(&note, &[log]).expect("verifies without the witness key");
    assert!(log_only.cosignatures().is_empty());

    let archive = fs::read(&bundle).expect("bundle");
    let opened = open_tiles("tiles.tgz", &archive, &Limits::default()).expect("bundle opens");
    assert_eq!(opened.logs.len(), 1);
    assert_eq!(opened.logs[0].checkpoint, note);
    assert_eq!(opened.tlog_proofs.len(), 3);
    for file in &opened.tlog_proofs {
        assert_eq!(file.proof.checkpoint, note, "{}", file.path);
    }
}

#[test]
fn witness_fixed_time_same_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outputs: Vec<PathBuf> = ["first", "second"]
        .iter()
        .map(|label| {
            let out = dir.path().join(label);
            cosigned_forge(&out, &dir.path().join(format!("{label}.tgz")));
            out
        })
        .collect();
    assert_eq!(
        fs::read(outputs[0].join("checkpoint")).expect("first"),
        fs::read(outputs[1].join("checkpoint")).expect("second"),
        "checkpoint"
    );
    assert_eq!(
        fs::read(beside(&outputs[0], ".witness.vkey")).expect("first"),
        fs::read(beside(&outputs[1], ".witness.vkey")).expect("second"),
        "witness vkey"
    );
}

#[test]
fn witness_flags_need_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: [(&str, &[&str]); 3] = [
        ("name without seed", &["--witness-name", WITNESS]),
        ("seed without name", &["--witness-seed", "0b"]),
        ("time without name", &["--witness-time", "1"]),
    ];
    for (name, args) in rows {
        let out = dir.path().join(name.replace(' ', "-"));
        let output = forge(&out, args);
        assert_eq!(output.status.code(), Some(2), "row {name}: {output:?}");
        assert!(
            !out.exists(),
            "row {name}: a rejected command must write nothing"
        );
    }

    let out = dir.path().join("bad-seed");
    let output = forge(&out, &["--witness-name", WITNESS, "--witness-seed", "xyz"]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--witness-seed \"xyz\" is not hexadecimal"),
        "{stderr}"
    );
}
