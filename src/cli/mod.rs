//! Subcommands of the binary. Each file holds one subcommand's flags and its `run`.
//!
//! The top of the tree: the files import the library (`marginflow::…`) and `common` (data
//! loading, output folders, errors shown by flag) and `progress` (the terminal line); nothing
//! imports the binary.

pub mod check;
pub mod common;
pub mod descent;
pub mod flow;
pub mod gen;
pub mod maxmargin;
pub mod progress;
pub mod sweep;
pub mod validate;

/// Exit status of a run that ended before its horizon (flow: max_steps, non_finite, diverged,
/// loss_increased, interrupted, step-size underflow; descent: diverged, interrupted), with its
/// summary written.
pub const EXIT_EARLY: u8 = 3;

/// Exit status after a second SIGINT/SIGTERM: 128 + the signal's number (130, 143), as shells
/// report a process killed by it.
pub const EXIT_SIGNAL_BASE: i32 = 128;

/// Route SIGINT and SIGTERM to the library's stop flag (`marginflow_solvers::interrupt`): the
/// first signal requests a stop, which every phase polls (the run ends with its checkpoint and a
/// summary with status `interrupted`, exit 3); a second one ends the process at once, exit
/// 128 + the signal's number.
pub fn install_signal_handlers() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let stop = marginflow_solvers::interrupt::flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Handlers run in registration order: the shutdown sees the flag as the first signal left it.
        signal_hook::flag::register_conditional_shutdown(sig, EXIT_SIGNAL_BASE + sig, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

/// An error chain on one line: "outer: inner: innermost", settings named by their flags.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = common::describe(cause).replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
