//! C2SP transparency log proof files (<https://c2sp.org/tlog-proof>).
//!
//! A tlog-proof is a self-contained proof that one entry is in a log:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>          (optional, opaque, unauthenticated)
//! index <n>
//! <base64 hash>           (zero or more: leaf's sibling first, root's child last)
//!
//! <checkpoint>            (verbatim signed note, cosignatures included)
//! ```
//!
//! This module only parses and writes the format. A caller verifies the
//! checkpoint with [`crate::checkpoint::verify_checkpoint`], computes the leaf
//! hash from the entry, and checks the proof with
//! [`crate::merkle::verify_inclusion`]. The extra data is returned as is and
//! must not be trusted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::merkle::Hash;
use crate::reason::{HasReasonCode, ReasonCode};

/// First line of every tlog-proof.
const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Maximum number of proof hashes: an inclusion proof in a tree of at most
/// 2^64 − 1 leaves has at most 64.
pub const MAX_PROOF_HASHES: usize = 64;

/// Errors from parsing a tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlogProofError {
    /// The first line is not `c2sp.org/tlog-proof@v1`.
    #[error("tlog-proof does not start with the line {HEADER:?}")]
    MissingHeader,
    /// A header line is not valid UTF-8 (lines count from 1).
    #[error("tlog-proof line {line} is not valid UTF-8")]
    NotUtf8 { line: usize },
    /// The extra data is not standard base64.
    #[error("tlog-proof extra data is not valid base64")]
    InvalidExtra,
    /// The index line is absent.
    #[error("tlog-proof has no \"index <n>\" line")]
    MissingIndex,
    /// The index is not a decimal u64 without leading zeros.
    #[error("tlog-proof index {text:?} is not a decimal number without leading zeros")]
    InvalidIndex { text: String },
    /// A proof line is not base64 of a 32-byte hash (lines count from 1).
    #[error("tlog-proof line {line} is not a base64 SHA-256 hash: {text:?}")]
    InvalidHash { line: usize, text: String },
    /// The proof has more hashes than any tree can need.
    #[error("tlog-proof has more than {max} proof hashes")]
    TooManyHashes { max: usize },
    /// No empty line and checkpoint follow the proof hashes.
    #[error("tlog-proof has no checkpoint after the proof hashes and an empty line")]
    MissingCheckpoint,
}

impl HasReasonCode for TlogProofError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            TlogProofError::MissingHeader
            | TlogProofError::NotUtf8 { .. }
            | TlogProofError::InvalidExtra
            | TlogProofError::MissingIndex
            | TlogProofError::InvalidIndex { .. }
            | TlogProofError::InvalidHash { .. }
            | TlogProofError::TooManyHashes { .. }
            | TlogProofError::MissingCheckpoint => ReasonCode::RekorProofInvalid,
        }
    }
}

/// A parsed tlog-proof. Nothing in it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// Inclusion proof, leaf's sibling first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint, byte for byte.
    pub checkpoint: Vec<u8>,
}

impl TlogProof {
    /// Parses a tlog-proof file.
    ///
    /// # Errors
    ///
    /// A [`TlogProofError`] naming the malformed line.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogProofError> {
        let mut lines = Lines {
            rest: bytes,
            number: 0,
        };

        if lines.next_str()? != Some(HEADER) {
            return Err(TlogProofError::MissingHeader);
        }

        let mut line = lines.next_str()?.ok_or(TlogProofError::MissingIndex)?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            extra = Some(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| TlogProofError::InvalidExtra)?,
            );
            line = lines.next_str()?.ok_or(TlogProofError::MissingIndex)?;
        }

        let index_text = line
            .strip_prefix("index ")
            .ok_or(TlogProofError::MissingIndex)?;
        let index = parse_decimal(index_text).ok_or_else(|| TlogProofError::InvalidIndex {
            text: index_text.to_owned(),
        })?;

        let mut hashes = Vec::new();
        loop {
            let line = lines.next_str()?.ok_or(TlogProofError::MissingCheckpoint)?;
            if line.is_empty() {
                break;
            }
            if hashes.len() >= MAX_PROOF_HASHES {
                return Err(TlogProofError::TooManyHashes {
                    max: MAX_PROOF_HASHES,
                });
            }
            let hash = STANDARD
                .decode(line)
                .ok()
                .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                .ok_or_else(|| TlogProofError::InvalidHash {
                    line: lines.number,
                    text: line.to_owned(),
                })?;
            hashes.push(hash);
        }

        if lines.rest.is_empty() {
            return Err(TlogProofError::MissingCheckpoint);
        }
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint: lines.rest.to_vec(),
        })
    }

    /// Writes the proof in the tlog-proof format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::from(HEADER);
        text.push('\n');
        if let Some(extra) = &self.extra {
            text.push_str("extra ");
            text.push_str(&STANDARD.encode(extra));
            text.push('\n');
        }
        text.push_str("index ");
        text.push_str(&self.index.to_string());
        text.push('\n');
        for hash in &self.hashes {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }
}

/// Newline-terminated lines of the proof header, tracking the line number.
struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
}

