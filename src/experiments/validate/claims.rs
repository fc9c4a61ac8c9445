//! The claims of the theorem, one function each, reading the typed flow summary and rows.

use super::limit_claims::*;
use super::theorems::theorem_of;
use super::{PreparedScenario, RestartResult, TrajectoryPoint};
use crate::error::Result;
use crate::flow::FlowSummary;
use crate::maxmargin::Reference;
use crate::model::data::Geometry;
use crate::model::network::Network;
use marginflow_solvers::linalg;
use serde::{Deserialize, Serialize};

/// A claim of the theorem that a scenario checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// The near-orthogonality condition (reported, never gating).
    Assumption,
    /// The loss falls below log 2 / n.
    Interpolation,
    /// Convergence in direction to a certified KKT point of the max-margin problem on the flow's
    /// own limit pattern (expected on any separable data: Lyu–Li 2020, Ji–Telgarsky 2020).
    Kkt,
    /// The limit is the theory's KKT point: the certified max-margin solution of the theory
    /// pattern S_ji = sign(a_j) y_i.
    TheoryPattern,
    /// rank W* ≤ 2 and σ3/σ1 of W(s) → 0.
    Rank,
    /// The limit is a global max-margin solution.
    GlobalMaxMargin,
    /// A linear decision boundary given by z = Σ λ_i y_i x_i (balanced outer layer).
    LinearBoundary,
    /// Lyu–Li: the smoothed normalized margin ℓ⁻¹(nL)/‖W‖ is non-decreasing once nL < ℓ(0).
    SmoothedMargin,
    /// Lyu–Li: L·t and ‖W‖/ln t stay within fixed bounds over the late decades of t.
    LossRates,
    /// Ji–Telgarsky: the path length of W/‖W‖ over the last decade of s is small.
    PathLength,
    /// Frei et al. (GD): the stable rank drops after one step from a small initialization.
    GdStableRank,
    /// Kou–Chen–Gu: the stable rank tends to 1 (of the sign blocks W₊, W₋; of W reported).
    BlockStableRank,
    /// Kou–Chen–Gu: all training points reach the same normalized margin.
    MarginRatio,
    /// Frei et al. (benign): the noisy labels are interpolated and the clean test error is small.
    BenignOverfitting,
}

impl ClaimKind {
    /// All claims, in report order (grouped by theorem, in the order of
    /// [`super::theorems::THEOREMS`]).
    pub const ALL: [ClaimKind; 14] = [
        ClaimKind::Assumption,
        ClaimKind::Interpolation,
        ClaimKind::TheoryPattern,
        ClaimKind::Rank,
        ClaimKind::GlobalMaxMargin,
        ClaimKind::LinearBoundary,
        ClaimKind::SmoothedMargin,
        ClaimKind::LossRates,
        ClaimKind::Kkt,
        ClaimKind::PathLength,
        ClaimKind::GdStableRank,
        ClaimKind::BlockStableRank,
        ClaimKind::MarginRatio,
        ClaimKind::BenignOverfitting,
    ];

    /// The claims with typed columns in `sweep validate` (runs.csv, result.json, phase.csv):
    /// frei2023-gf's and `kkt`.
    pub const SWEPT: [ClaimKind; 7] = [
        ClaimKind::Assumption,
        ClaimKind::Interpolation,
        ClaimKind::Kkt,
        ClaimKind::TheoryPattern,
        ClaimKind::Rank,
        ClaimKind::GlobalMaxMargin,
        ClaimKind::LinearBoundary,
    ];

    /// The snake_case name used in scenario files and reports.
    pub fn name(&self) -> &'static str {
        match self {
            ClaimKind::Assumption => "assumption",
            ClaimKind::Interpolation => "interpolation",
            ClaimKind::Kkt => "kkt",
            ClaimKind::TheoryPattern => "theory_pattern",
            ClaimKind::Rank => "rank",
            ClaimKind::GlobalMaxMargin => "global_max_margin",
            ClaimKind::LinearBoundary => "linear_boundary",
            ClaimKind::SmoothedMargin => "smoothed_margin",
            ClaimKind::LossRates => "loss_rates",
            ClaimKind::PathLength => "path_length",
            ClaimKind::GdStableRank => "gd_stable_rank",
            ClaimKind::BlockStableRank => "block_stable_rank",
            ClaimKind::MarginRatio => "margin_ratio",
            ClaimKind::BenignOverfitting => "benign_overfitting",
        }
    }
}

