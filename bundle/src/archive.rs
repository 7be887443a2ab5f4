//! Reading and writing the gzip-compressed tar container of every bundle, in memory only.
//!
//! Implements the parts of POSIX.1-1988 ustar (with GNU-format headers also accepted on read) and
//! RFC 1952 gzip that bundles use: one gzip member holding regular files and, on read only,
//! directories. Links, devices, FIFOs, sparse files and PAX or GNU extension headers are
//! rejected, not interpreted.
//!
//! The reader walks the 512-byte tar blocks itself and uses `tar::Header` only to decode fields.
//! It avoids `tar::Archive` (tar 0.4.46), which accepts a stream that ends without the
//! end-of-archive marker or after a single zero block, and applies PAX and GNU long-name
//! headers to the next entry. Version 1 treats all of these as faults.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use flate2::Compression;
use tar::{EntryType, Header};

use crate::error::{BundleError, Measure, NEW_ARCHIVE, malformed, rejected, too_large};
use crate::limits::Limits;
use crate::path::check_path;

/// Size of a tar block, in bytes.
const BLOCK: usize = 512;

/// Size of the buffer used to drain the stream after the end-of-archive marker, in bytes.
const DRAIN_CHUNK: usize = 64 * 1024;

/// Compression level of written archives. Fixed, because the level changes the output bytes.
const GZIP_LEVEL: u32 = 6;

/// Mode bits of every written file.
const FILE_MODE: u32 = 0o644;

/// Counts decompressed bytes and fails once more than `cap` have been read.
struct CappedReader<R> {
    inner: R,
    read: u64,
    cap: u64,
    exceeded: bool,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        self.read = self.read.saturating_add(n64);
        if self.read > self.cap {
            self.exceeded = true;
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        Ok(n)
    }
}

/// State of one read, for turning I/O errors into bundle errors.
struct Reader<'a> {
    archive: &'a str,
    stream: CappedReader<flate2::bufread::GzDecoder<&'a [u8]>>,
}

impl Reader<'_> {
    /// Converts an error of the decompressed stream into a bundle error naming `path`.
    fn io_error(&self, path: &str, error: &io::Error) -> BundleError {
        if self.stream.exceeded {
            return too_large(
                self.archive,
                path,
                Measure::DecompressedBytes,
                self.stream.read,
                self.stream.cap,
            );
        }
        if error.kind() == io::ErrorKind::UnexpectedEof {
            return malformed(self.archive, path, "truncated gzip stream");
        }
        malformed(self.archive, path, format!("invalid gzip stream: {error}"))
    }

    /// Fills `buf` completely. Returns the number of bytes read, which is less than `buf.len()`
    /// only when the decompressed stream ended.
    fn fill(&mut self, path: &str, buf: &mut [u8]) -> Result<usize, BundleError> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.stream.read(rest) {
                Ok(0) => break,
                Ok(n) => filled = filled.saturating_add(n),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.io_error(path, &error)),
            }
        }
        Ok(filled)
    }

    /// Reads exactly `buf.len()` bytes of the entry at `path`. A stream that ends first is a
    /// truncated tar stream.
    fn exact(&mut self, path: &str, buf: &mut [u8]) -> Result<(), BundleError> {
        if self.fill(path, buf)? < buf.len() {
            return Err(malformed(
                self.archive,
                path,
                "truncated tar stream: entry data ends early",
            ));
        }
        Ok(())
    }
}

/// Renders a header path for messages, even when it is not valid UTF-8.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
}

/// Checks that a NUL-terminated header field contains only NUL bytes after its terminator, so
/// no text hides behind an embedded NUL.
fn check_nul_tail(field: &[u8]) -> bool {
    match field.iter().position(|b| *b == 0) {
        Some(end) => field
            .get(end..)
            .is_some_and(|tail| tail.iter().all(|b| *b == 0)),
        None => true,
    }
}

/// Describes an entry type that a reader rejects.
fn rejected_type(header: &Header) -> Option<String> {
    let kind = header.entry_type();
    let why = match kind {
        EntryType::Regular | EntryType::Directory => return None,
        EntryType::Symlink => {
            let target = header
                .link_name_bytes()
                .map(|t| shown(&t))
                .unwrap_or_default();
            format!(
                "symbolic link to {target:?} rejected, because only regular files and directories are allowed"
            )
        }
        EntryType::Link => {
            let target = header
                .link_name_bytes()
                .map(|t| shown(&t))
                .unwrap_or_default();
            format!(
                "hard link to {target:?} rejected, because only regular files and directories are allowed"
            )
        }
        EntryType::Char => {
            "character device rejected, because only regular files and directories are allowed"
                .into()
        }
        EntryType::Block => {
            "block device rejected, because only regular files and directories are allowed".into()
        }
        EntryType::Fifo => {
            "FIFO rejected, because only regular files and directories are allowed".into()
        }
        EntryType::XHeader
        | EntryType::XGlobalHeader
        | EntryType::GNULongName
        | EntryType::GNULongLink => {
            "PAX or GNU extension header rejected, because v1 archives use plain ustar headers only"
                .into()
        }
        other => format!(
            "entry type {:?} rejected, because only regular files and directories are allowed",
            char::from(other.as_byte())
        ),
    };
    Some(why)
}

