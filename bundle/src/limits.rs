//! Size and count limits that a reader enforces before and while it decompresses a bundle.

/// 1 MiB in bytes.
const MIB: u64 = 1024 * 1024;

/// Default maximum size of the compressed `.tgz`: 256 MiB. The in-memory readers keep the whole
/// archive in memory, so this bounds the memory one import takes before any other check runs.
/// The streaming readers count compressed bytes as they read and hold no more than one file.
pub const DEFAULT_MAX_ARCHIVE_BYTES: u64 = 256 * MIB;

/// Default maximum sum of all decompressed file sizes: 1 GiB, four times the archive limit.
/// Hash tiles are SHA-256 output and do not compress, while entry bundles and JSON compress
/// several times over, so a legitimate bundle near the archive limit stays below this one.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1024 * MIB;

/// Default maximum size of one file: 64 MiB. The largest legitimate file is an entry bundle:
/// at most 256 entries of at most 65,535 bytes, each with a 2-byte length prefix, which makes
/// 16,777,472 bytes. Sigstore bundles are far smaller, and the rest is margin.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * MIB;

/// Default maximum number of tar entries, directories included: 100,000. Each entry costs a
/// header and a map node whatever its size. A mirror of a log needs about two files (a level-0
/// hash tile and an entry bundle) per 256 leaves, so this admits roughly 12 million leaves.
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// Limits that [`crate::read_archive`] and the streaming readers enforce. Every check compares
/// before it reads, except two that count bytes and stop at the limit: the decompressed-stream
/// check, and the compressed-size check of the streaming readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the compressed archive in bytes.
    pub max_archive_bytes: u64,
    /// Maximum sum of the sizes of all files in bytes.
    pub max_total_bytes: u64,
    /// Maximum size of one file in bytes.
    pub max_file_bytes: u64,
    /// Maximum number of tar entries, directories included.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: DEFAULT_MAX_ARCHIVE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Tar bytes one entry may add beyond its content: a 512-byte header and at most 511 bytes of
/// padding to the next 512-byte block, rounded up to 1,024.
pub(crate) const TAR_OVERHEAD_PER_ENTRY: u64 = 1024;

/// Tar bytes allowed after the last entry: the two zero blocks of the end-of-archive marker plus
/// record padding. GNU tar pads to 10,240 bytes by default, and 1 MiB covers blocking factors up
/// to 2,048.
pub(crate) const TAR_TAIL_ALLOWANCE: u64 = MIB;

impl Limits {
    /// Returns the most decompressed bytes a tar stream within these limits can need. Reading
    /// stops with [`crate::BundleError::TooLarge`] past it, which is what stops a gzip bomb.
    pub fn max_decompressed_bytes(&self) -> u64 {
        self.max_entries
            .saturating_mul(TAR_OVERHEAD_PER_ENTRY)
            .saturating_add(self.max_total_bytes)
            .saturating_add(TAR_TAIL_ALLOWANCE)
    }
}
