//! The `ingest_undo` column family: what a tile import must roll back if the attestor stops
//! between ingesting its tiles and writing its import batch.
//!
//! A tile import commits in two writes: the SST file of its new tiles is ingested into `tiles`,
//! then one batch stores its checkpoints, tlog-proofs and import record. rust-rocksdb 0.25 cannot
//! ingest into one column family and write others atomically, so the import keeps an undo log:
//!
//! 1. while the SST file is written, each live tile key it adds goes to `ingest_undo` under the
//!    bundle digest (these keys were absent from `tiles`, which the import lock keeps true);
//! 2. a marker for the digest is written, with the write-ahead log synced, before the ingestion;
//! 3. the import batch deletes the marker and the undo keys in the same batch
//!    ([`Store::clear_ingest_undo`]).
//!
//! A marker found at start-up ([`Store::roll_back_interrupted_ingests`]) therefore means that the
//! tiles may be ingested but the batch was not written: the tiles it lists are deleted, and the
//! cache is exactly as it was before the import. Undo keys without a marker belong to an import
//! that stopped before its ingestion and are dropped.
//!
//! Keys: `m` + digest for a marker, `k` + digest + `0x00` + live tile key for an undo entry. A
//! digest is `sha256:` and 64 hex digits, so it contains no `0x00`.

use rocksdb::{WriteBatch, WriteOptions};
use tracing::warn;

use super::staging::prefix_successor;
use super::{CF_TILES, Store, StoreError, rocks};

/// Name of the column family.
pub(super) const CF_INGEST_UNDO: &str = "ingest_undo";

/// First byte of a marker key.
const MARKER: u8 = b'm';

/// First byte of an undo entry key.
const ENTRY: u8 = b'k';

/// Undo entries or deletions per write batch, so that no batch grows with the bundle.
const KEYS_PER_BATCH: usize = 4096;

fn marker_key(digest: &str) -> Vec<u8> {
    let mut key = vec![MARKER];
    key.extend_from_slice(digest.as_bytes());
    key
}

fn entry_prefix(digest: &str) -> Vec<u8> {
    let mut key = vec![ENTRY];
    key.extend_from_slice(digest.as_bytes());
    key.push(0);
    key
}

/// Records the tile keys that one import's SST file adds, in batches of bounded size.
pub struct UndoLog<'a> {
    store: &'a Store,
    prefix: Vec<u8>,
    pending: WriteBatch,
    pending_keys: usize,
}

impl<'a> UndoLog<'a> {
    /// Starts the undo log of the import of `digest`.
    pub fn new(store: &'a Store, digest: &str) -> Self {
        UndoLog {
            store,
            prefix: entry_prefix(digest),
            pending: WriteBatch::default(),
            pending_keys: 0,
        }
    }

    /// Records that the import adds the live tile key `key`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails.
    pub fn add(&mut self, key: &[u8]) -> Result<(), StoreError> {
        let mut undo_key = self.prefix.clone();
        undo_key.extend_from_slice(key);
        self.pending.put_cf(self.store.cf(CF_INGEST_UNDO)?, undo_key, []);
        self.pending_keys = self.pending_keys.saturating_add(1);
        if self.pending_keys >= KEYS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.pending);
        self.pending_keys = 0;
        self.store.db.write(batch).map_err(rocks("write undo log"))
    }

    /// Writes the remaining entries and then the marker, with the write-ahead log synced to disk,
    /// so that a marker never exists without its complete undo log. Call it right before the
    /// ingestion.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails; nothing may be ingested then.
    pub fn seal(mut self, digest: &str) -> Result<(), StoreError> {
        self.flush()?;
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.store
            .db
            .put_cf_opt(self.store.cf(CF_INGEST_UNDO)?, marker_key(digest), [], &options)
            .map_err(rocks("write undo marker"))
    }
}

impl Store {
    /// Adds to `batch` the deletion of the undo log of the import of `digest`, so that the batch
    /// that completes an import also ends its undo log.
    ///
    /// # Errors
    ///
    /// [`StoreError::MissingColumnFamily`] when the column family is missing.
    pub(super) fn clear_ingest_undo(&self, batch: &mut WriteBatch, digest: &str) -> Result<(), StoreError> {
        let cf = self.cf(CF_INGEST_UNDO)?;
        batch.delete_cf(cf, marker_key(digest));
        let prefix = entry_prefix(digest);
        let end = prefix_successor(&prefix);
        batch.delete_range_cf(cf, prefix, end);
        Ok(())
    }

    /// Rolls back every tile import that stopped between its ingestion and its batch, then drops
    /// all undo entries. Runs at start-up, before any import can start. Returns the number of
    /// tile keys deleted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails. The markers stay until their tiles are deleted,
    /// so the next start-up finishes the work.
    pub fn roll_back_interrupted_ingests(&self) -> Result<u64, StoreError> {
        let undo_cf = self.cf(CF_INGEST_UNDO)?;
        let tiles_cf = self.cf(CF_TILES)?;

        let mut digests = Vec::new();
        let mut markers = self.db.raw_iterator_cf(undo_cf);
        markers.seek([MARKER]);
        while let Some(key) = markers.key().filter(|key| key.first() == Some(&MARKER)) {
            digests.push(String::from_utf8_lossy(key.get(1..).unwrap_or_default()).into_owned());
            markers.next();
        }
        markers.status().map_err(rocks("read undo markers"))?;
        drop(markers);

        let mut deleted = 0_u64;
        for digest in &digests {
            let prefix = entry_prefix(digest);
            let mut entries = self.db.raw_iterator_cf(undo_cf);
            entries.seek(&prefix);
            let mut batch = WriteBatch::default();
            let mut in_batch = 0_usize;
            while let Some(key) = entries.key().and_then(|key| key.strip_prefix(prefix.as_slice())) {
                batch.delete_cf(tiles_cf, key);
                in_batch = in_batch.saturating_add(1);
                deleted = deleted.saturating_add(1);
                if in_batch >= KEYS_PER_BATCH {
                    self.db.write(std::mem::take(&mut batch)).map_err(rocks("roll back tiles"))?;
                    in_batch = 0;
                }
                entries.next();
            }
            entries.status().map_err(rocks("read undo log"))?;
            drop(entries);
            self.clear_ingest_undo(&mut batch, digest)?;
            self.db.write(batch).map_err(rocks("roll back tiles"))?;
            warn!(digest = %digest, "rolled back the tiles of an import that stopped before its commit");
        }

        // Entries without a marker: their import stopped before it ingested anything.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(undo_cf, [ENTRY], [ENTRY.saturating_add(1)]);
        self.db.write(batch).map_err(rocks("drop undo log"))?;
        Ok(deleted)
    }
}
