//! Sweeps: the cartesian product of listed settings, run in parallel, with a table and plots.
//!
//! Every run is a pure function of its settings (its own data seed, its own initialization seed; no
//! shared random stream), and the results are kept in run-index order, so a sweep's output is the
//! same whatever the number of threads. Run index r enumerates the product with the *last* axis
//! varying fastest.

use crate::descent::{self, DescentSettings};
use crate::error::{Error, Result};
use crate::experiments::phase::{self, ScenarioBase};
use crate::experiments::plot::TAB10;
use crate::experiments::shard::{self, Plan};
use crate::flow::{FlowHorizon, FlowSettings};
use crate::metrics::to_json_value;
use crate::model::data::{Dataset, GenSettings};
use crate::model::network::Init;
use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which subcommand a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SweepKind {
    /// Gradient flow (`marginflow flow`).
    Flow,
    /// Gradient descent (`marginflow descent`).
    Descent,
    /// The claims of `marginflow validate` on a scenario file, per grid point (a phase diagram).
    Validate,
}

/// A numeric setting a sweep can vary (names are the command-line flags without dashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// `--width`.
    Width,
    /// `--leak`.
    Leak,
    /// `--init-scale` (times 1/√d when the sweep's `init_relative` is set).
    InitScale,
    /// `--seed` (initialization and random outer layer).
    Seed,
    /// `--n` of generated data.
    N,
    /// `--d` of generated data.
    D,
    /// `--data-seed` of generated data.
    DataSeed,
    /// `--mean-norm` of generated mixture data.
    MeanNorm,
    /// `--step-size` (descent).
    StepSize,
    /// `--steps` (descent).
    Steps,
    /// `--smoothness` (descent, smooth activation).
    Smoothness,
    /// `--until-log10-time` (flow).
    UntilLog10Time,
    /// `--rtol` (flow).
    Rtol,
}

impl Variable {
    /// The column name (the flag without dashes, with underscores).
    pub fn name(self) -> &'static str {
        match self {
            Variable::Width => "width",
            Variable::Leak => "leak",
            Variable::InitScale => "init_scale",
            Variable::Seed => "seed",
            Variable::N => "n",
            Variable::D => "d",
            Variable::DataSeed => "data_seed",
            Variable::MeanNorm => "mean_norm",
            Variable::StepSize => "step_size",
            Variable::Steps => "steps",
            Variable::Smoothness => "smoothness",
            Variable::UntilLog10Time => "until_log10_time",
            Variable::Rtol => "rtol",
        }
    }

    /// Whether values must be non-negative integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Variable::Width | Variable::Seed | Variable::N | Variable::D | Variable::DataSeed | Variable::Steps
        )
    }
}

/// One swept setting and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The setting.
    pub variable: Variable,
    /// Its values, in the order given.
    pub values: Vec<f64>,
}

/// Where each run's data come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// One loaded data set shared by all runs (then n, d, data_seed, mean_norm cannot be swept).
    Loaded {
        /// The file it came from.
        path: PathBuf,
    },
    /// Data generated per run from these settings (with swept n, d, data_seed, mean_norm applied).
    Generated(GenSettings),
}

/// Settings of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    /// What to run (default: descent).
    pub kind: SweepKind,
    /// Base flow settings (used when `kind` is flow; default: `FlowSettings::default()`).
    pub flow: FlowSettings,
    /// Base descent settings (used when `kind` is descent; default: `DescentSettings::default()`).
    pub descent: DescentSettings,
    /// Data source (default: generated with `GenSettings::default()`).
    pub data: DataSource,
    /// Read `init_scale` as a multiple of 1/√d (default: false).
    pub init_relative: bool,
    /// The swept settings; the runs are their cartesian product (default: none, one run).
    pub axes: Vec<Axis>,
    /// The base scenario of a validate sweep (kind validate only; default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioBase>,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            kind: SweepKind::Descent,
            flow: FlowSettings::default(),
            descent: DescentSettings::default(),
            data: DataSource::Generated(GenSettings::default()),
            init_relative: false,
            axes: Vec::new(),
            scenario: None,
        }
    }
}

/// The settings of one run of a sweep.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Index in the cartesian product.
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// Flow settings (kind flow).
    pub flow: FlowSettings,
    /// Descent settings (kind descent).
    pub descent: DescentSettings,
    /// Generation settings (generated data only).
    pub gen: Option<GenSettings>,
}

