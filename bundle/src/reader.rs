//! The streaming reader of the gzip-compressed tar container of every bundle.
//!
//! Implements the parts of POSIX.1-1988 ustar (with GNU-format headers also accepted) and
//! RFC 1952 gzip that bundles use: one gzip member holding regular files and directories.
//! Links, devices, FIFOs, sparse files and PAX or GNU extension headers are rejected, not
//! interpreted.
//!
//! The reader walks the 512-byte tar blocks itself and uses `tar::Header` only to decode fields.
//! It avoids `tar::Archive` (tar 0.4.46), which accepts a stream that ends without the
//! end-of-archive marker or after a single zero block, and applies PAX and GNU long-name
//! headers to the next entry. Version 1 treats all of these as faults.
//!
//! The first regular file of a v1 archive is `manifest.json`. The reader parses it before it
//! reads anything else and checks each later entry's path and size against it from the tar
//! header (see `listing`), so an archive cannot make the reader hold more file data than the
//! manifest declares. Each file is handed to the caller as soon as its digest matched, so at
//! most one file's content is in memory. Checks that need the whole archive (every listed file
//! present, the gzip trailer, no trailing data) run after the last file was handed over.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Read};

use crate::error::{BundleError, Measure, malformed, printable, rejected, too_large};
use crate::header::{BLOCK, Item, decode_header};
use crate::limits::Limits;
use crate::listing::Listing;
use crate::manifest::{BundleKind, MANIFEST_PATH, Manifest};

/// Size of the buffer used to drain the stream after the end-of-archive marker, in bytes.
const DRAIN_CHUNK: usize = 64 * 1024;

/// The next step of a reader after it handed over the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read and check the rest of the archive.
    Continue,
    /// Stop reading and return at once, such as when the bundle was imported before. Nothing
    /// after the manifest has been checked then.
    Stop,
}

/// Counts compressed bytes as the gzip decoder consumes them and fails once more than `cap`
/// were consumed. It also records whether an error came from the underlying reader.
struct CountingSource<R> {
    inner: R,
    consumed: u64,
    cap: u64,
    exceeded: bool,
    source_failed: bool,
}

impl<R: BufRead> CountingSource<R> {
    /// Returns how many more bytes may be consumed before the count passes `cap` by one byte.
    fn allowance(&self) -> u64 {
        self.cap.saturating_add(1).saturating_sub(self.consumed)
    }
}

impl<R: BufRead> Read for CountingSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        if let (Some(target), Some(source)) = (buf.get_mut(..n), available.get(..n)) {
            target.copy_from_slice(source);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CountingSource<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed > self.cap {
            self.exceeded = true;
            return Err(io::Error::other("compressed size limit exceeded"));
        }
        let allowance = usize::try_from(self.allowance()).unwrap_or(usize::MAX);
        match self.inner.fill_buf() {
            Ok(data) => Ok(data.get(..allowance).unwrap_or(data)),
            Err(error) => {
                if error.kind() != io::ErrorKind::Interrupted {
                    self.source_failed = true;
                }
                Err(error)
            }
        }
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
        let amount = u64::try_from(amount).unwrap_or(u64::MAX);
        self.consumed = self.consumed.saturating_add(amount);
    }
}

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
struct Reader<'a, R: BufRead> {
    archive: &'a str,
    stream: CappedReader<flate2::bufread::GzDecoder<CountingSource<R>>>,
}

impl<R: BufRead> Reader<'_, R> {
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
        let source = self.stream.inner.get_ref();
        if source.exceeded {
            return too_large(
                self.archive,
                "",
                Measure::ArchiveBytes,
                source.consumed,
                source.cap,
            );
        }
        if source.source_failed {
            return malformed(
                self.archive,
                path,
                format!(
                    "reading the archive failed: {}",
                    printable(&error.to_string())
                ),
            );
        }
        if error.kind() == io::ErrorKind::UnexpectedEof {
            return malformed(self.archive, path, "truncated gzip stream");
        }
        malformed(
            self.archive,
            path,
            format!("invalid gzip stream: {}", printable(&error.to_string())),
        )
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

