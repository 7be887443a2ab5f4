//! Service processes: start on a free loopback port, wait for the gRPC health check, stop with
//! SIGTERM (then SIGKILL after a deadline) and restart on the same port and data directory.
//!
//! Each service writes its stdout and stderr to one log file, which the harness prints when a test
//! fails. Every child process gets a parent-death signal (SIGKILL), so a service never outlives
//! the test run, even when the run is killed.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tonic::transport::{ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::access::ClientTls;

/// Maximum time from spawning a service to a SERVING health check.
///
/// Generous because a debug build opening a fresh RocksDB on a loaded 2-core machine can take
/// several seconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time a service may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of fresh ports tried when a service exits during start-up, which happens when another
/// process takes the port between the harness probing it and the service binding it.
const START_ATTEMPTS: u32 = 3;

/// Maximum time one health probe (connect and call) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between health probes and between polls of a child's exit status.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Number of trailing log lines printed when a test fails.
const LOG_TAIL_LINES: usize = 300;

/// How to run one service binary.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Short name for messages and the log file, such as `attestor`.
    pub name: String,
    /// The service binary.
    pub binary: PathBuf,
    /// The gRPC service name whose health status must be SERVING, such as
    /// `stella.attestor.v1.Attestor`.
    pub health_service: String,
    /// The RocksDB data directory, kept across restarts.
    pub data_dir: PathBuf,
    /// The file that receives the service's stdout and stderr.
    pub log_path: PathBuf,
    /// Arguments after `--listen ADDR --data-dir DIR`.
    pub extra_args: Vec<OsString>,
    /// Current directory of the process, so a stray relative write lands where the test looks.
    pub working_dir: PathBuf,
    /// TLS settings of the health probe when the service serves TLS (its URL is then `https`),
    /// or `None` for plaintext.
    pub tls: Option<ClientTls>,
    /// Environment variables set (`Some`) or removed (`None`) for the process.
    pub env: Vec<(OsString, Option<OsString>)>,
    /// Program and arguments that run the binary, such as `strace -D -o LOG`. When empty, the
    /// binary runs directly.
    pub wrapper: Vec<OsString>,
}

/// How a service stopped.
#[derive(Debug, Clone, Copy)]
pub struct StopReport {
    /// Exit status of the process.
    pub status: ExitStatus,
    /// True when the process ignored SIGTERM for [`STOP_TIMEOUT`] and was killed.
    pub forced: bool,
    /// Time from SIGTERM to exit.
    pub elapsed: Duration,
}

/// A running (or stopped) service process.
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
    port: u16,
    child: Option<Child>,
}

impl Service {
    /// Starts the service on a free loopback port and waits until its health check reports
    /// SERVING.
    ///
    /// # Panics
    ///
    /// Panics with the service log when the service does not become healthy within
    /// [`START_TIMEOUT`] after [`START_ATTEMPTS`] ports.
    pub fn start(config: ServiceConfig) -> Service {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            match launch(&config, port, attempt) {
                Ok(child) => {
                    return Service {
                        config,
                        port,
                        child: Some(child),
                    };
                }
                Err(failure) => {
                    let retry = failure.exited_early;
                    failures.push(failure.message);
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!(
            "{} did not start: {}\n{}",
            config.name,
            failures.join("; "),
            log_tail(&config.log_path)
        );
    }

    /// Returns the short name of the service.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Returns the loopback port the service listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the gRPC URL of the service, such as `http://127.0.0.1:40123`, or
    /// `https://127.0.0.1:40123` when it serves TLS.
    pub fn url(&self) -> String {
        service_url(self.config.tls.is_some(), self.port)
    }

    /// Returns the TLS settings that the harness uses to reach the service, or `None` when it
    /// serves plaintext.
    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.config.tls.as_ref()
    }

    /// Returns the RocksDB data directory of the service.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Returns the arguments after `--listen ADDR --data-dir DIR`, to change them before
    /// [`Service::start_again`].
    pub fn extra_args_mut(&mut self) -> &mut Vec<OsString> {
        &mut self.config.extra_args
    }

    /// Returns the log file of the service.
    pub fn log_path(&self) -> &Path {
        &self.config.log_path
    }

    /// Returns the whole log of the service so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.config.log_path).unwrap_or_default()
    }

