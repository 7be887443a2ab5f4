//! The Docker engine and Compose as the suites use them: detection, bounded commands, the
//! runtime image (built once per test binary) and container logs.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::binaries;
use crate::cli::{join_reader, read_in_background};

/// Environment variable that skips the Compose suite on a machine without Docker, when set to `1`.
pub const SKIP_ENV: &str = "STELLA_SKIP_COMPOSE";

/// Maximum time `scripts/build-images.sh` may take: stripping and copying about 250 MB of debug
/// binaries and one `docker build` of the result.
const IMAGE_BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Maximum time a short Docker command (inspect, kill, network connect) may take.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// How this machine runs Compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComposeCli {
    /// The Compose v2 plugin: `docker compose`.
    Plugin,
    /// The standalone Compose v1 program: `docker-compose`.
    Standalone,
}

impl ComposeCli {
    /// Returns the program and the arguments that come before every Compose command.
    pub fn program(self) -> (&'static str, &'static [&'static str]) {
        match self {
            ComposeCli::Plugin => ("docker", &["compose"]),
            ComposeCli::Standalone => ("docker-compose", &[]),
        }
    }
}

/// A Docker engine with Compose and the runtime image built from this checkout.
#[derive(Debug)]
pub struct Docker {
    /// The Compose command of this machine.
    pub compose: ComposeCli,
    /// The image reference that `scripts/build-images.sh` printed, `stella:<hash>`.
    pub image: String,
}

impl Docker {
    /// Returns the engine, detecting Compose and building the image on the first call of the test
    /// binary, or `None` when [`SKIP_ENV`] is `1`.
    ///
    /// # Panics
    ///
    /// Panics with the reason and the way to skip when Docker or Compose is missing, or when the
    /// image build fails, so a machine without Docker never passes the suite silently.
    pub fn get_or_skip(test: &str) -> Option<&'static Docker> {
        if std::env::var_os(SKIP_ENV).is_some_and(|value| value == "1") {
            eprintln!("SKIPPED {test}: {SKIP_ENV}=1");
            return None;
        }
        static DOCKER: OnceLock<Result<Docker, String>> = OnceLock::new();
        match DOCKER.get_or_init(prepare) {
            Ok(docker) => Some(docker),
            Err(message) => panic!(
                "{message}\nThe Compose suite needs a Docker engine with Compose. Set {SKIP_ENV}=1 \
                 to skip it on a machine without Docker."
            ),
        }
    }
}

fn prepare() -> Result<Docker, String> {
    let info = run(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        DOCKER_TIMEOUT,
    )
    .map_err(|error| format!("Docker is not available: {error}"))?;
    if info.code != 0 {
        return Err(format!("the Docker engine does not respond:\n{info}"));
    }

    let compose = detect_compose()?;
    remove_stale_projects(compose);
    let repository = repository_root();
    let bin_dir = binaries_dir();
    let mut command = Command::new(repository.join("scripts/build-images.sh"));
    command
        .arg("--bin-dir")
        .arg(&bin_dir)
        .current_dir(&repository);
    let build = run(&mut command, IMAGE_BUILD_TIMEOUT)
        .map_err(|error| format!("cannot run scripts/build-images.sh: {error}"))?;
    if build.code != 0 {
        return Err(format!("scripts/build-images.sh failed:\n{build}"));
    }
    let Some(image) = build
        .stdout
        .lines()
        .last()
        .map(str::trim)
        .filter(|line| line.starts_with("stella:"))
    else {
        return Err(format!(
            "scripts/build-images.sh printed no image reference on its last line:\n{build}"
        ));
    };
    Ok(Docker {
        compose,
        image: image.to_owned(),
    })
}

/// Prefers the Compose v2 plugin and falls back to the standalone v1 program.
fn detect_compose() -> Result<ComposeCli, String> {
    let mut failures = Vec::new();
    for cli in [ComposeCli::Plugin, ComposeCli::Standalone] {
        let (program, prefix) = cli.program();
        let mut command = Command::new(program);
        command.args(prefix).arg("version");
        match run(&mut command, DOCKER_TIMEOUT) {
            Ok(output) if output.code == 0 => return Ok(cli),
            Ok(output) => failures.push(output.to_string()),
            Err(error) => failures.push(format!("{program}: {error}")),
        }
    }
    Err(format!(
        "Docker Compose is not installed (neither `docker compose` nor `docker-compose` runs):\n{}",
        failures.join("\n")
    ))
}

