//! Hostile archives, built header by header with the tar crate's low-level `Header` API, must be
//! rejected with the exact error variant.
//!
//! Several tests end the tar stream right after a header that declares data. A reader that read
//! the data before checking the header would report a truncated stream instead of the expected
//! error, so these tests show which checks run before any data is read.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use stella_bundle::{
    BundleError, CHECKPOINT_MAX_BYTES, DEFAULT_MAX_FILE_BYTES, ENTRY_BUNDLE_MAX_BYTES, FileEntry,
    HASH_TILE_MAX_BYTES, KMS_PEM_MAX_BYTES, Limits, LogRef, MANIFEST_PATH, Manifest,
    ManifestFields, Measure, SIGSTORE_BUNDLE_MAX_BYTES, TLOG_PROOF_MAX_BYTES,
    TRUSTED_ROOT_MAX_BYTES, open_evidence, open_trust_set, pack_evidence, pack_tiles,
    write_archive,
};
use stella_verify::reason::{HasReasonCode, ReasonCode};
use tar::{EntryType, Header};

use common::{evidence_input, gzip, open_tiles_both, read_both, tiles_input};

/// One raw tar entry.
struct Raw {
    path: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
    /// Size written in the header when it differs from `data.len()`.
    declared_size: Option<u64>,
    link: Option<&'static [u8]>,
}

fn file(path: &str, data: &[u8]) -> Raw {
    Raw {
        path: path.as_bytes().to_vec(),
        kind: EntryType::Regular,
        data: data.to_vec(),
        declared_size: None,
        link: None,
    }
}

/// A regular file whose header declares `size` bytes, written without any data, so that the
/// stream ends inside the entry.
fn header_only(path: &str, size: u64) -> Raw {
    Raw {
        declared_size: Some(size),
        ..file(path, b"")
    }
}

/// Returns the canonical `manifest.json` bytes (evidence format, no subjects) listing `entries`.
fn manifest_bytes(entries: &[FileEntry]) -> Vec<u8> {
    let fields = ManifestFields::Evidence {
        subjects: Vec::new(),
    };
    Manifest::new(entries.to_vec(), fields)
        .to_canonical_json("hostile.tgz")
        .expect("manifest")
}

/// A `manifest.json` entry listing `files` with their digests and sizes.
fn manifest(files: &[(&str, &[u8])]) -> Raw {
    let entries: Vec<FileEntry> = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    file(MANIFEST_PATH, &manifest_bytes(&entries))
}

fn special(path: &str, kind: EntryType, link: Option<&'static [u8]>) -> Raw {
    Raw {
        path: path.as_bytes().to_vec(),
        kind,
        data: Vec::new(),
        declared_size: None,
        link,
    }
}

/// Writes a ustar header with the raw path bytes, bypassing the path checks of `set_path`.
fn header_for(entry: &Raw) -> Header {
    let mut header = Header::new_ustar();
    let name = &mut header.as_old_mut().name;
    assert!(
        entry.path.len() <= name.len(),
        "test paths fit the name field"
    );
    name[..entry.path.len()].copy_from_slice(&entry.path);
    header.set_entry_type(entry.kind);
    header.set_size(entry.declared_size.unwrap_or(entry.data.len() as u64));
    header.set_mode(0o644);
    header.set_mtime(0);
    if let Some(link) = entry.link {
        header.set_link_name_literal(link).expect("link name");
    }
    if matches!(entry.kind, EntryType::Char | EntryType::Block) {
        header.set_device_major(1).expect("major");
        header.set_device_minor(3).expect("minor");
    }
    header.set_cksum();
    header
}

/// Builds a tar stream from raw entries, optionally without the end-of-archive marker.
fn raw_tar(entries: &[Raw], end_marker: bool) -> Vec<u8> {
    let mut tar = Vec::new();
    for entry in entries {
        tar.extend_from_slice(header_for(entry).as_bytes());
        tar.extend_from_slice(&entry.data);
        let padding = (512 - entry.data.len() % 512) % 512;
        tar.extend(std::iter::repeat_n(0u8, padding));
    }
    if end_marker {
        tar.extend_from_slice(&[0u8; 1024]);
    }
    tar
}

