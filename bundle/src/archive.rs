//! Reading and writing the gzip-compressed tar container of every bundle, in memory.
//!
//! Reading collects the files that the streaming reader in `reader` hands over into a map, so
//! both paths make the same checks. Writing produces POSIX.1-1988 ustar entries in one RFC 1952
//! gzip member.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use flate2::Compression;
use tar::{EntryType, Header};

use crate::error::{BundleError, Measure, NEW_ARCHIVE, malformed, printable, rejected, too_large};
use crate::limits::Limits;
use crate::manifest::{BundleKind, MANIFEST_PATH, Manifest};
use crate::path::check_path;
use crate::reader::{EntryVisitor, Flow, Streamed, read_entries};

/// Compression level of written archives. Fixed, because the level changes the output bytes.
const GZIP_LEVEL: u32 = 6;

/// Mode bits of every written file.
const FILE_MODE: u32 = 0o644;

/// Reads a `.tgz` bundle into a map from path to content, entirely in memory, and checks every
/// file against `manifest.json`, which must be the first regular file. The map includes
/// `manifest.json`. Directories are accepted and dropped from the result.
///
/// The reader does not check the manifest's `format`; [`crate::open_trust_set`],
/// [`crate::open_tiles`] and [`crate::open_evidence`] do.
///
/// # Errors
///
/// - [`BundleError::TooLarge`] when the archive, a file, the sum of files, the entry count or the
///   decompressed stream exceeds `limits`. Sizes are checked from the tar headers and from the
///   manifest before any data of the file in question is read.
/// - [`BundleError::EntryRejected`] for an unsafe path (see [`crate::MAX_PATH_BYTES`] and the
///   path rules in `docs/formats.md`) or any entry that is not a regular file or directory. Also
///   for a duplicate path, a path below a regular file, or a file that the manifest does not list.
/// - [`BundleError::Malformed`] for a broken gzip or tar stream, truncation, a missing
///   end-of-archive marker, or data after it or after the gzip member; for a `manifest.json`
///   that is missing, not the first regular file or invalid; for a tar header size that differs
///   from the manifest; and for a listed file that is missing.
/// - [`BundleError::FileDigestMismatch`] for a file whose SHA-256 differs from the manifest.
pub fn read_archive(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    read_bundle(file_name, tgz, limits, None).map(|unpacked| unpacked.files)
}

/// The content of an archive that passed every check of [`read_archive`].
pub(crate) struct Unpacked {
    /// The exact bytes of `manifest.json`.
    pub(crate) manifest_json: Vec<u8>,
    /// The parsed `manifest.json`.
    pub(crate) manifest: Manifest,
    /// Every regular file by path, `manifest.json` included.
    pub(crate) files: BTreeMap<String, Vec<u8>>,
}

/// Reads an archive as [`read_archive`] does. With `kind`, it also rejects a manifest of another
/// format as soon as the manifest is read.
pub(crate) fn read_bundle(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
    kind: Option<BundleKind>,
) -> Result<Unpacked, BundleError> {
    check_archive_size(file_name, tgz, limits)?;
    let mut collector = Collector {
        files: BTreeMap::new(),
    };
    let Streamed {
        manifest_json,
        manifest,
    } = read_entries(file_name, tgz, limits, kind, &mut collector)?;
    let mut files = collector.files;
    files.insert(MANIFEST_PATH.to_owned(), manifest_json.clone());
    Ok(Unpacked {
        manifest_json,
        manifest,
        files,
    })
}

