//! Deterministic derivation of every key, serial number and nonce in the kit from one seed.
//!
//! Value `counter` for `label` is
//! `SHA-256("stella-demo-kit/v1" ‖ 0x00 ‖ u32be(len(seed)) ‖ seed ‖ label ‖ 0x00 ‖ u32be(counter))`,
//! so one seed always gives the same kit and distinct labels give independent values. Anyone who
//! has the seed can rebuild every private key, and the default seed is in this source file, so
//! the keys are fit for demonstrations only.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Domain separator for every derivation, so kit keys never collide with other SHA-256 uses.
const DOMAIN: &[u8] = b"stella-demo-kit/v1";

/// Seed used when `--seed` is not given: the ASCII bytes of "stella demo kit seed".
pub const DEFAULT_SEED_HEX: &str = "7374656c6c612064656d6f206b69742073656564";

/// Maximum seed length in bytes; longer seeds add nothing to a SHA-256 derivation.
const MAX_SEED_BYTES: usize = 64;

/// Secret input from which the whole kit is derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    bytes: Vec<u8>,
}

impl Seed {
    /// Parses a seed from hex text (1 to 64 bytes).
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .with_context(|| format!("invalid --seed {text:?}: expected hex digits"))?;
        if bytes.is_empty() || bytes.len() > MAX_SEED_BYTES {
            bail!(
                "invalid --seed: {} bytes, expected 1 to {MAX_SEED_BYTES} bytes of hex",
                bytes.len()
            );
        }
        Ok(Self { bytes })
    }

    /// Returns the seed that the kit uses when none is given.
    pub fn default_seed() -> Self {
        // The constant is valid hex of a valid length, which `default_seed_parses` checks.
        Self::from_hex(DEFAULT_SEED_HEX).unwrap_or_else(|_| Self { bytes: DOMAIN.to_vec() })
    }

    /// Returns the seed as lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// Derives 32 bytes for `label` and `counter`.
    pub fn derive(&self, label: &str, counter: u32) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN);
        hasher.update([0u8]);
        // The length fits in u32 because `from_hex` caps it at MAX_SEED_BYTES.
        hasher.update(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        hasher.update(&self.bytes);
        hasher.update(label.as_bytes());
        hasher.update([0u8]);
        hasher.update(counter.to_be_bytes());
        hasher.finalize().into()
    }

    /// Derives `len` bytes for `label` by concatenating counters 0, 1, ...
    pub fn derive_bytes(&self, label: &str, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut counter = 0u32;
        while out.len() < len {
            let block = self.derive(label, counter);
            let take = (len - out.len()).min(block.len());
            out.extend_from_slice(&block[..take]);
            counter = counter.wrapping_add(1);
        }
        out
    }

    /// Derives a P-256 ECDSA key. A candidate scalar outside `[1, n)` is replaced by the next
    /// label variant, which happens with probability below 2^-32.
    pub fn p256_key(&self, label: &str) -> Result<p256::ecdsa::SigningKey> {
        for attempt in 0..16u32 {
            let candidate = self.derive_bytes(&format!("{label}/p256/{attempt}"), 32);
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&candidate) {
                return Ok(key);
            }
        }
        bail!("could not derive a P-256 key for {label}")
    }

    /// Derives a P-384 ECDSA key, retrying like [`Seed::p256_key`].
    pub fn p384_key(&self, label: &str) -> Result<p384::ecdsa::SigningKey> {
        for attempt in 0..16u32 {
            let candidate = self.derive_bytes(&format!("{label}/p384/{attempt}"), 48);
            if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&candidate) {
                return Ok(key);
            }
        }
        bail!("could not derive a P-384 key for {label}")
    }

    /// Derives an Ed25519 key; every 32-byte string is a valid Ed25519 secret key.
    pub fn ed25519_key(&self, label: &str) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&self.derive(&format!("{label}/ed25519"), 0))
    }

    /// Derives a positive integer of `len` bytes whose first byte is in `0x01..=0x7f`, so its DER
    /// encoding is exactly `len` bytes long. Used for certificate and timestamp serial numbers
    /// and nonces.
    pub fn positive_integer(&self, label: &str, len: usize) -> Vec<u8> {
        let mut bytes = self.derive_bytes(&format!("{label}/integer"), len);
        if let Some(first) = bytes.first_mut() {
            *first = (*first & 0x7f).max(1);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_parses() {
        assert_eq!(Seed::default_seed().to_hex(), DEFAULT_SEED_HEX);
    }

    #[test]
    fn from_hex_rejects_empty_and_non_hex() {
        assert!(Seed::from_hex("").is_err());
        assert!(Seed::from_hex("zz").is_err());
        assert!(Seed::from_hex(&"00".repeat(MAX_SEED_BYTES + 1)).is_err());
    }

    #[test]
    fn derive_separates_labels_and_seeds() {
        let seed = Seed::default_seed();
        let other = Seed::from_hex("01").unwrap();
        assert_ne!(seed.derive("a", 0), seed.derive("b", 0));
        assert_ne!(seed.derive("a", 0), seed.derive("a", 1));
        assert_ne!(seed.derive("a", 0), other.derive("a", 0));
        assert_eq!(seed.derive("a", 0), Seed::default_seed().derive("a", 0));
    }

    #[test]
    fn positive_integer_has_exact_length() {
        let value = Seed::default_seed().positive_integer("serial", 20);
        assert_eq!(value.len(), 20);
        assert!(value[0] >= 1, "first byte {} is zero", value[0]);
        assert!(value[0] <= 0x7f, "first byte {} sets the sign bit", value[0]);
    }
}
