//! The tlog state generation and the stored-report index.
//!
//! The `tlog_state` column family keeps one `u64` per tenant: the tlog state generation. Every
//! write that can change what the tenant's proof cache returns increments it in the same
//! `WriteBatch`: a tile/proof bundle import ([`Store::commit`] of a tiles record) and a stored
//! inconsistency record ([`Store::put_inconsistency`]). A repeated import writes nothing and
//! keeps it. Both writers hold the import lock, so the read-increment-write never interleaves.
//!
//! The `report_index` column family maps (tenant, evidence bundle id, trust set digest, tlog
//! state generation, verifier version) to the digest of the report that verification produced
//! from exactly those inputs. A report contains no verification time, so while the trust set is
//! valid it depends only on these inputs, and the attestor serves the stored report instead of
//! verifying again. An import or a new trust set changes the key, so an older entry is never
//! found again, whether it recorded a failure or a success.
//!
//! Keys: the tenant, bundle id and trust set digest as length-prefixed strings, the generation as
//! `u64` big-endian, then the verifier version as a length-prefixed string.

use rocksdb::WriteBatch;

use super::{CF_REPORTS, Store, StoreError, encode_component, rocks};

/// Column family of the tlog state generation of each tenant.
pub(super) const CF_TLOG_STATE: &str = "tlog_state";

/// Column family of the stored-report index.
pub(super) const CF_REPORT_INDEX: &str = "report_index";

/// The inputs that fix a verification report, as the stored-report index keys them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKey {
    /// Evidence bundle id (`sha256:<hex>` of its manifest).
    pub bundle_id: String,
    /// Digest of the trust root set the report was verified against.
    pub trust_set_digest: String,
    /// Tlog state generation of the tenant, read before verification started.
    pub tlog_generation: u64,
    /// [`stella_verify::report::REPORT_VERIFIER_VERSION`] of the verifier that wrote the report.
    pub verifier_version: String,
}

