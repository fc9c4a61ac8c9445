//! Max-margin references, solved independently of the flow, and certified.
//!
//! **Network, on a pattern.** Within an activation pattern S (S_ji = sign⟨w_j, x_i⟩) the network
//! is linear in W: f(x_i; W) = Σ_j a_j s_ji ⟨w_j, x_i⟩ with slope s_ji = 1 for S_ji = +1 and γ
//! otherwise, so
//!
//! ```text
//!     min ½‖W‖_F²  s.t.  y_i f(x_i; W) ≥ 1,   S_ji ⟨w_j, x_i⟩ ≥ 0
//! ```
//!
//! is a convex QP. Its solution lies in span(X) (every constraint only sees ⟨w_j, x_i⟩), so it is
//! solved in *small coordinates*: with X̃ the network's small representation (X̃ X̃ᵀ = K) and the
//! Householder QR X̃ᵀ = Q R (R of size k×n, k = min(n, rank bound)), X̂ = Rᵀ (n×k) has the same Gram
//! matrix K, and W = Z Q̂ᵀ for Z ∈ R^{m×k}; the objective is ½‖Z‖_F² and all sizes are independent
//! of d. Stationarity reads
//!
//! ```text
//!     w_j = Σ_i (λ_i y_i a_j s_ji + μ_ji S_ji) x_i,   i.e.  W = C X,  C_ji = λ_i y_i a_j s_ji + μ_ji S_ji,
//! ```
//!
//! with λ ≥ 0 the margin multipliers and μ ≥ 0 those of the pattern constraints.
//!
//! **Solve, polish, certify.** clarabel (interior point, `f64`) gives a solution and an active
//! set; [`polish_active_set`] solves the equality KKT system on that set at the working precision
//! (range-space method, no squared condition number); an active-set refinement drops a negative
//! multiplier or adds a violated constraint and re-polishes (a few primal–dual active-set steps);
//! then every KKT condition is checked at working precision ([`Certificate`]): multipliers ≥ 0,
//! margins ≥ 1 with equality on the active set, pattern constraints satisfied (= 0 where active),
//! stationarity residual at round-off. Since the QP is convex, a certified point is its global
//! minimizer. When clarabel does not reach `Solved`/`AlmostSolved`, nothing is polished: its
//! status is reported and the result is not certified.
//!
//! **Linear.** min ½‖z‖² s.t. y_i⟨z, x_i⟩ ≥ 1 (no intercept) through its dual in Gram
//! coordinates: z = Σ_i α_i y_i x_i, min ½ αᵀHα − 1ᵀα s.t. α ≥ 0 with H_ik = y_i y_k K_ik; then
//! ‖z‖² = Σ α_i at the optimum. Same solve–polish–certify pipeline (general-P polish).
//!
//! Closed form used by the tests: exactly orthogonal data with a balanced outer layer of even
//! width gives λ_i = 2/((1+γ²)‖x_i‖²) and ‖W*‖_F² = Σ λ_i.

use crate::error::{Error, Result};
use crate::flow::checkpoint::Checkpoint;
use crate::metrics::{put, put_list, Num};
use crate::model::data::Dataset;
use crate::model::network::{ModelSettings, Network};
use marginflow_solvers::linalg::{self, householder_qr_of_transpose};
use marginflow_solvers::qp::{polish_active_set, solve_qp, Qp, QpSettings, QpSolution, QpStatus, SparseMatrix};
use marginflow_solvers::{Mat, Real};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings of the max-margin solves and of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaxMarginSettings {
    /// Interior-point settings (default: [`QpSettings::default`], tolerance 1e-12).
    pub qp: QpSettings,
    /// Maximum number of active-set refinement steps after the first polish (default: 50).
    pub max_refinements: usize,
    /// Certificate tolerance factor c: residuals must be ≤ c·N·ε, with N = m·k + n (number of
    /// small-coordinate variables plus data points) and ε the working precision's epsilon
    /// (default: 4).
    pub tolerance_factor: f64,
    /// Number of Gaussian test points for `linear_boundary_agreement` (default: 1000).
    pub test_points: usize,
    /// Seed of the test points (default: 0).
    pub seed: u64,
}

impl Default for MaxMarginSettings {
    fn default() -> Self {
        MaxMarginSettings {
            qp: QpSettings::default(),
            max_refinements: 50,
            tolerance_factor: 4.0,
            test_points: 1000,
            seed: 0,
        }
    }
}

