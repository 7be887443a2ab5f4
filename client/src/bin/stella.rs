//! The `stella` command-line tool; see `docs/cli.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let exit = stella_client::cli::main_with_args(std::env::args_os().collect());
    ExitCode::from(exit.code())
}
