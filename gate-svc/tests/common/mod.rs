//! Shared helpers of the gate's gRPC tests. A development Authority mints the tokens of every
//! call. A real attestor and the gate are served on loopback ports, with or without TLS, with
//! RocksDB in temporary directories. The attestor data is the conformance suite's
//! `rekor2-dsse-happy-path` case.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stella_access::dev::{DevAuthority, DevPkiPaths, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, AUDIENCE_GATE, Authenticator, BearerToken, DEFAULT_ISSUER, Scope};
use stella_attestor::AttestorConfig;
use stella_bundle::{EvidenceInput, Limits, Subject, TilesInput, TrustSetInput};
use stella_gate::GateConfig;
use stella_gate::attestor::AttestorTls;
use stella_gate::metrics::GateMetrics;
use stella_proto::attestor::v1 as attestor_pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::gate::v1 as pb;
use stella_proto::gate::v1::gate_client::GateClient;
use stella_verify::tlog_proof::TlogProof;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ServerTlsConfig};

pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");
pub const SUBJECT: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
pub const OTHER_SUBJECT: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const UNKNOWN_BUNDLE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// Tenant of the tokens that [`Harness::client`] attaches and that the tests give the attestor.
pub const TENANT: &str = "acme";

/// A gate client that attaches a bearer token to every call.
pub type Gate = GateClient<InterceptedService<Channel, BearerToken>>;

/// An attestor client that attaches a bearer token to every call.
pub type Attestor = AttestorClient<InterceptedService<Channel, BearerToken>>;

/// Policy accepting the conformance suite's signing workflow for SLSA provenance.
pub const POLICY: &str = r#"environments:
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
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false")))
}

/// Returns the vectors folder, or `None` (with a message) when it is absent. In CI, an absent
/// folder fails the test instead, so a run without vectors cannot pass.
pub fn vectors() -> Option<PathBuf> {
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

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

pub fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// Returns the URL of a loopback port where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A development Authority whose JWKS file both services load.
pub struct Harness {
    pub authority: DevAuthority,
    pub jwks_path: PathBuf,
}

impl Harness {
    /// Generates an Authority key and writes its JWKS into `dir`.
    pub fn new(dir: &Path) -> Harness {
        stella_access::install_crypto_provider();
        let authority = DevAuthority::generate();
        let jwks_path = dir.join("jwks.json");
        authority.write_jwks(&jwks_path);
        Harness { authority, jwks_path }
    }

    pub fn authenticator(&self, audience: &str) -> Authenticator {
        Authenticator::load(&self.jwks_path, DEFAULT_ISSUER, audience, 60).expect("load JWKS")
    }

    /// Returns a token of `tenant` with every scope.
    pub fn token(&self, tenant: &str) -> String {
        self.authority.token(tenant, &all_scopes())
    }

    /// Connects to the gate over plaintext, attaching `token` to every call.
    pub async fn client_with(&self, gate: &Running, token: &str) -> Gate {
        let channel = Channel::from_shared(gate.url()).expect("URL").connect().await.expect("connect to gate");
        GateClient::with_interceptor(channel, BearerToken::new(token).expect("token"))
    }

    /// Connects to the gate as tenant [`TENANT`] with every scope.
    pub async fn client(&self, gate: &Running) -> Gate {
        self.client_with(gate, &self.token(TENANT)).await
    }

    /// Connects to the attestor over plaintext, attaching `token` to every call.
    pub async fn attestor_client_with(&self, attestor: &Running, token: &str) -> Attestor {
        let channel = Channel::from_shared(attestor.url()).expect("URL").connect().await.expect("connect to attestor");
        AttestorClient::with_interceptor(channel, BearerToken::new(token).expect("token"))
    }

    /// Starts an attestor that accepts this Authority's tokens, over TLS when `tls` is set.
    pub async fn attestor(&self, data_dir: &Path, tls: Option<ServerTlsConfig>) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let config = AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits: Limits::default(),
            authenticator: self.authenticator(AUDIENCE_ATTESTOR),
            tls,
        };
        let task = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            scheme,
            stop: Some(stop),
            task,
        }
    }

    /// Starts a plaintext gate that accepts this Authority's tokens and calls the attestor at
    /// `attestor_url` without TLS.
    pub async fn gate(&self, data_dir: &Path, policy: &Path, attestor_url: String, timeout: Duration) -> Running {
        self.gate_with(GateConfig {
            data_dir: data_dir.to_path_buf(),
            attestor_url,
            attestor_tls: None,
            policy_path: policy.to_path_buf(),
            signing_key: None,
            attestor_timeout: timeout,
            authenticator: self.authenticator(AUDIENCE_GATE),
            tls: None,
        })
        .await
    }

    /// Starts a plaintext gate in `dir/gate` with [`POLICY`] (written to `dir/policy.yaml`) as
    /// its site-wide default, whose attestor is down, so each evaluation decides by the
    /// environment's `on_attestor_unavailable`.
    pub async fn gate_with_attestor_down(&self, dir: &Path) -> Running {
        let policy = write_policy(dir, POLICY);
        self.gate(&dir.join("gate"), &policy, closed_port_url(), Duration::from_millis(500))
            .await
    }

    /// Starts a gate with any configuration.
    pub async fn gate_with(&self, config: GateConfig) -> Running {
        self.gate_with_metrics(config, std::sync::Arc::new(GateMetrics::default())).await
    }

    /// Starts a gate with any configuration, recording into `metrics`.
    pub async fn gate_with_metrics(&self, config: GateConfig, metrics: std::sync::Arc<GateMetrics>) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(stella_gate::run_with_metrics(listener, config, metrics, async {
            let _ = stopped.await;
        }));
        Running {
            address,
            scheme,
            stop: Some(stop),
            task,
        }
    }
}

