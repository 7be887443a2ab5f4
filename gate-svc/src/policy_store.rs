//! Policy versions of each tenant in RocksDB, column family `policies`.
//!
//! Every key starts with the tenant's length-prefixed id (see [`crate::store`]), followed by a
//! length-prefixed kind:
//!
//! - tenant, `document`, digest: the version number last given to the document (`u64`
//!   big-endian), then the document bytes exactly as imported.
//! - tenant, `active`: the JSON [`ActivePolicy`].
//!
//! An import writes both keys in one `WriteBatch` under the store's write lock, so version
//! numbers never repeat within a tenant and the active version is always a stored document.
//! The newest import is the active version. Importing the active document again writes
//! nothing; importing an older document again makes it active under a new version number.

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::record::sha256_digest;
use crate::store::{CF_POLICIES, Store, StoreError, TenantStore, encode_component, rocks};

const DOCUMENT_KIND: &str = "document";
const ACTIVE_KIND: &str = "active";

/// The version that a tenant's evaluations use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePolicy {
    /// 1 for the tenant's first import, then 2, 3, ...
    pub version: u64,
    /// "sha256:<hex>" of the document bytes.
    pub digest: String,
}

/// A stored policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub digest: String,
    /// The version number last given to this document.
    pub version: u64,
    /// The document bytes as imported.
    pub document: Vec<u8>,
}

/// Result of [`TenantStore::import_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPolicy {
    pub digest: String,
    pub version: u64,
    /// True when the document already was the active version, so nothing was written.
    pub already_active: bool,
}

impl TenantStore {
    /// Stores `document` as this tenant's newest policy version and makes it active. The
    /// caller validates the document first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for an unreadable active entry, and RocksDB errors. Nothing is
    /// written on error.
    pub fn import_policy(&self, document: &[u8]) -> Result<ImportedPolicy, StoreError> {
        let digest = sha256_digest(document);
        let cf = self.cf(CF_POLICIES)?;

        let _guard = self.lock();
        let active = self.active_policy()?;
        if let Some(active) = active.as_ref().filter(|active| active.digest == digest) {
            return Ok(ImportedPolicy {
                digest,
                version: active.version,
                already_active: true,
            });
        }
        let version = match &active {
            Some(active) => active.version.checked_add(1).ok_or_else(|| StoreError::Corrupt {
                what: "active policy",
                key: self.tenant().as_str().to_owned(),
                why: "the version number cannot grow past u64::MAX".to_owned(),
            })?,
            None => 1,
        };
        let new_active = ActivePolicy {
            version,
            digest: digest.clone(),
        };
        let active_json = serde_json::to_vec(&new_active).map_err(|error| StoreError::Corrupt {
            what: "active policy",
            key: self.tenant().as_str().to_owned(),
            why: error.to_string(),
        })?;
        let mut value = version.to_be_bytes().to_vec();
        value.extend_from_slice(document);

        let mut batch = WriteBatch::default();
        batch.put_cf(cf, self.policy_key(DOCUMENT_KIND, Some(&digest)), value);
        batch.put_cf(cf, self.policy_key(ACTIVE_KIND, None), active_json);
        self.db.write(batch).map_err(rocks("import policy"))?;
        Ok(ImportedPolicy {
            digest,
            version,
            already_active: false,
        })
    }

    /// Returns this tenant's active policy version, or `None` before its first import.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for an unreadable entry, and RocksDB errors.
    pub fn active_policy(&self) -> Result<Option<ActivePolicy>, StoreError> {
        let cf = self.cf(CF_POLICIES)?;
        let Some(bytes) = self
            .db
            .get_cf(cf, self.policy_key(ACTIVE_KIND, None))
            .map_err(rocks("get active policy"))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                what: "active policy",
                key: self.tenant().as_str().to_owned(),
                why: error.to_string(),
            })
    }

    /// Returns this tenant's policy document with `digest`, or `None` when this tenant never
    /// imported it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a value without a version number or whose bytes do not have
    /// the digest of its key, and RocksDB errors.
    pub fn policy(&self, digest: &str) -> Result<Option<StoredPolicy>, StoreError> {
        let cf = self.cf(CF_POLICIES)?;
        let Some(value) = self
            .db
            .get_cf(cf, self.policy_key(DOCUMENT_KIND, Some(digest)))
            .map_err(rocks("get policy"))?
        else {
            return Ok(None);
        };
        let corrupt = |why: String| StoreError::Corrupt {
            what: "policy document",
            key: digest.to_owned(),
            why,
        };
        let (version, document) = value
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("the value is shorter than its 8-byte version number".to_owned()))?;
        let actual = sha256_digest(document);
        if actual != digest {
            return Err(corrupt(format!("the stored bytes have the digest {actual}")));
        }
        Ok(Some(StoredPolicy {
            digest: digest.to_owned(),
            version: u64::from_be_bytes(*version),
            document: document.to_vec(),
        }))
    }

    fn policy_key(&self, kind: &str, digest: Option<&str>) -> Vec<u8> {
        let mut key = self.key(kind);
        if let Some(digest) = digest {
            key.extend(encode_component(digest));
        }
        key
    }
}