impl MaxMarginSettings {
    /// Check ranges.
    pub fn validate(&self) -> Result<()> {
        self.qp.validate()?;
        if !(self.tolerance_factor.is_finite() && self.tolerance_factor >= 1.0) {
            return Err(Error::setting(
                "tolerance_factor",
                format!("must be finite and ≥ 1, got {}", self.tolerance_factor),
            ));
        }
        Ok(())
    }
}

/// How a reference was obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The theory pattern with every margin active and no pattern constraint active (M λ = 1).
    ClosedForm,
    /// clarabel, then active-set polish at working precision.
    Qp,
}

/// The residuals of the KKT conditions, all at working precision.
#[derive(Clone, Debug)]
pub struct Certificate<T> {
    /// min over active constraints of ν_r / max_r |ν_r| (must be ≥ −tolerance).
    pub min_multiplier: T,
    /// max_i (1 − q_i)/σ_i with σ_i = Σ_j |a_j s_ji ⟨w_j,x_i⟩| (must be ≤ tolerance).
    pub margin_violation: T,
    /// max over active margins of |q_i − 1|/σ_i (must be ≤ tolerance).
    pub active_margin_gap: T,
    /// max_ji −S_ji⟨w_j,x_i⟩ / (‖w_j‖‖x_i‖) (must be ≤ tolerance).
    pub pattern_violation: T,
    /// max over active pattern constraints of |⟨w_j,x_i⟩| / (‖w_j‖‖x_i‖) (must be ≤ tolerance).
    pub active_pattern_gap: T,
    /// ‖W − Σ_r ν_r ∇g_r‖_F / (‖W‖_F + Σ_r |ν_r| ‖∇g_r‖) (must be ≤ tolerance).
    pub stationarity: T,
    /// The tolerance c·N·ε.
    pub tolerance: T,
}

/// A max-margin solution W* = C X on a pattern, with its multipliers and certificate verdict.
#[derive(Clone, Debug)]
pub struct Reference<T> {
    /// Span coefficients C (m×n): W* = C X, C_ji = λ_i y_i a_j s_ji + μ_ji S_ji.
    pub coefficients: Mat<T>,
    /// Multipliers λ_i of the margin constraints y_i f(x_i; W) ≥ 1 of min ½‖W‖², in data order.
    pub multipliers: Vec<T>,
    /// ‖W*‖_F.
    pub norm: T,
    /// Whether every KKT condition was verified at working precision.
    pub certified: bool,
    /// The first condition that failed, when not certified.
    pub failure: Option<String>,
    /// Multipliers μ_ji of the pattern constraints (m×n row-major, 0 where inactive).
    pub pattern_multipliers: Vec<T>,
    /// W* in small coordinates Z (m×k): same singular values and inner products as W*.
    pub small: Mat<T>,
    /// Projections ⟨w_j, x_i⟩ (m×n).
    pub preactivations: Mat<T>,
    /// Margins y_i f(x_i; W*).
    pub margins: Vec<T>,
    /// Indices of the active margin constraints (data order).
    pub active: Vec<usize>,
    /// Number of active pattern constraints.
    pub active_pattern: usize,
    /// The KKT residuals.
    pub certificate: Certificate<T>,
    /// How it was obtained.
    pub method: Method,
    /// clarabel's status (`None` for the closed form).
    pub solver_status: Option<QpStatus>,
    /// Interior-point iterations (0 for the closed form).
    pub iterations: u32,
    /// Active-set refinement steps after the first polish.
    pub refinements: usize,
}

/// Outcome of the pattern QP: clarabel's status, and the polished reference when it reached a
/// solution.
#[derive(Clone, Debug)]
pub struct PatternOutcome<T> {
    /// clarabel's status.
    pub status: QpStatus,
    /// Interior-point iterations.
    pub iterations: u32,
    /// The polished, checked solution (`None` unless `status` is `Solved` or `AlmostSolved`, or
    /// when the polish failed: see `failure`).
    pub reference: Option<Reference<T>>,
    /// Why there is no reference (solver status or a singular active set).
    pub failure: Option<String>,
}

