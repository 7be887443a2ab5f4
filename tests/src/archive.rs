//! Rewrites offline bundles (`.tgz`) for negative tests: a byte flipped inside one file with the
//! manifest left as it was, or a hostile tar entry appended.
//!
//! Hostile entries are written as plain ustar headers with raw name fields, because the `tar`
//! crate's path setters reject absolute paths and `..` components, which is exactly what these
//! tests need to produce.

use std::io::Read;
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// One file of a bundle, as read from the archive.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    /// Path inside the archive.
    pub path: String,
    /// The tar header as stored.
    pub header: Header,
    /// File contents.
    pub data: Vec<u8>,
}

/// Reads every entry of a `.tgz` into memory, in archive order.
///
/// # Panics
///
/// Panics on a malformed archive, since the tests only read bundles the `stella` binary wrote.
pub fn read_tgz(tgz: &[u8]) -> Vec<ArchiveFile> {
    let mut archive = tar::Archive::new(GzDecoder::new(tgz));
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(err) => panic!("cannot read the tar stream: {err}"),
    };
    let mut files = Vec::new();
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(err) => panic!("cannot read a tar entry: {err}"),
        };
        let path = match entry.path() {
            Ok(path) => path.to_string_lossy().into_owned(),
            Err(err) => panic!("tar entry has an unreadable path: {err}"),
        };
        let header = entry.header().clone();
        let mut data = Vec::new();
        if let Err(err) = entry.read_to_end(&mut data) {
            panic!("cannot read tar entry {path}: {err}");
        }
        files.push(ArchiveFile { path, header, data });
    }
    files
}

/// Writes files back into a `.tgz`, keeping each header (mode, times, type) and path.
pub fn write_tgz(files: &[ArchiveFile]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for file in files {
        let mut header = file.header.clone();
        header.set_size(file.data.len() as u64);
        if let Err(err) = builder.append_data(&mut header, &file.path, file.data.as_slice()) {
            panic!("cannot write tar entry {}: {err}", file.path);
        }
    }
    finish(builder)
}

fn finish(builder: tar::Builder<GzEncoder<Vec<u8>>>) -> Vec<u8> {
    let encoder = match builder.into_inner() {
        Ok(encoder) => encoder,
        Err(err) => panic!("cannot finish the tar stream: {err}"),
    };
    match encoder.finish() {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot finish the gzip stream: {err}"),
    }
}

/// Returns the parsed `manifest.json` of a bundle.
///
/// # Panics
///
/// Panics when the bundle has no parseable `manifest.json`.
pub fn manifest(tgz: &[u8]) -> Value {
    let files = read_tgz(tgz);
    let Some(file) = files.iter().find(|file| file.path == "manifest.json") else {
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        panic!("bundle has no manifest.json; it holds {paths:?}");
    };
    match serde_json::from_slice(&file.data) {
        Ok(value) => value,
        Err(err) => panic!("manifest.json is not JSON: {err}"),
    }
}

/// Returns the paths listed in the manifest's `files` array, in manifest order.
pub fn manifest_paths(tgz: &[u8]) -> Vec<String> {
    let manifest = manifest(tgz);
    let Some(Value::Array(files)) = manifest.get("files") else {
        panic!("manifest.json has no `files` array: {manifest}");
    };
    files
        .iter()
        .map(|file| match file.get("path") {
            Some(Value::String(path)) => path.clone(),
            other => panic!("manifest file entry has path {other:?}: {file}"),
        })
        .collect()
}

/// Returns a copy of the bundle with one byte of `inner_path` inverted (at the middle of the
/// file), leaving the manifest and every other file unchanged.
///
/// # Panics
///
/// Panics when the archive has no non-empty file at `inner_path`.
pub fn flip_byte(tgz: &[u8], inner_path: &str) -> Vec<u8> {
    let mut files = read_tgz(tgz);
    let Some(file) = files.iter_mut().find(|file| file.path == inner_path) else {
        panic!("bundle has no file {inner_path}");
    };
    assert!(
        !file.data.is_empty(),
        "{inner_path} is empty; nothing to flip"
    );
    let middle = file.data.len() / 2;
    file.data[middle] ^= 0xff;
    write_tgz(&files)
}

