//! Every bundle-verification case of the Sigstore conformance suite through `stella verify-bundle`.
//!
//! Each case runs twice, as the suite runs its client: once with the artifact file and once with
//! `sha256:<hex>` of it, with the arguments in the suite's order and in text mode. A case whose
//! folder name ends in `_fail` must exit 1 and print exactly the reason codes of its row in
//! [`EXPECTED_FAILURES`]. Every other case must exit 0. No case is skipped.
//!
//! Cases without their own trusted root use the public-good production root, which `stella` reads
//! from the directory in `STELLA_SIGSTORE_TRUST_ROOTS_DIR`. The other tests cover the
//! configuration file, JSON output, signer mismatches and usage errors.

use std::collections::BTreeSet;

use serde_json::Value;
use stella_e2e::cli::{CliOutput, exit};
use stella_e2e::codes;
use stella_e2e::conformance::{
    ArtifactForm, SuiteCase, case_names, offline_stella, stderr_reason_codes, unconfigured_stella,
};
use stella_e2e::vectors::Vectors;

/// The reason codes each failing case yields, and the fault the case carries.
const EXPECTED_FAILURES: &[(&str, &[&str])] = &[
    // The bundle is truncated JSON.
    (
        "bundle-malformed-json_fail",
        &[codes::SIGSTORE_BUNDLE_INVALID],
    ),
    // The media type names bundle version 99.9.
    (
        "bundle-unknown-version_fail",
        &[codes::SIGSTORE_BUNDLE_INVALID],
    ),
    // The checkpoint's key hint (c4d23d6a) names no key of the entry's log (c0d23d6a).
    (
        "checkpoint-bad-keyhint_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    // A validly signed checkpoint of another tree size than the proof's, so the roots differ.
    (
        "checkpoint-wrong-roothash_fail",
        &[codes::REKOR_ROOT_MISMATCH],
    ),
    // One proof hash has a flipped bit.
    (
        "inclusion-proof-corrupted-hash_fail",
        &[codes::REKOR_PROOF_INVALID],
    ),
    // The checkpoint's signature does not verify under the log's key.
    (
        "invalid-checkpoint-signature_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    // A v0.2 bundle whose old inclusion proof has no checkpoint, which v0.2 requires.
    (
        "invalid-inclusion-proof_fail",
        &[codes::SIGSTORE_BUNDLE_INVALID],
    ),
    // The checkpoint lacks the log's own signature line.
    (
        "rekor2-checkpoint-missing-log-signature_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    // A checkpoint text line is removed, so the log's signature no longer verifies.
    (
        "rekor2-checkpoint-missing-origin_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    (
        "rekor2-checkpoint-missing-root-hash_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    (
        "rekor2-checkpoint-missing-size_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    // Origin and key name are another log's, for which the trusted root has no key.
    (
        "rekor2-checkpoint-no-matching-signature_fail",
        &[codes::REKOR_CHECKPOINT_INVALID],
    ),
    // The envelope was signed by an unrelated key. The log entry is not compared, because Rekor
    // never logs an invalid signature and the comparison would only restate this failure.
    (
        "rekor2-dsse-invalid-sig_fail",
        &[codes::DSSE_SIGNATURE_INVALID],
    ),
    // A valid envelope that is not the logged one: its PAE digest differs from the entry's.
    (
        "rekor2-dsse-mismatch-envelope_fail",
        &[codes::REKOR_ENTRY_MISMATCH],
    ),
    // The logged entry contains another signature than the envelope.
    (
        "rekor2-dsse-mismatch-sig_fail",
        &[codes::REKOR_ENTRY_MISMATCH],
    ),
    // A v0.3 bundle without the inclusion proof its version requires.
    (
        "rekor2-no-inclusion-proof_fail",
        &[codes::SIGSTORE_BUNDLE_INVALID],
    ),
    // Rekor v2 gives no integrated time, and the bundle carries no RFC 3161 timestamp.
    ("rekor2-no-timestamp_fail", &[codes::TIMESTAMP_MISSING]),
    // genTime lies after the end of the TSA's validity in the trusted root.
    (
        "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
        &[codes::TIMESTAMP_INVALID],
    ),
    // genTime lies outside the TSA certificate's validity.
    (
        "rekor2-timestamp-outside-tsa-cert-validity_fail",
        &[codes::TIMESTAMP_INVALID],
    ),
    // The timestamp's message imprint covers other signature bytes.
    (
        "rekor2-timestamp-payload-mismatch_fail",
        &[codes::TIMESTAMP_INVALID],
    ),
    // The timestamps come from a TSA (FreeTSA) that the trusted root does not list.
    (
        "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
        &[codes::TIMESTAMP_INVALID],
    ),
    (
        "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
        &[codes::TIMESTAMP_INVALID],
    ),
    // genTime lies outside the Fulcio certificate's validity.
    (
        "rekor2-timestamp-with-incorrect-time_fail",
        &[codes::CERT_CHAIN_INVALID],
    ),
    // The signed entry timestamp does not verify under the log's key.
    ("set-invalid-signature_fail", &[codes::REKOR_SET_INVALID]),
    // A transparency log key without validFor.start makes the whole trusted root invalid.
    (
        "trust-root-tlog-missing-validity-start_fail",
        &[codes::TRUST_ROOT_INVALID],
    ),
];

/// Number of cases in the vectors folder; a lower count means cases went missing.
const MIN_CASES: usize = 43;

fn expected_codes(name: &str) -> Option<BTreeSet<String>> {
    EXPECTED_FAILURES
        .iter()
        .find(|(case, _)| *case == name)
        .map(|(_, codes)| codes.iter().map(|code| (*code).to_owned()).collect())
}

/// Compares one run with the case's expectation and returns a description of any difference.
fn mismatch(case: &SuiteCase, form: ArtifactForm, output: &CliOutput) -> Option<String> {
    let printed = stderr_reason_codes(output);
    if !case.must_fail() {
        if output.code == exit::OK {
            return None;
        }
        return Some(format!(
            "{} ({form:?}): expected exit 0, got {} with {printed:?}\n{output}",
            case.name, output.code
        ));
    }
    let Some(expected) = expected_codes(&case.name) else {
        return Some(format!(
            "{}: no row in EXPECTED_FAILURES\n{output}",
            case.name
        ));
    };
    if output.code == exit::FAILED && printed == expected {
        return None;
    }
    Some(format!(
        "{} ({form:?}): expected exit 1 with {expected:?}, got exit {} with {printed:?}\n{output}",
        case.name, output.code
    ))
}

#[test]
fn every_case_both_artifact_forms() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let dir = vectors.bundle_verify_dir();
    let names = case_names(&dir);
    assert!(
        names.len() >= MIN_CASES,
        "expected at least {MIN_CASES} cases in {}, found {}",
        dir.display(),
        names.len()
    );

    // Every table row names an existing failing case, so a renamed case cannot drop out.
    for (row, _) in EXPECTED_FAILURES {
        assert!(
            names.iter().any(|name| name == row) && row.ends_with("_fail"),
            "table row {row} names no _fail case in {}",
            dir.display()
        );
    }

    let mut mismatches = Vec::new();
    let mut runs = 0;
    for name in &names {
        let case = SuiteCase::load(&dir, name);
        for form in [ArtifactForm::File, ArtifactForm::Digest] {
            let output = stella.run(case.args(form));
            runs += 1;
            if let Some(text) = mismatch(&case, form, &output) {
                mismatches.push(text);
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {runs} runs did not match:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

fn happy_rekor2(vectors: &Vectors) -> SuiteCase {
    SuiteCase::load(&vectors.bundle_verify_dir(), "rekor2-happy-path")
}

/// Returns `case`'s arguments with the `--trusted-root FILE` pair removed.
fn without_trusted_root(case: &SuiteCase, form: ArtifactForm) -> Vec<String> {
    let mut args: Vec<String> = case
        .args(form)
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if let Some(position) = args.iter().position(|arg| arg == "--trusted-root") {
        args.drain(position..position + 2);
    }
    args
}

#[test]
fn staging_flag_selects_staging_root() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let case = happy_rekor2(&vectors);
    let args = without_trusted_root(&case, ArtifactForm::File);

    let mut staging = vec!["--output".to_owned(), "json".to_owned()];
    staging.extend(args.iter().take(1).cloned());
    staging.push("--staging".to_owned());
    staging.extend(args.iter().skip(1).cloned());
    let output = stella.run(&staging);
    output.assert_ok();
    let trusted_root = output.str_field("trusted_root");
    assert!(
        trusted_root.ends_with("sigstore-trust-roots/staging.trusted_root.json"),
        "{output}"
    );

    // The production root lists no Rekor v2 log, so the same bundle fails there.
    let mut production = vec!["--output".to_owned(), "json".to_owned()];
    production.extend(args);
    let output = stella.run(&production);
    output.assert_code(exit::FAILED);
    assert!(
        output
            .reason_codes()
            .contains(&codes::REKOR_LOG_UNKNOWN.to_owned()),
        "{output}"
    );
    assert!(
        output
            .str_field("trusted_root")
            .ends_with("sigstore-trust-roots/production.trusted_root.json"),
        "{output}"
    );
}

#[test]
fn config_file_names_trust_roots() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    // A relative directory in the file is relative to the file's own directory.
    let roots = work.path().join("etc/roots");
    std::fs::create_dir_all(&roots).expect("create roots directory");
    std::fs::copy(
        vectors
            .sigstore_trust_roots()
            .join("staging.trusted_root.json"),
        roots.join("staging.trusted_root.json"),
    )
    .expect("copy staging root");
    let config = work.path().join("etc/stella.toml");
    std::fs::write(&config, "sigstore_trust_roots_dir = \"roots\"\n").expect("write config");

    let stella = unconfigured_stella(work.path()).env("STELLA_CONFIG", &config);
    let case = happy_rekor2(&vectors);
    let mut args = vec!["verify-bundle".to_owned(), "--staging".to_owned()];
    args.extend(
        without_trusted_root(&case, ArtifactForm::Digest)
            .into_iter()
            .skip(1),
    );
    stella.run(&args).assert_ok();

    // The same file under $XDG_CONFIG_HOME/stella/config.toml is found without STELLA_CONFIG.
    let xdg = work.path().join("xdg/stella");
    std::fs::create_dir_all(&xdg).expect("create XDG directory");
    std::fs::write(
        xdg.join("config.toml"),
        format!(
            "sigstore_trust_roots_dir = {:?}\n",
            roots.display().to_string()
        ),
    )
    .expect("write XDG config");
    unconfigured_stella(work.path()).run(&args).assert_ok();

    // Without --staging the directory must contain the production root, which it lacks.
    let production: Vec<&String> = args.iter().filter(|arg| *arg != "--staging").collect();
    let output = unconfigured_stella(work.path()).run(production);
    output.assert_code(exit::FAILED);
    assert_eq!(
        stderr_reason_codes(&output),
        BTreeSet::from([codes::TRUST_ROOT_MISSING.to_owned()]),
        "{output}"
    );
    assert!(
        output.stderr.contains("production.trusted_root.json"),
        "{output}"
    );
}

#[test]
fn unconfigured_roots_explain_setup() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let case = SuiteCase::load(&vectors.bundle_verify_dir(), "happy-path-v0.3");
    let output = unconfigured_stella(work.path()).run(case.args(ArtifactForm::File));
    output.assert_code(exit::FAILED);
    assert_eq!(
        stderr_reason_codes(&output),
        BTreeSet::from([codes::TRUST_ROOT_MISSING.to_owned()]),
        "{output}"
    );
    assert!(
        output.stderr.contains("STELLA_SIGSTORE_TRUST_ROOTS_DIR"),
        "{output}"
    );
    let config_path = work.path().join("xdg/stella/config.toml");
    assert!(
        output.stderr.contains(&config_path.display().to_string()),
        "{output}"
    );
    assert!(
        output.stderr.contains("sigstore_trust_roots_dir = "),
        "{output}"
    );
}

#[test]
fn json_output_reports_outcome() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let dir = vectors.bundle_verify_dir();

    let case = SuiteCase::load(&dir, "rekor2-dsse-happy-path");
    let output = stella.run_json(case.args(ArtifactForm::File));
    output.assert_ok();
    assert_eq!(output.str_field("outcome"), "verified", "{output}");
    assert!(output.reason_codes().is_empty(), "{output}");
    assert_eq!(output.str_field("artifact"), case.artifact_digest());
    let json = output.json();
    assert_eq!(
        json["signer"]["identity"],
        Value::from(stella_e2e::IDENTITY),
        "{output}"
    );
    assert_eq!(json["signer"]["issuer"], Value::from(stella_e2e::ISSUER));
    assert_eq!(
        json["report"]["predicate_type"],
        Value::from(stella_e2e::SLSA_PROVENANCE_V1),
        "{output}"
    );
    assert_eq!(
        json["report"]["tlog"]["origin"],
        Value::from("log2025-alpha3.rekor.sigstage.dev"),
        "{output}"
    );
    assert!(output.stderr.is_empty(), "{output}");

    let case = SuiteCase::load(&dir, "rekor2-dsse-invalid-sig_fail");
    let output = stella.run_json(case.args(ArtifactForm::Digest));
    output.assert_code(exit::FAILED);
    assert_eq!(output.str_field("outcome"), "failed", "{output}");
    assert_eq!(
        output.reason_codes(),
        vec![codes::DSSE_SIGNATURE_INVALID.to_owned()],
        "{output}"
    );
    let detail = stella_e2e::cli::string_array(&output.json(), "detail", &output);
    assert_eq!(detail.len(), 1, "{output}");
    assert!(
        detail[0].starts_with(codes::DSSE_SIGNATURE_INVALID),
        "{output}"
    );
    assert!(output.stdout.lines().count() == 1, "{output}");
}

#[test]
fn signer_mismatch_fails_closed() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let dir = vectors.bundle_verify_dir();
    let case = happy_rekor2(&vectors);
    let args: Vec<String> = case
        .args(ArtifactForm::File)
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();

    let rows = [
        (
            "other identity",
            stella_e2e::IDENTITY,
            "https://example.com/other",
        ),
        (
            "other issuer",
            stella_e2e::ISSUER,
            "https://accounts.google.com",
        ),
        (
            "identity prefix",
            stella_e2e::IDENTITY,
            "https://github.com/sigstore-conformance/",
        ),
    ];
    for (name, original, replacement) in rows {
        let changed: Vec<String> = args
            .iter()
            .map(|arg| {
                if arg == original {
                    replacement.to_owned()
                } else {
                    arg.clone()
                }
            })
            .collect();
        assert_ne!(changed, args, "row {name} changed nothing");
        let output = stella.run(&changed);
        output.assert_code(exit::FAILED);
        assert_eq!(
            stderr_reason_codes(&output),
            BTreeSet::from([codes::IDENTITY_MISMATCH.to_owned()]),
            "row {name}\n{output}"
        );
    }

    // --key on a certificate-signed bundle.
    let key = dir.join("managed-key-happy-path/key.pub");
    let mut keyed = vec![
        "verify-bundle".to_owned(),
        "--bundle".to_owned(),
        case.bundle.display().to_string(),
        "--key".to_owned(),
        key.display().to_string(),
    ];
    keyed.extend(
        args.iter()
            .skip_while(|arg| *arg != "--trusted-root")
            .cloned(),
    );
    let output = stella.run(&keyed);
    output.assert_code(exit::FAILED);
    assert!(
        stderr_reason_codes(&output).contains(codes::IDENTITY_MISMATCH),
        "{output}"
    );

    // A certificate identity for a bundle signed with a managed key.
    let managed = SuiteCase::load(&dir, "managed-key-happy-path");
    let identity_args: Vec<String> = vec![
        "verify-bundle".to_owned(),
        "--bundle".to_owned(),
        managed.bundle.display().to_string(),
        "--certificate-identity".to_owned(),
        stella_e2e::IDENTITY.to_owned(),
        "--certificate-oidc-issuer".to_owned(),
        stella_e2e::ISSUER.to_owned(),
        managed.artifact.display().to_string(),
    ];
    let output = stella.run(&identity_args);
    output.assert_code(exit::FAILED);
    assert!(
        stderr_reason_codes(&output).contains(codes::IDENTITY_MISMATCH),
        "{output}"
    );
}

#[test]
fn other_artifact_is_subject_mismatch() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let other = work.path().join("other.txt");
    std::fs::write(&other, b"not the signed artifact\n").expect("write artifact");

    for name in ["rekor2-happy-path", "rekor2-dsse-happy-path"] {
        let mut case = SuiteCase::load(&vectors.bundle_verify_dir(), name);
        case.artifact = other.clone();
        for form in [ArtifactForm::File, ArtifactForm::Digest] {
            let output = stella.run(case.args(form));
            output.assert_code(exit::FAILED);
            assert_eq!(
                stderr_reason_codes(&output),
                BTreeSet::from([codes::SUBJECT_MISMATCH.to_owned()]),
                "case {name} ({form:?})\n{output}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_two() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());
    let case = happy_rekor2(&vectors);
    let bundle = case.bundle.display().to_string();
    let key = vectors
        .bundle_verify_dir()
        .join("managed-key-happy-path/key.pub")
        .display()
        .to_string();
    let digest = case.artifact_digest();
    let not_a_key = case.artifact.display().to_string();

    let rows: [(&str, Vec<&str>); 6] = [
        (
            "identity without issuer",
            vec![
                "--bundle",
                &bundle,
                "--certificate-identity",
                stella_e2e::IDENTITY,
                &digest,
            ],
        ),
        (
            "issuer without identity",
            vec![
                "--bundle",
                &bundle,
                "--certificate-oidc-issuer",
                stella_e2e::ISSUER,
                &digest,
            ],
        ),
        ("no signer", vec!["--bundle", &bundle, &digest]),
        (
            "key and identity",
            vec![
                "--bundle",
                &bundle,
                "--certificate-identity",
                stella_e2e::IDENTITY,
                "--certificate-oidc-issuer",
                stella_e2e::ISSUER,
                "--key",
                &key,
                &digest,
            ],
        ),
        (
            "short digest",
            vec!["--bundle", &bundle, "--key", &key, "sha256:abcd"],
        ),
        (
            "key file is no key",
            vec!["--bundle", &bundle, "--key", &not_a_key, &digest],
        ),
    ];
    for (name, row_args) in rows {
        let mut args = vec!["verify-bundle"];
        args.extend(row_args);
        let output = stella.run(&args);
        output.assert_code(exit::USAGE);
        assert!(!output.stderr.is_empty(), "row {name}\n{output}");
    }

    // Files that cannot be read are I/O errors (exit 5) that name the file.
    let missing = work.path().join("missing.sigstore.json");
    let output = stella.run([
        "verify-bundle",
        "--bundle",
        missing.to_str().expect("UTF-8 path"),
        "--key",
        &key,
        &digest,
    ]);
    output.assert_code(exit::OTHER);
    assert!(output.stderr.contains("missing.sigstore.json"), "{output}");
}
