//! Harness of the Compose suite: the attestor and the gate as containers of `compose.yaml`,
//! driven through their published ports with the `stella` binary.
//!
//! [`Deployment::start`] writes the configuration with `scripts/compose-config.sh` into a
//! temporary directory, picks two free loopback ports and runs `compose up` under its own project
//! name (`stella-<name>-<pid>-<random>`), so runs never share containers, networks or volumes. The
//! runtime image comes from `scripts/build-images.sh`, run once per test binary
//! ([`Docker::get_or_skip`]). Deployments run one at a time within the binary, because they share
//! the image and the two CPU cores of a CI machine.
//!
//! Dropping a deployment runs `compose down -v --remove-orphans`, which removes its containers,
//! network and volumes, even when the test failed. A failed test first prints `compose ps` and
//! every service's log.

pub mod docker;
pub mod operator;
pub mod stream;

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::access::ClientTls;
use crate::cli::Stella;
use crate::env::read_file;
use crate::service::free_port;

pub use docker::{CommandOutput, Docker, LogFollower, SKIP_ENV};

/// Maximum time `compose up`, `start` or `down` may take. `up` waits for the attestor to be
/// healthy before it creates the gate.
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(180);

/// Maximum time from starting a container to a `healthy` health check.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(90);

/// Time between the containers' health checks (`STELLA_HEALTH_INTERVAL`), short so that tests
/// wait little for `healthy`.
const HEALTH_INTERVAL: &str = "1s";

/// Maximum time `scripts/compose-config.sh` may take.
const CONFIG_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds that `compose stop` waits for a service to exit after SIGTERM before it sends SIGKILL.
const STOP_GRACE_SECS: &str = "10";

/// The two services of `compose.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceName {
    Attestor,
    Gate,
}

impl ServiceName {
    /// Returns the service name in `compose.yaml`, which is also its host name on the network.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Attestor => "attestor",
            ServiceName::Gate => "gate",
        }
    }
}

/// Settings of a deployment that the tests change.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The gate's deadline for each attestor call (`STELLA_ATTESTOR_TIMEOUT_MS`).
    pub attestor_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            attestor_timeout: Duration::from_secs(10),
        }
    }
}

/// One Compose project of `compose.yaml`, its configuration directory and a `stella` runner
/// pointed at its published ports. Dropping it removes the project.
pub struct Deployment {
    docker: &'static Docker,
    project: String,
    /// The variables that `compose.yaml` reads, passed to every Compose command.
    variables: Vec<(String, String)>,
    config_dir: PathBuf,
    work_dir: PathBuf,
    stella: Stella,
    settings: Settings,
    _dir: TempDir,
    /// Held while the deployment exists; dropped last, after `compose down`.
    _serial: MutexGuard<'static, ()>,
}

impl Deployment {
    /// Starts a deployment named after `name`, or returns `None` when [`SKIP_ENV`] is set.
    ///
    /// # Panics
    ///
    /// Panics when Docker is unavailable, when the configuration cannot be written, or when a
    /// service does not become healthy within [`HEALTH_TIMEOUT`]. A project that was started is
    /// removed while the panic unwinds.
    pub fn start(name: &str, settings: Settings) -> Option<Deployment> {
        let docker = Docker::get_or_skip(name)?;
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);

        let dir = match tempfile::Builder::new()
            .prefix(&format!("stella-compose-{name}-"))
            .tempdir()
        {
            Ok(dir) => dir,
            Err(error) => panic!("cannot create a temporary directory: {error}"),
        };
        let config_dir = dir.path().join("deploy");
        let work_dir = dir.path().join("work");
        crate::env::create_dir(&work_dir);
        write_config(&config_dir);

        let project = format!("stella-{name}-{}-{}", std::process::id(), random_suffix());
        let attestor_port = free_port();
        let gate_port = free_port();
        let variables = compose_variables(docker, &config_dir, attestor_port, gate_port, &settings);
        let stella = operator_runner(&config_dir, attestor_port, gate_port, &work_dir);

