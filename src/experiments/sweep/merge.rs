//! Merging a sweep: the run directories read in index order ([`collect`]) and rendered
//! ([`write_outputs`]): runs.csv (columns from the typed rows of `grid`), runs.jsonl,
//! trajectories, the plots, phase.csv for a validate sweep, sweep.json. The local sweep is
//! itself plan + one shard of all runs + merge, so a sharded sweep and a local one agree byte
//! for byte by construction (wall-clock fields, which differ between any two runs, aside).
//! Imports `grid`, `plan`, `shard` (file names) and `phase`.

use super::grid::{field_names, Columns, PointColumns, RunColumns, RunResult, SweepKind, SweepSettings, Variable};
use super::phase;
use super::plan::Plan;
use super::shard::{run_dir, RESULT_FILE, TRAJECTORY_FILE};
use crate::error::{Error, Result};
use crate::experiments::plot::{line_plot_svg, ChartLine};
use crate::io::fsutil::{create_dir, write_atomic};
use crate::metrics::to_json_value;
use std::path::Path;

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
    let with_rows = plots_use_trajectories(plan.runs.len());
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
            (Some(s @ serde_json::Value::Object(_)), _) => Ok(s.clone()),
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

/// Whether [`plots`] draws trajectories for a sweep of `runs` runs (then a merge loads them).
pub fn plots_use_trajectories(runs: usize) -> bool {
    runs <= 20
}

fn csv_field(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::Number(x)) => x.to_string(),
        Some(serde_json::Value::String(s)) => csv_string(s),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn csv_string(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
    } else {
        s.to_string()
    }
}

/// runs.csv: header `index,<axes…>,<columns…>`, one row per run in index order; the columns are
/// the fields of [`RunColumns`] (flow, descent) or [`PointColumns`] (validate), read from each
/// run's summary.
pub fn runs_csv(settings: &SweepSettings, results: &[RunResult]) -> Result<String> {
    match settings.kind {
        SweepKind::Validate => csv_of::<PointColumns>(settings, results),
        SweepKind::Flow | SweepKind::Descent => csv_of::<RunColumns>(settings, results),
    }
}

