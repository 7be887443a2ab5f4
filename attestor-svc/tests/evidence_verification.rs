//! `VerifyEvidence` over real gRPC, for the DSSE happy-path case of the Sigstore conformance
//! suite proven by an imported tlog-proof:
//!
//! - at a requested verification time: a trust root set that has expired on the attestor's clock
//!   still verifies evidence at a time within its lifetime, so a gate can replay a past
//!   evaluation. At the current time, and at any time after the expiry, verification fails with
//!   `ERR_TRUST_ROOT_EXPIRED`;
//! - with a witness-cosigned checkpoint: the report lists the cosignature when the tenant's trust
//!   root set has the witness key, and none otherwise.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stella_bundle::{EvidenceInput, Subject, TilesInput, TrustSetInput};
use stella_log_forge::{ForgeWitness, Seed};
use stella_proto::attestor::v1 as pb;
use stella_verify::report::{VerificationReport, WitnessCosignature};
use stella_verify::tlog_proof::TlogProof;

use common::{Client, Server, far_future, import_request, read, vectors};

/// Lifetime of the short-lived trust root set: long enough to import the proof and the
/// evidence, short enough to wait for.
const LIFETIME_SECS: i64 = 3;

/// Maximum wait for the attestor's clock to pass the expiry.
const EXPIRY_WAIT: Duration = Duration::from_secs(10);

/// SHA-256 of `a.txt`, the artifact every conformance case signs.
const SUBJECT_DIGEST: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// Key name of the test witness.
const WITNESS: &str = "witness.example/w1";

/// Cosignature timestamp of the test witness.
const COSIGNED_AT: u64 = 1_767_225_600;

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The conformance case: its trusted root and its Sigstore bundle.
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

    /// Packs a trust root set of the case's trusted root and `note_keys`, expiring at
    /// `expires_at`.
    fn trust_set(&self, note_keys: Vec<String>, expires_at: i64) -> Vec<u8> {
        stella_bundle::pack_trust_set(&TrustSetInput {
            trusted_root_json: read(&self.trusted_root),
            note_keys,
            kms_keys: BTreeMap::new(),
            version: 1,
            expires_at,
        })
        .expect("pack trust set")
    }

    /// Packs the bundle's own inclusion proof as the one tlog-proof of a tile bundle, with its
    /// checkpoint note passed through `edit_checkpoint`.
    fn proof_bundle(&self, edit_checkpoint: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
        let bundle = stella_verify::bundle::parse_bundle(&self.bundle_json).expect("bundle parses");
        let [entry] = bundle.tlog_entries.as_slice() else {
            panic!("the conformance bundle must have one tlog entry");
        };
        let Some(own) = &entry.inclusion_proof else {
            panic!("the conformance bundle must carry an inclusion proof");
        };
        let proof = TlogProof {
            extra: None,
            index: own.log_index,
            hashes: own.hashes.clone(),
            checkpoint: edit_checkpoint(own.checkpoint.as_bytes().to_vec()),
        };
        stella_bundle::pack_tiles(&TilesInput {
            logs: Vec::new(),
            tlog_proofs: vec![proof.to_bytes()],
        })
        .expect("pack tlog-proof")
    }

    /// Registers evidence of the bundle for `a.txt` and returns its bundle id.
    async fn register(&self, client: &mut Client) -> String {
        let mut sigstore_bundles = BTreeMap::new();
        sigstore_bundles.insert("provenance".to_owned(), self.bundle_json.clone());
        let evidence = stella_bundle::pack_evidence(&EvidenceInput {
            sigstore_bundles,
            subjects: vec![Subject {
                name: "a.txt".to_owned(),
                digest: SUBJECT_DIGEST.to_owned(),
            }],
        })
        .expect("pack evidence");
        client
            .register_evidence(import_request("evidence.tgz", evidence))
            .await
            .expect("register evidence")
            .into_inner()
            .bundle_id
    }
}

/// Returns the path of the one entry of a report.
fn entry_path(report: &VerificationReport) -> &str {
    let paths: Vec<&String> = report.entries.keys().collect();
    let [path] = paths.as_slice() else {
        panic!("expected one entry in {report:?}");
    };
    path
}

async fn import_trust_set(client: &mut Client, archive: Vec<u8>) {
    client
        .import_trust_roots(import_request("trust.tgz", archive))
        .await
        .expect("import trust set");
}

