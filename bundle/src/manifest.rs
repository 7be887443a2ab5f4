//! `manifest.json`, the table of contents of every bundle.
//!
//! A manifest is RFC 8785 (JCS) canonical JSON. Readers accept only the exact bytes the packer
//! writes: a manifest with other whitespace, key order, number spelling or string escapes, an
//! unknown field or an unknown `format` is rejected. A bundle's identity is the SHA-256 of these
//! bytes, so canonical form is what makes that identity stable.
//!
//! Integers are limited to 2^53 − 1, because RFC 8785 writes numbers as IEEE 754 doubles and
//! larger integers would not survive a round trip.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{BundleError, malformed, rejected};
use crate::path::{check_path, check_text};

/// Path of the manifest inside every bundle.
pub const MANIFEST_PATH: &str = "manifest.json";

/// `format` of a trust root set.
pub const FORMAT_TRUST_ROOT_SET: &str = "stella.trust-root-set/v1";
/// `format` of a Rekor tile/proof bundle.
pub const FORMAT_REKOR_TILES: &str = "stella.rekor-tiles/v1";
/// `format` of a portable evidence bundle.
pub const FORMAT_EVIDENCE: &str = "stella.evidence/v1";

/// Largest integer a manifest may contain: 2^53 − 1, the largest integer that an IEEE 754 double
/// represents exactly (RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The three bundle kinds of format version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BundleKind {
    TrustRootSet,
    RekorTiles,
    Evidence,
}

impl BundleKind {
    /// Returns the manifest `format` string of this kind.
    pub const fn format(self) -> &'static str {
        match self {
            BundleKind::TrustRootSet => FORMAT_TRUST_ROOT_SET,
            BundleKind::RekorTiles => FORMAT_REKOR_TILES,
            BundleKind::Evidence => FORMAT_EVIDENCE,
        }
    }

    /// Returns the kind whose `format` string is `format`.
    pub fn from_format(format: &str) -> Option<BundleKind> {
        [
            BundleKind::TrustRootSet,
            BundleKind::RekorTiles,
            BundleKind::Evidence,
        ]
        .into_iter()
        .find(|kind| kind.format() == format)
    }

    /// Top-level manifest keys of this kind, in RFC 8785 order.
    fn keys(self) -> &'static [&'static str] {
        match self {
            BundleKind::TrustRootSet => &["expires_at", "files", "format", "version"],
            BundleKind::RekorTiles => &["files", "format", "logs"],
            BundleKind::Evidence => &["files", "format", "subjects"],
        }
    }
}

/// One file of a bundle other than `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the archive.
    pub path: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Size of the content in bytes.
    pub size: u64,
}

impl FileEntry {
    /// Describes `content` stored at `path`.
    pub fn for_content(path: &str, content: &[u8]) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            sha256: sha256_hex(content),
            size: u64::try_from(content.len()).unwrap_or(u64::MAX),
        }
    }
}

/// A log in a Rekor tile bundle, and the directory of its tiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRef {
    /// Checkpoint origin of the log, such as `log2025-1.rekor.sigstore.dev`.
    pub origin: String,
    /// Directory of the log inside the archive: `logs/<k>` for the k-th log, counting from 0.
    pub dir: String,
}

/// An artifact that an evidence bundle is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subject {
    /// Name of the artifact, such as an image reference or file name.
    pub name: String,
    /// Digest of the artifact: `sha256:` and 64 lowercase hex digits.
    pub digest: String,
}

impl Subject {
    /// Returns the 64 hex digits of the digest, without the `sha256:` prefix.
    #[must_use]
    pub fn sha256_hex(&self) -> &str {
        self.digest
            .strip_prefix(DIGEST_PREFIX)
            .unwrap_or(&self.digest)
    }
}

/// Manifest fields that depend on the bundle kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestFields {
    TrustRootSet {
        /// Version of the trust root set; an importer refuses to go back to a lower one.
        version: u64,
        /// Unix seconds (UTC) after which the set must not be used; RFC 3339 in JSON.
        expires_at: i64,
    },
    RekorTiles {
        /// Logs in ascending order of origin.
        logs: Vec<LogRef>,
    },
    Evidence {
        /// Subjects in ascending order of (name, digest).
        subjects: Vec<Subject>,
    },
}