/// The pattern QP in small coordinates.
struct PatternProblem<T> {
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
    fn new(net: &Network<T>, pattern: &[i8], settings: &MaxMarginSettings) -> Result<Self> {
        let (m, n, p) = (net.m, net.n, net.prec);
        if pattern.len() != m * n {
            return Err(Error::setting(
                "--pattern-from",
                format!("pattern has {} entries, the model needs {m}×{n}", pattern.len()),
            ));
        }
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
    fn qp_f64(&self) -> Qp {
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
    fn polish_and_refine(
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
    fn closed_form(&self) -> Option<Reference<T>> {
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

/// X̂ (n×k) with X̂ X̂ᵀ = K: the transposed R of the QR of the network's small data X̃ᵀ.
fn small_data<T: Real>(net: &Network<T>) -> Mat<T> {
    householder_qr_of_transpose(net.x_small()).r.transpose()
}

fn run_clarabel(qp: &Qp, settings: &QpSettings) -> Result<QpSolution> {
    Ok(solve_qp(qp, settings)?)
}

/// Solve and certify the network max-margin QP on `pattern` (±1, m×n row-major).
pub fn pattern_max_margin<T: Real>(
    net: &Network<T>,
    pattern: &[i8],
    settings: &MaxMarginSettings,
) -> Result<PatternOutcome<T>> {
    settings.validate()?;
    let prob = PatternProblem::new(net, pattern, settings)?;
    let sol = run_clarabel(&prob.qp_f64(), &settings.qp)?;
    if !sol.status.has_solution() {
        return Ok(PatternOutcome {
            failure: Some(format!("QP solver status {:?}: no solution to polish", sol.status)),
            status: sol.status,
            iterations: sol.iterations,
            reference: None,
        });
    }
    match prob.polish_and_refine(sol.active_set(), settings.max_refinements) {
        Ok((mut r, steps)) => {
            r.solver_status = Some(sol.status.clone());
            r.iterations = sol.iterations;
            r.refinements = steps;
            Ok(PatternOutcome { status: sol.status, iterations: sol.iterations, reference: Some(r), failure: None })
        }
        Err(why) => {
            Ok(PatternOutcome { status: sol.status, iterations: sol.iterations, reference: None, failure: Some(why) })
        }
    }
}

/// The certified theory-pattern solution (S_ji = sign(a_j) y_i): the closed form with every
/// margin active (M λ = 1, M_ik = y_i y_k K_ik Σ_j a_j² s_ji s_jk) when it certifies, otherwise the
/// QP (clarabel + polish + certificate). Errors when the QP has no solution to polish.
pub fn theory_reference<T: Real>(net: &Network<T>) -> Result<Reference<T>> {
    let settings = MaxMarginSettings::default();
    let pattern = net.theory_pattern();
    let prob = PatternProblem::new(net, &pattern, &settings)?;
    if let Some(r) = prob.closed_form() {
        if r.certified {
            return Ok(r);
        }
    }
    let out = pattern_max_margin(net, &pattern, &settings)?;
    match out.reference {
        Some(r) => Ok(r),
        None => {
            Err(marginflow_solvers::SolverError::Qp(out.failure.unwrap_or_else(|| format!("{:?}", out.status))).into())
        }
    }
}

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

/// Where the activation pattern comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternSource {
    /// S_ji = sign(a_j) y_i.
    Theory,
    /// The final pattern of a flow run in this directory (W.npy, else its checkpoint).
    FlowRun(PathBuf),
}

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
    let b: Vec<f64> = if cp.precision == 53 {
        cp.y[..m * n]
            .iter()
            .map(|s| f64::from_exact(s).ok_or_else(|| bad(format!("cannot decode {s:?}"))))
            .collect::<Result<_>>()?
    } else {
        decode_high(&cp, m * n).map_err(bad)?
    };
    let net: Network<f64> = Network::new(data, &cp.settings.model, 53)?;
    let mut pre = vec![0.0; m * n];
    net.preactivations_inplace(&b, &mut pre);
    Ok(cp.modes.iter().zip(&pre).map(|(&md, &pv)| if md == 1 || md == -1 { md } else { sign(pv) }).collect())
}

#[cfg(feature = "mpfr")]
fn decode_high(cp: &Checkpoint, len: usize) -> std::result::Result<Vec<f64>, String> {
    cp.y[..len]
        .iter()
        .map(|s| {
            <rug::Float as Real>::from_exact(s).map(|v| Real::to_f64(&v)).ok_or_else(|| format!("cannot decode {s:?}"))
        })
        .collect()
}

#[cfg(not(feature = "mpfr"))]
fn decode_high(cp: &Checkpoint, _len: usize) -> std::result::Result<Vec<f64>, String> {
    Err(format!("checkpoint at {} bits has released modes; decoding it needs the mpfr feature", cp.precision))
}

/// The `maxmargin` report: JSON fields (DESIGN §4) and W* (m×d, f64) when a solution exists.
pub struct MaxMarginReport {
    /// The JSON object.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// W* = C X (m×d row-major), computed at working precision.
    pub weights: Option<Vec<f64>>,
    /// Shape of `weights`.
    pub shape: (usize, usize),
}

/// Solve both max-margin problems and build the report, at `precision` bits (53 = f64; other
/// values need the `mpfr` feature).
pub fn solve(
    data: &Dataset,
    model: &ModelSettings,
    pattern: &PatternSource,
    precision: u32,
    settings: &MaxMarginSettings,
) -> Result<MaxMarginReport> {
    settings.validate()?;
    if precision == 53 {
        return solve_at::<f64>(data, model, pattern, precision, settings);
    }
    #[cfg(feature = "mpfr")]
    {
        if precision < 2 {
            return Err(Error::setting("--precision", format!("must be at least 2 bits, got {precision}")));
        }
        solve_at::<rug::Float>(data, model, pattern, precision, settings)
    }
    #[cfg(not(feature = "mpfr"))]
    Err(Error::setting(
        "--precision",
        format!("{precision} bits needs the `mpfr` feature (this build has f64 only: 53)"),
    ))
}

fn nums<T: Real>(v: &[T]) -> Vec<Num> {
    v.iter().map(Num::of).collect()
}

fn solve_at<T: Real>(
    data: &Dataset,
    model: &ModelSettings,
    source: &PatternSource,
    prec: u32,
    settings: &MaxMarginSettings,
) -> Result<MaxMarginReport> {
    let net: Network<T> = Network::new(data, model, prec)?;
    let (m, n, d) = (net.m, net.n, net.d);
    let pattern = match source {
        PatternSource::Theory => net.theory_pattern(),
        PatternSource::FlowRun(dir) => pattern_from_run(dir, data, model)?,
    };
    let out = pattern_max_margin(&net, &pattern, settings)?;
    let lin = linear_max_margin(&net, settings)?;
    let mut o = serde_json::Map::new();
    o.insert(
        "pattern".into(),
        serde_json::json!(match source {
            PatternSource::Theory => "theory".to_string(),
            PatternSource::FlowRun(dir) => dir.display().to_string(),
        }),
    );
    o.insert("solver_status".into(), serde_json::to_value(&out.status).unwrap_or_default());
    o.insert("iterations".into(), serde_json::json!(out.iterations));
    let balanced = ModelSettings::is_balanced(&net.a_f64);
    let mut weights = None;
    let mut lo = serde_json::Map::new();
    if lin.status.has_solution() && !lin.multipliers.is_empty() {
        put(&mut lo, "norm", &Num::of(&lin.norm));
    } else {
        lo.insert("norm".into(), serde_json::Value::Null);
    }
    put_list(&mut lo, "multipliers", &nums(&lin.multipliers));
    lo.insert("certified".into(), serde_json::json!(lin.certified));
    lo.insert("solver_status".into(), serde_json::to_value(&lin.status).unwrap_or_default());
    if let Some(why) = &lin.failure {
        lo.insert("not_certified_because".into(), serde_json::json!(why));
    }
    match &out.reference {
        None => {
            o.insert("certified".into(), serde_json::json!(false));
            o.insert("not_certified_because".into(), serde_json::json!(out.failure.clone().unwrap_or_default()));
        }
        Some(r) => {
            let p = prec;
            put(&mut o, "norm", &Num::of(&r.norm));
            put(&mut o, "normalized_margin", &Num::of(&(T::one(p) / &r.norm)));
            put_list(&mut o, "multipliers", &nums(&r.multipliers));
            o.insert("active".into(), serde_json::json!(r.active));
            o.insert("active_pattern_constraints".into(), serde_json::json!(r.active_pattern));
            o.insert("certified".into(), serde_json::json!(r.certified));
            if let Some(why) = &r.failure {
                o.insert("not_certified_because".into(), serde_json::json!(why));
            }
            let c = &r.certificate;
            let mut co = serde_json::Map::new();
            put(&mut co, "min_multiplier", &Num::of(&c.min_multiplier));
            put(&mut co, "margin_violation", &Num::of(&c.margin_violation));
            put(&mut co, "active_margin_gap", &Num::of(&c.active_margin_gap));
            put(&mut co, "pattern_violation", &Num::of(&c.pattern_violation));
            put(&mut co, "active_pattern_gap", &Num::of(&c.active_pattern_gap));
            put(&mut co, "stationarity", &Num::of(&c.stationarity));
            put(&mut co, "tolerance", &Num::of(&c.tolerance));
            co.insert("refinements".into(), serde_json::json!(r.refinements));
            o.insert("certificate".into(), serde_json::Value::Object(co));
            let sv = linalg::singular_values(&r.small)?;
            let rank_tol = (T::epsilon(p) * &T::from_f64(64.0 * (m.max(r.small.cols)) as f64, p)).to_f64();
            put_list(&mut o, "singular_values", &nums(&sv));
            o.insert("rank".into(), serde_json::json!(linalg::rank_from_singular_values(&sv, rank_tol)));
            o.insert("rank_tolerance".into(), serde_json::json!(rank_tol));
            if let (Some(s1), Some(s3)) = (sv.first(), sv.get(2)) {
                put(&mut o, "sigma3_over_sigma1", &Num::of(&(s3.clone() / s1)));
            }
            put(&mut o, "structure", &Num::of(&structure(&net, r)));
            // z = Σ λ_i y_i x_i: margins y_i⟨z,x_i⟩ = y_i Σ_k λ_k y_k K_ki.
            let ly: Vec<T> = (0..n).map(|i| r.multipliers[i].clone() * &net.y[i]).collect();
            let kz: Vec<T> = (0..n).map(|i| linalg::dot(net.k_mat.row(i), &ly)).collect();
            let zn = linalg::dot(&ly, &kz).sqrt();
            let mut zmin: Option<T> = None;
            for (kzi, yi) in kz.iter().zip(&net.y) {
                let v = kzi.clone() * yi;
                if zmin.as_ref().is_none_or(|z| v < *z) {
                    zmin = Some(v);
                }
            }
            if lin.certified || lin.status.has_solution() {
                if let Some(zm) = zmin {
                    if zn > T::zero(p) && lin.norm > T::zero(p) {
                        // (min margin / ‖z‖) / (1/‖z*‖).
                        put(&mut o, "z_margin_ratio", &Num::of(&(zm / &zn * &lin.norm)));
                    }
                }
            }
            if balanced {
                let agree = boundary_agreement(data, &net, r, settings);
                o.insert("linear_boundary_agreement".into(), serde_json::json!(agree));
            }
            // W* = C X at working precision.
            let x: Mat<T> = Mat::from_f64(n, d, &data.x, p);
            weights = Some(r.coefficients.matmul(&x).to_f64());
        }
    }
    o.insert("linear".into(), serde_json::Value::Object(lo));
    o.insert("balanced".into(), serde_json::json!(balanced));
    o.insert("precision_bits".into(), serde_json::json!(prec));
    o.insert("shape".into(), serde_json::json!({"n": n, "d": d, "m": m}));
    o.insert("settings".into(), serde_json::json!({"model": model, "maxmargin": settings}));
    Ok(MaxMarginReport { fields: o, weights, shape: (m, d) })
}

/// max_j ‖w_j − |a_j| v_{sign a_j}‖ / max_j ‖w_j‖, with v+ = Σ_{y=+1} λ_i x_i − γ Σ_{y=−1} λ_i x_i
/// and v− = Σ_{y=−1} λ_i x_i − γ Σ_{y=+1} λ_i x_i, computed in small coordinates from the polished
/// rows of Z (not from the multiplier formula for C, which would make it zero by construction).
pub fn structure<T: Real>(net: &Network<T>, r: &Reference<T>) -> T {
    let (m, n, p) = (net.m, net.n, net.prec);
    let xhat = small_data(net);
    let k = xhat.cols;
    let mut vp = vec![T::zero(p); k];
    let mut vm = vec![T::zero(p); k];
    for i in 0..n {
        let l = &r.multipliers[i];
        let gl = net.gamma.clone() * l;
        let (cp, cm) = if net.y[i] > T::zero(p) { (l.clone(), -gl) } else { (-gl, l.clone()) };
        for c in 0..k {
            vp[c].add_mul_mut(&cp, xhat.at(i, c));
            vm[c].add_mul_mut(&cm, xhat.at(i, c));
        }
    }
    let mut dev = T::zero(p);
    let mut wmax = T::zero(p);
    for j in 0..m {
        let aj = net.a[j].abs();
        let v = if net.a[j] > T::zero(p) { &vp } else { &vm };
        let row = r.small.row(j);
        let mut d2 = T::zero(p);
        for (w, vc) in row.iter().zip(v) {
            let e = w.clone() - &(aj.clone() * vc);
            d2.add_mul_mut(&e, &e);
        }
        dev = dev.max_of(&d2.sqrt());
        wmax = wmax.max_of(&linalg::dot(row, row).sqrt());
    }
    if wmax > T::zero(p) {
        dev / &wmax
    } else {
        dev
    }
}

/// Fraction of seeded Gaussian test points x ~ N(0, I_d) with sign f(x; W*) = sign⟨z, x⟩,
/// z = Σ λ_i y_i x_i; only the projections X x are formed (⟨w_j, x⟩ = Σ_i C_ji ⟨x_i, x⟩).
pub fn boundary_agreement<T: Real>(
    data: &Dataset,
    net: &Network<T>,
    r: &Reference<T>,
    settings: &MaxMarginSettings,
) -> f64 {
    let (m, n, d, p) = (net.m, net.n, net.d, net.prec);
    if settings.test_points == 0 {
        return f64::NAN;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    rng.set_stream(3);
    let act = net.activation();
    let ly: Vec<T> = (0..n).map(|i| r.multipliers[i].clone() * &net.y[i]).collect();
    let mut x = vec![0.0f64; d];
    let mut agree = 0usize;
    for _ in 0..settings.test_points {
        for v in x.iter_mut() {
            *v = StandardNormal.sample(&mut rng);
        }
        let proj: Vec<T> = (0..n).map(|i| T::from_f64(linalg::dot(data.row(i), &x), p)).collect();
        let mut f = T::zero(p);
        for j in 0..m {
            let pre = linalg::dot(r.coefficients.row(j), &proj);
            f.add_mul_mut(&net.a[j], &act.value(&pre));
        }
        let lin = linalg::dot(&ly, &proj);
        if f.is_sign_negative() == lin.is_sign_negative() {
            agree += 1;
        }
    }
    agree as f64 / settings.test_points as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::data::Dataset;
    use crate::model::network::ModelSettings;

    fn net_of(x: &[f64], y: &[f64], d: usize) -> Network<f64> {
        let data = Dataset { n: y.len(), d, x: x.to_vec(), y: y.to_vec() };
        Network::new(&data, &ModelSettings { width: 2, ..Default::default() }, 53).unwrap()
    }

    /// Orthogonal x_i with norms r_i: α_i = 1/r_i², ‖z‖² = Σα.
    #[test]
    fn linear_max_margin_on_orthogonal_points() {
        let net = net_of(&[2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 1.0], &[1.0, -1.0, 1.0], 3);
        let lin = linear_max_margin(&net, &MaxMarginSettings::default()).unwrap();
        assert!(lin.certified, "{:?}", lin.failure);
        for (ai, r2) in lin.multipliers.iter().zip([4.0, 9.0, 1.0]) {
            assert!((ai - 1.0 / r2).abs() < 1e-14, "{ai} vs {}", 1.0 / r2);
        }
        let sum: f64 = lin.multipliers.iter().sum();
        assert!((lin.norm * lin.norm - sum).abs() < 1e-14);
    }

    /// x = e1, e2, (2, 3, 1), all labelled +1 apart from a −1 point far away on the other side:
    /// the third point (margin 5 under z = (1, 1, 0)) is inactive.
    #[test]
    fn linear_max_margin_drops_inactive_points() {
        let x = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 3.0, 1.0, -4.0, -4.0, 0.0];
        let net = net_of(&x, &[1.0, 1.0, 1.0, -1.0], 3);
        let lin = linear_max_margin(&net, &MaxMarginSettings::default()).unwrap();
        assert!(lin.certified, "{:?}", lin.failure);
        for (ai, want) in lin.multipliers.iter().zip([1.0, 1.0, 0.0, 0.0]) {
            assert!((ai - want).abs() < 1e-12, "alpha = {:?}", lin.multipliers);
        }
    }
}
