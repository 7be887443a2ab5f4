//! RocksDB storage of the attestor: trust root sets, checkpoints, tiles, tlog-proof files and
//! their checkpoints, evidence bundles, verification reports and their index ([`report_index`]),
//! the import log, and the evidence of inconsistent checkpoints that imports were rejected for.
//!
//! Each kind lives in its own column family, and every key starts with the tenant id. A
//! [`Store`] is a view of one tenant ([`Store::for_tenant`]): it reads and writes only keys under
//! that tenant, and its listings never leave them. Data written before tenancy existed is keyed
//! under the tenant `default`, which only a token for that tenant reaches; nothing migrates it.
//! Strings inside keys are length-prefixed
//! (`u32` big-endian length, then the bytes) and numbers are `u64` big-endian, so keys
//! never collide and numeric parts sort in numeric order. The store only persists bytes
//! that the import layer has already authenticated. It parses nothing, and reads that
//! need trust (checkpoints, trust sets, evidence) are verified again by the caller.
//!
//! Nothing authenticated is ever overwritten. Tiles are immutable (other bytes under a stored
//! path are a conflict), the first note stored for a checkpoint size is kept, and every distinct
//! tlog-proof file is kept next to the others for its leaf, keyed by its SHA-256.
//!
//! A trust root set or evidence import is one [`ImportBatch`], written with one RocksDB
//! `WriteBatch`: either all of it is stored or none of it. A tile import stages its tiles in the
//! `staging` column family ([`staging`]) and commits them as an ingested SST file before its
//! batch. `crate::tile_import` explains why readers still see the state before or after.
//!
//! Memory is bounded by fixed RocksDB settings, whatever the database size. Each column family
//! has at most [`MAX_WRITE_BUFFERS`] memtables of [`WRITE_BUFFER_BYTES`], and all memtables
//! together are capped at [`TOTAL_WRITE_BUFFER_BYTES`]. Every column family reads through one LRU
//! block cache of [`BLOCK_CACHE_BYTES`], which also contains the index and filter blocks.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBRecoveryMode, Direction, IteratorMode, Options, WriteBatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use stella_authority::Tenant;

mod inconsistencies;
mod report_index;
mod staging;
#[cfg(test)]
mod tenancy_tests;
mod undo;
pub use inconsistencies::EvidenceOutcome;
pub use report_index::ReportKey;
pub use staging::{StagedPaths, Staging};

/// Memtable size of each column family, in bytes.
pub const WRITE_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Maximum number of memtables per column family.
pub const MAX_WRITE_BUFFERS: i32 = 2;
/// Cap on the memtables of all column families together, in bytes.
pub const TOTAL_WRITE_BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// Size of the block cache shared by all column families, in bytes.
pub const BLOCK_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Tenant of the view that [`Store::open`] returns. Data stored before tenancy existed is keyed
/// under this tenant and is reached only with a token for it.
pub const DEFAULT_TENANT: &str = "default";

const CF_TRUST_SETS: &str = "trust_sets";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_TILES: &str = "tiles";
const CF_TLOG_PROOFS: &str = "tlog_proofs";
/// Checkpoints that arrived inside tlog-proof files, kept apart from the tile-verified
/// checkpoints of `checkpoints`, because no tiles of their tree sizes are stored.
const CF_PROOF_CHECKPOINTS: &str = "proof_checkpoints";
const CF_EVIDENCE: &str = "evidence";
const CF_REPORTS: &str = "reports";
const CF_IMPORTS: &str = "imports";
/// Evidence of split views: records of checkpoints that contradicted the cache and were rejected.
/// Written apart from import batches, because a rejected import stores nothing else.
const CF_INCONSISTENCIES: &str = "inconsistencies";
/// Tiles of the tile import in progress ([`staging`]); empty between imports.
const CF_STAGING: &str = "staging";

const COLUMN_FAMILIES: [&str; 13] = [
    CF_TRUST_SETS,
    CF_CHECKPOINTS,
    CF_TILES,
    CF_TLOG_PROOFS,
    CF_PROOF_CHECKPOINTS,
    CF_EVIDENCE,
    CF_REPORTS,
    CF_IMPORTS,
    CF_INCONSISTENCIES,
    CF_STAGING,
    undo::CF_INGEST_UNDO,
    report_index::CF_TLOG_STATE,
    report_index::CF_REPORT_INDEX,
];

/// Key suffixes inside the `trust_sets` column family.
const TRUST_SET_ARCHIVE: &str = "set";
const TRUST_SET_CURRENT: &str = "current";