/// How a run's error is written into its result (the binary names settings by their flags;
/// `|e| e.to_string()` names them by their fields).
pub type Describe = dyn Fn(&Error) -> String + Sync;

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Index in the cartesian product.
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// The run's summary (as in summary.json), or the error that stopped it.
    pub summary: std::result::Result<serde_json::Map<String, serde_json::Value>, String>,
    /// The run's trajectory rows.
    pub trajectory: Vec<serde_json::Value>,
}

impl SweepSettings {
    /// The settings as `sweep.json` records them: what the runs used. The base settings of the
    /// kind not run are `null`; a swept setting holds its value (one value) or the list of values
    /// (several), in place of the base value no run used. `axes` is kept as is.
    pub fn recorded(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("settings serialize");
        let (used, unused) = match self.kind {
            SweepKind::Flow => ("flow", "descent"),
            SweepKind::Descent => ("descent", "flow"),
            // The scenario holds the base settings; the axes say what each run changed.
            SweepKind::Validate => {
                v["flow"] = serde_json::Value::Null;
                v["descent"] = serde_json::Value::Null;
                return v;
            }
        };
        v[unused] = serde_json::Value::Null;
        for a in &self.axes {
            let integer = matches!(
                a.variable,
                Variable::N | Variable::D | Variable::DataSeed | Variable::Width | Variable::Seed | Variable::Steps
            );
            let num = |x: f64| if integer { serde_json::json!(x as u64) } else { serde_json::json!(x) };
            let value = match a.values.as_slice() {
                [one] => num(*one),
                many => serde_json::Value::Array(many.iter().map(|&x| num(x)).collect()),
            };
            let path: &[&str] = match a.variable {
                Variable::Width => &[used, "model", "width"],
                Variable::Leak => &[used, "model", "leak"],
                Variable::Seed => &[used, "model", "seed"],
                Variable::InitScale => &[used, "model", "init", "scale"],
                Variable::StepSize => &["descent", "step_size"],
                Variable::Steps => &["descent", "steps"],
                Variable::Smoothness => &["descent", "activation", "smoothness"],
                Variable::UntilLog10Time => &["flow", "horizon", "log10_time"],
                Variable::Rtol => &["flow", "rtol"],
                Variable::N => &["data", "generated", "n"],
                Variable::D => &["data", "generated", "d"],
                Variable::DataSeed => &["data", "generated", "seed"],
                Variable::MeanNorm => &["data", "generated", "mean_norm"],
            };
            let (last, parents) = path.split_last().expect("non-empty path");
            let mut node = &mut v;
            for key in parents {
                node = &mut node[*key];
            }
            if let Some(obj) = node.as_object_mut() {
                if *last == "log10_time" {
                    obj.clear();
                }
                obj.insert(last.to_string(), value);
            }
        }
        v
    }

