//! Note verifier keys (vkeys), key IDs and the Ed25519 note signer.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

use super::{NoteError, SIGNATURE_PREFIX, check_text_characters};
use crate::x509::EcdsaKey;

/// Key type byte of an Ed25519 note key.
const TYPE_ED25519: u8 = 0x01;
/// Key type byte of an ECDSA note key.
const TYPE_ECDSA: u8 = 0x02;
/// Key type byte of a timestamped Ed25519 cosignature key.
const TYPE_COSIGNATURE_ED25519: u8 = 0x04;

/// Header of the message a timestamped Ed25519 cosignature signs.
const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

/// The kind of key behind a [`NoteVerifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyType {
    /// Ed25519 signature over the note text (type `0x01`).
    Ed25519,
    /// ECDSA P-256 DER signature over SHA-256 of the note text (type `0x02`).
    EcdsaP256,
    /// Timestamped Ed25519 witness cosignature (type `0x04`).
    CosignatureEd25519,
}

impl KeyType {
    /// Returns the signed-note type byte.
    pub const fn type_byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => TYPE_ED25519,
            KeyType::EcdsaP256 => TYPE_ECDSA,
            KeyType::CosignatureEd25519 => TYPE_COSIGNATURE_ED25519,
        }
    }
}

/// The fault in an invalid verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFault {
    /// The vkey is not `<name>+<8 hex digits>+<base64>`.
    Format,
    /// The key ID is not 8 hexadecimal digits.
    KeyIdNotHex,
    /// The key part is not standard padded base64.
    InvalidBase64,
    /// The key part is empty, so it has no type byte.
    MissingType,
    /// The type byte names an algorithm this module does not implement.
    UnsupportedType { type_byte: u8 },
    /// The public key does not decode for its type.
    InvalidKey,
    /// The stated key ID differs from the one computed from name and key.
    KeyIdMismatch { stated: u32, computed: u32 },
}

impl fmt::Display for KeyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFault::Format => f.write_str("expected <name>+<8 hex digits>+<base64 key>"),
            KeyFault::KeyIdNotHex => f.write_str("key ID is not 8 hexadecimal digits"),
            KeyFault::InvalidBase64 => f.write_str("key is not valid standard base64"),
            KeyFault::MissingType => f.write_str("key is empty"),
            KeyFault::UnsupportedType { type_byte } => {
                write!(f, "unsupported key type 0x{type_byte:02x}")
            }
            KeyFault::InvalidKey => f.write_str("public key does not decode"),
            KeyFault::KeyIdMismatch { stated, computed } => {
                write!(
                    f,
                    "stated key ID {stated:08x} differs from computed key ID {computed:08x}"
                )
            }
        }
    }
}

/// A parsed public key, kept beside its encoded bytes.
#[derive(Clone)]
enum PublicKey {
    /// An Ed25519 key, checked with ed25519-dalek's `verify_strict`. aws-lc-rs was within 10 % of
    /// its speed in the backend benchmark (docs/benchmarks.md) but does not reject small-order
    /// keys and R points, so ed25519-dalek stays.
    Ed25519(ed25519_dalek::VerifyingKey),
    EcdsaP256(EcdsaKey),
    CosignatureEd25519(ed25519_dalek::VerifyingKey),
}

