//! PEM loading and writing of Authority keys.

mod common;

use common::*;
use stella_authority::{
    KeyError, signing_key_from_pem, signing_key_to_pem, verifying_key_from_pem,
    verifying_key_to_pem,
};

#[test]
fn pkcs8_private_key_round_trip() {
    let pem = signing_key_to_pem(&key_a()).expect("encodes");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let loaded = signing_key_from_pem(&pem).expect("decodes");
    assert_eq!(loaded, key_a());
}

#[test]
fn sec1_private_key_loads() {
    let secret = p256::SecretKey::from_slice(&[0x11; 32]).expect("valid scalar");
    let pem = secret
        .to_sec1_pem(p256::pkcs8::LineEnding::LF)
        .expect("encodes");
    assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(signing_key_from_pem(&pem).expect("decodes"), key_a());
}

#[test]
fn public_key_round_trip() {
    let pem = verifying_key_to_pem(key_a().verifying_key()).expect("encodes");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert_eq!(
        verifying_key_from_pem(&pem).expect("decodes"),
        *key_a().verifying_key()
    );
}

#[test]
fn wrong_labels_are_rejected() {
    let public = verifying_key_to_pem(key_a().verifying_key()).expect("encodes");
    assert_eq!(
        signing_key_from_pem(&public),
        Err(KeyError::UnexpectedLabel {
            found: "PUBLIC KEY".to_owned(),
            expected: "PRIVATE KEY or EC PRIVATE KEY"
        })
    );
    let private = signing_key_to_pem(&key_a()).expect("encodes");
    assert!(matches!(
        verifying_key_from_pem(&private),
        Err(KeyError::UnexpectedLabel { .. })
    ));
    assert_eq!(signing_key_from_pem("not a key"), Err(KeyError::NotPem));
}

#[test]
fn other_curve_key_is_rejected() {
    let p384 = p384::SecretKey::from_slice(&[0x44; 48]).expect("valid scalar");
    let pem = p384::pkcs8::EncodePrivateKey::to_pkcs8_pem(&p384, p384::pkcs8::LineEnding::LF)
        .expect("encodes");
    assert!(matches!(
        signing_key_from_pem(&pem),
        Err(KeyError::Invalid {
            format: "PKCS#8",
            ..
        })
    ));
}

#[test]
fn corrupt_body_is_rejected() {
    let pem = signing_key_to_pem(&key_a()).expect("encodes");
    let corrupt = pem.replacen("MIG", "MIH", 1);
    assert_ne!(corrupt.as_str(), pem.as_str());
    assert!(matches!(
        signing_key_from_pem(&corrupt),
        Err(KeyError::Invalid { .. })
    ));
}

#[test]
fn key_error_messages_hold_no_key_material() {
    let pem = signing_key_to_pem(&key_a()).expect("encodes");
    let body: String = pem
        .lines()
        .nth(1)
        .expect("body line")
        .chars()
        .take(20)
        .collect();
    let corrupt = pem.replacen("MIG", "MIH", 1);
    let message = signing_key_from_pem(&corrupt)
        .expect_err("rejected")
        .to_string();
    assert!(!message.contains(&body), "{message}");
}