impl ManifestFields {
    /// Returns the bundle kind these fields belong to.
    pub fn kind(&self) -> BundleKind {
        match self {
            ManifestFields::TrustRootSet { .. } => BundleKind::TrustRootSet,
            ManifestFields::RekorTiles { .. } => BundleKind::RekorTiles,
            ManifestFields::Evidence { .. } => BundleKind::Evidence,
        }
    }
}

/// A parsed `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// One of [`FORMAT_TRUST_ROOT_SET`], [`FORMAT_REKOR_TILES`] and [`FORMAT_EVIDENCE`].
    pub format: String,
    /// Every file of the bundle except `manifest.json`, in ascending order of path.
    pub files: Vec<FileEntry>,
    /// Kind-specific fields.
    pub fields: ManifestFields,
}

/// Prefix of digests in manifests and bundle ids.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Returns the SHA-256 of `data` in lowercase hex.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Returns `sha256:<hex>` of `data`: the digest or id of a bundle when `data` is its
/// `manifest.json`.
#[must_use]
pub fn bundle_digest(manifest_json: &[u8]) -> String {
    format!("{DIGEST_PREFIX}{}", sha256_hex(manifest_json))
}

fn is_lower_hex_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a `sha256:<64 lowercase hex>` digest string.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix(DIGEST_PREFIX) {
        Some(hex) if is_lower_hex_digest(hex) => Ok(()),
        _ => Err(format!(
            "digest {digest:?} is not \"sha256:\" followed by 64 lowercase hex digits"
        )),
    }
}

/// Formats Unix seconds as RFC 3339 UTC without fractional seconds, such as
/// `2027-01-01T00:00:00Z`.
///
/// # Errors
///
/// A description of the fault when the time lies outside years 0 to 9999.
pub fn format_time(unix_seconds: i64) -> Result<String, String> {
    let time = OffsetDateTime::from_unix_timestamp(unix_seconds)
        .map_err(|e| format!("time {unix_seconds} is out of range: {e}"))?;
    time.format(&Rfc3339)
        .map_err(|e| format!("time {unix_seconds} has no RFC 3339 form: {e}"))
}

/// Parses the RFC 3339 UTC form that [`format_time`] writes into Unix seconds.
///
/// # Errors
///
/// A description of the fault for any other text, including other RFC 3339 spellings of the same
/// time (an offset, fractional seconds, lowercase `t` or `z`).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("{text:?} is not RFC 3339: {e}"))?;
    let seconds = time.unix_timestamp();
    if format_time(seconds).as_deref() != Ok(text) {
        return Err(format!(
            "{text:?} is not in the form YYYY-MM-DDTHH:MM:SSZ (UTC, no fractional seconds)"
        ));
    }
    Ok(seconds)
}

