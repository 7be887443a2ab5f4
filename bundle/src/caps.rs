//! Per-kind caps on the file sizes that `manifest.json` declares.
//!
//! The reader checks each declared size against the cap of the file's kind as soon as it has
//! parsed the manifest, before it reads any other file, so an archive cannot make the reader
//! inflate a large file only to reject its content afterwards. The caps follow from the formats:
//! a file over its cap cannot be a valid file of its kind, except for the JSON and text files,
//! whose caps leave a wide margin over any real document.

use crate::error::{BundleError, Measure, too_large};
use crate::manifest::BundleKind;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Maximum size of a hash tile: a full tile holds 256 SHA-256 hashes of 32 bytes each.
pub const HASH_TILE_MAX_BYTES: u64 = 256 * 32;

/// Maximum size of an entry bundle: 256 entries, each a 2-byte big-endian length followed by at
/// most 65,535 bytes (C2SP tlog-tiles).
pub const ENTRY_BUNDLE_MAX_BYTES: u64 = 256 * (2 + 65_535);

/// Maximum size of a checkpoint: a signed note of a few lines and a few signature lines, under
/// 1 KiB in practice.
pub const CHECKPOINT_MAX_BYTES: u64 = 64 * KIB;

/// Maximum size of a detached tlog-proof: a checkpoint plus at most 63 base64 hashes of about
/// 45 bytes each, which is under 4 KiB.
pub const TLOG_PROOF_MAX_BYTES: u64 = 64 * KIB;

/// Maximum size of `note-keys.txt`: one verifier key line of about 100 bytes per log or witness,
/// so 1 MiB admits thousands of keys.
pub const NOTE_KEYS_MAX_BYTES: u64 = MIB;

/// Maximum size of one `kms/<id>.pem`: one PEM `PUBLIC KEY` block, under 1 KiB even for RSA-4096.
pub const KMS_PEM_MAX_BYTES: u64 = 64 * KIB;

/// Maximum size of `trusted_root.json`. The public-good Sigstore trusted root is about 10 KiB;
/// 16 MiB admits hundreds of certificate authorities and logs.
pub const TRUSTED_ROOT_MAX_BYTES: u64 = 16 * MIB;

/// Maximum size of one Sigstore bundle. A bundle holds one signature or DSSE envelope, a
/// certificate chain and a few log entries; 16 MiB admits a large in-toto attestation.
pub const SIGSTORE_BUNDLE_MAX_BYTES: u64 = 16 * MIB;

/// Maximum size of a file whose path is outside its bundle kind's layout. Opening rejects such a
/// file once it is read, so this cap only bounds the data inflated before that rejection.
pub const UNKNOWN_PATH_MAX_BYTES: u64 = 64 * KIB;

/// Returns the name of the kind of file at `path` in a bundle of `kind`, and its size cap.
pub(crate) fn file_cap(kind: BundleKind, path: &str) -> (&'static str, u64) {
    match kind {
        BundleKind::TrustRootSet => {
            if path == crate::TRUSTED_ROOT_PATH {
                ("trusted root", TRUSTED_ROOT_MAX_BYTES)
            } else if path == crate::NOTE_KEYS_PATH {
                ("note key list", NOTE_KEYS_MAX_BYTES)
            } else if path.starts_with("kms/") {
                ("KMS public key", KMS_PEM_MAX_BYTES)
            } else {
                ("file outside the layout", UNKNOWN_PATH_MAX_BYTES)
            }
        }
        BundleKind::RekorTiles => {
            if path.starts_with("proofs/") {
                return ("tlog-proof", TLOG_PROOF_MAX_BYTES);
            }
            let in_log = path
                .strip_prefix("logs/")
                .and_then(|rest| rest.split_once('/'))
                .map(|(_, relative)| relative);
            match in_log {
                Some("checkpoint") => ("checkpoint", CHECKPOINT_MAX_BYTES),
                Some(relative) if relative.starts_with("tile/entries/") => {
                    ("entry bundle", ENTRY_BUNDLE_MAX_BYTES)
                }
                Some(relative) if relative.starts_with("tile/") => {
                    ("hash tile", HASH_TILE_MAX_BYTES)
                }
                _ => ("file outside the layout", UNKNOWN_PATH_MAX_BYTES),
            }
        }
        BundleKind::Evidence => {
            if path.starts_with("sigstore/") {
                ("Sigstore bundle", SIGSTORE_BUNDLE_MAX_BYTES)
            } else {
                ("file outside the layout", UNKNOWN_PATH_MAX_BYTES)
            }
        }
    }
}