    /// Returns the process id of the running service.
    ///
    /// # Panics
    ///
    /// Panics when the service is stopped.
    pub fn pid(&self) -> u32 {
        match &self.child {
            Some(child) => child.id(),
            None => panic!("{} is not running", self.config.name),
        }
    }

    /// Returns true while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the service: SIGTERM, then SIGKILL when it has not exited within [`STOP_TIMEOUT`].
    ///
    /// # Panics
    ///
    /// Panics when the service is already stopped or a signal cannot be sent.
    pub fn stop(&mut self) -> StopReport {
        let Some(child) = self.child.take() else {
            panic!("{} is already stopped", self.config.name);
        };
        let report = terminate(child);
        note_in_log(
            &self.config.log_path,
            &format!(
                "stopped {}: {} after {:?}{}",
                self.config.name,
                report.status,
                report.elapsed,
                if report.forced { " (SIGKILL)" } else { "" }
            ),
        );
        report
    }

    /// Kills the service with SIGKILL, as a crash would stop it, and waits for it to exit. The
    /// process gets no chance to flush or clean up, but data it wrote to files stays.
    ///
    /// # Panics
    ///
    /// Panics when the service is already stopped or the signal cannot be sent.
    pub fn kill(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("{} is already stopped", self.config.name);
        };
        if let Err(err) = rustix::process::kill_process(Pid::from_child(&child), Signal::KILL) {
            panic!("cannot send SIGKILL to {}: {err}", self.config.name);
        }
        let status = match child.wait() {
            Ok(status) => status,
            Err(err) => panic!("cannot wait for {} after SIGKILL: {err}", self.config.name),
        };
        note_in_log(
            &self.config.log_path,
            &format!("killed {} with SIGKILL: {status}", self.config.name),
        );
        status
    }

    /// Starts the stopped service again on the same port and data directory.
    ///
    /// # Panics
    ///
    /// Panics with the service log when the service does not become healthy. A port that the old
    /// process still holds is retried for a few seconds first.
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "{} must be stopped before it starts again",
            self.config.name
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut attempt = 1;
        loop {
            match launch(&self.config, self.port, attempt) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(failure) if failure.exited_early && Instant::now() < deadline => {
                    attempt += 1;
                    thread::sleep(Duration::from_millis(200));
                }
                Err(failure) => panic!(
                    "{} did not start again on port {}: {}\n{}",
                    self.config.name,
                    self.port,
                    failure.message,
                    log_tail(&self.config.log_path)
                ),
            }
        }
    }

    /// Stops the service gracefully and starts it again on the same port and data directory.
    pub fn restart(&mut self) -> StopReport {
        let report = self.stop();
        self.start_again();
        report
    }

    /// Freezes the process with SIGSTOP. Its sockets stay open but it sends no response, as a hung
    /// service would.
    pub fn suspend(&self) {
        self.signal(Signal::STOP);
    }

    /// Resumes a process frozen by [`Service::suspend`].
    pub fn resume(&self) {
        self.signal(Signal::CONT);
    }

    fn signal(&self, signal: Signal) {
        let Some(child) = &self.child else {
            panic!("{} is not running", self.config.name);
        };
        if let Err(err) = rustix::process::kill_process(Pid::from_child(child), signal) {
            panic!("cannot send {signal:?} to {}: {err}", self.config.name);
        }
    }

    /// Prints the tail of the service log to stderr, which the test harness shows for failed
    /// tests.
    pub fn print_log(&self) {
        eprintln!("{}", log_tail(&self.config.log_path));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // A frozen process would ignore SIGTERM until the deadline.
            let _ = rustix::process::kill_process(Pid::from_child(&child), Signal::CONT);
            terminate(child);
        }
        if thread::panicking() {
            self.print_log();
        }
    }
}

