//! `import marginflow`: the library's commands as Python functions, with the CLI's names and
//! defaults. Arrays come in as numpy arrays (or scipy.sparse matrices) and are converted once to
//! the library's dense row-major storage; results come back as small classes holding the CLI's
//! JSON (`summary`, a dict) and numpy columns. Long runs release the GIL, poll Python's signal
//! handlers every 0.1 s (Ctrl-C stops the run, writes its checkpoint when `out` is given, then
//! raises `KeyboardInterrupt`), and show a progress line on `sys.stderr` unless `progress=False`.
//!
//! Errors: every library error becomes `ValueError` (bad data, settings, files' contents),
//! `OSError` (a file that cannot be read or written) or `RuntimeError` (numerics) in
//! [`convert::py_err`], with the one-line message the CLI prints; array arguments of the wrong
//! kind raise `TypeError`. A run that ends before its horizon is not an error: its `status` says
//! why.
#![warn(missing_docs)]

mod convert;
mod experiments;
mod watch;

use convert::{columns, dataset, matrix_rows, py_err, to_py, value_error};
use marginflow::descent::{DescentActivation, DescentSettings};
use marginflow::experiments::sweep::{Axis, DataSource, SweepKind, SweepSettings, Variable};
use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::{FlowHorizon, FlowSettings};
use marginflow::io::fsutil::{create_dir, write_atomic, AtomicBatch};
use marginflow::io::npy::{encode_npy, write_npy};
use marginflow::maxmargin::{MaxMarginSettings, PatternSource};
use marginflow::model::data::{self, DataKind, Dataset, GenSettings};
use marginflow::model::loss::Loss;
use marginflow::model::network::{Init, ModelSettings, OuterLayer};
use marginflow_solvers::tableau::Method;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use std::path::PathBuf;
use std::time::Duration;
use watch::Watch;

/// Whether this build has arbitrary precision (the `mpfr` feature).
const MPFR: bool = cfg!(feature = "mpfr");

/// Reject a precision this build cannot run, before any work.
fn check_precision(precision: u32) -> PyResult<()> {
    if precision != 53 && !MPFR {
        return Err(PyValueError::new_err(format!(
            "precision: {precision} bits needs the MPFR build of the Python module \
             (pip install ./python --config-settings=build-args=\"--features mpfr\"); this build has f64 only (53)"
        )));
    }
    Ok(())
}

/// `Class(key=repr(summary[key]), …)`: the result classes' `__repr__`.
fn summary_repr(py: Python<'_>, class: &str, summary: &Py<PyAny>, keys: &[&str]) -> String {
    let s = summary.bind(py);
    let get = |k: &str| s.get_item(k).and_then(|v| v.repr()).map(|r| r.to_string()).unwrap_or_default();
    let fields: Vec<String> = keys.iter().map(|k| format!("{k}={}", get(k))).collect();
    format!("{class}({})", fields.join(", "))
}

/// A summary as summary.json holds it (pretty-printed).
fn summary_bytes<S: serde::Serialize>(summary: &S) -> Vec<u8> {
    serde_json::to_vec_pretty(summary).expect("the summary serializes")
}

/// A flat row-major vector as an (rows × cols) float64 array.
fn array2(py: Python<'_>, v: Vec<f64>, rows: usize, cols: usize) -> PyResult<Py<PyAny>> {
    Ok(PyArray1::from_vec(py, v).reshape([rows, cols])?.into_any().unbind())
}

fn parse_loss(loss: &str) -> PyResult<Loss> {
    match loss {
        "logistic" => Ok(Loss::Logistic),
        "exponential" => Ok(Loss::Exponential),
        other => Err(value_error("--loss", format!("expected logistic or exponential, got {other:?}"))),
    }
}

/// A path argument (str or os.PathLike), or `None` when `obj` is neither.
fn as_path(obj: &Bound<'_, PyAny>) -> Option<PathBuf> {
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__").unwrap_or(false) {
        obj.extract::<PathBuf>().ok()
    } else {
        None
    }
}

/// The settings a summary echoes name a `W0` array (with the SHA-256 of its entries) instead of
/// copying it; the checkpoint keeps the array, for resume.
fn name_w0(model: &mut ModelSettings) {
    model.init = model.init.named("W0");
}

