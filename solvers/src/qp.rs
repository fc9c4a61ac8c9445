//! Convex quadratic programs: an `f64` interior-point solve through `clarabel`, and an active-set
//! polish at the working precision.
//!
//! The problem is
//!
//! ```text
//!     minimize ½ xᵀ P x + qᵀ x   subject to   G x ≤ h,   A x = b
//! ```
//!
//! with P symmetric positive semidefinite. Its KKT conditions, in the sign convention used
//! throughout (and by clarabel):
//!
//! ```text
//!     P x + q + Gᵀ z + Aᵀ y = 0,   G x ≤ h,   A x = b,   z ≥ 0,   zᵢ (h − G x)ᵢ = 0.
//! ```
//!
//! An interior-point method reaches roughly 1e−9 in `f64`. Knowing which inequalities are active
//! at the optimum, the KKT conditions become a *linear* system that [`polish_active_set`] solves at
//! any precision; the caller then certifies the result (z ≥ 0 on the active rows, feasibility of
//! the inactive ones).

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};
use serde::{Deserialize, Serialize};

use crate::error::SolverError;
use crate::linalg::{
    back_substitute_upper, forward_substitute_upper_transpose, householder_qr_of_transpose_interruptible, lu_solve, Mat,
};
use crate::scalar::Real;

/// Settings of [`solve_qp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QpSettings {
    /// Absolute and relative tolerance for the duality gap and feasibility (clarabel's
    /// `tol_gap_abs`, `tol_gap_rel`, `tol_feas`) (default: 1e-12).
    pub tol: f64,
    /// Maximum number of interior-point iterations (default: 200).
    pub max_iter: u32,
    /// Let clarabel print its iteration log (default: false).
    pub verbose: bool,
}

impl Default for QpSettings {
    fn default() -> Self {
        QpSettings { tol: 1e-12, max_iter: 200, verbose: false }
    }
}

impl QpSettings {
    /// Check that the tolerance is positive and finite and that at least one iteration is allowed.
    pub fn validate(&self) -> Result<(), SolverError> {
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(SolverError::Setting {
                name: "tol",
                reason: format!("must be positive and finite, got {}", self.tol),
            });
        }
        if self.max_iter == 0 {
            return Err(SolverError::Setting { name: "max_iter", reason: "must be at least 1".into() });
        }
        Ok(())
    }
}

/// A sparse `f64` matrix in coordinate form: only the listed entries are nonzero; duplicates are
/// summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseMatrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Nonzero entries (row, column, value).
    pub entries: Vec<(usize, usize, f64)>,
}

impl SparseMatrix {
    /// The empty (all-zero) rows×cols matrix.
    pub fn new(rows: usize, cols: usize) -> Self {
        SparseMatrix { rows, cols, entries: Vec::new() }
    }
    /// The n×n identity.
    pub fn identity(n: usize) -> Self {
        SparseMatrix { rows: n, cols: n, entries: (0..n).map(|i| (i, i, 1.0)).collect() }
    }
    /// Add `value` at (row, col).
    pub fn push(&mut self, row: usize, col: usize, value: f64) {
        self.entries.push((row, col, value));
    }
    /// The nonzero entries of a dense matrix.
    pub fn from_dense(a: &Mat<f64>) -> Self {
        let mut s = SparseMatrix::new(a.rows, a.cols);
        for i in 0..a.rows {
            for j in 0..a.cols {
                if *a.at(i, j) != 0.0 {
                    s.push(i, j, *a.at(i, j));
                }
            }
        }
        s
    }
    /// Dense copy.
    pub fn to_dense(&self) -> Mat<f64> {
        let mut a = Mat::zeros(self.rows, self.cols, 53);
        for &(i, j, v) in &self.entries {
            *a.at_mut(i, j) += v;
        }
        a
    }
    /// y = self · x.
    pub fn mul_vec(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.rows];
        for &(i, j, v) in &self.entries {
            y[i] += v * x[j];
        }
        y
    }
    /// y = selfᵀ · x.
    pub fn tr_mul_vec(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.cols];
        for &(i, j, v) in &self.entries {
            y[j] += v * x[i];
        }
        y
    }

    fn check(&self, what: &'static str) -> Result<(), SolverError> {
        if let Some(&(i, j, _)) = self.entries.iter().find(|&&(i, j, _)| i >= self.rows || j >= self.cols) {
            return Err(SolverError::Dimension {
                op: "solve_qp",
                detail: format!("{what}: entry ({i}, {j}) outside {}x{}", self.rows, self.cols),
            });
        }
        Ok(())
    }

    /// CSC form of the entries kept by `keep(row, col)`, rows shifted by `row_offset`, in a matrix
    /// with `m` rows; duplicates summed, exact zeros dropped.
    fn csc_parts(&self, row_offset: usize, keep: impl Fn(usize, usize) -> bool) -> Vec<(usize, usize, f64)> {
        self.entries.iter().filter(|&&(i, j, _)| keep(i, j)).map(|&(i, j, v)| (i + row_offset, j, v)).collect()
    }
}

