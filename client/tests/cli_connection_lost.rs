//! A service whose connection drops in the middle of a call makes `stella` exit 4 with a message
//! that the connection was lost, and with `ERR_ATTESTOR_UNAVAILABLE` for the attestor.

mod common;

use common::{dropping_server, rekor_verify_json, stella, string_at};

#[test]
fn dropped_attestor_call_exits_four() {
    let url = dropping_server();
    let run = rekor_verify_json(&url);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_ATTESTOR_UNAVAILABLE",
        "{object:?}"
    );
    let message = string_at(&object, "error");
    assert!(
        message.contains(&format!("the connection to the attestor at {url} was lost")),
        "message: {message}"
    );
}

#[test]
fn dropped_import_exits_four() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let archive = temp.path().join("trust-roots.tgz");
    std::fs::write(&archive, vec![0_u8; 4096]).expect("write archive");
    let url = dropping_server();
    let run = stella(&[
        "--attestor",
        &url,
        "trust",
        "import",
        "--bundle",
        common::arg(&archive),
    ]);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("was lost during the call"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("reason code: ERR_ATTESTOR_UNAVAILABLE"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn dropped_gate_call_exits_four() {
    let url = dropping_server();
    let run = stella(&["--gate", &url, "decisions", "get", "dr-1"]);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("the connection to the gate at {url} was lost")),
        "stderr: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("reason code:"),
        "stderr: {}",
        run.stderr
    );
}