/// The model keywords shared by flow, maxmargin and descent, as library settings, with the
/// input files/arrays checked against the data dimension `d` (as the CLI does before any output);
/// `outer` None is "balanced".
#[allow(clippy::too_many_arguments)]
fn model_settings(
    py: Python<'_>,
    d: usize,
    width: usize,
    leak: f64,
    outer: Option<&Bound<'_, PyAny>>,
    init_scale: Option<f64>,
    w0: Option<&Bound<'_, PyAny>>,
    seed: u64,
    loss: &str,
) -> PyResult<ModelSettings> {
    let outer = match outer {
        None => OuterLayer::Balanced,
        Some(o) => {
            if let Ok(s) = o.extract::<String>() {
                s.parse::<OuterLayer>().map_err(|e| value_error("--outer", e))?
            } else if let Some(p) = as_path(o) {
                OuterLayer::File(p)
            } else {
                OuterLayer::Vector(convert::vector_f64(py, o, "outer")?)
            }
        }
    };
    let init = match (w0, init_scale) {
        (Some(_), Some(_)) => return Err(value_error("--init-scale", "cannot be used with W0 (--init-file)")),
        (Some(w), None) => match as_path(w) {
            Some(p) => Init::File(p),
            None => {
                let (v, r, c) = matrix_rows(py, w, "W0")?;
                if (r, c) != (width, d) {
                    return Err(value_error("W0", format!("shape ({r}, {c}) is not (width, d) = ({width}, {d})")));
                }
                Init::Weights(v)
            }
        },
        (None, Some(s)) => Init::Scale(s),
        (None, None) => Init::Scale(1e-3),
    };
    let model = ModelSettings { width, leak, outer, init, seed, loss: parse_loss(loss)? };
    model.validate().map_err(py_err)?;
    match &model.outer {
        OuterLayer::Balanced | OuterLayer::Random => {}
        // An array argument is named as the keyword is (like `W0`, `X`), not by a CLI flag.
        OuterLayer::Vector(_) => {
            model.outer_weights().map_err(|e| pyo3::exceptions::PyValueError::new_err(convert::one_line(&e)))?;
        }
        _ => {
            model.outer_weights().map_err(py_err)?;
        }
    }
    if !matches!(model.init, Init::Scale(_)) {
        model.for_each_initial_weight(d, |_| ()).map_err(py_err)?;
    }
    Ok(model)
}

fn horizon(time: Option<f64>, log10_time: Option<f64>, s: Option<f64>) -> PyResult<Option<FlowHorizon>> {
    match (time, log10_time, s) {
        (Some(t), None, None) => Ok(Some(FlowHorizon::Time(t))),
        (None, Some(x), None) => Ok(Some(FlowHorizon::Log10Time(x))),
        (None, None, Some(s)) => Ok(Some(FlowHorizon::S(s))),
        (None, None, None) => Ok(None),
        _ => Err(value_error("--until-time/--until-log10-time/--until-s", "give at most one horizon")),
    }
}

fn goal_text(h: &FlowHorizon) -> String {
    match h {
        FlowHorizon::Time(t) => format!("until t = {t:e}"),
        FlowHorizon::Log10Time(x) => format!("until log10 t = {x}"),
        FlowHorizon::S(s) => format!("until s = {s:e}"),
    }
}

/// Where a result finds its data again for `.W`: the caller's own (X, y) objects (referenced, not
/// copied: the converted copy is dropped when the call returns) or the data file of a CLI run.
/// The checkpoint's data hash refuses data changed in the meantime.
enum Source {
    /// The Python objects passed as X and y.
    Arrays(Py<PyAny>, Py<PyAny>),
    /// A data file and, for .npy points, the labels file (DIR/data_path of a run).
    File(PathBuf, Option<PathBuf>),
}

/// Data source and final state of a run, for `.W`.
struct Kept {
    source: Source,
    checkpoint: Checkpoint,
}

/// The end of a gradient-flow run.
///
/// - `summary`: dict, the fields of summary.json (`status`, `s`, `log10_time`, `log10_loss`,
///   `normalized_margin`, `singular_values`, `loss_weights`, `statistics`, `settings`,
///   `reference`, …; `_decimal` strings at high precision).
/// - `trajectory`: dict of numpy columns, one entry per trajectory field (`singular_values` 2-D).
/// - `W`: the final weights (m×d float64), computed on first access.
/// - `reference`: `summary["reference"]`, the comparison with the certified max-margin solution.
/// - `status`: `summary["status"]` ("reached", "interrupted", "max_steps", …).
#[pyclass(module = "marginflow")]
struct FlowResult {
    /// The summary dict (summary.json).
    #[pyo3(get)]
    summary: Py<PyAny>,
    /// The trajectory, a dict of numpy columns.
    #[pyo3(get)]
    trajectory: Py<PyAny>,
    kept: Kept,
    weights: Option<Py<PyAny>>,
}