/// Checks the size that `manifest.json` declares for `path` against the cap of its kind.
///
/// # Errors
///
/// [`BundleError::TooLarge`] with [`Measure::DeclaredFileBytes`], naming `path`, its declared
/// size and the cap.
pub(crate) fn check_declared_size(
    archive: &str,
    kind: BundleKind,
    path: &str,
    size: u64,
) -> Result<(), BundleError> {
    let (file_kind, cap) = file_cap(kind, path);
    if size > cap {
        return Err(too_large(
            archive,
            path,
            Measure::DeclaredFileBytes { file_kind },
            size,
            cap,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_cap_table() {
        let cases = [
            (
                "hash tile",
                BundleKind::RekorTiles,
                "logs/0/tile/0/000",
                HASH_TILE_MAX_BYTES,
            ),
            (
                "partial hash tile",
                BundleKind::RekorTiles,
                "logs/3/tile/1/x001/002.p/7",
                HASH_TILE_MAX_BYTES,
            ),
            (
                "entry bundle",
                BundleKind::RekorTiles,
                "logs/0/tile/entries/000.p/5",
                ENTRY_BUNDLE_MAX_BYTES,
            ),
            (
                "checkpoint",
                BundleKind::RekorTiles,
                "logs/0/checkpoint",
                CHECKPOINT_MAX_BYTES,
            ),
            (
                "tlog-proof",
                BundleKind::RekorTiles,
                "proofs/o/5.tlog-proof",
                TLOG_PROOF_MAX_BYTES,
            ),
            (
                "tiles stray",
                BundleKind::RekorTiles,
                "logs/0/other",
                UNKNOWN_PATH_MAX_BYTES,
            ),
            (
                "tiles top stray",
                BundleKind::RekorTiles,
                "readme",
                UNKNOWN_PATH_MAX_BYTES,
            ),
            (
                "trusted root",
                BundleKind::TrustRootSet,
                "trusted_root.json",
                TRUSTED_ROOT_MAX_BYTES,
            ),
            (
                "note keys",
                BundleKind::TrustRootSet,
                "note-keys.txt",
                NOTE_KEYS_MAX_BYTES,
            ),
            (
                "kms key",
                BundleKind::TrustRootSet,
                "kms/release.pem",
                KMS_PEM_MAX_BYTES,
            ),
            (
                "trust stray",
                BundleKind::TrustRootSet,
                "extra.json",
                UNKNOWN_PATH_MAX_BYTES,
            ),
            (
                "sigstore bundle",
                BundleKind::Evidence,
                "sigstore/a.sigstore.json",
                SIGSTORE_BUNDLE_MAX_BYTES,
            ),
            (
                "evidence stray",
                BundleKind::Evidence,
                "a/b",
                UNKNOWN_PATH_MAX_BYTES,
            ),
        ];
        for (name, kind, path, expected) in cases {
            assert_eq!(file_cap(kind, path).1, expected, "row {name}");
        }
    }

    #[test]
    fn declared_size_at_cap_accepted() {
        let path = "logs/0/tile/0/000";
        assert_eq!(
            check_declared_size("t.tgz", BundleKind::RekorTiles, path, HASH_TILE_MAX_BYTES),
            Ok(())
        );
        let error = check_declared_size("t.tgz", BundleKind::RekorTiles, path, 8193)
            .expect_err("over the cap");
        assert_eq!(
            error.to_string(),
            "t.tgz: logs/0/tile/0/000: declared size of a hash tile is 8193 bytes, over the limit of 8192 bytes"
        );
    }
}
