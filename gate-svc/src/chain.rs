//! Per-tenant hash chain of signed decision records in RocksDB.
//!
//! Three column families hold the chain, every key starting with the tenant's length-prefixed
//! id (see [`crate::store`]):
//!
//! - `decision_chain`: tenant, then the sequence number as `u64` big-endian, so key order is
//!   sequence order. The value is the record id (length-prefixed) followed by the DSSE envelope
//!   JSON exactly as signed.
//! - `decision_index`: tenant, then the record id; the value is the sequence number.
//! - `decision_heads`: tenant alone; the value is the JSON [`ChainHead`].
//!
//! An append reads the head, builds and signs the next record, and writes all three keys in one
//! `WriteBatch`, under the store's write lock, so concurrent evaluations always form one linear
//! chain and a crash never leaves half a record. An append for a request id also writes the id's
//! entry in `decision_requests` (see [`crate::idempotency`]) in that batch.

use rocksdb::WriteBatch;
use serde::{Deserialize, Serialize};

use crate::break_glass::Override;
use crate::idempotency::RequestEntry;
use crate::record::ChainPosition;
use crate::store::{
    CF_BREAK_GLASS, CF_DECISION_CHAIN, CF_DECISION_HEADS, CF_DECISION_INDEX, CF_DECISION_REQUESTS, StoreError, TenantStore,
    decode_component, encode_component, rocks,
};

/// The last record of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last record.
    pub sequence: u64,
    /// "sha256:<hex>" of the last record's canonical JSON.
    pub record_digest: String,
}

/// The signed envelope of a new record and the record digest that the next record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// Canonical JSON of the DSSE envelope.
    pub envelope_json: Vec<u8>,
    /// "sha256:<hex>" of the record's canonical JSON.
    pub record_digest: String,
    /// A break-glass override that this record's evaluation granted. It is stored in the
    /// record's write batch, so an override never takes effect without the record of its grant.
    pub grant: Option<Override>,
}

/// One stored record of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    pub sequence: u64,
    pub record_id: String,
    /// The DSSE envelope JSON as stored.
    pub envelope_json: Vec<u8>,
}

/// Error of the caller's record builder during an append.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// Result of [`TenantStore::append_decision_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The record was appended at this position.
    Appended(ChainPosition, SignedRecord),
    /// The request id already names a record, possibly of another promotion. Nothing was
    /// written and the builder did not run.
    RequestSeen(RequestEntry),
}

impl TenantStore {
    /// Appends a record to this tenant's chain under `record_id`.
    ///
    /// `build` receives the new record's position (sequence and previous digest) and returns the
    /// signed record. It runs under the write lock, so no other append can take the same
    /// position.
    ///
    /// # Errors
    ///
    /// [`StoreError::DecisionExists`] when the id is taken, [`StoreError::Build`] when `build`
    /// fails, and RocksDB errors. Nothing is written on error.
    pub fn append_decision(
        &self,
        record_id: &str,
        build: impl FnOnce(&ChainPosition) -> Result<SignedRecord, BuildError>,
    ) -> Result<(ChainPosition, SignedRecord), StoreError> {
        let _guard = self.lock();
        self.append_locked(record_id, None, build)
    }

    /// Appends the record `entry.record_id` for `request_id`, unless the id already names a
    /// record. The check and the write of the id's entry happen under the write lock that every
    /// append takes, and the entry is written in the record's batch, so of two concurrent
    /// requests with one id exactly one appends.
    ///
    /// # Errors
    ///
    /// As [`TenantStore::append_decision`], and [`StoreError::Corrupt`] for an unreadable entry.
    pub fn append_decision_once(
        &self,
        request_id: &str,
        entry: &RequestEntry,
        build: impl FnOnce(&ChainPosition) -> Result<SignedRecord, BuildError>,
    ) -> Result<AppendOutcome, StoreError> {
        let _guard = self.lock();
        if let Some(seen) = self.request_entry(request_id)? {
            return Ok(AppendOutcome::RequestSeen(seen));
        }
        let (position, signed) = self.append_locked(&entry.record_id, Some((request_id, entry)), build)?;
        Ok(AppendOutcome::Appended(position, signed))
    }