/// Assemble a CSC matrix from (row, col, value) triplets.
fn to_csc(m: usize, n: usize, mut t: Vec<(usize, usize, f64)>) -> CscMatrix<f64> {
    t.sort_by_key(|a| (a.1, a.0));
    let mut colptr = vec![0usize; n + 1];
    let mut rowval = Vec::with_capacity(t.len());
    let mut nzval: Vec<f64> = Vec::with_capacity(t.len());
    let mut last: Option<(usize, usize)> = None;
    let mut cols = Vec::with_capacity(t.len());
    for (i, j, v) in t {
        if last == Some((i, j)) {
            *nzval.last_mut().expect("previous entry") += v;
        } else {
            rowval.push(i);
            nzval.push(v);
            cols.push(j);
            last = Some((i, j));
        }
    }
    let mut r2 = Vec::with_capacity(rowval.len());
    let mut v2 = Vec::with_capacity(rowval.len());
    for ((i, j), v) in rowval.into_iter().zip(cols).zip(nzval) {
        if v != 0.0 {
            r2.push(i);
            v2.push(v);
            colptr[j + 1] += 1;
        }
    }
    for j in 0..n {
        colptr[j + 1] += colptr[j];
    }
    CscMatrix::new(m, n, colptr, r2, v2)
}

/// The convex QP: minimize ½ xᵀPx + qᵀx subject to G x ≤ h and A x = b (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Qp {
    /// P, n×n symmetric positive semidefinite. Give the upper triangle or both triangles:
    /// entries below the diagonal are ignored.
    pub p: SparseMatrix,
    /// Linear term q (length n).
    pub q: Vec<f64>,
    /// G of the inequalities G x ≤ h (rows × n).
    pub g: SparseMatrix,
    /// Right-hand side h of the inequalities.
    pub h: Vec<f64>,
    /// A of the equalities A x = b (rows × n; zero rows for none).
    pub a_eq: SparseMatrix,
    /// Right-hand side b of the equalities.
    pub b_eq: Vec<f64>,
}

impl Qp {
    /// An inequality-constrained QP (no equalities).
    pub fn new(p: SparseMatrix, q: Vec<f64>, g: SparseMatrix, h: Vec<f64>) -> Self {
        let n = q.len();
        Qp { p, q, g, h, a_eq: SparseMatrix::new(0, n), b_eq: Vec::new() }
    }

    /// Number of variables n.
    pub fn num_vars(&self) -> usize {
        self.q.len()
    }

    fn validate(&self) -> Result<(), SolverError> {
        let n = self.q.len();
        let bad = |detail: String| Err(SolverError::Dimension { op: "solve_qp", detail });
        if self.p.rows != n || self.p.cols != n {
            return bad(format!("P is {}x{} for {n} variables", self.p.rows, self.p.cols));
        }
        if self.g.cols != n || self.g.rows != self.h.len() {
            return bad(format!("G is {}x{}, h has length {}, {n} variables", self.g.rows, self.g.cols, self.h.len()));
        }
        if self.a_eq.cols != n || self.a_eq.rows != self.b_eq.len() {
            return bad(format!(
                "A is {}x{}, b has length {}, {n} variables",
                self.a_eq.rows,
                self.a_eq.cols,
                self.b_eq.len()
            ));
        }
        self.p.check("P")?;
        self.g.check("G")?;
        self.a_eq.check("A")
    }
}

/// Outcome of [`solve_qp`], mirroring clarabel's `SolverStatus` one to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QpStatus {
    /// Solved to the requested tolerance.
    Solved,
    /// Solved only to clarabel's reduced tolerances.
    AlmostSolved,
    /// Certificate of primal infeasibility (no x satisfies the constraints).
    PrimalInfeasible,
    /// Certificate of dual infeasibility (the objective is unbounded below).
    DualInfeasible,
    /// Primal infeasibility at reduced tolerances.
    AlmostPrimalInfeasible,
    /// Dual infeasibility at reduced tolerances.
    AlmostDualInfeasible,
    /// Iteration limit reached.
    MaxIterations,
    /// Time limit reached.
    MaxTime,
    /// Numerical error inside the solver.
    NumericalError,
    /// The solver stopped making progress.
    InsufficientProgress,
    /// Any other status (e.g. unsolved, stopped by a callback).
    Other(String),
}

