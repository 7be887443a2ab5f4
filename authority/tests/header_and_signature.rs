//! Rejections by the header checks (algorithm, type, forbidden parameters,
//! key ID) and by the signature check.

mod common;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use stella_authority::{AuthError, FormatFault, Jwks, TokenPart, sign_jws, verifying_key_to_pem};

fn unsupported(alg: &str) -> Result<(), AuthError> {
    Err(AuthError::UnsupportedAlgorithm {
        alg: alg.to_owned(),
    })
}

#[test]
fn alg_none_is_rejected() {
    let header = header_with("alg", json!("none"));
    let token = format!(
        "{}.{}.",
        b64(&serde_json::to_vec(&header).expect("JSON")),
        b64(&serde_json::to_vec(&claims_json()).expect("JSON"))
    );
    assert_eq!(validate(&token).map(drop), unsupported("none"));
}

#[test]
fn hs256_with_public_key_secret_is_rejected() {
    // The classic key-confusion attack: an HMAC keyed with the verifier's
    // public key, which any caller can obtain.
    let public_pem = verifying_key_to_pem(key_a().verifying_key()).expect("PEM");
    let header = header_with("alg", json!("HS256"));
    let signing_input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).expect("JSON")),
        b64(&serde_json::to_vec(&claims_json()).expect("JSON"))
    );
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(public_pem.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    let tag = mac.finalize().into_bytes();
    let token = format!("{signing_input}.{}", b64(&tag));
    assert_eq!(validate(&token).map(drop), unsupported("HS256"));
}

#[test]
fn es384_is_rejected() {
    let p384_key = p384::ecdsa::SigningKey::from_slice(&[0x44; 48]).expect("valid P-384 scalar");
    let header = header_with("alg", json!("ES384"));
    let signing_input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).expect("JSON")),
        b64(&serde_json::to_vec(&claims_json()).expect("JSON"))
    );
    let signature: p384::ecdsa::Signature = p384_key.sign(signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(&signature.to_bytes()));
    assert_eq!(validate(&token).map(drop), unsupported("ES384"));
}

#[test]
fn alg_variants_are_rejected() {
    for alg in [
        "es256", "Es256", "ES256 ", " ES256", "ES-256", "ES256K", "ES512", "RS256", "EdDSA", "",
    ] {
        // Correctly signed with key A, so only the algorithm check can reject it.
        let token = token(&header_with("alg", json!(alg)), &claims_json());
        assert_eq!(validate(&token).map(drop), unsupported(alg), "{alg:?}");
    }
}

#[test]
fn alg_of_wrong_type_is_rejected() {
    let token = token(&header_with("alg", json!(["ES256"])), &claims_json());
    assert_eq!(validate(&token).map(drop), unsupported(r#"["ES256"]"#));
}

#[test]
fn missing_alg_is_rejected() {
    let token = token(&header_without("alg"), &claims_json());
    assert_eq!(validate(&token).map(drop), Err(AuthError::MissingAlgorithm));
}

#[test]
fn typ_values() {
    for typ in [
        "JWT",
        "jwt",
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "application/jwt",
    ] {
        let token = token(&header_with("typ", json!(typ)), &claims_json());
        assert!(validate(&token).is_ok(), "{typ:?} should be accepted");
    }
    let without_typ = token(&header_without("typ"), &claims_json());
    assert!(validate(&without_typ).is_ok(), "typ is optional");
    for typ in [
        json!("JOSE"),
        json!("JWS"),
        json!("dpop+jwt"),
        json!(""),
        json!(1),
    ] {
        let token = token(&header_with("typ", typ.clone()), &claims_json());
        assert!(
            matches!(validate(&token), Err(AuthError::UnsupportedType { .. })),
            "{typ} should be rejected"
        );
    }
}

#[test]
fn crit_header_is_rejected() {
    let header = header_with("crit", json!(["exp"]));
    let token = token(&header, &claims_json());
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::ForbiddenHeader { name: "crit" })
    );
}

#[test]
fn embedded_jwk_header_is_rejected() {
    // The attacker signs with its own key and ships that key in the header;
    // a validator trusting the embedded key would accept this.
    let attacker = attacker_key();
    let attacker_jwks =
        Jwks::from_public_keys([(KID_A, *attacker.verifying_key())]).expect("one key");
    let embedded: Value = serde_json::from_str(&attacker_jwks.to_json()).expect("JSON");
    let header = header_with("jwk", embedded["keys"][0].clone());
    let token = token_signed_by(&attacker, &header, &claims_json());
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::ForbiddenHeader { name: "jwk" })
    );
}

