//! The `staging` column family: hash tiles and entry bundles of the tile import in progress,
//! kept on disk until the import is verified and committed, so that memory does not grow with
//! the bundle.
//!
//! A staging key is the import's nonce (`u64` big-endian) followed by the live key of the tile in
//! the `tiles` column family. Within one import, staging keys therefore sort exactly like the
//! live keys they map to, and [`Staging::commit_tiles`] writes an SST file for the `tiles` column
//! family in one pass in key order.
//!
//! Staging writes skip the write-ahead log: staged data never has to survive a crash, and every
//! staging key is deleted when the attestor starts ([`Store::clear_staging`]) and when its
//! import ends ([`Staging`]'s `Drop`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{DBRawIterator, IngestExternalFileOptions, Options, ReadOptions, SstFileWriter, WriteOptions};
use tracing::warn;

use super::undo::UndoLog;
use super::{CF_STAGING, CF_TILES, Store, StoreError, rocks};

/// Nonce of the next staging area. Nonces only need to differ between the imports of one
/// process, because staging is cleared at startup.
static NEXT_NONCE: AtomicU64 = AtomicU64::new(1);

/// Length of the nonce at the start of every staging key.
const NONCE_BYTES: usize = 8;

/// The staged tiles of one import. Dropping it deletes them.
pub struct Staging<'a> {
    store: &'a Store,
    nonce: u64,
}

impl Store {
    /// Starts a staging area for one tile import. Call it with the import lock held.
    pub fn begin_staging(&self) -> Staging<'_> {
        Staging {
            store: self,
            nonce: NEXT_NONCE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Deletes every staging key: those of imports that a crash or kill interrupted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn clear_staging(&self) -> Result<(), StoreError> {
        // Every staging key starts with an 8-byte nonce, so it sorts below nine 0xff bytes.
        self.delete_staging_range(&[], &[0xff_u8; NONCE_BYTES + 1])
    }

    /// Deletes the staging keys in `[from, to)`. SST files wholly inside the range are dropped
    /// at once, so their disk space comes back without a compaction.
    fn delete_staging_range(&self, from: &[u8], to: &[u8]) -> Result<(), StoreError> {
        let cf = self.cf(CF_STAGING)?;
        self.db
            .delete_file_in_range_cf(cf, from, to)
            .map_err(rocks("delete staging files"))?;
        self.db.delete_range_cf(cf, from, to).map_err(rocks("delete staging"))
    }

    /// Returns the number of keys in the staging column family, for tests and diagnostics.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn staging_key_count(&self) -> Result<u64, StoreError> {
        self.count_keys(CF_STAGING, "count staging keys")
    }

    /// Returns the number of keys in the `tiles` column family, for tests and diagnostics.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn tile_key_count(&self) -> Result<u64, StoreError> {
        self.count_keys(CF_TILES, "count tile keys")
    }

    /// Counts the keys of one column family by walking all of them.
    fn count_keys(&self, cf_name: &'static str, operation: &'static str) -> Result<u64, StoreError> {
        let mut iterator = self.db.raw_iterator_cf(self.cf(cf_name)?);
        iterator.seek_to_first();
        let mut count = 0_u64;
        while iterator.valid() {
            count = count.saturating_add(1);
            iterator.next();
        }
        iterator.status().map_err(rocks(operation))?;
        Ok(count)
    }
}

impl<'a> Staging<'a> {
    fn prefix(&self) -> [u8; NONCE_BYTES] {
        self.nonce.to_be_bytes()
    }

    fn staging_key(&self, origin: &str, path: &str) -> Vec<u8> {
        let mut key = self.prefix().to_vec();
        key.extend(self.store.tile_key(origin, path));
        key
    }

