//! Checkpoint keys of a forged log: Ed25519 (note key type `0x01`) through
//! `stella_verify::note::NoteSigner`, and ECDSA P-256 (type `0x02`), which
//! this module signs itself because the verifier crate only verifies it.
//!
//! An ECDSA note signature is the key ID, `SHA-256(DER SPKI)[:4]`, followed
//! by the DER signature over SHA-256 of the note text, as Sigstore's Rekor
//! signs its checkpoints. Signing uses RFC 6979 nonces, so notes are
//! deterministic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256};
use signature::Signer;
use stella_verify::note::{NoteError, NoteSigner, NoteVerifier};

use crate::error::ForgeError;

/// Signature line prefix of a signed note: an em dash and a space.
pub(crate) const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Signature algorithm of a forged log's checkpoint key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// Ed25519 note key (type `0x01`), as C2SP logs use.
    #[default]
    Ed25519,
    /// ECDSA P-256 note key (type `0x02`), as Rekor v1 uses.
    EcdsaP256,
}

/// A checkpoint signing key derived from a seed.
pub enum ForgeKey {
    /// Ed25519 signer.
    Ed25519(NoteSigner),
    /// ECDSA P-256 key, its DER SPKI and its name.
    EcdsaP256 {
        name: String,
        key: p256::ecdsa::SigningKey,
        spki_der: Vec<u8>,
    },
}

impl ForgeKey {
    /// Derives the key named `name` for `algorithm` from a 32-byte seed.
    ///
    /// # Errors
    ///
    /// [`ForgeError::EcdsaKey`] if no valid P-256 scalar is found or the SPKI
    /// does not encode.
    pub fn derive(
        algorithm: KeyAlgorithm,
        name: &str,
        seed: &[u8; 32],
    ) -> Result<Self, ForgeError> {
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                let secret: [u8; 32] = derive_bytes(seed, b"ed25519 key", 0);
                Ok(ForgeKey::Ed25519(NoteSigner::ed25519(name, &secret)))
            }
            KeyAlgorithm::EcdsaP256 => {
                // A digest is a valid scalar unless it is zero or at least the
                // group order; the chance of retrying is about 2^-32.
                for counter in 0u8..=255 {
                    let candidate = derive_bytes(seed, b"p256 key", counter);
                    if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&candidate) {
                        let spki_der = key
                            .verifying_key()
                            .to_public_key_der()
                            .map_err(|err| ForgeError::EcdsaKey {
                                reason: err.to_string(),
                            })?
                            .as_bytes()
                            .to_vec();
                        return Ok(ForgeKey::EcdsaP256 {
                            name: name.to_owned(),
                            key,
                            spki_der,
                        });
                    }
                }
                Err(ForgeError::EcdsaKey {
                    reason: "no valid scalar in 256 candidates".to_owned(),
                })
            }
        }
    }

    /// Returns the verifier of this key, from which callers get the vkey.
    ///
    /// # Errors
    ///
    /// [`NoteError`] if the key name is invalid.
    pub fn verifier(&self) -> Result<NoteVerifier, NoteError> {
        match self {
            ForgeKey::Ed25519(signer) => Ok(signer.verifier()),
            ForgeKey::EcdsaP256 { name, spki_der, .. } => {
                NoteVerifier::ecdsa_p256_spki(name, spki_der)
            }
        }
    }

    /// Signs `text` (non-empty, ending in a newline) and returns the signed note.
    ///
    /// # Errors
    ///
    /// [`NoteError`] for an invalid key name or text.
    pub fn sign(&self, text: &str) -> Result<Vec<u8>, NoteError> {
        match self {
            ForgeKey::Ed25519(signer) => signer.sign(text),
            ForgeKey::EcdsaP256 {
                name,
                key,
                spki_der,
            } => {
                // Reuse the verifier's name check so both key types accept the same names.
                NoteVerifier::ecdsa_p256_spki(name, spki_der)?;
                if text.is_empty() || !text.ends_with('\n') {
                    return Err(NoteError::InvalidText);
                }
                let digest = Sha256::digest(spki_der);
                let mut payload = digest[..4].to_vec();
                let signature: p256::ecdsa::Signature = key.sign(text.as_bytes());
                payload.extend_from_slice(signature.to_der().as_bytes());
                let note = format!(
                    "{text}\n{SIGNATURE_PREFIX}{name} {}\n",
                    STANDARD.encode(payload)
                );
                Ok(note.into_bytes())
            }
        }
    }
}

/// Returns `SHA-256(seed || label || counter)`.
pub(crate) fn derive_bytes(seed: &[u8; 32], label: &[u8], counter: u8) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update(label);
    hasher.update([counter]);
    hasher.finalize().into()
}
