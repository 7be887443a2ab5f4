//! File helpers whose errors name the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::output::Failure;

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|error| Failure::io("read", path, &error))
}

/// Returns the name used for `path` in messages and in the bundle request: the file name when
/// there is one, else the path as given.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so a failed or
/// interrupted write never leaves a truncated bundle under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let Some(file_name) = path.file_name() else {
        return Err(Failure::usage(format!(
            "invalid output path {}: it does not name a file",
            path.display()
        )));
    };
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary: PathBuf = path.with_file_name(temporary_name);

    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(Failure::io("write", &temporary, &error));
    }
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(Failure::io("write", path, &error));
    }
    Ok(())
}

/// Returns `sha256:<hex>` of `bytes`.
pub fn sha256_prefixed(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
