//! C2SP signed notes (<https://c2sp.org/signed-note>).
//!
//! A note is UTF-8 text ending in a newline, an empty line, and one or more
//! signature lines `— <key name> <base64(key ID || signature)>`. The note is
//! split at its last `"\n\n"`, so the text may contain empty lines.
//!
//! Supported verifier key types:
//! - `0x01` Ed25519 over the note text, key ID `SHA-256(name || 0x0A || 0x01 || key)[:4]`;
//! - `0x02` ECDSA P-256 with an ASN.1 DER signature over SHA-256 of the note
//!   text, key ID `SHA-256(DER SPKI)[:4]` (the transparency-dev/witness form,
//!   used by Rekor v1 checkpoints);
//! - `0x04` timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature),
//!   whose signed message is `"cosignature/v1\ntime <ts>\n" || text`.
//!
//! Verification follows the spec and Go's `golang.org/x/mod/sumdb/note.Open`.
//! A signature is checked only when both its key name and key ID match a
//! trusted verifier, and lines from unknown keys are returned unverified. A
//! trusted key whose signature fails rejects the whole note. At least one
//! trusted signature must verify.
//!
//! Left out: ECDSA on P-384 and P-521, ML-DSA-44 cosignatures (`0x06`),
//! RFC 6962 tree head signatures (`0x05`) and the `0xff` extended key types
//! such as Rekor's RSA keys. Their vkeys are rejected as unsupported, and their
//! signature lines count as unknown keys.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::cache::{VerificationCache, note_signature_key};
use crate::reason::{HasReasonCode, ReasonCode};

mod keys;

use keys::is_valid_key_name;
pub use keys::{KeyFault, KeyType, NoteSigner, NoteVerifier};

/// Maximum number of signature lines in a note, as in Go's `note.Open`.
/// The spec requires verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// Prefix of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The fault in a malformed signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFault {
    /// The line does not start with an em dash and a space.
    MissingPrefix,
    /// No space separates the key name from the signature.
    MissingSignature,
    /// The key name is empty or contains a space or `+`.
    InvalidKeyName { name: String },
    /// The signature is not standard padded base64.
    InvalidBase64,
    /// The decoded signature is shorter than the 4-byte key ID plus one byte.
    TooShort { len: usize },
}

impl fmt::Display for LineFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineFault::MissingPrefix => {
                f.write_str("does not start with an em dash (U+2014) and a space")
            }
            LineFault::MissingSignature => {
                f.write_str("has no space between key name and signature")
            }
            LineFault::InvalidKeyName { name } => write!(f, "invalid key name {name:?}"),
            LineFault::InvalidBase64 => f.write_str("signature is not valid standard base64"),
            LineFault::TooShort { len } => {
                write!(f, "signature has {len} bytes, expected at least 5")
            }
        }
    }
}

/// Errors from parsing, verifying or signing notes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NoteError {
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    /// The note contains an ASCII control character other than newline.
    #[error("note contains control character 0x{byte:02x} at offset {offset}")]
    ControlCharacter { offset: usize, byte: u8 },
    /// The note has no empty line followed by signature lines.
    #[error("note has no signature lines after an empty line")]
    MissingSignatures,
    /// The note has more signature lines than [`MAX_SIGNATURES`].
    #[error("note has {count} signature lines, more than the maximum of {max}")]
    TooManySignatures { count: usize, max: usize },
    /// A signature line is malformed (lines count from 1 after the empty line).
    #[error("note signature line {line} {fault}")]
    MalformedSignatureLine { line: usize, fault: LineFault },
    /// A trusted key signed the note, but its signature does not verify.
    #[error("signature by trusted key {name}+{key_id:08x} does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    /// No signature line comes from a trusted key.
    #[error("note has no verified signature from a trusted key (signed by: {})", .signers.join(", "))]
    NoTrustedSignature { signers: Vec<String> },
    /// A verifier key is invalid.
    #[error("invalid note verifier key {vkey:?}: {fault}")]
    InvalidVerifierKey { vkey: String, fault: KeyFault },
    /// A key name is empty or contains a space or `+`.
    #[error("invalid note key name {name:?}: it must be non-empty without spaces or '+'")]
    InvalidKeyName { name: String },
    /// Text to sign is empty or does not end in a newline.
    #[error("note text to sign must be non-empty and end with a newline")]
    InvalidText,
}

