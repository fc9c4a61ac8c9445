//! Adaptive embedded Runge–Kutta integration with switching events and checkpointable state.
//!
//! The method is any [`Tableau`] (Dormand–Prince 5(4) by default). Step control is Hairer's PI
//! controller (Hairer–Nørsett–Wanner I, II.4 and the DOPRI5 code: β = 0.04, safety 0.9, step ratio
//! in [0.2, 10]) with the RMS error norm scaled by atol + rtol·max(|y|, |y_new|).
//!
//! **Switching events.** A system may have switching functions g_k(y) and a current *mode* ±1 for
//! each; its right-hand side uses the modes, not the live signs, so every stage of a step sees one
//! smooth vector field. When an accepted step ends with mode_k·g_k < 0, the earliest such root is
//! located on the continuous extension (Illinois method), the step is cut there, the mode flips and
//! the method restarts (FSAL reset); the system chooses the new mode in [`OdeSystem::flip`] (it
//! may recognise a Filippov sliding mode there). A switch that still flips back and forth at one
//! point is *released* ([`OdeSystem::release`]) and counted, instead of grinding through tiny steps.

use crate::error::SolverError;
use crate::events;
use crate::scalar::Real;
use crate::tableau::{Dense, Tableau};
use serde::{Deserialize, Serialize};

/// A first-order system y' = f(s, y), possibly with switching functions.
pub trait OdeSystem<T: Real> {
    /// Dimension of y.
    fn dim(&self) -> usize;
    /// dy ← f(s, y) under the current modes.
    fn eval_inplace(&mut self, s: &T, y: &[T], dy: &mut [T]);
    /// Number of switching functions g_k (0 for a smooth system).
    fn num_switches(&self) -> usize {
        0
    }
    /// g_k(s, y). Only called for tracked k (mode ≠ 0).
    fn switch_value(&mut self, _k: usize, _s: &T, _y: &[T]) -> T {
        unreachable!("system has no switching functions")
    }
    /// g ← all switching functions at (s, y) (default: one by one).
    fn switch_values_inplace(&mut self, s: &T, y: &[T], g: &mut [T]) {
        for (k, gk) in g.iter_mut().enumerate() {
            if self.mode(k) != 0 {
                *gk = self.switch_value(k, s, y);
            }
        }
    }
    /// Side of switch k the right-hand side assumes: +1, −1, or 0 when untracked (the system then
    /// evaluates it by its live sign and no event is located for it).
    fn mode(&self, _k: usize) -> i8 {
        0
    }
    /// Switch k crossed at the state (s, y): choose its new mode (normally the other side; a
    /// system may instead enter a sliding mode and report a different switching function for k).
    fn flip(&mut self, _k: usize, _s: &T, _y: &[T]) {}
    /// Stop locating events for switch k (events off): evaluate it by its live sign.
    fn untrack(&mut self, _k: usize) {}
    /// Switch k chatters at (s, y) (it flipped back and forth at one point): handle it as a
    /// sliding mode if the system can, else untrack it (the default).
    fn release(&mut self, k: usize, _s: &T, _y: &[T]) {
        self.untrack(k);
    }
    /// Solve (I − c·J) x = rhs in place, J = ∂f/∂y(s, y) under the current modes (for linearly
    /// implicit methods, see [`crate::extrapolation`]). Returns false when the system provides no
    /// Jacobian (the default; `rhs` is then unchanged). An approximate J only costs efficiency
    /// in the extrapolation method, never its order.
    fn solve_shifted(&mut self, _s: &T, _y: &[T], _c: &T, _rhs: &mut [T]) -> bool {
        false
    }
    /// The components of y that g_k reads (default: all); event location evaluates only these.
    fn switch_support(&self, _k: usize) -> std::ops::Range<usize> {
        0..self.dim()
    }
}

/// Work counters, reported with every result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected steps.
    pub rejected: u64,
    /// Right-hand-side evaluations.
    pub rhs_evaluations: u64,
    /// Switching events located (mode flips).
    pub events: u64,
    /// Switches released after chattering (sliding modes).
    pub released: u64,
}

