//! Max-margin references, solved independently of the flow, and certified.
//!
//! Imports go one way: this file (settings, certificate, the shared solve and polish) ←
//! `linear`, `network`, `dual` (the dual with n multipliers, for patterns whose primal QP is too
//! large) ← `report` (the typed summary); from outside `model`, `metrics` and `error`. One open
//! circle with the flow: `dual` builds its Gram matrix with the dual engine's `Kernel` and
//! `RowSet` (`crate::flow::dual::{kernel, rows}`, which import only the model and
//! `crate::flow::span::Mode`); they belong in `model`, left for after the engine work there.
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

pub mod dual;
mod linear;
mod network;
pub mod report;

pub use linear::{linear_max_margin, LinearMaxMargin};
pub use report::{solve, MaxMarginReport, MaxMarginSummary};

use crate::error::{Error, Result};
use crate::flow::span::Mode;
use crate::model::data::Dataset;
use crate::model::network::Network;
use marginflow_solvers::linalg::{self, householder_qr_of_transpose};
use marginflow_solvers::qp::{solve_qp, Qp, QpSettings, QpSolution, QpStatus};
use marginflow_solvers::{interrupt, memory, Mat, Real};
use network::PatternProblem;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

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
    /// The dual with n multipliers and an active set on the sign constraints, at working
    /// precision ([`dual::dual_max_margin`]).
    Dual,
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

fn mat_f64<T: Real>(m: &Mat<T>) -> Mat<f64> {
    Mat::from_vec(m.rows, m.cols, m.to_f64())
}

fn vec_f64<T: Real>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

impl<T: Real> Certificate<T> {
    /// Every residual rounded to f64.
    pub fn to_f64(&self) -> Certificate<f64> {
        Certificate {
            min_multiplier: self.min_multiplier.to_f64(),
            margin_violation: self.margin_violation.to_f64(),
            active_margin_gap: self.active_margin_gap.to_f64(),
            pattern_violation: self.pattern_violation.to_f64(),
            active_pattern_gap: self.active_pattern_gap.to_f64(),
            stationarity: self.stationarity.to_f64(),
            tolerance: self.tolerance.to_f64(),
        }
    }
}

impl<T: Real> Reference<T> {
    /// Every value rounded to f64 (the verdict `certified` is the working-precision one; at
    /// precision 53 this is an exact copy).
    pub fn to_f64(&self) -> Reference<f64> {
        Reference {
            coefficients: mat_f64(&self.coefficients),
            multipliers: vec_f64(&self.multipliers),
            norm: self.norm.to_f64(),
            certified: self.certified,
            failure: self.failure.clone(),
            pattern_multipliers: vec_f64(&self.pattern_multipliers),
            small: mat_f64(&self.small),
            preactivations: mat_f64(&self.preactivations),
            margins: vec_f64(&self.margins),
            active: self.active.clone(),
            active_pattern: self.active_pattern,
            certificate: self.certificate.to_f64(),
            method: self.method.clone(),
            solver_status: self.solver_status.clone(),
            iterations: self.iterations,
            refinements: self.refinements,
        }
    }
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

/// X̂ (n×k) with X̂ X̂ᵀ = K: the transposed R of the QR of the network's small data X̃ᵀ.
fn small_data<T: Real>(net: &Network<T>) -> Mat<T> {
    householder_qr_of_transpose(net.x_small()).r.transpose()
}

fn run_clarabel(qp: &Qp, settings: &QpSettings) -> Result<QpSolution> {
    Ok(solve_qp(qp, settings)?)
}

/// Solve and certify the network max-margin QP on `pattern` (±1, m×n row-major): clarabel and
/// the polish, or, where the primal QP's dense matrix would not fit ([`pattern_qp_too_large`]),
/// the dual with n multipliers ([`dual::dual_max_margin`], reported as status `Solved` with
/// method `dual`). Errors with `Interrupted` on a stop request and `MemoryLimit` when neither
/// form fits.
pub fn pattern_max_margin<T: Real>(
    net: &Network<T>,
    pattern: &[i8],
    settings: &MaxMarginSettings,
) -> Result<PatternOutcome<T>> {
    settings.validate()?;
    if pattern.len() == net.m * net.n && pattern_qp_too_large::<T>(net).is_some() {
        let r = dual::dual_max_margin(net, &modes_of(pattern), settings)?;
        let iterations = r.iterations;
        return Ok(PatternOutcome { status: QpStatus::Solved, iterations, reference: Some(r), failure: None });
    }
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
    let refined = prob.polish_and_refine(sol.active_set(), settings.max_refinements);
    interrupt::check()?;
    match refined {
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

/// The sides of a ±1 pattern as switching modes (for the dual).
fn modes_of(pattern: &[i8]) -> Vec<Mode> {
    pattern.iter().map(|&s| if s > 0 { Mode::Positive } else { Mode::Negative }).collect()
}

/// The certified theory-pattern solution (S_ji = sign(a_j) y_i): the closed form with every
/// margin active (M λ = 1, M_ik = y_i y_k K_ik Σ_j a_j² s_ji s_jk) when it certifies, otherwise the
/// QP (clarabel + polish + certificate, or the dual where the primal would not fit). Errors when
/// the QP has no solution to polish, on a stop request, and above the memory limit.
pub fn theory_reference<T: Real>(net: &Network<T>) -> Result<Reference<T>> {
    let settings = MaxMarginSettings::default();
    let pattern = net.theory_pattern();
    if pattern_qp_too_large::<T>(net).is_none() {
        let prob = PatternProblem::new(net, &pattern, &settings)?;
        if let Some(r) = prob.closed_form() {
            if r.certified {
                return Ok(r);
            }
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

/// Largest dense matrix the primal pattern QP may allocate (bytes): beyond it (or beyond the
/// memory limit, [`memory::limit`], if lower) the dual is solved instead.
pub const PATTERN_QP_BYTES_LIMIT: usize = 2_000_000_000;

/// The bytes of the primal pattern QP's dense constraint matrix ((n + m n) × m·rank K).
pub fn pattern_qp_bytes<T: Real>(net: &Network<T>) -> usize {
    (net.n + net.m * net.n).saturating_mul(net.m * net.n.min(net.d)).saturating_mul(std::mem::size_of::<T>().max(8))
}

/// [`pattern_qp_bytes`] when they exceed [`PATTERN_QP_BYTES_LIMIT`] or the memory limit.
pub fn pattern_qp_too_large<T: Real>(net: &Network<T>) -> Option<usize> {
    let bytes = pattern_qp_bytes(net);
    let limit = (PATTERN_QP_BYTES_LIMIT as u64).min(memory::limit());
    (bytes as u64 > limit).then_some(bytes)
}

/// Where the activation pattern comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternSource {
    /// S_ji = sign(a_j) y_i.
    Theory,
    /// A given pattern (±1, m×n row-major), e.g. the final one of a flow run
    /// ([`crate::experiments::run_pattern::pattern_from_run`]).
    Given {
        /// What the report's `pattern` field names it (a run folder).
        name: String,
        /// The signs S_ji.
        signs: Vec<i8>,
    },
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
