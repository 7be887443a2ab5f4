//! A test environment: a development Authority, an attestor, optionally a gate with a policy
//! file, a `stella` runner pointed at both, and one temporary directory holding data
//! directories, logs and scratch files.
//!
//! Both services load the Authority's JWKS (`--authority-jwks`). They serve plaintext on
//! loopback (`--plaintext-loopback`) unless the builder sets [`Transport::MutualTls`]. The
//! default `stella` runner sends a token of tenant [`TENANT_A`] with every scope in
//! `STELLA_TOKEN`; [`Env::stella_for_tenant`], [`Env::stella_with_scopes`] and
//! [`Env::stella_without_token`] build runners with other credentials.
//!
//! Layout of the temporary directory:
//!
//! ```text
//! <root>/attestor-data/   RocksDB of the attestor
//! <root>/gate-data/       RocksDB of the gate
//! <root>/authority/       jwks.json of the development Authority
//! <root>/pki/             CA, server and client certificates and keys (mutual TLS only)
//! <root>/logs/            attestor.log, gate.log
//! <root>/policy.yaml      the gate policy
//! <root>/work/<label>-N/  scratch directories handed to tests
//! ```
//!
//! An owned [`Env`] stops its services and removes its directory when dropped. A [`SharedEnv`]
//! lives in a `static` for one test file: its services die with the test process (parent-death
//! signal), and its directory is removed by the next run (see [`sweep_stale_dirs`]).

use std::ffi::OsString;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

use stella_access::Scope;
use stella_access::dev::DevPkiPaths;
use tempfile::TempDir;

use crate::access::{Authority, ClientTls, TENANT_A, Transport, write_pki};
use crate::binaries;
use crate::cli::Stella;
use crate::grpc::Caller;
use crate::runbook::Operator;
use crate::service::{Service, ServiceConfig};

/// Prefix of every temporary directory the harness creates, followed by the test process id.
const DIR_PREFIX: &str = "stella-e2e-";

/// What to start.
#[derive(Debug, Clone)]
pub struct EnvBuilder {
    name: String,
    policy: Option<String>,
    attestor_args: Vec<OsString>,
    gate_args: Vec<OsString>,
    transport: Transport,
    service_env: Vec<(OsString, Option<OsString>)>,
    attestor_wrapper: Vec<OsString>,
    gate_wrapper: Vec<OsString>,
}

impl EnvBuilder {
    /// Starts a gate too, with this policy file content.
    pub fn gate(mut self, policy_yaml: &str) -> EnvBuilder {
        self.policy = Some(policy_yaml.to_owned());
        self
    }

    /// Adds arguments to the attestor command line, such as `--max-bundle-bytes 2048`.
    pub fn attestor_args<I, S>(mut self, args: I) -> EnvBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.attestor_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds arguments to the gate command line, such as `--attestor-timeout-ms 1500`.
    pub fn gate_args<I, S>(mut self, args: I) -> EnvBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.gate_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets how the services and their clients connect; the default is plaintext on loopback.
    pub fn transport(mut self, transport: Transport) -> EnvBuilder {
        self.transport = transport;
        self
    }