/// Integrator settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegratorSettings {
    /// Relative tolerance (default: 1e-10).
    pub rtol: f64,
    /// Absolute tolerance (default: 1e-12).
    pub atol: f64,
    /// Locate switching events (default: true). When false, switches are released at the start.
    pub events: bool,
    /// Maximum number of steps (accepted + rejected); `None` = no limit (default: None).
    pub max_steps: Option<u64>,
    /// Initial step; `None` = Hairer's automatic choice (default: None).
    pub initial_step: Option<f64>,
    /// Maximum step; `None` = unbounded (default: None).
    pub max_step: Option<f64>,
    /// A switch flipping this many times in a row at the same point is released (default: 4).
    pub chatter_limit: u32,
}

impl Default for IntegratorSettings {
    fn default() -> Self {
        IntegratorSettings {
            rtol: 1e-10,
            atol: 1e-12,
            events: true,
            max_steps: None,
            initial_step: None,
            max_step: None,
            chatter_limit: 4,
        }
    }
}

impl IntegratorSettings {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), SolverError> {
        if !(self.rtol > 0.0 && self.rtol.is_finite()) {
            return Err(SolverError::Setting { name: "rtol", reason: format!("must be > 0, got {}", self.rtol) });
        }
        if !(self.atol > 0.0 && self.atol.is_finite()) {
            return Err(SolverError::Setting { name: "atol", reason: format!("must be > 0, got {}", self.atol) });
        }
        Ok(())
    }
}

/// Where integration stops.
#[derive(Clone, Debug)]
pub struct Horizon<T> {
    /// Stop exactly at s = `s_end`, if given.
    pub s_end: Option<T>,
    /// Stop exactly where component `.0` of y first reaches `.1` from below, if given.
    pub component_reaches: Option<(usize, T)>,
}

/// How an integration ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The horizon was reached.
    Reached,
    /// The observer asked to stop.
    Stopped,
    /// The step limit was hit.
    MaxSteps,
    /// The step size fell below round-off relative to s.
    StepSizeUnderflow {
        /// Where.
        s: f64,
        /// The step.
        h: f64,
    },
    /// The right-hand side produced a NaN or infinity.
    NonFinite {
        /// Where.
        s: f64,
    },
}

/// The complete integrator state at a step boundary: enough to resume bit for bit.
#[derive(Clone, Debug)]
pub struct IntegratorState<T> {
    /// Current time.
    pub s: T,
    /// Current state.
    pub y: Vec<T>,
    /// Next step size to try (0 before the first step: choose automatically).
    pub h: T,
    /// Controller memory: the previous accepted error norm.
    pub err_old: T,
    /// Whether the previous attempt was rejected.
    pub last_rejected: bool,
    /// Consecutive flips of the same switch at one point (chatter detection): (switch, count).
    pub chatter: Option<(usize, u32)>,
    /// Work counters.
    pub stats: Statistics,
    /// f(s, y) when already known (the first-same-as-last stage of an explicit pair), so that a
    /// resumed run neither repeats nor counts that evaluation.
    pub first_stage: Option<Vec<T>>,
}

impl<T: Real> IntegratorState<T> {
    /// Fresh state at (s0, y0).
    pub fn new(s0: T, y0: Vec<T>) -> Self {
        let prec = s0.precision();
        IntegratorState {
            s: s0,
            y: y0,
            h: T::zero(prec),
            err_old: T::ratio(1, 10000, prec),
            last_rejected: false,
            chatter: None,
            stats: Statistics::default(),
            first_stage: None,
        }
    }

    /// Record k as f(s, y) (reusing the buffer).
    fn remember_first_stage(&mut self, k: &[T]) {
        match &mut self.first_stage {
            Some(v) if v.len() == k.len() => v.clone_from_slice(k),
            other => *other = Some(k.to_vec()),
        }
    }
}

/// What the observer wants after an accepted step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop now (status `Stopped`).
    Stop,
}

/// Called after every accepted step (and at the start) with the system and the state.
pub trait Observer<T: Real, S: OdeSystem<T>> {
    /// Inspect the state; return `Control::Stop` to end the integration.
    fn on_step(&mut self, system: &S, state: &IntegratorState<T>) -> Control;
}

