//! The attestor's request logic, independent of gRPC: the state shared by every tenant
//! ([`AttestorState`]), the attestor bound to one tenant ([`Attestor`]), the tenant's current
//! trust root set, and helpers used by the import and verification handlers.
//!
//! Every request runs on an [`Attestor`] made for the caller's tenant, whose store view reads and
//! writes only that tenant's keys. Each tenant has its own trust root set, tiles, checkpoints,
//! evidence, reports, import log and split-view records.
//!
//! Every method here blocks (RocksDB, signature checks), so the gRPC layer calls them on
//! tokio's blocking pool. Time is passed in by the caller, which reads the clock once per
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stella_authority::Tenant;
use stella_bundle::{Limits, open_trust_set};
use stella_verify::cache::VerificationCache;
use stella_verify::reason::ReasonCode;
use stella_verify::tiles::TileNodeCache;
use stella_verify::trust_root::TrustSet;

use crate::error::ServiceError;
use crate::metrics::AttestorMetrics;
use crate::spool::SpoolDir;
use crate::store::Store;

/// State of the attestor shared by every tenant.
pub struct AttestorState {
    /// The database. Requests use views of it from [`Store::for_tenant`].
    store: Store,
    pub(crate) limits: Limits,
    /// Limits of archives that arrive through ImportTilesStream.
    pub(crate) stream_limits: Limits,
    /// Directory of streamed uploads and of the SST files of tile imports.
    pub(crate) spool: SpoolDir,
    /// The opened current trust set of each tenant that has used one, so that requests do not
    /// reopen the archive each time. Each entry is checked against the tenant's stored digest
    /// before use.
    ///
    /// NOTE: one entry per tenant, never evicted, so memory grows with the number of tenants
    /// that verify (one opened trust set each).
    trust_sets: Mutex<HashMap<String, Arc<TrustSet>>>,
    /// Interior nodes of recently read hash tiles, shared by every request and keyed by tenant
    /// and origin ([`crate::cache::node_cache_key`]).
    pub(crate) node_cache: TileNodeCache,
    /// Certification paths and note signatures that verified, shared by VerifyEvidence and
    /// VerifyBundleStream of every tenant, with the default capacities. Entries are keyed by
    /// every input they depend on, trust material included, so sharing them between tenants
    /// never changes a result.
    pub(crate) verification_cache: Arc<VerificationCache>,
    /// Prometheus metrics; registered nowhere unless [`AttestorState::with_metrics`] set them.
    metrics: Arc<AttestorMetrics>,
}

impl AttestorState {
    /// Creates the attestor over an opened store. `limits` bound every archive it receives
    /// whole, `stream_limits` the tile bundles streamed into `spool`.
    pub fn new(store: Store, limits: Limits, stream_limits: Limits, spool: SpoolDir) -> Self {
        AttestorState {
            store,
            limits,
            stream_limits,
            spool,
            trust_sets: Mutex::new(HashMap::new()),
            node_cache: TileNodeCache::new(crate::cache::NODE_CACHE_TILES),
            verification_cache: Arc::new(VerificationCache::default()),
            metrics: Arc::new(AttestorMetrics::default()),
        }
    }

    /// Records into `metrics`, whose store-size gauges then read this attestor's store.
    pub fn with_metrics(mut self, metrics: Arc<AttestorMetrics>) -> Self {
        metrics.watch_store(self.store.clone());
        metrics.watch_verification_cache(Arc::clone(&self.verification_cache));
        self.metrics = metrics;
        self
    }

    /// Returns the metrics this attestor records into.
    pub fn metrics(&self) -> &AttestorMetrics {
        &self.metrics
    }

    /// Returns the cache of verified certification paths and note signatures, whose
    /// [`VerificationCache::stats`] count hits, misses and evictions.
    pub fn verification_cache(&self) -> &VerificationCache {
        &self.verification_cache
    }

    /// Returns the spool directory of streamed uploads.
    pub fn spool(&self) -> &SpoolDir {
        &self.spool
    }

    /// Returns the limits of streamed tile bundles.
    pub fn stream_limits(&self) -> &Limits {
        &self.stream_limits
    }

