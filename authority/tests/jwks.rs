//! JWKS parsing: accepted documents and every rejected key form.

mod common;

use common::*;
use serde_json::{Value, json};
use stella_authority::{Jwk, JwkFault, Jwks, JwksError, thumbprint};

/// Returns the JWKS for keys A and B as `Jwks::to_json` writes it.
fn document() -> Value {
    serde_json::from_str(&jwks_a_b().to_json()).expect("JSON")
}

/// Returns the document with member `name` of key 0 set to `value`.
fn with_member(name: &str, value: Value) -> String {
    let mut document = document();
    document["keys"][0][name] = value;
    document.to_string()
}

fn without_member(name: &str) -> String {
    let mut document = document();
    document["keys"][0]
        .as_object_mut()
        .expect("object")
        .remove(name);
    document.to_string()
}

fn key_fault(json: &str) -> Option<JwkFault> {
    match Jwks::parse(json) {
        Err(JwksError::InvalidKey {
            index: 0, fault, ..
        }) => Some(fault),
        _ => None,
    }
}

#[test]
fn written_jwks_parses_back() {
    let jwks = jwks_a_b();
    let parsed = Jwks::parse(&jwks.to_json()).expect("valid JWKS");
    assert_eq!(parsed, jwks);
    assert_eq!(parsed.keys().len(), 2);
    assert!(parsed.find(KID_B).is_some());
    assert!(parsed.find("missing").is_none());
}

#[test]
fn minimal_key_is_accepted() {
    let mut document = document();
    for name in ["use", "alg"] {
        document["keys"][0]
            .as_object_mut()
            .expect("object")
            .remove(name);
    }
    document["keys"][0]["key_ops"] = json!(["verify"]);
    document["x5t"] = json!("ignored");
    assert!(Jwks::parse(&document.to_string()).is_ok());
}

#[test]
fn kid_is_required() {
    assert_eq!(
        key_fault(&without_member("kid")),
        Some(JwkFault::MissingKeyId)
    );
    assert_eq!(
        key_fault(&with_member("kid", json!(""))),
        Some(JwkFault::MissingKeyId)
    );
    assert_eq!(
        key_fault(&with_member("kid", json!(1))),
        Some(JwkFault::MissingKeyId)
    );
}

#[test]
fn duplicate_kid_is_rejected() {
    let json = with_member("kid", json!(KID_B));
    assert_eq!(
        Jwks::parse(&json),
        Err(JwksError::DuplicateKeyId {
            kid: KID_B.to_owned()
        })
    );
    let same = *key_a().verifying_key();
    assert!(matches!(
        Jwks::from_public_keys([("k", same), ("k", same)]),
        Err(JwksError::DuplicateKeyId { .. })
    ));
}

#[test]
fn other_key_types_are_rejected() {
    assert_eq!(
        key_fault(&with_member("kty", json!("RSA"))),
        Some(JwkFault::KeyType("RSA".to_owned()))
    );
    assert_eq!(
        key_fault(&with_member("kty", json!("OKP"))),
        Some(JwkFault::KeyType("OKP".to_owned()))
    );
    assert_eq!(
        key_fault(&without_member("kty")),
        Some(JwkFault::MissingMember("kty"))
    );
}

#[test]
fn other_curves_are_rejected() {
    for crv in ["P-384", "secp256k1", "p-256"] {
        assert_eq!(
            key_fault(&with_member("crv", json!(crv))),
            Some(JwkFault::Curve(crv.to_owned()))
        );
    }
}

#[test]
fn use_and_alg_are_checked() {
    assert_eq!(
        key_fault(&with_member("use", json!("enc"))),
        Some(JwkFault::Use("enc".to_owned()))
    );
    assert_eq!(
        key_fault(&with_member("alg", json!("ES384"))),
        Some(JwkFault::Algorithm("ES384".to_owned()))
    );
    assert_eq!(
        key_fault(&with_member("alg", json!("HS256"))),
        Some(JwkFault::Algorithm("HS256".to_owned()))
    );
    assert_eq!(
        key_fault(&with_member("alg", json!(null))),
        Some(JwkFault::NotString("alg"))
    );
    assert_eq!(
        key_fault(&with_member("key_ops", json!(["sign"]))),
        Some(JwkFault::KeyOps)
    );
}

#[test]
fn private_key_is_rejected() {
    let d = b64(&[0x11; 32]);
    assert_eq!(
        key_fault(&with_member("d", json!(d))),
        Some(JwkFault::PrivateKey)
    );
}

