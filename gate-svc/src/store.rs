//! RocksDB storage of the gate: promotions and decision records.
//!
//! Column family `promotions`, and the decision record chain described in [`crate::chain`];
//! every key starts with the tenant id as a length-prefixed component (`u32` big-endian
//! length, then the bytes). A promotion is created once and can only be re-created with
//! identical content. A decision record is written once and never overwritten, so the record
//! an auditor reads is the record the gate wrote.
//!
//! Reads and writes go through a [`TenantStore`], the view of one tenant that
//! [`Store::for_tenant`] returns, so no call can reach a key without naming its tenant. An id
//! that exists only under another tenant reads as absent, exactly like an id that was never
//! written.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rocksdb::{ColumnFamilyDescriptor, DB, DBRecoveryMode, Options};
use stella_access::Tenant;

use crate::promotion::Promotion;

const CF_PROMOTIONS: &str = "promotions";
/// Unsigned `stella.decision-record/v1` records, keyed by tenant and record id.
// NOTE: v1 records are neither read nor migrated into the signed chain. The family is still
// opened because RocksDB refuses to open a database without naming all its column families.
const CF_DECISIONS_V1: &str = "decisions";
pub(crate) const CF_DECISION_CHAIN: &str = "decision_chain";
pub(crate) const CF_DECISION_INDEX: &str = "decision_index";
pub(crate) const CF_DECISION_HEADS: &str = "decision_heads";
/// Request id of an evaluation to the record id it wrote, keyed by tenant and request id.
pub(crate) const CF_DECISION_REQUESTS: &str = "decision_requests";
/// Policy documents by tenant and digest, version numbers and each tenant's active version.
pub(crate) const CF_POLICIES: &str = "policies";
/// Break-glass overrides, keyed by tenant and promotion id.
pub(crate) const CF_BREAK_GLASS: &str = "break_glass";

/// Errors of the storage layer.
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
    #[error("stored {what} {key} is corrupt: {why}")]
    Corrupt {
        what: &'static str,
        key: String,
        why: String,
    },
    #[error("promotion {promotion_id} already exists with different content")]
    PromotionConflict { promotion_id: String },
    #[error("decision record {record_id} already exists")]
    DecisionExists { record_id: String },
    #[error("cannot build the decision record: {0}")]
    Build(#[source] crate::chain::BuildError),
}

pub(crate) fn rocks(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Rocks { operation, source }
}

/// Result of [`Store::create_promotion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The same promotion was created before; nothing was written.
    AlreadyExists,
}

/// The gate's RocksDB database. Cheap to clone; every clone shares one database and one
/// write lock.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    /// Makes "check absent, then put" atomic for write-once keys, across all tenants.
    write_lock: Arc<Mutex<()>>,
}