fn csv_of<C: Columns>(settings: &SweepSettings, results: &[RunResult]) -> Result<String> {
    let columns = field_names::<C>();
    let mut out = String::from("index");
    for a in &settings.axes {
        out.push(',');
        out.push_str(a.variable.name());
    }
    for c in columns {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    for r in results {
        let row = match &r.summary {
            Ok(s) => C::of_summary(s).map_err(|e| Error::BadData {
                path: format!("runs/{}/{RESULT_FILE}", r.index).into(),
                line: None,
                reason: format!("summary: {e}"),
            })?,
            Err(e) => C::failed(e),
        };
        let row = to_json_value(&row);
        out.push_str(&r.index.to_string());
        for (_, v) in &r.values {
            out.push(',');
            out.push_str(&format!("{v}"));
        }
        for c in columns {
            out.push(',');
            out.push_str(&csv_field(row.get(c)));
        }
        out.push('\n');
    }
    Ok(out)
}

/// runs.jsonl: one line per run ([`RunResult::json_line`]).
pub fn runs_jsonl(results: &[RunResult]) -> String {
    results.iter().map(RunResult::json_line).collect()
}

fn fmt_value(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Write a complete sweep's outputs into `dir`: runs.csv, runs.jsonl,
/// trajectories/run-<index>.jsonl (hard links to the run directories' files, copies where links
/// are impossible), the plots (and phase.csv for a validate sweep) and sweep.json.
/// Returns the files written, relative to `dir` (for the run folder's manifest).
pub fn write_outputs(dir: &Path, plan: &Plan, merged: &Merged) -> Result<Vec<String>> {
    let settings = &plan.settings;
    let mut files: Vec<String> = vec!["runs.csv".into(), "runs.jsonl".into()];
    let results = &merged.results;
    write_atomic(&dir.join("runs.csv"), runs_csv(settings, results)?.as_bytes())?;
    write_atomic(&dir.join("runs.jsonl"), runs_jsonl(results).as_bytes())?;
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
    for (name, bytes) in plots(settings, results)? {
        write_atomic(&dir.join(&name), bytes.as_bytes())?;
        files.push(name);
    }
    if settings.kind == SweepKind::Validate {
        let table = phase::table(results)?;
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

/// Legend label: the values of the axes with several values, except `skip`.
fn label_of(settings: &SweepSettings, values: &[(Variable, f64)], skip: Option<Variable>) -> String {
    let varied = |v: Variable| settings.axes.iter().any(|a| a.variable == v && a.values.len() > 1);
    let parts: Vec<String> = values
        .iter()
        .filter(|(v, _)| Some(*v) != skip && varied(*v))
        .map(|(v, x)| format!("{}={}", v.name(), fmt_value(*x)))
        .collect();
    if parts.is_empty() {
        "all runs".into()
    } else {
        parts.join(", ")
    }
}

fn wide(values: &[f64]) -> bool {
    let pos = values.iter().all(|v| *v > 0.0);
    let (lo, hi) = values.iter().fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
    pos && hi / lo >= 100.0
}

/// The sweep's plots as (file name, SVG): for every axis with several values,
/// `stable_rank_vs_<axis>.svg` (final stable rank, one line per combination of the other axes);
/// and, with at most 20 runs, `stable_rank_vs_step.svg` (descent) or `stable_rank_vs_s.svg`
/// (flow), one line per run.
/// A validate sweep has none of these (its plots are [`phase::plots`]).
pub fn plots(settings: &SweepSettings, results: &[RunResult]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if settings.kind == SweepKind::Validate {
        return Ok(out);
    }
    for (k, axis) in settings.axes.iter().enumerate() {
        if axis.values.len() < 2 {
            continue;
        }
        let mut groups: Vec<ChartLine> = Vec::new();
        for r in results {
            let Ok(s) = &r.summary else { continue };
            let Some(sr) = s.get("stable_rank").and_then(|v| v.as_f64()) else { continue };
            let label = label_of(settings, &r.values, Some(axis.variable));
            let x = r.values[k].1;
            match groups.iter_mut().find(|g| g.0 == label) {
                Some(g) => g.1.push((x, sr)),
                None => groups.push((label, vec![(x, sr)])),
            }
        }
        for g in groups.iter_mut() {
            g.1.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let name = axis.variable.name();
        let what = match settings.kind {
            SweepKind::Descent => "gradient descent",
            SweepKind::Flow | SweepKind::Validate => "gradient flow",
        };
        let x_label = if settings.init_relative && axis.variable == Variable::InitScale {
            "init_scale (times 1/√d)".to_string()
        } else {
            name.to_string()
        };
        let svg = line_plot_svg(
            &format!("final stable rank vs {name} ({what})"),
            &x_label,
            "stable rank ‖W‖F²/‖W‖2²",
            &groups,
            wide(&axis.values),
            false,
        )?;
        out.push((format!("stable_rank_vs_{name}.svg"), svg));
    }
    if plots_use_trajectories(results.len()) {
        let (xkey, file, xlabel) = match settings.kind {
            SweepKind::Descent => ("step", "stable_rank_vs_step.svg", "step"),
            SweepKind::Flow | SweepKind::Validate => ("s", "stable_rank_vs_s.svg", "normalized time s"),
        };
        // Descent: x = step + 1, so the initialization (step 0) sits at 1 on the log axis and the
        // one-step drop is the segment from 1 to 2.
        let shift = if settings.kind == SweepKind::Descent { 1.0 } else { 0.0 };
        let series: Vec<ChartLine> = results
            .iter()
            .map(|r| {
                let pts = r
                    .trajectory
                    .iter()
                    .filter_map(|row| Some((row.get(xkey)?.as_f64()? + shift, row.get("stable_rank")?.as_f64()?)))
                    .collect();
                (label_of(settings, &r.values, None), pts)
            })
            .collect();
        let svg = line_plot_svg(
            &format!("stable rank vs {xlabel}"),
            &match settings.kind {
                SweepKind::Descent => "step + 1 (log scale): 1 = initialization, 2 = after one step".to_string(),
                SweepKind::Flow | SweepKind::Validate => format!("{xlabel} (log scale)"),
            },
            "stable rank (log scale)",
            &series,
            true,
            true,
        )?;
        out.push((file.to_string(), svg));
    }
    Ok(out)
}
