//! `marginflow gen`: generate a seeded synthetic data set and write it (format by extension).

use anyhow::bail;
use marginflow::model::data::{self, DataKind, Dataset, GenSettings};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `marginflow gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Kind of data.
    #[arg(long, value_enum, default_value = "gaussian")]
    pub kind: DataKind,
    /// Number of points (at least 2).
    #[arg(long, default_value_t = 20)]
    pub n: usize,
    /// Dimension.
    #[arg(long, default_value_t = 4000)]
    pub d: usize,
    /// Seed of the ChaCha8 random stream (same seed, same bytes on every machine).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Norm of the cluster mean (mixture only; default d^0.3).
    #[arg(long, allow_negative_numbers = true)]
    pub mean_norm: Option<f64>,
    /// Fraction of labels flipped after generation, in [0, 0.5) (mixture only).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub label_noise: f64,
    /// Output file: .svm/.libsvm/.txt (LIBSVM), .csv or .json. An existing file is refused
    /// unless it already holds exactly this data set (or --force is given).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing --out file (runs made on the old data then no longer resume).
    #[arg(long)]
    pub force: bool,
}

impl GenArgs {
    /// The library settings these flags stand for.
    pub fn settings(&self) -> GenSettings {
        GenSettings {
            kind: self.kind,
            n: self.n,
            d: self.d,
            seed: self.seed,
            mean_norm: self.mean_norm,
            label_noise: self.label_noise,
        }
    }
}

/// Run `marginflow gen`.
pub fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings();
    settings.validate()?;
    data::check_extension(&args.out)?;
    let dataset = data::generate(&settings)?;
    if !args.force && std::fs::symlink_metadata(&args.out).is_ok() {
        match Dataset::load(&args.out) {
            Ok(old) if old == dataset => {
                eprintln!("{} already holds this data set (sha256 {}): left as it is", args.out.display(), dataset.hash());
                return Ok(ExitCode::SUCCESS);
            }
            Ok(old) => bail!(
                "--out {}: the file exists and holds other data (n = {}, d = {}, sha256 {}…); runs made on it would no longer resume: pass --force to replace it, or choose another name",
                args.out.display(),
                old.n,
                old.d,
                &old.hash()[..12]
            ),
            Err(_) => bail!(
                "--out {}: the file exists: pass --force to replace it, or choose another name",
                args.out.display()
            ),
        }
    }
    dataset.save(&args.out)?;
    let (pos, neg) = dataset.class_counts();
    eprintln!(
        "wrote {} ({} points: {pos} +1, {neg} -1; d = {}; sha256 {})",
        args.out.display(),
        dataset.n,
        dataset.d,
        dataset.hash()
    );
    Ok(ExitCode::SUCCESS)
}
