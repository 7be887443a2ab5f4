//! The gate served on a loopback port with a RocksDB in a temporary directory, against a
//! real attestor, an attestor that is down, and one that accepts connections but never
//! responds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stella_attestor::AttestorConfig;
use stella_bundle::{EvidenceInput, Limits, Subject, TilesInput, TrustSetInput};
use stella_gate::GateConfig;
use stella_proto::attestor::v1 as attestor_pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::gate::v1 as pb;
use stella_proto::gate::v1::gate_client::GateClient;
use stella_verify::tlog_proof::TlogProof;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
const SUBJECT: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
const OTHER_SUBJECT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const UNKNOWN_BUNDLE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// Policy accepting the conformance suite's signing workflow for SLSA provenance.
const POLICY: &str = r#"environments:
  prod:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: /https://github\.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/\.github/workflows/.+\.yml@refs/heads/main/
        issuer: https://token.actions.githubusercontent.com
    on_missing_proof: pending
    on_attestor_unavailable: pending
  strict:
    require:
      - predicate_type: https://slsa.dev/provenance/v1
        identity: https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
  other-signer:
    require:
      - identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
"#;

/// Returns true when the environment variable `CI` is set to a value other than empty, `0` or
/// `false`. CI services set `CI=true`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// Returns the vectors folder, or `None` (with a message) when it is absent. In CI, an absent
/// folder fails the test instead, so a run without vectors cannot pass.
fn vectors() -> Option<PathBuf> {
    let path = PathBuf::from(VECTORS);
    if path.is_dir() {
        Some(path)
    } else {
        assert!(
            !in_ci(),
            "test vectors not found at {VECTORS}, and CI is set, so the test fails instead of skipping"
        );
        eprintln!("skipping: test vectors not found at {VECTORS}");
        None
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A running server task and what stops it.
struct Running {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn attestor(data_dir: &Path) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits: Limits::default(),
        };
        let task = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            stop: Some(stop),
            task,
        }
    }

    async fn gate(data_dir: &Path, policy: &Path, attestor_url: String, timeout: Duration) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = GateConfig {
            data_dir: data_dir.to_path_buf(),
            attestor_url,
            policy_path: policy.to_path_buf(),
            attestor_timeout: timeout,
        };
        let task = tokio::spawn(stella_gate::run(listener, config, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server stops within 10 s")
            .expect("server task joins");
        result.expect("server exits cleanly");
    }
}

async fn gate_client(server: &Running) -> GateClient<Channel> {
    GateClient::connect(server.url()).await.expect("connect to gate")
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// Returns the URL of a loopback port where nothing listens.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

async fn create(client: &mut GateClient<Channel>, id: &str, subject: &str, target: &str, bundle_id: &str) {
    client
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: id.to_owned(),
            subject_digests: vec![subject.to_owned()],
            target_environment: target.to_owned(),
            evidence_bundle_ids: vec![bundle_id.to_owned()],
        })
        .await
        .expect("create promotion");
}

async fn evaluate(client: &mut GateClient<Channel>, id: &str) -> pb::EvaluateResponse {
    client
        .evaluate(pb::EvaluateRequest {
            promotion_id: id.to_owned(),
            offline_rekor: true,
        })
        .await
        .expect("evaluate")
        .into_inner()
}

/// Imports the staging trust root, registers the `rekor2-dsse-happy-path` evidence and
/// caches its tlog-proof. Returns the evidence bundle id.
async fn prepare_attestor(attestor: &Running, vectors: &Path) -> String {
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));
    let mut client = AttestorClient::connect(attestor.url())
        .await
        .expect("connect to attestor");

    let trust = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: read(&case.join("trusted_root.json")),
        note_keys: Vec::new(),
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600,
    })
    .expect("pack trust set");
    client
        .import_trust_roots(attestor_pb::ImportBundleRequest {
            file_name: "trust.tgz".to_owned(),
            archive: trust,
        })
        .await
        .expect("import trust set");

    let parsed = stella_verify::bundle::parse_bundle(&bundle_json).expect("bundle parses");
    let proof = parsed
        .tlog_entries
        .first()
        .and_then(|entry| entry.inclusion_proof.as_ref())
        .expect("inclusion proof");
    let proof_file = TlogProof {
        extra: None,
        index: proof.log_index,
        hashes: proof.hashes.clone(),
        checkpoint: proof.checkpoint.as_bytes().to_vec(),
    }
    .to_bytes();
    let tiles = stella_bundle::pack_tiles(&TilesInput {
        logs: Vec::new(),
        tlog_proofs: vec![proof_file],
    })
    .expect("pack proof");
    client
        .import_tiles(attestor_pb::ImportBundleRequest {
            file_name: "proofs.tgz".to_owned(),
            archive: tiles,
        })
        .await
        .expect("import proof");

    let mut sigstore_bundles = BTreeMap::new();
    sigstore_bundles.insert("provenance".to_owned(), bundle_json);
    let evidence = stella_bundle::pack_evidence(&EvidenceInput {
        sigstore_bundles,
        subjects: vec![Subject {
            name: "a.txt".to_owned(),
            digest: SUBJECT.to_owned(),
        }],
    })
    .expect("pack evidence");
    client
        .register_evidence(attestor_pb::ImportBundleRequest {
            file_name: "evidence.tgz".to_owned(),
            archive: evidence,
        })
        .await
        .expect("register evidence")
        .into_inner()
        .bundle_id
}

