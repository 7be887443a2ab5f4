//! First verification in a fresh process: latency and peak memory.
//!
//! The parent runs its own executable as `bundle_verify first-verification VERIFIER CASE`. The
//! child reads the case files, prepares the verifier's trust material, verifies once and prints
//! one line: `latency_ns=N vm_hwm_kib=K`. The latency runs from the child's `main` to the end of
//! the verification, and `vm_hwm_kib` is the child's `VmHWM` (peak resident set size) from
//! `/proc/self/status`. The parent also times each child from spawn to exit and takes its
//! `ru_maxrss` from `wait4`. The `baseline` verifier verifies nothing and shows what the
//! executable costs on its own.
//!
//! Linux sets a child's `ru_maxrss` to at least the resident size that the address space had
//! before `exec`, and Rust spawns with `posix_spawn`, whose child runs in the parent's address
//! space until then. So `ru_maxrss` includes the parent's resident size at spawn time, and the
//! table reports `VmHWM` as the child's peak, with `ru_maxrss` as an upper bound.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cases::{Case, Verifier, verify_from_scratch};

/// First argument that makes the bench executable act as a measured child.
pub const SUB_COMMAND: &str = "first-verification";

/// Verifier argument of a child that starts, reads no input and exits.
const BASELINE: &str = "baseline";

/// Results of the children of one verifier.
pub struct LatencyRow {
    label: &'static str,
    /// In-child latency from `main` to the end of the verification, per child.
    latencies: Vec<Duration>,
    /// Parent-side wall time from spawn to exit, per child.
    process_walls: Vec<Duration>,
    /// `VmHWM` of each child, KiB.
    vm_hwm_kib: Vec<u64>,
    /// `ru_maxrss` of each child, KiB.
    max_rss_kib: Vec<u64>,
}

/// Runs the child side: `arguments` are the verifier name and the case name.
pub fn run_child(arguments: &[String], started: Instant) {
    let [verifier_name, case_name] = arguments else {
        eprintln!("usage: bundle_verify {SUB_COMMAND} VERIFIER CASE");
        std::process::exit(2);
    };
    if verifier_name != BASELINE {
        let Some(verifier) = Verifier::from_name(verifier_name) else {
            let known: Vec<&str> = Verifier::ALL
                .iter()
                .map(|verifier| verifier.name())
                .collect();
            eprintln!(
                "error: unknown verifier {verifier_name:?}; expected {BASELINE} or one of {}",
                known.join(", ")
            );
            std::process::exit(2);
        };
        let result = Case::load(case_name).and_then(|case| verify_from_scratch(&case, verifier));
        if let Err(message) = result {
            eprintln!("error: {verifier_name} did not verify {case_name}: {message}");
            std::process::exit(1);
        }
    }
    let latency = started.elapsed();
    let vm_hwm_kib = read_vm_hwm_kib().unwrap_or_else(|message| {
        eprintln!("error: {message}");
        std::process::exit(1);
    });
    println!("latency_ns={} vm_hwm_kib={vm_hwm_kib}", latency.as_nanos());
}

/// Reads the `VmHWM` line of `/proc/self/status`, in KiB.
fn read_vm_hwm_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| format!("cannot read /proc/self/status: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_owned())
}

/// Runs `children` fresh processes per verifier on `case_name`, interleaving the verifiers.
pub fn measure(case_name: &str, children: usize) -> Vec<LatencyRow> {
    let labels = [
        BASELINE,
        Verifier::Stella.name(),
        Verifier::SigstoreVerify.name(),
    ];
    let mut rows: Vec<LatencyRow> = labels
        .iter()
        .map(|label| LatencyRow {
            label,
            latencies: Vec::new(),
            process_walls: Vec::new(),
            vm_hwm_kib: Vec::new(),
            max_rss_kib: Vec::new(),
        })
        .collect();
    for _ in 0..children {
        for row in &mut rows {
            let sample = run_one_child(row.label, case_name);
            row.latencies.push(sample.latency);
            row.process_walls.push(sample.process_wall);
            row.vm_hwm_kib.push(sample.vm_hwm_kib);
            row.max_rss_kib.push(sample.max_rss_kib);
        }
    }
    rows
}

struct ChildSample {
    latency: Duration,
    process_wall: Duration,
    vm_hwm_kib: u64,
    max_rss_kib: u64,
}

