//! The flow's right-hand side in normalized time on the span-reduced state y = (B, u), its
//! switching functions (one per pre-activation) and its sliding modes.

use crate::model::loss::{log_sum_exp, DirectScratch, DIRECT_RANGE};
use crate::model::network::Network;
use marginflow_solvers::rk::OdeSystem;
use marginflow_solvers::{linalg, Mat, Real};

/// Mode of a pre-activation P_ji in [`FlowSystem::modes`].
pub mod mode {
    /// φ' = 1 (P_ji > 0 side).
    pub const POSITIVE: i8 = 1;
    /// φ' = γ (P_ji < 0 side).
    pub const NEGATIVE: i8 = -1;
    /// Untracked (events off): φ' from the live sign of P_ji.
    pub const LIVE: i8 = 0;
    /// Filippov sliding mode: P_ji is held at 0 and φ' ∈ [γ, 1] is the equivalent control.
    pub const SLIDING: i8 = 2;
}

/// The flow ODE in normalized time on the span-reduced state y = (B, u).
///
/// **Sliding modes.** When P_ji reaches 0 and the fields on both sides push it back
/// (dP_ji/ds < 0 with φ' = 1 and > 0 with φ' = γ), the Filippov solution keeps P_ji = 0 with the
/// equivalent control σ_ji ∈ [γ, 1] that makes dP_ji/ds = 0. Since φ(0) = 0 whatever σ, the loss
/// weights do not depend on σ, and within a row j the sliding set S solves the linear system
/// Σ_{l∈S} σ_jl w_l y_l K_li = −Σ_{l∉S} φ'(P_jl) w_l y_l K_li (i ∈ S). The switching function of a
/// sliding P_ji is min(σ_ji − γ, 1 − σ_ji): the mode ends where σ leaves [γ, 1].
#[derive(Clone)]
pub struct FlowSystem<'a, T> {
    pub(super) net: &'a Network<T>,
    /// Mode of each P_ji (see [`mode`]).
    pub modes: Vec<i8>,
    pub(super) p: Vec<T>,
    pub(super) slope: Vec<T>,
    pub(super) q: Vec<T>,
    pub(super) log_l: Vec<T>,
    /// log(−ℓ'(q_i)), filled with `log_l` (one shared exp/log1p per point).
    pub(super) log_nd: Vec<T>,
    /// w_i y_i, the signed loss weights.
    pub(super) wy: Vec<T>,
    /// Unclamped equivalent control of sliding entries.
    pub(super) sigma: Vec<T>,
    /// Scratch for the slope·pre-activation product (no allocation per entry).
    pub(super) tmp: T,
    /// log(nL) at the last evaluation (log-domain path only, see `direct`).
    pub(super) lse: T,
    /// Whether the last [`FlowSystem::prepare`] took the direct path ([`FlowSystem::direct_weights`]):
    /// then `sum_l` = Σ_k ℓ(q_k) = nL holds the loss and `lse` is not computed.
    pub(super) direct: bool,
    /// Σ_k ℓ(q_k) at the last evaluation (direct path).
    pub(super) sum_l: T,
    /// n as a scalar.
    pub(super) n_t: T,
    /// Scratch of the direct loss terms (no allocation per evaluation).
    pub(super) dscratch: DirectScratch<T>,
    /// Scratch: one loss value ℓ(q_i), then 1/Σ_k ℓ(q_k).
    pub(super) tmp2: T,
    pub(super) ln_n: T,
    pub(super) one: T,
    pub(super) mid: T,
    /// Jacobian pieces at the last state asked for by [`OdeSystem::solve_shifted`].
    pub(super) jac: Option<Box<JacobianCache<T>>>,
}

/// The pieces of J = ∂f/∂y at one state and one set of modes (see [`FlowSystem::solve_shifted`]).
#[derive(Clone)]
pub(super) struct JacobianCache<T> {
    /// The state (B, u) and the modes they belong to.
    pub(super) y: Vec<T>,
    pub(super) modes: Vec<i8>,
    /// Frozen slopes φ'(P_ji) (sliding entries: the clamped equivalent control).
    pub(super) slope: Vec<T>,
    /// Loss weights w_i = −ℓ'(q_i)/Σ_k ℓ(q_k).
    pub(super) w: Vec<T>,
    /// w_i·c_i with c_i = 1 − g_i = σ(q_i) (logistic) or 1 (exponential): J_w = −diag(dw) + w wᵀ.
    pub(super) dw: Vec<T>,
    /// du/ds.
    pub(super) fu: T,
    /// Q A (n×n): (QA)_ri = y_r y_i K_ir Σ_l a_l² s_lr s_li.
    pub(super) qa: Mat<T>,
}

