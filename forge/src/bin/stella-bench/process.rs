//! The attestor alone: the `stella-attestor` binary as its own process, fed through
//! `stella rekor tiles import` as an operator would, with its peak resident set size read from
//! `/proc/<pid>/status` once the import has returned. The attestor's `import phase` log lines
//! give the time of each import phase, and inclusion verification over gRPC is measured against
//! the same process afterwards (`verification.rs`).
//!
//! Both binaries are taken from the directory of the running `stella-bench`, so build them with
//! the same profile first (`cargo build --workspace --bins`).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stella_log_forge::Seed;

use crate::access::BenchAuthority;
use crate::verification::{self, VerificationFigures};

/// Maximum time from spawning the attestor until it serves requests.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Figures of one import into a separate attestor process.
pub struct ProcessFigures {
    /// Wall time of `stella rekor tiles import`, from spawn to exit.
    pub import_time: Duration,
    /// `VmHWM` of the attestor after the import, in KiB.
    pub peak_rss_kib: u64,
    /// `VmHWM` of the attestor after start-up and the trust set import, before the tile import,
    /// in KiB.
    pub idle_rss_kib: u64,
    /// Time spent in each step of the import, in order: `client` (from spawning `stella` to the
    /// attestor's `receiving` line), then each phase from its `import phase` line to the next,
    /// then `client exit` (from `done` to the exit of `stella`).
    pub phases: Vec<(String, Duration)>,
    /// `VmHWM` of the attestor after the verification measurements, in KiB.
    pub final_rss_kib: u64,
    /// Inclusion verification over gRPC against this attestor, after the import.
    pub verification: VerificationFigures,
}

/// The entries to verify against the attestor after the import.
pub struct VerificationInput<'a> {
    pub origin: &'a str,
    pub seed: &'a Seed,
    /// Entries verified with sequential `VerifyInclusion` calls.
    pub call_indexes: &'a [u64],
    /// Entries verified in one `VerifyInclusionStream` call.
    pub stream_indexes: &'a [u64],
}

/// Kills the attestor when dropped, so an early return never leaves it running.
struct Attestor {
    child: Child,
}

impl Drop for Attestor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `stella-attestor` on a free loopback port with a fresh data directory, imports the trust
/// set and then the tile bundle with the `stella` binary, and reads the attestor's `VmHWM` and
/// import phases. Then it measures inclusion verification of `input` against the same process.
///
/// `max_bundle_bytes` is passed to the attestor as `--max-bundle-bytes`.
pub fn measure(
    trust_archive: &[u8],
    tiles_archive: &[u8],
    max_bundle_bytes: u64,
    input: &VerificationInput<'_>,
) -> Result<ProcessFigures, String> {
    let bin_dir = binary_dir()?;
    let attestor_bin = bin_dir.join("stella-attestor");
    let stella_bin = bin_dir.join("stella");
    for binary in [&attestor_bin, &stella_bin] {
        if !binary.is_file() {
            return Err(format!(
                "{} not found; build the binaries first with `cargo build --workspace --bins` (same profile as stella-bench)",
                binary.display()
            ));
        }
    }

    let work = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let trust_file = work.path().join("trust.tgz");
    let tiles_file = work.path().join("tiles.tgz");
    std::fs::write(&trust_file, trust_archive)
        .map_err(|error| format!("writing {} failed: {error}", trust_file.display()))?;
    std::fs::write(&tiles_file, tiles_archive)
        .map_err(|error| format!("writing {} failed: {error}", tiles_file.display()))?;
    let data_dir = work.path().join("attestor-data");
    let log_path = work.path().join("attestor.log");
    let authority = BenchAuthority::create(work.path())?;

    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(&log_path)
        .map_err(|error| format!("creating {} failed: {error}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .map_err(|error| format!("duplicating the log handle failed: {error}"))?;
    let child = Command::new(&attestor_bin)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--max-bundle-bytes")
        .arg(max_bundle_bytes.to_string())
        .arg("--authority-jwks")
        .arg(authority.jwks_path())
        .arg("--plaintext-loopback")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_for_stderr))
        .spawn()
        .map_err(|error| format!("starting {} failed: {error}", attestor_bin.display()))?;
    let mut attestor = Attestor { child };
    let pid = attestor.child.id();

    let stella = Stella {
        binary: &stella_bin,
        url: &url,
        token: authority.token(),
    };
    wait_until_serving(&stella, &mut attestor, &log_path)?;
    let trust = stella.run(&["trust", "import", "--bundle"], &trust_file)?;
    check_success("stella trust import", &trust, &log_path)?;
    let idle_rss_kib = vm_hwm_kib(pid)?;

    let start_wall = seconds_of_day(SystemTime::now())?;
    let start = Instant::now();
    let import = stella.run(&["rekor", "tiles", "import", "--bundle"], &tiles_file)?;
    let import_time = start.elapsed();
    let end_wall = seconds_of_day(SystemTime::now())?;
    check_success("stella rekor tiles import", &import, &log_path)?;
    let peak_rss_kib = vm_hwm_kib(pid)?;

    let log_text = std::fs::read_to_string(&log_path)
        .map_err(|error| format!("reading {} failed: {error}", log_path.display()))?;
    let phases = import_phases(&log_text, start_wall, end_wall)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime failed: {error}"))?;
    let verification = runtime.block_on(async {
        let mut client = authority.connect(&url).await?;
        verification::measure(&mut client, input.origin, input.seed, input.call_indexes, input.stream_indexes).await
    })?;
    let final_rss_kib = vm_hwm_kib(pid)?;

    Ok(ProcessFigures {
        import_time,
        peak_rss_kib,
        idle_rss_kib,
        phases,
        final_rss_kib,
        verification,
    })
}

