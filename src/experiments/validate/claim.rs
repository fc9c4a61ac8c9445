//! What a claim is: its kind, verdict, measurements and result, and the line fits the
//! measurements use. The base of this folder: it imports none of its siblings.

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
