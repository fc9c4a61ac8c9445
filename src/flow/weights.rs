//! The loss weights w_i = −ℓ'(q_i)/(nL) and du/ds = 1/((1+t)L) from the margins q, shared by
//! both engines: neither L, e^{−q} nor t is formed where it could under- or overflow.

use crate::model::loss::{log_sum_exp, DirectScratch, Loss, DIRECT_RANGE};
use marginflow_solvers::Real;

/// Margins and the signed loss weights w_i y_i at one state, with the scratch that computes them
/// without allocation.
#[derive(Clone)]
pub struct LossWeights<T> {
    /// Margins q_i (input of [`LossWeights::compute`]).
    pub q: Vec<T>,
    /// log ℓ(q_i) (log-domain path).
    pub log_l: Vec<T>,
    /// log(−ℓ'(q_i)), filled with `log_l` (one shared exp/log1p per point).
    pub log_nd: Vec<T>,
    /// w_i y_i, the signed loss weights.
    pub wy: Vec<T>,
    /// log(nL) at the last evaluation (log-domain path only, see `direct`).
    pub lse: T,
    /// Whether the last [`LossWeights::compute`] took the direct path: then `sum_l` = Σ_k ℓ(q_k) = nL.
    pub direct: bool,
    /// Σ_k ℓ(q_k) at the last evaluation (direct path).
    pub sum_l: T,
    /// n as a scalar.
    pub n_t: T,
    /// ln n.
    pub ln_n: T,
    dscratch: DirectScratch<T>,
    /// Scratch: one loss value ℓ(q_i), then 1/Σ_k ℓ(q_k).
    tmp2: T,
    one: T,
}

impl<T: Real> LossWeights<T> {
    /// Buffers for n points at `prec` bits.
    pub fn new(n: usize, prec: u32) -> Self {
        LossWeights {
            q: vec![T::zero(prec); n],
            log_l: vec![T::zero(prec); n],
            log_nd: vec![T::zero(prec); n],
            wy: vec![T::zero(prec); n],
            lse: T::zero(prec),
            direct: false,
            sum_l: T::zero(prec),
            n_t: T::from_f64(n as f64, prec),
            ln_n: T::from_f64(n as f64, prec).ln(),
            dscratch: DirectScratch::new(prec),
            tmp2: T::zero(prec),
            one: T::one(prec),
        }
    }

    /// w_i y_i at the margins in `q`: the direct path where it is exact and in range, else
    /// w_i = exp(log(−ℓ'(q_i)) − logsumexp_k log ℓ(q_k)).
    pub fn compute(&mut self, loss: &Loss, y: &[T]) {
        self.direct = self.direct_weights(loss, y);
        if !self.direct {
            for i in 0..self.q.len() {
                let (log_l, log_nd) = loss.log_value_and_log_neg_derivative(&self.q[i]);
                self.log_l[i] = log_l;
                self.log_nd[i] = log_nd;
            }
            self.lse = log_sum_exp(&self.log_l);
            for (i, yi) in y.iter().enumerate() {
                let mut wi = (self.log_nd[i].clone() - &self.lse).exp();
                wi *= yi;
                self.wy[i] = wi;
            }
        }
    }

    /// Above 53 bits, w_i y_i and nL from the direct loss terms: w_i = −ℓ'(q_i)/Σ_k ℓ(q_k),
    /// nL = Σ_k ℓ(q_k) (kept in `sum_l`; its logarithm is never needed by the right-hand side,
    /// see [`LossWeights::du_ds_into`]): the same mathematics as the log-domain path with n
    /// instead of 5n + 1 transcendental evaluations (they dominate a right-hand side at high
    /// precision), and no allocation. MPFR's exponent range holds e^{−|q|} for
    /// |q| ≤ [`DIRECT_RANGE`]; beyond it, and always for f64, returns false and the log-domain
    /// path runs; double-double and quad-double (f64's exponent range) take it up to
    /// |q| ≤ 500 ([`Real::direct_exp_range`]).
    fn direct_weights(&mut self, loss: &Loss, y: &[T]) -> bool {
        let range = T::direct_exp_range().min(DIRECT_RANGE);
        if range <= 0.0 || self.q.iter().any(|q| q.to_f64().is_nan() || q.to_f64().abs() > range) {
            return false;
        }
        self.sum_l.assign_f64(0.0);
        for i in 0..self.q.len() {
            loss.value_and_neg_derivative_direct_inplace(
                &self.q[i],
                &mut self.tmp2,
                &mut self.wy[i],
                &mut self.dscratch,
            );
            self.sum_l += &self.tmp2;
        }
        // w_i y_i = (−ℓ'(q_i))·(1/Σℓ)·y_i: one division.
        self.tmp2.assign(&self.one);
        self.tmp2 /= &self.sum_l;
        for (wy, yi) in self.wy.iter_mut().zip(y) {
            *wy *= &self.tmp2;
            *wy *= yi;
        }
        true
    }

    /// du/ds = exp(−u − log L) = n e^{−u}/(nL) at the computed state, into `out` without
    /// allocation: on the direct path (and |u| ≤ [`DIRECT_RANGE`], so that e^{−u} is in range)
    /// one exponential, a multiplication and a division; otherwise from log(nL) (the log-domain
    /// path's `lse`, or ln of the direct path's Σℓ).
    pub fn du_ds_into(&self, u: &T, out: &mut T) {
        if self.direct && u.to_f64().abs() <= T::direct_exp_range().min(DIRECT_RANGE) {
            out.assign(u);
            out.neg_mut();
            out.exp_mut();
            *out *= &self.n_t;
            *out /= &self.sum_l;
            return;
        }
        if self.direct {
            out.assign(&self.sum_l);
            out.ln_mut();
        } else {
            out.assign(&self.lse);
        }
        // log L = log(nL) − log n; u + log L; exp(−(u + log L)).
        *out -= &self.ln_n;
        *out += u;
        out.neg_mut();
        out.exp_mut();
    }

    /// log(nL) at the computed state.
    pub fn log_n_loss(&self) -> T {
        if self.direct {
            self.sum_l.clone().ln()
        } else {
            self.lse.clone()
        }
    }
}

/// w_i c_i with c_i = −ℓ''(q_i)/(−ℓ'(q_i)) the loss's curvature factor: σ(q_i) = 1/(1 + e^{−q_i})
/// for the logistic loss (from e^{−|q|}), 1 for the exponential; J_w = ∂w/∂q = −diag(w c) + w wᵀ.
pub fn weighted_curvature<T: Real>(loss: &Loss, q: &[T], w: &[T]) -> Vec<T> {
    q.iter()
        .zip(w)
        .map(|(qi, wi)| match loss {
            Loss::Exponential => wi.clone(),
            Loss::Logistic => {
                let p = qi.precision();
                let e = (-qi.abs()).exp();
                let den = T::one(p) + &e;
                let sig = if qi.is_sign_negative() { e / &den } else { T::one(p) / &den };
                sig * wi
            }
        })
        .collect()
}
