//! Generation of Authority signing keys.

use p256::ecdsa::SigningKey;

use crate::error::AccessError;

/// Generates a P-256 signing key from the operating system's random number generator.
///
/// # Errors
///
/// [`AccessError::Random`] when the generator fails.
pub fn generate_signing_key() -> Result<SigningKey, AccessError> {
    loop {
        let mut scalar = [0u8; 32];
        getrandom::fill(&mut scalar).map_err(|error| AccessError::Random(error.to_string()))?;
        // A random 32-byte string is a valid scalar unless it is zero or not below the group
        // order, which happens with probability about 2^-32; draw again then.
        if let Ok(key) = SigningKey::from_slice(&scalar) {
            return Ok(key);
        }
    }
}
