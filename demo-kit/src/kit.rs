//! Assembly of the demo kit: artifact, signatures, log, trusted root, policy and README.
//!
//! Every value comes from the seed and the fixed timeline below, so a seed always produces
//! byte-identical files. The kit never reads the clock or the OS random number generator.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use p256::ecdsa::DerSignature;
use p256::ecdsa::signature::Signer as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use stella_verify::dsse;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::demo_log::DemoLog;
use crate::pki::{self, DemoPki, Issued, SignerIdentity};
use crate::seed::Seed;
use crate::sigstore::{self, AuthorityInstance, BundleContent, TlogEntry, TlogInstance};
use crate::tsa::{self, TimestampRequest};

/// Start of the kit's timeline, 2026-01-01T00:00:00Z: CA, TSA and log validity begin here.
pub const BASE_TIME: i64 = 1_767_225_600;
/// CA and TSA certificates expire ten years after BASE_TIME (2036-01-01T00:00:00Z).
pub const AUTHORITY_NOT_AFTER: i64 = BASE_TIME + 3_652 * 86_400;
/// Lifetime of code-signing leaf certificates, as Fulcio issues them: 10 minutes.
pub const LEAF_LIFETIME_SECONDS: i64 = 600;
/// When the provenance signer's certificate starts (2026-01-01T01:00:00Z).
pub const PROVENANCE_CERT_START: i64 = BASE_TIME + 3_600;
/// When the artifact signer's certificate starts (2026-01-01T01:02:00Z).
pub const SIGNATURE_CERT_START: i64 = BASE_TIME + 3_720;
/// Delay from certificate start to the RFC 3161 genTime of its signature.
const TIMESTAMP_DELAY_SECONDS: i64 = 21;

/// Origin, key name and trusted-root host of the demo log.
pub const LOG_ORIGIN: &str = "demo-log.stella.example";
pub const LOG_BASE_URL: &str = "https://demo-log.stella.example";
/// Entries in the demo log. 70,000 entries need three tile levels: 273 full level-0 tiles and
/// `tile/0/273.p/112`, `tile/1/000` and `tile/1/001.p/17`, and `tile/2/000.p/1`.
pub const LOG_SIZE: u64 = 70_000;
/// Log index of the provenance entry, inside full tiles at levels 0 and 1.
pub const PROVENANCE_INDEX: u64 = 40_000;
/// Log index of the artifact signature entry, inside the right-edge partial tiles.
pub const SIGNATURE_INDEX: u64 = 69_990;
// The build fails unless both real entries lie inside the log at distinct indexes.
const _: () = assert!(PROVENANCE_INDEX < LOG_SIZE);
const _: () = assert!(SIGNATURE_INDEX < LOG_SIZE);
const _: () = assert!(PROVENANCE_INDEX != SIGNATURE_INDEX);

/// Identity in the SAN of both signing certificates.
pub const SIGNER_IDENTITY: &str =
    "https://github.com/stella-demo/release/.github/workflows/release.yml@refs/heads/main";
/// OIDC issuer in both signing certificates.
pub const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

const FULCIO_URI: &str = "https://fulcio.stella.example";
const TSA_URI: &str = "https://tsa.stella.example/api/v1/timestamp";
const ARTIFACT_NAME: &str = "artifact.txt";

/// The generated files, keyed by path relative to the output directory.
pub struct Kit {
    pub files: BTreeMap<String, Vec<u8>>,
    pub log_size: u64,
    pub log_root_base64: String,
    pub artifact_sha256_hex: String,
}

/// One signature, its certificate, timestamp and log entry, before the log exists.
struct SignedEvent {
    certificate: Issued<p256::ecdsa::SigningKey>,
    signature: Vec<u8>,
    timestamp: Vec<u8>,
    body: Vec<u8>,
}

