//! `stella-demo-kit --out DIR [--seed HEX]`: writes the Stella demo kit into DIR.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use stella_demo_kit::kit;
use stella_demo_kit::seed::{DEFAULT_SEED_HEX, Seed};
use stella_demo_kit::service_tls;

/// Generates a self-contained, reproducible demo kit for the air-gap promotion runbook: a signed
/// tiled transparency log, a test CA and timestamp authority, a Sigstore trusted root, two
/// Sigstore bundles and a gate policy. It also writes TLS certificates for the services to
/// tls/, which are random on every run.
#[derive(Parser)]
#[command(name = "stella-demo-kit", version)]
struct Args {
    /// Directory to write the kit into. It is created if missing and must be empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Seed of every key, serial number and nonce, as 1 to 64 bytes of hex.
    #[arg(long, value_name = "HEX", default_value = DEFAULT_SEED_HEX)]
    seed: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let seed = Seed::from_hex(&args.seed)?;
    let kit = kit::generate(&seed)?;
    kit::write_kit(&args.out, &kit)?;
    service_tls::write_service_tls(&args.out)?;
    println!(
        "wrote {} files to {}: log {} size {} root {}, artifact sha256:{}",
        kit.files.len(),
        args.out.display(),
        kit::LOG_ORIGIN,
        kit.log_size,
        kit.log_root_base64,
        kit.artifact_sha256_hex,
    );
    Ok(())
}
