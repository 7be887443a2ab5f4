//! Behaviour that only the streaming tile reader has: stopping after the manifest, handing files
//! over before the archive ends, passing caller errors through, and counting compressed bytes
//! against the archive size limit while reading.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use stella_bundle::{
    BundleError, Flow, Limits, LogTilesInput, MANIFEST_PATH, Measure, TilesInput, TilesItem,
    pack_tiles, read_archive, read_tiles_streaming, write_archive,
};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{Hash, leaf_hash, root_from_leaves};
use stella_verify::note::NoteSigner;
use stella_verify::tiles::build_tiles;

use common::{Trickle, stream_tiles};

/// Packs a forged log of `size` entries: one checkpoint, its hash tiles and entry bundles.
fn forged_bundle(size: u64) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = (0..size)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    let leaves: Vec<Hash> = entries.iter().map(|entry| leaf_hash(entry)).collect();
    let signer = NoteSigner::ed25519("stream.example/log", &[9; 32]);
    let body = Checkpoint {
        origin: "stream.example/log".into(),
        size,
        root_hash: root_from_leaves(&leaves),
        extensions: Vec::new(),
    };
    let checkpoint = signer.sign(&body.to_text()).expect("sign");
    let input = TilesInput {
        logs: vec![LogTilesInput {
            checkpoint,
            tiles: build_tiles(&entries).expect("build tiles"),
        }],
        tlog_proofs: Vec::new(),
    };
    pack_tiles(&input).expect("pack")
}

/// A `BufRead` that counts the bytes consumed so far into a shared cell.
struct Counting<R> {
    inner: R,
    consumed: Rc<Cell<usize>>,
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.consumed.set(self.consumed.get() + amount);
        self.inner.consume(amount);
    }
}

/// A `BufRead` that fails after `left` bytes.
struct Failing<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Failing<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.left == 0 {
            return Err(io::Error::other("disk read failed"));
        }
        let n = self.data.len().min(self.left);
        Ok(&self.data[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.data = &self.data[amount..];
        self.left -= amount;
    }
}

#[test]
fn streamed_forged_log_matches_archive() {
    let tgz = forged_bundle(70_000);
    let files = read_archive("forged.tgz", &tgz, &Limits::default()).expect("read");
    let opened = common::open_tiles_both("forged.tgz", &tgz, &Limits::default()).expect("open");
    let log = &opened.logs[0];
    assert_eq!(log.tiles.len() + log.entry_bundles.len() + 2, files.len());
    assert_eq!(log.entry_bundles.len(), 274);
}

#[test]
fn stop_after_manifest() {
    let tgz = forged_bundle(300);
    // Cut the archive in half: nothing after the manifest is read when the caller stops.
    let half = &tgz[..tgz.len() / 2];
    let mut items = 0;
    let header = read_tiles_streaming(
        "half.tgz",
        half,
        &Limits::default(),
        |_| Ok::<Flow, BundleError>(Flow::Stop),
        |_| {
            items += 1;
            Ok(())
        },
    )
    .expect("stopped after the manifest");
    assert_eq!(items, 0);
    let full = stream_tiles("full.tgz", tgz.as_slice(), &Limits::default()).expect("full");
    assert_eq!(header.digest, full.digest);
    assert_eq!(header.logs.len(), 1);

    let error = stream_tiles("half.tgz", half, &Limits::default()).expect_err("truncated");
    assert!(matches!(error, BundleError::Malformed { .. }), "{error}");
}

#[test]
fn files_arrive_before_archive_end() {
    let tgz = forged_bundle(70_000);
    let consumed = Rc::new(Cell::new(0));
    let reader = Counting {
        inner: Trickle::new(&tgz, 4096),
        consumed: Rc::clone(&consumed),
    };
    let mut first_item_at = None;
    let mut items = 0usize;
    read_tiles_streaming(
        "forged.tgz",
        reader,
        &Limits::default(),
        |_| Ok::<Flow, BundleError>(Flow::Continue),
        |_| {
            first_item_at.get_or_insert(consumed.get());
            items += 1;
            Ok(())
        },
    )
    .expect("valid bundle");
    let first_item_at = first_item_at.expect("an item");
    assert!(
        first_item_at < tgz.len() / 10,
        "first file handed over after {first_item_at} of {} bytes",
        tgz.len()
    );
    assert_eq!(consumed.get(), tgz.len());
    assert!(items > 500, "{items} items");
}

/// A caller's own error type, to show that callback errors pass through unchanged.
#[derive(Debug, PartialEq)]
enum ImportError {
    Bundle(BundleError),
    Storage(String),
}

impl From<BundleError> for ImportError {
    fn from(error: BundleError) -> Self {
        ImportError::Bundle(error)
    }
}