/// Removes the Compose projects of test processes that no longer run, which were killed before
/// their deployments were dropped. A project name ends in `-<pid>-<random>`, the id of the
/// process that created it; projects of running processes are left alone.
fn remove_stale_projects(compose: ComposeCli) {
    let label = "label=com.docker.compose.project";
    let format = "{{.Label \"com.docker.compose.project\"}}";
    let containers = docker(["ps", "--all", "--filter", label, "--format", format]);
    let volumes = docker(["volume", "ls", "--filter", label, "--format", format]);
    let mut projects: Vec<&str> = containers
        .stdout
        .lines()
        .chain(volumes.stdout.lines())
        .map(str::trim)
        .filter(|project| project.starts_with("stella-"))
        .collect();
    projects.sort_unstable();
    projects.dedup();

    let compose_file = repository_root().join("compose.yaml");
    for project in projects {
        let Some(pid) = project_pid(project) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let (program, prefix) = compose.program();
        let mut command = Command::new(program);
        command
            .args(prefix)
            .args(["--project-name", project, "--file"])
            .arg(&compose_file)
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        match run(&mut command, DOCKER_TIMEOUT) {
            Ok(output) if output.code == 0 => {
                eprintln!("removed Compose project {project} of process {pid}, which has exited");
            }
            Ok(output) => eprintln!("cannot remove stale Compose project {project}:\n{output}"),
            Err(error) => eprintln!("cannot remove stale Compose project {project}: {error}"),
        }
    }
}

/// Returns the process id in a project name `stella-<name>-<pid>-<random>`.
fn project_pid(project: &str) -> Option<u32> {
    let mut parts = project.strip_prefix("stella-")?.rsplit('-');
    let _random = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    // The name part must be there too, so `stella-<pid>-<random>` is not taken for a project.
    parts.next()?;
    Some(pid)
}

/// Returns the root of this checkout, which contains `compose.yaml` and `scripts/`.
pub fn repository_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest_dir.parent() {
        Some(root) => root.to_path_buf(),
        None => panic!("{} has no parent directory", manifest_dir.display()),
    }
}

/// Returns the directory of the workspace binaries that the test binary runs, such as
/// `target/debug`, so the image contains the binaries of the same build.
pub fn binaries_dir() -> PathBuf {
    let stella = binaries::locate(binaries::STELLA);
    match stella.parent() {
        Some(dir) => dir.to_path_buf(),
        None => panic!("{} has no parent directory", stella.display()),
    }
}

/// Exit code and output of one finished command.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// The command as typed, for messages.
    pub command_line: String,
    /// The exit code, or -1 when a signal ended the process.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for CommandOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command_line)?;
        writeln!(f, "exit code {}", self.code)?;
        writeln!(f, "stdout:\n{}", self.stdout.trim_end())?;
        write!(f, "stderr:\n{}", self.stderr.trim_end())
    }
}

impl CommandOutput {
    /// Asserts exit code 0 and returns `self`.
    #[track_caller]
    pub fn assert_ok(self) -> CommandOutput {
        assert_eq!(self.code, 0, "the command failed\n{self}");
        self
    }
}

/// Runs `command` with null stdin and captured output, killing it after `timeout`.
///
/// # Errors
///
/// A message when the command cannot start or runs longer than `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> Result<CommandOutput, String> {
    let command_line = describe(command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot run `{command_line}`: {error}"))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{command_line}` did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    join_reader(stdout),
                    join_reader(stderr)
                ));
            }
            Err(error) => return Err(format!("cannot poll `{command_line}`: {error}")),
        }
    };
    Ok(CommandOutput {
        command_line,
        code: status.code().unwrap_or(-1),
        stdout: join_reader(stdout),
        stderr: join_reader(stderr),
    })
}

/// Runs `docker ARGS` within [`DOCKER_TIMEOUT`] and returns its output, whatever the exit code.
///
/// # Panics
///
/// Panics when the command cannot start or times out.
pub fn docker<I, S>(args: I) -> CommandOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("docker");
    command.args(args);
    run(&mut command, DOCKER_TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

fn describe(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    parts.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

/// The log lines of one container as they are written, from `docker logs --follow`.
///
/// The services log to stderr, so both streams are read. The follower stops `docker logs` when
/// dropped.
pub struct LogFollower {
    child: Child,
    lines: Receiver<String>,
    container: String,
}

impl LogFollower {
    /// Follows the log of `container` from now on.
    ///
    /// # Panics
    ///
    /// Panics when `docker logs` cannot start.
    pub fn start(container: &str) -> LogFollower {
        let mut child = match Command::new("docker")
            .args(["logs", "--follow", "--since", "0s", container])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => panic!("cannot run `docker logs --follow {container}`: {error}"),
        };
        let (sender, lines) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sender = sender.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        LogFollower {
            child,
            lines,
            container: container.to_owned(),
        }
    }

    /// Waits for a line that contains every one of `needles` and returns it.
    ///
    /// # Panics
    ///
    /// Panics when no such line arrives within `timeout`.
    pub fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if needles.iter().all(|needle| line.contains(needle)) => return line,
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "container {} logged no line with {needles:?} within {timeout:?}; lines seen:\n{}",
                    self.container,
                    seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_pid_from_name() {
        let rows = [
            ("stella-runbook-4242-0a1b2c3d", Some(4242)),
            ("stella-import-kill-7-ffffffff", Some(7)),
            ("stella-4242-0a1b2c3d", None),
            ("stella-runbook-notapid-0a1b2c3d", None),
            ("other-runbook-4242-0a1b2c3d", None),
        ];
        for (project, expected) in rows {
            assert_eq!(project_pid(project), expected, "{project}");
        }
    }
}
