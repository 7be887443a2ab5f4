//! The operator runbook against a deployment's published ports, with the demo kit that
//! `scripts/compose-config.sh` wrote: the same commands as `scripts/demo.sh`, each run with
//! `--output json` and checked.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::{Deployment, ServiceName};
use crate::cli::{CliOutput, exit};
use crate::env::read_file;
use crate::runbook::{Decision, LONG_EXPIRY, decision_record, path_arg};

/// The target environment of the demo kit's policy.
pub const TARGET: &str = "prod";

/// What the runbook set up and decided.
#[derive(Debug, Clone)]
pub struct Release {
    pub promotion_id: String,
    /// The registered evidence bundle.
    pub bundle_id: String,
    /// `sha256:<hex>` of the kit's artifact.
    pub subject: String,
    /// The verification report of `stella rekor verify`.
    pub report_digest: String,
    /// The evaluation that ended the runbook, `allow`.
    pub evaluation: Decision,
}

/// One line of `stella decisions export`: a decision record taken from its DSSE envelope.
#[derive(Debug, Clone)]
pub struct ExportedRecord {
    pub record_id: String,
    pub sequence: u64,
    pub decision: String,
}

/// The output of `stella decisions export --key-out`.
#[derive(Debug, Clone)]
pub struct Export {
    /// The export file as written, one envelope per line.
    pub text: String,
    /// The records in file order.
    pub records: Vec<ExportedRecord>,
    /// The public key file that the gate presented.
    pub key_file: PathBuf,
    /// The key id that `export` printed.
    pub key_id: String,
}

impl Deployment {
    /// Runs the runbook from empty services to an `allow` of `promotion_id`: trust root set
    /// (the kit's trusted root plus `note_keys`), the kit's tiled log, the provenance as
    /// evidence, `rekor verify`, promotion, preview and evaluation, and the decision record.
    #[track_caller]
    pub fn run_runbook(&self, promotion_id: &str, note_keys: &[&str]) -> Release {
        let kit = self.kit_dir();
        let dir = self.scratch("runbook");
        let stella = self.stella();

        let trust = dir.join("trust-roots.tgz");
        let mut pack_trust = vec![
            "trust".to_owned(),
            "pack".to_owned(),
            "--trusted-root".to_owned(),
            path_arg(&kit.join("trusted_root.json")),
        ];
        for key in note_keys {
            pack_trust.extend(["--note-key".to_owned(), (*key).to_owned()]);
        }
        pack_trust.extend([
            "--version".to_owned(),
            "1".to_owned(),
            "--expires".to_owned(),
            LONG_EXPIRY.to_owned(),
            "--out".to_owned(),
            path_arg(&trust),
        ]);
        stella.run_json(&pack_trust).assert_ok();
        stella
            .run_json(["trust", "import", "--bundle", &path_arg(&trust)])
            .assert_ok();

        let tiles = dir.join("rekor-tiles.tgz");
        stella
            .run_json([
                "rekor",
                "tiles",
                "pack",
                "--tiles-dir",
                &path_arg(&kit.join("log")),
                "--out",
                &path_arg(&tiles),
            ])
            .assert_ok();
        self.import_tiles(&tiles).assert_ok();

        let evidence = dir.join("portable-evidence-bundle.tgz");
        stella
            .run_json([
                "evidence",
                "pack",
                "--sigstore-bundle",
                &path_arg(&kit.join("provenance.sigstore.json")),
                "--out",
                &path_arg(&evidence),
            ])
            .assert_ok();
        let registered = stella.run_json([
            "evidence",
            "verify",
            "--bundle",
            &path_arg(&evidence),
            "--offline",
        ]);
        registered.assert_ok();
        let bundle_id = registered.str_field("bundle_id");

        let verified = stella.run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            &bundle_id,
        ]);
        verified.assert_ok();
        assert_eq!(verified.str_field("outcome"), "verified", "{verified}");
        let report_digest = verified.str_field("report_digest");

        let subject = kit_subject(&kit);
        stella
            .run_json([
                "promotion",
                "create",
                "--promotion",
                promotion_id,
                "--subject",
                &subject,
                "--target",
                TARGET,
                "--evidence-bundle-id",
                &bundle_id,
            ])
            .assert_ok();
        let preview = Decision::from_output(stella.run_json([
            "promotion",
            "preview-gates",
            "--promotion",
            promotion_id,
            "--offline-rekor",
        ]));
        preview.assert_allow();
        let evaluation = Decision::from_output(self.evaluate(promotion_id, None));
        evaluation.assert_allow();

        let fetched = self.decision_get(&evaluation.record_id);
        fetched.assert_ok();
        let record = decision_record(&fetched);
        assert_eq!(
            record.get("decision"),
            Some(&Value::from("allow")),
            "{fetched}"
        );
        assert_eq!(
            record.get("promotion_id"),
            Some(&Value::from(promotion_id)),
            "{fetched}"
        );

        Release {
            promotion_id: promotion_id.to_owned(),
            bundle_id,
            subject,
            report_digest,
            evaluation,
        }
    }

    /// Runs `stella rekor tiles import` and returns its output, whatever the exit code.
    pub fn import_tiles(&self, bundle: &Path) -> CliOutput {
        self.stella()
            .run_json(["rekor", "tiles", "import", "--bundle", &path_arg(bundle)])
    }

    /// Runs `stella promotion evaluate --offline-rekor`, with `--request-id` when given, and
    /// returns its output, whatever the exit code.
    pub fn evaluate(&self, promotion_id: &str, request_id: Option<&str>) -> CliOutput {
        let mut args = vec![
            "promotion",
            "evaluate",
            "--promotion",
            promotion_id,
            "--offline-rekor",
        ];
        if let Some(request_id) = request_id {
            args.extend(["--request-id", request_id]);
        }
        self.stella().run_json(args)
    }

    /// Runs `stella decisions get RECORD_ID` and returns its output, whatever the exit code.
    pub fn decision_get(&self, record_id: &str) -> CliOutput {
        self.stella().run_json(["decisions", "get", record_id])
    }

    /// Runs `stella rekor checkpoints`, which lists every log the attestor's cache holds, and
    /// asserts exit 0.
    #[track_caller]
    pub fn checkpoints(&self) -> CliOutput {
        let output = self.stella().run_json(["rekor", "checkpoints"]);
        output.assert_ok();
        output
    }

    /// Runs `stella decisions export --key-out` and parses the written records.
    #[track_caller]
    pub fn export_decisions(&self) -> Export {
        let dir = self.scratch("export");
        let file = dir.join("decisions.jsonl");
        let key_file = dir.join("gate-key.pem");
        let output = self.stella().run_json([
            "decisions",
            "export",
            "--out",
            &path_arg(&file),
            "--key-out",
            &path_arg(&key_file),
        ]);
        output.assert_ok();
        let text = String::from_utf8_lossy(&read_file(&file)).into_owned();
        let records: Vec<ExportedRecord> = text
            .lines()
            .enumerate()
            .map(|(index, line)| exported_record(line, index + 1, &output))
            .collect();
        let count = output.json().get("records").and_then(Value::as_u64);
        assert_eq!(
            count,
            u64::try_from(records.len()).ok(),
            "record count\n{output}"
        );
        Export {
            text,
            records,
            key_file,
            key_id: output.str_field("key_id"),
        }
    }

    /// Runs `stella decisions verify` over the gate's records with `key_file` and returns its
    /// output, whatever the exit code.
    pub fn verify_decisions(&self, key_file: &Path) -> CliOutput {
        self.stella()
            .run_json(["decisions", "verify", "--public-key", &path_arg(key_file)])
    }

    /// Returns the key id that the gate logged when it generated its signing key on its first
    /// start, which an auditor obtains out of band from the gate's operator.
    #[track_caller]
    pub fn logged_signing_key_id(&self) -> String {
        let log = self.logs(ServiceName::Gate);
        let Some(line) = log
            .lines()
            .find(|line| line.contains("signing key generated"))
        else {
            panic!("the gate logged no `signing key generated` line:\n{log}");
        };
        let Some(rest) = line.split("key_id=").nth(1) else {
            panic!("no key_id in the gate's log line: {line}");
        };
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned()
    }
}