    /// Stages a hash tile or entry bundle of `origin` under its tlog-tiles path, without the
    /// write-ahead log.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn put(&self, origin: &str, path: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.disable_wal(true);
        self.store
            .db
            .put_cf_opt(
                self.store.cf(CF_STAGING)?,
                self.staging_key(origin, path),
                data,
                &options,
            )
            .map_err(rocks("stage tile"))
    }

    /// Returns the staged bytes of an exact path.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn get(&self, origin: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(CF_STAGING, &self.staging_key(origin, path))
    }

    /// Returns every staged (path, bytes) of `origin` whose path starts with `path_prefix`, in
    /// path order. Meant for the few partial versions of one tile.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails, [`StoreError::Corrupt`] for a path that is not
    /// UTF-8.
    pub fn with_prefix(&self, origin: &str, path_prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut found = Vec::new();
        let mut paths = self.paths(origin, path_prefix, None)?;
        while let Some(item) = paths.next_entry() {
            let (path, value) = item?;
            if !path.starts_with(path_prefix) {
                break;
            }
            found.push((path, value));
        }
        Ok(found)
    }

    /// Walks the staged paths of `origin` from `from` (inclusive) to `to` (exclusive, or to the
    /// end of the origin's keys), in ascending byte order.
    ///
    /// # Errors
    ///
    /// [`StoreError::MissingColumnFamily`] when the staging column family is missing.
    pub fn paths(&self, origin: &str, from: &str, to: Option<&str>) -> Result<StagedPaths<'a>, StoreError> {
        let cf = self.store.cf(CF_STAGING)?;
        let origin_prefix = self.staging_key(origin, "");
        let upper = match to {
            Some(to) => self.staging_key(origin, to),
            None => prefix_successor(&origin_prefix),
        };
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(upper);
        let mut iterator = self.store.db.raw_iterator_cf_opt(cf, options);
        iterator.seek(self.staging_key(origin, from));
        Ok(StagedPaths {
            iterator,
            prefix_len: origin_prefix.len(),
            origin: origin.to_owned(),
            done: false,
        })
    }

    /// Moves the staged tiles into the `tiles` column family: writes them, in key order, to one
    /// SST file in `work_dir` and ingests it. Tiles already stored with the same bytes are left
    /// out. Returns the number of tiles written.
    ///
    /// Every staged tile is compared with the stored one before anything is ingested, so a
    /// conflict writes nothing.
    ///
    /// The keys the SST file adds are first recorded in the undo log of `digest` (see
    /// `store/undo.rs`), which the import batch ends. If the attestor stops after the ingestion
    /// and before that batch, the next start-up deletes those tiles again.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when a staged path is already stored with other bytes (tiles are
    /// immutable once authenticated). [`StoreError::Rocks`] when RocksDB fails to read, to write
    /// the SST file or to ingest it; the `tiles` column family is then unchanged.
    pub fn commit_tiles(&self, work_dir: &Path, digest: &str) -> Result<u64, StoreError> {
        let staging_cf = self.store.cf(CF_STAGING)?;
        let tiles_cf = self.store.cf(CF_TILES)?;
        let sst = tempfile::Builder::new()
            .prefix("tiles-")
            .suffix(".sst")
            .tempfile_in(work_dir)
            .map_err(|error| StoreError::Io {
                operation: "create SST file",
                path: work_dir.display().to_string(),
                source: error,
            })?;
        let sst_path = sst.path().to_path_buf();

        let writer_options = Options::default();
        let mut writer = SstFileWriter::create(&writer_options);
        writer.open(&sst_path).map_err(rocks("open SST file"))?;

        let prefix = self.prefix();
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(prefix_successor(&prefix));
        let mut iterator = self.store.db.raw_iterator_cf_opt(staging_cf, options);
        iterator.seek(prefix);
        let mut written = 0_u64;
        let mut undo = UndoLog::new(self.store, digest);
        while iterator.valid() {
            let (Some(key), Some(value)) = (iterator.key(), iterator.value()) else {
                break;
            };
            let live_key = key.get(NONCE_BYTES..).unwrap_or_default();
            match self.store.db.get_cf(tiles_cf, live_key).map_err(rocks("get"))? {
                Some(stored) if stored.as_slice() != value => {
                    return Err(StoreError::Conflict {
                        what: "tile",
                        key: self.store.describe_tile_key(live_key),
                    });
                }
                Some(_) => {}
                None => {
                    undo.add(live_key)?;
                    writer.put(live_key, value).map_err(rocks("write SST file"))?;
                    written = written.saturating_add(1);
                }
            }
            iterator.next();
        }
        iterator.status().map_err(rocks("iterate staging"))?;

        if written == 0 {
            // RocksDB cannot finish an SST file without entries, and there is nothing to ingest.
            return Ok(0);
        }
        writer.finish().map_err(rocks("finish SST file"))?;
        undo.seal(digest)?;
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        self.store
            .db
            .ingest_external_file_cf_opts(tiles_cf, &ingest, vec![&sst_path])
            .map_err(rocks("ingest SST file"))?;
        // RocksDB links the file into the database. Dropping the handle removes the external
        // path if RocksDB left it, and the ingested link stays.
        drop(sst);
        Ok(written)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let prefix = self.prefix();
        if let Err(error) = self.store.delete_staging_range(&prefix, &prefix_successor(&prefix)) {
            // The keys are unreachable and deleted at the next start.
            warn!(nonce = self.nonce, error = %error, "cannot delete the staged tiles of an import");
        }
    }
}