#[pymethods]
impl FlowResult {
    /// The final weights W = W(0) + B X (m×d float64), computed (at the run's precision) on first
    /// access, bit for bit what `flow --save-weights` writes to W.npy.
    #[getter(W)]
    fn weights(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(w) = &self.weights {
            return Ok(w.clone_ref(py));
        }
        let data = match &self.kept.source {
            Source::Arrays(x, y) => dataset(py, x.bind(py), y.bind(py), false)?,
            Source::File(path, labels) => Dataset::load_with_labels(path, labels.as_deref()).map_err(py_err)?,
        };
        let cp = &self.kept.checkpoint;
        let w = py.detach(|| cp.weights(&data)).map_err(py_err)?;
        let arr = array2(py, w, cp.settings.model.width, data.d)?;
        self.weights = Some(arr.clone_ref(py));
        Ok(arr)
    }
    /// `summary["reference"]` (None when absent).
    #[getter]
    fn reference(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.summary.bind(py);
        Ok(s.get_item("reference").map(|r| r.unbind()).unwrap_or_else(|_| py.None()))
    }
    /// `summary["status"]`.
    #[getter]
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.summary.bind(py).get_item("status")?.unbind())
    }
    /// The trajectory as a pandas DataFrame, one row per trajectory row (`singular_values` as
    /// `sigma_1` … `sigma_K`); ImportError naming pandas when it is not installed.
    fn to_pandas(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(py.import("marginflow.frames")?.call_method1("to_pandas", (slf,))?.unbind())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        summary_repr(py, "FlowResult", &self.summary, &["status", "log10_time", "normalized_margin", "stable_rank"])
    }
}

/// Result of `maxmargin`: `summary` (the CLI's JSON: `norm`, `normalized_margin`, `multipliers`,
/// `certified`, `linear`, …) and `W` (W*, m×d float64, or None when the QP was not solved).
#[pyclass(module = "marginflow", frozen)]
struct MaxMarginResult {
    /// The report dict.
    #[pyo3(get)]
    summary: Py<PyAny>,
    /// W* (m×d float64) or None.
    #[pyo3(get, name = "W")]
    weights: Py<PyAny>,
}

#[pymethods]
impl MaxMarginResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        summary_repr(py, "MaxMarginResult", &self.summary, &["certified", "norm", "rank"])
    }
}

/// Result of `descent`: `summary` (summary.json), `trajectory` (dict of numpy columns, one row
/// per step for the first 100 steps, log-spaced after) and `W` (final weights, m×d float64).
#[pyclass(module = "marginflow", frozen)]
struct DescentResult {
    /// The summary dict.
    #[pyo3(get)]
    summary: Py<PyAny>,
    /// The trajectory columns.
    #[pyo3(get)]
    trajectory: Py<PyAny>,
    /// Final W (m×d float64).
    #[pyo3(get, name = "W")]
    weights: Py<PyAny>,
}

#[pymethods]
impl DescentResult {
    /// The trajectory as a pandas DataFrame, one row per trajectory row (`singular_values` as
    /// `sigma_1` … `sigma_K`); ImportError naming pandas when it is not installed.
    fn to_pandas(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(py.import("marginflow.frames")?.call_method1("to_pandas", (slf,))?.unbind())
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        summary_repr(py, "DescentResult", &self.summary, &["status", "step", "stable_rank"])
    }
}

/// Result of `validate`: `passed`, `report` (the dict of report.json), `verdicts` (one dict per
/// scenario: name → {claim: verdict}), and the paths written (`report_md`, `report_json`,
/// `plots`; None/empty without `out`).
#[pyclass(module = "marginflow", frozen)]
struct Report {
    /// Whether every claim held (or failed as expected).
    #[pyo3(get)]
    passed: bool,
    /// report.json as a dict.
    #[pyo3(get)]
    report: Py<PyAny>,
    /// {scenario: {claim: verdict label}}.
    #[pyo3(get)]
    verdicts: Py<PyAny>,
    /// Path of report.md (None without `out`).
    #[pyo3(get)]
    report_md: Option<PathBuf>,
    /// Path of report.json (None without `out`).
    #[pyo3(get)]
    report_json: Option<PathBuf>,
    /// Paths of the SVG plots.
    #[pyo3(get)]
    plots: Vec<PathBuf>,
}