/// Returns the gate's TLS files for an attestor served with the development PKI `pki`: trust
/// `ca` and, with `client_identity`, present the PKI's client certificate.
pub fn attestor_tls(ca: &Path, pki: &DevPkiPaths, client_identity: bool) -> AttestorTls {
    AttestorTls {
        ca: ca.to_path_buf(),
        identity: client_identity.then(|| (pki.client_cert.clone(), pki.client_key.clone())),
        domain: None,
    }
}

/// A running server task and what stops it.
pub struct Running {
    pub address: SocketAddr,
    scheme: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    pub async fn stop(mut self) {
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

pub async fn create(client: &mut Gate, id: &str, subject: &str, target: &str, bundle_id: &str) {
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

pub fn evaluate_request(id: &str) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        promotion_id: id.to_owned(),
        offline_rekor: true,
        ..Default::default()
    }
}

pub async fn evaluate(client: &mut Gate, id: &str) -> pb::EvaluateResponse {
    client.evaluate(evaluate_request(id)).await.expect("evaluate").into_inner()
}

/// Returns the ids of `tenant`'s decision records in a gate database that no gate has open.
pub fn stored_decision_ids(data_dir: &Path, tenant: &str) -> Vec<String> {
    let store = stella_gate::store::Store::open(data_dir).expect("open the gate database");
    let tenant = stella_access::Tenant::parse(tenant).expect("valid tenant");
    store.for_tenant(&tenant).decision_ids().expect("list decisions")
}

/// Returns the scopes a token for the gate's evaluations needs besides the gate's own: the
/// attestor checks `evidence:verify` on the forwarded token.
pub fn orchestrator_scopes() -> Vec<Scope> {
    vec![
        Scope::PromotionEvaluate,
        Scope::PromotionPreview,
        Scope::DecisionsRead,
        Scope::EvidenceVerify,
    ]
}

/// Imports the staging trust root, registers the `rekor2-dsse-happy-path` evidence and
/// caches its tlog-proof, as the tenant of `client`'s token. Returns the evidence bundle id.
pub async fn prepare_attestor(client: &mut Attestor, vectors: &Path) -> String {
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));

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


/// Connects over TLS to `server`, trusting `ca` and presenting `identity` (certificate and key
/// files) when given.
pub async fn tls_channel(server: &Running, ca: &Path, identity: Option<(&Path, &Path)>) -> Channel {
    let tls = stella_access::client_tls(ca, identity, None).expect("client TLS files");
    Channel::from_shared(server.url())
        .expect("URL")
        .tls_config(tls)
        .expect("TLS configuration")
        .connect()
        .await
        .expect("connect over TLS")
}
