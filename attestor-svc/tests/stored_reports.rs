//! Stored verification reports over real gRPC and RocksDB: the attestor verifies an evidence
//! bundle once, at registration or at the first VerifyEvidence, and serves the stored report
//! (`from_store`) until the trust root set or the imported tiles and proofs change. The evidence
//! is the DSSE happy-path case of the Sigstore conformance suite, proven by a tlog-proof made
//! from the bundle's own inclusion proof.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stella_attestor::attestor::{Attestor, AttestorState};
use stella_attestor::spool::SpoolDir;
use stella_attestor::store::Store;
use stella_attestor::tile_import::streamed_limits;
use stella_bundle::{EvidenceInput, Limits, Subject, TilesInput, TrustSetInput};
use stella_proto::attestor::v1 as pb;
use stella_verify::report::VerificationReport;
use stella_verify::tlog_proof::TlogProof;
use tonic::Code;

use common::{Client, Server, TENANT, far_future, import_request, production_root, read, reason_of, tenant, vectors};

/// SHA-256 of `a.txt`, the artifact every conformance case signs.
const SUBJECT_DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// Lifetime of the short-lived trust root set of the replay test.
const LIFETIME_SECS: i64 = 3;

/// Maximum wait for the attestor's clock to pass that set's expiry.
const EXPIRY_WAIT: Duration = Duration::from_secs(10);

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The conformance case and the archives made from it.
struct Case {
    trusted_root: PathBuf,
    bundle_json: Vec<u8>,
}

impl Case {
    fn load(vectors: &Path) -> Case {
        let dir = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
        Case {
            trusted_root: dir.join("trusted_root.json"),
            bundle_json: read(&dir.join("bundle.sigstore.json")),
        }
    }

    /// Packs a trust root set of `trusted_root` with `version`, expiring at `expires_at`.
    fn trust_set_of(trusted_root: &Path, version: u64, expires_at: i64) -> Vec<u8> {
        stella_bundle::pack_trust_set(&TrustSetInput {
            trusted_root_json: read(trusted_root),
            note_keys: Vec::new(),
            kms_keys: BTreeMap::new(),
            version,
            expires_at,
        })
        .expect("pack trust set")
    }

    /// Packs a trust root set of the case's trusted root.
    fn trust_set(&self, version: u64, expires_at: i64) -> Vec<u8> {
        Case::trust_set_of(&self.trusted_root, version, expires_at)
    }

    /// Packs the bundle's own inclusion proof as the one tlog-proof of a tile bundle.
    fn proof_bundle(&self) -> Vec<u8> {
        let bundle = stella_verify::bundle::parse_bundle(&self.bundle_json).expect("bundle parses");
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

    /// Packs evidence of the bundle for `a.txt`.
    fn evidence(&self) -> Vec<u8> {
        let mut sigstore_bundles = BTreeMap::new();
        sigstore_bundles.insert("provenance".to_owned(), self.bundle_json.clone());
        stella_bundle::pack_evidence(&EvidenceInput {
            sigstore_bundles,
            subjects: vec![Subject {
                name: "a.txt".to_owned(),
                digest: SUBJECT_DIGEST.to_owned(),
            }],
        })
        .expect("pack evidence")
    }
}

async fn import_trust_set(client: &mut Client, archive: Vec<u8>) {
    client
        .import_trust_roots(import_request("trust.tgz", archive))
        .await
        .expect("import trust set");
}

async fn import_proofs(client: &mut Client, archive: Vec<u8>) -> pb::ImportTilesResponse {
    client
        .import_tiles(import_request("proofs.tgz", archive))
        .await
        .expect("import tlog-proof")
        .into_inner()
}

async fn register(client: &mut Client, evidence: Vec<u8>) -> String {
    client
        .register_evidence(import_request("evidence.tgz", evidence))
        .await
        .expect("register evidence")
        .into_inner()
        .bundle_id
}

async fn verify_at(client: &mut Client, bundle_id: &str, verification_time: i64) -> pb::VerifyEvidenceResponse {
    client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
            verification_time,
        })
        .await
        .unwrap_or_else(|status| panic!("VerifyEvidence at {verification_time}: {status:?}"))
        .into_inner()
}

fn trust_set_digest_of(response: &pb::VerifyEvidenceResponse) -> String {
    let report: VerificationReport = serde_json::from_slice(&response.report_json).expect("report JSON");
    report.trust_set_digest
}

