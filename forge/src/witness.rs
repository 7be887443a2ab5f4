//! Witness cosignatures on forged checkpoints (<https://c2sp.org/tlog-cosignature>): a
//! `cosignature/v1` signature line by an Ed25519 witness key (note key type `0x04`).
//!
//! The line's signature is the key ID, the timestamp as a big-endian `u64`, and the Ed25519
//! signature over `"cosignature/v1\ntime <timestamp>\n"` followed by the checkpoint text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use stella_verify::note::{NoteError, NoteVerifier, parse_note};

use crate::key::{SIGNATURE_PREFIX, derive_bytes};

/// A witness key derived from a seed.
pub struct ForgeWitness {
    name: String,
    key: SigningKey,
}

impl ForgeWitness {
    /// Derives the witness key named `name` from a 32-byte seed.
    pub fn derive(name: &str, seed: &[u8; 32]) -> Self {
        ForgeWitness {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&derive_bytes(seed, b"witness key", 0)),
        }
    }

    /// Returns the verifier of this witness key, from which callers get the vkey.
    ///
    /// # Errors
    ///
    /// [`NoteError`] if the key name is invalid.
    pub fn verifier(&self) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::cosignature_ed25519(&self.name, self.key.verifying_key().as_bytes())
    }

    /// Returns the signed `note` with this witness's cosignature at `timestamp` (Unix seconds)
    /// appended as its last signature line. The note's own signatures are not verified.
    ///
    /// # Errors
    ///
    /// [`NoteError`] if the key name is invalid or `note` is not a signed note.
    pub fn cosign(&self, note: &[u8], timestamp: u64) -> Result<Vec<u8>, NoteError> {
        let verifier = self.verifier()?;
        let text = parse_note(note)?.text;
        let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
        let mut payload = verifier.key_id().to_be_bytes().to_vec();
        payload.extend_from_slice(&timestamp.to_be_bytes());
        payload.extend_from_slice(&self.key.sign(message.as_bytes()).to_bytes());

        let mut cosigned = note.to_vec();
        let line = format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(payload)
        );
        cosigned.extend_from_slice(line.as_bytes());
        Ok(cosigned)
    }
}

impl std::fmt::Debug for ForgeWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key stays out of debug output.
        f.debug_struct("ForgeWitness")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use stella_verify::checkpoint::verify_checkpoint;
    use stella_verify::note::NoteSigner;

    use super::*;

    #[test]
    fn cosignature_verifies_under_witness_key() {
        let log = NoteSigner::ed25519("log.example", &[7; 32]);
        let text = "log.example\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let note = log.sign(text).expect("sign");
        let witness = ForgeWitness::derive("witness.example", &[9; 32]);
        let cosigned = witness.cosign(&note, 1_700_000_000).expect("cosign");

        let witness_verifier = witness.verifier().expect("witness verifier");
        let verified =
            verify_checkpoint(&cosigned, &[log.verifier(), witness_verifier]).expect("verify");
        let cosignatures = verified.cosignatures();
        assert_eq!(cosignatures.len(), 1);
        assert_eq!(cosignatures[0].name, "witness.example");
        assert_eq!(cosignatures[0].timestamp, Some(1_700_000_000));

        // Another key of the same name has another key ID, so its verifier ignores the line.
        let impostor = ForgeWitness::derive("witness.example", &[10; 32]);
        let impostor_verifier = impostor.verifier().expect("impostor verifier");
        assert_ne!(
            impostor_verifier.key_id(),
            witness.verifier().expect("key").key_id()
        );
        let without = verify_checkpoint(&cosigned, &[log.verifier(), impostor_verifier])
            .expect("an unknown key's line is ignored");
        assert!(without.cosignatures().is_empty());
    }
}
