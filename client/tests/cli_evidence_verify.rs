//! `stella evidence verify` checks the archive locally before it contacts the attestor.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::{Run, arg, closed_port_url, stella, string_at, vectors};

/// Packs the DSSE happy-path bundle into `dir/evidence.tgz` with the built binary.
fn packed_evidence(dir: &Path) -> Option<PathBuf> {
    let file =
        vectors("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path/bundle.sigstore.json")?;
    let out = dir.join("evidence.tgz");
    let run = stella(&[
        "evidence",
        "pack",
        "--sigstore-bundle",
        arg(&file),
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 0, "pack failed: {}", run.stderr);
    Some(out)
}

/// Runs `stella evidence verify --offline` on `bundle` against the attestor at `attestor_url`,
/// with JSON output when `json` is set.
fn verify_offline(attestor_url: &str, bundle: &Path, json: bool) -> Run {
    let mut args = Vec::new();
    if json {
        args.extend(["--output", "json"]);
    }
    args.extend([
        "--attestor",
        attestor_url,
        "evidence",
        "verify",
        "--bundle",
        arg(bundle),
        "--offline",
    ]);
    stella(&args)
}

/// Reads a .tgz into (path, bytes) pairs.
fn unpack(tgz: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry
            .path()
            .expect("entry path")
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry content");
        files.insert(path, bytes);
    }
    files
}

/// Writes (path, bytes) pairs as a .tgz of plain ustar entries.
fn repack(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_path(path).expect("entry path");
        header.set_size(u64::try_from(bytes.len()).expect("size"));
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append(&header, bytes.as_slice())
            .expect("append entry");
    }
    builder
        .into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gzip")
}

#[test]
fn repack_round_trip_verifies() {
    // The re-packing helper alone must not break the archive, or the next test proves nothing.
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(packed) = packed_evidence(dir.path()) else {
        return;
    };
    let files = unpack(&std::fs::read(&packed).expect("read archive"));
    let copy = dir.path().join("copy.tgz");
    std::fs::write(&copy, repack(&files)).expect("write archive");

    let closed = closed_port_url();
    let run = verify_offline(&closed, &copy, false);
    assert_eq!(
        run.code, 4,
        "an intact archive must pass the local check and reach the network: {}",
        run.stderr
    );
    assert!(run.stderr.contains(&closed), "stderr: {}", run.stderr);
}

#[test]
fn corrupted_archive_rejected_offline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(packed) = packed_evidence(dir.path()) else {
        return;
    };
    let mut files = unpack(&std::fs::read(&packed).expect("read archive"));
    let inner = "sigstore/bundle.sigstore.json";
    let content = files.get_mut(inner).expect("packed Sigstore bundle");
    // Change one byte of the JSON, keeping its size: `"mediaType"` becomes `"mediaTypf"`.
    let at = content
        .windows(9)
        .position(|window| window == b"mediaType")
        .expect("mediaType key");
    content[at + 8] = b'f';
    let corrupted = dir.path().join("corrupted.tgz");
    std::fs::write(&corrupted, repack(&files)).expect("write archive");

    // The attestor URL points at a closed port: reaching the network would exit 4, not 1.
    let closed = closed_port_url();
    let run = verify_offline(&closed, &corrupted, false);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("ERR_FILE_DIGEST_MISMATCH"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(inner),
        "stderr does not name the inner file: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("corrupted.tgz"),
        "stderr does not name the archive: {}",
        run.stderr
    );

    let run = verify_offline(&closed, &corrupted, true);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_FILE_DIGEST_MISMATCH"
    );
    let message = string_at(&object, "error");
    assert!(message.contains(inner), "message: {message}");
}

#[test]
fn truncated_archive_rejected_offline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(packed) = packed_evidence(dir.path()) else {
        return;
    };
    let bytes = std::fs::read(&packed).expect("read archive");
    let truncated = dir.path().join("truncated.tgz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write archive");

    let closed = closed_port_url();
    let run = verify_offline(&closed, &truncated, true);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(string_at(&object, "reason_code"), "ERR_BUNDLE_MALFORMED");
    assert!(
        run.stderr.contains("truncated.tgz"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn missing_archive_exits_five() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let absent = dir.path().join("absent.tgz");
    let run = stella(&["evidence", "verify", "--bundle", arg(&absent), "--offline"]);
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("absent.tgz"), "stderr: {}", run.stderr);
}