#[tokio::test]
async fn attestor_down_pending_within_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), POLICY);
    let timeout = Duration::from_millis(1_500);
    let gate = Running::gate(&dir.path().join("gate"), &policy, closed_port_url(), timeout).await;
    let mut client = gate_client(&gate).await;

    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let started = Instant::now();
    let response = evaluate(&mut client, "rel-1").await;
    assert!(
        started.elapsed() < timeout + Duration::from_millis(1_000),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(response.decision, "pending");
    assert!(
        response.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        response.reason_codes
    );
    assert!(response.record_id.starts_with("dr-"));

    let stored = client
        .get_decision(pb::GetDecisionRequest {
            record_id: response.record_id.clone(),
        })
        .await
        .expect("get decision")
        .into_inner();
    assert_eq!(stored.record_json, response.record_json);
    let record: serde_json::Value = serde_json::from_slice(&stored.record_json).expect("record JSON");
    assert_eq!(record["decision"], "pending");
    assert_eq!(record["schema"], "stella.decision-record/v1");
    assert_eq!(record["decision_digest"], response.decision_digest.as_str());

    // The strict environment denies instead.
    create(&mut client, "rel-2", SUBJECT, "strict", UNKNOWN_BUNDLE).await;
    let response = evaluate(&mut client, "rel-2").await;
    assert_eq!(response.decision, "deny");
    assert!(
        response.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        response.reason_codes
    );
    gate.stop().await;
}

#[tokio::test]
async fn silent_attestor_hits_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), POLICY);

    // Accepts TCP connections but never speaks HTTP/2.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let silent_address = silent.local_addr().expect("address");
    let holder = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });

    let timeout = Duration::from_millis(700);
    let gate = Running::gate(
        &dir.path().join("gate"),
        &policy,
        format!("http://{silent_address}"),
        timeout,
    )
    .await;
    let mut client = gate_client(&gate).await;
    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;

    let started = Instant::now();
    let response = client
        .preview_gates(pb::EvaluateRequest {
            promotion_id: "rel-1".to_owned(),
            offline_rekor: true,
        })
        .await
        .expect("preview")
        .into_inner();
    let elapsed = started.elapsed();
    holder.abort();

    assert!(
        elapsed >= Duration::from_millis(600),
        "returned before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(1_000),
        "deadline not enforced: {elapsed:?}"
    );
    assert_eq!(response.decision, "pending");
    assert_eq!(response.reason_codes, vec!["ERR_ATTESTOR_UNAVAILABLE"]);
    assert!(response.record_id.is_empty(), "a preview writes no record");
    gate.stop().await;
}