fn hostile(entries: &[Raw]) -> Vec<u8> {
    gzip(&raw_tar(entries, true))
}

fn read(tgz: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    read_both("hostile.tgz", tgz, &Limits::default())
}

fn small_limits() -> Limits {
    Limits {
        max_archive_bytes: 1 << 20,
        max_total_bytes: 1 << 20,
        max_file_bytes: 1 << 16,
        max_entries: 10,
    }
}

#[test]
fn rejected_entries_table() {
    let ok = || manifest(&[]);
    let cases: Vec<(&str, Vec<Raw>, &str)> = vec![
        (
            "absolute path",
            vec![ok(), file("/etc/passwd", b"x")],
            "/etc/passwd",
        ),
        ("parent path", vec![ok(), file("../x", b"x")], "../x"),
        (
            "parent inside path",
            vec![ok(), file("a/../../x", b"x")],
            "a/../../x",
        ),
        ("dot component", vec![ok(), file("./x", b"x")], "./x"),
        (
            "backslash",
            vec![ok(), file("a\\..\\x", b"x")],
            "a\\\\..\\\\x",
        ),
        ("double slash", vec![ok(), file("a//x", b"x")], "a//x"),
        ("control character", vec![ok(), file("a\nx", b"x")], "a\\nx"),
        (
            "symlink",
            vec![
                ok(),
                special("link", EntryType::Symlink, Some(b"/etc/passwd")),
            ],
            "link",
        ),
        (
            "hard link",
            vec![
                ok(),
                special("hard", EntryType::Link, Some(b"manifest.json")),
            ],
            "hard",
        ),
        (
            "char device",
            vec![ok(), special("null", EntryType::Char, None)],
            "null",
        ),
        (
            "block device",
            vec![ok(), special("sda", EntryType::Block, None)],
            "sda",
        ),
        (
            "fifo",
            vec![ok(), special("pipe", EntryType::Fifo, None)],
            "pipe",
        ),
        (
            "contiguous file",
            vec![ok(), special("c", EntryType::Continuous, None)],
            "c",
        ),
        (
            "pax header",
            vec![special("pax", EntryType::XHeader, None), ok()],
            "pax",
        ),
        (
            "gnu long name",
            vec![special("././@LongLink", EntryType::GNULongName, None), ok()],
            "././@LongLink",
        ),
        (
            "duplicate file",
            vec![manifest(&[("a", b"1")]), file("a", b"1"), file("a", b"2")],
            "a",
        ),
        (
            "file then directory",
            vec![
                manifest(&[("a", b"1")]),
                file("a", b"1"),
                special("a/", EntryType::Directory, None),
            ],
            "a",
        ),
        ("duplicate manifest", vec![ok(), ok()], MANIFEST_PATH),
        ("unlisted file", vec![ok(), file("a", b"1")], "a"),
        (
            "path under file",
            vec![
                manifest(&[("a", b"1"), ("a/b", b"2")]),
                file("a", b"1"),
                file("a/b", b"2"),
            ],
            "a/b",
        ),
    ];
    for (name, entries, path) in cases {
        let error = read(&hostile(&entries)).expect_err(name);
        assert!(
            matches!(&error, BundleError::EntryRejected { path: p, archive, .. } if p == path && archive == "hostile.tgz"),
            "row {name}: expected EntryRejected naming {path:?}, got {error:?}"
        );
        assert_eq!(
            error.reason_code(),
            ReasonCode::BundleEntryRejected,
            "row {name}"
        );
    }
}

#[test]
fn nul_inside_path_rejected() {
    let mut entry = file("ab", b"x");
    entry.path = b"a\0/../../etc/passwd".to_vec();
    let error = read(&hostile(&[entry])).expect_err("embedded NUL");
    assert!(
        matches!(&error, BundleError::EntryRejected { why, .. } if why.contains("NUL")),
        "{error:?}"
    );
}

