//! Running a share of a plan: each run executed ([`run_task`]; a validate grid point by
//! [`run_point`]) and written into `DIR/runs/<index>/` — `result.json` (the run's line of
//! `runs.jsonl`) and `trajectory.jsonl` — through a temporary sibling directory renamed into
//! place, so a run directory is either absent or complete whatever kills the process. A shard
//! skips runs that completed (a `result.json` without an error) and reruns missing or failed
//! ones, so resubmitting after a lost node, a `scancel` or a `kill -9` redoes only what is
//! missing. The scheduling itself is left to an existing engine (Slurm job arrays, see
//! `experiments::slurm`). Imports `grid` and `plan`.

use super::grid::{holds, Claims, DataSource, Describe, PointSummary, RunResult, SweepKind, SweepSettings};
use super::plan::{Plan, PlannedRun, RunTask, Shard};
use crate::descent;
use crate::error::{Error, Result};
use crate::experiments::validate::{self, RowCollector, Scenario};
use crate::flow;
use crate::io::fsutil::create_dir;
use crate::metrics::{self, to_json_value, StateNumbers};
use crate::model::data::{self, Dataset, GenSettings};
use crate::model::network::Network;
use marginflow_solvers::interrupt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of the run directories.
pub const RUNS_DIR: &str = "runs";
/// A run's result (its line of runs.jsonl).
pub const RESULT_FILE: &str = "result.json";
/// A run's trajectory rows.
pub const TRAJECTORY_FILE: &str = "trajectory.jsonl";

/// The directory of run `index`.
pub fn run_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(RUNS_DIR).join(index.to_string())
}

/// Load the sweep's shared data set, if it has one.
pub fn load_shared_data(settings: &SweepSettings) -> Result<Option<Dataset>> {
    match (&settings.kind, &settings.data) {
        (SweepKind::Validate, _) | (_, DataSource::Generated(_)) => Ok(None),
        (_, DataSource::Loaded { path, labels }) => {
            let d = Dataset::load_with_labels(path, labels.as_deref())?;
            d.validate_for_training(path)?;
            Ok(Some(d))
        }
    }
}

/// Execute one run (no files): its summary or error, and its trajectory rows. `loaded` is the
/// sweep's data set when runs do not generate their own; `base` the directory a validate
/// scenario's relative paths are resolved against; `describe` writes a failed run's error.
pub fn run_task(
    run: &PlannedRun,
    loaded: std::result::Result<Option<&Dataset>, &str>,
    base: Option<&Path>,
    describe: &Describe,
) -> RunResult {
    let go = || -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
        let generate =
            |gen: &Option<GenSettings>| -> Result<Option<Dataset>> { gen.as_ref().map(data::generate).transpose() };
        match &run.task {
            RunTask::Descent { descent: s, gen } => {
                let generated = generate(gen)?;
                let data = shared_or(&generated, loaded)?;
                let mut rows: Vec<descent::DescentRow> = Vec::new();
                let out = descent::run(data, s, false, &mut rows)?;
                Ok((to_json_value(&out.summary), rows.iter().map(to_json_value).collect()))
            }
            RunTask::Flow { flow: s, gen } => {
                let generated = generate(gen)?;
                let data = shared_or(&generated, loaded)?;
                let mut rows = RowCollector::default();
                let out = flow::run(data, s, None, false, &mut rows)?;
                // The summary with its verdict, and the stable rank of W(0) (as descent reports it).
                let mut summary = flow::verdict::summary_json(&out.summary);
                let net = Network::<f64>::new(data, &s.model, 53)?;
                let initial = metrics::measure(&net, &vec![0.0; net.m * net.n])?;
                summary["initial_stable_rank"] = serde_json::json!(StateNumbers::of(&initial).stable_rank);
                Ok((summary, rows.rows.iter().map(to_json_value).collect()))
            }
            RunTask::Validate { scenario } => {
                let (summary, rows) = run_point(scenario, base)?;
                Ok((to_json_value(&summary), rows))
            }
        }
    };
    let (summary, trajectory) = match go() {
        Ok((s, t)) => (Ok(s), t),
        Err(e) => (Err(describe(&e)), Vec::new()),
    };
    RunResult { index: run.index, values: run.values.clone(), summary, trajectory }
}

fn shared_or<'a>(
    generated: &'a Option<Dataset>,
    loaded: std::result::Result<Option<&'a Dataset>, &str>,
) -> Result<&'a Dataset> {
    match (generated, loaded) {
        (Some(d), _) => Ok(d),
        (None, Ok(Some(d))) => Ok(d),
        (None, Ok(None)) => Err(Error::setting("data", "no data")),
        (None, Err(e)) => Err(Error::setting("data", e.to_string())),
    }
}

/// Whether run `index` has completed without error (its result exists and holds a summary).
pub fn is_complete(dir: &Path, index: usize) -> bool {
    match std::fs::read(run_dir(dir, index).join(RESULT_FILE)) {
        Ok(b) => serde_json::from_slice::<serde_json::Value>(&b).is_ok_and(|v| v.get("summary").is_some()),
        Err(_) => false,
    }
}

