//! The list of files in `manifest.json`, which the archive reader checks tar entries against.
//!
//! A v1 archive starts with `manifest.json`, so the reader knows every path and size before it
//! reads any other file. It rejects an unlisted path or a size that differs from the manifest
//! from the tar header alone, before it reads or stores the entry's data. The manifest's declared
//! sizes are compared with the [`Limits`] first, so the memory that the files of an archive can
//! take is bounded by a declared total that is itself within the limits.
//!
//! Digests are checked after the whole archive is read, by `Manifest::check_files`.

use std::collections::BTreeMap;

use crate::caps::check_declared_size;
use crate::error::{BundleError, Measure, malformed, rejected, too_large};
use crate::limits::Limits;
use crate::manifest::{MANIFEST_PATH, Manifest};

/// Declared size of every listed file, by path.
pub(crate) struct Listing {
    sizes: BTreeMap<String, u64>,
}

impl Listing {
    /// Builds the listing of `manifest`, whose own file is `manifest_size` bytes long, after
    /// checking the declared sizes and file count against `limits`.
    ///
    /// # Errors
    ///
    /// [`BundleError::TooLarge`] naming the listed file whose size is over `max_file_bytes` or
    /// over the cap for its kind of file (see [`crate::caps`]), or
    /// naming `manifest.json` when the files it lists, itself included, are more than
    /// `max_entries` or add up to more than `max_total_bytes`.
    pub(crate) fn new(
        archive: &str,
        manifest: &Manifest,
        manifest_size: u64,
        limits: &Limits,
    ) -> Result<Listing, BundleError> {
        let count = u64::try_from(manifest.files.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if count > limits.max_entries {
            return Err(too_large(
                archive,
                MANIFEST_PATH,
                Measure::Entries,
                count,
                limits.max_entries,
            ));
        }

        let mut total = manifest_size;
        let mut sizes = BTreeMap::new();
        for entry in &manifest.files {
            if entry.size > limits.max_file_bytes {
                return Err(too_large(
                    archive,
                    &entry.path,
                    Measure::FileBytes,
                    entry.size,
                    limits.max_file_bytes,
                ));
            }
            check_declared_size(archive, manifest.kind(), &entry.path, entry.size)?;
            total = total.saturating_add(entry.size);
            sizes.insert(entry.path.clone(), entry.size);
        }
        if total > limits.max_total_bytes {
            return Err(too_large(
                archive,
                MANIFEST_PATH,
                Measure::TotalBytes,
                total,
                limits.max_total_bytes,
            ));
        }
        Ok(Listing { sizes })
    }

    /// Checks the tar header of a regular file that follows `manifest.json`, before its data is
    /// read: the path must be listed, and the header's size must be the listed size.
    ///
    /// # Errors
    ///
    /// [`BundleError::EntryRejected`] for an unlisted path and [`BundleError::Malformed`] for a
    /// size that differs from the manifest.
    pub(crate) fn check_entry(
        &self,
        archive: &str,
        path: &str,
        header_size: u64,
    ) -> Result<(), BundleError> {
        let Some(listed) = self.sizes.get(path) else {
            return Err(rejected(
                archive,
                path,
                "file is not listed in manifest.json",
            ));
        };
        if header_size != *listed {
            return Err(malformed(
                archive,
                path,
                format!("size {header_size} bytes in the tar header, manifest says {listed}"),
            ));
        }
        Ok(())
    }
}
