//! `stella evidence pack` and `stella evidence verify`.
//!
//! Packing reads the subjects of DSSE bundles from their in-toto statements without verifying
//! any signature: the attestor verifies everything later, and the statements only name what the
//! evidence is about. A message signature names no subject, so it needs `--subject`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use stella_bundle::{EvidenceInput, Limits, Subject, open_evidence, pack_evidence};
use stella_verify::bundle::{BundleContent, HashAlgorithm, parse_bundle};
use stella_verify::reason::{HasReasonCode, ReasonCode};

use super::files;
use super::output::{Exit, Failure, Report};
use super::{EvidencePackArgs, EvidenceVerifyArgs, Services, require_offline};

/// Payload type of in-toto statements in Sigstore DSSE envelopes.
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// File name suffixes dropped to name a Sigstore bundle inside the evidence bundle.
const BUNDLE_SUFFIXES: [&str; 3] = [".sigstore.json", ".sigstore", ".json"];
/// Hex digits of the content digest appended to names that would otherwise collide.
const COLLISION_SUFFIX_HEX: usize = 12;

/// The content one Sigstore bundle signs.
enum Signed {
    /// A message signature over this SHA-256 digest (hex), or `None` for another algorithm.
    Message(Option<String>),
    /// A DSSE in-toto statement about these subjects.
    Statement(Vec<Subject>),
}

struct InputBundle {
    file: PathBuf,
    json: Vec<u8>,
    signed: Signed,
}

/// `stella evidence pack`: builds a portable evidence bundle without any service.
pub fn pack(args: &EvidencePackArgs) -> Result<Report, Failure> {
    let mut inputs = Vec::with_capacity(args.sigstore_bundles.len());
    let mut seen_files = BTreeSet::new();
    for file in &args.sigstore_bundles {
        if !seen_files.insert(file.clone()) {
            return Err(Failure::usage(format!(
                "--sigstore-bundle {} is given twice",
                file.display()
            )));
        }
        inputs.push(read_input(file)?);
    }

    let subjects = if args.subjects.is_empty() {
        subjects_from_statements(&inputs)?
    } else {
        let subjects: Vec<Subject> = args
            .subjects
            .iter()
            .map(|subject| Subject {
                name: subject.name.clone(),
                digest: subject.digest.prefixed(),
            })
            .collect();
        check_coverage(&inputs, &subjects)?;
        subjects
    };

    let names = assign_names(&inputs)?;
    let mut sigstore_bundles = BTreeMap::new();
    let mut placed = Vec::with_capacity(inputs.len());
    for (input, name) in inputs.iter().zip(&names) {
        sigstore_bundles.insert(name.clone(), input.json.clone());
        placed.push(json!({
            "file": input.file.display().to_string(),
            "path": format!("sigstore/{name}.sigstore.json"),
        }));
    }
    let archive = pack_evidence(&EvidenceInput {
        sigstore_bundles,
        subjects,
    })
    .map_err(|error| files::pack_failure("cannot pack the evidence bundle", &args.out, &error))?;
    let opened = open_evidence(
        &files::display_name(&args.out),
        &archive,
        &Limits::default(),
    )
    .map_err(|error| {
        Failure::other(format!(
            "the packed evidence bundle does not open again: {error}"
        ))
    })?;
    files::write_atomically(&args.out, &archive)?;

    let out = args.out.display().to_string();
    let subjects_json: Vec<Value> = opened
        .subjects
        .iter()
        .map(|subject| json!({"name": subject.name, "digest": subject.digest}))
        .collect();
    let mut report = Report::new(Exit::Success);
    report
        .field("out", out.clone())
        .field("sha256", files::sha256_prefixed(&archive))
        .field("bundle_id", opened.id.clone())
        .field("subjects", subjects_json)
        .field("sigstore_bundles", placed);
    report.line(format!("wrote {out}: evidence bundle {}", opened.id));
    for subject in &opened.subjects {
        report.line(format!("  subject {} {}", subject.name, subject.digest));
    }
    report.line(format!(
        "  Sigstore bundles: {}",
        opened.sigstore_bundles.len()
    ));
    Ok(report)
}

