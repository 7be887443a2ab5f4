//! Tracing setup shared by `stella-attestor` and `stella-gate`: log output as text or JSON on
//! standard error, span export over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C
//! trace context (`traceparent`, `tracestate`) read from incoming gRPC requests and written
//! into outgoing ones.
//!
//! Without `OTEL_EXPORTER_OTLP_ENDPOINT` no exporter is built, so the process opens no
//! connection for telemetry. The OTLP exporter would otherwise fall back to `localhost:4317`.

mod propagation;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use propagation::{inject_context, server_span};

/// Environment variable that turns on OTLP span export and names the collector, such as
/// `http://127.0.0.1:4317`. It is the variable the OpenTelemetry specification defines.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Format of the log lines written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, coloured only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per event with its fields and the fields of the enclosing spans.
    Json,
}

/// Keeps the OTLP exporter alive. Dropping it flushes the spans not yet exported and shuts
/// the exporter down, so `main` keeps it until the server has stopped.
#[must_use = "dropping the guard stops span export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(shutdown_error) = provider.shutdown()
        {
            // The subscriber may already be gone at this point, so the error goes to stderr.
            eprintln!("cannot flush the OTLP span exporter: {shutdown_error}");
        }
    }
}

/// Errors of [`init`].
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` variables.
    #[error("cannot set up OTLP span export to {endpoint} (from {OTLP_ENDPOINT_VAR}): {source}")]
    Exporter {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global tracing subscriber was already installed.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global tracing subscriber of a service: log lines in `format` on standard
/// error, filtered by `RUST_LOG` (default `info`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set and not empty, an OTLP exporter over gRPC whose spans carry `service.name` =
/// `service_name`. The other `OTEL_*` variables of the OpenTelemetry SDK apply, such as
/// `OTEL_BSP_SCHEDULE_DELAY` for the export interval.
///
/// # Errors
///
/// [`TelemetryError::Exporter`] when the endpoint is not a valid URL, and
/// [`TelemetryError::Subscriber`] when called twice.
pub fn init(service_name: &'static str, format: LogFormat) -> Result<Guard, TelemetryError> {
    let provider = match std::env::var(OTLP_ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => {
            Some(tracer_provider(service_name, &endpoint)?)
        }
        _ => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));

    let ansi = std::io::stderr().is_terminal();
    let (text_layer, json_layer) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));

    tracing_subscriber::registry()
        .with(filter)
        .with(text_layer)
        .with(json_layer)
        .with(otel_layer)
        .try_init()?;
    if provider.is_some() {
        tracing::info!(service = service_name, "exporting spans over OTLP");
    }
    Ok(Guard { provider })
}

/// Builds a tracer provider that batches spans to the OTLP collector at `endpoint`.
fn tracer_provider(
    service_name: &'static str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}