#[pymethods]
impl Report {
    fn __repr__(&self) -> String {
        format!("Report(passed={}, report_md={:?})", self.passed, self.report_md)
    }
}

/// gen(kind="gaussian", n=20, d=4000, seed=0, mean_norm=None, label_noise=0.0) -> (X, y)
///
/// A seeded synthetic data set, bit for bit the one `marginflow gen` writes: X (n×d float64) and
/// y (n float64 in {-1, +1}).
///
///     X, y = marginflow.gen("gaussian", n=20, d=4000, seed=1)
#[pyfunction]
#[pyo3(signature = (kind="gaussian", n=20, d=4000, seed=0, mean_norm=None, label_noise=0.0))]
fn gen(
    py: Python<'_>,
    kind: &str,
    n: usize,
    d: usize,
    seed: u64,
    mean_norm: Option<f64>,
    label_noise: f64,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let kind = match kind {
        "gaussian" => DataKind::Gaussian,
        "mixture" => DataKind::Mixture,
        "orthogonal" => DataKind::Orthogonal,
        other => return Err(value_error("--kind", format!("expected gaussian, mixture or orthogonal, got {other:?}"))),
    };
    let settings = GenSettings { kind, n, d, seed, mean_norm, label_noise };
    settings.validate().map_err(py_err)?;
    let ds = py.detach(|| data::generate(&settings)).map_err(py_err)?;
    let x = array2(py, ds.x, ds.n, ds.d)?;
    let y = PyArray1::from_vec(py, ds.y).into_any().unbind();
    Ok((x, y))
}

/// check(X, y, leak=0.1, constant=3.0) -> dict
///
/// The near-orthogonality statistics (`marginflow check --json` without the file name): n, d,
/// class counts, min/max squared norms, p = max |<x_i, x_k>|, the ratios, the paper's condition
/// for the constant C, and the data `hash`.
#[pyfunction]
#[pyo3(signature = (X, y, leak=0.1, constant=3.0))]
#[allow(non_snake_case)]
fn check<'py>(
    py: Python<'py>,
    X: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    leak: f64,
    constant: f64,
) -> PyResult<Bound<'py, PyAny>> {
    if !(leak >= 0.0 && leak < 1.0) {
        return Err(value_error("--leak", format!("{leak} is outside [0, 1)")));
    }
    if !(constant.is_finite() && constant > 0.0) {
        return Err(value_error("--constant", format!("{constant} is not a finite number > 0")));
    }
    let ds = dataset(py, X, y, false)?;
    let (g, hash) = py.detach(|| (data::geometry(&ds, leak, constant), ds.hash()));
    let dict = to_py(py, &g)?.cast_into::<PyDict>()?;
    dict.set_item("hash", hash)?;
    Ok(dict.into_any())
}

/// The files that let `marginflow flow --resume DIR` continue a run started from arrays: the
/// data as DIR/data_X.npy (n×d float64) and DIR/data_y.npy (±1), named in DIR/data_path as the
/// CLI writes it (the points on its first line, the labels on the second).
fn write_run_data(dir: &std::path::Path, data: &Dataset) -> PyResult<()> {
    let (x, y) = (dir.join(DATA_X), dir.join(DATA_Y));
    write_npy(&x, &[data.n, data.d], &data.x).map_err(py_err)?;
    write_npy(&y, &[data.n], &data.y).map_err(py_err)?;
    let text = marginflow::io::rundir::data_path_text(&x, Some(&y));
    write_atomic(&dir.join(marginflow::io::rundir::DATA_PATH), text.as_bytes()).map_err(py_err)
}

/// The points and the labels of a run started from arrays, in its folder.
const DATA_X: &str = "data_X.npy";
/// See [`DATA_X`].
const DATA_Y: &str = "data_y.npy";

