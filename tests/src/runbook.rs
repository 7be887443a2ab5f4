//! The operator runbook as `stella` commands: each step runs the binary exactly as an operator
//! types it, with `--output json`, and checks the exit code.
//!
//! An [`Operator`] runs the steps with one `stella` runner, so one environment can run the
//! runbook as several tenants. An [`Env`](crate::env::Env) dereferences to its default operator.

use std::path::{Path, PathBuf};

use crate::cli::{CliOutput, Stella, exit};
use crate::env::Scratch;
use crate::grpc::ImportRpc;
use crate::vectors::ConformanceCase;
use crate::{SUBJECT_SHA256, subject_digest};

/// Lifetime of the trust root sets that tests do not expire on purpose.
pub const LONG_EXPIRY: &str = "30d";

/// A gate decision as `stella promotion evaluate` or `preview-gates` printed it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// `allow`, `deny` or `pending`.
    pub decision: String,
    /// Sorted reason codes.
    pub reason_codes: Vec<String>,
    /// Decision record id; empty for previews.
    pub record_id: String,
    /// The whole command output, for messages.
    pub output: CliOutput,
}

impl Decision {
    /// Reads the decision that an evaluation or a preview printed with `--output json`.
    ///
    /// # Panics
    ///
    /// Panics with the output when it contains no decision, such as after an unreachable gate.
    #[track_caller]
    pub fn from_output(output: CliOutput) -> Decision {
        let json = output.json();
        let decision = output.str_field("decision");
        let reason_codes = output.reason_codes();
        let record_id = match json.get("record_id") {
            Some(serde_json::Value::String(id)) => id.clone(),
            _ => String::new(),
        };
        Decision {
            decision,
            reason_codes,
            record_id,
            output,
        }
    }

    /// Asserts `allow` with exit code 0 and no reason codes.
    #[track_caller]
    pub fn assert_allow(&self) -> &Decision {
        assert_eq!(self.decision, "allow", "expected allow\n{}", self.output);
        assert!(
            self.reason_codes.is_empty(),
            "allow must carry no reason codes\n{}",
            self.output
        );
        self.output.assert_code(exit::OK);
        self
    }

    /// Asserts `deny` with exit code 1 and `code` among the reason codes.
    #[track_caller]
    pub fn assert_deny(&self, code: &str) -> &Decision {
        assert_eq!(self.decision, "deny", "expected deny\n{}", self.output);
        self.output.assert_code(exit::FAILED);
        self.assert_reason(code)
    }

    /// Asserts `pending` with exit code 3 and `code` among the reason codes.
    #[track_caller]
    pub fn assert_pending(&self, code: &str) -> &Decision {
        assert_eq!(
            self.decision, "pending",
            "expected pending\n{}",
            self.output
        );
        self.output.assert_code(exit::PENDING);
        self.assert_reason(code)
    }

    /// Asserts that `code` is among the reason codes.
    #[track_caller]
    pub fn assert_reason(&self, code: &str) -> &Decision {
        assert!(
            self.reason_codes.iter().any(|reason| reason == code),
            "expected reason code {code} in {:?}\n{}",
            self.reason_codes,
            self.output
        );
        let mut sorted = self.reason_codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            self.reason_codes, sorted,
            "reason codes must be sorted and unique\n{}",
            self.output
        );
        self
    }
}

/// The outcome of `stella rekor verify --offline`.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// `"sha256:<hex>"` of the canonical report.
    pub report_digest: String,
    /// `verified` or `failed`.
    pub outcome: String,
    /// Sorted reason codes; empty when verified.
    pub reason_codes: Vec<String>,
    /// The whole command output, for messages.
    pub output: CliOutput,
}

/// One caller of the runbook: a `stella` runner with its token and TLS settings, and the scratch
/// directories of its environment.
#[derive(Debug, Clone)]
pub struct Operator {
    stella: Stella,
    scratch: Scratch,
}

impl Operator {
    /// Returns an operator that runs `stella` and writes files into `scratch`.
    pub fn new(stella: Stella, scratch: Scratch) -> Operator {
        Operator { stella, scratch }
    }