/// Verifies the header checksum: the unsigned sum of all header bytes with the checksum field
/// read as eight spaces.
fn checksum_ok(block: &[u8; BLOCK], header: &Header) -> Result<bool, String> {
    let stored = header
        .cksum()
        .map_err(|e| format!("invalid header checksum field: {e}"))?;
    let mut sum: u32 = 0;
    for (position, byte) in block.iter().enumerate() {
        let value = if (148..156).contains(&position) {
            b' '
        } else {
            *byte
        };
        sum = sum.saturating_add(u32::from(value));
    }
    Ok(sum == stored)
}

/// One decoded tar header.
enum Item {
    File { path: String, size: u64 },
    Directory { path: String },
}

/// Decodes and checks one non-zero header block.
fn decode_header(archive: &str, block: &[u8; BLOCK]) -> Result<Item, BundleError> {
    let header = Header::from_byte_slice(block);
    let raw_path = header.path_bytes();
    let display = shown(&raw_path);

    match checksum_ok(block, header) {
        Ok(true) => {}
        Ok(false) => return Err(malformed(archive, &display, "tar header checksum mismatch")),
        Err(why) => return Err(malformed(archive, &display, why)),
    }
    if header.as_ustar().is_none() && header.as_gnu().is_none() {
        return Err(malformed(
            archive,
            &display,
            "tar header has neither ustar nor GNU magic",
        ));
    }
    if let Some(why) = rejected_type(header) {
        return Err(rejected(archive, &display, why));
    }

    let old = header.as_old();
    let prefix_clean = header
        .as_ustar()
        .is_none_or(|ustar| check_nul_tail(&ustar.prefix));
    if !check_nul_tail(&old.name) || !prefix_clean {
        return Err(rejected(archive, &display, "path contains a NUL byte"));
    }
    let text = std::str::from_utf8(&raw_path)
        .map_err(|_| rejected(archive, &display, "path is not valid UTF-8"))?;

    let size = header.entry_size().map_err(|e| {
        malformed(
            archive,
            &display,
            format!("invalid size field in tar header: {e}"),
        )
    })?;

    if header.entry_type() == EntryType::Directory {
        let path = text.strip_suffix('/').unwrap_or(text);
        check_path(path).map_err(|why| rejected(archive, &display, why))?;
        if size != 0 {
            return Err(malformed(
                archive,
                &display,
                format!("directory entry with size {size}"),
            ));
        }
        return Ok(Item::Directory {
            path: path.to_owned(),
        });
    }
    check_path(text).map_err(|why| rejected(archive, &display, why))?;
    Ok(Item::File {
        path: text.to_owned(),
        size,
    })
}

/// Reads a `.tgz` bundle into a map from path to content, entirely in memory.
///
/// Directories are accepted and dropped from the result.
///
/// # Errors
///
/// - [`BundleError::TooLarge`] when the archive, a file, the sum of files, the entry count or the
///   decompressed stream exceeds `limits`. Sizes are checked from the headers before reading.
/// - [`BundleError::EntryRejected`] for an unsafe path (see [`crate::MAX_PATH_BYTES`] and the
///   path rules in `docs/formats.md`), any entry that is not a regular file or directory, a
///   duplicate path, or a path below a regular file.
/// - [`BundleError::Malformed`] for a broken gzip or tar stream, truncation, a missing
///   end-of-archive marker, or data after it or after the gzip member.
pub fn read_archive(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let archive = file_name;
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

    let mut reader = Reader {
        archive,
        stream: CappedReader {
            inner: flate2::bufread::GzDecoder::new(tgz),
            read: 0,
            cap: limits.max_decompressed_bytes(),
            exceeded: false,
        },
    };

    let mut files = BTreeMap::new();
    let mut directories = BTreeSet::new();
    let mut entries: u64 = 0;
    let mut total: u64 = 0;
    let mut block = [0u8; BLOCK];

    loop {
        let got = reader.fill("", &mut block)?;
        if got == 0 {
            return Err(malformed(
                archive,
                "",
                "truncated tar stream: no end-of-archive marker",
            ));
        }
        if got < BLOCK {
            return Err(malformed(
                archive,
                "",
                "truncated tar stream: partial header block",
            ));
        }
        if block.iter().all(|b| *b == 0) {
            read_end_of_archive(&mut reader)?;
            break;
        }

        entries = entries.saturating_add(1);
        if entries > limits.max_entries {
            return Err(too_large(
                archive,
                "",
                Measure::Entries,
                entries,
                limits.max_entries,
            ));
        }

        match decode_header(archive, &block)? {
            Item::Directory { path } => {
                if files.contains_key(&path) || !directories.insert(path.clone()) {
                    return Err(rejected(archive, &path, "duplicate path"));
                }
            }
            Item::File { path, size } => {
                if files.contains_key(&path) || directories.contains(&path) {
                    return Err(rejected(archive, &path, "duplicate path"));
                }
                if size > limits.max_file_bytes {
                    return Err(too_large(
                        archive,
                        &path,
                        Measure::FileBytes,
                        size,
                        limits.max_file_bytes,
                    ));
                }
                total = total.saturating_add(size);
                if total > limits.max_total_bytes {
                    return Err(too_large(
                        archive,
                        &path,
                        Measure::TotalBytes,
                        total,
                        limits.max_total_bytes,
                    ));
                }
                let content = read_content(&mut reader, &path, size, limits)?;
                files.insert(path, content);
            }
        }
    }

    check_no_nesting_under_files(archive, &files, &directories)?;

    let rest = reader.stream.inner.into_inner();
    if !rest.is_empty() {
        return Err(malformed(
            archive,
            "",
            format!(
                "{} bytes of trailing data after the gzip member",
                rest.len()
            ),
        ));
    }
    Ok(files)
}

