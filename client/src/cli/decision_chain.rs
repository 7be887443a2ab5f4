//! Offline verification of a tenant's signed decision record chain, as `stella decisions
//! export` writes it: one DSSE envelope JSON per line, in sequence order.
//!
//! The verifier needs only the envelopes and the public key that the auditor trusts. It checks,
//! record by record, the DSSE signature, the in-toto statement and predicate type, the record
//! schema, that the statement's subjects are the promotion's subjects, the decision digest,
//! that sequence numbers run 1, 2, 3, ... without a gap, that each record names the digest of
//! the one before it, and that every record belongs to the same tenant. It stops at the first
//! broken link.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use stella_verify::dsse::{IN_TOTO_PAYLOAD_TYPE, parse_envelope, verify_envelope};
use stella_verify::reason::ReasonCode;
use stella_verify::x509::PublicKey;

/// `predicateType` of the statements that carry the records the gate writes now.
pub const DECISION_PREDICATE_TYPE: &str = "https://stella.dev/decision-record/v3";
/// `schema` of the records the gate writes now.
pub const DECISION_RECORD_SCHEMA: &str = "stella.decision-record/v3";

/// A record version this verifier accepts, with the fields its decision digest leaves out.
struct RecordVersion {
    schema: &'static str,
    predicate_type: &'static str,
    outside_digest: &'static [&'static str],
}

/// Accepted record versions. In v3 the decision digest leaves out only the digest itself, the
/// record id and the chain fields, so a replay at `evaluated_at` gives the same digest. Records
/// of v2, written by earlier gates into the same chains, also left `evaluated_at` out.
const RECORD_VERSIONS: [RecordVersion; 2] = [
    RecordVersion {
        schema: DECISION_RECORD_SCHEMA,
        predicate_type: DECISION_PREDICATE_TYPE,
        outside_digest: &["decision_digest", "record_id", "tenant", "sequence", "previous_record_digest"],
    },
    RecordVersion {
        schema: "stella.decision-record/v2",
        predicate_type: "https://stella.dev/decision-record/v2",
        outside_digest: &[
            "decision_digest",
            "record_id",
            "tenant",
            "sequence",
            "previous_record_digest",
            "evaluated_at",
        ],
    },
];

/// The public key an auditor trusts to have signed the records.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    key: PublicKey,
    key_id: String,
}

impl TrustedKey {
    /// Parses a PEM SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) holding a P-256 key.
    ///
    /// # Errors
    ///
    /// A message naming the fault when the text is not such a key.
    pub fn from_pem(text: &str) -> Result<TrustedKey, String> {
        let (label, der) = der::pem::decode_vec(text.as_bytes())
            .map_err(|error| format!("not a PEM document: {error}"))?;
        if label != "PUBLIC KEY" {
            return Err(format!("PEM label is {label:?}, expected \"PUBLIC KEY\""));
        }
        let key = PublicKey::from_spki_der(&der).map_err(|error| error.to_string())?;
        if !matches!(key, PublicKey::P256(_)) {
            return Err("the key is not a P-256 key; the gate signs with P-256".to_owned());
        }
        Ok(TrustedKey {
            key,
            key_id: hex::encode(Sha256::digest(&der)),
        })
    }

    /// Returns the key id: the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// Number of records.
    pub count: u64,
    /// The tenant of every record; `None` for an empty chain.
    pub tenant: Option<String>,
    /// "sha256:<hex>" of the last record's canonical JSON; `None` for an empty chain.
    pub head_digest: Option<String>,
    /// Ids of the records whose decision a break-glass override made, in sequence order.
    pub break_glass_record_ids: Vec<String>,
}

/// The first place where the chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The sequence number that the record at this place must have.
    pub sequence: u64,
    /// 1-based line of the export file.
    pub line: usize,
    /// The record id that the envelope's payload claims, when the payload is readable. It is
    /// unverified when the signature failed.
    pub record_id: Option<String>,
    /// Description of the fault.
    pub fault: String,
    /// Catalog code of the fault: a signature or payload code for a bad record, and
    /// `ERR_DECISION_CHAIN_BROKEN` for faults of the chain itself (sequence, previous digest,
    /// tenant).
    pub reason_code: Option<ReasonCode>,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let record = self.record_id.as_deref().unwrap_or("unknown");
        write!(
            formatter,
            "chain broken at sequence {} (record {record}, line {}): {}",
            self.sequence, self.line, self.fault
        )
    }
}