/// Errors of the storage layer. None of them is the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB {operation} failed: {source}")]
    Rocks {
        operation: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    #[error("column family {0} is missing from the database")]
    MissingColumnFamily(&'static str),
    #[error("stored {what} under key {key} is corrupt: {why}")]
    Corrupt {
        what: &'static str,
        key: String,
        why: String,
    },
    #[error("{what} {key} is already stored with different bytes")]
    Conflict { what: &'static str, key: String },
    #[error("{operation} in {path} failed: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn rocks(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Rocks { operation, source }
}

/// Kind of an imported bundle, as recorded in the import log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    TrustSet,
    Tiles,
    Evidence,
}

/// Checkpoint reference kept in import summaries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointSummary {
    pub origin: String,
    pub tree_size: u64,
    /// Standard base64, as in the checkpoint body.
    pub root_hash: String,
}

/// Summary of what an import stored, so that a repeated import returns the same response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImportSummary {
    TrustSet {
        version: u64,
        /// Unix seconds.
        expires_at: i64,
    },
    Tiles {
        checkpoints: Vec<CheckpointSummary>,
        tiles: u64,
        entry_bundles: u64,
        proofs: u64,
    },
    Evidence {
        sigstore_bundles: u64,
    },
}

impl ImportSummary {
    /// Returns the kind of bundle this summary describes.
    pub fn kind(&self) -> ImportKind {
        match self {
            ImportSummary::TrustSet { .. } => ImportKind::TrustSet,
            ImportSummary::Tiles { .. } => ImportKind::Tiles,
            ImportSummary::Evidence { .. } => ImportKind::Evidence,
        }
    }
}

/// One entry of the import log, keyed by the bundle digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// "sha256:<hex>" of the bundle manifest.
    pub digest: String,
    /// File name the operator gave, for messages only.
    pub file_name: String,
    /// Unix seconds.
    pub imported_at: i64,
    pub summary: ImportSummary,
}

/// Pointer to the trust root set that verification uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTrustSet {
    pub digest: String,
    pub version: u64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Everything one import writes. Built by the import layer after all checks passed and
/// written by [`Store::commit`] in one `WriteBatch`.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    record: ImportRecord,
    trust_set: Option<(CurrentTrustSet, Vec<u8>)>,
    checkpoints: Vec<(String, u64, Vec<u8>)>,
    tiles: Vec<(String, String, Vec<u8>)>,
    tlog_proofs: Vec<(String, u64, Vec<u8>)>,
    proof_checkpoints: Vec<(String, u64, Vec<u8>)>,
    evidence: Option<(String, Vec<u8>)>,
}

impl ImportBatch {
    /// Starts a batch that records `record` in the import log.
    pub fn new(record: ImportRecord) -> Self {
        ImportBatch {
            record,
            trust_set: None,
            checkpoints: Vec::new(),
            tiles: Vec::new(),
            tlog_proofs: Vec::new(),
            proof_checkpoints: Vec::new(),
            evidence: None,
        }
    }

    /// Stores a trust root set archive and makes it the current set.
    pub fn set_trust_set(&mut self, current: CurrentTrustSet, archive: Vec<u8>) {
        self.trust_set = Some((current, archive));
    }

    /// Stores a tile-verified checkpoint note for (origin, tree size). An existing note for
    /// the same key is kept.
    // NOTE: witness cosignatures that arrive later on the same checkpoint are therefore dropped
    // for proofs built from tiles, which can fail a policy's `min_witness_cosignatures` or
    // `max_checkpoint_age` until a larger cosigned checkpoint is imported.
    pub fn put_checkpoint(&mut self, origin: &str, size: u64, note: Vec<u8>) {
        self.checkpoints.push((origin.to_owned(), size, note));
    }

    /// Stores a hash tile or entry bundle under its tlog-tiles path.
    pub fn put_tile(&mut self, origin: &str, path: &str, data: Vec<u8>) {
        self.tiles.push((origin.to_owned(), path.to_owned(), data));
    }

    /// Stores a tlog-proof file for (origin, leaf index) next to the files already stored for
    /// that leaf. Identical bytes are stored once.
    pub fn put_tlog_proof(&mut self, origin: &str, index: u64, data: Vec<u8>) {
        self.tlog_proofs.push((origin.to_owned(), index, data));
    }

    /// Stores the checkpoint note of a tlog-proof file for (origin, tree size). An existing
    /// note for the same key is kept.
    pub fn put_proof_checkpoint(&mut self, origin: &str, size: u64, note: Vec<u8>) {
        self.proof_checkpoints.push((origin.to_owned(), size, note));
    }

    /// Stores an evidence bundle archive under its bundle id.
    pub fn put_evidence(&mut self, bundle_id: &str, archive: Vec<u8>) {
        self.evidence = Some((bundle_id.to_owned(), archive));
    }

