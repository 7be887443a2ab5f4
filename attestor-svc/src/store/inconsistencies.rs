//! The `inconsistencies` column family: evidence records of rejected split views, at most a
//! given number per origin, and a counter per origin of the records not kept beyond that. Also
//! the listing of every origin the store has checkpoints or records for.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{
    CF_CHECKPOINTS, CF_INCONSISTENCIES, CF_PROOF_CHECKPOINTS, Store, StoreError, encode_component, rocks,
};

/// Key suffixes after the origin inside the `inconsistencies` column family: one record per
/// id, and one counter of the records not kept because the origin reached its limit.
const INCONSISTENCY_RECORD: u8 = 0;
const INCONSISTENCY_NOT_RECORDED: u8 = 1;

/// Result of [`Store::put_inconsistency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceOutcome {
    Stored,
    /// A record with the same id was stored before; nothing was written.
    AlreadyStored,
    /// The origin already has the maximum number of records. The record was not stored, and
    /// the origin's counter of records not kept is now `not_recorded`.
    LimitReached { not_recorded: u64 },
}

impl Store {
    /// Stores one inconsistency record of `origin` under `id`, in its own write batch, unless
    /// the origin already has `max_per_origin` records. Then the origin's counter of records
    /// not kept goes up by one instead. Records are never replaced or deleted, so the first
    /// evidence of a split view stays even when a log keeps signing forks.
    ///
    /// Call it with the import lock held, so that counting and writing do not interleave.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails, and [`StoreError::Corrupt`] for a counter that
    /// is not 8 bytes.
    pub fn put_inconsistency(
        &self,
        origin: &str,
        id: &str,
        record: &[u8],
        max_per_origin: usize,
    ) -> Result<EvidenceOutcome, StoreError> {
        let key = self.inconsistency_key(origin, id);
        if self.get(CF_INCONSISTENCIES, &key)?.is_some() {
            return Ok(EvidenceOutcome::AlreadyStored);
        }

        let prefix = self.inconsistency_prefix(origin);
        let cf = self.cf(CF_INCONSISTENCIES)?;
        let mut count = 0_usize;
        for item in self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)) {
            let (found, _) = item.map_err(rocks("iterate inconsistencies"))?;
            if !found.starts_with(&prefix) {
                break;
            }
            count = count.saturating_add(1);
        }

        let mut write = WriteBatch::default();
        let outcome = if count < max_per_origin {
            write.put_cf(cf, &key, record);
            EvidenceOutcome::Stored
        } else {
            let not_recorded = self.inconsistencies_not_recorded(origin)?.saturating_add(1);
            write.put_cf(cf, self.not_recorded_key(origin), not_recorded.to_be_bytes());
            EvidenceOutcome::LimitReached { not_recorded }
        };
        // The proof cache reads these records, so reports verified before them are stale.
        self.bump_tlog_generation(&mut write)?;
        self.db.write(write).map_err(rocks("write inconsistency"))?;
        Ok(outcome)
    }

    /// Returns the inconsistency records of an origin, ordered by id.
    pub fn inconsistencies(&self, origin: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = self.inconsistency_prefix(origin);
        let cf = self.cf(CF_INCONSISTENCIES)?;
        let mut found = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward)) {
            let (key, value) = item.map_err(rocks("iterate inconsistencies"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            found.push(value.into_vec());
        }
        Ok(found)
    }

    /// Returns how many inconsistency records of an origin were not kept because the origin
    /// had reached its limit.
    pub fn inconsistencies_not_recorded(&self, origin: &str) -> Result<u64, StoreError> {
        let key = self.not_recorded_key(origin);
        let Some(bytes) = self.get(CF_INCONSISTENCIES, &key)? else {
            return Ok(0);
        };
        let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            what: "inconsistency counter",
            key: origin.to_owned(),
            why: format!("{} bytes instead of 8", bytes.len()),
        })?;
        Ok(u64::from_be_bytes(array))
    }

    /// Returns every origin that has a stored checkpoint, tlog-proof checkpoint or inconsistency
    /// record, sorted and without duplicates.
    pub fn origins(&self) -> Result<Vec<String>, StoreError> {
        let mut origins = std::collections::BTreeSet::new();
        for cf_name in [CF_CHECKPOINTS, CF_PROOF_CHECKPOINTS, CF_INCONSISTENCIES] {
            origins.extend(self.origins_in(cf_name)?);
        }
        Ok(origins.into_iter().collect())
    }

    /// Lists the origins of one column family whose keys start with tenant and origin. It reads
    /// one key per origin: after each one it seeks past every key of that origin.
    fn origins_in(&self, cf_name: &'static str) -> Result<Vec<String>, StoreError> {
        let tenant = encode_component(&self.tenant);
        let cf = self.cf(cf_name)?;
        let mut origins = Vec::new();
        let mut cursor = tenant.clone();
        loop {
            let mut iterator = self.db.iterator_cf(cf, IteratorMode::From(&cursor, Direction::Forward));
            let Some(item) = iterator.next() else { break };
            let (key, _) = item.map_err(rocks("iterate origins"))?;
            let Some(rest) = key.strip_prefix(tenant.as_slice()) else {
                break;
            };
            let origin = decode_component(rest).ok_or_else(|| StoreError::Corrupt {
                what: "origin key",
                key: hex::encode(&key),
                why: "the origin component is truncated or not UTF-8".to_owned(),
            })?;
            let Some(next) = prefix_successor(&self.origin_prefix(&origin)) else {
                origins.push(origin);
                break;
            };
            origins.push(origin);
            cursor = next;
        }
        Ok(origins)
    }

    fn inconsistency_prefix(&self, origin: &str) -> Vec<u8> {
        let mut key = self.origin_prefix(origin);
        key.push(INCONSISTENCY_RECORD);
        key
    }

    fn inconsistency_key(&self, origin: &str, id: &str) -> Vec<u8> {
        let mut key = self.inconsistency_prefix(origin);
        key.extend_from_slice(id.as_bytes());
        key
    }

    fn not_recorded_key(&self, origin: &str) -> Vec<u8> {
        let mut key = self.origin_prefix(origin);
        key.push(INCONSISTENCY_NOT_RECORDED);
        key
    }
}

