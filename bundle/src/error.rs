//! The error type of the bundle reader and writer, and its reason codes.
//!
//! Every message starts with the archive file name, then the path inside the archive when the
//! fault belongs to one entry, then the fault itself, for example
//! `rekor-tiles.tgz: logs/0/tile/0/000.p/15: sha256 3f…, manifest says 9a…`.
//!
//! Archive names, paths and fault descriptions can carry bytes from a hostile archive, so the
//! message escapes control characters and other non-printable characters (see `printable`).

use std::borrow::Cow;
use std::fmt;

use stella_verify::reason::{HasReasonCode, ReasonCode};
use thiserror::Error;

/// Archive name used in errors raised while packing, before the archive has a file name.
pub const NEW_ARCHIVE: &str = "(new bundle)";

/// The quantity that a [`BundleError::TooLarge`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Size of the compressed `.tgz` in bytes.
    ArchiveBytes,
    /// Bytes of the decompressed tar stream read so far; reading stops at the limit.
    DecompressedBytes,
    /// Size of one file in bytes, from its tar header or from `manifest.json`.
    FileBytes,
    /// Sum of the sizes of all files in bytes, from the tar headers read so far or from the sizes
    /// that `manifest.json` declares.
    TotalBytes,
    /// Number of tar entries, directories included, or of the files that `manifest.json` lists,
    /// itself included.
    Entries,
    /// Size of one file as `manifest.json` declares it, against the cap for its kind of file
    /// (`file_kind`, such as "hash tile"), checked before any file data is read.
    DeclaredFileBytes { file_kind: &'static str },
}

impl Measure {
    fn unit(self) -> &'static str {
        match self {
            Measure::Entries => "entries",
            Measure::ArchiveBytes
            | Measure::DecompressedBytes
            | Measure::FileBytes
            | Measure::TotalBytes
            | Measure::DeclaredFileBytes { .. } => "bytes",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::ArchiveBytes => f.write_str("compressed archive size"),
            Measure::DecompressedBytes => f.write_str("decompressed data (reading stopped)"),
            Measure::FileBytes => f.write_str("file size"),
            Measure::TotalBytes => f.write_str("total size of all files"),
            Measure::Entries => f.write_str("entry count"),
            Measure::DeclaredFileBytes { file_kind } => {
                write!(f, "declared size of a {file_kind}")
            }
        }
    }
}

/// A bundle that cannot be read or written.
///
/// `archive` is the bundle's file name ([`NEW_ARCHIVE`] while packing). `path` is the path inside
/// the archive, or empty when the fault concerns the archive as a whole (its gzip stream, say).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// A file's SHA-256 differs from the one its manifest lists.
    #[error("{}: {}: sha256 {}, manifest says {}", printable(.archive), printable(.path), printable(.actual), printable(.expected))]
    FileDigestMismatch {
        archive: String,
        path: String,
        /// Lowercase hex digest from the manifest.
        expected: String,
        /// Lowercase hex digest of the file in the archive.
        actual: String,
    },

    /// A tar entry that a reader never accepts: an unsafe path, a link, device or FIFO, a duplicate
    /// path, a file the manifest does not list, or a path the bundle kind's layout does not allow.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    EntryRejected {
        archive: String,
        path: String,
        why: String,
    },

    /// A size or count over a [`crate::Limits`] value.
    #[error("{}: {}{measure} is {actual} {unit}, over the limit of {limit} {unit}", printable(.archive), located(.path), unit = .measure.unit())]
    TooLarge {
        archive: String,
        path: String,
        measure: Measure,
        actual: u64,
        limit: u64,
    },

    /// A broken archive or manifest: bad gzip or tar stream, truncation, trailing data, a manifest
    /// that is missing, not the first file, not canonical JSON or of an unknown format, a file
    /// whose size differs from the manifest, or a listed file missing.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    Malformed {
        archive: String,
        path: String,
        why: String,
    },

    /// Trust material (trusted root, note verifier key or KMS public key) that does not parse.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    TrustRootInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A checkpoint that does not parse as a signed note with a checkpoint body, or whose origin
    /// differs from the one the manifest or file name gives.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    CheckpointInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file under a log's `tile/` directory whose path is not a C2SP tlog-tiles path.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    TileInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file that does not parse as a C2SP tlog-proof, or whose index differs from its file name.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    TlogProofInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file that does not parse as a Sigstore bundle.
    #[error("{}: {}{}", printable(.archive), located(.path), printable(.why))]
    SigstoreBundleInvalid {
        archive: String,
        path: String,
        why: String,
    },
}

/// Returns `path` and a colon for a message, or nothing when the fault has no path.
fn located(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{}: ", printable(path))
    }
}

/// Escapes every character that [`char::escape_debug`] escapes, except quotes and backslashes:
/// control characters such as ESC and NUL, other non-printable characters such as bidirectional
/// overrides, and combining marks. What remains cannot move a terminal's cursor or change its
/// colours. Quotes and backslashes stay as they are, so text already escaped by `{:?}` does not
/// change and the function is idempotent.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    let needs_escape = |c: char| !matches!(c, '"' | '\'' | '\\') && c.escape_debug().len() > 1;
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().saturating_add(8));
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

