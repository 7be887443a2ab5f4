//! Storage of break-glass overrides in the column family `break_glass`.
//!
//! The key is the tenant and the promotion id (each length-prefixed, as in [`crate::store`]),
//! then `issued_at` as 8 bytes that sort in time order. The value is the JSON
//! [`Override`]. A promotion keeps every override it was granted, so a preview at a past
//! evaluation time finds the override that was in effect then. The override in effect at time
//! `t` is the newest one issued at or before `t`, if `t` is before its expiry. So a new override
//! replaces the previous one from its issue time on, even when the previous one has not expired.

use rocksdb::{Direction, IteratorMode};

use crate::break_glass::Override;
use crate::store::{CF_BREAK_GLASS, StoreError, TenantStore, rocks};

/// Returns the big-endian bytes of `unix_seconds` with the sign bit flipped, which sort in the
/// same order as the signed values.
fn time_component(unix_seconds: i64) -> [u8; 8] {
    (unix_seconds ^ i64::MIN).to_be_bytes()
}

impl TenantStore {
    /// Stores `grant` for its promotion. A grant of the same promotion issued in the same second
    /// is replaced.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the grant cannot be serialized, and RocksDB errors.
    pub fn put_override(&self, grant: &Override) -> Result<(), StoreError> {
        let (key, value) = self.override_entry(grant)?;
        let cf = self.cf(CF_BREAK_GLASS)?;
        self.db
            .put_cf(cf, key, value)
            .map_err(rocks("put break-glass override"))
    }

    /// Returns the key and value under which `grant` is stored, for a write batch.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the grant cannot be serialized.
    pub(crate) fn override_entry(&self, grant: &Override) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let value = serde_json::to_vec(grant).map_err(|error| StoreError::Corrupt {
            what: "break-glass override",
            key: grant.promotion_id.clone(),
            why: error.to_string(),
        })?;
        let mut key = self.key(&grant.promotion_id);
        key.extend_from_slice(&time_component(grant.issued_at));
        Ok((key, value))
    }

    /// Returns the newest override of this tenant's promotion `promotion_id` issued at or before
    /// `evaluation_time`, expired or not, or `None` when there is none. An override of another
    /// tenant or promotion is never returned.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a stored value that is not an override of this promotion, and
    /// RocksDB errors.
    pub fn override_at(
        &self,
        promotion_id: &str,
        evaluation_time: i64,
    ) -> Result<Option<Override>, StoreError> {
        let prefix = self.key(promotion_id);
        let mut start = prefix.clone();
        start.extend_from_slice(&time_component(evaluation_time));
        let cf = self.cf(CF_BREAK_GLASS)?;

        // A reverse iterator from `start` begins at the last key at or before it.
        let mut iterator = self
            .db
            .iterator_cf(cf, IteratorMode::From(&start, Direction::Reverse));
        let Some(item) = iterator.next() else {
            return Ok(None);
        };
        let (key, value) = item.map_err(rocks("read break-glass override"))?;
        // Keys of this promotion are the prefix plus 8 bytes; anything else belongs to another
        // promotion or tenant that sorts before this one.
        if key.len() != prefix.len() + 8 || !key.starts_with(&prefix) {
            return Ok(None);
        }
        let corrupt = |why: String| StoreError::Corrupt {
            what: "break-glass override",
            key: format!("{}/{promotion_id}", self.tenant()),
            why,
        };
        let grant: Override =
            serde_json::from_slice(&value).map_err(|error| corrupt(error.to_string()))?;
        if grant.promotion_id != promotion_id
            || key[prefix.len()..] != time_component(grant.issued_at)
        {
            return Err(corrupt(format!(
                "the value names promotion {:?} issued at {}, which does not match its key",
                grant.promotion_id, grant.issued_at
            )));
        }
        Ok(Some(grant))
    }
}

#[cfg(test)]
mod tests {
    use stella_access::Tenant;

    use super::*;
    use crate::store::Store;

    fn tenant(name: &str) -> Tenant {
        Tenant::parse(name).expect("valid tenant")
    }

