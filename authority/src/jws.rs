//! JWS compact serialization (RFC 7515 section 7.1) with ES256 (RFC 7518
//! section 3.4): segment split, header checks, key selection by `kid` and
//! signature verification.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::{Map, Value};

use crate::base64url;
use crate::error::{AuthError, FormatFault, TokenPart, shown};
use crate::header::check_header;
use crate::json::{JsonFault, parse_object};
use crate::jwks::Jwks;

/// Length of an ES256 signature: `r` and `s`, 32 big-endian bytes each.
const SIGNATURE_LEN: usize = 64;

/// A token whose signature verified, with the claims not yet checked.
pub(crate) struct VerifiedToken {
    /// The key ID of the key that verified the signature.
    pub(crate) kid: String,
    /// The claims object.
    pub(crate) claims: Map<String, Value>,
}

/// Checks the header, selects the key by `kid`, verifies the signature and
/// only then decodes the claims.
pub(crate) fn verify_token(token: &str, jwks: &Jwks) -> Result<VerifiedToken, AuthError> {
    let segments: Vec<&str> = token.splitn(4, '.').collect();
    let [header_segment, payload_segment, signature_segment] = segments[..] else {
        return Err(malformed(TokenPart::Token, FormatFault::SegmentCount));
    };

    let header = decode_object(TokenPart::Header, header_segment)?;
    let kid = check_header(&header)?;
    let Some(jwk) = jwks.find(&kid) else {
        return Err(AuthError::UnknownKeyId { kid: shown(&kid) });
    };

    let signature = base64url::decode(signature_segment)
        .ok_or_else(|| malformed(TokenPart::Signature, FormatFault::Base64))?;
    // The signing input is the first two segments exactly as sent, dot included.
    let signing_input_len = header_segment
        .len()
        .saturating_add(1)
        .saturating_add(payload_segment.len());
    let signing_input = token.get(..signing_input_len).unwrap_or_default();
    verify_signature(jwk.verifying_key(), signing_input.as_bytes(), &signature).map_err(
        |fault| match fault {
            Some(fault) => malformed(TokenPart::Signature, fault),
            None => AuthError::InvalidSignature {
                kid: shown(jwk.kid()),
            },
        },
    )?;

    let claims = decode_object(TokenPart::Payload, payload_segment)?;
    Ok(VerifiedToken {
        kid: jwk.kid().to_owned(),
        claims,
    })
}

/// Verifies a raw `r || s` ES256 signature over `signing_input`.
///
/// Returns `Err(Some(fault))` for a signature of the wrong length and
/// `Err(None)` when it does not verify. A high-S signature (`s > n/2`)
/// verifies, because RFC 7518 does not require low-S and common ES256
/// signers produce both forms.
fn verify_signature(
    key: &VerifyingKey,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), Option<FormatFault>> {
    if signature.len() != SIGNATURE_LEN {
        return Err(Some(FormatFault::SignatureLength));
    }
    // `from_slice` rejects r or s equal to zero or not below the group order.
    let signature = Signature::from_slice(signature).map_err(|_| None)?;
    key.verify(signing_input, &signature).map_err(|_| None)
}

fn decode_object(part: TokenPart, segment: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = base64url::decode(segment).ok_or_else(|| malformed(part, FormatFault::Base64))?;
    parse_object(&bytes).map_err(|fault| {
        let fault = match fault {
            JsonFault::Syntax => FormatFault::Json,
            JsonFault::DuplicateMember => FormatFault::DuplicateMember,
            JsonFault::NotObject => FormatFault::NotObject,
        };
        malformed(part, fault)
    })
}

fn malformed(part: TokenPart, fault: FormatFault) -> AuthError {
    AuthError::Malformed { part, fault }
}

#[cfg(test)]
mod tests {
    use super::verify_signature;
    use crate::base64url;
    use crate::error::FormatFault;
    use crate::jwks::Jwks;

    // RFC 7515 appendix A.3: an ES256 JWS and the P-256 key that verifies it.
    const RFC7515_A3_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a3",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    const RFC7515_A3_SIGNING_INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const RFC7515_A3_SIGNATURE: &str =
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

    fn rfc_key() -> p256::ecdsa::VerifyingKey {
        let jwks = Jwks::parse(RFC7515_A3_JWKS).expect("RFC 7515 A.3 key parses");
        *jwks.find("a3").expect("key a3").verifying_key()
    }

    #[test]
    fn rfc7515_a3_signature_verifies() {
        let signature = base64url::decode(RFC7515_A3_SIGNATURE).expect("base64url");
        let result = verify_signature(&rfc_key(), RFC7515_A3_SIGNING_INPUT.as_bytes(), &signature);
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn rfc7515_a3_other_input_fails() {
        let signature = base64url::decode(RFC7515_A3_SIGNATURE).expect("base64url");
        let input = RFC7515_A3_SIGNING_INPUT.replace("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Ki");
        let result = verify_signature(&rfc_key(), input.as_bytes(), &signature);
        assert_eq!(result, Err(None));
    }

    #[test]
    fn rfc7515_a3_der_signature_fails_length() {
        let raw = base64url::decode(RFC7515_A3_SIGNATURE).expect("base64url");
        let signature = p256::ecdsa::Signature::from_slice(&raw).expect("valid scalars");
        let der = signature.to_der();
        let result = verify_signature(
            &rfc_key(),
            RFC7515_A3_SIGNING_INPUT.as_bytes(),
            der.as_bytes(),
        );
        assert_eq!(result, Err(Some(FormatFault::SignatureLength)));
    }
}
