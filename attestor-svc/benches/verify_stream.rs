//! Throughput of VerifyBundleStream against the in-process library figure.
//!
//! Starts the `stella-attestor` binary of this build on a loopback port with a temporary data
//! directory, and imports the trusted root of the Sigstore conformance case `rekor2-dsse-happy-path`
//! as the tenant's trust root set. Then it streams copies of that case's bundle in one
//! VerifyBundleStream call with `allow_bundle_proof` set (the tile cache is empty, so every
//! bundle is proven by its own inclusion proof). The same process then measures the library call
//! that the attestor makes (`verify_bundle_with_own_proof_cached`, with one shared
//! `VerificationCache`) on one thread. The benchmark prints the ratio of the stream's rate to the
//! in-process rate times the attestor's cores (see `VERIFY_STREAM_ATTESTOR_CPUS` below). The
//! target is a ratio of at least 0.8.
//!
//! Run it with `cargo bench -p stella-attestor --bench verify_stream`. Set
//! `VERIFY_STREAM_BUNDLES` to stream another number of bundles than 10,000. By default the client
//! runs on the same cores as the attestor. To keep them apart, set `VERIFY_STREAM_ATTESTOR_CPUS`
//! to a CPU list such as `0` or `0-1`: the attestor then runs under `taskset -c` on those CPUs,
//! and "cores" is their number. Start the benchmark itself on other CPUs
//! (`taskset -c 1 cargo bench ...`), so that the client and the in-process loop run there.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stella_access::BearerToken;
use stella_access::dev::{DevAuthority, all_scopes};
use stella_bundle::{Limits, TrustSetInput};
use stella_proto::attestor::v1 as pb;
use stella_proto::attestor::v1::attestor_client::AttestorClient;
use stella_verify::cache::VerificationCache;
use stella_verify::evidence::{Artifact, Outcome, VerifyInput, verify_bundle_with_own_proof_cached};
use tonic::transport::Channel;

/// The conformance case, relative to the shared vectors folder.
const CASE: &str = "sigstore-conformance/bundle-verify/rekor2-dsse-happy-path";

/// SHA-256 of `a.txt`, the artifact that the conformance case signs.
const ARTIFACT_SHA256: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

/// Shared test vectors, next to the repository.
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Bundles streamed when `VERIFY_STREAM_BUNDLES` is not set.
const DEFAULT_STREAM_BUNDLES: u64 = 10_000;

/// Library calls before the in-process measurement, so that lazy initialization is not timed.
const WARM_UP_CALLS: u32 = 200;

/// Library calls timed on one thread.
const IN_PROCESS_CALLS: u32 = 2_000;

/// Maximum time from spawning the attestor until it accepts connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Tenant of the benchmark's token.
const TENANT: &str = "bench";

/// Kills the attestor when dropped, so an early return never leaves it running.
struct AttestorProcess {
    child: Child,
}

