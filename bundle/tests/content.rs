//! Bundles whose archive and manifest are sound but whose content or layout is wrong. They are
//! forged with the public manifest API, bypassing the packers' input checks.

mod common;

use std::collections::BTreeMap;

use stella_bundle::{
    BundleError, FileEntry, Limits, LogRef, MANIFEST_PATH, Manifest, ManifestFields, open_evidence,
    open_trust_set, pack_evidence, pack_tiles, pack_trust_set, write_archive,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};

use common::{
    EXPIRES_AT, TESSERA_VKEY, evidence_input, open_tiles_both, sample_kms_pem, tessera_tlog_proof,
    trust_input, vector,
};

/// Writes `files` with a correct manifest carrying `fields`.
fn forge(files: &BTreeMap<String, Vec<u8>>, fields: ManifestFields) -> Vec<u8> {
    let entries = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    let manifest = Manifest::new(entries, fields);
    let mut all = files.clone();
    all.insert(
        MANIFEST_PATH.to_owned(),
        manifest.to_canonical_json("forged.tgz").expect("manifest"),
    );
    write_archive(&all).expect("write")
}

fn trust_fields() -> ManifestFields {
    ManifestFields::TrustRootSet {
        version: 1,
        expires_at: EXPIRES_AT,
    }
}

fn tessera_log() -> ManifestFields {
    ManifestFields::RekorTiles {
        logs: vec![LogRef {
            origin: "example.com/log/testdata".to_owned(),
            dir: "logs/0".to_owned(),
        }],
    }
}

fn no_subjects() -> ManifestFields {
    ManifestFields::Evidence {
        subjects: Vec::new(),
    }
}

fn files(entries: Vec<(&str, Vec<u8>)>) -> BTreeMap<String, Vec<u8>> {
    entries
        .into_iter()
        .map(|(path, content)| (path.to_owned(), content))
        .collect()
}

/// Asserts that `error` has reason `code` and names `path`.
fn assert_error(name: &str, error: &BundleError, code: ReasonCode, path: &str) {
    assert_eq!(error.reason_code(), code, "row {name}: {error}");
    assert_eq!(error.path(), path, "row {name}: {error}");
    assert_eq!(error.archive(), "forged.tgz", "row {name}: {error}");
}

