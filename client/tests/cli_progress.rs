//! Progress bars of `stella rekor tiles import` and `pack` stay off stdout and stderr when stderr
//! is not a terminal, as in these tests, and with `--output json`. The import runs against a
//! real attestor served in process on a loopback port.

mod common;

use common::attestor::Attestor;
use common::bundles::{SignedLog, numbered_entries};
use common::{Run, arg, production_root, stella, vectors};

const ORIGIN: &str = "progress.example/log";

/// Fails the test when `run` printed anything a progress bar draws: the bar's own words, a
/// carriage return or a terminal escape sequence.
fn assert_no_progress(run: &Run) {
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains("tiles/s"), "rate line printed: {output:?}");
        assert!(
            !output.contains("sending "),
            "upload bar printed: {output:?}"
        );
        assert!(
            !output.contains("packing"),
            "pack spinner printed: {output:?}"
        );
        assert!(
            !output.contains('\r'),
            "carriage return printed: {output:?}"
        );
        assert!(
            !output.contains('\u{1b}'),
            "escape sequence printed: {output:?}"
        );
    }
}

#[test]
fn import_off_terminal_prints_no_bar() {
    let Some(trusted_root) = production_root() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = SignedLog::new(ORIGIN, 7);
    let attestor = Attestor::start_trusting(dir.path(), &trusted_root, &[log.vkey()]);
    let tiles = dir.path().join("tiles.tgz");
    log.write_tiles(&tiles, &numbered_entries(600));

    let json = attestor.stella(&[
        "--output",
        "json",
        "rekor",
        "tiles",
        "import",
        "--bundle",
        arg(&tiles),
    ]);
    assert_eq!(json.code, 0, "stderr: {}", json.stderr);
    assert_no_progress(&json);
    assert_eq!(
        json.json().get("already_imported"),
        Some(&serde_json::Value::Bool(false))
    );
    assert!(json.stderr.is_empty(), "stderr: {:?}", json.stderr);

    let text = attestor.stella(&["rekor", "tiles", "import", "--bundle", arg(&tiles)]);
    assert_eq!(text.code, 0, "stderr: {}", text.stderr);
    assert_no_progress(&text);
    assert!(
        text.stdout.starts_with("already imported tiles.tgz"),
        "stdout: {}",
        text.stdout
    );
}

#[test]
fn pack_off_terminal_prints_no_bar() {
    let Some(log) = vectors("tessera-log") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("tessera.tgz");

    let json = stella(&[
        "--output",
        "json",
        "rekor",
        "tiles",
        "pack",
        "--tiles-dir",
        arg(&log),
        "--out",
        arg(&out),
    ]);
    assert_eq!(json.code, 0, "stderr: {}", json.stderr);
    assert_no_progress(&json);
    assert!(json.json().contains_key("bundle_digest"));

    let text = stella(&[
        "rekor",
        "tiles",
        "pack",
        "--tiles-dir",
        arg(&log),
        "--out",
        arg(&out),
    ]);
    assert_eq!(text.code, 0, "stderr: {}", text.stderr);
    assert_no_progress(&text);
    assert!(text.stdout.starts_with("wrote "), "stdout: {}", text.stdout);
}
