//! Shared fixtures: two Authority keys, a validator that trusts them, and
//! builders for valid and deliberately invalid tokens.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use serde_json::{Value, json};
use stella_authority::{
    AuthError, Claims, Jwks, Principal, Scope, SigningKey, Tenant, Validator, ValidatorConfig,
    sign_jws,
};

pub const ISSUER: &str = "https://authority.stella.test";
pub const AUDIENCE: &str = "stella-attestor";
pub const KID_A: &str = "authority-2025-01";
pub const KID_B: &str = "authority-2025-07";
/// Validation time used by every test, Unix seconds.
pub const NOW: i64 = 1_750_000_000;
pub const ISSUED_AT: i64 = NOW - 30;
pub const EXPIRES_AT: i64 = NOW + 600;

/// Returns a P-256 key from a fixed scalar.
pub fn key(byte: u8) -> SigningKey {
    SigningKey::from_slice(&[byte; 32]).expect("fixed scalar is a valid P-256 key")
}

pub fn key_a() -> SigningKey {
    key(0x11)
}

pub fn key_b() -> SigningKey {
    key(0x22)
}

/// Returns a key that no JWKS in these tests contains.
pub fn attacker_key() -> SigningKey {
    key(0x33)
}

pub fn jwks_a_b() -> Jwks {
    Jwks::from_public_keys([
        (KID_A, *key_a().verifying_key()),
        (KID_B, *key_b().verifying_key()),
    ])
    .expect("two keys with distinct kids")
}

pub fn validator() -> Validator {
    validator_with(jwks_a_b(), 60)
}

pub fn validator_with(jwks: Jwks, clock_skew_secs: u32) -> Validator {
    let mut config = ValidatorConfig::new(ISSUER, AUDIENCE);
    config.clock_skew_secs = clock_skew_secs;
    Validator::new(config, jwks).expect("valid config")
}

pub fn claims() -> Claims {
    Claims {
        issuer: ISSUER.to_owned(),
        audience: vec![AUDIENCE.to_owned()],
        subject: "release-bot@ci".to_owned(),
        tenant: Tenant::parse("acme-prod").expect("valid tenant"),
        scopes: vec![Scope::TilesImport, Scope::EvidenceVerify],
        token_id: "0f8c6a2e-7d41-4b1e-9a53-2c7e5d9b1f40".to_owned(),
        issued_at: ISSUED_AT,
        not_before: ISSUED_AT,
        expires_at: EXPIRES_AT,
    }
}

pub fn header_json() -> Value {
    json!({ "alg": "ES256", "typ": "JWT", "kid": KID_A })
}

pub fn claims_json() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "release-bot@ci",
        "iat": ISSUED_AT,
        "nbf": ISSUED_AT,
        "exp": EXPIRES_AT,
        "jti": "0f8c6a2e-7d41-4b1e-9a53-2c7e5d9b1f40",
        "tenant": "acme-prod",
        "scope": "tiles:import evidence:verify",
    })
}

/// Signs `header` and `claims` with key A, correctly, whatever they contain.
pub fn token(header: &Value, claims: &Value) -> String {
    token_signed_by(&key_a(), header, claims)
}

pub fn token_signed_by(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let header = serde_json::to_vec(header).expect("JSON");
    let claims = serde_json::to_vec(claims).expect("JSON");
    sign_jws(key, &header, &claims)
}

/// Returns a valid token from key A with the default claims.
pub fn valid_token() -> String {
    token(&header_json(), &claims_json())
}

/// Returns the default claims with `name` set to `value`.
pub fn claims_with(name: &str, value: Value) -> Value {
    let mut claims = claims_json();
    claims[name] = value;
    claims
}

/// Returns the default claims without `name`.
pub fn claims_without(name: &str) -> Value {
    let mut claims = claims_json();
    claims.as_object_mut().expect("object").remove(name);
    claims
}

/// Returns the default header with `name` set to `value`.
pub fn header_with(name: &str, value: Value) -> Value {
    let mut header = header_json();
    header[name] = value;
    header
}

pub fn header_without(name: &str) -> Value {
    let mut header = header_json();
    header.as_object_mut().expect("object").remove(name);
    header
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs the exact `signing_input` text with key A and appends the raw
/// signature, so format faults in the first two segments get past the
/// signature check.
pub fn sign_input(signing_input: &str) -> String {
    let signature: p256::ecdsa::Signature = key_a().sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature.to_bytes()))
}

/// Validates at [`NOW`], requiring `tiles:import`.
pub fn validate(token: &str) -> Result<Principal, AuthError> {
    validator().validate(token, NOW, Scope::TilesImport)
}