/// State carried from one record to the next.
struct Link {
    tenant: String,
    record_digest: String,
    /// The record id when a break-glass override made the record's decision.
    break_glass_record_id: Option<String>,
}

/// Verifies a chain given as envelope JSON documents in sequence order.
///
/// # Errors
///
/// The first [`BrokenLink`].
pub fn verify_chain<'a>(
    envelopes: impl IntoIterator<Item = &'a [u8]>,
    key: &TrustedKey,
) -> Result<VerifiedChain, BrokenLink> {
    let mut previous: Option<Link> = None;
    let mut count: u64 = 0;
    let mut break_glass_record_ids = Vec::new();
    for (index, envelope_json) in envelopes.into_iter().enumerate() {
        let sequence = count + 1;
        let line = index + 1;
        let link = verify_record(envelope_json, key, sequence, previous.as_ref()).map_err(
            |(fault, record_id, reason_code)| BrokenLink {
                sequence,
                line,
                record_id,
                fault,
                reason_code,
            },
        )?;
        break_glass_record_ids.extend(link.break_glass_record_id.clone());
        previous = Some(link);
        count = sequence;
    }
    Ok(VerifiedChain {
        count,
        tenant: previous.as_ref().map(|link| link.tenant.clone()),
        head_digest: previous.map(|link| link.record_digest),
        break_glass_record_ids,
    })
}

type Fault = (String, Option<String>, Option<ReasonCode>);

