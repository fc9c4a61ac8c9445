//! Sweeps beyond one process: a deterministic plan, idempotent shards, one merge.
//!
//! `DIR/plan.json` lists every run of a sweep (index, swept values, the complete settings it runs
//! with) in the local sweep's order. A shard `I/N` (0 ≤ I < N) owns the runs with
//! `index mod N = I` (round robin, so a grid ordered by cost spreads evenly) and writes each into
//! `DIR/runs/<index>/` — `result.json` (the run's line of `runs.jsonl`) and `trajectory.jsonl` —
//! by writing a temporary sibling directory and renaming it into place, so a run directory is
//! either absent or complete whatever kills the process. A shard skips runs that completed
//! (a `result.json` without an error) and reruns missing or failed ones, so resubmitting after a
//! lost node, a `scancel` or a `kill -9` redoes only what is missing.
//!
//! The merge reads the run directories in index order and renders exactly what a local sweep
//! renders; the local sweep is itself plan + one shard of all runs + merge, so the two agree
//! byte for byte by construction (wall-clock fields, which differ between any two runs, aside).
//! The scheduling itself is left to an existing engine (Slurm job arrays, see `slurm`).

use crate::descent::{self, DescentSettings};
use crate::error::{Error, Result};
use crate::experiments::phase;
use crate::experiments::sweep::{
    self, json_object, DataSource, Describe, RunResult, SweepKind, SweepSettings, Variable,
};
use crate::experiments::validate::{RowCollector, Scenario};
use crate::flow::{self, FlowSettings};
use crate::io::fsutil::{create_dir, write_atomic};
use crate::metrics::to_json_value;
use crate::model::data::{self, Dataset, GenSettings};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The plan's file name inside a sweep directory.
pub const PLAN_FILE: &str = "plan.json";
/// The folder of the run directories.
pub const RUNS_DIR: &str = "runs";
/// A run's result (its line of runs.jsonl).
pub const RESULT_FILE: &str = "result.json";
/// A run's trajectory rows.
pub const TRAJECTORY_FILE: &str = "trajectory.jsonl";
/// Format version of plan.json.
pub const PLAN_FORMAT: u32 = 1;

/// What one run executes, with every setting resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTask {
    /// A gradient flow on generated data (`gen`) or the sweep's data file.
    Flow {
        /// Flow settings.
        flow: FlowSettings,
        /// Data generation settings (none: the sweep's data file).
        gen: Option<GenSettings>,
    },
    /// A gradient-descent run.
    Descent {
        /// Descent settings.
        descent: DescentSettings,
        /// Data generation settings (none: the sweep's data file).
        gen: Option<GenSettings>,
    },
    /// The validate claims on one scenario.
    Validate {
        /// The scenario with the swept values applied.
        scenario: Scenario,
    },
}

/// One planned run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Index in the cartesian product (the last axis varies fastest).
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// What it runs.
    pub task: RunTask,
}

/// A sweep's plan: its settings and every run, in run-index order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version ([`PLAN_FORMAT`]).
    pub format: u32,
    /// The sweep's settings (as in sweep.json).
    pub settings: SweepSettings,
    /// The runs.
    pub runs: Vec<PlannedRun>,
}

/// Which share of a plan a process runs: the runs with `index mod count = index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based (Slurm's `SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)`).
    pub index: usize,
    /// Number of shards, at least 1.
    pub count: usize,
}

