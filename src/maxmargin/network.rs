//! The network max-margin QP on an activation pattern, in small coordinates: its matrices, the
//! closed form with every margin active, the polish and active-set refinement, and the
//! certificate.

use super::{small_data, Certificate, MaxMarginSettings, Method, Reference};
use crate::error::{Error, Result};
use crate::model::network::Network;
use marginflow_solvers::qp::{polish_active_set, Qp, SparseMatrix};
use marginflow_solvers::{interrupt, linalg, memory};
use marginflow_solvers::{Mat, Real};

/// The pattern QP in small coordinates.
pub(super) struct PatternProblem<T> {
    m: usize,
    n: usize,
    k: usize,
    prec: u32,
    /// X̂ (n×k), X̂ X̂ᵀ = K.
    xhat: Mat<T>,
    /// ‖x_i‖.
    xnorm: Vec<T>,
    a: Vec<T>,
    y: Vec<T>,
    /// Slopes s_ji (m×n).
    slopes: Vec<T>,
    pattern: Vec<i8>,
    /// Inequalities G z ≤ h: rows 0..n margins, n + j·n + i pattern (j, i); z = vec(Z) row-major.
    g: Mat<T>,
    h: Vec<T>,
    tolerance: T,
}

impl<T: Real> PatternProblem<T> {
    pub(super) fn new(net: &Network<T>, pattern: &[i8], settings: &MaxMarginSettings) -> Result<Self> {
        let (m, n, p) = (net.m, net.n, net.prec);
        if pattern.len() != m * n {
            return Err(Error::setting(
                "pattern",
                format!("pattern has {} entries, the model needs {m}×{n}", pattern.len()),
            ));
        }
        memory::check("the primal pattern QP's dense constraint matrix", super::pattern_qp_bytes(net) as u64)?;
        let xhat = small_data(net);
        let k = xhat.cols;
        let xnorm: Vec<T> = (0..n).map(|i| linalg::dot(xhat.row(i), xhat.row(i)).sqrt()).collect();
        let one = T::one(p);
        let slopes: Vec<T> = pattern.iter().map(|&s| if s > 0 { one.clone() } else { net.gamma.clone() }).collect();
        let nv = m * k;
        let mut g = Mat::zeros(n + m * n, nv, p);
        let mut h = vec![T::zero(p); n + m * n];
        for i in 0..n {
            h[i] = -one.clone();
            for j in 0..m {
                let coef = -(net.y[i].clone() * &net.a[j] * &slopes[j * n + i]);
                for c in 0..k {
                    *g.at_mut(i, j * k + c) = coef.clone() * xhat.at(i, c);
                }
            }
        }
        for j in 0..m {
            for i in 0..n {
                let row = n + j * n + i;
                for c in 0..k {
                    let v = xhat.at(i, c).clone();
                    *g.at_mut(row, j * k + c) = if pattern[j * n + i] > 0 { -v } else { v };
                }
            }
        }
        let tolerance = T::epsilon(p) * &T::from_f64(settings.tolerance_factor * (nv + n) as f64, p);
        Ok(PatternProblem {
            m,
            n,
            k,
            prec: p,
            xhat,
            xnorm,
            a: net.a.clone(),
            y: net.y.clone(),
            slopes,
            pattern: pattern.to_vec(),
            g,
            h,
            tolerance,
        })
    }

    /// The QP for clarabel (f64).
    pub(super) fn qp_f64(&self) -> Qp {
        let nv = self.m * self.k;
        let mut g = SparseMatrix::new(self.g.rows, nv);
        for r in 0..self.g.rows {
            for (c, v) in self.g.row(r).iter().enumerate() {
                let v = v.to_f64();
                if v != 0.0 {
                    g.push(r, c, v);
                }
            }
        }
        Qp::new(SparseMatrix::identity(nv), vec![0.0; nv], g, self.h.iter().map(|v| v.to_f64()).collect())
    }

    /// Label of constraint r for messages.
    fn label(&self, r: usize) -> String {
        if r < self.n {
            format!("margin constraint of point {r}")
        } else {
            let (j, i) = ((r - self.n) / self.n, (r - self.n) % self.n);
            format!("pattern constraint S_{{{j},{i}}}<w_{j},x_{i}> ≥ 0")
        }
    }