/// Run (or resume) a flow with a [`Watch`], write DIR's files as `marginflow flow` does, and
/// build the result; a signal's exception is raised after the files are written.
#[allow(clippy::too_many_arguments)]
fn run_flow(
    py: Python<'_>,
    data: Dataset,
    source: Source,
    settings: FlowSettings,
    resume: Option<Checkpoint>,
    out: Option<PathBuf>,
    save_weights: bool,
    checkpoint_every: f64,
    progress: bool,
) -> PyResult<FlowResult> {
    settings.validate().map_err(py_err)?;
    if save_weights && out.is_none() {
        return Err(value_error("--save-weights", "needs out=DIR"));
    }
    if checkpoint_every.is_nan() || checkpoint_every <= 0.0 {
        return Err(value_error("--checkpoint-every", format!("must be > 0 seconds, got {checkpoint_every}")));
    }
    let mut watch = Watch::new(
        out.clone(),
        Duration::from_secs_f64(checkpoint_every.min(1e9)),
        progress.then_some("flow"),
        goal_text(&settings.horizon),
    );
    if let Some(dir) = &out {
        create_dir(dir).map_err(py_err)?;
        let tpath = dir.join("trajectory.jsonl");
        if let Some(cp) = &resume {
            // Keep the rows the checkpoint has seen (as `flow --resume` does) and show them too.
            let text = std::fs::read_to_string(&tpath).unwrap_or_default();
            let kept: Vec<&str> = text.lines().take(cp.rows_written).collect();
            let body: String = kept.iter().map(|l| format!("{l}\n")).collect();
            write_atomic(&tpath, body.as_bytes()).map_err(py_err)?;
            for l in kept {
                let v: serde_json::Value = serde_json::from_str(l)
                    .map_err(|e| value_error(&tpath.display().to_string(), format!("unreadable row: {e}")))?;
                watch.rows.push(v);
            }
        } else {
            write_atomic(&tpath, b"").map_err(py_err)?;
            if matches!(source, Source::Arrays(..)) {
                write_run_data(dir, &data)?;
            }
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&tpath)
            .map_err(|e| py_err(marginflow::Error::io(tpath.clone(), e)))?;
        watch.trajectory = Some(std::io::BufWriter::new(f));
    }
    let poll = watch.interrupt.clone();
    let result = py.detach(|| {
        marginflow_solvers::interrupt::with_poll(watch::signal_poll(poll), || {
            marginflow::flow::run(&data, &settings, resume, save_weights, &mut watch)
        })
    });
    watch.finish(py);
    let mut outcome = result.map_err(py_err)?;
    name_w0(&mut outcome.summary.settings.model);
    if let Some(dir) = &out {
        write_atomic(
            &dir.join("summary.json"),
            &summary_bytes(&marginflow::flow::verdict::summary_json(&outcome.summary)),
        )
        .map_err(py_err)?;
        if let Some(w) = &outcome.weights {
            write_npy(&dir.join("W.npy"), &[settings.model.width, data.d], w).map_err(py_err)?;
        }
    }
    // The converted copy of X is not kept: `.W` converts the caller's (X, y) again on request.
    let d = data.d;
    drop(data);
    if let Some(e) = watch.interrupt.take() {
        return Err(e);
    }
    let weights = match outcome.weights {
        Some(w) => Some(array2(py, w, settings.model.width, d)?),
        None => None,
    };
    Ok(FlowResult {
        summary: to_py(py, &marginflow::flow::verdict::summary_json(&outcome.summary))?.unbind(),
        trajectory: columns(py, &watch.rows)?.into_any().unbind(),
        kept: Kept { source, checkpoint: outcome.checkpoint },
        weights,
    })
}