impl<T: Real, S: OdeSystem<T>> Observer<T, S> for () {
    fn on_step(&mut self, _: &S, _: &IntegratorState<T>) -> Control {
        Control::Continue
    }
}

/// Integrator with its workspace, allocated once.
pub struct Integrator<T: Real> {
    tableau: Tableau<T>,
    settings: IntegratorSettings,
    prec: u32,
    k: Vec<Vec<T>>,
    ytmp: Vec<T>,
    ynew: Vec<T>,
    yerr: Vec<T>,
    ydense: Vec<T>,
    /// Dense-output coefficient vectors of the last trial step (Dormand–Prince), and whether
    /// they are current.
    rcont: [Vec<T>; 4],
    dense_ready: bool,
    g: Vec<T>,
    rtol: T,
    atol: T,
    k1_valid: bool,
    /// Scalar scratch of the per-component loops (no allocation per step at MPFR precisions).
    acc: T,
    tmp: T,
    scale: T,
}

enum Trial {
    Accepted,
    Rejected,
}

impl<T: Real> Integrator<T> {
    /// New integrator for systems of dimension `dim`, at precision `prec`.
    pub fn new(tableau: Tableau<T>, settings: IntegratorSettings, dim: usize, prec: u32) -> Result<Self, SolverError> {
        settings.validate()?;
        let stages = tableau.stages();
        Ok(Integrator {
            rtol: T::from_f64(settings.rtol, prec),
            atol: T::from_f64(settings.atol, prec),
            acc: T::zero(prec),
            tmp: T::zero(prec),
            scale: T::zero(prec),
            tableau,
            settings,
            prec,
            k: vec![vec![T::zero(prec); dim]; stages],
            ytmp: vec![T::zero(prec); dim],
            ynew: vec![T::zero(prec); dim],
            yerr: vec![T::zero(prec); dim],
            ydense: vec![T::zero(prec); dim],
            rcont: std::array::from_fn(|_| vec![T::zero(prec); dim]),
            dense_ready: false,
            g: Vec::new(),
            k1_valid: false,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &IntegratorSettings {
        &self.settings
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau<T> {
        &self.tableau
    }

    fn rhs<S: OdeSystem<T>>(sys: &mut S, stats: &mut Statistics, s: &T, y: &[T], dy: &mut [T]) {
        stats.rhs_evaluations += 1;
        sys.eval_inplace(s, y, dy);
    }

    /// RMS norm of `yerr` scaled by atol + rtol·max(|y0|, |ynew|).
    fn error_norm(&mut self, y0: &[T], out: &mut T) {
        let n = y0.len().max(1);
        let Integrator { acc, tmp, scale, ynew, yerr, rtol, atol, .. } = self;
        acc.assign_f64(0.0);
        for i in 0..y0.len() {
            scale.assign(&y0[i]);
            scale.abs_mut();
            tmp.assign(&ynew[i]);
            tmp.abs_mut();
            if *tmp > *scale {
                scale.assign(tmp);
            }
            *scale *= rtol;
            *scale += atol;
            tmp.assign_div(&yerr[i], scale);
            acc.add_mul_mut(tmp, tmp);
        }
        acc.div_u32_mut(u32::try_from(n).unwrap_or(u32::MAX));
        out.assign(acc);
        out.sqrt_mut();
    }

    /// Hairer's initial step guess (HNW I, II.4, routine HINIT).
    fn initial_step<S: OdeSystem<T>>(&mut self, sys: &mut S, st: &mut IntegratorState<T>) -> T {
        if let Some(h0) = self.settings.initial_step {
            return T::from_f64(h0, self.prec);
        }
        let dim = st.y.len();
        let p = self.prec;
        let mut dnf = T::zero(p);
        let mut dny = T::zero(p);
        for i in 0..dim {
            let mut sc = st.y[i].abs();
            sc *= &self.rtol;
            sc += &self.atol;
            let a = self.k[0][i].clone() / &sc;
            let b = st.y[i].clone() / &sc;
            dnf.add_mul_mut(&a, &a);
            dny.add_mul_mut(&b, &b);
        }
        let tiny = T::from_f64(1e-10, p);
        let mut h =
            if dnf <= tiny || dny <= tiny { T::from_f64(1e-6, p) } else { (dny / &dnf).sqrt() * &T::from_f64(0.01, p) };
        if let Some(hm) = self.settings.max_step {
            h = h.min_of(&T::from_f64(hm, p));
        }
        for i in 0..dim {
            self.ytmp[i].assign(&st.y[i]);
            self.ytmp[i].add_mul_mut(&h, &self.k[0][i]);
        }
        let s1 = st.s.clone() + &h;
        let mut k2 = std::mem::take(&mut self.k[1]);
        Self::rhs(sys, &mut st.stats, &s1, &self.ytmp, &mut k2);
        let mut der2 = T::zero(p);
        for i in 0..dim {
            let mut sc = st.y[i].abs();
            sc *= &self.rtol;
            sc += &self.atol;
            let q = (k2[i].clone() - &self.k[0][i]) / &sc;
            der2.add_mul_mut(&q, &q);
        }
        self.k[1] = k2;
        let der2 = der2.sqrt() / &h;
        let der12 = der2.max_of(&dnf.sqrt());
        let order = self.tableau.order as f64;
        let h1 = if der12.to_f64() <= 1e-15 {
            (h.abs() * &T::from_f64(1e-3, p)).max_of(&T::from_f64(1e-6, p))
        } else {
            T::from_f64((0.01 / der12.to_f64()).powf(1.0 / order), p)
        };
        let mut h = (h * &T::from_f64(100.0, p)).min_of(&h1);
        if let Some(hm) = self.settings.max_step {
            h = h.min_of(&T::from_f64(hm, p));
        }
        h
    }

    /// One trial step of size h from (s, y) with k[0] = f(s, y) valid; fills `ynew`, `yerr`, the
    /// stages, and for FSAL methods the last stage f(s + h, ynew).
    fn attempt<S: OdeSystem<T>>(&mut self, sys: &mut S, stats: &mut Statistics, s: &T, y: &[T], h: &T) {
        self.dense_ready = false;
        let stages = self.tableau.stages();
        let dim = y.len();
        for st in 1..stages {
            for i in 0..dim {
                self.acc.assign_f64(0.0);
                for (j, a) in self.tableau.a[st].iter().enumerate() {
                    self.acc.add_mul_mut(a, &self.k[j][i]);
                }
                self.ytmp[i].assign(&y[i]);
                self.ytmp[i].add_mul_mut(h, &self.acc);
            }
            // Stage time s + c·h.
            self.tmp.assign_mul(&self.tableau.c[st], h);
            self.tmp += s;
            let mut kst = std::mem::take(&mut self.k[st]);
            Self::rhs(sys, stats, &self.tmp, &self.ytmp, &mut kst);
            self.k[st] = kst;
        }
        if self.tableau.fsal {
            // The last stage was evaluated at y + h Σ a_last,j k_j = y + h Σ b_j k_j.
            for i in 0..dim {
                self.ynew[i].assign(&self.ytmp[i]);
            }
        } else {
            for i in 0..dim {
                self.acc.assign_f64(0.0);
                for (j, b) in self.tableau.b.iter().enumerate() {
                    self.acc.add_mul_mut(b, &self.k[j][i]);
                }
                self.ynew[i].assign(&y[i]);
                self.ynew[i].add_mul_mut(h, &self.acc);
            }
        }
        for i in 0..dim {
            self.acc.assign_f64(0.0);
            for (j, e) in self.tableau.e.iter().enumerate() {
                self.acc.add_mul_mut(e, &self.k[j][i]);
            }
            self.yerr[i].assign_mul(&self.acc, h);
        }
    }

    /// Components `range` of y(s + θh) on the continuous extension of the last accepted trial
    /// step, into `ydense`. For methods without one, re-steps from (s, y) with θh (full order, all
    /// components; needs `sys`).
    #[allow(clippy::too_many_arguments)]
    fn dense_at<S: OdeSystem<T>>(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s: &T,
        y: &[T],
        h: &T,
        theta: &T,
        range: std::ops::Range<usize>,
    ) {
        let dim = y.len();
        match &self.tableau.dense {
            Dense::DormandPrince { d } => {
                // y(θ) = y0 + θ(Δ + (1−θ)(h k1 − Δ + θ(Δ − h k7 − (h k1 − Δ) + (1−θ) h Σ d_j k_j)));
                // the four coefficient vectors are formed once per step.
                if !self.dense_ready {
                    let last = self.tableau.stages() - 1;
                    let [ydiff, bspl, r4, r5] = &mut self.rcont;
                    for i in 0..dim {
                        // Δ = ynew − y, h k1 − Δ, Δ − h k7 − (h k1 − Δ), h Σ d_j k_j.
                        ydiff[i].assign(&self.ynew[i]);
                        ydiff[i] -= &y[i];
                        bspl[i].assign_mul(&self.k[0][i], h);
                        bspl[i] -= &ydiff[i];
                        self.tmp.assign_mul(&self.k[last][i], h);
                        r4[i].assign(&ydiff[i]);
                        r4[i] -= &self.tmp;
                        r4[i] -= &bspl[i];
                        r5[i].assign_f64(0.0);
                        for (j, dj) in d.iter().enumerate() {
                            r5[i].add_mul_mut(dj, &self.k[j][i]);
                        }
                        r5[i] *= h;
                    }
                    self.dense_ready = true;
                }
                // 1 − θ.
                self.tmp.assign_f64(1.0);
                self.tmp -= theta;
                let th1 = &self.tmp;
                for i in range {
                    // Horner form of CONTD5.
                    let v = &mut self.ydense[i];
                    v.assign_mul(&self.rcont[3][i], th1);
                    *v += &self.rcont[2][i];
                    *v *= theta;
                    *v += &self.rcont[1][i];
                    *v *= th1;
                    *v += &self.rcont[0][i];
                    *v *= theta;
                    *v += &y[i];
                }
            }
            Dense::Restep => {
                // Save the accepted step's stages, step with θh, restore.
                let saved_k = self.k.clone();
                let saved_new = self.ynew.clone();
                let saved_err = self.yerr.clone();
                let hh = h.clone() * theta;
                self.attempt(sys, stats, s, y, &hh);
                self.ydense.clone_from(&self.ynew);
                self.k = saved_k;
                self.ynew = saved_new;
                self.yerr = saved_err;
            }
        }
    }

    /// Integrate from `state` until the horizon, the step limit, or the observer stops.
    /// `state` is updated in place and can be checkpointed at any observer call.
    pub fn integrate<S: OdeSystem<T>, O: Observer<T, S>>(
        &mut self,
        sys: &mut S,
        state: &mut IntegratorState<T>,
        horizon: &Horizon<T>,
        observer: &mut O,
    ) -> Status {
        let p = self.prec;
        let dim = sys.dim();
        assert_eq!(state.y.len(), dim, "state dimension");
        let nsw = sys.num_switches();
        if self.g.len() != nsw {
            self.g = vec![T::zero(p); nsw];
        }
        if !self.settings.events {
            events::untrack_all(sys);
        }
        self.k1_valid = match &state.first_stage {
            Some(k) if k.len() == dim => {
                self.k[0].clone_from_slice(k);
                true
            }
            _ => false,
        };
        let beta = 0.04f64;
        let expo1 = 1.0 / (self.tableau.embedded_order as f64 + 1.0) - 0.75 * beta;
        let start_steps = state.stats.accepted + state.stats.rejected;
        // Scalars of the step control, allocated once per call (none per step).
        let (one, eps16) = (T::one(p), T::epsilon(p) * &T::from_f64(16.0, p));
        let (mut h, mut s0, mut s1, mut hnew, mut err) = (T::zero(p), T::zero(p), T::zero(p), T::zero(p), T::zero(p));
        let (mut t1, mut t2) = (T::zero(p), T::zero(p));

        if observer.on_step(sys, state) == Control::Stop {
            return Status::Stopped;
        }
        loop {
            if let Some(status) = events::limit_reached(&self.settings, horizon, state, start_steps) {
                return status;
            }
            if !self.k1_valid {
                let mut k0 = std::mem::take(&mut self.k[0]);
                Self::rhs(sys, &mut state.stats, &state.s, &state.y, &mut k0);
                self.k[0] = k0;
                self.k1_valid = true;
                if self.k[0].iter().any(|v| !v.is_finite()) {
                    return Status::NonFinite { s: state.s.to_f64() };
                }
                state.remember_first_stage(&self.k[0]);
            }
            if state.h.sign() != Some(std::cmp::Ordering::Greater) {
                state.h = self.initial_step(sys, state);
            }
            let hits_end = match events::step_to_try(&self.settings, horizon, state, &eps16, &mut h, &mut t1, &mut t2) {
                Ok(hits_end) => hits_end,
                Err(status) => return status,
            };

            s0.assign(&state.s);
            let y0 = std::mem::take(&mut state.y);
            self.attempt(sys, &mut state.stats, &s0, &y0, &h);
            self.error_norm(&y0, &mut err);
            let trial = if err.is_finite() && err <= one { Trial::Accepted } else { Trial::Rejected };
            let errf = err.to_f64();
            match trial {
                Trial::Rejected => {
                    state.y = y0;
                    state.stats.rejected += 1;
                    // h_new = h / min(5, err^expo1 / 0.9); a non-finite error shrinks by 5.
                    let ratio = if errf.is_finite() { 1.0 / (errf.powf(expo1) / 0.9).min(5.0) } else { 0.2 };
                    state.h.assign(&h);
                    t1.assign_f64(ratio.min(1.0));
                    state.h *= &t1;
                    state.last_rejected = true;
                    continue;
                }
                Trial::Accepted => {}
            }
            // Step size for the next attempt (PI control).
            let fac11 = errf.powf(expo1);
            let errold = state.err_old.to_f64();
            let mut fac = fac11 / errold.powf(beta);
            fac = (fac / 0.9).clamp(0.1, 5.0);
            hnew.assign(&h);
            t1.assign_f64(fac);
            hnew /= &t1;
            if state.last_rejected && h < hnew {
                hnew.assign(&h);
            }
            let new_err_old = errf.max(1e-4);

            // Switching events (earliest tracked k with mode_k·g_k(y_new) < 0) and the component
            // horizon, located on the continuous extension.
            let mut g = std::mem::take(&mut self.g);
            s1.assign(&s0);
            s1 += &h;
            let (g_end, reaches) = events::end_values(sys, self.settings.events, horizon, &s1, &self.ynew, &mut g);
            let stats = &mut state.stats;
            let end = events::step_end(sys, p, &s0, &y0, &h, g_end, reaches, |sy, theta, range, out| {
                self.dense_at(sy, stats, &s0, &y0, &h, theta, range.clone());
                out[range.clone()].clone_from_slice(&self.ydense[range]);
            });
            self.g = g;
            state.stats.accepted += 1;
            state.err_old.assign_f64(new_err_old);
            state.last_rejected = false;
            match end {
                events::StepEnd::Terminal { s, y } => {
                    state.s = s;
                    state.y = y;
                    state.h.assign(&hnew);
                    let _ = observer.on_step(sys, state);
                    return Status::Reached;
                }
                events::StepEnd::Event { theta, switch, s, y } => {
                    self.k1_valid = false;
                    state.first_stage = None;
                    let (hc, hn) = (h.clone(), hnew.clone());
                    events::record_event(sys, state, p, self.settings.chatter_limit, theta, switch, s, y, hc, hn);
                }
                events::StepEnd::Full => {
                    match (&horizon.s_end, hits_end) {
                        (Some(se), true) => state.s.assign(se),
                        _ => state.s.assign(&s1),
                    }
                    std::mem::swap(&mut state.y, &mut self.ynew);
                    self.ynew = y0;
                    state.h.assign(&hnew);
                    if self.tableau.fsal {
                        let last = self.tableau.stages() - 1;
                        self.k.swap(0, last);
                        self.k1_valid = true;
                        state.remember_first_stage(&self.k[0]);
                    } else {
                        self.k1_valid = false;
                        state.first_stage = None;
                    }
                    state.chatter = None;
                }
            }
            if state.y.iter().any(|v| !v.is_finite()) {
                return Status::NonFinite { s: state.s.to_f64() };
            }
            if observer.on_step(sys, state) == Control::Stop {
                return Status::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tableau::dopri5;

    /// y' = y, y(0) = 1.
    struct Exp;
    impl OdeSystem<f64> for Exp {
        fn dim(&self) -> usize {
            1
        }
        fn eval_inplace(&mut self, _s: &f64, y: &[f64], dy: &mut [f64]) {
            dy[0] = y[0];
        }
    }

    /// Dormand–Prince at rtol 1e-10, atol 1e-12 for a one-dimensional f64 system.
    fn scalar_integrator() -> Integrator<f64> {
        Integrator::new(dopri5::<f64>(53), IntegratorSettings { rtol: 1e-10, atol: 1e-12, ..Default::default() }, 1, 53)
            .unwrap()
    }

    #[test]
    fn exponential_to_tolerance() {
        let mut integ = scalar_integrator();
        let mut st = IntegratorState::new(0.0, vec![1.0]);
        let status =
            integ.integrate(&mut Exp, &mut st, &Horizon { s_end: Some(2.0), component_reaches: None }, &mut ());
        assert_eq!(status, Status::Reached);
        assert_eq!(st.s, 2.0);
        assert!((st.y[0] - 2f64.exp()).abs() < 1e-8 * 2f64.exp(), "{}", st.y[0]);
    }

    #[test]
    fn stops_where_component_reaches_target() {
        let mut integ = scalar_integrator();
        let mut st = IntegratorState::new(0.0, vec![1.0]);
        let h = Horizon { s_end: None, component_reaches: Some((0, 10.0)) };
        assert_eq!(integ.integrate(&mut Exp, &mut st, &h, &mut ()), Status::Reached);
        assert!((st.s - 10f64.ln()).abs() < 1e-8, "{}", st.s);
    }

    /// y' = mode (±1) with switch g = y − 1/2 and mode +1 ⇒ slope 1 below, after the flip the
    /// field is −… here: mode +1 means "g > 0 side", y starts at 0 (g < 0, mode −1: slope +1),
    /// crosses at s = 1/2, then slope +2.
    struct Kink {
        mode: i8,
    }
    impl OdeSystem<f64> for Kink {
        fn dim(&self) -> usize {
            1
        }
        fn eval_inplace(&mut self, _s: &f64, y: &[f64], dy: &mut [f64]) {
            let m = if self.mode == 0 {
                if y[0] > 0.5 {
                    1
                } else {
                    -1
                }
            } else {
                self.mode
            };
            dy[0] = if m > 0 { 2.0 } else { 1.0 };
        }
        fn num_switches(&self) -> usize {
            1
        }
        fn switch_value(&mut self, _k: usize, _s: &f64, y: &[f64]) -> f64 {
            y[0] - 0.5
        }
        fn mode(&self, _k: usize) -> i8 {
            self.mode
        }
        fn flip(&mut self, _k: usize, _s: &f64, _y: &[f64]) {
            self.mode = -self.mode;
        }
        fn untrack(&mut self, _k: usize) {
            self.mode = 0;
        }
    }

    #[test]
    fn kink_event_is_located_exactly() {
        let mut integ = Integrator::new(dopri5::<f64>(53), IntegratorSettings::default(), 1, 53).unwrap();
        let mut st = IntegratorState::new(0.0, vec![0.0]);
        let mut sys = Kink { mode: -1 };
        let status =
            integ.integrate(&mut sys, &mut st, &Horizon { s_end: Some(1.0), component_reaches: None }, &mut ());
        assert_eq!(status, Status::Reached);
        assert_eq!(st.stats.events, 1);
        // y(1) = 0.5 + 2·0.5 = 1.5 exactly for piecewise-linear motion.
        assert!((st.y[0] - 1.5).abs() < 1e-13, "{}", st.y[0]);
    }
}
