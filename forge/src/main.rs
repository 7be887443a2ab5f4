//! `stella-log-forge`: writes a C2SP tlog-tiles directory for a log of N
//! deterministic entries with its signed checkpoint, the vkey beside the
//! directory, and optionally a tile bundle with tlog-proofs for the first,
//! middle and last entries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use stella_bundle::{LogTilesInput, TilesInput, pack_tiles};
use stella_log_forge::{
    DirSink, ForgeConfig, ForgeError, KeyAlgorithm, MemoryTiles, Seed, TileSink, forge_log,
    tlog_proof,
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
    let mut name = out.as_os_str().to_owned();
    name.push(".vkey");
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
    let log = if args.bundle.is_some() {
        let mut both = (dir, copy);
        let log = forge_log(&config, &mut both as &mut dyn TileSink);
        copy = both.1;
        log
    } else {
        forge_log(&config, &mut dir)
    }
    .map_err(|err| err.to_string())?;

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

fn write_file(path: &Path, data: &[u8]) -> Result<(), ForgeError> {
    fs::write(path, data).map_err(|source| ForgeError::Write {
        path: path.to_owned(),
        source,
    })
}
