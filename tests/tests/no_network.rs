//! Proves that `stella verify-bundle` verifies without any network.
//!
//! `strace -f` records every network system call (`socket`, `connect`, `bind`, `sendto` and the
//! rest of strace's `%network` class) of `stella` and of any process it starts, and the test
//! requires that there are none. A control run of a command that calls the attestor shows that the
//! same trace does record sockets. A second test runs `verify-bundle` in a new network namespace,
//! where even loopback is down, and requires that it still verifies.
//!
//! `scripts/install-deps.sh` installs strace. Without strace, or without the right to create a
//! network namespace, a test fails when `CI=true` and skips with a message otherwise.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use stella_e2e::cli::{CliOutput, Stella, exit};
use stella_e2e::conformance::{ArtifactForm, SuiteCase, offline_stella};
use stella_e2e::vectors::Vectors;

/// How to get strace, for the message of a test that cannot run it.
const STRACE_REMEDY: &str = "install strace with scripts/install-deps.sh (as root)";

/// Returns true when the test must fail instead of skipping for a missing tool, by the same
/// rule as for absent vectors.
fn in_ci() -> bool {
    stella_e2e::vectors::in_ci()
}

/// Returns true when `program ARGS` runs and exits 0. Otherwise fails the test in CI, or prints
/// why the test skips and returns false. `remedy` tells the reader how to make the tool work.
fn tool_works(program: &str, args: &[&str], remedy: &str) -> bool {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let problem = match status {
        Ok(status) if status.success() => return true,
        Ok(status) => format!("`{program} {}` exited with {status}", args.join(" ")),
        Err(err) => format!("cannot run `{program}`: {err}"),
    };
    assert!(!in_ci(), "{problem}: {remedy}");
    eprintln!("SKIPPED: {problem}: {remedy}");
    false
}

/// One `verify-bundle` run: the case, how the artifact is passed, and whether `--staging`
/// replaces the case's own trusted root.
struct Run {
    case: &'static str,
    form: ArtifactForm,
    staging: bool,
}

const RUNS: [Run; 4] = [
    // The staging root from STELLA_SIGSTORE_TRUST_ROOTS_DIR, so the configured path is traced too.
    Run {
        case: "rekor2-happy-path",
        form: ArtifactForm::File,
        staging: true,
    },
    Run {
        case: "rekor2-dsse-happy-path",
        form: ArtifactForm::Digest,
        staging: false,
    },
    Run {
        case: "rekor2-dsse-invalid-sig_fail",
        form: ArtifactForm::File,
        staging: false,
    },
    // A Rekor v1 bundle checked against the configured production root.
    Run {
        case: "happy-path-v0.3",
        form: ArtifactForm::File,
        staging: false,
    },
];

fn run_args(case: &SuiteCase, run: &Run) -> Vec<String> {
    let mut args: Vec<String> = case
        .args(run.form)
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if run.staging {
        if let Some(position) = args.iter().position(|arg| arg == "--trusted-root") {
            args.drain(position..position + 2);
        }
        args.insert(1, "--staging".to_owned());
    }
    args
}

/// A system call from an strace log: its name and the whole line.
struct Syscall {
    name: String,
    line: String,
}

/// Parses an `strace -f -o FILE` log. Signal and exit lines (`---`, `+++`) are not system calls.
fn parse_trace(path: &Path) -> Vec<Syscall> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read strace log {}: {err}", path.display()));
    let mut calls = Vec::new();
    for line in text.lines() {
        // With -f each line starts with the thread id.
        let rest = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        if rest.starts_with("---") || rest.starts_with("+++") || rest.is_empty() {
            continue;
        }
        // A call interrupted by another thread resumes as `<... NAME resumed>`.
        let name = match rest.strip_prefix("<... ") {
            Some(resumed) => resumed.split_whitespace().next().unwrap_or_default(),
            None => rest.split('(').next().unwrap_or_default(),
        };
        calls.push(Syscall {
            name: name.to_owned(),
            line: line.to_owned(),
        });
    }
    calls
}

/// Runs `stella ARGS` under strace, recording network calls and file opens.
fn traced(stella: &Stella, trace: &Path, args: &[String]) -> (CliOutput, Vec<Syscall>) {
    let trace_text = trace.display().to_string();
    let output = stella
        .clone()
        .wrapped([
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=%network,openat,open",
            "-o",
            &trace_text,
        ])
        .run(args);
    let calls = parse_trace(trace);
    (output, calls)
}

