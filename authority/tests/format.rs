//! Rejections of tokens that are not a well-formed, size-limited JWS compact
//! serialization.

mod common;

use common::*;
use serde_json::json;
use stella_authority::{AuthError, FormatFault, MAX_TOKEN_BYTES, TokenPart};

fn malformed(part: TokenPart, fault: FormatFault) -> Result<(), AuthError> {
    Err(AuthError::Malformed { part, fault })
}

#[test]
fn valid_token_is_accepted() {
    assert!(validate(&valid_token()).is_ok());
}

#[test]
fn empty_token_is_missing() {
    assert_eq!(validate("").map(drop), Err(AuthError::MissingToken));
}

#[test]
fn segment_count_is_checked() {
    let token = valid_token();
    let mut segments = token.split('.');
    let header = segments.next().expect("header");
    let payload = segments.next().expect("payload");
    for bad in [
        format!("{token}."),
        format!("{token}.{header}"),
        format!("{header}.{payload}"),
        header.to_owned(),
        format!(".{token}"),
        ".".to_owned(),
        "a.b.c.d.e".to_owned(),
    ] {
        assert_eq!(
            validate(&bad).map(drop),
            malformed(TokenPart::Token, FormatFault::SegmentCount),
            "{bad}"
        );
    }
}

#[test]
fn oversized_token_is_rejected() {
    // Correctly signed, so only the size check can reject it.
    let claims = claims_with("padding", json!("x".repeat(MAX_TOKEN_BYTES)));
    let token = token(&header_json(), &claims);
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(
        validate(&token).map(drop),
        Err(AuthError::TokenTooLarge {
            len: token.len(),
            max: MAX_TOKEN_BYTES
        })
    );
}

#[test]
fn token_just_under_limit_is_accepted() {
    let claims = claims_with("padding", json!("x".repeat(MAX_TOKEN_BYTES / 2)));
    let token = token(&header_json(), &claims);
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert!(validate(&token).is_ok());
}

#[test]
fn header_padding_is_rejected() {
    let token = valid_token();
    let (header, rest) = token.split_once('.').expect("dot");
    assert_ne!(
        header.len() % 4,
        0,
        "fixture header needs padding to test it"
    );
    let padding = "=".repeat(4 - header.len() % 4);
    let padded = format!("{header}{padding}.{rest}");
    assert_eq!(
        validate(&padded).map(drop),
        malformed(TokenPart::Header, FormatFault::Base64)
    );
}

#[test]
fn signature_padding_is_rejected() {
    // A 64-byte signature is 86 base64url characters; padding adds "==".
    let padded = format!("{}==", valid_token());
    assert_eq!(
        validate(&padded).map(drop),
        malformed(TokenPart::Signature, FormatFault::Base64)
    );
}

#[test]
fn payload_padding_is_rejected_after_signature() {
    // The signature covers the padded text, so only the strict decoder can
    // reject the payload.
    let header = b64(&serde_json::to_vec(&header_json()).expect("JSON"));
    let mut payload = b64(&serde_json::to_vec(&claims_json()).expect("JSON"));
    if payload.len().is_multiple_of(4) {
        payload = b64(&serde_json::to_vec(&claims_with("x", json!(1))).expect("JSON"));
    }
    let padding = "=".repeat(4 - payload.len() % 4);
    let token = sign_input(&format!("{header}.{payload}{padding}"));
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Payload, FormatFault::Base64)
    );
}

#[test]
fn payload_trailing_bits_are_rejected() {
    let header = b64(&serde_json::to_vec(&header_json()).expect("JSON"));
    let mut claims = claims_json();
    // Grow the payload until its last character carries unused bits.
    while serde_json::to_vec(&claims)
        .expect("JSON")
        .len()
        .is_multiple_of(3)
    {
        claims["x"] = json!(claims["x"].as_str().unwrap_or("").to_owned() + "y");
    }
    let payload = b64(&serde_json::to_vec(&claims).expect("JSON"));
    let last = payload.chars().last().expect("non-empty");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).expect("base64url character");
    // Setting the lowest bit keeps every decoded byte but sets a trailing bit.
    let noncanonical = alphabet.chars().nth(index | 1).expect("in range");
    assert_ne!(noncanonical, last);
    let payload = format!("{}{noncanonical}", &payload[..payload.len() - 1]);
    let token = sign_input(&format!("{header}.{payload}"));
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Payload, FormatFault::Base64)
    );
}

#[test]
fn standard_alphabet_is_rejected() {
    let token = valid_token().replace('-', "+").replace('_', "/");
    assert_ne!(token, valid_token(), "fixture must contain - or _");
    assert!(matches!(
        validate(&token),
        Err(AuthError::Malformed {
            fault: FormatFault::Base64,
            ..
        })
    ));
}

#[test]
fn whitespace_in_token_is_rejected() {
    let token = valid_token();
    let spaced = format!("{} {}", &token[..10], &token[10..]);
    assert_eq!(
        validate(&spaced).map(drop),
        malformed(TokenPart::Header, FormatFault::Base64)
    );
}

#[test]
fn header_not_json_is_rejected() {
    let token = format!("{}.{}", b64(b"{\"alg\":\"ES256\""), "e30.AAAA");
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Header, FormatFault::Json)
    );
}

#[test]
fn header_not_object_is_rejected() {
    let token = format!("{}.e30.AAAA", b64(b"[\"ES256\"]"));
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Header, FormatFault::NotObject)
    );
}

#[test]
fn duplicate_header_member_is_rejected() {
    let header = format!(r#"{{"alg":"none","kid":"{KID_A}","alg":"ES256"}}"#);
    let claims = serde_json::to_vec(&claims_json()).expect("JSON");
    let token = stella_authority::sign_jws(&key_a(), header.as_bytes(), &claims);
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Header, FormatFault::DuplicateMember)
    );
}

#[test]
fn escaped_duplicate_header_member_is_rejected() {
    let header = format!(r#"{{"alg":"ES256","kid":"{KID_A}","\u0061lg":"none"}}"#);
    let claims = serde_json::to_vec(&claims_json()).expect("JSON");
    let token = stella_authority::sign_jws(&key_a(), header.as_bytes(), &claims);
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Header, FormatFault::DuplicateMember)
    );
}

#[test]
fn duplicate_claim_is_rejected() {
    // Correctly signed, so a parser keeping the last "tenant" would accept it.
    let header = serde_json::to_vec(&header_json()).expect("JSON");
    let claims = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"bot","iat":{ISSUED_AT},"nbf":{ISSUED_AT},"exp":{EXPIRES_AT},"jti":"1","tenant":"acme-prod","scope":"tiles:import","tenant":"other"}}"#
    );
    let token = stella_authority::sign_jws(&key_a(), &header, claims.as_bytes());
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Payload, FormatFault::DuplicateMember)
    );
}

#[test]
fn payload_not_json_is_rejected() {
    let header = serde_json::to_vec(&header_json()).expect("JSON");
    let token = stella_authority::sign_jws(&key_a(), &header, b"not json");
    assert_eq!(
        validate(&token).map(drop),
        malformed(TokenPart::Payload, FormatFault::Json)
    );
}
