//! Locates the workspace binaries next to the running test executable.

use std::path::PathBuf;

/// The attestor service binary.
pub const ATTESTOR: &str = "stella-attestor";
/// The gate service binary.
pub const GATE: &str = "stella-gate";
/// The operator command-line tool.
pub const STELLA: &str = "stella";
/// The forger of large tlog-tiles logs (crate `stella-log-forge`).
pub const LOG_FORGE: &str = "stella-log-forge";

/// Returns the path of binary `name` in the target directory of the running test executable.
///
/// Integration tests run from `target/<profile>/deps/`, and the workspace binaries are built into
/// `target/<profile>/`.
///
/// # Panics
///
/// Panics when the binary is missing, telling the reader to build the workspace binaries first,
/// because `cargo test -p stella-e2e` does not build the binaries of other packages.
pub fn locate(name: &str) -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => panic!("cannot find the path of the running test executable: {err}"),
    };
    let Some(mut dir) = exe.parent().map(PathBuf::from) else {
        panic!("test executable {} has no parent directory", exe.display());
    };
    if dir.file_name().is_some_and(|last| last == "deps") {
        dir.pop();
    }

    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: run `cargo build --workspace --bins` (with the same \
         profile as the tests) before running the end-to-end suite",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "run `cargo build --workspace --bins`")]
    fn locate_missing_binary_explains() {
        locate("stella-no-such-binary");
    }
}
