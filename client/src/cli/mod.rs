//! The `stella` command-line tool for operators.
//!
//! Commands, flags, JSON keys and exit codes are documented in `docs/cli.md`. Offline commands
//! (`trust pack`, `rekor tiles pack`, `evidence pack`) build bundles with `stella-bundle` and need
//! no service, and `verify-bundle` verifies one Sigstore bundle in process with `stella-verify`.
//! The `auth` commands make Authority keys, JWKS documents and tokens, also without a service. The
//! others talk to the attestor (`--attestor`) or the gate (`--gate`) over gRPC, with the token and
//! TLS settings of `credentials`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

pub mod args;
pub mod auth;
mod break_glass;
mod checkpoints;
pub mod completions;
pub mod config;
mod consistency;
pub mod credentials;
pub mod decision_chain;
mod decisions;
mod evidence;
mod files;
mod gate;
mod health;
mod inclusion_batch;
pub mod output;
mod policy;
mod preview;
mod progress;
mod rekor;
mod tiles_dir;
mod tiles_input;
mod trust;
mod verify_bundle;

use args::{ExpiresArg, KmsKeyArg, Sha256Digest, SubjectArg};
use credentials::AccessOptions;
use output::{Exit, Failure, OutputFormat, Report};

use crate::{
    AttestorConnection, ConnectOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    GateConnection, connect_attestor, connect_gate,
};

/// Default attestor URL.
pub const DEFAULT_ATTESTOR_URL: &str = "http://127.0.0.1:7401";
/// Default gate URL.
pub const DEFAULT_GATE_URL: &str = "http://127.0.0.1:7402";

/// Operator tool for offline Rekor verification and release promotion gates.
#[derive(Debug, Parser)]
#[command(name = "stella", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that apply to every command.
///
/// The URLs, the token and the TLS files fall back to their environment variables outside clap.
/// Clap lists an option that an environment variable sets in its usage line as if it were
/// required, and its help would show the value of STELLA_TOKEN.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Attestor URL [env: STELLA_ATTESTOR_URL] [default: http://127.0.0.1:7401]
    #[arg(long, global = true, help_heading = "Global options", value_name = "URL")]
    pub attestor: Option<String>,

    /// Gate URL [env: STELLA_GATE_URL] [default: http://127.0.0.1:7402]
    #[arg(long, global = true, help_heading = "Global options", value_name = "URL")]
    pub gate: Option<String>,

    /// Output format: short text lines, or exactly one JSON object on stdout.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Time allowed to connect to a service, in milliseconds (at least 1).
    #[arg(long, global = true, help_heading = "Global options", value_name = "MS", default_value_t = duration_ms(DEFAULT_CONNECT_TIMEOUT), value_parser = args::parse_timeout_ms)]
    pub connect_timeout_ms: u64,

    /// Time allowed for each service call, in milliseconds (at least 1).
    #[arg(long, global = true, help_heading = "Global options", value_name = "MS", default_value_t = duration_ms(DEFAULT_REQUEST_TIMEOUT), value_parser = args::parse_timeout_ms)]
    pub request_timeout_ms: u64,

    /// File with the Authority token (JWT) sent on every service call. Without it, the token is
    /// read from STELLA_TOKEN; without either, calls carry no token and the services reject them.
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// PEM CA certificates that issued the services' certificates, for https:// URLs
    /// [env: STELLA_TLS_CA]
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate for services that require one (mutual TLS) [env: STELLA_TLS_CERT]
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert [env: STELLA_TLS_KEY]
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// Environment variable with the attestor URL, used when `--attestor` is not given.
pub const ATTESTOR_URL_ENV: &str = "STELLA_ATTESTOR_URL";
/// Environment variable with the gate URL, used when `--gate` is not given.
pub const GATE_URL_ENV: &str = "STELLA_GATE_URL";

impl GlobalArgs {
    /// Returns `--attestor`, else `STELLA_ATTESTOR_URL`, else [`DEFAULT_ATTESTOR_URL`].
    pub fn attestor_url(&self) -> String {
        resolve_url(self.attestor.as_deref(), ATTESTOR_URL_ENV, DEFAULT_ATTESTOR_URL)
    }

