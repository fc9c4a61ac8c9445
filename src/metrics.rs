//! Measurements of a network state, all from small matrices (sizes independent of d).

use crate::error::Result;
use crate::model::loss::log_sum_exp;
use crate::model::network::Network;
use marginflow_solvers::{linalg, Mat, Real};
use serde::{Deserialize, Serialize};

/// How many singular values a report lists (largest first).
pub const REPORTED_SINGULAR_VALUES: usize = 8;

/// A value as `f64` and, at precision above 53 bits, as a decimal string with all its digits.
#[derive(Clone, Debug, PartialEq)]
pub struct Num {
    /// Rounded to f64 (`None` for non-finite values, serialized as null).
    pub value: Option<f64>,
    /// All significant digits when the working precision exceeds 53 bits.
    pub decimal: Option<String>,
}

impl Num {
    /// From a working-precision value.
    pub fn of<T: Real>(x: &T) -> Self {
        let v = x.to_f64();
        Num {
            value: if v.is_finite() { Some(v) } else { None },
            decimal: if x.precision() > 53 && x.is_finite() { Some(x.to_decimal()) } else { None },
        }
    }
    /// From an f64 (no decimal form).
    pub fn f64(v: f64) -> Self {
        Num { value: if v.is_finite() { Some(v) } else { None }, decimal: None }
    }
}

impl Num {
    /// The two JSON fields of a number: `name` (f64, null when not finite) and `name_decimal`
    /// (all digits, present above 53 bits).
    pub fn split(self) -> (Option<f64>, Option<String>) {
        (self.value, self.decimal)
    }
}

/// The two JSON fields of a list of numbers: `name` (f64 values, null where not finite) and
/// `name_decimal` (all digits, present when any element has them, "" for those without).
pub fn split_list(v: &[Num]) -> (Vec<Option<f64>>, Option<Vec<String>>) {
    let values = v.iter().map(|x| x.value).collect();
    let decimals = if v.iter().any(|x| x.decimal.is_some()) {
        Some(v.iter().map(|x| x.decimal.clone().unwrap_or_default()).collect())
    } else {
        None
    };
    (values, decimals)
}

/// A working-precision value as its two JSON fields (see [`Num::split`]).
pub fn num_fields<T: Real>(x: &T) -> (Option<f64>, Option<String>) {
    Num::of(x).split()
}

/// Working-precision values as their two JSON fields (see [`split_list`]).
pub fn list_fields<T: Real>(v: &[T]) -> (Vec<Option<f64>>, Option<Vec<String>>) {
    split_list(&v.iter().map(Num::of).collect::<Vec<_>>())
}

/// A result struct as the JSON object the files hold: `serde_json::Value` objects keep their keys
/// sorted, which is the key order of every JSON file and line marginflow writes.
pub fn to_json_value<S: Serialize>(value: &S) -> serde_json::Value {
    // Result structs hold numbers, strings, lists and string-keyed maps: serializing them into a
    // Value cannot fail.
    serde_json::to_value(value).expect("result structs serialize to JSON")
}

/// Reads a field that is present (null included) as `Some`: for `Option<Option<T>>` fields whose
/// key may be absent (outer `None`, skipped when writing) or null (inner `None`, a non-finite value).
pub fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The numbers of one network state that flow and descent rows and summaries share (DESIGN §3).
/// Each real number `x` is `x` (f64, null when not finite) plus `x_decimal` (all its digits,
/// only above 53 bits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateNumbers {
    /// log10 of the mean loss L.
    pub log10_loss: Option<f64>,
    /// `log10_loss` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log10_loss_decimal: Option<String>,
    /// ‖W‖_F.
    pub frobenius_norm: Option<f64>,
    /// `frobenius_norm` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frobenius_norm_decimal: Option<String>,
    /// min_i q_i.
    pub min_margin: Option<f64>,
    /// `min_margin` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_margin_decimal: Option<String>,
    /// min_i q_i / ‖W‖_F.
    pub normalized_margin: Option<f64>,
    /// `normalized_margin` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_margin_decimal: Option<String>,
    /// The top [`REPORTED_SINGULAR_VALUES`] singular values of W, largest first.
    pub singular_values: Vec<Option<f64>>,
    /// `singular_values` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular_values_decimal: Option<Vec<String>>,
    /// ‖W‖_F² / ‖W‖_2².
    pub stable_rank: Option<f64>,
    /// `stable_rank` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_rank_decimal: Option<String>,
    /// σ3/σ1.
    pub sigma3_over_sigma1: Option<f64>,
    /// `sigma3_over_sigma1` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma3_over_sigma1_decimal: Option<String>,
    /// Fraction of (j, i) with sign P_ji = sign(a_j) y_i.
    pub pattern_agreement: f64,
}

