//! Signed, hash-chained decision records over real gRPC: the gate on a loopback port with its
//! RocksDB in a temporary directory, verified with the offline verifier of `stella decisions
//! verify`. The attestor is down, so every evaluation records a `pending` decision without test
//! vectors.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Gate, Harness, POLICY, Running, SUBJECT, TENANT, UNKNOWN_BUNDLE, closed_port_url, create, evaluate, write_policy};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use rocksdb::{DB, Options};
use stella_access::AUDIENCE_GATE;
use stella_client::cli::decision_chain::{BrokenLink, TrustedKey, VerifiedChain, verify_chain};
use stella_gate::GateConfig;
use stella_gate::signing::GENERATED_KEY_FILE;
use stella_proto::gate::v1 as pb;

/// Column family of the chain records, keyed by tenant and sequence number.
const CHAIN_FAMILY: &str = "decision_chain";

struct Setup {
    dir: tempfile::TempDir,
    harness: Harness,
    policy: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let harness = Harness::new(dir.path());
        let policy = write_policy(dir.path(), POLICY);
        Setup { dir, harness, policy }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("gate")
    }

    async fn gate(&self, signing_key: Option<PathBuf>) -> Running {
        self.harness
            .gate_with(GateConfig {
                data_dir: self.data_dir(),
                attestor_url: closed_port_url(),
                attestor_tls: None,
                policy_path: self.policy.clone(),
                signing_key,
                attestor_timeout: Duration::from_millis(500),
                authenticator: self.harness.authenticator(AUDIENCE_GATE),
                tls: None,
            })
            .await
    }
}

/// Creates and evaluates promotions `prefix-1` to `prefix-count`; returns their record ids.
async fn evaluate_many(client: &mut Gate, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for number in 1..=count {
        let promotion = format!("{prefix}-{number}");
        create(client, &promotion, SUBJECT, "prod", UNKNOWN_BUNDLE).await;
        ids.push(evaluate(client, &promotion).await.record_id);
    }
    ids
}

/// Fetches every record of the client's tenant with `ListDecisions`, in small pages.
async fn export(client: &mut Gate) -> Vec<pb::DecisionRecord> {
    let mut records = Vec::new();
    let mut after = 0;
    loop {
        let page = client
            .list_decisions(pb::ListDecisionsRequest {
                after_sequence: after,
                page_size: 2,
            })
            .await
            .expect("list decisions")
            .into_inner();
        if let Some(last) = page.records.last() {
            after = last.sequence;
        }
        let more = page.more;
        records.extend(page.records);
        if !more {
            return records;
        }
    }
}

async fn gate_key(client: &mut Gate) -> TrustedKey {
    let key = client
        .get_signing_key(pb::GetSigningKeyRequest {})
        .await
        .expect("get signing key")
        .into_inner();
    let trusted = TrustedKey::from_pem(&key.public_key_pem).expect("public key PEM");
    assert_eq!(trusted.key_id(), key.key_id);
    trusted
}

fn verify(records: &[pb::DecisionRecord], key: &TrustedKey) -> Result<VerifiedChain, BrokenLink> {
    verify_chain(records.iter().map(|record| record.envelope_json.as_slice()), key)
}

/// Opens the stopped gate's database with every column family and returns it.
fn open_database(data_dir: &Path) -> DB {
    let families = DB::list_cf(&Options::default(), data_dir).expect("list column families");
    DB::open_cf(&Options::default(), data_dir, families).expect("open the gate database")
}

/// Returns the key and value of the `index`th chain record (0-based) in key order.
fn chain_entry(database: &DB, index: usize) -> (Box<[u8]>, Box<[u8]>) {
    let family = database.cf_handle(CHAIN_FAMILY).expect("chain column family");
    database
        .iterator_cf(family, rocksdb::IteratorMode::Start)
        .nth(index)
        .expect("chain record")
        .expect("read chain record")
}

