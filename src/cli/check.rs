//! `marginflow check` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {}

/// Run `marginflow check`.
pub fn run(_args: CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("check: not implemented yet")
}
