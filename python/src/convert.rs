//! Conversions at the boundary: Python arrays in (X dense or scipy.sparse, y, W0, outer), library
//! errors to Python exceptions (in one place), and serde values out (dicts, numpy columns).

use marginflow::model::data::Dataset;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::Serialize;

/// The one line the CLI prints for an error (without its "marginflow: " prefix): the error and
/// each source not already contained in it, joined by ": " (as `cli::one_line` does).
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        let s = c.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// The library error as a Python exception: bad input (data, settings, .npy files, checkpoints)
/// → `ValueError`, a file that cannot be read or written → `OSError`, a numerical failure →
/// `RuntimeError` (above the memory limit `MemoryError`); the message is the CLI's one line.
pub fn py_err(e: marginflow::Error) -> PyErr {
    use marginflow::Error as E;
    let mut msg = one_line(&e);
    // The library names settings by field; the CLI (and so this module) shows the flag.
    if let E::BadSetting { setting, .. } = &e {
        let flag = if setting == "pattern" {
            "--pattern-from".to_string()
        } else {
            format!("--{}", setting.replace('_', "-"))
        };
        if let Some(rest) = msg.strip_prefix(&format!("{setting}:")) {
            msg = format!("{flag}:{rest}");
        }
    }
    match e {
        E::Io { .. } => PyOSError::new_err(msg),
        E::Solver(marginflow_solvers::SolverError::MemoryLimit { .. }) => PyMemoryError::new_err(msg),
        E::Solver(_) | E::Render { .. } => PyRuntimeError::new_err(msg),
        E::BadData { .. } | E::BadNpy { .. } | E::BadSetting { .. } | E::BadCheckpoint { .. } => {
            PyValueError::new_err(msg)
        }
    }
}

/// `ValueError("<what>: <reason>")`.
pub fn value_error(what: &str, reason: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{what}: {reason}"))
}

/// A 2-D float64 array view of `obj`: the array itself when it already is a float64 ndarray
/// (any memory order, no copy), else `numpy.asarray(obj, dtype=float64)` (numpy's own
/// conversion; its errors become `TypeError` naming `what`).
fn float_array2<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArray2<'py, f64>> {
    if let Ok(a) = obj.extract::<PyReadonlyArray2<'py, f64>>() {
        return Ok(a);
    }
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr("float64")?)?;
    let arr = np
        .call_method("asarray", (obj,), Some(&kwargs))
        .map_err(|e| PyTypeError::new_err(format!("{what}: not convertible to a float64 array: {e}")))?;
    let ndim: usize = arr.getattr("ndim")?.extract()?;
    if ndim != 2 {
        return Err(value_error(
            what,
            format!("expected a 2-D array (n points × d features), got {ndim} dimension(s)"),
        ));
    }
    arr.extract::<PyReadonlyArray2<'py, f64>>()
        .map_err(|e| PyTypeError::new_err(format!("{what}: not a float64 array: {e}")))
}

/// A flat row-major copy of a 2-D array-like (one conversion: a memcpy for a C-contiguous
/// float64 array, one strided pass otherwise), with its shape.
pub fn matrix_rows(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<f64>, usize, usize)> {
    let a = float_array2(py, obj, what)?;
    let (n, d) = (a.shape()[0], a.shape()[1]);
    // `as_slice` accepts Fortran order too (memory order, not row order): only a C-contiguous
    // array is copied as one block.
    let v = match (a.is_c_contiguous(), a.as_slice()) {
        (true, Ok(s)) => {
            // Copy outside the GIL: the array is borrowed read-only for the duration.
            py.detach(|| s.to_vec())
        }
        _ => a.as_array().iter().copied().collect(),
    };
    Ok((v, n, d))
}

/// Whether `obj` is a scipy.sparse matrix or array.
fn is_sparse(py: Python<'_>, obj: &Bound<'_, PyAny>) -> bool {
    match py.import("scipy.sparse") {
        Ok(sp) => sp.call_method1("issparse", (obj,)).and_then(|r| r.extract::<bool>()).unwrap_or(false),
        Err(_) => false,
    }
}