impl Store {
    /// Returns the tenant's tlog state generation: 0 before the first tile import.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails, [`StoreError::Corrupt`] for a value that is not
    /// 8 bytes.
    pub fn tlog_generation(&self) -> Result<u64, StoreError> {
        let key = encode_component(&self.tenant);
        let Some(bytes) = self.get(CF_TLOG_STATE, &key)? else {
            return Ok(0);
        };
        let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            what: "tlog state generation",
            key: self.tenant.to_string(),
            why: format!("{} bytes instead of 8", bytes.len()),
        })?;
        Ok(u64::from_be_bytes(array))
    }

    /// Adds the increment of the tenant's tlog state generation to `write`. Call it with the
    /// import lock held, because it reads the current value first.
    ///
    /// # Errors
    ///
    /// As [`Store::tlog_generation`].
    pub(super) fn bump_tlog_generation(&self, write: &mut WriteBatch) -> Result<(), StoreError> {
        let next = self.tlog_generation()?.wrapping_add(1);
        write.put_cf(
            self.cf(CF_TLOG_STATE)?,
            encode_component(&self.tenant),
            next.to_be_bytes(),
        );
        Ok(())
    }

    /// Returns the digest of the report indexed under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails, [`StoreError::Corrupt`] for a digest that is not
    /// UTF-8.
    pub fn indexed_report_digest(&self, key: &ReportKey) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.get(CF_REPORT_INDEX, &self.report_index_key(key))? else {
            return Ok(None);
        };
        String::from_utf8(bytes).map(Some).map_err(|_| StoreError::Corrupt {
            what: "report index entry",
            key: key.bundle_id.clone(),
            why: "the report digest is not UTF-8".to_owned(),
        })
    }

    /// Stores a report under its digest and indexes it under `key`, in one write batch.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rocks`] when RocksDB fails; nothing is written then.
    pub fn put_indexed_report(&self, key: &ReportKey, digest: &str, report_json: &[u8]) -> Result<(), StoreError> {
        let mut write = WriteBatch::default();
        write.put_cf(self.cf(CF_REPORTS)?, self.simple_key(digest), report_json);
        write.put_cf(self.cf(CF_REPORT_INDEX)?, self.report_index_key(key), digest.as_bytes());
        self.db.write(write).map_err(rocks("write indexed report"))
    }

    fn report_index_key(&self, key: &ReportKey) -> Vec<u8> {
        let mut bytes = self.simple_key(&key.bundle_id);
        bytes.extend(encode_component(&key.trust_set_digest));
        bytes.extend_from_slice(&key.tlog_generation.to_be_bytes());
        bytes.extend(encode_component(&key.verifier_version));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ImportBatch, ImportRecord, ImportSummary};

    fn key(generation: u64) -> ReportKey {
        ReportKey {
            bundle_id: "sha256:ev".to_owned(),
            trust_set_digest: "sha256:ts".to_owned(),
            tlog_generation: generation,
            verifier_version: "1".to_owned(),
        }
    }

    fn record(digest: &str, summary: ImportSummary) -> ImportRecord {
        ImportRecord {
            digest: digest.to_owned(),
            file_name: "bundle.tgz".to_owned(),
            imported_at: 1_780_000_000,
            summary,
        }
    }

    fn tiles(digest: &str) -> ImportBatch {
        ImportBatch::new(record(
            digest,
            ImportSummary::Tiles {
                checkpoints: Vec::new(),
                tiles: 0,
                entry_bundles: 0,
                proofs: 1,
            },
        ))
    }

    #[test]
    fn generation_counts_new_tile_imports() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        assert_eq!(store.tlog_generation().expect("read"), 0);

        store.commit(tiles("sha256:aa")).expect("first import");
        assert_eq!(store.tlog_generation().expect("read"), 1);

        store.commit(tiles("sha256:aa")).expect("repeated import");
        assert_eq!(
            store.tlog_generation().expect("read"),
            1,
            "a repeated import changes nothing"
        );

        let evidence = ImportBatch::new(record("sha256:ev", ImportSummary::Evidence { sigstore_bundles: 1 }));
        store.commit(evidence).expect("evidence");
        assert_eq!(store.tlog_generation().expect("read"), 1, "evidence is not tlog state");

        store.commit(tiles("sha256:bb")).expect("second import");
        assert_eq!(store.tlog_generation().expect("read"), 2);
    }

    #[test]
    fn generation_counts_inconsistency_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        store
            .put_inconsistency("log.example", "id-1", b"record", 1)
            .expect("store");
        assert_eq!(store.tlog_generation().expect("read"), 1);
        store
            .put_inconsistency("log.example", "id-1", b"record", 1)
            .expect("same id");
        assert_eq!(
            store.tlog_generation().expect("read"),
            1,
            "an existing record changes nothing"
        );
        store
            .put_inconsistency("log.example", "id-2", b"record", 1)
            .expect("over the limit");
        assert_eq!(
            store.tlog_generation().expect("read"),
            2,
            "the counter of records not kept changed"
        );
    }

    #[test]
    fn generation_is_per_tenant_and_persisted() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(dir.path()).expect("open store");
            store.commit(tiles("sha256:aa")).expect("import");
        }
        let store = Store::open(dir.path()).expect("reopen store");
        assert_eq!(store.tlog_generation().expect("read"), 1);
        let other = store.for_tenant(&stella_authority::Tenant::parse("other").expect("tenant"));
        assert_eq!(other.tlog_generation().expect("read"), 0);
    }

    #[test]
    fn index_finds_only_exact_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open store");
        store.put_indexed_report(&key(3), "sha256:rep", b"{}").expect("put");

        assert_eq!(
            store.indexed_report_digest(&key(3)).expect("get"),
            Some("sha256:rep".to_owned())
        );
        assert_eq!(store.report("sha256:rep").expect("get"), Some(b"{}".to_vec()));
        assert_eq!(store.indexed_report_digest(&key(4)).expect("get"), None);
        let other_trust = ReportKey {
            trust_set_digest: "sha256:other".to_owned(),
            ..key(3)
        };
        assert_eq!(store.indexed_report_digest(&other_trust).expect("get"), None);
        let other_version = ReportKey {
            verifier_version: "2".to_owned(),
            ..key(3)
        };
        assert_eq!(store.indexed_report_digest(&other_version).expect("get"), None);
        let other_tenant = store.for_tenant(&stella_authority::Tenant::parse("other").expect("tenant"));
        assert_eq!(other_tenant.indexed_report_digest(&key(3)).expect("get"), None);
    }
}
