//! Portable evidence bundles (`stella.evidence/v1`).
//!
//! Layout: one or more Sigstore bundles at `sigstore/<name>.sigstore.json`, stored byte for byte.
//! The manifest adds `subjects`, the artifacts (name and SHA-256 digest) that the evidence is
//! about. The bundle id is `sha256:<hex>` of `manifest.json`, which lists every file's digest.
//!
//! Opening checks that each Sigstore bundle parses; verifying signatures, certificates and log
//! inclusion is the verifier's job.

use std::collections::{BTreeMap, BTreeSet};

use stella_verify::bundle::parse_bundle;

use crate::archive::{Unpacked, read_bundle, write_archive};
use crate::error::{BundleError, NEW_ARCHIVE, malformed, rejected};
use crate::limits::Limits;
use crate::manifest::{
    BundleKind, FileEntry, MANIFEST_PATH, Manifest, ManifestFields, Subject, bundle_digest,
    check_digest,
};
use crate::path::{check_name, check_text};

/// Directory of the Sigstore bundles.
const SIGSTORE_DIR: &str = "sigstore/";
/// File name suffix of a Sigstore bundle.
const SIGSTORE_SUFFIX: &str = ".sigstore.json";

/// Input of [`pack_evidence`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvidenceInput {
    /// Sigstore bundle JSON by name; stored at `sigstore/<name>.sigstore.json`. Names use the
    /// characters `A-Z a-z 0-9 . _ -` and do not start with a dot.
    pub sigstore_bundles: BTreeMap<String, Vec<u8>>,
    /// Subjects in any order; written sorted by name, then digest, with exact repeats dropped.
    pub subjects: Vec<Subject>,
}

/// An opened portable evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceBundle {
    /// File name the bundle was opened under, for messages.
    pub file_name: String,
    /// `sha256:<hex>` of `manifest.json`.
    pub id: String,
    /// The exact `manifest.json` bytes.
    pub manifest_json: Vec<u8>,
    pub manifest: Manifest,
    /// Subjects in ascending order of (name, digest).
    pub subjects: Vec<Subject>,
    /// Sigstore bundle JSON by path inside the archive (`sigstore/<name>.sigstore.json`).
    pub sigstore_bundles: BTreeMap<String, Vec<u8>>,
}

/// Returns the name of a `sigstore/<name>.sigstore.json` path, or `None` for any other path.
fn sigstore_name(path: &str) -> Option<&str> {
    path.strip_prefix(SIGSTORE_DIR)?
        .strip_suffix(SIGSTORE_SUFFIX)
        .filter(|name| !name.contains('/') && check_name(name).is_ok())
}

fn check_sigstore_bundle(archive: &str, path: &str, json: &[u8]) -> Result<(), BundleError> {
    parse_bundle(json).map_err(|e| BundleError::SigstoreBundleInvalid {
        archive: archive.to_owned(),
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    Ok(())
}

/// Opens a portable evidence bundle.
///
/// # Errors
///
/// - Any error of [`crate::read_archive`] and of the manifest checks.
/// - [`BundleError::Malformed`] when the format is not `stella.evidence/v1` or the bundle
///   contains no Sigstore bundle.
/// - [`BundleError::EntryRejected`] for a path outside the layout.
/// - [`BundleError::SigstoreBundleInvalid`] for a Sigstore bundle that does not parse.
pub fn open_evidence(
    file_name: &str,
    tgz: &[u8],
    limits: &Limits,
) -> Result<EvidenceBundle, BundleError> {
    let archive = file_name;
    let Unpacked {
        manifest_json,
        manifest,
        mut files,
    } = read_bundle(archive, tgz, limits, Some(BundleKind::Evidence))?;
    let ManifestFields::Evidence { subjects } = &manifest.fields else {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            "manifest fields do not match its format",
        ));
    };
    let subjects = subjects.clone();
    files.remove(MANIFEST_PATH);

    for (path, json) in &files {
        if sigstore_name(path).is_none() {
            return Err(rejected(
                archive,
                path,
                "not part of the stella.evidence/v1 layout (sigstore/<name>.sigstore.json)",
            ));
        }
        check_sigstore_bundle(archive, path, json)?;
    }
    if files.is_empty() {
        return Err(malformed(
            archive,
            MANIFEST_PATH,
            "the bundle holds no Sigstore bundle",
        ));
    }

    Ok(EvidenceBundle {
        file_name: file_name.to_owned(),
        id: bundle_digest(&manifest_json),
        manifest_json,
        manifest,
        subjects,
        sigstore_bundles: files,
    })
}

/// Packs Sigstore bundles and subjects into a portable evidence bundle.
///
/// # Errors
///
/// Errors name the archive [`NEW_ARCHIVE`].
///
/// - [`BundleError::EntryRejected`] for an invalid bundle name.
/// - [`BundleError::SigstoreBundleInvalid`] for a Sigstore bundle that does not parse.
/// - [`BundleError::Malformed`] for an invalid subject, or no Sigstore bundle at all.
/// - Any error of opening the result under [`Limits::default`].
pub fn pack_evidence(input: &EvidenceInput) -> Result<Vec<u8>, BundleError> {
    if input.sigstore_bundles.is_empty() {
        return Err(malformed(
            NEW_ARCHIVE,
            MANIFEST_PATH,
            "an evidence bundle needs at least one Sigstore bundle",
        ));
    }
    let mut files = BTreeMap::new();
    for (name, json) in &input.sigstore_bundles {
        let path = format!("{SIGSTORE_DIR}{name}{SIGSTORE_SUFFIX}");
        check_name(name).map_err(|why| {
            rejected(
                NEW_ARCHIVE,
                &path,
                format!("invalid Sigstore bundle name: {why}"),
            )
        })?;
        check_sigstore_bundle(NEW_ARCHIVE, &path, json)?;
        files.insert(path, json.clone());
    }

    let mut subjects = BTreeSet::new();
    for (index, subject) in input.subjects.iter().enumerate() {
        let at = format!("subject {}", index.saturating_add(1));
        check_text(&subject.name)
            .map_err(|why| malformed(NEW_ARCHIVE, MANIFEST_PATH, format!("{at}: name: {why}")))?;
        check_digest(&subject.digest)
            .map_err(|why| malformed(NEW_ARCHIVE, MANIFEST_PATH, format!("{at}: {why}")))?;
        subjects.insert(subject.clone());
    }

    let entries = files
        .iter()
        .map(|(path, content)| FileEntry::for_content(path, content))
        .collect();
    let manifest = Manifest::new(
        entries,
        ManifestFields::Evidence {
            subjects: subjects.into_iter().collect(),
        },
    );
    files.insert(
        MANIFEST_PATH.to_owned(),
        manifest.to_canonical_json(NEW_ARCHIVE)?,
    );
    let tgz = write_archive(&files)?;
    open_evidence(NEW_ARCHIVE, &tgz, &Limits::default())?;
    Ok(tgz)
}
