//! The `stella` configuration file and the settings that may also come from the environment.
//!
//! `stella` reads one TOML file, the first of:
//!
//! 1. the file named by `STELLA_CONFIG`, which must exist;
//! 2. `$XDG_CONFIG_HOME/stella/config.toml`, when `XDG_CONFIG_HOME` is an absolute path;
//! 3. `$HOME/.config/stella/config.toml`.
//!
//! A missing file at 2 or 3 means that nothing is configured. The file has one key today,
//! `sigstore_trust_roots_dir`: the directory that contains `production.trusted_root.json` and
//! `staging.trusted_root.json` for `stella verify-bundle`. A relative path in the file is relative
//! to the file's directory. `STELLA_SIGSTORE_TRUST_ROOTS_DIR` overrides the file. An environment
//! variable set to the empty string counts as unset.
//!
//! Unknown keys are rejected, so a misspelt key cannot silently leave a setting unset.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stella_verify::reason::ReasonCode;

use super::files::{self, ReadError};
use super::output::Failure;

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "STELLA_CONFIG";
/// Environment variable naming the Sigstore trust roots directory; it overrides the file.
pub const TRUST_ROOTS_DIR_ENV: &str = "STELLA_SIGSTORE_TRUST_ROOTS_DIR";
/// Configuration key naming the Sigstore trust roots directory.
pub const TRUST_ROOTS_DIR_KEY: &str = "sigstore_trust_roots_dir";
/// Maximum size of the configuration file, in bytes. The file contains one short setting.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The settings of the configuration file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory with `production.trusted_root.json` and `staging.trusted_root.json`.
    pub sigstore_trust_roots_dir: Option<PathBuf>,
}

/// The location of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// True when `STELLA_CONFIG` names the file, which must then exist.
    pub explicit: bool,
}

/// The Sigstore trust roots directory, and the setting that named it, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRootsDir {
    pub dir: PathBuf,
    /// `STELLA_SIGSTORE_TRUST_ROOTS_DIR`, or `sigstore_trust_roots_dir in <file>`.
    pub setting: String,
}

/// Reads an environment variable of this process, treating an empty value as unset.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

/// Returns where the configuration file is looked for, or `None` when no location applies
/// (no `STELLA_CONFIG`, no absolute `XDG_CONFIG_HOME` and no `HOME`).
pub fn locate(env: &dyn Fn(&str) -> Option<OsString>) -> Option<ConfigFile> {
    if let Some(path) = env(CONFIG_ENV) {
        return Some(ConfigFile {
            path: PathBuf::from(path),
            explicit: true,
        });
    }
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(ConfigFile {
        path: base.join("stella").join("config.toml"),
        explicit: false,
    })
}

/// Parses the text of a configuration file.
///
/// # Errors
///
/// A one-line description of the fault, with its line and column for a TOML error, or naming
/// the key for an empty `sigstore_trust_roots_dir` (which would otherwise resolve to the
/// configuration file's own directory).
pub fn parse(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|error| describe_toml_error(text, &error))?;
    if config
        .sigstore_trust_roots_dir
        .as_ref()
        .is_some_and(|dir| dir.as_os_str().is_empty())
    {
        return Err(format!(
            "{TRUST_ROOTS_DIR_KEY} is empty; set it to the directory of the Sigstore trust roots"
        ));
    }
    Ok(config)
}

/// Describes a TOML error on one line as `line L, column C: message`, without the source excerpt
/// and `|` gutter that the error's `Display` prints.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .trim_end()
        .split('\n')
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count().saturating_add(1);
    let line_start = before
        .rfind('\n')
        .map_or(0, |index| index.saturating_add(1));
    let column = before
        .get(line_start..)
        .map_or(0, |prefix| prefix.chars().count())
        .saturating_add(1);
    format!("line {line}, column {column}: {message}")
}