    /// Sets an environment variable of both services.
    pub fn service_env(mut self, key: &str, value: &str) -> EnvBuilder {
        self.service_env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable that both services would inherit from the test.
    pub fn service_env_remove(mut self, key: &str) -> EnvBuilder {
        self.service_env.push((key.into(), None));
        self
    }

    /// Runs the attestor and the gate under these programs, such as `strace -D -o FILE`: each
    /// list is the program and its arguments, followed by the service binary.
    pub fn service_wrappers(mut self, attestor: Vec<OsString>, gate: Vec<OsString>) -> EnvBuilder {
        self.attestor_wrapper = attestor;
        self.gate_wrapper = gate;
        self
    }

    /// Creates the directories and starts the services, waiting until each is healthy.
    ///
    /// # Panics
    ///
    /// Panics with the service logs when a service does not start.
    pub fn start(self) -> Env {
        sweep_stale_dirs();
        let dir = match tempfile::Builder::new()
            .prefix(&format!(
                "{DIR_PREFIX}{}-{}-",
                std::process::id(),
                self.name
            ))
            .tempdir()
        {
            Ok(dir) => dir,
            Err(err) => panic!("cannot create a temporary directory: {err}"),
        };
        let root = dir.path().to_path_buf();
        for sub in ["attestor-data", "gate-data", "authority", "logs", "work"] {
            create_dir(&root.join(sub));
        }
        let authority = Authority::create(&root.join("authority"));
        let pki = match self.transport {
            Transport::PlaintextLoopback => None,
            Transport::MutualTls => {
                create_dir(&root.join("pki"));
                Some(write_pki(&root.join("pki")))
            }
        };
        // The harness, and the gate towards the attestor, present the client certificate.
        let client_tls = pki.as_ref().map(ClientTls::with_identity);

        let mut attestor_args = access_args(&authority, pki.as_ref(), true);
        attestor_args.extend(self.attestor_args);
        let attestor = Service::start(ServiceConfig {
            name: "attestor".to_owned(),
            binary: binaries::locate(binaries::ATTESTOR),
            health_service: "stella.attestor.v1.Attestor".to_owned(),
            data_dir: root.join("attestor-data"),
            log_path: root.join("logs/attestor.log"),
            extra_args: attestor_args,
            working_dir: root.clone(),
            tls: client_tls.clone(),
            env: self.service_env.clone(),
            wrapper: self.attestor_wrapper,
        });

        let (gate, policy_path) = match self.policy {
            Some(policy) => {
                let policy_path = root.join("policy.yaml");
                write_file(&policy_path, policy.as_bytes());
                let mut args: Vec<OsString> = vec![
                    "--attestor".into(),
                    attestor.url().into(),
                    "--policy".into(),
                    policy_path.clone().into(),
                ];
                args.extend(access_args(&authority, pki.as_ref(), false));
                if let Some(pki) = &pki {
                    args.extend([
                        "--attestor-tls-ca".into(),
                        pki.ca.clone().into(),
                        "--attestor-tls-cert".into(),
                        pki.client_cert.clone().into(),
                        "--attestor-tls-key".into(),
                        pki.client_key.clone().into(),
                    ]);
                }
                args.extend(self.gate_args);
                let gate = Service::start(ServiceConfig {
                    name: "gate".to_owned(),
                    binary: binaries::locate(binaries::GATE),
                    health_service: "stella.gate.v1.Gate".to_owned(),
                    data_dir: root.join("gate-data"),
                    log_path: root.join("logs/gate.log"),
                    extra_args: args,
                    working_dir: root.clone(),
                    tls: client_tls.clone(),
                    env: self.service_env,
                    wrapper: self.gate_wrapper,
                });
                (Some(gate), Some(policy_path))
            }
            None => (None, None),
        };

        // Without a gate, the gate URL points at the discard port, where no test listens, so a
        // stray gate command fails as unreachable instead of reaching another test's gate.
        let gate_url = gate
            .as_ref()
            .map_or_else(|| "http://127.0.0.1:9".to_owned(), Service::url);
        let mut stella = Stella::new(&attestor.url(), &gate_url, &root)
            .token(&authority.all_scopes_token(TENANT_A));
        if let Some(tls) = &client_tls {
            stella = stella.tls(tls.clone());
        }
        let scratch = Scratch {
            dir: root.join("work"),
            counter: Arc::new(AtomicU64::new(0)),
        };

        Env {
            name: self.name,
            attestor,
            gate,
            operator: Operator::new(stella, scratch),
            authority,
            pki,
            root,
            policy_path,
            _dir: dir,
        }
    }
}

/// Returns the token and transport options of a service: `--authority-jwks`, then
/// `--plaintext-loopback`, or the server certificate and key, and for the attestor
/// (`require_client_cert`) the client CA.
fn access_args(
    authority: &Authority,
    pki: Option<&DevPkiPaths>,
    require_client_cert: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--authority-jwks".into(), authority.jwks_path().into()];
    match pki {
        None => args.push("--plaintext-loopback".into()),
        Some(pki) => {
            args.extend([
                "--tls-cert".into(),
                pki.server_cert.clone().into(),
                "--tls-key".into(),
                pki.server_key.clone().into(),
            ]);
            if require_client_cert {
                args.extend(["--tls-client-ca".into(), pki.ca.clone().into()]);
            }
        }
    }
    args
}

/// Scratch directories under `<root>/work/`, numbered so that labels may repeat. Clones share
/// the numbering.
#[derive(Debug, Clone)]
pub struct Scratch {
    dir: PathBuf,
    counter: Arc<AtomicU64>,
}

impl Scratch {
    /// Creates and returns a new, empty directory named after `label`.
    pub fn create(&self, label: &str) -> PathBuf {
        let number = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{label}-{number}"));
        create_dir(&dir);
        dir
    }
}

/// Running services and their files. Fields drop in order: services stop before the directory
/// goes away.
///
/// An environment dereferences to its default [`Operator`] (tenant [`TENANT_A`], every scope),
/// so the runbook steps are methods of the environment too.
#[derive(Debug)]
pub struct Env {
    name: String,
    attestor: Service,
    gate: Option<Service>,
    operator: Operator,
    authority: Authority,
    pki: Option<DevPkiPaths>,
    root: PathBuf,
    policy_path: Option<PathBuf>,
    _dir: TempDir,
}

impl Env {
    /// Returns a builder for an environment named `name` (used in directory names).
    pub fn builder(name: &str) -> EnvBuilder {
        EnvBuilder {
            name: name.to_owned(),
            policy: None,
            attestor_args: Vec::new(),
            gate_args: Vec::new(),
            transport: Transport::default(),
            service_env: Vec::new(),
            attestor_wrapper: Vec::new(),
            gate_wrapper: Vec::new(),
        }
    }