    /// Returns `--gate`, else `STELLA_GATE_URL`, else [`DEFAULT_GATE_URL`].
    pub fn gate_url(&self) -> String {
        resolve_url(self.gate.as_deref(), GATE_URL_ENV, DEFAULT_GATE_URL)
    }
}

/// Picks the flag value, else the environment variable (an empty one counts as unset), else the
/// default.
fn resolve_url(flag: Option<&str>, env_name: &str, default: &str) -> String {
    if let Some(url) = flag {
        return url.to_owned();
    }
    match config::process_env(env_name) {
        Some(value) => value.to_string_lossy().into_owned(),
        None => default.to_owned(),
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pack and import trust root sets.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Pack and import Rekor tiles and proofs, verify evidence against them.
    #[command(subcommand)]
    Rekor(RekorCommand),
    /// Pack and register portable evidence bundles.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Create promotions and evaluate their gates.
    #[command(subcommand)]
    Promotion(PromotionCommand),
    /// Import and show the tenant's gate policy versions.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Read, export and verify signed decision records.
    #[command(subcommand)]
    Decisions(DecisionsCommand),
    /// Verify one Sigstore bundle offline, in process (the Sigstore conformance suite's command).
    VerifyBundle(VerifyBundleArgs),
    /// Generate Authority keys, write their JWKS and mint tokens, without any service.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Check that a service reports SERVING on the gRPC health service (no token needed).
    Health(health::HealthArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell or elvish) on stdout.
    Completions(completions::CompletionsArgs),
}

/// Arguments of `stella verify-bundle`, in the order the Sigstore conformance suite passes them.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("required_signer")
        .required(true)
        .args(["certificate_identity", "key"])
))]
pub struct VerifyBundleArgs {
    /// Without --trusted-root, read staging.trusted_root.json instead of production.trusted_root.json
    /// from the trust roots directory.
    #[arg(long)]
    pub staging: bool,
    /// Sigstore bundle (.sigstore.json), media type v0.1 to v0.3.
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Required signer: the exact subject alternative name (URI or email) of the signing certificate.
    #[arg(long, value_name = "IDENTITY", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
    /// Required OIDC issuer of the signing certificate, compared exactly.
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    pub certificate_oidc_issuer: Option<String>,
    /// Required signer: the PEM public key (SubjectPublicKeyInfo) of a bundle signed with a managed key.
    #[arg(long, value_name = "PEM", conflicts_with_all = ["certificate_identity", "certificate_oidc_issuer"])]
    pub key: Option<PathBuf>,
    /// Sigstore trusted_root.json. Default: production.trusted_root.json (or staging, with
    /// --staging) from STELLA_SIGSTORE_TRUST_ROOTS_DIR or `sigstore_trust_roots_dir` in the
    /// configuration file.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// The signed artifact: a file, or its digest as sha256:HEX (64 lowercase hex digits).
    #[arg(value_name = "ARTIFACT|sha256:HEX")]
    pub artifact: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Build a trust root set bundle (.tgz) from a Sigstore trusted root.
    Pack(TrustPackArgs),
    /// Import a trust root set bundle into the attestor.
    Import(BundleFileArgs),
}

