//! `marginflow sweep flow|descent`: the cartesian product of comma-listed numeric options, run in
//! parallel, written as DIR/runs.csv, DIR/runs.jsonl, DIR/trajectories/run-<index>.jsonl and SVG
//! plots.

use super::common::{create_out_dir, load_training_data};
use anyhow::{bail, Context};
use marginflow::descent::DescentActivation;
use marginflow::experiments::sweep::{self, Axis, DataSource, SweepKind, SweepSettings, Variable};
use marginflow::io::fsutil::write_atomic;
use marginflow::io::rundir;
use marginflow::model::data::{DataKind, GenSettings};
use marginflow::model::loss::Loss;
use marginflow::model::network::OuterLayer;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `marginflow sweep`. Every numeric option takes a comma list (`--init-scale 1e-8,1e-4,1`).
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// What to run: flow or descent.
    #[arg(value_enum)]
    pub what: SweepKind,
    /// Data file shared by all runs (otherwise data are generated per run from --kind/--n/--d/--data-seed).
    #[arg(long, conflicts_with_all = ["kind", "n", "d", "data_seed", "mean_norm"])]
    pub data: Option<PathBuf>,
    /// Kind of generated data.
    #[arg(long, value_enum)]
    pub kind: Option<DataKind>,
    /// Number of generated points (list).
    #[arg(long)]
    pub n: Option<String>,
    /// Dimension of generated data (list).
    #[arg(long)]
    pub d: Option<String>,
    /// Seed of generated data (list).
    #[arg(long)]
    pub data_seed: Option<String>,
    /// Cluster mean norm of mixture data (list).
    #[arg(long)]
    pub mean_norm: Option<String>,
    /// Width m (list).
    #[arg(long)]
    pub width: Option<String>,
    /// Leak γ (list).
    #[arg(long)]
    pub leak: Option<String>,
    /// Second layer: balanced, random, or a .npy vector.
    #[arg(long, default_value = "balanced")]
    pub outer: OuterLayer,
    /// Initialization scale ω (list).
    #[arg(long)]
    pub init_scale: Option<String>,
    /// Read --init-scale as multiples of 1/√d (the default-initialization scale).
    #[arg(long)]
    pub init_relative: bool,
    /// Initialization seed (list).
    #[arg(long)]
    pub seed: Option<String>,
    /// Loss: logistic or exponential.
    #[arg(long, default_value = "logistic", value_parser = ["logistic", "exponential"])]
    pub loss: String,
    /// Step size α (descent; list).
    #[arg(long)]
    pub step_size: Option<String>,
    /// Number of steps (descent; list).
    #[arg(long)]
    pub steps: Option<String>,
    /// Activation (descent): leaky or smooth.
    #[arg(long, default_value = "leaky", value_parser = ["leaky", "smooth"])]
    pub activation: String,
    /// Smoothness H of the smooth activation (descent; list).
    #[arg(long)]
    pub smoothness: Option<String>,
    /// Horizon t = 10^X (flow; list).
    #[arg(long)]
    pub until_log10_time: Option<String>,
    /// Relative tolerance (flow; list).
    #[arg(long)]
    pub rtol: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace another run in --out (removes only the files marginflow wrote there).
    #[arg(long)]
    pub force: bool,
}

fn parse_list(flag: &str, s: &str) -> anyhow::Result<Vec<f64>> {
    s.split(',')
        .map(|t| {
            let t = t.trim();
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| format!("--{flag}: {t:?} is not a finite number"))
        })
        .collect()
}

