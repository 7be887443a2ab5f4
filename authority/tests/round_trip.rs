//! Minting and validation together: round trip, key rotation, single-byte
//! tampering and the content of rejection messages.

mod common;

use common::*;
use serde_json::json;
use stella_authority::{
    AuthError, AuthFailureKind, ConfigError, Jwks, MintError, Scope, Validator, ValidatorConfig,
    bearer_token, mint,
};

#[test]
fn mint_then_validate() {
    let token = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    let principal = validator()
        .validate(&token, NOW, Scope::EvidenceVerify)
        .expect("valid token");
    assert_eq!(principal.tenant().as_str(), "acme-prod");
    assert_eq!(principal.subject(), "release-bot@ci");
    assert_eq!(principal.token_id(), "0f8c6a2e-7d41-4b1e-9a53-2c7e5d9b1f40");
    assert_eq!(principal.expires_at(), EXPIRES_AT);
    assert_eq!(principal.key_id(), KID_A);
    assert_eq!(
        principal.scopes().iter().copied().collect::<Vec<_>>(),
        vec![Scope::TilesImport, Scope::EvidenceVerify]
    );
    assert!(principal.has_scope(Scope::TilesImport));
    assert!(!principal.has_scope(Scope::PromotionBreakGlass));
}

#[test]
fn minted_token_layout() {
    let token = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);
    let header = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        segments[0],
    )
    .expect("base64url");
    assert_eq!(
        String::from_utf8(header).expect("UTF-8"),
        format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{KID_A}"}}"#)
    );
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        segments[1],
    )
    .expect("base64url");
    let payload: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(payload["aud"], json!(AUDIENCE), "one audience is a string");
    assert_eq!(payload["scope"], json!("tiles:import evidence:verify"));
    assert_eq!(payload["tenant"], json!("acme-prod"));
}

#[test]
fn mint_is_deterministic() {
    let first = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    let second = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    assert_eq!(first, second);
}

#[test]
fn mint_with_several_audiences() {
    let mut claims = claims();
    claims.audience = vec!["stella-gate".to_owned(), AUDIENCE.to_owned()];
    let token = mint(&key_a(), KID_A, &claims).expect("valid claims");
    assert!(validate(&token).is_ok());
}

#[test]
fn mint_rejects_invalid_claims() {
    assert_eq!(mint(&key_a(), "", &claims()), Err(MintError::EmptyKeyId));

    let mut no_scopes = claims();
    no_scopes.scopes.clear();
    assert!(matches!(
        mint(&key_a(), KID_A, &no_scopes),
        Err(MintError::InvalidClaim { claim: "scope", .. })
    ));

    let mut inverted = claims();
    inverted.expires_at = inverted.not_before;
    assert!(matches!(
        mint(&key_a(), KID_A, &inverted),
        Err(MintError::InvalidClaim { claim: "exp", .. })
    ));

    let mut no_audience = claims();
    no_audience.audience.clear();
    assert!(matches!(
        mint(&key_a(), KID_A, &no_audience),
        Err(MintError::InvalidClaim { claim: "aud", .. })
    ));

    let mut empty_jti = claims();
    empty_jti.token_id.clear();
    assert!(matches!(
        mint(&key_a(), KID_A, &empty_jti),
        Err(MintError::InvalidClaim { claim: "jti", .. })
    ));
}

#[test]
fn rotation_accepts_both_keys() {
    let validator = validator();
    let old = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    let new = mint(&key_b(), KID_B, &claims()).expect("valid claims");
    let old_principal = validator
        .validate(&old, NOW, Scope::TilesImport)
        .expect("key A token");
    let new_principal = validator
        .validate(&new, NOW, Scope::TilesImport)
        .expect("key B token");
    assert_eq!(old_principal.key_id(), KID_A);
    assert_eq!(new_principal.key_id(), KID_B);
}

#[test]
fn retired_key_is_unknown() {
    let only_b = Jwks::from_public_keys([(KID_B, *key_b().verifying_key())]).expect("one key");
    let validator = validator_with(only_b, 60);
    let old = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    assert_eq!(
        validator.validate(&old, NOW, Scope::TilesImport).map(drop),
        Err(AuthError::UnknownKeyId {
            kid: KID_A.to_owned()
        })
    );
}

