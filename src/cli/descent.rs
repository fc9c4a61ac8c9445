//! `marginflow descent` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow descent`.
#[derive(clap::Args, Debug)]
pub struct DescentArgs {}

/// Run `marginflow descent`.
pub fn run(_args: DescentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("descent: not implemented yet")
}
