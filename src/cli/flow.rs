//! `marginflow flow`: integrate gradient flow in normalized time to a horizon, writing the
//! trajectory, the summary, checkpoints, and optionally the final weights.

use super::common::{check_model_files, load_training_data, print_json, ModelArgs};
use anyhow::{bail, Context};
use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::{self, FlowHorizon, FlowObserver, FlowSettings, FlowStatus, TrajectoryRow};
use marginflow::io::fsutil::write_atomic;
use marginflow::io::npy::encode_npy;
use marginflow::io::rundir::{self, Manifest};
use marginflow::metrics::to_json_value;
use marginflow::model::data::Dataset;
use marginflow_solvers::tableau::Method;
use marginflow_solvers::Real;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags of `marginflow flow`. `--data` and `--width` are required unless `--resume` is given;
/// `--resume DIR --data PATH` points a run at its moved data (checked against the run's hash).
#[derive(clap::Args, Debug)]
#[command(mut_arg("data", |a| a.required(false).required_unless_present("resume")))]
#[command(mut_arg("width", |a| a.required(false).required_unless_present("resume")))]
pub struct FlowArgs {
    /// Resume the run whose output directory (with its checkpoint) is DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "width")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Stop at physical time t = T [default horizon: t = 10^100].
    #[arg(long, group = "horizon", allow_negative_numbers = true)]
    pub until_time: Option<f64>,
    /// Stop at t = 10^X.
    #[arg(long, group = "horizon", allow_negative_numbers = true)]
    pub until_log10_time: Option<f64>,
    /// Stop at normalized time s = S.
    #[arg(long, group = "horizon", allow_negative_numbers = true)]
    pub until_s: Option<f64>,
    /// Relative tolerance [default: 1e-10; on --resume: the run's].
    #[arg(long, allow_negative_numbers = true)]
    pub rtol: Option<f64>,
    /// Absolute tolerance [default: 1e-12; on --resume: the run's].
    #[arg(long, allow_negative_numbers = true)]
    pub atol: Option<f64>,
    /// Integration method: auto, dopri5, verner98, seulex [default: auto: dopri5 (verner98 below
    /// rtol 1e-14), then seulex once the flow is stiff].
    #[arg(long)]
    pub method: Option<Method>,
    /// Engine: dual (the n cumulated loss weights, O(n²) per right-hand side) or span (the
    /// network state B, O(m n²)) [default: dual; on --resume: the run's].
    #[arg(long, value_enum)]
    pub engine: Option<marginflow::flow::Engine>,
    /// Locate kink events: on or off [default: on].
    #[arg(long, value_parser = ["on", "off"])]
    pub events: Option<String>,
    /// Working precision in bits: 53 = f64, 106 = double-double, 212 = quad-double; other values
    /// (≥ 64) need the `mpfr` feature [default: 53].
    #[arg(long)]
    pub precision: Option<u32>,
    /// Trajectory rows per decade of s (late in a run s grows like ln t, so t = 10^100 is about
    /// 2.4 decades of s past s = 1; at most 2000 rows) [default: 20; on --resume: the run's].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub rows_per_decade: Option<u32>,
    /// Singular values of W in each trajectory row, largest first (the summary lists 8)
    /// [default: 8; on --resume: the run's].
    #[arg(long, value_name = "K", conflicts_with = "resume")]
    pub singular_values: Option<usize>,
    /// Step limit (accepted + rejected); a run that hits it exits 3 [default: none].
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Output directory, one run per folder: trajectory.jsonl, summary.json, checkpoint,
    /// data_path (the data file, for --resume), run.json (what the run wrote), W.npy.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the final W (m×d float64) to DIR/W.npy.
    #[arg(long)]
    pub save_weights: bool,
    /// Seconds between checkpoints.
    #[arg(long, default_value_t = 60.0)]
    pub checkpoint_every: f64,
    /// Print the summary JSON to stdout (and nothing else there).
    #[arg(long)]
    pub json: bool,
    /// Replace another run in --out (removes only the files marginflow wrote there).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Seconds between plain progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = super::progress::PLAIN_EVERY, hide = true)]
    pub progress_every: f64,
}

struct Files {
    dir: Option<PathBuf>,
    trajectory: Option<std::io::BufWriter<std::fs::File>>,
    every: Duration,
    last: Instant,
    stop: Arc<AtomicBool>,
    checkpoint_on_stop: bool,
    progress: super::progress::Progress,
    started: Instant,
    steps_before: Option<u64>,
}

