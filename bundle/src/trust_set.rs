//! Trust root set bundles (`stella.trust-root-set/v1`).
//!
//! Layout: `trusted_root.json` (a Sigstore `TrustedRoot` document, stored as given), optional
//! `note-keys.txt` (C2SP signed-note verifier keys, one per line, for logs and witnesses the
//! `TrustedRoot` format cannot describe) and optional `kms/<id>.pem` (PEM `PUBLIC KEY` blocks of
//! managed signing keys). The manifest adds `version` and `expires_at`.
//!
//! Opening parses all trust material, but does not check expiry: the caller passes its clock to
//! `TrustSet::check_valid_at`.

use std::collections::{BTreeMap, BTreeSet};

use der::pem::LineEnding;
use spki::SubjectPublicKeyInfoRef;
use stella_verify::note::NoteVerifier;
use stella_verify::trust_root::{KmsKey, TrustSet, TrustedRoot, parse_trusted_root};

use crate::archive::{Unpacked, read_bundle, write_archive};
use crate::error::{BundleError, NEW_ARCHIVE, malformed, rejected};
use crate::limits::Limits;
use crate::manifest::{
    BundleKind, FileEntry, MANIFEST_PATH, MAX_SAFE_INTEGER, Manifest, ManifestFields,
    bundle_digest, format_time,
};
use crate::path::check_name;

/// Path of the Sigstore trusted root.
pub const TRUSTED_ROOT_PATH: &str = "trusted_root.json";
/// Path of the extra note verifier keys.
pub const NOTE_KEYS_PATH: &str = "note-keys.txt";
/// Directory of the KMS public keys.
const KMS_DIR: &str = "kms/";
/// File name suffix of a KMS public key.
const KMS_SUFFIX: &str = ".pem";
/// PEM label of a KMS public key (RFC 7468 §13).
const PEM_LABEL: &str = "PUBLIC KEY";

/// Input of [`pack_trust_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSetInput {
    /// Sigstore `TrustedRoot` JSON, stored byte for byte.
    pub trusted_root_json: Vec<u8>,
    /// C2SP verifier keys (`name+hex8+base64`). Written in canonical form, sorted, duplicates
    /// dropped.
    pub note_keys: Vec<String>,
    /// PEM public keys by id. Each is re-encoded as one `PUBLIC KEY` block with LF line endings.
    pub kms_keys: BTreeMap<String, Vec<u8>>,
    /// Version of the set, at most 2^53 − 1.
    pub version: u64,
    /// Unix seconds (UTC) after which the set is expired.
    pub expires_at: i64,
}

/// An opened trust root set.
#[derive(Debug, Clone)]
pub struct TrustSetBundle {
    /// File name the bundle was opened under, for messages.
    pub file_name: String,
    /// `sha256:<hex>` of `manifest.json`.
    pub digest: String,
    /// The exact `manifest.json` bytes.
    pub manifest_json: Vec<u8>,
    pub manifest: Manifest,
    pub version: u64,
    /// Unix seconds (UTC).
    pub expires_at: i64,
    /// `trusted_root.json` as stored.
    pub trusted_root_json: Vec<u8>,
    pub trusted_root: TrustedRoot,
    /// Verifiers from `note-keys.txt`, in file order.
    pub note_verifiers: Vec<NoteVerifier>,
    /// Keys from `kms/*.pem`, in ascending order of id.
    pub kms_keys: Vec<KmsKey>,
}

impl TrustSetBundle {
    /// Returns the trust set that verification uses.
    pub fn to_trust_set(&self) -> TrustSet {
        self.clone().into_trust_set()
    }

    /// Converts into the trust set that verification uses, without copying.
    pub fn into_trust_set(self) -> TrustSet {
        TrustSet {
            digest: self.digest,
            version: self.version,
            expires_at: self.expires_at,
            trusted_root: self.trusted_root,
            note_verifiers: self.note_verifiers,
            kms_keys: self.kms_keys,
        }
    }
}

fn trust_invalid(archive: &str, path: &str, why: impl Into<String>) -> BundleError {
    BundleError::TrustRootInvalid {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: why.into(),
    }
}

/// Returns the KMS key id of a `kms/<id>.pem` path, or `None` for any other path.
fn kms_id(path: &str) -> Option<&str> {
    path.strip_prefix(KMS_DIR)?
        .strip_suffix(KMS_SUFFIX)
        .filter(|id| !id.contains('/'))
}