#[test]
fn trust_set_content_rejected_table() {
    let Some(root) = vector("sigstore-trust-roots/staging.trusted_root.json") else {
        return;
    };
    let pem = sample_kms_pem(&root);
    let crlf_pem = String::from_utf8(pem.clone())
        .expect("ascii")
        .replace('\n', "\r\n")
        .into_bytes();
    let cases: Vec<(&str, BTreeMap<String, Vec<u8>>, ReasonCode, &str)> = vec![
        (
            "root not json",
            files(vec![("trusted_root.json", b"{".to_vec())]),
            ReasonCode::TrustRootInvalid,
            "trusted_root.json",
        ),
        (
            "root without tlog start",
            files(vec![(
                "trusted_root.json",
                String::from_utf8(root.clone())
                    .expect("utf-8")
                    .replace("\"start\"", "\"begin\"")
                    .into_bytes(),
            )]),
            ReasonCode::TrustRootInvalid,
            "trusted_root.json",
        ),
        (
            "bad note key",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("note-keys.txt", b"example.com+00000000+AAAA\n".to_vec()),
            ]),
            ReasonCode::TrustRootInvalid,
            "note-keys.txt",
        ),
        (
            "note key without newline",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("note-keys.txt", TESSERA_VKEY.as_bytes().to_vec()),
            ]),
            ReasonCode::TrustRootInvalid,
            "note-keys.txt",
        ),
        (
            "duplicate note key",
            files(vec![
                ("trusted_root.json", root.clone()),
                (
                    "note-keys.txt",
                    format!("{TESSERA_VKEY}\n{TESSERA_VKEY}\n").into_bytes(),
                ),
            ]),
            ReasonCode::TrustRootInvalid,
            "note-keys.txt",
        ),
        (
            "empty note key line",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("note-keys.txt", format!("{TESSERA_VKEY}\n\n").into_bytes()),
            ]),
            ReasonCode::TrustRootInvalid,
            "note-keys.txt",
        ),
        (
            "kms not pem",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("kms/k.pem", b"not a key".to_vec()),
            ]),
            ReasonCode::TrustRootInvalid,
            "kms/k.pem",
        ),
        (
            "kms wrong label",
            files(vec![
                ("trusted_root.json", root.clone()),
                (
                    "kms/k.pem",
                    String::from_utf8(pem.clone())
                        .expect("ascii")
                        .replace("PUBLIC KEY", "CERTIFICATE")
                        .into_bytes(),
                ),
            ]),
            ReasonCode::TrustRootInvalid,
            "kms/k.pem",
        ),
        (
            "kms crlf",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("kms/k.pem", crlf_pem),
            ]),
            ReasonCode::TrustRootInvalid,
            "kms/k.pem",
        ),
        (
            "missing root",
            files(vec![(
                "note-keys.txt",
                format!("{TESSERA_VKEY}\n").into_bytes(),
            )]),
            ReasonCode::BundleMalformed,
            "trusted_root.json",
        ),
        (
            "outside layout",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("extra.txt", b"x".to_vec()),
            ]),
            ReasonCode::BundleEntryRejected,
            "extra.txt",
        ),
        (
            "kms nested",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("kms/a/b.pem", pem.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            "kms/a/b.pem",
        ),
        (
            "kms hidden id",
            files(vec![
                ("trusted_root.json", root.clone()),
                ("kms/.x.pem", pem.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            "kms/.x.pem",
        ),
    ];
    for (name, files, code, path) in cases {
        let error = open_trust_set(
            "forged.tgz",
            &forge(&files, trust_fields()),
            &Limits::default(),
        )
        .expect_err(name);
        assert_error(name, &error, code, path);
    }
}

#[test]
fn trust_set_forged_valid_opens() {
    let Some(root) = vector("sigstore-trust-roots/staging.trusted_root.json") else {
        return;
    };
    let forged = forge(&files(vec![("trusted_root.json", root)]), trust_fields());
    let opened = open_trust_set("forged.tgz", &forged, &Limits::default())
        .expect("a minimal trust set opens");
    assert!(opened.note_verifiers.is_empty());
    assert!(opened.kms_keys.is_empty());
}

#[test]
fn trust_set_pack_rejects_input() {
    let Some(input) = trust_input() else { return };

    let mut bad_root = input.clone();
    bad_root.trusted_root_json = b"[]".to_vec();
    let error = pack_trust_set(&bad_root).expect_err("bad root");
    assert!(
        matches!(&error, BundleError::TrustRootInvalid { path, .. } if path == "trusted_root.json"),
        "{error}"
    );

    let mut bad_vkey = input.clone();
    bad_vkey.note_keys.push("not a vkey".to_owned());
    let error = pack_trust_set(&bad_vkey).expect_err("bad vkey");
    assert!(
        matches!(&error, BundleError::TrustRootInvalid { path, .. } if path == "note-keys.txt"),
        "{error}"
    );

    let mut bad_id = input.clone();
    bad_id.kms_keys.insert(
        "../escape".to_owned(),
        bad_id.kms_keys["release-signer"].clone(),
    );
    let error = pack_trust_set(&bad_id).expect_err("bad kms id");
    assert!(
        matches!(&error, BundleError::EntryRejected { .. }),
        "{error}"
    );

    let mut big_version = input.clone();
    big_version.version = 1 << 53;
    let error = pack_trust_set(&big_version).expect_err("version above 2^53 - 1");
    assert!(
        matches!(&error, BundleError::Malformed { path, .. } if path == MANIFEST_PATH),
        "{error}"
    );

    let mut far_future = input.clone();
    far_future.expires_at = i64::MAX;
    let error = pack_trust_set(&far_future).expect_err("unrepresentable expiry");
    assert!(
        matches!(&error, BundleError::Malformed { path, .. } if path == MANIFEST_PATH),
        "{error}"
    );
}

#[test]
fn trust_set_pack_normalises_keys() {
    let Some(mut input) = trust_input() else {
        return;
    };
    let pem = input.kms_keys["release-signer"].clone();
    let crlf = String::from_utf8(pem.clone())
        .expect("ascii")
        .replace('\n', "\r\n")
        .into_bytes();
    input.kms_keys.insert("release-signer".to_owned(), crlf);
    input.note_keys.push(TESSERA_VKEY.to_owned());
    let tgz = pack_trust_set(&input).expect("pack");
    let files = stella_bundle::read_archive("t.tgz", &tgz, &Limits::default()).expect("read");
    assert_eq!(
        files["kms/release-signer.pem"], pem,
        "PEM is rewritten with LF line endings"
    );
    assert_eq!(
        files["note-keys.txt"],
        format!("{TESSERA_VKEY}\n").into_bytes(),
        "duplicate keys are dropped"
    );
}

#[test]
fn tiles_content_rejected_table() {
    let (Some(checkpoint), Some(proof)) = (vector("tessera-log/checkpoint"), tessera_tlog_proof(3))
    else {
        return;
    };
    let other_checkpoint = String::from_utf8(checkpoint.clone())
        .expect("utf-8")
        .replacen("example.com", "example.org", 1)
        .into_bytes();
    let proof_dir = "proofs/example.com_2flog_2ftestdata";
    let cases: Vec<(&str, BTreeMap<String, Vec<u8>>, ReasonCode, String)> = vec![
        (
            "checkpoint of another log",
            files(vec![("logs/0/checkpoint", other_checkpoint.clone())]),
            ReasonCode::RekorCheckpointInvalid,
            "logs/0/checkpoint".to_owned(),
        ),
        (
            "checkpoint not a note",
            files(vec![(
                "logs/0/checkpoint",
                b"example.com/log/testdata\n15\n".to_vec(),
            )]),
            ReasonCode::RekorCheckpointInvalid,
            "logs/0/checkpoint".to_owned(),
        ),
        (
            "non canonical tile path",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/0/0.p/15", vec![0; 480]),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/0/0.p/15".to_owned(),
        ),
        (
            "tile width 256 partial",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/0/000.p/256", vec![0; 32]),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/0/000.p/256".to_owned(),
        ),
        (
            "bad entry bundle path",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/entries/x000/001", vec![0; 3]),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/entries/x000/001".to_owned(),
        ),
        (
            "hash tile shorter than width",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/0/000.p/15", vec![0; 479]),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/0/000.p/15".to_owned(),
        ),
        (
            "entry bundle with fewer entries",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/entries/000.p/2", vec![0, 1, b'a']),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/entries/000.p/2".to_owned(),
        ),
        (
            "entry bundle cut short",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/tile/entries/000.p/1", vec![0, 9, b'a']),
            ]),
            ReasonCode::RekorTileInvalid,
            "logs/0/tile/entries/000.p/1".to_owned(),
        ),
        (
            "file outside log layout",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/0/notes.txt", b"x".to_vec()),
            ]),
            ReasonCode::BundleEntryRejected,
            "logs/0/notes.txt".to_owned(),
        ),
        (
            "log directory not in manifest",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/1/checkpoint", checkpoint.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            "logs/1/checkpoint".to_owned(),
        ),
        (
            "log directory with leading zero",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("logs/00/checkpoint", checkpoint.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            "logs/00/checkpoint".to_owned(),
        ),
        (
            "log without checkpoint",
            files(vec![("logs/0/tile/0/000.p/1", vec![0; 32])]),
            ReasonCode::BundleMalformed,
            "logs/0/checkpoint".to_owned(),
        ),
        (
            "file outside bundle layout",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("readme.txt", b"x".to_vec()),
            ]),
            ReasonCode::BundleEntryRejected,
            "readme.txt".to_owned(),
        ),
        (
            "proof not a tlog-proof",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                (&format!("{proof_dir}/3.tlog-proof"), b"hello\n".to_vec()),
            ]),
            ReasonCode::RekorProofInvalid,
            format!("{proof_dir}/3.tlog-proof"),
        ),
        (
            "proof index differs from name",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                (&format!("{proof_dir}/4.tlog-proof"), proof.clone()),
            ]),
            ReasonCode::RekorProofInvalid,
            format!("{proof_dir}/4.tlog-proof"),
        ),
        (
            "proof in another origin directory",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                ("proofs/example.org/3.tlog-proof", proof.clone()),
            ]),
            ReasonCode::RekorCheckpointInvalid,
            "proofs/example.org/3.tlog-proof".to_owned(),
        ),
        (
            "proof origin not canonical",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                (
                    "proofs/example.com_2Flog_2Ftestdata/3.tlog-proof",
                    proof.clone(),
                ),
            ]),
            ReasonCode::BundleEntryRejected,
            "proofs/example.com_2Flog_2Ftestdata/3.tlog-proof".to_owned(),
        ),
        (
            "proof index leading zero",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                (&format!("{proof_dir}/03.tlog-proof"), proof.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            format!("{proof_dir}/03.tlog-proof"),
        ),
        (
            "proof wrong suffix",
            files(vec![
                ("logs/0/checkpoint", checkpoint.clone()),
                (&format!("{proof_dir}/3.proof"), proof.clone()),
            ]),
            ReasonCode::BundleEntryRejected,
            format!("{proof_dir}/3.proof"),
        ),
    ];
    for (name, files, code, path) in cases {
        let error = open_tiles_both(
            "forged.tgz",
            &forge(&files, tessera_log()),
            &Limits::default(),
        )
        .expect_err(name);
        assert_error(name, &error, code, &path);
    }
}

