//! `marginflow sweep`: grids of runs, locally or sharded.
//!
//! - `sweep flow|descent|validate [lists…] --out DIR`: the cartesian product of comma-listed
//!   numeric options (or `A..B` integer ranges), run in parallel, written as DIR/runs.csv,
//!   DIR/runs.jsonl, DIR/trajectories/run-<index>.jsonl and SVG plots (a validate sweep adds
//!   phase.csv and phase_<claim>.svg). This is plan + one shard of every run + merge; with
//!   `--plan-only` only DIR/plan.json is written.
//! - `sweep run DIR --shard I/N`: run one share of a plan (skipping completed runs).
//! - `sweep merge DIR`: the local sweep's outputs from the run directories.
//! - `sweep submit DIR`: the same as a Slurm job array and a dependent merge job.

use super::common::{create_out_dir, load_training_data};
use anyhow::{bail, Context};
use marginflow::descent::DescentActivation;
use marginflow::experiments::slurm::{self, SubmitSettings};
use marginflow::experiments::sweep::plan::PLAN_FILE;
use marginflow::experiments::sweep::shard::{self, RUNS_DIR};
use marginflow::experiments::sweep::{merge as merging, Axis, DataSource, Plan, RunTask, ScenarioBase, Shard};
use marginflow::experiments::sweep::{SweepKind, SweepSettings, Variable};
use marginflow::experiments::validate;
use marginflow::io::fsutil::write_atomic;
use marginflow::io::rundir;
use marginflow::model::data::Dataset;
use marginflow::model::data::{DataKind, GenSettings};
use marginflow::model::loss::Loss;
use marginflow::model::network::OuterLayer;
use std::path::PathBuf;
use std::process::ExitCode;

/// `marginflow sweep` and its subcommands.
#[derive(clap::Args, Debug)]
pub struct SweepCommand {
    #[command(subcommand)]
    command: SweepSub,
}

#[derive(clap::Subcommand, Debug)]
enum SweepSub {
    /// Sweep gradient flow over comma-listed options.
    Flow(SweepArgs),
    /// Sweep gradient descent over comma-listed options.
    Descent(SweepArgs),
    /// Run the validate claims on a grid (a phase diagram): phase.csv and phase_<claim>.svg.
    Validate(PhaseArgs),
    /// Run one shard of a planned sweep into DIR/runs/<index>/ (completed runs are skipped).
    Run(RunArgs),
    /// Merge the run directories of a planned sweep into the local sweep's outputs.
    Merge(MergeArgs),
    /// Submit a planned sweep to Slurm as a job array plus a dependent merge job.
    Submit(SubmitArgs),
}

/// The swept flags of every local sweep (flow, descent, validate). Each takes a comma list
/// (`--init-scale 1e-8,1e-4,1`) or an integer range (`--seed 0..9`, inclusive).
#[derive(clap::Args, Debug)]
pub struct GridArgs {
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
    /// Initialization scale ω (list).
    #[arg(long)]
    pub init_scale: Option<String>,
    /// Initialization seed (list); for `sweep validate` the replicate seed.
    #[arg(long)]
    pub seed: Option<String>,
    /// Horizon t = 10^X (flow, validate; list).
    #[arg(long)]
    pub until_log10_time: Option<String>,
    /// Relative tolerance (flow, validate; list).
    #[arg(long)]
    pub rtol: Option<String>,
}

impl GridArgs {
    /// The lists in axis order, with `more` (the descent lists) after `--seed`.
    fn lists<'a>(&'a self, more: &[(&'a Option<String>, Variable)]) -> Vec<(&'a Option<String>, Variable)> {
        let mut out = vec![
            (&self.n, Variable::N),
            (&self.d, Variable::D),
            (&self.data_seed, Variable::DataSeed),
            (&self.mean_norm, Variable::MeanNorm),
            (&self.width, Variable::Width),
            (&self.leak, Variable::Leak),
            (&self.init_scale, Variable::InitScale),
            (&self.seed, Variable::Seed),
        ];
        out.extend_from_slice(more);
        out.extend([(&self.until_log10_time, Variable::UntilLog10Time), (&self.rtol, Variable::Rtol)]);
        out
    }
}

/// Where and how a local sweep runs.
#[derive(clap::Args, Debug)]
pub struct LocalArgs {
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace another run in --out (removes only the files marginflow wrote there).
    #[arg(long)]
    pub force: bool,
    /// Only write DIR/plan.json (for `sweep run`/`sweep submit`).
    #[arg(long)]
    pub plan_only: bool,
}

/// Flags of `marginflow sweep flow|descent`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// Data file shared by all runs (otherwise data are generated per run from --kind/--n/--d/--data-seed).
    #[arg(long, conflicts_with_all = ["kind", "n", "d", "data_seed", "mean_norm"])]
    pub data: Option<PathBuf>,
    /// Labels (n values, -1/+1 or 0/1) in a .npy file, for --data X.npy.
    #[arg(long, value_name = "Y.npy", requires = "data")]
    pub labels: Option<PathBuf>,
    /// Kind of generated data.
    #[arg(long, value_enum)]
    pub kind: Option<DataKind>,
    #[command(flatten)]
    pub grid: GridArgs,
    /// Second layer: balanced, random, or a .npy vector.
    #[arg(long, default_value = "balanced")]
    pub outer: OuterLayer,
    /// Read --init-scale as multiples of 1/√d (the default-initialization scale).
    #[arg(long)]
    pub init_relative: bool,
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
    #[command(flatten)]
    pub local: LocalArgs,
}

