//! `sweep` and `validate`: grids of runs and the validation report.

use super::*;

/// One swept option: a number or a sequence of numbers.
fn axis_values(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    let v: Vec<f64> = if let Ok(x) = obj.extract::<f64>() {
        vec![x]
    } else {
        obj.extract::<Vec<f64>>()
            .map_err(|_| PyTypeError::new_err(format!("{name}: expected a number or a sequence of numbers")))?
    };
    if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
        return Err(value_error(&format!("--{}", name.replace('_', "-")), format!("{bad:?} is not a finite number")));
    }
    Ok(v)
}

/// sweep(what, X=None, y=None, *, kind="gaussian", n=None, d=None, data_seed=None, mean_norm=None,
///       width=None, leak=None, outer="balanced", init_scale=None, init_relative=False, seed=None,
///       loss="logistic", step_size=None, steps=None, activation="leaky", smoothness=None,
///       until_log10_time=None, rtol=None, threads=None) -> list[dict]
///
/// The cartesian product of the listed options (`marginflow sweep flow|descent`), run in
/// parallel with results independent of `threads`. Each numeric option is a number or a list.
/// Data: (X, y) shared by all runs, or generated per run from kind/n/d/data_seed/mean_norm.
/// Returns one flat dict per run (pandas-ready: `pandas.DataFrame(rows)`): `index`, the swept
/// values, then the summary's fields (or `error`).
#[pyfunction]
#[pyo3(signature = (what, X=None, y=None, *, kind="gaussian", n=None, d=None, data_seed=None, mean_norm=None,
    width=None, leak=None, outer="balanced", init_scale=None, init_relative=false, seed=None, loss="logistic",
    step_size=None, steps=None, activation="leaky", smoothness=None, until_log10_time=None, rtol=None,
    threads=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) fn sweep<'py>(
    py: Python<'py>,
    what: &str,
    X: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    kind: &str,
    n: Option<&Bound<'py, PyAny>>,
    d: Option<&Bound<'py, PyAny>>,
    data_seed: Option<&Bound<'py, PyAny>>,
    mean_norm: Option<&Bound<'py, PyAny>>,
    width: Option<&Bound<'py, PyAny>>,
    leak: Option<&Bound<'py, PyAny>>,
    outer: &str,
    init_scale: Option<&Bound<'py, PyAny>>,
    init_relative: bool,
    seed: Option<&Bound<'py, PyAny>>,
    loss: &str,
    step_size: Option<&Bound<'py, PyAny>>,
    steps: Option<&Bound<'py, PyAny>>,
    activation: &str,
    smoothness: Option<&Bound<'py, PyAny>>,
    until_log10_time: Option<&Bound<'py, PyAny>>,
    rtol: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let what = match what {
        "flow" => SweepKind::Flow,
        "descent" => SweepKind::Descent,
        other => return Err(value_error("sweep", format!("expected flow or descent, got {other:?}"))),
    };
    let mut s = SweepSettings { kind: what, init_relative, ..Default::default() };
    let outer_layer = outer.parse::<OuterLayer>().map_err(|e| value_error("--outer", e))?;
    let loss = parse_loss(loss)?;
    for model in [&mut s.flow.model, &mut s.descent.model] {
        model.outer = outer_layer.clone();
        model.loss = loss;
    }
    match activation {
        "smooth" => s.descent.activation = DescentActivation::Smooth { smoothness: 1.0 },
        "leaky" if smoothness.is_some() => return Err(value_error("--smoothness", "needs activation=\"smooth\"")),
        "leaky" => {}
        other => return Err(value_error("--activation", format!("expected leaky or smooth, got {other:?}"))),
    }
    let generating = n.is_some() || d.is_some() || data_seed.is_some() || mean_norm.is_some();
    let (source, loaded) = sweep_data(py, X, y, kind, generating)?;
    s.data = source;
    let lists: [(Option<&Bound<'py, PyAny>>, Variable); 13] = [
        (n, Variable::N),
        (d, Variable::D),
        (data_seed, Variable::DataSeed),
        (mean_norm, Variable::MeanNorm),
        (width, Variable::Width),
        (leak, Variable::Leak),
        (init_scale, Variable::InitScale),
        (seed, Variable::Seed),
        (step_size, Variable::StepSize),
        (steps, Variable::Steps),
        (smoothness, Variable::Smoothness),
        (until_log10_time, Variable::UntilLog10Time),
        (rtol, Variable::Rtol),
    ];
    for (v, var) in lists {
        if let Some(obj) = v {
            s.axes.push(Axis { variable: var, values: axis_values(obj, var.name())? });
        }
    }
    s.validate().map_err(py_err)?;
    let pool = thread_pool(threads)?;
    let results = py
        .detach(|| {
            pool.install(|| {
                marginflow::experiments::sweep::run(&s, loaded.as_ref(), &|e: &marginflow::Error| e.to_string())
            })
        })
        .map_err(py_err)?;
    rows_to_py(py, &results)
}