/// Returns a copy of the bundle with `inner_path` replaced by `data` and its manifest entry
/// (`sha256`, `size`) updated to match, as an attacker who rewrites a bundle would do.
///
/// The manifest is written back with sorted keys and no whitespace, which is its canonical
/// (RFC 8785) form for the strings and integers it contains.
///
/// # Panics
///
/// Panics when the archive has no file at `inner_path` or the manifest does not list it.
pub fn replace_file(tgz: &[u8], inner_path: &str, data: Vec<u8>) -> Vec<u8> {
    let mut files = read_tgz(tgz);
    let digest = hex::encode(Sha256::digest(&data));
    let size = data.len();
    let Some(file) = files.iter_mut().find(|file| file.path == inner_path) else {
        panic!("bundle has no file {inner_path}");
    };
    file.data = data;

    let Some(manifest_file) = files.iter_mut().find(|file| file.path == "manifest.json") else {
        panic!("bundle has no manifest.json");
    };
    let mut manifest: Value = match serde_json::from_slice(&manifest_file.data) {
        Ok(value) => value,
        Err(err) => panic!("manifest.json is not JSON: {err}"),
    };
    let entry = manifest
        .get_mut("files")
        .and_then(Value::as_array_mut)
        .and_then(|entries| {
            entries
                .iter_mut()
                .find(|entry| entry.get("path").and_then(Value::as_str) == Some(inner_path))
        });
    let Some(entry) = entry else {
        panic!("manifest.json does not list {inner_path}");
    };
    entry["sha256"] = Value::from(digest);
    entry["size"] = Value::from(size);
    manifest_file.data = match serde_json::to_vec(&manifest) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot serialise the manifest: {err}"),
    };
    write_tgz(&files)
}

/// Returns a copy of the bundle without `inner_path`, removed from the archive and from the
/// manifest's `files` array, so the bundle is well formed and only lacks that file.
///
/// The manifest is written back as in [`replace_file`], so the bundle gets a new digest.
///
/// # Panics
///
/// Panics when the archive has no file at `inner_path` or the manifest does not list it.
pub fn remove_file(tgz: &[u8], inner_path: &str) -> Vec<u8> {
    let mut files = read_tgz(tgz);
    let count = files.len();
    files.retain(|file| file.path != inner_path);
    assert_eq!(files.len() + 1, count, "bundle has no file {inner_path}");

    let Some(manifest_file) = files.iter_mut().find(|file| file.path == "manifest.json") else {
        panic!("bundle has no manifest.json");
    };
    let mut manifest: Value = match serde_json::from_slice(&manifest_file.data) {
        Ok(value) => value,
        Err(err) => panic!("manifest.json is not JSON: {err}"),
    };
    let Some(entries) = manifest.get_mut("files").and_then(Value::as_array_mut) else {
        panic!("manifest.json has no `files` array");
    };
    let listed = entries.len();
    entries.retain(|entry| entry.get("path").and_then(Value::as_str) != Some(inner_path));
    assert_eq!(entries.len() + 1, listed, "manifest.json does not list {inner_path}");
    manifest_file.data = match serde_json::to_vec(&manifest) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot serialise the manifest: {err}"),
    };
    write_tgz(&files)
}