#[tokio::test]
async fn three_evaluations_form_chain() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let ids = evaluate_many(&mut client, "rel", 3).await;

    let records = export(&mut client).await;
    assert_eq!(records.iter().map(|record| record.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(records.iter().map(|record| record.record_id.clone()).collect::<Vec<_>>(), ids);
    let key = gate_key(&mut client).await;
    let chain = verify(&records, &key).expect("chain verifies");
    assert_eq!(chain.count, 3);
    assert_eq!(chain.tenant.as_deref(), Some(TENANT));

    // GetDecision returns the same envelope and the record inside it.
    let stored = client
        .get_decision(pb::GetDecisionRequest {
            record_id: ids[1].clone(),
        })
        .await
        .expect("get decision")
        .into_inner();
    assert_eq!(stored.envelope_json, records[1].envelope_json);
    assert_eq!(stored.sequence, 2);
    let record: serde_json::Value = serde_json::from_slice(&stored.record_json).expect("record JSON");
    assert_eq!(record["schema"], "stella.decision-record/v3");
    assert_eq!(record["sequence"], 2);
    assert_eq!(record["tenant"], TENANT);
    let first: serde_json::Value = serde_json::from_slice(
        &client
            .get_decision(pb::GetDecisionRequest {
                record_id: ids[0].clone(),
            })
            .await
            .expect("get decision")
            .into_inner()
            .record_json,
    )
    .expect("record JSON");
    let first_digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            serde_json_canonicalizer::to_vec(&first).expect("canonicalize")
        ))
    );
    assert_eq!(record["previous_record_digest"], first_digest.as_str());
    gate.stop().await;
}

#[tokio::test]
async fn generated_key_survives_restart() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    evaluate_many(&mut client, "rel", 1).await;
    let first_key = gate_key(&mut client).await;
    gate.stop().await;
    assert!(setup.data_dir().join(GENERATED_KEY_FILE).is_file());

    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    evaluate_many(&mut client, "later", 1).await;
    let second_key = gate_key(&mut client).await;
    assert_eq!(first_key.key_id(), second_key.key_id());
    let chain = verify(&export(&mut client).await, &first_key).expect("chain verifies across the restart");
    assert_eq!(chain.count, 2);
    gate.stop().await;
}

/// Evaluates three promotions, lets `change` rewrite the stored value of the second record
/// while the gate is stopped, restarts the gate and returns the verifier's result with the
/// record ids.
async fn verify_after_change(change: impl FnOnce(&mut Vec<u8>)) -> (BrokenLink, Vec<String>) {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let ids = evaluate_many(&mut client, "rel", 3).await;
    let key = gate_key(&mut client).await;
    gate.stop().await;

    {
        let database = open_database(&setup.data_dir());
        let (stored_key, value) = chain_entry(&database, 1);
        let mut value = value.to_vec();
        change(&mut value);
        let family = database.cf_handle(CHAIN_FAMILY).expect("chain column family");
        database.put_cf(family, &stored_key, &value).expect("write the changed record");
    }

    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let records = export(&mut client).await;
    assert_eq!(records.len(), 3, "the changed record is still served");
    let broken = verify(&records, &key).expect_err("changed record accepted");
    gate.stop().await;
    (broken, ids)
}

/// Returns the offset of the first byte of the envelope's base64 payload in a stored value.
fn payload_offset(value: &[u8]) -> usize {
    let marker = b"\"payload\":\"";
    value
        .windows(marker.len())
        .position(|window| window == marker)
        .expect("payload field")
        + marker.len()
}

#[tokio::test]
async fn changed_envelope_byte_breaks() {
    let (broken, _) = verify_after_change(|value| {
        // One base64 character of the signed payload.
        let position = payload_offset(value) + 40;
        value[position] = if value[position] == b'A' { b'B' } else { b'A' };
    })
    .await;
    assert_eq!(broken.sequence, 2, "{broken}");
    assert_eq!(broken.line, 2, "{broken}");
    assert!(broken.fault.contains("signature"), "{broken}");
}

#[tokio::test]
async fn changed_record_byte_breaks() {
    let (broken, ids) = verify_after_change(|value| {
        // One byte of the record inside the payload: the year of evaluated_at.
        let start = payload_offset(value);
        let end = start + value[start..].iter().position(|byte| *byte == b'"').expect("payload end");
        let mut payload = STANDARD.decode(&value[start..end]).expect("base64 payload");
        let marker = b"\"evaluated_at\":\"";
        let year = payload
            .windows(marker.len())
            .position(|window| window == marker)
            .expect("evaluated_at")
            + marker.len()
            + 3;
        payload[year] = if payload[year] == b'0' { b'1' } else { b'0' };
        value.splice(start..end, STANDARD.encode(&payload).into_bytes());
    })
    .await;
    assert_eq!(broken.sequence, 2, "{broken}");
    assert_eq!(broken.record_id.as_deref(), Some(ids[1].as_str()), "{broken}");
    assert!(broken.fault.contains("signature"), "{broken}");
}