/// Reads and parses the configuration file. A missing file that `STELLA_CONFIG` does not name
/// yields `None`.
///
/// # Errors
///
/// Exit 5 for a file that cannot be read (a missing explicit file among them), and exit 2 for a
/// file that is not valid configuration.
pub fn load(file: &ConfigFile) -> Result<Option<Config>, Failure> {
    let bytes = match files::read_regular(&file.path, MAX_CONFIG_BYTES) {
        Ok(bytes) => bytes,
        Err(error) if error.is_not_found() && !file.explicit => return Ok(None),
        Err(ReadError::TooLarge { size, limit }) => {
            return Err(Failure::usage(format!(
                "invalid configuration file {}: {size} bytes, maximum is {limit}",
                file.path.display()
            )));
        }
        Err(error) => {
            let action = if file.explicit {
                "read the configuration file named by STELLA_CONFIG,"
            } else {
                "read the configuration file"
            };
            return Err(error.into_failure(action, &file.path));
        }
    };
    let text = String::from_utf8(bytes).map_err(|error| {
        Failure::usage(format!(
            "invalid configuration file {}: not UTF-8 ({error})",
            file.path.display()
        ))
    })?;
    parse(&text).map(Some).map_err(|error| {
        Failure::usage(format!(
            "invalid configuration file {}: {error}",
            file.path.display()
        ))
    })
}

/// Finds the Sigstore trust roots directory: `STELLA_SIGSTORE_TRUST_ROOTS_DIR`, else
/// `sigstore_trust_roots_dir` in the configuration file.
///
/// # Errors
///
/// `ERR_TRUST_ROOT_MISSING` (exit 1) with instructions when neither is set, and the errors of
/// [`load`].
pub fn trust_roots_dir(env: &dyn Fn(&str) -> Option<OsString>) -> Result<TrustRootsDir, Failure> {
    if let Some(dir) = env(TRUST_ROOTS_DIR_ENV) {
        return Ok(TrustRootsDir {
            dir: PathBuf::from(dir),
            setting: TRUST_ROOTS_DIR_ENV.to_owned(),
        });
    }
    let file = locate(env);
    if let Some(file) = &file
        && let Some(config) = load(file)?
        && let Some(dir) = config.sigstore_trust_roots_dir
    {
        return Ok(TrustRootsDir {
            dir: relative_to_file(&file.path, &dir),
            setting: format!("{TRUST_ROOTS_DIR_KEY} in {}", file.path.display()),
        });
    }
    Err(not_configured(file.as_ref()))
}

fn relative_to_file(config_path: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match config_path.parent() {
        Some(parent) => parent.join(dir),
        None => dir.to_path_buf(),
    }
}