/// A tar entry that a safe unpacker must reject.
#[derive(Debug, Clone)]
pub enum HostileEntry {
    /// A regular file with an absolute path.
    AbsolutePath {
        /// Absolute target path.
        path: String,
    },
    /// A regular file whose path climbs out with `..` components.
    ParentDir {
        /// Relative path containing `..`.
        path: String,
    },
    /// A symbolic link pointing outside, followed by a file written through it.
    Symlink {
        /// Path of the link inside the archive.
        path: String,
        /// Where the link points.
        target: String,
    },
    /// A hard link to a file outside, followed by a regular file of the same name, which an
    /// unpacker that follows the link would write into the outside file.
    HardLink {
        /// Path of the link inside the archive.
        path: String,
        /// The outside file.
        target: String,
    },
    /// A character device node (`/dev/null`'s numbers).
    CharDevice {
        /// Path of the node inside the archive.
        path: String,
    },
    /// A named pipe.
    Fifo {
        /// Path of the pipe inside the archive.
        path: String,
    },
}

impl HostileEntry {
    /// Returns the path of the hostile entry inside the archive.
    pub fn entry_path(&self) -> &str {
        match self {
            HostileEntry::AbsolutePath { path }
            | HostileEntry::ParentDir { path }
            | HostileEntry::Symlink { path, .. }
            | HostileEntry::HardLink { path, .. }
            | HostileEntry::CharDevice { path }
            | HostileEntry::Fifo { path } => path,
        }
    }

    /// Returns a short label for messages, such as `symlink`.
    pub fn label(&self) -> &'static str {
        match self {
            HostileEntry::AbsolutePath { .. } => "absolute path",
            HostileEntry::ParentDir { .. } => "`..` component",
            HostileEntry::Symlink { .. } => "symlink",
            HostileEntry::HardLink { .. } => "hard link",
            HostileEntry::CharDevice { .. } => "character device",
            HostileEntry::Fifo { .. } => "fifo",
        }
    }
}

/// Content written by hostile regular-file entries, so a planted file is recognisable.
pub const PLANTED: &[u8] = b"planted by a hostile archive entry\n";

/// Returns a copy of the bundle with the hostile entry appended after the legitimate files.
pub fn append_hostile(tgz: &[u8], hostile: &HostileEntry) -> Vec<u8> {
    let files = read_tgz(tgz);
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for file in &files {
        let mut header = file.header.clone();
        header.set_size(file.data.len() as u64);
        if let Err(err) = builder.append_data(&mut header, &file.path, file.data.as_slice()) {
            panic!("cannot write tar entry {}: {err}", file.path);
        }
    }

    match hostile {
        HostileEntry::AbsolutePath { path } | HostileEntry::ParentDir { path } => {
            append_raw(&mut builder, path, EntryType::Regular, None, PLANTED);
        }
        HostileEntry::Symlink { path, target } => {
            append_raw(&mut builder, path, EntryType::Symlink, Some(target), b"");
            append_raw(
                &mut builder,
                &format!("{path}/planted.txt"),
                EntryType::Regular,
                None,
                PLANTED,
            );
        }
        HostileEntry::HardLink { path, target } => {
            append_raw(&mut builder, path, EntryType::Link, Some(target), b"");
            append_raw(&mut builder, path, EntryType::Regular, None, PLANTED);
        }
        HostileEntry::CharDevice { path } => {
            append_raw(&mut builder, path, EntryType::Char, None, b"");
        }
        HostileEntry::Fifo { path } => {
            append_raw(&mut builder, path, EntryType::Fifo, None, b"");
        }
    }
    finish(builder)
}

/// Appends a plain ustar entry with the name and link name copied byte for byte into the header.
/// A name of 100 bytes or more is split at a `/` between the ustar `prefix` and `name` fields.
fn append_raw(
    builder: &mut tar::Builder<GzEncoder<Vec<u8>>>,
    path: &str,
    entry_type: EntryType,
    link_name: Option<&str>,
    data: &[u8],
) {
    let mut header = Header::new_ustar();
    let (prefix, name) = split_ustar_path(path);
    let Some(ustar) = header.as_ustar_mut() else {
        panic!("a new ustar header has no ustar fields");
    };
    set_raw_field(&mut ustar.name, name);
    set_raw_field(&mut ustar.prefix, prefix);
    if let Some(link_name) = link_name {
        set_raw_field(&mut ustar.linkname, link_name);
    }
    header.set_entry_type(entry_type);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    if entry_type == EntryType::Char {
        // Major 1, minor 3 is /dev/null on Linux.
        if let Err(err) = header.set_device_major(1) {
            panic!("cannot set device major: {err}");
        }
        if let Err(err) = header.set_device_minor(3) {
            panic!("cannot set device minor: {err}");
        }
    }
    header.set_cksum();
    if let Err(err) = builder.append(&header, data) {
        panic!("cannot append hostile entry {path}: {err}");
    }
}

