//! Tracing setup shared by `stella-attestor` and `stella-gate`: log output as text or JSON on
//! standard error, span export over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C
//! trace context (`traceparent`, `tracestate`) read from incoming gRPC requests and written
//! into outgoing ones.
//!
//! Without `OTEL_EXPORTER_OTLP_ENDPOINT` no exporter is built, so the process opens no
//! connection for telemetry. The OTLP exporter would otherwise fall back to `localhost:4317`.

mod export;
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
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` variables. [`init`]
    /// has already logged it in the requested log format. `endpoint` and `detail` have any
    /// credentials of the endpoint masked.
    #[error("cannot set up OTLP span export to {endpoint} (from {OTLP_ENDPOINT_VAR}): {detail}")]
    Exporter { endpoint: String, detail: String },
    /// A global tracing subscriber was already installed.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

impl TelemetryError {
    /// Reports whether [`init`] wrote this error to the log already, so the caller need not
    /// print it again.
    pub fn was_logged(&self) -> bool {
        matches!(self, TelemetryError::Exporter { .. })
    }
}

/// Installs the global tracing subscriber of a service: log lines in `format` on standard
/// error, filtered by `RUST_LOG` (default `info`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set and not empty, an OTLP exporter over gRPC whose spans carry `service.name` =
/// `service_name`. The other `OTEL_*` variables of the OpenTelemetry SDK apply, such as
/// `OTEL_BSP_SCHEDULE_DELAY` for the export interval.
///
/// # Errors
///
/// [`TelemetryError::Exporter`] when the endpoint is not a valid URL: the log is installed
/// without span export and the error logged in `format` before it is returned.
/// [`TelemetryError::Subscriber`] when called twice.
pub fn init(service_name: &'static str, format: LogFormat) -> Result<Guard, TelemetryError> {
    let endpoint = std::env::var(OTLP_ENDPOINT_VAR)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty());
    let (provider, exporter_error) = match &endpoint {
        Some(endpoint) => match tracer_provider(service_name, endpoint) {
            Ok(provider) => (Some(provider), None),
            Err(exporter_error) => (None, Some(exporter_error)),
        },
        None => (None, None),
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
    if let Some(exporter_error) = exporter_error {
        tracing::error!(service = service_name, error = %exporter_error, "cannot start");
        return Err(exporter_error);
    }
    if let Some(endpoint) = endpoint.as_deref().filter(|_| provider.is_some()) {
        tracing::info!(
            service = service_name,
            endpoint = %endpoint_for_log(endpoint),
            "exporting spans over OTLP"
        );
    }
    Ok(Guard { provider })
}

/// Builds a tracer provider that batches spans to the OTLP collector at `endpoint`.
fn tracer_provider(
    service_name: &'static str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let masked = endpoint_for_log(endpoint);
    let rejected = |detail: String| TelemetryError::Exporter {
        endpoint: masked.clone(),
        // The library's message quotes the endpoint as given, credentials included.
        detail: detail.replace(endpoint, &masked),
    };
    check_endpoint(endpoint).map_err(rejected)?;
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| rejected(source.to_string()))?;
    let exporter = export::LoggingExporter::new(exporter, endpoint_for_log(endpoint));
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// Checks that `endpoint` is an `http://` URI with a host and a valid port. The workspace builds
/// tonic without a TLS connector for the exporter, so an `https://` collector cannot be reached,
/// and an endpoint without a scheme would be taken as `https://`.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|error| format!("not a valid URI: {error}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https is not supported: this build exports spans over plaintext gRPC only; \
                 give an http:// endpoint, such as a collector on the same host or network"
                    .to_owned(),
            );
        }
        Some(other) => return Err(format!("scheme {other:?} is not supported; give an http:// endpoint")),
        None => return Err("the endpoint has no scheme; give an http:// endpoint".to_owned()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the endpoint has no host".to_owned());
    }
    // `http::Uri` keeps a port that does not fit in 16 bits as text, so it is checked here.
    let authority = uri.authority().map_or("", |authority| authority.as_str());
    let host_and_port = authority.rsplit('@').next().unwrap_or(authority);
    if let Some((_, port)) = host_and_port.rsplit_once(':')
        && !port.ends_with(']')
        && !matches!(port.parse::<u16>(), Ok(1..))
    {
        return Err(format!("port {port:?} is out of range; give a port from 1 to 65535"));
    }
    Ok(())
}

/// Returns the endpoint for log lines, with any user name and password in it replaced by
/// `***`. Without a scheme, the whole text before the first `/` counts as the authority.
fn endpoint_for_log(endpoint: &str) -> String {
    let (prefix, rest) = match endpoint.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), endpoint),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{prefix}***@{}", &rest[at + 1..]),
        None => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_endpoint, endpoint_for_log, tracer_provider};

    #[test]
    fn only_http_endpoints_accepted() {
        assert_eq!(check_endpoint("http://127.0.0.1:4317"), Ok(()));
        for (endpoint, expected) in [
            ("https://collector:4317", "https is not supported"),
            ("collector:4317", "no scheme"),
            ("ftp://collector:4317", "scheme \"ftp\""),
            ("http://collector:99999", "out of range"),
            ("http://[not-an-address", "not a valid URI"),
        ] {
            let error = check_endpoint(endpoint).expect_err(endpoint);
            assert!(error.contains(expected), "{endpoint}: {error}");
        }
    }

    #[test]
    fn setup_error_masks_credentials() {
        for endpoint in [
            "http://user:s3cret@bad host:4317",
            "https://user:s3cret@collector:4317",
            "user:s3cret@127.0.0.1:4317",
        ] {
            let Err(error) = tracer_provider("test", endpoint) else {
                panic!("{endpoint} accepted");
            };
            let text = error.to_string();
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("***@"), "{text}");
        }
    }

    #[test]
    fn endpoint_for_log_hides_credentials() {
        assert_eq!(endpoint_for_log("http://127.0.0.1:4317"), "http://127.0.0.1:4317");
        assert_eq!(
            endpoint_for_log("https://user:secret@collector:4317/v1"),
            "https://***@collector:4317/v1"
        );
        assert_eq!(endpoint_for_log("collector:4317"), "collector:4317");
        assert_eq!(
            endpoint_for_log("user:s3cret@127.0.0.1:4317"),
            "***@127.0.0.1:4317"
        );
        // An @ in the path is not a credential.
        assert_eq!(
            endpoint_for_log("http://collector:4317/a@b"),
            "http://collector:4317/a@b"
        );
    }
}
