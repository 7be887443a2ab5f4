//! File helpers whose errors name the file.
//!
//! Every input file must be a regular file (or a symbolic link to one), and is read only up to a
//! size limit, so `/dev/zero`, a FIFO or a device fails at once instead of blocking or filling
//! memory.

use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use stella_bundle::{BundleError, DEFAULT_MAX_ARCHIVE_BYTES, NEW_ARCHIVE};
use stella_verify::reason::{HasReasonCode, ReasonCode};

use super::output::Failure;

/// Maximum size of an input file, in bytes: the attestor's default archive limit (256 MiB). No
/// input of the CLI can be larger than the bundle archive it goes into, so a larger file fails
/// before it is read.
pub const MAX_INPUT_BYTES: u64 = DEFAULT_MAX_ARCHIVE_BYTES;

/// A failure to read an input file.
#[derive(Debug)]
pub enum ReadError {
    /// Opening, inspecting or reading the file failed.
    Io(std::io::Error),
    /// The path names a directory, FIFO, socket or device, described by `kind`.
    NotRegular { kind: &'static str },
    /// The file has more than `limit` bytes. `size` is its size, or `limit + 1` when it grew
    /// while being read.
    TooLarge { size: u64, limit: u64 },
}

impl ReadError {
    /// Returns true when the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(error) if error.kind() == std::io::ErrorKind::NotFound)
    }

    /// Converts the error into a failure that names `path`: exit 5 for an I/O error or a file
    /// that is not regular, and `ERR_BUNDLE_TOO_LARGE` (exit 1) for a file over the limit.
    pub fn into_failure(self, action: &str, path: &Path) -> Failure {
        match self {
            ReadError::Io(error) => Failure::io(action, path, &error),
            ReadError::NotRegular { kind } => Failure::other(format!(
                "cannot {action} {}: it is {kind}, not a regular file",
                path.display()
            )),
            ReadError::TooLarge { size, limit } => Failure::rejected(
                format!(
                    "{}: {size} bytes is over the limit of {limit} bytes for an input file",
                    path.display()
                ),
                ReasonCode::BundleTooLarge.as_str(),
            ),
        }
    }
}

/// Reads a whole input file of at most [`MAX_INPUT_BYTES`].
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    read_regular(path, MAX_INPUT_BYTES).map_err(|error| error.into_failure("read", path))
}

/// Reads a regular file of at most `limit` bytes. It reads `limit + 1` bytes at most, so a file
/// that grows while it is read is also rejected.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, metadata) = open_regular(path)?;
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(ReadError::TooLarge { size: read, limit });
    }
    Ok(bytes)
}

/// Opens a regular file for reading, with its metadata.
///
/// The type is checked before opening, because opening a FIFO blocks until a writer appears, and
/// again on the opened file, in case the path was replaced in between.
// NOTE: a path replaced with a FIFO between the two checks still blocks in `open`. Opening with
// O_NONBLOCK would close that window, but std has no portable flag for it.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let before = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !before.is_file() {
        return Err(ReadError::NotRegular {
            kind: describe_type(&before),
        });
    }
    let file = File::open(path).map_err(ReadError::Io)?;
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular {
            kind: describe_type(&metadata),
        });
    }
    Ok((file, metadata))
}

/// Names the type of a file that is not regular, as in "it is a FIFO". Only metadata from
/// `symlink_metadata` can describe a symbolic link.
pub fn describe_type(metadata: &Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "a directory";
    }
    if file_type.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
    }
    "a special file"
}

