//! The policy that decides an evaluation: the tenant's active imported version, or else the
//! gate's site-wide default (its `--policy` file, reported as version 0).
//!
//! Parsed policies are cached by digest, so an evaluation does not parse YAML again. The cache
//! is shared by all tenants but is only consulted with a digest that was first looked up in the
//! caller's tenant's store, so no tenant reaches another's policy through it.
//!
//! Every function here reads RocksDB; call them off the async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::policy::{Policy, PolicyError, parse_policy};
use crate::store::{StoreError, TenantStore};

/// Maximum number of parsed policies kept in memory.
const MAX_CACHED_POLICIES: usize = 256;
/// Maximum total size of the documents behind the cached policies, in bytes. A parsed policy
/// takes some multiple of its document's size, so this bounds the cache's memory as well.
const MAX_CACHED_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// A policy selected for an evaluation.
#[derive(Debug, Clone)]
pub struct SelectedPolicy {
    /// The parsed policy; `policy.digest` is the digest a decision names.
    pub policy: Arc<Policy>,
    /// The tenant's version number, or 0 for the site-wide default.
    pub version: u64,
}

/// A policy document as `GetPolicy` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub digest: String,
    /// The tenant's version number, or 0 for the site-wide default.
    pub version: u64,
    pub document: Vec<u8>,
    /// True when the tenant's evaluations use this document now.
    pub active: bool,
}

/// A failed policy lookup.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored version fails validation now, which happens when a newer gate validates
    /// policies more strictly than the gate that imported it.
    #[error("stored policy version {version} ({digest}) is no longer valid: {source}")]
    StoredInvalid {
        digest: String,
        version: u64,
        #[source]
        source: Box<PolicyError>,
    },
}

