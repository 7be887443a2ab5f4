//! Packing and opening each bundle kind: round trips, determinism and digest checks.

mod common;

use std::collections::BTreeMap;

use stella_bundle::{
    BundleError, Limits, MANIFEST_PATH, ManifestFields, bundle_digest, open_evidence,
    open_trust_set, pack_evidence, pack_tiles, pack_trust_set, read_archive, write_archive,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};

use common::{
    A_TXT_SHA256, EXPIRES_AT, TESSERA_VKEY, evidence_input, open_tiles_both, tiles_input,
    trust_input,
};

/// Opens `tgz`, flips one byte of the file at `path` and writes the archive again, keeping the
/// original manifest.
fn flip_byte(tgz: &[u8], path: &str) -> Vec<u8> {
    let mut files = read_archive("in.tgz", tgz, &Limits::default()).expect("read packed archive");
    let content = files.get_mut(path).expect("file present");
    let middle = content.len() / 2;
    content[middle] ^= 0x01;
    write_archive(&files).expect("rewrite archive")
}

fn file_paths(tgz: &[u8]) -> Vec<String> {
    read_archive("in.tgz", tgz, &Limits::default())
        .expect("read packed archive")
        .into_keys()
        .filter(|path| path != MANIFEST_PATH)
        .collect()
}

fn assert_digest_mismatch(result: Result<(), BundleError>, path: &str) {
    let error = result.expect_err("flipped byte must be detected");
    assert!(
        matches!(&error, BundleError::FileDigestMismatch { path: p, archive, .. } if p == path && archive == "flipped.tgz"),
        "{path}: expected FileDigestMismatch naming the path, got {error}"
    );
    assert_eq!(error.reason_code(), ReasonCode::FileDigestMismatch);
    assert!(
        error
            .to_string()
            .starts_with(&format!("flipped.tgz: {path}: sha256 ")),
        "{error}"
    );
}

#[test]
fn trust_set_round_trip() {
    let Some(input) = trust_input() else { return };
    let tgz = pack_trust_set(&input).expect("pack");
    let opened = open_trust_set("trust.tgz", &tgz, &Limits::default()).expect("open");

    assert_eq!(opened.file_name, "trust.tgz");
    assert_eq!(opened.version, 7);
    assert_eq!(opened.expires_at, EXPIRES_AT);
    assert_eq!(opened.trusted_root_json, input.trusted_root_json);
    assert_eq!(opened.digest, bundle_digest(&opened.manifest_json));
    assert_eq!(opened.note_verifiers.len(), 1);
    assert_eq!(opened.note_verifiers[0].to_vkey(), TESSERA_VKEY);
    assert_eq!(opened.kms_keys.len(), 1);
    assert_eq!(opened.kms_keys[0].id, "release-signer");
    assert_eq!(
        opened.manifest.fields,
        ManifestFields::TrustRootSet {
            version: 7,
            expires_at: EXPIRES_AT
        }
    );
    let paths: Vec<&str> = opened
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "kms/release-signer.pem",
            "note-keys.txt",
            "trusted_root.json"
        ]
    );
}

#[test]
fn tiles_round_trip() {
    let Some(input) = tiles_input() else { return };
    let tgz = pack_tiles(&input).expect("pack");
    let opened = open_tiles_both("rekor-tiles.tgz", &tgz, &Limits::default()).expect("open");

    assert_eq!(opened.digest, bundle_digest(&opened.manifest_json));
    assert_eq!(opened.logs.len(), 1);
    let log = &opened.logs[0];
    assert_eq!(log.origin, "example.com/log/testdata");
    assert_eq!(log.dir, "logs/0");
    assert_eq!(log.checkpoint, input.logs[0].checkpoint);
    assert_eq!(log.tiles.len(), 15);
    assert_eq!(log.entry_bundles.len(), 15);
    assert_eq!(
        log.tiles.get("tile/0/000.p/15"),
        input.logs[0].tiles.get("tile/0/000.p/15")
    );
    assert_eq!(
        log.entry_bundles.get("tile/entries/000.p/15"),
        input.logs[0].tiles.get("tile/entries/000.p/15")
    );

    let proofs: Vec<(&str, &str, u64)> = opened
        .tlog_proofs
        .iter()
        .map(|p| (p.path.as_str(), p.origin.as_str(), p.index))
        .collect();
    assert_eq!(
        proofs,
        [
            (
                "proofs/example.com_2flog_2ftestdata/14.tlog-proof",
                "example.com/log/testdata",
                14
            ),
            (
                "proofs/example.com_2flog_2ftestdata/3.tlog-proof",
                "example.com/log/testdata",
                3
            ),
        ]
    );
    assert_eq!(opened.tlog_proofs[1].proof.index, 3);
    assert_eq!(opened.tlog_proofs[1].proof.hashes.len(), 4);
    assert_eq!(
        opened.tlog_proofs[1].proof.checkpoint,
        input.logs[0].checkpoint
    );
}

#[test]
fn tiles_proofs_only() {
    let Some(mut input) = tiles_input() else {
        return;
    };
    input.logs.clear();
    let tgz = pack_tiles(&input).expect("pack");
    let opened = open_tiles_both("proofs.tgz", &tgz, &Limits::default()).expect("open");
    assert!(opened.logs.is_empty());
    assert_eq!(opened.tlog_proofs.len(), 2);
}