/// flow(X, y, width, leak=0.1, outer="balanced", init_scale=None, W0=None, loss="logistic",
///      seed=0, until_time=None, until_log10_time=None, until_s=None, rtol=None, atol=None,
///      method=None, events=None, precision=None, max_steps=None, out=None, save_weights=False,
///      checkpoint_every=60.0, progress=True, engine=None) -> FlowResult
///
/// Gradient flow in normalized time (`marginflow flow`), same names and defaults: horizon
/// t = 10^100, rtol 1e-10, atol 1e-12, method "auto", events on, 53 bits (f64), engine "dual"
/// ("span" integrates the network state B instead). `outer` is
/// "balanced", "random", a .npy path or a length-m array; `W0` an m×d array or .npy path
/// (instead of `init_scale`, default 1e-3). With `out`, DIR gets trajectory.jsonl, summary.json,
/// checkpoint (and W.npy with `save_weights`), as from the CLI, and the data (data_X.npy,
/// data_y.npy, named in data_path) so that `marginflow flow --resume DIR` continues the run.
///
///     r = marginflow.flow(X, y, 16, leak=0.2, until_log10_time=100)
///     r.summary["reference"]["cosine_velocity"], r.trajectory["stable_rank"], r.W
#[pyfunction]
#[pyo3(signature = (X, y, width, leak=0.1, outer=None, init_scale=None, W0=None, loss="logistic", seed=0,
    until_time=None, until_log10_time=None, until_s=None, rtol=None, atol=None, method=None, events=None,
    precision=None, max_steps=None, out=None, save_weights=false, checkpoint_every=60.0, progress=true,
    engine=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn flow(
    py: Python<'_>,
    X: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    width: usize,
    leak: f64,
    outer: Option<&Bound<'_, PyAny>>,
    init_scale: Option<f64>,
    W0: Option<&Bound<'_, PyAny>>,
    loss: &str,
    seed: u64,
    until_time: Option<f64>,
    until_log10_time: Option<f64>,
    until_s: Option<f64>,
    rtol: Option<f64>,
    atol: Option<f64>,
    method: Option<&str>,
    events: Option<&Bound<'_, PyAny>>,
    precision: Option<u32>,
    max_steps: Option<u64>,
    out: Option<PathBuf>,
    save_weights: bool,
    checkpoint_every: f64,
    progress: bool,
    engine: Option<&str>,
) -> PyResult<FlowResult> {
    let mut settings = FlowSettings::default();
    if let Some(e) = engine {
        settings.engine = match e {
            "dual" => marginflow::flow::Engine::Dual,
            "span" => marginflow::flow::Engine::Span,
            _ => return Err(value_error("--engine", "expected \"dual\" or \"span\"")),
        };
    }
    if let Some(h) = horizon(until_time, until_log10_time, until_s)? {
        settings.horizon = h;
    }
    if let Some(r) = rtol {
        settings.rtol = r;
    }
    if let Some(a) = atol {
        settings.atol = a;
    }
    if let Some(m) = method {
        settings.method = m.parse::<Method>().map_err(|e| value_error("--method", e))?;
    }
    if let Some(e) = events {
        settings.events = if let Ok(b) = e.extract::<bool>() {
            b
        } else {
            match e.extract::<String>().as_deref() {
                Ok("on") => true,
                Ok("off") => false,
                _ => return Err(value_error("--events", "expected True/False or \"on\"/\"off\"")),
            }
        };
    }
    if let Some(p) = precision {
        check_precision(p)?;
        settings.precision = p;
    }
    settings.max_steps = max_steps;
    let ds = dataset(py, X, y, true)?;
    settings.model = model_settings(py, ds.d, width, leak, outer, init_scale, W0, seed, loss)?;
    let source = Source::Arrays(X.clone().unbind(), y.clone().unbind());
    run_flow(py, ds, source, settings, None, out, save_weights, checkpoint_every, progress)
}

/// resume(dir, X=None, y=None, until_time=None, until_log10_time=None, until_s=None,
///        max_steps=None, save_weights=False, checkpoint_every=60.0, progress=True) -> FlowResult
///
/// Continue the flow run in `dir` from its checkpoint (`marginflow flow --resume DIR`), bit for
/// bit as an uninterrupted run. The data are (X, y) when given (a run started from Python has no
/// data file), else the file recorded in DIR/data_path by the CLI; the checkpoint refuses other
/// data. A run started from Python with `out=` wrote its data beside it (data_X.npy,
/// data_y.npy, named in DIR/data_path), so the CLI's `flow --resume DIR` continues it too. The
/// trajectory returned holds the rows already in DIR too.
#[pyfunction]
#[pyo3(signature = (dir, X=None, y=None, until_time=None, until_log10_time=None, until_s=None, max_steps=None,
    save_weights=false, checkpoint_every=60.0, progress=true))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn resume(
    py: Python<'_>,
    dir: PathBuf,
    X: Option<&Bound<'_, PyAny>>,
    y: Option<&Bound<'_, PyAny>>,
    until_time: Option<f64>,
    until_log10_time: Option<f64>,
    until_s: Option<f64>,
    max_steps: Option<u64>,
    save_weights: bool,
    checkpoint_every: f64,
    progress: bool,
) -> PyResult<FlowResult> {
    let cp = Checkpoint::load(&dir.join("checkpoint")).map_err(py_err)?;
    let mut settings = cp.settings.clone();
    if let Some(h) = horizon(until_time, until_log10_time, until_s)? {
        settings.horizon = h;
    }
    settings.max_steps = max_steps;
    check_precision(settings.precision)?;
    let (ds, source) = match (X, y) {
        (Some(x), Some(y)) => (dataset(py, x, y, true)?, Source::Arrays(x.clone().unbind(), y.clone().unbind())),
        (None, None) => {
            let p = dir.join("data_path");
            let path = std::fs::read_to_string(&p)
                .map_err(|_| value_error(&format!("--resume {}", dir.display()), "no data_path file (pass X and y)"))?;
            let (path, labels) = marginflow::io::rundir::parse_data_path(&path);
            let ds = Dataset::load_with_labels(&path, labels.as_deref()).map_err(py_err)?;
            ds.validate_for_training(&path).map_err(py_err)?;
            (ds, Source::File(path, labels))
        }
        _ => return Err(PyTypeError::new_err("resume: give both X and y, or neither")),
    };
    run_flow(py, ds, source, settings, Some(cp), Some(dir), save_weights, checkpoint_every, progress)
}