/// Decodes the string component at the start of `bytes`, as written by [`encode_component`].
fn decode_component(bytes: &[u8]) -> Option<String> {
    let length: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let length = usize::try_from(u32::from_be_bytes(length)).ok()?;
    let text = bytes.get(4..4_usize.checked_add(length)?)?;
    String::from_utf8(text.to_vec()).ok()
}

/// Returns the smallest key above every key that starts with `prefix`, or `None` when no such
/// key exists (the prefix is all 0xff bytes).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if let Some(incremented) = last.checked_add(1) {
            next.push(incremented);
            return Some(next);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ImportBatch, ImportRecord, ImportSummary};

    fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = Store::open(dir.path()).expect("open store");
        (dir, store)
    }

    fn record(digest: &str) -> ImportRecord {
        ImportRecord {
            digest: digest.to_owned(),
            file_name: "bundle.tgz".to_owned(),
            imported_at: 1_780_000_000,
            summary: ImportSummary::Tiles {
                checkpoints: Vec::new(),
                tiles: 0,
                entry_bundles: 0,
                proofs: 0,
            },
        }
    }

    #[test]
    fn inconsistencies_bounded_per_origin() {
        let (_dir, store) = open_temp();
        let put = |origin: &str, id: &str| {
            store
                .put_inconsistency(origin, id, format!("record {id}").as_bytes(), 2)
                .expect("put inconsistency")
        };
        assert_eq!(put("log.example", "bb"), EvidenceOutcome::Stored);
        assert_eq!(put("log.example", "aa"), EvidenceOutcome::Stored);
        assert_eq!(put("log.example", "aa"), EvidenceOutcome::AlreadyStored);
        assert_eq!(put("log.example", "cc"), EvidenceOutcome::LimitReached { not_recorded: 1 });
        assert_eq!(put("log.example", "dd"), EvidenceOutcome::LimitReached { not_recorded: 2 });
        // A stored record is still found once the limit is reached.
        assert_eq!(put("log.example", "bb"), EvidenceOutcome::AlreadyStored);
        // Another origin, one that shares a prefix, has its own limit.
        assert_eq!(put("log.example.org", "aa"), EvidenceOutcome::Stored);

        assert_eq!(
            store.inconsistencies("log.example").expect("list"),
            vec![b"record aa".to_vec(), b"record bb".to_vec()]
        );
        assert_eq!(store.inconsistencies_not_recorded("log.example").expect("count"), 2);
        assert_eq!(store.inconsistencies_not_recorded("log.example.org").expect("count"), 0);
        assert_eq!(
            store.inconsistencies("log.example.org").expect("list"),
            vec![b"record aa".to_vec()]
        );
        assert!(store.inconsistencies("log.unknown").expect("list").is_empty());
    }

    #[test]
    fn origins_listed_once_sorted() {
        let (_dir, store) = open_temp();
        assert!(store.origins().expect("origins").is_empty());
        let mut batch = ImportBatch::new(record("sha256:aa"));
        for size in [3_u64, 9, 70_000] {
            batch.put_checkpoint("b.example", size, b"note".to_vec());
        }
        batch.put_proof_checkpoint("b.example", 4, b"note".to_vec());
        batch.put_proof_checkpoint("a.example", 4, b"note".to_vec());
        // Tiles alone do not make an origin listed.
        batch.put_tile("d.example", "tile/0/000.p/3", b"tile".to_vec());
        store.commit(batch).expect("commit");
        store
            .put_inconsistency("c.example", "aa", b"record", 10)
            .expect("put inconsistency");
        store
            .put_inconsistency("b.example\u{ff}", "aa", b"record", 10)
            .expect("put inconsistency");

        assert_eq!(
            store.origins().expect("origins"),
            vec!["a.example", "b.example", "b.example\u{ff}", "c.example"]
        );
    }

    #[test]
    fn prefix_successor_carries() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(decode_component(&encode_component("log.example")), Some("log.example".to_owned()));
        assert_eq!(decode_component(&[0, 0, 0, 9, b'a']), None);
    }
}