#[test]
fn caller_error_passes_through() {
    let tgz = forged_bundle(300);
    let mut seen = 0;
    let error = read_tiles_streaming(
        "forged.tgz",
        tgz.as_slice(),
        &Limits::default(),
        |_| Ok(Flow::Continue),
        |item| {
            seen += 1;
            match item {
                TilesItem::HashTile { tile_path, .. } => {
                    Err(ImportError::Storage(format!("cannot store {tile_path}")))
                }
                _ => Ok(()),
            }
        },
    )
    .expect_err("storage failure");
    assert!(
        matches!(&error, ImportError::Storage(why) if why.starts_with("cannot store tile/")),
        "{error:?}"
    );
    assert!(seen >= 1);

    let error = read_tiles_streaming(
        "forged.tgz",
        tgz.as_slice(),
        &Limits::default(),
        |_| Err(ImportError::Storage("manifest rejected".into())),
        |_| Ok(()),
    )
    .expect_err("manifest rejected");
    assert_eq!(error, ImportError::Storage("manifest rejected".into()));
}

#[test]
fn tampered_file_never_handed_over() {
    let tgz = forged_bundle(300);
    let mut files = read_archive("forged.tgz", &tgz, &Limits::default()).expect("read");
    let target = "logs/0/tile/0/000";
    files.get_mut(target).expect("tile")[5] ^= 1;
    let tampered = write_archive(&files).expect("write");

    let mut handed = Vec::new();
    let error = read_tiles_streaming(
        "tampered.tgz",
        tampered.as_slice(),
        &Limits::default(),
        |_| Ok::<Flow, BundleError>(Flow::Continue),
        |item| {
            if let TilesItem::HashTile { path, .. } | TilesItem::EntryBundle { path, .. } = item {
                handed.push(path.to_owned());
            }
            Ok(())
        },
    )
    .expect_err("digest mismatch");
    assert!(
        matches!(&error, BundleError::FileDigestMismatch { path, .. } if path == target),
        "{error}"
    );
    assert!(!handed.iter().any(|path| path == target));
}

#[test]
fn archive_limit_counted_while_reading() {
    let tgz = forged_bundle(300);
    let limit = tgz.len() as u64 - 1;
    let limits = Limits {
        max_archive_bytes: limit,
        ..Limits::default()
    };
    let consumed = Rc::new(Cell::new(0));
    let reader = Counting {
        inner: Trickle::new(&tgz, 1000),
        consumed: Rc::clone(&consumed),
    };
    let error = stream_tiles("big.tgz", reader, &limits).expect_err("over the limit");
    assert_eq!(
        error,
        BundleError::TooLarge {
            archive: "big.tgz".into(),
            path: String::new(),
            measure: Measure::ArchiveBytes,
            actual: limit + 1,
            limit,
        }
    );
    assert!(
        consumed.get() as u64 <= limit + 1,
        "{} bytes read",
        consumed.get()
    );

    let exact = Limits {
        max_archive_bytes: tgz.len() as u64,
        ..Limits::default()
    };
    stream_tiles("exact.tgz", tgz.as_slice(), &exact).expect("an archive at the limit");
}

#[test]
fn huge_limits_read_small_archive() {
    let tgz = forged_bundle(300);
    let limits = Limits {
        max_archive_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        max_file_bytes: u64::MAX,
        max_entries: u64::MAX,
    };
    let opened = stream_tiles("forged.tgz", tgz.as_slice(), &limits).expect("open");
    assert_eq!(opened.logs[0].entry_bundles.len(), 2);
}

#[test]
fn reader_failure_is_malformed() {
    let tgz = forged_bundle(300);
    let reader = Failing {
        data: &tgz,
        left: tgz.len() / 2,
    };
    let error = stream_tiles("broken.tgz", reader, &Limits::default()).expect_err("read error");
    assert!(
        matches!(&error, BundleError::Malformed { why, .. }
            if why.starts_with("reading the archive failed") && why.contains("disk read failed")),
        "{error}"
    );
}

#[test]
fn trailing_data_found_after_items() {
    let mut tgz = forged_bundle(300);
    tgz.extend_from_slice(&[0u8; 3000]);
    let mut items = 0;
    let error = read_tiles_streaming(
        "trailing.tgz",
        Trickle::new(&tgz, 1),
        &Limits::default(),
        |_| Ok::<Flow, BundleError>(Flow::Continue),
        |_| {
            items += 1;
            Ok(())
        },
    )
    .expect_err("trailing data");
    assert!(items > 0, "files are handed over before the end is checked");
    assert_eq!(
        error,
        BundleError::Malformed {
            archive: "trailing.tgz".into(),
            path: String::new(),
            why: "3000 bytes of trailing data after the gzip member".into(),
        }
    );
}

#[test]
fn manifest_json_bytes_kept() {
    let tgz = forged_bundle(10);
    let files: BTreeMap<String, Vec<u8>> =
        read_archive("forged.tgz", &tgz, &Limits::default()).expect("read");
    let opened = stream_tiles("forged.tgz", tgz.as_slice(), &Limits::default()).expect("open");
    assert_eq!(Some(&opened.manifest_json), files.get(MANIFEST_PATH));
}