#[test]
fn key_source_headers_are_rejected() {
    for (name, value) in [
        ("jku", json!("https://attacker.invalid/jwks.json")),
        ("x5u", json!("https://attacker.invalid/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("b64", json!(false)),
    ] {
        let token = token(&header_with(name, value), &claims_json());
        assert!(
            matches!(validate(&token), Err(AuthError::ForbiddenHeader { name: found }) if found == name),
            "{name}"
        );
    }
}

#[test]
fn missing_kid_is_rejected() {
    for header in [
        header_without("kid"),
        header_with("kid", json!("")),
        header_with("kid", json!(7)),
        header_with("kid", Value::Null),
    ] {
        let token = token(&header, &claims_json());
        assert_eq!(
            validate(&token).map(drop),
            Err(AuthError::MissingKeyId),
            "{header}"
        );
    }
}

#[test]
fn unknown_kid_is_rejected() {
    let token = token(&header_with("kid", json!("retired-2024")), &claims_json());
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::UnknownKeyId {
            kid: "retired-2024".to_owned()
        })
    );
}

#[test]
fn kid_match_is_exact() {
    let token = token(
        &header_with("kid", json!(KID_A.to_uppercase())),
        &claims_json(),
    );
    assert!(matches!(
        validate(&token),
        Err(AuthError::UnknownKeyId { .. })
    ));
}

#[test]
fn foreign_key_signature_is_rejected() {
    let token = token_signed_by(&attacker_key(), &header_json(), &claims_json());
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::InvalidSignature {
            kid: KID_A.to_owned()
        })
    );
}

#[test]
fn other_kids_key_signature_is_rejected() {
    // Signed by key B but labelled as key A.
    let token = token_signed_by(&key_b(), &header_json(), &claims_json());
    assert!(matches!(
        validate(&token),
        Err(AuthError::InvalidSignature { .. })
    ));
}

#[test]
fn swapped_payload_is_rejected() {
    let genuine = valid_token();
    let other = token(
        &header_json(),
        &claims_with("tenant", json!("other-tenant")),
    );
    let mut genuine_parts = genuine.split('.');
    let mut other_parts = other.split('.');
    let spliced = format!(
        "{}.{}.{}",
        genuine_parts.next().expect("header"),
        other_parts.nth(1).expect("payload"),
        genuine_parts.nth(1).expect("signature")
    );
    assert!(matches!(
        validate(&spliced),
        Err(AuthError::InvalidSignature { .. })
    ));
}

#[test]
fn der_signature_is_rejected() {
    let header = serde_json::to_vec(&header_json()).expect("JSON");
    let claims = serde_json::to_vec(&claims_json()).expect("JSON");
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let signature: p256::ecdsa::DerSignature = key_a().sign(signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(signature.as_bytes()));
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::Malformed {
            part: TokenPart::Signature,
            fault: FormatFault::SignatureLength
        })
    );
}

#[test]
fn wrong_length_signatures_are_rejected() {
    let token = valid_token();
    let (signing_input, _) = token.rsplit_once('.').expect("dot");
    for len in [0, 32, 63, 65, 96] {
        let bad = format!("{signing_input}.{}", b64(&vec![1u8; len]));
        assert_eq!(
            validate(&bad).map(drop),
            Err(AuthError::Malformed {
                part: TokenPart::Signature,
                fault: FormatFault::SignatureLength
            }),
            "{len} bytes"
        );
    }
}

#[test]
fn out_of_range_scalars_are_rejected() {
    let token = valid_token();
    let (signing_input, _) = token.rsplit_once('.').expect("dot");
    for signature in [[0u8; 64], [0xff; 64]] {
        let bad = format!("{signing_input}.{}", b64(&signature));
        assert!(matches!(
            validate(&bad),
            Err(AuthError::InvalidSignature { .. })
        ));
    }
}

#[test]
fn high_s_signature_is_accepted() {
    // RFC 7518 section 3.4 does not require low-S, and common ES256 signers
    // emit both forms, so the validator accepts (r, n - s) as well.
    let token = valid_token();
    let (signing_input, signature_segment) = token.rsplit_once('.').expect("dot");
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        signature_segment,
    )
    .expect("base64url");
    let low = p256::ecdsa::Signature::from_slice(&raw).expect("valid signature");
    let high = p256::ecdsa::Signature::from_scalars(low.r(), -low.s()).expect("valid scalars");
    assert_ne!(high.to_bytes(), low.to_bytes());
    assert_eq!(
        low.normalize_s().to_bytes(),
        low.to_bytes(),
        "minted tokens are low-S"
    );

    let malleated = format!("{signing_input}.{}", b64(&high.to_bytes()));
    let original = validate(&token).expect("low-S token is valid");
    let principal = validate(&malleated).expect("high-S token is valid");
    assert_eq!(principal.token_id(), original.token_id());
}

#[test]
fn signature_check_precedes_claims() {
    // Expired and for another tenant, but the signature is the first failure.
    let claims = claims_with("exp", json!(1));
    let token = token_signed_by(&attacker_key(), &header_json(), &claims);
    assert!(matches!(
        validate(&token),
        Err(AuthError::InvalidSignature { .. })
    ));
}

#[test]
fn sign_jws_is_deterministic() {
    let header = serde_json::to_vec(&header_json()).expect("JSON");
    let claims = serde_json::to_vec(&claims_json()).expect("JSON");
    let first = sign_jws(&key_a(), &header, &claims);
    let second = sign_jws(&key_a(), &header, &claims);
    assert_eq!(first, second, "RFC 6979 signing is deterministic");
}