/// Returns a loopback port that was free a moment ago.
///
/// Another process may take it before the service binds it; [`Service::start`] retries on a new
/// port when that happens.
pub fn free_port() -> u16 {
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
        Ok(listener) => listener,
        Err(err) => panic!("cannot bind a loopback port: {err}"),
    };
    match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(err) => panic!("cannot read the bound loopback port: {err}"),
    }
}

/// Returns the last [`LOG_TAIL_LINES`] lines of a service log, with a header naming the file.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| format!("(unreadable: {err})"));
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = format!(
        "---- {} (last {} of {} lines) ----\n",
        path.display(),
        lines.len() - skip,
        lines.len()
    );
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("---- end of log ----");
    out
}

struct LaunchFailure {
    message: String,
    /// True when the process exited before it became healthy, which a port race explains.
    exited_early: bool,
}

fn launch(config: &ServiceConfig, port: u16, attempt: u32) -> Result<Child, LaunchFailure> {
    let listen = format!("127.0.0.1:{port}");
    note_in_log(
        &config.log_path,
        &format!(
            "starting {} on {listen} with data dir {} (attempt {attempt})",
            config.name,
            config.data_dir.display()
        ),
    );

    let log = open_log(&config.log_path);
    let log_for_stderr = match log.try_clone() {
        Ok(file) => file,
        Err(err) => panic!(
            "cannot duplicate log handle {}: {err}",
            config.log_path.display()
        ),
    };
    let mut command = match config.wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut command = Command::new(program);
            command.args(wrapper_args).arg(&config.binary);
            command
        }
        None => Command::new(&config.binary),
    };
    command
        .arg("--listen")
        .arg(&listen)
        .arg("--data-dir")
        .arg(&config.data_dir)
        .args(&config.extra_args)
        .current_dir(&config.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_for_stderr));
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    // The log is a file, so terminal colour codes would only clutter it.
    command.env("NO_COLOR", "1");
    for (key, value) in &config.env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }

    let mut child = match spawn_tied_to_test_process(command) {
        Ok(child) => child,
        Err(err) => panic!("cannot spawn {}: {err}", config.binary.display()),
    };

    let tls = config.tls.as_ref().map(ClientTls::config);
    match wait_healthy(
        &mut child,
        &service_url(tls.is_some(), port),
        tls.as_ref(),
        &config.health_service,
    ) {
        Ok(()) => Ok(child),
        Err(HealthFailure::Exited(status)) => Err(LaunchFailure {
            message: format!(
                "{} exited during start-up on {listen}: {status}",
                config.name
            ),
            exited_early: true,
        }),
        Err(HealthFailure::TimedOut(last_error)) => {
            terminate(child);
            Err(LaunchFailure {
                message: format!(
                    "{} was not healthy within {START_TIMEOUT:?} on {listen} (last probe: {last_error})",
                    config.name
                ),
                exited_early: false,
            })
        }
    }
}

fn open_log(path: &Path) -> File {
    match OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => file,
        Err(err) => panic!("cannot open service log {}: {err}", path.display()),
    }
}

/// Appends a harness line to a service log, so restarts and stops are visible in context.
fn note_in_log(path: &Path, line: &str) {
    let mut file = open_log(path);
    let _ = writeln!(file, "==== e2e harness: {line}");
}

