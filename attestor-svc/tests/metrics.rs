//! The attestor's metrics endpoint and gRPC reflection, over real gRPC and HTTP on loopback:
//! counters move by exactly the calls made, and reflection lists the served services.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{
    Client, TESSERA_ORIGIN, TestAuthority, bearer, import_request, tessera_tiles,
    tessera_trust_set, vectors,
};
use prometheus_client::registry::Registry;
use stella_attestor::AttestorConfig;
use stella_attestor::metrics::AttestorMetrics;
use stella_bundle::Limits;
use stella_metrics::dev::{sample, scrape};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// An attestor served with `run_with_metrics`, and its metrics endpoint.
struct Observed {
    grpc: SocketAddr,
    metrics: SocketAddr,
    authority: Arc<TestAuthority>,
    _stop: oneshot::Sender<()>,
}

async fn start(data_dir: &std::path::Path) -> Observed {
    let authority = Arc::new(TestAuthority::generate());
    let mut registry = Registry::default();
    let metrics = Arc::new(AttestorMetrics::register(&mut registry));
    let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics");
    let metrics_address = metrics_listener.local_addr().expect("metrics address");
    stella_metrics::spawn(metrics_listener, Arc::new(registry));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let grpc = listener.local_addr().expect("local address");
    let config = AttestorConfig {
        data_dir: data_dir.to_path_buf(),
        limits: Limits::default(),
        authenticator: authority.authenticator(),
        tls: None,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(stella_attestor::run_with_metrics(
        listener,
        config,
        stella_attestor::DEFAULT_MAX_STREAM_BUNDLE_BYTES,
        metrics,
        async {
            let _ = stopped.await;
        },
    ));
    Observed {
        grpc,
        metrics: metrics_address,
        authority,
        _stop: stop,
    }
}

impl Observed {
    async fn channel(&self) -> Channel {
        for _ in 0..50 {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.grpc))
                .expect("URI")
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("cannot connect to the attestor at {}", self.grpc);
    }

    async fn client(&self) -> Client {
        AttestorClient::with_interceptor(
            self.channel().await,
            bearer(&self.authority.token(common::TENANT)),
        )
    }
}

async fn verify_inclusion(
    client: &mut Client,
    index: u64,
    entry: &[u8],
) -> pb::VerifyInclusionResponse {
    client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: TESSERA_ORIGIN.to_owned(),
            index,
            entry: entry.to_vec(),
            sequence: 0,
        })
        .await
        .expect("verify inclusion")
        .into_inner()
}

const IMPORT_TILES_OK: &str =
    r#"stella_grpc_requests_total{method="/stella.attestor.v1.Attestor/ImportTiles",code="OK"}"#;
const VERIFY_INCLUSION_OK: &str = r#"stella_grpc_requests_total{method="/stella.attestor.v1.Attestor/VerifyInclusion",code="OK"}"#;
const VERIFY_INCLUSION_UNAUTHENTICATED: &str = r#"stella_grpc_requests_total{method="/stella.attestor.v1.Attestor/VerifyInclusion",code="UNAUTHENTICATED"}"#;
const PROOF_FAILURES: &str = "stella_inclusion_proof_failures_total";

