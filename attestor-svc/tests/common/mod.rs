//! Shared helpers of the attestor's gRPC tests: the test vectors, trust set packing, a
//! development Authority that mints the tokens of every call, and an attestor served on a
//! loopback port with RocksDB in a temporary directory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stella_access::dev::{DevAuthority, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, Authenticator, BearerToken, DEFAULT_ISSUER, Scope, Tenant};
use stella_attestor::AttestorConfig;
use stella_attestor::attestor::AttestorState;
use stella_attestor::service::AttestorService;
use stella_attestor::spool::SpoolDir;
use stella_attestor::store::Store;
use stella_attestor::tile_import::streamed_limits;
use stella_bundle::{Limits, LogTilesInput, TilesInput, TrustSetInput};
use stella_proto::REASON_CODE_METADATA_KEY;
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_proto::attestor::v1::attestor_server::AttestorServer;
use stella_proto::attestor::v1::import_chunk::Part;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, ServerTlsConfig};

pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Origin of the 15-entry log that Tessera's POSIX driver wrote (`vectors/tessera-log`).
pub const TESSERA_ORIGIN: &str = "example.com/log/testdata";

/// Verifier key of the Tessera log.
pub const TESSERA_VKEY: &str = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// Tenant of the token that [`Server::client`] attaches to every call.
pub const TENANT: &str = "acme";

/// A gRPC client of the attestor that attaches a bearer token to every call.
pub type Client = AttestorClient<InterceptedService<Channel, BearerToken>>;

/// Size of the data messages that [`stream_import`] sends.
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;

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

/// Returns a Unix time 30 days from now, for trust sets that must not expire during a test.
pub fn far_future() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 24 * 3600
}

/// Returns the path of the production Sigstore trusted root among the vectors.
pub fn production_root(vectors: &Path) -> PathBuf {
    vectors.join("sigstore-trust-roots/production.trusted_root.json")
}

/// Packs a trust set of the trusted root at `trusted_root` plus `note_keys`, expiring in 30 days.
pub fn pack_trust_set(trusted_root: &Path, note_keys: &[String], version: u64) -> Vec<u8> {
    stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: read(trusted_root),
        note_keys: note_keys.to_vec(),
        kms_keys: BTreeMap::new(),
        version,
        expires_at: far_future(),
    })
    .expect("pack trust set")
}

/// Packs a trust set of the production Sigstore root and the Tessera log's key.
pub fn tessera_trust_set(vectors: &Path) -> Vec<u8> {
    pack_trust_set(&production_root(vectors), &[TESSERA_VKEY.to_owned()], 1)
}

/// Packs the Tessera log at `size` (1..=15): its checkpoint, partial level-0 tile and
/// partial entry bundle.
pub fn tessera_tiles(vectors: &Path, size: u64) -> Vec<u8> {
    let log = vectors.join("tessera-log");
    let mut tiles = BTreeMap::new();
    tiles.insert(
        format!("tile/0/000.p/{size}"),
        read(&log.join(format!("tile/0/000.p/{size}"))),
    );
    tiles.insert(
        format!("tile/entries/000.p/{size}"),
        read(&log.join(format!("tile/entries/000.p/{size}"))),
    );
    stella_bundle::pack_tiles(&TilesInput {
        logs: vec![LogTilesInput {
            checkpoint: read(&log.join(format!("checkpoint.{size}"))),
            tiles,
        }],
        tlog_proofs: Vec::new(),
    })
    .expect("pack tiles")
}

pub fn import_request(file_name: &str, archive: Vec<u8>) -> pb::ImportBundleRequest {
    pb::ImportBundleRequest {
        file_name: file_name.to_owned(),
        archive,
    }
}

