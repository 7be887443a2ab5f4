//! The `ingest_undo` column family: what a tile import must roll back if the attestor stops
//! between ingesting its tiles and writing its import batch.
//!
//! A tile import commits in two writes: the SST file of its new tiles is ingested into `tiles`,
//! then one batch stores its checkpoints, tlog-proofs and import record. rust-rocksdb 0.25 cannot
//! ingest into one column family and write others atomically, so the import keeps an undo log:
//!
//! 1. while the SST file is written, each live tile key it adds goes to `ingest_undo` under the
//!    tenant and bundle digest (these keys were absent from `tiles`, which the import lock keeps
//!    true);
//! 2. a marker for the tenant and digest is written, with the write-ahead log synced, before the
//!    ingestion;
//! 3. the import batch deletes the marker and the undo keys in the same batch
//!    ([`Store::clear_ingest_undo`]).
//!
//! A marker found at start-up ([`Store::roll_back_interrupted_ingests`]) therefore means that the
//! tiles may be ingested but the batch was not written: the tiles it lists are deleted, and the
//! cache is exactly as it was before the import. Undo keys without a marker belong to an import
//! that stopped before its ingestion and are dropped.
//!
//! Keys: `m` + scope for a marker, `k` + scope + `0x00` + live tile key for an undo entry. The
//! scope is the length-prefixed tenant followed by the digest, so two tenants importing the same
//! bundle never share an undo log. A digest is `sha256:` and 64 hex digits, so it contains no
//! `0x00`, and the entry prefix of one scope never starts the entries of another. The roll-back
//! treats a scope as opaque bytes, so markers written before the scope held the tenant (`m` +
//! digest) are still rolled back.

use rocksdb::{WriteBatch, WriteOptions};
use tracing::warn;

use super::staging::prefix_successor;
use super::{CF_TILES, Store, StoreError, encode_component, rocks};

/// Name of the column family.
pub(super) const CF_INGEST_UNDO: &str = "ingest_undo";

/// First byte of a marker key.
const MARKER: u8 = b'm';

/// First byte of an undo entry key.
const ENTRY: u8 = b'k';

/// Undo entries or deletions per write batch, so that no batch grows with the bundle.
const KEYS_PER_BATCH: usize = 4096;

/// Returns the scope of the undo log of one import: the tenant and the bundle digest.
fn undo_scope(tenant: &str, digest: &str) -> Vec<u8> {
    let mut scope = encode_component(tenant);
    scope.extend_from_slice(digest.as_bytes());
    scope
}

fn marker_key(scope: &[u8]) -> Vec<u8> {
    let mut key = vec![MARKER];
    key.extend_from_slice(scope);
    key
}

fn entry_prefix(scope: &[u8]) -> Vec<u8> {
    let mut key = vec![ENTRY];
    key.extend_from_slice(scope);
    key.push(0);
    key
}

/// Splits a marker's scope into tenant and digest for the log. A marker written before scopes
/// held the tenant has no tenant, and its scope is the digest.
fn describe_scope(scope: &[u8]) -> (String, String) {
    let tenant_length = scope
        .get(..4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes)
        .and_then(|length| usize::try_from(length).ok());
    let split = tenant_length.and_then(|length| {
        let digest_start = length.checked_add(4)?;
        let tenant = scope.get(4..digest_start)?;
        let digest = scope.get(digest_start..)?;
        digest.starts_with(b"sha256:").then_some((tenant, digest))
    });
    match split {
        Some((tenant, digest)) => (
            String::from_utf8_lossy(tenant).into_owned(),
            String::from_utf8_lossy(digest).into_owned(),
        ),
        None => (String::new(), String::from_utf8_lossy(scope).into_owned()),
    }
}

/// Records the tile keys that one import's SST file adds, in batches of bounded size.
pub struct UndoLog<'a> {
    store: &'a Store,
    prefix: Vec<u8>,
    pending: WriteBatch,
    pending_keys: usize,
}

impl<'a> UndoLog<'a> {
    /// Starts the undo log of the import of `digest` into the tenant of `store`.
    pub fn new(store: &'a Store, digest: &str) -> Self {
        UndoLog {
            store,
            prefix: entry_prefix(&undo_scope(store.tenant(), digest)),
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
            .put_cf_opt(
                self.store.cf(CF_INGEST_UNDO)?,
                marker_key(&undo_scope(self.store.tenant(), digest)),
                [],
                &options,
            )
            .map_err(rocks("write undo marker"))
    }
}

impl Store {
    /// Adds to `batch` the deletion of the undo log of the import of `digest` into this view's
    /// tenant, so that the batch that completes an import also ends its undo log.
    ///
    /// # Errors
    ///
    /// [`StoreError::MissingColumnFamily`] when the column family is missing.
    pub(super) fn clear_ingest_undo(&self, batch: &mut WriteBatch, digest: &str) -> Result<(), StoreError> {
        self.clear_undo_scope(batch, &undo_scope(self.tenant(), digest))
    }

    fn clear_undo_scope(&self, batch: &mut WriteBatch, scope: &[u8]) -> Result<(), StoreError> {
        let cf = self.cf(CF_INGEST_UNDO)?;
        batch.delete_cf(cf, marker_key(scope));
        let prefix = entry_prefix(scope);
        let end = prefix_successor(&prefix);
        batch.delete_range_cf(cf, prefix, end);
        Ok(())
    }

    /// Rolls back every tile import, of any tenant, that stopped between its ingestion and its
    /// batch, then drops all undo entries. Runs at start-up, before any import can start. Returns
    /// the number of tile keys deleted.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails. The markers stay until their tiles are deleted,
    /// so the next start-up finishes the work.
    pub fn roll_back_interrupted_ingests(&self) -> Result<u64, StoreError> {
        let undo_cf = self.cf(CF_INGEST_UNDO)?;
        let tiles_cf = self.cf(CF_TILES)?;

        let mut scopes = Vec::new();
        let mut markers = self.db.raw_iterator_cf(undo_cf);
        markers.seek([MARKER]);
        while let Some(key) = markers.key().filter(|key| key.first() == Some(&MARKER)) {
            scopes.push(key.get(1..).unwrap_or_default().to_vec());
            markers.next();
        }
        markers.status().map_err(rocks("read undo markers"))?;
        drop(markers);

        let mut deleted = 0_u64;
        for scope in &scopes {
            let prefix = entry_prefix(scope);
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
            self.clear_undo_scope(&mut batch, scope)?;
            self.db.write(batch).map_err(rocks("roll back tiles"))?;
            let (tenant, digest) = describe_scope(scope);
            warn!(tenant = %tenant, digest = %digest, "rolled back the tiles of an import that stopped before its commit");
        }

        // Entries without a marker: their import stopped before it ingested anything.
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(undo_cf, [ENTRY], [ENTRY.saturating_add(1)]);
        self.db.write(batch).map_err(rocks("drop undo log"))?;
        Ok(deleted)
    }
}
