//! VerifyBundleStream over real gRPC and RocksDB: responses in request order, failed responses
//! for bad requests without ending the call, cache-only verification by default, the bundle's own
//! inclusion proof on request, and the token's tenant and scope. The bundles are the Rekor v2
//! cases of the Sigstore conformance suite, verified under their own trusted root.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stella_access::Scope;
use stella_bundle::{TilesInput, TrustSetInput};
use stella_proto::attestor::v1 as pb;
use stella_verify::report::{EntryReport, ProofSource};
use stella_verify::tlog_proof::TlogProof;
use tonic::Code;

use common::{Client, Server, TENANT, import_request, read, reason_of, vectors};

/// SHA-256 of `a.txt`, the artifact every conformance case signs.
const SUBJECT_DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// The conformance cases used here.
struct Cases {
    trusted_root: PathBuf,
    dsse: Vec<u8>,
}

impl Cases {
    fn load(vectors: &Path) -> Cases {
        let dir = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
        Cases {
            trusted_root: dir.join("trusted_root.json"),
            dsse: read(&dir.join("bundle.sigstore.json")),
        }
    }

    /// Packs a trust root set of the cases' trusted root.
    fn trust_set(&self) -> Vec<u8> {
        stella_bundle::pack_trust_set(&TrustSetInput {
            trusted_root_json: read(&self.trusted_root),
            note_keys: Vec::new(),
            kms_keys: BTreeMap::new(),
            version: 1,
            expires_at: common::far_future(),
        })
        .expect("pack trust set")
    }

    /// Packs the DSSE bundle's own inclusion proof as the one tlog-proof of a tile bundle.
    fn proof_bundle(&self) -> Vec<u8> {
        let bundle = stella_verify::bundle::parse_bundle(&self.dsse).expect("bundle parses");
        let entry = bundle.tlog_entries.first().expect("one tlog entry");
        let own = entry.inclusion_proof.as_ref().expect("inclusion proof");
        let proof = TlogProof {
            extra: None,
            index: own.log_index,
            hashes: own.hashes.clone(),
            checkpoint: own.checkpoint.as_bytes().to_vec(),
        };
        stella_bundle::pack_tiles(&TilesInput {
            logs: Vec::new(),
            tlog_proofs: vec![proof.to_bytes()],
        })
        .expect("pack tlog-proof")
    }
}

fn request(
    sequence: u64,
    bundle_json: &[u8],
    artifact_digest: &str,
    allow_bundle_proof: bool,
) -> pb::VerifyBundleRequest {
    pb::VerifyBundleRequest {
        sequence,
        bundle_json: bundle_json.to_vec(),
        artifact_digest: artifact_digest.to_owned(),
        allow_bundle_proof,
    }
}