impl Store {
    /// Opens (or creates) the database in `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB cannot open the directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // A record in the write-ahead log that fails its checksum stops the open, instead of
        // RocksDB's default of silently dropping it and everything logged after it. Only an
        // incomplete record at the very end, left by a crash during a write, is dropped.
        options.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        let descriptors = [
            CF_PROMOTIONS,
            CF_DECISIONS_V1,
            CF_DECISION_CHAIN,
            CF_DECISION_INDEX,
            CF_DECISION_HEADS,
            CF_DECISION_REQUESTS,
            CF_POLICIES,
            CF_BREAK_GLASS,
        ]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(rocks("open"))?;
        Ok(Store {
            db: Arc::new(db),
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Writes one key outside any tenant's view.
    ///
    /// # Errors
    ///
    /// RocksDB errors.
    pub(crate) fn put_raw(&self, family: &'static str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let cf = self.db.cf_handle(family).ok_or(StoreError::MissingColumnFamily(family))?;
        self.db.put_cf(cf, key, value).map_err(rocks("put"))
    }

    /// Returns the view of `tenant`: every key it reads or writes starts with that tenant.
    pub fn for_tenant(&self, tenant: &Tenant) -> TenantStore {
        TenantStore {
            db: Arc::clone(&self.db),
            write_lock: Arc::clone(&self.write_lock),
            tenant: tenant.clone(),
        }
    }
}

/// One tenant's promotions and decision records. Cheap to clone.
#[derive(Clone)]
pub struct TenantStore {
    pub(crate) db: Arc<DB>,
    write_lock: Arc<Mutex<()>>,
    tenant: Tenant,
}

impl TenantStore {
    /// Returns the tenant whose keys this view reads and writes.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Stores a new promotion.
    ///
    /// # Errors
    ///
    /// [`StoreError::PromotionConflict`] when the id exists with other content.
    pub fn create_promotion(&self, promotion: &Promotion) -> Result<CreateOutcome, StoreError> {
        let key = self.key(&promotion.promotion_id);
        let bytes = serde_json::to_vec(promotion).map_err(|error| StoreError::Corrupt {
            what: "promotion",
            key: promotion.promotion_id.clone(),
            why: error.to_string(),
        })?;

        let _guard = self.lock();
        let cf = self.cf(CF_PROMOTIONS)?;
        if let Some(existing) = self.db.get_cf(cf, &key).map_err(rocks("get promotion"))? {
            let existing = decode_promotion(&promotion.promotion_id, &existing)?;
            if existing == *promotion {
                return Ok(CreateOutcome::AlreadyExists);
            }
            return Err(StoreError::PromotionConflict {
                promotion_id: promotion.promotion_id.clone(),
            });
        }
        self.db.put_cf(cf, &key, bytes).map_err(rocks("put promotion"))?;
        Ok(CreateOutcome::Created)
    }

    /// Returns this tenant's promotion `promotion_id`, or `None` when this tenant has none.
    pub fn promotion(&self, promotion_id: &str) -> Result<Option<Promotion>, StoreError> {
        let cf = self.cf(CF_PROMOTIONS)?;
        self.db
            .get_cf(cf, self.key(promotion_id))
            .map_err(rocks("get promotion"))?
            .map(|bytes| decode_promotion(promotion_id, &bytes))
            .transpose()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // Poisoning means a writer panicked; each write is a single put or one write batch,
        // so the data is still consistent.
        self.write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or(StoreError::MissingColumnFamily(name))
    }

    pub(crate) fn key(&self, id: &str) -> Vec<u8> {
        let mut key = encode_component(self.tenant.as_str());
        key.extend(encode_component(id));
        key
    }
}

fn decode_promotion(promotion_id: &str, bytes: &[u8]) -> Result<Promotion, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        what: "promotion",
        key: promotion_id.to_owned(),
        why: error.to_string(),
    })
}

