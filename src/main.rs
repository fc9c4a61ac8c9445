//! The `marginflow` command line: a thin clap layer over the library. Each subcommand turns its
//! flags into library settings in `cli/<command>.rs` and owns the terminal and the files.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Gradient flow on two-layer leaky-ReLU networks, followed into the asymptotic regime and checked
/// against independently solved max-margin problems.
#[derive(Parser)]
#[command(name = "marginflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a data set (gaussian, two-cluster mixture, or exactly orthogonal).
    Gen(cli::gen::GenArgs),
    /// Report the near-orthogonality statistics of a data set.
    Check(cli::check::CheckArgs),
    /// Integrate gradient flow in normalized time, with kink events, to a horizon.
    Flow(cli::flow::FlowArgs),
    /// Solve and certify the max-margin problems (network on a pattern, and linear).
    Maxmargin(cli::maxmargin::MaxmarginArgs),
    /// Run full-batch gradient descent.
    Descent(cli::descent::DescentArgs),
    /// Grids of runs: local (flow, descent, validate) or planned, sharded, merged and submitted to Slurm.
    Sweep(cli::sweep::SweepCommand),
    /// Check the theorem's claims on scenario files (or the built-in suite) and write a report.
    Validate(cli::validate::ValidateArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Gen(a) => cli::gen::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Flow(a) => cli::flow::run(a),
        Command::Maxmargin(a) => cli::maxmargin::run(a),
        Command::Descent(a) => cli::descent::run(a),
        Command::Sweep(a) => cli::sweep::run(a),
        Command::Validate(a) => cli::validate::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("marginflow: {}", cli::one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// Clap's outcome when the arguments do not parse: `--help`/`--version` print as clap does (exit
/// 0); every usage error becomes one line naming the flag (exit 2), as all other bad input does.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        _ => {
            // Clap's first line is the reason ("error: the argument '--x' cannot be used with
            // '--y'"); the rest is usage and tips.
            let text = e.to_string();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid arguments");
            let reason = first.trim().strip_prefix("error:").unwrap_or(first).trim();
            eprintln!("marginflow: {reason} (see --help)");
            ExitCode::from(2)
        }
    }
}