#[test]
fn directories_accepted_and_dropped() {
    let entries = [
        special("a/", EntryType::Directory, None),
        manifest(&[("a/b", b"x")]),
        special("a/c/", EntryType::Directory, None),
        file("a/b", b"x"),
    ];
    let files = read(&hostile(&entries)).expect("directories are allowed");
    assert_eq!(files.keys().collect::<Vec<_>>(), ["a/b", MANIFEST_PATH]);
}

#[test]
fn oversized_file_rejected() {
    let mut entry = file("big", b"");
    entry.declared_size = Some(DEFAULT_MAX_FILE_BYTES + 1);
    let error = read(&hostile(&[entry])).expect_err("oversized");
    assert!(
        matches!(&error, BundleError::TooLarge { path, measure: Measure::FileBytes, actual, limit, .. }
            if path == "big" && *actual == DEFAULT_MAX_FILE_BYTES + 1 && *limit == DEFAULT_MAX_FILE_BYTES),
        "{error:?}"
    );
    assert_eq!(error.reason_code(), ReasonCode::BundleTooLarge);
}

#[test]
fn declared_total_size_limit_enforced() {
    let chunk = vec![7u8; 60_000];
    let names: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
    let listed: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), chunk.as_slice()))
        .collect();
    let head = manifest(&listed);
    let manifest_size = head.data.len() as u64;
    // Only the first file follows, and only its header: the declared total alone fails.
    let entries = [head, header_only("f0", 60_000)];
    let limits = Limits {
        max_total_bytes: 200_000,
        ..small_limits()
    };
    let error = read_both("hostile.tgz", &hostile(&entries), &limits).expect_err("total");
    assert!(
        matches!(&error, BundleError::TooLarge { path, measure: Measure::TotalBytes, actual, limit: 200_000, .. }
            if path == MANIFEST_PATH && *actual == 300_000 + manifest_size),
        "{error:?}"
    );
}

#[test]
fn header_total_size_limit_enforced() {
    let head = manifest(&[("a", b"x")]);
    let limits = Limits {
        max_total_bytes: head.data.len() as u64 - 1,
        ..small_limits()
    };
    let error = read_both("hostile.tgz", &hostile(&[head]), &limits).expect_err("total");
    assert!(
        matches!(&error, BundleError::TooLarge { path, measure: Measure::TotalBytes, .. }
            if path == MANIFEST_PATH),
        "{error:?}"
    );
}

#[test]
fn declared_file_size_limit_enforced() {
    let listed = [
        FileEntry::for_content("a", b"x"),
        FileEntry {
            path: "big".to_owned(),
            sha256: "0".repeat(64),
            size: DEFAULT_MAX_FILE_BYTES + 1,
        },
    ];
    let entries = [
        file(MANIFEST_PATH, &manifest_bytes(&listed)),
        header_only("a", 1),
    ];
    let error = read(&hostile(&entries)).expect_err("declared size");
    assert!(
        matches!(&error, BundleError::TooLarge { path, measure: Measure::FileBytes, actual, limit, .. }
            if path == "big" && *actual == DEFAULT_MAX_FILE_BYTES + 1 && *limit == DEFAULT_MAX_FILE_BYTES),
        "{error:?}"
    );
}