impl HasReasonCode for NoteError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            NoteError::NotUtf8 { .. }
            | NoteError::ControlCharacter { .. }
            | NoteError::MissingSignatures
            | NoteError::TooManySignatures { .. }
            | NoteError::MalformedSignatureLine { .. }
            | NoteError::InvalidSignature { .. }
            | NoteError::NoTrustedSignature { .. }
            | NoteError::InvalidVerifierKey { .. }
            | NoteError::InvalidKeyName { .. }
            | NoteError::InvalidText => ReasonCode::RekorCheckpointInvalid,
        }
    }
}

/// One signature line of a note, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name as written on the line.
    pub name: String,
    /// Key ID: the first 4 decoded bytes, big-endian.
    pub key_id: u32,
    /// Decoded bytes after the key ID.
    pub signature: Vec<u8>,
}

/// A parsed note whose signatures have not been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signature lines in note order.
    pub signatures: Vec<NoteSignature>,
}

/// Parses a signed note without verifying it.
///
/// # Errors
///
/// [`NoteError::NotUtf8`], [`NoteError::ControlCharacter`],
/// [`NoteError::MissingSignatures`], [`NoteError::TooManySignatures`] or
/// [`NoteError::MalformedSignatureLine`].
pub fn parse_note(bytes: &[u8]) -> Result<Note, NoteError> {
    let note = std::str::from_utf8(bytes).map_err(|err| NoteError::NotUtf8 {
        offset: err.valid_up_to(),
    })?;
    check_text_characters(bytes)?;

    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, rest) = note.split_at(split.saturating_add(1));
    let block = rest.strip_prefix('\n').unwrap_or(rest);
    if block.is_empty() || !block.ends_with('\n') {
        return Err(NoteError::MissingSignatures);
    }

    let lines: Vec<&str> = block.trim_end_matches('\n').split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            count: lines.len(),
            max: MAX_SIGNATURES,
        });
    }
    let mut signatures = Vec::with_capacity(lines.len());
    for (position, line) in lines.iter().enumerate() {
        let signature =
            parse_signature_line(line).map_err(|fault| NoteError::MalformedSignatureLine {
                line: position.saturating_add(1),
                fault,
            })?;
        signatures.push(signature);
    }
    Ok(Note {
        text: text.to_owned(),
        signatures,
    })
}

/// Rejects ASCII control characters other than newline (DEL included).
fn check_text_characters(bytes: &[u8]) -> Result<(), NoteError> {
    match bytes
        .iter()
        .position(|&byte| (byte < 0x20 && byte != b'\n') || byte == 0x7f)
    {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: bytes.get(offset).copied().unwrap_or(0),
        }),
        None => Ok(()),
    }
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, LineFault> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(LineFault::MissingPrefix)?;
    let (name, encoded) = rest.split_once(' ').ok_or(LineFault::MissingSignature)?;
    if !is_valid_key_name(name) {
        return Err(LineFault::InvalidKeyName {
            name: name.to_owned(),
        });
    }
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| LineFault::InvalidBase64)?;
    match decoded.split_first_chunk::<4>() {
        Some((key_id, signature)) if !signature.is_empty() => Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*key_id),
            signature: signature.to_vec(),
        }),
        _ => Err(LineFault::TooShort { len: decoded.len() }),
    }
}

/// A signature that verified under a trusted key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerifiedSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub key_id: u32,
    /// Key type of the verifier that accepted it.
    pub key_type: KeyType,
    /// Cosignature timestamp (Unix seconds) for type `0x04` keys.
    pub timestamp: Option<u64>,
}

/// A note with at least one signature verified by a trusted key.
/// Only [`verify_note`] and [`verify_note_cached`] construct it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNote {
    text: String,
    verified: Vec<VerifiedSignature>,
    unverified: Vec<NoteSignature>,
}

impl VerifiedNote {
    /// Returns the signed text, including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns the verified signatures in note order, one per trusted key.
    pub fn verified(&self) -> &[VerifiedSignature] {
        &self.verified
    }

    /// Returns the signature lines from keys that are not trusted, in note order.
    pub fn unverified(&self) -> &[NoteSignature] {
        &self.unverified
    }

    /// Reports whether a trusted key with this name and type signed the note.
    pub fn is_signed_by(&self, name: &str, key_type: KeyType) -> bool {
        self.verified
            .iter()
            .any(|signature| signature.name == name && signature.key_type == key_type)
    }
}

