//! The `maxmargin` command's result: both max-margin problems solved at the working precision,
//! as a typed [`MaxMarginSummary`] (the JSON of DESIGN §4) and W*.
//!
//! Real numbers `x` appear as `x` (f64, null when not finite) and, above 53 bits, `x_decimal`;
//! the files hold the summary through [`crate::metrics::to_json_value`] (keys sorted). Fields that
//! exist only in some cases are `Option<Option<f64>>`: absent, or a number/null.

use super::{boundary_agreement, linear_max_margin, pattern_max_margin, structure, MaxMarginSettings, PatternSource};
use crate::error::{Error, Result};
use crate::metrics::{list_fields, num_fields, present, Shape};
use crate::model::data::Dataset;
use crate::model::network::{ModelSettings, Network};
use marginflow_solvers::linalg;
use marginflow_solvers::qp::QpStatus;
use marginflow_solvers::{Mat, Real};
use serde::{Deserialize, Serialize};

/// The KKT residuals of the polished solution (see [`super::Certificate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateReport {
    /// min over active constraints of ν_r / max_r |ν_r|.
    pub min_multiplier: Option<f64>,
    /// `min_multiplier` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_multiplier_decimal: Option<String>,
    /// max_i (1 − q_i)/σ_i.
    pub margin_violation: Option<f64>,
    /// `margin_violation` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin_violation_decimal: Option<String>,
    /// max over active margins of |q_i − 1|/σ_i.
    pub active_margin_gap: Option<f64>,
    /// `active_margin_gap` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_margin_gap_decimal: Option<String>,
    /// max_ji −S_ji⟨w_j,x_i⟩ / (‖w_j‖‖x_i‖).
    pub pattern_violation: Option<f64>,
    /// `pattern_violation` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_violation_decimal: Option<String>,
    /// max over active pattern constraints of |⟨w_j,x_i⟩| / (‖w_j‖‖x_i‖).
    pub active_pattern_gap: Option<f64>,
    /// `active_pattern_gap` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_pattern_gap_decimal: Option<String>,
    /// Relative stationarity residual.
    pub stationarity: Option<f64>,
    /// `stationarity` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stationarity_decimal: Option<String>,
    /// The tolerance c·N·ε.
    pub tolerance: Option<f64>,
    /// `tolerance` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_decimal: Option<String>,
    /// Active-set refinement steps after the first polish.
    pub refinements: usize,
}

/// The network max-margin solution W* on the pattern, when the QP reached one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SolutionReport {
    /// ‖W*‖_F. Required when reading (a report without a solution has none).
    #[serde(deserialize_with = "Option::deserialize")]
    pub norm: Option<f64>,
    /// `norm` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_decimal: Option<String>,
    /// 1/‖W*‖_F.
    pub normalized_margin: Option<f64>,
    /// `normalized_margin` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_margin_decimal: Option<String>,
    /// Margin multipliers λ_i (data order).
    pub multipliers: Vec<Option<f64>>,
    /// `multipliers` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipliers_decimal: Option<Vec<String>>,
    /// Indices of the active margin constraints.
    pub active: Vec<usize>,
    /// Number of active pattern constraints.
    pub active_pattern_constraints: usize,
    /// The KKT residuals.
    pub certificate: CertificateReport,
    /// Singular values of W*, largest first.
    pub singular_values: Vec<Option<f64>>,
    /// `singular_values` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular_values_decimal: Option<Vec<String>>,
    /// Singular values above `rank_tolerance`·σ1.
    pub rank: usize,
    /// Relative threshold of `rank` (64 max(m, k) ε).
    pub rank_tolerance: f64,
    /// σ3/σ1 of W* (absent with fewer than three singular values).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub sigma3_over_sigma1: Option<Option<f64>>,
    /// `sigma3_over_sigma1` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma3_over_sigma1_decimal: Option<String>,
    /// Rank-two structure deviation (see [`super::structure`]).
    pub structure: Option<f64>,
    /// `structure` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure_decimal: Option<String>,
    /// z's normalized margin over the linear max margin, z = Σ λ_i y_i x_i (absent without a
    /// linear solution).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub z_margin_ratio: Option<Option<f64>>,
    /// `z_margin_ratio` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_margin_ratio_decimal: Option<String>,
    /// Fraction of test points with sign f(x; W*) = sign⟨z, x⟩ (balanced outer layer only).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub linear_boundary_agreement: Option<Option<f64>>,
}

