//! `marginflow descent`: full-batch gradient descent, writing the trajectory (every step for the
//! first 100, log-spaced after), the summary, and optionally the final weights.

use super::common::{check_model_files, print_json, ModelArgs};
use anyhow::{bail, Context};
use marginflow::descent::{self, DescentActivation, DescentObserver, DescentRow, DescentSettings};
use marginflow::io::fsutil::AtomicBatch;
use marginflow::io::npy::encode_npy;
use marginflow::io::rundir;
use marginflow::metrics::to_json_value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags of `marginflow descent`.
#[derive(clap::Args, Debug)]
pub struct DescentArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Step size α of W ← W − α∇L(W) (L the mean loss).
    #[arg(long, allow_negative_numbers = true)]
    pub step_size: f64,
    /// Number of steps.
    #[arg(long)]
    pub steps: u64,
    /// Activation: leaky (ReLU) or smooth (the H-smooth leaky ReLU).
    #[arg(long, default_value = "leaky", value_parser = ["leaky", "smooth"])]
    pub activation: String,
    /// Smoothness H of the smooth activation.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub smoothness: f64,
    /// Working precision in bits: 53 = f64, 106 = double-double, 212 = quad-double; other values (≥ 64) need the `mpfr` feature.
    #[arg(long, default_value_t = 53)]
    pub precision: u32,
    /// Output directory (trajectory.jsonl, summary.json, W.npy).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the final W (m×d float64) to DIR/W.npy.
    #[arg(long)]
    pub save_weights: bool,
    /// Print the summary JSON to stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// Replace another run in --out (removes only the files marginflow wrote there).
    #[arg(long)]
    pub force: bool,
}

impl DescentArgs {
    /// The library settings these flags mean.
    pub fn settings(&self) -> DescentSettings {
        DescentSettings {
            model: self.model.settings(),
            activation: if self.activation == "smooth" {
                DescentActivation::Smooth { smoothness: self.smoothness }
            } else {
                DescentActivation::Leaky
            },
            step_size: self.step_size,
            steps: self.steps,
            precision: self.precision,
            ..Default::default()
        }
    }
}

struct Rows {
    path: Option<PathBuf>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    stop: Arc<AtomicBool>,
}

impl DescentObserver for Rows {
    fn row(&mut self, row: &DescentRow) -> marginflow::Result<()> {
        if let (Some(f), Some(path)) = (&mut self.file, &self.path) {
            let line = to_json_value(row).to_string();
            writeln!(f, "{line}").map_err(|e| marginflow::Error::io(path.clone(), e))?;
        }
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Run `marginflow descent`.
pub fn run(args: DescentArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings();
    settings.validate()?;
    if args.save_weights && args.out.is_none() {
        bail!("--save-weights needs --out DIR");
    }
    let data = args.model.load()?;
    check_model_files(&settings.model, data.d)?;
    let stop = super::install_signal_handlers()?;
    let mut rows = Rows { path: None, file: None, stop };
    let tmp_path = args.out.as_ref().map(|d| d.join(".trajectory.jsonl.partial"));
    let mut manifest = rundir::Manifest::new(
        rundir::Command::Descent,
        rundir::identity(rundir::Command::Descent, &(&settings, data.hash())),
    );
    manifest.data_sha256 = Some(data.hash());
    manifest.save_weights = args.save_weights;
    if let Some(dir) = &args.out {
        rundir::prepare_out_dir(dir, args.force, &manifest)?;
        let tp = tmp_path.clone().expect("set with out");
        let f = std::fs::File::create(&tp).with_context(|| format!("{}: cannot create", tp.display()))?;
        rows.file = Some(std::io::BufWriter::new(f));
        rows.path = Some(tp);
    }
    let outcome = descent::run(&data, &settings, args.save_weights, &mut rows)?;
    if let (Some(dir), Some(tp)) = (&args.out, &tmp_path) {
        // The three files are synced together and renamed into place only once all are on disk.
        let f = rows.file.take().expect("opened");
        let f = f.into_inner().map_err(|e| marginflow::Error::io(tp.clone(), e.into_error()))?;
        let mut batch = AtomicBatch::new();
        batch.add_written(f, tp, &dir.join(rundir::TRAJECTORY));
        batch.add_bytes(&dir.join(rundir::SUMMARY), &serde_json::to_vec_pretty(&to_json_value(&outcome.summary))?)?;
        manifest.files = vec![rundir::TRAJECTORY.into(), rundir::SUMMARY.into()];
        if let Some(w) = &outcome.weights {
            let path = dir.join(rundir::WEIGHTS);
            let bytes = encode_npy(&path, &[settings.model.width, data.d], w)?;
            manifest.weights_sha256 = Some(rundir::sha256_hex(&bytes));
            manifest.files.push(rundir::WEIGHTS.into());
            batch.add_bytes(&path, &bytes)?;
        }
        batch.commit()?;
        manifest.save(dir)?;
    }
    if args.json {
        print_json(&outcome.summary)?;
    } else {
        let f = &outcome.summary;
        let j = |v: Option<f64>| serde_json::json!(v);
        eprintln!(
            "status {} | step {} | log10 L {} | normalized margin {} | stable rank {} (initially {})",
            serde_json::json!(f.status),
            f.last.step,
            j(f.last.state.log10_loss),
            j(f.last.state.normalized_margin),
            j(f.last.state.stable_rank),
            j(f.initial_stable_rank)
        );
    }
    if !matches!(outcome.status, descent::DescentStatus::Completed) {
        let status = outcome.summary.status;
        eprintln!("marginflow: the run ended before its last step: {status} (exit status 3)");
        return Ok(ExitCode::from(super::EXIT_EARLY));
    }
    Ok(ExitCode::SUCCESS)
}