    /// Number of runs (the product of the axis lengths).
    pub fn run_count(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Check the axes (non-empty, integer where needed, no repeats, no data axes over a file).
    pub fn validate(&self) -> Result<()> {
        for (k, a) in self.axes.iter().enumerate() {
            let flag = a.variable.name();
            if a.values.is_empty() {
                return Err(Error::setting(flag, "empty list"));
            }
            if self.axes[..k].iter().any(|b| b.variable == a.variable) {
                return Err(Error::setting(flag, "given twice"));
            }
            if a.variable.is_integer()
                && a.values.iter().any(|v| !(v.fract() == 0.0 && *v >= 0.0 && *v < 2f64.powi(53)))
            {
                return Err(Error::setting(flag, "values must be non-negative integers"));
            }
            let data_axis = matches!(a.variable, Variable::N | Variable::D | Variable::DataSeed | Variable::MeanNorm);
            let loaded = match (&self.kind, &self.scenario) {
                (SweepKind::Validate, Some(b)) => b.scenario.generate.is_none(),
                _ => matches!(self.data, DataSource::Loaded { .. }),
            };
            if data_axis && loaded {
                return Err(Error::setting(flag, "sweeps generated data only (use --kind, not --data)"));
            }
            let for_kind = match a.variable {
                Variable::StepSize | Variable::Steps | Variable::Smoothness => self.kind == SweepKind::Descent,
                Variable::UntilLog10Time | Variable::Rtol => self.kind != SweepKind::Descent,
                _ => true,
            };
            if !for_kind {
                return Err(Error::setting(flag, format!("does not apply to a {:?} sweep", self.kind)));
            }
        }
        if (self.kind == SweepKind::Validate) != self.scenario.is_some() {
            return Err(Error::setting("sweep", "a validate sweep needs a scenario, and only it"));
        }
        if self.run_count() > 100_000 {
            return Err(Error::setting("sweep", format!("{} runs is more than 100000", self.run_count())));
        }
        Ok(())
    }

    /// The settings of run `index` (0 ≤ index < `run_count()`), for data of dimension `file_d`
    /// when the data are loaded.
    pub fn run_spec(&self, index: usize, file_d: Option<usize>) -> RunSpec {
        let mut rest = index;
        let mut picks = vec![0usize; self.axes.len()];
        for (k, a) in self.axes.iter().enumerate().rev() {
            picks[k] = rest % a.values.len();
            rest /= a.values.len();
        }
        let mut flow = self.flow.clone();
        let mut desc = self.descent.clone();
        let mut gen = match &self.data {
            DataSource::Generated(g) => Some(g.clone()),
            DataSource::Loaded { .. } => None,
        };
        let mut values = Vec::new();
        let mut init_scale = None;
        for (a, &p) in self.axes.iter().zip(&picks) {
            let v = a.values[p];
            values.push((a.variable, v));
            for model in [&mut flow.model, &mut desc.model] {
                match a.variable {
                    Variable::Width => model.width = v as usize,
                    Variable::Leak => model.leak = v,
                    Variable::Seed => model.seed = v as u64,
                    _ => {}
                }
            }
            match a.variable {
                Variable::InitScale => init_scale = Some(v),
                Variable::StepSize => desc.step_size = v,
                Variable::Steps => desc.steps = v as u64,
                Variable::Smoothness => {
                    if let descent::DescentActivation::Smooth { smoothness } = &mut desc.activation {
                        *smoothness = v;
                    } else {
                        desc.activation = descent::DescentActivation::Smooth { smoothness: v };
                    }
                }
                Variable::UntilLog10Time => flow.horizon = FlowHorizon::Log10Time(v),
                Variable::Rtol => flow.rtol = v,
                _ => {}
            }
            if let Some(g) = gen.as_mut() {
                match a.variable {
                    Variable::N => g.n = v as usize,
                    Variable::D => g.d = v as usize,
                    Variable::DataSeed => g.seed = v as u64,
                    Variable::MeanNorm => g.mean_norm = Some(v),
                    _ => {}
                }
            }
        }
        let d = gen.as_ref().map(|g| g.d).or(file_d).unwrap_or(1);
        let base_scale = |init: &Init| match init {
            Init::Scale(w) => Some(*w),
            Init::File(_) | Init::Weights(_) => None,
        };
        for model in [&mut flow.model, &mut desc.model] {
            if let Some(w) = init_scale.or_else(|| base_scale(&model.init)) {
                let w = if self.init_relative { w / (d as f64).sqrt() } else { w };
                if init_scale.is_some() || self.init_relative {
                    model.init = Init::Scale(w);
                }
            }
        }
        RunSpec { index, values, flow, descent: desc, gen }
    }
}

/// A result struct as a JSON object (keys sorted, as in the files).
pub fn json_object<S: serde::Serialize>(value: &S) -> serde_json::Map<String, serde_json::Value> {
    match to_json_value(value) {
        serde_json::Value::Object(o) => o,
        other => unreachable!("result structs serialize to objects, got {other}"),
    }
}

/// Run every combination in parallel on the current rayon pool, in memory; results in index
/// order. A run that fails keeps its error as `describe` writes it. `loaded` is the shared data
/// set when the source is [`DataSource::Loaded`]. The runs are those of [`Plan::new`] executed by
/// [`shard::run_task`], as in a sharded sweep.
pub fn run(settings: &SweepSettings, loaded: Option<&Dataset>, describe: &Describe) -> Result<Vec<RunResult>> {
    if matches!(settings.data, DataSource::Loaded { .. }) && settings.kind != SweepKind::Validate && loaded.is_none() {
        return Err(Error::setting("data", "the sweep's data set was not loaded"));
    }
    let plan = Plan::new(settings, loaded.map(|d| d.d))?;
    let base = settings.scenario.as_ref().and_then(|b| b.base_dir.clone());
    Ok(plan.runs.par_iter().map(|r| shard::run_task(r, Ok(loaded), base.as_deref(), describe)).collect())
}

/// Whether [`plots`] draws trajectories for a sweep of `runs` runs (then a merge loads them).
pub fn plots_use_trajectories(runs: usize) -> bool {
    runs <= 20
}

/// Columns of runs.csv after the index and the swept values.
pub const CSV_SUMMARY_COLUMNS: [&str; 9] = [
    "status",
    "stable_rank",
    "initial_stable_rank",
    "sigma3_over_sigma1",
    "normalized_margin",
    "log10_loss",
    "frobenius_norm",
    "pattern_agreement",
    "error",
];

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

/// runs.csv: header `index,<axes…>,<CSV_SUMMARY_COLUMNS…>`, one row per run in index order.
/// For a validate sweep the summary columns are [`phase::CSV_COLUMNS`].
pub fn runs_csv(settings: &SweepSettings, results: &[RunResult]) -> String {
    let columns: &[&str] =
        if settings.kind == SweepKind::Validate { &phase::CSV_COLUMNS } else { &CSV_SUMMARY_COLUMNS };
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
        out.push_str(&r.index.to_string());
        for (_, v) in &r.values {
            out.push(',');
            out.push_str(&format!("{v}"));
        }
        for &c in columns {
            out.push(',');
            match (&r.summary, c) {
                (Err(e), "error") => out.push_str(&csv_string(e)),
                (Err(_), "status") => out.push_str("error"),
                (Ok(s), _) => out.push_str(&csv_field(s.get(c))),
                _ => {}
            }
        }
        out.push('\n');
    }
    out
}

