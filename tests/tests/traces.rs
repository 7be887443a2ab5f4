//! Traces across both services: an in-process OTLP trace receiver replaces the collector,
//! both services export to it (`OTEL_EXPORTER_OTLP_ENDPOINT`), and one `stella promotion
//! evaluate` must arrive as one trace with spans from the gate and the attestor, the expected
//! span names and ids as attributes, and no token text.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use stella_e2e::access::TENANT_A;
use stella_e2e::env::Env;
use stella_e2e::policy::{self, PROD};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Maximum time from the evaluation to the arrival of the spans. The services export every
/// 100 ms (`OTEL_BSP_SCHEDULE_DELAY`); the rest is slack for a loaded machine.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Origin of the Rekor log that contains the DSSE case's entry.
const ALPHA3_ORIGIN: &str = "log2025-alpha3.rekor.sigstage.dev";

/// A trace id that the test hands to `stella` in `TRACEPARENT`.
const CALLER_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const CALLER_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// One received span with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Collects every export request it receives.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource_attributes = resource_spans
                .resource
                .map(|resource| resource.attributes)
                .unwrap_or_default();
            let service = attributes_text(&resource_attributes)
                .into_iter()
                .find(|(key, _)| key == "service.name")
                .map(|(_, value)| value)
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex::encode(&span.trace_id),
                        attributes: attributes_text(&span.attributes),
                    });
                }
            }
        }
        self.spans.lock().expect("receiver lock").extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Renders attribute values as text; the checks compare strings only.
fn attributes_text(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|attribute| {
            let value = match attribute
                .value
                .as_ref()
                .and_then(|value| value.value.as_ref())
            {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(number)) => number.to_string(),
                Some(AnyValue::BoolValue(flag)) => flag.to_string(),
                Some(AnyValue::DoubleValue(number)) => number.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (attribute.key.clone(), value)
        })
        .collect()
}

/// Serves the receiver on a free loopback port from its own thread and runtime, for the rest of
/// the test process.
fn start_receiver() -> (Receiver, SocketAddr) {
    let receiver = Receiver::default();
    let service = TraceServiceServer::new(receiver.clone());
    let (address_sender, address_receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("receiver runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the OTLP receiver");
            address_sender
                .send(listener.local_addr().expect("receiver address"))
                .expect("send the receiver address");
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .expect("OTLP receiver failed");
        });
    });
    let address = address_receiver.recv().expect("receiver address");
    (receiver, address)
}

/// Waits until spans of `trace_id` named `gate.Evaluate` and `attestor.VerifyEvidence` arrived,
/// then waits one more export interval for their children, and returns the trace's spans.
fn wait_for_trace(receiver: &Receiver, trace_id: &str) -> Vec<ReceivedSpan> {
    let deadline = Instant::now() + EXPORT_TIMEOUT;
    loop {
        let spans: Vec<ReceivedSpan> = receiver
            .spans
            .lock()
            .expect("receiver lock")
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect();
        let names: BTreeSet<&str> = spans.iter().map(|span| span.name.as_str()).collect();
        if names.contains("gate.Evaluate") && names.contains("attestor.VerifyEvidence") {
            std::thread::sleep(Duration::from_millis(500));
            return receiver
                .spans
                .lock()
                .expect("receiver lock")
                .iter()
                .filter(|span| span.trace_id == trace_id)
                .cloned()
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "spans of trace {trace_id} did not arrive within {EXPORT_TIMEOUT:?}; received: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn find_span<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|span| span.service == service && span.name == name)
        .unwrap_or_else(|| {
            let present: BTreeSet<(&str, &str)> = spans
                .iter()
                .map(|span| (span.service.as_str(), span.name.as_str()))
                .collect();
            panic!("no span {name} from {service}; spans of the trace: {present:?}")
        })
}

#[test]
fn evaluation_is_one_trace() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let (receiver, address) = start_receiver();
    let env = Env::builder("traces")
        .gate(&policy::standard())
        .service_env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{address}"))
        .service_env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start();
    let case = vectors.case(DSSE_HAPPY);
    // Registered before any trust root set exists, so the attestor cannot verify the evidence at
    // registration and the evaluation's VerifyEvidence runs every verification step.
    let bundle_id = env.register_case(&case);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&case.bundle()]);
    env.promotion_create("traced", PROD, &[&bundle_id]);

    // Without TRACEPARENT the CLI starts a trace and prints its id.
    let output = env.evaluate_output("traced");
    output.assert_ok();
    let trace_id = output.str_field("trace_id");
    assert_eq!(
        trace_id.len(),
        32,
        "trace_id is not 32 hex digits: {output}"
    );

    let spans = wait_for_trace(&receiver, &trace_id);
    let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    assert!(
        services.contains("stella-gate"),
        "no gate spans: {services:?}"
    );
    assert!(
        services.contains("stella-attestor"),
        "no attestor spans: {services:?}"
    );

    let gate = "stella-gate";
    let attestor = "stella-attestor";
    let bundle = bundle_id.as_str();
    let expected_attributes = [
        (
            gate,
            "grpc.request",
            "rpc.method",
            "/stella.gate.v1.Gate/Evaluate",
        ),
        (gate, "gate.Evaluate", "tenant", TENANT_A),
        (gate, "gate.Evaluate", "promotion_id", "traced"),
        (gate, "gate.verify_evidence", "bundle_id", bundle),
        (gate, "gate.evaluate_policy", "promotion_id", "traced"),
        (
            attestor,
            "grpc.request",
            "rpc.method",
            "/stella.attestor.v1.Attestor/VerifyEvidence",
        ),
        (attestor, "attestor.VerifyEvidence", "tenant", TENANT_A),
        (attestor, "attestor.VerifyEvidence", "bundle_id", bundle),
        // The first evaluation verifies: registration came before the trust root set.
        (attestor, "attestor.VerifyEvidence", "from_store", "false"),
        (attestor, "attestor.verify_entry", "bundle_id", bundle),
        (attestor, "verify.tile_lookup", "origin", ALPHA3_ORIGIN),
        (attestor, "verify.checkpoint", "origin", ALPHA3_ORIGIN),
        (attestor, "verify.inclusion_proof", "origin", ALPHA3_ORIGIN),
    ];
    for (service, name, key, value) in expected_attributes {
        let span = find_span(&spans, service, name);
        assert_eq!(span.attribute(key), Some(value), "{span:?}");
    }
    let entry = find_span(&spans, attestor, "attestor.verify_entry");
    assert!(
        entry
            .attribute("entry_path")
            .is_some_and(|path| !path.is_empty()),
        "{entry:?}"
    );
    for step in [
        "verify.bundle_integrity",
        "verify.dsse",
        "verify.tlog",
        "verify.timestamps",
        "verify.certificate",
    ] {
        find_span(&spans, attestor, step);
    }

    // A token is a JWT, whose base64url header starts with "eyJ". No attribute may carry one.
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("eyJ") && !value.to_ascii_lowercase().contains("bearer"),
                "span {} attribute {key} carries token text: {value}",
                span.name
            );
        }
    }

    // With TRACEPARENT set, the evaluation joins the caller's trace.
    let output = env
        .stella()
        .clone()
        .env("TRACEPARENT", CALLER_TRACEPARENT)
        .run_json([
            "promotion",
            "evaluate",
            "--promotion",
            "traced",
            "--offline-rekor",
        ]);
    output.assert_ok();
    assert_eq!(output.str_field("trace_id"), CALLER_TRACE_ID, "{output}");
    let joined = wait_for_trace(&receiver, CALLER_TRACE_ID);
    // Nothing changed since the first evaluation, so the attestor returns the stored report.
    let stored = find_span(&joined, attestor, "attestor.VerifyEvidence");
    assert_eq!(stored.attribute("from_store"), Some("true"), "{stored:?}");
    assert!(
        joined.iter().all(|span| span.name != "attestor.verify_entry"),
        "the second evaluation verified again"
    );
    let services: BTreeSet<&str> = joined.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["stella-attestor", "stella-gate"]),
        "spans of the caller's trace"
    );
}

