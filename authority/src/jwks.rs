//! JSON Web Key Sets (RFC 7517) holding the Authority's ES256 verification
//! keys. Several keys let the Authority rotate: each token names its key by
//! `kid`.

use p256::ecdsa::VerifyingKey;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::base64url;
use crate::json::{JsonFault, parse_object};

/// Length in bytes of a P-256 coordinate.
const COORDINATE_LEN: usize = 32;

/// One verification key and its key ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: String,
    key: VerifyingKey,
}

impl Jwk {
    /// Pairs `key` with the key ID `kid`.
    ///
    /// # Errors
    ///
    /// [`JwkFault::MissingKeyId`] if `kid` is empty.
    pub fn new(kid: impl Into<String>, key: VerifyingKey) -> Result<Jwk, JwkFault> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(JwkFault::MissingKeyId);
        }
        Ok(Jwk { kid, key })
    }

    /// Returns the key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Computes the RFC 7638 thumbprint of the public key: base64url of
    /// SHA-256 over `{"crv":"P-256","kty":"EC","x":…,"y":…}` with members in
    /// that order and no whitespace. It suits as a `kid` for a new key.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.key)
    }

    fn to_json(&self) -> Value {
        let (x, y) = coordinates(&self.key);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "x": x,
            "y": y,
        })
    }
}

/// Computes the RFC 7638 thumbprint of a P-256 public key; see [`Jwk::thumbprint`].
pub fn thumbprint(key: &VerifyingKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    base64url::encode(&Sha256::digest(canonical.as_bytes()))
}

/// Returns the base64url x and y coordinates of `key`.
fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_sec1_point(false);
    // An uncompressed SEC1 point is 0x04 followed by x and y.
    let bytes = point.as_bytes();
    let x = bytes.get(1..1 + COORDINATE_LEN).unwrap_or_default();
    let y = bytes.get(1 + COORDINATE_LEN..).unwrap_or_default();
    (base64url::encode(x), base64url::encode(y))
}

/// A set of verification keys with unique key IDs, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document.
    ///
    /// Every key must be an EC P-256 public key with a unique, non-empty
    /// `kid`. Where present, `use` must be `sig`, `alg` must be `ES256` and
    /// `key_ops` must contain `verify`. A private key member (`d`) is
    /// rejected so that a signing key is never deployed as verification
    /// material. Other members are ignored.
    ///
    /// # Errors
    ///
    /// [`JwksError`] naming the key index and the fault.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let document = parse_object(json.as_bytes()).map_err(|fault| match fault {
            JsonFault::Syntax => JwksError::Json,
            JsonFault::DuplicateMember => JwksError::DuplicateMember,
            JsonFault::NotObject => JwksError::NotObject,
        })?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::MissingKeys);
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            let jwk = parse_jwk(entry).map_err(|fault| JwksError::InvalidKey {
                index,
                kid: kid.clone(),
                fault,
            })?;
            keys.push(jwk);
        }
        Jwks::from_keys(keys)
    }

    /// Builds a set from public keys and their key IDs.
    ///
    /// # Errors
    ///
    /// [`JwksError::NoKeys`] for an empty input, [`JwksError::InvalidKey`]
    /// for an empty key ID and [`JwksError::DuplicateKeyId`] for a repeated one.
    pub fn from_public_keys<I, S>(keys: I) -> Result<Jwks, JwksError>
    where
        I: IntoIterator<Item = (S, VerifyingKey)>,
        S: Into<String>,
    {
        let mut jwks = Vec::new();
        for (index, (kid, key)) in keys.into_iter().enumerate() {
            let jwk = Jwk::new(kid, key).map_err(|fault| JwksError::InvalidKey {
                index,
                kid: None,
                fault,
            })?;
            jwks.push(jwk);
        }
        Jwks::from_keys(jwks)
    }

    fn from_keys(keys: Vec<Jwk>) -> Result<Jwks, JwksError> {
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        for (index, jwk) in keys.iter().enumerate() {
            let repeated = keys
                .get(..index)
                .unwrap_or_default()
                .iter()
                .any(|earlier| earlier.kid == jwk.kid);
            if repeated {
                return Err(JwksError::DuplicateKeyId {
                    kid: jwk.kid.clone(),
                });
            }
        }
        Ok(Jwks { keys })
    }

    /// Returns the key with key ID `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|jwk| jwk.kid == kid)
    }

    /// Returns the keys in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Serializes the set as a JWKS document that [`Jwks::parse`] accepts,
    /// with `use` `sig` and `alg` `ES256` on every key.
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self.keys.iter().map(Jwk::to_json).collect();
        let document = json!({ "keys": keys });
        // Serializing a `Value` cannot fail: serde_json fails only on non-string map keys, and
        // the maps of a `Value` have string keys by type.
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn parse_jwk(entry: &Value) -> Result<Jwk, JwkFault> {
    let Value::Object(members) = entry else {
        return Err(JwkFault::NotObject);
    };
    let kid = match members.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(JwkFault::MissingKeyId),
    };
    let kty = required_string(members, "kty")?;
    if kty != "EC" {
        return Err(JwkFault::KeyType(kty.to_owned()));
    }
    let crv = required_string(members, "crv")?;
    if crv != "P-256" {
        return Err(JwkFault::Curve(crv.to_owned()));
    }
    if let Some(key_use) = optional_string(members, "use")?
        && key_use != "sig"
    {
        return Err(JwkFault::Use(key_use.to_owned()));
    }
    if let Some(alg) = optional_string(members, "alg")?
        && alg != "ES256"
    {
        return Err(JwkFault::Algorithm(alg.to_owned()));
    }
    if let Some(key_ops) = members.get("key_ops") {
        let allows_verify = key_ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !allows_verify {
            return Err(JwkFault::KeyOps);
        }
    }
    if members.contains_key("d") {
        return Err(JwkFault::PrivateKey);
    }

    let x = coordinate(members, "x")?;
    let y = coordinate(members, "y")?;
    let mut sec1 = Vec::with_capacity(1 + 2 * COORDINATE_LEN);
    sec1.push(0x04);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    // Rejects coordinates that are not below the field prime, points off the
    // curve and the identity.
    let key = VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| JwkFault::NotOnCurve)?;
    Jwk::new(kid, key)
}