    /// Returns the `stella` runner of this operator.
    pub fn stella(&self) -> &Stella {
        &self.stella
    }

    /// Creates and returns a new, empty scratch directory; `label` makes it easy to find.
    pub fn scratch(&self, label: &str) -> PathBuf {
        self.scratch.create(label)
    }

    /// Returns the scratch directories this operator writes into.
    pub fn scratch_dirs(&self) -> &Scratch {
        &self.scratch
    }

    /// Runs `stella trust pack` and returns the written bundle.
    #[track_caller]
    pub fn trust_pack(
        &self,
        dir: &Path,
        trusted_root: &Path,
        note_keys: &[&str],
        version: u64,
        expires: &str,
    ) -> PathBuf {
        let out = dir.join(format!("trust-v{version}.tgz"));
        let mut args: Vec<String> = vec![
            "trust".into(),
            "pack".into(),
            "--trusted-root".into(),
            path_arg(trusted_root),
        ];
        for key in note_keys {
            args.push("--note-key".into());
            args.push((*key).to_owned());
        }
        args.extend([
            "--version".into(),
            version.to_string(),
            "--expires".into(),
            expires.to_owned(),
            "--out".into(),
            path_arg(&out),
        ]);
        self.stella().run_json(&args).assert_ok();
        assert_file(&out);
        out
    }

    /// Runs `stella trust import` and returns its output, whatever the exit code.
    pub fn trust_import(&self, bundle: &Path) -> CliOutput {
        self.stella()
            .run_json(["trust", "import", "--bundle", &path_arg(bundle)])
    }

    /// Packs and imports a trust root set (version 1, expiring in [`LONG_EXPIRY`]), and returns
    /// the bundle.
    #[track_caller]
    pub fn install_trust(&self, trusted_root: &Path, note_keys: &[&str]) -> PathBuf {
        let dir = self.scratch("trust");
        let bundle = self.trust_pack(&dir, trusted_root, note_keys, 1, LONG_EXPIRY);
        self.trust_import(&bundle).assert_ok();
        bundle
    }

    /// Runs `stella rekor tiles pack` over Sigstore bundles and tile directories, and returns the
    /// written bundle.
    #[track_caller]
    pub fn tiles_pack(
        &self,
        dir: &Path,
        sigstore_bundles: &[&Path],
        tiles_dirs: &[&Path],
    ) -> PathBuf {
        let out = dir.join("rekor-tiles.tgz");
        let mut args: Vec<String> = vec!["rekor".into(), "tiles".into(), "pack".into()];
        for bundle in sigstore_bundles {
            args.push("--sigstore-bundle".into());
            args.push(path_arg(bundle));
        }
        for tiles_dir in tiles_dirs {
            args.push("--tiles-dir".into());
            args.push(path_arg(tiles_dir));
        }
        args.push("--out".into());
        args.push(path_arg(&out));
        self.stella().run_json(&args).assert_ok();
        assert_file(&out);
        out
    }

    /// Runs `stella rekor tiles import` and returns its output, whatever the exit code.
    pub fn tiles_import(&self, bundle: &Path) -> CliOutput {
        self.stella()
            .run_json(["rekor", "tiles", "import", "--bundle", &path_arg(bundle)])
    }

    /// Packs the tlog proofs of Sigstore bundles into a tile/proof bundle and imports it.
    #[track_caller]
    pub fn install_proofs(&self, sigstore_bundles: &[&Path]) -> PathBuf {
        let dir = self.scratch("tiles");
        let bundle = self.tiles_pack(&dir, sigstore_bundles, &[]);
        self.tiles_import(&bundle).assert_ok();
        bundle
    }

    /// Runs `stella evidence pack` with the conformance artifact `a.txt` as subject, and returns
    /// the written bundle.
    #[track_caller]
    pub fn evidence_pack(&self, dir: &Path, sigstore_bundles: &[&Path]) -> PathBuf {
        let out = dir.join("evidence.tgz");
        let mut args: Vec<String> = vec!["evidence".into(), "pack".into()];
        for bundle in sigstore_bundles {
            args.push("--sigstore-bundle".into());
            args.push(path_arg(bundle));
        }
        args.extend([
            "--subject".into(),
            format!("a.txt=sha256:{SUBJECT_SHA256}"),
            "--out".into(),
            path_arg(&out),
        ]);
        self.stella().run_json(&args).assert_ok();
        assert_file(&out);
        out
    }

