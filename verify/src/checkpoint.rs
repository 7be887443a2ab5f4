//! C2SP transparency log checkpoints (<https://c2sp.org/tlog-checkpoint>).
//!
//! A checkpoint is a signed note with one line per field, each ending in a
//! newline: the log origin, the tree size in decimal without leading zeros,
//! and the base64 root hash. Optional non-empty extension lines follow, such as
//! a frozen Rekor v2 shard's `Log frozen — ...` line.
//!
//! [`verify_checkpoint`] verifies the note signatures first, as Go's
//! `transparency-dev/formats/log.ParseCheckpoint` does, then parses the text
//! and requires a verified log signature (Ed25519 or ECDSA, not a witness
//! cosignature) by a key whose name equals the origin. Witness cosignatures
//! from trusted keys are verified and reported, others are ignored.
//!
//! Left out: extension lines are kept but not interpreted, and no witness
//! quorum is enforced; callers that need one count
//! [`VerifiedCheckpoint::cosignatures`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::cache::VerificationCache;
use crate::merkle::Hash;
use crate::note::{KeyType, NoteError, NoteVerifier, VerifiedSignature, verify_note_with};
use crate::reason::{HasReasonCode, ReasonCode};

/// Errors from parsing or verifying a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    /// The signed note is malformed or its signatures do not verify.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The text has fewer than the three required lines.
    #[error("checkpoint has {lines} lines, expected at least origin, tree size and root hash")]
    TooFewLines { lines: usize },
    /// The text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    MissingFinalNewline,
    /// The origin line is empty.
    #[error("checkpoint origin line is empty")]
    EmptyOrigin,
    /// The tree size is not a decimal u64 without leading zeros.
    #[error("checkpoint tree size {text:?} is not a decimal number without leading zeros")]
    InvalidSize { text: String },
    /// The root hash is not standard base64 of 32 bytes.
    #[error("checkpoint root hash {text:?} is not base64 of a 32-byte hash")]
    InvalidRootHash { text: String },
    /// An extension line is empty (line numbers count from 1).
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtensionLine { line: usize },
    /// No trusted log key named after the origin signed the checkpoint.
    #[error("checkpoint for origin {origin:?} has no verified log signature by a key named after the origin (verified signers: {})", .signers.join(", "))]
    NoLogSignature {
        origin: String,
        signers: Vec<String>,
    },
}

impl HasReasonCode for CheckpointError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            CheckpointError::Note(_)
            | CheckpointError::TooFewLines { .. }
            | CheckpointError::MissingFinalNewline
            | CheckpointError::EmptyOrigin
            | CheckpointError::InvalidSize { .. }
            | CheckpointError::InvalidRootHash { .. }
            | CheckpointError::EmptyExtensionLine { .. }
            | CheckpointError::NoLogSignature { .. } => ReasonCode::RekorCheckpointInvalid,
        }
    }
}

/// The body of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin, such as `log2025-1.rekor.sigstore.dev`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// Merkle tree hash of the first `size` leaves.
    pub root_hash: Hash,
    /// Opaque extension lines, without their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Formats the note text of this checkpoint, ending in a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root_hash)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// Parses checkpoint text (the note text, without signatures).
///
/// # Errors
///
/// [`CheckpointError::MissingFinalNewline`], [`CheckpointError::TooFewLines`],
/// [`CheckpointError::EmptyOrigin`], [`CheckpointError::InvalidSize`],
/// [`CheckpointError::InvalidRootHash`] or [`CheckpointError::EmptyExtensionLine`].
pub fn parse_checkpoint_body(text: &str) -> Result<Checkpoint, CheckpointError> {
    let body = text
        .strip_suffix('\n')
        .ok_or(CheckpointError::MissingFinalNewline)?;
    let lines: Vec<&str> = body.split('\n').collect();
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(CheckpointError::TooFewLines { lines: lines.len() });
    };

    if origin.is_empty() {
        return Err(CheckpointError::EmptyOrigin);
    }
    let size = parse_size(size).ok_or_else(|| CheckpointError::InvalidSize {
        text: (*size).to_owned(),
    })?;
    let root_hash = STANDARD
        .decode(root)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| CheckpointError::InvalidRootHash {
            text: (*root).to_owned(),
        })?;
    if let Some(position) = extensions.iter().position(|line| line.is_empty()) {
        // Lines 1 to 3 are origin, size and root.
        return Err(CheckpointError::EmptyExtensionLine {
            line: position.saturating_add(4),
        });
    }

    Ok(Checkpoint {
        origin: (*origin).to_owned(),
        size,
        root_hash,
        extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
    })
}

/// Parses an ASCII decimal u64 without sign or leading zeros.
fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// The rule that matches the log key name to the checkpoint origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRule {
    /// The key name equals the origin (C2SP, Rekor v2).
    KeyNameIsOrigin,
    /// The origin is `<key name> - <decimal tree ID>`, as in Rekor v1 shards
    /// (`rekor.sigstore.dev - 2605736670972794746`); the key name alone also matches.
    RekorV1TreeId,
}