    /// Appends a record. The caller must hold the write lock.
    fn append_locked(
        &self,
        record_id: &str,
        request: Option<(&str, &RequestEntry)>,
        build: impl FnOnce(&ChainPosition) -> Result<SignedRecord, BuildError>,
    ) -> Result<(ChainPosition, SignedRecord), StoreError> {
        let index_key = self.key(record_id);
        let head_key = encode_component(self.tenant().as_str());
        let index_cf = self.cf(CF_DECISION_INDEX)?;
        if self.db.get_cf(index_cf, &index_key).map_err(rocks("get decision index"))?.is_some() {
            return Err(StoreError::DecisionExists {
                record_id: record_id.to_owned(),
            });
        }
        let head = self.chain_head_locked()?;
        let position = ChainPosition {
            tenant: self.tenant().as_str().to_owned(),
            sequence: head.as_ref().map_or(1, |head| head.sequence.saturating_add(1)),
            previous_record_digest: head.map(|head| head.record_digest),
        };
        // A head that lags behind the stored records (deleted or rolled back) would make this
        // append overwrite a signed record, so the append fails instead.
        let chain_cf = self.cf(CF_DECISION_CHAIN)?;
        let chain_key = self.sequence_key(position.sequence);
        if self.db.get_cf(chain_cf, &chain_key).map_err(rocks("get decision"))?.is_some() {
            return Err(StoreError::Corrupt {
                what: "chain head",
                key: self.tenant().as_str().to_owned(),
                why: format!(
                    "the head names sequence {}, but a record with sequence {} is already stored",
                    position.sequence - 1,
                    position.sequence
                ),
            });
        }
        let signed = build(&position).map_err(StoreError::Build)?;

        let new_head = ChainHead {
            sequence: position.sequence,
            record_digest: signed.record_digest.clone(),
        };
        let head_json = serde_json::to_vec(&new_head).map_err(|error| StoreError::Corrupt {
            what: "chain head",
            key: self.tenant().as_str().to_owned(),
            why: error.to_string(),
        })?;
        let mut value = encode_component(record_id);
        value.extend_from_slice(&signed.envelope_json);

        let mut batch = WriteBatch::default();
        batch.put_cf(chain_cf, &chain_key, value);
        batch.put_cf(index_cf, &index_key, position.sequence.to_be_bytes());
        batch.put_cf(self.cf(CF_DECISION_HEADS)?, &head_key, head_json);
        if let Some((request_id, entry)) = request {
            batch.put_cf(self.cf(CF_DECISION_REQUESTS)?, self.key(request_id), entry.to_json()?);
        }
        if let Some(grant) = &signed.grant {
            let (key, value) = self.override_entry(grant)?;
            batch.put_cf(self.cf(CF_BREAK_GLASS)?, key, value);
        }
        self.db.write(batch).map_err(rocks("append decision"))?;
        Ok((position, signed))
    }

    /// Returns the last record's sequence number and digest, or `None` before the first record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for an unreadable head, and RocksDB errors.
    pub fn chain_head(&self) -> Result<Option<ChainHead>, StoreError> {
        let _guard = self.lock();
        self.chain_head_locked()
    }