fn not_configured(file: Option<&ConfigFile>) -> Failure {
    let file_hint = match file {
        Some(file) => format!(
            "or add `{TRUST_ROOTS_DIR_KEY} = \"/path/to/dir\"` to {}",
            file.path.display()
        ),
        None => format!(
            "or add `{TRUST_ROOTS_DIR_KEY} = \"/path/to/dir\"` to a configuration file and name \
             it in {CONFIG_ENV}"
        ),
    };
    Failure::rejected(
        format!(
            "no Sigstore trusted root is configured, and --trusted-root was not given. Copy \
             production.trusted_root.json and staging.trusted_root.json into a directory, then \
             set {TRUST_ROOTS_DIR_ENV} to that directory, {file_hint}"
        ),
        ReasonCode::TrustRootMissing.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: BTreeMap<String, OsString> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), OsString::from(value)))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// One case of [`locate`]: the environment, and the expected path and `explicit` flag.
    struct LocateRow {
        name: &'static str,
        env: &'static [(&'static str, &'static str)],
        want: Option<(&'static str, bool)>,
    }

    #[test]
    fn locate_follows_precedence() {
        let rows = [
            LocateRow {
                name: "explicit file wins",
                env: &[
                    ("STELLA_CONFIG", "/etc/stella.toml"),
                    ("XDG_CONFIG_HOME", "/xdg"),
                    ("HOME", "/home/op"),
                ],
                want: Some(("/etc/stella.toml", true)),
            },
            LocateRow {
                name: "xdg before home",
                env: &[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/op")],
                want: Some(("/xdg/stella/config.toml", false)),
            },
            LocateRow {
                name: "relative xdg ignored",
                env: &[("XDG_CONFIG_HOME", "xdg"), ("HOME", "/home/op")],
                want: Some(("/home/op/.config/stella/config.toml", false)),
            },
            LocateRow {
                name: "home only",
                env: &[("HOME", "/home/op")],
                want: Some(("/home/op/.config/stella/config.toml", false)),
            },
            LocateRow {
                name: "nothing set",
                env: &[],
                want: None,
            },
        ];
        for row in rows {
            let found = locate(&env_of(row.env));
            let want = row.want.map(|(path, explicit)| ConfigFile {
                path: PathBuf::from(path),
                explicit,
            });
            assert_eq!(found, want, "row {}", row.name);
        }
    }

    #[test]
    fn parse_reads_trust_roots_dir() {
        let config = parse("sigstore_trust_roots_dir = \"/var/lib/stella/sigstore\"\n")
            .expect("valid configuration");
        assert_eq!(
            config.sigstore_trust_roots_dir,
            Some(PathBuf::from("/var/lib/stella/sigstore"))
        );
        assert_eq!(parse("").expect("empty file"), Config::default());
    }

    #[test]
    fn parse_rejects_bad_files() {
        let rows = [
            ("misspelt key", "sigstore_trust_root_dir = \"/x\"\n"),
            ("wrong type", "sigstore_trust_roots_dir = 3\n"),
            ("not toml", "sigstore_trust_roots_dir = \n"),
        ];
        for (name, text) in rows {
            let error = parse(text).expect_err(name);
            assert!(!error.contains('\n'), "row {name}: {error:?}");
            assert!(!error.contains('|'), "row {name}: {error:?}");
            assert!(
                error.starts_with("line 1, column "),
                "row {name}: {error:?}"
            );
        }
        let error = parse("sigstore_trust_root_dir = \"/x\"\n").expect_err("unknown key");
        assert!(error.contains("sigstore_trust_root_dir"), "{error}");
    }

    #[test]
    fn parse_reports_line_and_column() {
        let error = parse("# comment\nsigstore_trust_roots_dir = \n").expect_err("no value");
        assert!(error.starts_with("line 2, column 28: "), "{error:?}");
    }

    #[test]
    fn empty_trust_roots_dir_rejected() {
        let error = parse("sigstore_trust_roots_dir = \"\"\n").expect_err("empty directory");
        assert_eq!(
            error,
            "sigstore_trust_roots_dir is empty; set it to the directory of the Sigstore trust roots"
        );
    }

    #[test]
    fn empty_trust_roots_dir_usage_error() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("stella.toml");
        std::fs::write(&path, "sigstore_trust_roots_dir = \"\"\n").expect("write config");
        let path_text = path.to_str().expect("UTF-8 temporary path");
        let failure =
            trust_roots_dir(&env_of(&[(CONFIG_ENV, path_text)])).expect_err("empty directory");
        assert_eq!(failure.exit, super::super::output::Exit::Usage);
        assert!(failure.message.contains(path_text), "{}", failure.message);
        assert!(
            failure
                .message
                .contains("sigstore_trust_roots_dir is empty"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn env_dir_overrides_config() {
        let found = trust_roots_dir(&env_of(&[
            (TRUST_ROOTS_DIR_ENV, "/roots"),
            (CONFIG_ENV, "/nonexistent/stella.toml"),
        ]))
        .expect("configured by the environment");
        assert_eq!(found.dir, PathBuf::from("/roots"));
        assert_eq!(found.setting, TRUST_ROOTS_DIR_ENV);
    }

    #[test]
    fn config_dir_is_relative_to_file() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let path = temp.path().join("stella.toml");
        std::fs::write(&path, "sigstore_trust_roots_dir = \"roots\"\n").expect("write config");
        let path_text = path.to_str().expect("UTF-8 temporary path");
        let found = trust_roots_dir(&env_of(&[(CONFIG_ENV, path_text)])).expect("configured");
        assert_eq!(found.dir, temp.path().join("roots"));
        assert_eq!(
            found.setting,
            format!("sigstore_trust_roots_dir in {path_text}")
        );
    }

    #[test]
    fn missing_explicit_config_fails() {
        let failure = trust_roots_dir(&env_of(&[(CONFIG_ENV, "/nonexistent/stella.toml")]))
            .expect_err("missing explicit file");
        assert_eq!(failure.exit, super::super::output::Exit::Other);
        assert!(
            failure.message.contains("/nonexistent/stella.toml"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn unconfigured_explains_both_settings() {
        let temp = tempfile::tempdir().expect("temporary directory");
        let home = temp.path().to_str().expect("UTF-8 temporary path");
        let failure = trust_roots_dir(&env_of(&[("HOME", home)])).expect_err("not configured");
        assert_eq!(
            failure.reason_code.as_deref(),
            Some("ERR_TRUST_ROOT_MISSING")
        );
        assert!(
            failure.message.contains(TRUST_ROOTS_DIR_ENV),
            "{}",
            failure.message
        );
        let expected_file = format!("{home}/.config/stella/config.toml");
        assert!(
            failure.message.contains(&expected_file),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("sigstore_trust_roots_dir = "),
            "{}",
            failure.message
        );
    }
}