/// The verdict on one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every gating measurement is within its threshold.
    Holds,
    /// Some gating measurement is outside its threshold.
    Fails,
    /// Fails, and the scenario lists it in `expect_fail` (a negative control working as intended).
    ExpectedFailure,
    /// Holds although the scenario lists it in `expect_fail`: the run fails.
    UnexpectedlyHeld,
    /// Does not apply to this scenario (e.g. the linear boundary with an unbalanced outer layer).
    NotApplicable,
    /// Measured and reported only (the assumption).
    Reported,
}

impl Verdict {
    /// Whether this verdict makes the run fail (exit status 1).
    pub fn fails_run(&self) -> bool {
        matches!(self, Verdict::Fails | Verdict::UnexpectedlyHeld)
    }

    /// A short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "FAILS",
            Verdict::ExpectedFailure => "expected failure",
            Verdict::UnexpectedlyHeld => "UNEXPECTEDLY HELD",
            Verdict::NotApplicable => "not applicable",
            Verdict::Reported => "reported",
        }
    }
}

/// How a measurement is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// value ≤ threshold.
    AtMost,
    /// value < threshold.
    Below,
    /// value ≥ threshold.
    AtLeast,
    /// No threshold: reported only.
    Reported,
}

/// One measured number of a claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// The value (`None` when it could not be computed or is not finite).
    pub value: Option<f64>,
    /// The threshold it is compared with.
    pub threshold: Option<f64>,
    /// How it is compared.
    pub comparison: Comparison,
    /// Whether it passes (`None` for reported-only measurements).
    pub pass: Option<bool>,
    /// Whether its pass/fail enters the claim's verdict.
    pub gating: bool,
}

impl Measurement {
    pub(super) fn gate(name: &str, value: Option<f64>, comparison: Comparison, threshold: f64) -> Self {
        let pass = value.map(|v| match comparison {
            Comparison::AtMost => v <= threshold,
            Comparison::Below => v < threshold,
            Comparison::AtLeast => v >= threshold,
            Comparison::Reported => true,
        });
        Measurement {
            name: name.into(),
            value: value.filter(|v| v.is_finite()),
            threshold: Some(threshold),
            comparison,
            pass: Some(pass.unwrap_or(false)),
            gating: true,
        }
    }

    /// Compared with a threshold but not gating (shown for information).
    pub(super) fn info_threshold(name: &str, value: Option<f64>, comparison: Comparison, threshold: f64) -> Self {
        let mut m = Measurement::gate(name, value, comparison, threshold);
        m.gating = false;
        m
    }

    pub(super) fn report(name: &str, value: Option<f64>) -> Self {
        Measurement {
            name: name.into(),
            value: value.filter(|v| v.is_finite()),
            threshold: None,
            comparison: Comparison::Reported,
            pass: None,
            gating: false,
        }
    }
}

/// The verdict on one claim with its measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Which claim.
    pub claim: ClaimKind,
    /// The id of the theorem it belongs to.
    pub theorem: String,
    /// The verdict, after `expect_fail`.
    pub verdict: Verdict,
    /// The measurements behind it.
    pub measurements: Vec<Measurement>,
    /// Why it does not apply, or what could not be computed.
    pub note: Option<String>,
}

impl ClaimResult {
    /// The gating measurements that failed.
    pub fn failing(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements.iter().filter(|m| m.gating && m.pass == Some(false))
    }
}

/// A least-squares line y = intercept + slope·x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Coefficient of determination R².
    pub r_squared: f64,
    /// Number of points.
    pub points: usize,
}