/// Staged paths of one origin in ascending order, with their bytes.
pub struct StagedPaths<'a> {
    iterator: DBRawIterator<'a>,
    prefix_len: usize,
    origin: String,
    done: bool,
}

impl StagedPaths<'_> {
    /// Returns the next (path, bytes), or `None` at the end of the range.
    pub fn next_entry(&mut self) -> Option<Result<(String, Vec<u8>), StoreError>> {
        let path = self.next_path_raw()?;
        let value = self.iterator.value().unwrap_or_default().to_vec();
        self.iterator.next();
        Some(path.map(|path| (path, value)))
    }

    fn next_path_raw(&mut self) -> Option<Result<String, StoreError>> {
        if self.done {
            return None;
        }
        if !self.iterator.valid() {
            self.done = true;
            return match self.iterator.status() {
                Ok(()) => None,
                Err(error) => Some(Err(rocks("iterate staging")(error))),
            };
        }
        let key = self.iterator.key().unwrap_or_default();
        let path_bytes = key.get(self.prefix_len..).unwrap_or_default();
        match std::str::from_utf8(path_bytes) {
            Ok(path) => Some(Ok(path.to_owned())),
            Err(_) => {
                self.done = true;
                Some(Err(StoreError::Corrupt {
                    what: "staged tile key",
                    key: format!("{}/{}", self.origin, hex::encode(path_bytes)),
                    why: "path is not UTF-8".to_owned(),
                }))
            }
        }
    }
}

impl Iterator for StagedPaths<'_> {
    type Item = Result<String, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let path = self.next_path_raw()?;
        self.iterator.next();
        Some(path)
    }
}