impl BundleError {
    /// Returns the archive file name the error names.
    pub fn archive(&self) -> &str {
        match self {
            BundleError::FileDigestMismatch { archive, .. }
            | BundleError::EntryRejected { archive, .. }
            | BundleError::TooLarge { archive, .. }
            | BundleError::Malformed { archive, .. }
            | BundleError::TrustRootInvalid { archive, .. }
            | BundleError::CheckpointInvalid { archive, .. }
            | BundleError::TileInvalid { archive, .. }
            | BundleError::TlogProofInvalid { archive, .. }
            | BundleError::SigstoreBundleInvalid { archive, .. } => archive,
        }
    }

    /// Returns the path inside the archive, or "" when the fault concerns the whole archive.
    pub fn path(&self) -> &str {
        match self {
            BundleError::FileDigestMismatch { path, .. }
            | BundleError::EntryRejected { path, .. }
            | BundleError::TooLarge { path, .. }
            | BundleError::Malformed { path, .. }
            | BundleError::TrustRootInvalid { path, .. }
            | BundleError::CheckpointInvalid { path, .. }
            | BundleError::TileInvalid { path, .. }
            | BundleError::TlogProofInvalid { path, .. }
            | BundleError::SigstoreBundleInvalid { path, .. } => path,
        }
    }
}

impl HasReasonCode for BundleError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            BundleError::FileDigestMismatch { .. } => ReasonCode::FileDigestMismatch,
            BundleError::EntryRejected { .. } => ReasonCode::BundleEntryRejected,
            BundleError::TooLarge { .. } => ReasonCode::BundleTooLarge,
            BundleError::Malformed { .. } => ReasonCode::BundleMalformed,
            BundleError::TrustRootInvalid { .. } => ReasonCode::TrustRootInvalid,
            BundleError::CheckpointInvalid { .. } => ReasonCode::RekorCheckpointInvalid,
            BundleError::TileInvalid { .. } => ReasonCode::RekorTileInvalid,
            BundleError::TlogProofInvalid { .. } => ReasonCode::RekorProofInvalid,
            BundleError::SigstoreBundleInvalid { .. } => ReasonCode::SigstoreBundleInvalid,
        }
    }
}

/// Shorthands for building errors with owned strings.
pub(crate) fn rejected(archive: &str, path: &str, why: impl Into<String>) -> BundleError {
    BundleError::EntryRejected {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.into(),
    }
}

pub(crate) fn malformed(archive: &str, path: &str, why: impl Into<String>) -> BundleError {
    BundleError::Malformed {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.into(),
    }
}

pub(crate) fn too_large(
    archive: &str,
    path: &str,
    measure: Measure,
    actual: u64,
    limit: u64,
) -> BundleError {
    BundleError::TooLarge {
        archive: archive.to_owned(),
        path: path.to_owned(),
        measure,
        actual,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_archive_and_path() {
        let error = BundleError::FileDigestMismatch {
            archive: "rekor-tiles.tgz".into(),
            path: "logs/0/checkpoint".into(),
            expected: "9a".into(),
            actual: "3f".into(),
        };
        assert_eq!(
            error.to_string(),
            "rekor-tiles.tgz: logs/0/checkpoint: sha256 3f, manifest says 9a"
        );
        assert_eq!(error.reason_code(), ReasonCode::FileDigestMismatch);
    }

    #[test]
    fn display_omits_empty_path() {
        let error = malformed("x.tgz", "", "truncated gzip stream");
        assert_eq!(error.to_string(), "x.tgz: truncated gzip stream");
    }

    #[test]
    fn printable_escapes_control_characters() {
        let cases = [
            ("plain", "logs/0/checkpoint", "logs/0/checkpoint"),
            ("escape sequence", "\u{1b}[31mred", "\\u{1b}[31mred"),
            ("newline and nul", "a\nb\0", "a\\nb\\0"),
            ("c1 control", "a\u{9b}b", "a\\u{9b}b"),
            ("bidi override", "a\u{202e}b", "a\\u{202e}b"),
            ("quotes kept", "\"a\" 'b' \\", "\"a\" 'b' \\"),
            ("non-ascii kept", "café", "café"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(printable(input), expected, "row {name}");
            assert_eq!(printable(expected), expected, "row {name}: idempotent");
        }
    }

    #[test]
    fn display_escapes_every_field() {
        let error = malformed("\u{1b}]0;x.tgz", "a\u{7}", "why\r");
        assert_eq!(error.to_string(), "\\u{1b}]0;x.tgz: a\\u{7}: why\\r");
        let error = BundleError::FileDigestMismatch {
            archive: "x\u{1b}.tgz".into(),
            path: "p\u{1b}".into(),
            expected: "9a".into(),
            actual: "3f".into(),
        };
        assert_eq!(
            error.to_string(),
            "x\\u{1b}.tgz: p\\u{1b}: sha256 3f, manifest says 9a"
        );
    }

    #[test]
    fn display_too_large_units() {
        let error = too_large("x.tgz", "a", Measure::FileBytes, 10, 5);
        assert_eq!(
            error.to_string(),
            "x.tgz: a: file size is 10 bytes, over the limit of 5 bytes"
        );
        let error = too_large("x.tgz", "", Measure::Entries, 11, 10);
        assert_eq!(
            error.to_string(),
            "x.tgz: entry count is 11 entries, over the limit of 10 entries"
        );
    }
}
