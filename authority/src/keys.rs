//! PEM loading and writing of Authority keys: PKCS#8 or SEC1 private keys
//! and SPKI public keys, all on P-256.

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

/// PEM label of a PKCS#8 private key (`openssl genpkey`).
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// PEM label of a SEC1 EC private key (`openssl ecparam -genkey`).
const SEC1_LABEL: &str = "EC PRIVATE KEY";

/// A key that could not be loaded or encoded. The message never contains
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text has no `-----BEGIN …-----` line.
    #[error("invalid key PEM: no BEGIN line")]
    NotPem,
    /// The PEM label is not one this function reads.
    #[error("invalid key PEM: label {found:?}, expected {expected}")]
    UnexpectedLabel {
        /// The label found.
        found: String,
        /// The accepted labels.
        expected: &'static str,
    },
    /// The PEM body is not a P-256 key of the labelled format.
    #[error("invalid {format} key: not a valid P-256 key ({reason})")]
    Invalid {
        /// The format tried.
        format: &'static str,
        /// The decoder's error, which names the fault but no key bytes.
        reason: String,
    },
    /// The key could not be encoded.
    #[error("failed to encode key as PEM: {reason}")]
    Encode {
        /// The encoder's error.
        reason: String,
    },
}

/// Loads a P-256 signing key from PEM: PKCS#8 (`PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`). Encrypted PKCS#8 is not supported.
///
/// # Errors
///
/// [`KeyError`] for another label or a key that does not decode as P-256.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    match pem_label(pem)? {
        PKCS8_LABEL => SigningKey::from_pkcs8_pem(pem).map_err(|err| KeyError::Invalid {
            format: "PKCS#8",
            reason: err.to_string(),
        }),
        SEC1_LABEL => p256::SecretKey::from_sec1_pem(pem)
            .map(|secret| SigningKey::from(&secret))
            .map_err(|err| KeyError::Invalid {
                format: "SEC1",
                reason: err.to_string(),
            }),
        other => Err(KeyError::UnexpectedLabel {
            found: other.to_owned(),
            expected: "PRIVATE KEY or EC PRIVATE KEY",
        }),
    }
}

/// Writes `key` as PKCS#8 PEM with LF line endings.
///
/// # Errors
///
/// [`KeyError::Encode`] if encoding fails.
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(|err| KeyError::Encode {
            reason: err.to_string(),
        })
}

/// Loads a P-256 public key from SPKI PEM (`PUBLIC KEY`).
///
/// # Errors
///
/// [`KeyError`] for another label or a key that is not P-256.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    let label = pem_label(pem)?;
    if label != "PUBLIC KEY" {
        return Err(KeyError::UnexpectedLabel {
            found: label.to_owned(),
            expected: "PUBLIC KEY",
        });
    }
    VerifyingKey::from_public_key_pem(pem).map_err(|err| KeyError::Invalid {
        format: "SPKI",
        reason: err.to_string(),
    })
}

/// Writes `key` as SPKI PEM with LF line endings.
///
/// # Errors
///
/// [`KeyError::Encode`] if encoding fails.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|err| KeyError::Encode {
            reason: err.to_string(),
        })
}

/// Returns the label of the first `-----BEGIN <label>-----` line.
fn pem_label(pem: &str) -> Result<&str, KeyError> {
    pem.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
        })
        .ok_or(KeyError::NotPem)
}
