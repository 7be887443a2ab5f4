//! Spool files of streamed tile imports: ImportTilesStream writes the uploaded archive to a file
//! under `<data-dir>/incoming/` and the import reads it from there, so an archive never has to
//! fit in memory.
//!
//! Each upload gets its own file with a random name, created with mode 0600. The file is deleted
//! when its [`SpooledArchive`] is dropped, which happens when the import ends, whatever the
//! outcome. Files left by a crash are deleted when the attestor starts ([`SpoolDir::open`]).
//!
//! The size limit is enforced while receiving: the upload is rejected with
//! `ERR_BUNDLE_TOO_LARGE` naming the file as soon as the declared size or the bytes received pass
//! it, and nothing more is read.

use std::path::{Path, PathBuf};

use stella_bundle::{BundleError, Measure};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::import_chunk::Part;
use stella_verify::reason::ReasonCode;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt as _;
use tonic::Streaming;
use tracing::{info, warn};

use crate::error::{ServiceError, escape_for_log};

/// Name of the spool directory inside the data directory.
pub const INCOMING_DIR: &str = "incoming";

/// The directory of the spool files of uploads in progress.
#[derive(Debug, Clone)]
pub struct SpoolDir {
    path: PathBuf,
}

impl SpoolDir {
    /// Creates `<data_dir>/incoming` if needed and deletes every file left in it by an earlier
    /// run: an upload or import that a crash interrupted is incomplete and cannot resume.
    ///
    /// # Errors
    ///
    /// The I/O error of creating the directory or deleting a leftover file.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(INCOMING_DIR);
        std::fs::create_dir_all(&path)?;
        let mut removed = 0_u64;
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
            removed = removed.saturating_add(1);
        }
        if removed > 0 {
            info!(directory = %path.display(), removed, "deleted spool files of interrupted imports");
        }
        Ok(SpoolDir { path })
    }

    /// Returns the spool directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates an empty spool file with a random name and mode 0600. The file is deleted when the
    /// returned handle is dropped.
    ///
    /// # Errors
    ///
    /// The I/O error of creating the file.
    pub fn create_file(&self, prefix: &str, suffix: &str) -> std::io::Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix(prefix)
            .suffix(suffix)
            .tempfile_in(&self.path)
    }
}

/// An uploaded archive in its spool file. Dropping it deletes the file.
#[derive(Debug)]
pub struct SpooledArchive {
    /// File name the operator gave, for messages only.
    pub file_name: String,
    /// Size of the archive in bytes.
    pub bytes: u64,
    file: NamedTempFile,
}

impl SpooledArchive {
    /// Returns the path of the spool file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Opens the spool file for reading from its start.
    ///
    /// # Errors
    ///
    /// The I/O error of opening the file.
    pub fn open(&self) -> std::io::Result<std::fs::File> {
        self.file.reopen()
    }
}