    /// Returns the import record this batch writes.
    pub fn record(&self) -> &ImportRecord {
        &self.record
    }
}

/// Result of [`Store::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Imported,
    /// A bundle with the same digest was imported before; nothing was written.
    AlreadyImported(ImportRecord),
}

/// Size of the database from [`Store::size_estimate`]; RocksDB's estimates, not exact counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSizeEstimate {
    /// Tiles stored, for all tenants.
    pub tiles: u64,
    /// Bytes of the SST files of all column families, without the data still in memtables.
    pub sst_bytes: u64,
}

/// A view of the attestor's RocksDB database that reads and writes the keys of one tenant. Cloning is cheap: every clone and
/// every view from [`Store::for_tenant`] shares the database and the import lock.
///
/// The `staging` and `ingest_undo` column families are shared by all tenants, but their keys
/// contain the full tenant-prefixed tile keys, and both are empty between imports.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    tenant: Arc<str>,
    /// Serializes imports of all tenants, so that "check, then commit" sequences do not
    /// interleave and the undo log of a tile import stays exact.
    import_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (or creates) the database in `path` with all column families, as a view of the
    /// tenant [`DEFAULT_TENANT`], deletes the staged tiles of imports that did not finish and
    /// rolls back tile imports that stopped before their commit.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB cannot open the directory or clear the staging area.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut options = column_family_options(&cache);
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // A record in the write-ahead log that fails its checksum stops the open, instead of
        // RocksDB's default of silently dropping it and everything logged after it. Only an
        // incomplete record at the very end, left by a crash during a write, is dropped.
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        options.set_db_write_buffer_size(TOTAL_WRITE_BUFFER_BYTES);
        let descriptors = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, column_family_options(&cache)));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(rocks("open"))?;
        let store = Store {
            db: Arc::new(db),
            tenant: Arc::from(DEFAULT_TENANT),
            import_lock: Arc::new(Mutex::new(())),
        };
        store.clear_staging()?;
        store.roll_back_interrupted_ingests()?;
        Ok(store)
    }

    /// Returns a view of the same database whose keys are under `tenant`.
    pub fn for_tenant(&self, tenant: &Tenant) -> Store {
        Store {
            db: Arc::clone(&self.db),
            tenant: Arc::from(tenant.as_str()),
            import_lock: Arc::clone(&self.import_lock),
        }
    }

    /// Returns the tenant id that prefixes every key of this view.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Takes the import lock, which every view of the database shares. Hold it from opening the
    /// archive until [`Store::commit`] returns, so that checks and commits never interleave and
    /// one archive is expanded at a time.
    pub fn lock_imports(&self) -> MutexGuard<'_, ()> {
        // A poisoned lock only means another import panicked before writing its batch,
        // and a batch is all-or-nothing, so the data is still consistent.
        self.import_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes one import atomically. Returns [`CommitOutcome::AlreadyImported`] without
    /// writing when the import log already contains the digest.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when a tile path is already stored with other bytes
    /// (tiles are immutable once authenticated); nothing is written then.
    /// [`StoreError::Rocks`] when RocksDB fails; the batch is then not applied.
    pub fn commit(&self, batch: ImportBatch) -> Result<CommitOutcome, StoreError> {
        if let Some(existing) = self.import_record(&batch.record.digest)? {
            return Ok(CommitOutcome::AlreadyImported(existing));
        }

        let mut write = WriteBatch::default();

        for (origin, path, data) in &batch.tiles {
            let key = self.tile_key(origin, path);
            match self.get(CF_TILES, &key)? {
                Some(stored) if stored != *data => {
                    return Err(StoreError::Conflict {
                        what: "tile",
                        key: format!("{origin}/{path}"),
                    });
                }
                Some(_) => {}
                None => write.put_cf(self.cf(CF_TILES)?, &key, data),
            }
        }

        for (origin, size, note) in &batch.checkpoints {
            let key = self.checkpoint_key(origin, *size);
            if self.get(CF_CHECKPOINTS, &key)?.is_none() {
                write.put_cf(self.cf(CF_CHECKPOINTS)?, &key, note);
            }
        }

        for (origin, index, data) in &batch.tlog_proofs {
            // The key ends with the file's digest, so this never replaces another file.
            write.put_cf(
                self.cf(CF_TLOG_PROOFS)?,
                self.tlog_proof_key(origin, *index, data),
                data,
            );
        }

        for (origin, size, note) in &batch.proof_checkpoints {
            let key = self.checkpoint_key(origin, *size);
            if self.get(CF_PROOF_CHECKPOINTS, &key)?.is_none() {
                write.put_cf(self.cf(CF_PROOF_CHECKPOINTS)?, &key, note);
            }
        }

        if let Some((current, archive)) = &batch.trust_set {
            let cf = self.cf(CF_TRUST_SETS)?;
            write.put_cf(cf, self.trust_set_key(&current.digest), archive);
            write.put_cf(cf, self.current_trust_set_key(), to_json(current)?);
        }

        if let Some((bundle_id, archive)) = &batch.evidence {
            write.put_cf(self.cf(CF_EVIDENCE)?, self.simple_key(bundle_id), archive);
        }

        write.put_cf(
            self.cf(CF_IMPORTS)?,
            self.simple_key(&batch.record.digest),
            to_json(&batch.record)?,
        );
        // A tile import's undo log ends with the batch that completes the import.
        self.clear_ingest_undo(&mut write, &batch.record.digest)?;
        // New tiles, checkpoints or tlog-proofs can change what the proof cache returns, so
        // reports indexed under the old generation are no longer found.
        if batch.record.summary.kind() == ImportKind::Tiles {
            self.bump_tlog_generation(&mut write)?;
        }

        self.db.write(write).map_err(rocks("write batch"))?;
        Ok(CommitOutcome::Imported)
    }

    /// Returns the import record of a bundle digest.
    pub fn import_record(&self, digest: &str) -> Result<Option<ImportRecord>, StoreError> {
        let key = self.simple_key(digest);
        self.get(CF_IMPORTS, &key)?
            .map(|bytes| from_json("import record", digest, &bytes))
            .transpose()
    }

    /// Returns the pointer to the current trust root set.
    pub fn current_trust_set(&self) -> Result<Option<CurrentTrustSet>, StoreError> {
        self.get(CF_TRUST_SETS, &self.current_trust_set_key())?
            .map(|bytes| from_json("current trust set", TRUST_SET_CURRENT, &bytes))
            .transpose()
    }

    /// Returns a stored trust root set archive by its digest.
    pub fn trust_set_archive(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_TRUST_SETS, &self.trust_set_key(digest))
    }

    /// Returns the tile-verified checkpoint note stored for (origin, size).
    pub fn checkpoint(&self, origin: &str, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_CHECKPOINTS, &self.checkpoint_key(origin, size))
    }

    /// Returns the tlog-proof checkpoint note stored for (origin, size).
    pub fn proof_checkpoint(&self, origin: &str, size: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_PROOF_CHECKPOINTS, &self.checkpoint_key(origin, size))
    }

    /// Returns every tile-verified checkpoint note of an origin as (tree size, note), largest
    /// size first.
    pub fn checkpoints_newest_first(&self, origin: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.notes_newest_first(CF_CHECKPOINTS, origin)
    }

    /// Returns every checkpoint note of an origin that arrived in a tlog-proof file, as
    /// (tree size, note), largest size first.
    pub fn proof_checkpoints_newest_first(&self, origin: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.notes_newest_first(CF_PROOF_CHECKPOINTS, origin)
    }

    fn notes_newest_first(&self, cf_name: &'static str, origin: &str) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let prefix = self.origin_prefix(origin);
        let mut start = prefix.clone();
        start.extend_from_slice(&u64::MAX.to_be_bytes());

        let cf = self.cf(cf_name)?;
        let mut found = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&start, Direction::Reverse)) {
            let (key, value) = item.map_err(rocks("iterate checkpoints"))?;
            let Some(size_bytes) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let size_array: [u8; 8] = size_bytes.try_into().map_err(|_| StoreError::Corrupt {
                what: "checkpoint key",
                key: format!("{origin}/{}", hex::encode(size_bytes)),
                why: "tree size is not 8 bytes".to_owned(),
            })?;
            found.push((u64::from_be_bytes(size_array), value.into_vec()));
        }
        Ok(found)
    }

    /// Returns the checkpoint note with the largest tree size stored for an origin.
    pub fn newest_checkpoint(&self, origin: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self.checkpoints_newest_first(origin)?.into_iter().next())
    }

    /// Returns the bytes stored under an exact tile or entry-bundle path.
    pub fn tile(&self, origin: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_TILES, &self.tile_key(origin, path))
    }

    /// Returns every stored (path, bytes) of an origin whose path starts with
    /// `path_prefix`, in path order.
    pub fn tiles_with_prefix(&self, origin: &str, path_prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = self.tile_key(origin, path_prefix);
        let origin_prefix = self.origin_prefix(origin);
        let cf = self.cf(CF_TILES)?;
        let mut found = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item.map_err(rocks("iterate tiles"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let path_bytes = key.get(origin_prefix.len()..).unwrap_or_default();
            let path = String::from_utf8(path_bytes.to_vec()).map_err(|_| StoreError::Corrupt {
                what: "tile key",
                key: format!("{origin}/{}", hex::encode(path_bytes)),
                why: "path is not UTF-8".to_owned(),
            })?;
            found.push((path, value.into_vec()));
        }
        Ok(found)
    }

    /// Returns every tlog-proof file stored for (origin, leaf index), ordered by the SHA-256
    /// of the file, so the order depends only on the stored files.
    pub fn tlog_proofs(&self, origin: &str, index: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = self.tlog_proof_prefix(origin, index);
        let cf = self.cf(CF_TLOG_PROOFS)?;
        let mut found = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item.map_err(rocks("iterate tlog-proofs"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            found.push(value.into_vec());
        }
        Ok(found)
    }

    /// Returns a registered evidence bundle archive by its bundle id.
    pub fn evidence_archive(&self, bundle_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_EVIDENCE, &self.simple_key(bundle_id))
    }

    /// Stores a verification report under its digest. Reports are content-addressed, so
    /// writing the same digest again stores the same bytes.
    pub fn put_report(&self, digest: &str, report_json: &[u8]) -> Result<(), StoreError> {
        let cf = self.cf(CF_REPORTS)?;
        self.db
            .put_cf(cf, self.simple_key(digest), report_json)
            .map_err(rocks("put report"))
    }

    /// Returns a stored verification report by its digest.
    pub fn report(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CF_REPORTS, &self.simple_key(digest))
    }

    /// Estimates the size of the whole database, for all tenants, from RocksDB's own counters,
    /// which cost no scan: `rocksdb.estimate-num-keys` of the tiles column family and
    /// `rocksdb.total-sst-files-size` summed over every column family.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB cannot read a property.
    pub fn size_estimate(&self) -> Result<StoreSizeEstimate, StoreError> {
        let tiles = self
            .db
            .property_int_value_cf(self.cf(CF_TILES)?, "rocksdb.estimate-num-keys")
            .map_err(rocks("read a property"))?
            .unwrap_or(0);
        let mut sst_bytes = 0_u64;
        for name in COLUMN_FAMILIES {
            let size = self
                .db
                .property_int_value_cf(self.cf(name)?, "rocksdb.total-sst-files-size")
                .map_err(rocks("read a property"))?
                .unwrap_or(0);
            sst_bytes = sst_bytes.saturating_add(size);
        }
        Ok(StoreSizeEstimate { tiles, sst_bytes })
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or(StoreError::MissingColumnFamily(name))
    }

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(rocks("get"))
    }

    fn simple_key(&self, id: &str) -> Vec<u8> {
        let mut key = encode_component(&self.tenant);
        key.extend(encode_component(id));
        key
    }

    fn origin_prefix(&self, origin: &str) -> Vec<u8> {
        self.simple_key(origin)
    }

    fn checkpoint_key(&self, origin: &str, size: u64) -> Vec<u8> {
        let mut key = self.origin_prefix(origin);
        key.extend_from_slice(&size.to_be_bytes());
        key
    }

    /// Describes a live tile key as `<origin>/<path>` for messages.
    fn describe_tile_key(&self, key: &[u8]) -> String {
        let tenant_prefix = encode_component(&self.tenant);
        let rest = key.strip_prefix(tenant_prefix.as_slice()).unwrap_or(key);
        let length = rest
            .get(..4)
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map(u32::from_be_bytes)
            .and_then(|length| usize::try_from(length).ok())
            .unwrap_or(0);
        let origin_end = length.saturating_add(4);
        match (rest.get(4..origin_end), rest.get(origin_end..)) {
            (Some(origin), Some(path)) => {
                format!("{}/{}", String::from_utf8_lossy(origin), String::from_utf8_lossy(path))
            }
            _ => hex::encode(key),
        }
    }

    /// Builds a tile key. The path is the last component and is not length-prefixed, so
    /// that prefix scans over paths work.
    fn tile_key(&self, origin: &str, path: &str) -> Vec<u8> {
        let mut key = self.origin_prefix(origin);
        key.extend_from_slice(path.as_bytes());
        key
    }

    /// Builds the prefix of the tlog-proof keys of one leaf. The index has a fixed length, so
    /// the prefix of one index never matches the keys of another.
    fn tlog_proof_prefix(&self, origin: &str, index: u64) -> Vec<u8> {
        let mut key = self.origin_prefix(origin);
        key.extend_from_slice(&index.to_be_bytes());
        key
    }

    fn tlog_proof_key(&self, origin: &str, index: u64, data: &[u8]) -> Vec<u8> {
        let mut key = self.tlog_proof_prefix(origin, index);
        key.extend_from_slice(&Sha256::digest(data));
        key
    }

    fn trust_set_key(&self, digest: &str) -> Vec<u8> {
        let mut key = self.simple_key(TRUST_SET_ARCHIVE);
        key.extend(encode_component(digest));
        key
    }

    fn current_trust_set_key(&self) -> Vec<u8> {
        self.simple_key(TRUST_SET_CURRENT)
    }
}