#[tokio::test]
async fn registration_verifies_once() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let trust = case.trust_set(1, far_future());

    // Trust set and proofs first: registration verifies, and VerifyEvidence reads the report.
    let stored_dir = tempfile::tempdir().expect("temp dir");
    let stored_server = Server::start(stored_dir.path()).await;
    let mut stored_client = stored_server.client().await;
    import_trust_set(&mut stored_client, trust.clone()).await;
    import_proofs(&mut stored_client, case.proof_bundle()).await;
    let bundle_id = register(&mut stored_client, case.evidence()).await;
    let stored = verify_at(&mut stored_client, &bundle_id, 0).await;
    assert!(
        stored.from_store,
        "registration must have verified and stored the report"
    );
    assert_eq!(stored.outcome, "verified", "{:?}", stored.reason_codes);

    // Registration first, without a trust set: nothing is verified until VerifyEvidence.
    let fresh_dir = tempfile::tempdir().expect("temp dir");
    let fresh_server = Server::start(fresh_dir.path()).await;
    let mut fresh_client = fresh_server.client().await;
    let fresh_id = register(&mut fresh_client, case.evidence()).await;
    assert_eq!(fresh_id, bundle_id);
    import_trust_set(&mut fresh_client, trust).await;
    import_proofs(&mut fresh_client, case.proof_bundle()).await;
    let fresh = verify_at(&mut fresh_client, &bundle_id, 0).await;
    assert!(
        !fresh.from_store,
        "the first VerifyEvidence after a late trust set must verify"
    );

    assert_eq!(stored.report_digest, fresh.report_digest);
    assert_eq!(stored.report_json, fresh.report_json);
    assert_eq!(stored.reason_codes, fresh.reason_codes);

    let again = verify_at(&mut fresh_client, &bundle_id, 0).await;
    assert!(again.from_store);
    assert_eq!(again.report_digest, fresh.report_digest);
    let fetched = fresh_client
        .get_report(pb::GetReportRequest {
            report_digest: again.report_digest.clone(),
        })
        .await
        .expect("get report")
        .into_inner();
    assert_eq!(fetched.report_json, again.report_json);

    stored_server.stop().await;
    fresh_server.stop().await;
}

#[tokio::test]
async fn new_proofs_replace_stored_failure() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust_set(&mut client, case.trust_set(1, far_future())).await;
    let bundle_id = register(&mut client, case.evidence()).await;

    let missing = verify_at(&mut client, &bundle_id, 0).await;
    assert!(missing.from_store, "registration stored the failed report");
    assert_eq!(missing.outcome, "failed");
    assert_eq!(missing.reason_codes, vec!["ERR_REKOR_TILE_MISSING"]);

    let imported = import_proofs(&mut client, case.proof_bundle()).await;
    assert!(!imported.already_imported);
    let verified = verify_at(&mut client, &bundle_id, 0).await;
    assert!(!verified.from_store, "the import must make the stored failure stale");
    assert_eq!(verified.outcome, "verified", "{:?}", verified.reason_codes);
    assert_ne!(verified.report_digest, missing.report_digest);

    let again = verify_at(&mut client, &bundle_id, 0).await;
    assert!(again.from_store);
    assert_eq!(again.report_digest, verified.report_digest);

    // The same bundle again changes nothing in the cache, so the report stays stored.
    let repeated = import_proofs(&mut client, case.proof_bundle()).await;
    assert!(repeated.already_imported);
    let after_repeat = verify_at(&mut client, &bundle_id, 0).await;
    assert!(
        after_repeat.from_store,
        "a repeated import must not make the report stale"
    );
    assert_eq!(after_repeat.report_digest, verified.report_digest);
    server.stop().await;
}

#[tokio::test]
async fn trust_set_change_replaces_stored_success() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;
    import_trust_set(&mut client, case.trust_set(1, far_future())).await;
    import_proofs(&mut client, case.proof_bundle()).await;
    let bundle_id = register(&mut client, case.evidence()).await;
    let verified = verify_at(&mut client, &bundle_id, 0).await;
    assert!(verified.from_store);
    assert_eq!(verified.outcome, "verified", "{:?}", verified.reason_codes);

    // The production root does not hold the case's log key, so under it the entry fails.
    let production = Case::trust_set_of(&production_root(&vectors), 2, far_future());
    import_trust_set(&mut client, production).await;
    let failed = verify_at(&mut client, &bundle_id, 0).await;
    assert!(!failed.from_store, "a new trust set must make the stored success stale");
    assert_eq!(failed.outcome, "failed");
    assert!(!failed.reason_codes.is_empty());
    assert_ne!(trust_set_digest_of(&failed), trust_set_digest_of(&verified));

    // The case's root again, as a new version: another digest, so verified again.
    import_trust_set(&mut client, case.trust_set(3, far_future())).await;
    let restored = verify_at(&mut client, &bundle_id, 0).await;
    assert!(!restored.from_store);
    assert_eq!(restored.outcome, "verified", "{:?}", restored.reason_codes);
    server.stop().await;
}