    /// Opens a store in a new temporary directory as tenant "acme".
    fn open_temp() -> (tempfile::TempDir, TenantStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path())
            .expect("open")
            .for_tenant(&tenant("acme"));
        (dir, store)
    }

    fn grant(promotion_id: &str, issued_at: i64, expires_at: i64) -> Override {
        Override {
            promotion_id: promotion_id.to_owned(),
            reason: format!("override issued at {issued_at}"),
            ticket: "INC-1".to_owned(),
            requested_by: "alice@acme".to_owned(),
            issued_at,
            expires_at,
        }
    }

    #[test]
    fn override_found_from_issue_time() {
        let (_dir, store) = open_temp();
        assert_eq!(store.override_at("rel-1", 1_000).expect("read"), None);

        store
            .put_override(&grant("rel-1", 1_000, 2_000))
            .expect("put");
        assert_eq!(
            store.override_at("rel-1", 999).expect("read"),
            None,
            "before issue"
        );
        assert_eq!(
            store.override_at("rel-1", 1_000).expect("read"),
            Some(grant("rel-1", 1_000, 2_000))
        );
        // Expired overrides are returned too; the caller checks the window.
        assert_eq!(
            store.override_at("rel-1", 5_000).expect("read"),
            Some(grant("rel-1", 1_000, 2_000))
        );
    }

    #[test]
    fn newer_override_replaces_older() {
        let (_dir, store) = open_temp();
        store
            .put_override(&grant("rel-1", 1_000, 9_000))
            .expect("put first");
        store
            .put_override(&grant("rel-1", 2_000, 3_000))
            .expect("put second");

        assert_eq!(
            store.override_at("rel-1", 1_500).expect("read"),
            Some(grant("rel-1", 1_000, 9_000))
        );
        assert_eq!(
            store.override_at("rel-1", 2_500).expect("read"),
            Some(grant("rel-1", 2_000, 3_000))
        );
        assert_eq!(
            store.override_at("rel-1", 4_000).expect("read"),
            Some(grant("rel-1", 2_000, 3_000))
        );
    }

    #[test]
    fn same_second_override_replaced() {
        let (_dir, store) = open_temp();
        store
            .put_override(&grant("rel-1", 1_000, 2_000))
            .expect("put first");
        store
            .put_override(&grant("rel-1", 1_000, 1_500))
            .expect("put second");
        assert_eq!(
            store.override_at("rel-1", 1_000).expect("read"),
            Some(grant("rel-1", 1_000, 1_500))
        );
    }

    #[test]
    fn override_stays_with_promotion() {
        let (_dir, store) = open_temp();
        // "rel-1" sorts before "rel-10" and "rel-2"; a lookup that ran past its prefix would
        // find the other promotion's override.
        store
            .put_override(&grant("rel-1", 1_000, 2_000))
            .expect("put");
        assert_eq!(store.override_at("rel-10", 1_500).expect("read"), None);
        assert_eq!(store.override_at("rel-2", 1_500).expect("read"), None);
        assert_eq!(store.override_at("rel-", 1_500).expect("read"), None);
    }

    #[test]
    fn override_stays_with_tenant() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Store::open(dir.path()).expect("open");
        let acme = database.for_tenant(&tenant("acme"));
        acme.put_override(&grant("rel-1", 1_000, 2_000))
            .expect("put");
        for other in ["acmf", "acm", "globex", "b"] {
            let other = database.for_tenant(&tenant(other));
            assert_eq!(
                other.override_at("rel-1", 1_500).expect("read"),
                None,
                "tenant {}",
                other.tenant()
            );
        }
    }

    #[test]
    fn negative_times_sort_first() {
        let (_dir, store) = open_temp();
        store.put_override(&grant("rel-1", -5, 10)).expect("put");
        store.put_override(&grant("rel-1", 5, 10)).expect("put");
        assert_eq!(
            store.override_at("rel-1", 0).expect("read"),
            Some(grant("rel-1", -5, 10))
        );
        assert_eq!(
            store.override_at("rel-1", 5).expect("read"),
            Some(grant("rel-1", 5, 10))
        );
    }

    #[test]
    fn overrides_survive_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(dir.path())
                .expect("open")
                .for_tenant(&tenant("acme"));
            store
                .put_override(&grant("rel-1", 1_000, 2_000))
                .expect("put");
        }
        let store = Store::open(dir.path())
            .expect("reopen")
            .for_tenant(&tenant("acme"));
        assert_eq!(
            store.override_at("rel-1", 1_999).expect("read"),
            Some(grant("rel-1", 1_000, 2_000))
        );
    }

    #[test]
    fn corrupt_value_reported() {
        let (_dir, store) = open_temp();
        let mut key = store.key("rel-1");
        key.extend_from_slice(&time_component(1_000));
        let cf = store.cf(CF_BREAK_GLASS).expect("column family");
        store
            .db
            .put_cf(cf, &key, b"not json")
            .expect("put raw value");
        let error = store
            .override_at("rel-1", 1_000)
            .expect_err("corrupt value");
        assert!(
            matches!(
                error,
                StoreError::Corrupt {
                    what: "break-glass override",
                    ..
                }
            ),
            "{error:?}"
        );

        // A value naming another promotion than its key is corrupt too.
        let moved = serde_json::to_vec(&grant("rel-2", 1_000, 2_000)).expect("JSON");
        store.db.put_cf(cf, &key, moved).expect("put raw value");
        let error = store
            .override_at("rel-1", 1_000)
            .expect_err("mismatched value");
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    }
}