fn verify_record(
    envelope_json: &[u8],
    key: &TrustedKey,
    sequence: u64,
    previous: Option<&Link>,
) -> Result<Link, Fault> {
    let envelope = parse_envelope(envelope_json).map_err(|error| {
        (
            format!("not a DSSE envelope: {error}"),
            None,
            Some(ReasonCode::DssePayloadInvalid),
        )
    })?;
    // Read before the signature check only to name the record in a message.
    let claimed_id = serde_json::from_slice::<Value>(&envelope.payload)
        .ok()
        .and_then(|statement| {
            statement
                .pointer("/predicate/record_id")?
                .as_str()
                .map(str::to_owned)
        });
    let fail = |fault: String, code: Option<ReasonCode>| (fault, claimed_id.clone(), code);

    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(fail(
            format!(
                "payload type is {:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}",
                envelope.payload_type
            ),
            Some(ReasonCode::DssePayloadInvalid),
        ));
    }
    let verified = verify_envelope(&envelope, key.key()).map_err(|error| {
        let named = envelope.signatures.first().and_then(|signature| signature.keyid.as_deref());
        let fault = match named {
            Some(named) if named != key.key_id() => format!(
                "the signature does not verify with the trusted key {}; the envelope names key {named}: {error}",
                key.key_id()
            ),
            _ => format!("the signature does not verify with the trusted key {}: {error}", key.key_id()),
        };
        fail(fault, Some(ReasonCode::DsseSignatureInvalid))
    })?;
    let statement = verified
        .statement()
        .map_err(|error| fail(error.to_string(), Some(ReasonCode::DssePayloadInvalid)))?;
    let Some(version) = RECORD_VERSIONS
        .iter()
        .find(|version| version.predicate_type == statement.predicate_type)
    else {
        return Err(fail(
            format!(
                "predicate type is {:?}, expected {DECISION_PREDICATE_TYPE:?}",
                statement.predicate_type
            ),
            Some(ReasonCode::DssePayloadInvalid),
        ));
    };

    let payload: Value = serde_json::from_slice(&envelope.payload).map_err(|error| {
        fail(
            format!("payload is not JSON: {error}"),
            Some(ReasonCode::DssePayloadInvalid),
        )
    })?;
    let record = payload
        .get("predicate")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            fail(
                "the statement has no predicate object".to_owned(),
                Some(ReasonCode::DssePayloadInvalid),
            )
        })?;
    let payload_fault = |fault: String| fail(fault, Some(ReasonCode::DssePayloadInvalid));
    let schema = string_field(record, "schema").map_err(payload_fault)?;
    if schema != version.schema {
        return Err(payload_fault(format!(
            "record schema is {schema:?}, expected {:?} for predicate type {:?}",
            version.schema, version.predicate_type
        )));
    }
    check_subjects(record, &statement.subjects)
        .map_err(|fault| fail(fault, Some(ReasonCode::SubjectMismatch)))?;
    check_decision_digest(record, version.outside_digest).map_err(payload_fault)?;

    let found_sequence = record
        .get("sequence")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            payload_fault(
                "record field sequence is missing or not a non-negative integer".to_owned(),
            )
        })?;
    if found_sequence != sequence {
        let fault = if found_sequence > sequence {
            let last_missing = found_sequence - 1;
            if last_missing == sequence {
                format!(
                    "record {sequence} is missing: the next record has sequence {found_sequence}"
                )
            } else {
                format!(
                    "records {sequence} to {last_missing} are missing: the next record has sequence {found_sequence}"
                )
            }
        } else {
            format!("sequence {found_sequence} repeats or goes back; expected {sequence}")
        };
        return Err(fail(fault, Some(ReasonCode::DecisionChainBroken)));
    }

    let tenant = string_field(record, "tenant").map_err(payload_fault)?;
    let previous_digest = match record.get("previous_record_digest") {
        Some(Value::Null) => None,
        Some(Value::String(digest)) => Some(digest.as_str()),
        _ => {
            return Err(payload_fault(
                "record field previous_record_digest is missing or not a string or null".to_owned(),
            ));
        }
    };
    match previous {
        None => {
            if let Some(digest) = previous_digest {
                return Err(fail(
                    format!(
                        "the first record names a previous record digest {digest}; expected null"
                    ),
                    Some(ReasonCode::DecisionChainBroken),
                ));
            }
        }
        Some(link) => {
            if tenant != link.tenant {
                return Err(fail(
                    format!(
                        "tenant is {tenant:?}, but the chain belongs to {:?}",
                        link.tenant
                    ),
                    Some(ReasonCode::DecisionChainBroken),
                ));
            }
            if previous_digest != Some(link.record_digest.as_str()) {
                return Err(fail(
                    format!(
                        "previous_record_digest is {}, but the previous record's digest is {}",
                        previous_digest.unwrap_or("null"),
                        link.record_digest
                    ),
                    Some(ReasonCode::DecisionChainBroken),
                ));
            }
        }
    }

    let break_glass_record_id = match record.get("break_glass") {
        None | Some(Value::Null) => None,
        Some(Value::Object(_)) => Some(string_field(record, "record_id").map_err(payload_fault)?.to_owned()),
        Some(_) => {
            return Err(payload_fault(
                "record field break_glass is neither an object nor null".to_owned(),
            ));
        }
    };

    let canonical = serde_json_canonicalizer::to_vec(record)
        .map_err(|error| payload_fault(format!("cannot canonicalize the record: {error}")))?;
    Ok(Link {
        tenant: tenant.to_owned(),
        record_digest: sha256_digest(&canonical),
        break_glass_record_id,
    })
}

impl TrustedKey {
    fn key(&self) -> &PublicKey {
        &self.key
    }
}

fn string_field<'a>(record: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    record
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("record field {name} is missing or not a string"))
}

