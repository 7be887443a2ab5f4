//! A span exporter wrapper that logs failed exports, which the OpenTelemetry SDK would otherwise
//! drop without a word when its internal logs are off (as they are in this workspace).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// Shortest time between two warnings about failed exports. Failures in between are counted
/// and reported with the next warning.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Failed exports since the last warning.
#[derive(Debug, Default)]
struct FailureLog {
    last_warning: Option<Instant>,
    unreported: u64,
    failing: bool,
}

/// Wraps an exporter and logs, at WARN, the first failed export and then at most one warning
/// per [`WARNING_INTERVAL`] with the number of failures since the previous one. The first
/// success after failures is logged at INFO.
#[derive(Debug)]
pub(crate) struct LoggingExporter<E> {
    inner: E,
    endpoint: String,
    failures: Mutex<FailureLog>,
}

impl<E> LoggingExporter<E> {
    /// Wraps `inner`, which sends spans to `endpoint` (used only in log lines).
    pub(crate) fn new(inner: E, endpoint: String) -> Self {
        LoggingExporter {
            inner,
            endpoint,
            failures: Mutex::new(FailureLog::default()),
        }
    }

    fn record(&self, result: &OTelSdkResult, spans: usize) {
        let mut log = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(()) => {
                if log.failing {
                    tracing::info!(
                        endpoint = %self.endpoint,
                        failed_exports = log.unreported,
                        "span export to the OTLP collector works again"
                    );
                    *log = FailureLog::default();
                }
            }
            Err(export_error) => {
                log.failing = true;
                log.unreported = log.unreported.saturating_add(1);
                let due = log
                    .last_warning
                    .is_none_or(|last| last.elapsed() >= WARNING_INTERVAL);
                if due {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %export_error,
                        spans_in_failed_batch = spans,
                        failed_exports = log.unreported,
                        "cannot export spans to the OTLP collector; spans are dropped until it is reachable"
                    );
                    log.last_warning = Some(Instant::now());
                    log.unreported = 0;
                }
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for LoggingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        self.record(&result, spans);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