/// Ordinary least squares of y on x (`None` for fewer than 3 points or constant x).
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let syy: f64 = y.iter().map(|v| (v - my) * (v - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r_squared = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    Some(LineFit { slope, intercept, r_squared, points: n })
}

pub(super) fn apply_expectation(raw: Option<bool>, expected_fail: bool, not_gating: Verdict) -> Verdict {
    match (raw, expected_fail) {
        (None, _) => not_gating,
        (Some(true), false) => Verdict::Holds,
        (Some(false), false) => Verdict::Fails,
        (Some(false), true) => Verdict::ExpectedFailure,
        (Some(true), true) => Verdict::UnexpectedlyHeld,
    }
}

pub(super) fn claim(
    kind: ClaimKind,
    measurements: Vec<Measurement>,
    note: Option<String>,
    expect: &[ClaimKind],
) -> ClaimResult {
    let gating: Vec<&Measurement> = measurements.iter().filter(|m| m.gating).collect();
    let raw = if gating.is_empty() { None } else { Some(gating.iter().all(|m| m.pass == Some(true))) };
    let verdict = apply_expectation(raw, expect.contains(&kind), Verdict::Reported);
    ClaimResult { claim: kind, theorem: theorem_of(kind).id.to_string(), verdict, measurements, note }
}

/// What the claims read: the scenario, the main flow's summary, rows, reference and final W, and
/// the restarts.
pub(super) struct Evidence<'a> {
    /// The scenario.
    pub p: &'a PreparedScenario,
    /// The model at f64 (W*'s singular values, the linear max margin).
    pub net: &'a Network<f64>,
    /// The outer layer a.
    pub a: &'a [f64],
    /// The main flow's summary.
    pub summary: &'a FlowSummary,
    /// The main flow's max-margin reference (theory pattern), when its QP was solved.
    pub reference: Option<&'a Reference<f64>>,
    /// The main flow's final W (m×d).
    pub weights: Option<&'a [f64]>,
    /// The main flow's rows.
    pub trajectory: &'a [TrajectoryPoint],
    /// The restart flows.
    pub restarts: &'a [RestartResult],
}

impl Evidence<'_> {
    pub(super) fn expect(&self) -> &[ClaimKind] {
        &self.p.scenario.expect_fail
    }
    /// Rows within `late_decades` decades of the final s.
    pub(super) fn late(&self) -> Vec<TrajectoryPoint> {
        late_rows(self.trajectory, self.summary.time.s, self.p.scenario.thresholds.late_decades)
    }
    /// Whether the reference is certified.
    pub(super) fn reference_certified(&self) -> bool {
        self.reference.is_some_and(|r| r.certified)
    }
    /// The reference's normalized margin 1/‖W*‖.
    pub(super) fn reference_margin(&self) -> Option<f64> {
        self.reference.map(|r| 1.0 / r.norm)
    }
}

/// The rows as the numbers [`super::dynamics`] reads.
pub(super) fn dynamics_rows(trajectory: &[TrajectoryPoint]) -> Vec<super::dynamics::Row> {
    trajectory
        .iter()
        .map(|r| super::dynamics::Row {
            s: r.s,
            log10_time: r.log10_time,
            log10_loss: r.log10_loss,
            norm: r.frobenius_norm,
        })
        .collect()
}

/// Every claim of the scenario's theorems, in report order.
pub(super) fn flow_claims(ev: &Evidence<'_>, geometry: &Geometry) -> Result<Vec<ClaimResult>> {
    use super::theorem_claims as tc;
    let sc = &ev.p.scenario;
    let th = &sc.thresholds;
    let expect = ev.expect();
    let rows = dynamics_rows(ev.trajectory);
    let act = crate::model::activation::Activation::Leaky { gamma: sc.leak };
    let train_margins = ev.weights.map(|w| tc::margins(w, ev.a, act, &ev.p.data));
    let mut out = Vec::new();
    for kind in ClaimKind::ALL {
        if !ev.p.checks(kind) {
            continue;
        }
        out.push(match kind {
            ClaimKind::Assumption => assumption_claim(ev, geometry),
            ClaimKind::Interpolation => interpolation_claim(ev),
            ClaimKind::Kkt => kkt_claim(ev),
            ClaimKind::TheoryPattern => theory_pattern_claim(ev),
            ClaimKind::Rank => rank_claim(ev)?,
            ClaimKind::GlobalMaxMargin => global_max_margin_claim(ev),
            ClaimKind::LinearBoundary => linear_boundary_claim(ev),
            ClaimKind::SmoothedMargin => {
                tc::smoothed_margin_claim(sc.loss, ev.p.data.n, &rows, ev.summary.state.normalized_margin, th, expect)
            }
            ClaimKind::LossRates => tc::loss_rates_claim(&rows, th, expect),
            ClaimKind::PathLength => {
                let gaps: Vec<(f64, f64)> =
                    ev.trajectory.iter().filter_map(|r| r.position_gap.map(|g| (r.s, g))).collect();
                let fin = final_gaps(ev);
                tc::path_length_claim(sc.loss, ev.p.data.n, &rows, &gaps, fin, th, expect)
            }
            ClaimKind::BlockStableRank => {
                tc::block_stable_rank_claim(ev.weights, ev.a, &ev.p.data, sc.leak, th, expect)
            }
            ClaimKind::MarginRatio => tc::margin_ratio_claim(train_margins.as_deref(), th, expect),
            ClaimKind::BenignOverfitting => {
                let test = ev.p.test.as_ref().zip(ev.weights).map(|(t, w)| tc::margins(w, ev.a, act, t));
                let noise = sc.generate.as_ref().map_or(0.0, |g| g.label_noise);
                tc::benign_claim(train_margins.as_deref(), test.as_deref(), noise, th, expect)
            }
            ClaimKind::GdStableRank => continue,
        });
    }
    Ok(relu_reported(out, sc.leak))
}