#[test]
fn evidence_round_trip() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let opened = open_evidence("evidence.tgz", &tgz, &Limits::default()).expect("open");

    assert_eq!(opened.id, bundle_digest(&opened.manifest_json));
    assert!(opened.id.starts_with("sha256:"), "{}", opened.id);
    assert_eq!(opened.id.len(), "sha256:".len() + 64, "{}", opened.id);
    assert_eq!(opened.subjects.len(), 1);
    assert_eq!(opened.subjects[0].name, "a.txt");
    assert_eq!(opened.subjects[0].sha256_hex(), A_TXT_SHA256);
    let expected: BTreeMap<String, Vec<u8>> = input
        .sigstore_bundles
        .iter()
        .map(|(name, json)| (format!("sigstore/{name}.sigstore.json"), json.clone()))
        .collect();
    assert_eq!(opened.sigstore_bundles, expected);
}

#[test]
fn packing_twice_byte_identical() {
    let (Some(trust), Some(tiles), Some(evidence)) =
        (trust_input(), tiles_input(), evidence_input())
    else {
        return;
    };
    assert_eq!(
        pack_trust_set(&trust).expect("pack 1"),
        pack_trust_set(&trust).expect("pack 2"),
        "trust set"
    );
    assert_eq!(
        pack_tiles(&tiles).expect("pack 1"),
        pack_tiles(&tiles).expect("pack 2"),
        "tiles"
    );
    assert_eq!(
        pack_evidence(&evidence).expect("pack 1"),
        pack_evidence(&evidence).expect("pack 2"),
        "evidence"
    );
}

#[test]
fn packing_ignores_input_order() {
    let (Some(tiles), Some(evidence)) = (tiles_input(), evidence_input()) else {
        return;
    };
    let mut reversed = tiles.clone();
    reversed.tlog_proofs.reverse();
    assert_eq!(
        pack_tiles(&tiles).expect("pack"),
        pack_tiles(&reversed).expect("pack reversed")
    );

    let mut doubled = evidence.clone();
    doubled.subjects.insert(0, doubled.subjects[0].clone());
    assert_eq!(
        pack_evidence(&evidence).expect("pack"),
        pack_evidence(&doubled).expect("pack doubled")
    );
}

#[test]
fn trust_set_flipped_byte_detected() {
    let Some(input) = trust_input() else { return };
    let tgz = pack_trust_set(&input).expect("pack");
    let paths = file_paths(&tgz);
    assert_eq!(paths.len(), 3);
    for path in paths {
        let flipped = flip_byte(&tgz, &path);
        assert_digest_mismatch(
            open_trust_set("flipped.tgz", &flipped, &Limits::default()).map(drop),
            &path,
        );
    }
}

#[test]
fn tiles_flipped_byte_detected() {
    let Some(input) = tiles_input() else { return };
    let tgz = pack_tiles(&input).expect("pack");
    let paths = file_paths(&tgz);
    assert_eq!(paths.len(), 1 + 30 + 2);
    for path in paths {
        let flipped = flip_byte(&tgz, &path);
        assert_digest_mismatch(
            open_tiles_both("flipped.tgz", &flipped, &Limits::default()).map(drop),
            &path,
        );
    }
}

#[test]
fn evidence_flipped_byte_detected() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let paths = file_paths(&tgz);
    assert_eq!(paths.len(), 2);
    for path in paths {
        let flipped = flip_byte(&tgz, &path);
        assert_digest_mismatch(
            open_evidence("flipped.tgz", &flipped, &Limits::default()).map(drop),
            &path,
        );
    }
}

#[test]
fn open_wrong_kind_rejected() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let error = open_tiles_both("evidence.tgz", &tgz, &Limits::default()).expect_err("wrong kind");
    assert!(
        matches!(&error, BundleError::Malformed { path, why, .. } if path == MANIFEST_PATH && why.contains("stella.evidence/v1")),
        "{error}"
    );
    let error = open_trust_set("evidence.tgz", &tgz, &Limits::default()).expect_err("wrong kind");
    assert!(matches!(&error, BundleError::Malformed { .. }), "{error}");
}

#[test]
fn manifest_digest_is_bundle_id() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let files = read_archive("e.tgz", &tgz, &Limits::default()).expect("read");
    let opened = open_evidence("e.tgz", &tgz, &Limits::default()).expect("open");
    assert_eq!(opened.manifest_json, files[MANIFEST_PATH]);
    assert_eq!(
        opened.id,
        format!(
            "sha256:{}",
            stella_bundle::sha256_hex(&files[MANIFEST_PATH])
        )
    );

    let mut other = input.clone();
    other.subjects[0].name = "b.txt".to_owned();
    let other_tgz = pack_evidence(&other).expect("pack other");
    let other_id = open_evidence("e.tgz", &other_tgz, &Limits::default())
        .expect("open other")
        .id;
    assert_ne!(
        other_id, opened.id,
        "a different subject must give a different id"
    );
}

/// Returns the path of the first tar entry of a `.tgz`.
fn first_entry(tgz: &[u8]) -> String {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut entries = archive.entries().expect("tar entries");
    let first = entries.next().expect("one entry").expect("readable entry");
    String::from_utf8(first.path_bytes().into_owned()).expect("utf-8 path")
}

#[test]
fn packed_archives_start_with_manifest() {
    let (Some(trust), Some(tiles), Some(evidence)) =
        (trust_input(), tiles_input(), evidence_input())
    else {
        return;
    };
    // Trust set and tile paths ("kms/", "logs/") sort before "manifest.json".
    let packed = [
        ("trust set", pack_trust_set(&trust).expect("pack")),
        ("tiles", pack_tiles(&tiles).expect("pack")),
        ("evidence", pack_evidence(&evidence).expect("pack")),
    ];
    for (kind, tgz) in packed {
        assert_eq!(first_entry(&tgz), MANIFEST_PATH, "{kind}");
    }
}
