//! End-to-end checks of a generated demo kit.
//!
//! The real binary generates the kit once per test run. The `openssl` command line checks
//! certificates, timestamps and signatures, and those tests skip with a message when it is not
//! installed. The log is checked with stella-verify and with an RFC 6962 computation written here,
//! independent of both the kit and stella-verify. Both bundles go through
//! `stella_verify::evidence::verify_bundle`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Verifier as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use stella_demo_kit::kit::{
    AUTHORITY_NOT_AFTER, BASE_TIME, LOG_ORIGIN, LOG_SIZE, OIDC_ISSUER, PROVENANCE_CERT_START, PROVENANCE_INDEX,
    SIGNATURE_CERT_START, SIGNATURE_INDEX, SIGNER_IDENTITY, SLSA_PROVENANCE_V1,
};
use stella_verify::checkpoint::verify_checkpoint;
use stella_verify::evidence::{
    Artifact, BundleInclusionSource, EntryKind, Outcome, ProofSource, VerifyInput, verify_bundle,
};
use stella_verify::merkle;
use stella_verify::note::NoteVerifier;
use stella_verify::reason::ReasonCode;
use stella_verify::tiles;
use stella_verify::trust_root::{TrustSet, parse_trusted_root};

/// genTime of each bundle's timestamp: 21 seconds after its certificate starts.
const PROVENANCE_TIMESTAMP: i64 = PROVENANCE_CERT_START + 21;
const SIGNATURE_TIMESTAMP: i64 = SIGNATURE_CERT_START + 21;

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_stella-demo-kit")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stella-demo-kit-tests").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn run_generator(out: &Path, seed: Option<&str>) -> Output {
    let mut command = Command::new(binary());
    command.arg("--out").arg(out);
    if let Some(seed) = seed {
        command.arg("--seed").arg(seed);
    }
    command.output().unwrap()
}

fn generate(name: &str, seed: Option<&str>) -> PathBuf {
    let dir = scratch_dir(name);
    let started = Instant::now();
    let output = run_generator(&dir, seed);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "stella-demo-kit failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("generated kit {name} in {elapsed:?}");
    dir
}

/// Returns the default-seed kit, generating it once for all tests of this file.
fn kit() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| generate("default", None))
}

/// Reads every file below `dir`, keyed by its relative path with `/` separators.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, files);
            } else {
                let relative = path.strip_prefix(base).unwrap().to_str().unwrap().replace('\\', "/");
                files.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn base64_field(value: &Value, pointer: &str) -> Vec<u8> {
    let text = value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("missing {pointer}"));
    STANDARD.decode(text).unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Computes the DSSE v1 pre-authentication encoding, independently of the kit.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// One signed bundle of the kit with the values the checks need.
struct KitBundle {
    file: &'static str,
    json: Value,
    raw: Vec<u8>,
    certificate: Vec<u8>,
    timestamp: Vec<u8>,
    signature: Vec<u8>,
    /// What the signature covers: the artifact, or the DSSE PAE.
    signed_message: Vec<u8>,
    log_index: u64,
    gen_time: i64,
    cert_start: i64,
}

fn kit_bundles() -> Vec<KitBundle> {
    let dir = kit();
    let artifact = fs::read(dir.join("artifact.txt")).unwrap();

    let raw = fs::read(dir.join("provenance.sigstore.json")).unwrap();
    let json: Value = serde_json::from_slice(&raw).unwrap();
    let payload = base64_field(&json, "/dsseEnvelope/payload");
    let payload_type = json.pointer("/dsseEnvelope/payloadType").and_then(Value::as_str).unwrap().to_owned();
    let provenance = KitBundle {
        file: "provenance.sigstore.json",
        certificate: base64_field(&json, "/verificationMaterial/certificate/rawBytes"),
        timestamp: base64_field(&json, "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp"),
        signature: base64_field(&json, "/dsseEnvelope/signatures/0/sig"),
        signed_message: pae(&payload_type, &payload),
        log_index: PROVENANCE_INDEX,
        gen_time: PROVENANCE_TIMESTAMP,
        cert_start: PROVENANCE_CERT_START,
        json,
        raw,
    };

    let raw = fs::read(dir.join("signature.sigstore.json")).unwrap();
    let json: Value = serde_json::from_slice(&raw).unwrap();
    let signature = KitBundle {
        file: "signature.sigstore.json",
        certificate: base64_field(&json, "/verificationMaterial/certificate/rawBytes"),
        timestamp: base64_field(&json, "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp"),
        signature: base64_field(&json, "/messageSignature/signature"),
        signed_message: artifact,
        log_index: SIGNATURE_INDEX,
        gen_time: SIGNATURE_TIMESTAMP,
        cert_start: SIGNATURE_CERT_START,
        json,
        raw,
    };
    vec![provenance, signature]
}

/// CA and TSA certificates from the trusted root: (Fulcio intermediate, Fulcio root, TSA leaf, TSA root).
fn authority_certificates() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let root = read_json(&kit().join("trusted_root.json"));
    (
        base64_field(&root, "/certificateAuthorities/0/certChain/certificates/0/rawBytes"),
        base64_field(&root, "/certificateAuthorities/0/certChain/certificates/1/rawBytes"),
        base64_field(&root, "/timestampAuthorities/0/certChain/certificates/0/rawBytes"),
        base64_field(&root, "/timestampAuthorities/0/certChain/certificates/1/rawBytes"),
    )
}

