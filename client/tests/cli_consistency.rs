//! `stella rekor consistency` against a real attestor: RocksDB in a temporary directory, served
//! in process on a loopback port, called by the built `stella` binary.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::attestor::Attestor;
use common::bundles::{SignedLog, leaf_hashes, numbered_entries, root_of};
use common::{Run, arg, production_root, stella};
use stella_verify::merkle;

const ORIGIN: &str = "grow.example/log";

/// Runs `stella --output json rekor consistency` against `attestor`.
fn consistency_json(attestor: &Attestor, origin: &str, from: &str, to: &str) -> Run {
    attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "consistency",
        "--origin",
        origin,
        "--from",
        from,
        "--to",
        to,
    ])
}

#[test]
fn consistency_command_outcomes() {
    let Some(trusted_root) = production_root() else {
        return;
    };
    let test_log = SignedLog::new(ORIGIN, 23);
    let dir = tempfile::tempdir().expect("temporary directory");
    let attestor = Attestor::start_trusting(dir.path(), &trusted_root, &[test_log.vkey()]);

    let all = numbered_entries(300);
    for size in [10, 300] {
        let bundle = dir.path().join(format!("tiles-{size}.tgz"));
        test_log.write_tiles(&bundle, &all[..size]);
        let run = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&bundle)]);
        assert_eq!(run.code, 0, "import size {size}: {}", run.stderr);
    }

    // Consistent: exit 0, and the JSON proof equals the one computed from the leaves.
    let run = consistency_json(&attestor, ORIGIN, "10", "300");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let object = run.json();
    assert_eq!(
        object.get("consistent"),
        Some(&serde_json::Value::Bool(true))
    );
    assert_eq!(object.get("reason_codes"), Some(&serde_json::json!([])));
    let expected: Vec<String> = merkle::consistency_proof(10, &leaf_hashes(&all))
        .expect("proof from leaves")
        .iter()
        .map(|hash| BASE64.encode(hash))
        .collect();
    assert_eq!(object.get("proof"), Some(&serde_json::json!(expected)));
    let new_root = BASE64.encode(root_of(&all));
    assert_eq!(
        object.get("new_checkpoint"),
        Some(&serde_json::json!({"origin": ORIGIN, "tree_size": 300, "root_hash": new_root}))
    );

    // Text output names the verdict and lists the proof.
    let text = attestor.stella(&[
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "10",
        "--to",
        "300",
    ]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.starts_with(&format!(
            "{ORIGIN}: tree size 300 is consistent with tree size 10\n"
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains(&format!("proof: {} hashes\n", expected.len())),
        "{}",
        text.stdout
    );

    // Equal sizes: an empty proof.
    let same = consistency_json(&attestor, ORIGIN, "300", "300");
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert_eq!(same.json().get("proof"), Some(&serde_json::json!([])));

    // A size that was never imported: exit 1 with the catalog code.
    let absent = consistency_json(&attestor, ORIGIN, "20", "300");
    assert_eq!(absent.code, 1, "{}", absent.stderr);
    let error = absent.json();
    assert_eq!(
        error.get("reason_code"),
        Some(&serde_json::json!("ERR_REKOR_TILE_MISSING"))
    );
    let message = error
        .get("error")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    assert!(message.contains("tree size 20"), "{message}");
    assert!(message.contains("stored sizes: 300, 10"), "{message}");

    // A log outside the trust set: exit 1 with ERR_REKOR_LOG_UNKNOWN.
    let unknown = consistency_json(&attestor, "other.example/log", "1", "2");
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert_eq!(
        unknown.json().get("reason_codes"),
        Some(&serde_json::json!(["ERR_REKOR_LOG_UNKNOWN"]))
    );
}

#[test]
fn consistency_usage_errors() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "from above to",
            &[
                "rekor",
                "consistency",
                "--origin",
                ORIGIN,
                "--from",
                "9",
                "--to",
                "3",
            ],
        ),
        (
            "from zero",
            &[
                "rekor",
                "consistency",
                "--origin",
                ORIGIN,
                "--from",
                "0",
                "--to",
                "3",
            ],
        ),
        (
            "empty origin",
            &[
                "rekor",
                "consistency",
                "--origin",
                "",
                "--from",
                "1",
                "--to",
                "3",
            ],
        ),
    ];
    for (name, args) in cases {
        // Port 9 on loopback is never served here; usage errors must come before any connection.
        let mut full = vec!["--attestor", "http://127.0.0.1:9"];
        full.extend_from_slice(args);
        let run = stella(&full);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
    }
}

#[test]
fn consistency_unreachable_attestor() {
    let run = stella(&[
        "--attestor",
        "http://127.0.0.1:9",
        "--connect-timeout-ms",
        "500",
        "rekor",
        "consistency",
        "--origin",
        ORIGIN,
        "--from",
        "1",
        "--to",
        "2",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
}