    /// Runs `stella evidence verify --offline` (local integrity check, then registration) and
    /// returns its output, whatever the exit code.
    pub fn evidence_verify(&self, bundle: &Path) -> CliOutput {
        self.stella().run_json([
            "evidence",
            "verify",
            "--bundle",
            &path_arg(bundle),
            "--offline",
        ])
    }

    /// Packs and registers the evidence of one conformance case, and returns its bundle id.
    #[track_caller]
    pub fn register_case(&self, case: &ConformanceCase) -> String {
        let dir = self.scratch(&format!("evidence-{}", case.name));
        let bundle = self.evidence_pack(&dir, &[&case.bundle()]);
        let output = self.evidence_verify(&bundle);
        output.assert_ok();
        let bundle_id = output.str_field("bundle_id");
        assert!(
            bundle_id.starts_with("sha256:") && bundle_id.len() == 71,
            "bundle_id must be sha256:<64 hex>\n{output}"
        );
        bundle_id
    }

    /// Runs `stella rekor verify --offline` for a registered evidence bundle.
    #[track_caller]
    pub fn rekor_verify(&self, bundle_id: &str) -> VerifyReport {
        let output = self.stella().run_json([
            "rekor",
            "verify",
            "--offline",
            "--evidence-bundle-id",
            bundle_id,
        ]);
        let report_digest = output.str_field("report_digest");
        let outcome = output.str_field("outcome");
        let reason_codes = output.reason_codes();
        let expected_code = if outcome == "verified" {
            exit::OK
        } else {
            exit::FAILED
        };
        output.assert_code(expected_code);
        VerifyReport {
            report_digest,
            outcome,
            reason_codes,
            output,
        }
    }

    /// Runs `stella promotion create` for the conformance subject.
    #[track_caller]
    pub fn promotion_create(&self, promotion_id: &str, target: &str, evidence_ids: &[&str]) {
        let digest = subject_digest();
        let mut args: Vec<&str> = vec![
            "promotion",
            "create",
            "--promotion",
            promotion_id,
            "--subject",
            &digest,
            "--target",
            target,
        ];
        for id in evidence_ids {
            args.push("--evidence-bundle-id");
            args.push(id);
        }
        self.stella().run_json(&args).assert_ok();
    }

    /// Runs `stella promotion preview-gates --offline-rekor`.
    #[track_caller]
    pub fn preview_gates(&self, promotion_id: &str) -> Decision {
        Decision::from_output(self.preview_gates_output(promotion_id))
    }

    /// Runs `stella promotion preview-gates --offline-rekor` and returns its output, whatever
    /// the exit code.
    pub fn preview_gates_output(&self, promotion_id: &str) -> CliOutput {
        self.stella().run_json([
            "promotion",
            "preview-gates",
            "--promotion",
            promotion_id,
            "--offline-rekor",
        ])
    }

    /// Runs `stella promotion evaluate --offline-rekor`.
    #[track_caller]
    pub fn evaluate(&self, promotion_id: &str) -> Decision {
        Decision::from_output(self.evaluate_output(promotion_id))
    }

    /// Runs `stella promotion evaluate --offline-rekor` and returns its output, whatever the
    /// exit code.
    pub fn evaluate_output(&self, promotion_id: &str) -> CliOutput {
        self.stella().run_json([
            "promotion",
            "evaluate",
            "--promotion",
            promotion_id,
            "--offline-rekor",
        ])
    }

    /// Runs `stella promotion evaluate --offline-rekor --request-id REQUEST_ID`.
    #[track_caller]
    pub fn evaluate_with_request_id(&self, promotion_id: &str, request_id: &str) -> Decision {
        Decision::from_output(self.stella().run_json([
            "promotion",
            "evaluate",
            "--promotion",
            promotion_id,
            "--offline-rekor",
            "--request-id",
            request_id,
        ]))
    }

