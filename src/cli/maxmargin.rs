//! `marginflow maxmargin`: solve and certify the network max-margin QP on an activation pattern
//! (the theory's, or the final one of a flow run) and the linear max-margin problem.

use super::common::{print_json, ModelArgs};
use marginflow::experiments::run_pattern;
use marginflow::io::fsutil::write_atomic;
use marginflow::io::npy::write_npy;
use marginflow::maxmargin::{self, MaxMarginSettings, PatternSource};
use marginflow::metrics::to_json_value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `marginflow maxmargin`.
#[derive(clap::Args, Debug)]
pub struct MaxmarginArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Take the activation pattern from the flow run in DIR (DIR/W.npy, else DIR/checkpoint);
    /// default: the theory's pattern S_ji = sign(a_j) y_i.
    #[arg(long, value_name = "DIR")]
    pub pattern_from: Option<PathBuf>,
    /// Working precision in bits: 53 = f64, 106 = double-double, 212 = quad-double; other values (≥ 64) need the `mpfr` feature.
    #[arg(long, default_value_t = 53)]
    pub precision: u32,
    /// Number of Gaussian test points for linear_boundary_agreement.
    #[arg(long, default_value_t = 1000)]
    pub test_points: usize,
    /// Print the report JSON to stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// Write the report JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write W* (m×d float64) to this .npy file.
    #[arg(long, value_name = "W.npy")]
    pub save_weights: Option<PathBuf>,
}

/// Run `marginflow maxmargin`. Exits 0 whether or not the solution is certified.
pub fn run(args: MaxmarginArgs) -> anyhow::Result<ExitCode> {
    let model = args.model.settings();
    model.validate()?;
    let data = args.model.load()?;
    let source = match &args.pattern_from {
        Some(dir) => PatternSource::Given {
            name: dir.display().to_string(),
            signs: run_pattern::pattern_from_run(dir, &data, &model)?,
        },
        None => PatternSource::Theory,
    };
    let settings = MaxMarginSettings { test_points: args.test_points, seed: args.model.seed, ..Default::default() };
    let report = maxmargin::solve(&data, &model, &source, args.precision, &settings)?;
    let value = to_json_value(&report.summary);
    if let Some(path) = &args.out {
        let mut bytes = serde_json::to_vec_pretty(&value)?;
        bytes.push(b'\n');
        write_atomic(path, &bytes)?;
    }
    if let Some(path) = &args.save_weights {
        match &report.weights {
            Some(w) => write_npy(path, &[report.shape.0, report.shape.1], w)?,
            None => anyhow::bail!("--save-weights {}: no solution to save (the QP was not solved)", path.display()),
        }
    }
    if args.json {
        print_json(&value)?;
    } else {
        let f = &report.summary;
        let sol = f.solution.as_ref();
        let j = |v: Option<f64>| serde_json::json!(v);
        eprintln!(
            "certified {} | norm {} | normalized margin {} | rank {} | linear norm {}",
            f.certified,
            j(sol.and_then(|s| s.norm)),
            j(sol.and_then(|s| s.normalized_margin)),
            serde_json::json!(sol.map(|s| s.rank)),
            j(f.linear.norm)
        );
        if let Some(why) = &f.not_certified_because {
            eprintln!("not certified: {}", serde_json::json!(why));
        }
    }
    Ok(ExitCode::SUCCESS)
}