#[derive(Debug, Args)]
pub struct TrustPackArgs {
    /// Sigstore trusted_root.json.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: PathBuf,
    /// Extra checkpoint key as a C2SP note verifier key (name+hex8+base64). Repeatable.
    #[arg(long = "note-key", value_name = "VKEY")]
    pub note_keys: Vec<String>,
    /// KMS public key for key-signed bundles, as ID=PEMFILE. Repeatable.
    #[arg(long = "kms-key", value_name = "ID=PEMFILE", value_parser = args::parse_kms_key)]
    pub kms_keys: Vec<KmsKeyArg>,
    /// Version of the set, at most 2^53 - 1 (the largest integer that JSON keeps exact). The
    /// attestor rejects a version lower than the imported one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(..=stella_bundle::MAX_SAFE_INTEGER))]
    pub version: u64,
    /// Expiry: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now (30d, 12h, 90s),
    /// before the year 10000.
    #[arg(long, value_name = "TIME|DURATION", value_parser = args::parse_expires)]
    pub expires: ExpiresArg,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BundleFileArgs {
    /// Bundle file (.tgz).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum RekorCommand {
    /// Pack and import Rekor tile/proof bundles.
    #[command(subcommand)]
    Tiles(TilesCommand),
    /// Verify a registered evidence bundle from the attestor's offline cache.
    Verify(RekorVerifyArgs),
    /// Check that a log entry is included in an imported checkpoint.
    Inclusion(RekorInclusionArgs),
    /// Check many log entries of one log in a single streaming call.
    InclusionBatch(RekorInclusionBatchArgs),
    /// List the stored checkpoints of each log and the evidence of rejected split views.
    Checkpoints(RekorCheckpointsArgs),
    /// Prove that a stored checkpoint of a log extends an older stored one.
    Consistency(RekorConsistencyArgs),
}

#[derive(Debug, Subcommand)]
pub enum TilesCommand {
    /// Build a tile/proof bundle (.tgz) from Sigstore bundles and tlog-tiles directories.
    Pack(TilesPackArgs),
    /// Import a tile/proof bundle into the attestor.
    Import(BundleFileArgs),
}

#[derive(Debug, Args)]
pub struct TilesPackArgs {
    /// Sigstore bundle whose inclusion proofs and checkpoints become tlog-proof files. Repeatable.
    #[arg(long = "sigstore-bundle", value_name = "FILE")]
    pub sigstore_bundles: Vec<PathBuf>,
    /// C2SP tlog-tiles directory with `checkpoint` and `tile/...`. Repeatable.
    #[arg(long = "tiles-dir", value_name = "DIR")]
    pub tiles_dirs: Vec<PathBuf>,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RekorVerifyArgs {
    /// Required: prove inclusion only from imported tiles and proofs, never from a live log.
    #[arg(long)]
    pub offline: bool,
    /// Evidence bundle id (sha256:...) printed by `stella evidence verify`.
    #[arg(long, value_name = "ID", value_parser = args::parse_sha256_digest)]
    pub evidence_bundle_id: Sha256Digest,
}

#[derive(Debug, Args)]
pub struct RekorInclusionArgs {
    /// Log origin, as on the first line of its checkpoint.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: String,
    /// Zero-based index of the entry in the log.
    #[arg(long, value_name = "N")]
    pub index: u64,
    /// File with the exact log entry bytes.
    #[arg(long, value_name = "FILE")]
    pub entry: PathBuf,
}

#[derive(Debug, Args)]
pub struct RekorInclusionBatchArgs {
    /// Log origin, as on the first line of its checkpoint.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: String,
    /// JSON Lines file: one {"index": N, "entry_base64": "..."} object per line, at most
    /// 1000000 entries.
    #[arg(long, value_name = "FILE")]
    pub entries_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RekorConsistencyArgs {
    /// Log origin, as on the first line of its checkpoint.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: String,
    /// Tree size of the older stored checkpoint (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub from: u64,
    /// Tree size of the newer stored checkpoint (at least --from).
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..))]
    pub to: u64,
}

#[derive(Debug, Args)]
pub struct RekorCheckpointsArgs {
    /// Only this log origin, as on the first line of its checkpoint. Default: every log.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Build a portable evidence bundle (.tgz) from Sigstore bundles.
    Pack(EvidencePackArgs),
    /// Check an evidence bundle locally, then register it with the attestor.
    Verify(EvidenceVerifyArgs),
}

