//! The max-margin problem on a pattern in its dual, with n multipliers (plus the sign
//! constraints an active set adds): no matrix grows faster than n² + m n.
//!
//! On a pattern with slopes s_ji ∈ {γ, 1} and pinned sets S_j (w_j ⊥ x_l for l ∈ S_j), the
//! margin constraints y_i f(x_i; W) ≥ 1 have the Gram matrix A = Σ_j a_j² D_j G_j D_j
//! (D_j = diag(y ⊙ s_j), 0 on S_j; G_j = K − K_{:,S} K_SS⁻¹ K_{S,:}), the dual of min ½‖W‖² is
//! max 1ᵀλ − ½ λᵀAλ over λ ≥ 0, and W* = C X with C_ji = λ_i y_i a_j s_ji (pinned entries:
//! C_S = −K_SS⁻¹ K_{S,F} C_F). A sign constraint S_ji ⟨w_j, x_i⟩ ≥ 0 that W* violates joins the
//! dual with its multiplier μ_ji ≥ 0 and gradient S_ji e_j x_iᵀ (Gram entries from G_j), and
//! the dual is solved again, until W* keeps its pattern. The box QP is solved at working
//! precision (exact on its final active set), then every KKT condition is checked in W-space.

use super::{Certificate, MaxMarginSettings, Method, Reference};
use crate::error::{Error, Result};
use crate::flow::dual::kernel::Kernel;
use crate::flow::dual::rows::RowSet;
use crate::flow::span::Mode;
use crate::model::network::Network;
use marginflow_solvers::boxqp::{self, BoxSide};
use marginflow_solvers::{interrupt, memory, Mat, Real, SolverError};
use std::mem::size_of;

/// Rounds of the active set on the sign constraints.
pub const MAX_ROUNDS: usize = 50;

/// The certified solution on `modes` (`Positive`/`Negative` sides, `Sliding` for pinned
/// entries), or why there is none (`Interrupted` on a stop request, polled every round;
/// `MemoryLimit` when the rounds' matrix would exceed the limit).
pub fn dual_max_margin<T: Real>(
    net: &Network<T>,
    modes: &[Mode],
    settings: &MaxMarginSettings,
) -> Result<Reference<T>> {
    dual_max_margin_limited(net, modes, settings, usize::MAX)
}