/// maxmargin(X, y, width, leak=0.1, outer="balanced", init_scale=None, W0=None, loss="logistic",
///           seed=0, pattern_from=None, precision=53, test_points=1000, out=None,
///           save_weights=None) -> MaxMarginResult
///
/// Solve and certify the network max-margin QP on an activation pattern (the theory's, or the
/// final one of the flow run in directory `pattern_from`) and the linear max-margin problem
/// (`marginflow maxmargin`). `out`: write the report JSON to this file; `save_weights`: W* to
/// this .npy file.
#[pyfunction]
#[pyo3(signature = (X, y, width, leak=0.1, outer=None, init_scale=None, W0=None, loss="logistic", seed=0,
    pattern_from=None, precision=53, test_points=1000, out=None, save_weights=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn maxmargin(
    py: Python<'_>,
    X: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    width: usize,
    leak: f64,
    outer: Option<&Bound<'_, PyAny>>,
    init_scale: Option<f64>,
    W0: Option<&Bound<'_, PyAny>>,
    loss: &str,
    seed: u64,
    pattern_from: Option<PathBuf>,
    precision: u32,
    test_points: usize,
    out: Option<PathBuf>,
    save_weights: Option<PathBuf>,
) -> PyResult<MaxMarginResult> {
    check_precision(precision)?;
    let ds = dataset(py, X, y, true)?;
    let model = model_settings(py, ds.d, width, leak, outer, init_scale, W0, seed, loss)?;
    let source = match pattern_from {
        Some(dir) => PatternSource::Given {
            name: dir.display().to_string(),
            signs: marginflow::experiments::run_pattern::pattern_from_run(&dir, &ds, &model).map_err(py_err)?,
        },
        None => PatternSource::Theory,
    };
    let settings = MaxMarginSettings { test_points, seed, ..Default::default() };
    // Ctrl-C stops the QP (clarabel's iterations, the polish) and raises KeyboardInterrupt.
    let mut report =
        watch::detach_polled(py, || marginflow::maxmargin::solve(&ds, &model, &source, precision, &settings))?
            .map_err(py_err)?;
    name_w0(&mut report.summary.settings.model);
    let value = marginflow::metrics::to_json_value(&report.summary);
    if let Some(path) = &out {
        let mut bytes = serde_json::to_vec_pretty(&value).expect("the report serializes");
        bytes.push(b'\n');
        write_atomic(path, &bytes).map_err(py_err)?;
    }
    if let Some(path) = &save_weights {
        match &report.weights {
            Some(w) => write_npy(path, &[report.shape.0, report.shape.1], w).map_err(py_err)?,
            None => {
                return Err(value_error(
                    &format!("--save-weights {}", path.display()),
                    "no solution to save (the QP was not solved)",
                ))
            }
        }
    }
    let weights = match report.weights {
        Some(w) => array2(py, w, report.shape.0, report.shape.1)?,
        None => py.None(),
    };
    Ok(MaxMarginResult { summary: to_py(py, &value)?.unbind(), weights })
}