#[derive(Debug, Args)]
pub struct EvidencePackArgs {
    /// Sigstore bundle (.sigstore.json). Repeatable.
    #[arg(long = "sigstore-bundle", value_name = "FILE", required = true)]
    pub sigstore_bundles: Vec<PathBuf>,
    /// Subject as NAME=sha256:HEX. Repeatable. Without it, subjects come from DSSE statements.
    #[arg(long = "subject", value_name = "NAME=sha256:HEX", value_parser = args::parse_subject)]
    pub subjects: Vec<SubjectArg>,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EvidenceVerifyArgs {
    /// Evidence bundle file (.tgz).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Required: the attestor verifies only from its offline cache.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum PromotionCommand {
    /// Create a promotion of subject digests to an environment.
    Create(PromotionCreateArgs),
    /// Evaluate the gates of a promotion without recording a decision, now or at a past time.
    PreviewGates(preview::PromotionPreviewArgs),
    /// Evaluate the gates of a promotion and record the decision.
    Evaluate(PromotionEvaluateArgs),
}

#[derive(Debug, Args)]
pub struct PromotionCreateArgs {
    /// Promotion id, chosen by the caller.
    #[arg(long = "promotion", value_name = "ID")]
    pub promotion_id: String,
    /// Subject digest (sha256:HEX) being promoted. Repeatable.
    #[arg(long = "subject", value_name = "sha256:HEX", required = true, value_parser = args::parse_sha256_digest)]
    pub subjects: Vec<Sha256Digest>,
    /// Target environment, as named in the gate policy.
    #[arg(long, value_name = "ENV")]
    pub target: String,
    /// Evidence bundle id (sha256:...). Repeatable.
    #[arg(long = "evidence-bundle-id", value_name = "ID", required = true, value_parser = args::parse_sha256_digest)]
    pub evidence_bundle_ids: Vec<Sha256Digest>,
}

#[derive(Debug, Args)]
pub struct PromotionEvaluateArgs {
    /// Promotion id.
    #[arg(long = "promotion", value_name = "ID")]
    pub promotion_id: String,
    /// Required: prove Rekor inclusion only from the attestor's offline cache.
    #[arg(long)]
    pub offline_rekor: bool,
    /// Id of this evaluation, 1 to 128 characters of A-Z a-z 0-9 . _ : -. Sending the same id
    /// again returns the decision recorded for it instead of recording a second one.
    #[arg(long, value_name = "ID", value_parser = args::parse_request_id)]
    pub request_id: Option<String>,
    #[command(flatten)]
    pub break_glass: break_glass::BreakGlassArgs,
}

#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// Print a stored decision record.
    Get(DecisionsGetArgs),
    /// Write the tenant's signed decision records, in sequence order, for an auditor.
    Export(DecisionsExportArgs),
    /// Verify the signatures and the hash chain of the tenant's decision records.
    Verify(DecisionsVerifyArgs),
}

#[derive(Debug, Args)]
pub struct DecisionsExportArgs {
    /// Output file: one DSSE envelope JSON per line, in sequence order.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the gate's public signing key (PEM) to this file.
    #[arg(long, value_name = "FILE")]
    pub key_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecisionsVerifyArgs {
    /// Export file to verify offline, without contacting the gate. Without it, the records are
    /// fetched from the gate.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// PEM public key (BEGIN PUBLIC KEY) that you trust to have signed the records, obtained
    /// out of band. The key the gate presents is never used.
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
}

#[derive(Debug, Args)]
pub struct DecisionsGetArgs {
    /// Decision record id, as printed by `stella promotion evaluate`.
    #[arg(value_name = "RECORD_ID")]
    pub record_id: String,
}

/// Service addresses, timeouts, token and TLS options shared by the commands that call a service.
pub(crate) struct Services {
    attestor_url: String,
    gate_url: String,
    /// Timeouts and limits; the token and TLS settings are added on connect.
    options: ConnectOptions,
    access: AccessOptions,
}

impl Services {
    fn from_global(global: &GlobalArgs) -> Services {
        Services {
            attestor_url: global.attestor_url(),
            gate_url: global.gate_url(),
            options: ConnectOptions {
                connect_timeout: Duration::from_millis(global.connect_timeout_ms),
                request_timeout: Duration::from_millis(global.request_timeout_ms),
                ..ConnectOptions::default()
            },
            access: AccessOptions::from_global(global),
        }
    }

