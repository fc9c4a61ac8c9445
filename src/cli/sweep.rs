//! `marginflow sweep` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {}

/// Run `marginflow sweep`.
pub fn run(_args: SweepArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sweep: not implemented yet")
}