#[test]
fn too_many_entries_rejected() {
    let limits = small_limits();
    let names: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    let listed: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), &b"x"[..]))
        .collect();
    let mut entries = vec![manifest(&listed)];
    entries.extend(names.iter().map(|name| file(name, b"x")));

    let ten =
        read_both("hostile.tgz", &hostile(&entries), &limits).expect("ten entries are allowed");
    assert_eq!(ten.len(), 10);

    entries.push(special("d/", EntryType::Directory, None));
    let error = read_both("hostile.tgz", &hostile(&entries), &limits).expect_err("too many");
    assert!(
        matches!(
            &error,
            BundleError::TooLarge {
                measure: Measure::Entries,
                actual: 11,
                limit: 10,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn declared_entry_count_limited() {
    let names: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
    let listed: Vec<(&str, &[u8])> = names
        .iter()
        .map(|name| (name.as_str(), &b"x"[..]))
        .collect();
    let entries = [manifest(&listed), header_only("f0", 1)];
    let error =
        read_both("hostile.tgz", &hostile(&entries), &small_limits()).expect_err("too many");
    assert!(
        matches!(
            &error,
            BundleError::TooLarge {
                path,
                measure: Measure::Entries,
                actual: 11,
                limit: 10,
                ..
            } if path == MANIFEST_PATH
        ),
        "{error:?}"
    );
}

#[test]
fn too_many_default_entries_rejected() {
    let entries: Vec<Raw> = (0..100_001)
        .map(|i| special(&format!("d{i}/"), EntryType::Directory, None))
        .collect();
    let error = read(&hostile(&entries)).expect_err("too many");
    assert!(
        matches!(
            &error,
            BundleError::TooLarge {
                measure: Measure::Entries,
                actual: 100_001,
                limit: 100_000,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn archive_size_limit_enforced() {
    let tgz = hostile(&[file("a", b"x")]);
    let limits = Limits {
        max_archive_bytes: tgz.len() as u64 - 1,
        ..Limits::default()
    };
    let error = read_both("hostile.tgz", &tgz, &limits).expect_err("compressed size");
    assert!(
        matches!(
            &error,
            BundleError::TooLarge {
                measure: Measure::ArchiveBytes,
                ..
            }
        ),
        "{error:?}"
    );
}

/// Compresses a valid tar followed by `zeros` zero bytes. It streams, so the test never keeps the
/// decompressed bomb in memory.
fn zero_bomb(zeros: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder
        .write_all(&raw_tar(&[manifest(&[("a", b"x")]), file("a", b"x")], true))
        .expect("write");
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..n]).expect("write");
        left -= n as u64;
    }
    encoder.finish().expect("finish")
}

#[test]
fn gzip_bomb_stops_at_limit() {
    let limits = small_limits();
    let bomb = zero_bomb(64 << 20);
    assert!(
        bomb.len() < 1 << 20,
        "the bomb is small when compressed: {} bytes",
        bomb.len()
    );
    let error = read_both("bomb.tgz", &bomb, &limits).expect_err("bomb");
    let cap = limits.max_decompressed_bytes();
    assert!(
        matches!(&error, BundleError::TooLarge { measure: Measure::DecompressedBytes, actual, limit, .. }
            if *limit == cap && *actual > cap && *actual <= cap + (64 << 10)),
        "reading must stop within one read of the limit: {error:?}"
    );
}

#[test]
fn gzip_bomb_default_limits() {
    let limits = Limits::default();
    let bomb = zero_bomb(limits.max_decompressed_bytes() + (1 << 20));
    let error = read_both("bomb.tgz", &bomb, &limits).expect_err("bomb");
    assert!(
        matches!(
            &error,
            BundleError::TooLarge {
                measure: Measure::DecompressedBytes,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn stream_faults_malformed_table() {
    let good_tar = raw_tar(&[manifest(&[("a", b"hello")]), file("a", b"hello")], true);
    let good = gzip(&good_tar);
    read(&good).expect("the unmodified archive is valid");

    let mut trailing = good.clone();
    trailing.extend_from_slice(b"garbage");
    let mut bad_checksum = good_tar.clone();
    bad_checksum[0] ^= 1;
    let mut data_after_end = good_tar.clone();
    data_after_end.extend_from_slice(b"x");
    let mut header_after_one_zero_block =
        raw_tar(&[manifest(&[("a", b"hello")]), file("a", b"hello")], false);
    header_after_one_zero_block.extend_from_slice(&[0u8; 512]);
    header_after_one_zero_block.extend_from_slice(&raw_tar(&[file("b", b"x")], true));
    let mut v7 = good_tar.clone();
    v7[257..265].fill(0);
    let sum: u32 = v7[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    v7[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated gzip", good[..good.len() / 2].to_vec()),
        ("truncated gzip trailer", good[..good.len() - 4].to_vec()),
        ("trailing garbage", trailing),
        ("not gzip", good_tar.clone()),
        ("empty input", Vec::new()),
        (
            "tar without end marker",
            gzip(&good_tar[..good_tar.len() - 1024]),
        ),
        (
            "tar with one zero block",
            gzip(&good_tar[..good_tar.len() - 512]),
        ),
        ("tar cut inside data", gzip(&good_tar[..600])),
        ("tar cut inside header", gzip(&good_tar[..100])),
        ("header checksum", gzip(&bad_checksum)),
        ("data after end marker", gzip(&data_after_end)),
        (
            "header after one zero block",
            gzip(&header_after_one_zero_block),
        ),
        ("v7 header", gzip(&v7)),
    ];
    for (name, tgz) in cases {
        let error = read(&tgz).expect_err(name);
        assert!(
            matches!(&error, BundleError::Malformed { archive, .. } if archive == "hostile.tgz"),
            "row {name}: expected Malformed, got {error:?}"
        );
        assert_eq!(
            error.reason_code(),
            ReasonCode::BundleMalformed,
            "row {name}"
        );
    }
}

#[test]
fn unlisted_extra_file_rejected() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let mut files = read_both("e.tgz", &tgz, &Limits::default()).expect("read");
    files.insert("sigstore/extra.sigstore.json".to_owned(), b"{}".to_vec());
    let error = open_evidence(
        "hostile.tgz",
        &write_archive(&files).expect("write"),
        &Limits::default(),
    )
    .expect_err("extra file");
    assert!(
        matches!(&error, BundleError::EntryRejected { path, why, .. }
            if path == "sigstore/extra.sigstore.json" && why.contains("not listed")),
        "{error:?}"
    );
}

#[test]
fn missing_listed_file_rejected() {
    let Some(input) = tiles_input() else { return };
    let tgz = pack_tiles(&input).expect("pack");
    let mut files = read_both("t.tgz", &tgz, &Limits::default()).expect("read");
    files.remove("logs/0/tile/0/000.p/7").expect("tile present");
    let error = open_tiles_both(
        "hostile.tgz",
        &write_archive(&files).expect("write"),
        &Limits::default(),
    )
    .expect_err("missing file");
    assert!(
        matches!(&error, BundleError::Malformed { path, why, .. } if path == "logs/0/tile/0/000.p/7" && why.contains("missing")),
        "{error:?}"
    );
}

#[test]
fn missing_manifest_rejected() {
    let Some(input) = evidence_input() else {
        return;
    };
    let tgz = pack_evidence(&input).expect("pack");
    let mut files = read_both("e.tgz", &tgz, &Limits::default()).expect("read");
    files.remove(MANIFEST_PATH);
    let error = open_evidence(
        "hostile.tgz",
        &write_archive(&files).expect("write"),
        &Limits::default(),
    )
    .expect_err("no manifest");
    assert!(
        matches!(&error, BundleError::Malformed { path, .. } if path == MANIFEST_PATH),
        "{error:?}"
    );
}

/// Rewrites the manifest of a packed evidence bundle with `edit` and opens the result.
fn open_with_manifest(edit: impl Fn(&str) -> String) -> Option<BundleError> {
    let input = evidence_input()?;
    let tgz = pack_evidence(&input).expect("pack");
    let mut files = read_both("e.tgz", &tgz, &Limits::default()).expect("read");
    let manifest = String::from_utf8(files[MANIFEST_PATH].clone()).expect("utf-8 manifest");
    let edited = edit(&manifest);
    assert_ne!(edited, manifest, "the edit must change the manifest");
    files.insert(MANIFEST_PATH.to_owned(), edited.into_bytes());
    Some(
        open_evidence(
            "hostile.tgz",
            &write_archive(&files).expect("write"),
            &Limits::default(),
        )
        .expect_err("edited manifest"),
    )
}

#[test]
fn manifest_faults_malformed_table() {
    let cases: Vec<(&str, Box<dyn Fn(&str) -> String>)> = vec![
        ("pretty printed", Box::new(|m: &str| m.replace(",", ", "))),
        ("trailing newline", Box::new(|m: &str| format!("{m}\n"))),
        (
            "key order",
            Box::new(|m: &str| {
                m.replace(",\"format\":\"stella.evidence/v1\"", "")
                    .replacen('{', "{\"format\":\"stella.evidence/v1\",", 1)
            }),
        ),
        (
            "unknown format",
            Box::new(|m: &str| m.replace("stella.evidence/v1", "stella.evidence/v2")),
        ),
        (
            "unknown field",
            Box::new(|m: &str| m.replace("\"format\"", "\"extra\":true,\"format\"")),
        ),
        (
            "escaped slash",
            Box::new(|m: &str| m.replace("sigstore/", "sigstore\\/")),
        ),
        (
            "duplicate key",
            Box::new(|m: &str| m.replace("{\"files\"", "{\"files\":[],\"files\"")),
        ),
    ];
    for (name, edit) in cases {
        let Some(error) = open_with_manifest(edit) else {
            return;
        };
        assert!(
            matches!(&error, BundleError::Malformed { path, .. } if path == MANIFEST_PATH),
            "row {name}: expected Malformed naming manifest.json, got {error:?}"
        );
    }
}

#[test]
fn manifest_not_first_rejected_table() {
    let cases: Vec<(&str, Vec<Raw>, &str)> = vec![
        // The header claims 63 MiB, but no data follows: the rule fires on the header alone.
        (
            "no manifest",
            vec![header_only("a", 63 << 20)],
            "\"a\" comes first",
        ),
        (
            "manifest second",
            vec![file("a", b"x"), manifest(&[("a", b"x")])],
            "\"a\" comes first",
        ),
        (
            "only directories",
            vec![special("a/", EntryType::Directory, None)],
            "missing",
        ),
        ("empty archive", Vec::new(), "missing"),
    ];
    for (name, entries, fault) in cases {
        let error = read(&hostile(&entries)).expect_err(name);
        assert!(
            matches!(&error, BundleError::Malformed { archive, path, why }
                if archive == "hostile.tgz" && path == MANIFEST_PATH && why.contains(fault)),
            "row {name}: expected Malformed naming manifest.json with {fault:?}, got {error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("hostile.tgz: manifest.json: "),
            "row {name}: {error}"
        );
    }
}

#[test]
fn unlisted_file_rejected_before_data() {
    let entries = [manifest(&[("a", b"x")]), header_only("b", 63 << 20)];
    let error = read(&hostile(&entries)).expect_err("unlisted");
    assert!(
        matches!(&error, BundleError::EntryRejected { path, why, .. }
            if path == "b" && why.contains("not listed")),
        "{error:?}"
    );
    assert_eq!(error.reason_code(), ReasonCode::BundleEntryRejected);
}

#[test]
fn header_size_mismatch_rejected_before_data() {
    let entries = [manifest(&[("a", b"x")]), header_only("a", 63 << 20)];
    let error = read(&hostile(&entries)).expect_err("size mismatch");
    assert!(
        matches!(&error, BundleError::Malformed { path, why, .. }
            if path == "a" && why == "size 66060288 bytes in the tar header, manifest says 1"),
        "{error:?}"
    );
    assert_eq!(error.reason_code(), ReasonCode::BundleMalformed);
}

#[test]
fn wrong_kind_rejected_before_data() {
    let entries = [manifest(&[("a", b"x")]), header_only("a", 1)];
    let error = open_trust_set("hostile.tgz", &hostile(&entries), &Limits::default())
        .expect_err("evidence manifest");
    assert!(
        matches!(&error, BundleError::Malformed { path, why, .. }
            if path == MANIFEST_PATH && why.contains("expected \"stella.trust-root-set/v1\"")),
        "{error:?}"
    );
}

/// Streams a tar of `count` files of `size` zero bytes each through gzip, without a manifest.
fn zero_files_without_manifest(count: usize, size: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    for index in 0..count {
        let entry = header_only(&format!("f{index:02}"), size);
        encoder
            .write_all(header_for(&entry).as_bytes())
            .expect("write");
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            encoder.write_all(&chunk[..n]).expect("write");
            left -= n as u64;
        }
    }
    encoder.write_all(&[0u8; 1024]).expect("write");
    encoder.finish().expect("finish")
}

#[test]
fn many_large_files_without_manifest_rejected() {
    // Each file is under the 64 MiB file limit and all together under the 1 GiB total limit, so
    // only the manifest rule stops the reader at the first header.
    let size = 63 << 20;
    let tgz = zero_files_without_manifest(15, size);
    assert!(
        (tgz.len() as u64) < 15 * size / 100,
        "the archive is small compared to its content: {} bytes",
        tgz.len()
    );
    let error = read(&tgz).expect_err("no manifest");
    assert!(
        matches!(&error, BundleError::Malformed { path, why, .. }
            if path == MANIFEST_PATH && why.contains("\"f00\" comes first")),
        "{error:?}"
    );
}

#[test]
fn control_bytes_escaped_in_messages() {
    const NAME: &[u8] = b"\x1b[2J\x1b[31mFAKE: import OK\x1b[0m\n";
    let mut entry = file("x", b"");
    entry.path = NAME.to_vec();

    // The path alone breaks the path rules.
    let named = read(&hostile(&[entry])).expect_err("control characters in the path");
    // A checksum field that is not octal is quoted in the message.
    let mut entry = file("x", b"");
    entry.path = NAME.to_vec();
    let mut tar = raw_tar(&[entry], true);
    tar[148..156].copy_from_slice(b"\x1b[2Jzzz\0");
    let checksum = read(&gzip(&tar)).expect_err("bad checksum field");

    for error in [&named, &checksum] {
        let text = error.to_string();
        assert!(
            !text.chars().any(char::is_control),
            "no control character may reach a terminal: {text:?}"
        );
        assert!(text.contains("\\u{1b}[2J"), "{text}");
    }
    assert!(
        matches!(&checksum, BundleError::Malformed { why, .. }
            if why == "invalid tar header checksum field \"\\u{1b}[2Jzzz\\0\": expected octal digits"),
        "{checksum:?}"
    );
    assert_eq!(named.reason_code(), ReasonCode::BundleEntryRejected);
}

/// Builds a bundle whose manifest lists `count` files of `size` bytes at `paths`, followed by the
/// header of the first file only: a reader that checks the declared sizes when it reads the
/// manifest fails before it needs any file data.
fn manifest_first_bomb(fields: ManifestFields, paths: &[String], size: u64) -> Vec<u8> {
    // Any well-formed digest works: the size check comes before any digest is computed.
    let digest = "0".repeat(64);
    let entries: Vec<FileEntry> = paths
        .iter()
        .map(|path| FileEntry {
            path: path.clone(),
            sha256: digest.clone(),
            size,
        })
        .collect();
    let manifest_json = Manifest::new(entries, fields)
        .to_canonical_json("bomb.tgz")
        .expect("manifest");
    let mut sorted = paths.to_vec();
    sorted.sort();
    hostile(&[
        file(MANIFEST_PATH, &manifest_json),
        header_only(&sorted[0], size),
    ])
}

#[test]
fn manifest_first_bomb_rejected_at_once() {
    // Fifteen 63 MiB files pass the per-file (64 MiB) and total (1 GiB) default limits, so only
    // the per-kind caps stop them before the reader inflates about 1 GB.
    let size = 63 * 1024 * 1024;
    let tile_fields = || ManifestFields::RekorTiles {
        logs: vec![LogRef {
            origin: "demo-log.stella.example".to_owned(),
            dir: "logs/0".to_owned(),
        }],
    };
    let tiles: Vec<String> = (0..15).map(|n| format!("logs/0/tile/0/{n:03}")).collect();
    let proofs: Vec<String> = (0..15)
        .map(|n| format!("proofs/demo-log.stella.example/{n}.tlog-proof"))
        .collect();
    let cases: Vec<(&str, ManifestFields, Vec<String>, &str, u64)> = vec![
        (
            "hash tiles",
            tile_fields(),
            tiles,
            "hash tile",
            HASH_TILE_MAX_BYTES,
        ),
        (
            "tlog-proofs",
            tile_fields(),
            proofs,
            "tlog-proof",
            TLOG_PROOF_MAX_BYTES,
        ),
        (
            "entry bundle",
            tile_fields(),
            vec!["logs/0/tile/entries/000".to_owned()],
            "entry bundle",
            ENTRY_BUNDLE_MAX_BYTES,
        ),
        (
            "checkpoint",
            tile_fields(),
            vec!["logs/0/checkpoint".to_owned()],
            "checkpoint",
            CHECKPOINT_MAX_BYTES,
        ),
        (
            "trusted root",
            ManifestFields::TrustRootSet {
                version: 1,
                expires_at: 1_798_761_600,
            },
            vec!["trusted_root.json".to_owned()],
            "trusted root",
            TRUSTED_ROOT_MAX_BYTES,
        ),
        (
            "kms key",
            ManifestFields::TrustRootSet {
                version: 1,
                expires_at: 1_798_761_600,
            },
            vec!["kms/release.pem".to_owned()],
            "KMS public key",
            KMS_PEM_MAX_BYTES,
        ),
        (
            "sigstore bundle",
            ManifestFields::Evidence {
                subjects: Vec::new(),
            },
            vec!["sigstore/a.sigstore.json".to_owned()],
            "Sigstore bundle",
            SIGSTORE_BUNDLE_MAX_BYTES,
        ),
    ];
    for (name, fields, paths, expected_kind, cap) in cases {
        let tgz = manifest_first_bomb(fields, &paths, size);
        let error = read_both("bomb.tgz", &tgz, &Limits::default()).expect_err(name);
        let first = paths.iter().min().expect("paths");
        assert!(
            matches!(&error, BundleError::TooLarge {
                path,
                measure: Measure::DeclaredFileBytes { file_kind },
                actual,
                limit,
                ..
            } if path == first && *file_kind == expected_kind && *actual == size && *limit == cap),
            "row {name}: {error:?}"
        );
        assert_eq!(
            error.reason_code(),
            ReasonCode::BundleTooLarge,
            "row {name}"
        );
        let message = error.to_string();
        assert!(message.contains(first.as_str()), "row {name}: {message}");
        assert!(message.contains(&size.to_string()), "row {name}: {message}");
        assert!(message.contains(&cap.to_string()), "row {name}: {message}");
    }
}

#[test]
fn open_tiles_rejects_manifest_first_bomb() {
    let size = 63 * 1024 * 1024;
    let fields = ManifestFields::RekorTiles {
        logs: vec![LogRef {
            origin: "demo-log.stella.example".to_owned(),
            dir: "logs/0".to_owned(),
        }],
    };
    let paths: Vec<String> = (0..15).map(|n| format!("logs/0/tile/0/{n:03}")).collect();
    let tgz = manifest_first_bomb(fields, &paths, size);
    let error = open_tiles_both("bomb.tgz", &tgz, &Limits::default()).expect_err("bomb");
    assert_eq!(
        error.to_string(),
        format!(
            "bomb.tgz: logs/0/tile/0/000: declared size of a hash tile is {size} bytes, over the \
             limit of {HASH_TILE_MAX_BYTES} bytes"
        )
    );
}