#[test]
fn tiles_manifest_logs_checked() {
    let Some(checkpoint) = vector("tessera-log/checkpoint") else {
        return;
    };
    let content = files(vec![("logs/0/checkpoint", checkpoint)]);
    let cases: Vec<(&str, Vec<LogRef>)> = vec![
        (
            "wrong dir",
            vec![LogRef {
                origin: "example.com/log/testdata".into(),
                dir: "logs/7".into(),
            }],
        ),
        (
            "unsorted origins",
            vec![
                LogRef {
                    origin: "example.com/log/testdata".into(),
                    dir: "logs/0".into(),
                },
                LogRef {
                    origin: "a.example".into(),
                    dir: "logs/1".into(),
                },
            ],
        ),
        (
            "empty origin",
            vec![LogRef {
                origin: String::new(),
                dir: "logs/0".into(),
            }],
        ),
    ];
    for (name, logs) in cases {
        let error = open_tiles_both(
            "forged.tgz",
            &forge(&content, ManifestFields::RekorTiles { logs }),
            &Limits::default(),
        )
        .expect_err(name);
        assert_error(name, &error, ReasonCode::BundleMalformed, MANIFEST_PATH);
    }
}

#[test]
fn tiles_empty_bundle_rejected() {
    let error = open_tiles_both(
        "forged.tgz",
        &forge(
            &BTreeMap::new(),
            ManifestFields::RekorTiles { logs: vec![] },
        ),
        &Limits::default(),
    )
    .expect_err("empty");
    assert_error("empty", &error, ReasonCode::BundleMalformed, MANIFEST_PATH);
}

