//! `marginflow maxmargin` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow maxmargin`.
#[derive(clap::Args, Debug)]
pub struct MaxmarginArgs {}

/// Run `marginflow maxmargin`.
pub fn run(_args: MaxmarginArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("maxmargin: not implemented yet")
}