impl FlowObserver for Files {
    fn row(&mut self, row: &TrajectoryRow) -> marginflow::Result<()> {
        if let (Some(f), Some(dir)) = (&mut self.trajectory, &self.dir) {
            let path = dir.join("trajectory.jsonl");
            let line = to_json_value(row).to_string();
            writeln!(f, "{line}").and_then(|_| f.flush()).map_err(|e| marginflow::Error::io(path, e))?;
        }
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        if self.dir.is_none() {
            return false;
        }
        let stopping = self.stop.load(Ordering::Relaxed) && self.checkpoint_on_stop;
        stopping || self.last.elapsed() >= self.every
    }
    fn checkpoint(&mut self, cp: &Checkpoint) -> marginflow::Result<()> {
        self.last = Instant::now();
        if let Some(dir) = &self.dir {
            if let Some(f) = &mut self.trajectory {
                f.flush().map_err(|e| marginflow::Error::io(dir.join("trajectory.jsonl"), e))?;
                f.get_ref().sync_data().map_err(|e| marginflow::Error::io(dir.join("trajectory.jsonl"), e))?;
            }
            write_atomic(&dir.join("checkpoint"), &cp.to_bytes())?;
            if self.stop.load(Ordering::Relaxed) {
                self.checkpoint_on_stop = false;
            }
        }
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed) && !self.checkpoint_on_stop
    }
    fn progress(&mut self, at: &flow::FlowProgress) {
        if matches!(self.progress, super::progress::Progress::Off) {
            return;
        }
        let before = *self.steps_before.get_or_insert(at.accepted + at.rejected);
        let line = super::progress::flow_line(at, before, self.started);
        self.progress.message(&line, false);
    }
}

fn horizon(args: &FlowArgs) -> Option<FlowHorizon> {
    match (args.until_time, args.until_log10_time, args.until_s) {
        (Some(t), _, _) => Some(FlowHorizon::Time(t)),
        (_, Some(x), _) => Some(FlowHorizon::Log10Time(x)),
        (_, _, Some(s)) => Some(FlowHorizon::S(s)),
        _ => None,
    }
}

/// Keep the first `rows` lines of a trajectory file (the rows a checkpoint has seen).
fn truncate_rows(path: &Path, rows: usize) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: String = text.lines().take(rows).map(|l| format!("{l}\n")).collect();
    write_atomic(path, kept.as_bytes())?;
    Ok(())
}

/// The settings, data, checkpoint (on `--resume`) and output folder of a run, all checked.
type Prepared = (FlowSettings, Dataset, Option<Checkpoint>, Option<PathBuf>);

/// Read and check everything a run needs before anything is written.
fn prepare(args: &FlowArgs) -> anyhow::Result<Prepared> {
    if args.checkpoint_every.is_nan() || args.checkpoint_every <= 0.0 {
        bail!("--checkpoint-every: must be > 0 seconds, got {}", args.checkpoint_every);
    }
    let (settings, data, resume, out) = if let Some(dir) = &args.resume {
        let cp_path = dir.join("checkpoint");
        let cp = Checkpoint::load(&cp_path)?;
        let mut settings = cp.settings.clone();
        if let Some(h) = horizon(args) {
            settings.horizon = h;
        }
        if args.rtol.is_some()
            || args.atol.is_some()
            || args.method.is_some()
            || args.precision.is_some()
            || args.events.is_some()
            || args.engine.is_some()
        {
            bail!("--resume: tolerances, method, precision, events and engine are fixed by the checkpoint");
        }
        settings.max_steps = args.max_steps;
        // Without a new horizon a finished run has nothing to do: say so rather than exit 0.
        refuse_past_horizon(dir, &cp, settings.horizon, horizon(args).is_some())?;
        let data = match &args.model.data {
            // Moved data: accepted when it is the run's (the checkpoint's hash of it).
            Some(_) => {
                let data = args.model.load()?;
                if data.hash() != cp.data_hash {
                    bail!(
                        "--data {}: its data hash {} differs from the run's {} in {}: not the data this run was made on",
                        args.model.data().display(),
                        &data.hash()[..12],
                        &cp.data_hash[..cp.data_hash.len().min(12)],
                        dir.display()
                    );
                }
                data
            }
            None => {
                let (data_path, labels) = cp_data_path(dir)?;
                load_training_data(&data_path, labels.as_deref()).with_context(|| {
                    format!("--resume {}: the run's data (moved? give its new path with --data)", dir.display())
                })?
            }
        };
        (settings, data, Some(cp), Some(dir.clone()))
    } else {
        let model = &args.model;
        let mut settings = FlowSettings { model: model.settings(), ..Default::default() };
        if let Some(h) = horizon(args) {
            settings.horizon = h;
        }
        if let Some(r) = args.rtol {
            settings.rtol = r;
        }
        if let Some(a) = args.atol {
            settings.atol = a;
        }
        if let Some(m) = args.method {
            settings.method = m;
        }
        if let Some(e) = &args.events {
            settings.events = e == "on";
        }
        if let Some(e) = args.engine {
            settings.engine = e;
        }
        if let Some(p) = args.precision {
            settings.precision = p;
        }
        if let Some(r) = args.rows_per_decade {
            settings.rows_per_decade = r;
        }
        if let Some(k) = args.singular_values {
            settings.singular_values = k;
        }
        settings.max_steps = args.max_steps;
        settings.validate()?;
        let data = model.load()?;
        check_model_files(&settings.model, data.d)?;
        (settings, data, None, args.out.clone())
    };
    settings.validate()?;
    if args.save_weights && out.is_none() {
        bail!("--save-weights needs --out DIR");
    }
    Ok((settings, data, resume, out))
}