/// [`dual_max_margin`] giving up once the active set holds more than `max_extra` sign
/// constraints (each round's box QP costs O((n + extra)³)).
pub fn dual_max_margin_limited<T: Real>(
    net: &Network<T>,
    modes: &[Mode],
    settings: &MaxMarginSettings,
    max_extra: usize,
) -> Result<Reference<T>> {
    let (m, n, p) = (net.m, net.n, net.prec);
    let rows = RowSet::new(net, &vec![T::zero(p); m * n], modes.to_vec());
    let kernel = Kernel::new(net, &rows, &vec![T::zero(p); n], vec![T::zero(p); n]);
    let (one, zero) = (T::one(p), T::zero(p));
    let sign = |k: usize| -> T {
        match modes[k] {
            Mode::Negative => -T::one(p),
            _ => T::one(p),
        }
    };
    // G_j[i, l] = K_il − (K_{i,S} Z_j)_l.
    let g_entry = |j: usize, i: usize, l: usize| -> T {
        let mut v = net.k_mat.at(i, l).clone();
        if let Some(pr) = &rows.pinned[j] {
            for (r, &s) in pr.set.iter().enumerate() {
                v -= &(net.k_mat.at(i, s).clone() * pr.z.at(r, l));
            }
        }
        v
    };
    let mut extra: Vec<usize> = Vec::new();
    let big = T::from_f64(1e200, p);
    let tol = T::epsilon(p) * &T::from_f64(settings.tolerance_factor * (n + m * n) as f64, p);
    let mut iterations = 0usize;
    for round in 0..MAX_ROUNDS {
        interrupt::check()?;
        let nv = n + extra.len();
        // H and the box QP's factor of its free block: about 2 nv² values.
        memory::check(
            "the dual max-margin QP (its (n + added sign constraints)² matrix)",
            memory::bytes_of(2 * nv * nv, size_of::<T>()),
        )?;
        let mut h = vec![T::zero(p); nv * nv];
        for i in 0..n {
            for k in 0..n {
                h[i * nv + k] = kernel.a.at(i, k).clone();
            }
        }
        for (c, &e) in extra.iter().enumerate() {
            let (j, l) = (e / n, e % n);
            let se = sign(e);
            for i in 0..n {
                let si = rows.slope(net, j * n + i, &one, &zero);
                if si.sign() == Some(std::cmp::Ordering::Equal) {
                    continue;
                }
                let v = net.a[j].clone() * &net.y[i] * si * &se * &g_entry(j, i, l);
                h[i * nv + n + c] = v.clone();
                h[(n + c) * nv + i] = v;
            }
            for (c2, &e2) in extra.iter().enumerate() {
                if e2 / n == j {
                    h[(n + c) * nv + n + c2] = se.clone() * &sign(e2) * &g_entry(j, l, e2 % n);
                }
            }
        }
        let mut g = vec![T::zero(p); nv];
        for gi in g.iter_mut().take(n) {
            *gi = -one.clone();
        }
        let start = vec![T::zero(p); nv];
        let sol =
            boxqp::solve_box_qp_interruptible(&h, &g, &zero, &big, &start, 1e3 * nv as f64 * T::epsilon(p).to_f64())?;
        iterations += sol.iterations;
        if !sol.converged {
            return Err(qp_error(format!("the dual box QP did not converge ({} iterations)", sol.iterations)));
        }
        let lambda: Vec<T> = sol.x[..n].to_vec();
        let mut mu = vec![T::zero(p); m * n];
        for (c, &e) in extra.iter().enumerate() {
            mu[e] = sol.x[n + c].clone();
        }
        // C: free entries λ_i y_i a_j s_ji + μ_ji S_ji; pinned C_S = −Z_{S,F} C_F.
        let mut coef = Mat::zeros(m, n, p);
        for j in 0..m {
            for i in 0..n {
                let k = j * n + i;
                if modes[k] == Mode::Sliding {
                    continue;
                }
                let s = rows.slope(net, k, &one, &zero);
                let v = lambda[i].clone() * &net.y[i] * &net.a[j] * s + &(mu[k].clone() * &sign(k));
                *coef.at_mut(j, i) = v;
            }
            if let Some(pr) = &rows.pinned[j] {
                for (r, &l) in pr.set.iter().enumerate() {
                    let mut v = T::zero(p);
                    for i in 0..n {
                        if modes[j * n + i] != Mode::Sliding {
                            v -= &(pr.z.at(r, i).clone() * coef.at(j, i));
                        }
                    }
                    *coef.at_mut(j, l) = v;
                }
            }
        }
        let mut pre = Mat::zeros(m, n, p);
        T::gemm(m, n, n, &coef.data, &net.k_mat.data, &mut pre.data, false);
        // Sign constraints: S_ji P*_ji ≥ 0 up to the round-off of P*.
        let kmax = net.k_mat.data.iter().fold(zero.clone(), |acc, v| acc.max_of(&v.abs()));
        let mut violated: Vec<usize> = Vec::new();
        for j in 0..m {
            let c1 = coef.row(j).iter().fold(zero.clone(), |acc, v| acc + &v.abs());
            let scale = c1 * &kmax;
            for i in 0..n {
                let k = j * n + i;
                if modes[k] == Mode::Sliding || extra.contains(&k) {
                    continue;
                }
                let sv = pre.at(j, i).clone() * &sign(k);
                if sv < -(tol.clone() * &scale) {
                    violated.push(k);
                }
            }
        }
        if !violated.is_empty() {
            if extra.len() + violated.len() > max_extra {
                return Err(qp_error(format!(
                    "{} sign constraints are violated after {} rounds (limit {max_extra})",
                    extra.len() + violated.len(),
                    round + 1
                )));
            }
            extra.extend(violated);
            extra.sort_unstable();
            continue;
        }
        let side_free: Vec<bool> = sol.side.iter().map(|s| *s == BoxSide::Free).collect();
        return Ok(certify(net, modes, &rows, coef, pre, lambda, mu, &extra, &side_free, tol, iterations, round));
    }
    Err(qp_error(format!(
        "the sign constraints' active set did not settle in {MAX_ROUNDS} rounds ({} added)",
        extra.len()
    )))
}

fn qp_error(why: String) -> Error {
    SolverError::Qp(why).into()
}

