//! Calls to services that cannot respond exit 4 and name the URL.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::thread;

use common::A_TXT_DIGEST as DIGEST;
use common::{closed_port_url, rekor_verify_json, stella, stella_with_env, string_at};

#[test]
fn unreachable_services_exit_four() {
    let closed = closed_port_url();
    let rows: Vec<(&str, Vec<&str>)> = vec![
        (
            "rekor verify",
            vec![
                "rekor",
                "verify",
                "--offline",
                "--evidence-bundle-id",
                DIGEST,
            ],
        ),
        (
            "promotion create",
            vec![
                "promotion",
                "create",
                "--promotion",
                "p1",
                "--subject",
                DIGEST,
                "--target",
                "prod",
                "--evidence-bundle-id",
                DIGEST,
            ],
        ),
        (
            "promotion evaluate",
            vec![
                "promotion",
                "evaluate",
                "--promotion",
                "p1",
                "--offline-rekor",
            ],
        ),
        (
            "promotion preview",
            vec![
                "promotion",
                "preview-gates",
                "--promotion",
                "p1",
                "--offline-rekor",
            ],
        ),
        ("decisions get", vec!["decisions", "get", "r1"]),
        ("policy show", vec!["policy", "show"]),
    ];
    for (name, args) in rows {
        let mut full = vec!["--attestor", closed.as_str(), "--gate", closed.as_str()];
        full.extend(args);
        let run = stella(&full);
        assert_eq!(run.code, 4, "row {name}: stderr: {}", run.stderr);
        assert!(
            run.stderr.contains(&closed),
            "row {name}: URL missing from {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "row {name}: stdout: {}", run.stdout);
    }
}

#[test]
fn unreachable_attestor_json_code() {
    let closed = closed_port_url();
    let run = rekor_verify_json(&closed);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(
        string_at(&object, "reason_code"),
        "ERR_ATTESTOR_UNAVAILABLE"
    );
    let message = string_at(&object, "error");
    assert!(message.contains(&closed), "message lacks URL: {message}");
    assert!(
        run.stderr.contains("ERR_ATTESTOR_UNAVAILABLE"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn unreachable_gate_json_null_code() {
    let closed = closed_port_url();
    let run = stella(&[
        "--output",
        "json",
        "--gate",
        &closed,
        "decisions",
        "get",
        "r1",
    ]);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    let object = run.json();
    assert_eq!(object.get("reason_code"), Some(&serde_json::Value::Null));
    assert!(
        object
            .get("error")
            .and_then(|v| v.as_str())
            .is_some_and(|m| m.contains(&closed))
    );
}

#[test]
fn url_from_environment() {
    let closed = closed_port_url();
    let run = stella_with_env(&["decisions", "get", "r1"], &[("STELLA_GATE_URL", &closed)]);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(run.stderr.contains(&closed), "stderr: {}", run.stderr);
}

#[test]
fn silent_service_times_out() {
    // A TCP listener that accepts and reads but never responds to HTTP/2.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    thread::spawn(move || {
        let mut open_streams = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut reader = stream.try_clone().expect("clone stream");
            thread::spawn(move || {
                let mut buffer = [0_u8; 1024];
                while matches!(reader.read(&mut buffer), Ok(n) if n > 0) {}
            });
            open_streams.push(stream);
        }
    });

    let run = stella(&[
        "--gate",
        &url,
        "--connect-timeout-ms",
        "500",
        "--request-timeout-ms",
        "500",
        "decisions",
        "get",
        "r1",
    ]);
    assert_eq!(run.code, 4, "stderr: {}", run.stderr);
    assert!(run.stderr.contains(&url), "stderr: {}", run.stderr);
}
