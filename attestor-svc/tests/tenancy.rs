//! Tenants walled off over real gRPC: tenant A imports a trust root set, tiles, a tlog-proof
//! and evidence, and verifies. Tenant B, with a valid token and every scope, reads none of it and
//! gets the same NOT_FOUND status for A's ids as for ids that exist nowhere.

mod common;

use std::collections::BTreeMap;

use stella_bundle::{EvidenceInput, Subject, TilesInput};
use stella_proto::attestor::v1 as pb;
use stella_verify::tlog_proof::TlogProof;
use tonic::{Code, Status};

use common::{
    Client, Server, TESSERA_ORIGIN, TESSERA_VKEY, import_request, pack_trust_set, read, reason_of, tessera_tiles,
    vectors,
};

const TENANT_A: &str = "tenant-a";
const TENANT_B: &str = "tenant-b";

/// The first entry of the Tessera log, as its test data spells it.
const TESSERA_FIRST_ENTRY: &[u8] = b"one";

fn tlog_proof_from_bundle(bundle_json: &[u8]) -> Vec<u8> {
    let bundle = stella_verify::bundle::parse_bundle(bundle_json).expect("bundle parses");
    let entry = bundle.tlog_entries.first().expect("one tlog entry");
    let proof = entry.inclusion_proof.as_ref().expect("inclusion proof");
    TlogProof {
        extra: None,
        index: proof.log_index,
        hashes: proof.hashes.clone(),
        checkpoint: proof.checkpoint.as_bytes().to_vec(),
    }
    .to_bytes()
}