/// The linear max-margin predictor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearReport {
    /// ‖z*‖ (null without a solution).
    pub norm: Option<f64>,
    /// `norm` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_decimal: Option<String>,
    /// Multipliers α_i (empty without a solution).
    pub multipliers: Vec<Option<f64>>,
    /// `multipliers` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipliers_decimal: Option<Vec<String>>,
    /// Whether every KKT condition was verified.
    pub certified: bool,
    /// clarabel's status on the dual.
    pub solver_status: QpStatus,
    /// The first condition that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_certified_because: Option<String>,
}

/// The settings a report was made with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxMarginRunSettings {
    /// The model.
    pub model: ModelSettings,
    /// The solver settings.
    pub maxmargin: MaxMarginSettings,
}

/// The `maxmargin` JSON (DESIGN §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxMarginSummary {
    /// `theory`, or the run folder the pattern came from.
    pub pattern: String,
    /// clarabel's status on the pattern QP.
    pub solver_status: QpStatus,
    /// Interior-point iterations.
    pub iterations: u32,
    /// Whether the polished solution is certified.
    pub certified: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_certified_because: Option<String>,
    /// The solution, when the QP reached one.
    #[serde(flatten)]
    pub solution: Option<SolutionReport>,
    /// The linear max-margin problem.
    pub linear: LinearReport,
    /// Whether the outer layer is balanced.
    pub balanced: bool,
    /// Working precision in bits.
    pub precision_bits: u32,
    /// n, d, m.
    pub shape: Shape,
    /// The settings.
    pub settings: MaxMarginRunSettings,
}

/// The `maxmargin` result: the summary and W* (m×d, f64) when a solution exists.
pub struct MaxMarginReport {
    /// The JSON summary.
    pub summary: MaxMarginSummary,
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
            return Err(Error::setting("precision", format!("must be at least 2 bits, got {precision}")));
        }
        solve_at::<rug::Float>(data, model, pattern, precision, settings)
    }
    #[cfg(not(feature = "mpfr"))]
    Err(Error::setting("precision", format!("{precision} bits needs the `mpfr` feature (this build has f64 only: 53)")))
}

/// The linear problem's report.
fn linear_report<T: Real>(lin: &super::LinearMaxMargin<T>) -> LinearReport {
    let (norm, norm_decimal) =
        if lin.status.has_solution() && !lin.multipliers.is_empty() { num_fields(&lin.norm) } else { (None, None) };
    let (multipliers, multipliers_decimal) = list_fields(&lin.multipliers);
    LinearReport {
        norm,
        norm_decimal,
        multipliers,
        multipliers_decimal,
        certified: lin.certified,
        solver_status: lin.status.clone(),
        not_certified_because: lin.failure.clone(),
    }
}

/// The certificate's residuals.
fn certificate_report<T: Real>(r: &super::Reference<T>) -> CertificateReport {
    let c = &r.certificate;
    let (min_multiplier, min_multiplier_decimal) = num_fields(&c.min_multiplier);
    let (margin_violation, margin_violation_decimal) = num_fields(&c.margin_violation);
    let (active_margin_gap, active_margin_gap_decimal) = num_fields(&c.active_margin_gap);
    let (pattern_violation, pattern_violation_decimal) = num_fields(&c.pattern_violation);
    let (active_pattern_gap, active_pattern_gap_decimal) = num_fields(&c.active_pattern_gap);
    let (stationarity, stationarity_decimal) = num_fields(&c.stationarity);
    let (tolerance, tolerance_decimal) = num_fields(&c.tolerance);
    CertificateReport {
        min_multiplier,
        min_multiplier_decimal,
        margin_violation,
        margin_violation_decimal,
        active_margin_gap,
        active_margin_gap_decimal,
        pattern_violation,
        pattern_violation_decimal,
        active_pattern_gap,
        active_pattern_gap_decimal,
        stationarity,
        stationarity_decimal,
        tolerance,
        tolerance_decimal,
        refinements: r.refinements,
    }
}

