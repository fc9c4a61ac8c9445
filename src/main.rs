//! The `marginflow` command line: a thin clap layer over the library. Each subcommand turns its
//! flags into library settings in `cli/<command>.rs` and owns the terminal and the files.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Gradient flow on two-layer leaky-ReLU networks, followed into the asymptotic regime and checked
/// against independently solved max-margin problems.
/// The exit statuses, shown under `--help` (and in the README).
const EXIT_STATUS: &str = "Exit status:
  0  success (flow: the horizon was reached; descent: every step was taken)
  1  a validation claim failed (validate)
  2  bad input or usage (one line on stderr naming the file, line or flag)
  3  the run ended before its horizon (max_steps, non_finite, diverged, loss_increased,
     interrupted, step_size_underflow, stalled), with its summary written; also a command
     other than flow/descent stopped by SIGINT/SIGTERM
  130/143  a second SIGINT/SIGTERM ended the process at once (nothing more written)
Memory: allocations that grow faster than the data are estimated first; above --memory-limit
  (default: half the machine's memory) the scalable path is taken or the command refuses with
  one line naming the size (exit 2)";

#[derive(Parser)]
#[command(name = "marginflow", version, about, long_about = None, after_help = EXIT_STATUS)]
struct Cli {
    /// Memory limit in bytes for allocations that grow faster than the data (a QP's dense
    /// matrix, a Jacobian), with K/M/G/T suffixes (powers of 1024), e.g. 8G [default: half the
    /// machine's memory, from /proc/meminfo].
    #[arg(long, global = true, value_name = "BYTES", value_parser = marginflow_solvers::memory::parse_bytes)]
    memory_limit: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a data set (gaussian, two-cluster mixture, or exactly orthogonal).
    #[command(after_help = EXIT_STATUS)]
    Gen(cli::gen::GenArgs),
    /// Report the near-orthogonality statistics of a data set.
    #[command(after_help = EXIT_STATUS)]
    Check(cli::check::CheckArgs),
    /// Integrate gradient flow in normalized time, with kink events, to a horizon.
    #[command(after_help = EXIT_STATUS)]
    Flow(cli::flow::FlowArgs),
    /// Solve and certify the max-margin problems (network on a pattern, and linear).
    #[command(after_help = EXIT_STATUS)]
    Maxmargin(cli::maxmargin::MaxmarginArgs),
    /// Run full-batch gradient descent.
    #[command(after_help = EXIT_STATUS)]
    Descent(cli::descent::DescentArgs),
    /// Grids of runs: local (flow, descent, validate) or planned, sharded, merged and submitted to Slurm.
    #[command(after_help = EXIT_STATUS)]
    Sweep(cli::sweep::SweepCommand),
    /// Check the theorem's claims on scenario files (or the built-in suite) and write a report.
    #[command(after_help = EXIT_STATUS)]
    Validate(cli::validate::ValidateArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Some(bytes) = cli.memory_limit {
        marginflow_solvers::memory::set_limit(bytes);
    }
    // The long commands stop on SIGINT/SIGTERM at the next poll (see cli::install_signal_handlers).
    if matches!(cli.command, Command::Maxmargin(_) | Command::Sweep(_) | Command::Validate(_)) {
        if let Err(e) = cli::install_signal_handlers() {
            eprintln!("marginflow: {}", cli::one_line(&e));
            return ExitCode::from(2);
        }
    }
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
        // A closed stdout (`marginflow … --json | head`) ends the output quietly, as other
        // command-line tools do; the run's files are already written.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // A stop request that ended a command outside a run's own loop (a QP, a sweep, validate).
        Err(e) if cli::common::is_interrupted(&e) => {
            eprintln!("marginflow: interrupted (exit status 3)");
            ExitCode::from(cli::EXIT_EARLY)
        }
        Err(e) => {
            eprintln!("marginflow: {}", cli::one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// Whether the error is a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
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
            eprintln!("marginflow: {} (see --help)", clap_one_line(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// Clap's whole message on one line: the reason, what it lists (the missing flags, the valid
/// values), and its tips, with "a similar argument exists: 'X'" said as "did you mean 'X'?".
/// The usage block and the "try '--help'" line are dropped (the line ends in "(see --help)").
fn clap_one_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        let line = line.strip_prefix("error:").unwrap_or(line).trim();
        let line = match line.strip_prefix("tip:").map(str::trim) {
            Some(tip) => did_you_mean(tip),
            // "[possible values: a, b]" → "possible values: a, b".
            None => line.strip_prefix('[').and_then(|l| l.strip_suffix(']')).unwrap_or(line).to_string(),
        };
        match parts.last_mut() {
            // "… were not provided:" followed by the list, one flag a line.
            Some(last) if last.ends_with(':') => {
                last.push(' ');
                last.push_str(&line);
            }
            Some(last) if last.ends_with('>') && line.starts_with("--") => {
                last.push_str(", ");
                last.push_str(&line);
            }
            _ => parts.push(line),
        }
    }
    if parts.is_empty() {
        return "invalid arguments".into();
    }
    parts.join("; ")
}

/// A clap tip as a question: "a similar argument exists: '--width'" → "did you mean '--width'?".
fn did_you_mean(tip: &str) -> String {
    for lead in ["a similar argument exists:", "a similar value exists:", "a similar subcommand exists:"] {
        if let Some(rest) = tip.strip_prefix(lead) {
            return format!("did you mean {}?", rest.trim());
        }
    }
    for lead in ["some similar arguments exist:", "some similar values exist:", "some similar subcommands exist:"] {
        if let Some(rest) = tip.strip_prefix(lead) {
            return format!("did you mean one of {}?", rest.trim());
        }
    }
    tip.to_string()
}

#[cfg(test)]
mod tests {
    use super::clap_one_line;

    #[test]
    fn missing_flags_are_listed_on_the_line() {
        let text = "error: the following required arguments were not provided:\n  --width <WIDTH>\n  --steps <STEPS>\n\nUsage: marginflow descent --width <WIDTH>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_one_line(text),
            "the following required arguments were not provided: --width <WIDTH>, --steps <STEPS>"
        );
    }

    #[test]
    fn tips_become_questions() {
        let text =
            "error: unexpected argument '--witdh' found\n\n  tip: a similar argument exists: '--width'\n\nUsage: x\n";
        assert_eq!(clap_one_line(text), "unexpected argument '--witdh' found; did you mean '--width'?");
    }
}
