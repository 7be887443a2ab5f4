//! Credentials of a test environment: a development Authority whose JWKS file both services load,
//! the tokens it mints for tenants, and the development PKI for TLS.
//!
//! Every environment gets its own Authority key, so a token of one environment is a token from
//! an unknown key for every other environment.

use std::fmt;
use std::path::{Path, PathBuf};

use stella_access::dev::{DevAuthority, DevPki, DevPkiPaths, all_scopes};
use stella_access::{Scope, client_tls, install_crypto_provider};
use tonic::transport::ClientTlsConfig;

/// The tenant of the default token of every environment.
pub const TENANT_A: &str = "tenant-a";

/// A second tenant, for the tests that check that tenants are walled off.
pub const TENANT_B: &str = "tenant-b";

/// How the services and their clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Plaintext gRPC on loopback: both services get `--plaintext-loopback`.
    #[default]
    PlaintextLoopback,
    /// Both services serve TLS with certificates of the development PKI. The attestor requires a
    /// client certificate of that PKI (`--tls-client-ca`), which the gate and the `stella`
    /// runner present.
    MutualTls,
}

/// The development Authority of one environment and the JWKS file the services load.
pub struct Authority {
    dev: DevAuthority,
    jwks_path: PathBuf,
}

impl Authority {
    /// Generates a new Authority key and writes its JWKS to `dir/jwks.json`.
    pub fn create(dir: &Path) -> Authority {
        let dev = DevAuthority::generate();
        let jwks_path = dir.join("jwks.json");
        dev.write_jwks(&jwks_path);
        Authority { dev, jwks_path }
    }

    /// Returns the JWKS file given to the services with `--authority-jwks`.
    pub fn jwks_path(&self) -> &Path {
        &self.jwks_path
    }

    /// Returns the development Authority, to mint tokens with chosen claims.
    pub fn dev(&self) -> &DevAuthority {
        &self.dev
    }

    /// Mints a token for `tenant` with `scopes`, for both services, valid for an hour.
    pub fn token(&self, tenant: &str, scopes: &[Scope]) -> String {
        self.dev.token(tenant, scopes)
    }

    /// Mints a token for `tenant` with every scope.
    pub fn all_scopes_token(&self, tenant: &str) -> String {
        self.dev.token(tenant, &all_scopes())
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("kid", &self.dev.kid())
            .field("jwks_path", &self.jwks_path)
            .finish()
    }
}

/// Generates a development PKI and writes its PEM files into `dir`.
pub fn write_pki(dir: &Path) -> DevPkiPaths {
    DevPki::generate().write_to(dir)
}

/// TLS settings of a client: the CA that issued the servers' certificates, and optionally the
/// client certificate and key to present.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM file of the CA that the client trusts.
    pub ca: PathBuf,
    /// PEM files of the client certificate and its private key.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// Returns the settings of a client that trusts the PKI's CA and presents its client
    /// certificate.
    pub fn with_identity(pki: &DevPkiPaths) -> ClientTls {
        ClientTls {
            ca: pki.ca.clone(),
            identity: Some((pki.client_cert.clone(), pki.client_key.clone())),
        }
    }

    /// Returns the same settings without the client certificate.
    pub fn without_identity(&self) -> ClientTls {
        ClientTls {
            ca: self.ca.clone(),
            identity: None,
        }
    }

    /// Builds the tonic client configuration, installing the ring provider first.
    ///
    /// # Panics
    ///
    /// Panics with the file name when a PEM file cannot be used.
    pub fn config(&self) -> ClientTlsConfig {
        install_crypto_provider();
        let identity = self
            .identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        match client_tls(&self.ca, identity, None) {
            Ok(config) => config,
            Err(err) => panic!("cannot build the client TLS configuration: {err}"),
        }
    }

    /// Returns the `stella` global options for these settings: `--tls-ca`, and `--tls-cert` and
    /// `--tls-key` when a client certificate is set.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--tls-ca".to_owned(), path_text(&self.ca)];
        if let Some((cert, key)) = &self.identity {
            args.extend([
                "--tls-cert".to_owned(),
                path_text(cert),
                "--tls-key".to_owned(),
                path_text(key),
            ]);
        }
        args
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