/// Flags of `marginflow sweep validate SCENARIO.toml`: the scenario is the base, the listed keys
/// are swept. `--seed` is the replicate seed: it seeds the initialization and, unless
/// `--data-seed` is swept too, the generated data.
#[derive(clap::Args, Debug)]
pub struct PhaseArgs {
    /// The base scenario file (TOML, as for `marginflow validate`).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub grid: GridArgs,
    #[command(flatten)]
    pub local: LocalArgs,
}

/// Flags of `marginflow sweep run DIR`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The sweep directory (holding plan.json).
    pub dir: PathBuf,
    /// This process's share, I/N with 0 <= I < N (default: every run).
    #[arg(long, conflicts_with_all = ["task_id", "tasks"])]
    pub shard: Option<String>,
    /// Shard index, e.g. $SLURM_ARRAY_TASK_ID (with --tasks).
    #[arg(long, requires = "tasks")]
    pub task_id: Option<usize>,
    /// Number of shards (with --task-id).
    #[arg(long, requires = "task_id")]
    pub tasks: Option<usize>,
    /// Worker threads (default: $SLURM_CPUS_PER_TASK, else all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Flags of `marginflow sweep merge DIR`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The sweep directory (holding plan.json and runs/).
    pub dir: PathBuf,
}

/// Flags of `marginflow sweep submit DIR`.
#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// The sweep directory (holding plan.json).
    pub dir: PathBuf,
    /// Number of array tasks (default: the number of runs, at most 100).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per shard (HH:MM:SS).
    #[arg(long)]
    pub time: Option<String>,
    /// Memory per shard (e.g. 4G).
    #[arg(long)]
    pub mem: Option<String>,
    /// At most K shards at once (Slurm's %K).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// CPUs (threads) per shard.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// Only write DIR/slurm/array.sbatch and merge.sbatch.
    #[arg(long)]
    pub dry_run: bool,
}

/// An axis for each listed flag that was given (`--data-seed` for `Variable::DataSeed`, …).
fn push_axes(s: &mut SweepSettings, lists: &[(&Option<String>, Variable)]) -> anyhow::Result<()> {
    for (v, var) in lists {
        if let Some(text) = v {
            s.axes.push(Axis { variable: *var, values: parse_list(&var.name().replace('_', "-"), text)? });
        }
    }
    Ok(())
}

fn parse_list(flag: &str, s: &str) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    for t in s.split(',') {
        let t = t.trim();
        if let Some((a, b)) = t.split_once("..") {
            let (a, b) = (a.trim().parse::<u64>(), b.trim().parse::<u64>());
            let (Ok(a), Ok(b)) = (a, b) else { bail!("--{flag}: {t:?} is not a range A..B of integers") };
            if b < a || b - a >= 100_000 {
                bail!("--{flag}: {t:?} is empty or longer than 100000");
            }
            out.extend((a..=b).map(|v| v as f64));
            continue;
        }
        out.push(
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| format!("--{flag}: {t:?} is not a finite number"))?,
        );
    }
    Ok(out)
}

impl SweepArgs {
    /// The library settings these flags mean.
    pub fn settings(&self, kind: SweepKind) -> anyhow::Result<SweepSettings> {
        let mut s = SweepSettings { kind, init_relative: self.init_relative, ..Default::default() };
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
            // Absolute, so shards started elsewhere (a Slurm node, another directory) find it.
            Some(p) => {
                let abs = |p: &std::path::Path, flag: &str| {
                    std::path::absolute(p).with_context(|| format!("{flag} {}", p.display()))
                };
                let labels = self.labels.as_deref().map(|l| abs(l, "--labels")).transpose()?;
                DataSource::Loaded { path: abs(p, "--data")?, labels }
            }
            None => DataSource::Generated(GenSettings {
                kind: self.kind.unwrap_or(DataKind::Gaussian),
                ..Default::default()
            }),
        };
        let descent = [
            (&self.step_size, Variable::StepSize),
            (&self.steps, Variable::Steps),
            (&self.smoothness, Variable::Smoothness),
        ];
        push_axes(&mut s, &self.grid.lists(&descent))?;
        s.validate()?;
        Ok(s)
    }
}