impl Manifest {
    /// Builds a manifest of the kind of `fields`, with `files` sorted by path.
    pub fn new(mut files: Vec<FileEntry>, fields: ManifestFields) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            format: fields.kind().format().to_owned(),
            files,
            fields,
        }
    }

    /// Returns the bundle kind.
    pub fn kind(&self) -> BundleKind {
        self.fields.kind()
    }

    /// Serialises the manifest as RFC 8785 canonical JSON, the exact bytes of `manifest.json`.
    ///
    /// # Errors
    ///
    /// [`BundleError::Malformed`] when a value cannot be represented: an `expires_at` outside
    /// years 0–9999 or an integer above [`MAX_SAFE_INTEGER`].
    pub fn to_canonical_json(&self, archive: &str) -> Result<Vec<u8>, BundleError> {
        let fail = |why: String| malformed(archive, MANIFEST_PATH, why);
        let mut files = Vec::with_capacity(self.files.len());
        for entry in &self.files {
            if entry.size > MAX_SAFE_INTEGER {
                return Err(fail(format!(
                    "{}: size {} is above 2^53 - 1",
                    entry.path, entry.size
                )));
            }
            files.push(json!({"path": entry.path, "sha256": entry.sha256, "size": entry.size}));
        }
        let mut object = Map::new();
        object.insert("format".into(), Value::from(self.format.clone()));
        object.insert("files".into(), Value::Array(files));
        match &self.fields {
            ManifestFields::TrustRootSet {
                version,
                expires_at,
            } => {
                if *version > MAX_SAFE_INTEGER {
                    return Err(fail(format!("version {version} is above 2^53 - 1")));
                }
                object.insert("version".into(), Value::from(*version));
                object.insert(
                    "expires_at".into(),
                    Value::from(format_time(*expires_at).map_err(fail)?),
                );
            }
            ManifestFields::RekorTiles { logs } => {
                let logs = logs
                    .iter()
                    .map(|log| json!({"origin": log.origin, "dir": log.dir}))
                    .collect();
                object.insert("logs".into(), Value::Array(logs));
            }
            ManifestFields::Evidence { subjects } => {
                let subjects = subjects
                    .iter()
                    .map(|subject| json!({"name": subject.name, "digest": subject.digest}))
                    .collect();
                object.insert("subjects".into(), Value::Array(subjects));
            }
        }
        serde_json_canonicalizer::to_vec(&Value::Object(object))
            .map_err(|e| fail(format!("canonical JSON serialisation failed: {e}")))
    }

    /// Parses and checks `manifest.json` bytes of the archive named `archive`.
    ///
    /// # Errors
    ///
    /// [`BundleError::Malformed`] naming `manifest.json` and the offending field: invalid or
    /// non-canonical JSON, a missing, unknown or mistyped field, an unknown `format`, unsorted or
    /// duplicate files, logs or subjects, or an integer above [`MAX_SAFE_INTEGER`].
    /// [`BundleError::EntryRejected`] when a listed path breaks the path rules.
    pub fn parse(archive: &str, bytes: &[u8]) -> Result<Manifest, BundleError> {
        let fail = |why: String| malformed(archive, MANIFEST_PATH, why);
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| fail(format!("invalid JSON: {e}")))?;
        let canonical = serde_json_canonicalizer::to_vec(&value)
            .map_err(|e| fail(format!("cannot canonicalise: {e}")))?;
        if canonical != bytes {
            return Err(fail(
                "not RFC 8785 canonical JSON (a manifest must be byte-for-byte what the packer writes)".into(),
            ));
        }
        let Value::Object(object) = value else {
            return Err(fail("top level is not a JSON object".into()));
        };
        let format = string_field(&object, "format", "").map_err(fail)?;
        let kind = BundleKind::from_format(format).ok_or_else(|| {
            fail(format!(
                "unknown format {format:?}, expected {FORMAT_TRUST_ROOT_SET:?}, {FORMAT_REKOR_TILES:?} or {FORMAT_EVIDENCE:?}"
            ))
        })?;
        let allowed = kind.keys();
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(fail(format!(
                "unknown field {unknown:?} for format {format}"
            )));
        }

        let files = parse_files(archive, &object)?;
        let fields = match kind {
            BundleKind::TrustRootSet => {
                let version = integer_field(&object, "version", "").map_err(fail)?;
                let expires_text = string_field(&object, "expires_at", "").map_err(fail)?;
                let expires_at =
                    parse_time(expires_text).map_err(|why| fail(format!("expires_at: {why}")))?;
                ManifestFields::TrustRootSet {
                    version,
                    expires_at,
                }
            }
            BundleKind::RekorTiles => ManifestFields::RekorTiles {
                logs: parse_logs(&object).map_err(fail)?,
            },
            BundleKind::Evidence => ManifestFields::Evidence {
                subjects: parse_subjects(&object).map_err(fail)?,
            },
        };
        Ok(Manifest {
            format: format.to_owned(),
            files,
            fields,
        })
    }

    /// Checks the archive's files against the list: every file except `manifest.json` is listed,
    /// every listed file is present, and each has the listed SHA-256 and size.
    ///
    /// # Errors
    ///
    /// [`BundleError::EntryRejected`] for an unlisted file, [`BundleError::Malformed`] for a
    /// missing one or a size that differs while the digest matches, and
    /// [`BundleError::FileDigestMismatch`] for a digest that differs.
    pub fn check_files(
        &self,
        archive: &str,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), BundleError> {
        let listed: BTreeMap<&str, &FileEntry> =
            self.files.iter().map(|e| (e.path.as_str(), e)).collect();
        for path in files.keys() {
            if path != MANIFEST_PATH && !listed.contains_key(path.as_str()) {
                return Err(rejected(
                    archive,
                    path,
                    "file is not listed in manifest.json",
                ));
            }
        }
        for entry in &self.files {
            let Some(content) = files.get(&entry.path) else {
                return Err(malformed(
                    archive,
                    &entry.path,
                    "listed in manifest.json but missing from the archive",
                ));
            };
            let actual = sha256_hex(content);
            if actual != entry.sha256 {
                return Err(BundleError::FileDigestMismatch {
                    archive: archive.to_owned(),
                    path: entry.path.clone(),
                    expected: entry.sha256.clone(),
                    actual,
                });
            }
            let size = u64::try_from(content.len()).unwrap_or(u64::MAX);
            if size != entry.size {
                return Err(malformed(
                    archive,
                    &entry.path,
                    format!("size {size} bytes, manifest says {}", entry.size),
                ));
            }
        }
        Ok(())
    }
}