/// Run `marginflow flow`.
pub fn run(args: FlowArgs) -> anyhow::Result<ExitCode> {
    let (settings, data, resume, out) = prepare(&args)?;
    // The run folder's manifest: a new run claims the folder (one run per folder, see
    // io::rundir); a resumed run keeps the output settings it recorded.
    let identity = rundir::identity(rundir::Command::Flow, &(&settings, data.hash()));
    let mut manifest = match (&resume, &out) {
        (Some(_), Some(dir)) => {
            let old = Manifest::load(dir)?;
            // Before manifests existed, a W.npy in the folder meant --save-weights.
            let saved = old.as_ref().map_or(dir.join(rundir::WEIGHTS).exists(), |m| m.save_weights);
            let mut m = old.unwrap_or_else(|| Manifest::new(rundir::Command::Flow, identity.clone()));
            m.identity = identity;
            m.save_weights = saved || args.save_weights;
            m
        }
        _ => {
            let mut m = Manifest::new(rundir::Command::Flow, identity);
            m.save_weights = args.save_weights;
            m
        }
    };
    manifest.data_sha256 = Some(data.hash());

    let stop = super::install_signal_handlers()?;
    let trajectory = match &out {
        Some(dir) => Some(open_run_dir(dir, &args, resume.as_ref(), &manifest)?),
        None => None,
    };
    let mut files = Files {
        dir: out.clone(),
        trajectory,
        every: Duration::from_secs_f64(args.checkpoint_every),
        last: Instant::now(),
        stop: stop.clone(),
        checkpoint_on_stop: true,
        progress: super::progress::Progress::new("flow", args.quiet, args.progress_every),
        started: Instant::now(),
        steps_before: None,
    };
    let want_weights = manifest.save_weights && out.is_some();
    let outcome = flow::run(&data, &settings, resume, want_weights, &mut files);
    files.progress.finish();
    let mut outcome = outcome?;
    outcome.summary.peak_rss_bytes = marginflow_solvers::memory::peak_rss_bytes();
    let verdict = flow::verdict::verdict(&outcome.summary);
    let summary_json = flow::verdict::summary_json(&outcome.summary);
    if let Some(dir) = &out {
        write_results(dir, &outcome, &summary_json, [settings.model.width, data.d], &mut manifest)?;
    }
    let f = &outcome.summary;
    let status = f.status;
    if args.json {
        print_json(&summary_json)?;
    } else {
        let j = |v: Option<f64>| serde_json::json!(v);
        eprintln!(
            "status {} | s {} | log10 t {} | log10 L {} | normalized margin {} | stable rank {}",
            serde_json::json!(f.status),
            j(f.time.s),
            j(f.time.log10_time),
            j(f.state.log10_loss),
            j(f.state.normalized_margin),
            j(f.state.stable_rank)
        );
    }
    // The last line: which point the flow reached.
    eprintln!("{}", verdict.text);
    if status != FlowStatus::Reached {
        let detail = f.status_detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        eprintln!("marginflow: the run ended before its horizon: {status}{detail} (exit status 3)");
        return Ok(ExitCode::from(super::EXIT_EARLY));
    }
    Ok(ExitCode::SUCCESS)
}

