//! Rejections by the claim checks of correctly signed tokens, and the
//! scope check.

mod common;

use common::*;
use serde_json::{Value, json};
use stella_authority::{AuthError, AuthFailureKind, Scope};

fn validate_claims(claims: &Value) -> Result<(), AuthError> {
    validate(&token(&header_json(), claims)).map(drop)
}

fn validate_at(claims: &Value, now: i64) -> Result<(), AuthError> {
    validator()
        .validate(&token(&header_json(), claims), now, Scope::TilesImport)
        .map(drop)
}

#[test]
fn wrong_issuer_is_rejected() {
    for issuer in [
        "https://authority.other.test",
        "https://AUTHORITY.stella.test",
        "https://authority.stella.test/",
        "",
    ] {
        assert_eq!(
            validate_claims(&claims_with("iss", json!(issuer))),
            Err(AuthError::WrongIssuer {
                found: issuer.to_owned(),
                expected: ISSUER.to_owned()
            }),
            "{issuer:?}"
        );
    }
}

#[test]
fn missing_issuer_is_rejected() {
    assert_eq!(
        validate_claims(&claims_without("iss")),
        Err(AuthError::MissingClaim { claim: "iss" })
    );
    assert!(matches!(
        validate_claims(&claims_with("iss", json!([ISSUER]))),
        Err(AuthError::InvalidClaim { claim: "iss", .. })
    ));
}

#[test]
fn wrong_audience_is_rejected() {
    let expected = Err(AuthError::WrongAudience {
        expected: AUDIENCE.to_owned(),
    });
    assert_eq!(
        validate_claims(&claims_with("aud", json!("stella-gate"))),
        expected
    );
    assert_eq!(
        validate_claims(&claims_with("aud", json!(["stella-gate", "stella-cli"]))),
        expected
    );
    assert_eq!(
        validate_claims(&claims_with("aud", json!("Stella-Attestor"))),
        expected
    );
}

#[test]
fn audience_array_with_ours_is_accepted() {
    let claims = claims_with("aud", json!(["stella-gate", AUDIENCE]));
    assert_eq!(validate_claims(&claims), Ok(()));
}

#[test]
fn malformed_audience_is_rejected() {
    assert_eq!(
        validate_claims(&claims_without("aud")),
        Err(AuthError::MissingClaim { claim: "aud" })
    );
    for aud in [json!([]), json!(7), json!([AUDIENCE, 7]), Value::Null] {
        assert!(
            matches!(
                validate_claims(&claims_with("aud", aud.clone())),
                Err(AuthError::InvalidClaim { claim: "aud", .. })
            ),
            "{aud}"
        );
    }
}

#[test]
fn expiry_honours_clock_skew() {
    let claims = claims_json();
    assert_eq!(validate_at(&claims, EXPIRES_AT - 1), Ok(()));
    assert_eq!(
        validate_at(&claims, EXPIRES_AT + 59),
        Ok(()),
        "within 60 s skew"
    );
    assert_eq!(
        validate_at(&claims, EXPIRES_AT + 60),
        Err(AuthError::Expired {
            exp: EXPIRES_AT,
            now: EXPIRES_AT + 60,
            skew: 60
        })
    );
}

#[test]
fn expiry_without_skew_is_exact() {
    let token = token(&header_json(), &claims_json());
    let strict = validator_with(jwks_a_b(), 0);
    assert!(
        strict
            .validate(&token, EXPIRES_AT - 1, Scope::TilesImport)
            .is_ok()
    );
    assert!(matches!(
        strict.validate(&token, EXPIRES_AT, Scope::TilesImport),
        Err(AuthError::Expired { .. })
    ));
}

#[test]
fn not_before_honours_clock_skew() {
    let nbf = NOW + 600;
    let claims = claims_with("nbf", json!(nbf));
    assert_eq!(validate_at(&claims, nbf - 60), Ok(()), "within 60 s skew");
    assert_eq!(
        validate_at(&claims, nbf - 61),
        Err(AuthError::NotYetValid {
            nbf,
            now: nbf - 61,
            skew: 60
        })
    );
}

#[test]
fn issued_in_future_is_rejected() {
    let iat = NOW + 61;
    assert_eq!(
        validate_claims(&claims_with("iat", json!(iat))),
        Err(AuthError::IssuedInFuture {
            iat,
            now: NOW,
            skew: 60
        })
    );
    assert_eq!(
        validate_claims(&claims_with("iat", json!(NOW + 60))),
        Ok(())
    );
}