fn read_input(file: &Path) -> Result<InputBundle, Failure> {
    let label = file.display().to_string();
    let json = files::read(file)?;
    let bundle = parse_bundle(&json).map_err(|error| {
        Failure::rejected(
            format!("{label}: invalid Sigstore bundle: {error}"),
            error.reason_code().as_str(),
        )
    })?;
    let signed = match &bundle.content {
        BundleContent::MessageSignature(message) => match message.digest.algorithm {
            HashAlgorithm::Sha2_256 => Signed::Message(Some(hex::encode(&message.digest.digest))),
            HashAlgorithm::Sha2_384 | HashAlgorithm::Sha2_512 => Signed::Message(None),
        },
        BundleContent::Dsse(envelope) => {
            if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
                return Err(Failure::rejected(
                    format!(
                        "{label}: the DSSE payload type is {:?}; only in-toto statements ({IN_TOTO_PAYLOAD_TYPE}) are accepted",
                        envelope.payload_type
                    ),
                    ReasonCode::DssePayloadInvalid.as_str(),
                ));
            }
            Signed::Statement(statement_subjects(&envelope.payload, &label)?)
        }
    };
    Ok(InputBundle {
        file: file.to_path_buf(),
        json,
        signed,
    })
}

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<RawSubject>,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// Reads the subjects of an in-toto statement, unverified. Each must have a SHA-256 digest.
fn statement_subjects(payload: &[u8], label: &str) -> Result<Vec<Subject>, Failure> {
    let invalid = |detail: String| {
        Failure::rejected(
            format!("{label}: invalid in-toto statement in the DSSE payload: {detail}"),
            ReasonCode::DssePayloadInvalid.as_str(),
        )
    };
    let statement: RawStatement =
        serde_json::from_slice(payload).map_err(|error| invalid(error.to_string()))?;
    if !statement.type_.starts_with("https://in-toto.io/Statement/") {
        return Err(invalid(format!("_type is {:?}", statement.type_)));
    }
    if statement.subject.is_empty() {
        return Err(invalid("the subject list is empty".to_owned()));
    }
    let mut subjects = Vec::with_capacity(statement.subject.len());
    for (position, subject) in statement.subject.into_iter().enumerate() {
        let Some(hex) = subject.digest.get("sha256") else {
            return Err(invalid(format!(
                "subject {position} ({:?}) has no sha256 digest; give the subjects with --subject",
                subject.name
            )));
        };
        let digest =
            super::args::parse_sha256_digest(&format!("sha256:{hex}")).map_err(|error| {
                invalid(format!("subject {position} ({:?}): {error}", subject.name))
            })?;
        subjects.push(Subject {
            name: subject.name,
            digest: digest.prefixed(),
        });
    }
    Ok(subjects)
}

/// Collects the subjects of all statements. A message signature makes this a usage error.
fn subjects_from_statements(inputs: &[InputBundle]) -> Result<Vec<Subject>, Failure> {
    let messages: Vec<String> = inputs
        .iter()
        .filter(|input| matches!(input.signed, Signed::Message(_)))
        .map(|input| input.file.display().to_string())
        .collect();
    if !messages.is_empty() {
        return Err(Failure::usage(format!(
            "{} holds a message signature, which names no subject; give the signed artifact with \
             --subject NAME=sha256:HEX",
            messages.join(", ")
        )));
    }
    let mut subjects = BTreeSet::new();
    for input in inputs {
        if let Signed::Statement(found) = &input.signed {
            subjects.extend(found.iter().cloned());
        }
    }
    Ok(subjects.into_iter().collect())
}

/// Checks that every given subject is signed by some bundle and every bundle signs some subject.
fn check_coverage(inputs: &[InputBundle], subjects: &[Subject]) -> Result<(), Failure> {
    let requested: BTreeSet<&str> = subjects
        .iter()
        .map(|subject| subject.digest.as_str())
        .collect();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for input in inputs {
        let signs: Vec<String> = match &input.signed {
            Signed::Message(Some(hex)) => vec![format!("sha256:{hex}")],
            Signed::Message(None) => Vec::new(),
            Signed::Statement(found) => {
                found.iter().map(|subject| subject.digest.clone()).collect()
            }
        };
        let matching: Vec<&String> = signs
            .iter()
            .filter(|digest| requested.contains(digest.as_str()))
            .collect();
        if matching.is_empty() {
            let signed_text = if signs.is_empty() {
                "no SHA-256 digest".to_owned()
            } else {
                signs.join(", ")
            };
            return Err(Failure::rejected(
                format!(
                    "{}: signs {signed_text}, which matches no --subject",
                    input.file.display()
                ),
                ReasonCode::SubjectMismatch.as_str(),
            ));
        }
        covered.extend(matching.into_iter().cloned());
    }
    for subject in subjects {
        if !covered.contains(&subject.digest) {
            return Err(Failure::rejected(
                format!(
                    "--subject {}={}: no Sigstore bundle signs this digest",
                    subject.name, subject.digest
                ),
                ReasonCode::SubjectMismatch.as_str(),
            ));
        }
    }
    Ok(())
}

