//! Signed notes and checkpoints from real logs: the Tessera test log, Rekor v2
//! checkpoints (with witness cosignatures) and Rekor v1 ECDSA checkpoints from
//! the Sigstore conformance bundles.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use stella_verify::checkpoint::{
    CheckpointError, OriginRule, VerifiedCheckpoint, parse_checkpoint_body, verify_checkpoint,
    verify_checkpoint_with_rule,
};
use stella_verify::note::{KeyType, NoteError, NoteVerifier, parse_note};
use stella_verify::reason::{HasReasonCode, ReasonCode};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// Rekor v2 log keys of the public-good instances.
const REKOR_V2_VKEYS: [&str; 4] = [
    "log2025-1.rekor.sigstore.dev+cf119915+AbfK5adZJxsI323FwGD2AJJ9F4i89cfDuLdGJBIYntuO",
    "log2025-alpha1.rekor.sigstage.dev+f30d5a99+AT5/gERB6AWme8IEtcwaqcZi0hp8ocV4+JRcUnVlQfKP",
    "log2025-alpha2.rekor.sigstage.dev+29f4a249+AZKwPDrthbTe5GFwj/5abxfL0K74eJ4/vdfj1jhhs3xn",
    "log2025-alpha3.rekor.sigstage.dev+d3d3a70c+AZQ93VXPMmj9uZj7U/7CefQ9yy8RgYFv6mKzOseipjqp",
];

/// Witnesses that cosign the staging log `log2025-alpha3`.
const WITNESS_VKEYS: [&str; 3] = [
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL",
    "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G",
];

const ALPHA1: &str = "log2025-alpha1.rekor.sigstage.dev";
const ALPHA1_KEY_ID: u32 = 0xf30d_5a99;

fn vectors_dir(folder: &str) -> Option<PathBuf> {
    let path = Path::new(VECTORS).join(folder);
    if path.is_dir() {
        Some(path)
    } else {
        common::vectors_absent(&format!("vectors folder {}", path.display()));
        None
    }
}

fn verifiers(vkeys: &[&str]) -> Vec<NoteVerifier> {
    vkeys
        .iter()
        .map(|vkey| NoteVerifier::from_vkey(vkey).unwrap_or_else(|err| panic!("{vkey}: {err}")))
        .collect()
}