impl From<SolverStatus> for QpStatus {
    fn from(s: SolverStatus) -> Self {
        match s {
            SolverStatus::Solved => QpStatus::Solved,
            SolverStatus::AlmostSolved => QpStatus::AlmostSolved,
            SolverStatus::PrimalInfeasible => QpStatus::PrimalInfeasible,
            SolverStatus::DualInfeasible => QpStatus::DualInfeasible,
            SolverStatus::AlmostPrimalInfeasible => QpStatus::AlmostPrimalInfeasible,
            SolverStatus::AlmostDualInfeasible => QpStatus::AlmostDualInfeasible,
            SolverStatus::MaxIterations => QpStatus::MaxIterations,
            SolverStatus::MaxTime => QpStatus::MaxTime,
            SolverStatus::NumericalError => QpStatus::NumericalError,
            SolverStatus::InsufficientProgress => QpStatus::InsufficientProgress,
            other => QpStatus::Other(format!("{other:?}")),
        }
    }
}

impl QpStatus {
    /// `Solved` or `AlmostSolved`.
    pub fn has_solution(&self) -> bool {
        matches!(self, QpStatus::Solved | QpStatus::AlmostSolved)
    }
}

/// Result of [`solve_qp`]. For infeasible statuses the vectors are clarabel's certificates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QpSolution {
    /// Solver outcome.
    pub status: QpStatus,
    /// Primal solution x.
    pub x: Vec<f64>,
    /// Multipliers z ≥ 0 of the inequalities G x ≤ h (one per row of G).
    pub z: Vec<f64>,
    /// Slacks h − G x ≥ 0 of the inequalities, as returned by the solver.
    pub slack: Vec<f64>,
    /// Multipliers y of the equalities (one per row of A), sign as in P x + q + Gᵀz + Aᵀy = 0.
    pub y_eq: Vec<f64>,
    /// Primal objective ½ xᵀPx + qᵀx.
    pub objective: f64,
    /// Dual objective.
    pub dual_objective: f64,
    /// Primal residual reported by clarabel.
    pub primal_residual: f64,
    /// Dual residual reported by clarabel.
    pub dual_residual: f64,
    /// Interior-point iterations.
    pub iterations: u32,
    /// Solve time in seconds.
    pub solve_time: f64,
}

impl QpSolution {
    /// Indices of the inequalities judged active: those whose multiplier exceeds the slack
    /// (at a strictly complementary solution one of the two tends to 0 and the other does not).
    pub fn active_set(&self) -> Vec<usize> {
        self.z.iter().zip(&self.slack).enumerate().filter(|(_, (z, s))| z > s).map(|(i, _)| i).collect()
    }
}

/// Solve the QP with clarabel (interior point, `f64`). Constraints are passed as
/// [A; G] x + s = [b; h] with s in ZeroCone(rows of A) × NonnegativeCone(rows of G), and only the
/// upper triangle of P. Errors for bad dimensions or settings, when clarabel refuses the data, and
/// with [`SolverError::Interrupted`] when a stop is requested ([`crate::interrupt`], polled every
/// iteration); a failed solve is reported through [`QpSolution::status`].
pub fn solve_qp(qp: &Qp, settings: &QpSettings) -> Result<QpSolution, SolverError> {
    settings.validate()?;
    qp.validate()?;
    let n = qp.num_vars();
    let (neq, nin) = (qp.a_eq.rows, qp.g.rows);
    let p = to_csc(n, n, qp.p.csc_parts(0, |i, j| i <= j));
    let mut at = qp.a_eq.csc_parts(0, |_, _| true);
    at.extend(qp.g.csc_parts(neq, |_, _| true));
    let a = to_csc(neq + nin, n, at);
    let mut b = qp.b_eq.clone();
    b.extend_from_slice(&qp.h);
    let mut cones = Vec::new();
    if neq > 0 {
        cones.push(SupportedConeT::ZeroConeT(neq));
    }
    if nin > 0 {
        cones.push(SupportedConeT::NonnegativeConeT(nin));
    }
    let cs = DefaultSettingsBuilder::default()
        .max_iter(settings.max_iter)
        .verbose(settings.verbose)
        .tol_gap_abs(settings.tol)
        .tol_gap_rel(settings.tol)
        .tol_feas(settings.tol)
        .build()
        .map_err(|e| SolverError::Qp(e.to_string()))?;
    let mut solver = DefaultSolver::new(&p, &qp.q, &a, &b, &cones, cs).map_err(|e| SolverError::Qp(e.to_string()))?;
    // Polled once per interior-point iteration: a stop request ends the solve.
    solver.set_termination_callback(|_| crate::interrupt::requested());
    solver.solve();
    let sol = &solver.solution;
    if sol.status == SolverStatus::CallbackTerminated {
        return Err(SolverError::Interrupted);
    }
    Ok(QpSolution {
        status: sol.status.into(),
        x: sol.x.clone(),
        z: sol.z[neq..].to_vec(),
        slack: sol.s[neq..].to_vec(),
        y_eq: sol.z[..neq].to_vec(),
        objective: sol.obj_val,
        dual_objective: sol.obj_val_dual,
        primal_residual: sol.r_prim,
        dual_residual: sol.r_dual,
        iterations: sol.iterations,
        solve_time: sol.solve_time,
    })
}