impl PhaseArgs {
    /// The library settings these flags mean (the scenario parsed, its values not yet checked).
    pub fn settings(&self) -> anyhow::Result<SweepSettings> {
        let path = &self.scenario;
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let source = path.display().to_string();
        let scenario = validate::parse(&text, &source)?;
        let abs = std::path::absolute(path).with_context(|| format!("{}", path.display()))?;
        let base_dir = abs.parent().map(|p| p.to_path_buf());
        let mut s = SweepSettings {
            kind: SweepKind::Validate,
            scenario: Some(ScenarioBase { scenario, source, base_dir }),
            ..Default::default()
        };
        push_axes(&mut s, &self.grid.lists(&[]))?;
        s.validate()?;
        Ok(s)
    }
}

/// Run `marginflow sweep …`.
pub fn run(cmd: SweepCommand) -> anyhow::Result<ExitCode> {
    match cmd.command {
        SweepSub::Flow(a) => local(a.settings(SweepKind::Flow)?, a.data.as_deref(), a.labels.as_deref(), &a.local),
        SweepSub::Descent(a) => {
            local(a.settings(SweepKind::Descent)?, a.data.as_deref(), a.labels.as_deref(), &a.local)
        }
        SweepSub::Validate(a) => local(a.settings()?, None, None, &a.local),
        SweepSub::Run(a) => run_shard(a),
        SweepSub::Merge(a) => merge(a),
        SweepSub::Submit(a) => submit(a),
    }
}

fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            bail!("--threads: must be at least 1");
        }
        pool = pool.num_threads(t);
    }
    pool.build().context("starting the thread pool")
}

/// Check every grid point of a validate sweep (its values and its data) before any work, so bad
/// input exits 2 with the scenario's one-line error.
fn check_points(plan: &Plan) -> anyhow::Result<()> {
    let Some(base) = &plan.settings.scenario else { return Ok(()) };
    for r in &plan.runs {
        if let RunTask::Validate { scenario } = &r.task {
            validate::prepare_parsed(scenario.clone(), &base.source, base.base_dir.as_deref())?;
        }
    }
    Ok(())
}

