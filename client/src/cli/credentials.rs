//! The Authority token and TLS settings of the commands that call a service.
//!
//! The token comes from `--token-file`, else from the environment variable `STELLA_TOKEN`. The
//! TLS files come from `--tls-ca`, `--tls-cert` and `--tls-key`, else from `STELLA_TLS_CA`,
//! `STELLA_TLS_CERT` and `STELLA_TLS_KEY`. An environment variable set to the empty string counts
//! as unset. The token is never printed: error messages name only the file or variable it came
//! from.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use stella_access::{BearerToken, client_tls};
use stella_verify::reason::ReasonCode;
use tonic::transport::ClientTlsConfig;

use super::GlobalArgs;
use super::files;
use super::output::Failure;

/// Environment variable with the Authority token itself, used when `--token-file` is not given.
pub const TOKEN_ENV: &str = "STELLA_TOKEN";
/// Environment variable naming the CA file, used when `--tls-ca` is not given.
pub const TLS_CA_ENV: &str = "STELLA_TLS_CA";
/// Environment variable naming the client certificate file, used when `--tls-cert` is not given.
pub const TLS_CERT_ENV: &str = "STELLA_TLS_CERT";
/// Environment variable naming the client key file, used when `--tls-key` is not given.
pub const TLS_KEY_ENV: &str = "STELLA_TLS_KEY";

/// Largest token file read, in bytes: twice [`stella_authority::MAX_TOKEN_BYTES`], the largest token the services
/// accept, which leaves room for surrounding whitespace.
const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;

/// The token and TLS options as given, before any file is read.
#[derive(Debug, Clone, Default)]
pub struct AccessOptions {
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl AccessOptions {
    /// Takes the options from the command line.
    pub fn from_global(global: &GlobalArgs) -> AccessOptions {
        AccessOptions {
            token_file: global.token_file.clone(),
            tls_ca: global.tls_ca.clone(),
            tls_cert: global.tls_cert.clone(),
            tls_key: global.tls_key.clone(),
        }
    }

    /// Returns the token to send: from `--token-file`, else from `STELLA_TOKEN` in `env`, else
    /// `None`, and the call then goes out without one.
    ///
    /// # Errors
    ///
    /// A failure naming the file when it cannot be read (exit 5), and a usage error naming the
    /// file or variable when its content is not a token (exit 2).
    pub fn token(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<BearerToken>, Failure> {
        if let Some(path) = &self.token_file {
            let bytes = files::read_regular(path, MAX_TOKEN_FILE_BYTES)
                .map_err(|error| error.into_failure("read the token file", path))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid_token_file(path, "it is not UTF-8 text"))?;
            return BearerToken::new(&text)
                .map(Some)
                .map_err(|error| invalid_token_file(path, &error.to_string()));
        }
        let Some(value) = env(TOKEN_ENV) else {
            return Ok(None);
        };
        let text = value.into_string().map_err(|_| {
            Failure::usage(format!(
                "{TOKEN_ENV} is invalid: it is not UTF-8 text, so it cannot be a token"
            ))
        })?;
        BearerToken::new(&text)
            .map(Some)
            .map_err(|error| Failure::usage(format!("{TOKEN_ENV}: {error}")))
    }

    /// Returns the TLS settings for `https://` URLs, or `None` when no CA is given.
    ///
    /// # Errors
    ///
    /// A usage error when only one of the client certificate and key is given, or either without
    /// a CA, and a failure naming the file that cannot be read or contains no certificate or key.
    pub fn tls(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<ClientTlsConfig>, Failure> {
        let pick = |flag: &Option<PathBuf>, name: &str| {
            flag.clone().or_else(|| env(name).map(PathBuf::from))
        };
        let ca = pick(&self.tls_ca, TLS_CA_ENV);
        let cert = pick(&self.tls_cert, TLS_CERT_ENV);
        let key = pick(&self.tls_key, TLS_KEY_ENV);

        let identity = match (&cert, &key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Failure::usage(format!(
                    "--tls-cert (or {TLS_CERT_ENV}) needs --tls-key (or {TLS_KEY_ENV}) with the \
                     private key of the client certificate"
                )));
            }
            (None, Some(_)) => {
                return Err(Failure::usage(format!(
                    "--tls-key (or {TLS_KEY_ENV}) needs --tls-cert (or {TLS_CERT_ENV}) with the \
                     client certificate"
                )));
            }
        };
        let Some(ca) = ca else {
            if identity.is_some() {
                return Err(Failure::usage(format!(
                    "a client certificate needs --tls-ca (or {TLS_CA_ENV}) with the CA that \
                     issued the service's certificate"
                )));
            }
            return Ok(None);
        };
        client_tls(&ca, identity, None)
            .map(Some)
            .map_err(|error| Failure::other(error.to_string()))
    }
}

/// Adds to a rejection for a missing token that `stella` sent none, and where it takes one from.
pub fn explain_missing_token(mut failure: Failure, token_given: bool) -> Failure {
    let unauthenticated =
        failure.reason_code.as_deref() == Some(ReasonCode::AuthUnauthenticated.as_str());
    if unauthenticated && !token_given {
        failure.message.push_str(&format!(
            " (stella sent no token: give --token-file FILE or set {})",
            TOKEN_ENV
        ));
    }
    failure
}