/// Returns the smallest key above every key that starts with `prefix`, or an empty key (no upper
/// bound is possible) when `prefix` is all 0xff bytes.
pub(super) fn prefix_successor(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last.saturating_add(1));
            return end;
        }
    }
    // NOTE: only reachable for an all-0xff prefix, which nonces below u64::MAX never produce.
    vec![0xff; prefix.len().saturating_add(1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ImportBatch, ImportRecord, ImportSummary};

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
    }

    #[test]
    fn prefix_successor_increments_last_byte() {
        assert_eq!(prefix_successor(&[0, 1, 2]), vec![0, 1, 3]);
        assert_eq!(prefix_successor(&[0, 0xff]), vec![1]);
    }

    #[test]
    fn staging_paths_in_order_per_origin() {
        let (_dir, store) = open_temp();
        let staging = store.begin_staging();
        staging.put("log.example", "tile/0/001", b"b").expect("put");
        staging.put("log.example", "tile/0/000", b"a").expect("put");
        staging.put("log.example", "tile/entries/000", b"e").expect("put");
        staging
            .put("log.example.org", "tile/0/000", b"other origin")
            .expect("put");
        let other = store.begin_staging();
        other.put("log.example", "tile/0/002", b"other import").expect("put");

        let hash_tiles: Vec<String> = staging
            .paths("log.example", "tile/", Some("tile/entries/"))
            .expect("walk")
            .collect::<Result<_, _>>()
            .expect("paths");
        assert_eq!(hash_tiles, vec!["tile/0/000", "tile/0/001"]);
        let bundles: Vec<String> = staging
            .paths("log.example", "tile/entries/", None)
            .expect("walk")
            .collect::<Result<_, _>>()
            .expect("paths");
        assert_eq!(bundles, vec!["tile/entries/000"]);
        assert_eq!(
            staging.get("log.example", "tile/0/001").expect("get"),
            Some(b"b".to_vec())
        );
        assert_eq!(staging.get("log.example", "tile/0/002").expect("get"), None);
    }

    #[test]
    fn drop_deletes_only_own_keys() {
        let (_dir, store) = open_temp();
        let kept = store.begin_staging();
        kept.put("log.example", "tile/0/000", b"kept").expect("put");
        {
            let dropped = store.begin_staging();
            dropped.put("log.example", "tile/0/000", b"dropped").expect("put");
            dropped.put("log.example", "tile/0/001", b"dropped").expect("put");
        }
        assert_eq!(store.staging_key_count().expect("count"), 1);
        drop(kept);
        assert_eq!(store.staging_key_count().expect("count"), 0);
    }

    #[test]
    fn commit_tiles_ingests_new_tiles() {
        let (dir, store) = open_temp();
        let staging = store.begin_staging();
        staging.put("log.example", "tile/0/000", b"zero").expect("put");
        staging.put("log.example", "tile/entries/000", b"bundle").expect("put");

        assert_eq!(staging.commit_tiles(dir.path(), DIGEST).expect("commit"), 2);
        assert_eq!(
            store.tile("log.example", "tile/0/000").expect("get"),
            Some(b"zero".to_vec())
        );
        assert_eq!(
            store.tile("log.example", "tile/entries/000").expect("get"),
            Some(b"bundle".to_vec())
        );

        let again = store.begin_staging();
        again.put("log.example", "tile/0/000", b"zero").expect("put");
        assert_eq!(again.commit_tiles(dir.path(), DIGEST).expect("identical tile"), 0);
    }

    #[test]
    fn commit_tiles_conflict_writes_nothing() {
        let (dir, store) = open_temp();
        let first = store.begin_staging();
        first.put("log.example", "tile/0/001", b"original").expect("put");
        first.commit_tiles(dir.path(), DIGEST).expect("first commit");

        let second = store.begin_staging();
        second.put("log.example", "tile/0/000", b"new").expect("put");
        second.put("log.example", "tile/0/001", b"forged").expect("put");
        let error = second.commit_tiles(dir.path(), OTHER_DIGEST).expect_err("conflict");
        assert!(
            matches!(&error, StoreError::Conflict { what: "tile", key } if key == "log.example/tile/0/001"),
            "unexpected error {error:?}"
        );
        assert_eq!(store.tile("log.example", "tile/0/000").expect("get"), None);
        assert_eq!(store.tile_key_count().expect("count"), 1);
    }

    /// Digests of two imports, in the form the import log uses.
    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn ingest_without_batch_rolled_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("db");
        {
            let store = Store::open(&db_path).expect("open");
            let first = store.begin_staging();
            first.put("log.example", "tile/0/000", b"kept").expect("put");
            first.commit_tiles(dir.path(), DIGEST).expect("commit tiles");
            store
                .commit(ImportBatch::new(import_record(DIGEST)))
                .expect("commit batch");

            // The second import stops between its ingestion and its batch.
            let second = store.begin_staging();
            second.put("log.example", "tile/0/000", b"kept").expect("put");
            second.put("log.example", "tile/0/001", b"orphan").expect("put");
            second.put("log.example", "tile/entries/001", b"orphan").expect("put");
            assert_eq!(second.commit_tiles(dir.path(), OTHER_DIGEST).expect("commit tiles"), 2);
            assert_eq!(store.tile_key_count().expect("count"), 3);
        }
        let store = Store::open(&db_path).expect("reopen");
        assert_eq!(store.tile_key_count().expect("count"), 1);
        assert_eq!(store.tile("log.example", "tile/0/000").expect("get"), Some(b"kept".to_vec()));
        assert_eq!(store.tile("log.example", "tile/0/001").expect("get"), None);
        drop(store);

        // A completed import keeps its tiles across a restart.
        let store = Store::open(&db_path).expect("reopen");
        let third = store.begin_staging();
        third.put("log.example", "tile/0/001", b"orphan").expect("put");
        third.commit_tiles(dir.path(), OTHER_DIGEST).expect("commit tiles");
        store
            .commit(ImportBatch::new(import_record(OTHER_DIGEST)))
            .expect("commit batch");
        drop(third);
        drop(store);
        let store = Store::open(&db_path).expect("reopen");
        assert_eq!(store.tile_key_count().expect("count"), 2);
    }

    fn import_record(digest: &str) -> ImportRecord {
        ImportRecord {
            digest: digest.to_owned(),
            file_name: "tiles.tgz".to_owned(),
            imported_at: 0,
            summary: ImportSummary::Tiles {
                checkpoints: Vec::new(),
                tiles: 0,
                entry_bundles: 0,
                proofs: 0,
            },
        }
    }

    #[test]
    fn clear_staging_removes_everything() {
        let (_dir, store) = open_temp();
        let staging = store.begin_staging();
        staging.put("log.example", "tile/0/000", b"a").expect("put");
        std::mem::forget(staging);
        store.clear_staging().expect("clear");
        assert_eq!(store.staging_key_count().expect("count"), 0);
    }
}