/// Solve the equality-constrained KKT system of an active set at the working precision:
///
/// ```text
///     [ P    G_Aᵀ ] [ x ]   [ −q  ]
///     [ G_A   0   ] [ μ ] = [ h_A ]
/// ```
///
/// i.e. stationarity P x + q + G_Aᵀ μ = 0 with the active rows G_A x = h_A of G x ≤ h held as
/// equalities. Returns (x, μ) with μ in the order of `active`; for a KKT point of the inequality
/// QP, μ ≥ 0 (checking that, and the inactive rows, is the caller's certification).
///
/// When P is exactly the identity (the max-margin problem) the range-space method is used
/// (Nocedal–Wright, *Numerical Optimization*, §16.2): with the Householder QR G_Aᵀ = Q R,
/// the Schur complement G_A G_Aᵀ = RᵀR is factored without being formed (so its condition number
/// is not squared), w = R⁻ᵀ h_A, R μ = −(w + Qᵀq), x = −q + Q (w + Qᵀq); cost O(n·|A|²).
/// Otherwise the full KKT matrix is solved by LU with partial pivoting.
///
/// Fails with [`SolverError::Singular`] when the active rows are linearly dependent to working
/// precision (|R_ii| ≤ n·ε·max|R_jj|, or more active rows than variables) or the KKT matrix is
/// singular, and with [`SolverError::Dimension`] on mismatched shapes.
pub fn polish_active_set<T: Real>(
    p: &Mat<T>,
    q: &[T],
    g: &Mat<T>,
    h: &[T],
    active: &[usize],
    prec: u32,
) -> Result<(Vec<T>, Vec<T>), SolverError> {
    let n = q.len();
    if p.rows != n || p.cols != n || g.cols != n || g.rows != h.len() || active.iter().any(|&i| i >= g.rows) {
        return Err(SolverError::Dimension {
            op: "polish_active_set",
            detail: format!(
                "P {}x{}, q {}, G {}x{}, h {}, active indices up to {:?}",
                p.rows,
                p.cols,
                n,
                g.rows,
                g.cols,
                h.len(),
                active.iter().max()
            ),
        });
    }
    let na = active.len();
    let mut ga = Mat::zeros(na, n, prec);
    for (r, &i) in active.iter().enumerate() {
        ga.data[r * n..(r + 1) * n].clone_from_slice(g.row(i));
    }
    let ha: Vec<T> = active.iter().map(|&i| h[i].clone()).collect();
    let zero = T::zero(prec);
    let one = T::one(prec);
    let is_identity = (0..n).all(|i| (0..n).all(|j| *p.at(i, j) == if i == j { one.clone() } else { zero.clone() }));
    if is_identity {
        if na > n {
            return Err(SolverError::Singular {
                op: "polish_active_set (more active rows than variables)",
                index: n,
                pivot: 0.0,
            });
        }
        if na == 0 {
            return Ok((q.iter().map(|v| -v.clone()).collect(), Vec::new()));
        }
        let qr = householder_qr_of_transpose_interruptible(&ga)?; // G_Aᵀ = Q R, R na×na
        let r = &qr.r;
        let mut rmax = zero.clone();
        for i in 0..na {
            rmax = rmax.max_of(&r.at(i, i).abs());
        }
        let cut = rmax * &T::epsilon(prec) * &T::from_f64(n as f64, prec);
        for i in 0..na {
            if r.at(i, i).abs() <= cut {
                return Err(SolverError::Singular {
                    op: "polish_active_set (active rows linearly dependent)",
                    index: i,
                    pivot: r.at(i, i).to_f64(),
                });
            }
        }
        // w = R⁻ᵀ h_A (forward substitution with the lower triangular Rᵀ).
        let mut w = ha;
        forward_substitute_upper_transpose(r, &mut w);
        let c = qr.thin_qt_vec(q);
        for (wi, ci) in w.iter_mut().zip(&c) {
            *wi += ci;
        }
        let mut mu: Vec<T> = w.iter().map(|v| -v.clone()).collect();
        back_substitute_upper(r, &mut mu);
        let mut x = w;
        x.resize(n, zero);
        qr.apply_q_mut(&mut x);
        for (xi, qi) in x.iter_mut().zip(q) {
            *xi -= qi;
        }
        Ok((x, mu))
    } else {
        let size = n + na;
        let mut k = Mat::zeros(size, size, prec);
        for i in 0..n {
            k.data[i * size..i * size + n].clone_from_slice(p.row(i));
        }
        for r in 0..na {
            for j in 0..n {
                let v = ga.at(r, j).clone();
                *k.at_mut(j, n + r) = v.clone();
                *k.at_mut(n + r, j) = v;
            }
        }
        let mut rhs: Vec<T> = q.iter().map(|v| -v.clone()).collect();
        rhs.extend(ha);
        let mut sol = lu_solve(&k, &rhs).map_err(|e| match e {
            SolverError::Singular { index, pivot, .. } => {
                SolverError::Singular { op: "polish_active_set (KKT matrix)", index, pivot }
            }
            other => other,
        })?;
        let mu = sol.split_off(n);
        Ok((sol, mu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projection of p₀ = (2, 1/3, −1/2) onto {x₁ + x₂ ≤ 1, x₃ ≥ 0, x₁ ≤ 10}:
    /// x* = (4/3, −1/3, 0), multipliers (2/3, 1/2, 0), active set {0, 1}.
    fn projection_qp() -> (Qp, [f64; 3], [f64; 3]) {
        let p0 = [2.0, 1.0 / 3.0, -0.5];
        let mut g = SparseMatrix::new(3, 3);
        g.push(0, 0, 1.0);
        g.push(0, 1, 1.0);
        g.push(1, 2, -1.0);
        g.push(2, 0, 1.0);
        let qp = Qp::new(SparseMatrix::identity(3), p0.iter().map(|v| -v).collect(), g, vec![1.0, 0.0, 10.0]);
        (qp, [4.0 / 3.0, -1.0 / 3.0, 0.0], [2.0 / 3.0, 0.5, 0.0])
    }

    fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn projection_solved_and_polished() {
        let (qp, x_star, z_star) = projection_qp();
        let sol = solve_qp(&qp, &QpSettings::default()).unwrap();
        assert!(sol.status.has_solution(), "{:?}", sol.status);
        assert!(max_abs_diff(&sol.x, &x_star) < 1e-8, "{:?}", sol.x);
        assert!(max_abs_diff(&sol.z, &z_star) < 1e-8, "{:?}", sol.z);
        assert!(sol.z.iter().all(|&z| z >= 0.0));
        let active = sol.active_set();
        assert_eq!(active, vec![0, 1]);

        let p = qp.p.to_dense();
        let g = qp.g.to_dense();
        let (x, mu) = polish_active_set(&p, &qp.q, &g, &qp.h, &active, 53).unwrap();
        assert!(max_abs_diff(&x, &x_star) < 2e-15, "{x:?}");
        assert!(max_abs_diff(&mu, &z_star[..2]) < 2e-15, "{mu:?}");

        // General-P path (LU on the KKT matrix): P = 2I, q = −2p₀ has the same x and doubled μ.
        let p2 = Mat::from_vec(3, 3, p.data.iter().map(|v| 2.0 * v).collect());
        let q2: Vec<f64> = qp.q.iter().map(|v| 2.0 * v).collect();
        let (x2, mu2) = polish_active_set(&p2, &q2, &g, &qp.h, &active, 53).unwrap();
        assert!(max_abs_diff(&x2, &x_star) < 2e-15);
        assert!(max_abs_diff(&mu2, &[4.0 / 3.0, 1.0]) < 1e-15);
    }

    #[test]
    fn equalities_and_sparse_duplicates() {
        // min ½‖x‖² s.t. x₁ + x₂ = 2 (given as two halves), x₁ ≤ 0.5: x = (0.5, 1.5), y = −1.5, z = 1.
        let mut a = SparseMatrix::new(1, 2);
        a.push(0, 0, 0.5);
        a.push(0, 0, 0.5);
        a.push(0, 1, 1.0);
        let mut g = SparseMatrix::new(1, 2);
        g.push(0, 0, 1.0);
        let qp = Qp { a_eq: a, b_eq: vec![2.0], ..Qp::new(SparseMatrix::identity(2), vec![0.0, 0.0], g, vec![0.5]) };
        let sol = solve_qp(&qp, &QpSettings::default()).unwrap();
        assert!(sol.status.has_solution());
        assert!(max_abs_diff(&sol.x, &[0.5, 1.5]) < 1e-8);
        assert!((sol.y_eq[0] + 1.5).abs() < 1e-8 && (sol.z[0] - 1.0).abs() < 1e-8);
        assert!((sol.objective - 1.25).abs() < 1e-8);
    }

    #[test]
    fn infeasible_maps_to_primal_infeasible() {
        let mut g = SparseMatrix::new(2, 1);
        g.push(0, 0, 1.0);
        g.push(1, 0, -1.0);
        let qp = Qp::new(SparseMatrix::identity(1), vec![0.0], g, vec![-1.0, -1.0]); // x ≤ −1, x ≥ 1
        let sol = solve_qp(&qp, &QpSettings::default()).unwrap();
        assert_eq!(sol.status, QpStatus::PrimalInfeasible);
    }

    #[test]
    fn bad_input_is_an_error() {
        let (mut qp, _, _) = projection_qp();
        qp.h.pop();
        assert!(matches!(solve_qp(&qp, &QpSettings::default()), Err(SolverError::Dimension { .. })));
        let s = QpSettings { tol: -1.0, ..QpSettings::default() };
        assert!(matches!(s.validate(), Err(SolverError::Setting { name: "tol", .. })));
    }

    #[test]
    fn dependent_active_rows_are_singular() {
        let g = Mat::from_vec(2, 2, vec![1.0, 1.0, 2.0, 2.0]);
        let r = polish_active_set(&Mat::identity(2, 53), &[0.0, 0.0], &g, &[1.0, 2.0], &[0, 1], 53);
        assert!(matches!(r, Err(SolverError::Singular { .. })), "{r:?}");
    }

    #[cfg(feature = "mpfr")]
    #[test]
    fn polish_at_256_bits() {
        use rug::Float;
        let prec = 256;
        let (qp, _, _) = projection_qp();
        let p: Mat<Float> = Mat::identity(3, prec);
        let q = vec![
            <Float as Real>::ratio(-2, 1, prec),
            <Float as Real>::ratio(-1, 3, prec),
            <Float as Real>::ratio(1, 2, prec),
        ];
        let g = Mat::from_f64(3, 3, &qp.g.to_dense().data, prec);
        let h: Vec<Float> = qp.h.iter().map(|&v| Float::with_val(prec, v)).collect();
        let (x, mu) = polish_active_set(&p, &q, &g, &h, &[0, 1], prec).unwrap();
        let exact_x = [<Float as Real>::ratio(4, 3, prec), <Float as Real>::ratio(-1, 3, prec), Float::new(prec)];
        let exact_mu = [<Float as Real>::ratio(2, 3, prec), <Float as Real>::ratio(1, 2, prec)];
        for (a, b) in x.iter().zip(&exact_x).chain(mu.iter().zip(&exact_mu)) {
            assert_eq!(a.prec(), prec);
            assert!((a.clone() - b).abs().to_f64() < 1e-70);
        }
        // General-P path at 256 bits.
        let p2 = Mat::from_vec(3, 3, p.data.iter().map(|v| v.clone() * &Float::with_val(prec, 2)).collect());
        let q2: Vec<Float> = q.iter().map(|v| v.clone() * &Float::with_val(prec, 2)).collect();
        let (x2, _) = polish_active_set(&p2, &q2, &g, &h, &[0, 1], prec).unwrap();
        for (a, b) in x2.iter().zip(&exact_x) {
            assert!((a.clone() - b).abs().to_f64() < 1e-70);
        }
    }
}