/// Returns `sha256:<hex>` of the kit's artifact, from `artifact.txt.sha256`.
fn kit_subject(kit: &Path) -> String {
    let text = String::from_utf8_lossy(&read_file(&kit.join("artifact.txt.sha256"))).into_owned();
    match text.split_whitespace().next() {
        Some(hex) if hex.len() == 64 => format!("sha256:{hex}"),
        _ => panic!(
            "{} does not start with a SHA-256: {text:?}",
            kit.join("artifact.txt.sha256").display()
        ),
    }
}

/// Parses one export line: the DSSE envelope's payload is an in-toto statement whose predicate
/// is the decision record.
#[track_caller]
fn exported_record(line: &str, line_number: usize, context: &CliOutput) -> ExportedRecord {
    match parse_envelope(line) {
        Ok(record) => record,
        Err(fault) => panic!("export line {line_number}: {fault}: {line}\n{context}"),
    }
}

fn parse_envelope(line: &str) -> Result<ExportedRecord, String> {
    let envelope: Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let payload = envelope
        .get("payload")
        .and_then(Value::as_str)
        .ok_or("no payload")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|error| format!("the payload is not base64: {error}"))?;
    let statement: Value = serde_json::from_slice(&bytes)
        .map_err(|error| format!("the payload is not JSON: {error}"))?;
    let record = statement
        .get("predicate")
        .ok_or("the statement has no predicate")?;
    let text = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("the record has no {key}"))
    };
    let sequence = record
        .get("sequence")
        .and_then(Value::as_u64)
        .ok_or("the record has no sequence")?;
    Ok(ExportedRecord {
        record_id: text("record_id")?,
        sequence,
        decision: text("decision")?,
    })
}

/// Asserts that an evaluation failed closed while the attestor was out: `deny` (exit 1) or
/// `pending` (exit 3), with `ERR_ATTESTOR_UNAVAILABLE`.
#[track_caller]
pub fn assert_fails_closed(output: &CliOutput) {
    assert!(
        output.code == exit::FAILED || output.code == exit::PENDING,
        "an evaluation without the attestor must exit 1 (deny) or 3 (pending)\n{output}"
    );
    let decision = Decision::from_output(output.clone());
    match decision.decision.as_str() {
        "deny" => decision.assert_deny(crate::codes::ATTESTOR_UNAVAILABLE),
        "pending" => decision.assert_pending(crate::codes::ATTESTOR_UNAVAILABLE),
        other => panic!("an evaluation without the attestor returned {other}\n{output}"),
    };
}