impl SweepArgs {
    /// The library settings these flags mean.
    pub fn settings(&self) -> anyhow::Result<SweepSettings> {
        let mut s = SweepSettings { kind: self.what, init_relative: self.init_relative, ..Default::default() };
        let loss = if self.loss == "exponential" { Loss::Exponential } else { Loss::Logistic };
        for model in [&mut s.flow.model, &mut s.descent.model] {
            model.outer = self.outer.clone();
            model.loss = loss;
        }
        if self.activation == "smooth" {
            s.descent.activation = DescentActivation::Smooth { smoothness: 1.0 };
        } else if self.smoothness.is_some() {
            bail!("--smoothness needs --activation smooth");
        }
        s.data = match &self.data {
            Some(p) => DataSource::Loaded { path: p.clone() },
            None => DataSource::Generated(GenSettings {
                kind: self.kind.unwrap_or(DataKind::Gaussian),
                ..Default::default()
            }),
        };
        let lists: [(&str, &Option<String>, Variable); 13] = [
            ("n", &self.n, Variable::N),
            ("d", &self.d, Variable::D),
            ("data-seed", &self.data_seed, Variable::DataSeed),
            ("mean-norm", &self.mean_norm, Variable::MeanNorm),
            ("width", &self.width, Variable::Width),
            ("leak", &self.leak, Variable::Leak),
            ("init-scale", &self.init_scale, Variable::InitScale),
            ("seed", &self.seed, Variable::Seed),
            ("step-size", &self.step_size, Variable::StepSize),
            ("steps", &self.steps, Variable::Steps),
            ("smoothness", &self.smoothness, Variable::Smoothness),
            ("until-log10-time", &self.until_log10_time, Variable::UntilLog10Time),
            ("rtol", &self.rtol, Variable::Rtol),
        ];
        for (flag, v, var) in lists {
            if let Some(text) = v {
                s.axes.push(Axis { variable: var, values: parse_list(flag, text)? });
            }
        }
        s.validate()?;
        Ok(s)
    }
}

/// Run `marginflow sweep`.
pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    let loaded = match &args.data {
        Some(p) => Some(load_training_data(p)?),
        None => None,
    };
    let data_hash = loaded.as_ref().map(|d| d.hash());
    let mut manifest = rundir::Manifest::new(
        rundir::Command::Sweep,
        rundir::identity(rundir::Command::Sweep, &(&settings, &data_hash)),
    );
    manifest.data_sha256 = data_hash.clone();
    rundir::prepare_out_dir(&args.out, args.force, &manifest)?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = args.threads {
        if t == 0 {
            bail!("--threads: must be at least 1");
        }
        pool = pool.num_threads(t);
    }
    let pool = pool.build().context("starting the thread pool")?;
    let results = pool.install(|| sweep::run(&settings, loaded.as_ref()))?;
    let dir = &args.out;
    write_atomic(&dir.join("runs.csv"), sweep::runs_csv(&settings, &results).as_bytes())?;
    write_atomic(&dir.join("runs.jsonl"), sweep::runs_jsonl(&results).as_bytes())?;
    manifest.files = vec!["runs.csv".into(), "runs.jsonl".into()];
    let tdir = dir.join("trajectories");
    create_out_dir(&tdir)?;
    for r in &results {
        let text: String =
            r.trajectory.iter().map(|row| format!("{}\n", serde_json::to_string(row).expect("serializes"))).collect();
        let name = format!("run-{}.jsonl", r.index);
        write_atomic(&tdir.join(&name), text.as_bytes())?;
        manifest.files.push(format!("trajectories/{name}"));
    }
    for (name, svg) in sweep::plots(&settings, &results)? {
        write_atomic(&dir.join(&name), svg.as_bytes())?;
        manifest.files.push(name);
    }
    write_atomic(&dir.join("sweep.json"), &serde_json::to_vec_pretty(&settings.recorded())?)?;
    manifest.files.push("sweep.json".into());
    manifest.save(dir)?;
    let failed = results.iter().filter(|r| r.summary.is_err()).count();
    eprintln!("{} runs ({} failed) written to {}", results.len(), failed, dir.display());
    for r in results.iter().filter_map(|r| r.summary.as_ref().err().map(|e| (r.index, e))) {
        eprintln!("run {}: {}", r.0, r.1);
    }
    Ok(ExitCode::SUCCESS)
}