fn log_files() -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Vec<u8>>) {
    let mut tiles = BTreeMap::new();
    let mut entry_bundles = BTreeMap::new();
    for (path, bytes) in read_tree(&kit().join("log")) {
        if path.starts_with("tile/entries/") {
            entry_bundles.insert(path, bytes);
        } else if path.starts_with("tile/") {
            tiles.insert(path, bytes);
        }
    }
    (tiles, entry_bundles)
}

fn log_verifier() -> NoteVerifier {
    let vkey = fs::read_to_string(kit().join("log.vkey")).unwrap();
    NoteVerifier::from_vkey(vkey.trim_end()).unwrap()
}

fn trust_set() -> TrustSet {
    let json = fs::read(kit().join("trusted_root.json")).unwrap();
    TrustSet {
        digest: format!("sha256:{}", hex::encode(sha256(&json))),
        version: 1,
        expires_at: AUTHORITY_NOT_AFTER,
        trusted_root: parse_trusted_root(&json).unwrap(),
        note_verifiers: Vec::new(),
        kms_keys: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// openssl helpers

fn openssl_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| Command::new("openssl").arg("version").output().is_ok_and(|out| out.status.success()))
}

macro_rules! require_openssl {
    () => {
        if !openssl_available() {
            eprintln!("skipping: the openssl command is not installed");
            return;
        }
    };
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn all_output(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Writes `der` as a PEM certificate into `dir` and returns its path.
fn write_pem(dir: &Path, name: &str, der: &[u8]) -> String {
    let der_path = dir.join(format!("{name}.der"));
    let pem_path = dir.join(format!("{name}.pem"));
    fs::write(&der_path, der).unwrap();
    let output = openssl(&[
        "x509", "-inform", "DER", "-in", der_path.to_str().unwrap(), "-out", pem_path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "openssl x509 could not read {name}: {}", all_output(&output));
    pem_path.to_str().unwrap().to_owned()
}

fn x509_text(pem: &str) -> String {
    let output = openssl(&["x509", "-in", pem, "-noout", "-text"]);
    assert!(output.status.success(), "{}", all_output(&output));
    stdout_of(&output)
}

// ---------------------------------------------------------------------------------------------
// Layout, determinism and command line

#[test]
fn kit_writes_expected_files() {
    let files = read_tree(kit());
    for name in [
        "README.txt",
        "artifact.txt",
        "artifact.txt.sha256",
        "log.vkey",
        "log/checkpoint",
        "policy.yaml",
        "provenance.sigstore.json",
        "signature.sigstore.json",
        "trusted_root.json",
        "tls/ca.pem",
        "tls/server.pem",
        "tls/server-key.pem",
        "tls/client.pem",
        "tls/client-key.pem",
    ] {
        assert!(files.contains_key(name), "kit lacks {name}");
    }

    let readme = String::from_utf8(files["README.txt"].clone()).unwrap();
    for name in ["artifact.txt", "provenance.sigstore.json", "signature.sigstore.json", "trusted_root.json", "log/checkpoint", "log.vkey", "policy.yaml"] {
        assert!(readme.contains(name), "README.txt does not list {name}");
    }

    let digest = hex::encode(sha256(&files["artifact.txt"]));
    assert_eq!(files["artifact.txt.sha256"], format!("{digest}  artifact.txt\n").into_bytes());
}

#[test]
fn log_tiles_span_three_levels() {
    let (tiles, entry_bundles) = log_files();
    let mut expected_tiles: BTreeSet<String> = (0..273).map(|n| format!("tile/0/{n:03}")).collect();
    expected_tiles.extend(["tile/0/273.p/112", "tile/1/000", "tile/1/001.p/17", "tile/2/000.p/1"].map(String::from));
    let mut expected_bundles: BTreeSet<String> = (0..273).map(|n| format!("tile/entries/{n:03}")).collect();
    expected_bundles.insert("tile/entries/273.p/112".to_owned());

    assert_eq!(tiles.keys().cloned().collect::<BTreeSet<_>>(), expected_tiles);
    assert_eq!(entry_bundles.keys().cloned().collect::<BTreeSet<_>>(), expected_bundles);
    assert_eq!(tiles["tile/0/000"].len(), 256 * 32);
    assert_eq!(tiles["tile/1/001.p/17"].len(), 17 * 32);
}

#[test]
fn same_seed_gives_identical_kit() {
    let again = generate("default-again", None);
    let first = read_tree(kit());
    let second = read_tree(&again);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    for (path, bytes) in &first {
        // The services' TLS certificates are random on every run, by design.
        if path.starts_with("tls/") {
            assert!(second[path] != *bytes, "{path} repeats between two runs");
            continue;
        }
        assert!(second[path] == *bytes, "{path} differs between two runs with the same seed");
    }
}

#[test]
fn tls_certificates_chain_to_ca() {
    let tls = kit().join("tls");
    #[cfg(unix)]
    for key in ["server-key.pem", "client-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(tls.join(key)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{key} has mode {mode:o}");
    }
    require_openssl!();
    let ca = tls.join("ca.pem");
    for (leaf, purpose) in [("server.pem", "sslserver"), ("client.pem", "sslclient")] {
        let output = openssl(&[
            "verify", "-CAfile", ca.to_str().unwrap(), "-purpose", purpose, tls.join(leaf).to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{leaf}: {}", all_output(&output));
    }
    let server = x509_text(tls.join("server.pem").to_str().unwrap());
    assert!(server.contains("DNS:localhost"), "{server}");
    assert!(server.contains("IP Address:127.0.0.1"), "{server}");
}

#[test]
fn other_seed_gives_other_keys() {
    let other = generate("other-seed", Some("0123456789abcdef"));
    let first = read_tree(kit());
    let second = read_tree(&other);
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    for path in ["trusted_root.json", "log.vkey", "log/checkpoint", "provenance.sigstore.json", "signature.sigstore.json"] {
        assert_ne!(first[path], second[path], "{path} is the same for two seeds");
    }
}

#[test]
fn non_empty_output_is_rejected() {
    let dir = scratch_dir("non-empty");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("keep.txt"), b"user data").unwrap();
    let output = run_generator(&dir, None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not empty"), "{}", all_output(&output));
    assert_eq!(fs::read(dir.join("keep.txt")).unwrap(), b"user data");
    assert!(!dir.join("trusted_root.json").exists());
}

#[test]
fn invalid_seed_is_rejected() {
    let dir = scratch_dir("bad-seed");
    let output = run_generator(&dir, Some("not-hex"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid --seed"), "{}", all_output(&output));
    assert!(!dir.exists());
}

#[test]
fn policy_requires_demo_provenance() {
    let text = fs::read_to_string(kit().join("policy.yaml")).unwrap();
    let policy: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let prod = &policy["environments"]["prod"];
    assert_eq!(prod["on_missing_proof"].as_str(), Some("pending"));
    let require = prod["require"].as_sequence().unwrap();
    assert_eq!(require.len(), 1);
    assert_eq!(require[0]["predicate_type"].as_str(), Some(SLSA_PROVENANCE_V1));
    assert_eq!(require[0]["identity"].as_str(), Some(SIGNER_IDENTITY));
    assert_eq!(require[0]["issuer"].as_str(), Some(OIDC_ISSUER));
}

// ---------------------------------------------------------------------------------------------
// Certificates, timestamps and signatures, checked with openssl

#[test]
fn certificates_chain_under_openssl() {
    require_openssl!();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (intermediate, root, tsa_leaf, tsa_root) = authority_certificates();
    let intermediate = write_pem(dir, "fulcio-intermediate", &intermediate);
    let root = write_pem(dir, "fulcio-root", &root);
    let tsa_leaf = write_pem(dir, "tsa-leaf", &tsa_leaf);
    let tsa_root = write_pem(dir, "tsa-root", &tsa_root);

    let root_text = x509_text(&root);
    assert!(root_text.contains("Issuer: O = stella-demo, CN = stella-demo-fulcio-root"), "{root_text}");
    assert!(root_text.contains("NIST CURVE: P-384"), "{root_text}");
    assert!(root_text.contains("CA:TRUE"), "{root_text}");
    let intermediate_text = x509_text(&intermediate);
    assert!(intermediate_text.contains("CA:TRUE, pathlen:0"), "{intermediate_text}");
    assert!(intermediate_text.contains("NIST CURVE: P-384"), "{intermediate_text}");

    let tsa_text = x509_text(&tsa_leaf);
    assert!(tsa_text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping\n"), "{tsa_text}");
    let tsa_verify = openssl(&[
        "verify", "-attime", &PROVENANCE_TIMESTAMP.to_string(), "-purpose", "timestampsign", "-CAfile", &tsa_root, &tsa_leaf,
    ]);
    assert!(stdout_of(&tsa_verify).contains(": OK"), "{}", all_output(&tsa_verify));

    for bundle in kit_bundles() {
        let leaf = write_pem(dir, bundle.file, &bundle.certificate);
        let text = x509_text(&leaf);
        assert!(text.contains("Issuer: O = stella-demo, CN = stella-demo-fulcio-intermediate"), "{text}");
        assert!(text.contains("NIST CURVE: P-256"), "{text}");
        assert!(text.contains("X509v3 Subject Alternative Name: critical"), "{text}");
        assert!(text.contains(&format!("URI:{SIGNER_IDENTITY}")), "{text}");
        assert!(text.contains("Code Signing"), "{text}");
        assert!(text.contains("1.3.6.1.4.1.57264.1.8"), "{text}");

        // The issuer extension value is a DER UTF8String (tag 0x0C) holding the issuer URL.
        let mut utf8_string = vec![0x0C, u8::try_from(OIDC_ISSUER.len()).unwrap()];
        utf8_string.extend_from_slice(OIDC_ISSUER.as_bytes());
        assert!(bundle.certificate.windows(utf8_string.len()).any(|window| window == utf8_string.as_slice()));

        let dates = stdout_of(&openssl(&["x509", "-in", &leaf, "-noout", "-startdate", "-enddate"]));
        let start = time::OffsetDateTime::from_unix_timestamp(bundle.cert_start).unwrap();
        assert!(dates.contains(&format!("notBefore=Jan  1 {:02}:{:02}:00 2026 GMT", start.hour(), start.minute())), "{dates}");
        assert!(dates.contains(&format!("notAfter=Jan  1 {:02}:{:02}:00 2026 GMT", start.hour(), start.minute() + 10)), "{dates}");

        let at_signing = openssl(&[
            "verify", "-attime", &bundle.gen_time.to_string(), "-CAfile", &root, "-untrusted", &intermediate, &leaf,
        ]);
        assert!(stdout_of(&at_signing).contains(": OK"), "{}: {}", bundle.file, all_output(&at_signing));

        let after_expiry = openssl(&[
            "verify", "-attime", &(bundle.cert_start + 601).to_string(), "-CAfile", &root, "-untrusted", &intermediate, &leaf,
        ]);
        assert!(!after_expiry.status.success());
        assert!(all_output(&after_expiry).contains("certificate has expired"), "{}", all_output(&after_expiry));
    }
}

#[test]
fn timestamps_verify_under_openssl() {
    require_openssl!();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (_, _, _, tsa_root) = authority_certificates();
    let tsa_root = write_pem(dir, "tsa-root", &tsa_root);

    for bundle in kit_bundles() {
        let response = dir.join(format!("{}.tsr", bundle.file));
        let signature = dir.join(format!("{}.sig", bundle.file));
        fs::write(&response, &bundle.timestamp).unwrap();
        fs::write(&signature, &bundle.signature).unwrap();
        let response = response.to_str().unwrap();

        let reply = openssl(&["ts", "-reply", "-in", response, "-text"]);
        let text = stdout_of(&reply);
        assert!(reply.status.success(), "{}", all_output(&reply));
        assert!(text.contains("Status: Granted."), "{text}");
        assert!(text.contains("Policy OID: 1.3.6.1.4.1.57264.2"), "{text}");
        assert!(text.contains("Hash Algorithm: sha256"), "{text}");
        let gen_time = time::OffsetDateTime::from_unix_timestamp(bundle.gen_time).unwrap();
        let stamp = format!("Time stamp: Jan  1 {:02}:{:02}:{:02} 2026 GMT", gen_time.hour(), gen_time.minute(), gen_time.second());
        assert!(text.contains(&stamp), "{}: expected {stamp} in {text}", bundle.file);
        assert!(bundle.gen_time > bundle.cert_start, "{}: genTime before the certificate", bundle.file);
        assert!(bundle.gen_time < bundle.cert_start + 600, "{}: genTime after the certificate", bundle.file);

        // -verify checks the CMS signature, the ESS signingCertificateV2 attribute, the critical
        // timeStamping EKU and the message imprint over the signature bytes.
        let verified = openssl(&["ts", "-verify", "-in", response, "-data", signature.to_str().unwrap(), "-CAfile", &tsa_root]);
        assert!(stdout_of(&verified).contains("Verification: OK"), "{}: {}", bundle.file, all_output(&verified));
        let by_digest = openssl(&[
            "ts", "-verify", "-in", response, "-digest", &hex::encode(sha256(&bundle.signature)), "-CAfile", &tsa_root,
        ]);
        assert!(stdout_of(&by_digest).contains("Verification: OK"), "{}", all_output(&by_digest));

        let mut other = bundle.signature.clone();
        other.push(0);
        let other_path = dir.join("other.sig");
        fs::write(&other_path, &other).unwrap();
        let mismatch = openssl(&["ts", "-verify", "-in", response, "-data", other_path.to_str().unwrap(), "-CAfile", &tsa_root]);
        assert!(!mismatch.status.success(), "a timestamp verified over other data: {}", all_output(&mismatch));
        assert!(all_output(&mismatch).contains("message imprint mismatch"), "{}", all_output(&mismatch));

        // The token names its three signed attributes.
        let token = dir.join("token.der");
        let token_out = openssl(&["ts", "-reply", "-in", response, "-token_out", "-out", token.to_str().unwrap()]);
        assert!(token_out.status.success(), "{}", all_output(&token_out));
        let cms = stdout_of(&openssl(&["cms", "-cmsout", "-print", "-inform", "DER", "-in", token.to_str().unwrap()]));
        for attribute in ["contentType", "messageDigest", "id-smime-aa-signingCertificateV2"] {
            assert!(cms.contains(&format!("object: {attribute}")), "{}: no {attribute} in {cms}", bundle.file);
        }
    }
}

#[test]
fn signatures_verify_under_openssl() {
    require_openssl!();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    for bundle in kit_bundles() {
        let leaf = write_pem(dir, bundle.file, &bundle.certificate);
        let public_key = dir.join(format!("{}.pub.pem", bundle.file));
        let extracted = openssl(&["x509", "-in", &leaf, "-noout", "-pubkey", "-out", public_key.to_str().unwrap()]);
        assert!(extracted.status.success(), "{}", all_output(&extracted));

        let signature = dir.join(format!("{}.sig", bundle.file));
        let message = dir.join(format!("{}.msg", bundle.file));
        fs::write(&signature, &bundle.signature).unwrap();
        fs::write(&message, &bundle.signed_message).unwrap();
        let verified = openssl(&[
            "dgst", "-sha256", "-verify", public_key.to_str().unwrap(), "-signature", signature.to_str().unwrap(), message.to_str().unwrap(),
        ]);
        assert!(stdout_of(&verified).contains("Verified OK"), "{}: {}", bundle.file, all_output(&verified));

        let mut altered = bundle.signed_message.clone();
        altered[0] ^= 1;
        fs::write(&message, &altered).unwrap();
        let rejected = openssl(&[
            "dgst", "-sha256", "-verify", public_key.to_str().unwrap(), "-signature", signature.to_str().unwrap(), message.to_str().unwrap(),
        ]);
        assert!(!rejected.status.success(), "{}: signature verified over altered bytes", bundle.file);
    }
}

// ---------------------------------------------------------------------------------------------
// Log, trusted root and bundles

#[test]
fn checkpoint_verifies_with_log_key() {
    let note = fs::read(kit().join("log/checkpoint")).unwrap();
    let verified = verify_checkpoint(&note, &[log_verifier()]).unwrap();
    assert_eq!(verified.checkpoint().origin, LOG_ORIGIN);
    assert_eq!(verified.checkpoint().size, LOG_SIZE);

    // The same signature checked without stella-verify, with the key from the trusted root.
    let root = read_json(&kit().join("trusted_root.json"));
    let spki = base64_field(&root, "/tlogs/0/publicKey/rawBytes");
    let key: [u8; 32] = spki[spki.len() - 32..].try_into().unwrap();
    let text = std::str::from_utf8(&note).unwrap();
    let (body, signatures) = text.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    let line = signatures.strip_prefix(&format!("\u{2014} {LOG_ORIGIN} ")).unwrap().trim_end();
    let decoded = STANDARD.decode(line).unwrap();
    let mut key_id_input = format!("{LOG_ORIGIN}\n").into_bytes();
    key_id_input.push(0x01);
    key_id_input.extend_from_slice(&key);
    assert_eq!(decoded[..4], sha256(&key_id_input)[..4]);
    let signature = ed25519_dalek::Signature::from_slice(&decoded[4..]).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap().verify(body.as_bytes(), &signature).unwrap();
}

#[test]
fn tiles_authenticate_against_checkpoint() {
    let note = fs::read(kit().join("log/checkpoint")).unwrap();
    let checkpoint = verify_checkpoint(&note, &[log_verifier()]).unwrap();
    let (tiles, entry_bundles) = log_files();
    let summary = tiles::verify_tile_set(&checkpoint, &tiles, &entry_bundles).unwrap();
    assert_eq!(summary.tree_size, LOG_SIZE);
    assert_eq!(summary.hash_tiles, tiles.len());
    assert_eq!(summary.entry_bundles, entry_bundles.len());
    assert_eq!(summary.entries, LOG_SIZE);
    assert_eq!(tiles::root_from_tiles(LOG_SIZE, &tiles).unwrap(), checkpoint.checkpoint().root_hash);
}

#[test]
fn entries_rebuild_checkpoint_root() {
    // RFC 6962 over the entry bundles, computed here without the kit or stella-verify.
    let (_, entry_bundles) = log_files();
    let mut leaves = Vec::new();
    for n in 0..=273u64 {
        let path = if n < 273 { format!("tile/entries/{n:03}") } else { "tile/entries/273.p/112".to_owned() };
        let mut data = entry_bundles[&path].as_slice();
        while !data.is_empty() {
            let length = usize::from(u16::from_be_bytes([data[0], data[1]]));
            let mut input = vec![0u8];
            input.extend_from_slice(&data[2..2 + length]);
            leaves.push(sha256(&input));
            data = &data[2 + length..];
        }
    }
    assert_eq!(leaves.len(), usize::try_from(LOG_SIZE).unwrap());

    fn tree_hash(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let split = leaves.len().next_power_of_two() / 2;
        let mut input = vec![1u8];
        input.extend_from_slice(&tree_hash(&leaves[..split]));
        input.extend_from_slice(&tree_hash(&leaves[split..]));
        sha256(&input)
    }
    let text = fs::read_to_string(kit().join("log/checkpoint")).unwrap();
    let root_line = text.lines().nth(2).unwrap();
    assert_eq!(STANDARD.encode(tree_hash(&leaves)), root_line);
}

#[test]
fn trusted_root_describes_demo_log() {
    let root = parse_trusted_root(&fs::read(kit().join("trusted_root.json")).unwrap()).unwrap();
    assert_eq!(root.tlogs.len(), 1);
    let log = &root.tlogs[0];
    assert_eq!(log.origin(), LOG_ORIGIN);
    assert_eq!(log.key_details, "PKIX_ED25519");
    assert_eq!(log.valid_for.start, Some(BASE_TIME));
    assert_eq!(log.note_verifier().unwrap(), log_verifier());

    let key: [u8; 32] = log.public_key_der[log.public_key_der.len() - 32..].try_into().unwrap();
    let mut key_id_input = format!("{LOG_ORIGIN}\n").into_bytes();
    key_id_input.push(0x01);
    key_id_input.extend_from_slice(&key);
    assert_eq!(log.log_id, sha256(&key_id_input).to_vec());

    assert_eq!(root.certificate_authorities.len(), 1);
    assert_eq!(root.timestamp_authorities.len(), 1);
}

#[test]
fn bundle_proofs_match_log() {
    let note = fs::read_to_string(kit().join("log/checkpoint")).unwrap();
    let checkpoint = verify_checkpoint(note.as_bytes(), &[log_verifier()]).unwrap();
    let root_hash = checkpoint.checkpoint().root_hash;
    let (tiles, entry_bundles) = log_files();
    let root = read_json(&kit().join("trusted_root.json"));
    let log_id = root.pointer("/tlogs/0/logId/keyId").and_then(Value::as_str).unwrap();

    for bundle in kit_bundles() {
        let entry = bundle.json.pointer("/verificationMaterial/tlogEntries/0").unwrap();
        let name = bundle.file;
        assert_eq!(entry["logIndex"], bundle.log_index.to_string(), "{name}");
        assert_eq!(entry["inclusionProof"]["logIndex"], bundle.log_index.to_string(), "{name}");
        assert_eq!(entry["inclusionProof"]["treeSize"], LOG_SIZE.to_string(), "{name}");
        assert_eq!(entry["inclusionProof"]["rootHash"], STANDARD.encode(root_hash), "{name}");
        assert_eq!(entry["inclusionProof"]["checkpoint"]["envelope"], note.as_str(), "{name}");
        assert_eq!(entry["logId"]["keyId"], log_id, "{name}");
        assert_eq!(entry["kindVersion"]["kind"], "hashedrekord", "{name}");
        assert_eq!(entry["kindVersion"]["version"], "0.0.2", "{name}");

        // The logged entry is the bundle's canonicalizedBody, at logIndex in the entry bundles.
        let body = base64_field(entry, "/canonicalizedBody");
        let bundle_path = tiles::EntryBundleId { index: bundle.log_index / 256, width: if bundle.log_index / 256 == 273 { 112 } else { 256 } }.path();
        let logged = tiles::parse_entry_bundle(&entry_bundles[&bundle_path]).unwrap();
        let position = usize::try_from(bundle.log_index % 256).unwrap();
        assert_eq!(logged[position], body.as_slice(), "{name}");

        // The body is the Rekor v2 hashedrekord 0.0.2 of this signature.
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        let spec = &parsed["spec"]["hashedRekordV002"];
        assert_eq!(parsed["apiVersion"], "0.0.2");
        assert_eq!(spec["data"]["algorithm"], "SHA2_256");
        assert_eq!(spec["data"]["digest"], STANDARD.encode(sha256(&bundle.signed_message)), "{name}");
        assert_eq!(spec["signature"]["content"], STANDARD.encode(&bundle.signature), "{name}");
        assert_eq!(spec["signature"]["verifier"]["x509Certificate"]["rawBytes"], STANDARD.encode(&bundle.certificate));
        assert_eq!(serde_json_canonicalizer::to_vec(&parsed).unwrap(), body, "{name}: body is not RFC 8785 JSON");

        let proof: Vec<merkle::Hash> = entry["inclusionProof"]["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hash| STANDARD.decode(hash.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect();
        merkle::verify_inclusion(bundle.log_index, LOG_SIZE, &merkle::leaf_hash(&body), &proof, &root_hash).unwrap();
        let from_tiles = tiles::inclusion_proof_from_tiles(bundle.log_index, LOG_SIZE, &tiles).unwrap();
        assert_eq!(from_tiles, proof, "{name}: bundle proof differs from the tiles' proof");
    }
}

#[test]
fn bundles_verify_end_to_end() {
    let trust = trust_set();
    let artifact = fs::read(kit().join("artifact.txt")).unwrap();
    let artifact_hex = hex::encode(sha256(&artifact));
    // Verification a day later, long after the 10-minute certificates expired: the RFC 3161
    // timestamps carry the signing time.
    let now = BASE_TIME + 86_400;

    for bundle in kit_bundles() {
        let parsed = stella_verify::bundle::parse_bundle(&bundle.raw).unwrap();
        let source = BundleInclusionSource::new(&parsed, trust.checkpoint_verifiers());
        let input = VerifyInput { bundle_json: &bundle.raw, trust: &trust, artifact: Artifact::Sha256(sha256(&artifact)), now };
        let report = verify_bundle(&input, &source);
        let name = bundle.file;
        assert_eq!(report.outcome, Outcome::Verified, "{name}: {:?}", report.detail);
        assert!(report.reason_codes.is_empty(), "{name}: {:?}", report.reason_codes);

        let signer = report.signer.as_ref().unwrap();
        assert_eq!(signer.identity, SIGNER_IDENTITY);
        assert_eq!(signer.issuer, OIDC_ISSUER);
        assert_eq!(report.signing_time, Some(bundle.gen_time), "{name}");
        let tlog = report.tlog.as_ref().unwrap();
        assert_eq!(tlog.origin, LOG_ORIGIN);
        assert_eq!(tlog.log_index, bundle.log_index);
        assert_eq!(tlog.checkpoint_size, LOG_SIZE);
        assert_eq!(tlog.proof_source, ProofSource::Bundle);
        assert!(report.subjects.iter().any(|subject| subject.sha256 == artifact_hex), "{name}: {:?}", report.subjects);

        if bundle.log_index == PROVENANCE_INDEX {
            assert_eq!(report.kind, Some(EntryKind::Dsse));
            assert_eq!(report.predicate_type.as_deref(), Some(SLSA_PROVENANCE_V1));
            assert_eq!(report.subjects[0].name, "artifact.txt");
        } else {
            assert_eq!(report.kind, Some(EntryKind::MessageSignature));
        }
    }
}

#[test]
fn bundles_reject_other_artifact() {
    let trust = trust_set();
    let other = sha256(b"not the demo artifact");
    for bundle in kit_bundles() {
        let parsed = stella_verify::bundle::parse_bundle(&bundle.raw).unwrap();
        let source = BundleInclusionSource::new(&parsed, trust.checkpoint_verifiers());
        let input = VerifyInput { bundle_json: &bundle.raw, trust: &trust, artifact: Artifact::Sha256(other), now: BASE_TIME + 86_400 };
        let report = verify_bundle(&input, &source);
        assert_eq!(report.outcome, Outcome::Failed, "{}", bundle.file);
        assert!(report.reason_codes.contains(&ReasonCode::SubjectMismatch), "{}: {:?}", bundle.file, report.reason_codes);
    }
}
