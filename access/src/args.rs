//! Command-line options that both services share: token validation and transport security.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::transport::ServerTlsConfig;

use crate::authenticate::Authenticator;
use crate::error::AccessError;
use crate::tls::server_tls;

/// Token and TLS options of a service, flattened into its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerAccessArgs {
    /// JWKS file with the Authority's public keys (ES256, P-256). Every call must carry a
    /// token signed by one of them.
    #[arg(long, value_name = "FILE")]
    pub authority_jwks: PathBuf,
    /// Issuer (`iss`) that tokens must name.
    #[arg(long, default_value = crate::DEFAULT_ISSUER)]
    pub authority_issuer: String,
    /// Tolerance for the token times `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[arg(long, default_value_t = 60)]
    pub clock_skew_secs: u32,
    /// PEM certificate chain to serve TLS with. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates; every client must present a certificate issued by one of them
    /// (mutual TLS). Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve without TLS. Allowed only on a loopback listen address, for local development.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_client_ca"])]
    pub plaintext_loopback: bool,
}

impl ServerAccessArgs {
    /// Loads the token validation for `audience`.
    ///
    /// # Errors
    ///
    /// As for [`Authenticator::load`].
    pub fn authenticator(&self, audience: &str) -> Result<Authenticator, AccessError> {
        Authenticator::load(&self.authority_jwks, &self.authority_issuer, audience, self.clock_skew_secs)
    }

    /// Returns the TLS configuration, or `None` for plaintext on loopback.
    ///
    /// # Errors
    ///
    /// [`AccessError::Transport`] when neither TLS nor --plaintext-loopback is given, or when
    /// plaintext is requested on an address that is not loopback; file errors from
    /// [`server_tls`].
    pub fn server_tls(&self, listen: SocketAddr) -> Result<Option<ServerTlsConfig>, AccessError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => server_tls(cert, key, self.tls_client_ca.as_deref()).map(Some),
            _ if self.plaintext_loopback => {
                if listen.ip().is_loopback() {
                    Ok(None)
                } else {
                    Err(AccessError::Transport(format!(
                        "--plaintext-loopback needs a loopback listen address, not {listen}; \
                         serve TLS with --tls-cert and --tls-key instead"
                    )))
                }
            }
            _ => Err(AccessError::Transport(
                "no transport security configured: give --tls-cert and --tls-key (and \
                 --tls-client-ca to require client certificates), or --plaintext-loopback for \
                 local development on a loopback address"
                    .to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        access: ServerAccessArgs,
    }

    fn parse(arguments: &[&str]) -> Result<ServerAccessArgs, clap::Error> {
        let mut all = vec!["service", "--authority-jwks", "jwks.json"];
        all.extend_from_slice(arguments);
        Command::try_parse_from(all).map(|command| command.access)
    }

    #[test]
    fn plaintext_needs_loopback() {
        let args = parse(&["--plaintext-loopback"]).expect("parse");
        assert!(args.server_tls("127.0.0.1:7401".parse().expect("addr")).expect("loopback").is_none());
        assert!(args.server_tls("[::1]:7401".parse().expect("addr")).expect("loopback").is_none());
        let error = args.server_tls("0.0.0.0:7401".parse().expect("addr")).expect_err("any");
        assert!(error.to_string().contains("0.0.0.0:7401"), "{error}");
    }

    #[test]
    fn transport_required() {
        let args = parse(&[]).expect("parse");
        let error = args.server_tls("127.0.0.1:7401".parse().expect("addr")).expect_err("none");
        assert!(error.to_string().contains("--plaintext-loopback"), "{error}");
    }

    #[test]
    fn plaintext_conflicts_with_tls() {
        assert!(parse(&["--plaintext-loopback", "--tls-cert", "c", "--tls-key", "k"]).is_err());
        assert!(parse(&["--tls-cert", "c"]).is_err());
        assert!(parse(&["--tls-client-ca", "ca"]).is_err());
    }
}