/// Encodes one string key component as a `u32` big-endian length and the bytes.
pub(crate) fn encode_component(text: &str) -> Vec<u8> {
    // Ids are validated to be short; saturating keeps keys distinct for all shorter inputs.
    let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + text.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Decodes a key component written by [`encode_component`] that fills all of `bytes`.
pub(crate) fn decode_component(bytes: &[u8]) -> Option<String> {
    let (length, text) = bytes.split_first_chunk::<4>()?;
    let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
    if text.len() != length {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promotion(id: &str, target: &str) -> Promotion {
        Promotion {
            promotion_id: id.to_owned(),
            subject_digests: vec![format!("sha256:{}", "ab".repeat(32))],
            target_environment: target.to_owned(),
            evidence_bundle_ids: vec![format!("sha256:{}", "cd".repeat(32))],
        }
    }

    fn tenant(name: &str) -> Tenant {
        Tenant::parse(name).expect("valid tenant")
    }

    fn open_temp() -> (tempfile::TempDir, TenantStore) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store.for_tenant(&tenant("acme")))
    }

    /// Copies every file of the database directory `from` into `to`.
    fn copy_database(from: &Path, to: &Path) {
        for entry in std::fs::read_dir(from).expect("read database dir") {
            let path = entry.expect("dir entry").path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy file");
            }
        }
    }

    #[test]
    fn corrupt_log_record_fails_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        let view = store.for_tenant(&tenant("acme"));
        for index in 0..20 {
            view.create_promotion(&promotion(&format!("rel-{index}"), "prod")).expect("create");
        }
        // Leaking the database leaves its writes in the write-ahead log, as a crash does.
        std::mem::forget(view);
        std::mem::forget(store);

        let copy = tempfile::tempdir().expect("temp dir");
        copy_database(dir.path(), copy.path());
        let log = std::fs::read_dir(copy.path())
            .expect("read copy")
            .map(|entry| entry.expect("dir entry").path())
            .find(|path| path.extension().is_some_and(|extension| extension == "log"))
            .expect("a write-ahead log file");
        let mut bytes = std::fs::read(&log).expect("read log");
        assert!(bytes.len() > 200, "the log holds the writes: {} bytes", bytes.len());
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&log, bytes).expect("write log");

        let error = Store::open(copy.path()).err().expect("a corrupt log record must stop the open");
        assert!(error.to_string().contains("open"), "{error}");
    }

    #[test]
    fn promotion_create_then_get() {
        let (_dir, store) = open_temp();
        let created = promotion("rel-1", "prod");
        assert_eq!(
            store.create_promotion(&created).expect("create"),
            CreateOutcome::Created
        );
        assert_eq!(store.promotion("rel-1").expect("get"), Some(created));
        assert_eq!(store.promotion("rel-2").expect("get"), None);
    }

    #[test]
    fn promotion_recreate_identical_is_noop() {
        let (_dir, store) = open_temp();
        store.create_promotion(&promotion("rel-1", "prod")).expect("create");
        assert_eq!(
            store
                .create_promotion(&promotion("rel-1", "prod"))
                .expect("create again"),
            CreateOutcome::AlreadyExists
        );
    }

    #[test]
    fn promotion_recreate_different_conflicts() {
        let (_dir, store) = open_temp();
        store.create_promotion(&promotion("rel-1", "prod")).expect("create");
        let error = store
            .create_promotion(&promotion("rel-1", "staging"))
            .expect_err("conflict must fail");
        assert!(
            matches!(&error, StoreError::PromotionConflict { promotion_id } if promotion_id == "rel-1"),
            "unexpected error {error:?}"
        );
        let stored = store.promotion("rel-1").expect("get").expect("stored");
        assert_eq!(stored.target_environment, "prod");
    }

    #[test]
    fn reopen_after_drop_keeps_data() {
        let dir = tempfile::tempdir().expect("create temp dir");
        {
            let store = Store::open(dir.path()).expect("open store").for_tenant(&tenant("acme"));
            store.create_promotion(&promotion("rel-1", "prod")).expect("create");
            store
                .append_decision("dr-1", |_| {
                    Ok(crate::chain::SignedRecord {
                        envelope_json: b"{}".to_vec(),
                        record_digest: "sha256:00".to_owned(),
                        grant: None,
                    })
                })
                .expect("append");
        }
        let store = Store::open(dir.path()).expect("reopen store").for_tenant(&tenant("acme"));
        assert_eq!(store.promotion("rel-1").expect("get"), Some(promotion("rel-1", "prod")));
        let stored = store.decision("dr-1").expect("get").expect("stored");
        assert_eq!(stored.envelope_json, b"{}".to_vec());
        assert_eq!(store.decision("dr-2").expect("get"), None);
        assert_eq!(store.chain_head().expect("head").map(|head| head.sequence), Some(1));
    }

    #[test]
    fn tenants_never_see_each_others_promotions() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        let acme = store.for_tenant(&tenant("acme"));
        let globex = store.for_tenant(&tenant("globex"));

        acme.create_promotion(&promotion("rel-1", "prod")).expect("create for acme");
        assert_eq!(globex.promotion("rel-1").expect("get as globex"), None);

        // The same id under another tenant is a separate promotion, not a conflict.
        assert_eq!(
            globex
                .create_promotion(&promotion("rel-1", "staging"))
                .expect("create for globex"),
            CreateOutcome::Created
        );
        let acme_copy = acme.promotion("rel-1").expect("get as acme").expect("acme's promotion");
        let globex_copy = globex.promotion("rel-1").expect("get as globex").expect("globex's promotion");
        assert_eq!(acme_copy.target_environment, "prod");
        assert_eq!(globex_copy.target_environment, "staging");
    }

    #[test]
    fn tenant_prefix_cannot_collide() {
        // "ab" + id "c..." and "a" + id "bc..." would share raw bytes without the length prefix.
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        let short = store.for_tenant(&tenant("a"));
        let long = store.for_tenant(&tenant("ab"));
        short.create_promotion(&promotion("bc", "prod")).expect("create");
        assert_eq!(long.promotion("c").expect("get"), None);
        assert_ne!(short.key("bc"), long.key("c"));
    }
}