#[tokio::test]
async fn stored_report_survives_restart() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let authority = Arc::clone(&server.authority);
    let mut client = server.client().await;
    import_trust_set(&mut client, case.trust_set(1, far_future())).await;
    import_proofs(&mut client, case.proof_bundle()).await;
    let bundle_id = register(&mut client, case.evidence()).await;
    let before = verify_at(&mut client, &bundle_id, 0).await;
    assert!(before.from_store);
    drop(client);
    server.stop().await;

    let restarted = Server::start_configured(dir.path(), Limits::default(), None, authority).await;
    let mut client = restarted.client().await;
    let after = verify_at(&mut client, &bundle_id, 0).await;
    assert!(after.from_store, "the index must persist across a restart");
    assert_eq!(after.report_digest, before.report_digest);
    assert_eq!(after.report_json, before.report_json);
    drop(client);
    restarted.stop().await;

    // A forced verification of the same inputs gives the stored bytes.
    let store = Store::open(dir.path()).expect("open store");
    let spool = SpoolDir::open(dir.path()).expect("open spool");
    let state = Arc::new(AttestorState::new(
        store,
        Limits::default(),
        streamed_limits(1 << 30),
        spool,
    ));
    let attestor = Attestor::for_tenant(&state, &tenant(TENANT));
    let forced = attestor
        .verify_evidence_again(&bundle_id, unix_now())
        .expect("forced verification");
    assert!(!forced.from_store);
    assert_eq!(forced.report_digest, before.report_digest);
    assert_eq!(forced.report_json, before.report_json);
}

#[tokio::test]
async fn other_tenant_never_hits_index() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let trust = case.trust_set(1, far_future());
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;

    let mut first = server.client_of("tenant-one").await;
    import_trust_set(&mut first, trust.clone()).await;
    import_proofs(&mut first, case.proof_bundle()).await;
    let bundle_id = register(&mut first, case.evidence()).await;
    let stored = verify_at(&mut first, &bundle_id, 0).await;
    assert!(stored.from_store);

    // Without a trust set of its own, the second tenant gets no report at all.
    let mut second = server.client_of("tenant-two").await;
    assert_eq!(register(&mut second, case.evidence()).await, bundle_id);
    let status = second
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.clone(),
            verification_time: 0,
        })
        .await
        .expect_err("no trust set");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_MISSING");

    // With the same trust set and the same import count, the index key differs only in the
    // tenant, and the second tenant still verifies for itself.
    import_trust_set(&mut second, trust).await;
    import_proofs(&mut second, case.proof_bundle()).await;
    let own = verify_at(&mut second, &bundle_id, 0).await;
    assert!(!own.from_store, "another tenant's index entry must not be found");
    assert_eq!(own.report_digest, stored.report_digest);
    server.stop().await;
}

#[tokio::test]
async fn replay_after_expiry_not_stored() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let issued_at = unix_now();
    let expires_at = issued_at + LIFETIME_SECS;
    import_trust_set(&mut client, case.trust_set(1, expires_at)).await;
    import_proofs(&mut client, case.proof_bundle()).await;
    let bundle_id = register(&mut client, case.evidence()).await;
    let within = verify_at(&mut client, &bundle_id, issued_at).await;
    assert!(within.from_store);
    assert_eq!(within.outcome, "verified", "{:?}", within.reason_codes);

    let started = Instant::now();
    while unix_now() <= expires_at {
        assert!(
            started.elapsed() < EXPIRY_WAIT,
            "the clock did not pass the trust set's expiry {expires_at} within {EXPIRY_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for at in [0, expires_at + 1, 0] {
        let expired = verify_at(&mut client, &bundle_id, at).await;
        assert!(
            !expired.from_store,
            "at {at}: an expired trust set must never get the stored report"
        );
        assert_eq!(expired.outcome, "failed", "at {at}");
        assert_eq!(expired.reason_codes, vec!["ERR_TRUST_ROOT_EXPIRED"], "at {at}");
    }

    let replayed = verify_at(&mut client, &bundle_id, expires_at).await;
    assert!(
        replayed.from_store,
        "a time within the lifetime may use the stored report"
    );
    assert_eq!(replayed.report_digest, within.report_digest);
    server.stop().await;
}