/// Returns the options of every column family: fixed memtable sizes and the shared block cache,
/// which also holds index and filter blocks so that their memory does not grow with the data.
fn column_family_options(cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    let mut options = Options::default();
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    options.set_max_write_buffer_number(MAX_WRITE_BUFFERS);
    options.set_block_based_table_factory(&table);
    options
}

/// Encodes one string key component as a `u32` big-endian length and the bytes.
fn encode_component(text: &str) -> Vec<u8> {
    // Key components are ids, origins and paths far below 4 GiB; saturate rather than
    // wrap if that ever fails to hold, which keeps keys distinct for all shorter inputs.
    let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + text.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|error| StoreError::Corrupt {
        what: "record",
        key: String::new(),
        why: error.to_string(),
    })
}

fn from_json<T: for<'de> Deserialize<'de>>(what: &'static str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        what,
        key: key.to_owned(),
        why: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(digest: &str, summary: ImportSummary) -> ImportRecord {
        ImportRecord {
            digest: digest.to_owned(),
            file_name: "bundle.tgz".to_owned(),
            imported_at: 1_780_000_000,
            summary,
        }
    }

    fn tiles_summary() -> ImportSummary {
        ImportSummary::Tiles {
            checkpoints: vec![CheckpointSummary {
                origin: "log.example".to_owned(),
                tree_size: 3,
                root_hash: "AAAA".to_owned(),
            }],
            tiles: 1,
            entry_bundles: 0,
            proofs: 0,
        }
    }

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
    }

    #[test]
    fn commit_stores_every_kind() {
        let (_dir, store) = open_temp();
        let mut batch = ImportBatch::new(record("sha256:aa", tiles_summary()));
        batch.put_checkpoint("log.example", 3, b"note-3".to_vec());
        batch.put_tile("log.example", "tile/0/000.p/3", b"tile-bytes".to_vec());
        batch.put_tlog_proof("log.example", 2, b"proof-2".to_vec());
        batch.put_evidence("sha256:ev", b"evidence".to_vec());
        batch.set_trust_set(
            CurrentTrustSet {
                digest: "sha256:ts".to_owned(),
                version: 4,
                expires_at: 9,
            },
            b"trust-archive".to_vec(),
        );

        assert_eq!(store.commit(batch).expect("commit"), CommitOutcome::Imported);

        assert_eq!(
            store.checkpoint("log.example", 3).expect("get"),
            Some(b"note-3".to_vec())
        );
        assert_eq!(
            store.tile("log.example", "tile/0/000.p/3").expect("get"),
            Some(b"tile-bytes".to_vec())
        );
        assert_eq!(
            store.tlog_proofs("log.example", 2).expect("get"),
            vec![b"proof-2".to_vec()]
        );
        assert_eq!(
            store.evidence_archive("sha256:ev").expect("get"),
            Some(b"evidence".to_vec())
        );
        assert_eq!(
            store.trust_set_archive("sha256:ts").expect("get"),
            Some(b"trust-archive".to_vec())
        );
        let current = store.current_trust_set().expect("get").expect("current set");
        assert_eq!(current.digest, "sha256:ts");
        assert_eq!(current.version, 4);
        let stored = store.import_record("sha256:aa").expect("get").expect("record");
        assert_eq!(stored.summary, tiles_summary());
        assert_eq!(stored.summary.kind(), ImportKind::Tiles);
    }

    #[test]
    fn commit_same_digest_is_noop() {
        let (_dir, store) = open_temp();
        let mut first = ImportBatch::new(record("sha256:aa", tiles_summary()));
        first.put_tile("log.example", "tile/0/000.p/3", b"first".to_vec());
        store.commit(first).expect("first commit");

        let mut second = ImportBatch::new(record("sha256:aa", tiles_summary()));
        second.put_tile("log.example", "tile/0/001", b"second".to_vec());
        let outcome = store.commit(second).expect("second commit");

        let CommitOutcome::AlreadyImported(existing) = outcome else {
            panic!("expected AlreadyImported, got {outcome:?}");
        };
        assert_eq!(existing.digest, "sha256:aa");
        assert_eq!(store.tile("log.example", "tile/0/001").expect("get"), None);
    }

    #[test]
    fn commit_conflicting_tile_writes_nothing() {
        let (_dir, store) = open_temp();
        let mut first = ImportBatch::new(record("sha256:aa", tiles_summary()));
        first.put_tile("log.example", "tile/0/000", b"original".to_vec());
        store.commit(first).expect("first commit");

        let mut second = ImportBatch::new(record("sha256:bb", tiles_summary()));
        second.put_checkpoint("log.example", 512, b"note-512".to_vec());
        second.put_tile("log.example", "tile/0/001", b"new tile".to_vec());
        second.put_tile("log.example", "tile/0/000", b"forged".to_vec());
        second.put_tlog_proof("log.example", 7, b"proof".to_vec());

        let error = store.commit(second).expect_err("conflict must fail");
        assert!(
            matches!(&error, StoreError::Conflict { what: "tile", key } if key == "log.example/tile/0/000"),
            "unexpected error {error:?}"
        );
        assert_eq!(store.checkpoint("log.example", 512).expect("get"), None);
        assert_eq!(store.tile("log.example", "tile/0/001").expect("get"), None);
        assert!(store.tlog_proofs("log.example", 7).expect("get").is_empty());
        assert_eq!(store.import_record("sha256:bb").expect("get"), None);
        assert_eq!(
            store.tile("log.example", "tile/0/000").expect("get"),
            Some(b"original".to_vec())
        );
    }

    #[test]
    fn commit_identical_tile_is_accepted() {
        let (_dir, store) = open_temp();
        let mut first = ImportBatch::new(record("sha256:aa", tiles_summary()));
        first.put_tile("log.example", "tile/0/000", b"same".to_vec());
        store.commit(first).expect("first commit");

        let mut second = ImportBatch::new(record("sha256:bb", tiles_summary()));
        second.put_tile("log.example", "tile/0/000", b"same".to_vec());
        assert_eq!(store.commit(second).expect("second commit"), CommitOutcome::Imported);
    }

    #[test]
    fn checkpoint_keeps_first_note() {
        let (_dir, store) = open_temp();
        let mut first = ImportBatch::new(record("sha256:aa", tiles_summary()));
        first.put_checkpoint("log.example", 3, b"first note".to_vec());
        store.commit(first).expect("first commit");

        let mut second = ImportBatch::new(record("sha256:bb", tiles_summary()));
        second.put_checkpoint("log.example", 3, b"cosigned note".to_vec());
        store.commit(second).expect("second commit");

        assert_eq!(
            store.checkpoint("log.example", 3).expect("get"),
            Some(b"first note".to_vec())
        );
    }

    #[test]
    fn tlog_proofs_kept_side_by_side() {
        let (_dir, store) = open_temp();
        let mut first = ImportBatch::new(record("sha256:aa", tiles_summary()));
        first.put_tlog_proof("log.example", 7, b"good proof".to_vec());
        first.put_tlog_proof("log.example", 8, b"next leaf".to_vec());
        store.commit(first).expect("first commit");

        let mut second = ImportBatch::new(record("sha256:bb", tiles_summary()));
        second.put_tlog_proof("log.example", 7, b"corrupted proof".to_vec());
        second.put_tlog_proof("log.example", 7, b"good proof".to_vec());
        store.commit(second).expect("second commit");

        let mut expected = vec![b"good proof".to_vec(), b"corrupted proof".to_vec()];
        expected.sort_by_key(|data| Sha256::digest(data));
        assert_eq!(store.tlog_proofs("log.example", 7).expect("get"), expected);
        assert_eq!(
            store.tlog_proofs("log.example", 8).expect("get"),
            vec![b"next leaf".to_vec()]
        );
        assert!(store.tlog_proofs("log.example", 6).expect("get").is_empty());
    }

    #[test]
    fn proof_checkpoints_apart_from_tile_checkpoints() {
        let (_dir, store) = open_temp();
        let mut batch = ImportBatch::new(record("sha256:aa", tiles_summary()));
        batch.put_checkpoint("log.example", 5, b"tile note".to_vec());
        batch.put_proof_checkpoint("log.example", 9, b"proof note 9".to_vec());
        batch.put_proof_checkpoint("log.example", 3, b"proof note 3".to_vec());
        store.commit(batch).expect("commit");

        let mut again = ImportBatch::new(record("sha256:bb", tiles_summary()));
        again.put_proof_checkpoint("log.example", 9, b"cosigned note 9".to_vec());
        store.commit(again).expect("second commit");

        assert_eq!(
            store.proof_checkpoints_newest_first("log.example").expect("list"),
            vec![(9, b"proof note 9".to_vec()), (3, b"proof note 3".to_vec())]
        );
        assert_eq!(
            store.checkpoints_newest_first("log.example").expect("list"),
            vec![(5, b"tile note".to_vec())]
        );
        assert_eq!(
            store.proof_checkpoint("log.example", 9).expect("get"),
            Some(b"proof note 9".to_vec())
        );
        assert_eq!(store.proof_checkpoint("log.example", 5).expect("get"), None);
        assert_eq!(store.checkpoint("log.example", 9).expect("get"), None);
    }

    #[test]
    fn checkpoints_sorted_newest_first() {
        let (_dir, store) = open_temp();
        let mut batch = ImportBatch::new(record("sha256:aa", tiles_summary()));
        for size in [5_u64, 256, 3, 70_000, 1 << 40] {
            batch.put_checkpoint("log.example", size, format!("note-{size}").into_bytes());
        }
        // Same tenant, other origins: one sorts before, one after, one shares a prefix.
        batch.put_checkpoint("log.exampl", 9_999_999, b"other".to_vec());
        batch.put_checkpoint("log.examplf", 9_999_999, b"other".to_vec());
        batch.put_checkpoint("log.example.org", 9_999_999, b"other".to_vec());
        store.commit(batch).expect("commit");

        let sizes: Vec<u64> = store
            .checkpoints_newest_first("log.example")
            .expect("list")
            .into_iter()
            .map(|(size, _)| size)
            .collect();
        assert_eq!(sizes, vec![1 << 40, 70_000, 256, 5, 3]);
        let newest = store.newest_checkpoint("log.example").expect("newest").expect("some");
        assert_eq!(newest, (1 << 40, format!("note-{}", 1_u64 << 40).into_bytes()));
        assert_eq!(store.newest_checkpoint("log.unknown").expect("newest"), None);
    }

    #[test]
    fn tiles_with_prefix_finds_partials() {
        let (_dir, store) = open_temp();
        let mut batch = ImportBatch::new(record("sha256:aa", tiles_summary()));
        batch.put_tile("log.example", "tile/0/000.p/3", b"w3".to_vec());
        batch.put_tile("log.example", "tile/0/000.p/12", b"w12".to_vec());
        batch.put_tile("log.example", "tile/0/001.p/3", b"other index".to_vec());
        batch.put_tile("log.example.org", "tile/0/000.p/200", b"other origin".to_vec());
        store.commit(batch).expect("commit");

        let found = store.tiles_with_prefix("log.example", "tile/0/000.p/").expect("scan");
        let paths: Vec<&str> = found.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, vec!["tile/0/000.p/12", "tile/0/000.p/3"]);
    }

    #[test]
    fn reopen_after_drop_keeps_data() {
        let dir = tempfile::tempdir().expect("create temp dir");
        {
            let store = Store::open(dir.path()).expect("open store");
            let mut batch = ImportBatch::new(record("sha256:aa", tiles_summary()));
            batch.put_checkpoint("log.example", 3, b"note-3".to_vec());
            batch.put_tile("log.example", "tile/0/000.p/3", b"tile".to_vec());
            store.commit(batch).expect("commit");
            store.put_report("sha256:rep", b"{\"report\":1}").expect("put report");
        }

        let store = Store::open(dir.path()).expect("reopen store");
        assert_eq!(
            store.checkpoint("log.example", 3).expect("get"),
            Some(b"note-3".to_vec())
        );
        assert_eq!(
            store.tile("log.example", "tile/0/000.p/3").expect("get"),
            Some(b"tile".to_vec())
        );
        assert_eq!(
            store.report("sha256:rep").expect("get"),
            Some(b"{\"report\":1}".to_vec())
        );
        assert!(store.import_record("sha256:aa").expect("get").is_some());
    }

    #[test]
    fn keys_start_with_tenant() {
        let (_dir, store) = open_temp();
        let key = store.checkpoint_key("log.example", 1);
        assert_eq!(key.get(..4), Some(&7_u32.to_be_bytes()[..]));
        assert_eq!(key.get(4..11), Some(&b"default"[..]));
        assert_eq!(store.tenant(), DEFAULT_TENANT);
    }

    #[test]
    fn unknown_keys_return_none() {
        let (_dir, store) = open_temp();
        assert_eq!(store.current_trust_set().expect("get"), None);
        assert_eq!(store.report("sha256:none").expect("get"), None);
        assert_eq!(store.evidence_archive("sha256:none").expect("get"), None);
        assert!(store.tlog_proofs("log.example", 0).expect("get").is_empty());
        assert!(
            store
                .proof_checkpoints_newest_first("log.example")
                .expect("get")
                .is_empty()
        );
    }
}
