//! Helpers shared by the integration tests: running the built `stella` binary and locating the
//! shared test vectors. The submodules start an in-process attestor (`attestor.rs`), hold the
//! development Authority that signs every test token (`authority.rs`) and write trust sets and
//! tile bundles for import (`bundles.rs`).
//!
//! Every `stella` run gets the default token ([`authority::default_token`]: tenant `tenant-a`,
//! every scope) in `STELLA_TOKEN`, and no TLS setting from the environment. A test drops the
//! token by passing `("STELLA_TOKEN", "")` to [`stella_with_env`]: `stella` treats an empty
//! variable as unset.
#![allow(dead_code)]

pub mod attestor;
pub mod authority;
pub mod bundles;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variables of `stella` that a test must set itself, never inherit.
const CLEARED_ENV: [&str; 5] = [
    "STELLA_ATTESTOR_URL",
    "STELLA_GATE_URL",
    "STELLA_TLS_CA",
    "STELLA_TLS_CERT",
    "STELLA_TLS_KEY",
];

/// Returns a `stella` command with `args`, the default token and a cleared environment.
fn stella_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stella"));
    command
        .args(args)
        .env("STELLA_TOKEN", authority::default_token());
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
}

/// Origin of the 15-entry log that Tessera's POSIX driver wrote (`vectors/tessera-log`).
pub const TESSERA_ORIGIN: &str = "example.com/log/testdata";

/// Note verifier key of the Tessera log.
pub const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// Digest of the conformance suite's `a.txt`, the subject of its DSSE bundles.
pub const A_TXT_DIGEST: &str =
    "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// The outcome of one `stella` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Parses stdout as exactly one JSON object.
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let value: serde_json::Value =
            serde_json::from_str(self.stdout.trim_end()).unwrap_or_else(|error| {
                panic!("stdout is not one JSON value ({error}): {:?}", self.stdout)
            });
        match value {
            serde_json::Value::Object(object) => object,
            other => panic!("stdout is JSON but not an object: {other}"),
        }
    }
}

/// Runs `stella` with `args` and the default token, with the service URL and TLS variables
/// removed from the environment.
pub fn stella(args: &[&str]) -> Run {
    let mut command = stella_command(args);
    finish(command.output().expect("run the stella binary"))
}

/// Runs `stella` with `args` and extra environment variables, which may replace the token.
pub fn stella_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = stella_command(args);
    for (key, value) in env {
        command.env(key, value);
    }
    finish(command.output().expect("run the stella binary"))
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("stella exited without a code"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Returns true when the environment variable `CI` is set to a value other than empty, `0` or
/// `false`. CI services set `CI=true`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| {
        !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
    })
}

/// Returns the shared vectors folder, or `None` (after saying so) when it is absent. In CI, an
/// absent folder fails the test instead, so a run without vectors cannot pass.
pub fn vectors(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "test vectors not found at {}, and CI is set, so the test fails instead of skipping",
        path.display()
    );
    eprintln!("skipping: test vectors not found at {}", path.display());
    None
}

/// Returns the production Sigstore trusted root among the vectors, or `None` as [`vectors`] does.
pub fn production_root() -> Option<PathBuf> {
    vectors("sigstore-trust-roots/production.trusted_root.json")
}

/// Returns the string field `key` of `object`, and fails the test when it is absent or not a
/// string.
pub fn string_at<'a>(object: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    object
        .get(key)
        .and_then(|value| value.as_str())
        .unwrap_or_else(|| panic!("no string {key:?} in {object:?}"))
}

/// Creates a FIFO (named pipe) at `path` with `mkfifo`.
pub fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Runs `stella --output json --attestor URL rekor verify --offline` for the evidence bundle
/// [`A_TXT_DIGEST`].
pub fn rekor_verify_json(attestor_url: &str) -> Run {
    stella(&[
        "--output",
        "json",
        "--attestor",
        attestor_url,
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        A_TXT_DIGEST,
    ])
}

/// Returns a loopback URL on which nothing listens: the port was just bound and released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Path of a file as a `&str`, for command lines.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Starts a loopback server that completes the HTTP/2 handshake of every connection, then closes
/// the connection as soon as the client sends the headers of a call. Returns its URL.
pub fn dropping_server() -> String {
    use std::io::{Read, Write};

    /// HTTP/2 frame types (RFC 9113 section 6).
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    /// The client connection preface (RFC 9113 section 3.4).
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut preface = [0_u8; 24];
                if stream.read_exact(&mut preface).is_err() || preface != PREFACE {
                    return;
                }
                // An empty SETTINGS frame on stream 0: the server's part of the handshake.
                let _ = stream.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
                loop {
                    let mut header = [0_u8; 9];
                    if stream.read_exact(&mut header).is_err() {
                        return;
                    }
                    let length = (usize::from(header[0]) << 16)
                        | (usize::from(header[1]) << 8)
                        | usize::from(header[2]);
                    let mut payload = vec![0_u8; length];
                    if stream.read_exact(&mut payload).is_err() {
                        return;
                    }
                    match header[3] {
                        // Acknowledge the client's settings (flag 0x1 is ACK).
                        SETTINGS if header[4] & 0x1 == 0 => {
                            let _ = stream.write_all(&[0, 0, 0, SETTINGS, 0x1, 0, 0, 0, 0]);
                        }
                        HEADERS => {
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    url
}

/// Runs `stella` with `args` and fails the test when it has not exited within `limit`, so a
/// command that blocks (on a FIFO, say) fails instead of hanging the suite.
pub fn stella_within(args: &[&str], limit: std::time::Duration) -> Run {
    use std::process::Stdio;

    let mut child = stella_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stella binary");
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("poll the stella process").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stella {args:?} did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    finish(
        child
            .wait_with_output()
            .expect("collect the output of stella"),
    )
}