/// Returns the name used for `path` in messages and in the bundle request: the file name when
/// there is one, else the path as given.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Builds the failure of a pack command from a bundle error. The bundle crate names a bundle
/// under construction [`NEW_ARCHIVE`], which is replaced with the output path `out`.
pub fn pack_failure(context: &str, out: &Path, error: &BundleError) -> Failure {
    let message = error.to_string();
    let named = match message.strip_prefix(NEW_ARCHIVE) {
        Some(rest) if error.archive() == NEW_ARCHIVE => format!("{}{rest}", out.display()),
        _ => message,
    };
    Failure::rejected(format!("{context}: {named}"), error.reason_code().as_str())
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a failed or
/// interrupted write never leaves a truncated bundle under the final name. Errors name `path`,
/// and name the temporary file only when it already exists.
///
/// An existing `path` must be a regular file, checked without following symbolic links before
/// the temporary file is written and again right before the rename. Renaming over a symbolic
/// link, FIFO, device or directory would replace it, which for `/dev/null` run as root replaces
/// the system's device node. Such a path fails with exit 5.
// NOTE: a path replaced with a special file between the second check and the rename is still
// replaced. Closing that window needs renameat2(RENAME_NOREPLACE) or a directory file
// descriptor, which std does not offer.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let Some(file_name) = path.file_name() else {
        return Err(Failure::usage(format!(
            "invalid output path {}: it does not name a file",
            path.display()
        )));
    };
    check_output_target(path)?;

    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary: PathBuf = path.with_file_name(temporary_name);

    // create_new refuses an existing temporary path, so a symbolic link planted there is never
    // followed.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    if let Err(error) = written {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(Failure::other(format!(
                "cannot write {}: the temporary file {} already exists; remove it and retry",
                path.display(),
                temporary.display()
            )));
        }
        let _ = std::fs::remove_file(&temporary);
        return Err(Failure::io("write", path, &error));
    }
    if let Err(failure) = check_output_target(path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(failure);
    }
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(Failure::io("write", path, &error));
    }
    Ok(())
}