/// Checks that the statement's subjects are the record's subject digests, each named by the
/// promotion id.
fn check_subjects(
    record: &Map<String, Value>,
    subjects: &[stella_verify::dsse::StatementSubject],
) -> Result<(), String> {
    let promotion_id = string_field(record, "promotion_id")?;
    let mut expected = BTreeSet::new();
    for digest in record
        .get("subject_digests")
        .and_then(Value::as_array)
        .ok_or("record field subject_digests is missing or not a list")?
    {
        expected.insert(
            digest
                .as_str()
                .ok_or("record field subject_digests holds a non-string")?
                .to_owned(),
        );
    }
    let mut found = BTreeSet::new();
    for subject in subjects {
        if subject.name != promotion_id {
            return Err(format!(
                "statement subject {:?} is not named after the promotion {promotion_id:?}",
                subject.name
            ));
        }
        let digest = subject
            .sha256
            .ok_or("a statement subject has no sha256 digest")?;
        found.insert(format!("sha256:{}", hex::encode(digest)));
    }
    if found != expected {
        return Err(format!(
            "statement subjects {found:?} differ from the record's subject_digests {expected:?}"
        ));
    }
    Ok(())
}

/// Recomputes the decision digest over the record without the fields it leaves out.
fn check_decision_digest(record: &Map<String, Value>, outside_digest: &[&str]) -> Result<(), String> {
    let stated = string_field(record, "decision_digest")?;
    let mut body = record.clone();
    for field in outside_digest {
        body.remove(*field);
    }
    let canonical = serde_json_canonicalizer::to_vec(&body)
        .map_err(|error| format!("cannot canonicalize the record: {error}"))?;
    let computed = sha256_digest(&canonical);
    if computed != stated {
        return Err(format!(
            "decision_digest is {stated}, but the record's decision fields hash to {computed}"
        ));
    }
    Ok(())
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    use serde_json::json;
    use stella_verify::dsse::pae;

    use super::*;

    const SUBJECT_HEX: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).expect("valid scalar")
    }

    fn trusted(seed: u8) -> TrustedKey {
        let pem = signing_key(seed)
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encode public key");
        TrustedKey::from_pem(&pem).expect("trusted key")
    }

    /// Builds a record as the gate writes it and returns it with its canonical digest.
    fn record(tenant: &str, sequence: u64, previous: Option<&str>) -> Value {
        record_with_override(tenant, sequence, previous, Value::Null)
    }

    /// Builds a record as [`record`] does, with `break_glass` as its override block.
    fn record_with_override(tenant: &str, sequence: u64, previous: Option<&str>, break_glass: Value) -> Value {
        let mut record = json!({
            "schema": DECISION_RECORD_SCHEMA,
            "promotion_id": format!("rel-{sequence}"),
            "subject_digests": [format!("sha256:{SUBJECT_HEX}")],
            "target_environment": "prod",
            "decision": "pending",
            "reason_codes": ["ERR_ATTESTOR_UNAVAILABLE"],
            "policy_digest": "sha256:00",
            "evidence_bundle_ids": [],
            "report_digests": [],
            "checkpoints": [],
            "evaluated_at": "2026-12-05T00:00:00Z",
            "break_glass": break_glass,
        });
        let digest =
            sha256_digest(&serde_json_canonicalizer::to_vec(&record).expect("canonicalize"));
        let fields = record.as_object_mut().expect("object");
        fields.insert("decision_digest".to_owned(), json!(digest));
        fields.insert("record_id".to_owned(), json!(format!("dr-{sequence}")));
        fields.insert("tenant".to_owned(), json!(tenant));
        fields.insert("sequence".to_owned(), json!(sequence));
        fields.insert("previous_record_digest".to_owned(), json!(previous));
        record
    }

    fn record_digest(record: &Value) -> String {
        sha256_digest(&serde_json_canonicalizer::to_vec(record).expect("canonicalize"))
    }

    /// Builds a version 2 record, whose decision digest leaves `evaluated_at` out.
    fn record_v2(tenant: &str, sequence: u64, previous: Option<&str>) -> Value {
        let mut record = record(tenant, sequence, previous);
        record["schema"] = json!("stella.decision-record/v2");
        let mut body = record.as_object().expect("object").clone();
        for field in ["decision_digest", "record_id", "tenant", "sequence", "previous_record_digest", "evaluated_at"] {
            body.remove(field);
        }
        let digest = sha256_digest(&serde_json_canonicalizer::to_vec(&body).expect("canonicalize"));
        record["decision_digest"] = json!(digest);
        record
    }

    fn sign(record: &Value, seed: u8) -> Vec<u8> {
        let predicate_type = match record["schema"].as_str() {
            Some("stella.decision-record/v2") => "https://stella.dev/decision-record/v2",
            _ => DECISION_PREDICATE_TYPE,
        };
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": record["promotion_id"], "digest": {"sha256": SUBJECT_HEX}}],
            "predicateType": predicate_type,
            "predicate": record,
        });
        let payload = serde_json_canonicalizer::to_vec(&statement).expect("canonicalize");
        let signature: DerSignature = signing_key(seed).sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
        serde_json::to_vec(&json!({
            "payload": STANDARD.encode(&payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"keyid": trusted(seed).key_id(), "sig": STANDARD.encode(signature.as_bytes())}],
        }))
        .expect("envelope JSON")
    }

    /// Returns the records of a valid chain of `count` records of tenant "acme".
    fn records(count: u64) -> Vec<Value> {
        let mut records: Vec<Value> = Vec::new();
        for sequence in 1..=count {
            let previous = records.last().map(record_digest);
            records.push(record("acme", sequence, previous.as_deref()));
        }
        records
    }

    fn signed_chain(records: &[Value]) -> Vec<Vec<u8>> {
        records.iter().map(|record| sign(record, 1)).collect()
    }

    fn verify(envelopes: &[Vec<u8>]) -> Result<VerifiedChain, BrokenLink> {
        verify_chain(envelopes.iter().map(Vec::as_slice), &trusted(1))
    }

    #[test]
    fn valid_chain_verifies() {
        let records = records(3);
        let chain = verify(&signed_chain(&records)).expect("chain verifies");
        assert_eq!(chain.count, 3);
        assert_eq!(chain.tenant.as_deref(), Some("acme"));
        assert_eq!(chain.head_digest, Some(record_digest(&records[2])));
    }

    #[test]
    fn chain_lists_override_records() {
        let first = record("acme", 1, None);
        let block = json!({
            "reason": "outage fix",
            "ticket": "INC-42",
            "requested_by": "alice@acme",
            "issued_at": "2026-12-05T00:00:00Z",
            "expires_at": "2026-12-05T01:00:00Z",
            "overridden_decision": "deny",
            "overridden_reason_codes": ["ERR_SUBJECT_MISMATCH"],
        });
        let second = record_with_override("acme", 2, Some(&record_digest(&first)), block);
        let third = record("acme", 3, Some(&record_digest(&second)));
        let chain = verify(&signed_chain(&[first, second, third])).expect("chain verifies");
        assert_eq!(chain.count, 3);
        assert_eq!(chain.break_glass_record_ids, vec!["dr-2"]);
        assert!(verify(&signed_chain(&records(2))).expect("chain verifies").break_glass_record_ids.is_empty());
    }

    #[test]
    fn chain_from_v2_to_v3_verifies() {
        let first = record_v2("acme", 1, None);
        let second = record("acme", 2, Some(&record_digest(&first)));
        let chain = verify(&signed_chain(&[first.clone(), second])).expect("mixed chain verifies");
        assert_eq!(chain.count, 2);

        // A v2 record whose digest covers `evaluated_at` is not a valid v2 record.
        let mut wrong = record("acme", 1, None);
        wrong["schema"] = json!("stella.decision-record/v2");
        let broken = verify(&signed_chain(&[wrong])).expect_err("v3 digest accepted as v2");
        assert_eq!(broken.reason_code, Some(ReasonCode::DssePayloadInvalid));

        // The v2 digest leaves the time out, so only the signature binds a v2 record's time.
        let mut moved = first;
        moved["evaluated_at"] = json!("2026-12-05T00:00:09Z");
        assert!(verify(&signed_chain(&[moved])).is_ok(), "v2 digest leaves the time out");
    }

    #[test]
    fn digest_covers_evaluation_time() {
        let mut records = records(1);
        records[0]["evaluated_at"] = json!("2026-12-05T00:00:01Z");
        let broken = verify(&signed_chain(&records)).expect_err("changed time accepted");
        assert_eq!(broken.reason_code, Some(ReasonCode::DssePayloadInvalid));
        assert!(broken.fault.contains("decision_digest"), "{}", broken.fault);
    }

    #[test]
    fn empty_chain_verifies() {
        let chain = verify(&[]).expect("empty chain verifies");
        assert_eq!(chain.count, 0);
        assert_eq!(chain.head_digest, None);
    }

    #[test]
    fn changed_byte_breaks_signature() {
        let mut envelopes = signed_chain(&records(3));
        let text = String::from_utf8(envelopes[1].clone()).expect("UTF-8");
        let position = text.find("\"payload\":\"").expect("payload field") + 20;
        let original = envelopes[1][position];
        envelopes[1][position] = if original == b'A' { b'B' } else { b'A' };
        let broken = verify(&envelopes).expect_err("changed record accepted");
        assert_eq!(broken.sequence, 2);
        assert_eq!(broken.line, 2);
        assert_eq!(broken.reason_code, Some(ReasonCode::DsseSignatureInvalid));
    }

    #[test]
    fn missing_record_reports_gap() {
        let mut envelopes = signed_chain(&records(4));
        envelopes.remove(1);
        let broken = verify(&envelopes).expect_err("gap accepted");
        assert_eq!(broken.sequence, 2);
        assert_eq!(broken.record_id.as_deref(), Some("dr-3"));
        assert!(
            broken.fault.contains("record 2 is missing"),
            "{}",
            broken.fault
        );
        assert_eq!(broken.reason_code, Some(ReasonCode::DecisionChainBroken));
    }

    #[test]
    fn wrong_previous_digest_breaks() {
        let mut records = records(3);
        records[2] = record("acme", 3, Some(&record_digest(&records[0])));
        let broken = verify(&signed_chain(&records)).expect_err("wrong link accepted");
        assert_eq!(broken.sequence, 3);
        assert!(
            broken.fault.contains("previous_record_digest"),
            "{}",
            broken.fault
        );
    }

    #[test]
    fn first_record_without_previous() {
        let records = vec![record("acme", 1, Some("sha256:00"))];
        let broken = verify(&signed_chain(&records)).expect_err("dangling first record accepted");
        assert_eq!(broken.sequence, 1);
    }

    #[test]
    fn other_tenant_breaks() {
        let mut records = records(2);
        records[1] = record("globex", 2, Some(&record_digest(&records[0])));
        let broken = verify(&signed_chain(&records)).expect_err("mixed tenants accepted");
        assert_eq!(broken.sequence, 2);
        assert!(broken.fault.contains("globex"), "{}", broken.fault);
    }

    #[test]
    fn other_key_names_key_ids() {
        let records = records(2);
        let envelopes = vec![sign(&records[0], 1), sign(&records[1], 2)];
        let broken = verify(&envelopes).expect_err("foreign signature accepted");
        assert_eq!(broken.sequence, 2);
        assert_eq!(broken.reason_code, Some(ReasonCode::DsseSignatureInvalid));
        assert!(
            broken.fault.contains(trusted(2).key_id()),
            "{}",
            broken.fault
        );
    }

    #[test]
    fn changed_decision_digest_breaks() {
        let mut records = records(1);
        records[0]["decision"] = json!("allow");
        let broken =
            verify(&signed_chain(&records)).expect_err("decision digest mismatch accepted");
        assert!(broken.fault.contains("decision_digest"), "{}", broken.fault);
    }

    #[test]
    fn repeated_sequence_breaks() {
        let records = records(2);
        let envelopes = vec![sign(&records[0], 1), sign(&records[0], 1)];
        let broken = verify(&envelopes).expect_err("repeated record accepted");
        assert_eq!(broken.sequence, 2);
        assert!(broken.fault.contains("repeats"), "{}", broken.fault);
    }

    #[test]
    fn key_must_be_public_pem() {
        let error =
            TrustedKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .expect_err("private key label accepted");
        assert!(error.contains("PUBLIC KEY"), "{error}");
    }
}