/// Parses a note and verifies its signatures against trusted verifiers.
///
/// Lines whose key name and key ID do not both match a verifier are ignored
/// (returned as unverified), so witness cosignatures may appear in any order.
///
/// # Errors
///
/// Any [`parse_note`] error, [`NoteError::InvalidSignature`] if a trusted key's
/// signature fails, or [`NoteError::NoTrustedSignature`] if no trusted key signed.
pub fn verify_note(bytes: &[u8], verifiers: &[NoteVerifier]) -> Result<VerifiedNote, NoteError> {
    verify_note_with(bytes, verifiers, None)
}

/// Verifies a note like [`verify_note`], skipping the signature checks that `cache` has stored
/// as verified for the same key, text and signature. Signatures that verify are stored.
///
/// # Errors
///
/// As [`verify_note`].
pub fn verify_note_cached(
    bytes: &[u8],
    verifiers: &[NoteVerifier],
    cache: &VerificationCache,
) -> Result<VerifiedNote, NoteError> {
    verify_note_with(bytes, verifiers, Some(cache))
}

pub(crate) fn verify_note_with(
    bytes: &[u8],
    verifiers: &[NoteVerifier],
    cache: Option<&VerificationCache>,
) -> Result<VerifiedNote, NoteError> {
    let note = parse_note(bytes)?;
    let mut verified = Vec::new();
    let mut seen = BTreeSet::new();
    let mut unverified = Vec::new();

    for line in note.signatures {
        let mut candidates = verifiers
            .iter()
            .filter(|verifier| verifier.name() == line.name && verifier.key_id() == line.key_id)
            .peekable();
        if candidates.peek().is_none() {
            unverified.push(line);
            continue;
        }
        // NOTE: when several trusted keys share a name and key ID, any one of
        // them may verify the line; Go's note.Open rejects such key sets instead.
        let outcome = candidates.find_map(|verifier| {
            verify_line(verifier, &note.text, &line.signature, cache)
                .map(|timestamp| (verifier.key_type(), timestamp))
        });
        let Some((key_type, timestamp)) = outcome else {
            return Err(NoteError::InvalidSignature {
                name: line.name,
                key_id: line.key_id,
            });
        };
        if seen.insert((line.name.clone(), line.key_id)) {
            verified.push(VerifiedSignature {
                name: line.name,
                key_id: line.key_id,
                key_type,
                timestamp,
            });
        }
    }

    if verified.is_empty() {
        let signers = unverified
            .iter()
            .map(|line| format!("{}+{:08x}", line.name, line.key_id))
            .collect();
        return Err(NoteError::NoTrustedSignature { signers });
    }
    Ok(VerifiedNote {
        text: note.text,
        verified,
        unverified,
    })
}

