//! `marginflow gen` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {}

/// Run `marginflow gen`.
pub fn run(_args: GenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("gen: not implemented yet")
}