/// Generates the whole kit in memory.
pub fn generate(seed: &Seed) -> Result<Kit> {
    let pki = pki::build_pki(seed, BASE_TIME, AUTHORITY_NOT_AFTER)?;
    let identity = SignerIdentity { san_uri: SIGNER_IDENTITY, oidc_issuer: OIDC_ISSUER };

    let artifact = artifact_bytes(seed);
    let artifact_digest: [u8; 32] = Sha256::digest(&artifact).into();
    let artifact_sha256_hex = hex::encode(artifact_digest);

    // Provenance: a DSSE envelope over an in-toto statement, logged as hashedrekord over the
    // SHA-256 of its pre-authentication encoding.
    let statement = sigstore::statement(
        ARTIFACT_NAME,
        &artifact_sha256_hex,
        SLSA_PROVENANCE_V1,
        provenance_predicate(seed),
    );
    let payload = sigstore::canonical_json(&statement)?;
    let pae = dsse::pae(sigstore::IN_TOTO_PAYLOAD_TYPE, &payload);
    let provenance = sign_event(seed, &pki, &identity, "provenance", PROVENANCE_CERT_START, &pae)?;

    // Signature: an ECDSA signature over the artifact bytes.
    let signature = sign_event(seed, &pki, &identity, "signature", SIGNATURE_CERT_START, &artifact)?;

    let log = build_log(seed, &provenance.body, &signature.body)?;
    let checkpoint = log.checkpoint()?;
    let log_id = log.log_id();

    let provenance_bundle = bundle_json(
        &log,
        &log_id,
        &checkpoint,
        PROVENANCE_INDEX,
        &provenance,
        &BundleContent::Dsse {
            payload_type: sigstore::IN_TOTO_PAYLOAD_TYPE,
            payload: &payload,
            signature: &provenance.signature,
        },
    )?;
    let signature_bundle = bundle_json(
        &log,
        &log_id,
        &checkpoint,
        SIGNATURE_INDEX,
        &signature,
        &BundleContent::MessageSignature { digest: &artifact_digest, signature: &signature.signature },
    )?;

    let mut files = BTreeMap::new();
    files.insert(ARTIFACT_NAME.to_owned(), artifact.clone());
    files.insert(
        format!("{ARTIFACT_NAME}.sha256"),
        format!("{artifact_sha256_hex}  {ARTIFACT_NAME}\n").into_bytes(),
    );
    files.insert("provenance.sigstore.json".to_owned(), provenance_bundle);
    files.insert("signature.sigstore.json".to_owned(), signature_bundle);
    files.insert("trusted_root.json".to_owned(), trusted_root_json(&pki, &log, &log_id)?);
    files.insert("log/checkpoint".to_owned(), checkpoint.clone().into_bytes());
    for (path, bytes) in log.tiles()? {
        files.insert(format!("log/{path}"), bytes);
    }
    files.insert("log.vkey".to_owned(), format!("{}\n", log.vkey()).into_bytes());
    files.insert("policy.yaml".to_owned(), policy_yaml().into_bytes());
    let readme = readme_text(seed, &log, &artifact_sha256_hex, artifact.len())?;
    files.insert("README.txt".to_owned(), readme.into_bytes());

    Ok(Kit {
        files,
        log_size: log.size(),
        log_root_base64: log.root_base64(),
        artifact_sha256_hex,
    })
}

/// Writes the kit into `dir`, which must be missing or empty so no stale file mixes in.
pub fn write_kit(dir: &Path, kit: &Kit) -> Result<()> {
    if dir.exists() {
        let mut listing = fs::read_dir(dir)
            .with_context(|| format!("cannot read output directory {}", dir.display()))?;
        if listing.next().is_some() {
            bail!(
                "output directory {} is not empty; choose a new or empty directory",
                dir.display()
            );
        }
    }
    for (relative, bytes) in &kit.files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn artifact_bytes(seed: &Seed) -> Vec<u8> {
    let build = hex::encode(seed.derive("artifact-build-id", 0));
    format!(
        "stella demo release 1.0.0\n\
         This file stands in for a release artifact in the Stella air-gap promotion demo.\n\
         build {build}\n"
    )
    .into_bytes()
}

/// Builds a SLSA v1 provenance predicate in the shape GitHub Actions builders write.
fn provenance_predicate(seed: &Seed) -> serde_json::Value {
    let commit = hex::encode(&seed.derive("source-commit", 0)[..20]);
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {
                    "ref": "refs/heads/main",
                    "repository": "https://github.com/stella-demo/release",
                    "path": ".github/workflows/release.yml",
                },
            },
            "internalParameters": { "github": { "event_name": "push" } },
            "resolvedDependencies": [{
                "uri": "git+https://github.com/stella-demo/release@refs/heads/main",
                "digest": { "gitCommit": commit },
            }],
        },
        "runDetails": {
            "builder": { "id": SIGNER_IDENTITY },
            "metadata": {
                "invocationId": "https://github.com/stella-demo/release/actions/runs/1/attempts/1",
                "startedOn": rfc3339(PROVENANCE_CERT_START - 300).unwrap_or_default(),
                "finishedOn": rfc3339(PROVENANCE_CERT_START - 10).unwrap_or_default(),
            },
        },
    })
}