/// Parses `note-keys.txt`: one vkey per line, every line ending in `\n`, no empty lines or
/// duplicates.
fn parse_note_keys(archive: &str, content: &[u8]) -> Result<Vec<NoteVerifier>, BundleError> {
    let fail = |why: String| trust_invalid(archive, NOTE_KEYS_PATH, why);
    let text = std::str::from_utf8(content).map_err(|e| fail(format!("not UTF-8: {e}")))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(fail(
            "file is empty or its last line does not end with a newline".into(),
        ));
    };
    let mut seen = BTreeSet::new();
    let mut verifiers = Vec::new();
    for (index, line) in body.split('\n').enumerate() {
        let number = index.saturating_add(1);
        if line.is_empty() {
            return Err(fail(format!("line {number} is empty")));
        }
        let verifier = NoteVerifier::from_vkey(line)
            .map_err(|e| fail(format!("line {number}: invalid verifier key: {e}")))?;
        if !seen.insert(verifier.to_vkey()) {
            return Err(fail(format!(
                "line {number}: duplicate verifier key {}",
                verifier.name()
            )));
        }
        verifiers.push(verifier);
    }
    Ok(verifiers)
}

/// Decodes a KMS key file and checks that it is exactly one canonical `PUBLIC KEY` block holding
/// a DER `SubjectPublicKeyInfo`. Returns the DER bytes.
fn parse_kms_pem(archive: &str, path: &str, content: &[u8]) -> Result<Vec<u8>, BundleError> {
    let (label, der_bytes) = der::pem::decode_vec(content)
        .map_err(|e| trust_invalid(archive, path, format!("invalid PEM: {e}")))?;
    if label != PEM_LABEL {
        return Err(trust_invalid(
            archive,
            path,
            format!("PEM label {label:?}, expected {PEM_LABEL:?}"),
        ));
    }
    SubjectPublicKeyInfoRef::try_from(der_bytes.as_slice()).map_err(|e| {
        trust_invalid(
            archive,
            path,
            format!("not a DER SubjectPublicKeyInfo: {e}"),
        )
    })?;
    Ok(der_bytes)
}

fn encode_kms_pem(path: &str, der_bytes: &[u8]) -> Result<String, BundleError> {
    der::pem::encode_string(PEM_LABEL, LineEnding::LF, der_bytes)
        .map_err(|e| trust_invalid(NEW_ARCHIVE, path, format!("PEM encoding failed: {e}")))
}

/// Opens a trust root set and parses all of its trust material.
///
/// # Errors
///
/// - Any error of [`crate::read_archive`] and of the manifest checks.
/// - [`BundleError::Malformed`] when the format is not `stella.trust-root-set/v1` or
///   `trusted_root.json` is missing.
/// - [`BundleError::EntryRejected`] for a path outside the layout.
/// - [`BundleError::TrustRootInvalid`] when the trusted root, a note key or a KMS key does not
///   parse, or a KMS key is not in the canonical PEM form that [`pack_trust_set`] writes.
pub fn open_trust_set(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<TrustSetBundle, BundleError> {
    let archive = file_name;
    let Unpacked {
        manifest_json,
        manifest,
        files,
    } = read_bundle(archive, tgz, limits, Some(BundleKind::TrustRootSet))?;
    let ManifestFields::TrustRootSet {
        version,
        expires_at,
    } = manifest.fields
    else {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            "manifest fields do not match its format",
        ));
    };

    for entry in &manifest.files {
        let path = entry.path.as_str();
        let allowed = path == TRUSTED_ROOT_PATH
            || path == NOTE_KEYS_PATH
            || kms_id(path).is_some_and(|id| check_name(id).is_ok());
        if !allowed {
            return Err(rejected(
                archive,
                path,
                "not part of the stella.trust-root-set/v1 layout (trusted_root.json, note-keys.txt, kms/<id>.pem)",
            ));
        }
    }

    let Some(trusted_root_json) = files.get(TRUSTED_ROOT_PATH) else {
        return Err(malformed(
            archive,
            TRUSTED_ROOT_PATH,
            "missing, but a trust root set needs a Sigstore trusted root",
        ));
    };
    let trusted_root = parse_trusted_root(trusted_root_json)
        .map_err(|e| trust_invalid(archive, TRUSTED_ROOT_PATH, e.to_string()))?;

    let note_verifiers = match files.get(NOTE_KEYS_PATH) {
        Some(content) => parse_note_keys(archive, content)?,
        None => Vec::new(),
    };

    let mut kms_keys = Vec::new();
    for (path, content) in &files {
        let Some(id) = kms_id(path) else { continue };
        let spki_der = parse_kms_pem(archive, path, content)?;
        if encode_kms_pem(path, &spki_der)?.as_bytes() != content.as_slice() {
            return Err(trust_invalid(
                archive,
                path,
                "not in canonical form (one PUBLIC KEY block, 64-column base64, LF line endings)",
            ));
        }
        kms_keys.push(KmsKey {
            id: id.to_owned(),
            spki_der,
        });
    }

    Ok(TrustSetBundle {
        file_name: file_name.to_owned(),
        digest: bundle_digest(&manifest_json),
        manifest_json,
        manifest,
        version,
        expires_at,
        trusted_root_json: trusted_root_json.clone(),
        trusted_root,
        note_verifiers,
        kms_keys,
    })
}

