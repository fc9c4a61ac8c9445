//! Gradient flow in normalized time.
//!
//! Natural time t is hopeless for the asymptotics (L ~ 1/t, ‖W‖ ~ log t, direction error
//! ~ 1/log t). With ds = L dt the same trajectory solves dW/ds = −∇L/L = −∇ log L, whose velocity
//! stays O(1) and tends to W*/‖W*‖²: the solution becomes a straight line and adaptive steps grow
//! geometrically. In span coordinates
//!
//!   dB_ji/ds = a_j φ'(P_ji) y_i w_i,   w_i = −ℓ'(q_i)/(nL) = exp(log(−ℓ'(q_i)) − logsumexp_k log ℓ(q_k)),
//!   du/ds = 1/((1+t) L) = exp(−u − log L),   u = log(1+t),
//!
//! so neither L, e^{−q} nor t is ever formed. φ' follows the integrator's switching modes (one per
//! pre-activation P_ji), and each sign change of a P_ji is a located event.

pub mod checkpoint;

use crate::error::{Error, Result};
use crate::maxmargin;
use crate::metrics::{self, cosine, log10_time, put, put_list, Num, StateMetrics};
use crate::model::data::Dataset;
use crate::model::loss::{log_sum_exp, DirectScratch, DIRECT_RANGE};
use crate::model::network::{ModelSettings, Network};
use checkpoint::Checkpoint;
use marginflow_solvers::extrapolation::Extrapolation;
use marginflow_solvers::rk::{
    Control, Horizon, Integrator, IntegratorSettings, IntegratorState, Observer, OdeSystem, Status,
};
use marginflow_solvers::tableau::Method;
use marginflow_solvers::{linalg, Mat, Real};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Where the flow stops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowHorizon {
    /// Physical time t = T.
    Time(f64),
    /// Physical time t = 10^X.
    Log10Time(f64),
    /// Normalized time s = S.
    S(f64),
}

impl FlowHorizon {
    /// Check the horizon is positive and finite.
    pub fn validate(&self) -> Result<()> {
        let (flag, v) = match *self {
            FlowHorizon::Time(t) => ("--until-time", t),
            FlowHorizon::Log10Time(x) => ("--until-log10-time", if x.is_finite() { 1.0 } else { x }),
            FlowHorizon::S(s) => ("--until-s", s),
        };
        if !(v > 0.0 && v.is_finite()) {
            return Err(Error::setting(flag, format!("must be finite and > 0, got {v}")));
        }
        Ok(())
    }
}

/// Phase of a `--method auto` run (the other methods stay in [`Phase::Explicit`], whose meaning for
/// them is simply "the method asked for").
///
/// `auto` starts with the explicit pair `Method::Auto.resolve(rtol)` (Dormand–Prince 5(4), or
/// Verner 9(8) below rtol 1e-14), whose dense output locates the early, dense kinks cheaply. In
/// the asymptotic regime the normalized flow is stiff: explicit steps become stability-bound
/// (constant h) while the solution is nearly a straight line. Once the criterion of
/// [`SwitchMemory`] holds, the run continues from the same [`IntegratorState`] with linearly
/// implicit Euler extrapolation (SEULEX, `marginflow_solvers::extrapolation`), whose steps grow
/// geometrically there. The switch
/// is one-way: if kinks become dense again in phase 2, SEULEX locates them itself (more expensive
/// per event, but correct), and the run stays in phase 2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The explicit Runge–Kutta pair.
    #[default]
    Explicit,
    /// Linearly implicit Euler extrapolation (after the switch of an `auto` run).
    Stiff,
}

/// Accepted explicit steps in a row without a switching event and with the proposed step within a
/// factor [`AUTO_STEP_RATIO`] before `auto` switches to SEULEX.
pub const AUTO_QUIET_STEPS: u64 = 50;
/// The proposed steps h of a quiet streak satisfy max h ≤ AUTO_STEP_RATIO · min h (stability-bound
/// steps: the explicit method no longer gains from the smoothness of the solution).
pub const AUTO_STEP_RATIO: f64 = 2.0;
/// `auto` switches only when the explicit method would still need at least this many steps of the
/// current size to reach the horizon (a macro step of SEULEX costs about k(k+1)/2 + 1 right-hand
/// sides plus k(k+1)/2 linear solves, k = 7 at rtol 1e-10, against 6 for Dormand–Prince, and it
/// needs about log₄ of the remaining span in units of h to grow its step).
pub const AUTO_MIN_REMAINING_STEPS: f64 = 500.0;

/// The memory of `auto`'s switch criterion: the current quiet streak of accepted explicit steps.
/// A pure function of the integration history (never of wall time), checkpointed with the run so a
/// resumed run switches at the same step. f64 values are stored as IEEE bit patterns.
///
/// Criterion: at least [`AUTO_QUIET_STEPS`] accepted steps since the last event (or release) with
/// max h ≤ [`AUTO_STEP_RATIO`] · min h over them (h the proposed step), and at least
/// [`AUTO_MIN_REMAINING_STEPS`] steps of the current h left to the horizon.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SwitchMemory {
    /// `stats.accepted` at the last observed state (`None` before the first): the observer sees a
    /// state twice at an integrator restart (phase change, resume) and counts it once.
    pub last_accepted: Option<u64>,
    /// Events plus releases when the streak started.
    pub events_seen: u64,
    /// Accepted steps in the streak (the state that started it not counted).
    pub quiet_steps: u64,
    /// Smallest proposed step h in the streak (f64 bits).
    pub h_min_bits: u64,
    /// Largest proposed step h in the streak (f64 bits).
    pub h_max_bits: u64,
    /// s where the streak started (f64 bits).
    pub s_start_bits: u64,
    /// log(1+t) where the streak started (f64 bits).
    pub u_start_bits: u64,
    /// s at which phase 2 started (exact, [`Real::to_exact`]), once switched.
    pub switched_at_s: Option<String>,
    /// `stats.accepted` at the switch, once switched.
    pub switched_at_accepted: Option<u64>,
    /// Events off: a hash of the sign pattern of P at the last accepted state.
    #[serde(default)]
    pub pattern_signature: u64,
    /// Events off: accepted steps at which the sign pattern had changed (kinks crossed unlocated).
    #[serde(default)]
    pub pattern_changes: u64,
}