/// Issues a leaf certificate, signs `message` with it, stamps the signature and builds the
/// log entry. `label` separates the derived keys and serial numbers of each event.
fn sign_event(
    seed: &Seed,
    pki: &DemoPki,
    identity: &SignerIdentity<'_>,
    label: &str,
    cert_start: i64,
    message: &[u8],
) -> Result<SignedEvent> {
    let certificate = pki::issue_code_signing(
        seed,
        &format!("{label}-signer"),
        &pki.fulcio_intermediate,
        identity,
        (cert_start, cert_start + LEAF_LIFETIME_SECONDS),
    )?;
    let signature: DerSignature = certificate.key.sign(message);
    let signature = signature.as_bytes().to_vec();
    // The log entry records SHA-256 of what was signed: the artifact, or the DSSE PAE.
    let logged_digest: [u8; 32] = Sha256::digest(message).into();

    let timestamp = tsa::timestamp_response(
        &pki.tsa_leaf,
        &TimestampRequest {
            message: &signature,
            gen_time: cert_start + TIMESTAMP_DELAY_SECONDS,
            serial: &seed.positive_integer(&format!("{label}-timestamp-serial"), 20),
            nonce: &seed.positive_integer(&format!("{label}-timestamp-nonce"), 8),
        },
    )
    .with_context(|| format!("timestamping the {label} signature"))?;
    let body = sigstore::hashedrekord_entry(&logged_digest, &signature, &certificate.der)?;
    Ok(SignedEvent { certificate, signature, timestamp, body })
}

/// Builds the log: filler entries with the two real entries at their fixed indexes.
fn build_log(seed: &Seed, provenance_body: &[u8], signature_body: &[u8]) -> Result<DemoLog> {
    let mut entries = Vec::with_capacity(usize::try_from(LOG_SIZE)?);
    for index in 0..LOG_SIZE {
        let entry = match index {
            PROVENANCE_INDEX => provenance_body.to_vec(),
            SIGNATURE_INDEX => signature_body.to_vec(),
            _ => format!("stella-demo-kit filler entry {index}\n").into_bytes(),
        };
        entries.push(entry);
    }
    DemoLog::new(LOG_ORIGIN, &seed.ed25519_key("log"), entries)
}

fn bundle_json(
    log: &DemoLog,
    log_id: &[u8; 32],
    checkpoint: &str,
    index: u64,
    event: &SignedEvent,
    content: &BundleContent<'_>,
) -> Result<Vec<u8>> {
    let proof = log.inclusion_proof(index)?;
    let entry = TlogEntry {
        log_index: index,
        log_id,
        body: &event.body,
        tree_size: log.size(),
        root_hash: log.root(),
        proof: &proof,
        checkpoint,
    };
    sigstore::pretty_json(&sigstore::bundle(&event.certificate.der, &entry, &event.timestamp, content))
}

fn trusted_root_json(pki: &DemoPki, log: &DemoLog, log_id: &[u8; 32]) -> Result<Vec<u8>> {
    let valid_from = rfc3339(BASE_TIME)?;
    let public_key_der = log.public_key_der()?;
    let root = sigstore::trusted_root(
        &TlogInstance { base_url: LOG_BASE_URL, public_key_der: &public_key_der, log_id, valid_from: &valid_from },
        &AuthorityInstance {
            organization: pki::ORGANIZATION,
            common_name: pki::FULCIO_ROOT_CN,
            uri: FULCIO_URI,
            chain: vec![&pki.fulcio_intermediate.der, &pki.fulcio_root.der],
            valid_from: &valid_from,
        },
        &AuthorityInstance {
            organization: pki::ORGANIZATION,
            common_name: pki::TSA_LEAF_CN,
            uri: TSA_URI,
            chain: vec![&pki.tsa_leaf.der, &pki.tsa_root.der],
            valid_from: &valid_from,
        },
    );
    sigstore::pretty_json(&root)
}

/// Formats Unix seconds as RFC 3339 UTC, such as `2026-01-01T00:00:00Z`.
pub fn rfc3339(unix_seconds: i64) -> Result<String> {
    let time = OffsetDateTime::from_unix_timestamp(unix_seconds)
        .with_context(|| format!("time {unix_seconds} is out of range"))?;
    time.format(&Rfc3339).context("RFC 3339 formatting failed")
}

fn policy_yaml() -> String {
    format!(
        "# Gate policy of the Stella demo kit, written by stella-demo-kit.\n\
         # Promotion to prod needs SLSA provenance signed by the demo release workflow.\n\
         environments:\n\
         \x20 prod:\n\
         \x20   require:\n\
         \x20     - predicate_type: {SLSA_PROVENANCE_V1}\n\
         \x20       identity: {SIGNER_IDENTITY}\n\
         \x20       issuer: {OIDC_ISSUER}\n\
         \x20   on_missing_proof: pending\n"
    )
}