impl<'a> Lines<'a> {
    /// Returns the next line without its newline, or `None` at the end of the
    /// data or before an unterminated last line.
    fn next_str(&mut self) -> Result<Option<&'a str>, TlogProofError> {
        let Some(end) = self.rest.iter().position(|&byte| byte == b'\n') else {
            return Ok(None);
        };
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest.get(1..).unwrap_or_default();
        self.number = self.number.saturating_add(1);
        std::str::from_utf8(line)
            .map(Some)
            .map_err(|_| TlogProofError::NotUtf8 { line: self.number })
    }
}

/// Parses an ASCII decimal u64 without sign or leading zeros.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKPOINT: &str = "example.com/log\n3\nWqx3HImawpLnS/Gv4ubjAvi1WIOy0b8Ze0amvqbavKk=\n\n\u{2014} example.com/log AAAAAAE=\n";
    const HASH_A: &str = "qxq38Hx8j+Dv9LpvqlPH5EEukaWZFT6KpOAb7s5beCU=";
    const HASH_B: &str = "Zx8UbF5HHooag6PCFM5LqQe486WIjRTMjNPOdbsS75Q=";

    fn decode(hash: &str) -> Hash {
        Hash::try_from(STANDARD.decode(hash).expect("base64").as_slice()).expect("32 bytes")
    }

    #[test]
    fn parse_with_extra_and_hashes() {
        let text = format!(
            "c2sp.org/tlog-proof@v1\nextra aGVsbG8=\nindex 0\n{HASH_A}\n{HASH_B}\n\n{CHECKPOINT}"
        );
        let proof = TlogProof::parse(text.as_bytes()).expect("parse");
        assert_eq!(proof.extra.as_deref(), Some(b"hello".as_slice()));
        assert_eq!(proof.index, 0);
        assert_eq!(proof.hashes, vec![decode(HASH_A), decode(HASH_B)]);
        assert_eq!(proof.checkpoint, CHECKPOINT.as_bytes());
        assert_eq!(proof.to_bytes(), text.as_bytes());
    }

    #[test]
    fn parse_without_extra_or_hashes() {
        let text = format!("c2sp.org/tlog-proof@v1\nindex 73894\n\n{CHECKPOINT}");
        let proof = TlogProof::parse(text.as_bytes()).expect("parse");
        assert_eq!(proof.extra, None);
        assert_eq!(proof.index, 73894);
        assert!(proof.hashes.is_empty());
        assert_eq!(proof.to_bytes(), text.as_bytes());
    }

    #[test]
    fn malformed_proofs_rejected() {
        let too_many = format!(
            "c2sp.org/tlog-proof@v1\nindex 1\n{}\n{CHECKPOINT}",
            format!("{HASH_A}\n").repeat(65)
        );
        let rows = [
            (
                "wrong header",
                format!("c2sp.org/tlog-proof@v2\nindex 0\n\n{CHECKPOINT}"),
                TlogProofError::MissingHeader,
            ),
            ("empty file", String::new(), TlogProofError::MissingHeader),
            (
                "no index",
                format!("c2sp.org/tlog-proof@v1\n\n{CHECKPOINT}"),
                TlogProofError::MissingIndex,
            ),
            (
                "bad extra",
                format!("c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\n{CHECKPOINT}"),
                TlogProofError::InvalidExtra,
            ),
            (
                "leading zero index",
                format!("c2sp.org/tlog-proof@v1\nindex 01\n\n{CHECKPOINT}"),
                TlogProofError::InvalidIndex { text: "01".into() },
            ),
            (
                "negative index",
                format!("c2sp.org/tlog-proof@v1\nindex -1\n\n{CHECKPOINT}"),
                TlogProofError::InvalidIndex { text: "-1".into() },
            ),
            (
                "short hash",
                format!("c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\n{CHECKPOINT}"),
                TlogProofError::InvalidHash {
                    line: 3,
                    text: "AAAA".into(),
                },
            ),
            (
                "no empty line",
                format!("c2sp.org/tlog-proof@v1\nindex 0\n{HASH_A}\n"),
                TlogProofError::MissingCheckpoint,
            ),
            (
                "no checkpoint",
                "c2sp.org/tlog-proof@v1\nindex 0\n\n".to_owned(),
                TlogProofError::MissingCheckpoint,
            ),
            (
                "too many hashes",
                too_many,
                TlogProofError::TooManyHashes {
                    max: MAX_PROOF_HASHES,
                },
            ),
        ];
        for (name, text, want) in rows {
            let err = TlogProof::parse(text.as_bytes()).expect_err(name);
            assert_eq!(err, want, "row {name}");
            assert_eq!(
                err.reason_code(),
                ReasonCode::RekorProofInvalid,
                "row {name}"
            );
        }
    }

    #[test]
    fn header_line_not_utf8() {
        let mut bytes = b"c2sp.org/tlog-proof@v1\nindex \xff\n\n".to_vec();
        bytes.extend_from_slice(CHECKPOINT.as_bytes());
        assert_eq!(
            TlogProof::parse(&bytes),
            Err(TlogProofError::NotUtf8 { line: 2 })
        );
    }
}