/// runs.jsonl: one object per run `{"index", "values": {axis: value}, "summary"}` (or `"error"`).
pub fn runs_jsonl(results: &[RunResult]) -> String {
    let mut out = String::new();
    for r in results {
        let mut o = serde_json::Map::new();
        o.insert("index".into(), serde_json::json!(r.index));
        let vals: serde_json::Map<String, serde_json::Value> =
            r.values.iter().map(|(k, v)| (k.name().to_string(), serde_json::json!(v))).collect();
        o.insert("values".into(), serde_json::Value::Object(vals));
        match &r.summary {
            Ok(s) => o.insert("summary".into(), serde_json::Value::Object(s.clone())),
            Err(e) => o.insert("error".into(), serde_json::json!(e)),
        };
        out.push_str(&serde_json::to_string(&o).expect("serializes"));
        out.push('\n');
    }
    out
}

/// A line of a plot: label and (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

fn fmt_value(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Render line series as an SVG string. `log_x` / `log_y` choose logarithmic axes (points with
/// non-positive coordinates are then dropped).
pub fn line_plot_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| Error::setting("plot", e.to_string()))?;
        let chart = LineChart { title, x_label, y_label, series, log_x, log_y, y_range: None };
        draw_line_chart(&root, &chart)?;
        root.present().map_err(|e| Error::setting("plot", e.to_string()))?;
    }
    Ok(svg)
}

/// A line chart: labelled series on linear or logarithmic axes.
pub struct LineChart<'a> {
    /// Caption.
    pub title: &'a str,
    /// x-axis description.
    pub x_label: &'a str,
    /// y-axis description.
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series],
    /// Logarithmic x axis (points with x ≤ 0 dropped).
    pub log_x: bool,
    /// Logarithmic y axis (points with y ≤ 0 dropped).
    pub log_y: bool,
    /// A fixed y range instead of the data's (linear y only; tick labels then show 2 decimals).
    pub y_range: Option<(f64, f64)>,
}