    /// Returns the environment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the development Authority whose JWKS both services load.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Returns the files of the development PKI, or `None` when the services serve plaintext.
    pub fn pki(&self) -> Option<&DevPkiPaths> {
        self.pki.as_ref()
    }

    /// Returns a `stella` runner with a token of `tenant` that has every scope.
    pub fn stella_for_tenant(&self, tenant: &str) -> Stella {
        self.stella()
            .clone()
            .token(&self.authority.all_scopes_token(tenant))
    }

    /// Returns a `stella` runner with a token of `tenant` that has exactly `scopes`.
    pub fn stella_with_scopes(&self, tenant: &str, scopes: &[Scope]) -> Stella {
        self.stella()
            .clone()
            .token(&self.authority.token(tenant, scopes))
    }

    /// Returns a `stella` runner that sends no token.
    pub fn stella_without_token(&self) -> Stella {
        self.stella().clone().without_token()
    }

    /// Returns an operator that runs the runbook with `stella`, sharing this environment's
    /// scratch directories.
    pub fn operator_with(&self, stella: Stella) -> Operator {
        Operator::new(stella, self.operator.scratch_dirs().clone())
    }

    /// Returns the caller of direct attestor RPCs with the default token (tenant [`TENANT_A`],
    /// every scope) and the environment's TLS settings.
    pub fn attestor_caller(&self) -> Caller {
        self.caller(&self.attestor)
    }

    /// Returns the caller of direct gate RPCs with the default token and TLS settings.
    ///
    /// # Panics
    ///
    /// Panics when the environment was built without a gate.
    pub fn gate_caller(&self) -> Caller {
        self.caller(self.gate())
    }

    fn caller(&self, service: &Service) -> Caller {
        Caller {
            url: service.url(),
            token: Some(self.authority.all_scopes_token(TENANT_A)),
            tls: service.client_tls().cloned(),
        }
    }

    /// Returns the attestor.
    pub fn attestor(&self) -> &Service {
        &self.attestor
    }

    /// Returns the attestor for stopping, restarting or freezing it.
    pub fn attestor_mut(&mut self) -> &mut Service {
        &mut self.attestor
    }

    /// Returns the gate.
    ///
    /// # Panics
    ///
    /// Panics when the environment was built without a gate.
    pub fn gate(&self) -> &Service {
        match &self.gate {
            Some(gate) => gate,
            None => panic!("environment {} has no gate", self.name),
        }
    }