/// Reads one file's content and the padding to the next block.
fn read_content(
    reader: &mut Reader<'_>,
    path: &str,
    size: u64,
    limits: &Limits,
) -> Result<Vec<u8>, BundleError> {
    let length = usize::try_from(size).map_err(|_| {
        too_large(
            reader.archive,
            path,
            Measure::FileBytes,
            size,
            limits.max_file_bytes,
        )
    })?;
    let mut content = vec![0u8; length];
    reader.exact(path, &mut content)?;

    let remainder = length % BLOCK;
    let padding = if remainder == 0 {
        0
    } else {
        BLOCK.saturating_sub(remainder)
    };
    let mut pad = [0u8; BLOCK];
    if let Some(pad) = pad.get_mut(..padding) {
        reader.exact(path, pad)?;
    }
    Ok(content)
}

/// Reads the second zero block of the end-of-archive marker, then drains the decompressed
/// stream to its end, which makes the gzip decoder check its CRC-32 and length trailer. Only
/// zero bytes (record padding) may follow the marker.
fn read_end_of_archive(reader: &mut Reader<'_>) -> Result<(), BundleError> {
    let archive = reader.archive;
    let mut block = [0u8; BLOCK];
    if reader.fill("", &mut block)? < BLOCK {
        return Err(malformed(
            archive,
            "",
            "truncated tar stream: end-of-archive marker has one zero block, not two",
        ));
    }
    if block.iter().any(|b| *b != 0) {
        return Err(malformed(
            archive,
            "",
            "tar header after a single zero block, but the end-of-archive marker is two zero blocks",
        ));
    }
    let mut chunk = vec![0u8; DRAIN_CHUNK];
    loop {
        let got = reader.fill("", &mut chunk)?;
        let data = chunk.get(..got).unwrap_or_default();
        if data.iter().any(|b| *b != 0) {
            return Err(malformed(
                archive,
                "",
                "data after the tar end-of-archive marker",
            ));
        }
        if got < chunk.len() {
            return Ok(());
        }
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

/// Writes files as a deterministic `.tgz`: entries sorted by path, ustar headers with mode 0644,
/// uid and gid 0, mtime 0 and empty user and group names, no directory entries, and a gzip
/// header without file name or mtime. The same map gives the same bytes with the same flate2
/// build; the bundle's identity is the digest of `manifest.json`, not of these bytes.
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
            format!("writing the archive failed: {error}"),
        )
    };
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    let mut builder = tar::Builder::new(gzip);
    for (path, content) in files {
        let mut header = Header::new_ustar();
        header.set_path(path).map_err(|e| {
            rejected(
                NEW_ARCHIVE,
                path,
                format!("path does not fit a ustar header: {e}"),
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
    use super::*;

    fn files(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.to_vec()))
            .collect()
    }

    #[test]
    fn write_read_round_trip() {
        let input = files(&[("a", b"one"), ("b/c", &[0u8; 513]), ("b/d", b"")]);
        let tgz = write_archive(&input).expect("write");
        let output = read_archive("t.tgz", &tgz, &Limits::default()).expect("read");
        assert_eq!(output, input);
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
        let mut tgz = write_archive(&files(&[("a", b"x")])).expect("write");
        tgz.extend_from_slice(b"junk");
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("trailing");
        assert!(
            matches!(error, BundleError::Malformed { ref why, .. } if why.contains("trailing")),
            "{error}"
        );
    }

    #[test]
    fn read_rejects_second_gzip_member() {
        let mut tgz = write_archive(&files(&[("a", b"x")])).expect("write");
        let second = write_archive(&files(&[("b", b"y")])).expect("write");
        tgz.extend_from_slice(&second);
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("two members");
        assert!(matches!(error, BundleError::Malformed { .. }), "{error}");
    }

    #[test]
    fn read_rejects_bad_crc() {
        let mut tgz = write_archive(&files(&[("a", b"x")])).expect("write");
        let crc_at = tgz.len() - 8;
        if let Some(byte) = tgz.get_mut(crc_at) {
            *byte ^= 1;
        }
        let error = read_archive("t.tgz", &tgz, &Limits::default()).expect_err("crc");
        assert!(matches!(error, BundleError::Malformed { .. }), "{error}");
    }
}
