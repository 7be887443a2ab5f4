//! A trust set built from the public-good staging trusted root and the Tessera test log key opens
//! and converts into the `TrustSet` that verification uses.

mod common;

use std::collections::BTreeMap;

use stella_bundle::{Limits, TrustSetInput, open_trust_set, pack_trust_set};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::reason::{HasReasonCode, ReasonCode};

use common::{EXPIRES_AT, TESSERA_VKEY, vector};

#[test]
fn staging_root_converts_to_trust_set() {
    let (Some(trusted_root_json), Some(checkpoint)) = (
        vector("sigstore-trust-roots/staging.trusted_root.json"),
        vector("tessera-log/checkpoint"),
    ) else {
        return;
    };
    let input = TrustSetInput {
        trusted_root_json,
        note_keys: vec![TESSERA_VKEY.to_owned()],
        kms_keys: BTreeMap::new(),
        version: 42,
        expires_at: EXPIRES_AT,
    };
    let tgz = pack_trust_set(&input).expect("pack");
    let bundle = open_trust_set("staging-trust.tgz", &tgz, &Limits::default()).expect("open");
    let trust = bundle.to_trust_set();

    assert_eq!(trust.digest, bundle.digest);
    assert_eq!(
        trust.digest,
        stella_bundle::bundle_digest(&bundle.manifest_json)
    );
    assert_eq!(trust.version, 42);
    assert_eq!(trust.expires_at, EXPIRES_AT);
    assert!(trust.kms_keys.is_empty());
    assert_eq!(trust.trusted_root, bundle.trusted_root);

    let origins: Vec<&str> = trust
        .trusted_root
        .tlogs
        .iter()
        .map(|log| log.origin())
        .collect();
    assert!(
        origins.contains(&"log2025-alpha1.rekor.sigstage.dev"),
        "staging tlogs: {origins:?}"
    );
    assert!(
        !trust.trusted_root.certificate_authorities.is_empty(),
        "staging Fulcio CAs"
    );
    assert!(
        !trust.trusted_root.timestamp_authorities.is_empty(),
        "staging TSAs"
    );

    assert_eq!(trust.note_verifiers.len(), 1);
    assert_eq!(trust.note_verifiers[0].name(), "example.com/log/testdata");
    assert_eq!(trust.note_verifiers[0].key_id(), 0x33d7_b496);

    // The converted set verifies the Tessera log's real checkpoint.
    let verified =
        verify_checkpoint(&checkpoint, &trust.checkpoint_verifiers()).expect("checkpoint verifies");
    assert_eq!(verified.checkpoint().size, 15);

    trust
        .check_valid_at(EXPIRES_AT)
        .expect("valid through its last second");
    let expired = trust
        .check_valid_at(EXPIRES_AT + 1)
        .expect_err("expired one second later");
    assert_eq!(expired.reason_code(), ReasonCode::TrustRootExpired);
}

#[test]
fn into_trust_set_matches_copy() {
    let Some(input) = common::trust_input() else {
        return;
    };
    let tgz = pack_trust_set(&input).expect("pack");
    let bundle = open_trust_set("t.tgz", &tgz, &Limits::default()).expect("open");
    let copied = bundle.to_trust_set();
    let moved = bundle.into_trust_set();
    assert_eq!(moved.digest, copied.digest);
    assert_eq!(moved.note_verifiers, copied.note_verifiers);
    assert_eq!(moved.kms_keys, copied.kms_keys);
    assert_eq!(moved.kms_keys[0].id, "release-signer");
    assert_eq!(
        moved.kms_keys[0].spki_der.first(),
        Some(&0x30),
        "DER SEQUENCE"
    );
}
