//! The stored trust set against `--max-bundle-bytes`: the limit bounds archives that arrive, never
//! the trust set the attestor already accepted and stored. The attestor restarts over the same
//! RocksDB with a limit below the stored set's size and must still import tiles and prove
//! inclusion with that set.

mod common;

use common::{
    Server, TESSERA_ORIGIN, import_request, reason_of, stream_import, tessera_tiles, tessera_trust_set, vectors,
};
use stella_bundle::Limits;
use stella_proto::attestor::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn stored_trust_set_outlives_smaller_limit() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let trust = tessera_trust_set(&vectors);
    let trust_bytes = u64::try_from(trust.len()).expect("size");
    let tiles_14 = tessera_tiles(&vectors, 14);
    let tiles_15 = tessera_tiles(&vectors, 15);
    assert!(
        u64::try_from(tiles_14.len().max(tiles_15.len())).expect("size") < trust_bytes - 1,
        "the tile bundles must fit under the smaller limit"
    );

    // A limit that the trust set just fits.
    let fitting = Limits {
        max_archive_bytes: trust_bytes,
        ..Limits::default()
    };
    let server = Server::start_with_limits(dir.path(), fitting).await;
    let mut client = server.client().await;
    client
        .import_trust_roots(import_request("trust.tgz", trust.clone()))
        .await
        .expect("import a trust set that fits");
    client
        .import_tiles(import_request("tessera-14.tgz", tiles_14))
        .await
        .expect("import tiles of tree size 14");
    server.stop().await;

    // A restart with a limit below the stored set's size reopens the stored set from RocksDB.
    let smaller = Limits {
        max_archive_bytes: trust_bytes - 1,
        ..Limits::default()
    };
    let server = Server::start_with_limits(dir.path(), smaller).await;
    let mut client = server.client().await;
    let imported = stream_import(&mut client, "tessera-15.tgz", &tiles_15)
        .await
        .unwrap_or_else(|status| panic!("streamed tile import after restart: {status:?}"));
    let checkpoint = imported.checkpoints.first().expect("one checkpoint");
    assert_eq!((checkpoint.origin.as_str(), checkpoint.tree_size), (TESSERA_ORIGIN, 15));

    let included = client
        .verify_inclusion(pb::VerifyInclusionRequest {
            origin: TESSERA_ORIGIN.to_owned(),
            index: 14,
            entry: b"fivten".to_vec(),
            sequence: 0,
        })
        .await
        .expect("VerifyInclusion succeeds")
        .into_inner();
    assert!(included.included, "{}", included.detail);

    // The smaller limit still applies to an archive that arrives.
    let status = client
        .import_trust_roots(import_request("trust.tgz", trust))
        .await
        .expect_err("the same trust set is now too large to upload");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_of(&status), "ERR_BUNDLE_TOO_LARGE");
    server.stop().await;
}