/// With γ = 0 (ReLU) the claims of theorems that assume γ > 0 are measured and reported, never
/// gating (their theorem says nothing there).
pub(super) fn relu_reported(mut claims: Vec<ClaimResult>, leak: f64) -> Vec<ClaimResult> {
    if leak != 0.0 {
        return claims;
    }
    for c in claims.iter_mut().filter(|c| theorem_of(c.claim).needs_leak) {
        if c.verdict == Verdict::NotApplicable {
            continue;
        }
        for m in c.measurements.iter_mut() {
            m.gating = false;
        }
        c.verdict = Verdict::Reported;
        let note = format!("{} assumes γ > 0: measured and reported at γ = 0 (ReLU), not gating", c.theorem);
        c.note = Some(match c.note.take() {
            Some(n) => format!("{note}; {n}"),
            None => note,
        });
    }
    claims
}

/// The final position and velocity gaps with the limit-pattern reference when it is certified,
/// else with the theory pattern's.
pub(super) fn final_gaps(ev: &Evidence<'_>) -> Option<(f64, f64)> {
    let pick = |r: Option<&crate::flow::FlowReference>| {
        r.and_then(|r| r.comparison()).filter(|c| c.certified).and_then(|c| c.position_gap.zip(c.velocity_gap))
    };
    pick(ev.summary.limit_reference.as_ref()).or_else(|| pick(ev.summary.reference.as_ref()))
}

/// `assumption`: the paper's near-orthogonality ratio against C (reported, never gating).
pub(super) fn assumption_claim(ev: &Evidence<'_>, geometry: &Geometry) -> ClaimResult {
    let c = ev.p.scenario.thresholds.assumption_constant;
    claim(
        ClaimKind::Assumption,
        vec![
            Measurement::info_threshold(
                "paper ratio R_min²/(γ⁻³R²np) ≥ C",
                geometry.paper_ratio.or(Some(f64::INFINITY)),
                Comparison::AtLeast,
                c,
            ),
            Measurement::report("ratio min‖x_i‖²/(n p)", geometry.ratio),
            Measurement::report("max |⟨x_i,x_k⟩|", Some(geometry.max_abs_inner)),
            Measurement::report("min ‖x_i‖²", Some(geometry.min_sq_norm)),
        ],
        Some(format!("the paper's condition {} for C = {}; reported only", geometry.condition, c)),
        ev.expect(),
    )
}

/// `interpolation`: the smallest log10 L over the rows and the end is below log10(log 2 / n).
pub(super) fn interpolation_claim(ev: &Evidence<'_>) -> ClaimResult {
    let interp_threshold = (2f64.ln() / ev.p.data.n as f64).log10();
    let min_loss = ev
        .trajectory
        .iter()
        .map(|r| r.log10_loss)
        .chain(ev.summary.state.log10_loss)
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    claim(
        ClaimKind::Interpolation,
        vec![Measurement::gate(
            "min log10 L (threshold log10(log 2 / n): below it every margin is positive)",
            Some(min_loss),
            Comparison::Below,
            interp_threshold,
        )],
        None,
        ev.expect(),
    )
}