#[test]
fn time_claims_are_required() {
    for claim in ["exp", "nbf", "iat"] {
        assert_eq!(
            validate_claims(&claims_without(claim)),
            Err(AuthError::MissingClaim { claim }),
            "{claim}"
        );
    }
}

#[test]
fn time_claims_must_be_integers() {
    for claim in ["exp", "nbf", "iat"] {
        for value in [
            json!(1.75e9),
            json!(1_750_000_000.5),
            json!("1750000000"),
            json!(-1),
            json!(u64::MAX),
            Value::Null,
        ] {
            assert!(
                matches!(
                    validate_claims(&claims_with(claim, value.clone())),
                    Err(AuthError::InvalidClaim { claim: found, .. }) if found == claim
                ),
                "{claim} = {value}"
            );
        }
    }
}

#[test]
fn far_future_expiry_does_not_overflow() {
    let claims = claims_with("exp", json!(i64::MAX));
    assert_eq!(validate_claims(&claims), Ok(()));
}

#[test]
fn subject_is_required() {
    assert_eq!(
        validate_claims(&claims_without("sub")),
        Err(AuthError::MissingClaim { claim: "sub" })
    );
    assert!(matches!(
        validate_claims(&claims_with("sub", json!(""))),
        Err(AuthError::InvalidClaim { claim: "sub", .. })
    ));
}

#[test]
fn token_id_is_required() {
    assert_eq!(
        validate_claims(&claims_without("jti")),
        Err(AuthError::MissingClaim { claim: "jti" })
    );
    assert!(matches!(
        validate_claims(&claims_with("jti", json!(""))),
        Err(AuthError::InvalidClaim { claim: "jti", .. })
    ));
    assert!(matches!(
        validate_claims(&claims_with("jti", json!(42))),
        Err(AuthError::InvalidClaim { claim: "jti", .. })
    ));
}

#[test]
fn tenant_is_required() {
    assert_eq!(
        validate_claims(&claims_without("tenant")),
        Err(AuthError::MissingClaim { claim: "tenant" })
    );
}

#[test]
fn tenant_charset_is_enforced() {
    for tenant in [
        json!(""),
        json!("Acme"),
        json!("acme/prod"),
        json!("../acme"),
        json!(".."),
        json!("-acme"),
        json!("acme prod"),
        json!("acme\u{0}"),
        json!("x".repeat(64)),
        json!(["acme"]),
    ] {
        assert!(
            matches!(
                validate_claims(&claims_with("tenant", tenant.clone())),
                Err(AuthError::InvalidClaim {
                    claim: "tenant",
                    ..
                })
            ),
            "{tenant}"
        );
    }
}

#[test]
fn missing_scope_is_permission_denied() {
    let claims = claims_with("scope", json!("reports:read decisions:read"));
    let result = validate_claims(&claims);
    assert_eq!(
        result,
        Err(AuthError::MissingScope {
            required: Scope::TilesImport
        })
    );
    let kind = result.err().map(|err| err.kind());
    assert_eq!(kind, Some(AuthFailureKind::PermissionDenied));
}

#[test]
fn absent_scope_claim_grants_nothing() {
    assert_eq!(
        validate_claims(&claims_without("scope")),
        Err(AuthError::MissingScope {
            required: Scope::TilesImport
        })
    );
}

#[test]
fn scope_names_must_match_exactly() {
    for scope in ["TILES:IMPORT", "tiles:import:all", "tiles", "tiles:*"] {
        assert!(
            matches!(
                validate_claims(&claims_with("scope", json!(scope))),
                Err(AuthError::MissingScope { .. })
            ),
            "{scope}"
        );
    }
}

#[test]
fn malformed_scope_claim_is_rejected() {
    for scope in [
        json!(""),
        json!("tiles:import  reports:read"),
        json!(["tiles:import"]),
        json!(" tiles:import"),
    ] {
        assert!(
            matches!(
                validate_claims(&claims_with("scope", scope.clone())),
                Err(AuthError::InvalidClaim { claim: "scope", .. })
            ),
            "{scope}"
        );
    }
}

#[test]
fn issuer_check_precedes_time_checks() {
    let mut claims = claims_with("iss", json!("https://other.test"));
    claims["exp"] = json!(1);
    assert!(matches!(
        validate_claims(&claims),
        Err(AuthError::WrongIssuer { .. })
    ));
}

#[test]
fn unknown_claims_are_ignored() {
    let claims = claims_with("groups", json!(["release-managers"]));
    assert_eq!(validate_claims(&claims), Ok(()));
}