/// A trusted note verifier: key name, key ID and public key.
#[derive(Clone)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    /// The key as encoded after the type byte in a vkey (raw Ed25519 key or DER SPKI).
    key_bytes: Vec<u8>,
    key: PublicKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex digits key ID>+<base64(type || key)>`.
    ///
    /// The key ID must equal the one computed from the name and key.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidVerifierKey`] or [`NoteError::InvalidKeyName`].
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let fail = |fault| NoteError::InvalidVerifierKey {
            vkey: vkey.to_owned(),
            fault,
        };

        // The base64 part may contain '+', so split on the first two only.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(fail(KeyFault::Format));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(fail(KeyFault::KeyIdNotHex));
        }
        let stated = u32::from_str_radix(id_hex, 16).map_err(|_| fail(KeyFault::KeyIdNotHex))?;
        let decoded = STANDARD
            .decode(key_b64)
            .map_err(|_| fail(KeyFault::InvalidBase64))?;
        let Some((&type_byte, key)) = decoded.split_first() else {
            return Err(fail(KeyFault::MissingType));
        };

        let verifier = match type_byte {
            TYPE_ED25519 => Self::ed25519(name, &ed25519_key(key).map_err(fail)?)?,
            TYPE_ECDSA => {
                Self::ecdsa_p256_spki(name, key).map_err(|_| fail(KeyFault::InvalidKey))?
            }
            TYPE_COSIGNATURE_ED25519 => {
                Self::cosignature_ed25519(name, &ed25519_key(key).map_err(fail)?)?
            }
            other => return Err(fail(KeyFault::UnsupportedType { type_byte: other })),
        };
        if verifier.key_id != stated {
            return Err(fail(KeyFault::KeyIdMismatch {
                stated,
                computed: verifier.key_id,
            }));
        }
        Ok(verifier)
    }

    /// Creates an Ed25519 (type `0x01`) verifier.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidKeyName`], or [`NoteError::InvalidVerifierKey`] if
    /// the key is not a valid Ed25519 point.
    pub fn ed25519(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| invalid_key(name, TYPE_ED25519, public_key))?;
        Ok(Self::from_parts(
            name,
            TYPE_ED25519,
            public_key.to_vec(),
            PublicKey::Ed25519(key),
        ))
    }

    /// Creates an ECDSA P-256 (type `0x02`) verifier from a DER `SubjectPublicKeyInfo`.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidKeyName`], or [`NoteError::InvalidVerifierKey`] if
    /// the SPKI is not a P-256 public key.
    pub fn ecdsa_p256_spki(name: &str, spki_der: &[u8]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
            .ok()
            .and_then(|key| EcdsaKey::p256(&key).ok())
            .ok_or_else(|| invalid_key(name, TYPE_ECDSA, spki_der))?;
        Ok(Self::from_parts(
            name,
            TYPE_ECDSA,
            spki_der.to_vec(),
            PublicKey::EcdsaP256(key),
        ))
    }

    /// Creates a timestamped Ed25519 cosignature (type `0x04`) verifier for a witness.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidKeyName`], or [`NoteError::InvalidVerifierKey`] if
    /// the key is not a valid Ed25519 point.
    pub fn cosignature_ed25519(name: &str, public_key: &[u8; 32]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| invalid_key(name, TYPE_COSIGNATURE_ED25519, public_key))?;
        Ok(Self::from_parts(
            name,
            TYPE_COSIGNATURE_ED25519,
            public_key.to_vec(),
            PublicKey::CosignatureEd25519(key),
        ))
    }

    /// Builds a verifier from checked parts and computes its key ID.
    fn from_parts(name: &str, type_byte: u8, key_bytes: Vec<u8>, key: PublicKey) -> Self {
        let key_id = compute_key_id(name, type_byte, &key_bytes);
        Self {
            name: name.to_owned(),
            key_id,
            key_bytes,
            key,
        }
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the 4-byte key ID as a big-endian integer.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Returns the key type.
    pub fn key_type(&self) -> KeyType {
        match self.key {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::EcdsaP256(_) => KeyType::EcdsaP256,
            PublicKey::CosignatureEd25519(_) => KeyType::CosignatureEd25519,
        }
    }

    /// Returns the canonical vkey text `<name>+<key ID>+<base64(type || key)>`.
    pub fn to_vkey(&self) -> String {
        let mut encoded = Vec::with_capacity(self.key_bytes.len().saturating_add(1));
        encoded.push(self.key_type().type_byte());
        encoded.extend_from_slice(&self.key_bytes);
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            STANDARD.encode(encoded)
        )
    }

    /// Checks one signature (the decoded bytes after the key ID) over `text`.
    ///
    /// Returns the cosignature timestamp for type `0x04` keys, or `None`.
    pub(super) fn verify(&self, text: &str, signature: &[u8]) -> Result<Option<u64>, ()> {
        match &self.key {
            PublicKey::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| ())?;
                key.verify_strict(text.as_bytes(), &signature)
                    .map_err(|_| ())?;
                Ok(None)
            }
            PublicKey::EcdsaP256(key) => {
                key.verify_digest(&Sha256::digest(text.as_bytes()), signature)
                    .map_err(|_| ())?;
                Ok(None)
            }
            PublicKey::CosignatureEd25519(key) => {
                let (timestamp, signature) = signature.split_at_checked(8).ok_or(())?;
                let timestamp = u64::from_be_bytes(timestamp.try_into().map_err(|_| ())?);
                if timestamp > i64::MAX.unsigned_abs() {
                    return Err(());
                }
                let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| ())?;
                let message = format!("{COSIGNATURE_HEADER}time {timestamp}\n{text}");
                key.verify_strict(message.as_bytes(), &signature)
                    .map_err(|_| ())?;
                Ok(Some(timestamp))
            }
        }
    }
}

