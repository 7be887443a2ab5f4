//! Computes a digest of this crate's sources for `report::REPORT_VERIFIER_VERSION`, so a service
//! that stores reports verifies again after any change to the verifier, without relying on a
//! version bump by hand. The digest is SHA-256 over every file under `src/` in path order, each
//! framed by its relative path and its length.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    collect(Path::new("src"), &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        let name = path.to_string_lossy().replace('\\', "/");
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
    }
    let digest = hex::encode(hasher.finalize());
    println!("cargo:rustc-env=STELLA_VERIFY_SOURCE_DIGEST={digest}");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