/// Reads a `.tgz` bundle of any kind from `reader` with the checks of [`crate::read_archive`],
/// and hands each file after `manifest.json` to `on_file` once its size and digest matched the
/// manifest. Returns the parsed manifest and its exact bytes. At most one file's content is in
/// memory at a time, and at most `max_archive_bytes` plus one byte are read from `reader`.
///
/// A caller must discard every file it received unless the function returns `Ok`, because the
/// checks that need the whole archive (every listed file present, the gzip trailer, no trailing
/// data) run after the last file.
///
/// # Errors
///
/// The errors of [`crate::read_archive`], converted into `E`, and any error of `on_file`
/// unchanged. A failing `reader` gives [`BundleError::Malformed`]. For an archive over
/// `max_archive_bytes`, [`BundleError::TooLarge`] states the bytes read when reading stopped.
pub fn read_archive_streaming<R, E, F>(
    file_name: &str,
    reader: R,
    limits: &Limits,
    on_file: F,
) -> Result<(Manifest, Vec<u8>), E>
where
    R: BufRead,
    E: From<BundleError>,
    F: FnMut(String, Vec<u8>) -> Result<(), E>,
{
    /// Passes every file to the caller's function.
    struct FileVisitor<F>(F);

    impl<E, F: FnMut(String, Vec<u8>) -> Result<(), E>> EntryVisitor<E> for FileVisitor<F> {
        fn manifest(&mut self, _: &Manifest, _: &[u8]) -> Result<Flow, E> {
            Ok(Flow::Continue)
        }

        fn file(&mut self, path: String, content: Vec<u8>) -> Result<(), E> {
            (self.0)(path, content)
        }
    }

    let streamed = read_entries(file_name, reader, limits, None, &mut FileVisitor(on_file))?;
    Ok((streamed.manifest, streamed.manifest_json))
}

/// Receives what [`read_entries`] reads, in archive order.
pub(crate) trait EntryVisitor<E> {
    /// Receives the parsed `manifest.json` and its exact bytes, before any other file.
    fn manifest(&mut self, manifest: &Manifest, manifest_json: &[u8]) -> Result<Flow, E>;

    /// Receives a file after `manifest.json` whose size, digest and path passed.
    fn file(&mut self, path: String, content: Vec<u8>) -> Result<(), E>;
}

/// The manifest of an archive that [`read_entries`] read.
pub(crate) struct Streamed {
    /// The exact bytes of `manifest.json`.
    pub(crate) manifest_json: Vec<u8>,
    /// The parsed `manifest.json`.
    pub(crate) manifest: Manifest,
}

/// Reads a `.tgz` bundle from `source`, checks every entry as `crate::read_archive` documents,
/// and hands each file after `manifest.json` to `visitor` once its size, digest and path passed.
/// With `kind`, it rejects a manifest of another format as soon as the manifest is read.
///
/// The visitor receives the parsed manifest and its bytes first. When it returns
/// [`Flow::Stop`], the function returns at once without reading further.
///
/// The compressed size is counted as `source` is consumed: at most `max_archive_bytes` plus one
/// byte are taken from it. A caller must not keep any file handed to the visitor unless the
/// function returns `Ok`, because the checks that need the whole archive run last.
///
/// # Errors
///
/// Every error of `crate::read_archive`, converted into `E`, and any error of the visitor
/// unchanged. A failing `source` gives [`BundleError::Malformed`].
pub(crate) fn read_entries<R, E>(
    archive: &str,
    source: R,
    limits: &Limits,
    kind: Option<BundleKind>,
    visitor: &mut dyn EntryVisitor<E>,
) -> Result<Streamed, E>
where
    R: BufRead,
    E: From<BundleError>,
{
    let mut reader = Reader {
        archive,
        stream: CappedReader {
            inner: flate2::bufread::GzDecoder::new(CountingSource {
                inner: source,
                consumed: 0,
                cap: limits.max_archive_bytes,
                exceeded: false,
                source_failed: false,
            }),
            read: 0,
            cap: limits.max_decompressed_bytes(),
            exceeded: false,
        },
    };

    let mut directories = BTreeSet::new();
    // The manifest, its bytes and its listing, from the first regular file on.
    let mut listed: Option<(Streamed, Listing)> = None;
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
            )
            .into());
        }
        if got < BLOCK {
            return Err(
                malformed(archive, "", "truncated tar stream: partial header block").into(),
            );
        }
        if block.iter().all(|b| *b == 0) {
            read_end_of_archive(&mut reader)?;
            break;
        }

        entries = entries.saturating_add(1);
        if entries > limits.max_entries {
            return Err(
                too_large(archive, "", Measure::Entries, entries, limits.max_entries).into(),
            );
        }

        let is_file = |path: &str, listed: &Option<(Streamed, Listing)>| match listed {
            Some((_, listing)) => path == MANIFEST_PATH || listing.is_seen(path),
            None => false,
        };
        match decode_header(archive, &block)? {
            Item::Directory { path } => {
                if is_file(&path, &listed) || !directories.insert(path.clone()) {
                    return Err(rejected(archive, &path, "duplicate path").into());
                }
            }
            Item::File { path, size } => {
                if is_file(&path, &listed) || directories.contains(&path) {
                    return Err(rejected(archive, &path, "duplicate path").into());
                }
                check_file_size(archive, &path, size, &mut total, limits)?;
                match &listed {
                    Some((_, listing)) => listing.check_entry(archive, &path, size)?,
                    None if path != MANIFEST_PATH => {
                        return Err(malformed(
                            archive,
                            MANIFEST_PATH,
                            format!(
                                "must be the first file of a v1 bundle, but {path:?} comes first"
                            ),
                        )
                        .into());
                    }
                    None => {}
                }
                let content = read_content(&mut reader, &path, size, limits)?;
                match &mut listed {
                    Some((_, listing)) => {
                        listing.accept(archive, &path, &content)?;
                        visitor.file(path, content)?;
                    }
                    None => {
                        let (manifest, listing) =
                            open_listing(archive, &content, size, limits, kind)?;
                        let flow = visitor.manifest(&manifest, &content)?;
                        let streamed = Streamed {
                            manifest_json: content,
                            manifest,
                        };
                        if flow == Flow::Stop {
                            return Ok(streamed);
                        }
                        listed = Some((streamed, listing));
                    }
                }
            }
        }
    }

    let Some((streamed, listing)) = listed else {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            "missing, but every bundle needs manifest.json as its first file",
        )
        .into());
    };

    for directory in &directories {
        listing.check_directory(archive, directory)?;
    }
    check_trailing_data(archive, reader.stream.inner.into_inner())?;
    listing.check_all_seen(archive)?;
    Ok(streamed)
}