/// Write run `r` into `DIR/runs/<index>/` atomically: files written and synced in a temporary
/// sibling directory, which is then renamed into place (a previous, failed attempt is replaced).
pub fn write_run(dir: &Path, r: &RunResult) -> Result<()> {
    let runs = dir.join(RUNS_DIR);
    create_dir(&runs)?;
    let dest = run_dir(dir, r.index);
    let tmp = runs.join(format!(".{}.tmp{}", r.index, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    create_dir(&tmp)?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.join(name);
        let mut f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
        f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&p, e))
    };
    let traj: String =
        r.trajectory.iter().map(|row| format!("{}\n", serde_json::to_string(row).expect("serializes"))).collect();
    let written = write(TRAJECTORY_FILE, traj.as_bytes()).and_then(|_| write(RESULT_FILE, r.json_line().as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dest.exists() {
        let old = runs.join(format!(".{}.old{}", r.index, std::process::id()));
        std::fs::rename(&dest, &old).map_err(|e| Error::io(&dest, e))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    Ok(())
}

/// What a shard did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardOutcome {
    /// Runs executed now, in index order.
    pub ran: Vec<usize>,
    /// Runs skipped because they had completed before.
    pub skipped: Vec<usize>,
    /// Runs executed now that ended in an error, with it.
    pub failed: Vec<(usize, String)>,
}

/// Run the share `shard` of the plan in `dir` on the current rayon pool, skipping complete runs.
/// Each run is written as soon as it ends. A shared data file that cannot be read makes every
/// run of the shard fail with that error (recorded in its run directory), so the merge names it.
/// `shared` is the sweep's data set when the caller has already loaded it (otherwise it is read
/// from the plan's path when a run needs it).
/// `describe` writes a failed run's error.
pub fn run_shard(
    dir: &Path,
    plan: &Plan,
    shard: Shard,
    shared: Option<&Dataset>,
    describe: &Describe,
) -> Result<ShardOutcome> {
    create_dir(&dir.join(RUNS_DIR))?;
    let mut todo = Vec::new();
    let mut out = ShardOutcome::default();
    for r in plan.runs.iter().filter(|r| shard.owns(r.index)) {
        if is_complete(dir, r.index) {
            out.skipped.push(r.index);
        } else {
            todo.push(r);
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let own = match shared {
        Some(_) => Ok(None),
        None => load_shared_data(&plan.settings).map_err(|e| e.to_string()),
    };
    let data: std::result::Result<Option<&Dataset>, &str> = match (&own, shared) {
        (Ok(Some(d)), _) => Ok(Some(d)),
        (Ok(None), s) => Ok(s),
        (Err(e), _) => Err(e.as_str()),
    };
    let base = plan.settings.scenario.as_ref().and_then(|b| b.base_dir.clone());
    // A stop request: runs not started are left, a run it cut short is not written (so a
    // rerun of the shard redoes it), and the shard ends with `Interrupted`.
    let results: Vec<Result<Option<(usize, Option<String>)>>> = todo
        .par_iter()
        .map(|r| {
            if interrupt::requested() {
                return Ok(None);
            }
            let res = run_task(r, data, base.as_deref(), describe);
            if interrupt::requested() {
                return Ok(None);
            }
            write_run(dir, &res)?;
            Ok(Some((r.index, res.summary.err())))
        })
        .collect();
    interrupt::check()?;
    for r in results {
        let Some((index, err)) = r? else { continue };
        out.ran.push(index);
        if let Some(e) = err {
            out.failed.push((index, e));
        }
    }
    Ok(out)
}

/// Run every combination in parallel on the current rayon pool, in memory; results in index
/// order. A run that fails keeps its error as `describe` writes it. `loaded` is the shared data
/// set when the source is [`DataSource::Loaded`]. The runs are those of [`Plan::new`] executed by
/// [`run_task`], as in a sharded sweep.
pub fn run(settings: &SweepSettings, loaded: Option<&Dataset>, describe: &Describe) -> Result<Vec<RunResult>> {
    if matches!(settings.data, DataSource::Loaded { .. }) && settings.kind != SweepKind::Validate && loaded.is_none() {
        return Err(Error::setting("data", "the sweep's data set was not loaded"));
    }
    let plan = Plan::new(settings, loaded.map(|d| d.d))?;
    let base = settings.scenario.as_ref().and_then(|b| b.base_dir.clone());
    Ok(plan.runs.par_iter().map(|r| run_task(r, Ok(loaded), base.as_deref(), describe)).collect())
}

/// Run the validate claims on one grid point: its summary and the main flow's trajectory rows.
pub fn run_point(scenario: &Scenario, base: Option<&Path>) -> Result<(PointSummary, Vec<serde_json::Value>)> {
    let source = format!("scenario {:?}", scenario.name);
    let prepared = validate::prepare_parsed(scenario.clone(), &source, base)?;
    let report = validate::run_scenario(&prepared)?;
    let g = &report.geometry;
    let condition = matches!(g.condition, crate::model::data::Verdict::Holds);
    // A claim of a theorem the scenario does not check reads as not applicable.
    let claim = |k| report.claims.iter().find(|c| c.claim == k);
    let summary = PointSummary {
        status: report.flow_status.as_str().to_string(),
        ratio: g.ratio,
        paper_ratio: g.paper_ratio,
        holds: Claims::from_fn(|k| claim(k).and_then(|c| holds(c, condition))),
        verdicts: Claims::from_fn(|k| claim(k).map_or(validate::Verdict::NotApplicable, |c| c.verdict)),
        reference_certified: report.reference_certified,
        final_s: report.final_s,
        wall_seconds: report.wall_seconds,
    };
    Ok((summary, report.trajectory.iter().map(to_json_value).collect()))
}
