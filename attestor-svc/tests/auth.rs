//! Authority tokens on every attestor call, over real gRPC: each rejection gives the right status
//! code and a message that names the failed check, every call needs its own scope, and no log
//! line contains a token.
//!
//! The tests share one process-wide log capture ([`captured_log`]), because the attestor runs on
//! tasks of this process and `tracing` delivers their events to the global subscriber.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use stella_access::Scope;
use stella_access::dev::{DevAuthority, all_scopes};
use stella_authority::{Claims, sign_jws};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use tonic::{Code, Status};

use common::{Client, Server, TENANT, TestAuthority, import_request, reason_of, start_message};

/// Log lines of every test in this binary.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the process-wide log capture on first use and returns it.
fn captured_log() -> CapturedLog {
    static LOG: OnceLock<CapturedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        log
    })
    .clone()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Every attestor call and the scope it needs.
const RPC_SCOPES: [(&str, Scope); 10] = [
    ("ImportTrustRoots", Scope::TrustImport),
    ("ImportTiles", Scope::TilesImport),
    ("ImportTilesStream", Scope::TilesImport),
    ("RegisterEvidence", Scope::EvidenceImport),
    ("VerifyEvidence", Scope::EvidenceVerify),
    ("VerifyInclusion", Scope::EvidenceVerify),
    ("VerifyInclusionStream", Scope::EvidenceVerify),
    ("ProveConsistency", Scope::EvidenceVerify),
    ("GetReport", Scope::ReportsRead),
    ("ListCheckpoints", Scope::ReportsRead),
];

/// Makes the call `rpc` with a small request and returns its status, or `Ok` when it succeeded.
async fn call(client: &mut Client, rpc: &str) -> Result<(), Status> {
    let not_an_archive = || import_request("bundle.tgz", b"not an archive".to_vec());
    match rpc {
        "ImportTrustRoots" => client.import_trust_roots(not_an_archive()).await.map(drop),
        "ImportTiles" => client.import_tiles(not_an_archive()).await.map(drop),
        "ImportTilesStream" => {
            let messages = vec![start_message("bundle.tgz", 0)];
            client.import_tiles_stream(tokio_stream::iter(messages)).await.map(drop)
        }
        "RegisterEvidence" => client.register_evidence(not_an_archive()).await.map(drop),
        "VerifyEvidence" => client
            .verify_evidence(pb::VerifyEvidenceRequest {
                bundle_id: format!("sha256:{}", "0".repeat(64)),
                verification_time: 0,
            })
            .await
            .map(drop),
        "VerifyInclusion" => client
            .verify_inclusion(pb::VerifyInclusionRequest {
                origin: "log.example".to_owned(),
                index: 0,
                entry: b"entry".to_vec(),
                sequence: 0,
            })
            .await
            .map(drop),
        "VerifyInclusionStream" => client
            .verify_inclusion_stream(tokio_stream::iter(Vec::<pb::VerifyInclusionRequest>::new()))
            .await
            .map(drop),
        "ProveConsistency" => client
            .prove_consistency(pb::ProveConsistencyRequest {
                origin: "log.example".to_owned(),
                old_size: 1,
                new_size: 2,
            })
            .await
            .map(drop),
        "GetReport" => client
            .get_report(pb::GetReportRequest {
                report_digest: format!("sha256:{}", "0".repeat(64)),
            })
            .await
            .map(drop),
        "ListCheckpoints" => client
            .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
            .await
            .map(drop),
        other => panic!("unknown call {other}"),
    }
}

/// Checks that `status` is an UNAUTHENTICATED rejection of `rpc` by `check`.
fn assert_unauthenticated(status: &Status, rpc: &str, check: &str) {
    assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {}", status.message());
    assert_eq!(reason_of(status), "ERR_AUTH_UNAUTHENTICATED", "{rpc}: {}", status.message());
    let prefix = format!("ERR_AUTH_UNAUTHENTICATED: {rpc}: {check} check failed: ");
    assert!(
        status.message().starts_with(&prefix),
        "expected {prefix:?} at the start of {:?}",
        status.message()
    );
}

/// Returns the header and payload segments of a token.
fn segments(token: &str) -> (&str, &str) {
    let mut parts = token.split('.');
    let header = parts.next().expect("header");
    let payload = parts.next().expect("payload");
    (header, payload)
}