/// The data of a sweep: (X, y) shared by every run (`generating`: a generation option was given
/// too, an error), or generated per run of `kind`.
#[allow(non_snake_case)]
fn sweep_data(
    py: Python<'_>,
    X: Option<&Bound<'_, PyAny>>,
    y: Option<&Bound<'_, PyAny>>,
    kind: &str,
    generating: bool,
) -> PyResult<(DataSource, Option<Dataset>)> {
    match (X, y) {
        (Some(x), Some(y)) => {
            if generating {
                return Err(value_error("X", "cannot be used with n, d, data_seed or mean_norm"));
            }
            Ok((DataSource::Loaded { path: PathBuf::from("<array>"), labels: None }, Some(dataset(py, x, y, true)?)))
        }
        (None, None) => {
            let kind = match kind {
                "gaussian" => DataKind::Gaussian,
                "mixture" => DataKind::Mixture,
                "orthogonal" => DataKind::Orthogonal,
                other => {
                    return Err(value_error(
                        "--kind",
                        format!("expected gaussian, mixture or orthogonal, got {other:?}"),
                    ))
                }
            };
            Ok((DataSource::Generated(GenSettings { kind, ..Default::default() }), None))
        }
        _ => Err(PyTypeError::new_err("sweep: give both X and y, or neither")),
    }
}

/// A rayon pool of `threads` workers (rayon's default without).
fn thread_pool(threads: Option<usize>) -> PyResult<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(value_error("--threads", "must be at least 1"));
        }
        pool = pool.num_threads(t);
    }
    pool.build().map_err(|e| PyValueError::new_err(format!("starting the thread pool: {e}")))
}

/// One flat dict per run: `index`, the swept values, then the summary's fields (or `error`).
fn rows_to_py<'py>(
    py: Python<'py>,
    results: &[marginflow::experiments::sweep::RunResult],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for r in results {
        let row = PyDict::new(py);
        row.set_item("index", r.index)?;
        for (var, v) in &r.values {
            row.set_item(var.name(), v)?;
        }
        match &r.summary {
            Ok(summary) => {
                for (k, v) in summary.as_object().into_iter().flatten() {
                    row.set_item(k, to_py(py, v)?)?;
                }
            }
            Err(e) => row.set_item("error", e)?,
        }
        out.append(row)?;
    }
    Ok(out)
}

/// validate(scenarios=None, out=None) -> Report
///
/// Check the theorem's claims on scenario files (TOML paths), or on the built-in default suite
/// when `scenarios` is None (`marginflow validate`). With `out`, DIR gets report.md, report.json
/// and the SVG plots, as from the CLI. Scenarios run in parallel, without the GIL.
#[pyfunction]
#[pyo3(signature = (scenarios=None, out=None))]
pub(crate) fn validate(py: Python<'_>, scenarios: Option<Vec<PathBuf>>, out: Option<PathBuf>) -> PyResult<Report> {
    use marginflow::experiments::validate as v;
    use marginflow::experiments::{plot, report};
    use rayon::prelude::*;
    let prepared: Vec<v::PreparedScenario> = match &scenarios {
        None => v::prepare_default_suite().map_err(py_err)?,
        Some(paths) => paths.iter().map(|p| v::prepare_file(p)).collect::<Result<_, _>>().map_err(py_err)?,
    };
    let mut names = std::collections::HashSet::new();
    for p in &prepared {
        if !names.insert(p.scenario.name.clone()) {
            return Err(value_error(
                &p.source,
                format!("key `name`: scenario name {:?} is used twice", p.scenario.name),
            ));
        }
    }
    if let Some(dir) = &out {
        create_dir(dir).map_err(py_err)?;
    }
    let (rep, plots) = py
        .detach(|| -> Result<_, (String, marginflow::Error)> {
            let results: Vec<_> = prepared
                .par_iter()
                .map(|p| v::run_scenario(p).map_err(|e| (format!("{}: scenario {:?}", p.source, p.scenario.name), e)))
                .collect();
            let mut scenarios = Vec::with_capacity(results.len());
            for r in results {
                scenarios.push(r?);
            }
            let mut files = Vec::new();
            for s in scenarios.iter_mut() {
                let rendered = plot::render_all(s).map_err(|e| (String::new(), e))?;
                s.plots = rendered.iter().map(|(f, _)| f.clone()).collect();
                files.extend(rendered.into_iter().map(|(f, svg)| (f.file, svg)));
            }
            Ok((v::Report::new(scenarios), files))
        })
        .map_err(|(ctx, e)| {
            let err = py_err(e);
            if ctx.is_empty() {
                err
            } else {
                PyValueError::new_err(format!("{ctx}: {}", err.value(py)))
            }
        })?;
    let json = report::render_json(&rep);
    let (mut report_md, mut report_json, mut plot_paths) = (None, None, Vec::new());
    if let Some(dir) = &out {
        for (f, svg) in &plots {
            let p = dir.join(f);
            write_atomic(&p, svg.as_bytes()).map_err(py_err)?;
            plot_paths.push(p);
        }
        let pj = dir.join("report.json");
        write_atomic(&pj, json.as_bytes()).map_err(py_err)?;
        let pm = dir.join("report.md");
        write_atomic(&pm, report::render_markdown(&rep).as_bytes()).map_err(py_err)?;
        report_json = Some(pj);
        report_md = Some(pm);
    }
    let verdicts = PyDict::new(py);
    for s in &rep.scenarios {
        let claims = PyDict::new(py);
        for c in &s.claims {
            claims.set_item(c.claim.name(), c.verdict.label())?;
        }
        verdicts.set_item(&s.name, claims)?;
    }
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("report.json is JSON");
    Ok(Report {
        passed: rep.passed,
        report: to_py(py, &parsed)?.unbind(),
        verdicts: verdicts.into_any().unbind(),
        report_md,
        report_json,
        plots: plot_paths,
    })
}