fn readme_text(seed: &Seed, log: &DemoLog, artifact_sha256_hex: &str, artifact_len: usize) -> Result<String> {
    let size = log.size();
    Ok(format!(
        "Stella demo kit\n\
         ===============\n\
         \n\
         Written by stella-demo-kit from seed {seed_hex}.\n\
         The same seed always produces byte-identical files, except the random TLS\n\
         certificates under tls/.\n\
         \n\
         Every private key behind the signed material can be rebuilt from that seed, so the kit proves\n\
         nothing about real software. Use it only to learn and test the air-gap promotion\n\
         runbook, and never add its trusted root to a production trust set.\n\
         \n\
         Files\n\
         -----\n\
         artifact.txt              release artifact ({artifact_len} bytes)\n\
         artifact.txt.sha256       its SHA-256 in sha256sum format: {artifact_sha256_hex}\n\
         provenance.sigstore.json  Sigstore bundle v0.3: DSSE envelope with an in-toto SLSA v1\n\
         \x20                         provenance statement for artifact.txt, log index {PROVENANCE_INDEX}\n\
         signature.sigstore.json   Sigstore bundle v0.3: signature over artifact.txt,\n\
         \x20                         log index {SIGNATURE_INDEX}\n\
         trusted_root.json         Sigstore trusted root: the demo log, the demo code-signing CA\n\
         \x20                         (Fulcio-like, P-384) and the demo timestamp authority (P-384)\n\
         log/checkpoint            signed checkpoint of the demo log (size {size})\n\
         log/tile/<L>/...          hash tiles (C2SP tlog-tiles), levels 0 to 2\n\
         log/tile/entries/...      entry bundles; entries {PROVENANCE_INDEX} and {SIGNATURE_INDEX} are\n\
         \x20                         the two bundles' entries, all others are filler\n\
         log.vkey                  the log's checkpoint verifier key (C2SP signed-note vkey)\n\
         policy.yaml               gate policy: environment prod requires the SLSA provenance\n\
         \x20                         from the demo identity, pending while proofs are missing\n\
         tls/                      TLS for the demo's services: ca.pem, server.pem and\n\
         \x20                         server-key.pem (localhost, 127.0.0.1, attestor, gate),\n\
         \x20                         client.pem and client-key.pem; random on every run, not\n\
         \x20                         from the seed\n\
         README.txt                this file\n\
         \n\
         Log\n\
         ---\n\
         origin      {origin}\n\
         base URL    {LOG_BASE_URL}\n\
         tree size   {size}\n\
         root hash   {root}\n\
         vkey        {vkey}\n\
         \n\
         Signer\n\
         ------\n\
         identity    {SIGNER_IDENTITY}\n\
         issuer      {OIDC_ISSUER}\n\
         Each bundle has its own 10-minute P-256 certificate from the demo CA, and an RFC 3161\n\
         timestamp from the demo TSA gives the signing time (Rekor v2 logs carry no time).\n\
         Provenance certificate from {provenance_start}, artifact signature certificate\n\
         from {signature_start}.\n\
         CA and TSA certificates are valid from {base} to {end}.\n\
         \n\
         Try it\n\
         ------\n\
         stella trust pack --trusted-root trusted_root.json --version 1 --expires 30d --out trust.tgz\n\
         stella trust import --bundle trust.tgz\n\
         stella rekor tiles pack --tiles-dir log --out rekor-tiles.tgz\n\
         stella rekor tiles import --bundle rekor-tiles.tgz\n\
         stella evidence pack --sigstore-bundle provenance.sigstore.json \\\n\
         \x20   --sigstore-bundle signature.sigstore.json --out evidence.tgz\n\
         stella evidence verify --bundle evidence.tgz --offline\n\
         \n\
         Start the gate with --policy policy.yaml, then create and evaluate a promotion of\n\
         subject sha256:{artifact_sha256_hex} to prod.\n",
        seed_hex = seed.to_hex(),
        origin = log.origin(),
        root = log.root_base64(),
        vkey = log.vkey(),
        provenance_start = rfc3339(PROVENANCE_CERT_START)?,
        signature_start = rfc3339(SIGNATURE_CERT_START)?,
        base = rfc3339(BASE_TIME)?,
        end = rfc3339(AUTHORITY_NOT_AFTER)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_matches_documented_dates() {
        let table = [
            ("BASE_TIME", BASE_TIME, "2026-01-01T00:00:00Z"),
            ("AUTHORITY_NOT_AFTER", AUTHORITY_NOT_AFTER, "2036-01-01T00:00:00Z"),
            ("PROVENANCE_CERT_START", PROVENANCE_CERT_START, "2026-01-01T01:00:00Z"),
            ("SIGNATURE_CERT_START", SIGNATURE_CERT_START, "2026-01-01T01:02:00Z"),
        ];
        for (name, value, expected) in table {
            assert_eq!(rfc3339(value).unwrap(), expected, "{name}");
        }
    }
}
