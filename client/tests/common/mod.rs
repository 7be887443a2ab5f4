//! Helpers shared by the integration tests: running the built `stella` binary and locating the
//! shared test vectors.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Runs `stella` with `args`, with the service URL variables removed from the environment.
pub fn stella(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stella"));
    command
        .args(args)
        .env_remove("STELLA_ATTESTOR_URL")
        .env_remove("STELLA_GATE_URL");
    finish(command.output().expect("run the stella binary"))
}

/// Runs `stella` with `args` and extra environment variables.
pub fn stella_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stella"));
    command
        .args(args)
        .env_remove("STELLA_ATTESTOR_URL")
        .env_remove("STELLA_GATE_URL");
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

/// Returns the shared vectors folder, or `None` (after saying so) when it is absent.
pub fn vectors(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping: test vectors not found at {}", path.display());
        None
    }
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