fn encode_json(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"))
}

/// Builds the bad tokens of the rejection table: (case, token, check named in the message).
fn bad_tokens(authority: &DevAuthority, jwks_json: &str) -> Vec<(&'static str, String, &'static str)> {
    let valid = authority.token(TENANT, &all_scopes());
    let (_, payload) = segments(&valid);
    let payload_json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("payload base64url")).expect("payload JSON");
    let kid = authority.kid();

    let none_header = encode_json(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}));
    let alg_none = format!("{none_header}.{payload}.");

    // The classic algorithm confusion: HMAC keyed with the public JWKS, which anyone can read.
    let hs_header = encode_json(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": kid}));
    let signing_input = format!("{hs_header}.{payload}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwks_json.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    let hs256 = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));

    let payload_bytes = serde_json::to_vec(&payload_json).expect("JSON");
    let unknown_kid_header = serde_json::to_vec(&serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "unknown-key"}))
        .expect("JSON");
    let unknown_kid = sign_jws(authority.signing_key(), &unknown_kid_header, &payload_bytes);

    // Signed by another key under the trusted key's kid.
    let impostor = DevAuthority::generate();
    let trusted_kid_header =
        serde_json::to_vec(&serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid})).expect("JSON");
    let bad_signature = sign_jws(impostor.signing_key(), &trusted_kid_header, &payload_bytes);

    let with = |change: &dyn Fn(&mut Claims)| {
        let mut claims = authority.claims(TENANT, &all_scopes());
        change(&mut claims);
        authority.token_with(&claims)
    };
    let wrong_issuer = with(&|claims| claims.issuer = "another-authority".to_owned());
    let wrong_audience = with(&|claims| claims.audience = vec!["stella-gate".to_owned()]);
    let expired = with(&|claims| {
        claims.issued_at = now() - 7200;
        claims.not_before = now() - 7200;
        claims.expires_at = now() - 120;
    });
    let not_yet_valid = with(&|claims| claims.not_before = now() + 600);

    vec![
        ("malformed", "abc.def".to_owned(), "format"),
        ("alg none", alg_none, "alg"),
        ("alg HS256", hs256, "alg"),
        ("unknown kid", unknown_kid, "kid"),
        ("bad signature", bad_signature, "signature"),
        ("wrong issuer", wrong_issuer, "iss"),
        ("wrong audience", wrong_audience, "aud"),
        ("expired", expired, "exp"),
        ("not yet valid", not_yet_valid, "nbf"),
    ]
}