/// Returns the key of a site-wide default policy document. Every tenant key starts with the
/// encoding of a non-empty tenant id, so a key that starts with the encoding of the empty
/// string never collides with one.
fn site_policy_key(digest: &str) -> Vec<u8> {
    let mut key = encode_component("");
    key.extend(encode_component("site-default"));
    key.extend(encode_component(digest));
    key
}

impl Store {
    /// Stores the site-wide default policy document that the gate started with, so decisions
    /// made with it can still be shown and replayed after `--policy` names another file.
    ///
    /// # Errors
    ///
    /// RocksDB errors.
    pub fn put_site_policy(&self, document: &[u8]) -> Result<(), StoreError> {
        let digest = sha256_digest(document);
        self.put_raw(CF_POLICIES, &site_policy_key(&digest), document)
    }
}

impl TenantStore {
    /// Returns a site-wide default policy document that the gate once started with, by digest.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the stored bytes do not have the digest of their key, and
    /// RocksDB errors.
    pub fn site_policy(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(CF_POLICIES)?;
        let Some(document) = self.db.get_cf(cf, site_policy_key(digest)).map_err(rocks("get site policy"))? else {
            return Ok(None);
        };
        let actual = sha256_digest(&document);
        if actual != digest {
            return Err(StoreError::Corrupt {
                what: "site default policy",
                key: digest.to_owned(),
                why: format!("the stored bytes have the digest {actual}"),
            });
        }
        Ok(Some(document))
    }
}

#[cfg(test)]
mod tests {
    use stella_access::Tenant;

    use super::*;
    use crate::store::Store;

    fn tenant_store(dir: &tempfile::TempDir, tenant: &str) -> TenantStore {
        Store::open(dir.path())
            .expect("open")
            .for_tenant(&Tenant::parse(tenant).expect("valid tenant"))
    }

    #[test]
    fn import_numbers_versions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        assert_eq!(store.active_policy().expect("active"), None);

        let first = store.import_policy(b"first").expect("import first");
        assert_eq!(first.version, 1);
        assert!(!first.already_active);
        let second = store.import_policy(b"second").expect("import second");
        assert_eq!(second.version, 2);
        assert_eq!(
            store.active_policy().expect("active"),
            Some(ActivePolicy {
                version: 2,
                digest: second.digest.clone()
            })
        );
        let stored = store.policy(&first.digest).expect("get").expect("first is kept");
        assert_eq!(stored.document, b"first");
        assert_eq!(stored.version, 1);
    }

    #[test]
    fn reimport_active_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let first = store.import_policy(b"doc").expect("import");
        let again = store.import_policy(b"doc").expect("import again");
        assert!(again.already_active);
        assert_eq!(again.version, first.version);
        assert_eq!(again.digest, first.digest);
        assert_eq!(store.active_policy().expect("active").map(|active| active.version), Some(1));
    }

    #[test]
    fn reimport_older_gets_new_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let first = store.import_policy(b"one").expect("import one");
        store.import_policy(b"two").expect("import two");
        let back = store.import_policy(b"one").expect("import one again");
        assert_eq!(back.version, 3);
        assert!(!back.already_active);
        assert_eq!(back.digest, first.digest);
        assert_eq!(store.policy(&first.digest).expect("get").map(|stored| stored.version), Some(3));
        assert_eq!(store.active_policy().expect("active").map(|active| active.digest), Some(first.digest));
    }

    #[test]
    fn tenants_see_only_own_policies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        let acme = database.for_tenant(&Tenant::parse("acme").expect("tenant"));
        let globex = database.for_tenant(&Tenant::parse("globex").expect("tenant"));
        let imported = acme.import_policy(b"acme's").expect("import");
        assert_eq!(globex.policy(&imported.digest).expect("get"), None);
        assert_eq!(globex.active_policy().expect("active"), None);
        assert_eq!(globex.import_policy(b"globex's").expect("import").version, 1);
    }

    #[test]
    fn altered_document_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let imported = store.import_policy(b"original").expect("import");
        let cf = store.cf(CF_POLICIES).expect("family");
        let mut value = 1_u64.to_be_bytes().to_vec();
        value.extend_from_slice(b"altered");
        store
            .db
            .put_cf(cf, store.policy_key(DOCUMENT_KIND, Some(&imported.digest)), value)
            .expect("overwrite");
        let error = store.policy(&imported.digest).expect_err("altered bytes accepted");
        assert!(matches!(error, StoreError::Corrupt { what: "policy document", .. }), "{error:?}");
    }
}
