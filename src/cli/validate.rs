//! `marginflow validate` (in progress).

use std::process::ExitCode;

/// Flags of `marginflow validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {}

/// Run `marginflow validate`.
pub fn run(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("validate: not implemented yet")
}