#[test]
fn tiles_pack_rejects_input() {
    let (Some(checkpoint), Some(proof)) = (vector("tessera-log/checkpoint"), tessera_tlog_proof(3))
    else {
        return;
    };
    let log = stella_bundle::LogTilesInput {
        checkpoint: checkpoint.clone(),
        tiles: BTreeMap::new(),
    };

    let two_logs = stella_bundle::TilesInput {
        logs: vec![log.clone(), log.clone()],
        tlog_proofs: vec![],
    };
    let error = pack_tiles(&two_logs).expect_err("same origin twice");
    assert!(
        matches!(&error, BundleError::EntryRejected { .. }),
        "{error}"
    );

    let mut bad_tile = log.clone();
    bad_tile.tiles.insert("tile/0/1".to_owned(), vec![0; 32]);
    let error = pack_tiles(&stella_bundle::TilesInput {
        logs: vec![bad_tile],
        tlog_proofs: vec![],
    })
    .expect_err("bad tile");
    assert!(
        matches!(&error, BundleError::TileInvalid { path, .. } if path == "logs/0/tile/0/1"),
        "{error}"
    );

    // Same origin and index, different bytes: the second proof carries extra data.
    let changed = String::from_utf8(proof.clone())
        .expect("utf-8")
        .replacen("tlog-proof@v1\n", "tlog-proof@v1\nextra AAAA\n", 1)
        .into_bytes();
    let conflict = stella_bundle::TilesInput {
        logs: vec![],
        tlog_proofs: vec![proof.clone(), changed],
    };
    let error = pack_tiles(&conflict).expect_err("two proofs for one index");
    assert!(
        matches!(&error, BundleError::EntryRejected { .. }),
        "{error}"
    );

    let garbage = stella_bundle::TilesInput {
        logs: vec![],
        tlog_proofs: vec![b"garbage".to_vec()],
    };
    let error = pack_tiles(&garbage).expect_err("not a proof");
    assert!(
        matches!(&error, BundleError::TlogProofInvalid { .. }),
        "{error}"
    );

    let bad_checkpoint = stella_bundle::TilesInput {
        logs: vec![stella_bundle::LogTilesInput {
            checkpoint: b"no note".to_vec(),
            tiles: BTreeMap::new(),
        }],
        tlog_proofs: vec![],
    };
    let error = pack_tiles(&bad_checkpoint).expect_err("bad checkpoint");
    assert!(
        matches!(&error, BundleError::CheckpointInvalid { .. }),
        "{error}"
    );
}