impl Shard {
    /// All runs in one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A checked shard (`flag` names the option in errors).
    pub fn new(index: usize, count: usize, flag: &str) -> Result<Shard> {
        if count == 0 {
            return Err(Error::setting(flag, "the number of shards must be at least 1"));
        }
        if index >= count {
            return Err(Error::setting(
                flag,
                format!("shard {index} of {count}: shards are numbered 0..{}", count - 1),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parse `I/N`.
    pub fn parse(text: &str, flag: &str) -> Result<Shard> {
        let bad = || Error::setting(flag, format!("expected I/N with 0 <= I < N, got {text:?}"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse::<usize>().map_err(|_| bad())?;
        let n = n.trim().parse::<usize>().map_err(|_| bad())?;
        Shard::new(i, n, flag)
    }

    /// Whether run `index` belongs to this shard.
    pub fn owns(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl Plan {
    /// The plan of `settings` (validated, every run's settings checked), for a loaded data set of
    /// dimension `file_d` when the data come from a file.
    pub fn new(settings: &SweepSettings, file_d: Option<usize>) -> Result<Plan> {
        settings.validate()?;
        let mut runs = Vec::with_capacity(settings.run_count());
        for index in 0..settings.run_count() {
            let spec = settings.run_spec(index, file_d);
            let task = match settings.kind {
                SweepKind::Flow => {
                    spec.flow.validate()?;
                    RunTask::Flow { flow: spec.flow, gen: spec.gen }
                }
                SweepKind::Descent => {
                    spec.descent.validate()?;
                    RunTask::Descent { descent: spec.descent, gen: spec.gen }
                }
                SweepKind::Validate => {
                    let base = settings.scenario.as_ref().expect("validated");
                    RunTask::Validate { scenario: phase::scenario_for(&base.scenario, &spec.values) }
                }
            };
            if let RunTask::Flow { gen: Some(g), .. } | RunTask::Descent { gen: Some(g), .. } = &task {
                g.validate()?;
            }
            runs.push(PlannedRun { index, values: spec.values, task });
        }
        Ok(Plan { format: PLAN_FORMAT, settings: settings.clone(), runs })
    }

    /// The plan as written to plan.json (deterministic: the same settings give the same bytes).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a plan serializes");
        v.push(b'\n');
        v
    }

    /// Read `DIR/plan.json`.
    pub fn read(dir: &Path) -> Result<Plan> {
        let path = dir.join(PLAN_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let plan: Plan = serde_json::from_slice(&bytes).map_err(|e| Error::BadData {
            path: path.clone(),
            line: Some(e.line()),
            reason: format!("not a sweep plan: {e}"),
        })?;
        if plan.format != PLAN_FORMAT {
            return Err(Error::BadData {
                path,
                line: None,
                reason: format!("plan format {} (this marginflow reads {PLAN_FORMAT})", plan.format),
            });
        }
        Ok(plan)
    }

    /// Write `DIR/plan.json` atomically (creating DIR).
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        write_atomic(&dir.join(PLAN_FILE), &self.to_json())
    }
}

/// The directory of run `index`.
pub fn run_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(RUNS_DIR).join(index.to_string())
}

/// Load the sweep's shared data set, if it has one.
pub fn load_shared_data(settings: &SweepSettings) -> Result<Option<Dataset>> {
    match (&settings.kind, &settings.data) {
        (SweepKind::Validate, _) | (_, DataSource::Generated(_)) => Ok(None),
        (_, DataSource::Loaded { path }) => {
            let d = Dataset::load(path)?;
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
    let go = || -> Result<(serde_json::Map<String, serde_json::Value>, Vec<serde_json::Value>)> {
        let generate =
            |gen: &Option<GenSettings>| -> Result<Option<Dataset>> { gen.as_ref().map(data::generate).transpose() };
        match &run.task {
            RunTask::Descent { descent: s, gen } => {
                let generated = generate(gen)?;
                let data = shared_or(&generated, loaded)?;
                let mut rows: Vec<descent::DescentRow> = Vec::new();
                let out = descent::run(data, s, false, &mut rows)?;
                Ok((json_object(&out.summary), rows.iter().map(to_json_value).collect()))
            }
            RunTask::Flow { flow: s, gen } => {
                let generated = generate(gen)?;
                let data = shared_or(&generated, loaded)?;
                let mut rows = RowCollector::default();
                let out = flow::run(data, s, None, false, &mut rows)?;
                Ok((json_object(&out.summary), rows.rows.iter().map(to_json_value).collect()))
            }
            RunTask::Validate { scenario } => phase::run_point(scenario, base),
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

/// A run's `result.json` line: `{"index", "values": {axis: value}, "summary"}` or `"error"`.
pub fn result_line(r: &RunResult) -> String {
    sweep::runs_jsonl(std::slice::from_ref(r))
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
    let written = write(TRAJECTORY_FILE, traj.as_bytes()).and_then(|_| write(RESULT_FILE, result_line(r).as_bytes()));
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
    let results: Vec<Result<(usize, Option<String>)>> = todo
        .par_iter()
        .map(|r| {
            let res = run_task(r, data, base.as_deref(), describe);
            write_run(dir, &res)?;
            Ok((r.index, res.summary.err()))
        })
        .collect();
    for r in results {
        let (index, err) = r?;
        out.ran.push(index);
        if let Some(e) = err {
            out.failed.push((index, e));
        }
    }
    Ok(out)
}

/// The merged runs of a plan.
#[derive(Clone, Debug, Default)]
pub struct Merged {
    /// Every run found, in index order (trajectories loaded only when the plots use them).
    pub results: Vec<RunResult>,
    /// Runs without a result.
    pub missing: Vec<usize>,
    /// Runs whose result is an error, with it.
    pub failed: Vec<(usize, String)>,
}

/// Read the run directories of `plan` in `dir`.
pub fn collect(dir: &Path, plan: &Plan) -> Result<Merged> {
    let with_rows = sweep::plots_use_trajectories(plan.runs.len());
    let mut m = Merged::default();
    for run in &plan.runs {
        let rd = run_dir(dir, run.index);
        let path = rd.join(RESULT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                m.missing.push(run.index);
                continue;
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |reason: String| Error::BadData { path: path.clone(), line: None, reason };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if v.get("index").and_then(|i| i.as_u64()) != Some(run.index as u64) {
            return Err(bad(format!("is not the result of run {}", run.index)));
        }
        let summary = match (v.get("summary"), v.get("error")) {
            (Some(serde_json::Value::Object(s)), _) => Ok(s.clone()),
            (_, Some(serde_json::Value::String(e))) => {
                m.failed.push((run.index, e.clone()));
                Err(e.clone())
            }
            _ => return Err(bad("holds neither a summary nor an error".into())),
        };
        let mut trajectory = Vec::new();
        if with_rows {
            let tp = rd.join(TRAJECTORY_FILE);
            let text = std::fs::read_to_string(&tp).map_err(|e| Error::io(&tp, e))?;
            for (k, line) in text.lines().enumerate() {
                trajectory.push(serde_json::from_str(line).map_err(|e| Error::BadData {
                    path: tp.clone(),
                    line: Some(k + 1),
                    reason: e.to_string(),
                })?);
            }
        }
        m.results.push(RunResult { index: run.index, values: run.values.clone(), summary, trajectory });
    }
    Ok(m)
}

/// Write a complete sweep's outputs into `dir`: runs.csv, runs.jsonl,
/// trajectories/run-<index>.jsonl (hard links to the run directories' files, copies where links
/// are impossible), the plots (and phase.csv for a validate sweep) and sweep.json.
/// Returns the files written, relative to `dir` (for the run folder's manifest).
pub fn write_outputs(dir: &Path, plan: &Plan, merged: &Merged) -> Result<Vec<String>> {
    let settings = &plan.settings;
    let mut files: Vec<String> = vec!["runs.csv".into(), "runs.jsonl".into()];
    let results = &merged.results;
    write_atomic(&dir.join("runs.csv"), sweep::runs_csv(settings, results).as_bytes())?;
    write_atomic(&dir.join("runs.jsonl"), sweep::runs_jsonl(results).as_bytes())?;
    let tdir = dir.join("trajectories");
    create_dir(&tdir)?;
    for r in results {
        let src = run_dir(dir, r.index).join(TRAJECTORY_FILE);
        let dest = tdir.join(format!("run-{}.jsonl", r.index));
        files.push(format!("trajectories/run-{}.jsonl", r.index));
        if same_file(&src, &dest) {
            continue;
        }
        let tmp = tdir.join(format!(".run-{}.jsonl.tmp{}", r.index, std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(&src, &tmp).is_err() {
            std::fs::copy(&src, &tmp).map_err(|e| Error::io(&src, e))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    }
    for (name, bytes) in sweep::plots(settings, results)? {
        write_atomic(&dir.join(&name), bytes.as_bytes())?;
        files.push(name);
    }
    if settings.kind == SweepKind::Validate {
        let table = phase::table(results);
        write_atomic(&dir.join("phase.csv"), phase::table_csv(settings, &table).as_bytes())?;
        files.push("phase.csv".into());
        for (name, svg) in phase::plots(settings, &table)? {
            write_atomic(&dir.join(&name), svg.as_bytes())?;
            files.push(name);
        }
    }
    // What the runs used: the settings of the kind not run are null, swept settings hold their values.
    write_atomic(&dir.join("sweep.json"), &serde_json::to_vec_pretty(&settings.recorded()).expect("serializes"))?;
    files.push("sweep.json".into());
    Ok(files)
}

/// Whether two paths name the same file (renaming one link onto another of the same file is a
/// no-op that would leave the temporary name behind).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
