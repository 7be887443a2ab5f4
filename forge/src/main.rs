//! `stella-log-forge`: writes a C2SP tlog-tiles directory for a log of N
//! deterministic entries with its signed checkpoint, the vkey beside the
//! directory, and optionally a tile bundle with tlog-proofs for the first,
//! middle and last entries, and a witness cosignature on the checkpoint.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use stella_bundle::{LogTilesInput, TilesInput, pack_tiles};
use stella_log_forge::{
    DirSink, ForgeConfig, ForgeError, ForgeWitness, KeyAlgorithm, MemoryTiles, Seed, TileSink,
    forge_log, tlog_proof,
};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Forge a C2SP tlog-tiles log of N deterministic entries for tests and benchmarks"
)]
struct Args {
    /// Number of entries (the checkpoint's tree size).
    #[arg(long)]
    entries: u64,
    /// Output directory; receives `checkpoint` and `tile/...`, so that `stella rekor tiles pack
    /// --tiles-dir` accepts it as it is. The note verifier key goes to `<out>.vkey` beside it.
    #[arg(long)]
    out: PathBuf,
    /// Checkpoint origin, also the key name.
    #[arg(long, default_value = "stella-log-forge.example/log")]
    origin: String,
    /// Seed of entries and key, as hexadecimal bytes.
    #[arg(long, default_value = "00")]
    seed: String,
    /// Checkpoint key algorithm.
    #[arg(long, value_enum, default_value_t = KeyArg::Ed25519)]
    key: KeyArg,
    /// Also pack all tiles, the checkpoint and three tlog-proofs into this tile bundle (.tar.gz).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Also cosign the checkpoint as the witness with this key name (a cosignature/v1 line, note
    /// key type 0x04). The witness vkey goes to `<out>.witness.vkey` beside the directory.
    #[arg(long, requires = "witness_seed")]
    witness_name: Option<String>,
    /// Seed of the witness key, as hexadecimal bytes.
    #[arg(long, requires = "witness_name")]
    witness_seed: Option<String>,
    /// Cosignature timestamp in Unix seconds; the current time when not given.
    #[arg(long, requires = "witness_name")]
    witness_time: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyArg {
    #[value(name = "ed25519")]
    Ed25519,
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
}

/// Path of the vkey file of the log in `out`: `<out>.vkey`, beside the directory and not in it,
/// because a tiles directory holds only what the tlog-tiles layout names.
fn vkey_path(out: &Path) -> PathBuf {
    sibling_path(out, ".vkey")
}

/// Path of the witness vkey file of the log in `out`: `<out>.witness.vkey`.
fn witness_vkey_path(out: &Path) -> PathBuf {
    sibling_path(out, ".witness.vkey")
}

fn sibling_path(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stella-log-forge: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let seed = hex::decode(&args.seed)
        .map_err(|err| format!("--seed {:?} is not hexadecimal: {err}", args.seed))?;
    let config = ForgeConfig {
        entries: args.entries,
        origin: args.origin.clone(),
        seed: Seed::from_bytes(&seed),
        key: match args.key {
            KeyArg::Ed25519 => KeyAlgorithm::Ed25519,
            KeyArg::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        },
    };

    let started = Instant::now();
    let mut dir = DirSink::new(&args.out);
    let mut copy = MemoryTiles::default();
    let mut log = if args.bundle.is_some() {
        let mut both = (dir, copy);
        let log = forge_log(&config, &mut both as &mut dyn TileSink);
        copy = both.1;
        log
    } else {
        forge_log(&config, &mut dir)
    }
    .map_err(|err| err.to_string())?;
    if let Some(name) = &args.witness_name {
        log.note = cosign(args, name, &log.note)?;
    }

    write_file(&args.out.join("checkpoint"), &log.note).map_err(|err| err.to_string())?;
    let vkey = log.verifier.to_vkey();
    write_file(&vkey_path(&args.out), format!("{vkey}\n").as_bytes())
        .map_err(|err| err.to_string())?;

    if let Some(bundle) = &args.bundle {
        let size = log.checkpoint.size;
        let mut indexes = vec![0, size / 2, size.saturating_sub(1)];
        indexes.dedup();
        let mut proofs = Vec::new();
        if size > 0 {
            for index in indexes {
                proofs.push(tlog_proof(&log, index, &copy.tiles).map_err(|err| err.to_string())?);
            }
        }
        let mut tiles = copy.tiles;
        tiles.append(&mut copy.entry_bundles);
        let input = TilesInput {
            logs: vec![LogTilesInput {
                checkpoint: log.note.clone(),
                tiles,
            }],
            tlog_proofs: proofs,
        };
        let archive =
            pack_tiles(&input).map_err(|err| format!("packing the tile bundle failed: {err}"))?;
        write_file(bundle, &archive).map_err(|err| err.to_string())?;
    }

    println!(
        "forged {} entries with root {} in {:.2} s; vkey {vkey}",
        log.checkpoint.size,
        hex::encode(log.checkpoint.root_hash),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Returns the checkpoint note cosigned by the witness `name` of the arguments, and writes the
/// witness vkey beside the output directory.
fn cosign(args: &Args, name: &str, note: &[u8]) -> Result<Vec<u8>, String> {
    let seed_hex = args.witness_seed.as_deref().unwrap_or_default();
    let seed = hex::decode(seed_hex)
        .map_err(|err| format!("--witness-seed {seed_hex:?} is not hexadecimal: {err}"))?;
    let witness = ForgeWitness::derive(name, Seed::from_bytes(&seed).as_bytes());
    let verifier = witness
        .verifier()
        .map_err(|err| format!("--witness-name {name:?} is not a valid key name: {err}"))?;
    let timestamp = match args.witness_time {
        Some(timestamp) => timestamp,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|err| format!("the system clock is before 1970: {err}"))?
            .as_secs(),
    };
    let cosigned = witness
        .cosign(note, timestamp)
        .map_err(|err| format!("cosigning the checkpoint failed: {err}"))?;
    let vkey = format!("{}\n", verifier.to_vkey());
    write_file(&witness_vkey_path(&args.out), vkey.as_bytes()).map_err(|err| err.to_string())?;
    Ok(cosigned)
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), ForgeError> {
    fs::write(path, data).map_err(|source| ForgeError::Write {
        path: path.to_owned(),
        source,
    })
}