fn field<'a>(object: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a Value, String> {
    object
        .get(key)
        .ok_or_else(|| format!("{at}missing field {key:?}"))
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a str, String> {
    field(object, key, at)?
        .as_str()
        .ok_or_else(|| format!("{at}{key}: expected a string"))
}

fn integer_field(object: &Map<String, Value>, key: &str, at: &str) -> Result<u64, String> {
    let value = field(object, key, at)?
        .as_u64()
        .ok_or_else(|| format!("{at}{key}: expected a non-negative integer"))?;
    if value > MAX_SAFE_INTEGER {
        return Err(format!("{at}{key}: {value} is above 2^53 - 1"));
    }
    Ok(value)
}

fn array_field<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a Vec<Value>, String> {
    field(object, key, "")?
        .as_array()
        .ok_or_else(|| format!("{key}: expected an array"))
}

/// Returns the object at `at`, checking that it has exactly `keys`.
fn exact_object<'a>(
    value: &'a Value,
    keys: &[&str],
    at: &str,
) -> Result<&'a Map<String, Value>, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object"))?;
    if let Some(unknown) = object.keys().find(|key| !keys.contains(&key.as_str())) {
        return Err(format!("{at}: unknown field {unknown:?}"));
    }
    Ok(object)
}

fn parse_files(archive: &str, object: &Map<String, Value>) -> Result<Vec<FileEntry>, BundleError> {
    let fail = |why: String| malformed(archive, MANIFEST_PATH, why);
    let items = array_field(object, "files").map_err(fail)?;
    let mut files: Vec<FileEntry> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("files[{index}]");
        let entry = exact_object(item, &["path", "sha256", "size"], &at).map_err(fail)?;
        let prefix = format!("{at}.");
        let path = string_field(entry, "path", &prefix).map_err(fail)?;
        check_path(path)
            .map_err(|why| rejected(archive, path, format!("listed in manifest.json: {why}")))?;
        if path == MANIFEST_PATH {
            return Err(fail(format!("{at}: manifest.json must not list itself")));
        }
        let sha256 = string_field(entry, "sha256", &prefix).map_err(fail)?;
        if !is_lower_hex_digest(sha256) {
            return Err(fail(format!(
                "{at}.sha256: {sha256:?} is not 64 lowercase hex digits"
            )));
        }
        let size = integer_field(entry, "size", &prefix).map_err(fail)?;
        if let Some(previous) = files.last()
            && previous.path.as_str() >= path
        {
            return Err(fail(format!(
                "{at}: path {path:?} is not after {:?}, but files must be sorted by path without duplicates",
                previous.path
            )));
        }
        files.push(FileEntry {
            path: path.to_owned(),
            sha256: sha256.to_owned(),
            size,
        });
    }
    Ok(files)
}

fn parse_logs(object: &Map<String, Value>) -> Result<Vec<LogRef>, String> {
    let items = array_field(object, "logs")?;
    let mut logs: Vec<LogRef> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("logs[{index}]");
        let log = exact_object(item, &["dir", "origin"], &at)?;
        let prefix = format!("{at}.");
        let origin = string_field(log, "origin", &prefix)?;
        check_text(origin).map_err(|why| format!("{at}.origin: {why}"))?;
        let dir = string_field(log, "dir", &prefix)?;
        let expected = format!("logs/{index}");
        if dir != expected {
            return Err(format!("{at}.dir: {dir:?}, expected {expected:?}"));
        }
        if let Some(previous) = logs.last()
            && previous.origin.as_str() >= origin
        {
            return Err(format!(
                "{at}: origin {origin:?} is not after {:?}, but logs must be sorted by origin without duplicates",
                previous.origin
            ));
        }
        logs.push(LogRef {
            origin: origin.to_owned(),
            dir: dir.to_owned(),
        });
    }
    Ok(logs)
}