/// Where the horizon lies, in f64, for the switch criterion's estimate of the remaining work.
#[derive(Clone, Copy, Debug)]
enum HorizonEnd {
    /// s = S.
    S(f64),
    /// log(1+t) = U.
    LogTime(f64),
}

impl SwitchMemory {
    /// Record the accepted state (s, h, u = log(1+t), events + releases), once per accepted step:
    /// the streak restarts at an event or when max h > [`AUTO_STEP_RATIO`] · min h.
    fn observe(&mut self, accepted: u64, s: f64, h: f64, u: f64, events: u64) {
        if self.last_accepted == Some(accepted) {
            return;
        }
        let (lo, hi) = (f64::from_bits(self.h_min_bits), f64::from_bits(self.h_max_bits));
        let (lo, hi) = (lo.min(h), hi.max(h));
        // `within` is false for NaN too: a non-finite step restarts the streak.
        let within = hi <= AUTO_STEP_RATIO * lo;
        let restart = self.last_accepted.is_none() || events != self.events_seen || !within;
        if restart {
            self.events_seen = events;
            self.quiet_steps = 0;
            self.h_min_bits = h.to_bits();
            self.h_max_bits = h.to_bits();
            self.s_start_bits = s.to_bits();
            self.u_start_bits = u.to_bits();
        } else {
            self.quiet_steps += 1;
            self.h_min_bits = lo.to_bits();
            self.h_max_bits = hi.to_bits();
        }
        self.last_accepted = Some(accepted);
    }

    /// Events off: count a change of the sign pattern of P at this accepted state (once per
    /// accepted step, like [`Self::observe`]); returns the changes so far.
    fn note_pattern<T: Real>(&mut self, accepted: u64, net: &Network<T>, b: &[T], p: &mut [T]) -> u64 {
        if self.last_accepted == Some(accepted) {
            return self.pattern_changes;
        }
        net.preactivations_inplace(b, p);
        // FNV-1a over the indices of the negative entries.
        let mut sig: u64 = 0xcbf2_9ce4_8422_2325;
        for (i, v) in p.iter().enumerate() {
            if v.is_sign_negative() {
                sig = (sig ^ i as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        if self.last_accepted.is_some() && sig != self.pattern_signature {
            self.pattern_changes += 1;
        }
        self.pattern_signature = sig;
        self.pattern_changes
    }

    /// Whether to switch at the state (s, h, u): at least [`AUTO_QUIET_STEPS`] quiet
    /// stability-bound steps, and at least [`AUTO_MIN_REMAINING_STEPS`] steps of size h left to
    /// the horizon. For a horizon in t, the remaining span in s is (U − u)/(du/ds) with du/ds the
    /// streak's mean rate (u − u₀)/(s − s₀) (in the asymptotic regime u grows linearly in s).
    fn ready(&self, s: f64, h: f64, u: f64, end: HorizonEnd) -> bool {
        let positive = h > 0.0;
        if self.quiet_steps < AUTO_QUIET_STEPS || !positive {
            return false;
        }
        let remaining_s = match end {
            HorizonEnd::S(se) => se - s,
            HorizonEnd::LogTime(ue) => {
                let rate = (u - f64::from_bits(self.u_start_bits)) / (s - f64::from_bits(self.s_start_bits));
                if !(rate > 0.0 && rate.is_finite()) {
                    return false;
                }
                (ue - u) / rate
            }
        };
        remaining_s / h >= AUTO_MIN_REMAINING_STEPS
    }
}

/// Settings of a flow run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowSettings {
    /// The model (width, leak, outer layer, initialization, seed, loss).
    pub model: ModelSettings,
    /// Where to stop (default: t = 10^100).
    pub horizon: FlowHorizon,
    /// Relative tolerance (default: 1e-10).
    pub rtol: f64,
    /// Absolute tolerance (default: 1e-12).
    pub atol: f64,
    /// Integration method (default: auto: dopri5 for rtol ≥ 1e-14, else a high-order pair, then
    /// SEULEX once the flow is stiff; see [`Phase`]).
    pub method: Method,
    /// Locate kink events (default: true).
    pub events: bool,
    /// Working precision in bits; 53 is f64 (default: 53).
    pub precision: u32,
    /// Trajectory rows per decade of s (default: 20).
    pub rows_per_decade: u32,
    /// At most this many trajectory rows (default: 2000).
    pub max_rows: usize,
    /// Step limit, accepted plus rejected (default: none).
    pub max_steps: Option<u64>,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            model: ModelSettings::default(),
            horizon: FlowHorizon::Log10Time(100.0),
            rtol: 1e-10,
            atol: 1e-12,
            method: Method::Auto,
            events: true,
            precision: 53,
            rows_per_decade: 20,
            max_rows: 2000,
            max_steps: None,
        }
    }
}

