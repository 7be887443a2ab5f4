//! Large logs for the suites, written by the `stella-log-forge` binary, and the forge's entries.
//!
//! Two forged logs with the same origin and seed share their key and their first entries, so the
//! checkpoint of the smaller one is an earlier checkpoint of the larger one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::binaries;
use crate::env::read_file;

/// Maximum time one run of `stella-log-forge` may take. Forging and packing a 2^20-entry log
/// took 11.5 s in a debug build on a 2-core machine (docs/benchmarks.md), so this leaves room
/// for a loaded machine.
pub const FORGE_TIMEOUT: Duration = Duration::from_secs(240);

/// Size in bytes of every forged entry.
pub const ENTRY_SIZE: usize = 64;

/// One log written by `stella-log-forge --bundle`.
#[derive(Debug, Clone)]
pub struct ForgedLog {
    /// The tlog-tiles directory: `checkpoint`, `vkey` and `tile/...`.
    pub dir: PathBuf,
    /// The tile bundle with every tile, the checkpoint and three tlog-proofs.
    pub bundle: PathBuf,
    /// The note verifier key of the checkpoint, as `stella trust pack --note-key` takes it.
    pub vkey: String,
    /// Number of entries.
    pub entries: u64,
}

/// Runs `stella-log-forge` for a log of `entries` entries with `origin` and `seed_hex` (the
/// forge's `--seed`), writing the directory `<parent>/<label>` and the bundle
/// `<parent>/<label>.tgz`.
///
/// # Panics
///
/// Panics with the forge's output when it fails or runs longer than [`FORGE_TIMEOUT`].
pub fn forge_log(parent: &Path, label: &str, entries: u64, origin: &str, seed_hex: &str) -> ForgedLog {
    let dir = parent.join(label);
    let bundle = parent.join(format!("{label}.tgz"));
    let mut command = Command::new(binaries::locate(binaries::LOG_FORGE));
    command
        .arg("--entries")
        .arg(entries.to_string())
        .arg("--out")
        .arg(&dir)
        .arg("--origin")
        .arg(origin)
        .arg("--seed")
        .arg(seed_hex)
        .arg("--bundle")
        .arg(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let command_line = format!(
        "stella-log-forge --entries {entries} --out {} --origin {origin} --seed {seed_hex} --bundle {}",
        dir.display(),
        bundle.display()
    );

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => panic!("cannot run `{command_line}`: {err}"),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < FORGE_TIMEOUT => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{command_line}` did not finish within {FORGE_TIMEOUT:?}");
            }
            Err(err) => panic!("cannot poll `{command_line}`: {err}"),
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(status.success(), "`{command_line}` failed with {status}:\n{stderr}");

    let mut vkey_file = dir.as_os_str().to_owned();
    vkey_file.push(".vkey");
    let vkey = String::from_utf8_lossy(&read_file(Path::new(&vkey_file)))
        .trim()
        .to_owned();
    ForgedLog {
        dir,
        bundle,
        vkey,
        entries,
    }
}

/// Returns entry `index` of a log forged with `--seed seed_hex`, by the forge's rule: with
/// `seed = SHA-256("stella-log-forge seed\n" || seed bytes)`, the entry is
/// `SHA-256(seed || index || 0) || SHA-256(seed || index || 1)`, `index` as a big-endian u64.
///
/// # Panics
///
/// Panics when `seed_hex` is not hexadecimal.
pub fn forged_entry(seed_hex: &str, index: u64) -> [u8; ENTRY_SIZE] {
    let seed_bytes = match hex::decode(seed_hex) {
        Ok(bytes) => bytes,
        Err(err) => panic!("seed {seed_hex:?} is not hexadecimal: {err}"),
    };
    let mut hasher = Sha256::new();
    hasher.update(b"stella-log-forge seed\n");
    hasher.update(&seed_bytes);
    let seed = hasher.finalize();

    let mut entry = [0u8; ENTRY_SIZE];
    let (first, second) = entry.split_at_mut(ENTRY_SIZE / 2);
    for (half, part) in [(0u8, first), (1u8, second)] {
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update(index.to_be_bytes());
        hasher.update([half]);
        part.copy_from_slice(&hasher.finalize());
    }
    entry
}

/// Splits an entry bundle (`tile/entries/...`): each entry is prefixed by its length as a
/// big-endian u16.
///
/// # Panics
///
/// Panics with the path when the bundle is truncated.
pub fn read_entry_bundle(path: &Path) -> Vec<Vec<u8>> {
    let bytes = read_file(path);
    let mut entries = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let [high, low, tail @ ..] = rest else {
            panic!("truncated length prefix in {}", path.display());
        };
        let length = usize::from(u16::from_be_bytes([*high, *low]));
        assert!(tail.len() >= length, "truncated entry in {}", path.display());
        entries.push(tail[..length].to_vec());
        rest = &tail[length..];
    }
    entries
}