/// A 1-D numpy array of `dtype` from `obj` (`numpy.asarray(obj, dtype=dtype)`).
fn vector<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    dtype: &str,
    what: &str,
) -> PyResult<Vec<T>> {
    let np = py.import("numpy")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", np.getattr(dtype)?)?;
    let arr = np
        .call_method("asarray", (obj,), Some(&kwargs))
        .map_err(|e| PyTypeError::new_err(format!("{what}: not convertible to a {dtype} array: {e}")))?;
    let arr = arr.cast_into::<PyArray1<T>>().map_err(|_| value_error(what, "expected a 1-D array"))?;
    let ro = arr.readonly();
    Ok(ro.as_array().iter().copied().collect())
}

/// A 1-D float64 vector from any array-like (`outer=`).
pub fn vector_f64(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f64>> {
    vector(py, obj, "float64", what)
}

/// The dense row-major X of a scipy.sparse matrix (CSR, or converted with `.tocsr()`): zeros,
/// then each stored entry added at its place (duplicates sum, as `toarray()` does).
fn sparse_rows(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, usize, usize)> {
    let csr =
        if obj.getattr("format")?.extract::<String>()? == "csr" { obj.clone() } else { obj.call_method0("tocsr")? };
    let (n, d): (usize, usize) = csr.getattr("shape")?.extract()?;
    let data: Vec<f64> = vector(py, &csr.getattr("data")?, "float64", "X.data")?;
    let indices: Vec<i64> = vector(py, &csr.getattr("indices")?, "int64", "X.indices")?;
    let indptr: Vec<i64> = vector(py, &csr.getattr("indptr")?, "int64", "X.indptr")?;
    if indptr.len() != n + 1 || data.len() != indices.len() {
        return Err(value_error("X", "malformed CSR matrix (indptr/indices/data lengths disagree with the shape)"));
    }
    if n.checked_mul(d).is_none_or(|e| e > marginflow::model::data::MAX_DENSE_ENTRIES) {
        return Err(value_error("X", format!("{n}×{d} is too large to hold densely")));
    }
    py.detach(|| {
        let mut x = vec![0.0; n * d];
        for i in 0..n {
            let (lo, hi) = (indptr[i], indptr[i + 1]);
            if lo < 0 || hi < lo || hi as usize > data.len() {
                return Err(format!("malformed CSR matrix (indptr of row {i})"));
            }
            for k in lo as usize..hi as usize {
                let j = indices[k];
                if j < 0 || j as usize >= d {
                    return Err(format!("column index {j} of row {i} is outside [0, {d})"));
                }
                x[i * d + j as usize] += data[k];
            }
        }
        Ok(x)
    })
    .map(|x| (x, n, d))
    .map_err(|r| value_error("X", r))
}

/// Labels in {−1, +1} or {0, 1} (0 → −1; mixing 0 and −1 is rejected as in data files).
fn labels(py: Python<'_>, obj: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<f64>> {
    let raw: Vec<f64> = vector(py, obj, "float64", "y")?;
    if raw.len() != n {
        return Err(value_error("y", format!("{} labels for {n} points (rows of X)", raw.len())));
    }
    let (mut zero, mut minus) = (None, None);
    let mut y = Vec::with_capacity(n);
    for (i, &v) in raw.iter().enumerate() {
        if v == 1.0 {
            y.push(1.0);
        } else if v == -1.0 || v == 0.0 {
            let (mine, other, o) = if v == 0.0 { (&mut zero, minus, -1) } else { (&mut minus, zero, 0) };
            if let Some(k) = other {
                return Err(value_error(
                    "y",
                    format!("label {v} at index {i} mixed with label {o} (index {k}): use -1/+1 or 0/1, not both"),
                ));
            }
            mine.get_or_insert(i);
            y.push(-1.0);
        } else {
            return Err(value_error("y", format!("label {v} at index {i} is not one of -1, 0, +1")));
        }
    }
    Ok(y)
}

/// The data set of (X, y): X dense (any float64-convertible 2-D array) or scipy.sparse; features
/// must be finite. `training` adds the checks `flow`/`maxmargin`/`descent` make (both classes, no
/// zero point).
pub fn dataset(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>, training: bool) -> PyResult<Dataset> {
    let (xv, n, d) = if is_sparse(py, x) { sparse_rows(py, x)? } else { matrix_rows(py, x, "X")? };
    if n == 0 || d == 0 {
        return Err(value_error("X", format!("shape ({n}, {d}): need at least one point and one feature")));
    }
    if let Some(k) = xv.iter().position(|v| !v.is_finite()) {
        return Err(value_error("X", format!("entry ({}, {}) is {}: features must be finite", k / d, k % d, xv[k])));
    }
    let yv = labels(py, y, n)?;
    let data = Dataset { n, d, x: xv, y: yv };
    if training {
        data.validate_for_training(std::path::Path::new("(X, y)")).map_err(py_err)?;
    }
    Ok(data)
}

/// A serde value as Python objects (dicts, lists, floats, ints, strings), field names kept.
pub fn to_py<'py>(py: Python<'py>, v: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| PyRuntimeError::new_err(format!("converting a result: {e}")))
}

