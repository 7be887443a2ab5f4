//! Prometheus metrics of the attestor: verifications by outcome and reason code, inclusion
//! proofs that do not verify, evidence reports served from the store, tile imports, the size of
//! the store and the verification cache's counters. The gRPC request metrics
//! come from [`stella_metrics::GrpcMetrics`].
//!
//! Label values come only from closed sets (verification kinds, outcomes, reason codes), never
//! from request text.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use stella_metrics::GrpcMetrics;
use stella_verify::cache::{EntryStats, VerificationCache};
use stella_verify::reason::ReasonCode;
use tracing::warn;

use crate::imports::TilesImport;
use crate::store::Store;
use crate::verification::{EvidenceVerification, InclusionResult};

/// The kind of check a verification made.
#[derive(Debug, Clone, Copy)]
pub enum VerificationKind {
    /// VerifyEvidence: every Sigstore bundle of an evidence bundle.
    Evidence,
    /// VerifyInclusion and each request of VerifyInclusionStream.
    Inclusion,
    /// Each request of VerifyBundleStream.
    Bundle,
}

impl VerificationKind {
    fn as_str(self) -> &'static str {
        match self {
            VerificationKind::Evidence => "evidence",
            VerificationKind::Inclusion => "inclusion",
            VerificationKind::Bundle => "bundle",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    kind: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImportLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportSourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    kind: &'static str,
}

/// The attestor's metrics. [`AttestorMetrics::default`] registers them nowhere, for an attestor
/// that serves no metrics endpoint.
#[derive(Debug)]
pub struct AttestorMetrics {
    /// Requests and latencies of every RPC, recorded by the server's tower layer.
    pub grpc: Arc<GrpcMetrics>,
    verifications: Family<OutcomeLabels, Counter>,
    verification_reasons: Family<ReasonLabels, Counter>,
    inclusion_proof_failures: Counter,
    evidence_reports: Family<ReportSourceLabels, Counter>,
    tile_imports: Family<ImportLabels, Counter>,
    tiles_imported: Counter,
    tile_bytes_imported: Counter,
    store: Arc<StoreSizeCollector>,
    cache: Arc<CacheCollector>,
}

impl Default for AttestorMetrics {
    fn default() -> Self {
        AttestorMetrics::register(&mut Registry::default())
    }
}

impl AttestorMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AttestorMetrics {
            grpc: Arc::new(GrpcMetrics::register(registry)),
            verifications: Family::default(),
            verification_reasons: Family::default(),
            inclusion_proof_failures: Counter::default(),
            evidence_reports: Family::default(),
            tile_imports: Family::default(),
            tiles_imported: Counter::default(),
            tile_bytes_imported: Counter::default(),
            store: Arc::new(StoreSizeCollector::default()),
            cache: Arc::new(CacheCollector::default()),
        };
        registry.register(
            "stella_verifications",
            "Verifications finished, by kind (evidence, inclusion, bundle) and outcome (verified, failed)",
            metrics.verifications.clone(),
        );
        registry.register(
            "stella_verification_reasons",
            "Reason codes of failed verifications, by kind; a verification with several codes counts once for each",
            metrics.verification_reasons.clone(),
        );
        registry.register(
            "stella_inclusion_proof_failures",
            "Verifications with an inclusion proof that does not verify for the entry given (ERR_REKOR_PROOF_INVALID); zero while callers check only entries taken from the log",
            metrics.inclusion_proof_failures.clone(),
        );
        registry.register(
            "stella_evidence_reports",
            "VerifyEvidence results by source: store (the report stored for the same evidence, trust root set and tile cache, returned without verifying again) or verified",
            metrics.evidence_reports.clone(),
        );
        registry.register(
            "stella_tile_imports",
            "Tile bundles imported, by result (new, already_imported)",
            metrics.tile_imports.clone(),
        );
        registry.register(
            "stella_tiles_imported",
            "Tiles stored by new tile bundle imports",
            metrics.tiles_imported.clone(),
        );
        registry.register(
            "stella_tile_bundle_bytes_imported",
            "Archive bytes of new tile bundle imports",
            metrics.tile_bytes_imported.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&metrics.store)));
        registry.register_collector(Box::new(Arc::clone(&metrics.cache)));
        // Series with closed label sets start at 0, so that a rate or increase over them counts
        // the first event after a start.
        for kind in [VerificationKind::Evidence, VerificationKind::Inclusion, VerificationKind::Bundle] {
            for outcome in ["verified", "failed"] {
                let _ = metrics.verifications.get_or_create(&OutcomeLabels {
                    kind: kind.as_str(),
                    outcome,
                });
            }
        }
        for source in ["store", "verified"] {
            let _ = metrics.evidence_reports.get_or_create(&ReportSourceLabels { source });
        }
        for result in ["new", "already_imported"] {
            let _ = metrics.tile_imports.get_or_create(&ImportLabels { result });
        }
        metrics
    }

    /// Lets the store-size gauges read `store` on each scrape. Only the first call has effect.
    pub fn watch_store(&self, store: Store) {
        let _ = self.store.store.set(store);
    }

    /// Lets the cache metrics read `cache`'s counters on each scrape. Only the first call has
    /// effect.
    pub fn watch_verification_cache(&self, cache: Arc<VerificationCache>) {
        let _ = self.cache.cache.set(cache);
    }

    /// Counts a finished VerifyEvidence. A report returned from the store counts as a
    /// verification but not as a new inclusion-proof failure: no proof was checked again.
    pub fn observe_evidence(&self, verified: &EvidenceVerification) {
        let source = if verified.from_store { "store" } else { "verified" };
        self.evidence_reports
            .get_or_create(&ReportSourceLabels { source })
            .inc();
        let outcome = if verified.outcome == "verified" {
            "verified"
        } else {
            "failed"
        };
        self.observe(VerificationKind::Evidence, outcome, &verified.reason_codes, !verified.from_store);
    }

    /// Counts one response of VerifyBundleStream.
    pub fn observe_bundle(&self, response: &stella_proto::attestor::v1::VerifyBundleResponse) {
        let outcome = if response.outcome == "verified" {
            "verified"
        } else {
            "failed"
        };
        self.observe(VerificationKind::Bundle, outcome, &response.reason_codes, true);
    }

    /// Counts one inclusion check.
    pub fn observe_inclusion(&self, result: &InclusionResult) {
        let outcome = if result.included {
            "verified"
        } else {
            "failed"
        };
        self.observe(VerificationKind::Inclusion, outcome, &result.reason_codes, true);
    }

    /// Counts one verification; `proofs_checked` is false for a result read from the store.
    fn observe(&self, kind: VerificationKind, outcome: &'static str, reason_codes: &[String], proofs_checked: bool) {
        let kind = kind.as_str();
        self.verifications
            .get_or_create(&OutcomeLabels { kind, outcome })
            .inc();
        for reason in reason_codes {
            self.verification_reasons
                .get_or_create(&ReasonLabels {
                    kind,
                    reason: reason.clone(),
                })
                .inc();
        }
        if proofs_checked
            && reason_codes
                .iter()
                .any(|code| code == ReasonCode::RekorProofInvalid.as_str())
        {
            self.inclusion_proof_failures.inc();
        }
    }

    /// Counts a finished tile import of an archive of `archive_bytes` bytes.
    pub fn observe_tile_import(&self, imported: &TilesImport, archive_bytes: u64) {
        if imported.already_imported {
            self.tile_imports
                .get_or_create(&ImportLabels {
                    result: "already_imported",
                })
                .inc();
            return;
        }
        self.tile_imports
            .get_or_create(&ImportLabels { result: "new" })
            .inc();
        self.tiles_imported.inc_by(imported.tiles);
        self.tile_bytes_imported.inc_by(archive_bytes);
    }

    /// Returns the value of `stella_inclusion_proof_failures_total`.
    pub fn inclusion_proof_failures(&self) -> u64 {
        self.inclusion_proof_failures.get()
    }
}

