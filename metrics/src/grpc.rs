//! Request counts and latency histograms of a tonic server, per gRPC method and status code,
//! recorded by a tower layer around all of the server's services.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prost::Message;
use tower_layer::Layer;
use tower_service::Service;

/// Label value of a request path that is not a method of the server, so that clients cannot
/// create new series by calling made-up paths.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Labels of one series: the method path (`/package.Service/Method`) and the gRPC status name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
    pub code: &'static str,
}

/// Builds the latency histogram of one series: buckets from 1 ms doubling up to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The counters and histograms of one gRPC server.
#[derive(Debug)]
pub struct GrpcMetrics {
    requests: Family<RpcLabels, Counter>,
    latency: Family<RpcLabels, Histogram, fn() -> Histogram>,
}

impl GrpcMetrics {
    /// Creates the metrics and registers them in `registry` as `stella_grpc_requests_total` and
    /// `stella_grpc_request_duration_seconds`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = GrpcMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        };
        registry.register(
            "stella_grpc_requests",
            "gRPC requests handled, by method and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "stella_grpc_request_duration_seconds",
            "Time from receiving a gRPC request to sending its response headers, in seconds",
            metrics.latency.clone(),
        );
        metrics
    }

    /// Counts one finished request and records its latency.
    pub fn observe(&self, method: &str, code: &'static str, seconds: f64) {
        let labels = RpcLabels {
            method: method.to_owned(),
            code,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// Returns the request count of one series, for tests and diagnostics.
    pub fn requests(&self, method: &str, code: &'static str) -> u64 {
        let labels = RpcLabels {
            method: method.to_owned(),
            code,
        };
        self.requests.get_or_create(&labels).get()
    }
}

/// Returns the method paths (`/package.Service/Method`) of every service in an encoded
/// `FileDescriptorSet`, such as `stella_proto::ATTESTOR_FILE_DESCRIPTOR_SET`.
///
/// # Errors
///
/// Returns the decode error when the bytes are not a `FileDescriptorSet`.
pub fn method_paths(encoded_descriptor_set: &[u8]) -> Result<Vec<String>, prost::DecodeError> {
    let set = prost_types::FileDescriptorSet::decode(encoded_descriptor_set)?;
    let mut paths = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let service_name = if package.is_empty() {
                service.name().to_owned()
            } else {
                format!("{package}.{}", service.name())
            };
            for method in &service.method {
                paths.push(format!("/{service_name}/{}", method.name()));
            }
        }
    }
    Ok(paths)
}

/// Returns the name of a gRPC status code as the gRPC specification spells it, such as
/// `INVALID_ARGUMENT`. Codes outside the specification are `UNKNOWN`.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Tower layer that records [`GrpcMetrics`] for every request of a tonic server.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<GrpcMetrics>,
    methods: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Records into `metrics`. Requests to a path outside `methods` are labelled
    /// [`UNKNOWN_METHOD`].
    pub fn new(metrics: Arc<GrpcMetrics>, methods: impl IntoIterator<Item = String>) -> Self {
        GrpcMetricsLayer {
            metrics,
            methods: Arc::new(methods.into_iter().collect()),
        }
    }
}

impl GrpcMetricsLayer {
    /// Records into `metrics`, with the methods of every service in `encoded_descriptor_sets`
    /// (see [`method_paths`]) as the known methods.
    ///
    /// # Errors
    ///
    /// Returns the decode error of a set that is not a `FileDescriptorSet`.
    pub fn for_descriptor_sets(
        metrics: Arc<GrpcMetrics>,
        encoded_descriptor_sets: &[&[u8]],
    ) -> Result<Self, prost::DecodeError> {
        let mut methods = Vec::new();
        for encoded in encoded_descriptor_sets {
            methods.extend(method_paths(encoded)?);
        }
        Ok(GrpcMetricsLayer::new(metrics, methods))
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: Arc::clone(&self.metrics),
            methods: Arc::clone(&self.methods),
        }
    }
}

/// The service of [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
    methods: Arc<HashSet<String>>,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for GrpcMetricsService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path();
        let method = if self.methods.contains(path) {
            path.to_owned()
        } else {
            UNKNOWN_METHOD.to_owned()
        };
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(response) => response_code(response),
                Err(_) => "UNKNOWN",
            };
            metrics.observe(&method, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

/// Reads the status of a response from its headers. tonic sends a failed call as a
/// trailers-only response, with `grpc-status` in the headers, and a successful one with the
/// status in the trailers, so a response without the header counts as OK.
///
/// NOTE: a streaming call that fails after its response headers were sent counts as OK, and its
/// latency ends at the headers, not at the end of the stream.
fn response_code<B>(response: &http::Response<B>) -> &'static str {
    match response.headers().get("grpc-status") {
        None => "OK",
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse::<i32>().ok())
            .map_or("UNKNOWN", code_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths_lists_health_methods() {
        let paths = method_paths(tonic_health_descriptor()).expect("decode");
        assert!(
            paths.contains(&"/grpc.health.v1.Health/Check".to_owned()),
            "{paths:?}"
        );
    }

    #[test]
    fn code_name_maps_spec_codes() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }

    #[test]
    fn response_code_reads_header() {
        let ok = http::Response::new(());
        assert_eq!(response_code(&ok), "OK");
        let denied = http::Response::builder()
            .header("grpc-status", "7")
            .body(())
            .expect("response");
        assert_eq!(response_code(&denied), "PERMISSION_DENIED");
        let garbled = http::Response::builder()
            .header("grpc-status", "x")
            .body(())
            .expect("response");
        assert_eq!(response_code(&garbled), "UNKNOWN");
    }

    /// A small descriptor set built here, with one service of one method.
    fn tonic_health_descriptor() -> &'static [u8] {
        static ENCODED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        ENCODED.get_or_init(|| {
            let method = prost_types::MethodDescriptorProto {
                name: Some("Check".to_owned()),
                ..Default::default()
            };
            let service = prost_types::ServiceDescriptorProto {
                name: Some("Health".to_owned()),
                method: vec![method],
                ..Default::default()
            };
            let file = prost_types::FileDescriptorProto {
                package: Some("grpc.health.v1".to_owned()),
                service: vec![service],
                ..Default::default()
            };
            prost_types::FileDescriptorSet { file: vec![file] }.encode_to_vec()
        })
    }
}