/// Checks one signature line with `verifier`, or finds it verified in `cache`. Returns the
/// cosignature timestamp (`None` for other key types) when the signature verifies.
fn verify_line(
    verifier: &NoteVerifier,
    text: &str,
    signature: &[u8],
    cache: Option<&VerificationCache>,
) -> Option<Option<u64>> {
    let Some(cache) = cache else {
        return verifier.verify(text, signature).ok();
    };
    let key = note_signature_key(&verifier.to_vkey(), text, signature);
    if let Some(timestamp) = cache.signature(&key) {
        return Some(timestamp);
    }
    let timestamp = verifier.verify(text, signature).ok()?;
    cache.insert_signature(key, timestamp);
    Some(timestamp)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::ed25519(name, &[seed; 32])
    }

    #[test]
    fn spec_example_verifies() {
        let verifier = NoteVerifier::from_vkey(SPEC_VKEY).expect("spec vkey");
        assert_eq!(verifier.name(), "example.com/foo");
        assert_eq!(verifier.key_id(), 0x530d_903a);
        assert_eq!(verifier.key_type(), KeyType::Ed25519);
        assert_eq!(verifier.to_vkey(), SPEC_VKEY);

        let verified = verify_note(SPEC_NOTE.as_bytes(), &[verifier]).expect("spec note");
        assert_eq!(verified.text(), "This is an example message.\n");
        assert_eq!(verified.verified().len(), 1);
        assert!(verified.is_signed_by("example.com/foo", KeyType::Ed25519));
        assert!(verified.unverified().is_empty());
    }

    #[test]
    fn spec_example_altered_text_rejected() {
        let verifier = NoteVerifier::from_vkey(SPEC_VKEY).expect("spec vkey");
        let altered = SPEC_NOTE.replacen("example", "exemplary", 1);
        let err = verify_note(altered.as_bytes(), &[verifier]).expect_err("altered");
        assert_eq!(
            err,
            NoteError::InvalidSignature {
                name: "example.com/foo".into(),
                key_id: 0x530d_903a
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorCheckpointInvalid);
    }

    #[test]
    fn sign_then_verify_round_trip() {
        let signer = signer("log.example/a", 7);
        let note = signer.sign("hello\n\nworld\n").expect("sign");
        let verified = verify_note(&note, &[signer.verifier()]).expect("verify");
        assert_eq!(verified.text(), "hello\n\nworld\n");
        let vkey = signer.verifier().to_vkey();
        assert_eq!(
            NoteVerifier::from_vkey(&vkey).expect("round trip"),
            signer.verifier()
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let log = signer("log.example", 1);
        let other = signer("other.example", 2);
        let mut note = log.sign("text\n").expect("sign");
        // Append a line from an unknown key and one with the trusted name but another key ID.
        let extra = other.sign("text\n").expect("sign other");
        let extra_line = &extra[b"text\n\n".len()..];
        note.extend_from_slice(extra_line);
        note.extend_from_slice("\u{2014} log.example AAAAAAE=\n".as_bytes());

        let verified = verify_note(&note, &[log.verifier()]).expect("verify");
        assert_eq!(verified.verified().len(), 1);
        assert_eq!(verified.unverified().len(), 2);
    }

    #[test]
    fn trusted_key_bad_signature_rejects() {
        let log = signer("log.example", 1);
        let witness = signer("witness.example", 2);
        let mut note = log.sign("text\n").expect("sign");
        // The witness signed different text, so its trusted signature fails.
        let bad = witness.sign("other\n").expect("sign");
        note.extend_from_slice(&bad[b"other\n\n".len()..]);
        let err =
            verify_note(&note, &[log.verifier(), witness.verifier()]).expect_err("bad witness");
        assert_eq!(
            err,
            NoteError::InvalidSignature {
                name: "witness.example".into(),
                key_id: witness.verifier().key_id()
            }
        );
    }

    #[test]
    fn no_trusted_signature_rejected() {
        let log = signer("log.example", 1);
        let note = log.sign("text\n").expect("sign");
        let err =
            verify_note(&note, &[signer("log.example", 9).verifier()]).expect_err("other key");
        let signer_text = format!("log.example+{:08x}", log.verifier().key_id());
        assert_eq!(
            err,
            NoteError::NoTrustedSignature {
                signers: vec![signer_text]
            }
        );
    }

    #[test]
    fn malformed_notes_rejected() {
        let valid_line = "\u{2014} a.example AAAAAAE=\n";
        let rows: Vec<(&str, Vec<u8>, NoteError)> = vec![
            (
                "no separator",
                b"text\n".to_vec(),
                NoteError::MissingSignatures,
            ),
            (
                "empty signature block",
                b"text\n\n".to_vec(),
                NoteError::MissingSignatures,
            ),
            (
                "no final newline",
                format!("text\n\n{}", valid_line.trim_end()).into_bytes(),
                NoteError::MissingSignatures,
            ),
            (
                "control character",
                format!("te\rxt\n\n{valid_line}").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 2,
                    byte: b'\r',
                },
            ),
            (
                "tab",
                format!("te\txt\n\n{valid_line}").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 2,
                    byte: b'\t',
                },
            ),
            (
                "invalid utf-8",
                b"te\xffxt\n\n".to_vec(),
                NoteError::NotUtf8 { offset: 2 },
            ),
            (
                "hyphen instead of em dash",
                b"text\n\n- a.example AAAAAAE=\n".to_vec(),
                NoteError::MalformedSignatureLine {
                    line: 1,
                    fault: LineFault::MissingPrefix,
                },
            ),
            (
                "no signature after name",
                "text\n\n\u{2014} a.example\n".as_bytes().to_vec(),
                NoteError::MalformedSignatureLine {
                    line: 1,
                    fault: LineFault::MissingSignature,
                },
            ),
            (
                "plus in key name",
                "text\n\n\u{2014} a+b AAAAAAE=\n".as_bytes().to_vec(),
                NoteError::MalformedSignatureLine {
                    line: 1,
                    fault: LineFault::InvalidKeyName { name: "a+b".into() },
                },
            ),
            (
                "bad base64",
                format!("text\n\n{valid_line}\u{2014} a.example AAAA!AE=\n").into_bytes(),
                NoteError::MalformedSignatureLine {
                    line: 2,
                    fault: LineFault::InvalidBase64,
                },
            ),
            (
                "four-byte signature",
                "text\n\n\u{2014} a.example AAAAAA==\n".as_bytes().to_vec(),
                NoteError::MalformedSignatureLine {
                    line: 1,
                    fault: LineFault::TooShort { len: 4 },
                },
            ),
        ];
        for (name, note, want) in rows {
            assert_eq!(parse_note(&note).expect_err(name), want, "row {name}");
        }
    }

    #[test]
    fn signature_count_limit() {
        let line = "\u{2014} a.example AAAAAAE=\n";
        let at_limit = format!("text\n\n{}", line.repeat(MAX_SIGNATURES));
        assert_eq!(
            parse_note(at_limit.as_bytes())
                .expect("100 lines")
                .signatures
                .len(),
            MAX_SIGNATURES
        );
        let over = format!("text\n\n{}", line.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            parse_note(over.as_bytes()).expect_err("101 lines"),
            NoteError::TooManySignatures {
                count: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES
            }
        );
    }

    #[test]
    fn vkey_faults_rejected() {
        let rows = [
            (
                "missing parts",
                "example.com/foo+530d903a",
                KeyFault::Format,
            ),
            (
                "short key id",
                "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                KeyFault::KeyIdNotHex,
            ),
            (
                "bad base64",
                "example.com/foo+530d903a+Aeky!Rrm",
                KeyFault::InvalidBase64,
            ),
            (
                "empty key",
                "example.com/foo+530d903a+",
                KeyFault::MissingType,
            ),
            (
                "unsupported type",
                "example.com/foo+530d903a+BgAA",
                KeyFault::UnsupportedType { type_byte: 0x06 },
            ),
            (
                "short ed25519 key",
                "example.com/foo+530d903a+AQAA",
                KeyFault::InvalidKey,
            ),
            (
                "wrong key id",
                "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
                KeyFault::KeyIdMismatch {
                    stated: 0x530d_903b,
                    computed: 0x530d_903a,
                },
            ),
        ];
        for (name, vkey, fault) in rows {
            let want = NoteError::InvalidVerifierKey {
                vkey: vkey.to_owned(),
                fault,
            };
            assert_eq!(
                NoteVerifier::from_vkey(vkey).expect_err(name),
                want,
                "row {name}"
            );
        }
        let err = NoteVerifier::from_vkey(
            "bad name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .expect_err("space");
        assert_eq!(
            err,
            NoteError::InvalidKeyName {
                name: "bad name".into()
            }
        );
    }

    #[test]
    fn cosignature_verifies_with_timestamp() {
        let secret = [5u8; 32];
        let key = SigningKey::from_bytes(&secret);
        let witness =
            NoteVerifier::cosignature_ed25519("witness.example", key.verifying_key().as_bytes())
                .expect("witness");
        let log = signer("log.example", 1);
        let text = "log.example\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let mut note = log.sign(text).expect("sign");

        let timestamp: u64 = 1_700_000_000;
        let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
        let mut payload = witness.key_id().to_be_bytes().to_vec();
        payload.extend_from_slice(&timestamp.to_be_bytes());
        payload.extend_from_slice(&key.sign(message.as_bytes()).to_bytes());
        note.extend_from_slice(
            format!("\u{2014} witness.example {}\n", STANDARD.encode(payload)).as_bytes(),
        );

        let verified = verify_note(&note, &[log.verifier(), witness.clone()]).expect("verify");
        assert_eq!(verified.verified().len(), 2);
        let cosignature = &verified.verified()[1];
        assert_eq!(cosignature.key_type, KeyType::CosignatureEd25519);
        assert_eq!(cosignature.timestamp, Some(timestamp));

        let vkey = witness.to_vkey();
        assert!(vkey.starts_with("witness.example+"), "{vkey}");
        assert_eq!(
            NoteVerifier::from_vkey(&vkey).expect("cosigner vkey"),
            witness
        );
    }

    #[test]
    fn signer_rejects_bad_text() {
        let signer = signer("log.example", 1);
        assert_eq!(
            signer.sign("no newline").expect_err("no newline"),
            NoteError::InvalidText
        );
        assert_eq!(signer.sign("").expect_err("empty"), NoteError::InvalidText);
        assert_eq!(
            signer.sign("a\u{7f}\n").expect_err("del"),
            NoteError::ControlCharacter {
                offset: 1,
                byte: 0x7f
            }
        );
        let bad_name = NoteSigner::ed25519("bad name", &[1; 32]);
        assert_eq!(
            bad_name.sign("a\n").expect_err("name"),
            NoteError::InvalidKeyName {
                name: "bad name".into()
            }
        );
    }
}