#[test]
fn kid_selects_the_key() {
    // Key B's token labelled with key A's kid fails even though key B is trusted.
    let token = mint(&key_b(), KID_A, &claims()).expect("valid claims");
    assert!(matches!(
        validate(&token),
        Err(AuthError::InvalidSignature { .. })
    ));
}

#[test]
fn any_single_byte_flip_is_rejected() {
    let token = mint(&key_a(), KID_A, &claims()).expect("valid claims");
    assert!(validate(&token).is_ok());
    let mut checked = 0usize;
    for index in 0..token.len() {
        for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40] {
            let mut bytes = token.clone().into_bytes();
            bytes[index] ^= mask;
            // The validator takes `&str`; a flip that breaks UTF-8 cannot reach it.
            let Ok(flipped) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(
                validate(&flipped).is_err(),
                "flipping byte {index} with mask {mask:#04x} still validates"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        token.len() * 7,
        "every flip of an ASCII byte stays ASCII"
    );
}

#[test]
fn messages_never_contain_the_token() {
    let token = valid_token();
    let (signing_input, signature) = token.rsplit_once('.').expect("dot");
    let (_, payload) = signing_input.split_once('.').expect("dot");
    let rejected = [
        validator().validate(&token, EXPIRES_AT + 3600, Scope::TilesImport),
        validator().validate(&token, NOW, Scope::PromotionBreakGlass),
        validate(&format!("{signing_input}.{}", &signature[..40])),
        validate(&token_signed_by(
            &attacker_key(),
            &header_json(),
            &claims_json(),
        )),
        validate(&format!("{token}.")),
    ];
    for result in rejected {
        let message = result.expect_err("rejected").to_string();
        assert!(!message.contains(signature), "{message}");
        assert!(!message.contains(payload), "{message}");
        assert!(!message.contains(&signature[..16]), "{message}");
    }
}

#[test]
fn only_scope_failures_are_permission_denied() {
    let unauthenticated = [
        AuthError::MissingToken,
        AuthError::MissingAlgorithm,
        AuthError::MissingKeyId,
        AuthError::InvalidSignature {
            kid: KID_A.to_owned(),
        },
        AuthError::Expired {
            exp: 0,
            now: 1,
            skew: 0,
        },
        AuthError::WrongAudience {
            expected: AUDIENCE.to_owned(),
        },
        AuthError::MissingClaim { claim: "tenant" },
    ];
    for error in unauthenticated {
        assert_eq!(error.kind(), AuthFailureKind::Unauthenticated, "{error}");
    }
    let denied = AuthError::MissingScope {
        required: Scope::DecisionsRead,
    };
    assert_eq!(denied.kind(), AuthFailureKind::PermissionDenied);
    assert_eq!(denied.check(), "scope");
    assert_eq!(
        denied.to_string(),
        "permission denied: the token does not grant scope decisions:read"
    );
}

#[test]
fn config_is_checked() {
    let mut config = ValidatorConfig::new(ISSUER, AUDIENCE);
    config.clock_skew_secs = 301;
    assert_eq!(
        Validator::new(config, jwks_a_b()).map(drop),
        Err(ConfigError::ClockSkewTooLarge {
            skew: 301,
            max: 300
        })
    );
    assert_eq!(
        Validator::new(ValidatorConfig::new("", AUDIENCE), jwks_a_b()).map(drop),
        Err(ConfigError::EmptyIssuer)
    );
    assert_eq!(
        Validator::new(ValidatorConfig::new(ISSUER, ""), jwks_a_b()).map(drop),
        Err(ConfigError::EmptyAudience)
    );
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
    assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"));
    assert_eq!(bearer_token(Some("BEARER  abc ")), Ok("abc"));
    for value in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic dXNlcjpwYXNz"),
        Some("abc.def.ghi"),
    ] {
        assert_eq!(
            bearer_token(value),
            Err(AuthError::MissingToken),
            "{value:?}"
        );
    }
}