    fn chain_head_locked(&self) -> Result<Option<ChainHead>, StoreError> {
        let cf = self.cf(CF_DECISION_HEADS)?;
        let key = encode_component(self.tenant().as_str());
        let Some(bytes) = self.db.get_cf(cf, &key).map_err(rocks("get chain head"))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                what: "chain head",
                key: self.tenant().as_str().to_owned(),
                why: error.to_string(),
            })
    }

    /// Returns this tenant's record `record_id`, or `None` when this tenant has none.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the index names a sequence whose record is missing or
    /// unreadable, and RocksDB errors.
    pub fn decision(&self, record_id: &str) -> Result<Option<StoredDecision>, StoreError> {
        let index_cf = self.cf(CF_DECISION_INDEX)?;
        let Some(sequence_bytes) = self.db.get_cf(index_cf, self.key(record_id)).map_err(rocks("get decision index"))?
        else {
            return Ok(None);
        };
        let corrupt = |why: &str| StoreError::Corrupt {
            what: "decision record",
            key: record_id.to_owned(),
            why: why.to_owned(),
        };
        let sequence = <[u8; 8]>::try_from(sequence_bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("the index entry is not an 8-byte sequence number"))?;
        let chain_cf = self.cf(CF_DECISION_CHAIN)?;
        let value = self
            .db
            .get_cf(chain_cf, self.sequence_key(sequence))
            .map_err(rocks("get decision"))?
            .ok_or_else(|| corrupt(&format!("the index names sequence {sequence}, which is missing")))?;
        let stored = self.decode_stored(sequence, &value)?;
        if stored.record_id != record_id {
            return Err(corrupt(&format!(
                "the index names sequence {sequence}, which holds record {}",
                stored.record_id
            )));
        }
        Ok(Some(stored))
    }

    /// Returns up to `limit` records with sequence numbers above `after`, in sequence order, and
    /// whether more follow. Numbers of deleted records are skipped, not reported.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a key or value that is not in the chain layout, and RocksDB
    /// errors.
    pub fn decisions_after(&self, after: u64, limit: usize) -> Result<(Vec<StoredDecision>, bool), StoreError> {
        let cf = self.cf(CF_DECISION_CHAIN)?;
        let prefix = encode_component(self.tenant().as_str());
        let Some(start) = after.checked_add(1) else {
            return Ok((Vec::new(), false));
        };
        let start_key = self.sequence_key(start);
        let mode = rocksdb::IteratorMode::From(&start_key, rocksdb::Direction::Forward);
        let mut records = Vec::new();
        for item in self.db.iterator_cf(cf, mode) {
            let (key, value) = item.map_err(rocks("list decisions"))?;
            // The iterator runs into the next tenant's keys after this tenant's last record.
            let Some(sequence_bytes) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let sequence = <[u8; 8]>::try_from(sequence_bytes)
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "decision chain key",
                    key: hex::encode(&key),
                    why: "not a tenant followed by an 8-byte sequence number".to_owned(),
                })?;
            if records.len() == limit {
                return Ok((records, true));
            }
            records.push(self.decode_stored(sequence, &value)?);
        }
        Ok((records, false))
    }

    /// Returns the ids of this tenant's decision records in sequence order.
    ///
    /// # Errors
    ///
    /// As [`TenantStore::decisions_after`].
    pub fn decision_ids(&self) -> Result<Vec<String>, StoreError> {
        let (records, _) = self.decisions_after(0, usize::MAX)?;
        Ok(records.into_iter().map(|record| record.record_id).collect())
    }

    fn sequence_key(&self, sequence: u64) -> Vec<u8> {
        let mut key = encode_component(self.tenant().as_str());
        key.extend_from_slice(&sequence.to_be_bytes());
        key
    }

    fn decode_stored(&self, sequence: u64, value: &[u8]) -> Result<StoredDecision, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "decision record",
            key: format!("{}/{sequence}", self.tenant()),
            why: "the value does not start with a length-prefixed record id".to_owned(),
        };
        let (length, rest) = value.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let length = usize::try_from(u32::from_be_bytes(*length)).map_err(|_| corrupt())?;
        let id_end = length.checked_add(4).filter(|end| *end <= value.len()).ok_or_else(corrupt)?;
        let record_id = decode_component(&value[..id_end]).ok_or_else(corrupt)?;
        // The envelope is returned as stored, even when it is damaged: the offline verifier,
        // not the store, decides whether it is valid.
        Ok(StoredDecision {
            sequence,
            record_id,
            envelope_json: rest[length..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stella_access::Tenant;

    use super::*;
    use crate::record::sha256_digest;
    use crate::store::Store;

    fn tenant(name: &str) -> Tenant {
        Tenant::parse(name).expect("valid tenant")
    }

    /// Appends a fake signed record whose envelope is the position's JSON.
    fn append(store: &TenantStore, record_id: &str) -> (ChainPosition, SignedRecord) {
        store
            .append_decision(record_id, |position| {
                let envelope_json = serde_json::to_vec(&serde_json::json!({
                    "id": record_id,
                    "sequence": position.sequence,
                    "previous": position.previous_record_digest,
                }))?;
                Ok(SignedRecord {
                    record_digest: sha256_digest(&envelope_json),
                    envelope_json,
                    grant: None,
                })
            })
            .expect("append")
    }

    #[test]
    fn chain_links_each_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        assert_eq!(store.chain_head().expect("head"), None);

        let (first, first_signed) = append(&store, "dr-1");
        let (second, _) = append(&store, "dr-2");
        let (third, third_signed) = append(&store, "dr-3");

        assert_eq!(first.sequence, 1);
        assert_eq!(first.previous_record_digest, None);
        assert_eq!(first.tenant, "acme");
        assert_eq!(second.sequence, 2);
        assert_eq!(second.previous_record_digest, Some(first_signed.record_digest));
        assert_eq!(third.sequence, 3);
        let head = store.chain_head().expect("head").expect("head after appends");
        assert_eq!(head.sequence, 3);
        assert_eq!(head.record_digest, third_signed.record_digest);
        assert_eq!(store.decision_ids().expect("ids"), vec!["dr-1", "dr-2", "dr-3"]);
    }

    #[test]
    fn decision_found_by_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        append(&store, "dr-1");
        let (_, signed) = append(&store, "dr-2");
        let stored = store.decision("dr-2").expect("get").expect("stored");
        assert_eq!(stored.sequence, 2);
        assert_eq!(stored.record_id, "dr-2");
        assert_eq!(stored.envelope_json, signed.envelope_json);
        assert_eq!(store.decision("dr-9").expect("get"), None);
    }

    #[test]
    fn duplicate_id_rejected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        append(&store, "dr-1");
        let error = store
            .append_decision("dr-1", |_| panic!("the builder must not run for a taken id"))
            .expect_err("second write must fail");
        assert!(
            matches!(&error, StoreError::DecisionExists { record_id } if record_id == "dr-1"),
            "unexpected error {error:?}"
        );
        assert_eq!(store.chain_head().expect("head").map(|head| head.sequence), Some(1));
    }

    #[test]
    fn failed_build_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        let error = store
            .append_decision("dr-1", |_| Err("signing failed".into()))
            .expect_err("build error must fail the append");
        assert!(matches!(error, StoreError::Build(_)), "unexpected error {error:?}");
        assert_eq!(store.chain_head().expect("head"), None);
        assert_eq!(store.decision("dr-1").expect("get"), None);
        assert_eq!(append(&store, "dr-1").0.sequence, 1);
    }

    #[test]
    fn lagging_head_never_overwrites() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        let store = database.for_tenant(&tenant("acme"));
        let (_, first) = append(&store, "dr-1");
        let head_family = store.cf(CF_DECISION_HEADS).expect("heads column family");
        store
            .db
            .delete_cf(head_family, encode_component("acme"))
            .expect("delete the head");

        let error = store
            .append_decision("dr-2", |_| panic!("the builder must not run over a lagging head"))
            .expect_err("append over a lagging head");
        assert!(matches!(&error, StoreError::Corrupt { what: "chain head", .. }), "unexpected error {error:?}");
        let stored = store.decision("dr-1").expect("get").expect("first record kept");
        assert_eq!(stored.envelope_json, first.envelope_json);
        assert_eq!(store.decision("dr-2").expect("get"), None);
    }

    #[test]
    fn chains_separate_per_tenant() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        // Tenant "ab"'s keys sort directly after tenant "a"'s, so a listing of "a" that ran past
        // its prefix would show them.
        let first = store.for_tenant(&tenant("a"));
        let second = store.for_tenant(&tenant("ab"));
        append(&first, "dr-1");
        append(&second, "dr-1");
        append(&second, "dr-2");
        let (next, _) = append(&first, "dr-3");

        assert_eq!(next.sequence, 2, "another tenant's records do not advance this chain");
        assert_eq!(first.decision_ids().expect("ids"), vec!["dr-1", "dr-3"]);
        assert_eq!(second.decision_ids().expect("ids"), vec!["dr-1", "dr-2"]);
        assert_eq!(store.for_tenant(&tenant("b")).decision_ids().expect("ids"), Vec::<String>::new());
        assert_eq!(second.decision("dr-3").expect("get"), None);
    }

    #[test]
    fn pages_follow_sequence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        for id in ["dr-1", "dr-2", "dr-3"] {
            append(&store, id);
        }
        let (page, more) = store.decisions_after(0, 2).expect("first page");
        assert_eq!(page.iter().map(|record| record.sequence).collect::<Vec<_>>(), vec![1, 2]);
        assert!(more);
        let (page, more) = store.decisions_after(2, 2).expect("second page");
        assert_eq!(page.iter().map(|record| record.sequence).collect::<Vec<_>>(), vec![3]);
        assert!(!more);
        let (page, more) = store.decisions_after(u64::MAX, 2).expect("past the end");
        assert!(page.is_empty());
        assert!(!more);
    }

    fn request_entry(record_id: &str, promotion_id: &str) -> RequestEntry {
        RequestEntry {
            record_id: record_id.to_owned(),
            promotion_id: promotion_id.to_owned(),
            gates: Vec::new(),
        }
    }

    fn signed(record_id: &str) -> SignedRecord {
        SignedRecord {
            envelope_json: record_id.as_bytes().to_vec(),
            record_digest: sha256_digest(record_id.as_bytes()),
            grant: None,
        }
    }

    fn grant(promotion_id: &str) -> Override {
        Override {
            promotion_id: promotion_id.to_owned(),
            reason: "outage".to_owned(),
            ticket: "INC-1".to_owned(),
            requested_by: "alice".to_owned(),
            issued_at: 1_000,
            expires_at: 2_000,
        }
    }

    #[test]
    fn grant_stored_only_with_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));

        let failed = store.append_decision("dr-1", |_| Err("signing failed".into()));
        assert!(failed.is_err());
        assert_eq!(store.override_at("rel-1", 1_500).expect("read"), None, "a failed append stores no grant");

        store
            .append_decision_once("req-1", &request_entry("dr-1", "rel-1"), |_| Ok(signed("dr-1")))
            .expect("first append");
        let lost_race = store
            .append_decision_once("req-1", &request_entry("dr-2", "rel-1"), |_| {
                Ok(SignedRecord { grant: Some(grant("rel-1")), ..signed("dr-2") })
            })
            .expect("second append");
        assert!(matches!(lost_race, AppendOutcome::RequestSeen(_)), "{lost_race:?}");
        assert_eq!(store.override_at("rel-1", 1_500).expect("read"), None, "a seen request id stores no grant");

        store
            .append_decision("dr-3", |_| Ok(SignedRecord { grant: Some(grant("rel-1")), ..signed("dr-3") }))
            .expect("append with grant");
        assert_eq!(store.override_at("rel-1", 1_500).expect("read"), Some(grant("rel-1")));
    }

    #[test]
    fn request_id_appends_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        let first = store
            .append_decision_once("req-1", &request_entry("dr-1", "rel-1"), |_| Ok(signed("dr-1")))
            .expect("first append");
        assert!(matches!(first, AppendOutcome::Appended(ref position, _) if position.sequence == 1), "{first:?}");

        let second = store
            .append_decision_once("req-1", &request_entry("dr-2", "rel-2"), |_| {
                panic!("the builder must not run for a seen request id")
            })
            .expect("second append");
        assert_eq!(second, AppendOutcome::RequestSeen(request_entry("dr-1", "rel-1")));
        assert_eq!(store.decision_ids().expect("ids"), vec!["dr-1"]);

        let other = store
            .append_decision_once("req-2", &request_entry("dr-3", "rel-1"), |_| Ok(signed("dr-3")))
            .expect("append with another id");
        assert!(matches!(other, AppendOutcome::Appended(..)), "{other:?}");
    }

    #[test]
    fn failed_build_keeps_request_id_free() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open").for_tenant(&tenant("acme"));
        let error = store
            .append_decision_once("req-1", &request_entry("dr-1", "rel-1"), |_| Err("signing failed".into()))
            .expect_err("build error must fail the append");
        assert!(matches!(error, StoreError::Build(_)), "unexpected error {error:?}");
        assert_eq!(store.request_entry("req-1").expect("get"), None);
    }

    #[test]
    fn request_ids_separate_per_tenant() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        let acme = database.for_tenant(&tenant("acme"));
        let globex = database.for_tenant(&tenant("globex"));
        acme.append_decision_once("req-1", &request_entry("dr-1", "rel-1"), |_| Ok(signed("dr-1")))
            .expect("acme append");
        let outcome = globex
            .append_decision_once("req-1", &request_entry("dr-2", "rel-1"), |_| Ok(signed("dr-2")))
            .expect("globex append");
        assert!(matches!(outcome, AppendOutcome::Appended(..)), "another tenant's id is free: {outcome:?}");
    }

    #[test]
    fn concurrent_same_request_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("open").for_tenant(&tenant("acme")));
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let record_id = format!("dr-{thread}");
                    store
                        .append_decision_once("req-1", &request_entry(&record_id, "rel-1"), |_| Ok(signed(&record_id)))
                        .expect("append")
                })
            })
            .collect();
        let outcomes: Vec<AppendOutcome> =
            threads.into_iter().map(|thread| thread.join().expect("append thread")).collect();
        let appended = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, AppendOutcome::Appended(..)))
            .count();
        assert_eq!(appended, 1);
        let ids = store.decision_ids().expect("ids");
        assert_eq!(ids.len(), 1);
        let entry = store.request_entry("req-1").expect("get").expect("entry");
        assert_eq!(entry.record_id, ids[0]);
    }

    #[test]
    fn concurrent_appends_stay_linear() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path()).expect("open").for_tenant(&tenant("acme")));
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for round in 0..10 {
                        append(&store, &format!("dr-{thread}-{round}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("append thread");
        }

        let (records, _) = store.decisions_after(0, usize::MAX).expect("list");
        assert_eq!(records.len(), 80);
        let mut previous: Option<String> = None;
        for (index, record) in records.iter().enumerate() {
            let expected_sequence = u64::try_from(index).expect("small index") + 1;
            assert_eq!(record.sequence, expected_sequence);
            let envelope: serde_json::Value = serde_json::from_slice(&record.envelope_json).expect("JSON");
            assert_eq!(envelope["sequence"], expected_sequence);
            assert_eq!(envelope["previous"], serde_json::json!(previous), "record {}", record.record_id);
            previous = Some(sha256_digest(&record.envelope_json));
        }
    }
}