/// Sends SIGTERM, waits up to [`STOP_TIMEOUT`], then sends SIGKILL. Never panics, because it
/// also runs in `Drop` while a failed test unwinds.
fn terminate(mut child: Child) -> StopReport {
    let started = Instant::now();
    if let Ok(Some(status)) = child.try_wait() {
        return StopReport {
            status,
            forced: false,
            elapsed: Duration::ZERO,
        };
    }
    // When SIGTERM cannot be sent, the loop below waits out the deadline and SIGKILL follows.
    let _ = rustix::process::kill_process(Pid::from_child(&child), Signal::TERM);
    while started.elapsed() < STOP_TIMEOUT {
        match child.try_wait() {
            Ok(Some(status)) => {
                return StopReport {
                    status,
                    forced: false,
                    elapsed: started.elapsed(),
                };
            }
            Ok(None) => thread::sleep(POLL_INTERVAL),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let status = child
        .wait()
        .unwrap_or_else(|_| ExitStatus::from_raw(Signal::KILL.as_raw()));
    StopReport {
        status,
        forced: true,
        elapsed: started.elapsed(),
    }
}

/// Returns the loopback URL of a service on `port`.
fn service_url(tls: bool, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{port}")
}

enum HealthFailure {
    Exited(ExitStatus),
    TimedOut(String),
}

fn wait_healthy(
    child: &mut Child,
    url: &str,
    tls: Option<&ClientTlsConfig>,
    service: &str,
) -> Result<(), HealthFailure> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("cannot build a tokio runtime for health checks: {err}"),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(HealthFailure::Exited(status)),
            Ok(None) => {}
            Err(err) => panic!("cannot poll process {}: {err}", child.id()),
        }
        let probe = runtime.block_on(async {
            match tokio::time::timeout(PROBE_TIMEOUT, probe_health(url, tls, service)).await {
                Ok(result) => result,
                Err(_) => Err(format!("health probe timed out after {PROBE_TIMEOUT:?}")),
            }
        });
        let last_error = match probe {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(HealthFailure::TimedOut(last_error));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Checks `grpc.health.v1.Health/Check` for `service`.
///
/// A server that registers only the overall status (the empty service name) returns NOT_FOUND for
/// the service name, so the probe then accepts the overall status.
async fn probe_health(
    url: &str,
    tls: Option<&ClientTlsConfig>,
    service: &str,
) -> Result<(), String> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|err| format!("invalid URL {url}: {err}"))?
        .connect_timeout(PROBE_TIMEOUT)
        .timeout(PROBE_TIMEOUT);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|err| format!("invalid TLS configuration for {url}: {err}"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|err| format!("connect to {url} failed: {err}"))?;
    let mut client = HealthClient::new(channel);

    let status = match client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
    {
        Ok(response) => response.into_inner().status,
        Err(status) if status.code() == tonic::Code::NotFound => {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|status| format!("overall health check failed: {status}"))?
                .into_inner()
                .status
        }
        Err(status) => return Err(format!("health check of {service} failed: {status}")),
    };
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(format!(
            "health status of {service} is {:?}",
            ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown)
        ))
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the test process, with SIGKILL as the
/// child's parent-death signal.
///
/// Linux sends the parent-death signal when the *thread* that forked the child exits, not the
/// process. Test threads end after each test, but a service shared by a test file must live until
/// the process ends. So one long-lived thread does every spawn.
fn spawn_tied_to_test_process(mut command: Command) -> io::Result<Child> {
    // SAFETY: the closure runs in the forked child before exec and only makes the prctl system
    // call, which is async-signal-safe. It allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .map_err(io::Error::from)
        });
    }
    let (reply_to, reply) = mpsc::channel();
    if spawner().send((command, reply_to)).is_err() {
        return Err(io::Error::other("the spawner thread has stopped"));
    }
    match reply.recv() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the spawner thread dropped the request")),
    }
}

fn spawner() -> &'static mpsc::Sender<SpawnRequest> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        let spawned = thread::Builder::new()
            .name("e2e-spawner".to_owned())
            .spawn(move || {
                // The static sender is never dropped, so this loop runs until the process exits.
                for (mut command, reply_to) in requests {
                    let _ = reply_to.send(command.spawn());
                }
            });
        if let Err(err) = spawned {
            panic!("cannot start the spawner thread: {err}");
        }
        sender
    })
}