impl OriginRule {
    fn matches(self, origin: &str, key_name: &str) -> bool {
        if origin == key_name {
            return true;
        }
        match self {
            OriginRule::KeyNameIsOrigin => false,
            OriginRule::RekorV1TreeId => origin
                .strip_prefix(key_name)
                .and_then(|rest| rest.strip_prefix(" - "))
                .is_some_and(|tree_id| {
                    !tree_id.is_empty() && tree_id.bytes().all(|byte| byte.is_ascii_digit())
                }),
        }
    }
}

/// A checkpoint whose log signature verified. Only [`verify_checkpoint`],
/// [`verify_checkpoint_with_rule`] and their cached forms construct it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    note: Vec<u8>,
    log_signature: VerifiedSignature,
    cosignatures: Vec<VerifiedSignature>,
}

impl VerifiedCheckpoint {
    /// Returns the verified checkpoint body.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Returns the whole signed note, byte for byte as verified.
    pub fn note_bytes(&self) -> &[u8] {
        &self.note
    }

    /// Returns the name of the log key whose signature verified.
    pub fn verifier_name(&self) -> &str {
        &self.log_signature.name
    }

    /// Returns the key ID of the log key whose signature verified.
    pub fn key_id(&self) -> u32 {
        self.log_signature.key_id
    }

    /// Returns the witness cosignatures that verified under trusted keys.
    pub fn cosignatures(&self) -> &[VerifiedSignature] {
        &self.cosignatures
    }
}

/// Verifies a signed checkpoint: its note signatures, its text, and a log
/// signature by a trusted key whose name equals the origin.
///
/// # Errors
///
/// [`CheckpointError::Note`] from [`crate::note::verify_note`], a parse error from
/// [`parse_checkpoint_body`], or [`CheckpointError::NoLogSignature`].
pub fn verify_checkpoint(
    note: &[u8],
    verifiers: &[NoteVerifier],
) -> Result<VerifiedCheckpoint, CheckpointError> {
    verify_checkpoint_with_rule(note, verifiers, OriginRule::KeyNameIsOrigin)
}

/// Verifies a signed checkpoint like [`verify_checkpoint`], matching the log
/// key name to the origin by `rule`.
///
/// # Errors
///
/// As [`verify_checkpoint`].
pub fn verify_checkpoint_with_rule(
    note: &[u8],
    verifiers: &[NoteVerifier],
    rule: OriginRule,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    verify_checkpoint_with(note, verifiers, rule, None)
}

/// Verifies a signed checkpoint like [`verify_checkpoint`], skipping the note signature checks
/// that `cache` has stored as verified (see [`crate::note::verify_note_cached`]).
///
/// # Errors
///
/// As [`verify_checkpoint`].
pub fn verify_checkpoint_cached(
    note: &[u8],
    verifiers: &[NoteVerifier],
    cache: &VerificationCache,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    verify_checkpoint_with(note, verifiers, OriginRule::KeyNameIsOrigin, Some(cache))
}

/// Verifies a signed checkpoint like [`verify_checkpoint_with_rule`], skipping the note
/// signature checks that `cache` has stored as verified.
///
/// # Errors
///
/// As [`verify_checkpoint`].
pub fn verify_checkpoint_with_rule_cached(
    note: &[u8],
    verifiers: &[NoteVerifier],
    rule: OriginRule,
    cache: &VerificationCache,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    verify_checkpoint_with(note, verifiers, rule, Some(cache))
}

