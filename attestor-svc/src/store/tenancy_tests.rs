//! Tenant views of one database: no read, listing or import-log lookup of one tenant reaches
//! the keys of another, and the roll-back of interrupted tile imports works per tenant.

use stella_authority::Tenant;

use super::{CommitOutcome, CurrentTrustSet, EvidenceOutcome, ImportBatch, ImportRecord, ImportSummary, Store};

const ORIGIN: &str = "log.example";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn tenant(name: &str) -> Tenant {
    Tenant::parse(name).expect("valid tenant")
}

fn tiles_record(digest: &str) -> ImportRecord {
    ImportRecord {
        digest: digest.to_owned(),
        file_name: "tiles.tgz".to_owned(),
        imported_at: 0,
        summary: ImportSummary::Tiles {
            checkpoints: Vec::new(),
            tiles: 0,
            entry_bundles: 0,
            proofs: 0,
        },
    }
}

/// Commits one import of every kind of data into `store` and returns nothing; the caller
/// checks what other views see.
fn store_everything(store: &Store) {
    let mut batch = ImportBatch::new(tiles_record(DIGEST));
    batch.put_checkpoint(ORIGIN, 3, b"note-3".to_vec());
    batch.put_proof_checkpoint(ORIGIN, 9, b"proof note 9".to_vec());
    batch.put_tile(ORIGIN, "tile/0/000.p/3", b"tile".to_vec());
    batch.put_tlog_proof(ORIGIN, 2, b"proof-2".to_vec());
    batch.put_evidence("sha256:ev", b"evidence".to_vec());
    batch.set_trust_set(
        CurrentTrustSet {
            digest: "sha256:ts".to_owned(),
            version: 1,
            expires_at: 9,
        },
        b"trust-archive".to_vec(),
    );
    assert_eq!(store.commit(batch).expect("commit"), CommitOutcome::Imported);
    store.put_report("sha256:rep", b"{}").expect("put report");
    assert_eq!(
        store.put_inconsistency(ORIGIN, "record-1", b"record", 4).expect("put record"),
        EvidenceOutcome::Stored
    );
}

/// Checks that `store` reads none of what [`store_everything`] wrote into another tenant.
fn assert_sees_nothing(store: &Store) {
    let tenant = store.tenant().to_owned();
    assert_eq!(store.checkpoint(ORIGIN, 3).expect("get"), None, "{tenant}: checkpoint");
    assert!(store.checkpoints_newest_first(ORIGIN).expect("list").is_empty(), "{tenant}: checkpoints");
    assert_eq!(store.newest_checkpoint(ORIGIN).expect("get"), None, "{tenant}: newest checkpoint");
    assert_eq!(store.proof_checkpoint(ORIGIN, 9).expect("get"), None, "{tenant}: proof checkpoint");
    assert!(
        store.proof_checkpoints_newest_first(ORIGIN).expect("list").is_empty(),
        "{tenant}: proof checkpoints"
    );
    assert_eq!(store.tile(ORIGIN, "tile/0/000.p/3").expect("get"), None, "{tenant}: tile");
    assert!(store.tiles_with_prefix(ORIGIN, "tile/").expect("scan").is_empty(), "{tenant}: tile scan");
    assert!(store.tlog_proofs(ORIGIN, 2).expect("get").is_empty(), "{tenant}: tlog-proofs");
    assert_eq!(store.evidence_archive("sha256:ev").expect("get"), None, "{tenant}: evidence");
    assert_eq!(store.trust_set_archive("sha256:ts").expect("get"), None, "{tenant}: trust set");
    assert_eq!(store.current_trust_set().expect("get"), None, "{tenant}: current trust set");
    assert_eq!(store.import_record(DIGEST).expect("get"), None, "{tenant}: import log");
    assert_eq!(store.report("sha256:rep").expect("get"), None, "{tenant}: report");
    assert!(store.inconsistencies(ORIGIN).expect("list").is_empty(), "{tenant}: inconsistencies");
    assert_eq!(store.inconsistencies_not_recorded(ORIGIN).expect("count"), 0, "{tenant}: not recorded");
    assert!(store.origins().expect("origins").is_empty(), "{tenant}: origins");
}

#[test]
fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Store::open(dir.path()).expect("open store");
    let acme = root.for_tenant(&tenant("acme"));
    // A tenant whose id starts with the other's, and the default tenant of `Store::open`.
    let acme_eu = root.for_tenant(&tenant("acme-eu"));
    assert_eq!(acme.tenant(), "acme");

    store_everything(&acme);

    assert_sees_nothing(&acme_eu);
    assert_sees_nothing(&root);
    assert_eq!(acme.origins().expect("origins"), vec![ORIGIN.to_owned()]);
    assert_eq!(acme.report("sha256:rep").expect("get"), Some(b"{}".to_vec()));

    // The same bundle imported by another tenant is a new import for that tenant, and stores
    // its own copy.
    store_everything(&acme_eu);
    assert_eq!(acme_eu.tile(ORIGIN, "tile/0/000.p/3").expect("get"), Some(b"tile".to_vec()));
    assert_eq!(acme.origins().expect("origins"), vec![ORIGIN.to_owned()]);
    assert_eq!(acme.inconsistencies(ORIGIN).expect("list").len(), 1);
    assert_sees_nothing(&root);
}

#[test]
fn tenant_key_starts_with_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Store::open(dir.path()).expect("open store");
    let globex = root.for_tenant(&tenant("globex"));
    let key = globex.checkpoint_key(ORIGIN, 1);
    assert_eq!(key.get(..4), Some(&6_u32.to_be_bytes()[..]));
    assert_eq!(key.get(4..10), Some(&b"globex"[..]));
}

#[test]
fn interrupted_ingest_rolled_back_per_tenant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("db");
    {
        let root = Store::open(&db_path).expect("open");
        let acme = root.for_tenant(&tenant("acme"));
        let globex = root.for_tenant(&tenant("globex"));

        // globex ingests the tiles of a bundle and stops before its batch.
        let interrupted = globex.begin_staging();
        interrupted.put(ORIGIN, "tile/0/000", b"globex tile").expect("put");
        assert_eq!(interrupted.commit_tiles(dir.path(), DIGEST).expect("ingest"), 1);
        drop(interrupted);

        // acme imports the same bundle completely. Its batch ends only acme's undo log.
        let completed = acme.begin_staging();
        completed.put(ORIGIN, "tile/0/000", b"acme tile").expect("put");
        assert_eq!(completed.commit_tiles(dir.path(), DIGEST).expect("ingest"), 1);
        acme.commit(ImportBatch::new(tiles_record(DIGEST))).expect("commit batch");
        drop(completed);
        assert_eq!(root.tile_key_count().expect("count"), 2);
    }

    let root = Store::open(&db_path).expect("reopen");
    let acme = root.for_tenant(&tenant("acme"));
    let globex = root.for_tenant(&tenant("globex"));
    assert_eq!(root.tile_key_count().expect("count"), 1);
    assert_eq!(acme.tile(ORIGIN, "tile/0/000").expect("get"), Some(b"acme tile".to_vec()));
    assert!(acme.import_record(DIGEST).expect("get").is_some());
    assert_eq!(globex.tile(ORIGIN, "tile/0/000").expect("get"), None);
    assert_eq!(globex.import_record(DIGEST).expect("get"), None);

    // Nothing is left to roll back.
    assert_eq!(root.roll_back_interrupted_ingests().expect("roll back"), 0);
}