impl Drop for AttestorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    if let Err(message) = run() {
        eprintln!("verify_stream: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let bundles = match std::env::var("VERIFY_STREAM_BUNDLES") {
        Ok(text) => text
            .parse::<u64>()
            .map_err(|error| format!("VERIFY_STREAM_BUNDLES={text:?} is not a number: {error}"))?,
        Err(_) => DEFAULT_STREAM_BUNDLES,
    };
    let case = PathBuf::from(VECTORS).join(CASE);
    let bundle_json = read(&case.join("bundle.sigstore.json"))?;
    let trust_archive = stella_bundle::pack_trust_set(&TrustSetInput {
        trusted_root_json: read(&case.join("trusted_root.json"))?,
        note_keys: Vec::new(),
        kms_keys: BTreeMap::new(),
        version: 1,
        expires_at: unix_now() + 30 * 24 * 3600,
    })
    .map_err(|error| format!("packing the trust root set failed: {error}"))?;
    let artifact: [u8; 32] = hex::decode(ARTIFACT_SHA256)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("ARTIFACT_SHA256 is not 64 hex digits")?;
    let artifact_digest = format!("sha256:{ARTIFACT_SHA256}");
    let attestor_cpus = std::env::var("VERIFY_STREAM_ATTESTOR_CPUS").ok();
    let cores = match &attestor_cpus {
        Some(list) => count_cpus(list)?,
        None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the tokio runtime: {error}"))?;
    let stream_rate = runtime.block_on(measure_stream(
        &trust_archive,
        &bundle_json,
        &artifact_digest,
        bundles,
        attestor_cpus.as_deref(),
    ))?;
    let in_process_rate = measure_in_process(&trust_archive, &bundle_json, artifact)?;

    let ratio = stream_rate / (in_process_rate * cores as f64);
    println!("VerifyBundleStream, {bundles} bundles in one call: {stream_rate:.0} bundles/s");
    println!("in-process verify_bundle_with_own_proof_cached, one thread: {in_process_rate:.0} bundles/s");
    match &attestor_cpus {
        Some(list) => println!("cores: {cores} (attestor pinned to CPUs {list})"),
        None => println!("cores (available_parallelism, shared with the client): {cores}"),
    }
    println!("ratio stream / (in-process x cores): {ratio:.2} (target at least 0.80)");
    Ok(())
}

/// Starts the attestor, imports the trust set and streams `bundles` copies of `bundle_json`.
/// Returns verified bundles per second, from the call's start to its last response.
async fn measure_stream(
    trust_archive: &[u8],
    bundle_json: &[u8],
    artifact_digest: &str,
    bundles: u64,
    attestor_cpus: Option<&str>,
) -> Result<f64, String> {
    let work = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let authority = DevAuthority::generate();
    let jwks_path = work.path().join("authority.jwks.json");
    authority.write_jwks(&jwks_path);
    let port = free_port()?;
    let log_path = work.path().join("attestor.log");
    let _attestor = start_attestor(
        port,
        &work.path().join("data"),
        &jwks_path,
        &log_path,
        attestor_cpus,
    )?;

    let token = BearerToken::new(&authority.token(TENANT, &all_scopes()))
        .map_err(|error| format!("the token is not valid metadata: {error}"))?;
    let channel = connect(port, &log_path).await?;
    let mut client = AttestorClient::with_interceptor(channel, token);
    client
        .import_trust_roots(pb::ImportBundleRequest {
            file_name: "trust.tgz".to_owned(),
            archive: trust_archive.to_vec(),
        })
        .await
        .map_err(|status| format!("ImportTrustRoots failed: {status}"))?;

    let bundle_json = bundle_json.to_vec();
    let artifact_digest = artifact_digest.to_owned();
    let requests = (0..bundles).map(move |sequence| pb::VerifyBundleRequest {
        sequence,
        bundle_json: bundle_json.clone(),
        artifact_digest: artifact_digest.clone(),
        allow_bundle_proof: true,
    });
    let started = Instant::now();
    let mut responses = client
        .verify_bundle_stream(tokio_stream::iter(requests))
        .await
        .map_err(|status| format!("VerifyBundleStream failed: {status}"))?
        .into_inner();
    let mut expected = 0_u64;
    while let Some(response) = responses
        .message()
        .await
        .map_err(|status| format!("VerifyBundleStream failed after {expected} responses: {status}"))?
    {
        if response.sequence != expected {
            return Err(format!(
                "response {} arrived where {expected} was expected",
                response.sequence
            ));
        }
        if response.outcome != "verified" {
            return Err(format!(
                "bundle {} was not verified: {:?}",
                response.sequence, response.reason_codes
            ));
        }
        expected += 1;
    }
    let elapsed = started.elapsed();
    if expected != bundles {
        return Err(format!(
            "VerifyBundleStream returned {expected} responses to {bundles} requests"
        ));
    }
    Ok(bundles as f64 / elapsed.as_secs_f64())
}

/// Verifies `bundle_json` with the library on this thread and returns bundles per second.
fn measure_in_process(trust_archive: &[u8], bundle_json: &[u8], artifact: [u8; 32]) -> Result<f64, String> {
    let trust = stella_bundle::open_trust_set("trust.tgz", trust_archive, &Limits::default())
        .map_err(|error| format!("opening the trust root set failed: {error}"))?
        .into_trust_set();
    let input = VerifyInput {
        bundle_json,
        trust: &trust,
        artifact: Artifact::Sha256(artifact),
        now: unix_now(),
    };
    let cache = VerificationCache::default();
    for _ in 0..WARM_UP_CALLS {
        check_verified(&verify_bundle_with_own_proof_cached(&input, &cache))?;
    }
    let started = Instant::now();
    for _ in 0..IN_PROCESS_CALLS {
        check_verified(&verify_bundle_with_own_proof_cached(&input, &cache))?;
    }
    Ok(f64::from(IN_PROCESS_CALLS) / started.elapsed().as_secs_f64())
}

fn check_verified(entry: &stella_verify::evidence::EntryReport) -> Result<(), String> {
    if entry.outcome == Outcome::Verified {
        Ok(())
    } else {
        Err(format!("the library did not verify the bundle: {:?}", entry.detail))
    }
}

/// Counts the distinct CPUs of a `taskset -c` list such as `0`, `0,2` or `0-3`.
fn count_cpus(list: &str) -> Result<usize, String> {
    let invalid = || format!("VERIFY_STREAM_ATTESTOR_CPUS={list:?} is not a CPU list such as 0 or 0-1");
    let mut cpus = std::collections::BTreeSet::new();
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first, last),
            None => (part, part),
        };
        let first: usize = first.trim().parse().map_err(|_| invalid())?;
        let last: usize = last.trim().parse().map_err(|_| invalid())?;
        // Linux numbers CPUs below CONFIG_NR_CPUS, at most 8,192 on x86-64.
        if last < first || last >= 8_192 {
            return Err(invalid());
        }
        cpus.extend(first..=last);
    }
    Ok(cpus.len())
}

/// Spawns the attestor binary of this build, logging to `log_path`, under `taskset -c` when
/// `cpus` is set.
fn start_attestor(
    port: u16,
    data_dir: &Path,
    jwks_path: &Path,
    log_path: &Path,
    cpus: Option<&str>,
) -> Result<AttestorProcess, String> {
    let binary = env!("CARGO_BIN_EXE_stella-attestor");
    let log =
        std::fs::File::create(log_path).map_err(|error| format!("creating {} failed: {error}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .map_err(|error| format!("duplicating the log handle failed: {error}"))?;
    let mut command = match cpus {
        Some(list) => {
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(list).arg(binary);
            taskset
        }
        None => Command::new(binary),
    };
    let child = command
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--authority-jwks")
        .arg(jwks_path)
        .arg("--plaintext-loopback")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_for_stderr))
        .spawn()
        .map_err(|error| format!("starting {binary} failed: {error}"))?;
    Ok(AttestorProcess { child })
}

/// Connects to the attestor, retrying until it listens or [`START_TIMEOUT`] passes.
async fn connect(port: u16, log_path: &Path) -> Result<Channel, String> {
    let started = Instant::now();
    let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(|error| format!("invalid attestor address: {error}"))?;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(error) if started.elapsed() > START_TIMEOUT => {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                return Err(format!(
                    "the attestor did not accept connections within {START_TIMEOUT:?}: {error}; its log:\n{log}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Returns a loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|error| format!("binding loopback failed: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("reading the loopback port failed: {error}"))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("reading {} failed: {error}", path.display()))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