/// Checks a file's size from its tar header against `max_file_bytes`, and the running `total`
/// of all file sizes, which it updates, against `max_total_bytes`.
fn check_file_size(
    archive: &str,
    path: &str,
    size: u64,
    total: &mut u64,
    limits: &Limits,
) -> Result<(), BundleError> {
    if size > limits.max_file_bytes {
        return Err(too_large(
            archive,
            path,
            Measure::FileBytes,
            size,
            limits.max_file_bytes,
        ));
    }
    *total = total.saturating_add(size);
    if *total > limits.max_total_bytes {
        return Err(too_large(
            archive,
            path,
            Measure::TotalBytes,
            *total,
            limits.max_total_bytes,
        ));
    }
    Ok(())
}

/// Parses the manifest, which is the first regular file of the archive. Then checks its format
/// against `kind` and its declared sizes against `limits`.
fn open_listing(
    archive: &str,
    content: &[u8],
    size: u64,
    limits: &Limits,
    kind: Option<BundleKind>,
) -> Result<(Manifest, Listing), BundleError> {
    let manifest = Manifest::parse(archive, content)?;
    if let Some(kind) = kind
        && manifest.kind() != kind
    {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            format!("format {:?}, expected {:?}", manifest.format, kind.format()),
        ));
    }
    let listing = Listing::new(archive, &manifest, size, limits)?;
    Ok((manifest, listing))
}

/// Reads one file's content and the padding to the next block.
fn read_content<R: BufRead>(
    reader: &mut Reader<'_, R>,
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
fn read_end_of_archive<R: BufRead>(reader: &mut Reader<'_, R>) -> Result<(), BundleError> {
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

/// Counts the bytes left in `source` after the gzip member and rejects any. Counting stops at
/// the compressed size limit.
fn check_trailing_data<R: BufRead>(
    archive: &str,
    mut source: CountingSource<R>,
) -> Result<(), BundleError> {
    let start = source.consumed;
    loop {
        let available = match source.fill_buf() {
            Ok(data) => data.len(),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                if source.exceeded {
                    return Err(too_large(
                        archive,
                        "",
                        Measure::ArchiveBytes,
                        source.consumed,
                        source.cap,
                    ));
                }
                return Err(malformed(
                    archive,
                    "",
                    format!(
                        "reading the archive failed: {}",
                        printable(&error.to_string())
                    ),
                ));
            }
        };
        if available == 0 {
            break;
        }
        source.consume(available);
    }
    if source.consumed > source.cap {
        return Err(too_large(
            archive,
            "",
            Measure::ArchiveBytes,
            source.consumed,
            source.cap,
        ));
    }
    let trailing = source.consumed.saturating_sub(start);
    if trailing > 0 {
        return Err(malformed(
            archive,
            "",
            format!("{trailing} bytes of trailing data after the gzip member"),
        ));
    }
    Ok(())
}