fn network_calls(calls: &[Syscall]) -> Vec<&str> {
    calls
        .iter()
        .filter(|call| call.name != "openat" && call.name != "open")
        .map(|call| call.line.as_str())
        .collect()
}

#[test]
fn verify_bundle_opens_no_socket() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    if !tool_works("strace", &["-V"], STRACE_REMEDY) {
        return;
    }
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path());

    for (number, run) in RUNS.iter().enumerate() {
        let case = SuiteCase::load(&vectors.bundle_verify_dir(), run.case);
        let trace = work.path().join(format!("trace-{number}.txt"));
        let (output, calls) = traced(&stella, &trace, &run_args(&case, run));

        let expected_exit = if case.must_fail() {
            exit::FAILED
        } else {
            exit::OK
        };
        output.assert_code(expected_exit);
        // The trace must show stella reading the bundle, or strace traced something else.
        let bundle = case.bundle.display().to_string();
        assert!(
            calls
                .iter()
                .any(|call| call.name.starts_with("open") && call.line.contains(&bundle)),
            "case {}: the strace log shows no open of {bundle}\n{output}",
            run.case
        );
        let network = network_calls(&calls);
        assert!(
            network.is_empty(),
            "case {}: verify-bundle made network system calls:\n{}\n{output}",
            run.case,
            network.join("\n")
        );
    }
}

#[test]
fn trace_records_service_sockets() {
    // Control: the same trace of a command that calls the attestor records its socket and
    // connect, so an empty list above is not a blind spot of the tracing.
    if !tool_works("strace", &["-V"], STRACE_REMEDY) {
        return;
    }

    let work = tempfile::tempdir().expect("temporary directory");
    let stella = Stella::offline(work.path());
    let trace = work.path().join("trace.txt");
    let args: Vec<String> = [
        "--connect-timeout-ms",
        "2000",
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]
    .map(str::to_owned)
    .into();
    let (output, calls) = traced(&stella, &trace, &args);
    output.assert_code(exit::UNREACHABLE);

    let names: BTreeSet<&str> = calls.iter().map(|call| call.name.as_str()).collect();
    assert!(
        names.contains("socket"),
        "no socket() in {names:?}\n{output}"
    );
    assert!(
        names.contains("connect"),
        "no connect() in {names:?}\n{output}"
    );
}

/// Returns the `unshare` arguments that give a command a new network namespace: as root a plain
/// `--net`, otherwise inside a new user namespace that maps the caller to root.
fn unshare_prefix() -> Vec<&'static str> {
    let root = rustix::process::geteuid().is_root();
    if root {
        vec!["unshare", "--net", "--"]
    } else {
        vec!["unshare", "--map-root-user", "--net", "--"]
    }
}

#[test]
fn verifies_in_empty_network_namespace() {
    let Some(vectors) = Vectors::locate_sigstore() else {
        return;
    };
    let prefix = unshare_prefix();
    let (program, probe_args) = prefix.split_first().expect("unshare prefix");
    let mut probe: Vec<&str> = probe_args.to_vec();
    probe.push("true");
    if !tool_works(
        program,
        &probe,
        "creating a network namespace needs root or unprivileged user namespaces",
    ) {
        return;
    }
    let work = tempfile::tempdir().expect("temporary directory");
    let stella = offline_stella(&vectors, work.path()).wrapped(&prefix);

    for run in &RUNS {
        let case = SuiteCase::load(&vectors.bundle_verify_dir(), run.case);
        let expected_exit = if case.must_fail() {
            exit::FAILED
        } else {
            exit::OK
        };
        stella.run(run_args(&case, run)).assert_code(expected_exit);
    }

    // Control: inside the namespace even loopback is unreachable. A listener of this process
    // cannot be reached, and the attestor call fails as unreachable.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let port = listener.local_addr().expect("listener address").port();
    let url = format!("http://127.0.0.1:{port}");
    let output = Stella::new(&url, &url, work.path()).wrapped(&prefix).run([
        "--connect-timeout-ms",
        "2000",
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]);
    output.assert_code(exit::UNREACHABLE);
    assert!(
        listener.accept().is_err(),
        "a process in the new network namespace reached the host's loopback\n{output}"
    );
}
