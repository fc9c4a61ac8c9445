//! Losses ℓ(q) of the margin q = y f(x), evaluated in the log domain so that neither ℓ nor e^{−q}
//! ever under- or overflows: the flow only needs log ℓ(q), log(−ℓ'(q)) and log-sum-exp.

use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// ℓ(q) = log(1 + e^{−q}).
    #[default]
    Logistic,
    /// ℓ(q) = e^{−q}.
    Exponential,
}

/// softplus(x) = log(1 + e^x), stable for all x.
pub fn softplus<T: Real>(x: &T) -> T {
    let p = x.precision();
    let neg_abs = -x.abs();
    let tail = neg_abs.exp().ln_1p();
    if x.is_sign_negative() {
        tail
    } else {
        x.clone() + &tail
    }
    .max_of(&T::zero(p))
}

impl Loss {
    /// ℓ(q).
    pub fn value<T: Real>(&self, q: &T) -> T {
        match self {
            Loss::Logistic => softplus(&-q.clone()),
            Loss::Exponential => (-q.clone()).exp(),
        }
    }

    /// ℓ'(q) (negative).
    pub fn derivative<T: Real>(&self, q: &T) -> T {
        -(self.log_neg_derivative(q).exp())
    }

    /// log ℓ(q). Logistic: log log(1+e^{−q}) = −q + log(log1p(e^{−q})/e^{−q}) for q > 0, with the
    /// series −e/2 + 5e²/24 once e = e^{−q} is below round-off.
    pub fn log_value<T: Real>(&self, q: &T) -> T {
        let p = q.precision();
        match self {
            Loss::Exponential => -q.clone(),
            Loss::Logistic => {
                if q.is_sign_negative() || *q == T::zero(p) {
                    softplus(&-q.clone()).ln()
                } else {
                    let e = (-q.clone()).exp();
                    let corr = if e < T::epsilon(p) {
                        // log(1 − e/2 + e²/3 − …) = −e/2 + 5e²/24 + O(e³)
                        let half = T::ratio(1, 2, p);
                        let c2 = T::ratio(5, 24, p);
                        (c2 * &e - &half) * &e
                    } else {
                        (e.ln_1p() / &e).ln()
                    };
                    -q.clone() + &corr
                }
            }
        }
    }

    /// log(−ℓ'(q)). Logistic: −ℓ'(q) = 1/(1+e^q), so log = −softplus(q). Exponential: −q.
    pub fn log_neg_derivative<T: Real>(&self, q: &T) -> T {
        match self {
            Loss::Exponential => -q.clone(),
            Loss::Logistic => -softplus(q),
        }
    }
}

/// log Σ e^{v_i}, stable.
pub fn log_sum_exp<T: Real>(v: &[T]) -> T {
    let p = v.first().map_or(53, |x| x.precision());
    let mut mx = v[0].clone();
    for x in &v[1..] {
        if *x > mx {
            mx = x.clone();
        }
    }
    let mut s = T::zero(p);
    for x in v {
        s += &(x.clone() - &mx).exp();
    }
    mx + &s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_value_matches_direct_where_direct_is_safe() {
        for q in [-30.0f64, -1.0, 0.0, 0.5, 3.0, 20.0] {
            let direct = (1.0 + (-q).exp()).ln().ln();
            let v = Loss::Logistic.log_value(&q);
            assert!((v - direct).abs() < 1e-12 * direct.abs().max(1.0), "q={q}: {v} vs {direct}");
        }
        // Far beyond f64's exp range: log ℓ(q) = −q to round-off.
        assert_eq!(Loss::Logistic.log_value(&1e6f64), -1e6);
    }

    #[test]
    fn derivative_matches_finite_difference() {
        for loss in [Loss::Logistic, Loss::Exponential] {
            for q in [-2.0f64, 0.3, 4.0] {
                let fd = (loss.value(&(q + 1e-6)) - loss.value(&(q - 1e-6))) / 2e-6;
                assert!((fd - loss.derivative(&q)).abs() < 1e-8, "{loss:?} q={q}");
            }
        }
    }
}