/// Reads the store's size estimates on each scrape.
#[derive(Default)]
struct StoreSizeCollector {
    store: OnceLock<Store>,
}

impl std::fmt::Debug for StoreSizeCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoreSizeCollector")
            .field("watching", &self.store.get().is_some())
            .finish()
    }
}

impl Collector for StoreSizeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let size = match store.size_estimate() {
            Ok(size) => size,
            Err(store_error) => {
                // The scrape still returns the other metrics.
                warn!(error = %store_error, "cannot read the size of the attestor store");
                return Ok(());
            }
        };
        let tiles = ConstGauge::new(i64::try_from(size.tiles).unwrap_or(i64::MAX));
        tiles.encode(encoder.encode_descriptor(
            "stella_attestor_stored_tiles",
            "Hash tiles and entry bundles stored for all tenants; RocksDB's estimate",
            None,
            tiles.metric_type(),
        )?)?;
        let bytes = ConstGauge::new(i64::try_from(size.sst_bytes).unwrap_or(i64::MAX));
        bytes.encode(encoder.encode_descriptor(
            "stella_attestor_store_sst_bytes",
            "Bytes of the attestor database's SST files, without data still in memory",
            None,
            bytes.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Reads the verification cache's counters on each scrape.
#[derive(Default)]
struct CacheCollector {
    cache: OnceLock<Arc<VerificationCache>>,
}

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CacheCollector")
            .field("watching", &self.cache.get().is_some())
            .finish()
    }
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(cache) = self.cache.get() else {
            return Ok(());
        };
        let stats = cache.stats();
        let kinds: [(&'static str, EntryStats); 2] =
            [("chain", stats.chains), ("signature", stats.signatures)];
        let counters: [(&str, &str, fn(&EntryStats) -> u64); 3] = [
            (
                "stella_verification_cache_hits",
                "Verification cache lookups that found a stored result, by kind (chain: certification paths, signature: checkpoint signatures)",
                |entry| entry.hits,
            ),
            (
                "stella_verification_cache_misses",
                "Verification cache lookups that found nothing, so the full check ran, by kind",
                |entry| entry.misses,
            ),
            (
                "stella_verification_cache_evictions",
                "Verification cache entries removed to make room for new ones, by kind",
                |entry| entry.evictions,
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, prometheus_client::metrics::MetricType::Counter)?;
            for (kind, entry) in &kinds {
                let labels = CacheLabels { kind: *kind };
                ConstCounter::new(read(entry)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "stella_verification_cache_entries",
            "Entries in the verification cache, by kind; at most the capacity",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (kind, entry) in &kinds {
            let labels = CacheLabels { kind: *kind };
            let entries = ConstGauge::new(i64::try_from(entry.len).unwrap_or(i64::MAX));
            entries.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