        let deployment = Deployment {
            docker,
            project,
            variables,
            config_dir,
            work_dir,
            stella,
            settings,
            _dir: dir,
            _serial: serial,
        };
        deployment.up();
        Some(deployment)
    }

    /// Runs `compose up -d` and waits until both services are healthy.
    pub fn up(&self) {
        self.compose(["up", "-d"]).assert_ok();
        self.wait_healthy(ServiceName::Attestor);
        self.wait_healthy(ServiceName::Gate);
    }

    /// Runs `compose down` without `-v`: the containers and the network go, the volumes stay.
    pub fn down_keep_volumes(&self) {
        self.compose(["down", "--timeout", STOP_GRACE_SECS])
            .assert_ok();
    }

    /// Returns the `stella` runner with the operator token of tenant `demo` and the client
    /// certificate, pointed at the published ports.
    pub fn stella(&self) -> &Stella {
        &self.stella
    }

    /// Returns the settings the deployment started with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Returns the directory that `scripts/compose-config.sh` wrote.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Returns the demo kit in the configuration directory.
    pub fn kit_dir(&self) -> PathBuf {
        self.config_dir.join("kit")
    }

    /// Creates and returns a new, empty scratch directory named after `label`.
    pub fn scratch(&self, label: &str) -> PathBuf {
        let dir = self.work_dir.join(format!("{label}-{}", random_suffix()));
        crate::env::create_dir(&dir);
        dir
    }

    /// Runs a Compose command of this project within [`COMPOSE_TIMEOUT`] and returns its
    /// output, whatever the exit code.
    ///
    /// # Panics
    ///
    /// Panics when the command cannot start or times out.
    pub fn compose<const N: usize>(&self, args: [&str; N]) -> CommandOutput {
        let compose_file = docker::repository_root().join("compose.yaml");
        let (program, prefix) = self.docker.compose.program();
        let mut command = Command::new(program);
        command
            .args(prefix)
            .arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(&compose_file)
            .args(args)
            .envs(self.variables.iter().map(|(key, value)| (key, value)));
        docker::run(&mut command, COMPOSE_TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Returns the id of the service's container, running or not.
    ///
    /// # Panics
    ///
    /// Panics when the project has no container for the service.
    pub fn container(&self, service: ServiceName) -> String {
        let output = self
            .compose(["ps", "-a", "-q", service.as_str()])
            .assert_ok();
        match output
            .stdout
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
        {
            Some(id) => id.to_owned(),
            None => panic!(
                "project {} has no {} container\n{output}",
                self.project,
                service.as_str()
            ),
        }
    }

    /// Returns the name of the network that both services share.
    pub fn network(&self) -> String {
        let container = self.container(ServiceName::Gate);
        let output = docker::docker([
            "inspect",
            "--format",
            "{{range $name, $settings := .NetworkSettings.Networks}}{{$name}} {{end}}",
            container.as_str(),
        ])
        .assert_ok();
        let networks: Vec<&str> = output.stdout.split_whitespace().collect();
        match networks.as_slice() {
            [network] => (*network).to_owned(),
            _ => panic!("the gate container must be on exactly one network\n{output}"),
        }
    }

    /// Waits until the service's container reports `healthy`.
    ///
    /// # Panics
    ///
    /// Panics with the container's state when it exits or stays unhealthy for
    /// [`HEALTH_TIMEOUT`].
    pub fn wait_healthy(&self, service: ServiceName) {
        let container = self.container(service);
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            let output = docker::docker([
                "inspect",
                "--format",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                container.as_str(),
            ])
            .assert_ok();
            let state = output.stdout.trim().to_owned();
            if state == "running healthy" {
                return;
            }
            if state.starts_with("exited")
                || state.starts_with("dead")
                || Instant::now() >= deadline
            {
                panic!(
                    "{} did not become healthy within {HEALTH_TIMEOUT:?}: state {state:?}",
                    service.as_str()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the service with `compose stop`: SIGTERM, and SIGKILL after 10 seconds.
    pub fn stop(&self, service: ServiceName) {
        self.compose(["stop", "--timeout", STOP_GRACE_SECS, service.as_str()])
            .assert_ok();
    }

    /// Kills the service's container with SIGKILL and waits until it has exited.
    pub fn kill(&self, service: ServiceName) {
        let container = self.container(service);
        docker::docker(["kill", "--signal", "KILL", container.as_str()]).assert_ok();
        let exit = docker::docker(["wait", container.as_str()]).assert_ok();
        assert_eq!(
            exit.stdout.trim(),
            "137",
            "a container killed with SIGKILL exits with 128 + 9\n{exit}"
        );
    }

    /// Starts the stopped service's container again and waits until it is healthy.
    pub fn start_again(&self, service: ServiceName) {
        self.compose(["start", service.as_str()]).assert_ok();
        self.wait_healthy(service);
    }

    /// Disconnects the service's container from the project's network, so the other service can
    /// neither resolve nor reach it.
    pub fn disconnect(&self, service: ServiceName) {
        let container = self.container(service);
        docker::docker([
            "network",
            "disconnect",
            self.network().as_str(),
            container.as_str(),
        ])
        .assert_ok();
    }

    /// Connects the service's container to the project's network again, under its service name.
    pub fn reconnect(&self, service: ServiceName) {
        let container = self.container(service);
        docker::docker([
            "network",
            "connect",
            "--alias",
            service.as_str(),
            self.network().as_str(),
            container.as_str(),
        ])
        .assert_ok();
    }

    /// Returns the whole log of the service's container, stdout and stderr.
    pub fn logs(&self, service: ServiceName) -> String {
        let container = self.container(service);
        let output = docker::docker(["logs", container.as_str()]).assert_ok();
        format!("{}{}", output.stdout, output.stderr)
    }

    /// Follows the service's log from now on.
    pub fn follow_logs(&self, service: ServiceName) -> LogFollower {
        LogFollower::start(&self.container(service))
    }

    /// Returns the names of the project's volumes.
    pub fn volumes(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.project);
        let output =
            docker::docker(["volume", "ls", "--quiet", "--filter", filter.as_str()]).assert_ok();
        let mut volumes: Vec<String> = output
            .stdout
            .lines()
            .map(|line| line.trim().to_owned())
            .collect();
        volumes.retain(|volume| !volume.is_empty());
        volumes.sort();
        volumes
    }

    fn print_diagnostics(&self) {
        let status = self.compose(["ps", "-a"]);
        eprintln!("---- compose ps of project {} ----\n{status}", self.project);
        for service in [ServiceName::Attestor, ServiceName::Gate] {
            let logs = self.compose(["logs", "--no-color", service.as_str()]);
            eprintln!(
                "---- log of {} in project {} ----\n{}{}\n---- end of log ----",
                service.as_str(),
                self.project,
                logs.stdout,
                logs.stderr
            );
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if thread::panicking() {
            self.print_diagnostics();
        }
        let down = self.compose(["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
        if down.code != 0 {
            eprintln!("cannot remove Compose project {}:\n{down}", self.project);
        }
    }
}

/// Returns the variables that `compose.yaml` reads, for one project.
fn compose_variables(
    docker: &Docker,
    config_dir: &Path,
    attestor_port: u16,
    gate_port: u16,
    settings: &Settings,
) -> Vec<(String, String)> {
    let timeout_ms = settings.attestor_timeout.as_millis().to_string();
    [
        ("STELLA_IMAGE", docker.image.clone()),
        ("STELLA_CONFIG_DIR", path_text(config_dir)),
        ("STELLA_BIND_ADDRESS", "127.0.0.1".to_owned()),
        ("STELLA_ATTESTOR_PORT", attestor_port.to_string()),
        ("STELLA_GATE_PORT", gate_port.to_string()),
        ("STELLA_ATTESTOR_TIMEOUT_MS", timeout_ms),
        ("STELLA_LOG", "info".to_owned()),
        ("STELLA_HEALTH_INTERVAL", HEALTH_INTERVAL.to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// Returns a `stella` runner with the operator token and the client certificate that
/// `scripts/compose-config.sh` wrote, pointed at the published ports.
fn operator_runner(
    config_dir: &Path,
    attestor_port: u16,
    gate_port: u16,
    work_dir: &Path,
) -> Stella {
    let token = String::from_utf8_lossy(&read_file(&config_dir.join("operator.token")))
        .trim()
        .to_owned();
    let tls = ClientTls {
        ca: config_dir.join("tls/ca.pem"),
        identity: Some((
            config_dir.join("tls/client.pem"),
            config_dir.join("tls/client-key.pem"),
        )),
    };
    Stella::new(
        &format!("https://127.0.0.1:{attestor_port}"),
        &format!("https://127.0.0.1:{gate_port}"),
        work_dir,
    )
    .token(&token)
    .tls(tls)
}

/// Runs `scripts/compose-config.sh` with the binaries of this test build.
fn write_config(config_dir: &Path) {
    let repository = docker::repository_root();
    let mut command = Command::new(repository.join("scripts/compose-config.sh"));
    command
        .arg(config_dir)
        .env("STELLA_BIN_DIR", docker::binaries_dir())
        .current_dir(&repository);
    let output =
        docker::run(&mut command, CONFIG_TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
    output.assert_ok();
}

/// Returns 8 random lowercase hex digits, for names that must not collide between runs.
///
/// The standard library seeds each `RandomState` from the operating system's random number
/// generator, so hashing a counter with a new one gives unpredictable digits.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let value = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:08x}", value & 0xffff_ffff)
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