#[tokio::test]
async fn deleted_record_leaves_gap() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let ids = evaluate_many(&mut client, "rel", 3).await;
    let key = gate_key(&mut client).await;
    gate.stop().await;

    {
        let database = open_database(&setup.data_dir());
        let (stored_key, _) = chain_entry(&database, 1);
        let family = database.cf_handle(CHAIN_FAMILY).expect("chain column family");
        database.delete_cf(family, &stored_key).expect("delete the record");
    }

    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let records = export(&mut client).await;
    assert_eq!(records.iter().map(|record| record.sequence).collect::<Vec<_>>(), vec![1, 3]);
    let broken = verify(&records, &key).expect_err("gap accepted");
    assert_eq!(broken.sequence, 2, "{broken}");
    assert_eq!(broken.record_id.as_deref(), Some(ids[2].as_str()), "{broken}");
    assert!(broken.fault.contains("record 2 is missing"), "{broken}");
    assert_eq!(
        broken.reason_code,
        Some(stella_verify::reason::ReasonCode::DecisionChainBroken),
        "{broken}"
    );
    gate.stop().await;
}

#[tokio::test]
async fn other_key_record_fails() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    evaluate_many(&mut client, "rel", 2).await;
    let key = gate_key(&mut client).await;
    gate.stop().await;

    // The gate restarts with another key: its next record extends the chain but is signed by a
    // key the auditor does not trust.
    let other_key_file = setup.dir.path().join("other-key.pem");
    let other = stella_access::generate_signing_key().expect("generate key");
    std::fs::write(&other_key_file, other.to_pkcs8_pem(LineEnding::LF).expect("encode key").as_bytes()).expect("write key");
    let gate = setup.gate(Some(other_key_file)).await;
    let mut client = setup.harness.client(&gate).await;
    let ids = evaluate_many(&mut client, "late", 1).await;
    assert_ne!(gate_key(&mut client).await.key_id(), key.key_id());

    let broken = verify(&export(&mut client).await, &key).expect_err("foreign signature accepted");
    assert_eq!(broken.sequence, 3, "{broken}");
    assert_eq!(broken.record_id.as_deref(), Some(ids[0].as_str()), "{broken}");
    assert!(broken.fault.contains("does not verify with the trusted key"), "{broken}");
    gate.stop().await;
}

#[tokio::test]
async fn tenant_export_excludes_others() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut first = setup.harness.client(&gate).await;
    let mut second = setup.harness.client_with(&gate, &setup.harness.token("globex")).await;
    let first_ids = evaluate_many(&mut first, "rel", 2).await;
    let second_ids = evaluate_many(&mut second, "rel", 1).await;
    evaluate_many(&mut first, "more", 1).await;

    let key = gate_key(&mut second).await;
    let records = export(&mut second).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record_id, second_ids[0]);
    assert!(records.iter().all(|record| !first_ids.contains(&record.record_id)));
    let chain = verify(&records, &key).expect("tenant chain verifies");
    assert_eq!(chain.tenant.as_deref(), Some("globex"));
    assert_eq!(chain.count, 1, "another tenant's records do not advance this chain");

    let chain = verify(&export(&mut first).await, &key).expect("first tenant's chain verifies");
    assert_eq!(chain.count, 3);
    assert_eq!(chain.tenant.as_deref(), Some(TENANT));
    gate.stop().await;
}

#[tokio::test]
async fn concurrent_evaluations_stay_linear() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    for number in 0..8 {
        create(&mut client, &format!("rel-{number}"), SUBJECT, "prod", UNKNOWN_BUNDLE).await;
    }
    let mut calls = tokio::task::JoinSet::new();
    for number in 0..8 {
        let mut client = client.clone();
        calls.spawn(async move { evaluate(&mut client, &format!("rel-{number}")).await });
    }
    while let Some(joined) = calls.join_next().await {
        joined.expect("evaluation task");
    }
    let key = gate_key(&mut client).await;
    let chain = verify(&export(&mut client).await, &key).expect("chain verifies");
    assert_eq!(chain.count, 8);
    gate.stop().await;
}

#[tokio::test]
async fn page_size_limit_enforced() {
    let setup = Setup::new();
    let gate = setup.gate(None).await;
    let mut client = setup.harness.client(&gate).await;
    let status = client
        .list_decisions(pb::ListDecisionsRequest {
            after_sequence: 0,
            page_size: 1001,
        })
        .await
        .expect_err("page size above the maximum accepted");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let empty = client
        .list_decisions(pb::ListDecisionsRequest::default())
        .await
        .expect("list an empty chain")
        .into_inner();
    assert!(empty.records.is_empty());
    assert!(!empty.more);
    gate.stop().await;
}