fn invalid_token_file(path: &Path, detail: &str) -> Failure {
    Failure::usage(format!("--token-file {}: {detail}", path.display()))
}

#[cfg(test)]
mod tests {
    use stella_authority::MAX_TOKEN_BYTES;

    use super::*;
    use crate::cli::output::Exit;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| OsString::from(value))
        }
    }

    fn header(token: &BearerToken) -> String {
        let mut request = tonic::Request::new(());
        token.apply(&mut request);
        request
            .metadata()
            .get(stella_access::AUTHORIZATION)
            .expect("authorization set")
            .to_str()
            .expect("ASCII")
            .to_owned()
    }

    #[test]
    fn missing_token_explained_once() {
        let failure = || {
            Failure::rejected(
                "attestor rejected the request: ERR_AUTH_UNAUTHENTICATED: GetReport: token check failed",
                ReasonCode::AuthUnauthenticated.as_str(),
            )
        };
        let without = explain_missing_token(failure(), false);
        assert!(
            without.message.contains("STELLA_TOKEN"),
            "{}",
            without.message
        );
        let with = explain_missing_token(failure(), true);
        assert!(
            !with.message.contains("stella sent no token"),
            "{}",
            with.message
        );

        let denied = Failure::rejected("denied", ReasonCode::AuthPermissionDenied.as_str());
        let denied = explain_missing_token(denied, false);
        assert_eq!(denied.message, "denied");
    }

    #[test]
    fn token_file_limit_matches_services() {
        assert_eq!(
            MAX_TOKEN_FILE_BYTES,
            2 * u64::try_from(MAX_TOKEN_BYTES).expect("fits")
        );
    }

    #[test]
    fn token_file_wins_over_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "file.token.value\n").expect("write");
        let options = AccessOptions {
            token_file: Some(path),
            ..AccessOptions::default()
        };
        let env = env_of(&[(TOKEN_ENV, "env.token.value")]);
        let token = options.token(&env).expect("valid").expect("token");
        assert_eq!(header(&token), "Bearer file.token.value");
    }

    #[test]
    fn token_from_env() {
        let env = env_of(&[(TOKEN_ENV, "env.token.value")]);
        let token = AccessOptions::default()
            .token(&env)
            .expect("valid")
            .expect("token");
        assert_eq!(header(&token), "Bearer env.token.value");
        let none = AccessOptions::default()
            .token(&env_of(&[(TOKEN_ENV, "")]))
            .expect("valid");
        assert!(none.is_none());
    }

    #[test]
    fn bad_token_names_source_not_value() {
        let env = env_of(&[(TOKEN_ENV, "secret value with spaces")]);
        let failure = AccessOptions::default().token(&env).expect_err("invalid");
        assert_eq!(failure.exit, Exit::Usage);
        assert!(failure.message.contains(TOKEN_ENV), "{}", failure.message);
        assert!(!failure.message.contains("secret"), "{}", failure.message);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").expect("write");
        let options = AccessOptions {
            token_file: Some(path.clone()),
            ..AccessOptions::default()
        };
        let failure = options.token(&env_of(&[])).expect_err("empty file");
        assert!(
            failure.message.contains(&path.display().to_string()),
            "{}",
            failure.message
        );
    }

    #[test]
    fn missing_token_file_named() {
        let options = AccessOptions {
            token_file: Some(PathBuf::from("/nonexistent/token")),
            ..AccessOptions::default()
        };
        let failure = options.token(&env_of(&[])).expect_err("missing");
        assert_eq!(failure.exit, Exit::Other);
        assert!(
            failure.message.contains("/nonexistent/token"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn tls_needs_cert_and_key_together() {
        let rows = [
            (
                "cert only",
                &[(TLS_CA_ENV, "ca.pem"), (TLS_CERT_ENV, "c.pem")][..],
            ),
            (
                "key only",
                &[(TLS_CA_ENV, "ca.pem"), (TLS_KEY_ENV, "k.pem")][..],
            ),
            (
                "identity without CA",
                &[(TLS_CERT_ENV, "c.pem"), (TLS_KEY_ENV, "k.pem")][..],
            ),
        ];
        for (name, pairs) in rows {
            let failure = AccessOptions::default()
                .tls(&env_of(pairs))
                .expect_err(name);
            assert_eq!(failure.exit, Exit::Usage, "row {name}");
        }
    }

    #[test]
    fn tls_absent_without_ca() {
        let tls = AccessOptions::default().tls(&env_of(&[])).expect("no TLS");
        assert!(tls.is_none());
    }

    #[test]
    fn tls_flag_wins_and_file_named() {
        let options = AccessOptions {
            tls_ca: Some(PathBuf::from("/nonexistent/flag-ca.pem")),
            ..AccessOptions::default()
        };
        let failure = options
            .tls(&env_of(&[(TLS_CA_ENV, "/nonexistent/env-ca.pem")]))
            .expect_err("missing CA file");
        assert!(
            failure.message.contains("flag-ca.pem"),
            "{}",
            failure.message
        );
    }
}