/// Sends `requests` in one call and returns every response, or the status that ended the call.
async fn stream(
    client: &mut Client,
    requests: Vec<pb::VerifyBundleRequest>,
) -> Result<Vec<pb::VerifyBundleResponse>, tonic::Status> {
    let mut responses = client
        .verify_bundle_stream(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut received = Vec::new();
    while let Some(response) = responses.message().await? {
        received.push(response);
    }
    Ok(received)
}

fn entry_of(response: &pb::VerifyBundleResponse) -> EntryReport {
    serde_json::from_slice(&response.entry_report_json).expect("entry report JSON")
}

/// Starts an attestor whose tenant [`TENANT`] has the cases' trust root set.
async fn attestor_with_trust(cases: &Cases, data_dir: &Path) -> (Server, Client) {
    let server = Server::start(data_dir).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", cases.trust_set()))
        .await
        .expect("import trust set");
    (server, client)
}

#[tokio::test]
async fn bundle_stream_responds_in_order() {
    let Some(vectors) = vectors() else { return };
    let cases = Cases::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = attestor_with_trust(&cases, dir.path()).await;

    // Sequence numbers run downward, so responses sorted by sequence would fail the check.
    // Every third request fails fast (it does not parse) while its neighbours verify.
    let count = 60_u64;
    let requests: Vec<pb::VerifyBundleRequest> = (0..count)
        .map(|position| {
            let sequence = 1_000 - position;
            if position % 3 == 1 {
                request(sequence, b"{\"not\": \"a bundle\"}", "", true)
            } else {
                request(sequence, &cases.dsse, SUBJECT_DIGEST, true)
            }
        })
        .collect();
    let responses = stream(&mut client, requests).await.expect("stream");

    let sequences: Vec<u64> = responses.iter().map(|response| response.sequence).collect();
    let expected: Vec<u64> = (0..count).map(|position| 1_000 - position).collect();
    assert_eq!(sequences, expected);
    for (position, response) in responses.iter().enumerate() {
        let expected_outcome = if position % 3 == 1 { "failed" } else { "verified" };
        assert_eq!(
            response.outcome, expected_outcome,
            "position {position}: {:?}",
            response.reason_codes
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_fail_and_stream_goes_on() {
    let Some(vectors) = vectors() else { return };
    let cases = Cases::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = attestor_with_trust(&cases, dir.path()).await;

    let oversized = vec![b' '; stella_attestor::bundle_stream::MAX_BUNDLE_JSON_BYTES + 1];
    let other_digest = format!("sha256:{}", "0".repeat(64));
    let requests = vec![
        request(1, b"not JSON", "", true),
        request(2, &oversized, "", true),
        request(3, &cases.dsse, "sha256:ABC", true),
        request(4, &cases.dsse, &other_digest, true),
        request(5, &cases.dsse, SUBJECT_DIGEST, true),
    ];
    let responses = stream(&mut client, requests).await.expect("stream");
    assert_eq!(responses.len(), 5);

    let by_sequence: BTreeMap<u64, &pb::VerifyBundleResponse> =
        responses.iter().map(|response| (response.sequence, response)).collect();
    for sequence in 1..=4 {
        assert_eq!(by_sequence[&sequence].outcome, "failed", "request {sequence}");
        assert!(!by_sequence[&sequence].reason_codes.is_empty(), "request {sequence}");
    }
    assert_eq!(by_sequence[&2].reason_codes, vec!["ERR_BUNDLE_TOO_LARGE"]);
    assert_eq!(by_sequence[&3].reason_codes, vec!["ERR_SUBJECT_MISMATCH"]);
    assert!(
        entry_of(by_sequence[&3]).detail[0].contains("artifact_digest"),
        "{:?}",
        entry_of(by_sequence[&3]).detail
    );
    assert_eq!(by_sequence[&4].reason_codes, vec!["ERR_SUBJECT_MISMATCH"]);
    assert_eq!(
        by_sequence[&5].outcome, "verified",
        "{:?}",
        by_sequence[&5].reason_codes
    );
    server.stop().await;
}

#[tokio::test]
async fn cache_only_default_fails_closed() {
    let Some(vectors) = vectors() else { return };
    let cases = Cases::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = attestor_with_trust(&cases, dir.path()).await;

    let responses = stream(&mut client, vec![request(1, &cases.dsse, SUBJECT_DIGEST, false)])
        .await
        .expect("stream");
    let [response] = responses.as_slice() else {
        panic!("expected one response, got {responses:?}");
    };
    assert_eq!(response.outcome, "failed");
    assert_eq!(response.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);
    let entry = entry_of(response);
    assert!(entry.tlog.is_none(), "no proof may be recorded: {:?}", entry.tlog);
    server.stop().await;
}

#[tokio::test]
async fn bundle_proof_verifies_conformance_bundle() {
    let Some(vectors) = vectors() else { return };
    let cases = Cases::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, mut client) = attestor_with_trust(&cases, dir.path()).await;

    let responses = stream(&mut client, vec![request(1, &cases.dsse, SUBJECT_DIGEST, true)])
        .await
        .expect("stream");
    let [response] = responses.as_slice() else {
        panic!("expected one response, got {responses:?}");
    };
    assert_eq!(response.outcome, "verified", "{:?}", response.reason_codes);
    assert!(response.reason_codes.is_empty());
    let entry = entry_of(response);
    let tlog = entry.tlog.as_ref().expect("tlog reference");
    assert_eq!(tlog.proof_source, ProofSource::Bundle);
    assert!(
        entry
            .subjects
            .iter()
            .any(|subject| format!("sha256:{}", subject.sha256) == SUBJECT_DIGEST)
    );

    // With the proof imported, the cache proves the entry even when the bundle's proof is allowed.
    client
        .import_tiles(import_request("proofs.tgz", cases.proof_bundle()))
        .await
        .expect("import tlog-proof");
    let responses = stream(
        &mut client,
        vec![
            request(2, &cases.dsse, SUBJECT_DIGEST, true),
            request(3, &cases.dsse, SUBJECT_DIGEST, false),
        ],
    )
    .await
    .expect("stream");
    for response in &responses {
        assert_eq!(
            response.outcome, "verified",
            "request {}: {:?}",
            response.sequence, response.reason_codes
        );
        let entry = entry_of(response);
        assert_eq!(
            entry.tlog.expect("tlog reference").proof_source,
            ProofSource::TlogProof,
            "request {}",
            response.sequence
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bundle_stream_checks_tenant_and_scope() {
    let Some(vectors) = vectors() else { return };
    let cases = Cases::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _client) = attestor_with_trust(&cases, dir.path()).await;
    let requests = || vec![request(1, &cases.dsse, SUBJECT_DIGEST, true)];

    let read_only = server
        .authority
        .token_with_scopes(TENANT, &[Scope::ReportsRead, Scope::EvidenceImport]);
    let mut client = server.client_with_token(&read_only).await;
    let denied = stream(&mut client, requests()).await.expect_err("scope missing");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("evidence:verify"), "{}", denied.message());

    // Another tenant has no trust root set, and the first tenant's set is not used for it.
    let mut other_tenant = server.client_of("other-tenant").await;
    let missing = stream(&mut other_tenant, requests()).await.expect_err("no trust set");
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&missing), "ERR_TRUST_ROOT_MISSING");

    let mut anonymous = stella_proto::attestor::v1::attestor_client::AttestorClient::new(server.channel().await);
    let unauthenticated = anonymous
        .verify_bundle_stream(tokio_stream::iter(requests()))
        .await
        .expect_err("no token");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    server.stop().await;
}