/// Splits a path into the ustar `prefix` (up to 155 bytes) and `name` (up to 99 bytes) at a `/`.
fn split_ustar_path(path: &str) -> (&str, &str) {
    if path.len() < 100 {
        return ("", path);
    }
    let split = path
        .char_indices()
        .filter(|&(at, c)| c == '/' && at <= 155 && path.len() - at - 1 < 100)
        .map(|(at, _)| at)
        .next();
    match split {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => panic!("{path:?} does not fit the ustar prefix and name fields"),
    }
}

fn set_raw_field(field: &mut [u8], value: &str) {
    let bytes = value.as_bytes();
    assert!(
        bytes.len() <= field.len(),
        "raw tar field {value:?} is longer than {} bytes",
        field.len()
    );
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// Returns a relative path that climbs to `/` with enough `..` components for any extraction
/// directory up to 24 levels deep, and then descends to `absolute`. An unpacker that honoured it
/// would write exactly to `absolute`, which the test can check.
pub fn climbing_path(absolute: &Path) -> String {
    let relative = absolute.to_string_lossy();
    let relative = relative.trim_start_matches('/');
    format!("{}{relative}", "../".repeat(24))
}

/// Returns a `.tgz` holding one regular file of `size` bytes of incompressible data, for size
/// limits that must apply before any manifest check.
pub fn incompressible_tgz(inner_path: &str, size: usize) -> Vec<u8> {
    // A xorshift stream: deterministic and incompressible enough for gzip.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);

    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut header = Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    if let Err(err) = builder.append_data(&mut header, inner_path, data.as_slice()) {
        panic!("cannot write {inner_path}: {err}");
    }
    finish(builder)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    /// Builds a small bundle (a manifest and one data file) with the `tar` crate's safe API.
    fn sample_bundle() -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, data) in [
            (
                "manifest.json",
                br#"{"files":[{"path":"data/one.txt"}]}"#.as_slice(),
            ),
            ("data/one.txt", b"0123456789".as_slice()),
        ] {
            let mut header = Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, path, data)
                .expect("append sample entry");
        }
        finish(builder)
    }

    /// Path bytes, entry type and link name bytes of one tar entry.
    type RawEntry = (Vec<u8>, EntryType, Option<Vec<u8>>);

    /// Returns the raw fields of every entry (ustar prefix joined to the name), without any path
    /// validation.
    fn raw_entries(tgz: &[u8]) -> Vec<RawEntry> {
        let mut archive = tar::Archive::new(GzDecoder::new(tgz));
        archive
            .entries()
            .expect("entries")
            .map(|entry| {
                let entry = entry.expect("entry");
                let path = entry.path_bytes().into_owned();
                let link = entry.link_name_bytes().map(|link| link.into_owned());
                (path, entry.header().entry_type(), link)
            })
            .collect()
    }

    #[test]
    fn flip_byte_changes_one_byte() {
        let bundle = sample_bundle();
        let flipped = flip_byte(&bundle, "data/one.txt");

        let before: BTreeMap<String, Vec<u8>> = read_tgz(&bundle)
            .into_iter()
            .map(|file| (file.path, file.data))
            .collect();
        let after: BTreeMap<String, Vec<u8>> = read_tgz(&flipped)
            .into_iter()
            .map(|file| (file.path, file.data))
            .collect();
        assert_eq!(after["manifest.json"], before["manifest.json"]);
        let changed: Vec<usize> = (0..10)
            .filter(|&i| after["data/one.txt"][i] != before["data/one.txt"][i])
            .collect();
        assert_eq!(changed, vec![5]);
        assert_eq!(manifest_paths(&flipped), vec!["data/one.txt".to_owned()]);
    }

    #[test]
    fn hostile_entries_keep_raw_names() {
        let long_target = format!("/tmp/{}/target", "d".repeat(60));
        let rows: Vec<(&str, HostileEntry, Vec<RawEntry>)> = vec![
            (
                "absolute path",
                HostileEntry::AbsolutePath {
                    path: "/tmp/x/abs".into(),
                },
                vec![(b"/tmp/x/abs".to_vec(), EntryType::Regular, None)],
            ),
            (
                "long climbing path",
                HostileEntry::ParentDir {
                    path: climbing_path(Path::new(&long_target)),
                },
                vec![(
                    climbing_path(Path::new(&long_target)).into_bytes(),
                    EntryType::Regular,
                    None,
                )],
            ),
            (
                "symlink then file through it",
                HostileEntry::Symlink {
                    path: "link".into(),
                    target: "/tmp/x".into(),
                },
                vec![
                    (
                        b"link".to_vec(),
                        EntryType::Symlink,
                        Some(b"/tmp/x".to_vec()),
                    ),
                    (b"link/planted.txt".to_vec(), EntryType::Regular, None),
                ],
            ),
            (
                "hard link then overwrite",
                HostileEntry::HardLink {
                    path: "hl".into(),
                    target: long_target.clone(),
                },
                vec![
                    (
                        b"hl".to_vec(),
                        EntryType::Link,
                        Some(long_target.clone().into_bytes()),
                    ),
                    (b"hl".to_vec(), EntryType::Regular, None),
                ],
            ),
            (
                "character device",
                HostileEntry::CharDevice { path: "dev".into() },
                vec![(b"dev".to_vec(), EntryType::Char, None)],
            ),
            (
                "fifo",
                HostileEntry::Fifo {
                    path: "fifo".into(),
                },
                vec![(b"fifo".to_vec(), EntryType::Fifo, None)],
            ),
        ];
        for (name, hostile, expected_tail) in rows {
            let tgz = append_hostile(&sample_bundle(), &hostile);
            let entries = raw_entries(&tgz);
            assert_eq!(entries.len(), 2 + expected_tail.len(), "{name}");
            let tail = &entries[2..];
            for ((path, kind, link), (want_path, want_kind, want_link)) in
                tail.iter().zip(&expected_tail)
            {
                assert_eq!(
                    String::from_utf8_lossy(path),
                    String::from_utf8_lossy(want_path),
                    "{name}: path"
                );
                assert_eq!(kind, want_kind, "{name}: entry type");
                if want_link.is_some() {
                    assert_eq!(link, want_link, "{name}: link name");
                }
            }
        }
    }

    #[test]
    fn climbing_path_resolves_to_target() {
        let target = Path::new("/tmp/some/target");
        let path = climbing_path(target);
        assert!(path.starts_with("../../"));
        // Any extraction directory up to 24 levels deep resolves back to the target.
        let mut resolved = PathBuf::from("/a/b/c/d/e");
        for component in Path::new(&path).components() {
            match component {
                std::path::Component::ParentDir => {
                    resolved.pop();
                }
                std::path::Component::Normal(part) => resolved.push(part),
                other => panic!("unexpected component {other:?}"),
            }
        }
        assert_eq!(resolved, target);
    }

    #[test]
    fn incompressible_tgz_stays_large() {
        let tgz = incompressible_tgz("manifest.json", 64 * 1024);
        assert!(
            tgz.len() > 64 * 1024,
            "gzip shrank the data to {} bytes",
            tgz.len()
        );
    }
}