fn rekor_verifiers() -> Vec<NoteVerifier> {
    let mut all = verifiers(&REKOR_V2_VKEYS);
    all.extend(verifiers(&WITNESS_VKEYS));
    all
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

/// Returns the checkpoint envelope of the bundle's first tlog entry, if any.
fn bundle_checkpoint(case_dir: &Path) -> Option<Vec<u8>> {
    let bundle = read_json(&case_dir.join("bundle.sigstore.json"));
    let envelope = &bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        ["envelope"];
    envelope.as_str().map(|text| text.as_bytes().to_vec())
}

fn conformance_cases(prefix: &str) -> Vec<PathBuf> {
    let Some(dir) = vectors_dir("sigstore-conformance/bundle-verify") else {
        return Vec::new();
    };
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("read bundle-verify")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
        .collect();
    cases.sort();
    cases
}

fn case_name(path: &Path) -> String {
    path.file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn tessera_checkpoints_all_verify() {
    let Some(dir) = vectors_dir("tessera-log") else {
        return;
    };
    let log = verifiers(&[TESSERA_VKEY]);
    for size in 0..=15u64 {
        let path = dir.join(format!("checkpoint.{size}"));
        let note = fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
        let verified = verify_checkpoint(&note, &log)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let checkpoint = verified.checkpoint();
        assert_eq!(
            checkpoint.origin,
            "example.com/log/testdata",
            "{}",
            path.display()
        );
        assert_eq!(checkpoint.size, size, "{}", path.display());
        assert_eq!(verified.verifier_name(), "example.com/log/testdata");
        assert_eq!(verified.key_id(), 0x33d7_b496);
        assert_eq!(verified.note_bytes(), note.as_slice());
        if size == 0 {
            assert_eq!(
                STANDARD.encode(checkpoint.root_hash),
                "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
            );
        }
    }

    let latest = fs::read(dir.join("checkpoint")).expect("read checkpoint");
    let verified = verify_checkpoint(&latest, &log).expect("latest checkpoint");
    assert_eq!(verified.checkpoint().size, 15);
    assert_eq!(
        STANDARD.encode(verified.checkpoint().root_hash),
        "rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs="
    );
}

#[test]
fn tessera_checkpoint_tampered_size_rejected() {
    let Some(dir) = vectors_dir("tessera-log") else {
        return;
    };
    let note = fs::read_to_string(dir.join("checkpoint.3")).expect("read checkpoint.3");
    let tampered = note.replacen("\n3\n", "\n4\n", 1);
    assert_ne!(tampered, note);
    let err =
        verify_checkpoint(tampered.as_bytes(), &verifiers(&[TESSERA_VKEY])).expect_err("tampered");
    assert_eq!(
        err,
        CheckpointError::Note(NoteError::InvalidSignature {
            name: "example.com/log/testdata".into(),
            key_id: 0x33d7_b496
        })
    );
    assert_eq!(err.reason_code(), ReasonCode::RekorCheckpointInvalid);
}

#[test]
fn tessera_checkpoint_other_key_rejected() {
    let Some(dir) = vectors_dir("tessera-log") else {
        return;
    };
    let note = fs::read(dir.join("checkpoint.3")).expect("read checkpoint.3");
    let err = verify_checkpoint(&note, &verifiers(&REKOR_V2_VKEYS)).expect_err("untrusted");
    assert_eq!(
        err,
        CheckpointError::Note(NoteError::NoTrustedSignature {
            signers: vec!["example.com/log/testdata+33d7b496".into()]
        })
    );
}

/// Rekor v2 cases whose checkpoint is valid, though some fail later for other reasons.
#[test]
fn rekor_v2_checkpoints_verify() {
    let cases = conformance_cases("rekor2-");
    if cases.is_empty() {
        return;
    }
    let verifiers = rekor_verifiers();
    let mut verified_count = 0;
    for case in &cases {
        let name = case_name(case);
        if name.starts_with("rekor2-checkpoint-") && name.ends_with("_fail") {
            continue;
        }
        let Some(note) = bundle_checkpoint(case) else {
            assert_eq!(
                name, "rekor2-no-inclusion-proof_fail",
                "{name}: bundle has no checkpoint"
            );
            continue;
        };
        let verified: VerifiedCheckpoint =
            verify_checkpoint(&note, &verifiers).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            verified.verifier_name(),
            verified.checkpoint().origin,
            "{name}"
        );
        assert!(
            verified
                .checkpoint()
                .origin
                .ends_with(".rekor.sigstage.dev"),
            "{name}"
        );
        verified_count += 1;
    }
    assert!(
        verified_count >= 15,
        "only {verified_count} Rekor v2 checkpoints verified"
    );
}

#[test]
fn rekor_v2_happy_path_checkpoint() {
    let Some(dir) = vectors_dir("sigstore-conformance/bundle-verify/rekor2-happy-path") else {
        return;
    };
    let note = bundle_checkpoint(&dir).expect("checkpoint");
    let verified = verify_checkpoint(&note, &rekor_verifiers()).expect("verify");
    let checkpoint = verified.checkpoint();
    assert_eq!(checkpoint.origin, ALPHA1);
    assert_eq!(checkpoint.size, 736);
    assert_eq!(
        STANDARD.encode(checkpoint.root_hash),
        "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI="
    );
    assert_eq!(verified.key_id(), ALPHA1_KEY_ID);
    assert!(verified.cosignatures().is_empty());
}

#[test]
fn rekor_v2_witness_cosignatures_verify() {
    let Some(dir) = vectors_dir("sigstore-conformance/bundle-verify/rekor2-dsse-happy-path") else {
        return;
    };
    let note = bundle_checkpoint(&dir).expect("checkpoint");
    let verified = verify_checkpoint(&note, &rekor_verifiers()).expect("verify");
    assert_eq!(
        verified.checkpoint().origin,
        "log2025-alpha3.rekor.sigstage.dev"
    );
    assert_eq!(verified.checkpoint().size, 4_026_479);

    let cosignatures = verified.cosignatures();
    assert_eq!(cosignatures.len(), 3, "{cosignatures:?}");
    for cosignature in cosignatures {
        assert_eq!(cosignature.key_type, KeyType::CosignatureEd25519);
        assert_eq!(
            cosignature.timestamp,
            Some(1_778_700_214),
            "{}",
            cosignature.name
        );
    }

    // Without witness keys the cosignatures are ignored and the log signature suffices.
    let log_only = verify_checkpoint(&note, &verifiers(&REKOR_V2_VKEYS)).expect("log key only");
    assert!(log_only.cosignatures().is_empty());
}

#[test]
fn rekor_v2_cosignatures_in_any_order() {
    for name in [
        "rekor2-checkpoint-cosigned",
        "rekor2-checkpoint-multiple-cosigs",
        "rekor2-checkpoint-origin-not-first",
        "rekor2-checkpoint-two-sigs-cosigned",
        "rekor2-checkpoint-two-sigs-from-origin",
    ] {
        let Some(dir) = vectors_dir(&format!("sigstore-conformance/bundle-verify/{name}")) else {
            return;
        };
        let note = bundle_checkpoint(&dir).expect("checkpoint");
        let verified = verify_checkpoint(&note, &rekor_verifiers())
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(verified.checkpoint().origin, ALPHA1, "{name}");
        assert_eq!(verified.key_id(), ALPHA1_KEY_ID, "{name}");
        // The witness.example keys are unknown, so no cosignature verifies.
        assert!(verified.cosignatures().is_empty(), "{name}");
    }
}

#[test]
fn rekor_v2_failing_checkpoints_rejected() {
    let invalid_alpha1 = CheckpointError::Note(NoteError::InvalidSignature {
        name: ALPHA1.into(),
        key_id: ALPHA1_KEY_ID,
    });
    let rows = [
        (
            "rekor2-checkpoint-missing-log-signature_fail",
            CheckpointError::Note(NoteError::MissingSignatures),
        ),
        (
            "rekor2-checkpoint-missing-origin_fail",
            invalid_alpha1.clone(),
        ),
        (
            "rekor2-checkpoint-missing-root-hash_fail",
            invalid_alpha1.clone(),
        ),
        ("rekor2-checkpoint-missing-size_fail", invalid_alpha1),
        (
            "rekor2-checkpoint-no-matching-signature_fail",
            CheckpointError::Note(NoteError::NoTrustedSignature {
                signers: vec!["log2025-alpha1.rekor.github.dev+f30d5a99".into()],
            }),
        ),
    ];
    let verifiers = rekor_verifiers();
    for (name, want) in rows {
        let Some(dir) = vectors_dir(&format!("sigstore-conformance/bundle-verify/{name}")) else {
            return;
        };
        let note = bundle_checkpoint(&dir).unwrap_or_else(|| panic!("{name}: no checkpoint"));
        let err = verify_checkpoint(&note, &verifiers).expect_err(name);
        assert_eq!(err, want, "row {name}");
        assert_eq!(
            err.reason_code(),
            ReasonCode::RekorCheckpointInvalid,
            "row {name}"
        );
    }
}

#[test]
fn rekor_v2_truncated_bodies_rejected_by_parser() {
    // The same cases fail in the text parser too, had the signature matched.
    for name in [
        "rekor2-checkpoint-missing-origin_fail",
        "rekor2-checkpoint-missing-root-hash_fail",
        "rekor2-checkpoint-missing-size_fail",
    ] {
        let Some(dir) = vectors_dir(&format!("sigstore-conformance/bundle-verify/{name}")) else {
            return;
        };
        let note = bundle_checkpoint(&dir).expect("checkpoint");
        let text = parse_note(&note)
            .unwrap_or_else(|err| panic!("{name}: {err}"))
            .text;
        assert_eq!(
            parse_checkpoint_body(&text),
            Err(CheckpointError::TooFewLines { lines: 2 }),
            "{name}"
        );
    }
}

/// Returns the Rekor v1 verifier from the production trusted root.
fn rekor_v1_verifier() -> Option<NoteVerifier> {
    let dir = vectors_dir("sigstore-trust-roots")?;
    let root = read_json(&dir.join("production.trusted_root.json"));
    let tlogs = root["tlogs"].as_array().expect("tlogs");
    let v1 = tlogs
        .iter()
        .find(|tlog| tlog["baseUrl"] == "https://rekor.sigstore.dev")
        .expect("rekor v1 log");
    let spki = STANDARD
        .decode(v1["publicKey"]["rawBytes"].as_str().expect("rawBytes"))
        .expect("base64");
    Some(NoteVerifier::ecdsa_p256_spki("rekor.sigstore.dev", &spki).expect("P-256 key"))
}

#[test]
fn rekor_v1_ecdsa_checkpoint_verifies() {
    let Some(verifier) = rekor_v1_verifier() else {
        return;
    };
    assert_eq!(verifier.key_id(), 0xc0d2_3d6a);
    assert_eq!(verifier.key_type(), KeyType::EcdsaP256);
    assert_eq!(
        NoteVerifier::from_vkey(&verifier.to_vkey()).expect("vkey round trip"),
        verifier
    );

    for name in ["happy-path-v0.3", "checkpoint-wrong-roothash_fail"] {
        let Some(dir) = vectors_dir(&format!("sigstore-conformance/bundle-verify/{name}")) else {
            return;
        };
        let note = bundle_checkpoint(&dir).expect("checkpoint");
        let verified = verify_checkpoint_with_rule(
            &note,
            std::slice::from_ref(&verifier),
            OriginRule::RekorV1TreeId,
        )
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            verified.checkpoint().origin,
            "rekor.sigstore.dev - 2605736670972794746",
            "{name}"
        );

        // The origin carries the tree ID, so the strict rule finds no log signature.
        let err = verify_checkpoint(&note, std::slice::from_ref(&verifier)).expect_err(name);
        assert!(
            matches!(err, CheckpointError::NoLogSignature { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn rekor_v1_bad_checkpoints_rejected() {
    let Some(verifier) = rekor_v1_verifier() else {
        return;
    };
    let rows = [
        (
            "invalid-checkpoint-signature_fail",
            CheckpointError::Note(NoteError::InvalidSignature {
                name: "rekor.sigstore.dev".into(),
                key_id: 0xc0d2_3d6a,
            }),
        ),
        (
            "checkpoint-bad-keyhint_fail",
            CheckpointError::Note(NoteError::NoTrustedSignature {
                signers: vec!["rekor.sigstore.dev+c4d23d6a".into()],
            }),
        ),
    ];
    for (name, want) in rows {
        let Some(dir) = vectors_dir(&format!("sigstore-conformance/bundle-verify/{name}")) else {
            return;
        };
        let note = bundle_checkpoint(&dir).expect("checkpoint");
        let err = verify_checkpoint_with_rule(
            &note,
            std::slice::from_ref(&verifier),
            OriginRule::RekorV1TreeId,
        )
        .expect_err(name);
        assert_eq!(err, want, "row {name}");
    }
}