impl<'a, T: Real> FlowSystem<'a, T> {
    /// The system with modes from the signs of the pre-activations at `b` (zero counts as +).
    pub fn new(net: &'a Network<T>, b: &[T]) -> Self {
        let prec = net.prec;
        let mn = net.m * net.n;
        let mut p = vec![T::zero(prec); mn];
        net.preactivations_inplace(b, &mut p);
        let modes = p
            .iter()
            .map(|v| if v.is_sign_negative() && *v != T::zero(prec) { mode::NEGATIVE } else { mode::POSITIVE })
            .collect();
        FlowSystem {
            net,
            modes,
            p,
            slope: vec![T::zero(prec); mn],
            q: vec![T::zero(prec); net.n],
            log_l: vec![T::zero(prec); net.n],
            log_nd: vec![T::zero(prec); net.n],
            wy: vec![T::zero(prec); net.n],
            sigma: vec![T::zero(prec); mn],
            tmp: T::zero(prec),
            lse: T::zero(prec),
            direct: false,
            sum_l: T::zero(prec),
            n_t: T::from_f64(net.n as f64, prec),
            dscratch: DirectScratch::new(prec),
            tmp2: T::zero(prec),
            ln_n: T::from_f64(net.n as f64, prec).ln(),
            one: T::one(prec),
            mid: (T::one(prec) + &net.gamma) * &T::ratio(1, 2, prec),
            jac: None,
        }
    }

    /// The network.
    pub fn network(&self) -> &Network<T> {
        self.net
    }

    /// Number of pre-activations currently in a sliding mode.
    pub fn sliding_count(&self) -> usize {
        self.modes.iter().filter(|&&m| m == mode::SLIDING).count()
    }

    /// Pre-activations, slopes, margins, log-loss terms, log(nL) and the signed weights w_i y_i
    /// at B; then the equivalent controls of sliding entries.
    pub(super) fn prepare(&mut self, b: &[T]) {
        let net = self.net;
        let (m, n) = (net.m, net.n);
        net.preactivations_inplace(b, &mut self.p);
        let mut any_sliding = false;
        let all_tracked = self.modes.iter().all(|&md| md == mode::POSITIVE || md == mode::NEGATIVE);
        if all_tracked {
            // Common case, without a data-dependent branch per entry (modes are mixed at random
            // early on, and mispredictions then cost as much as the B K product).
            for (sv, &md) in self.slope.iter_mut().zip(&self.modes) {
                sv.assign(if md == mode::POSITIVE { &self.one } else { &net.gamma });
            }
        } else {
            for idx in 0..m * n {
                let s = match self.modes[idx] {
                    mode::POSITIVE => &self.one,
                    mode::NEGATIVE => &net.gamma,
                    mode::SLIDING => {
                        any_sliding = true;
                        &self.mid
                    }
                    _ => {
                        if self.p[idx].is_sign_negative() {
                            &net.gamma
                        } else {
                            &self.one
                        }
                    }
                };
                self.slope[idx].assign(s);
            }
        }
        // q_i = y_i Σ_j a_j (slope_ji P_ji), summed over j in order; rows of P and slope are
        // walked contiguously (j outer), which gives the same sums as a column walk.
        for q in self.q.iter_mut() {
            q.assign_f64(0.0);
        }
        let tmp = &mut self.tmp;
        for j in 0..m {
            let aj = &net.a[j];
            let rows = self.p[j * n..(j + 1) * n].iter().zip(&self.slope[j * n..(j + 1) * n]);
            for (q, (pv, sv)) in self.q.iter_mut().zip(rows) {
                // t = slope·P (IEEE multiplication commutes: same value as slope * p).
                tmp.assign_mul(pv, sv);
                q.add_mul_mut(aj, tmp);
            }
        }
        for (q, yi) in self.q.iter_mut().zip(&net.y) {
            *q *= yi;
        }
        self.direct = self.direct_weights();
        if !self.direct {
            for i in 0..n {
                let (log_l, log_nd) = net.loss.log_value_and_log_neg_derivative(&self.q[i]);
                self.log_l[i] = log_l;
                self.log_nd[i] = log_nd;
            }
            self.lse = log_sum_exp(&self.log_l);
            for i in 0..n {
                // w_i y_i with w_i = exp(log(−ℓ'(q_i)) − log(nL)).
                let mut wi = (self.log_nd[i].clone() - &self.lse).exp();
                wi *= &net.y[i];
                self.wy[i] = wi;
            }
        }
        if any_sliding {
            self.equivalent_controls();
        }
    }