    /// Residuals of every constraint at Z: returns (P = Z X̂ᵀ, margins q, margin scales σ_i,
    /// per-constraint relative violation of G z ≤ h (positive = violated)).
    fn evaluate(&self, z: &Mat<T>) -> (Mat<T>, Vec<T>, Vec<T>, Vec<T>) {
        let (m, n, p) = (self.m, self.n, self.prec);
        let pre = z.matmul(&self.xhat.transpose());
        let zn: Vec<T> = (0..m).map(|j| linalg::dot(z.row(j), z.row(j)).sqrt()).collect();
        let mut q = vec![T::zero(p); n];
        let mut scale = vec![T::zero(p); n];
        for i in 0..n {
            for j in 0..m {
                let t = self.a[j].clone() * &self.slopes[j * n + i] * pre.at(j, i);
                scale[i] += &t.abs();
                q[i] += &t;
            }
            q[i] *= &self.y[i];
        }
        let one = T::one(p);
        let mut viol = Vec::with_capacity(n + m * n);
        for i in 0..n {
            let s = scale[i].max_of(&one);
            viol.push((one.clone() - &q[i]) / &s);
        }
        for (j, znj) in zn.iter().enumerate() {
            for i in 0..n {
                let v = pre.at(j, i).clone();
                let sv = if self.pattern[j * n + i] > 0 { -v } else { v };
                let s = znj.clone() * &self.xnorm[i];
                viol.push(if s > T::zero(p) { sv / &s } else { sv });
            }
        }
        (pre, q, scale, viol)
    }

    /// Check the KKT conditions at (Z, ν on `active`), returning the reference.
    fn certify(&self, z: Mat<T>, nu: &[T], active: &[usize], method: Method) -> Reference<T> {
        let (m, n, k, p) = (self.m, self.n, self.k, self.prec);
        let zero = T::zero(p);
        let tol = self.tolerance.clone();
        let (pre, q, _scale, viol) = self.evaluate(&z);
        let mut failure: Option<String> = None;
        let mut numax = zero.clone();
        for v in nu {
            numax = numax.max_of(&v.abs());
        }
        let mut min_mult = zero.clone();
        for (r, v) in active.iter().zip(nu) {
            let rel = if numax > zero { v.clone() / &numax } else { zero.clone() };
            if rel < min_mult {
                min_mult = rel.clone();
            }
            if rel < -tol.clone() && failure.is_none() {
                let what =
                    if *r < n { format!("multiplier λ_{r}") } else { format!("multiplier of the {}", self.label(*r)) };
                failure = Some(format!("{what} is negative ({:e})", v.to_f64()));
            }
        }
        let is_active: Vec<bool> = {
            let mut a = vec![false; self.g.rows];
            for &r in active {
                a[r] = true;
            }
            a
        };
        let (mut mv, mut amg, mut pv, mut apg) = (zero.clone(), zero.clone(), zero.clone(), zero.clone());
        for (r, v) in viol.iter().enumerate() {
            if r < n {
                mv = mv.max_of(v);
                if is_active[r] {
                    amg = amg.max_of(&v.abs());
                }
            } else {
                pv = pv.max_of(v);
                if is_active[r] {
                    apg = apg.max_of(&v.abs());
                }
            }
        }
        if failure.is_none() {
            if let Some(i) = (0..n).find(|&i| viol[i] > tol) {
                failure = Some(format!("margin of point {i} is {:.17e} < 1", q[i].to_f64()));
            } else if let Some(i) = (0..n).find(|&i| is_active[i] && viol[i].abs() > tol) {
                failure = Some(format!("active margin of point {i} is {:.17e} ≠ 1", q[i].to_f64()));
            } else if let Some(r) = (n..viol.len()).find(|&r| viol[r] > tol) {
                let (j, i) = ((r - n) / n, (r - n) % n);
                failure = Some(format!(
                    "sign of <w_{j},x_{i}> is wrong for the pattern (value {:e}, pattern {:+})",
                    pre.at(j, i).to_f64(),
                    self.pattern[j * n + i]
                ));
            } else if let Some(r) = (n..viol.len()).find(|&r| is_active[r] && viol[r].abs() > tol) {
                let (j, i) = ((r - n) / n, (r - n) % n);
                failure = Some(format!("active pattern constraint <w_{j},x_{i}> = {:e} ≠ 0", pre.at(j, i).to_f64()));
            }
        }
        // Stationarity Z + G_Aᵀ ν = 0 (P = I, q = 0).
        let mut res = z.data.clone();
        let mut scale_st = z.frobenius_norm();
        for (r, v) in active.iter().zip(nu) {
            let row = self.g.row(*r);
            for (x, gv) in res.iter_mut().zip(row) {
                x.add_mul_mut(v, gv);
            }
            scale_st += &(v.abs() * &linalg::dot(row, row).sqrt());
        }
        let st = linalg::dot(&res, &res).sqrt() / &scale_st.max_of(&T::epsilon(p));
        if failure.is_none() && st > tol {
            failure = Some(format!("stationarity residual {:e} exceeds {:e}", st.to_f64(), tol.to_f64()));
        }
        // Multipliers and span coefficients.
        let mut lambda = vec![zero.clone(); n];
        let mut mu = vec![zero.clone(); m * n];
        for (r, v) in active.iter().zip(nu) {
            if *r < n {
                lambda[*r] = v.clone();
            } else {
                mu[*r - n] = v.clone();
            }
        }
        let mut c = Mat::zeros(m, n, p);
        for j in 0..m {
            for i in 0..n {
                let mut v = lambda[i].clone() * &self.y[i] * &self.a[j] * &self.slopes[j * n + i];
                if self.pattern[j * n + i] > 0 {
                    v += &mu[j * n + i];
                } else {
                    v -= &mu[j * n + i];
                }
                *c.at_mut(j, i) = v;
            }
        }
        debug_assert_eq!(z.cols, k);
        let norm = z.frobenius_norm();
        let active_margins: Vec<usize> = active.iter().copied().filter(|&r| r < n).collect();
        let active_pattern = active.len() - active_margins.len();
        Reference {
            coefficients: c,
            multipliers: lambda,
            norm,
            certified: failure.is_none(),
            failure,
            pattern_multipliers: mu,
            small: z,
            preactivations: pre,
            margins: q,
            active: active_margins,
            active_pattern,
            certificate: Certificate {
                min_multiplier: min_mult,
                margin_violation: mv,
                active_margin_gap: amg,
                pattern_violation: pv,
                active_pattern_gap: apg,
                stationarity: st,
                tolerance: tol,
            },
            method,
            solver_status: None,
            iterations: 0,
            refinements: 0,
        }
    }