async fn verify_evidence(client: &mut Client, bundle_id: &str) -> Result<pb::VerifyEvidenceResponse, Status> {
    client
        .verify_evidence(pb::VerifyEvidenceRequest {
            bundle_id: bundle_id.to_owned(),
            verification_time: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_report(client: &mut Client, digest: &str) -> Result<pb::GetReportResponse, Status> {
    client
        .get_report(pb::GetReportRequest {
            report_digest: digest.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn inclusion(client: &mut Client) -> Result<pb::VerifyInclusionResponse, Status> {
    client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: TESSERA_ORIGIN.to_owned(),
            index: 0,
            entry: TESSERA_FIRST_ENTRY.to_vec(),
            sequence: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn list_checkpoints(client: &mut Client, origin: Option<&str>) -> Vec<pb::LogCheckpoints> {
    client
        .list_checkpoints(pb::ListCheckpointsRequest {
            origin: origin.map(str::to_owned),
        })
        .await
        .expect("ListCheckpoints")
        .into_inner()
        .logs
}

/// Checks that `found` (an id of another tenant) and `missing` (an id of no tenant) were
/// rejected alike: same code, same reason code, same message once the id is blanked out.
fn assert_same_not_found(found: &Status, found_id: &str, missing: &Status, missing_id: &str) {
    assert_eq!(found.code(), Code::NotFound, "{}", found.message());
    assert_eq!(missing.code(), Code::NotFound, "{}", missing.message());
    assert_eq!(reason_of(found), "ERR_EVIDENCE_NOT_FOUND", "{}", found.message());
    assert_eq!(reason_of(found), reason_of(missing));
    assert_eq!(
        found.message().replace(found_id, "<id>"),
        missing.message().replace(missing_id, "<id>")
    );
}

#[tokio::test]
async fn tenant_sees_only_its_own_data() {
    let Some(vectors) = vectors() else { return };
    let case = vectors.join("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path");
    let bundle_json = read(&case.join("bundle.sigstore.json"));
    let trust_set = pack_trust_set(&case.join("trusted_root.json"), &[TESSERA_VKEY.to_owned()], 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut tenant_a = server.client_of(TENANT_A).await;
    let mut tenant_b = server.client_of(TENANT_B).await;

    // Tenant A: trust roots, the Tessera tiles, the evidence's tlog-proof, the evidence.
    tenant_a
        .import_trust_roots(import_request("trust.tgz", trust_set.clone()))
        .await
        .expect("A imports trust roots");
    tenant_a
        .import_tiles(import_request("tessera.tgz", tessera_tiles(&vectors, 15)))
        .await
        .expect("A imports tiles");
    let proofs = stella_bundle::pack_tiles(&TilesInput {
        logs: Vec::new(),
        tlog_proofs: vec![tlog_proof_from_bundle(&bundle_json)],
    })
    .expect("pack proof");
    tenant_a
        .import_tiles(import_request("proofs.tgz", proofs.clone()))
        .await
        .expect("A imports the tlog-proof");
    let mut sigstore_bundles = BTreeMap::new();
    sigstore_bundles.insert("provenance".to_owned(), bundle_json.clone());
    let evidence = stella_bundle::pack_evidence(&EvidenceInput {
        sigstore_bundles,
        subjects: vec![Subject {
            name: "a.txt".to_owned(),
            digest: "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf".to_owned(),
        }],
    })
    .expect("pack evidence");
    let registered = tenant_a
        .register_evidence(import_request("evidence.tgz", evidence.clone()))
        .await
        .expect("A registers evidence")
        .into_inner();
    let bundle_id = registered.bundle_id;
    let verified = verify_evidence(&mut tenant_a, &bundle_id).await.expect("A verifies");
    assert_eq!(verified.outcome, "verified", "{:?}", verified.reason_codes);
    let report_digest = verified.report_digest.clone();
    assert!(inclusion(&mut tenant_a).await.expect("A checks inclusion").included);
    assert!(!list_checkpoints(&mut tenant_a, None).await.is_empty());

    // Tenant B has no trust roots, although A has.
    let status = inclusion(&mut tenant_b).await.expect_err("B has no trust roots");
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    assert_eq!(reason_of(&status), "ERR_TRUST_ROOT_MISSING", "{}", status.message());

    // A's report and evidence are NOT_FOUND for B, exactly as ids that exist nowhere.
    let missing_digest = format!("sha256:{}", "0".repeat(64));
    let found = get_report(&mut tenant_b, &report_digest).await.expect_err("A's report");
    let missing = get_report(&mut tenant_b, &missing_digest).await.expect_err("no report");
    assert_same_not_found(&found, &report_digest, &missing, &missing_digest);

    let missing_id = format!("sha256:{}", "1".repeat(64));
    let found = verify_evidence(&mut tenant_b, &bundle_id).await.expect_err("A's evidence");
    let missing = verify_evidence(&mut tenant_b, &missing_id).await.expect_err("no evidence");
    assert_same_not_found(&found, &bundle_id, &missing, &missing_id);

    // B lists none of A's checkpoints, with or without an origin.
    assert!(list_checkpoints(&mut tenant_b, None).await.is_empty());
    assert!(list_checkpoints(&mut tenant_b, Some(TESSERA_ORIGIN)).await.is_empty());

    // With trust roots of its own, B still cannot prove inclusion from A's tiles.
    let imported = tenant_b
        .import_trust_roots(import_request("trust.tgz", trust_set))
        .await
        .expect("B imports trust roots")
        .into_inner();
    assert!(!imported.already_imported, "B's import log is its own");
    let result = inclusion(&mut tenant_b).await.expect("inclusion is a result");
    assert!(!result.included, "{}", result.detail);
    assert_eq!(result.reason_codes, vec!["ERR_REKOR_TILE_MISSING".to_owned()]);
    let consistency = |origin: &str| pb::ProveConsistencyRequest {
        origin: origin.to_owned(),
        old_size: 15,
        new_size: 15,
    };
    let status = tenant_b
        .prove_consistency(consistency(TESSERA_ORIGIN))
        .await
        .expect_err("B has no checkpoints");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
    assert_eq!(reason_of(&status), "ERR_REKOR_TILE_MISSING", "{}", status.message());
    assert!(status.message().contains("stored sizes: none"), "{}", status.message());
    let proven = tenant_a
        .prove_consistency(consistency(TESSERA_ORIGIN))
        .await
        .expect("A has the checkpoint")
        .into_inner();
    assert!(proven.consistent, "{}", proven.detail);

    // B registering the same evidence gets its own copy. Without B's own proof, it fails to
    // verify from B's cache, while A's verification is unchanged.
    let registered_b = tenant_b
        .register_evidence(import_request("evidence.tgz", evidence))
        .await
        .expect("B registers evidence")
        .into_inner();
    assert_eq!(registered_b.bundle_id, bundle_id);
    assert!(!registered_b.already_registered);
    let report_b = verify_evidence(&mut tenant_b, &bundle_id).await.expect("B verifies");
    assert_eq!(report_b.outcome, "failed");
    assert_eq!(report_b.reason_codes, vec!["ERR_REKOR_TILE_MISSING".to_owned()]);
    let again = verify_evidence(&mut tenant_a, &bundle_id).await.expect("A verifies again");
    assert_eq!(again.report_json, verified.report_json);
    assert!(get_report(&mut tenant_b, &report_digest).await.is_err(), "A's report stays A's");
    assert!(!list_checkpoints(&mut tenant_a, None).await.is_empty());
    assert!(list_checkpoints(&mut tenant_b, None).await.is_empty());
    server.stop().await;
}
