//! Input files: only regular files are read, at most the archive limit, and a failure names the
//! file without contacting any service. Pack errors name the output file.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{arg, closed_port_url, make_fifo, production_root, stella, stella_within, string_at};

/// A FIFO or device must fail at once; this bound only keeps a regression from hanging CI.
const PROMPT: Duration = Duration::from_secs(20);
/// The archive limit of `stella_bundle`, 256 MiB.
const ARCHIVE_LIMIT: u64 = 256 * 1024 * 1024;

/// Runs an import command of `kind` (`trust`, `tiles` or `evidence`) on `file`, against an
/// attestor URL where nothing listens: reaching the service would exit 4.
fn import(kind: &str, file: &Path) -> common::Run {
    let closed = closed_port_url();
    let mut args = vec!["--attestor", closed.as_str(), "--output", "json"];
    match kind {
        "trust" => args.extend(["trust", "import"]),
        "tiles" => args.extend(["rekor", "tiles", "import"]),
        _ => args.extend(["evidence", "verify", "--offline"]),
    }
    args.extend(["--bundle", arg(file)]);
    stella_within(&args, PROMPT)
}

#[test]
fn device_input_fails_at_once() {
    for kind in ["trust", "tiles", "evidence"] {
        let run = import(kind, Path::new("/dev/zero"));
        assert_eq!(run.code, 5, "row {kind}: stderr: {}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot read /dev/zero: it is a character device, not a regular file"),
            "row {kind}: stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn fifo_input_fails_at_once() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let fifo = temp.path().join("bundle.tgz");
    make_fifo(&fifo);
    for kind in ["trust", "tiles", "evidence"] {
        let run = import(kind, &fifo);
        assert_eq!(run.code, 5, "row {kind}: stderr: {}", run.stderr);
        assert!(
            run.stderr.contains("bundle.tgz: it is a FIFO (named pipe)"),
            "row {kind}: stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn oversized_input_rejected_by_name() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let big = temp.path().join("huge.tgz");
    // A sparse file: its size is over the limit, but it takes no disk space.
    let file = std::fs::File::create(&big).expect("create file");
    file.set_len(ARCHIVE_LIMIT + 1).expect("extend file");
    drop(file);

    // Tile bundles are streamed, so their limit is the attestor's: cli_tiles_stream.rs.
    for kind in ["trust", "evidence"] {
        let run = import(kind, &big);
        assert_eq!(run.code, 1, "row {kind}: stderr: {}", run.stderr);
        let object = run.json();
        assert_eq!(
            string_at(&object, "reason_code"),
            "ERR_BUNDLE_TOO_LARGE",
            "row {kind}: {object:?}"
        );
        let message = string_at(&object, "error");
        assert!(message.contains(arg(&big)), "row {kind}: {message}");
        assert!(
            message.contains(&format!("{} bytes", ARCHIVE_LIMIT + 1)),
            "row {kind}: {message}"
        );
    }
}

#[test]
fn tiles_dir_with_fifo_named() {
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().join("log");
    std::fs::create_dir(&dir).expect("create directory");
    make_fifo(&dir.join("checkpoint"));
    let out = temp.path().join("tiles.tgz");
    let run = stella_within(
        &[
            "rekor",
            "tiles",
            "pack",
            "--tiles-dir",
            arg(&dir),
            "--out",
            arg(&out),
        ],
        PROMPT,
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("checkpoint: unexpected file in a tlog-tiles directory: a FIFO (named pipe), not a regular file"),
        "stderr: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("links to directories"),
        "stderr: {}",
        run.stderr
    );
}

#[test]
fn pack_output_missing_directory_named() {
    let Some(root) = production_root() else {
        return;
    };
    let out = "/nonexistent-stella-dir/sub/trust.tgz";
    let run = stella(&[
        "trust",
        "pack",
        "--trusted-root",
        arg(&root),
        "--version",
        "1",
        "--expires",
        "30d",
        "--out",
        out,
    ]);
    assert_eq!(run.code, 5, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("cannot write {out}: ")),
        "stderr: {}",
        run.stderr
    );
    assert!(!run.stderr.contains(".tmp-"), "stderr: {}", run.stderr);
}

#[test]
fn pack_error_names_output_file() {
    let Some(root) = production_root() else {
        return;
    };
    let temp = tempfile::tempdir().expect("temporary directory");
    let pem = temp.path().join("key.pem");
    std::fs::write(&pem, b"not used: the key id is checked first").expect("write PEM");
    let out = temp.path().join("trust.tgz");
    let kms_key = format!("bad id={}", arg(&pem));

    let run = stella(&[
        "--output",
        "json",
        "trust",
        "pack",
        "--trusted-root",
        arg(&root),
        "--kms-key",
        &kms_key,
        "--version",
        "1",
        "--expires",
        "30d",
        "--out",
        arg(&out),
    ]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);

    let object = run.json();
    let message = string_at(&object, "error");
    assert!(!message.contains("(new bundle)"), "{message}");
    assert!(
        message.contains(&format!("{}: kms/", arg(&out))),
        "{message}"
    );
    assert!(!out.exists(), "a rejected pack wrote its output");
}
