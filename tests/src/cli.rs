//! Runs the `stella` binary as an operator would, with a bounded wait, and reads its output.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::access::ClientTls;
use crate::binaries;

/// Exit codes of `stella`, as documented in `docs/cli.md`.
pub mod exit {
    /// Success, or the gate decision `allow`.
    pub const OK: i32 = 0;
    /// Verification failure, rejected bundle or the gate decision `deny`.
    pub const FAILED: i32 = 1;
    /// Usage error.
    pub const USAGE: i32 = 2;
    /// The gate decision `pending`.
    pub const PENDING: i32 = 3;
    /// A service is unreachable.
    pub const UNREACHABLE: i32 = 4;
    /// Any other error (I/O, internal).
    pub const OTHER: i32 = 5;
    /// The gate decision `allow` through a break-glass override, never a standard verification.
    pub const BREAK_GLASS: i32 = 6;
}

/// Maximum time one `stella` command may run before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Service URL for commands that must not call a service: the discard port on loopback, where
/// nothing of this project listens, so a stray call fails fast and reaches no other host.
pub const NO_SERVICE_URL: &str = "http://127.0.0.1:9";

/// The `stella` binary, pointed at one attestor and one gate.
#[derive(Debug, Clone)]
pub struct Stella {
    binary: PathBuf,
    attestor_url: String,
    gate_url: String,
    working_dir: PathBuf,
    timeout: Duration,
    /// Environment changes for the command: `Some` sets a variable, `None` removes it.
    env: Vec<(OsString, Option<OsString>)>,
    /// Program and arguments that run `stella` (such as `strace -f`), or empty to run it directly.
    wrapper: Vec<OsString>,
    /// TLS settings passed as the global options `--tls-ca`, `--tls-cert` and `--tls-key`.
    tls: Option<ClientTls>,
}

impl Stella {
    /// Returns a runner for the `stella` binary next to the test executable.
    ///
    /// The service URLs travel in `STELLA_ATTESTOR_URL` and `STELLA_GATE_URL`, the way an operator
    /// configures a shell once. Commands run in `working_dir`.
    pub fn new(attestor_url: &str, gate_url: &str, working_dir: &Path) -> Stella {
        Stella {
            binary: binaries::locate(binaries::STELLA),
            attestor_url: attestor_url.to_owned(),
            gate_url: gate_url.to_owned(),
            working_dir: working_dir.to_path_buf(),
            timeout: COMMAND_TIMEOUT,
            env: Vec::new(),
            wrapper: Vec::new(),
            tls: None,
        }
    }

    /// Returns a runner for offline commands: both service URLs are [`NO_SERVICE_URL`].
    pub fn offline(working_dir: &Path) -> Stella {
        Stella::new(NO_SERVICE_URL, NO_SERVICE_URL, working_dir)
    }

    /// Sets an environment variable for every command of this runner.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Stella {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable for every command of this runner.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Stella {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Passes `token` to every command in the environment variable `STELLA_TOKEN`.
    pub fn token(self, token: &str) -> Stella {
        self.env("STELLA_TOKEN", token)
    }

    /// Runs every command without a token: `STELLA_TOKEN` is removed from its environment.
    pub fn without_token(self) -> Stella {
        self.env_remove("STELLA_TOKEN")
    }

    /// Passes TLS settings to every command as global options before the command name.
    pub fn tls(mut self, tls: ClientTls) -> Stella {
        self.tls = Some(tls);
        self
    }

    /// Drops the TLS settings, so commands get no `--tls-*` option.
    pub fn without_tls(mut self) -> Stella {
        self.tls = None;
        self
    }

    /// Returns the TLS settings that every command gets, if any.
    pub fn tls_settings(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// Returns the attestor URL that commands use.
    pub fn attestor_url(&self) -> &str {
        &self.attestor_url
    }

    /// Returns the gate URL that commands use.
    pub fn gate_url(&self) -> &str {
        &self.gate_url
    }

    /// Runs `stella` through `program` and its arguments, as `program ARGS... stella ...`.
    pub fn wrapped<I, S>(mut self, program_and_args: I) -> Stella
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wrapper = program_and_args
            .into_iter()
            .map(|arg| arg.as_ref().to_owned())
            .collect();
        self
    }

    /// Runs `stella ARGS` and returns its exit code and output.
    ///
    /// # Panics
    ///
    /// Panics when the command cannot start, is killed by a signal, or runs longer than
    /// [`COMMAND_TIMEOUT`].
    pub fn run<I, S>(&self, args: I) -> CliOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        // Global options may come before the command name, which keeps the TLS options apart
        // from the command's own arguments.
        let mut all_args: Vec<String> = self
            .tls
            .as_ref()
            .map(ClientTls::cli_args)
            .unwrap_or_default();
        all_args.extend(
            args.into_iter()
                .map(|arg| arg.as_ref().to_string_lossy().into_owned()),
        );
        let args = all_args;
        let mut command_line = format!("stella {}", args.join(" "));

        let mut command = match self.wrapper.split_first() {
            None => Command::new(&self.binary),
            Some((program, wrapper_args)) => {
                let prefix: Vec<String> = self
                    .wrapper
                    .iter()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect();
                command_line = format!("{} {command_line}", prefix.join(" "));
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(&self.binary);
                command
            }
        };
        command
            .args(&args)
            .env("STELLA_ATTESTOR_URL", &self.attestor_url)
            .env("STELLA_GATE_URL", &self.gate_url)
            .current_dir(&self.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }

