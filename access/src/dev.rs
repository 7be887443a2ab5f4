//! A development Authority and certificate authority, for tests and the demo. Nothing here
//! belongs in a production deployment: the keys live in memory or in files next to the demo.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use p256::ecdsa::SigningKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use stella_authority::{Claims, Jwks, Scope, Tenant, mint, thumbprint};

use crate::{AUDIENCE_ATTESTOR, AUDIENCE_GATE, DEFAULT_ISSUER, generate_signing_key};

/// Lifetime of the tokens [`DevAuthority::token`] mints, in seconds.
pub const DEV_TOKEN_TTL_SECS: i64 = 3600;

/// Returns every scope, for tokens that may call anything.
pub fn all_scopes() -> Vec<Scope> {
    Scope::ALL.to_vec()
}

/// An Authority signing key with its JWKS, minting tokens for tests.
pub struct DevAuthority {
    key: SigningKey,
    kid: String,
    counter: AtomicU64,
}

impl DevAuthority {
    /// Generates a fresh key; its key ID is the RFC 7638 thumbprint of the public key.
    ///
    /// # Panics
    ///
    /// When the system random number generator fails.
    pub fn generate() -> Self {
        let key = generate_signing_key().expect("system random number generator");
        DevAuthority::from_key(key)
    }

    /// Uses `key`, with its thumbprint as key ID.
    pub fn from_key(key: SigningKey) -> Self {
        let kid = thumbprint(key.verifying_key());
        DevAuthority {
            key,
            kid,
            counter: AtomicU64::new(0),
        }
    }

    /// Returns the signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Returns the key ID that tokens name in `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Returns the JWKS document with this authority's public key.
    pub fn jwks_json(&self) -> String {
        Jwks::from_public_keys([(self.kid.clone(), *self.key.verifying_key())])
            .expect("one key with a non-empty kid")
            .to_json()
    }

    /// Writes the JWKS document to `path`.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn write_jwks(&self, path: &Path) {
        std::fs::write(path, self.jwks_json()).expect("write JWKS file");
    }

    /// Returns claims for `tenant` with `scopes`, for both services, valid for
    /// [`DEV_TOKEN_TTL_SECS`] from now, to change before [`DevAuthority::token_with`].
    ///
    /// # Panics
    ///
    /// When `tenant` is not a valid tenant name.
    pub fn claims(&self, tenant: &str, scopes: &[Scope]) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let serial = self.counter.fetch_add(1, Ordering::Relaxed);
        Claims {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: vec![AUDIENCE_ATTESTOR.to_owned(), AUDIENCE_GATE.to_owned()],
            subject: format!("dev-user@{tenant}"),
            tenant: Tenant::parse(tenant).expect("valid tenant name"),
            scopes: scopes.to_vec(),
            token_id: format!("dev-{}-{serial}", &self.kid[..8]),
            issued_at: now,
            not_before: now,
            expires_at: now + DEV_TOKEN_TTL_SECS,
        }
    }

    /// Mints a token for `tenant` with `scopes` (see [`DevAuthority::claims`]).
    pub fn token(&self, tenant: &str, scopes: &[Scope]) -> String {
        self.token_with(&self.claims(tenant, scopes))
    }

    /// Mints a token with any claims.
    ///
    /// # Panics
    ///
    /// When the claims cannot be minted (see [`stella_authority::mint`]).
    pub fn token_with(&self, claims: &Claims) -> String {
        mint(&self.key, &self.kid, claims).expect("mint development token")
    }
}

/// Subject alternative names of the development server certificate: loopback for services on
/// one machine, and the service names of `compose.yaml`, under which the gate reaches the
/// attestor inside the Compose network.
pub const SERVER_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "attestor", "gate"];

/// A certificate authority with one server and one client certificate, in PEM.
pub struct DevPki {
    pub ca_pem: String,
    /// Server certificate for `localhost`, `127.0.0.1` and the Compose service names
    /// `attestor` and `gate` ([`SERVER_NAMES`]).
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// Client certificate (extended key usage clientAuth) for mutual TLS.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Paths of the files that [`DevPki::write_to`] wrote.
#[derive(Debug, Clone)]
pub struct DevPkiPaths {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl DevPki {
    /// Generates a new CA and its two leaf certificates, all ECDSA P-256.
    ///
    /// # Panics
    ///
    /// When key generation or signing fails.
    pub fn generate() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Stella development CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("self-sign CA");

        let (server_cert_pem, server_key_pem) = leaf(
            &ca,
            SERVER_NAMES.iter().map(|name| (*name).to_owned()).collect(),
            "stella-service",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) = leaf(
            &ca,
            Vec::new(),
            "stella-client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        DevPki {
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// Writes the five PEM files into `dir` (`ca.pem`, `server.pem`, `server-key.pem`,
    /// `client.pem`, `client-key.pem`).
    ///
    /// # Panics
    ///
    /// When a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> DevPkiPaths {
        let paths = DevPkiPaths {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        for (path, text) in [
            (&paths.ca, &self.ca_pem),
            (&paths.server_cert, &self.server_cert_pem),
            (&paths.server_key, &self.server_key_pem),
            (&paths.client_cert, &self.client_cert_pem),
            (&paths.client_key, &self.client_key_pem),
        ] {
            std::fs::write(path, text).expect("write PEM file");
        }
        paths
    }
}

fn leaf(
    ca: &CertifiedIssuer<'_, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names).expect("leaf parameters");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("leaf key");
    let certificate = params.signed_by(&key, ca).expect("sign leaf");
    (certificate.pem(), key.serialize_pem())
}