/// Returns the UTC time of day of `time` in seconds, the clock of the attestor's log timestamps.
fn seconds_of_day(time: SystemTime) -> Result<f64, String> {
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|error| format!("system clock before 1970: {error}"))?;
    Ok((since_epoch.as_secs() % 86_400) as f64 + f64::from(since_epoch.subsec_nanos()) / 1e9)
}

/// Parses the time of day from a log timestamp such as `2026-12-05T00:21:03.123456Z`.
fn timestamp_seconds(token: &str) -> Option<f64> {
    let (_, time) = token.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let mut fields = time.split(':');
    let hours: f64 = fields.next()?.parse().ok()?;
    let minutes: f64 = fields.next()?.parse().ok()?;
    let seconds: f64 = fields.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// Breaks the import down by the attestor's `import phase` lines, which carry `phase=<name>`
/// after a UTC timestamp. `start` and `end` are the times of day at which `stella` was spawned
/// and had exited.
fn import_phases(log: &str, start: f64, end: f64) -> Result<Vec<(String, Duration)>, String> {
    let mut marks: Vec<(String, f64)> = vec![("client".to_owned(), start)];
    for line in log.lines() {
        let Some(position) = line.find("import phase") else {
            continue;
        };
        let Some(time) = line.split_whitespace().next().and_then(timestamp_seconds) else {
            continue;
        };
        let Some((_, after)) = line.get(position..).and_then(|rest| rest.split_once("phase=")) else {
            continue;
        };
        let name: String = after
            .trim_start_matches('"')
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        marks.push((name, time));
    }
    if marks.len() < 2 {
        return Err("the attestor logged no `import phase` line during the import".to_owned());
    }
    marks.push(("end".to_owned(), end));

    let mut phases = Vec::with_capacity(marks.len());
    for pair in marks.windows(2) {
        if let [(name, from), (next, to)] = pair {
            // Midnight between two marks: the later mark is on the next day.
            let mut seconds = to - from;
            if seconds < -43_200.0 {
                seconds += 86_400.0;
            }
            let label = if next == "end" { "client exit".to_owned() } else { name.clone() };
            phases.push((label, Duration::from_secs_f64(seconds.max(0.0))));
        }
    }
    Ok(phases)
}

/// Returns the directory of the running executable, where cargo also puts the other binaries.
fn binary_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|error| format!("cannot find the running executable: {error}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no parent directory", exe.display()))
}

/// Returns a loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("binding a loopback port failed: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("reading the bound port failed: {error}"))?;
    Ok(address.port())
}

/// The `stella` binary with the attestor's URL and the token it sends.
struct Stella<'a> {
    binary: &'a Path,
    url: &'a str,
    token: &'a str,
}

impl Stella<'_> {
    /// Returns a `stella` command for the attestor, with the token in `STELLA_TOKEN`.
    fn command(&self) -> Command {
        let mut command = Command::new(self.binary);
        command
            .env("STELLA_ATTESTOR_URL", self.url)
            .env("STELLA_TOKEN", self.token)
            .stdin(Stdio::null());
        command
    }

    /// Runs `stella --output json` with `args` followed by `file`.
    fn run(&self, args: &[&str], file: &Path) -> Result<Output, String> {
        self.command()
            .args(["--output", "json"])
            .args(args)
            .arg(file)
            .output()
            .map_err(|error| format!("running {} failed: {error}", self.binary.display()))
    }
}

/// Polls `stella rekor checkpoints` until the attestor responds.
fn wait_until_serving(stella: &Stella<'_>, attestor: &mut Attestor, log_path: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = attestor.child.try_wait() {
            return Err(format!(
                "stella-attestor exited during start-up with {status}; its log is {}",
                log_path.display()
            ));
        }
        let output = stella
            .command()
            .args(["--output", "json", "rekor", "checkpoints"])
            .output()
            .map_err(|error| format!("running {} failed: {error}", stella.binary.display()))?;
        if output.status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "stella-attestor did not answer within {START_TIMEOUT:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn check_success(command: &str, output: &Output, log_path: &Path) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{command}` failed with {}: {}{}; the attestor's log is {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim(),
        log_path.display()
    ))
}

/// Reads the peak resident set size (`VmHWM`) of process `pid` in KiB (Linux only).
fn vm_hwm_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|error| format!("reading {path} failed: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| format!("{path} has no VmHWM line"))
}