#[expect(
    clippy::zombie_processes,
    reason = "wait_with_max_rss reaps the child with wait4"
)]
fn run_one_child(verifier: &str, case_name: &str) -> ChildSample {
    let executable = std::env::current_exe()
        .unwrap_or_else(|error| crate::fail(&format!("cannot find the bench executable: {error}")));
    let spawned = Instant::now();
    let mut child = Command::new(&executable)
        .args([SUB_COMMAND, verifier, case_name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| {
            crate::fail(&format!("cannot start {}: {error}", executable.display()))
        });
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut output)
            .unwrap_or_else(|error| crate::fail(&format!("cannot read the child output: {error}")));
    }
    let (status, max_rss_kib) = wait_with_max_rss(child.id());
    let process_wall = spawned.elapsed();
    if !status.success() {
        crate::fail(&format!(
            "the {verifier} child on {case_name} failed ({status}); its error is printed above"
        ));
    }
    let (latency, vm_hwm_kib) = parse_child_output(&output).unwrap_or_else(|| {
        crate::fail(&format!(
            "invalid output of the {verifier} child: {output:?}"
        ))
    });
    ChildSample {
        latency,
        process_wall,
        vm_hwm_kib,
        max_rss_kib,
    }
}

/// Waits for the child `pid` and returns its exit status and its `ru_maxrss` in KiB.
///
/// `std::process::Child::wait` returns no resource usage, and `getrusage(RUSAGE_CHILDREN)`
/// returns the maximum over all children waited for so far, so `wait4` reaps this one child.
fn wait_with_max_rss(pid: u32) -> (std::process::ExitStatus, u64) {
    use std::os::unix::process::ExitStatusExt as _;

    let pid = libc::pid_t::try_from(pid)
        .unwrap_or_else(|_| crate::fail(&format!("child id {pid} does not fit in pid_t")));
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is a child of this process that nothing else waits for, and both out
        // pointers refer to live, writable locals.
        let result = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if result == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            crate::fail(&format!("wait4 on child {pid} failed: {error}"));
        }
    }
    // Linux reports `ru_maxrss` in KiB.
    let max_rss_kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    (std::process::ExitStatus::from_raw(status), max_rss_kib)
}

fn parse_child_output(output: &str) -> Option<(Duration, u64)> {
    let mut latency = None;
    let mut vm_hwm_kib = None;
    for field in output.split_whitespace() {
        if let Some(value) = field.strip_prefix("latency_ns=") {
            latency = Some(Duration::from_nanos(value.parse().ok()?));
        } else if let Some(value) = field.strip_prefix("vm_hwm_kib=") {
            vm_hwm_kib = Some(value.parse().ok()?);
        }
    }
    Some((latency?, vm_hwm_kib?))
}

pub fn print(rows: &[LatencyRow], case_name: &str, children: usize) {
    println!(
        "\nFirst verification of {case_name} in a fresh process: median of {children} \
         process(es) per verifier"
    );
    println!(
        "{:<16} {:>20} {:>20} {:>14} {:>16}",
        "verifier", "in-process latency", "process wall time", "peak RSS", "max ru_maxrss"
    );
    for row in rows {
        let latency = if row.label == BASELINE {
            "-".to_owned()
        } else {
            format_millis(median_duration(&row.latencies))
        };
        println!(
            "{:<16} {:>20} {:>20} {:>14} {:>16}",
            row.label,
            latency,
            format_millis(median_duration(&row.process_walls)),
            format_mib(median_kib(&row.vm_hwm_kib)),
            format_mib(row.max_rss_kib.iter().copied().max().unwrap_or(0))
        );
    }
    println!(
        "in-process latency: from the child's main to the end of the verification (file reads, \
         trusted root and bundle parsing, one verification); process wall time: spawn to exit, \
         seen by the parent; peak RSS: median VmHWM of the child; max ru_maxrss: largest wait4 \
         value, which includes this process's resident size at spawn"
    );
}

fn median_duration(values: &[Duration]) -> Duration {
    Duration::from_secs_f64(crate::median(
        values.iter().map(Duration::as_secs_f64).collect(),
    ))
}

fn median_kib(values: &[u64]) -> u64 {
    crate::median(values.iter().map(|&value| value as f64).collect()) as u64
}

fn format_millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn format_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
