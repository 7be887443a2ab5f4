//! Without `OTEL_EXPORTER_OTLP_ENDPOINT`, the services export no spans and open no connection for
//! telemetry. Both run under `strace -f -e trace=connect` through a whole runbook (trust roots,
//! proofs, evidence, promotion, evaluation), and the only TCP connections they open are the
//! gate's to the attestor. Local Unix sockets are allowed.
//!
//! `strace -D` runs the tracer as a detached grandchild, so the harness's process id is the
//! service itself and SIGTERM stops the service as usual. `scripts/install-deps.sh` installs
//! strace. Without it the test fails when `CI=true` and skips with a message otherwise.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stella_e2e::env::Env;
use stella_e2e::policy::{self, PROD};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Maximum time from a service's exit to the end of its strace log.
const TRACE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The port that an OTLP exporter falls back to without an endpoint.
const OTLP_DEFAULT_PORT: &str = "htons(4317)";

/// Returns true when strace runs. Otherwise fails the test in CI, or prints why it skips.
fn strace_works() -> bool {
    let status = Command::new("strace")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let problem = match status {
        Ok(status) if status.success() => return true,
        Ok(status) => format!("`strace -V` exited with {status}"),
        Err(err) => format!("cannot run `strace`: {err}"),
    };
    let remedy = "install strace with scripts/install-deps.sh (as root)";
    assert!(!stella_e2e::vectors::in_ci(), "{problem}: {remedy}");
    eprintln!("SKIPPED: {problem}: {remedy}");
    false
}

/// Returns the strace command line that records every connect() of a service and its threads
/// in `log`.
fn strace_wrapper(log: &Path) -> Vec<OsString> {
    ["strace", "-D", "-f", "-q", "-e", "trace=connect", "-o"]
        .into_iter()
        .map(OsString::from)
        .chain([log.as_os_str().to_owned()])
        .collect()
}

/// Waits until the strace log records the exit of process `pid`, because the detached tracer
/// may still be writing after the service has exited, and returns the log.
fn finished_trace(log: &Path, pid: u32) -> String {
    let pid_text = pid.to_string();
    // strace pads the process id column, so the words are compared rather than a prefix.
    let is_exit_line = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().take(3).collect();
        words == [pid_text.as_str(), "+++", "exited"]
    };
    let deadline = Instant::now() + TRACE_FLUSH_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log)
            .unwrap_or_else(|err| panic!("cannot read strace log {}: {err}", log.display()));
        if text.lines().any(is_exit_line) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "strace log {} shows no exit of process {pid} within {TRACE_FLUSH_TIMEOUT:?}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns the connect() lines of an strace log that are not to a Unix socket.
fn network_connects(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|line| line.contains("connect("))
        .filter(|line| !line.contains("sa_family=AF_UNIX"))
        .collect()
}

#[test]
fn services_connect_only_to_attestor() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    if !strace_works() {
        return;
    }
    let traces = tempfile::tempdir().expect("temporary directory");
    let attestor_log = traces.path().join("attestor.strace");
    let gate_log = traces.path().join("gate.strace");
    let mut env = Env::builder("no-otlp")
        .gate(&policy::standard())
        .service_env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .service_env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .service_wrappers(strace_wrapper(&attestor_log), strace_wrapper(&gate_log))
        .start();

    let case = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&case.bundle()]);
    let bundle_id = env.register_case(&case);
    env.promote("untraced", PROD, &[&bundle_id]).assert_allow();

    let attestor_port = env.attestor().port();
    let attestor_pid = env.attestor().pid();
    let gate_pid = env.gate().pid();
    let gate_stop = env.gate_mut().stop();
    assert!(!gate_stop.forced, "the gate ignored SIGTERM under strace");
    let attestor_stop = env.attestor_mut().stop();
    assert!(
        !attestor_stop.forced,
        "the attestor ignored SIGTERM under strace"
    );
    let gate_trace = finished_trace(&gate_log, gate_pid);
    let attestor_trace = finished_trace(&attestor_log, attestor_pid);

    // The attestor calls no other service.
    let attestor_connects = network_connects(&attestor_trace);
    assert!(
        attestor_connects.is_empty(),
        "the attestor opened connections:\n{}",
        attestor_connects.join("\n")
    );

    // The gate connects to the attestor, which shows that the trace records its connections,
    // and to nothing else.
    let attestor_address =
        format!("sin_port=htons({attestor_port}), sin_addr=inet_addr(\"127.0.0.1\")");
    let gate_connects = network_connects(&gate_trace);
    assert!(
        !gate_connects.is_empty(),
        "the strace log of the gate records no connection to the attestor:\n{gate_trace}"
    );
    let other: Vec<&str> = gate_connects
        .iter()
        .copied()
        .filter(|line| !line.contains(&attestor_address))
        .collect();
    assert!(
        other.is_empty(),
        "the gate connected to other addresses than the attestor's ({attestor_address}):\n{}",
        other.join("\n")
    );
    for (service, trace) in [("attestor", &attestor_trace), ("gate", &gate_trace)] {
        assert!(
            !trace.contains(OTLP_DEFAULT_PORT),
            "the {service} tried the OTLP port 4317:\n{trace}"
        );
    }
}
