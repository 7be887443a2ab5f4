//! TLS certificates for the demo's two services, written to `<kit>/tls/`.
//!
//! Unlike the rest of the kit, these come from the system random number generator and differ on
//! every run: the development PKI of `stella_access::dev` takes no seed. They secure the demo's
//! loopback connections only and prove nothing about any software.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use stella_access::dev::DevPki;

/// Directory of the TLS files, relative to the kit.
pub const TLS_DIR: &str = "tls";

/// Generates a development CA with a server certificate (for `localhost`, `127.0.0.1` and the
/// Compose service names `attestor` and `gate`) and a client certificate, and writes them into
/// `<kit_dir>/tls/`: `ca.pem`, `server.pem`, `server-key.pem`, `client.pem` and
/// `client-key.pem`. The two private keys get mode 0600.
pub fn write_service_tls(kit_dir: &Path) -> Result<()> {
    let dir = kit_dir.join(TLS_DIR);
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let pki = DevPki::generate();
    let files = [
        ("ca.pem", &pki.ca_pem, false),
        ("server.pem", &pki.server_cert_pem, false),
        ("server-key.pem", &pki.server_key_pem, true),
        ("client.pem", &pki.client_cert_pem, false),
        ("client-key.pem", &pki.client_key_pem, true),
    ];
    for (name, text, private) in files {
        let path = dir.join(name);
        write_new(&path, text.as_bytes(), private)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Creates `path`, which must not exist, with mode 0600 when `private` is set.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(bytes)
}