    /// Runs `stella promotion preview-gates --offline-rekor --at TIME --policy-digest DIGEST`,
    /// which replays a decision recorded at `time` (RFC 3339 or Unix seconds) under that policy
    /// version.
    #[track_caller]
    pub fn preview_at(&self, promotion_id: &str, time: &str, policy_digest: &str) -> Decision {
        Decision::from_output(self.stella().run_json([
            "promotion",
            "preview-gates",
            "--promotion",
            promotion_id,
            "--offline-rekor",
            "--at",
            time,
            "--policy-digest",
            policy_digest,
        ]))
    }

    /// Runs `stella policy import --file FILE` and returns its output, whatever the exit code.
    pub fn policy_import(&self, file: &Path) -> CliOutput {
        self.stella()
            .run_json(["policy", "import", "--file", &path_arg(file)])
    }

    /// Runs `stella policy show` with `args`, such as `--digest DIGEST --out FILE`, and returns
    /// its output, whatever the exit code.
    pub fn policy_show(&self, args: &[&str]) -> CliOutput {
        let mut full = vec!["policy", "show"];
        full.extend_from_slice(args);
        self.stella().run_json(&full)
    }

    /// Creates a promotion for `evidence_ids` and evaluates it.
    #[track_caller]
    pub fn promote(&self, promotion_id: &str, target: &str, evidence_ids: &[&str]) -> Decision {
        self.promotion_create(promotion_id, target, evidence_ids);
        self.evaluate(promotion_id)
    }

    /// Runs `stella decisions get RECORD_ID`.
    pub fn decision_get(&self, record_id: &str) -> CliOutput {
        self.stella().run_json(["decisions", "get", record_id])
    }
}

/// The three kinds of offline bundle and the command that imports each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// Trust root set, imported with `stella trust import`.
    TrustRoots,
    /// Rekor tile/proof bundle, imported with `stella rekor tiles import`.
    Tiles,
    /// Portable evidence bundle, registered with `stella evidence verify --offline`.
    Evidence,
}

impl BundleKind {
    /// Every bundle kind.
    pub const ALL: [BundleKind; 3] = [
        BundleKind::TrustRoots,
        BundleKind::Tiles,
        BundleKind::Evidence,
    ];

    /// Returns a short label for file names and messages.
    pub fn label(self) -> &'static str {
        match self {
            BundleKind::TrustRoots => "trust",
            BundleKind::Tiles => "tiles",
            BundleKind::Evidence => "evidence",
        }
    }

    /// Runs the import command of this kind and returns its output, whatever the exit code.
    pub fn import(self, operator: &Operator, bundle: &Path) -> CliOutput {
        match self {
            BundleKind::TrustRoots => operator.trust_import(bundle),
            BundleKind::Tiles => operator.tiles_import(bundle),
            BundleKind::Evidence => operator.evidence_verify(bundle),
        }
    }

    /// Returns the attestor RPC behind the import command.
    pub fn rpc(self) -> ImportRpc {
        match self {
            BundleKind::TrustRoots => ImportRpc::TrustRoots,
            BundleKind::Tiles => ImportRpc::Tiles,
            BundleKind::Evidence => ImportRpc::Evidence,
        }
    }
}

/// Returns the decision record that `stella decisions get` printed.
///
/// The record is the top-level object when it carries `schema`, and otherwise the object under
/// `record`.
#[track_caller]
pub fn decision_record(output: &CliOutput) -> serde_json::Value {
    let json = output.json();
    if json.get("schema").is_some() {
        return json;
    }
    match json.get("record") {
        Some(record @ serde_json::Value::Object(_)) => record.clone(),
        _ => panic!("no decision record in the output\n{output}"),
    }
}

/// Returns a path as a command-line argument.
pub fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[track_caller]
fn assert_file(path: &Path) {
    assert!(
        path.is_file(),
        "the command exited 0 but did not write {}",
        path.display()
    );
}
