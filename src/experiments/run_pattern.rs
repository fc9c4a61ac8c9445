//! The final activation pattern of a flow run folder, for `maxmargin --pattern-from DIR`
//! (read here so that [`crate::maxmargin`] takes a ready pattern and does not depend on the flow's
//! checkpoint format).

use crate::error::{Error, Result};
use crate::flow::checkpoint::Checkpoint;
use crate::model::data::Dataset;
use crate::model::network::{ModelSettings, Network};
use marginflow_solvers::{linalg, Real};
use std::path::Path;

/// The final activation pattern of a flow run: sign of W Xᵀ from DIR/W.npy if the run wrote it
/// (checked against DIR/run.json, see [`crate::io::rundir::verified_weights`]), else the
/// checkpoint's switching modes (released modes, 0, take the sign of P = P0 + B K). A zero
/// pre-activation counts as +1 (the two slopes agree there: φ(0) = 0).
pub fn pattern_from_run(dir: &Path, data: &Dataset, model: &ModelSettings) -> Result<Vec<i8>> {
    let (m, n, d) = (model.width, data.n, data.d);
    let sign = |v: f64| -> i8 {
        if v < 0.0 {
            -1
        } else {
            1
        }
    };
    // W.npy only when the folder's manifest vouches that this run (on this data) wrote it.
    if let Some(wpath) = crate::io::rundir::verified_weights(dir, &data.hash())? {
        let w = crate::io::npy::read_matrix(&wpath, m, d, "--pattern-from")?;
        let mut s = Vec::with_capacity(m * n);
        for j in 0..m {
            for i in 0..n {
                s.push(sign(linalg::dot(&w[j * d..(j + 1) * d], data.row(i))));
            }
        }
        return Ok(s);
    }
    let cpath = dir.join("checkpoint");
    let cp = Checkpoint::load(&cpath)?;
    let bad = |reason: String| Error::BadCheckpoint { path: cpath.clone(), reason };
    if cp.data_hash != data.hash() {
        return Err(bad("the run was made on other data than --data".into()));
    }
    if cp.settings.model.width != m || cp.modes.len() != m * n {
        return Err(bad(format!(
            "the run has width {} ({} modes), --width is {m}",
            cp.settings.model.width,
            cp.modes.len()
        )));
    }
    if cp.modes.iter().all(|&v| v == 1 || v == -1) {
        return Ok(cp.modes.clone());
    }
    // Released modes: recompute P = P0 + B K from the exact state.
    let b: Vec<f64> = crate::with_real!(cp.precision, T => decode_at::<T>(&cp, m * n).map_err(bad)?,
    missing => return Err(bad(format!(
        "checkpoint at {} bits has released modes; decoding it needs the mpfr feature",
        cp.precision
    ))));
    let net: Network<f64> = Network::new(data, &cp.settings.model, 53)?;
    let mut pre = vec![0.0; m * n];
    net.preactivations_inplace(&b, &mut pre);
    Ok(cp.modes.iter().zip(&pre).map(|(&md, &pv)| if md == 1 || md == -1 { md } else { sign(pv) }).collect())
}

/// The first `len` exact state values of a checkpoint, decoded at their precision and rounded to f64.
fn decode_at<T: Real>(cp: &Checkpoint, len: usize) -> std::result::Result<Vec<f64>, String> {
    cp.y[..len]
        .iter()
        .map(|s| T::from_exact(s).map(|v| v.to_f64()).ok_or_else(|| format!("cannot decode {s:?}")))
        .collect()
}
