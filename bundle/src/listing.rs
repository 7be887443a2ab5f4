//! The list of files in `manifest.json`, which the archive reader checks tar entries against.
//!
//! A v1 archive starts with `manifest.json`, so the reader knows every path and size before it
//! reads any other file. It rejects an unlisted path or a size that differs from the manifest
//! from the tar header alone, before it reads or stores the entry's data. The manifest's declared
//! sizes are compared with the [`Limits`] first, so the memory that the files of an archive can
//! take is bounded by a declared total that is itself within the limits.
//!
//! The listing also checks each file's digest as soon as its content was read, records which
//! files arrived, and finds a file that is the parent of another (`a` and `a/b`) without keeping
//! any file content. Its memory grows with the number of listed files, as the manifest's does.

use std::collections::BTreeMap;

use crate::caps::check_declared_size;
use crate::error::{BundleError, Measure, malformed, rejected, too_large};
use crate::limits::Limits;
use crate::manifest::{MANIFEST_PATH, Manifest, sha256_hex};

/// The manifest's declaration of one file, and whether the reader has seen the file.
struct ListedFile {
    /// Declared size in bytes.
    size: u64,
    /// Declared SHA-256, lowercase hex.
    sha256: String,
    /// Whether the file was read from the archive.
    seen: bool,
    /// The first path read so far that lies below this file while the file itself has not
    /// arrived yet. The archive is rejected if this file arrives later.
    child: Option<String>,
}

/// Declared size and digest of every listed file, by path.
pub(crate) struct Listing {
    files: BTreeMap<String, ListedFile>,
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
        let mut files = BTreeMap::new();
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
            files.insert(
                entry.path.clone(),
                ListedFile {
                    size: entry.size,
                    sha256: entry.sha256.clone(),
                    seen: false,
                    child: None,
                },
            );
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
        Ok(Listing { files })
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
        let Some(listed) = self.files.get(path).map(|file| file.size) else {
            return Err(rejected(
                archive,
                path,
                "file is not listed in manifest.json",
            ));
        };
        if header_size != listed {
            return Err(malformed(
                archive,
                path,
                format!("size {header_size} bytes in the tar header, manifest says {listed}"),
            ));
        }
        Ok(())
    }

    /// Reports whether the listed file at `path` was already read.
    pub(crate) fn is_seen(&self, path: &str) -> bool {
        self.files.get(path).is_some_and(|file| file.seen)
    }

    /// Accepts the content of the listed file at `path`, which passed [`Listing::check_entry`]:
    /// checks its SHA-256 against the manifest and rejects it when it is the parent of another
    /// entry, or lies below `manifest.json` or another file.
    ///
    /// # Errors
    ///
    /// [`BundleError::FileDigestMismatch`] for a digest that differs from the manifest, and
    /// [`BundleError::EntryRejected`] for a file that is the parent of another entry or lies
    /// below one.
    pub(crate) fn accept(
        &mut self,
        archive: &str,
        path: &str,
        content: &[u8],
    ) -> Result<(), BundleError> {
        let Some(listed) = self.files.get(path) else {
            return Err(rejected(
                archive,
                path,
                "file is not listed in manifest.json",
            ));
        };
        let actual = sha256_hex(content);
        if actual != listed.sha256 {
            return Err(BundleError::FileDigestMismatch {
                archive: archive.to_owned(),
                path: path.to_owned(),
                expected: listed.sha256.clone(),
                actual,
            });
        }
        if let Some(child) = &listed.child {
            return Err(rejected(
                archive,
                child,
                format!("parent {path} is a regular file"),
            ));
        }

        for (end, _) in path.match_indices('/') {
            let parent = path.get(..end).unwrap_or_default();
            if parent == MANIFEST_PATH || self.is_seen(parent) {
                return Err(rejected(
                    archive,
                    path,
                    format!("parent {parent} is a regular file"),
                ));
            }
            if let Some(file) = self.files.get_mut(parent)
                && file.child.is_none()
            {
                file.child = Some(path.to_owned());
            }
        }
        if let Some(file) = self.files.get_mut(path) {
            file.seen = true;
        }
        Ok(())
    }

    /// Checks a directory entry of the archive once every file was read: no parent of
    /// `directory` may be `manifest.json` or a file that arrived.
    ///
    /// # Errors
    ///
    /// [`BundleError::EntryRejected`] naming `directory`.
    pub(crate) fn check_directory(
        &self,
        archive: &str,
        directory: &str,
    ) -> Result<(), BundleError> {
        for (end, _) in directory.match_indices('/') {
            let parent = directory.get(..end).unwrap_or_default();
            if parent == MANIFEST_PATH || self.is_seen(parent) {
                return Err(rejected(
                    archive,
                    directory,
                    format!("parent {parent} is a regular file"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every listed file arrived.
    ///
    /// # Errors
    ///
    /// [`BundleError::Malformed`] naming the first listed file, in path order, that is missing.
    pub(crate) fn check_all_seen(&self, archive: &str) -> Result<(), BundleError> {
        match self.files.iter().find(|(_, file)| !file.seen) {
            Some((path, _)) => Err(malformed(
                archive,
                path,
                "listed in manifest.json but missing from the archive",
            )),
            None => Ok(()),
        }
    }
}