/// Waits until `read_log()` contains `needle`, failing with the log after [`EXPORT_TIMEOUT`].
fn wait_for_log(read_log: impl Fn() -> String, needle: &str) -> String {
    let deadline = Instant::now() + EXPORT_TIMEOUT;
    loop {
        let log = read_log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "log has no {needle:?} within {EXPORT_TIMEOUT:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn unreachable_collector_is_logged() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    // Nothing listens on this port once the probe socket is closed.
    let port = stella_e2e::service::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = Env::builder("traces-unreachable")
        .gate(&policy::standard())
        .service_env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .service_env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start();
    // A call makes spans for the exporter to send.
    let trust = env.install_trust(&vectors.staging_trusted_root(), &[]);

    let attestor = env.attestor();
    let log = wait_for_log(
        || attestor.log_text(),
        "cannot export spans to the OTLP collector",
    );
    assert!(
        log.contains("exporting spans over OTLP") && log.contains(&endpoint),
        "the start line does not name the endpoint {endpoint}:\n{log}"
    );
    let warnings = log
        .lines()
        .filter(|line| line.contains("cannot export spans to the OTLP collector"))
        .count();
    // More calls make more spans, so more exports fail within the minute. They are counted, not
    // logged again.
    for _ in 0..3 {
        // Importing the same set again succeeds (already imported) and still makes spans.
        env.trust_import(&trust).assert_ok();
        std::thread::sleep(Duration::from_millis(400));
    }
    let later = attestor
        .log_text()
        .lines()
        .filter(|line| line.contains("cannot export spans to the OTLP collector"))
        .count();
    assert_eq!(warnings, 1, "{log}");
    assert_eq!(later, 1, "repeated export failures logged again");
}

#[test]
fn invalid_endpoint_logged_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, br#"{"keys":[]}"#).expect("write JWKS");
    let output = std::process::Command::new(stella_e2e::binaries::locate("stella-attestor"))
        .args(["--listen", "127.0.0.1:0", "--plaintext-loopback", "--log-format", "json"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--authority-jwks")
        .arg(&jwks)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[not-an-address")
        .env_remove("RUST_LOG")
        .output()
        .expect("run stella-attestor");
    assert!(!output.status.success(), "the attestor started with an invalid endpoint");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one log line:\n{stderr}");
    let line: serde_json::Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(line["level"], "ERROR", "{stderr}");
    assert_eq!(line["fields"]["message"], "cannot start", "{stderr}");
    let error = line["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("OTLP"), "{stderr}");
}
