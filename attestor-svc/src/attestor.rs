//! The attestor's request logic, independent of gRPC: shared state, the current trust
//! root set, and helpers used by the import and verification handlers.
//!
//! Every method here blocks (RocksDB, signature checks), so the gRPC layer calls them on
//! tokio's blocking pool. Time is passed in by the caller, which reads the clock once per
//! request.

use std::sync::{Arc, Mutex};

use stella_bundle::{Limits, open_trust_set};
use stella_verify::reason::ReasonCode;
use stella_verify::tiles::TileNodeCache;
use stella_verify::trust_root::TrustSet;

use crate::error::ServiceError;
use crate::spool::SpoolDir;
use crate::store::Store;

/// Shared state of the attestor.
pub struct Attestor {
    pub(crate) store: Store,
    pub(crate) limits: Limits,
    /// Limits of archives that arrive through ImportTilesStream.
    pub(crate) stream_limits: Limits,
    /// Directory of streamed uploads and of the SST files of tile imports.
    pub(crate) spool: SpoolDir,
    /// The opened current trust set, keyed by its digest, so that requests do not reopen
    /// the archive each time.
    trust_cache: Mutex<Option<Arc<TrustSet>>>,
    /// Interior nodes of recently read hash tiles, keyed by origin, shared by every request.
    pub(crate) node_cache: TileNodeCache,
}

impl Attestor {
    /// Creates the attestor over an opened store. `limits` bound every archive it receives
    /// whole, `stream_limits` the tile bundles streamed into `spool`.
    pub fn new(store: Store, limits: Limits, stream_limits: Limits, spool: SpoolDir) -> Self {
        Attestor {
            store,
            limits,
            stream_limits,
            spool,
            trust_cache: Mutex::new(None),
            node_cache: TileNodeCache::new(crate::cache::NODE_CACHE_TILES),
        }
    }

    /// Returns the spool directory of streamed uploads.
    pub fn spool(&self) -> &SpoolDir {
        &self.spool
    }

    /// Returns the limits of streamed tile bundles.
    pub fn stream_limits(&self) -> &Limits {
        &self.stream_limits
    }

    /// Returns the store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Returns the current trust root set, opening and checking the stored archive when
    /// the cached copy is stale.
    ///
    /// # Errors
    ///
    /// FAILED_PRECONDITION with `ERR_TRUST_ROOT_MISSING` when no set was imported; an
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
        let limits = stored_archive_limits(&self.limits, &archive);
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
        let mut slot = self
            .trust_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(trust);
    }

    fn cached_trust_set(&self) -> Option<Arc<TrustSet>> {
        let slot = self
            .trust_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.clone()
    }
}

/// Returns the limits that reopen `archive`, a trust set archive this attestor stored after
/// accepting it. The attestor may have restarted with a smaller `--max-bundle-bytes` since, so
/// each limit is the larger of `configured` and the bundle crate's default, and the archive's
/// own size always passes. The defaults still bound what a corrupted store could decompress.
///
/// NOTE: a set accepted only because its file size, total size or entry count exceeded the
/// defaults under larger configured limits fails to reopen once those limits shrink. Only the
/// library API can set those limits (`Attestor::new` takes any `Limits`), not the binary.
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