impl FlowSettings {
    /// Check all ranges, naming the flag at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.horizon.validate()?;
        if !(self.rtol > 0.0 && self.rtol.is_finite()) {
            return Err(Error::setting("--rtol", format!("must be > 0, got {}", self.rtol)));
        }
        if !(self.atol > 0.0 && self.atol.is_finite()) {
            return Err(Error::setting("--atol", format!("must be > 0, got {}", self.atol)));
        }
        if self.precision < 53 || (self.precision > 53 && self.precision < 64) {
            return Err(Error::setting(
                "--precision",
                format!("must be 53 (f64) or at least 64 bits, got {}", self.precision),
            ));
        }
        if self.precision != 53 && !cfg!(feature = "mpfr") {
            return Err(Error::setting(
                "--precision",
                format!("{} bits needs the MPFR build: cargo build --release --features mpfr", self.precision),
            ));
        }
        if self.rows_per_decade == 0 {
            return Err(Error::setting("rows_per_decade", "must be at least 1"));
        }
        Ok(())
    }
}

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
    net: &'a Network<T>,
    /// Mode of each P_ji (see [`mode`]).
    pub modes: Vec<i8>,
    p: Vec<T>,
    slope: Vec<T>,
    q: Vec<T>,
    log_l: Vec<T>,
    /// log(−ℓ'(q_i)), filled with `log_l` (one shared exp/log1p per point).
    log_nd: Vec<T>,
    /// w_i y_i, the signed loss weights.
    wy: Vec<T>,
    /// Unclamped equivalent control of sliding entries.
    sigma: Vec<T>,
    /// Scratch for the slope·pre-activation product (no allocation per entry).
    tmp: T,
    /// log(nL) at the last evaluation (log-domain path only, see `direct`).
    lse: T,
    /// Whether the last [`FlowSystem::prepare`] took the direct path ([`FlowSystem::direct_weights`]):
    /// then `sum_l` = Σ_k ℓ(q_k) = nL holds the loss and `lse` is not computed.
    direct: bool,
    /// Σ_k ℓ(q_k) at the last evaluation (direct path).
    sum_l: T,
    /// n as a scalar.
    n_t: T,
    /// Scratch of the direct loss terms (no allocation per evaluation).
    dscratch: DirectScratch<T>,
    /// Scratch: one loss value ℓ(q_i), then 1/Σ_k ℓ(q_k).
    tmp2: T,
    ln_n: T,
    one: T,
    mid: T,
    /// Jacobian pieces at the last state asked for by [`OdeSystem::solve_shifted`].
    jac: Option<Box<JacobianCache<T>>>,
}

