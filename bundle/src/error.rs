//! The error type of the bundle reader and writer, and its reason codes.
//!
//! Every message starts with the archive file name, then the path inside the archive when the
//! fault belongs to one entry, then the fault itself, for example
//! `rekor-tiles.tgz: logs/0/tile/0/000.p/15: sha256 3f…, manifest says 9a…`.

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
    /// Size of one file in bytes, from its tar header.
    FileBytes,
    /// Sum of the sizes of all files in bytes.
    TotalBytes,
    /// Number of tar entries, directories included.
    Entries,
}

impl Measure {
    fn unit(self) -> &'static str {
        match self {
            Measure::Entries => "entries",
            Measure::ArchiveBytes
            | Measure::DecompressedBytes
            | Measure::FileBytes
            | Measure::TotalBytes => "bytes",
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Measure::ArchiveBytes => "compressed archive size",
            Measure::DecompressedBytes => "decompressed data (reading stopped)",
            Measure::FileBytes => "file size",
            Measure::TotalBytes => "total size of all files",
            Measure::Entries => "entry count",
        })
    }
}

/// A bundle that cannot be read or written.
///
/// `archive` is the bundle's file name ([`NEW_ARCHIVE`] while packing). `path` is the path inside
/// the archive, or empty when the fault concerns the archive as a whole (its gzip stream, say).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BundleError {
    /// A file's SHA-256 differs from the one its manifest lists.
    #[error("{archive}: {path}: sha256 {actual}, manifest says {expected}")]
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
    #[error("{archive}: {}{why}", located(.path))]
    EntryRejected {
        archive: String,
        path: String,
        why: String,
    },

    /// A size or count over a [`crate::Limits`] value.
    #[error("{archive}: {}{measure} is {actual} {unit}, over the limit of {limit} {unit}", located(.path), unit = .measure.unit())]
    TooLarge {
        archive: String,
        path: String,
        measure: Measure,
        actual: u64,
        limit: u64,
    },

    /// A broken archive or manifest: bad gzip or tar stream, truncation, trailing data, a manifest
    /// that is not canonical JSON or has an unknown format, or a listed file missing.
    #[error("{archive}: {}{why}", located(.path))]
    Malformed {
        archive: String,
        path: String,
        why: String,
    },

    /// Trust material (trusted root, note verifier key or KMS public key) that does not parse.
    #[error("{archive}: {}{why}", located(.path))]
    TrustRootInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A checkpoint that does not parse as a signed note with a checkpoint body, or whose origin
    /// differs from the one the manifest or file name gives.
    #[error("{archive}: {}{why}", located(.path))]
    CheckpointInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file under a log's `tile/` directory whose path is not a C2SP tlog-tiles path.
    #[error("{archive}: {}{why}", located(.path))]
    TileInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file that does not parse as a C2SP tlog-proof, or whose index differs from its file name.
    #[error("{archive}: {}{why}", located(.path))]
    TlogProofInvalid {
        archive: String,
        path: String,
        why: String,
    },

    /// A file that does not parse as a Sigstore bundle.
    #[error("{archive}: {}{why}", located(.path))]
    SigstoreBundleInvalid {
        archive: String,
        path: String,
        why: String,
    },
}

fn located(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
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