    /// Returns the store as [`Store::open`] returned it: a view of the tenant
    /// [`crate::store::DEFAULT_TENANT`]. Its key counters cover every tenant.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The attestor bound to one tenant: the shared state and a store view of that tenant.
/// Cloning is cheap.
#[derive(Clone)]
pub struct Attestor {
    pub(crate) state: Arc<AttestorState>,
    /// View of the tenant's keys; every read and write of a request goes through it.
    pub(crate) store: Store,
}

impl Attestor {
    /// Returns the attestor of `tenant`.
    pub fn for_tenant(state: &Arc<AttestorState>, tenant: &Tenant) -> Self {
        Attestor {
            state: Arc::clone(state),
            store: state.store.for_tenant(tenant),
        }
    }

    /// Returns the tenant this attestor serves.
    pub fn tenant(&self) -> &str {
        self.store.tenant()
    }

    /// Returns the tenant's store view.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Returns the tenant's current trust root set, opening and checking the stored archive when
    /// the cached copy is stale.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` when the tenant has imported no set; an
    /// internal error when the stored archive no longer opens or its digest changed.
    pub fn current_trust_set(&self) -> Result<Arc<TrustSet>, ServiceError> {
        let Some(current) = self.store.current_trust_set()? else {
            return Err(ServiceError::precondition(
                ReasonCode::TrustRootMissing,
                "no trust root set has been imported; run `stella trust import` first",
            ));
        };

        if let Some(cached) = self.cached_trust_set()
            && cached.digest == current.digest
        {
            return Ok(cached);
        }

        let Some(archive) = self.store.trust_set_archive(&current.digest)? else {
            return Err(ServiceError::Internal(format!(
                "the current trust root set {} is missing from the store",
                current.digest
            )));
        };
        let label = format!("stored trust root set {}", current.digest);
        let limits = stored_archive_limits(&self.state.limits, &archive);
        let opened = open_trust_set(&label, &archive, &limits)
            .map_err(|error| ServiceError::Internal(format!("cannot reopen {label}: {error}")))?;
        let trust = Arc::new(opened.into_trust_set());
        if trust.digest != current.digest {
            return Err(ServiceError::Internal(format!(
                "{label} now has digest {}; the store was modified",
                trust.digest
            )));
        }
        self.set_cached_trust_set(Arc::clone(&trust));
        Ok(trust)
    }

    pub(crate) fn set_cached_trust_set(&self, trust: Arc<TrustSet>) {
        let mut sets = self
            .state
            .trust_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sets.insert(self.tenant().to_owned(), trust);
    }

    fn cached_trust_set(&self) -> Option<Arc<TrustSet>> {
        let sets = self
            .state
            .trust_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sets.get(self.tenant()).cloned()
    }
}

/// Returns the limits that reopen `archive`, a trust set archive this attestor stored after
/// accepting it. The attestor may have restarted with a smaller `--max-bundle-bytes` since, so
/// each limit is the larger of `configured` and the bundle crate's default, and the archive's
/// own size always passes. The defaults still bound what a corrupted store could decompress.
///
/// NOTE: a set accepted only because its file size, total size or entry count exceeded the
/// defaults under larger configured limits fails to reopen once those limits shrink. Only the
/// library API can set those limits (`AttestorState::new` takes any `Limits`), not the binary.
fn stored_archive_limits(configured: &Limits, archive: &[u8]) -> Limits {
    let defaults = Limits::default();
    let archive_bytes = u64::try_from(archive.len()).unwrap_or(u64::MAX);
    Limits {
        max_archive_bytes: configured.max_archive_bytes.max(defaults.max_archive_bytes).max(archive_bytes),
        max_total_bytes: configured.max_total_bytes.max(defaults.max_total_bytes),
        max_file_bytes: configured.max_file_bytes.max(defaults.max_file_bytes),
        max_entries: configured.max_entries.max(defaults.max_entries),
    }
}

/// Formats Unix seconds as RFC 3339 UTC text, or as "@<seconds>" for a time that the
/// `time` crate cannot represent or format.
pub fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|moment| moment.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{seconds}"))
}
