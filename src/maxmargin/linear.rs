//! The linear max-margin problem min ½‖z‖² s.t. y_i⟨z, x_i⟩ ≥ 1, through its dual in Gram
//! coordinates, solved, polished and certified like the network QP.

use super::{run_clarabel, MaxMarginSettings};
use crate::error::Result;
use crate::model::network::Network;
use marginflow_solvers::linalg;
use marginflow_solvers::qp::{polish_active_set, Qp, QpStatus, SparseMatrix};
use marginflow_solvers::{Mat, Real};

/// The linear max-margin predictor z* = Σ α_i y_i x_i.
#[derive(Clone, Debug)]
pub struct LinearMaxMargin<T> {
    /// clarabel's status on the dual.
    pub status: QpStatus,
    /// Multipliers α_i of min ½‖z‖² s.t. y_i⟨z,x_i⟩ ≥ 1 (data order; empty without a solution).
    pub multipliers: Vec<T>,
    /// ‖z*‖ (NaN-free: zero without a solution).
    pub norm: T,
    /// Margins y_i⟨z*, x_i⟩.
    pub margins: Vec<T>,
    /// Whether the KKT conditions hold at working precision.
    pub certified: bool,
    /// The first failed condition.
    pub failure: Option<String>,
}

/// Solve and certify the linear max-margin problem through its dual in Gram coordinates.
pub fn linear_max_margin<T: Real>(net: &Network<T>, settings: &MaxMarginSettings) -> Result<LinearMaxMargin<T>> {
    settings.validate()?;
    let (n, p) = (net.n, net.prec);
    let zero = T::zero(p);
    let mut hm = Mat::zeros(n, n, p);
    for i in 0..n {
        for l in 0..n {
            *hm.at_mut(i, l) = net.k_mat.at(i, l).clone() * &net.y[i] * &net.y[l];
        }
    }
    let mut ph = SparseMatrix::new(n, n);
    for i in 0..n {
        for l in i..n {
            ph.push(i, l, hm.at(i, l).to_f64());
        }
    }
    let mut gs = SparseMatrix::new(n, n);
    for i in 0..n {
        gs.push(i, i, -1.0);
    }
    let qp = Qp::new(ph, vec![-1.0; n], gs, vec![0.0; n]);
    let sol = run_clarabel(&qp, &settings.qp)?;
    let none = |status: QpStatus, why: String| LinearMaxMargin {
        status,
        multipliers: Vec::new(),
        norm: zero.clone(),
        margins: Vec::new(),
        certified: false,
        failure: Some(why),
    };
    if !sol.status.has_solution() {
        let why = format!("QP solver status {:?} on the dual: no solution to polish", sol.status);
        return Ok(none(sol.status, why));
    }
    let mut g = Mat::zeros(n, n, p);
    for i in 0..n {
        *g.at_mut(i, i) = -T::one(p);
    }
    let h = vec![zero.clone(); n];
    let q = vec![-T::one(p); n];
    let tol = T::epsilon(p) * &T::from_f64(settings.tolerance_factor * (2 * n) as f64, p);
    let mut active = sol.active_set();
    let mut steps = 0;
    loop {
        active.sort_unstable();
        let (alpha, nu) = match polish_active_set(&hm, &q, &g, &h, &active, p) {
            Ok(v) => v,
            Err(e) => return Ok(none(sol.status, format!("dual active set cannot be polished: {e}"))),
        };
        // Margins (Hα)_i; ν_r = margin − 1 for the active bounds α_r = 0.
        let margins: Vec<T> = (0..n).map(|i| linalg::dot(hm.row(i), &alpha)).collect();
        let scale: Vec<T> = (0..n)
            .map(|i| {
                let mut s = T::zero(p);
                for (hv, av) in hm.row(i).iter().zip(&alpha) {
                    s += &(hv.clone() * av).abs();
                }
                s.max_of(&T::one(p))
            })
            .collect();
        let mut amax = zero.clone();
        for a in &alpha {
            amax = amax.max_of(&a.abs());
        }
        let one = T::one(p);
        let neg_alpha = (0..n).find(|&i| active.binary_search(&i).is_err() && alpha[i] < -(tol.clone() * &amax));
        // ν_r = (Hα)_r − 1 is the multiplier of the bound α_r ≥ 0 (the margin slack of point r).
        let neg_nu = active.iter().zip(&nu).find(|(r, v)| (*v).clone() / &scale[**r] < -tol.clone()).map(|(r, _)| *r);
        if steps < settings.max_refinements {
            if let Some(i) = neg_alpha {
                active.push(i);
                steps += 1;
                continue;
            }
            if let Some(r) = neg_nu {
                active.retain(|&x| x != r);
                steps += 1;
                continue;
            }
        }
        let mut failure = None;
        if let Some(i) = neg_alpha {
            failure = Some(format!("multiplier α_{i} is negative ({:e})", alpha[i].to_f64()));
        } else if let Some(i) = (0..n).find(|&i| (one.clone() - &margins[i]) / &scale[i] > tol) {
            failure = Some(format!("linear margin of point {i} is {:.17e} < 1", margins[i].to_f64()));
        } else if let Some(i) =
            (0..n).find(|&i| active.binary_search(&i).is_err() && ((margins[i].clone() - &one) / &scale[i]).abs() > tol)
        {
            failure = Some(format!("support vector {i} has linear margin {:.17e} ≠ 1", margins[i].to_f64()));
        }
        // ‖z‖² = αᵀHα.
        let norm = linalg::dot(&alpha, &margins).sqrt();
        return Ok(LinearMaxMargin {
            status: sol.status,
            multipliers: alpha,
            norm,
            margins,
            certified: failure.is_none(),
            failure,
        });
    }
}
