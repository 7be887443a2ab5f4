//! W3C trace context in gRPC metadata: the server span of each incoming request continues the
//! caller's trace, and outgoing requests carry the current span's context.
//!
//! Without the OTLP layer (see [`crate::init`]) spans have no OpenTelemetry context, so
//! nothing is injected and an incoming `traceparent` is ignored.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reads trace-context headers from an HTTP/2 request.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace-context headers into the metadata of an outgoing gRPC request.
struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes only `traceparent` and `tracestate`, both valid ASCII keys.
        // A value that is not valid metadata is left out rather than sent corrupted.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Creates the span of one incoming gRPC request, named `grpc.request` with the method path
/// (such as `/stella.gate.v1.Gate/Evaluate`) in `rpc.method`. When the request carries a valid
/// `traceparent`, the span continues that trace. Pass it to tonic's `Server::trace_fn`.
pub fn server_span(request: &http::Request<()>) -> Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.method = request.uri().path(),
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    // Fails only when no OpenTelemetry layer is installed or the span is disabled, and then
    // there is no trace to continue.
    let _ = span.set_parent(parent);
    span
}

/// Writes the context of the current span into `metadata` as `traceparent` (and `tracestate`
/// when set), so that the called service continues the trace. Writes nothing when no span is
/// exported.
pub fn inject_context(metadata: &mut MetadataMap) {
    let context = Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Runs `body` under a subscriber with an OpenTelemetry layer that exports nowhere.
    fn with_otel_layer(body: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, body);
    }

    fn incoming(traceparent: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/stella.gate.v1.Gate/Evaluate");
        if let Some(value) = traceparent {
            builder = builder.header("traceparent", value);
        }
        builder.body(()).expect("request")
    }

    fn outgoing_traceparent() -> Option<String> {
        let mut metadata = MetadataMap::new();
        inject_context(&mut metadata);
        metadata
            .get("traceparent")
            .map(|value| value.to_str().expect("ASCII").to_owned())
    }

    #[test]
    fn server_span_continues_caller_trace() {
        with_otel_layer(|| {
            let span = server_span(&incoming(Some(CALLER)));
            let sent = span
                .in_scope(outgoing_traceparent)
                .expect("no traceparent injected");
            let parts: Vec<&str> = sent.split('-').collect();
            assert_eq!(parts.len(), 4, "{sent}");
            assert_eq!(
                parts[1], "4bf92f3577b34da6a3ce929d0e0e4736",
                "trace id changed: {sent}"
            );
            assert_ne!(
                parts[2], "00f067aa0ba902b7",
                "the caller's span id was passed on: {sent}"
            );
            assert_eq!(parts[3], "01", "sampled flag lost: {sent}");
        });
    }

    #[test]
    fn server_span_without_context_starts_trace() {
        with_otel_layer(|| {
            let span = server_span(&incoming(None));
            let sent = span
                .in_scope(outgoing_traceparent)
                .expect("no traceparent injected");
            assert!(!sent.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{sent}");
        });
    }

    #[test]
    fn nothing_injected_without_otel_layer() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = server_span(&incoming(Some(CALLER)));
            assert_eq!(span.in_scope(outgoing_traceparent), None);
        });
    }
}