#[test]
fn coordinate_encoding_is_strict() {
    let document = document();
    let x = document["keys"][0]["x"].as_str().expect("x").to_owned();
    assert_eq!(
        key_fault(&with_member("x", json!(format!("{x}=")))),
        Some(JwkFault::CoordinateEncoding("x"))
    );
    let standard = x.replace('-', "+").replace('_', "/");
    if standard != x {
        assert_eq!(
            key_fault(&with_member("x", json!(standard))),
            Some(JwkFault::CoordinateEncoding("x"))
        );
    }
    assert_eq!(
        key_fault(&with_member("y", json!(b64(&[1; 31])))),
        Some(JwkFault::CoordinateLength {
            member: "y",
            len: 31
        })
    );
    assert_eq!(
        key_fault(&with_member("x", json!(b64(&[1; 33])))),
        Some(JwkFault::CoordinateLength {
            member: "x",
            len: 33
        })
    );
    assert_eq!(
        key_fault(&without_member("y")),
        Some(JwkFault::MissingMember("y"))
    );
}

#[test]
fn point_off_curve_is_rejected() {
    let document = document();
    let y = document["keys"][0]["y"].as_str().expect("y").to_owned();
    let mut y_bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &y).expect("y");
    y_bytes[31] ^= 1;
    assert_eq!(
        key_fault(&with_member("y", json!(b64(&y_bytes)))),
        Some(JwkFault::NotOnCurve)
    );
    // Coordinates at or above the field prime are not points either.
    assert_eq!(
        key_fault(&with_member("x", json!(b64(&[0xff; 32])))),
        Some(JwkFault::NotOnCurve)
    );
}

#[test]
fn document_shape_is_checked() {
    assert_eq!(Jwks::parse("{}"), Err(JwksError::MissingKeys));
    assert_eq!(Jwks::parse(r#"{"keys":{}}"#), Err(JwksError::MissingKeys));
    assert_eq!(Jwks::parse(r#"{"keys":[]}"#), Err(JwksError::NoKeys));
    assert_eq!(Jwks::parse("[]"), Err(JwksError::NotObject));
    assert_eq!(Jwks::parse("{"), Err(JwksError::Json));
    assert_eq!(
        Jwks::parse(r#"{"keys":[],"keys":[]}"#),
        Err(JwksError::DuplicateMember)
    );
    assert_eq!(key_fault(r#"{"keys":["k"]}"#), Some(JwkFault::NotObject));
}

#[test]
fn duplicate_member_in_key_is_rejected() {
    let text = jwks_a_b().to_json();
    let duplicated = text.replacen(
        "\"crv\": \"P-256\"",
        "\"crv\": \"P-256\", \"crv\": \"P-384\"",
        1,
    );
    assert_ne!(duplicated, text);
    assert_eq!(Jwks::parse(&duplicated), Err(JwksError::DuplicateMember));
}

#[test]
fn invalid_key_message_names_index_and_kid() {
    let error = Jwks::parse(&with_member("crv", json!("P-384"))).expect_err("rejected");
    assert_eq!(
        error.to_string(),
        format!("invalid JWKS: key 0 (kid \"{KID_A}\") has crv \"P-384\"; expected \"P-256\"")
    );
}

#[test]
fn empty_public_key_list_is_rejected() {
    let none: [(&str, stella_authority::VerifyingKey); 0] = [];
    assert_eq!(Jwks::from_public_keys(none), Err(JwksError::NoKeys));
    assert!(matches!(
        Jwks::from_public_keys([("", *key_a().verifying_key())]),
        Err(JwksError::InvalidKey {
            fault: JwkFault::MissingKeyId,
            ..
        })
    ));
}

#[test]
fn thumbprint_follows_rfc7638() {
    // RFC 7638 section 3.2: the required EC members in lexicographic order,
    // no whitespace, SHA-256, base64url.
    use sha2::Digest as _;
    let document = document();
    let key = &document["keys"][0];
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        key["x"].as_str().expect("x"),
        key["y"].as_str().expect("y")
    );
    let expected = b64(&sha2::Sha256::digest(canonical.as_bytes()));
    let jwk = Jwk::new("k", *key_a().verifying_key()).expect("kid");
    assert_eq!(jwk.thumbprint(), expected);
    assert_eq!(thumbprint(key_a().verifying_key()), expected);
    assert_ne!(thumbprint(key_b().verifying_key()), expected);
}
