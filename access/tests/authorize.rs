//! `Authenticator::authorize` on tonic requests: the status code, reason code and message of
//! each rejection, and the principal of an accepted call.

use stella_access::dev::{DevAuthority, all_scopes};
use stella_access::{AUDIENCE_ATTESTOR, Authenticator, BearerToken, Scope, forwarded_token};
use stella_authority::{Jwks, Validator, ValidatorConfig};
use tonic::{Code, Request};

fn authenticator(authority: &DevAuthority) -> Authenticator {
    let jwks = Jwks::parse(&authority.jwks_json()).expect("jwks");
    let config = ValidatorConfig::new(stella_access::DEFAULT_ISSUER, AUDIENCE_ATTESTOR);
    Authenticator::new(Validator::new(config, jwks).expect("validator"))
}

fn request_with(token: &str) -> Request<()> {
    let mut request = Request::new(());
    BearerToken::new(token).expect("token").apply(&mut request);
    request
}

fn reason(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get("stella-reason-code")
        .expect("reason metadata")
        .to_str()
        .expect("ascii")
}

#[test]
fn accepted_call_returns_tenant() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let principal = authenticator(&authority)
        .authorize(&request_with(&token), "GetReport", Scope::ReportsRead)
        .expect("accepted");
    assert_eq!(principal.tenant().as_str(), "tenant-a");
}

#[test]
fn missing_token_unauthenticated() {
    let authority = DevAuthority::generate();
    let status = authenticator(&authority)
        .authorize(&Request::new(()), "GetReport", Scope::ReportsRead)
        .expect_err("rejected");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "ERR_AUTH_UNAUTHENTICATED");
    assert!(status.message().starts_with("ERR_AUTH_UNAUTHENTICATED: GetReport: token check failed"), "{}", status.message());
}

#[test]
fn missing_scope_permission_denied() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &[Scope::ReportsRead]);
    let status = authenticator(&authority)
        .authorize(&request_with(&token), "ImportTiles", Scope::TilesImport)
        .expect_err("rejected");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "ERR_AUTH_PERMISSION_DENIED");
    assert!(status.message().contains("tiles:import"), "{}", status.message());
    assert!(!status.message().contains(&token), "message repeats the token");
}

#[test]
fn other_authority_rejected() {
    let trusted = DevAuthority::generate();
    let stranger = DevAuthority::generate();
    let token = stranger.token("tenant-a", &all_scopes());
    let status = authenticator(&trusted)
        .authorize(&request_with(&token), "GetReport", Scope::ReportsRead)
        .expect_err("rejected");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("kid check failed"), "{}", status.message());
}

#[test]
fn wrong_scheme_rejected() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let mut request = Request::new(());
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {token}").parse().expect("ascii"));
    let status = authenticator(&authority)
        .authorize(&request, "GetReport", Scope::ReportsRead)
        .expect_err("rejected");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[test]
fn expiry_checked_with_skew() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let checker = authenticator(&authority);
    let request = request_with(&token);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expiry = now + stella_access::dev::DEV_TOKEN_TTL_SECS;
    // Within the default 60 s skew after expiry: accepted; beyond it: rejected.
    checker
        .authorize_at(&request, "GetReport", Scope::ReportsRead, expiry + 30)
        .expect("within skew");
    let status = checker
        .authorize_at(&request, "GetReport", Scope::ReportsRead, expiry + 120)
        .expect_err("expired");
    assert!(status.message().contains("exp check failed"), "{}", status.message());
}

#[test]
fn forwarded_token_is_callers() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let incoming = request_with(&token);
    let forwarded = forwarded_token(&incoming).expect("present");
    let mut outgoing = Request::new(());
    forwarded.apply(&mut outgoing);
    assert_eq!(
        outgoing.metadata().get("authorization"),
        incoming.metadata().get("authorization")
    );
    assert!(forwarded_token(&Request::new(())).is_none());
}

#[test]
fn repeated_token_still_checks_scope() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &[Scope::ReportsRead]);
    let checker = authenticator(&authority);
    let request = request_with(&token);
    checker.authorize(&request, "GetReport", Scope::ReportsRead).expect("first call");
    checker.authorize(&request, "GetReport", Scope::ReportsRead).expect("second call");
    let status = checker
        .authorize(&request, "ImportTiles", Scope::TilesImport)
        .expect_err("scope still checked");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[test]
fn repeated_token_rechecked_when_clock_goes_back() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let checker = authenticator(&authority);
    let request = request_with(&token);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    checker.authorize_at(&request, "GetReport", Scope::ReportsRead, now).expect("valid now");
    let status = checker
        .authorize_at(&request, "GetReport", Scope::ReportsRead, now - 3600)
        .expect_err("before nbf");
    assert!(status.message().contains("nbf check failed"), "{}", status.message());
}

#[test]
fn tampered_copy_of_verified_token_rejected() {
    let authority = DevAuthority::generate();
    let token = authority.token("tenant-a", &all_scopes());
    let checker = authenticator(&authority);
    checker
        .authorize(&request_with(&token), "GetReport", Scope::ReportsRead)
        .expect("valid");
    // Change one character of the payload: the cache must not match it, and the signature fails.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = parts.get_mut(1).expect("payload");
    let last = payload.pop().expect("non-empty");
    payload.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = parts.join(".");
    let status = checker
        .authorize(&request_with(&tampered), "GetReport", Scope::ReportsRead)
        .expect_err("tampered");
    assert_eq!(status.code(), Code::Unauthenticated);
}