        let started = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => panic!("cannot run `{command_line}`: {err}"),
        };
        let stdout = read_in_background(child.stdout.take());
        let stderr = read_in_background(child.stderr.take());

        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < self.timeout => {
                    thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`{command_line}` did not finish within {:?}\nstdout:\n{}\nstderr:\n{}",
                        self.timeout,
                        join_reader(stdout),
                        join_reader(stderr)
                    );
                }
                Err(err) => panic!("cannot poll `{command_line}`: {err}"),
            }
        };
        let elapsed = started.elapsed();
        let stdout = join_reader(stdout);
        let stderr = join_reader(stderr);
        let Some(code) = status.code() else {
            panic!(
                "`{command_line}` was killed by a signal ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
        };
        CliOutput {
            command_line,
            code,
            stdout,
            stderr,
            elapsed,
        }
    }

    /// Runs `stella --output json ARGS`.
    pub fn run_json<I, S>(&self, args: I) -> CliOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<String> = vec!["--output".to_owned(), "json".to_owned()];
        all.extend(
            args.into_iter()
                .map(|arg| arg.as_ref().to_string_lossy().into_owned()),
        );
        self.run(all)
    }
}

/// Reads a child's pipe to the end on its own thread, so a full pipe never blocks the child.
pub(crate) fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> Option<thread::JoinHandle<String>> {
    pipe.map(|mut pipe| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

/// Returns what [`read_in_background`] read, or an empty string without a pipe.
pub(crate) fn join_reader(handle: Option<thread::JoinHandle<String>>) -> String {
    handle
        .map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| "(reader panicked)".to_owned())
        })
        .unwrap_or_default()
}

/// Exit code and output of one `stella` command.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command as typed, for messages.
    pub command_line: String,
    /// The process exit code.
    pub code: i32,
    /// Everything the command wrote to stdout.
    pub stdout: String,
    /// Everything the command wrote to stderr.
    pub stderr: String,
    /// Wall time of the command.
    pub elapsed: Duration,
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command_line)?;
        writeln!(f, "exit code {} after {:?}", self.code, self.elapsed)?;
        writeln!(f, "stdout:\n{}", self.stdout.trim_end())?;
        write!(f, "stderr:\n{}", self.stderr.trim_end())
    }
}

impl CliOutput {
    /// Asserts the exit code and returns `self` for chaining.
    ///
    /// # Panics
    ///
    /// Panics with the whole command output when the code differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &CliOutput {
        assert_eq!(
            self.code, expected,
            "unexpected exit code (expected {expected})\n{self}"
        );
        self
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &CliOutput {
        self.assert_code(exit::OK)
    }

    /// Parses the JSON object that `--output json` printed on stdout.
    ///
    /// With `--output json` every command prints exactly one JSON object on stdout: its result,
    /// or `{"error": .., "reason_code": ..}` when it fails.
    ///
    /// # Panics
    ///
    /// Panics with the whole command output when stdout is not one JSON object.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str::<Value>(self.stdout.trim()) {
            Ok(value @ Value::Object(_)) => value,
            Ok(other) => panic!("stdout is JSON but not an object: {other}\n{self}"),
            Err(err) => panic!("stdout is not one JSON object: {err}\n{self}"),
        }
    }

    /// Returns the string at `key` of the JSON output.
    ///
    /// # Panics
    ///
    /// Panics with the whole output when the key is absent or not a string.
    #[track_caller]
    pub fn str_field(&self, key: &str) -> String {
        match self.json().get(key) {
            Some(Value::String(text)) => text.clone(),
            other => panic!("JSON key `{key}` is {other:?}, expected a string\n{self}"),
        }
    }

    /// Returns the boolean at `key` of the JSON output.
    #[track_caller]
    pub fn bool_field(&self, key: &str) -> bool {
        match self.json().get(key) {
            Some(Value::Bool(flag)) => *flag,
            other => panic!("JSON key `{key}` is {other:?}, expected a boolean\n{self}"),
        }
    }

    /// Returns the `reason_codes` array of the JSON output.
    #[track_caller]
    pub fn reason_codes(&self) -> Vec<String> {
        string_array(&self.json(), "reason_codes", self)
    }

    /// Returns the `reason_code` of a failed command's JSON output.
    #[track_caller]
    pub fn error_reason_code(&self) -> String {
        self.str_field("reason_code")
    }

    /// Returns the `error` message of a failed command's JSON output.
    #[track_caller]
    pub fn error_message(&self) -> String {
        self.str_field("error")
    }

    /// Asserts that the command failed with exit code 1 and reason code `code`, and returns the
    /// error message.
    #[track_caller]
    pub fn assert_rejected(&self, code: &str) -> String {
        self.assert_code(exit::FAILED);
        assert_eq!(
            self.error_reason_code(),
            code,
            "unexpected reason code\n{self}"
        );
        self.error_message()
    }
}

/// Returns the strings of the array at `key`, panicking with the command output otherwise.
#[track_caller]
pub fn string_array(value: &Value, key: &str, context: &CliOutput) -> Vec<String> {
    let Some(Value::Array(items)) = value.get(key) else {
        panic!(
            "JSON key `{key}` is {:?}, expected an array\n{context}",
            value.get(key)
        );
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(text) => text.clone(),
            other => panic!("`{key}` holds {other}, expected strings\n{context}"),
        })
        .collect()
}