    /// Above 53 bits, w_i y_i and nL from the direct loss terms: w_i = −ℓ'(q_i)/Σ_k ℓ(q_k),
    /// nL = Σ_k ℓ(q_k) (kept in `sum_l`; its logarithm is never needed by the right-hand side,
    /// see [`FlowSystem::du_ds_into`]): the same mathematics as the log-domain path with n
    /// instead of 5n + 1 transcendental evaluations (they dominate a right-hand side at high
    /// precision), and no allocation. MPFR's exponent range holds e^{−|q|} for
    /// |q| ≤ [`DIRECT_RANGE`]; beyond it, and always for f64, returns false and the log-domain
    /// path runs.
    pub(super) fn direct_weights(&mut self) -> bool {
        let net = self.net;
        if net.prec <= 53 || self.q.iter().any(|q| q.to_f64().is_nan() || q.to_f64().abs() > DIRECT_RANGE) {
            return false;
        }
        self.sum_l.assign_f64(0.0);
        for i in 0..net.n {
            net.loss.value_and_neg_derivative_direct_inplace(
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
        for (wy, yi) in self.wy.iter_mut().zip(&net.y) {
            *wy *= &self.tmp2;
            *wy *= yi;
        }
        true
    }

    /// du/ds = exp(−u − log L) = n e^{−u}/(nL) at the prepared state, into `out` without
    /// allocation: on the direct path (and |u| ≤ [`DIRECT_RANGE`], so that e^{−u} is in range)
    /// one exponential, a multiplication and a division; otherwise from log(nL) (the log-domain
    /// path's `lse`, or ln of the direct path's Σℓ).
    pub(super) fn du_ds_into(&self, u: &T, out: &mut T) {
        if self.direct && u.to_f64().abs() <= DIRECT_RANGE {
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

    /// Solve each row's sliding set for σ (see the type's doc) and clamp the slopes to [γ, 1].
    pub(super) fn equivalent_controls(&mut self) {
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        for j in 0..m {
            let set: Vec<usize> = (0..n).filter(|&i| self.modes[j * n + i] == mode::SLIDING).collect();
            if set.is_empty() {
                continue;
            }
            let mut a = Mat::zeros(set.len(), set.len(), p);
            let mut rhs = vec![T::zero(p); set.len()];
            for (r, &i) in set.iter().enumerate() {
                for l in 0..n {
                    let idx = j * n + l;
                    let coef = self.wy[l].clone() * net.k_mat.at(l, i);
                    match set.iter().position(|&x| x == l) {
                        Some(c) => *a.at_mut(r, c) = coef,
                        None => rhs[r] -= &(coef * &self.slope[idx]),
                    }
                }
            }
            let sol = linalg::lu_solve(&a, &rhs).unwrap_or_else(|_| vec![self.mid.clone(); set.len()]);
            for (c, &i) in set.iter().enumerate() {
                let idx = j * n + i;
                let clamped = sol[c].max_of(&net.gamma).min_of(&self.one);
                self.sigma[idx] = sol[c].clone();
                self.slope[idx] = clamped;
            }
        }
    }

    /// dP_ji/ds at the prepared state with φ'(P_ji) replaced by `sigma` (others as prepared):
    /// a_j (σ w_i y_i K_ii + Σ_{l≠i} φ'(P_jl) w_l y_l K_li).
    pub(super) fn preactivation_rate(&self, k: usize, sigma: &T) -> T {
        let net = self.net;
        let n = net.n;
        let (j, i) = (k / n, k % n);
        let mut r = T::zero(net.prec);
        for l in 0..n {
            let s = if l == i { sigma } else { &self.slope[j * n + l] };
            let t = self.wy[l].clone() * s;
            r.add_mul_mut(&t, net.k_mat.at(l, i));
        }
        r * &net.a[j]
    }

    /// Distance of a sliding entry's equivalent control from the ends of [γ, 1].
    pub(super) fn sliding_margin(&self, k: usize) -> T {
        let lo = self.sigma[k].clone() - &self.net.gamma;
        let hi = self.one.clone() - &self.sigma[k];
        lo.min_of(&hi)
    }
}

impl<T: Real> OdeSystem<T> for FlowSystem<'_, T> {
    fn dim(&self) -> usize {
        self.net.m * self.net.n + 1
    }

    fn eval_inplace(&mut self, _s: &T, y: &[T], dy: &mut [T]) {
        let net = self.net;
        let (m, n) = (net.m, net.n);
        self.prepare(&y[..m * n]);
        // dB_ji/ds = a_j φ'(P_ji) w_i y_i, row by row (contiguous).
        for j in 0..m {
            let aj = &net.a[j];
            let out = dy[j * n..(j + 1) * n].iter_mut().zip(&self.slope[j * n..(j + 1) * n]);
            for ((v, sv), wy) in out.zip(&self.wy) {
                v.assign_mul(aj, sv);
                *v *= wy;
            }
        }
        // du/ds = exp(−u − log L).
        self.du_ds_into(&y[m * n], &mut dy[m * n]);
    }

    fn num_switches(&self) -> usize {
        self.net.m * self.net.n
    }

    fn switch_value(&mut self, k: usize, _s: &T, y: &[T]) -> T {
        let net = self.net;
        let n = net.n;
        if self.modes[k] == mode::SLIDING {
            self.prepare(&y[..net.m * n]);
            return self.sliding_margin(k);
        }
        let (j, i) = (k / n, k % n);
        let mut v = net.p0.data[k].clone();
        for l in 0..n {
            v.add_mul_mut(&y[j * n + l], net.k_mat.at(l, i));
        }
        v
    }

    fn switch_values_inplace(&mut self, _s: &T, y: &[T], g: &mut [T]) {
        let mn = self.net.m * self.net.n;
        if self.modes.contains(&mode::SLIDING) {
            self.prepare(&y[..mn]);
            for k in 0..mn {
                if self.modes[k] == mode::SLIDING {
                    g[k] = self.sliding_margin(k);
                } else {
                    g[k].assign(&self.p[k]);
                }
            }
        } else {
            self.net.preactivations_inplace(&y[..mn], g);
        }
    }

    fn mode(&self, k: usize) -> i8 {
        match self.modes[k] {
            mode::SLIDING => mode::POSITIVE,
            md => md,
        }
    }

    /// A crossing P_ji = 0 enters a sliding mode when both sides push back
    /// (rate < 0 with φ' = 1, > 0 with φ' = γ), else flips; a sliding mode ends on the side its
    /// equivalent control left [γ, 1] through.
    fn flip(&mut self, k: usize, _s: &T, y: &[T]) {
        let mn = self.net.m * self.net.n;
        self.prepare(&y[..mn]);
        if self.modes[k] == mode::SLIDING {
            self.modes[k] = if self.sigma[k] >= self.mid { mode::POSITIVE } else { mode::NEGATIVE };
            return;
        }
        let zero = T::zero(self.net.prec);
        let up = self.preactivation_rate(k, &self.one.clone());
        let down = self.preactivation_rate(k, &self.net.gamma.clone());
        self.modes[k] = if up < zero && down > zero { mode::SLIDING } else { -self.modes[k] };
    }

    fn untrack(&mut self, k: usize) {
        self.modes[k] = mode::LIVE;
    }

    /// P_ji reads row j of B; a sliding entry's switching function (its equivalent control)
    /// reads the whole state.
    fn switch_support(&self, k: usize) -> std::ops::Range<usize> {
        let n = self.net.n;
        if self.modes[k] == mode::SLIDING {
            return 0..self.net.m * n + 1;
        }
        k / n * n..(k / n + 1) * n
    }

    /// A switch that keeps flipping at one point (several sliding entries of one row that admit
    /// no consistent equivalent control, or a sliding mode that exits as soon as it starts) is
    /// evaluated by its live sign from then on: the step-size control resolves it, slowly but
    /// surely, and the count is reported.
    fn release(&mut self, k: usize, _s: &T, _y: &[T]) {
        self.modes[k] = mode::LIVE;
    }

    /// (I − cJ) x = rhs by Woodbury in n×n, see [`FlowSystem::shifted_solve_inplace`].
    fn solve_shifted(&mut self, _s: &T, y: &[T], c: &T, rhs: &mut [T]) -> bool {
        self.shifted_solve_inplace(y, c, rhs)
    }
}