/// `kkt`: the max-margin QP on the flow's own limit pattern is certified, the velocity is parallel
/// to its solution W*, and the loss weights match its λ/Σλ; the flow direction's KKT residuals are
/// reported.
pub(super) fn kkt_claim(ev: &Evidence<'_>) -> ClaimResult {
    let th = &ev.p.scenario.thresholds;
    let limit = ev.summary.limit_reference.as_ref();
    let comparison = limit.and_then(|r| r.comparison());
    let certified = comparison.is_some_and(|c| c.certified);
    let kappa = ev.weights.and_then(|w| multiplier_conditioning(ev, w));
    let wnorm = ev.summary.loss_weights.iter().map(|v| v.unwrap_or(0.0).powi(2)).sum::<f64>().sqrt();
    let mut notes =
        vec!["against the certified max-margin QP on the flow's own limit pattern; the loss weights w = −ℓ'(q)/(nL) \
         are read from the velocity through A = G Gᵀ (G_i = ∇_W q_i at the end), so an error δ of the direction \
         allows a relative multiplier error √κ(A)·δ: the multiplier threshold is scaled by √κ(A)"
            .to_string()];
    if let Some(why) = limit.and_then(|r| r.not_certified_because()) {
        notes.push(format!("limit-pattern reference not certified: {why}"));
    }
    claim(
        ClaimKind::Kkt,
        vec![
            Measurement::gate(
                "limit-pattern reference certified (1 = yes)",
                Some(if certified { 1.0 } else { 0.0 }),
                Comparison::AtLeast,
                1.0,
            ),
            Measurement::gate(
                "velocity gap 1 − cos(dW/ds, W*_limit)",
                comparison.and_then(|c| c.velocity_gap),
                Comparison::AtMost,
                th.velocity_gap,
            ),
            Measurement::gate(
                "multiplier error max|w_i − λ_i/Σλ| (limit pattern), against multiplier_error·√κ(A)",
                comparison.and_then(|c| c.multiplier_error),
                Comparison::AtMost,
                th.multiplier_error * kappa.map_or(f64::INFINITY, f64::sqrt),
            ),
            Measurement::info_threshold(
                "the same against multiplier_error unscaled",
                comparison.and_then(|c| c.multiplier_error),
                Comparison::AtMost,
                th.multiplier_error,
            ),
            Measurement::report("condition number κ(A) of the multiplier map", kappa),
            Measurement::report(
                "multiplier error the velocity gap allows, √κ(A)·√(2·gap)·‖w‖₂",
                kappa
                    .zip(comparison.and_then(|c| c.velocity_gap))
                    .map(|(k, g)| k.sqrt() * (2.0 * g.max(0.0)).sqrt() * wnorm),
            ),
            Measurement::report("KKT stationarity (flow direction)", ev.summary.kkt.kkt_stationarity),
            Measurement::report("KKT complementarity (flow direction)", ev.summary.kkt.kkt_complementarity),
            Measurement::report("position gap 1 − cos(W, W*_limit)", comparison.and_then(|c| c.position_gap)),
        ],
        Some(notes.join("; ")),
        ev.expect(),
    )
}