/// Trajectory rows (serializable objects) as a dict of columns, keys in order of first appearance:
/// numbers → float64 arrays (absent → NaN; integer counters → int64 arrays), lists of numbers →
/// 2-D float64 arrays padded with NaN (`singular_values`), booleans → bool arrays, anything else
/// (the `_decimal` strings at high precision) → lists.
pub fn columns<'py, R: Serialize>(py: Python<'py>, rows: &[R]) -> PyResult<Bound<'py, PyDict>> {
    use serde_json::Value;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).map_err(|e| PyRuntimeError::new_err(format!("converting a row: {e}"))))
        .collect::<PyResult<_>>()?;
    let mut keys: Vec<String> = Vec::new();
    for r in &rows {
        if let Value::Object(o) = r {
            for k in o.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    let np = py.import("numpy")?;
    let out = PyDict::new(py);
    for k in &keys {
        let col: Vec<&Value> = rows.iter().map(|r| r.get(k).unwrap_or(&Value::Null)).collect();
        let present = || col.iter().filter(|v| !v.is_null());
        let obj: Bound<'py, PyAny> = if present().all(|v| v.is_u64() || v.is_i64()) {
            if col.iter().any(|v| v.is_null()) {
                PyArray1::from_vec(py, col.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()).into_any()
            } else {
                PyArray1::from_vec(py, col.iter().map(|v| v.as_i64().unwrap_or(0)).collect::<Vec<i64>>()).into_any()
            }
        } else if present().all(|v| v.is_number()) {
            PyArray1::from_vec(py, col.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()).into_any()
        } else if present().all(|v| v.is_boolean()) && col.iter().all(|v| !v.is_null()) {
            let b: Vec<bool> = col.iter().map(|v| v.as_bool().unwrap_or(false)).collect();
            np.call_method1("array", (b,))?
        } else if present().all(|v| v.as_array().is_some_and(|a| a.iter().all(|x| x.is_number()))) {
            let width = col.iter().filter_map(|v| v.as_array()).map(|a| a.len()).max().unwrap_or(0);
            let mut flat = vec![f64::NAN; col.len() * width];
            for (i, v) in col.iter().enumerate() {
                if let Some(a) = v.as_array() {
                    for (j, x) in a.iter().enumerate() {
                        flat[i * width + j] = x.as_f64().unwrap_or(f64::NAN);
                    }
                }
            }
            PyArray1::from_vec(py, flat).reshape([col.len(), width])?.into_any()
        } else {
            let items: Vec<Bound<'py, PyAny>> = col.iter().map(|v| to_py(py, v)).collect::<PyResult<_>>()?;
            PyList::new(py, items)?.into_any()
        };
        out.set_item(k, obj)?;
    }
    Ok(out)
}
