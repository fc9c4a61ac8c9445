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
    if x.is_sign_negative() { tail } else { x.clone() + &tail }.max_of(&T::zero(p))
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

    /// (log ℓ(q), log(−ℓ'(q))) together, sharing e^{−|q|} and log1p(e^{−|q|}) between the two:
    /// the same operations in the same order as [`Loss::log_value`] and
    /// [`Loss::log_neg_derivative`], so the results are bit-identical to calling both, with two
    /// transcendental evaluations fewer (they dominate a right-hand side at high precision).
    pub fn log_value_and_log_neg_derivative<T: Real>(&self, q: &T) -> (T, T) {
        let p = q.precision();
        match self {
            Loss::Exponential => (-q.clone(), -q.clone()),
            Loss::Logistic => {
                let zero = T::zero(p);
                // softplus(±q) share e = exp(−|q|) and tail = log1p(e).
                let e = (-q.abs()).exp();
                let tail = e.ln_1p();
                let softplus_q = if q.is_sign_negative() { tail.clone() } else { q.clone() + &tail }.max_of(&zero);
                let log_value = if q.is_sign_negative() || *q == zero {
                    let mq = -q.clone();
                    let softplus_mq = if mq.is_sign_negative() { tail } else { mq + &tail }.max_of(&zero);
                    softplus_mq.ln()
                } else {
                    let corr = if e < T::epsilon(p) {
                        let half = T::ratio(1, 2, p);
                        let c2 = T::ratio(5, 24, p);
                        (c2 * &e - &half) * &e
                    } else {
                        (tail / &e).ln()
                    };
                    -q.clone() + &corr
                };
                (log_value, -softplus_q)
            }
        }
    }

    /// (ℓ(q), −ℓ'(q)) evaluated directly from one e^{−|q|}, not in the log domain. Only for
    /// scalars whose exponent range holds e^{−|q|} (MPFR: about 2^±(2^30), so |q| ≤
    /// [`DIRECT_RANGE`]); `f64` always uses the log-domain forms. Logistic, q ≥ 0 with e = e^{−q}:
    /// ℓ = log1p(e), −ℓ' = e/(1+e); q < 0 with e = e^{q}: ℓ = −q + log1p(e), −ℓ' = 1/(1+e).
    /// Exponential: ℓ = −ℓ' = e^{−q}. Allocating form of
    /// [`Loss::value_and_neg_derivative_direct_inplace`] (the same values).
    pub fn value_and_neg_derivative_direct<T: Real>(&self, q: &T) -> (T, T) {
        let p = q.precision();
        let (mut l, mut d) = (T::zero(p), T::zero(p));
        self.value_and_neg_derivative_direct_inplace(q, &mut l, &mut d, &mut DirectScratch::new(p));
        (l, d)
    }

    /// [`Loss::value_and_neg_derivative_direct`] into `value` = ℓ(q) and `neg_derivative` =
    /// −ℓ'(q), with every intermediate in `scratch`: no allocation at any precision. One
    /// exponential per call; log1p(e) by [`ln_1p_series_inplace`] for e ≤ 1/256, else the
    /// backend's log1p; one division.
    pub fn value_and_neg_derivative_direct_inplace<T: Real>(
        &self,
        q: &T,
        value: &mut T,
        neg_derivative: &mut T,
        scratch: &mut DirectScratch<T>,
    ) {
        let s = scratch;
        match self {
            Loss::Exponential => {
                value.assign(q);
                value.neg_mut();
                value.exp_mut();
                neg_derivative.assign(value);
            }
            Loss::Logistic => {
                // e = exp(−|q|)
                s.e.assign(q);
                s.e.abs_mut();
                s.e.neg_mut();
                s.e.exp_mut();
                s.one_plus.assign(&s.one);
                s.one_plus += &s.e;
                if s.e <= s.small {
                    ln_1p_series_inplace(&s.e, value, &mut s.series);
                } else {
                    value.assign(&s.e);
                    value.ln_1p_mut();
                }
                if q.is_sign_negative() {
                    *value -= q;
                    neg_derivative.assign_div(&s.one, &s.one_plus);
                } else {
                    neg_derivative.assign_div(&s.e, &s.one_plus);
                }
            }
        }
    }

    /// −ℓ'(q) from one exponential: logistic e/(1+e) with e = e^{−q} for q ≥ 0 and 1/(1+e) with
    /// e = e^{q} for q < 0; exponential e^{−q}. Beyond [`DIRECT_RANGE`] at MPFR precision, where
    /// e^{−|q|} would leave the exponent range, it is e^{log(−ℓ'(q))} instead; `f64` is always
    /// direct (e^{−|q|} underflows to 0 exactly where e^{log(−ℓ'(q))} does).
    pub fn neg_derivative<T: Real>(&self, q: &T) -> T {
        let qf = q.to_f64();
        if T::direct_exp_range() > 0.0 && (qf.is_nan() || qf.abs() > T::direct_exp_range().min(DIRECT_RANGE)) {
            return self.log_neg_derivative(q).exp();
        }
        match self {
            Loss::Exponential => (-q.clone()).exp(),
            Loss::Logistic => {
                let e = (-q.abs()).exp();
                let one_plus = T::one(q.precision()) + &e;
                if q.is_sign_negative() {
                    T::one(q.precision()) / &one_plus
                } else {
                    e / &one_plus
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

/// log(1 + x) for 0 ≤ x ≤ 1/256 by the series 2 atanh(z) = 2 Σ_k z^(2k+1)/(2k+1), z = x/(2+x)
/// (z² ≤ 2^−18: at most about prec/18 terms, summed until a term falls below ε·sum). MPFR's
/// log1p goes through an AGM logarithm, several times dearer at 128–256 bits; the result is
/// accurate to a few ulps (all terms positive, truncation below ε·sum). Allocating form of
/// [`ln_1p_series_inplace`] (the same value).
pub fn ln_1p_series<T: Real>(x: &T) -> T {
    let p = x.precision();
    let mut out = T::zero(p);
    ln_1p_series_inplace(x, &mut out, &mut SeriesScratch::new(p));
    out
}

/// [`ln_1p_series`] into `out` (at `out`'s precision, which the scratch must share), with its
/// intermediates in `scratch`: no allocation. Each term z^(2k+1)/(2k+1) is one multiplication
/// and one division by the integer 2k+1, rounded once as in the allocating form.
pub fn ln_1p_series_inplace<T: Real>(x: &T, out: &mut T, scratch: &mut SeriesScratch<T>) {
    let s = scratch;
    // z = x/(2 + x), z² (s.term holds 2 + x first).
    s.term.assign(&s.two);
    s.term += x;
    s.z.assign_div(x, &s.term);
    s.z2.assign_mul(&s.z, &s.z);
    s.pow.assign(&s.z);
    out.assign(&s.z);
    let mut k = 1u32;
    while k < 10_000 {
        s.pow *= &s.z2;
        s.term.assign(&s.pow);
        s.term.div_u32_mut(2 * k + 1);
        *out += &s.term;
        s.bound.assign_mul(&s.eps, out);
        if s.term <= s.bound {
            break;
        }
        k += 1;
    }
    *out *= &s.two;
}

/// Preallocated intermediates of [`ln_1p_series_inplace`] at one precision.
#[derive(Clone, Debug)]
pub struct SeriesScratch<T> {
    two: T,
    eps: T,
    z: T,
    z2: T,
    pow: T,
    term: T,
    bound: T,
}

impl<T: Real> SeriesScratch<T> {
    /// Scratch at `prec` bits.
    pub fn new(prec: u32) -> Self {
        let z = T::zero(prec);
        SeriesScratch {
            two: T::from_f64(2.0, prec),
            eps: T::epsilon(prec),
            z2: z.clone(),
            pow: z.clone(),
            term: z.clone(),
            bound: z.clone(),
            z,
        }
    }
}

/// Preallocated intermediates of [`Loss::value_and_neg_derivative_direct_inplace`] at one
/// precision.
#[derive(Clone, Debug)]
pub struct DirectScratch<T> {
    one: T,
    /// 1/256, below which log1p(e) is summed as a series.
    small: T,
    e: T,
    one_plus: T,
    series: SeriesScratch<T>,
}

impl<T: Real> DirectScratch<T> {
    /// Scratch at `prec` bits.
    pub fn new(prec: u32) -> Self {
        DirectScratch {
            one: T::one(prec),
            small: T::ratio(1, 256, prec),
            e: T::zero(prec),
            one_plus: T::zero(prec),
            series: SeriesScratch::new(prec),
        }
    }
}

/// Largest |q| for which [`Loss::value_and_neg_derivative_direct`] is used above 53 bits:
/// e^{−1e8} ≈ 2^−1.44e8 is far inside MPFR's default exponent range (2^−(2^30−1)).
pub const DIRECT_RANGE: f64 = 1e8;

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
            // ln(1 + e^{−q}) via ln_1p: forming 1 + e^{−q} first loses e^{−q}'s digits (q = 20).
            let direct = (-q).exp().ln_1p().ln();
            let v = Loss::Logistic.log_value(&q);
            assert!((v - direct).abs() < 1e-12 * direct.abs().max(1.0), "q={q}: {v} vs {direct}");
        }
        // Far beyond f64's exp range: log ℓ(q) = −q to round-off.
        assert_eq!(Loss::Logistic.log_value(&1e6f64), -1e6);
    }

    /// The fused evaluation is bit-identical to the two separate ones.
    #[test]
    fn fused_log_terms_bit_identical() {
        for loss in [Loss::Logistic, Loss::Exponential] {
            for q in [-800.0f64, -30.0, -1.0, -0.0, 0.0, 1e-300, 0.5, 3.0, 20.0, 36.5, 40.0, 800.0, 1e6] {
                let (a, b) = loss.log_value_and_log_neg_derivative(&q);
                assert_eq!(a.to_bits(), loss.log_value(&q).to_bits(), "{loss:?} log_value q={q}");
                assert_eq!(b.to_bits(), loss.log_neg_derivative(&q).to_bits(), "{loss:?} log_neg_derivative q={q}");
            }
        }
    }

    /// −ℓ' from one exponential against the log-domain e^{log(−ℓ')} and the textbook forms
    /// 1/(1+e^q) and e^{−q}, including both tails of f64's exponent range.
    #[test]
    fn neg_derivative_matches_log_domain_and_closed_forms() {
        for q in [-800.0f64, -40.0, -1.0, -0.0, 0.0, 1e-300, 0.5, 3.0, 36.5, 700.0, 745.0, 800.0] {
            let direct = Loss::Logistic.neg_derivative(&q);
            let logd = Loss::Logistic.log_neg_derivative(&q).exp();
            assert!((direct - logd).abs() <= 4.0 * f64::EPSILON * logd, "q={q}: {direct} vs {logd}");
            if q.abs() < 700.0 {
                let textbook = 1.0 / (1.0 + q.exp());
                assert!((direct - textbook).abs() <= 4.0 * f64::EPSILON * textbook, "q={q}");
            }
            assert_eq!(Loss::Exponential.neg_derivative(&q), (-q).exp(), "q={q}");
        }
        assert_eq!(Loss::Logistic.neg_derivative(&800.0f64), 0.0);
        assert_eq!(Loss::Logistic.neg_derivative(&-800.0f64), 1.0);
    }

    /// Above 53 bits the direct form is used up to [`DIRECT_RANGE`] and the log-domain one beyond
    /// it, where e^{−q} is still representable as e^{log(−ℓ')} (tiny but nonzero).
    #[cfg(feature = "mpfr")]
    #[test]
    fn neg_derivative_at_256_bits_on_both_sides_of_the_direct_range() {
        use rug::Float;
        for q in [-3.0f64, 0.5, 40.0, 1e7] {
            let qf = Float::with_val(256, q);
            let direct = Loss::Logistic.neg_derivative(&qf);
            let logd = Loss::Logistic.log_neg_derivative(&qf).exp();
            let rel = Float::with_val(256, &direct - &logd).abs() / &logd;
            assert!(rel < 1e-70, "q={q}: relative difference {rel}");
        }
        // e^{−5e8} ≈ 2^{−7.2e8}: inside MPFR's exponent range (2^−(2^30−1)), beyond DIRECT_RANGE.
        let far = Float::with_val(256, 5e8);
        let d = Loss::Logistic.neg_derivative(&far);
        assert!(d > 0 && (d.clone().ln().to_f64() + 5e8).abs() < 1e-3, "e^(-5e8) by the log domain: {d}");
    }

    #[test]
    fn ln_1p_series_matches_libm() {
        for x in [0.0f64, 1e-300, 1e-20, 1e-8, 1e-4, 1.0 / 256.0] {
            let (a, b) = (ln_1p_series(&x), x.ln_1p());
            assert!((a - b).abs() <= 2.0 * f64::EPSILON * b, "x={x}: {a} vs {b}");
        }
    }

    /// The direct forms agree with the log-domain ones (f64, where both are representable).
    #[test]
    fn direct_forms_match_log_domain() {
        for loss in [Loss::Logistic, Loss::Exponential] {
            for q in [-30.0f64, -1.0, 0.0, 0.5, 3.0, 20.0, 300.0] {
                let (l, d) = loss.value_and_neg_derivative_direct(&q);
                let (ll, ld) = loss.log_value_and_log_neg_derivative(&q);
                assert!((l.ln() - ll).abs() < 1e-13 * ll.abs().max(1.0), "{loss:?} q={q}: {} vs {ll}", l.ln());
                assert!((d.ln() - ld).abs() < 1e-13 * ld.abs().max(1.0), "{loss:?} q={q}: {} vs {ld}", d.ln());
            }
        }
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
