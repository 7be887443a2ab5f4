//! Faults in the inclusion evidence: a tampered proof hash, a tile/proof bundle that lacks the
//! entry, a checkpoint signed under the wrong name, and a trust root set that expires before
//! evaluation. Each test changes the attestor's cache or trust roots, so each has its own
//! services.

use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stella_e2e::archive;
use stella_e2e::codes;
use stella_e2e::env::{Env, read_file, write_file};
use stella_e2e::policy::{self, PROD, PROD_PENDING};
use stella_e2e::runbook::{LONG_EXPIRY, path_arg};
use stella_e2e::vectors::{CHECKPOINT_NO_MATCHING_SIGNATURE, DSSE_HAPPY, MSG_HAPPY, Vectors};

/// Returns a copy of a Sigstore bundle JSON with one bit of the first inclusion proof hash
/// inverted.
fn flip_first_proof_hash(bundle_json: &[u8]) -> Vec<u8> {
    let mut bundle: Value = match serde_json::from_slice(bundle_json) {
        Ok(bundle) => bundle,
        Err(err) => panic!("conformance bundle is not JSON: {err}"),
    };
    let pointer = "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/0";
    let Some(Value::String(hash)) = bundle.pointer_mut(pointer) else {
        panic!("conformance bundle has no {pointer}");
    };
    let mut bytes = match STANDARD.decode(hash.as_bytes()) {
        Ok(bytes) => bytes,
        Err(err) => panic!("proof hash {hash} is not base64: {err}"),
    };
    bytes[0] ^= 0x01;
    *hash = STANDARD.encode(&bytes);
    match serde_json::to_vec(&bundle) {
        Ok(json) => json,
        Err(err) => panic!("cannot serialise the modified bundle: {err}"),
    }
}

/// Returns the text of the tlog-proof file at `path` in a tile/proof bundle.
fn tlog_proof_text(tgz: &[u8], path: &str) -> String {
    let files = archive::read_tgz(tgz);
    let Some(file) = files.iter().find(|file| file.path == path) else {
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        panic!("the tile/proof bundle has no {path}; it contains {paths:?}");
    };
    match String::from_utf8(file.data.clone()) {
        Ok(text) => text,
        Err(err) => panic!("{path} is not UTF-8: {err}"),
    }
}

/// Inverts one bit of the first proof hash in a C2SP tlog-proof: the line after `index N`.
fn flip_first_tlog_proof_hash(text: &str) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let Some(index_line) = lines.iter().position(|line| line.starts_with("index ")) else {
        panic!("tlog-proof has no index line:\n{text}");
    };
    let Some(hash_line) = lines.get_mut(index_line + 1) else {
        panic!("tlog-proof has no hash after the index line:\n{text}");
    };
    let mut bytes = match STANDARD.decode(hash_line.as_bytes()) {
        Ok(bytes) if bytes.len() == 32 => bytes,
        other => panic!("line {hash_line:?} after the index is not a hash: {other:?}"),
    };
    bytes[0] ^= 0x01;
    *hash_line = STANDARD.encode(&bytes);
    lines.join("\n")
}

#[test]
fn flipped_proof_hash_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("flipped-proof")
        .gate(&policy::standard())
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);

    // The packer recomputes the root from the Sigstore bundle's leaf and proof, so it rejects a
    // copy of the bundle with one proof hash changed.
    let dir = env.scratch("flipped");
    let tampered = dir.join("tampered.sigstore.json");
    write_file(
        &tampered,
        &flip_first_proof_hash(&read_file(&dsse.bundle())),
    );
    let out = dir.join("tampered-tiles.tgz");
    let packed = env.stella().run_json([
        "rekor",
        "tiles",
        "pack",
        "--sigstore-bundle",
        &path_arg(&tampered),
        "--out",
        &path_arg(&out),
    ]);
    let message = packed.assert_rejected(codes::REKOR_PROOF_INVALID);
    assert!(message.contains("tampered.sigstore.json"), "{packed}");
    assert!(
        !out.exists(),
        "a rejected pack must not leave {}",
        out.display()
    );

    // An attacker can still write the tlog-proof file by hand, with a manifest that matches it.
    // Its checkpoint is correctly signed and the attestor has no leaf to check the proof against
    // at import, so the import succeeds and verification fails later.
    let good = read_file(&env.tiles_pack(&dir, &[&dsse.bundle()], &[]));
    let proof_path = "proofs/log2025-alpha3.rekor.sigstage.dev/4026478.tlog-proof";
    let proof = flip_first_tlog_proof_hash(&tlog_proof_text(&good, proof_path));
    let tiles = dir.join("hand-made-tiles.tgz");
    write_file(
        &tiles,
        &archive::replace_file(&good, proof_path, proof.into_bytes()),
    );
    env.tiles_import(&tiles).assert_ok();

    // The evidence carries the untouched Sigstore bundle with its correct proof, which the
    // attestor must ignore in favour of the imported one.
    let bundle_id = env.register_case(&dsse);
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "failed", "{}", report.output);
    assert!(
        report
            .reason_codes
            .contains(&codes::REKOR_PROOF_INVALID.to_owned()),
        "{}",
        report.output
    );

    env.promote("flipped-prod", PROD, &[&bundle_id])
        .assert_deny(codes::REKOR_PROOF_INVALID);
    // A proof that is present but wrong is not a missing proof: deny even where missing proofs
    // only hold the promotion.
    env.promote("flipped-pending", PROD_PENDING, &[&bundle_id])
        .assert_deny(codes::REKOR_PROOF_INVALID);
}