#[tokio::test]
async fn counters_follow_calls() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let mut client = server.client().await;

    client
        .import_trust_roots(import_request("trust.tgz", tessera_trust_set(&vectors)))
        .await
        .expect("import trust set");
    let tiles = tessera_tiles(&vectors, 15);
    let tile_bytes = tiles.len() as f64;
    let imported = client
        .import_tiles(import_request("tiles.tgz", tiles.clone()))
        .await
        .expect("import tiles")
        .into_inner();
    assert!(imported.tiles_imported > 0);
    let included = verify_inclusion(&mut client, 0, b"one").await;
    assert!(included.included, "{}", included.detail);

    let text = scrape(server.metrics).await;
    assert_eq!(sample(&text, IMPORT_TILES_OK), Some(1.0), "{text}");
    assert_eq!(sample(&text, VERIFY_INCLUSION_OK), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "stella_tiles_imported_total"),
        Some(imported.tiles_imported as f64),
        "{text}"
    );
    assert_eq!(
        sample(&text, "stella_tile_bundle_bytes_imported_total"),
        Some(tile_bytes),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stella_tile_imports_total{result="new"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"stella_verifications_total{kind="inclusion",outcome="verified"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, PROOF_FAILURES), Some(0.0), "{text}");
    // Series of closed label sets exist from the start, before their first event.
    for series in [
        r#"stella_verifications_total{kind="bundle",outcome="failed"}"#,
        r#"stella_verifications_total{kind="evidence",outcome="verified"}"#,
        r#"stella_evidence_reports_total{source="store"}"#,
        r#"stella_tile_imports_total{result="already_imported"}"#,
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series}: {text}");
    }
    assert!(
        sample(&text, "stella_attestor_stored_tiles").is_some(),
        "{text}"
    );
    assert!(
        sample(&text, "stella_attestor_store_sst_bytes").is_some(),
        "{text}"
    );
    // Inclusion checks use no certificate paths, so the verification cache is still empty.
    for kind in ["chain", "signature"] {
        assert_eq!(
            sample(&text, &format!(r#"stella_verification_cache_entries{{kind="{kind}"}}"#)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!(r#"stella_verification_cache_hits_total{{kind="{kind}"}}"#)),
            Some(0.0),
            "{text}"
        );
    }

    // Index 3 is "four", so this proof does not verify.
    let wrong = verify_inclusion(&mut client, 3, b"three").await;
    assert_eq!(wrong.reason_codes, vec!["ERR_REKOR_PROOF_INVALID"]);
    // A repeated import stores nothing new.
    let again = client
        .import_tiles(import_request("tiles.tgz", tiles))
        .await
        .expect("import tiles again")
        .into_inner();
    assert!(again.already_imported);
    // A call without a token is rejected before it reads the request.
    let mut anonymous = pb::attestor_client::AttestorClient::new(server.channel().await);
    let rejected = anonymous
        .verify_inclusion(pb::VerifyInclusionRequest::default())
        .await
        .expect_err("call without a token accepted");
    assert_eq!(rejected.code(), tonic::Code::Unauthenticated);

    let text = scrape(server.metrics).await;
    assert_eq!(sample(&text, PROOF_FAILURES), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"stella_verifications_total{kind="inclusion",outcome="failed"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"stella_verification_reasons_total{kind="inclusion",reason="ERR_REKOR_PROOF_INVALID"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, VERIFY_INCLUSION_OK), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, VERIFY_INCLUSION_UNAUTHENTICATED),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, IMPORT_TILES_OK), Some(2.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"stella_tile_imports_total{result="already_imported"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "stella_tiles_imported_total"),
        Some(imported.tiles_imported as f64),
        "{text}"
    );
    let histogram_count = r#"stella_grpc_request_duration_seconds_count{method="/stella.attestor.v1.Attestor/VerifyInclusion",code="OK"}"#;
    assert_eq!(sample(&text, histogram_count), Some(2.0), "{text}");
}

#[tokio::test]
async fn unknown_method_label_is_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/stella.attestor.v1.Attestor/NoSuchMethod");
    let codec =
        tonic_prost::ProstCodec::<pb::VerifyInclusionRequest, pb::VerifyInclusionResponse>::default(
        );
    let status = grpc
        .unary(
            tonic::Request::new(pb::VerifyInclusionRequest::default()),
            path,
            codec,
        )
        .await
        .expect_err("unknown method answered");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    // A gate method is unknown here too: the attestor's metrics know only its own methods.
    grpc.ready().await.expect("ready");
    let gate_path = http::uri::PathAndQuery::from_static("/stella.gate.v1.Gate/GetSigningKey");
    let codec =
        tonic_prost::ProstCodec::<pb::VerifyInclusionRequest, pb::VerifyInclusionResponse>::default(
        );
    let status = grpc
        .unary(
            tonic::Request::new(pb::VerifyInclusionRequest::default()),
            gate_path,
            codec,
        )
        .await
        .expect_err("gate method answered by the attestor");
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let text = scrape(server.metrics).await;
    assert_eq!(
        sample(
            &text,
            r#"stella_grpc_requests_total{method="unknown",code="UNIMPLEMENTED"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("NoSuchMethod"), "{text}");
    // The gate's methods are not the attestor's, so they get no series here.
    assert!(!text.contains("/stella.gate.v1.Gate/"), "{text}");
}

#[tokio::test]
async fn reflection_lists_services() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(listed)) = response.message_response else {
        panic!(
            "unexpected reflection response: {:?}",
            response.message_response
        );
    };
    let names: Vec<&str> = listed
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert!(names.contains(&"stella.attestor.v1.Attestor"), "{names:?}");
    assert!(!names.contains(&"stella.gate.v1.Gate"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    assert!(
        names.contains(&"grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );

    // The descriptor of the attestor's file resolves too, which grpcurl needs to call a method.
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "stella.attestor.v1.Attestor".to_owned(),
        )),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
        panic!(
            "unexpected reflection response: {:?}",
            response.message_response
        );
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
