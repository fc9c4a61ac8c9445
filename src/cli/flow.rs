//! `marginflow flow` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow flow`.
#[derive(clap::Args, Debug)]
pub struct FlowArgs {}

/// Run `marginflow flow`.
pub fn run(_args: FlowArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("flow: not implemented yet")
}