    /// Returns the connection options with the token and TLS settings, read from their files
    /// only now, so that commands that call no service never fail on them.
    fn connect_options(&self) -> Result<ConnectOptions, Failure> {
        let mut options = self.options.clone();
        options.token = self.access.token(&config::process_env)?;
        options.tls = self.access.tls(&config::process_env)?;
        Ok(options)
    }

    pub(crate) async fn attestor(&self) -> Result<AttestorConnection, Failure> {
        let options = self.connect_options()?;
        Ok(connect_attestor(&self.attestor_url, &options).await?)
    }

    pub(crate) async fn gate(&self) -> Result<GateConnection, Failure> {
        let options = self.connect_options()?;
        Ok(connect_gate(&self.gate_url, &options).await?)
    }
}

/// Runs a parsed command and returns its outcome without printing it.
pub async fn run(cli: &Cli) -> Result<Report, Failure> {
    let services = Services::from_global(&cli.global);
    let outcome = run_command(cli, &services).await;
    outcome.map_err(|failure| {
        let token_given = cli.global.token_file.is_some()
            || config::process_env(credentials::TOKEN_ENV).is_some();
        credentials::explain_missing_token(failure, token_given)
    })
}

async fn run_command(cli: &Cli, services: &Services) -> Result<Report, Failure> {
    match &cli.command {
        Command::Trust(TrustCommand::Pack(args)) => trust::pack(args),
        Command::Trust(TrustCommand::Import(args)) => trust::import(services, args).await,
        Command::Rekor(RekorCommand::Tiles(TilesCommand::Pack(args))) => rekor::pack_tiles(args, cli.global.output),
        Command::Rekor(RekorCommand::Tiles(TilesCommand::Import(args))) => {
            rekor::import_tiles(services, args, cli.global.output).await
        }
        Command::Rekor(RekorCommand::Verify(args)) => rekor::verify(services, args).await,
        Command::Rekor(RekorCommand::Inclusion(args)) => rekor::inclusion(services, args).await,
        Command::Rekor(RekorCommand::InclusionBatch(args)) => {
            inclusion_batch::run(services, args).await
        }
        Command::Rekor(RekorCommand::Checkpoints(args)) => {
            checkpoints::list(services, args).await
        }
        Command::Rekor(RekorCommand::Consistency(args)) => {
            consistency::prove(services, args).await
        }
        Command::Evidence(EvidenceCommand::Pack(args)) => evidence::pack(args),
        Command::Evidence(EvidenceCommand::Verify(args)) => evidence::verify(services, args).await,
        Command::Promotion(PromotionCommand::Create(args)) => gate::create(services, args).await,
        Command::Promotion(PromotionCommand::PreviewGates(args)) => {
            preview::run(services, args).await
        }
        Command::Promotion(PromotionCommand::Evaluate(args)) => gate::evaluate(services, args).await,
        Command::Policy(command) => policy::run(services, command).await,
        Command::Decisions(DecisionsCommand::Get(args)) => {
            gate::get_decision(services, args).await
        }
        Command::Decisions(DecisionsCommand::Export(args)) => {
            decisions::export(services, args).await
        }
        Command::Decisions(DecisionsCommand::Verify(args)) => {
            decisions::verify(services, args).await
        }
        Command::VerifyBundle(args) => verify_bundle::run(args),
        Command::Auth(command) => auth::run(command),
        Command::Health(args) => health::check(services, args).await,
        Command::Completions(args) => completions::script(args),
    }
}

/// Parses `arguments`, runs the command, prints its outcome and returns the exit code.
///
/// A usage error that clap detects exits 2. With `--output json` among the arguments, it also
/// prints the JSON error object on stdout.
pub fn main_with_args(arguments: Vec<OsString>) -> Exit {
    let cli = match Cli::try_parse_from(&arguments) {
        Ok(cli) => cli,
        Err(error) => return report_parse_error(&arguments, &error),
    };

    // Offline verification (of a bundle or of a decision export file) and the auth commands
    // start no async runtime, so they create no threads or event loop.
    match &cli.command {
        Command::VerifyBundle(args) => return output::emit(cli.global.output, verify_bundle::run(args)),
        Command::Auth(command) => return output::emit(cli.global.output, auth::run(command)),
        Command::Completions(args) => return output::emit(cli.global.output, completions::script(args)),
        Command::Decisions(DecisionsCommand::Verify(args)) if args.file.is_some() => {
            return output::emit(cli.global.output, decisions::verify_file(args));
        }
        _ => {}
    }
    stella_access::install_crypto_provider();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let failure = Failure::other(format!("cannot start the async runtime: {error}"));
            output::print_failure(cli.global.output, &failure);
            return failure.exit;
        }
    };
    let outcome = runtime.block_on(run(&cli));
    output::emit(cli.global.output, outcome)
}

