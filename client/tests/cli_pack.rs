//! Offline packing commands, run as the built `stella` binary over the shared vectors.

mod common;

use std::path::{Path, PathBuf};

use common::{
    A_TXT_DIGEST, Run, TESSERA_ORIGIN, TESSERA_VKEY, arg, make_fifo, production_root, stella,
    string_at, vectors,
};
use stella_bundle::{Limits, open_evidence, open_tiles, open_trust_set};

const FIXED_EXPIRY: &str = "2099-01-01T00:00:00Z";

fn conformance(case: &str) -> Option<PathBuf> {
    vectors(&format!(
        "sigstore-conformance/bundle-verify/{case}/bundle.sigstore.json"
    ))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// Runs `stella --output json rekor tiles pack` with the input options `inputs` and `--out out`.
fn tiles_pack_json(inputs: &[&str], out: &Path) -> Run {
    let mut args = vec!["--output", "json", "rekor", "tiles", "pack"];
    args.extend_from_slice(inputs);
    args.extend(["--out", arg(out)]);
    stella(&args)
}

/// Copies a vectors directory tree, so a test can alter the copy.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

#[test]
fn trust_pack_production_root() {
    let Some(root) = production_root() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = dir.path().join("first.tgz");
    let second = dir.path().join("second.tgz");

    for out in [&first, &second] {
        let run = stella(&[
            "--output",
            "json",
            "trust",
            "pack",
            "--trusted-root",
            arg(&root),
            "--note-key",
            TESSERA_VKEY,
            "--version",
            "7",
            "--expires",
            FIXED_EXPIRY,
            "--out",
            arg(out),
        ]);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let object = run.json();
        assert_eq!(object.get("version").and_then(|v| v.as_u64()), Some(7));
        assert_eq!(string_at(&object, "expires_at"), FIXED_EXPIRY);
        assert!(string_at(&object, "trust_set_digest").starts_with("sha256:"));
        assert_eq!(string_at(&object, "out"), arg(out));
    }
    let bytes = read(&first);
    assert_eq!(bytes, read(&second), "packing twice gave different bytes");

    let opened = open_trust_set("first.tgz", &bytes, &Limits::default()).expect("packed set opens");
    assert_eq!(opened.version, 7);
    assert_eq!(opened.note_verifiers.len(), 1);
    assert_eq!(
        opened.note_verifiers.first().map(|v| v.to_vkey()),
        Some(TESSERA_VKEY.to_owned())
    );
    assert_eq!(
        opened.trusted_root_json,
        read(&root),
        "trusted_root.json not stored byte for byte"
    );
}

#[test]
fn trust_pack_duration_expiry() {
    let Some(root) =
        vectors("sigstore-conformance/bundle-verify/rekor2-happy-path/trusted_root.json")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("trust.tgz");
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let run = stella(&[
        "trust",
        "pack",
        "--trusted-root",
        arg(&root),
        "--version",
        "1",
        "--expires",
        "30d",
        "--out",
        arg(&out),
    ]);
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(run.stdout.contains("version 1"), "stdout: {}", run.stdout);

    let opened =
        open_trust_set("trust.tgz", &read(&out), &Limits::default()).expect("packed set opens");
    let window = 30 * 86_400;
    assert!(
        opened.expires_at >= before + window && opened.expires_at <= after + window,
        "expires_at {}",
        opened.expires_at
    );
}

#[test]
fn trust_pack_rejects_bad_inputs() {
    let Some(bundle) = conformance("rekor2-happy-path") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("trust.tgz");
    let missing = dir.path().join("absent.json");

    let run = stella(&[
        "--output",
        "json",
        "trust",
        "pack",
        "--trusted-root",
        arg(&bundle),
        "--version",
        "1",
        "--expires",
        FIXED_EXPIRY,
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 1, "not a trusted root; stderr: {}", run.stderr);
    assert_eq!(
        string_at(&run.json(), "reason_code"),
        "ERR_TRUST_ROOT_INVALID"
    );
    assert!(
        run.stderr.contains(arg(&bundle)),
        "stderr lacks the file: {}",
        run.stderr
    );
    assert!(!out.exists(), "a rejected pack wrote its output");

    let run = stella(&[
        "trust",
        "pack",
        "--trusted-root",
        arg(&missing),
        "--version",
        "1",
        "--expires",
        FIXED_EXPIRY,
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 5, "missing file; stderr: {}", run.stderr);
    assert!(run.stderr.contains("absent.json"), "stderr: {}", run.stderr);

    let run = stella(&[
        "trust",
        "pack",
        "--trusted-root",
        arg(&bundle),
        "--version",
        "1",
        "--expires",
        "2001-01-01T00:00:00Z",
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 2, "past expiry; stderr: {}", run.stderr);
}

#[test]
fn tiles_pack_tessera_directory() {
    let Some(log) = vectors("tessera-log") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = dir.path().join("first.tgz");
    let second = dir.path().join("second.tgz");

    for out in [&first, &second] {
        let run = tiles_pack_json(&["--tiles-dir", arg(&log)], out);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let object = run.json();
        let logs = object
            .get("logs")
            .and_then(|v| v.as_array())
            .expect("logs list");
        assert_eq!(logs.len(), 1);
        let entry = logs
            .first()
            .and_then(|v| v.as_object())
            .expect("log object");
        assert_eq!(string_at(entry, "origin"), TESSERA_ORIGIN);
        assert_eq!(entry.get("tree_size").and_then(|v| v.as_u64()), Some(15));
        assert_eq!(
            string_at(entry, "root_hash"),
            "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs="
        );
        // checkpoint.0 to checkpoint.15, and tiles and entry bundles .p/1 to .p/14 of smaller trees.
        let skipped = object
            .get("skipped")
            .and_then(|v| v.as_array())
            .expect("skipped list");
        assert_eq!(skipped.len(), 16 + 14 + 14, "skipped: {skipped:?}");
    }
    let bytes = read(&first);
    assert_eq!(bytes, read(&second), "packing twice gave different bytes");

    let opened = open_tiles("first.tgz", &bytes, &Limits::default()).expect("packed bundle opens");
    let packed = opened.logs.first().expect("one log");
    assert_eq!(packed.origin, TESSERA_ORIGIN);
    assert_eq!(
        packed.checkpoint,
        read(&log.join("checkpoint")),
        "checkpoint not verbatim"
    );
    assert_eq!(packed.tiles.keys().collect::<Vec<_>>(), ["tile/0/000.p/15"]);
    assert_eq!(
        packed.entry_bundles.keys().collect::<Vec<_>>(),
        ["tile/entries/000.p/15"]
    );
}

#[test]
fn tiles_pack_rejects_damaged_directory() {
    let Some(log) = vectors("tessera-log") else {
        return;
    };
    type Damage = Box<dyn Fn(&Path)>;
    // (name, damage to the copied directory, expected reason code, text the message must contain)
    let rows: Vec<(&str, Damage, &str, &str)> = vec![
        (
            "unexpected file",
            Box::new(|copy: &Path| {
                std::fs::write(copy.join("notes.txt"), b"hello").expect("write")
            }),
            "ERR_REKOR_TILE_INVALID",
            "notes.txt",
        ),
        (
            "missing right-edge tile",
            Box::new(|copy: &Path| {
                std::fs::remove_file(copy.join("tile/0/000.p/15")).expect("remove")
            }),
            "ERR_REKOR_TILE_MISSING",
            "tile/0/000.p/15",
        ),
        (
            "corrupted tile",
            Box::new(|copy: &Path| {
                let path = copy.join("tile/0/000.p/15");
                let mut bytes = std::fs::read(&path).expect("read tile");
                if let Some(byte) = bytes.first_mut() {
                    *byte ^= 1;
                }
                std::fs::write(&path, bytes).expect("write tile");
            }),
            "ERR_REKOR_ROOT_MISMATCH",
            "tessera",
        ),
        (
            "tile beyond checkpoint",
            Box::new(|copy: &Path| {
                std::fs::copy(copy.join("checkpoint.14"), copy.join("checkpoint"))
                    .map(drop)
                    .expect("copy")
            }),
            "ERR_REKOR_TILE_INVALID",
            "tile/0/000.p/15",
        ),
        (
            "no checkpoint",
            Box::new(|copy: &Path| std::fs::remove_file(copy.join("checkpoint")).expect("remove")),
            "ERR_REKOR_CHECKPOINT_INVALID",
            "checkpoint",
        ),
    ];
    for (name, damage, code, named) in rows {
        let dir = tempfile::tempdir().expect("temporary directory");
        let copy = dir.path().join("tessera");
        copy_tree(&log, &copy);
        damage(&copy);
        let out = dir.path().join("tiles.tgz");
        let run = tiles_pack_json(&["--tiles-dir", arg(&copy)], &out);
        assert_eq!(run.code, 1, "row {name}: stderr: {}", run.stderr);
        assert_eq!(
            string_at(&run.json(), "reason_code"),
            code,
            "row {name}: stderr: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(named),
            "row {name}: stderr lacks {named}: {}",
            run.stderr
        );
        assert!(
            !out.exists(),
            "row {name}: a rejected pack wrote its output"
        );
    }
}

#[test]
fn tiles_pack_sigstore_bundles() {
    let cases = [
        (
            "rekor2-happy-path",
            "log2025-alpha1.rekor.sigstage.dev",
            735_u64,
        ),
        (
            "rekor2-dsse-happy-path",
            "log2025-alpha3.rekor.sigstage.dev",
            4_026_478,
        ),
        (
            "rekor2-timestamp-with-embedded-cert",
            "log2025-alpha1.rekor.sigstage.dev",
            29_469,
        ),
        (
            "rekor2-timestamp-with-expired-cert-chain",
            "log2025-alpha1.rekor.sigstage.dev",
            32_511,
        ),
        (
            "rekor2-timestamp-without-embedded-cert",
            "log2025-alpha1.rekor.sigstage.dev",
            29_472,
        ),
    ];
    let mut files = Vec::new();
    for (case, _, _) in cases {
        let Some(file) = conformance(case) else {
            return;
        };
        files.push(file);
    }
    let Some(log) = vectors("tessera-log") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = dir.path().join("first.tgz");
    let second = dir.path().join("second.tgz");

    for out in [&first, &second] {
        let mut inputs = vec!["--tiles-dir", arg(&log)];
        for file in &files {
            inputs.extend(["--sigstore-bundle", arg(file)]);
        }
        let run = tiles_pack_json(&inputs, out);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let proofs = run
            .json()
            .get("tlog_proofs")
            .and_then(|v| v.as_array())
            .cloned()
            .expect("tlog_proofs list");
        assert_eq!(proofs.len(), cases.len(), "proofs: {proofs:?}");
    }
    let bytes = read(&first);
    assert_eq!(bytes, read(&second), "packing twice gave different bytes");

    let opened = open_tiles("first.tgz", &bytes, &Limits::default()).expect("packed bundle opens");
    assert_eq!(opened.logs.len(), 1, "the tessera log");
    assert_eq!(opened.tlog_proofs.len(), cases.len());
    for ((case, origin, index), file) in cases.iter().zip(&files) {
        let proof = opened
            .tlog_proofs
            .iter()
            .find(|proof| proof.origin == *origin && proof.index == *index)
            .unwrap_or_else(|| panic!("case {case}: no proof for {origin} index {index}"));
        let json: serde_json::Value = serde_json::from_slice(&read(file)).expect("bundle JSON");
        let entry = &json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
        let envelope = entry["checkpoint"]["envelope"].as_str().expect("envelope");
        assert_eq!(
            proof.proof.checkpoint,
            envelope.as_bytes(),
            "case {case}: checkpoint not verbatim"
        );
        let hashes = entry["hashes"].as_array().expect("hashes");
        assert_eq!(
            proof.proof.hashes.len(),
            hashes.len(),
            "case {case}: hash count"
        );
        assert_eq!(proof.proof.extra, None, "case {case}");
    }
}

#[test]
fn tiles_pack_rejects_bad_bundles() {
    let rows = [
        // The bundle parser rejects a v0.3 bundle without an inclusion proof as a whole.
        (
            "no inclusion proof",
            "rekor2-no-inclusion-proof_fail",
            "ERR_SIGSTORE_BUNDLE_INVALID",
        ),
        (
            "checkpoint without root",
            "rekor2-checkpoint-missing-root-hash_fail",
            "ERR_REKOR_CHECKPOINT_INVALID",
        ),
        (
            "rekor v1 shard index",
            "happy-path-v0.3",
            "ERR_REKOR_ENTRY_UNSUPPORTED",
        ),
        (
            "malformed json",
            "bundle-malformed-json_fail",
            "ERR_SIGSTORE_BUNDLE_INVALID",
        ),
    ];
    for (name, case, code) in rows {
        let Some(file) = conformance(case) else {
            return;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("tiles.tgz");
        let run = tiles_pack_json(&["--sigstore-bundle", arg(&file)], &out);
        assert_eq!(run.code, 1, "row {name}: stderr: {}", run.stderr);
        assert_eq!(
            string_at(&run.json(), "reason_code"),
            code,
            "row {name}: stderr: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(case),
            "row {name}: stderr does not name the file: {}",
            run.stderr
        );
    }
}

#[test]
fn tiles_pack_rejects_altered_proof() {
    let Some(file) = conformance("rekor2-happy-path") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut json: serde_json::Value = serde_json::from_slice(&read(&file)).expect("bundle JSON");
    let hash = &mut json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][2];
    // Another valid base64 SHA-256 value in place of the third sibling hash.
    *hash = serde_json::Value::from("JW27adKabAL7le2rFDSEUhPM94lzNjlhqi1BDFCFLCQ=");
    let altered = dir.path().join("altered.sigstore.json");
    std::fs::write(&altered, serde_json::to_vec(&json).expect("serialize")).expect("write");

    let out = dir.path().join("tiles.tgz");
    let run = tiles_pack_json(&["--sigstore-bundle", arg(&altered)], &out);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_eq!(
        string_at(&run.json(), "reason_code"),
        "ERR_REKOR_PROOF_INVALID"
    );
    assert!(
        run.stderr.contains("altered.sigstore.json"),
        "stderr: {}",
        run.stderr
    );
    assert!(!out.exists());
}

#[test]
fn tiles_pack_conflicting_checkpoints() {
    let (Some(plain), Some(cosigned)) = (
        conformance("rekor2-happy-path"),
        conformance("rekor2-checkpoint-cosigned"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("tiles.tgz");
    let run = stella(&[
        "rekor",
        "tiles",
        "pack",
        "--sigstore-bundle",
        arg(&plain),
        "--sigstore-bundle",
        arg(&cosigned),
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("rekor2-happy-path")
            && run.stderr.contains("rekor2-checkpoint-cosigned"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ERR_REKOR_PROOF_INVALID"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn evidence_pack_derives_dsse_subjects() {
    let Some(file) = conformance("rekor2-dsse-happy-path") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = dir.path().join("first.tgz");
    let second = dir.path().join("second.tgz");

    let mut ids = Vec::new();
    for out in [&first, &second] {
        let run = stella(&[
            "--output",
            "json",
            "evidence",
            "pack",
            "--sigstore-bundle",
            arg(&file),
            "--out",
            arg(out),
        ]);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        let object = run.json();
        let subjects = object.get("subjects").cloned().expect("subjects");
        assert_eq!(
            subjects,
            serde_json::json!([{"name": "a.txt", "digest": A_TXT_DIGEST}])
        );
        ids.push(string_at(&object, "bundle_id").to_owned());
    }
    let bytes = read(&first);
    assert_eq!(bytes, read(&second), "packing twice gave different bytes");

    let opened =
        open_evidence("first.tgz", &bytes, &Limits::default()).expect("packed bundle opens");
    assert_eq!(ids, [opened.id.clone(), opened.id.clone()]);
    assert_eq!(
        opened.sigstore_bundles.keys().collect::<Vec<_>>(),
        ["sigstore/bundle.sigstore.json"]
    );
    assert_eq!(
        opened.sigstore_bundles.values().next(),
        Some(&read(&file)),
        "bundle not stored verbatim"
    );
}

#[test]
fn evidence_pack_message_needs_subject() {
    let (Some(message), Some(dsse)) = (
        conformance("rekor2-happy-path"),
        conformance("rekor2-dsse-happy-path"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("evidence.tgz");

    let run = stella(&[
        "evidence",
        "pack",
        "--sigstore-bundle",
        arg(&message),
        "--sigstore-bundle",
        arg(&dsse),
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("--subject") && run.stderr.contains("rekor2-happy-path"),
        "stderr: {}",
        run.stderr
    );
    assert!(!out.exists());

    let subject = format!("a.txt={A_TXT_DIGEST}");
    let run = stella(&[
        "--output",
        "json",
        "evidence",
        "pack",
        "--sigstore-bundle",
        arg(&message),
        "--sigstore-bundle",
        arg(&dsse),
        "--subject",
        &subject,
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let object = run.json();
    assert!(string_at(&object, "bundle_id").starts_with("sha256:"));
    let opened = open_evidence("evidence.tgz", &read(&out), &Limits::default())
        .expect("packed bundle opens");
    // Both files are named bundle.sigstore.json, so each name carries its content digest.
    assert_eq!(opened.sigstore_bundles.len(), 2);
    for path in opened.sigstore_bundles.keys() {
        assert!(
            path.starts_with("sigstore/bundle-") && path.ends_with(".sigstore.json"),
            "path {path}"
        );
    }
}

#[test]
fn evidence_pack_rejects_wrong_subject() {
    let Some(message) = conformance("rekor2-happy-path") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("evidence.tgz");
    let wrong = format!("other=sha256:{}", "0".repeat(64));
    let run = stella(&[
        "--output",
        "json",
        "evidence",
        "pack",
        "--sigstore-bundle",
        arg(&message),
        "--subject",
        &wrong,
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_eq!(
        string_at(&run.json(), "reason_code"),
        "ERR_SUBJECT_MISMATCH"
    );
    assert!(
        run.stderr.contains("rekor2-happy-path"),
        "stderr: {}",
        run.stderr
    );
}

/// `--out` naming an existing FIFO or symbolic link fails with exit 5 before anything is packed
/// into place, and leaves the path as it was. Renaming over it would replace it.
#[cfg(unix)]
#[test]
fn trust_pack_rejects_special_out() {
    use std::os::unix::fs::FileTypeExt;

    let Some(root) = production_root() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let fifo = dir.path().join("fifo.tgz");
    make_fifo(&fifo);
    let target = dir.path().join("target.txt");
    std::fs::write(&target, b"keep").expect("write target");
    let link = dir.path().join("link.tgz");
    std::os::unix::fs::symlink(&target, &link).expect("create symbolic link");

    let rows = [
        ("fifo", &fifo, "a FIFO (named pipe)"),
        ("symbolic link", &link, "a symbolic link"),
    ];
    for (name, out, kind) in rows {
        let run = stella(&[
            "trust",
            "pack",
            "--trusted-root",
            arg(&root),
            "--version",
            "1",
            "--expires",
            FIXED_EXPIRY,
            "--out",
            arg(out),
        ]);
        assert_eq!(run.code, 5, "row {name}: stderr: {}", run.stderr);
        let expected = format!(
            "cannot write {}: it is {kind}, not a regular file",
            out.display()
        );
        assert!(
            run.stderr.contains(&expected),
            "row {name}: stderr: {}",
            run.stderr
        );
    }
    let fifo_type = std::fs::symlink_metadata(&fifo).expect("FIFO").file_type();
    assert!(fifo_type.is_fifo());
    let link_type = std::fs::symlink_metadata(&link).expect("link").file_type();
    assert!(link_type.is_symlink());
    assert_eq!(std::fs::read(&target).expect("read target"), b"keep");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains(".tmp-")),
        "{names:?}"
    );
}
