//! RocksDB storage of the gate: promotions and decision records.
//!
//! Column families `promotions` and `decisions`; every key starts with the tenant id as a
//! length-prefixed component (`u32` big-endian length, then the bytes). A promotion is
//! created once and can only be re-created with identical content. A decision record is
//! written once and never overwritten, so the record an auditor reads is the record the
//! gate wrote.

use std::path::Path;
use std::sync::Mutex;

use rocksdb::{ColumnFamilyDescriptor, DB, Options};

use crate::promotion::Promotion;

/// Tenant id used for every key until multi-tenancy is configured.
pub const DEFAULT_TENANT: &str = "default";

const CF_PROMOTIONS: &str = "promotions";
const CF_DECISIONS: &str = "decisions";

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
}

fn rocks(operation: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Rocks { operation, source }
}

/// Result of [`Store::create_promotion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The same promotion was created before; nothing was written.
    AlreadyExists,
}

/// The gate's RocksDB database.
pub struct Store {
    db: DB,
    tenant: String,
    /// Makes "check absent, then put" atomic for write-once keys.
    write_lock: Mutex<()>,
}

impl Store {
    /// Opens (or creates) the database in `path` for the default tenant.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB cannot open the directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let descriptors = [CF_PROMOTIONS, CF_DECISIONS]
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(rocks("open"))?;
        Ok(Store {
            db,
            tenant: DEFAULT_TENANT.to_owned(),
            write_lock: Mutex::new(()),
        })
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

    /// Returns a stored promotion.
    pub fn promotion(&self, promotion_id: &str) -> Result<Option<Promotion>, StoreError> {
        let cf = self.cf(CF_PROMOTIONS)?;
        self.db
            .get_cf(cf, self.key(promotion_id))
            .map_err(rocks("get promotion"))?
            .map(|bytes| decode_promotion(promotion_id, &bytes))
            .transpose()
    }

    /// Writes a decision record under a new id.
    ///
    /// # Errors
    ///
    /// [`StoreError::DecisionExists`] when the id is taken; the stored record is kept.
    pub fn put_decision(&self, record_id: &str, record_json: &[u8]) -> Result<(), StoreError> {
        let key = self.key(record_id);
        let _guard = self.lock();
        let cf = self.cf(CF_DECISIONS)?;
        if self.db.get_cf(cf, &key).map_err(rocks("get decision"))?.is_some() {
            return Err(StoreError::DecisionExists {
                record_id: record_id.to_owned(),
            });
        }
        self.db.put_cf(cf, &key, record_json).map_err(rocks("put decision"))
    }

    /// Returns a decision record's canonical JSON.
    pub fn decision(&self, record_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(CF_DECISIONS)?;
        self.db.get_cf(cf, self.key(record_id)).map_err(rocks("get decision"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // Poisoning means a writer panicked; each write is a single put, so the data is
        // still consistent.
        self.write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or(StoreError::MissingColumnFamily(name))
    }

    fn key(&self, id: &str) -> Vec<u8> {
        let mut key = encode_component(&self.tenant);
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
fn encode_component(text: &str) -> Vec<u8> {
    // Ids are validated to be short; saturating keeps keys distinct for all shorter inputs.
    let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + text.len());
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out
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

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
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
    fn decision_written_once() {
        let (_dir, store) = open_temp();
        store.put_decision("dr-1", b"{\"decision\":\"deny\"}").expect("put");
        let error = store
            .put_decision("dr-1", b"{\"decision\":\"allow\"}")
            .expect_err("second write must fail");
        assert!(
            matches!(&error, StoreError::DecisionExists { record_id } if record_id == "dr-1"),
            "unexpected error {error:?}"
        );
        assert_eq!(
            store.decision("dr-1").expect("get"),
            Some(b"{\"decision\":\"deny\"}".to_vec())
        );
    }

    #[test]
    fn reopen_after_drop_keeps_data() {
        let dir = tempfile::tempdir().expect("create temp dir");
        {
            let store = Store::open(dir.path()).expect("open store");
            store.create_promotion(&promotion("rel-1", "prod")).expect("create");
            store.put_decision("dr-1", b"{}").expect("put");
        }
        let store = Store::open(dir.path()).expect("reopen store");
        assert_eq!(store.promotion("rel-1").expect("get"), Some(promotion("rel-1", "prod")));
        assert_eq!(store.decision("dr-1").expect("get"), Some(b"{}".to_vec()));
        assert_eq!(store.decision("dr-2").expect("get"), None);
    }
}