async fn import_proofs(client: &mut Client, archive: Vec<u8>) {
    client
        .import_tiles(import_request("proofs.tgz", archive))
        .await
        .expect("import tlog-proof");
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

#[tokio::test]
async fn expired_trust_set_verifies_at_past_time() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let mut client = server.client().await;

    let issued_at = unix_now();
    let expires_at = issued_at + LIFETIME_SECS;
    import_trust_set(&mut client, case.trust_set(Vec::new(), expires_at)).await;
    import_proofs(&mut client, case.proof_bundle(|note| note)).await;
    let bundle_id = case.register(&mut client).await;

    let at_issue = verify_at(&mut client, &bundle_id, issued_at).await;
    assert_eq!(at_issue.outcome, "verified", "reasons {:?}", at_issue.reason_codes);
    assert!(at_issue.reason_codes.is_empty(), "{:?}", at_issue.reason_codes);

    let started = Instant::now();
    while unix_now() <= expires_at {
        assert!(
            started.elapsed() < EXPIRY_WAIT,
            "the clock did not pass the trust set's expiry {expires_at} within {EXPIRY_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let now = verify_at(&mut client, &bundle_id, 0).await;
    assert_eq!(now.outcome, "failed");
    assert_eq!(now.reason_codes, vec!["ERR_TRUST_ROOT_EXPIRED"]);

    let after_expiry = verify_at(&mut client, &bundle_id, expires_at + 1).await;
    assert_eq!(after_expiry.outcome, "failed");
    assert_eq!(after_expiry.reason_codes, vec!["ERR_TRUST_ROOT_EXPIRED"]);

    // The set is valid up to and including its expiry second. A report contains no verification
    // time, so every verification within the lifetime gives the same report.
    let last_second = verify_at(&mut client, &bundle_id, expires_at).await;
    assert_eq!(last_second.outcome, "verified", "reasons {:?}", last_second.reason_codes);
    assert_eq!(last_second.report_digest, at_issue.report_digest);
    assert_eq!(last_second.report_json, at_issue.report_json);

    let replayed = verify_at(&mut client, &bundle_id, issued_at).await;
    assert_eq!(replayed.report_json, at_issue.report_json);
    let stored = client
        .get_report(pb::GetReportRequest {
            report_digest: at_issue.report_digest.clone(),
        })
        .await
        .expect("get the report of the replayed verification")
        .into_inner();
    assert_eq!(stored.report_json, at_issue.report_json);
    server.stop().await;
}

#[tokio::test]
async fn report_lists_trusted_witness_cosignature() {
    let Some(vectors) = vectors() else { return };
    let case = Case::load(&vectors);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path()).await;
    let witness = ForgeWitness::derive(WITNESS, Seed::from_bytes(b"witness").as_bytes());
    let witness_vkey = witness.verifier().expect("witness verifier").to_vkey();
    let cosigned_proofs = case.proof_bundle(|note| witness.cosign(&note, COSIGNED_AT).expect("cosign"));

    // Two tenants import the same cosigned checkpoint, and only the first trusts the witness.
    let rows = [
        (
            "tenant-trusts-witness",
            vec![witness_vkey],
            vec![WitnessCosignature {
                witness: WITNESS.to_owned(),
                timestamp: i64::try_from(COSIGNED_AT).expect("timestamp"),
            }],
        ),
        ("tenant-without-witness", Vec::new(), Vec::new()),
    ];
    for (tenant, note_keys, expected) in rows {
        let mut client = server.client_of(tenant).await;
        import_trust_set(&mut client, case.trust_set(note_keys, far_future())).await;
        import_proofs(&mut client, cosigned_proofs.clone()).await;
        let bundle_id = case.register(&mut client).await;

        let verified = verify_at(&mut client, &bundle_id, 0).await;
        assert_eq!(verified.outcome, "verified", "{tenant}: {:?}", verified.reason_codes);
        let report: VerificationReport = serde_json::from_slice(&verified.report_json).expect("report JSON");
        let entry = &report.entries[entry_path(&report)];
        let tlog = entry.tlog.as_ref().expect("tlog reference");
        assert_eq!(tlog.cosignatures, expected, "{tenant}");

        // The field is written also when it is empty, so every report has the same shape.
        let json: serde_json::Value = serde_json::from_slice(&verified.report_json).expect("report JSON");
        let written = &json["entries"][entry_path(&report)]["tlog"]["cosignatures"];
        assert!(written.is_array(), "{tenant}: {json}");
    }
    server.stop().await;
}