/// Packs a trust root set after checking that all of its trust material parses.
///
/// # Errors
///
/// Errors name the archive [`NEW_ARCHIVE`].
///
/// - [`BundleError::TrustRootInvalid`] for trust material that does not parse.
/// - [`BundleError::EntryRejected`] for a KMS key id outside the portable character set.
/// - [`BundleError::Malformed`] for a version above 2^53 − 1 or an `expires_at` outside years
///   0 to 9999.
/// - Any error of opening the result under [`Limits::default`], which every packed bundle must
///   pass.
pub fn pack_trust_set(input: &TrustSetInput) -> Result<Vec<u8>, BundleError> {
    parse_trusted_root(&input.trusted_root_json)
        .map_err(|e| trust_invalid(NEW_ARCHIVE, TRUSTED_ROOT_PATH, e.to_string()))?;
    if input.version > MAX_SAFE_INTEGER {
        return Err(malformed(
            NEW_ARCHIVE,
            MANIFEST_PATH,
            format!("version {} is above 2^53 - 1", input.version),
        ));
    }
    format_time(input.expires_at)
        .map_err(|why| malformed(NEW_ARCHIVE, MANIFEST_PATH, format!("expires_at: {why}")))?;

    let mut files = BTreeMap::new();
    files.insert(
        TRUSTED_ROOT_PATH.to_owned(),
        input.trusted_root_json.clone(),
    );

    let mut vkeys = BTreeSet::new();
    for (index, vkey) in input.note_keys.iter().enumerate() {
        let verifier = NoteVerifier::from_vkey(vkey).map_err(|e| {
            trust_invalid(
                NEW_ARCHIVE,
                NOTE_KEYS_PATH,
                format!(
                    "note key {}: invalid verifier key {vkey:?}: {e}",
                    index.saturating_add(1)
                ),
            )
        })?;
        vkeys.insert(verifier.to_vkey());
    }
    if !vkeys.is_empty() {
        let mut text = String::new();
        for vkey in &vkeys {
            text.push_str(vkey);
            text.push('\n');
        }
        files.insert(NOTE_KEYS_PATH.to_owned(), text.into_bytes());
    }

    for (id, pem) in &input.kms_keys {
        let path = format!("{KMS_DIR}{id}{KMS_SUFFIX}");
        check_name(id)
            .map_err(|why| rejected(NEW_ARCHIVE, &path, format!("invalid KMS key id: {why}")))?;
        let spki_der = parse_kms_pem(NEW_ARCHIVE, &path, pem)?;
        files.insert(path.clone(), encode_kms_pem(&path, &spki_der)?.into_bytes());
    }

    let entries = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    let manifest = Manifest::new(
        entries,
        ManifestFields::TrustRootSet {
            version: input.version,
            expires_at: input.expires_at,
        },
    );
    files.insert(
        MANIFEST_PATH.to_owned(),
        manifest.to_canonical_json(NEW_ARCHIVE)?,
    );
    let tgz = write_archive(&files)?;
    open_trust_set(NEW_ARCHIVE, &tgz, &Limits::default())?;
    Ok(tgz)
}