fn parse_subjects(object: &Map<String, Value>) -> Result<Vec<Subject>, String> {
    let items = array_field(object, "subjects")?;
    let mut subjects: Vec<Subject> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("subjects[{index}]");
        let subject = exact_object(item, &["digest", "name"], &at)?;
        let prefix = format!("{at}.");
        let name = string_field(subject, "name", &prefix)?;
        check_text(name).map_err(|why| format!("{at}.name: {why}"))?;
        let digest = string_field(subject, "digest", &prefix)?;
        check_digest(digest).map_err(|why| format!("{at}.digest: {why}"))?;
        let subject = Subject {
            name: name.to_owned(),
            digest: digest.to_owned(),
        };
        if let Some(previous) = subjects.last()
            && *previous >= subject
        {
            return Err(format!(
                "{at}: subjects must be sorted by name, then digest, without duplicates"
            ));
        }
        subjects.push(subject);
    }
    Ok(subjects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest::new(
            vec![FileEntry::for_content("trusted_root.json", b"{}")],
            ManifestFields::TrustRootSet {
                version: 3,
                expires_at: 1_798_761_600,
            },
        )
    }

    #[test]
    fn manifest_round_trip_canonical() {
        let manifest = sample();
        let bytes = manifest.to_canonical_json("t.tgz").expect("serialise");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "{{\"expires_at\":\"2027-01-01T00:00:00Z\",\"files\":[{{\"path\":\"trusted_root.json\",\"sha256\":\"{}\",\"size\":2}}],\"format\":\"stella.trust-root-set/v1\",\"version\":3}}",
                sha256_hex(b"{}")
            )
        );
        assert_eq!(Manifest::parse("t.tgz", &bytes).expect("parse"), manifest);
    }

    #[test]
    fn parse_rejects_variants() {
        let good = String::from_utf8(sample().to_canonical_json("t.tgz").expect("serialise"))
            .expect("utf-8");
        let hash = sha256_hex(b"{}");
        let cases: Vec<(&str, String)> = vec![
            ("whitespace", good.replace(",\"format\"", ", \"format\"")),
            (
                "unknown format",
                good.replace("trust-root-set/v1", "trust-root-set/v2"),
            ),
            (
                "unknown field",
                good.replace("{\"expires_at\"", "{\"extra\":1,\"expires_at\""),
            ),
            ("fractional time", good.replace("00:00:00Z", "00:00:00.5Z")),
            ("offset time", good.replace("00:00:00Z", "01:00:00+01:00")),
            (
                "negative version",
                good.replace("\"version\":3", "\"version\":-3"),
            ),
            (
                "float version",
                good.replace("\"version\":3", "\"version\":3.5"),
            ),
            ("uppercase hex", good.replace(&hash, &hash.to_uppercase())),
            (
                "self listing",
                good.replace("trusted_root.json", "manifest.json"),
            ),
            ("not an object", "[]".into()),
            ("not json", "{".into()),
        ];
        for (name, text) in cases {
            let error = Manifest::parse("t.tgz", text.as_bytes()).expect_err(name);
            assert!(
                matches!(error, BundleError::Malformed { ref path, .. } if path == MANIFEST_PATH),
                "row {name}: {error}"
            );
        }
    }

    #[test]
    fn parse_rejects_unsorted_files() {
        let manifest = Manifest {
            format: FORMAT_EVIDENCE.into(),
            files: vec![
                FileEntry::for_content("sigstore/b.sigstore.json", b"b"),
                FileEntry::for_content("sigstore/a.sigstore.json", b"a"),
            ],
            fields: ManifestFields::Evidence { subjects: vec![] },
        };
        let bytes = manifest.to_canonical_json("e.tgz").expect("serialise");
        let error = Manifest::parse("e.tgz", &bytes).expect_err("unsorted");
        assert!(
            matches!(error, BundleError::Malformed { ref why, .. } if why.contains("sorted")),
            "{error}"
        );
    }

    #[test]
    fn parse_time_table() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2027-01-01T00:00:00Z"), Ok(1_798_761_600));
        assert!(parse_time("2027-01-01t00:00:00z").is_err());
        assert!(parse_time("2027-01-01 00:00:00Z").is_err());
        assert!(parse_time("2027-01-01T00:00:00.000Z").is_err());
    }
}