/// A rejected or failed import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An invalid document. The error names the file, line and field.
    #[error(transparent)]
    Invalid(Box<PolicyError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The site-wide default policy and the per-tenant versions, with the parse cache.
pub struct PolicyVersions {
    site_default: Arc<Policy>,
    site_default_document: Vec<u8>,
    cache: Mutex<ParsedCache>,
}

impl PolicyVersions {
    /// Uses `site_default`, parsed from `site_default_document`, for tenants without an imported
    /// policy.
    pub fn new(site_default: Policy, site_default_document: Vec<u8>) -> PolicyVersions {
        PolicyVersions {
            site_default: Arc::new(site_default),
            site_default_document,
            cache: Mutex::new(ParsedCache::default()),
        }
    }

    /// Returns the gate's site-wide default policy.
    pub fn site_default(&self) -> &Arc<Policy> {
        &self.site_default
    }

    fn site_default_selected(&self) -> SelectedPolicy {
        SelectedPolicy {
            policy: Arc::clone(&self.site_default),
            version: 0,
        }
    }

    /// Returns the policy the tenant's evaluations use now.
    ///
    /// # Errors
    ///
    /// [`LookupError::StoredInvalid`] when the active version no longer validates, and store
    /// errors.
    pub fn active(&self, store: &TenantStore) -> Result<SelectedPolicy, LookupError> {
        let Some(active) = store.active_policy()? else {
            return Ok(self.site_default_selected());
        };
        if let Some(policy) = self.cached(&active.digest) {
            return Ok(SelectedPolicy {
                policy,
                version: active.version,
            });
        }
        let stored = store.policy(&active.digest)?.ok_or_else(|| StoreError::Corrupt {
            what: "active policy",
            key: store.tenant().as_str().to_owned(),
            why: format!("it names {}, which is not stored", active.digest),
        })?;
        self.parse_stored(&stored.digest, active.version, &stored.document)
    }

    /// Returns the tenant's stored version with `digest`, or the site-wide default when that
    /// has `digest`, and `None` for any other digest.
    ///
    /// # Errors
    ///
    /// As [`PolicyVersions::active`].
    pub fn by_digest(&self, store: &TenantStore, digest: &str) -> Result<Option<SelectedPolicy>, LookupError> {
        // The store is read even on a cache hit, because the cache contains every tenant's
        // policies and only the store shows whether this tenant has the digest.
        if let Some(stored) = store.policy(digest)? {
            if let Some(policy) = self.cached(digest) {
                return Ok(Some(SelectedPolicy {
                    policy,
                    version: stored.version,
                }));
            }
            return self.parse_stored(digest, stored.version, &stored.document).map(Some);
        }
        if digest == self.site_default.digest {
            return Ok(Some(self.site_default_selected()));
        }
        if let Some(document) = store.site_policy(digest)? {
            if let Some(policy) = self.cached(digest) {
                return Ok(Some(SelectedPolicy { policy, version: 0 }));
            }
            return self.parse_stored(digest, 0, &document).map(Some);
        }
        Ok(None)
    }

    /// Returns the document with `digest` as [`PolicyVersions::by_digest`] finds it, or the
    /// active document when `digest` is `None`.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub fn document(&self, store: &TenantStore, digest: Option<&str>) -> Result<Option<PolicyDocument>, StoreError> {
        let active = store.active_policy()?;
        let requested = match (digest, &active) {
            (Some(digest), _) => digest,
            (None, Some(active)) => active.digest.as_str(),
            (None, None) => return Ok(Some(self.site_default_document(true))),
        };
        if let Some(stored) = store.policy(requested)? {
            let is_active = active.as_ref().is_some_and(|active| active.digest == stored.digest);
            return Ok(Some(PolicyDocument {
                digest: stored.digest,
                version: stored.version,
                document: stored.document,
                active: is_active,
            }));
        }
        if requested == self.site_default.digest {
            return Ok(Some(self.site_default_document(active.is_none())));
        }
        if let Some(document) = store.site_policy(requested)? {
            return Ok(Some(PolicyDocument {
                digest: requested.to_owned(),
                version: 0,
                document,
                active: false,
            }));
        }
        if digest.is_none() {
            return Err(StoreError::Corrupt {
                what: "active policy",
                key: store.tenant().as_str().to_owned(),
                why: format!("it names {requested}, which is not stored"),
            });
        }
        Ok(None)
    }

    fn site_default_document(&self, active: bool) -> PolicyDocument {
        PolicyDocument {
            digest: self.site_default.digest.clone(),
            version: 0,
            document: self.site_default_document.clone(),
            active,
        }
    }

    /// Validates `document` and stores it as the tenant's newest, active version. `file_name`
    /// names the document in validation errors.
    ///
    /// # Errors
    ///
    /// [`ImportError::Invalid`] for an invalid document, with nothing stored, and store errors.
    pub fn import(
        &self,
        store: &TenantStore,
        file_name: &str,
        document: &[u8],
    ) -> Result<crate::policy_store::ImportedPolicy, ImportError> {
        let policy = parse_policy(file_name, document).map_err(|error| ImportError::Invalid(Box::new(error)))?;
        let imported = store.import_policy(document)?;
        self.insert(Arc::new(policy), document.len());
        Ok(imported)
    }

    fn parse_stored(&self, digest: &str, version: u64, document: &[u8]) -> Result<SelectedPolicy, LookupError> {
        let name = format!("policy version {version}");
        let policy = parse_policy(&name, document).map_err(|source| LookupError::StoredInvalid {
            digest: digest.to_owned(),
            version,
            source: Box::new(source),
        })?;
        let policy = Arc::new(policy);
        self.insert(Arc::clone(&policy), document.len());
        Ok(SelectedPolicy { policy, version })
    }

    fn cached(&self, digest: &str) -> Option<Arc<Policy>> {
        self.lock_cache().get(digest)
    }

    fn insert(&self, policy: Arc<Policy>, document_bytes: usize) {
        self.lock_cache().insert(policy, document_bytes);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ParsedCache> {
        // A panic while the lock was held leaves at worst an entry more or less.
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Parsed policies by digest, evicting the least recently used beyond the limits.
#[derive(Default)]
struct ParsedCache {
    entries: HashMap<String, CacheEntry>,
    document_bytes: usize,
    clock: u64,
}

struct CacheEntry {
    policy: Arc<Policy>,
    document_bytes: usize,
    last_used: u64,
}

impl ParsedCache {
    fn get(&mut self, digest: &str) -> Option<Arc<Policy>> {
        self.clock += 1;
        let entry = self.entries.get_mut(digest)?;
        entry.last_used = self.clock;
        Some(Arc::clone(&entry.policy))
    }

    fn insert(&mut self, policy: Arc<Policy>, document_bytes: usize) {
        if document_bytes > MAX_CACHED_DOCUMENT_BYTES {
            return;
        }
        self.clock += 1;
        let entry = CacheEntry {
            policy: Arc::clone(&policy),
            document_bytes,
            last_used: self.clock,
        };
        if let Some(old) = self.entries.insert(policy.digest.clone(), entry) {
            self.document_bytes -= old.document_bytes;
        }
        self.document_bytes += document_bytes;
        while self.entries.len() > MAX_CACHED_POLICIES || self.document_bytes > MAX_CACHED_DOCUMENT_BYTES {
            // A linear scan is cheap at this size and runs only when a new entry goes over a
            // limit.
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(digest, _)| digest.clone())
            else {
                break;
            };
            if let Some(removed) = self.entries.remove(&oldest) {
                self.document_bytes -= removed.document_bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use stella_access::Tenant;

    use super::*;
    use crate::store::Store;

    const SITE: &str = "environments:\n  prod:\n    require:\n      - identity: a@example.com\n        issuer: https://issuer.example\n";
    const TENANT_POLICY: &str = "environments:\n  staging:\n    require:\n      - identity: b@example.com\n        issuer: https://issuer.example\n";

    fn versions() -> PolicyVersions {
        let site = parse_policy("site.yaml", SITE.as_bytes()).expect("site policy");
        PolicyVersions::new(site, SITE.as_bytes().to_vec())
    }

    fn tenant_store(dir: &tempfile::TempDir, tenant: &str) -> TenantStore {
        Store::open(dir.path())
            .expect("open")
            .for_tenant(&Tenant::parse(tenant).expect("valid tenant"))
    }

    #[test]
    fn earlier_site_default_still_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        database.put_site_policy(SITE.as_bytes()).expect("store first default");
        let store = database.for_tenant(&Tenant::parse("acme").expect("valid tenant"));
        let first_digest = versions().site_default().digest.clone();

        // The gate restarts with another --policy file.
        let second = parse_policy("site.yaml", TENANT_POLICY.as_bytes()).expect("second default");
        let restarted = PolicyVersions::new(second, TENANT_POLICY.as_bytes().to_vec());
        let selected = restarted.by_digest(&store, &first_digest).expect("lookup").expect("found");
        assert_eq!(selected.version, 0);
        assert_eq!(selected.policy.digest, first_digest);
        let document = restarted.document(&store, Some(&first_digest)).expect("read").expect("found");
        assert_eq!(document.document, SITE.as_bytes());
        assert!(!document.active);
        assert!(restarted.by_digest(&store, "sha256:00").expect("lookup").is_none());
    }

    #[test]
    fn tenant_without_import_uses_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let versions = versions();
        let selected = versions.active(&store).expect("active");
        assert_eq!(selected.version, 0);
        assert_eq!(selected.policy.digest, versions.site_default().digest);
        let document = versions.document(&store, None).expect("document").expect("default");
        assert_eq!(document.version, 0);
        assert!(document.active);
        assert_eq!(document.document, SITE.as_bytes());
    }

    #[test]
    fn import_becomes_active() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let versions = versions();
        let imported = versions.import(&store, "tenant.yaml", TENANT_POLICY.as_bytes()).expect("import");
        assert_eq!(imported.version, 1);
        let selected = versions.active(&store).expect("active");
        assert_eq!(selected.version, 1);
        assert_eq!(selected.policy.digest, imported.digest);
        assert!(selected.policy.environments.contains_key("staging"));

        let site_digest = versions.site_default().digest.clone();
        let site = versions.document(&store, Some(&site_digest)).expect("document").expect("default");
        assert!(!site.active, "the default is no longer active for this tenant");
        let by_digest = versions.by_digest(&store, &site_digest).expect("lookup").expect("default");
        assert_eq!(by_digest.version, 0);
    }

    #[test]
    fn invalid_import_stores_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = tenant_store(&dir, "acme");
        let versions = versions();
        let error = versions
            .import(&store, "bad.yaml", b"environments:\n  prod:\n    require: []\n")
            .expect_err("invalid policy accepted");
        assert!(matches!(error, ImportError::Invalid(_)), "{error:?}");
        assert!(error.to_string().starts_with("bad.yaml"), "{error}");
        assert_eq!(store.active_policy().expect("active"), None);
    }

    #[test]
    fn other_tenant_digest_not_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        let acme = database.for_tenant(&Tenant::parse("acme").expect("tenant"));
        let globex = database.for_tenant(&Tenant::parse("globex").expect("tenant"));
        let versions = versions();
        let imported = versions.import(&acme, "tenant.yaml", TENANT_POLICY.as_bytes()).expect("import");
        // The parsed policy is in the shared cache now, but globex never imported it.
        assert!(versions.by_digest(&globex, &imported.digest).expect("lookup").is_none());
        assert_eq!(versions.document(&globex, Some(&imported.digest)).expect("document"), None);
        assert_eq!(versions.active(&globex).expect("active").version, 0);
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        let site = Arc::new(parse_policy("site.yaml", SITE.as_bytes()).expect("policy"));
        let mut cache = ParsedCache::default();
        let mut digests = Vec::new();
        for number in 0..=MAX_CACHED_POLICIES {
            let mut policy = (*site).clone();
            policy.digest = format!("sha256:{number}");
            digests.push(policy.digest.clone());
            cache.insert(Arc::new(policy), 10);
            if number == 0 {
                continue;
            }
            // Keeps the first entry in use, so the second one is the oldest.
            assert!(cache.get(&digests[0]).is_some());
        }
        assert_eq!(cache.entries.len(), MAX_CACHED_POLICIES);
        assert!(cache.get(&digests[0]).is_some());
        assert!(cache.get(&digests[1]).is_none(), "the least recently used entry stays");
        assert_eq!(cache.document_bytes, 10 * MAX_CACHED_POLICIES);
    }

    #[test]
    fn cache_bounds_document_bytes() {
        let site = Arc::new(parse_policy("site.yaml", SITE.as_bytes()).expect("policy"));
        let mut cache = ParsedCache::default();
        let half = MAX_CACHED_DOCUMENT_BYTES / 2;
        for number in 0..3 {
            let mut policy = (*site).clone();
            policy.digest = format!("sha256:{number}");
            cache.insert(Arc::new(policy), half);
        }
        assert_eq!(cache.entries.len(), 2);
        assert!(cache.document_bytes <= MAX_CACHED_DOCUMENT_BYTES);
        assert!(cache.get("sha256:0").is_none());
    }
}