impl StateNumbers {
    /// The reported numbers of measured state (the top [`REPORTED_SINGULAR_VALUES`] singular
    /// values).
    pub fn of<T: Real>(sm: &StateMetrics<T>) -> Self {
        Self::with_singular_values(sm, REPORTED_SINGULAR_VALUES)
    }

    /// The reported numbers of measured state with the top `k` singular values.
    pub fn with_singular_values<T: Real>(sm: &StateMetrics<T>, k: usize) -> Self {
        let (log10_loss, log10_loss_decimal) = num_fields(&sm.log10_loss);
        let (frobenius_norm, frobenius_norm_decimal) = num_fields(&sm.frobenius_norm);
        let (min_margin, min_margin_decimal) = num_fields(&sm.min_margin);
        let (normalized_margin, normalized_margin_decimal) = num_fields(&sm.normalized_margin);
        let (singular_values, singular_values_decimal) =
            split_list(&sm.singular_values.iter().take(k).map(Num::of).collect::<Vec<_>>());
        let (stable_rank, stable_rank_decimal) = num_fields(&sm.stable_rank);
        let (sigma3_over_sigma1, sigma3_over_sigma1_decimal) = num_fields(&sm.sigma3_over_sigma1);
        StateNumbers {
            log10_loss,
            log10_loss_decimal,
            frobenius_norm,
            frobenius_norm_decimal,
            min_margin,
            min_margin_decimal,
            normalized_margin,
            normalized_margin_decimal,
            singular_values,
            singular_values_decimal,
            stable_rank,
            stable_rank_decimal,
            sigma3_over_sigma1,
            sigma3_over_sigma1_decimal,
            pattern_agreement: sm.pattern_agreement,
        }
    }
}

/// The problem's shape in reports: n points in d dimensions, width m.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Number of points.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Width.
    pub m: usize,
}

/// Measurements of one state W = W0 + B X (with log(1+t) = u for the flow).
#[derive(Clone, Debug)]
pub struct StateMetrics<T> {
    /// Natural log of the mean loss L = (1/n) Σ ℓ(q_i), as log-sum-exp of log ℓ(q_i) minus log n.
    pub log_loss: T,
    /// log10 of the mean loss L.
    pub log10_loss: T,
    /// ‖W‖_F.
    pub frobenius_norm: T,
    /// min_i q_i.
    pub min_margin: T,
    /// min_i q_i / ‖W‖_F.
    pub normalized_margin: T,
    /// All singular values of W, largest first (at most min(m, r)).
    pub singular_values: Vec<T>,
    /// ‖W‖_F² / ‖W‖_2².
    pub stable_rank: T,
    /// σ3/σ1 (0 when fewer than three exist).
    pub sigma3_over_sigma1: T,
    /// Fraction of (j, i) with sign P_ji = sign(a_j) y_i.
    pub pattern_agreement: f64,
    /// Loss weights −ℓ'(q_i)/(nL), summing to 1.
    pub loss_weights: Vec<T>,
    /// Margins q_i.
    pub margins: Vec<T>,
    /// The small representation W̃ (same singular values and inner products as W).
    pub w_small: Mat<T>,
}

/// Measure the state with coefficients `b` (m×n), margins under the network's activation.
pub fn measure<T: Real>(net: &Network<T>, b: &[T]) -> Result<StateMetrics<T>> {
    let mut pre = vec![T::zero(net.prec); net.m * net.n];
    net.preactivations_inplace(b, &mut pre);
    let margins = net.margins(&pre);
    measure_with(net, b, &pre, margins)
}