fn report_parse_error(arguments: &[OsString], error: &clap::Error) -> Exit {
    use clap::error::ErrorKind;

    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = error.print();
        return Exit::Success;
    }
    let _ = error.print();
    if wants_json(arguments) {
        let object = serde_json::json!({ "error": usage_message(error), "reason_code": null });
        println!("{object}");
    }
    Exit::Usage
}

/// Returns clap's message without the usage block, on one line: `the following required
/// arguments were not provided: --target <ENV>`.
fn usage_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    if parts.is_empty() {
        "invalid usage".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Returns true when the raw arguments select JSON output, for errors raised before parsing ends.
fn wants_json(arguments: &[OsString]) -> bool {
    let texts: Vec<&str> = arguments
        .iter()
        .filter_map(|argument| argument.to_str())
        .collect();
    texts.windows(2).any(|pair| pair == ["--output", "json"]) || texts.contains(&"--output=json")
}

/// Fails with a usage error unless an offline flag was given.
pub(crate) fn require_offline(flag_set: bool, command: &str, flag: &str) -> Result<(), Failure> {
    if flag_set {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "`stella {command}` requires {flag}: only offline verification exists. The attestor proves \
         Rekor inclusion from the tiles and tlog-proof files imported with `stella rekor tiles \
         import` and never contacts a transparency log. Add {flag} to confirm."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn url_help_names_env_and_default() {
        let command = Cli::command();
        let rows = [
            ("attestor", ATTESTOR_URL_ENV, DEFAULT_ATTESTOR_URL),
            ("gate", GATE_URL_ENV, DEFAULT_GATE_URL),
        ];
        for (id, env_name, default) in rows {
            let argument = command
                .get_arguments()
                .find(|argument| argument.get_id() == id)
                .unwrap_or_else(|| panic!("no --{id} option"));
            let help = argument.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains(env_name), "--{id} help: {help}");
            assert!(help.contains(default), "--{id} help: {help}");
        }
    }

    #[test]
    fn access_help_names_env() {
        let command = Cli::command();
        let rows = [
            ("token_file", credentials::TOKEN_ENV),
            ("tls_ca", credentials::TLS_CA_ENV),
            ("tls_cert", credentials::TLS_CERT_ENV),
            ("tls_key", credentials::TLS_KEY_ENV),
        ];
        for (id, env_name) in rows {
            let argument = command
                .get_arguments()
                .find(|argument| argument.get_id() == id)
                .unwrap_or_else(|| panic!("no option {id}"));
            let help = argument.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains(env_name), "{id} help: {help}");
            assert!(argument.is_global_set(), "{id} is not global");
        }
    }

    #[test]
    fn wants_json_both_spellings() {
        let separate: Vec<OsString> = ["stella", "--output", "json", "x"]
            .map(OsString::from)
            .into();
        let joined: Vec<OsString> = ["stella", "--output=json"].map(OsString::from).into();
        let text: Vec<OsString> = ["stella", "--output", "text", "json"]
            .map(OsString::from)
            .into();
        assert!(wants_json(&separate));
        assert!(wants_json(&joined));
        assert!(!wants_json(&text));
    }
}