/// Checks that `path` either does not exist or is a regular file, without following a symbolic
/// link. Fails with exit 5 naming the path and what it is.
fn check_output_target(path: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_file() => Ok(()),
        Ok(metadata) => Err(Failure::other(format!(
            "cannot write {}: it is {}, not a regular file; choose another output path",
            path.display(),
            describe_type(&metadata)
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Failure::io("write", path, &error)),
    }
}

/// Returns `sha256:<hex>` of `bytes`.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_regular_rejects_oversized_file() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("big.tgz");
        std::fs::write(&path, [7_u8; 11]).expect("write file");
        let error = read_regular(&path, 10).expect_err("over the limit");
        assert!(
            matches!(
                error,
                ReadError::TooLarge {
                    size: 11,
                    limit: 10
                }
            ),
            "{error:?}"
        );
        let failure = error.into_failure("read", &path);
        assert_eq!(failure.reason_code.as_deref(), Some("ERR_BUNDLE_TOO_LARGE"));
        assert!(failure.message.contains("big.tgz"), "{}", failure.message);
        assert_eq!(read_regular(&path, 11).expect("at the limit").len(), 11);
    }

    #[test]
    fn read_regular_rejects_directory() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let error = read_regular(temp.path(), 10).expect_err("a directory");
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: "a directory"
                }
            ),
            "{error:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn read_regular_rejects_char_device() {
        let error = read_regular(Path::new("/dev/zero"), 10).expect_err("a device");
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: "a character device"
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn write_error_names_real_path() {
        let path = Path::new("/nonexistent-stella-dir/out.tgz");
        let failure = write_atomically(path, b"x").expect_err("missing directory");
        assert!(
            failure
                .message
                .starts_with("cannot write /nonexistent-stella-dir/out.tgz: "),
            "{}",
            failure.message
        );
        assert!(!failure.message.contains(".tmp-"), "{}", failure.message);
    }

    /// Asserts that writing to `path` fails with exit 5, names the path and `kind`, and leaves no
    /// temporary file in `dir`.
    fn assert_output_rejected(dir: &Path, path: &Path, kind: &str) {
        let failure = write_atomically(path, b"bundle").expect_err(kind);
        assert_eq!(failure.exit, super::super::output::Exit::Other, "{kind}");
        assert_eq!(
            failure.message,
            format!(
                "cannot write {}: it is {kind}, not a regular file; choose another output path",
                path.display()
            )
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .expect("list directory")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{kind}: {leftovers:?}");
    }

    #[test]
    fn write_replaces_regular_file() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("out.tgz");
        std::fs::write(&path, b"old").expect("write file");
        write_atomically(&path, b"new").expect("regular file is replaced");
        assert_eq!(std::fs::read(&path).expect("read back"), b"new");
    }

    #[test]
    fn write_rejects_directory() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("out.tgz");
        std::fs::create_dir(&path).expect("create directory");
        assert_output_rejected(temp.path(), &path, "a directory");
        assert!(path.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn write_rejects_symbolic_link() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let target = temp.path().join("target.txt");
        std::fs::write(&target, b"keep").expect("write target");
        let path = temp.path().join("out.tgz");
        std::os::unix::fs::symlink(&target, &path).expect("create symbolic link");
        assert_output_rejected(temp.path(), &path, "a symbolic link");
        let metadata = std::fs::symlink_metadata(&path).expect("link still there");
        assert!(metadata.file_type().is_symlink());
        assert_eq!(std::fs::read(&target).expect("read target"), b"keep");
    }

    #[cfg(unix)]
    #[test]
    fn write_rejects_dangling_symbolic_link() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("out.tgz");
        std::os::unix::fs::symlink(temp.path().join("missing"), &path).expect("create link");
        assert_output_rejected(temp.path(), &path, "a symbolic link");
        assert!(!temp.path().join("missing").exists());
    }

    #[cfg(unix)]
    #[test]
    fn write_rejects_fifo() {
        use std::os::unix::fs::FileTypeExt;
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("out.tgz");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo failed");
        assert_output_rejected(temp.path(), &path, "a FIFO (named pipe)");
        let metadata = std::fs::symlink_metadata(&path).expect("FIFO still there");
        assert!(metadata.file_type().is_fifo());
    }

    /// Creates a character device node (major 1, minor 3, as /dev/null) inside a temporary
    /// directory. Only root can, so the test skips otherwise.
    #[cfg(unix)]
    #[test]
    fn write_rejects_char_device() {
        use std::os::unix::fs::FileTypeExt;
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("out.tgz");
        let created = std::process::Command::new("mknod")
            .arg(&path)
            .args(["c", "1", "3"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !created {
            eprintln!("skipping write_rejects_char_device: mknod needs root");
            return;
        }
        assert_output_rejected(temp.path(), &path, "a character device");
        let metadata = std::fs::symlink_metadata(&path).expect("device still there");
        assert!(metadata.file_type().is_char_device());
        std::fs::remove_file(&path).expect("remove device node");
    }

    #[cfg(unix)]
    #[test]
    fn write_ignores_planted_temporary_link() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let target = temp.path().join("target.txt");
        std::fs::write(&target, b"keep").expect("write target");
        let path = temp.path().join("out.tgz");
        let temporary = temp
            .path()
            .join(format!(".out.tgz.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&target, &temporary).expect("plant link");
        let failure = write_atomically(&path, b"bundle").expect_err("temporary path taken");
        assert_eq!(failure.exit, super::super::output::Exit::Other);
        assert!(
            failure
                .message
                .starts_with(&format!("cannot write {}: ", path.display())),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("already exists"),
            "{}",
            failure.message
        );
        assert_eq!(std::fs::read(&target).expect("read target"), b"keep");
        assert!(!path.exists());
    }

    #[test]
    fn pack_failure_names_output() {
        let error = BundleError::Malformed {
            archive: NEW_ARCHIVE.to_owned(),
            path: "manifest.json".to_owned(),
            why: "bad".to_owned(),
        };
        let failure = pack_failure("cannot pack", Path::new("out/t.tgz"), &error);
        assert_eq!(
            failure.message,
            "cannot pack: out/t.tgz: manifest.json: bad"
        );
        assert_eq!(failure.reason_code.as_deref(), Some("ERR_BUNDLE_MALFORMED"));
    }
}
