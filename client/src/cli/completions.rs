//! `stella completions SHELL`: the shell completion script of every command and option,
//! generated from the clap definitions with `clap_complete`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;
use super::output::{Exit, Failure, Report};

/// Arguments of `stella completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Generates the completion script of `args.shell`. The text output is the script itself; the
/// JSON output carries it in `script`.
pub fn script(args: &CompletionsArgs) -> Result<Report, Failure> {
    let mut command = Cli::command();
    let mut bytes = Vec::new();
    clap_complete::generate(args.shell, &mut command, "stella", &mut bytes);
    let text = String::from_utf8(bytes).map_err(|error| {
        Failure::other(format!(
            "the generated {} completion script is not UTF-8: {error}",
            args.shell
        ))
    })?;

    let mut report = Report::new(Exit::Success);
    report
        .field("shell", args.shell.to_string())
        .field("script", text.clone());
    for line in text.lines() {
        report.line(line.to_owned());
    }
    Ok(report)
}