/// Receives the messages of an ImportTilesStream call into a new spool file. The first message
/// must be an [`pb::ImportStart`]; the others carry data.
///
/// # Errors
///
/// INVALID_ARGUMENT with `ERR_BUNDLE_TOO_LARGE` naming the file once the declared size or the
/// bytes received exceed `max_bytes`, and nothing more is read. INVALID_ARGUMENT with
/// `ERR_BUNDLE_MALFORMED` for a call that does not start with ImportStart, sends it twice, fails
/// or ends before the declared size. An internal error when the spool file cannot be written.
/// The spool file is deleted in every error case.
pub async fn receive(
    mut messages: Streaming<pb::ImportChunk>,
    spool: &SpoolDir,
    max_bytes: u64,
) -> Result<SpooledArchive, ServiceError> {
    let start = match messages.message().await {
        Ok(Some(pb::ImportChunk {
            part: Some(Part::Start(start)),
        })) => start,
        Ok(Some(_)) => {
            return Err(ServiceError::invalid(
                ReasonCode::BundleMalformed,
                "the first message of ImportTilesStream must be an ImportStart with the file name",
            ));
        }
        Ok(None) => {
            return Err(ServiceError::invalid(
                ReasonCode::BundleMalformed,
                "ImportTilesStream ended before its first message",
            ));
        }
        Err(status) => {
            return Err(ServiceError::invalid(
                ReasonCode::BundleMalformed,
                format!("ImportTilesStream failed before its first message: {status}"),
            ));
        }
    };
    let file_name = start.file_name;
    info!(phase = "receiving", file = %escape_for_log(&file_name), declared_bytes = start.total_bytes, "import phase");
    if start.total_bytes > max_bytes {
        return Err(too_large(&file_name, start.total_bytes, max_bytes));
    }

    let file = spool
        .create_file("upload-", ".tgz")
        .map_err(|error| spool_failure(spool, &file_name, &error))?;
    let writer = file
        .as_file()
        .try_clone()
        .map_err(|error| spool_failure(spool, &file_name, &error))?;
    let mut writer = tokio::fs::File::from_std(writer);
    let mut received: u64 = 0;

    loop {
        let message = match messages.message().await {
            Ok(message) => message,
            Err(status) => {
                warn!(file = %escape_for_log(&file_name), received_bytes = received, error = %status, "upload failed");
                return Err(ServiceError::invalid(
                    ReasonCode::BundleMalformed,
                    format!(
                        "{file_name}: the upload failed after {received} bytes: {}",
                        status.message()
                    ),
                ));
            }
        };
        let Some(message) = message else { break };
        let data = match message.part {
            Some(Part::Data(data)) => data,
            Some(Part::Start(_)) => {
                return Err(ServiceError::invalid(
                    ReasonCode::BundleMalformed,
                    format!("{file_name}: ImportStart was sent again after {received} bytes of data"),
                ));
            }
            None => continue,
        };
        let length = u64::try_from(data.len()).unwrap_or(u64::MAX);
        received = received.saturating_add(length);
        if received > max_bytes {
            return Err(too_large(&file_name, received, max_bytes));
        }
        if start.total_bytes != 0 && received > start.total_bytes {
            return Err(ServiceError::invalid(
                ReasonCode::BundleMalformed,
                format!(
                    "{file_name}: the upload is longer than the {} bytes that ImportStart declared; \
                     declare the file's size, or 0 when it is unknown",
                    start.total_bytes
                ),
            ));
        }
        writer
            .write_all(&data)
            .await
            .map_err(|error| spool_failure(spool, &file_name, &error))?;
    }
    writer
        .flush()
        .await
        .map_err(|error| spool_failure(spool, &file_name, &error))?;

    if start.total_bytes != 0 && received != start.total_bytes {
        return Err(ServiceError::invalid(
            ReasonCode::BundleMalformed,
            format!(
                "{file_name}: the upload ended after {received} bytes, but ImportStart declared {} bytes; send the \
                 whole file again",
                start.total_bytes
            ),
        ));
    }
    Ok(SpooledArchive {
        file_name,
        bytes: received,
        file,
    })
}

/// Returns the error of an archive over the size limit, as the bundle reader words it.
pub(crate) fn too_large(file_name: &str, actual: u64, limit: u64) -> ServiceError {
    let error = BundleError::TooLarge {
        archive: file_name.to_owned(),
        path: String::new(),
        measure: Measure::ArchiveBytes,
        actual,
        limit,
    };
    ServiceError::from_coded(&error)
}

fn spool_failure(spool: &SpoolDir, file_name: &str, error: &std::io::Error) -> ServiceError {
    ServiceError::Internal(format!(
        "cannot write the upload of {} to the spool directory {}: {error}",
        escape_for_log(file_name),
        spool.path().display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_deletes_leftovers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let incoming = dir.path().join(INCOMING_DIR);
        std::fs::create_dir_all(incoming.join("nested")).expect("create nested dir");
        std::fs::write(incoming.join("upload-left.tgz"), b"partial").expect("write leftover");
        std::fs::write(incoming.join("nested/file"), b"x").expect("write nested leftover");

        let spool = SpoolDir::open(dir.path()).expect("open spool");

        let left: Vec<_> = std::fs::read_dir(spool.path()).expect("list").collect();
        assert!(left.is_empty(), "leftovers remain: {left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn spool_file_private_and_deleted() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().expect("temp dir");
        let spool = SpoolDir::open(dir.path()).expect("open spool");
        let file = spool.create_file("upload-", ".tgz").expect("create spool file");
        let path = file.path().to_path_buf();
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");

        drop(file);
        assert!(!path.exists(), "{} still exists", path.display());
    }
}