fn required_string<'a>(
    members: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, JwkFault> {
    match members.get(name) {
        None => Err(JwkFault::MissingMember(name)),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(JwkFault::NotString(name)),
    }
}

fn optional_string<'a>(
    members: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, JwkFault> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(JwkFault::NotString(name)),
    }
}

fn coordinate(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<[u8; COORDINATE_LEN], JwkFault> {
    let text = required_string(members, name)?;
    let bytes = base64url::decode(text).ok_or(JwkFault::CoordinateEncoding(name))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| JwkFault::CoordinateLength {
            member: name,
            len: bytes.len(),
        })
}

/// A rejected JWKS document, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is not valid UTF-8 JSON.
    #[error("invalid JWKS: not valid JSON")]
    Json,
    /// An object in the document repeats a member name.
    #[error("invalid JWKS: a JSON object repeats a member name")]
    DuplicateMember,
    /// The document is not a JSON object.
    #[error("invalid JWKS: the document is not a JSON object")]
    NotObject,
    /// The document has no `keys` array.
    #[error("invalid JWKS: missing \"keys\" array")]
    MissingKeys,
    /// The `keys` array is empty.
    #[error("invalid JWKS: no keys; at least one ES256 verification key is required")]
    NoKeys,
    /// One key is invalid.
    #[error("invalid JWKS: key {} {fault}", key_label(*.index, .kid.as_deref()))]
    InvalidKey {
        /// Zero-based position in `keys`.
        index: usize,
        /// The key's `kid`, if it has a string one.
        kid: Option<String>,
        /// The fault.
        fault: JwkFault,
    },
    /// Two keys share a key ID, so `kid` would not select one key.
    #[error("invalid JWKS: key ID {kid:?} appears more than once")]
    DuplicateKeyId {
        /// The repeated key ID.
        kid: String,
    },
}

fn key_label(index: usize, kid: Option<&str>) -> String {
    match kid {
        Some(kid) => format!("{index} (kid {kid:?})"),
        None => index.to_string(),
    }
}

/// A fault of one key in a JWKS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkFault {
    /// The entry is not a JSON object.
    #[error("is not a JSON object")]
    NotObject,
    /// The key has no non-empty `kid` string.
    #[error("has no kid; every key needs a unique, non-empty kid")]
    MissingKeyId,
    /// A required member is absent.
    #[error("has no {0:?} member")]
    MissingMember(&'static str),
    /// A member that must be a string is not one.
    #[error("has a non-string {0:?} member")]
    NotString(&'static str),
    /// `kty` is not `EC`.
    #[error("has kty {0:?}; expected \"EC\"")]
    KeyType(String),
    /// `crv` is not `P-256`.
    #[error("has crv {0:?}; expected \"P-256\"")]
    Curve(String),
    /// `use` is present and not `sig`.
    #[error("has use {0:?}; expected \"sig\"")]
    Use(String),
    /// `alg` is present and not `ES256`.
    #[error("has alg {0:?}; expected \"ES256\"")]
    Algorithm(String),
    /// `key_ops` is present and does not allow `verify`.
    #[error("has key_ops without \"verify\"")]
    KeyOps,
    /// The key contains the private scalar `d`.
    #[error("contains the private member \"d\"; publish only the public key")]
    PrivateKey,
    /// A coordinate is not strict base64url.
    #[error("has a {0:?} coordinate that is not base64url without padding")]
    CoordinateEncoding(&'static str),
    /// A coordinate does not decode to 32 bytes.
    #[error("has a {member:?} coordinate of {len} bytes; P-256 needs 32")]
    CoordinateLength {
        /// `x` or `y`.
        member: &'static str,
        /// The decoded length.
        len: usize,
    },
    /// `x` and `y` are not a point on P-256 other than the identity.
    #[error("has x and y that are not a valid P-256 point")]
    NotOnCurve,
}