/// Check the KKT conditions of (C, λ, μ) in W-space and build the reference.
#[allow(clippy::too_many_arguments)]
fn certify<T: Real>(
    net: &Network<T>,
    modes: &[Mode],
    rows: &RowSet<T>,
    coef: Mat<T>,
    pre: Mat<T>,
    lambda: Vec<T>,
    mu: Vec<T>,
    extra: &[usize],
    free: &[bool],
    tol: T,
    iterations: usize,
    rounds: usize,
) -> Reference<T> {
    let (m, n, p) = (net.m, net.n, net.prec);
    let (one, zero) = (T::one(p), T::zero(p));
    let sign = |k: usize| -> T {
        match modes[k] {
            Mode::Negative => -T::one(p),
            _ => T::one(p),
        }
    };
    // Margins and their scales σ_i = Σ_j |a_j s_ji P*_ji|.
    let mut q = vec![T::zero(p); n];
    let mut scale = vec![T::zero(p); n];
    for j in 0..m {
        for i in 0..n {
            let t = net.a[j].clone() * rows.slope(net, j * n + i, &one, &zero) * pre.at(j, i);
            scale[i] += &t.abs();
            q[i] += &t;
        }
    }
    for (qi, yi) in q.iter_mut().zip(&net.y) {
        *qi *= yi;
    }
    let mut failure: Option<String> = None;
    let numax = lambda.iter().chain(&mu).fold(zero.clone(), |acc, v| acc.max_of(&v.abs()));
    let mut min_mult = zero.clone();
    for (r, v) in lambda.iter().enumerate() {
        let rel = if numax > zero { v.clone() / &numax } else { zero.clone() };
        min_mult = min_mult.min_of(&rel);
        if rel < -tol.clone() && failure.is_none() {
            failure = Some(format!("multiplier λ_{r} is negative ({:e})", v.to_f64()));
        }
    }
    let (mut mv, mut amg) = (zero.clone(), zero.clone());
    let active: Vec<usize> = (0..n).filter(|&i| lambda[i] > zero && free[i]).collect();
    for i in 0..n {
        let v = (one.clone() - &q[i]) / &scale[i].max_of(&one);
        mv = mv.max_of(&v);
        if active.contains(&i) {
            amg = amg.max_of(&v.abs());
        }
    }
    // Pattern residuals relative to ‖w_j‖‖x_i‖ (‖w_j‖² = C_j K C_jᵀ).
    let wn: Vec<T> = (0..m)
        .map(|j| {
            let mut acc = T::zero(p);
            for i in 0..n {
                acc.add_mul_mut(coef.at(j, i), pre.at(j, i));
            }
            acc.max_of(&zero).sqrt()
        })
        .collect();
    let xn: Vec<T> = (0..n).map(|i| net.k_mat.at(i, i).max_of(&zero).sqrt()).collect();
    let (mut pv, mut apg) = (zero.clone(), zero.clone());
    for j in 0..m {
        for i in 0..n {
            let k = j * n + i;
            let s = wn[j].clone() * &xn[i];
            let rel = |v: T| if s > zero { v / &s } else { v };
            if modes[k] == Mode::Sliding {
                apg = apg.max_of(&rel(pre.at(j, i).abs()));
                continue;
            }
            let viol = rel(-(pre.at(j, i).clone() * &sign(k)));
            pv = pv.max_of(&viol);
            if mu[k] > zero {
                apg = apg.max_of(&rel(pre.at(j, i).abs()));
            }
        }
    }
    if failure.is_none() {
        if mv > tol {
            let i = (0..n).max_by(|&a, &b| (one.clone() - &q[a]).partial_cmp(&(one.clone() - &q[b])).unwrap()).unwrap();
            failure = Some(format!("margin of point {i} is {:.17e} < 1", q[i].to_f64()));
        } else if amg > tol {
            failure = Some(format!("an active margin is off 1 by {:e} (relative)", amg.to_f64()));
        } else if pv > tol {
            failure = Some(format!("a sign constraint of the pattern is violated by {:e} (relative)", pv.to_f64()));
        } else if apg > tol {
            failure = Some(format!("an active or pinned pre-activation is off 0 by {:e} (relative)", apg.to_f64()));
        }
    }
    let mut norm2 = T::zero(p);
    for (c, v) in coef.data.iter().zip(&pre.data) {
        norm2.add_mul_mut(c, v);
    }
    let norm = norm2.max_of(&zero).sqrt();
    let small = net.small_span(&coef.data);
    let certificate = Certificate {
        min_multiplier: min_mult,
        margin_violation: mv,
        active_margin_gap: amg,
        pattern_violation: pv,
        active_pattern_gap: apg,
        // W* is the multipliers' combination of the constraint gradients by construction.
        stationarity: T::zero(p),
        tolerance: tol,
    };
    let active_pattern = extra.iter().filter(|&&k| mu[k] > zero).count();
    Reference {
        coefficients: coef,
        multipliers: lambda,
        norm,
        certified: failure.is_none(),
        failure,
        pattern_multipliers: mu,
        small,
        preactivations: pre,
        margins: q,
        active,
        active_pattern,
        certificate,
        method: Method::Dual,
        solver_status: None,
        iterations: iterations as u32,
        refinements: rounds,
    }
}
