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