#[tokio::test]
async fn real_attestor_allows_then_fails_closed() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), POLICY);
    let attestor = Running::attestor(&dir.path().join("attestor")).await;
    let bundle_id = prepare_attestor(&attestor, &vectors).await;

    let gate = Running::gate(
        &dir.path().join("gate"),
        &policy,
        attestor.url(),
        Duration::from_secs(10),
    )
    .await;
    let mut client = gate_client(&gate).await;

    create(&mut client, "rel-allow", SUBJECT, "prod", &bundle_id).await;
    let allowed = evaluate(&mut client, "rel-allow").await;
    assert_eq!(
        allowed.decision, "allow",
        "reasons {:?}, gates {:?}",
        allowed.reason_codes, allowed.gates
    );
    assert!(allowed.reason_codes.is_empty());
    assert!(allowed.gates.iter().all(|gate| gate.satisfied));
    assert_eq!(allowed.report_digests.len(), 1);
    let record: serde_json::Value = serde_json::from_slice(&allowed.record_json).expect("record JSON");
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["evidence_bundle_ids"][0], bundle_id.as_str());
    assert_eq!(record["checkpoints"].as_array().map(Vec::len), Some(1));

    // Same inputs, same decision digest.
    let preview = client
        .preview_gates(pb::EvaluateRequest {
            promotion_id: "rel-allow".to_owned(),
            offline_rekor: true,
        })
        .await
        .expect("preview")
        .into_inner();
    assert_eq!(preview.decision_digest, allowed.decision_digest);

    create(&mut client, "rel-other-subject", OTHER_SUBJECT, "prod", &bundle_id).await;
    let mismatch = evaluate(&mut client, "rel-other-subject").await;
    assert_eq!(mismatch.decision, "deny");
    assert_eq!(
        mismatch.reason_codes,
        vec!["ERR_POLICY_REQUIREMENT_UNMET", "ERR_SUBJECT_MISMATCH"]
    );

    create(&mut client, "rel-other-signer", SUBJECT, "other-signer", &bundle_id).await;
    let unmet = evaluate(&mut client, "rel-other-signer").await;
    assert_eq!(unmet.decision, "deny");
    assert_eq!(unmet.reason_codes, vec!["ERR_POLICY_REQUIREMENT_UNMET"]);

    create(&mut client, "rel-no-env", SUBJECT, "qa", &bundle_id).await;
    let no_env = evaluate(&mut client, "rel-no-env").await;
    assert_eq!(no_env.decision, "deny");
    assert!(
        no_env.reason_codes.contains(&"ERR_POLICY_INVALID".to_owned()),
        "{:?}",
        no_env.reason_codes
    );

    create(&mut client, "rel-unknown", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let unknown = evaluate(&mut client, "rel-unknown").await;
    assert_eq!(unknown.decision, "deny");
    assert!(
        unknown.reason_codes.contains(&"ERR_EVIDENCE_NOT_FOUND".to_owned()),
        "{:?}",
        unknown.reason_codes
    );

    // With the attestor stopped, the promotion that was allowed is no longer allowed.
    attestor.stop().await;
    let down = evaluate(&mut client, "rel-allow").await;
    assert_eq!(down.decision, "pending");
    assert!(
        down.reason_codes.contains(&"ERR_ATTESTOR_UNAVAILABLE".to_owned()),
        "{:?}",
        down.reason_codes
    );
    gate.stop().await;
}

#[tokio::test]
async fn requests_validated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(dir.path(), POLICY);
    let gate = Running::gate(
        &dir.path().join("gate"),
        &policy,
        closed_port_url(),
        Duration::from_secs(1),
    )
    .await;
    let mut client = gate_client(&gate).await;

    let status = client
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: "rel-1".to_owned(),
            subject_digests: vec!["sha256:abc".to_owned()],
            target_environment: "prod".to_owned(),
            evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
        })
        .await
        .expect_err("short digest");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("subject_digests[0]"), "{}", status.message());

    create(&mut client, "rel-1", SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    let status = client
        .create_promotion(pb::CreatePromotionRequest {
            promotion_id: "rel-1".to_owned(),
            subject_digests: vec![OTHER_SUBJECT.to_owned()],
            target_environment: "prod".to_owned(),
            evidence_bundle_ids: vec![UNKNOWN_BUNDLE.to_owned()],
        })
        .await
        .expect_err("conflicting re-create");
    assert_eq!(status.code(), Code::AlreadyExists);

    let status = client
        .evaluate(pb::EvaluateRequest {
            promotion_id: "rel-1".to_owned(),
            offline_rekor: false,
        })
        .await
        .expect_err("online Rekor is not offered");
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = client
        .evaluate(pb::EvaluateRequest {
            promotion_id: "rel-missing".to_owned(),
            offline_rekor: true,
        })
        .await
        .expect_err("unknown promotion");
    assert_eq!(status.code(), Code::NotFound);

    let status = client
        .get_decision(pb::GetDecisionRequest {
            record_id: "dr-missing".to_owned(),
        })
        .await
        .expect_err("unknown record");
    assert_eq!(status.code(), Code::NotFound);
    gate.stop().await;
}

#[tokio::test]
async fn invalid_policy_stops_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = write_policy(
        dir.path(),
        "environments:\n  prod:\n    require:\n      - identity: a@b\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = GateConfig {
        data_dir: dir.path().join("gate"),
        attestor_url: closed_port_url(),
        policy_path: policy.clone(),
        attestor_timeout: Duration::from_secs(1),
    };
    let error = stella_gate::run(listener, config, std::future::pending())
        .await
        .expect_err("invalid policy");
    let expected = format!("{}: environments.prod.require[0].issuer: missing", policy.display());
    assert_eq!(format!("{error:#}"), expected);
}
