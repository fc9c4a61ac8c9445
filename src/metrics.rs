//! Measurements of a network state, all from small matrices (sizes independent of d).

use crate::error::Result;
use crate::model::loss::log_sum_exp;
use crate::model::network::Network;
use marginflow_solvers::{linalg, Mat, Real};

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

/// Insert `name` (and `name_decimal` when present) into a JSON object.
pub fn put(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, v: &Num) {
    obj.insert(name.to_string(), serde_json::json!(v.value));
    if let Some(d) = &v.decimal {
        obj.insert(format!("{name}_decimal"), serde_json::json!(d));
    }
}

/// Insert a list `name` (and `name_decimal`).
pub fn put_list(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, v: &[Num]) {
    obj.insert(name.to_string(), serde_json::json!(v.iter().map(|x| x.value).collect::<Vec<_>>()));
    if v.iter().any(|x| x.decimal.is_some()) {
        obj.insert(
            format!("{name}_decimal"),
            serde_json::json!(v.iter().map(|x| x.decimal.clone().unwrap_or_default()).collect::<Vec<_>>()),
        );
    }
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