#[test]
fn missing_entry_denies_or_pends() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("missing-entry")
        .gate(&policy::standard())
        .start();
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    // Proofs of another case (another log, too), not of the DSSE entry.
    env.install_proofs(&[&vectors.case(MSG_HAPPY).bundle()]);

    let bundle_id = env.register_case(&vectors.case(DSSE_HAPPY));
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "failed", "{}", report.output);
    assert_eq!(
        report.reason_codes,
        vec![codes::REKOR_TILE_MISSING.to_owned()],
        "only the proof is missing; everything else verifies\n{}",
        report.output
    );
    assert!(
        report
            .output
            .stdout
            .contains("proofs/log2025-alpha3.rekor.sigstage.dev/4026478.tlog-proof"),
        "the report must name the tlog-proof file that would close the gap\n{}",
        report.output
    );

    env.promote("missing-prod", PROD, &[&bundle_id])
        .assert_deny(codes::REKOR_TILE_MISSING);
    let pending = env.promote("missing-pending", PROD_PENDING, &[&bundle_id]);
    pending.assert_pending(codes::REKOR_TILE_MISSING);
    assert!(
        !pending.record_id.is_empty(),
        "a pending evaluation still writes a record\n{}",
        pending.output
    );

    // Importing the missing proof afterwards turns the same promotion into allow.
    env.install_proofs(&[&vectors.case(DSSE_HAPPY).bundle()]);
    env.evaluate("missing-pending").assert_allow();
    env.evaluate("missing-prod").assert_allow();
}

#[test]
fn checkpoint_wrong_signer_rejected_at_import() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("checkpoint-signer").start();
    let case = vectors.case(CHECKPOINT_NO_MATCHING_SIGNATURE);
    env.install_trust(&case.trusted_root(), &[]);

    let tiles = env.tiles_pack(&env.scratch("bad-checkpoint"), &[&case.bundle()], &[]);
    let output = env.tiles_import(&tiles);
    let message = output.assert_rejected(codes::REKOR_CHECKPOINT_INVALID);
    assert!(
        message.contains("rekor-tiles.tgz"),
        "the error must name the bundle file: {message}"
    );

    // Nothing of the rejected bundle was kept: the good bundle imports as new.
    let good = env.tiles_pack(
        &env.scratch("good"),
        &[&vectors.case(MSG_HAPPY).bundle()],
        &[],
    );
    let output = env.tiles_import(&good);
    output.assert_ok();
    assert!(!output.bool_field("already_imported"), "{output}");
}

#[test]
fn expired_trust_root_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    /// Lifetime of the trust root set: long enough for the set-up below, short enough to wait.
    const LIFETIME: Duration = Duration::from_secs(8);

    let env = Env::builder("expired-trust")
        .gate(&policy::standard())
        .start();
    let dsse = vectors.case(DSSE_HAPPY);

    let packed_at = Instant::now();
    let trust = env.trust_pack(
        &env.scratch("trust"),
        &vectors.staging_trusted_root(),
        &[],
        1,
        &format!("{}s", LIFETIME.as_secs()),
    );
    env.trust_import(&trust).assert_ok();
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);
    env.promotion_create("expiring", PROD, &[&bundle_id]);

    // While the set is valid the promotion is allowed. On a slow machine the set-up may already
    // have used up the lifetime, so this check is skipped there.
    if packed_at.elapsed() + Duration::from_secs(2) < LIFETIME {
        env.evaluate("expiring").assert_allow();
    } else {
        eprintln!(
            "set-up took {:?}; skipping the check before expiry",
            packed_at.elapsed()
        );
    }

    // `--expires 8s` is resolved when the CLI packs, to whole seconds; wait until it has passed.
    let wait_until = packed_at + LIFETIME + Duration::from_millis(1500);
    if let Some(remaining) = wait_until.checked_duration_since(Instant::now()) {
        thread::sleep(remaining);
    }

    let report = env.rekor_verify(&bundle_id);
    assert_eq!(report.outcome, "failed", "{}", report.output);
    assert!(
        report
            .reason_codes
            .contains(&codes::TRUST_ROOT_EXPIRED.to_owned()),
        "{}",
        report.output
    );
    env.evaluate("expiring")
        .assert_deny(codes::TRUST_ROOT_EXPIRED);
    // Missing proofs may hold a promotion, but an expired trust root never does.
    env.promote("expiring-pending", PROD_PENDING, &[&bundle_id])
        .assert_deny(codes::TRUST_ROOT_EXPIRED);

    // A fresh set restores verification.
    let renewed = env.trust_pack(
        &env.scratch("renewed"),
        &vectors.staging_trusted_root(),
        &[],
        2,
        LONG_EXPIRY,
    );
    env.trust_import(&renewed).assert_ok();
    env.evaluate("expiring").assert_allow();
}
