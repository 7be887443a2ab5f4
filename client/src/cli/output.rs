//! Command results, exit codes and the two output formats.
//!
//! With `--output json` a command prints exactly one JSON object on stdout: its result, or
//! `{"error": message, "reason_code": CODE}` on failure (`reason_code` is `null` when no catalog
//! code applies). Human-readable messages and errors always go to stderr.

use std::io::Write;

use serde_json::{Map, Value, json};

use crate::ClientError;

/// Process exit codes of `stella`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success, or the gate allowed the promotion.
    Success = 0,
    /// Verification failed, a bundle or request was rejected, or the gate denied the promotion.
    Failure = 1,
    /// Invalid command-line usage.
    Usage = 2,
    /// The gate decision is pending.
    Pending = 3,
    /// A service could not be reached, did not respond in time or dropped the connection.
    Unreachable = 4,
    /// Any other error: file I/O, an invalid response, an internal error.
    Other = 5,
    /// The gate allowed the promotion only because of a break-glass override, which is not a
    /// standard verification.
    BreakGlass = 6,
}

impl Exit {
    /// Returns the numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Pending => 3,
            Exit::Unreachable => 4,
            Exit::Other => 5,
            Exit::BreakGlass => 6,
        }
    }
}

/// The output format selected with `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Short human-readable lines.
    Text,
    /// One JSON object on stdout.
    Json,
}

/// A completed command: its exit code, its JSON object and its text lines.
///
/// A completed command can still exit non-zero: a denied promotion or a failed verification is
/// a result, not an error.
#[derive(Debug)]
pub struct Report {
    pub exit: Exit,
    pub json: Map<String, Value>,
    pub text: Vec<String>,
    /// Text lines for stderr, such as the reason codes of a failed verification. Text mode only.
    pub stderr: Vec<String>,
}

impl Report {
    /// Starts a report that exits with `exit`.
    pub fn new(exit: Exit) -> Report {
        Report {
            exit,
            json: Map::new(),
            text: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Adds a JSON key.
    pub fn field(&mut self, key: &str, value: impl Into<Value>) -> &mut Report {
        self.json.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a text line.
    pub fn line(&mut self, text: impl Into<String>) -> &mut Report {
        self.text.push(text.into());
        self
    }

    /// Adds a text line for stderr.
    pub fn error_line(&mut self, text: impl Into<String>) -> &mut Report {
        self.stderr.push(text.into());
        self
    }
}

/// A command that could not complete.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// A catalog reason code, or a code the service sent verbatim.
    pub reason_code: Option<String>,
}

impl Failure {
    /// Builds a usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
            reason_code: None,
        }
    }

    /// Builds a rejected input or request with its reason code (exit 1).
    pub fn rejected(message: impl Into<String>, reason_code: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Failure,
            message: message.into(),
            reason_code: Some(reason_code.into()),
        }
    }

    /// Builds an I/O, internal or protocol error (exit 5).
    pub fn other(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Other,
            message: message.into(),
            reason_code: None,
        }
    }

    /// Builds an I/O error on `path`, such as `cannot read trusted_root.json: No such file or directory`.
    pub fn io(action: &str, path: &std::path::Path, error: &std::io::Error) -> Failure {
        Failure::other(format!("cannot {action} {}: {error}", path.display()))
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        let exit = match &error {
            ClientError::InvalidUrl { .. } => Exit::Usage,
            ClientError::Unreachable { .. } | ClientError::ConnectionLost { .. } => {
                Exit::Unreachable
            }
            ClientError::Rejected { .. } => Exit::Failure,
            ClientError::Failed { .. } => Exit::Other,
        };
        Failure {
            exit,
            reason_code: error.reason_code(),
            message: error.to_string(),
        }
    }
}

/// Prints a command's outcome in `format` and returns its exit code.
pub fn emit(format: OutputFormat, outcome: Result<Report, Failure>) -> Exit {
    match outcome {
        Ok(report) => {
            match format {
                OutputFormat::Json => print_json(&Value::Object(report.json)),
                OutputFormat::Text => {
                    let mut stdout = std::io::stdout().lock();
                    for line in &report.text {
                        // A closed stdout (such as `stella ... | head`) must not turn into a panic.
                        let _ = writeln!(stdout, "{line}");
                    }
                    let mut stderr = std::io::stderr().lock();
                    for line in &report.stderr {
                        let _ = writeln!(stderr, "{line}");
                    }
                }
            }
            report.exit
        }
        Err(failure) => {
            print_failure(format, &failure);
            failure.exit
        }
    }
}

/// Prints a failure: the message and reason code on stderr, plus the JSON error object on stdout
/// in JSON mode.
pub fn print_failure(format: OutputFormat, failure: &Failure) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", failure.message);
    if let Some(code) = &failure.reason_code {
        let _ = writeln!(stderr, "reason code: {code}");
    }
    if failure.exit == Exit::Usage {
        let _ = writeln!(stderr, "\nFor more information, try '--help'.");
    }
    if format == OutputFormat::Json {
        print_json(&json!({
            "error": failure.message,
            "reason_code": failure.reason_code,
        }));
    }
}

fn print_json(value: &Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
}

/// Returns the strings sorted and deduplicated, as every `reason_codes` list is printed.
pub fn sorted_codes(codes: &[String]) -> Vec<String> {
    let mut sorted = codes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
}

/// Formats reason codes for a text line, `-` when there are none.
pub fn codes_text(codes: &[String]) -> String {
    if codes.is_empty() {
        "-".to_owned()
    } else {
        codes.join(", ")
    }
}