fn verify_checkpoint_with(
    note: &[u8],
    verifiers: &[NoteVerifier],
    rule: OriginRule,
    cache: Option<&VerificationCache>,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verified = verify_note_with(note, verifiers, cache)?;
    let checkpoint = parse_checkpoint_body(verified.text())?;

    let (log_signatures, cosignatures): (Vec<&VerifiedSignature>, Vec<&VerifiedSignature>) =
        verified
            .verified()
            .iter()
            .partition(|signature| signature.key_type != KeyType::CosignatureEd25519);
    let log_signature = log_signatures
        .iter()
        .find(|signature| rule.matches(&checkpoint.origin, &signature.name));
    let Some(log_signature) = log_signature else {
        let signers = verified
            .verified()
            .iter()
            .map(|signature| format!("{}+{:08x}", signature.name, signature.key_id))
            .collect();
        return Err(CheckpointError::NoLogSignature {
            origin: checkpoint.origin,
            signers,
        });
    };

    Ok(VerifiedCheckpoint {
        log_signature: (*log_signature).clone(),
        cosignatures: cosignatures.into_iter().cloned().collect(),
        checkpoint,
        note: note.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    const ROOT_B64: &str = "rs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=";

    #[test]
    fn parse_minimal_checkpoint() {
        let text = format!("log.example\n736\n{ROOT_B64}\n");
        let checkpoint = parse_checkpoint_body(&text).expect("parse");
        assert_eq!(checkpoint.origin, "log.example");
        assert_eq!(checkpoint.size, 736);
        assert_eq!(STANDARD.encode(checkpoint.root_hash), ROOT_B64);
        assert!(checkpoint.extensions.is_empty());
        assert_eq!(checkpoint.to_text(), text);
    }

    #[test]
    fn parse_keeps_extension_lines() {
        let text =
            format!("log.example\n0\n{ROOT_B64}\nLog frozen \u{2014} 2026-01-01\nTimestamp: 1\n");
        let checkpoint = parse_checkpoint_body(&text).expect("parse");
        assert_eq!(checkpoint.size, 0);
        assert_eq!(
            checkpoint.extensions,
            vec![
                "Log frozen \u{2014} 2026-01-01".to_owned(),
                "Timestamp: 1".to_owned()
            ]
        );
        assert_eq!(checkpoint.to_text(), text);
    }

    #[test]
    fn parse_rejects_malformed_bodies() {
        let rows = [
            (
                "no final newline",
                format!("o\n1\n{ROOT_B64}"),
                CheckpointError::MissingFinalNewline,
            ),
            (
                "two lines",
                "o\n1\n".to_owned(),
                CheckpointError::TooFewLines { lines: 2 },
            ),
            (
                "empty origin",
                format!("\n1\n{ROOT_B64}\n"),
                CheckpointError::EmptyOrigin,
            ),
            (
                "leading zeros",
                format!("o\n007\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize { text: "007".into() },
            ),
            (
                "signed size",
                format!("o\n+7\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize { text: "+7".into() },
            ),
            (
                "empty size",
                format!("o\n\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize {
                    text: String::new(),
                },
            ),
            (
                "size overflow",
                format!("o\n18446744073709551616\n{ROOT_B64}\n"),
                CheckpointError::InvalidSize {
                    text: "18446744073709551616".into(),
                },
            ),
            (
                "root not base64",
                "o\n1\nnot base64!\n".to_owned(),
                CheckpointError::InvalidRootHash {
                    text: "not base64!".into(),
                },
            ),
            (
                "root too short",
                "o\n1\nAAAA\n".to_owned(),
                CheckpointError::InvalidRootHash {
                    text: "AAAA".into(),
                },
            ),
            (
                "empty extension",
                format!("o\n1\n{ROOT_B64}\n\next\n"),
                CheckpointError::EmptyExtensionLine { line: 4 },
            ),
        ];
        for (name, text, want) in rows {
            assert_eq!(
                parse_checkpoint_body(&text).expect_err(name),
                want,
                "row {name}"
            );
        }
    }

    #[test]
    fn verify_requires_origin_named_key() {
        let log = NoteSigner::ed25519("log.example", &[3; 32]);
        let other = NoteSigner::ed25519("other.example", &[4; 32]);
        let text = format!("log.example\n736\n{ROOT_B64}\n");

        let note = log.sign(&text).expect("sign");
        let verified = verify_checkpoint(&note, &[log.verifier()]).expect("verify");
        assert_eq!(verified.checkpoint().size, 736);
        assert_eq!(verified.verifier_name(), "log.example");
        assert_eq!(verified.key_id(), log.verifier().key_id());
        assert_eq!(verified.note_bytes(), note.as_slice());

        // Signed and verified, but by a key that is not named after the origin.
        let note = other.sign(&text).expect("sign");
        let err = verify_checkpoint(&note, &[log.verifier(), other.verifier()])
            .expect_err("wrong signer");
        let signer = format!("other.example+{:08x}", other.verifier().key_id());
        assert_eq!(
            err,
            CheckpointError::NoLogSignature {
                origin: "log.example".into(),
                signers: vec![signer]
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorCheckpointInvalid);
    }

    #[test]
    fn rekor_v1_rule_accepts_tree_id() {
        let log = NoteSigner::ed25519("rekor.example", &[3; 32]);
        let text = format!("rekor.example - 123\n1\n{ROOT_B64}\n");
        let note = log.sign(&text).expect("sign");
        let err = verify_checkpoint(&note, &[log.verifier()]).expect_err("exact rule");
        assert!(
            matches!(err, CheckpointError::NoLogSignature { .. }),
            "{err:?}"
        );
        let verified =
            verify_checkpoint_with_rule(&note, &[log.verifier()], OriginRule::RekorV1TreeId)
                .expect("v1 rule");
        assert_eq!(verified.checkpoint().origin, "rekor.example - 123");

        for origin in [
            "rekor.example - ",
            "rekor.example - 12a",
            "rekor.examplex - 1",
        ] {
            let note = log
                .sign(&format!("{origin}\n1\n{ROOT_B64}\n"))
                .expect("sign");
            let err =
                verify_checkpoint_with_rule(&note, &[log.verifier()], OriginRule::RekorV1TreeId)
                    .expect_err(origin);
            assert!(
                matches!(err, CheckpointError::NoLogSignature { .. }),
                "{origin}: {err:?}"
            );
        }
    }
}