/// Claim (or, on resume, reopen) the run folder: the manifest, `data_path`, and the trajectory
/// file cut back to the checkpoint's rows, opened for appending.
fn open_run_dir(
    dir: &Path,
    args: &FlowArgs,
    resume: Option<&Checkpoint>,
    manifest: &Manifest,
) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    if resume.is_some() {
        manifest.save(dir)?;
        // Moved data given with --data: the next --resume finds it there.
        if args.model.data.is_some() {
            write_data_path(dir, args.model.data(), args.model.labels.as_deref())?;
        }
    } else {
        rundir::prepare_out_dir(dir, args.force, manifest)?;
    }
    let tpath = dir.join("trajectory.jsonl");
    if let Some(cp) = resume {
        truncate_rows(&tpath, cp.rows_written)?;
    } else {
        write_data_path(dir, args.model.data(), args.model.labels.as_deref())?;
        write_atomic(&tpath, b"")?;
    }
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&tpath)
        .with_context(|| format!("{}: cannot open for appending", tpath.display()))?;
    Ok(std::io::BufWriter::new(f))
}

/// Write summary.json, W.npy (when computed, shape `[m, d]`) and the manifest listing them.
fn write_results(
    dir: &Path,
    outcome: &flow::FlowOutcome,
    summary: &serde_json::Value,
    shape: [usize; 2],
    manifest: &mut Manifest,
) -> anyhow::Result<()> {
    write_atomic(&dir.join(rundir::SUMMARY), &serde_json::to_vec_pretty(summary)?)?;
    if let Some(w) = &outcome.weights {
        let path = dir.join(rundir::WEIGHTS);
        let bytes = encode_npy(&path, &shape, w)?;
        write_atomic(&path, &bytes)?;
        manifest.weights_sha256 = Some(rundir::sha256_hex(&bytes));
    }
    manifest.files = [rundir::SUMMARY, rundir::TRAJECTORY, rundir::CHECKPOINT, rundir::DATA_PATH]
        .iter()
        .chain(manifest.weights_sha256.as_ref().map(|_| &rundir::WEIGHTS))
        .map(|s| s.to_string())
        .collect();
    manifest.save(dir)?;
    Ok(())
}

/// Refuse to resume toward a horizon the run has already reached (nothing would be computed, and
/// the recorded settings would name a horizon that was not used). The position is read from the
/// checkpoint (f64 runs) or, at other precisions, from the summary.
fn refuse_past_horizon(dir: &Path, cp: &Checkpoint, h: FlowHorizon, given: bool) -> anyhow::Result<()> {
    let at = match (f64::from_exact(&cp.s), cp.y.last().and_then(|u| f64::from_exact(u))) {
        (Some(s), Some(u)) if cp.precision == 53 => Some((s, u, marginflow::metrics::log10_time(&u))),
        _ => std::fs::read(dir.join(rundir::SUMMARY)).ok().and_then(|b| {
            let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
            let (s, lt) = (v["s"].as_f64()?, v["log10_time"].as_f64()?);
            Some((s, (lt * std::f64::consts::LN_10).exp().ln_1p(), lt))
        }),
    };
    let Some((s, u, log10_t)) = at else { return Ok(()) };
    let (flag, past) = match h {
        FlowHorizon::S(x) => (format!("--until-s {x}"), s >= x),
        FlowHorizon::Time(t) => (format!("--until-time {t}"), u >= t.ln_1p()),
        FlowHorizon::Log10Time(x) => (format!("--until-log10-time {x}"), log10_t >= x),
    };
    if past && !given {
        bail!(
            "--resume {}: the run already reached its horizon ({flag}; s = {s:.6}, log10 t = {log10_t:.6}): \
             nothing to do; give a later horizon (--until-log10-time, --until-time or --until-s) to extend it",
            dir.display()
        );
    }
    if past {
        bail!(
            "{flag}: the run in {} is already at s = {s:.6}, log10 t = {log10_t:.6}, at or past this horizon; \
             nothing was changed (resume to a later horizon)",
            dir.display()
        );
    }
    Ok(())
}

/// The data path (and labels path, for .npy points) a run recorded in DIR/data_path.
fn cp_data_path(dir: &Path) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let p = dir.join(rundir::DATA_PATH);
    let s = std::fs::read_to_string(&p).with_context(|| format!("--resume {}: no data_path file", dir.display()))?;
    let (data, labels) = rundir::parse_data_path(&s);
    Ok((data, labels))
}

/// Record the data (and labels) paths, absolute, in DIR/data_path.
fn write_data_path(dir: &Path, data: &Path, labels: Option<&Path>) -> anyhow::Result<()> {
    write_atomic(&dir.join(rundir::DATA_PATH), rundir::data_path_text(data, labels).as_bytes())?;
    Ok(())
}
