//! `stella decisions export` and `stella decisions verify` through the `stella` binary, against
//! a real gate served in process on a loopback port with its RocksDB in a temporary directory.
//! The gate's attestor is down, so each evaluation records a `pending` decision.

mod common;

use std::path::Path;
use std::time::Duration;

use common::authority::authority;
use common::{arg, closed_port_url, stella};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use stella_access::{AUDIENCE_GATE, Authenticator, DEFAULT_ISSUER};
use stella_authority::{DEFAULT_CLOCK_SKEW_SECS, Jwks, Validator, ValidatorConfig};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

const SUBJECT: &str = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
const BUNDLE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A gate served in process; dropping it stops the server.
struct Gate {
    url: String,
    runtime: Runtime,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Gate {
    fn start(dir: &Path) -> Gate {
        stella_access::install_crypto_provider();
        let policy = dir.join("policy.yaml");
        std::fs::write(
            &policy,
            concat!(
                "environments:\n",
                "  prod:\n",
                "    require:\n",
                "      - predicate_type: https://slsa.dev/provenance/v1\n",
                "        identity: https://github.com/acme/release/.github/workflows/release.yml@refs/heads/main\n",
                "        issuer: https://token.actions.githubusercontent.com\n",
                "    on_attestor_unavailable: pending\n",
            ),
        )
        .expect("write policy");

        let jwks = Jwks::parse(&authority().jwks_json()).expect("the development JWKS parses");
        let validator = ValidatorConfig {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: AUDIENCE_GATE.to_owned(),
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        };
        let config = stella_gate::GateConfig {
            data_dir: dir.join("gate"),
            attestor_url: closed_port_url(),
            attestor_tls: None,
            policy_path: policy,
            signing_key: None,
            attestor_timeout: Duration::from_millis(500),
            authenticator: Authenticator::new(Validator::new(validator, jwks).expect("validator")),
            tls: None,
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let address = listener.local_addr().expect("local address");

        let (stop, stopped) = oneshot::channel::<()>();
        let server = stella_gate::run(listener, config, async {
            let _ = stopped.await;
        });
        let task = runtime.spawn(async move { server.await.map_err(|error| format!("{error:#}")) });
        Gate {
            url: format!("http://{address}"),
            runtime,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn stella(&self, args: &[&str]) -> common::Run {
        let mut full = vec!["--gate", self.url.as_str()];
        full.extend_from_slice(args);
        stella(&full)
    }

    fn evaluate(&self, promotion: &str) {
        let create = self.stella(&[
            "promotion",
            "create",
            "--promotion",
            promotion,
            "--subject",
            SUBJECT,
            "--target",
            "prod",
            "--evidence-bundle-id",
            BUNDLE,
        ]);
        assert_eq!(create.code, 0, "promotion create: {}", create.stderr);
        let evaluate = self.stella(&[
            "promotion",
            "evaluate",
            "--promotion",
            promotion,
            "--offline-rekor",
        ]);
        assert_eq!(
            evaluate.code, 3,
            "a pending decision exits 3: {}",
            evaluate.stderr
        );
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let outcome = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
            if !std::thread::panicking() {
                let result = outcome
                    .expect("gate stops within 10 s")
                    .expect("gate task joins");
                result.expect("gate exits cleanly");
            }
        }
    }
}

#[test]
fn export_then_verify_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = Gate::start(dir.path());
    for promotion in ["rel-1", "rel-2", "rel-3"] {
        gate.evaluate(promotion);
    }
    let export = dir.path().join("decisions.jsonl");
    let key = dir.path().join("gate-key.pem");
    let run = gate.stella(&[
        "--output",
        "json",
        "decisions",
        "export",
        "--out",
        arg(&export),
        "--key-out",
        arg(&key),
    ]);
    assert_eq!(run.code, 0, "export: {}", run.stderr);
    let exported = run.json();
    assert_eq!(exported.get("records"), Some(&serde_json::json!(3)));
    assert_eq!(
        std::fs::read_to_string(&export)
            .expect("read export")
            .lines()
            .count(),
        3
    );
    drop(gate);

    // The gate is stopped: verification reads only the file and the key.
    let run = stella(&[
        "--output",
        "json",
        "decisions",
        "verify",
        "--file",
        arg(&export),
        "--public-key",
        arg(&key),
    ]);
    assert_eq!(run.code, 0, "verify: {} {}", run.stdout, run.stderr);
    let verified = run.json();
    assert_eq!(verified.get("verified"), Some(&serde_json::json!(true)));
    assert_eq!(verified.get("records"), Some(&serde_json::json!(3)));
    assert_eq!(
        verified.get("tenant"),
        Some(&serde_json::json!(common::authority::DEFAULT_TENANT))
    );
    assert_eq!(verified.get("key_id"), exported.get("key_id"));

    let run = stella(&[
        "decisions",
        "verify",
        "--file",
        arg(&export),
        "--public-key",
        arg(&key),
    ]);
    assert_eq!(run.code, 0, "verify: {}", run.stderr);
    assert!(
        run.stdout.starts_with("OK: 3 decision records of tenant "),
        "{}",
        run.stdout
    );
}

#[test]
fn verify_reports_first_break() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = Gate::start(dir.path());
    for promotion in ["rel-1", "rel-2", "rel-3"] {
        gate.evaluate(promotion);
    }
    let export = dir.path().join("decisions.jsonl");
    let key = dir.path().join("gate-key.pem");
    let run = gate.stella(&[
        "decisions",
        "export",
        "--out",
        arg(&export),
        "--key-out",
        arg(&key),
    ]);
    assert_eq!(run.code, 0, "export: {}", run.stderr);

    // Verification straight from the gate, with the key the auditor holds.
    let run = gate.stella(&["decisions", "verify", "--public-key", arg(&key)]);
    assert_eq!(run.code, 0, "verify from the gate: {}", run.stderr);
    drop(gate);

    let text = std::fs::read_to_string(&export).expect("read export");
    let lines: Vec<&str> = text.lines().collect();
    let without_second = dir.path().join("without-second.jsonl");
    std::fs::write(&without_second, format!("{}\n{}\n", lines[0], lines[2])).expect("write export");
    let run = stella(&[
        "--output",
        "json",
        "decisions",
        "verify",
        "--file",
        arg(&without_second),
        "--public-key",
        arg(&key),
    ]);
    assert_eq!(run.code, 1, "verify: {} {}", run.stdout, run.stderr);
    let broken = run.json();
    assert_eq!(broken.get("verified"), Some(&serde_json::json!(false)));
    let link = broken.get("broken_link").expect("broken_link");
    assert_eq!(link["sequence"], 2, "{link}");
    assert!(
        link["error"]
            .as_str()
            .unwrap_or_default()
            .contains("record 2 is missing"),
        "{link}"
    );

    let other_key = dir.path().join("other.pub.pem");
    let other = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("valid scalar");
    let other_pem = other
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("encode key");
    std::fs::write(&other_key, other_pem).expect("write key");
    let run = stella(&[
        "decisions",
        "verify",
        "--file",
        arg(&export),
        "--public-key",
        arg(&other_key),
    ]);
    assert_eq!(run.code, 1, "verify with another key: {}", run.stderr);
    assert!(
        run.stderr.contains("chain broken at sequence 1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("reason code: ERR_DSSE_SIGNATURE_INVALID"),
        "{}",
        run.stderr
    );

    let run = stella(&[
        "decisions",
        "verify",
        "--file",
        arg(&export),
        "--public-key",
        arg(&export),
    ]);
    assert_eq!(
        run.code, 2,
        "a file that is no public key is a usage error: {}",
        run.stderr
    );
    assert!(run.stderr.contains("invalid public key"), "{}", run.stderr);
}