/// The axes' ranges of `chart` drawn over `pts` (its kept points): the data's extent padded by 5%
/// (of the decades on a log axis), y from 0 on a linear axis unless `y_range` fixes it.
fn chart_ranges(pts: &[(f64, f64)], chart: &LineChart<'_>) -> ((f64, f64), (f64, f64)) {
    let (log_x, log_y, y_range) = (chart.log_x, chart.log_y, chart.y_range);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if pts.is_empty() {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let pad = |a: f64, b: f64, log: bool| -> (f64, f64) {
        if log {
            let (a, b) = if a == b { (a / 2.0, b * 2.0) } else { (a, b) };
            (a / (b / a).powf(0.05), b * (b / a).powf(0.05))
        } else {
            let w = if a == b { a.abs().max(1.0) * 0.1 } else { (b - a) * 0.05 };
            (a - w, b + w)
        }
    };
    let x = pad(x0, x1, log_x);
    let y = match y_range {
        Some(r) if !log_y => r,
        _ if log_y => pad(y0, y1, true),
        _ => pad(y0.min(0.0), y1, false),
    };
    (x, y)
}

/// Draw `chart` on a drawing area (a whole SVG or one panel of it).
pub fn draw_line_chart(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &LineChart<'_>,
) -> Result<()> {
    let LineChart { title, x_label, y_label, series, log_x, log_y, y_range } = *chart;
    let keep = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0) && (!log_y || p.1 > 0.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().filter(keep).copied()).collect();
    let ((x0, x1), (y0, y1)) = chart_ranges(&pts, chart);
    let err = |e: String| Error::setting("plot", e);
    {
        let mut b = ChartBuilder::on(root);
        b.caption(title, ("sans-serif", 18)).margin(12).x_label_area_size(40).y_label_area_size(60);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|e| err(e.to_string()))?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_label_formatter(&|v| crate::experiments::plot::fmt_tick(*v))
                    .y_label_formatter(&|v| {
                        if y_range.is_some() {
                            format!("{v:.2}")
                        } else {
                            crate::experiments::plot::fmt_tick(*v)
                        }
                    })
                    .draw()
                    .map_err(|e| err(e.to_string()))?;
                // Lines that coincide stay distinguishable: each series has its own colour, dash
                // pattern (solid, dashed, dotted, …) and marker shape, and later series are drawn
                // thinner on top of earlier ones.
                for (k, (label, points)) in series.iter().enumerate() {
                    let color = TAB10[k % TAB10.len()];
                    let p: Vec<(f64, f64)> = points.iter().filter(keep).copied().collect();
                    let width = (4 - (k as u32).min(2)).max(2);
                    let style = color.stroke_width(width);
                    let (dash, gap) = [(0, 0), (10, 5), (3, 4), (12, 4), (6, 3)][k % 5];
                    let shape = k % 4;
                    let anno = if dash == 0 {
                        chart.draw_series(LineSeries::new(p.clone(), style)).map_err(|e| err(e.to_string()))?
                    } else {
                        chart
                            .draw_series(DashedLineSeries::new(p.clone(), dash, gap, style))
                            .map_err(|e| err(e.to_string()))?
                    };
                    let anno = anno.label(label.clone());
                    let line =
                        move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2));
                    // Markers on at most ~25 points per series (the first two always: the
                    // initialization and the first step), staggered between series so that
                    // coinciding curves still show every series' markers.
                    let every = (p.len() / 25).max(1);
                    let marked: Vec<(f64, f64)> = p
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i < 2 || i % every == (k * every / series.len().max(1)) % every)
                        .map(|(_, q)| *q)
                        .collect();
                    macro_rules! with_marker {
                        ($mk:expr) => {{
                            let mk = $mk;
                            anno.legend(move |(x, y)| EmptyElement::at((x, y)) + line((0, 0)) + mk((11, 0)));
                            chart
                                .draw_series(marked.iter().map(|&q| EmptyElement::at(q) + mk((0, 0))))
                                .map_err(|e| err(e.to_string()))?;
                        }};
                    }
                    match shape {
                        0 => with_marker!(move |c| Circle::new(c, 4, color.filled())),
                        1 => with_marker!(move |c| TriangleMarker::new(c, 5, color.filled())),
                        2 => with_marker!(move |c| Cross::new(c, 4, color.stroke_width(2))),
                        _ => with_marker!(move |c| Circle::new(c, 5, color.stroke_width(2))),
                    }
                }
                if series.len() > 1 {
                    let frac = |x: f64, y: f64| {
                        (
                            crate::experiments::plot::axis_frac(x, x0, x1, log_x),
                            crate::experiments::plot::axis_frac(y, y0, y1, log_y),
                        )
                    };
                    let corner = crate::experiments::plot::legend_corner(&pts, frac, series.len());
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .position(corner)
                        .draw()
                        .map_err(|e| err(e.to_string()))?;
                }
            }};
        }
        match (log_x, log_y) {
            (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1)),
            (true, false) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)),
            (false, true) => draw!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())),
            (true, true) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())),
        }
    }
    Ok(())
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
        let mut groups: Vec<Series> = Vec::new();
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
        let series: Vec<Series> = results
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