/// Names each bundle after its file (`build.sigstore.json` becomes `build`). Names that two
/// files share get the first hex digits of each file's SHA-256, so the result does not depend on
/// the order of the arguments.
fn assign_names(inputs: &[InputBundle]) -> Result<Vec<String>, Failure> {
    let bases: Vec<String> = inputs.iter().map(|input| base_name(&input.file)).collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for base in &bases {
        *count.entry(base.as_str()).or_default() += 1;
    }

    let mut names = Vec::with_capacity(inputs.len());
    let mut assigned: BTreeMap<String, &Path> = BTreeMap::new();
    for (input, base) in inputs.iter().zip(&bases) {
        let name = if count.get(base.as_str()).copied().unwrap_or(0) > 1 {
            let digest = files::sha256_prefixed(&input.json);
            let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
            format!("{base}-{}", hex.get(..COLLISION_SUFFIX_HEX).unwrap_or(hex))
        } else {
            base.clone()
        };
        if let Some(first) = assigned.insert(name.clone(), &input.file) {
            return Err(Failure::usage(format!(
                "{} and {} have identical content; give each Sigstore bundle once",
                first.display(),
                input.file.display()
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Derives a portable name (`A-Z a-z 0-9 . _ -`, no leading dot) from a file name.
fn base_name(file: &Path) -> String {
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = BUNDLE_SUFFIXES
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .unwrap_or(&file_name);
    let portable: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = portable.trim_start_matches('.');
    if trimmed.is_empty() {
        "bundle".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `stella evidence verify --bundle FILE --offline`: checks the archive locally, then registers
/// it with the attestor.
pub async fn verify(services: &Services, args: &EvidenceVerifyArgs) -> Result<Report, Failure> {
    require_offline(args.offline, "evidence verify", "--offline")?;
    let archive = files::read(&args.bundle)?;
    let name = files::display_name(&args.bundle);

    // Integrity and safety first, so a corrupted or hostile archive never reaches the attestor.
    let opened = open_evidence(&name, &archive, &Limits::default())
        .map_err(|error| Failure::rejected(error.to_string(), error.reason_code().as_str()))?;

    let mut attestor = services.attestor().await?;
    let response = attestor.register_evidence(&name, archive).await?;
    if response.bundle_id != opened.id {
        return Err(Failure::other(format!(
            "the attestor registered {name} as {}, but its manifest digest is {}",
            response.bundle_id, opened.id
        )));
    }

    let subjects: Vec<Value> = opened
        .subjects
        .iter()
        .map(|subject| json!({"name": subject.name, "digest": subject.digest}))
        .collect();
    let mut report = Report::new(Exit::Success);
    report
        .field("bundle_id", response.bundle_id.clone())
        .field("sigstore_bundles", response.sigstore_bundles)
        .field("already_registered", response.already_registered)
        .field("subjects", subjects);
    let state = if response.already_registered {
        "already registered"
    } else {
        "registered"
    };
    report.line(format!("{state} {name}"));
    report.line(format!("bundle id: {}", response.bundle_id));
    for subject in &opened.subjects {
        report.line(format!("  subject {} {}", subject.name, subject.digest));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_name_strips_and_sanitizes() {
        let rows = [
            ("sigstore suffix", "dir/build.sigstore.json", "build"),
            ("json suffix", "a.txt.json", "a.txt"),
            ("spaces", "my bundle.sigstore.json", "my_bundle"),
            ("leading dot", ".hidden.json", "hidden"),
            ("only suffix", ".sigstore.json", "bundle"),
        ];
        for (name, path, want) in rows {
            assert_eq!(base_name(Path::new(path)), want, "row {name}");
        }
    }
}