/// Returns the reason code that a failed call carries in its metadata, or `<none>`.
pub fn reason_of(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(REASON_CODE_METADATA_KEY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("<none>")
        .to_owned()
}

/// Returns the first message of an ImportTilesStream upload.
pub fn start_message(file_name: &str, total_bytes: u64) -> pb::ImportChunk {
    pb::ImportChunk {
        part: Some(Part::Start(pb::ImportStart {
            file_name: file_name.to_owned(),
            total_bytes,
        })),
    }
}

/// Returns a data message of an ImportTilesStream upload.
pub fn data_message(data: &[u8]) -> pb::ImportChunk {
    pb::ImportChunk {
        part: Some(Part::Data(data.to_vec())),
    }
}

/// Streams `archive` to ImportTilesStream in chunks of [`STREAM_CHUNK_BYTES`], declaring its size.
pub async fn stream_import(
    client: &mut Client,
    file_name: &str,
    archive: &[u8],
) -> Result<pb::ImportTilesResponse, tonic::Status> {
    let total_bytes = u64::try_from(archive.len()).expect("size");
    let mut messages = vec![start_message(file_name, total_bytes)];
    messages.extend(archive.chunks(STREAM_CHUNK_BYTES).map(data_message));
    client
        .import_tiles_stream(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Returns `name` as a tenant.
pub fn tenant(name: &str) -> Tenant {
    Tenant::parse(name).expect("valid tenant")
}

/// A development Authority whose JWKS is written to a file, as an operator deploys it.
pub struct TestAuthority {
    pub authority: DevAuthority,
    /// Keeps the JWKS file until the authority is dropped.
    _dir: tempfile::TempDir,
    pub jwks_path: PathBuf,
}

impl TestAuthority {
    /// Generates a key and writes its JWKS file.
    pub fn generate() -> TestAuthority {
        let authority = DevAuthority::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        let jwks_path = dir.path().join("authority.jwks.json");
        authority.write_jwks(&jwks_path);
        TestAuthority {
            authority,
            _dir: dir,
            jwks_path,
        }
    }

    /// Loads the JWKS file the way the binary does, for the attestor's audience, with the
    /// default 60 s clock skew.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator::load(&self.jwks_path, DEFAULT_ISSUER, AUDIENCE_ATTESTOR, 60).expect("load JWKS")
    }

    /// Mints a token for `tenant` with every scope.
    pub fn token(&self, tenant: &str) -> String {
        self.authority.token(tenant, &all_scopes())
    }

    /// Mints a token for `tenant` with `scopes`.
    pub fn token_with_scopes(&self, tenant: &str, scopes: &[Scope]) -> String {
        self.authority.token(tenant, scopes)
    }
}

/// Wraps a token for a client.
pub fn bearer(token: &str) -> BearerToken {
    BearerToken::new(token).expect("token is valid metadata")
}

/// An attestor serving on a loopback port until stopped.
pub struct Server {
    pub address: SocketAddr,
    /// The Authority whose tokens the attestor accepts.
    pub authority: Arc<TestAuthority>,
    /// The attestor's state, kept only by [`Server::start_in_process`].
    state: Option<Arc<AttestorState>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts the attestor through `stella_attestor::run`, as the binary does, with the default
    /// limits, plaintext on loopback.
    pub async fn start(data_dir: &Path) -> Server {
        Server::start_with_limits(data_dir, Limits::default()).await
    }

    /// Starts the attestor through `stella_attestor::run` with `limits` on whole archives.
    pub async fn start_with_limits(data_dir: &Path, limits: Limits) -> Server {
        Server::start_configured(data_dir, limits, None, Arc::new(TestAuthority::generate())).await
    }

    /// Starts the attestor through `stella_attestor::run` with `limits`, TLS when `tls` is set,
    /// accepting the tokens of `authority`.
    pub async fn start_configured(
        data_dir: &Path,
        limits: Limits,
        tls: Option<ServerTlsConfig>,
        authority: Arc<TestAuthority>,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = AttestorConfig {
            data_dir: data_dir.to_path_buf(),
            limits,
            authenticator: authority.authenticator(),
            tls,
        };
        let task = tokio::spawn(stella_attestor::run(listener, config, async {
            let _ = stopped.await;
        }));
        Server {
            address,
            authority,
            state: None,
            stop: Some(stop),
            task,
        }
    }

    /// Starts the attestor from an [`AttestorState`] that the test keeps, so it can inspect the
    /// store while the server runs. Streamed archives may have up to `max_stream_bytes` bytes.
    pub async fn start_in_process(data_dir: &Path, max_stream_bytes: u64) -> Server {
        let authority = Arc::new(TestAuthority::generate());
        let store = Store::open(data_dir).expect("open store");
        let spool = SpoolDir::open(data_dir).expect("open spool");
        let state = Arc::new(AttestorState::new(
            store,
            Limits::default(),
            streamed_limits(max_stream_bytes),
            spool,
        ));
        let service = AttestorServer::new(AttestorService::new(Arc::clone(&state), authority.authenticator()))
            .max_decoding_message_size(512 * 1024 * 1024);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                })
                .await?;
            Ok(())
        });
        Server {
            address,
            authority,
            state: Some(state),
            stop: Some(stop),
            task,
        }
    }

    /// Connects a plaintext channel. The server may still be starting, so the connection is
    /// retried for up to 5 s.
    pub async fn channel(&self) -> Channel {
        for _ in 0..50 {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.address))
                .expect("URI")
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot connect to the attestor at {}", self.address);
    }

    /// Connects a client of tenant [`TENANT`] with every scope, accepting responses up to
    /// 64 MiB.
    pub async fn client(&self) -> Client {
        self.client_with_token(&self.authority.token(TENANT)).await
    }

    /// Connects a client of `tenant` with every scope.
    pub async fn client_of(&self, tenant: &str) -> Client {
        self.client_with_token(&self.authority.token(tenant)).await
    }

    /// Connects a client that attaches `token` to every call.
    pub async fn client_with_token(&self, token: &str) -> Client {
        AttestorClient::with_interceptor(self.channel().await, bearer(token))
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// Returns the store of an attestor started with [`Server::start_in_process`], as a view of
    /// tenant [`TENANT`]. Its key counters cover every tenant.
    pub fn store(&self) -> Store {
        self.state
            .as_ref()
            .expect("the store is reachable only from an in-process attestor")
            .store()
            .for_tenant(&tenant(TENANT))
    }

    /// Stops the server and checks that it exits cleanly within 10 s.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("attestor stops within 10 s")
            .expect("attestor task joins");
        result.expect("attestor exits cleanly");
    }
}