    /// Polish on `active` and refine the active set until the KKT signs hold (or the budget ends).
    pub(super) fn polish_and_refine(
        &self,
        mut active: Vec<usize>,
        max_refinements: usize,
    ) -> std::result::Result<(Reference<T>, usize), String> {
        let nv = self.m * self.k;
        let p = self.prec;
        let eye = Mat::identity(nv, p);
        let q0 = vec![T::zero(p); nv];
        let mut steps = 0;
        loop {
            if interrupt::requested() {
                return Err("interrupted".into());
            }
            active.sort_unstable();
            let (x, nu) = polish_active_set(&eye, &q0, &self.g, &self.h, &active, p)
                .map_err(|e| format!("active set of {} constraints cannot be polished: {e}", active.len()))?;
            let z = Mat::from_vec(self.m, self.k, x);
            if steps >= max_refinements {
                return Ok((self.certify(z, &nu, &active, Method::Qp), steps));
            }
            // Most negative multiplier beyond tolerance: drop it.
            let mut numax = T::zero(p);
            for v in &nu {
                numax = numax.max_of(&v.abs());
            }
            let cut = -(self.tolerance.clone() * &numax);
            let mut worst: Option<(usize, T)> = None;
            for (pos, v) in nu.iter().enumerate() {
                if *v < cut && worst.as_ref().is_none_or(|(_, w)| v < w) {
                    worst = Some((pos, v.clone()));
                }
            }
            if let Some((pos, _)) = worst {
                active.remove(pos);
                steps += 1;
                continue;
            }
            // Most violated inactive constraint beyond tolerance: add it.
            let (_, _, _, viol) = self.evaluate(&z);
            let mut worst: Option<(usize, T)> = None;
            for (r, v) in viol.iter().enumerate() {
                if *v > self.tolerance && active.binary_search(&r).is_err() && worst.as_ref().is_none_or(|(_, w)| v > w)
                {
                    worst = Some((r, v.clone()));
                }
            }
            if let Some((r, _)) = worst {
                active.push(r);
                steps += 1;
                continue;
            }
            return Ok((self.certify(z, &nu, &active, Method::Qp), steps));
        }
    }

    /// Closed form on the theory pattern with all margins active and no pattern constraint.
    pub(super) fn closed_form(&self) -> Option<Reference<T>> {
        let (m, n, p) = (self.m, self.n, self.prec);
        let k_mat = self.xhat.matmul(&self.xhat.transpose());
        let mut mmat = Mat::zeros(n, n, p);
        for i in 0..n {
            for l in 0..n {
                let mut acc = T::zero(p);
                for j in 0..m {
                    let t = self.a[j].clone() * &self.a[j] * &self.slopes[j * n + i];
                    acc.add_mul_mut(&t, &self.slopes[j * n + l]);
                }
                *mmat.at_mut(i, l) = acc * k_mat.at(i, l) * &self.y[i] * &self.y[l];
            }
        }
        let lambda = linalg::lu_solve(&mmat, &vec![T::one(p); n]).ok()?;
        // Z = Σ_i λ_i y_i (a_j s_ji) x̂_i, row by row.
        let mut z: Mat<T> = Mat::zeros(m, self.k, p);
        for j in 0..m {
            for (i, li) in lambda.iter().enumerate() {
                let coef = li.clone() * &self.y[i] * &self.a[j] * &self.slopes[j * n + i];
                for c in 0..self.k {
                    z.at_mut(j, c).add_mul_mut(&coef, self.xhat.at(i, c));
                }
            }
        }
        let active: Vec<usize> = (0..n).collect();
        Some(self.certify(z, &lambda, &active, Method::ClosedForm))
    }
}