#[test]
fn evidence_content_rejected_table() {
    let Some(bundle) =
        vector("sigstore-conformance/bundle-verify/rekor2-happy-path/bundle.sigstore.json")
    else {
        return;
    };
    let cases: Vec<(&str, BTreeMap<String, Vec<u8>>, ReasonCode, &str)> = vec![
        (
            "not json",
            files(vec![("sigstore/a.sigstore.json", b"{".to_vec())]),
            ReasonCode::SigstoreBundleInvalid,
            "sigstore/a.sigstore.json",
        ),
        (
            "unknown media type",
            files(vec![(
                "sigstore/a.sigstore.json",
                String::from_utf8(bundle.clone())
                    .expect("utf-8")
                    .replacen("bundle.v0.3", "bundle.v9.9", 1)
                    .into_bytes(),
            )]),
            ReasonCode::SigstoreBundleInvalid,
            "sigstore/a.sigstore.json",
        ),
        (
            "wrong suffix",
            files(vec![("sigstore/a.json", bundle.clone())]),
            ReasonCode::BundleEntryRejected,
            "sigstore/a.json",
        ),
        (
            "hidden name",
            files(vec![("sigstore/.a.sigstore.json", bundle.clone())]),
            ReasonCode::BundleEntryRejected,
            "sigstore/.a.sigstore.json",
        ),
        (
            "nested",
            files(vec![("sigstore/x/a.sigstore.json", bundle.clone())]),
            ReasonCode::BundleEntryRejected,
            "sigstore/x/a.sigstore.json",
        ),
        (
            "outside layout",
            files(vec![("a.sigstore.json", bundle.clone())]),
            ReasonCode::BundleEntryRejected,
            "a.sigstore.json",
        ),
        (
            "no bundles",
            BTreeMap::new(),
            ReasonCode::BundleMalformed,
            MANIFEST_PATH,
        ),
    ];
    for (name, files, code, path) in cases {
        let error = open_evidence(
            "forged.tgz",
            &forge(&files, no_subjects()),
            &Limits::default(),
        )
        .expect_err(name);
        assert_error(name, &error, code, path);
    }
}

#[test]
fn evidence_subjects_checked() {
    let Some(bundle) =
        vector("sigstore-conformance/bundle-verify/rekor2-happy-path/bundle.sigstore.json")
    else {
        return;
    };
    let content = files(vec![("sigstore/a.sigstore.json", bundle)]);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let subject = |name: &str, digest: &str| stella_bundle::Subject {
        name: name.to_owned(),
        digest: digest.to_owned(),
    };
    let cases: Vec<(&str, Vec<stella_bundle::Subject>)> = vec![
        (
            "uppercase digest",
            vec![subject(
                "a",
                &digest.to_uppercase().replace("SHA256", "sha256"),
            )],
        ),
        (
            "sha512 digest",
            vec![subject("a", &format!("sha512:{}", "ab".repeat(64)))],
        ),
        ("short digest", vec![subject("a", "sha256:abcd")]),
        ("empty name", vec![subject("", &digest)]),
        ("control character", vec![subject("a\tb", &digest)]),
        (
            "unsorted",
            vec![subject("b", &digest), subject("a", &digest)],
        ),
        (
            "duplicate",
            vec![subject("a", &digest), subject("a", &digest)],
        ),
    ];
    for (name, subjects) in cases {
        let error = open_evidence(
            "forged.tgz",
            &forge(
                &content,
                ManifestFields::Evidence {
                    subjects: subjects.clone(),
                },
            ),
            &Limits::default(),
        )
        .expect_err(name);
        assert_error(name, &error, ReasonCode::BundleMalformed, MANIFEST_PATH);

        let Some(mut input) = evidence_input() else {
            return;
        };
        input.subjects = subjects;
        let packed = pack_evidence(&input);
        let sortable = matches!(name, "unsorted" | "duplicate");
        assert_eq!(
            packed.is_ok(),
            sortable,
            "row {name}: the packer sorts and deduplicates but rejects invalid subjects"
        );
    }
}

#[test]
fn evidence_pack_rejects_input() {
    let Some(input) = evidence_input() else {
        return;
    };

    let error = pack_evidence(&stella_bundle::EvidenceInput::default()).expect_err("empty");
    assert!(matches!(&error, BundleError::Malformed { .. }), "{error}");

    let mut bad_name = input.clone();
    bad_name.sigstore_bundles.insert(
        "a b".to_owned(),
        input.sigstore_bundles["rekor2-happy-path"].clone(),
    );
    let error = pack_evidence(&bad_name).expect_err("bad name");
    assert!(
        matches!(&error, BundleError::EntryRejected { .. }),
        "{error}"
    );

    let mut bad_json = input.clone();
    bad_json
        .sigstore_bundles
        .insert("broken".to_owned(), b"{}".to_vec());
    let error = pack_evidence(&bad_json).expect_err("bad bundle");
    assert!(
        matches!(&error, BundleError::SigstoreBundleInvalid { path, .. } if path == "sigstore/broken.sigstore.json"),
        "{error}"
    );
}