/// Checks the size of an archive held in memory against `max_archive_bytes` before any of it is
/// decompressed, so the error states the exact size.
pub(crate) fn check_archive_size(
    archive: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<(), BundleError> {
    let compressed = u64::try_from(tgz.len()).unwrap_or(u64::MAX);
    if compressed > limits.max_archive_bytes {
        return Err(too_large(
            archive,
            "",
            Measure::ArchiveBytes,
            compressed,
            limits.max_archive_bytes,
        ));
    }
    Ok(())
}

/// Collects every file after `manifest.json` into a map.
struct Collector {
    files: BTreeMap<String, Vec<u8>>,
}

impl EntryVisitor<BundleError> for Collector {
    fn manifest(&mut self, _: &Manifest, _: &[u8]) -> Result<Flow, BundleError> {
        Ok(Flow::Continue)
    }

    fn file(&mut self, path: String, content: Vec<u8>) -> Result<(), BundleError> {
        self.files.insert(path, content);
        Ok(())
    }
}

/// Rejects an entry whose parent is a regular file, such as `a` and `a/b` in one archive.
fn check_no_nesting_under_files(
    archive: &str,
    files: &BTreeMap<String, Vec<u8>>,
    directories: &BTreeSet<String>,
) -> Result<(), BundleError> {
    for path in files.keys().chain(directories.iter()) {
        for (end, _) in path.match_indices('/') {
            let parent = path.get(..end).unwrap_or_default();
            if files.contains_key(parent) {
                return Err(rejected(
                    archive,
                    path,
                    format!("parent {parent} is a regular file"),
                ));
            }
        }
    }
    Ok(())
}

/// Writes files as a deterministic `.tgz`: `manifest.json` first when the map contains it, then
/// the other files sorted by path. Headers are ustar with mode 0644, uid and gid 0, mtime 0 and
/// empty user and group names. There are no directory entries, and the gzip header has no file
/// name or mtime. The same map gives the same bytes with the same flate2 build, but the bundle's
/// identity is the digest of `manifest.json`, not of these bytes.
///
/// The map need not be a valid bundle. Tests use this function to write archives that a reader
/// must reject.
///
/// # Errors
///
/// [`BundleError::EntryRejected`] (archive name [`NEW_ARCHIVE`]) for a path that breaks the path
/// rules, or one that is both a file and the parent of another file.
pub fn write_archive(files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, BundleError> {
    for path in files.keys() {
        check_path(path).map_err(|why| rejected(NEW_ARCHIVE, path, why))?;
    }
    check_no_nesting_under_files(NEW_ARCHIVE, files, &BTreeSet::new())?;

    let write_failed = |error: io::Error| {
        malformed(
            NEW_ARCHIVE,
            "",
            format!(
                "writing the archive failed: {}",
                printable(&error.to_string())
            ),
        )
    };
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    let mut builder = tar::Builder::new(gzip);
    let manifest = files.get_key_value(MANIFEST_PATH);
    let others = files
        .iter()
        .filter(|(path, _)| path.as_str() != MANIFEST_PATH);
    for (path, content) in manifest.into_iter().chain(others) {
        let mut header = Header::new_ustar();
        header.set_path(path).map_err(|e| {
            rejected(
                NEW_ARCHIVE,
                path,
                format!(
                    "path does not fit a ustar header: {}",
                    printable(&e.to_string())
                ),
            )
        })?;
        header.set_entry_type(EntryType::Regular);
        header.set_size(u64::try_from(content.len()).unwrap_or(u64::MAX));
        header.set_mode(FILE_MODE);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append(&header, content.as_slice())
            .map_err(write_failed)?;
    }
    let gzip = builder.into_inner().map_err(write_failed)?;
    let mut bytes = gzip.finish().map_err(write_failed)?;
    bytes.flush().map_err(write_failed)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::manifest::{FileEntry, ManifestFields};

    fn files(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.to_vec()))
            .collect()
    }

    /// Returns `entries` and a `manifest.json` (evidence format, no subjects) that lists them.
    fn bundle(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        let listed = entries
            .iter()
            .map(|(path, content)| FileEntry::for_content(path, content))
            .collect();
        let fields = ManifestFields::Evidence {
            subjects: Vec::new(),
        };
        let manifest = Manifest::new(listed, fields)
            .to_canonical_json("t.tgz")
            .expect("manifest");
        let mut files: BTreeMap<String, Vec<u8>> = entries
            .iter()
            .map(|(path, content)| ((*path).to_owned(), content.to_vec()))
            .collect();
        files.insert(MANIFEST_PATH.to_owned(), manifest);
        files
    }

    /// Returns the path of each header in the decompressed tar stream, in order.
    fn entry_order(tgz: &[u8]) -> Vec<String> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(tgz)
            .read_to_end(&mut tar)
            .expect("gunzip");
        let mut archive = tar::Archive::new(tar.as_slice());
        archive
            .entries()
            .expect("entries")
            .map(|entry| {
                let entry = entry.expect("entry");
                String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8 path")
            })
            .collect()
    }

    #[test]
    fn write_read_round_trip() {
        let input = bundle(&[("a", b"one"), ("b/c", &[0u8; 513]), ("b/d", b"")]);
        let tgz = write_archive(&input).expect("write");
        let output = read_archive("t.tgz", &tgz, &Limits::default()).expect("read");
        assert_eq!(output, input);
    }

    #[test]
    fn write_puts_manifest_first() {
        // "kms/a" and "a" sort before "manifest.json", so only the rule puts it first.
        let input = bundle(&[("a", b"one"), ("kms/a", b"two"), ("z", b"three")]);
        let tgz = write_archive(&input).expect("write");
        assert_eq!(
            entry_order(&tgz),
            ["manifest.json", "a", "kms/a", "z"],
            "manifest.json first, then the other files sorted by path"
        );
    }

    #[test]
    fn write_without_manifest_sorted() {
        let tgz = write_archive(&files(&[("b", b"x"), ("a", b"y")])).expect("write");
        assert_eq!(entry_order(&tgz), ["a", "b"]);
    }

    #[test]
    fn read_rejects_missing_manifest() {
        let tgz = write_archive(&files(&[("a", b"x")])).expect("write");
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("no manifest");
        assert!(
            matches!(&error, BundleError::Malformed { path, why, .. }
                if path == MANIFEST_PATH && why.contains("\"a\" comes first")),
            "{error}"
        );
    }

    #[test]
    fn read_rejects_empty_archive() {
        let tgz = write_archive(&BTreeMap::new()).expect("write");
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("empty");
        assert!(
            matches!(&error, BundleError::Malformed { path, why, .. }
                if path == MANIFEST_PATH && why.contains("missing")),
            "{error}"
        );
    }

    #[test]
    fn write_gzip_header_fixed() {
        let tgz = write_archive(&files(&[("a", b"x")])).expect("write");
        // Magic, deflate, no flags, mtime 0, no extra flags at level 6, OS 255 (unknown).
        assert_eq!(
            tgz.get(..10),
            Some(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255][..])
        );
    }

    #[test]
    fn write_rejects_file_parent() {
        let error = write_archive(&files(&[("a", b"x"), ("a/b", b"y")])).expect_err("nesting");
        assert!(
            matches!(error, BundleError::EntryRejected { ref path, .. } if path == "a/b"),
            "{error}"
        );
    }

    #[test]
    fn write_rejects_long_path() {
        let long = format!("{}/{}", "a".repeat(160), "b".repeat(20));
        let error =
            write_archive(&files(&[(long.as_str(), b"x")])).expect_err("too long for ustar");
        assert!(
            matches!(error, BundleError::EntryRejected { .. }),
            "{error}"
        );
    }

    #[test]
    fn read_rejects_gzip_trailing_data() {
        let mut tgz = write_archive(&bundle(&[("a", b"x")])).expect("write");
        tgz.extend_from_slice(b"junk");
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("trailing");
        assert!(
            matches!(error, BundleError::Malformed { ref why, .. } if why.contains("trailing")),
            "{error}"
        );
    }

    #[test]
    fn read_rejects_second_gzip_member() {
        let mut tgz = write_archive(&bundle(&[("a", b"x")])).expect("write");
        let second = write_archive(&bundle(&[("b", b"y")])).expect("write");
        tgz.extend_from_slice(&second);
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("two members");
        assert!(matches!(error, BundleError::Malformed { .. }), "{error}");
    }

    #[test]
    fn read_rejects_bad_crc() {
        let mut tgz = write_archive(&bundle(&[("a", b"x")])).expect("write");
        let crc_at = tgz.len() - 8;
        if let Some(byte) = tgz.get_mut(crc_at) {
            *byte ^= 1;
        }
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("crc");
        assert!(matches!(error, BundleError::Malformed { .. }), "{error}");
    }
}
