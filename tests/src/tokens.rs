//! Hand-built tokens for the rejection tests: a valid token taken apart and reassembled with a
//! changed header or payload, signed again with the environment's Authority key or not at all.
//!
//! `stella_authority::mint` returns an error for claims that a validator would reject, such as
//! an empty scope list, so these tokens are built from the parts of a minted one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use stella_authority::{SigningKey, sign_jws};

/// The decoded header and payload of a compact JWS.
#[derive(Debug, Clone)]
pub struct TokenParts {
    /// The JOSE header, such as `{"alg":"ES256","typ":"JWT","kid":"..."}`.
    pub header: Value,
    /// The claims.
    pub payload: Value,
}

impl TokenParts {
    /// Decodes the header and payload of `token`.
    ///
    /// # Panics
    ///
    /// Panics when `token` is not three base64url parts with JSON objects in the first two.
    pub fn decode(token: &str) -> TokenParts {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "a compact JWS has three parts: {token}");
        TokenParts {
            header: decode_json(parts[0]),
            payload: decode_json(parts[1]),
        }
    }

    /// Signs the parts with `key` (ES256), whatever algorithm the header names.
    pub fn sign(&self, key: &SigningKey) -> String {
        sign_jws(key, &to_json(&self.header), &to_json(&self.payload))
    }

    /// Encodes the parts with `signature` as the third part, unchecked, as an attacker would.
    pub fn with_signature(&self, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(to_json(&self.header)),
            URL_SAFE_NO_PAD.encode(to_json(&self.payload)),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }
}

fn decode_json(part: &str) -> Value {
    let bytes = match URL_SAFE_NO_PAD.decode(part) {
        Ok(bytes) => bytes,
        Err(err) => panic!("token part {part} is not base64url: {err}"),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value @ Value::Object(_)) => value,
        Ok(other) => panic!("token part is JSON but not an object: {other}"),
        Err(err) => panic!("token part is not JSON: {err}"),
    }
}

fn to_json(value: &Value) -> Vec<u8> {
    match serde_json::to_vec(value) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot serialise token part {value}: {err}"),
    }
}