/// The local sweep: plan, one shard of every run, merge.
fn local(
    settings: SweepSettings,
    data: Option<&std::path::Path>,
    labels: Option<&std::path::Path>,
    args: &LocalArgs,
) -> anyhow::Result<ExitCode> {
    let LocalArgs { threads, ref out, force, plan_only } = *args;
    let loaded: Option<Dataset> = match data {
        Some(p) => Some(load_training_data(p, labels)?),
        None => None,
    };
    let plan = Plan::new(&settings, loaded.as_ref().map(|d| d.d))?;
    check_points(&plan)?;
    // One sweep per folder: the same sweep again continues (its completed runs are kept);
    // another one needs --force.
    let data_hash = loaded.as_ref().map(|d| d.hash());
    let mut manifest = rundir::Manifest::new(
        rundir::Command::Sweep,
        rundir::identity(rundir::Command::Sweep, &(&settings, &data_hash)),
    );
    manifest.data_sha256 = data_hash.clone();
    rundir::prepare_out_dir(out, force, &manifest)?;
    if plan_only {
        plan.write(out)?;
        eprintln!("{} runs planned in {}", plan.runs.len(), out.join(PLAN_FILE).display());
        return Ok(ExitCode::SUCCESS);
    }
    // The same plan continues (completed runs are kept); another sweep's runs are discarded.
    if Plan::read(out).ok().as_ref() != Some(&plan) {
        let runs = out.join(RUNS_DIR);
        if runs.exists() {
            std::fs::remove_dir_all(&runs).with_context(|| format!("{}: cannot remove", runs.display()))?;
        }
        plan.write(out)?;
    }
    let pool = pool(threads)?;
    pool.install(|| shard::run_shard(out, &plan, Shard::ALL, loaded.as_ref(), &|e| super::common::describe(e)))?;
    let merged = merging::collect(out, &plan)?;
    if !merged.missing.is_empty() {
        bail!("{}: runs {:?} have no result", out.display(), merged.missing);
    }
    manifest.files = merging::write_outputs(out, &plan, &merged)?;
    manifest.save(out)?;
    eprintln!("{} runs ({} failed) written to {}", merged.results.len(), merged.failed.len(), out.display());
    for (i, e) in &merged.failed {
        eprintln!("run {i}: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_shard(a: RunArgs) -> anyhow::Result<ExitCode> {
    let shard = match (&a.shard, a.task_id, a.tasks) {
        (Some(s), _, _) => Shard::parse(s, "--shard")?,
        (None, Some(i), Some(n)) => Shard::new(i, n, "--task-id/--tasks")?,
        _ => Shard::ALL,
    };
    // Bad grid points are not checked here: each run records its own error for the merge.
    let plan = Plan::read(&a.dir)?;
    let threads = a.threads.or_else(|| std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse().ok()));
    let outcome =
        pool(threads)?.install(|| shard::run_shard(&a.dir, &plan, shard, None, &|e| super::common::describe(e)))?;
    eprintln!(
        "shard {}/{}: ran {} run(s) ({} failed), skipped {} completed",
        shard.index,
        shard.count,
        outcome.ran.len(),
        outcome.failed.len(),
        outcome.skipped.len()
    );
    for (i, e) in &outcome.failed {
        eprintln!("run {i}: {e}");
    }
    Ok(if outcome.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

fn merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::read(&a.dir)?;
    let merged = merging::collect(&a.dir, &plan)?;
    if !merged.missing.is_empty() {
        for i in &merged.missing {
            eprintln!("run {i}: missing");
        }
        for (i, e) in &merged.failed {
            eprintln!("run {i}: failed: {e}");
        }
        eprintln!(
            "{}: {} of {} runs missing, {} failed; nothing merged",
            a.dir.display(),
            merged.missing.len(),
            plan.runs.len(),
            merged.failed.len()
        );
        return Ok(ExitCode::from(3));
    }
    let files = merging::write_outputs(&a.dir, &plan, &merged)?;
    // The folder's manifest (written when the sweep was planned) lists what the merge wrote.
    if let Some(mut manifest) = rundir::Manifest::load(&a.dir)? {
        manifest.files = files;
        manifest.save(&a.dir)?;
    }
    for (i, e) in &merged.failed {
        eprintln!("run {i}: failed: {e}");
    }
    eprintln!("{} runs ({} failed) merged into {}", merged.results.len(), merged.failed.len(), a.dir.display());
    Ok(if merged.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

fn submit(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::read(&a.dir)?;
    let runs = plan.runs.len();
    let shards = a.shards.unwrap_or(runs.min(100));
    if shards == 0 || shards > runs.max(1) {
        bail!("--shards: must be between 1 and the number of runs ({runs})");
    }
    if a.max_parallel == Some(0) || a.cpus_per_task == 0 {
        bail!("--max-parallel and --cpus-per-task: must be at least 1");
    }
    let s = SubmitSettings {
        shards,
        partition: a.partition.clone(),
        time: a.time.clone(),
        mem: a.mem.clone(),
        max_parallel: a.max_parallel,
        cpus_per_task: a.cpus_per_task,
    };
    let dir = std::fs::canonicalize(&a.dir).with_context(|| format!("{}", a.dir.display()))?;
    let exe = std::env::current_exe().context("locating the marginflow binary")?;
    let sdir = dir.join("slurm");
    create_out_dir(&sdir)?;
    let array = sdir.join("array.sbatch");
    let merge = sdir.join("merge.sbatch");
    write_atomic(&array, slurm::array_script(&exe, &dir, &s).as_bytes())?;
    write_atomic(&merge, slurm::merge_script(&exe, &dir, &s).as_bytes())?;
    if a.dry_run {
        eprintln!("wrote {} and {}", array.display(), merge.display());
        return Ok(ExitCode::SUCCESS);
    }
    let sbatch = |args: &[&str]| -> anyhow::Result<u64> {
        let out = std::process::Command::new("sbatch")
            .arg("--parsable")
            .args(args)
            .current_dir(&dir)
            .output()
            .context("running sbatch (is Slurm installed and on PATH?)")?;
        if !out.status.success() {
            bail!("sbatch {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        slurm::parse_job_id(&text).with_context(|| format!("sbatch printed no job id: {text:?}"))
    };
    let array_id = sbatch(&[&array.display().to_string()])?;
    let merge_id = sbatch(&[&format!("--dependency=afterany:{array_id}"), &merge.display().to_string()])?;
    println!("array {array_id}");
    println!("merge {merge_id}");
    Ok(ExitCode::SUCCESS)
}