/// κ(A) = σ_max/σ_min of the multiplier map's Gram matrix at the final W, on the support of the
/// loss weights (w_i ≥ 1e-6 max w): A = Σ_j a_j² D_j K_j D_j with D_j = diag(y ⊙ σ_j),
/// σ_ji = φ'(⟨w_j, x_i⟩), and K_j the Gram matrix of the data projected orthogonally to the points
/// where row j is pinned at 0 (K − K_{:,S} K_SS⁻¹ K_{S,:}, DESIGN §8; a pinned entry's slope is free
/// in [γ, 1], so its direction carries no information about w). The velocity is
/// V = Σ_i w_i ∇_W q_i + (pinned directions), so w are V's coordinates in this Gram matrix.
/// Infinite when A is singular to round-off (the weights are then not determined by the direction).
pub(super) fn multiplier_conditioning(ev: &Evidence<'_>, w: &[f64]) -> Option<f64> {
    let data = &ev.p.data;
    let (n, d, m) = (data.n, data.d, ev.a.len());
    let gamma = ev.p.scenario.leak;
    let weights: Vec<f64> = ev.summary.loss_weights.iter().map(|v| v.unwrap_or(0.0)).collect();
    let wmax = weights.iter().cloned().fold(0.0, f64::max);
    let support: Vec<usize> = (0..n).filter(|&i| weights[i] >= 1e-6 * wmax && wmax > 0.0).collect();
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let k = ev.net.k_mat.to_f64();
    let ns = support.len();
    let mut amat = vec![0.0; ns * ns];
    for j in 0..m {
        let wj = &w[j * d..(j + 1) * d];
        let wn = dot(wj, wj).sqrt();
        let p: Vec<f64> = (0..n).map(|i| dot(wj, data.row(i))).collect();
        let pinned: Vec<usize> = (0..n).filter(|&i| p[i].abs() <= 1e-9 * wn * k[i * n + i].sqrt()).collect();
        let sigma: Vec<f64> = (0..n)
            .map(|i| {
                if pinned.contains(&i) {
                    0.0
                } else if p[i] > 0.0 {
                    1.0
                } else {
                    gamma
                }
            })
            .collect();
        // Gram of the support points projected away from the pinned points (Gram–Schmidt).
        let kj: Vec<f64> = if pinned.is_empty() {
            support.iter().flat_map(|&i| support.iter().map(move |&l| (i, l))).map(|(i, l)| k[i * n + l]).collect()
        } else {
            let mut basis: Vec<Vec<f64>> = Vec::new();
            for &s in &pinned {
                let mut v = data.row(s).to_vec();
                for b in &basis {
                    let c = dot(&v, b);
                    v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
                }
                let nv = dot(&v, &v).sqrt();
                if nv > 1e-12 * k[s * n + s].sqrt() {
                    v.iter_mut().for_each(|x| *x /= nv);
                    basis.push(v);
                }
            }
            let proj: Vec<Vec<f64>> = support
                .iter()
                .map(|&i| {
                    let mut v = data.row(i).to_vec();
                    for b in &basis {
                        let c = dot(&v, b);
                        v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
                    }
                    v
                })
                .collect();
            proj.iter().flat_map(|u| proj.iter().map(move |v| (u, v))).map(|(u, v)| dot(u, v)).collect()
        };
        let aj2 = ev.a[j] * ev.a[j];
        for (r, &i) in support.iter().enumerate() {
            for (c, &l) in support.iter().enumerate() {
                amat[r * ns + c] += aj2 * data.y[i] * sigma[i] * data.y[l] * sigma[l] * kj[r * ns + c];
            }
        }
    }
    let sv = linalg::singular_values(&linalg::Mat::from_vec(ns, ns, amat)).ok()?;
    let (max, min) = (*sv.first()?, *sv.last()?);
    if !(max > 0.0) {
        return None;
    }
    Some(if min > 1e-15 * max { max / min } else { f64::INFINITY })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn fit_line_recovers_a_line() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 3.0 * v).collect();
        let f = fit_line(&x, &y).unwrap();
        assert!((f.slope + 3.0).abs() < 1e-12 && (f.intercept - 2.0).abs() < 1e-12);
        assert!((f.r_squared - 1.0).abs() < 1e-12);
    }

    #[test]
    pub(super) fn expectation_logic() {
        assert_eq!(apply_expectation(Some(true), true, Verdict::Reported), Verdict::UnexpectedlyHeld);
        assert_eq!(apply_expectation(Some(false), true, Verdict::Reported), Verdict::ExpectedFailure);
        assert_eq!(apply_expectation(Some(false), false, Verdict::Reported), Verdict::Fails);
        assert_eq!(apply_expectation(None, false, Verdict::NotApplicable), Verdict::NotApplicable);
    }
}

/// Why the linear-boundary claim does not apply: the outer layer has unequal positive and negative
/// mass. With `outer = "balanced"` and odd m that is the ⌈m/2⌉ / ⌊m/2⌋ split: exact balance
/// needs even m.
pub fn unbalanced_note(outer: &str, a: &[f64]) -> String {
    let pos = a.iter().filter(|v| **v > 0.0).count();
    let neg = a.len() - pos;
    if outer == "balanced" && a.len() % 2 == 1 {
        format!(
            "with odd width m = {} the `balanced` outer layer has {pos} entries +1/√m and {neg} entries −1/√m, \
             so it is not exactly balanced (that needs even m): the claim does not apply",
            a.len()
        )
    } else {
        format!(
            "the outer layer is not balanced ({pos} positive, {neg} negative entries): the boundary is piecewise \
             linear and the claim does not apply"
        )
    }
}