/// z = Σ λ_i y_i x_i: its normalized margin min_i y_i⟨z,x_i⟩/‖z‖ over the linear max margin
/// 1/‖z*‖, from the margins y_i Σ_k λ_k y_k K_ki (`None` when either norm vanishes).
fn z_margin_ratio<T: Real>(net: &Network<T>, r: &super::Reference<T>, lin_norm: &T) -> Option<T> {
    let (n, p) = (net.n, net.prec);
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
    let zm = zmin?;
    // (min margin / ‖z‖) / (1/‖z*‖).
    (zn > T::zero(p) && *lin_norm > T::zero(p)).then(|| zm / &zn * lin_norm)
}

/// The solution's report: norm, multipliers, certificate, singular values and rank, structure, and
/// the linear-boundary numbers.
fn solution_report<T: Real>(
    data: &Dataset,
    net: &Network<T>,
    r: &super::Reference<T>,
    lin: &super::LinearMaxMargin<T>,
    settings: &MaxMarginSettings,
) -> Result<SolutionReport> {
    let p = net.prec;
    let (norm, norm_decimal) = num_fields(&r.norm);
    let (normalized_margin, normalized_margin_decimal) = num_fields(&(T::one(p) / &r.norm));
    let (multipliers, multipliers_decimal) = list_fields(&r.multipliers);
    let sv = linalg::singular_values(&r.small)?;
    let rank_tolerance = (T::epsilon(p) * &T::from_f64(64.0 * (net.m.max(r.small.cols)) as f64, p)).to_f64();
    let (singular_values, singular_values_decimal) = list_fields(&sv);
    let (sigma3_over_sigma1, sigma3_over_sigma1_decimal) = match (sv.first(), sv.get(2)) {
        (Some(s1), Some(s3)) => {
            let (v, d) = num_fields(&(s3.clone() / s1));
            (Some(v), d)
        }
        _ => (None, None),
    };
    let (structure, structure_decimal) = num_fields(&structure(net, r));
    let (z_margin_ratio, z_margin_ratio_decimal) =
        match (lin.certified || lin.status.has_solution()).then(|| z_margin_ratio(net, r, &lin.norm)).flatten() {
            Some(z) => {
                let (v, d) = num_fields(&z);
                (Some(v), d)
            }
            None => (None, None),
        };
    let linear_boundary_agreement = ModelSettings::is_balanced(&net.a_f64).then(|| {
        let agree = boundary_agreement(data, net, r, settings);
        agree.is_finite().then_some(agree)
    });
    Ok(SolutionReport {
        norm,
        norm_decimal,
        normalized_margin,
        normalized_margin_decimal,
        multipliers,
        multipliers_decimal,
        active: r.active.clone(),
        active_pattern_constraints: r.active_pattern,
        certificate: certificate_report(r),
        singular_values,
        singular_values_decimal,
        rank: linalg::rank_from_singular_values(&sv, rank_tolerance),
        rank_tolerance,
        sigma3_over_sigma1,
        sigma3_over_sigma1_decimal,
        structure,
        structure_decimal,
        z_margin_ratio,
        z_margin_ratio_decimal,
        linear_boundary_agreement,
    })
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
    let (pattern, name) = match source {
        PatternSource::Theory => (net.theory_pattern(), "theory".to_string()),
        PatternSource::Given { name, signs } => {
            if signs.len() != m * n {
                return Err(Error::setting("pattern", format!("has {} signs, m·n is {}", signs.len(), m * n)));
            }
            (signs.clone(), name.clone())
        }
    };
    let out = pattern_max_margin(&net, &pattern, settings)?;
    let lin = linear_max_margin(&net, settings)?;
    let (certified, not_certified_because, solution, weights) = match &out.reference {
        None => (false, Some(out.failure.clone().unwrap_or_default()), None, None),
        Some(r) => {
            let solution = solution_report(data, &net, r, &lin, settings)?;
            // W* = C X at working precision.
            let x: Mat<T> = Mat::from_f64(n, d, &data.x, prec);
            (r.certified, r.failure.clone(), Some(solution), Some(r.coefficients.matmul(&x).to_f64()))
        }
    };
    let summary = MaxMarginSummary {
        pattern: name,
        solver_status: out.status.clone(),
        iterations: out.iterations,
        certified,
        not_certified_because,
        solution,
        linear: linear_report(&lin),
        balanced: ModelSettings::is_balanced(&net.a_f64),
        precision_bits: prec,
        shape: Shape { n, d, m },
        settings: MaxMarginRunSettings { model: model.clone(), maxmargin: settings.clone() },
    };
    Ok(MaxMarginReport { summary, weights, shape: (m, d) })
}