/// descent(X, y, width, step_size, steps, activation="leaky", smoothness=1.0, leak=0.1,
///         outer="balanced", init_scale=None, W0=None, loss="logistic", seed=0, precision=53,
///         out=None, save_weights=False, progress=True) -> DescentResult
///
/// Full-batch gradient descent W ← W − α∇L(W) (`marginflow descent`). With `out`, DIR gets
/// trajectory.jsonl, summary.json (and W.npy with `save_weights`), written together atomically.
///
///     r = marginflow.descent(X, y, 16, step_size=0.05, steps=2000, init_scale=1e-6)
///     r.trajectory["stable_rank"][:3]
#[pyfunction]
#[pyo3(signature = (X, y, width, step_size, steps, activation="leaky", smoothness=1.0, leak=0.1, outer=None,
    init_scale=None, W0=None, loss="logistic", seed=0, precision=53, out=None, save_weights=false, progress=true))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn descent(
    py: Python<'_>,
    X: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    width: usize,
    step_size: f64,
    steps: u64,
    activation: &str,
    smoothness: f64,
    leak: f64,
    outer: Option<&Bound<'_, PyAny>>,
    init_scale: Option<f64>,
    W0: Option<&Bound<'_, PyAny>>,
    loss: &str,
    seed: u64,
    precision: u32,
    out: Option<PathBuf>,
    save_weights: bool,
    progress: bool,
) -> PyResult<DescentResult> {
    check_precision(precision)?;
    let activation = match activation {
        "leaky" => DescentActivation::Leaky,
        "smooth" => DescentActivation::Smooth { smoothness },
        other => return Err(value_error("--activation", format!("expected leaky or smooth, got {other:?}"))),
    };
    let ds = dataset(py, X, y, true)?;
    let model = model_settings(py, ds.d, width, leak, outer, init_scale, W0, seed, loss)?;
    let settings = DescentSettings { model, activation, step_size, steps, precision, ..Default::default() };
    settings.validate().map_err(py_err)?;
    if save_weights && out.is_none() {
        return Err(value_error("--save-weights", "needs out=DIR"));
    }
    if let Some(dir) = &out {
        create_dir(dir).map_err(py_err)?;
    }
    let mut watch = Watch::new(None, Duration::MAX, progress.then_some("descent"), format!("of {steps}"));
    let result = py.detach(|| marginflow::descent::run(&ds, &settings, true, &mut watch));
    watch.finish(py);
    let mut outcome = result.map_err(py_err)?;
    name_w0(&mut outcome.summary.settings.model);
    let (m, d) = (settings.model.width, ds.d);
    if let Some(dir) = &out {
        let text: String =
            watch.rows.iter().map(|r| format!("{}\n", serde_json::to_string(r).expect("a row serializes"))).collect();
        let mut batch = AtomicBatch::new();
        batch.add_bytes(&dir.join("trajectory.jsonl"), text.as_bytes()).map_err(py_err)?;
        batch.add_bytes(&dir.join("summary.json"), &summary_bytes(&outcome.summary)).map_err(py_err)?;
        if let (true, Some(w)) = (save_weights, &outcome.weights) {
            let path = dir.join("W.npy");
            batch.add_bytes(&path, &encode_npy(&path, &[m, d], w).map_err(py_err)?).map_err(py_err)?;
        }
        batch.commit().map_err(py_err)?;
    }
    if let Some(e) = watch.interrupt.take() {
        return Err(e);
    }
    let weights = match outcome.weights {
        Some(w) => array2(py, w, m, d)?,
        None => py.None(),
    };
    Ok(DescentResult {
        summary: to_py(py, &outcome.summary)?.unbind(),
        trajectory: columns(py, &watch.rows)?.into_any().unbind(),
        weights,
    })
}

/// Gradient flow on two-layer leaky-ReLU networks, followed deep into the asymptotic regime and
/// checked against certified max-margin solutions (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023).
///
///     import marginflow
///     X, y = marginflow.gen("gaussian", n=20, d=4000, seed=1)
///     r = marginflow.flow(X, y, 16, leak=0.2, until_log10_time=100)
///     print(r.reference["cosine_velocity"])
#[pymodule]
#[pyo3(name = "marginflow")]
fn marginflow_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gen, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(flow, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(maxmargin, m)?)?;
    m.add_function(wrap_pyfunction!(descent, m)?)?;
    m.add_function(wrap_pyfunction!(experiments::sweep, m)?)?;
    m.add_function(wrap_pyfunction!(experiments::validate, m)?)?;
    m.add_class::<FlowResult>()?;
    m.add_class::<MaxMarginResult>()?;
    m.add_class::<DescentResult>()?;
    m.add_class::<Report>()?;
    // Pure-Python helpers compiled in: marginflow.frames (pandas) and marginflow.plot
    // (matplotlib), both optional dependencies imported on first use.
    let py = m.py();
    let modules = py.import("sys")?.getattr("modules")?;
    for (name, file, code) in [
        ("frames", "marginflow/frames.py", include_str!("frames.py")),
        ("plot", "marginflow/plot.py", include_str!("plot.py")),
    ] {
        let full = format!("marginflow.{name}");
        let c = |s: &str| std::ffi::CString::new(s).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()));
        let sub = PyModule::from_code(py, &c(code)?, &c(file)?, &c(&full)?)?;
        m.add_submodule(&sub)?;
        modules.set_item(&full, &sub)?;
    }
    m.add("to_pandas", m.getattr("frames")?.getattr("to_pandas")?)?;
    m.add("MPFR", MPFR)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