/// Measure the state with coefficients `b` (m×n) from its pre-activations P = P0 + B K (m×n) and
/// its margins q_i = y_i Σ_j a_j φ(P_ji), both computed by the caller under its activation φ.
pub fn measure_with<T: Real>(net: &Network<T>, b: &[T], pre: &[T], margins: Vec<T>) -> Result<StateMetrics<T>> {
    let p = net.prec;
    let log_l: Vec<T> = margins.iter().map(|q| net.loss.log_value(q)).collect();
    let lse = log_sum_exp(&log_l);
    let ln_n = T::from_f64(net.n as f64, p).ln();
    let ln10 = T::from_f64(10.0, p).ln();
    let log_loss = lse.clone() - &ln_n;
    let log10_loss = log_loss.clone() / &ln10;
    let loss_weights: Vec<T> = margins.iter().map(|q| (net.loss.log_neg_derivative(q) - &lse).exp()).collect();
    // Normalize exactly to sum 1 (the logistic weights −ℓ' and ℓ differ).
    let mut total = T::zero(p);
    for w in &loss_weights {
        total += w;
    }
    let loss_weights: Vec<T> = loss_weights.into_iter().map(|w| w / &total).collect();
    let mut min_margin = margins[0].clone();
    for q in &margins[1..] {
        if *q < min_margin {
            min_margin = q.clone();
        }
    }
    let w_small = net.small_weights(b);
    let frobenius_norm = w_small.frobenius_norm();
    let singular_values = linalg::singular_values(&w_small)?;
    let s1 = singular_values.first().cloned().unwrap_or_else(|| T::zero(p));
    let stable_rank =
        if s1 > T::zero(p) { (frobenius_norm.clone() * &frobenius_norm) / &(s1.clone() * &s1) } else { T::zero(p) };
    let sigma3_over_sigma1 = match singular_values.get(2) {
        Some(s3) if s1 > T::zero(p) => s3.clone() / &s1,
        _ => T::zero(p),
    };
    let theory = net.theory_pattern();
    let agree = pre
        .iter()
        .zip(&theory)
        .filter(|(v, s)| {
            let pos = !v.is_sign_negative() && **v != T::zero(p);
            let neg = v.is_sign_negative() && **v != T::zero(p);
            (pos && **s > 0) || (neg && **s < 0)
        })
        .count();
    let normalized_margin = if frobenius_norm > T::zero(p) { min_margin.clone() / &frobenius_norm } else { T::zero(p) };
    Ok(StateMetrics {
        log_loss,
        log10_loss,
        frobenius_norm,
        min_margin,
        normalized_margin,
        singular_values,
        stable_rank,
        sigma3_over_sigma1,
        pattern_agreement: agree as f64 / (net.m * net.n) as f64,
        loss_weights,
        margins,
        w_small,
    })
}

/// Frobenius inner product ⟨A, B⟩.
pub fn frobenius_dot<T: Real>(a: &Mat<T>, b: &Mat<T>) -> T {
    linalg::dot(&a.data, &b.data)
}

/// Cosine ⟨A, B⟩ / (‖A‖ ‖B‖) (0 if either vanishes).
pub fn cosine<T: Real>(a: &Mat<T>, b: &Mat<T>) -> T {
    let p = a.precision();
    let na = a.frobenius_norm();
    let nb = b.frobenius_norm();
    if na == T::zero(p) || nb == T::zero(p) {
        return T::zero(p);
    }
    frobenius_dot(a, b) / &(na * &nb)
}

/// log10 t from u = log(1 + t): log t = u + log(1 − e^{−u}) for u > 1, log(e^u − 1) otherwise.
pub fn log10_time<T: Real>(u: &T) -> T {
    let p = u.precision();
    let ln10 = T::from_f64(10.0, p).ln();
    let log_t = if *u > T::one(p) { u.clone() + &(-(-u.clone()).exp()).ln_1p() } else { u.exp_m1().ln() };
    log_t / &ln10
}

/// Number of singular values to report, and the trimmed list.
pub fn top_singular_values<T: Real>(sv: &[T]) -> Vec<Num> {
    sv.iter().take(REPORTED_SINGULAR_VALUES).map(Num::of).collect()
}