/// The pieces of J = ∂f/∂y at one state and one set of modes (see [`FlowSystem::solve_shifted`]).
#[derive(Clone)]
struct JacobianCache<T> {
    /// The state (B, u) and the modes they belong to.
    y: Vec<T>,
    modes: Vec<i8>,
    /// Frozen slopes φ'(P_ji) (sliding entries: the clamped equivalent control).
    slope: Vec<T>,
    /// Loss weights w_i = −ℓ'(q_i)/Σ_k ℓ(q_k).
    w: Vec<T>,
    /// w_i·c_i with c_i = 1 − g_i = σ(q_i) (logistic) or 1 (exponential): J_w = −diag(dw) + w wᵀ.
    dw: Vec<T>,
    /// du/ds.
    fu: T,
    /// Q A (n×n): (QA)_ri = y_r y_i K_ir Σ_l a_l² s_lr s_li.
    qa: Mat<T>,
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
    fn prepare(&mut self, b: &[T]) {
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
    fn direct_weights(&mut self) -> bool {
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
    fn du_ds_into(&self, u: &T, out: &mut T) {
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
    fn equivalent_controls(&mut self) {
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
    fn preactivation_rate(&self, k: usize, sigma: &T) -> T {
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
    fn sliding_margin(&self, k: usize) -> T {
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

impl<T: Real> FlowSystem<'_, T> {
    /// Fill (or reuse) the Jacobian pieces at y under the current modes.
    fn jacobian_at(&mut self, y: &[T]) {
        let fresh = matches!(&self.jac, Some(j) if j.y.as_slice() == y && j.modes == self.modes);
        if fresh {
            return;
        }
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        self.prepare(&y[..m * n]);
        let w: Vec<T> = self.wy.iter().zip(&net.y).map(|(wy, yi)| wy.clone() * yi).collect();
        let dw: Vec<T> = (0..n)
            .map(|i| match net.loss {
                crate::model::loss::Loss::Exponential => w[i].clone(),
                crate::model::loss::Loss::Logistic => {
                    // σ(q) = 1/(1 + e^{−q}), evaluated from e^{−|q|}.
                    let q = &self.q[i];
                    let e = (-q.abs()).exp();
                    let den = T::one(p) + &e;
                    let sig = if q.is_sign_negative() { e / &den } else { T::one(p) / &den };
                    sig * &w[i]
                }
            })
            .collect();
        let mut fu = T::zero(p);
        self.du_ds_into(&y[m * n], &mut fu);
        let mut qa = Mat::zeros(n, n, p);
        for r in 0..n {
            for i in 0..n {
                let mut acc = T::zero(p);
                for l in 0..m {
                    let t = net.a[l].clone() * &net.a[l] * &self.slope[l * n + r];
                    acc.add_mul_mut(&t, &self.slope[l * n + i]);
                }
                *qa.at_mut(r, i) = acc * net.k_mat.at(i, r) * &net.y[r] * &net.y[i];
            }
        }
        self.jac = Some(Box::new(JacobianCache {
            y: y.to_vec(),
            modes: self.modes.clone(),
            slope: self.slope.clone(),
            w,
            dw,
            fu,
            qa,
        }));
    }

    /// Solve (I − cJ) x = rhs in place, J = ∂f/∂y at y = (B, u) under the current modes.
    ///
    /// With the slopes s_ji = φ'(P_ji) fixed, dB_ji/ds = a_j s_ji y_i w_i(q) with
    /// q_r = y_r Σ_l a_l s_lr P_lr and P = P0 + B K, so ∂(dB/ds)/∂B = A J_w Q with
    /// A_{(ji),i} = a_j s_ji y_i (mn×n), Q_{r,(lk)} = y_r a_l s_lr K_kr (n×mn) and
    /// J_w = ∂w/∂q = −diag(w_i c_i) + w wᵀ (w_i = g_i/S, g = −ℓ', S = Σ ℓ; logistic:
    /// g' = −g(1−g), c_i = 1 − g_i = σ(q_i); exponential: c_i = 1). The u-row: du/ds = f_u =
    /// exp(−u − log L) with ∂ log L/∂q_r = ℓ'_r/S = −w_r, so ∂f_u/∂u = −f_u and
    /// ∂f_u/∂B = f_u wᵀQ; u does not feed back into B. Woodbury:
    /// (I − cAJ_wQ)⁻¹ = I + cA(I − cJ_wQA)⁻¹J_wQ, an n×n LU solve; then
    /// x_u = (r_u + c f_u wᵀQx_B)/(1 + c f_u), using Qx_B = Qr_B + c QA z.
    ///
    /// Sliding entries keep their equivalent-control slope frozen (their dependence on B through
    /// σ is left out of J): the extrapolation method keeps its order with any J, so this only
    /// affects efficiency. Returns false when the n×n system is singular.
    pub fn shifted_solve_inplace(&mut self, y: &[T], c: &T, rhs: &mut [T]) -> bool {
        self.jacobian_at(y);
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        let jac = self.jac.as_ref().expect("jacobian prepared");
        // v = Q r_B: v_r = y_r Σ_l a_l s_lr (r_B K)_lr.
        let mut v = vec![T::zero(p); n];
        for l in 0..m {
            let row = &rhs[l * n..(l + 1) * n];
            for (r, vr) in v.iter_mut().enumerate() {
                let mut acc = T::zero(p);
                for (k, rk) in row.iter().enumerate() {
                    acc.add_mul_mut(rk, net.k_mat.at(k, r));
                }
                let t = net.a[l].clone() * &jac.slope[l * n + r];
                vr.add_mul_mut(&t, &acc);
            }
        }
        for (vr, yr) in v.iter_mut().zip(&net.y) {
            *vr *= yr;
        }
        // t = J_w v.
        let wv = linalg::dot(&jac.w, &v);
        let t: Vec<T> = (0..n).map(|i| jac.w[i].clone() * &wv - &(jac.dw[i].clone() * &v[i])).collect();
        // Z = I − c J_w QA, (J_w QA)_ir = −dw_i QA_ir + w_i Σ_p w_p QA_pr.
        let mut wqa = vec![T::zero(p); n];
        for (r, acc) in wqa.iter_mut().enumerate() {
            for pp in 0..n {
                acc.add_mul_mut(&jac.w[pp], jac.qa.at(pp, r));
            }
        }
        let mut z = Mat::zeros(n, n, p);
        for i in 0..n {
            for r in 0..n {
                let jwqa = jac.w[i].clone() * &wqa[r] - &(jac.dw[i].clone() * jac.qa.at(i, r));
                let mut e = -(c.clone() * &jwqa);
                if i == r {
                    e += &T::one(p);
                }
                *z.at_mut(i, r) = e;
            }
        }
        let zs = match linalg::lu_solve(&z, &t) {
            Ok(v) => v,
            Err(_) => return false,
        };
        // x_B = r_B + c A z: x_ji += c a_j s_ji y_i z_i.
        for j in 0..m {
            let caj = c.clone() * &net.a[j];
            for i in 0..n {
                let coef = caj.clone() * &jac.slope[j * n + i] * &net.y[i];
                rhs[j * n + i].add_mul_mut(&coef, &zs[i]);
            }
        }
        // Q x_B = v + c QA z; x_u = (r_u + c f_u wᵀ Q x_B)/(1 + c f_u).
        let mut wqx = wv;
        for r in 0..n {
            let mut qaz = T::zero(p);
            for i in 0..n {
                qaz.add_mul_mut(jac.qa.at(r, i), &zs[i]);
            }
            let t = c.clone() * &qaz;
            wqx.add_mul_mut(&jac.w[r], &t);
        }
        let cfu = c.clone() * &jac.fu;
        let mut xu = rhs[m * n].clone();
        xu.add_mul_mut(&cfu, &wqx);
        rhs[m * n] = xu / &(T::one(p) + &cfu);
        true
    }
}

/// The flow's comparison with the certified theory-pattern max-margin solution.
#[derive(Clone, Debug)]
pub struct ReferenceComparison<T> {
    /// 1/‖W*‖_F of the QP solution.
    pub normalized_margin: T,
    /// cos(W, W*).
    pub cosine_position: T,
    /// cos(dW/ds, W*).
    pub cosine_velocity: T,
    /// max_i |w_i − λ_i/Σλ|.
    pub multiplier_error: T,
    /// Whether the reference is certified.
    pub certified: bool,
}

/// KKT residuals of the flow's own direction: with W̄ = W/min_i q_i and μ = c·w (w the loss
/// weights, c minimizing the residual), stationarity ‖W̄ − Σ μ_i y_i ∇f_i(W)‖/‖W̄‖ and
/// complementarity Σ_i μ_i (q̄_i − 1) / Σ μ_i.
#[derive(Clone, Debug)]
pub struct KktResiduals<T> {
    /// Relative stationarity residual.
    pub stationarity: T,
    /// Weighted complementarity residual.
    pub complementarity: T,
}

/// Velocity dW/ds (small representation) at the state, under the system's modes.
fn velocity_small<T: Real>(sys: &mut FlowSystem<'_, T>, y: &[T], s: &T) -> Mat<T> {
    let net = sys.net;
    let mut dy = vec![T::zero(net.prec); y.len()];
    sys.eval_inplace(s, y, &mut dy);
    net.small_span(&dy[..net.m * net.n])
}

fn kkt_residuals<T: Real>(sm: &StateMetrics<T>, v: &Mat<T>) -> KktResiduals<T> {
    let p = v.precision();
    let w = &sm.w_small;
    let qmin = sm.min_margin.clone();
    // W̄ = W / q_min; V = Σ w_i y_i ∇f_i(W); c = ⟨W̄, V⟩/‖V‖².
    let vv = metrics::frobenius_dot(v, v);
    let wv = metrics::frobenius_dot(w, v) / &qmin;
    let c = wv / &vv;
    let mut res = T::zero(p);
    for (wi, vi) in w.data.iter().zip(&v.data) {
        let r = wi.clone() / &qmin - &(vi.clone() * &c);
        res.add_mul_mut(&r, &r);
    }
    let wbar_norm = sm.frobenius_norm.clone() / &qmin.abs();
    let stationarity = res.sqrt() / &wbar_norm;
    let mut comp = T::zero(p);
    for (lw, q) in sm.loss_weights.iter().zip(&sm.margins) {
        let gap = q.clone() / &qmin - &T::one(p);
        comp.add_mul_mut(lw, &gap);
    }
    KktResiduals { stationarity, complementarity: comp }
}

/// The summary of a flow run (summary.json).
#[derive(Clone, Debug, Serialize)]
pub struct FlowSummary {
    /// The JSON object, field names as in DESIGN §4.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What the caller of [`run`] does with rows, checkpoints and stop requests.
pub trait FlowObserver {
    /// A trajectory row (a JSON object) was produced.
    fn row(&mut self, row: &serde_json::Value) -> Result<()>;
    /// Whether a checkpoint should be written now.
    fn checkpoint_due(&mut self) -> bool;
    /// Write this checkpoint.
    fn checkpoint(&mut self, cp: &Checkpoint) -> Result<()>;
    /// Whether the run should stop now (e.g. a signal arrived).
    fn stop_requested(&mut self) -> bool;
    /// Where the run is, after every accepted step (for progress displays; default: ignored).
    fn progress(&mut self, _at: &FlowProgress) {}
}

/// Where a run is, reported to [`FlowObserver::progress`] after every accepted step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowProgress {
    /// Normalized time s.
    pub s: f64,
    /// log10 t.
    pub log10_time: f64,
    /// log10 L at the last trajectory row (`None` before the first).
    pub log10_loss: Option<f64>,
    /// Accepted steps so far.
    pub accepted: u64,
    /// Rejected steps so far.
    pub rejected: u64,
    /// Kink events so far.
    pub events: u64,
}

/// The end of a run.
pub struct FlowOutcome {
    /// summary.json.
    pub summary: FlowSummary,
    /// Final W (m×d, f64), when requested.
    pub weights: Option<Vec<f64>>,
    /// Checkpoint of the final state (so a later `--resume` can go further).
    pub checkpoint: Checkpoint,
}

/// Run (or resume) a flow on `data`, at the precision in the settings.
pub fn run(
    data: &Dataset,
    settings: &FlowSettings,
    resume: Option<Checkpoint>,
    want_weights: bool,
    obs: &mut dyn FlowObserver,
) -> Result<FlowOutcome> {
    settings.validate()?;
    if settings.precision == 53 {
        return run_at::<f64>(data, settings, resume, want_weights, obs);
    }
    #[cfg(feature = "mpfr")]
    {
        run_at::<rug::Float>(data, settings, resume, want_weights, obs)
    }
    #[cfg(not(feature = "mpfr"))]
    unreachable!("validate() rejects precision != 53 without the mpfr feature")
}

struct Rows<'o, T: Real> {
    obs: &'o mut dyn FlowObserver,
    reference: Option<(Mat<T>, Vec<T>)>,
    rows_written: usize,
    next_row: f64,
    per_decade: f64,
    max_rows: usize,
    settings: FlowSettings,
    data_hash: String,
    error: Option<Error>,
    started: Instant,
    wall_before: f64,
    /// Phase of the run (see [`Phase`]).
    phase: Phase,
    /// Switch criterion memory (observed only in phase 1 of an `auto` run).
    switch: SwitchMemory,
    /// Whether this run is `auto` in phase 1 (the criterion is checked).
    watch_switch: bool,
    /// Index of u = log(1+t) in the state.
    u_index: usize,
    /// The horizon in f64 for the criterion.
    end: HorizonEnd,
    /// Set when the observer stopped phase 1 to switch (not a user stop).
    switch_now: bool,
    /// log10 L of the last trajectory row (gradient flow never increases the loss).
    last_row_loss: Option<f64>,
    /// Why the run was stopped as numerically broken: the loss rose between two rows.
    loss_rise: Option<String>,
    /// Scratch for the sign pattern of P (events off).
    p_scratch: Vec<T>,
    /// s of the last trajectory row written (the final row is not repeated at the same state).
    last_row_s: Option<f64>,
}

/// The fields a trajectory row and the summary share: s, log10 t (from u = log(1+t)), and the
/// state's metrics.
fn put_state<T: Real>(o: &mut serde_json::Map<String, serde_json::Value>, s: &T, u: &T, sm: &StateMetrics<T>) {
    put(o, "s", &Num::of(s));
    put(o, "log10_time", &Num::of(&log10_time(u)));
    put(o, "log10_loss", &Num::of(&sm.log10_loss));
    put(o, "frobenius_norm", &Num::of(&sm.frobenius_norm));
    put(o, "min_margin", &Num::of(&sm.min_margin));
    put(o, "normalized_margin", &Num::of(&sm.normalized_margin));
    put_list(o, "singular_values", &metrics::top_singular_values(&sm.singular_values));
    put(o, "stable_rank", &Num::of(&sm.stable_rank));
    put(o, "sigma3_over_sigma1", &Num::of(&sm.sigma3_over_sigma1));
    o.insert("pattern_agreement".into(), serde_json::json!(sm.pattern_agreement));
}

impl<'o, T: Real> Rows<'o, T> {
    fn row_json(&self, sys: &mut FlowSystem<'_, T>, st: &IntegratorState<T>) -> Result<serde_json::Value> {
        let net = sys.net;
        let mn = net.m * net.n;
        let sm = metrics::measure(net, &st.y[..mn])?;
        let mut o = serde_json::Map::new();
        put_state(&mut o, &st.s, &st.y[mn], &sm);
        if let Some((wstar, _)) = &self.reference {
            let v = velocity_small(sys, &st.y, &st.s);
            put(&mut o, "cosine_position", &Num::of(&cosine(&sm.w_small, wstar)));
            put(&mut o, "cosine_velocity", &Num::of(&cosine(&v, wstar)));
        }
        o.insert("accepted".into(), serde_json::json!(st.stats.accepted));
        o.insert("rejected".into(), serde_json::json!(st.stats.rejected));
        o.insert("events".into(), serde_json::json!(st.stats.events));
        o.insert("rhs_evaluations".into(), serde_json::json!(st.stats.rhs_evaluations));
        Ok(serde_json::Value::Object(o))
    }

    fn checkpoint_of(&self, sys: &FlowSystem<'_, T>, st: &IntegratorState<T>) -> Checkpoint {
        let mut cp = Checkpoint::capture(
            &self.settings,
            &self.data_hash,
            st,
            &sys.modes,
            self.rows_written,
            self.next_row,
            self.wall_before + self.started.elapsed().as_secs_f64(),
        );
        cp.phase = self.phase;
        cp.switch = self.switch.clone();
        cp
    }
}

impl<'a, 'o, T: Real> Observer<T, FlowSystem<'a, T>> for Rows<'o, T> {
    fn on_step(&mut self, sys: &FlowSystem<'a, T>, st: &IntegratorState<T>) -> Control {
        let s = st.s.to_f64();
        // The switch criterion first, so a checkpoint written below holds this step's memory (a
        // resumed run then re-decides the same way at its first observer call).
        let mut switch = false;
        if self.watch_switch && self.phase == Phase::Explicit {
            let (h, u) = (st.h.to_f64(), st.y[self.u_index].to_f64());
            let mut kinks = st.stats.events + st.stats.released;
            if !self.settings.events {
                // Kinks are crossed without events: watch the sign pattern instead.
                let mn = self.u_index;
                let mut p = std::mem::take(&mut self.p_scratch);
                p.resize(mn, T::zero(st.s.precision()));
                kinks += self.switch.note_pattern(st.stats.accepted, sys.network(), &st.y[..mn], &mut p);
                self.p_scratch = p;
            }
            self.switch.observe(st.stats.accepted, s, h, u, kinks);
            switch = self.switch.ready(s, h, u, self.end);
        }
        let due = s > 0.0 && s.log10() >= self.next_row && self.rows_written < self.max_rows;
        if due {
            // Metrics need a scratch system (the integrator holds the live one immutably here).
            let mut scratch = sys.clone();
            let row = match self.row_json(&mut scratch, st) {
                Ok(r) => r,
                Err(e) => {
                    self.error = Some(e);
                    return Control::Stop;
                }
            };
            if let Err(e) = self.obs.row(&row) {
                self.error = Some(e);
                return Control::Stop;
            }
            self.rows_written += 1;
            self.last_row_s = Some(s);
            if let Some(now) = row["log10_loss"].as_f64() {
                // dL/dt = −‖∇L‖² ≤ 0: a rise beyond the tolerance is a numerical failure, not a
                // result (typically round-off in B once |B| ~ s on linearly dependent data).
                let slack = (1e3 * self.settings.rtol).max(1e-9) * now.abs().max(1.0);
                if let Some(prev) = self.last_row_loss {
                    if now > prev + slack {
                        let bmax = st.y[..self.u_index].iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
                        self.loss_rise = Some(format!(
                            "the loss rose from log10 L = {prev} to {now} at s = {s:e}, which gradient flow \
                             cannot do: round-off now dominates (max |B_ji| = {bmax:e}; on linearly \
                             dependent data B drifts along the null space of X)"
                        ));
                        return Control::Stop;
                    }
                }
                self.last_row_loss = Some(now);
            }
            let step = 1.0 / self.per_decade;
            while self.next_row <= s.log10() {
                self.next_row += step;
            }
        }
        self.obs.progress(&FlowProgress {
            s,
            log10_time: log10_time(&st.y[self.u_index].to_f64()),
            log10_loss: self.last_row_loss,
            accepted: st.stats.accepted,
            rejected: st.stats.rejected,
            events: st.stats.events,
        });
        if self.obs.checkpoint_due() {
            let cp = self.checkpoint_of(sys, st);
            if let Err(e) = self.obs.checkpoint(&cp) {
                self.error = Some(e);
                return Control::Stop;
            }
        }
        if self.obs.stop_requested() {
            return Control::Stop;
        }
        if switch {
            self.switch_now = true;
            return Control::Stop;
        }
        Control::Continue
    }
}

fn run_at<T: Real>(
    data: &Dataset,
    settings: &FlowSettings,
    resume: Option<Checkpoint>,
    want_weights: bool,
    obs: &mut dyn FlowObserver,
) -> Result<FlowOutcome> {
    let prec = settings.precision;
    let started = Instant::now();
    let net: Network<T> = Network::new(data, &settings.model, prec)?;
    let mn = net.m * net.n;
    let data_hash = data.hash();

    let (mut state, modes, rows_written, next_row, wall_before, phase, switch) = match resume {
        Some(cp) => {
            let r = cp.restore::<T>(&data_hash, mn + 1)?;
            (r.state, Some(r.modes), cp.rows_written, cp.next_row(), cp.wall_seconds, cp.phase, cp.switch.clone())
        }
        None => {
            let y0 = vec![T::zero(prec); mn + 1];
            (IntegratorState::new(T::zero(prec), y0), None, 0, -6.0, 0.0, Phase::Explicit, SwitchMemory::default())
        }
    };
    let auto = settings.method == Method::Auto;
    if phase == Phase::Stiff && !auto {
        return Err(Error::BadCheckpoint {
            path: "checkpoint".into(),
            reason: format!("phase 2 (SEULEX) recorded for method {:?}, which has no phases", settings.method),
        });
    }
    let switched_at: Option<T> = match &switch.switched_at_s {
        Some(x) => Some(T::from_exact(x).ok_or_else(|| Error::BadCheckpoint {
            path: "checkpoint".into(),
            reason: format!("cannot decode switched_at_s {x:?}"),
        })?),
        None => None,
    };
    let mut sys = FlowSystem::new(&net, &state.y[..mn]);
    if let Some(m) = modes {
        sys.modes = m;
    }

    // The independent reference: the certified theory-pattern max-margin solution.
    let reference = maxmargin::theory_reference(&net);
    let reference_small =
        reference.as_ref().ok().map(|r| (net.small_span(&r.coefficients.data), r.multipliers.clone()));

    let isettings = IntegratorSettings {
        rtol: settings.rtol,
        atol: settings.atol,
        events: settings.events,
        max_steps: settings.max_steps,
        ..Default::default()
    };
    let horizon = match settings.horizon {
        FlowHorizon::S(s) => Horizon { s_end: Some(T::from_f64(s, prec)), component_reaches: None },
        FlowHorizon::Time(t) => Horizon { s_end: None, component_reaches: Some((mn, T::from_f64(t, prec).ln_1p())) },
        FlowHorizon::Log10Time(x) => {
            // log(1 + 10^X) = X ln 10 + log(1 + 10^−X).
            let xl = T::from_f64(x, prec) * &T::from_f64(10.0, prec).ln();
            let target = xl.clone() + &(-xl).exp().ln_1p();
            Horizon { s_end: None, component_reaches: Some((mn, target)) }
        }
    };

    let end = match (&horizon.s_end, &horizon.component_reaches) {
        (Some(se), _) => HorizonEnd::S(se.to_f64()),
        (None, Some((_, ue))) => HorizonEnd::LogTime(ue.to_f64()),
        (None, None) => HorizonEnd::S(f64::INFINITY),
    };
    let mut rows = Rows {
        obs,
        reference: reference_small.clone(),
        rows_written,
        next_row,
        per_decade: settings.rows_per_decade as f64,
        max_rows: settings.max_rows,
        settings: settings.clone(),
        data_hash: data_hash.clone(),
        error: None,
        started,
        wall_before,
        phase,
        switch,
        watch_switch: auto,
        u_index: mn,
        end,
        switch_now: false,
        last_row_loss: None,
        loss_rise: None,
        p_scratch: Vec::new(),
        last_row_s: None,
    };
    let mut switched_at = switched_at;
    // Steps (accepted + rejected) before this call: `max_steps` limits this call across phases.
    let steps_before = state.stats.accepted + state.stats.rejected;
    let explicit = !settings.method.is_extrapolation() && rows.phase == Phase::Explicit;
    let mut status = Status::Stopped;
    if explicit {
        let tableau = settings.method.tableau::<T>(settings.rtol, prec);
        let mut integ = Integrator::new(tableau, isettings.clone(), mn + 1, prec)?;
        status = integ.integrate(&mut sys, &mut state, &horizon, &mut rows);
        if status == Status::Stopped && rows.switch_now && rows.error.is_none() {
            // Not a user stop: the criterion fired. Phase 2 continues from the same state.
            rows.phase = Phase::Stiff;
            rows.switch.switched_at_s = Some(state.s.to_exact());
            rows.switch.switched_at_accepted = Some(state.stats.accepted);
            switched_at = Some(state.s.clone());
        }
    }
    if rows.error.is_none() && (settings.method.is_extrapolation() || rows.phase == Phase::Stiff) {
        // Linearly implicit Euler extrapolation with the Woodbury solve of FlowSystem.
        let used = state.stats.accepted + state.stats.rejected - steps_before;
        let isettings =
            IntegratorSettings { max_steps: settings.max_steps.map(|m| m.saturating_sub(used)), ..isettings };
        let mut integ = Extrapolation::new(isettings, mn + 1, prec)?;
        status = integ.integrate(&mut sys, &mut state, &horizon, &mut rows);
    }
    if let Some(e) = rows.error.take() {
        return Err(e);
    }
    // Final row (always), then the summary.
    let mut scratch = FlowSystem::new(&net, &state.y[..mn]);
    scratch.modes = sys.modes.clone();
    let final_row = rows.row_json(&mut scratch, &state)?;
    // The checkpoint counts the rows before this final one: a resumed run drops it, so its
    // trajectory is the uninterrupted one.
    let checkpoint = rows.checkpoint_of(&sys, &state);
    // A row already written at this very state (s only grows) is not repeated.
    if rows.last_row_s != Some(state.s.to_f64()) {
        rows.obs.row(&final_row)?;
    }
    rows.obs.checkpoint(&checkpoint)?;

    let sm = metrics::measure(&net, &state.y[..mn])?;
    let mut o = serde_json::Map::new();
    let status_str = match &status {
        Status::Stopped if rows.loss_rise.is_some() => "loss_increased".to_string(),
        Status::Stopped => "interrupted".to_string(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(String::from).or_else(|| v.as_object().and_then(|m| m.keys().next().cloned())))
            .unwrap_or_else(|| format!("{other:?}")),
    };
    o.insert("status".into(), serde_json::json!(status_str));
    if let Status::StepSizeUnderflow { s, h } = &status {
        o.insert("status_detail".into(), serde_json::json!(format!("step size {h:e} underflowed at s = {s:e}")));
    }
    if let Some(why) = &rows.loss_rise {
        o.insert("status_detail".into(), serde_json::json!(why));
    }
    if let Status::NonFinite { s } = &status {
        o.insert("status_detail".into(), serde_json::json!(format!("non-finite value at s = {s:e}")));
    }
    put_state(&mut o, &state.s, &state.y[mn], &sm);
    put_list(&mut o, "loss_weights", &sm.loss_weights.iter().map(Num::of).collect::<Vec<_>>());
    let ln2 = 2f64.ln();
    let interpolated = sm.log10_loss.to_f64() < (ln2 / net.n as f64).log10();
    o.insert("interpolated".into(), serde_json::json!(interpolated));
    let v = velocity_small(&mut scratch, &state.y, &state.s);
    let kkt = kkt_residuals(&sm, &v);
    put(&mut o, "kkt_stationarity", &Num::of(&kkt.stationarity));
    put(&mut o, "kkt_complementarity", &Num::of(&kkt.complementarity));
    o.insert("statistics".into(), serde_json::to_value(&state.stats).unwrap_or_default());
    o.insert("sliding_at_end".into(), serde_json::json!(sys.sliding_count()));
    o.insert("settings".into(), serde_json::to_value(settings).unwrap_or_default());
    let name = |m: Method| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let first = name(settings.method.resolve(settings.rtol));
    let method_used = if rows.phase == Phase::Stiff { format!("{first}+seulex") } else { first };
    o.insert("method_used".into(), serde_json::json!(method_used));
    if let Some(sw) = &switched_at {
        put(&mut o, "switched_at_s", &Num::of(sw));
        o.insert("switched_at_accepted".into(), serde_json::json!(rows.switch.switched_at_accepted));
    }
    o.insert("precision_bits".into(), serde_json::json!(prec));
    o.insert("shape".into(), serde_json::json!({"n": net.n, "d": net.d, "m": net.m}));
    match (&reference, &reference_small) {
        (Ok(r), Some((wstar, lambda))) => {
            let mut lsum = T::zero(prec);
            for l in lambda {
                lsum += l;
            }
            let mut merr = T::zero(prec);
            for (w, l) in sm.loss_weights.iter().zip(lambda) {
                merr = merr.max_of(&(w.clone() - &(l.clone() / &lsum)).abs());
            }
            let mut ro = serde_json::Map::new();
            put(&mut ro, "normalized_margin", &Num::of(&(T::one(prec) / &r.norm)));
            let cp = cosine(&sm.w_small, wstar);
            let cv = cosine(&v, wstar);
            put(&mut ro, "cosine_position", &Num::of(&cp));
            put(&mut ro, "cosine_velocity", &Num::of(&cv));
            put(&mut ro, "position_gap", &Num::of(&(T::one(prec) - &cp)));
            put(&mut ro, "velocity_gap", &Num::of(&(T::one(prec) - &cv)));
            put(&mut ro, "multiplier_error", &Num::of(&merr));
            put(&mut ro, "kkt_stationarity", &Num::of(&kkt.stationarity));
            put(&mut ro, "kkt_complementarity", &Num::of(&kkt.complementarity));
            ro.insert("certified".into(), serde_json::json!(r.certified));
            if let Some(why) = &r.failure {
                ro.insert("not_certified_because".into(), serde_json::json!(why));
            }
            o.insert("reference".into(), serde_json::Value::Object(ro));
        }
        (Err(e), _) => {
            o.insert("reference".into(), serde_json::json!({"certified": false, "error": e.to_string()}));
        }
        _ => {}
    }
    o.insert("wall_seconds".into(), serde_json::json!(wall_before + started.elapsed().as_secs_f64()));
    let weights = if want_weights { Some(net.full_weights(data, &state.y[..mn])?) } else { None };
    Ok(FlowOutcome { summary: FlowSummary { fields: o }, weights, checkpoint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::data::{generate, GenSettings};

    /// Events off: the auto criterion sees kinks through the sign pattern of P = P0 + B K. A new
    /// pattern counts once per accepted step, the same pattern never, and a repeated observation
    /// of one accepted step (an integrator restart) not again.
    #[test]
    fn pattern_changes_count_sign_flips_once_per_accepted_step() {
        let data = generate(&GenSettings { n: 6, d: 50, seed: 3, ..Default::default() }).unwrap();
        let model = ModelSettings { width: 4, ..Default::default() };
        let net: Network<f64> = Network::new(&data, &model, 53).unwrap();
        let (m, n) = (net.m, net.n);
        let mut p = vec![0.0; m * n];
        let mut mem = SwitchMemory::default();
        let b0 = vec![0.0; m * n];
        // B = c·sign(a_j) y_i pushes every P_ji to the sign of a_j y_i: a different pattern from
        // the random P0 at B = 0 (init scale 1e-3).
        let b1: Vec<f64> = (0..m * n).map(|k| 10.0 * net.a_f64[k / n].signum() * data.y[k % n]).collect();
        let mut observe = |mem: &mut SwitchMemory, accepted: u64, b: &[f64]| {
            let c = mem.note_pattern(accepted, &net, b, &mut p);
            mem.observe(accepted, 0.0, 1.0, 0.0, c);
            c
        };
        assert_eq!(observe(&mut mem, 0, &b0), 0, "the first state has nothing to compare with");
        assert_eq!(observe(&mut mem, 1, &b0), 0, "same pattern");
        assert_eq!(observe(&mut mem, 2, &b1), 1, "every P_ji took the sign of a_j y_i");
        assert_eq!(observe(&mut mem, 2, &b0), 1, "a repeated accepted step is not counted again");
        assert_eq!(observe(&mut mem, 3, &b1), 1, "same pattern as step 2");
        assert_eq!(observe(&mut mem, 4, &b0), 2, "back to the initial pattern");
        assert_eq!(mem.quiet_steps, 0, "a pattern change restarts the quiet streak");
    }
}