impl PartialEq for NoteVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.key_id == other.key_id
            && self.key_type() == other.key_type()
            && self.key_bytes == other.key_bytes
    }
}

impl Eq for NoteVerifier {}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NoteVerifier")
            .field(&self.to_vkey())
            .finish()
    }
}

fn ed25519_key(key: &[u8]) -> Result<[u8; 32], KeyFault> {
    <[u8; 32]>::try_from(key).map_err(|_| KeyFault::InvalidKey)
}

fn invalid_key(name: &str, type_byte: u8, key: &[u8]) -> NoteError {
    let mut encoded = vec![type_byte];
    encoded.extend_from_slice(key);
    let key_id = compute_key_id(name, type_byte, key);
    NoteError::InvalidVerifierKey {
        vkey: format!("{name}+{key_id:08x}+{}", STANDARD.encode(encoded)),
        fault: KeyFault::InvalidKey,
    }
}

/// Computes the key ID for a key type: `SHA-256(DER SPKI)[:4]` for ECDSA,
/// otherwise `SHA-256(name || 0x0A || type || key)[:4]`.
fn compute_key_id(name: &str, type_byte: u8, key: &[u8]) -> u32 {
    let digest = if type_byte == TYPE_ECDSA {
        Sha256::digest(key)
    } else {
        let mut hasher = Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update([b'\n', type_byte]);
        hasher.update(key);
        hasher.finalize()
    };
    // A SHA-256 digest always has 32 bytes, so the first chunk exists.
    let key_id = digest
        .as_slice()
        .first_chunk::<4>()
        .copied()
        .unwrap_or_default();
    u32::from_be_bytes(key_id)
}

/// Checks that a key name is non-empty and has no Unicode space and no `+`.
fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName {
            name: name.to_owned(),
        })
    }
}

pub(super) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// An Ed25519 note signer, for the demo kit and tests.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// Creates a signer from a key name and a 32-byte Ed25519 secret key.
    /// An invalid name is reported by [`NoteSigner::sign`].
    pub fn ed25519(name: &str, secret: &[u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(secret),
        }
    }

    /// Returns the matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        let public = self.key.verifying_key();
        NoteVerifier::from_parts(
            &self.name,
            TYPE_ED25519,
            public.to_bytes().to_vec(),
            PublicKey::Ed25519(public),
        )
    }

    /// Signs `text` and returns the whole note: text, empty line, signature line.
    ///
    /// # Errors
    ///
    /// [`NoteError::InvalidKeyName`], [`NoteError::InvalidText`] unless the text
    /// is non-empty and ends with a newline, or [`NoteError::ControlCharacter`].
    pub fn sign(&self, text: &str) -> Result<Vec<u8>, NoteError> {
        check_key_name(&self.name)?;
        if text.is_empty() || !text.ends_with('\n') {
            return Err(NoteError::InvalidText);
        }
        check_text_characters(text.as_bytes())?;

        let key_id = compute_key_id(
            &self.name,
            TYPE_ED25519,
            self.key.verifying_key().as_bytes(),
        );
        let signature = self.key.sign(text.as_bytes());
        let mut payload = key_id.to_be_bytes().to_vec();
        payload.extend_from_slice(&signature.to_bytes());

        let note = format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(payload)
        );
        Ok(note.into_bytes())
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret key.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
