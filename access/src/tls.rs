//! TLS configuration of servers and clients, from PEM files.
//!
//! Certificates and keys are parsed here, at start-up, so that a wrong file is reported with
//! its path before the service listens, instead of failing the first handshake.

use std::net::IpAddr;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::error::AccessError;

/// Installs rustls' ring provider as the process-wide default. Call it before any TLS is used.
/// A second call, or a provider installed earlier by the same process, is left as it is.
// rustls 0.23 deprecates the ring provider because it lacks post-quantum key exchange. The
// services keep ring: tonic's `tls-ring` feature uses it, and aws-lc-rs would add a second C
// build to every clean build.
// NOTE: post-quantum key exchange (X25519MLKEM768) needs the aws-lc-rs provider.
#[allow(deprecated)]
pub fn install_crypto_provider() {
    // The only error is "a provider is already installed", which is the state this function sets up.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a server TLS configuration from a certificate chain and its private key. With
/// `client_ca`, every client must present a certificate issued by that CA (mutual TLS).
///
/// # Errors
///
/// [`AccessError::Read`] or [`AccessError::Pem`] naming the file that cannot be used.
pub fn server_tls(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTlsConfig, AccessError> {
    let identity = identity(cert, key)?;
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(client_ca) = client_ca {
        let ca = certificates(client_ca, "client CA file")?;
        // tonic requires a client certificate whenever a client CA is set, unless
        // `client_auth_optional(true)` is called, which this never does.
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

/// Builds a client TLS configuration that trusts only the CA certificates in `ca`, presents
/// `identity` (certificate chain and key files) when given, and checks the server's
/// certificate for `domain` instead of the URL's host when given.
///
/// # Errors
///
/// [`AccessError::Read`] or [`AccessError::Pem`] naming the file that cannot be used.
pub fn client_tls(
    ca: &Path,
    identity_files: Option<(&Path, &Path)>,
    domain: Option<&str>,
) -> Result<ClientTlsConfig, AccessError> {
    let ca = certificates(ca, "CA file")?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((cert, key)) = identity_files {
        config = config.identity(identity(cert, key)?);
    }
    if let Some(domain) = domain {
        config = config.domain_name(domain);
    }
    Ok(config)
}

/// Returns the TLS failure in the source chain of `error`, if any: a handshake alert from the peer
/// (such as a rejected or missing client certificate) or a certificate this side rejected.
///
/// With TLS 1.3 a client learns that the server rejected its certificate only when it reads the
/// alert, which tonic reports as a failed call. Callers use this to say that no request reached
/// the service. `std::io::Error` hides the error it wraps from `source()`, so each one is opened
/// with `get_ref()`.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(tls.to_string());
            }
        }
        current = error.source();
    }
    None
}

/// Returns whether `host` (a URL host or an address without port) names the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn identity(cert: &Path, key: &Path) -> Result<Identity, AccessError> {
    let cert_pem = certificates(cert, "certificate file")?;
    let key_pem = read(key, "private key file")?;
    PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| AccessError::Pem {
        what: "private key file",
        path: key.to_owned(),
        why: format!("no PKCS#8, SEC1 or PKCS#1 private key in PEM form: {error}"),
    })?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}

/// Reads a PEM file and checks that it contains at least one certificate.
fn certificates(path: &Path, what: &'static str) -> Result<Vec<u8>, AccessError> {
    let pem = read(path, what)?;
    let mut count = 0usize;
    for item in CertificateDer::pem_slice_iter(&pem) {
        item.map_err(|error| AccessError::Pem {
            what,
            path: path.to_owned(),
            why: format!("invalid PEM: {error}"),
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(AccessError::Pem {
            what,
            path: path.to_owned(),
            why: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(pem)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, AccessError> {
    std::fs::read(path).map_err(|source| AccessError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.1", "[::1]", "::1"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1", "0.0.0.0", "[::]", "localhost.example.com", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn missing_file_named() {
        let error = client_tls(Path::new("/nonexistent/ca.pem"), None, None).expect_err("missing");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn file_without_certificate_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let error = client_tls(&path, None, None).expect_err("no certificate");
        let text = error.to_string();
        assert!(text.contains("ca.pem"), "{text}");
        assert!(text.contains("no CERTIFICATE block"), "{text}");
    }
}