#[tokio::test]
async fn missing_token_unauthenticated() {
    captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = AttestorClient::new(server.channel().await);

    let status = client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect_err("no token");
    assert_unauthenticated(&status, "ListCheckpoints", "token");
    assert!(status.message().contains("authorization: Bearer"), "{}", status.message());
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_rejected_by_check() {
    let log = captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let jwks_json = std::fs::read_to_string(&server.authority.jwks_path).expect("read JWKS");

    let tokens = bad_tokens(&server.authority.authority, &jwks_json);
    for (case, token, check) in &tokens {
        let mut client = server.client_with_token(token).await;
        let status = client
            .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
            .await
            .expect_err(case);
        assert_unauthenticated(&status, "ListCheckpoints", check);
        assert!(!status.message().contains(token.as_str()), "{case}: message repeats the token");
    }

    // The rejections are logged, and no log line contains a token or its signature.
    let text = log.text();
    assert!(text.contains("call rejected"), "{text}");
    for (case, token, _) in &tokens {
        assert!(!text.contains(token.as_str()), "{case}: the log holds the token");
        if let Some(signature) = token.rsplit('.').next().filter(|signature| signature.len() >= 16) {
            assert!(!text.contains(signature), "{case}: the log holds the token's signature");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn clock_skew_accepts_near_nbf() {
    captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let authority = &server.authority.authority;

    // 30 s ahead is within the 60 s skew; 600 s ahead is not (see bad_tokens_rejected_by_check).
    let mut claims = authority.claims(TENANT, &all_scopes());
    claims.not_before = now() + 30;
    let mut client = server.client_with_token(&authority.token_with(&claims)).await;
    client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect("nbf within the clock skew");

    // Likewise a token that expired 30 s ago.
    let mut claims = authority.claims(TENANT, &all_scopes());
    claims.issued_at = now() - 600;
    claims.not_before = now() - 600;
    claims.expires_at = now() - 30;
    let mut client = server.client_with_token(&authority.token_with(&claims)).await;
    client
        .list_checkpoints(pb::ListCheckpointsRequest { origin: None })
        .await
        .expect("exp within the clock skew");
    server.stop().await;
}

#[tokio::test]
async fn each_call_needs_its_scope() {
    captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;

    for (rpc, scope) in RPC_SCOPES {
        // Every scope but the one the call needs.
        let others: Vec<Scope> = all_scopes().into_iter().filter(|other| *other != scope).collect();
        let mut client = server
            .client_with_token(&server.authority.token_with_scopes(TENANT, &others))
            .await;
        let status = call(&mut client, rpc).await.expect_err(rpc);
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {}", status.message());
        assert_eq!(reason_of(&status), "ERR_AUTH_PERMISSION_DENIED", "{rpc}: {}", status.message());
        let prefix = format!("ERR_AUTH_PERMISSION_DENIED: {rpc}: scope check failed: ");
        assert!(status.message().starts_with(&prefix), "{rpc}: {}", status.message());
        assert!(status.message().contains(scope.as_str()), "{rpc}: {}", status.message());

        // Only that scope: the call passes authorization. It may still fail on its request.
        let mut client = server
            .client_with_token(&server.authority.token_with_scopes(TENANT, &[scope]))
            .await;
        if let Err(status) = call(&mut client, rpc).await {
            assert!(
                !matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated),
                "{rpc} with scope {}: {status:?}",
                scope.as_str()
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn streams_rejected_before_first_message() {
    captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = AttestorClient::new(server.channel().await);

    // The request streams never send a message: a server that read before checking the token
    // would wait forever.
    let upload = tokio_stream::pending::<pb::ImportChunk>();
    let status = tokio::time::timeout(Duration::from_secs(10), client.import_tiles_stream(upload))
        .await
        .expect("rejected without reading the upload")
        .expect_err("no token");
    assert_unauthenticated(&status, "ImportTilesStream", "token");

    let requests = tokio_stream::pending::<pb::VerifyInclusionRequest>();
    let status = tokio::time::timeout(Duration::from_secs(10), client.verify_inclusion_stream(requests))
        .await
        .expect("rejected without reading a request")
        .expect_err("no token");
    assert_unauthenticated(&status, "VerifyInclusionStream", "token");

    let spool = dir.path().join(stella_attestor::spool::INCOMING_DIR);
    let spooled = std::fs::read_dir(&spool).expect("spool directory").count();
    assert_eq!(spooled, 0, "nothing spooled in {}", spool.display());
    server.stop().await;
}

#[tokio::test]
async fn accepted_import_logs_caller() {
    let log = captured_log();
    let dir = tempfile::tempdir().expect("temp dir");
    let authority = Arc::new(TestAuthority::generate());
    let server = Server::start_configured(dir.path(), stella_bundle::Limits::default(), None, Arc::clone(&authority)).await;
    let mut claims = authority.authority.claims("logged-tenant", &[Scope::TrustImport]);
    claims.subject = "release-bot@logged-tenant".to_owned();
    claims.token_id = "token-id-for-the-log".to_owned();
    let token = authority.authority.token_with(&claims);
    let mut client = server.client_with_token(&token).await;

    let status = client
        .import_trust_roots(import_request("garbage.tgz", b"not an archive".to_vec()))
        .await
        .expect_err("not an archive");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());

    let text = log.text();
    let accepted = text
        .lines()
        .find(|line| line.contains("import call accepted") && line.contains("token-id-for-the-log"))
        .unwrap_or_else(|| panic!("no accepted-import line in {text}"));
    assert!(accepted.contains("tenant=logged-tenant"), "{accepted}");
    assert!(accepted.contains("subject=release-bot@logged-tenant"), "{accepted}");
    assert!(accepted.contains("ImportTrustRoots"), "{accepted}");
    assert!(!text.contains(&token), "the log holds the token");
    server.stop().await;
}