    /// Returns the gate for stopping, restarting or freezing it.
    ///
    /// # Panics
    ///
    /// Panics when the environment was built without a gate.
    pub fn gate_mut(&mut self) -> &mut Service {
        match &mut self.gate {
            Some(gate) => gate,
            None => panic!("environment {} has no gate", self.name),
        }
    }

    /// Returns the policy file given to the gate.
    pub fn policy_path(&self) -> Option<&Path> {
        self.policy_path.as_deref()
    }

    /// Returns the root of the environment's temporary directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Prints the tail of every service log to stderr.
    pub fn print_logs(&self) {
        self.attestor.print_log();
        if let Some(gate) = &self.gate {
            gate.print_log();
        }
    }
}

/// An environment shared by the tests of one file and started by the first test that requests
/// it, together with fixtures `F` that its set-up produced (bundle paths, bundle ids).
///
/// A failed start is remembered, so every later test fails at once with the same message instead
/// of starting services again.
#[derive(Debug)]
pub struct SharedEnv<F: 'static = ()> {
    cell: OnceLock<Result<(Env, F), String>>,
}

impl<F: Send + Sync + 'static> SharedEnv<F> {
    /// Returns an empty cell for a `static`.
    pub const fn new() -> SharedEnv<F> {
        SharedEnv {
            cell: OnceLock::new(),
        }
    }

    /// Returns the environment and its fixtures, running `init` when this is the first call.
    ///
    /// The returned guard prints the service logs when the test using it panics.
    ///
    /// # Panics
    ///
    /// Panics when `init` panicked, now or in an earlier test.
    pub fn get(&'static self, init: impl FnOnce() -> (Env, F)) -> EnvGuard<'static, F> {
        let result = self.cell.get_or_init(|| {
            panic::catch_unwind(AssertUnwindSafe(init)).map_err(|payload| panic_message(&*payload))
        });
        match result {
            Ok((env, fixture)) => EnvGuard { env, fixture },
            Err(message) => panic!("the shared environment failed to start: {message}"),
        }
    }
}

impl<F: Send + Sync + 'static> Default for SharedEnv<F> {
    fn default() -> SharedEnv<F> {
        SharedEnv::new()
    }
}

/// A borrowed shared environment that prints the service logs when the test panics.
#[derive(Debug)]
pub struct EnvGuard<'a, F> {
    env: &'a Env,
    fixture: &'a F,
}

impl Deref for Env {
    type Target = Operator;

    fn deref(&self) -> &Operator {
        &self.operator
    }
}

impl<'a, F> EnvGuard<'a, F> {
    /// Returns the fixtures that the environment's set-up produced.
    pub fn fixture(&self) -> &'a F {
        self.fixture
    }
}

impl<F> Deref for EnvGuard<'_, F> {
    type Target = Env;

    fn deref(&self) -> &Env {
        self.env
    }
}

impl<F> Drop for EnvGuard<'_, F> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "service logs of the shared environment {} (other tests write to them too):",
                self.env.name
            );
            self.env.print_logs();
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(panic without a message)".to_owned()
    }
}

/// Removes the harness directories of earlier test processes that no longer run.
///
/// Shared environments live in `static`s, which Rust never drops, so their directories outlive
/// the run. Each directory name contains the process id, and `/proc/<pid>` exists only while that
/// process runs. Runs once per process.
pub fn sweep_stale_dirs() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest
                .split('-')
                .next()
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// Creates a directory and its parents, panicking with the path on failure.
pub fn create_dir(path: &Path) {
    if let Err(err) = std::fs::create_dir_all(path) {
        panic!("cannot create directory {}: {err}", path.display());
    }
}

/// Writes a file, panicking with the path on failure.
pub fn write_file(path: &Path, bytes: &[u8]) {
    if let Err(err) = std::fs::write(path, bytes) {
        panic!("cannot write {}: {err}", path.display());
    }
}

/// Reads a file, panicking with the path on failure.
pub fn read_file(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot read {}: {err}", path.display()),
    }
}
