//! Adaptive embedded Runge–Kutta steps (Dormand–Prince 5(4), Verner 9(8), any [`Tableau`]), driven
//! by the shared loop of [`crate::driver`] with switching events and checkpointable state.
//!
//! The method is any [`Tableau`] (Dormand–Prince 5(4) by default). Step control is Hairer's PI
//! controller (Hairer–Nørsett–Wanner I, II.4 and the DOPRI5 code: β = 0.04, safety 0.9, step ratio
//! in [0.2, 10]) with the RMS error norm scaled by atol + rtol·max(|y|, |y_new|).
//!
//! **Switching events** ([`crate::ode::Switching`]) are located on the continuous extension of the
//! step (Dormand–Prince) or by re-steps of size θh (tableaus without one); after an event the
//! method restarts (FSAL reset).

use crate::control::{counted_rhs, StepControl, StepCore};
use crate::driver::{self, Attempt, Stepper};
use crate::error::SolverError;
use crate::ode::{Horizon, IntegratorSettings, IntegratorState, Observer, Statistics, Status, Switching};
use crate::scalar::Real;
use crate::tableau::{Dense, Tableau};
use std::ops::Range;

/// Integrator with its workspace, allocated once.
pub struct Integrator<T: Real> {
    tableau: Tableau<T>,
    core: StepCore<T>,
    k: Vec<Vec<T>>,
    ytmp: Vec<T>,
    /// Dense-output coefficient vectors of the last trial step (Dormand–Prince), and whether
    /// they are current.
    rcont: [Vec<T>; 4],
    dense_ready: bool,
    k1_valid: bool,
    /// Scalar scratch of the per-component loops (no allocation per step at MPFR precisions).
    acc: T,
    /// Error norm of the last trial step, and 1.
    err: T,
    one: T,
}

impl<T: Real> Integrator<T> {
    /// New integrator for systems of dimension `dim`, at precision `prec`.
    pub fn new(tableau: Tableau<T>, settings: IntegratorSettings, dim: usize, prec: u32) -> Result<Self, SolverError> {
        settings.validate()?;
        let stages = tableau.stages();
        Ok(Integrator {
            acc: T::zero(prec),
            err: T::zero(prec),
            one: T::one(prec),
            core: StepCore::new(settings, StepControl::pi(tableau.embedded_order), dim, prec),
            tableau,
            k: vec![vec![T::zero(prec); dim]; stages],
            ytmp: vec![T::zero(prec); dim],
            rcont: std::array::from_fn(|_| vec![T::zero(prec); dim]),
            dense_ready: false,
            k1_valid: false,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &IntegratorSettings {
        &self.core.settings
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau<T> {
        &self.tableau
    }

    /// Hairer's initial step guess (HNW I, II.4, routine HINIT).
    fn initial_step<S: Switching<T>>(&mut self, sys: &mut S, st: &mut IntegratorState<T>) -> T {
        if let Some(h0) = self.core.settings.initial_step {
            return T::from_f64(h0, self.core.prec);
        }
        let dim = st.y.len();
        let p = self.core.prec;
        let (rtol, atol) = (self.core.norm.rtol(), self.core.norm.atol());
        let mut dnf = T::zero(p);
        let mut dny = T::zero(p);
        for i in 0..dim {
            let mut sc = st.y[i].abs();
            sc *= rtol;
            sc += atol;
            let a = self.k[0][i].clone() / &sc;
            let b = st.y[i].clone() / &sc;
            dnf.add_mul_mut(&a, &a);
            dny.add_mul_mut(&b, &b);
        }
        let tiny = T::from_f64(1e-10, p);
        let mut h =
            if dnf <= tiny || dny <= tiny { T::from_f64(1e-6, p) } else { (dny / &dnf).sqrt() * &T::from_f64(0.01, p) };
        if let Some(hm) = self.core.settings.max_step {
            h = h.min_of(&T::from_f64(hm, p));
        }
        for i in 0..dim {
            self.ytmp[i].assign(&st.y[i]);
            self.ytmp[i].add_mul_mut(&h, &self.k[0][i]);
        }
        let s1 = st.s.clone() + &h;
        let mut k2 = std::mem::take(&mut self.k[1]);
        counted_rhs(sys, &mut st.stats, &s1, &self.ytmp, &mut k2);
        let mut der2 = T::zero(p);
        for i in 0..dim {
            let mut sc = st.y[i].abs();
            sc *= rtol;
            sc += atol;
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
        if let Some(hm) = self.core.settings.max_step {
            h = h.min_of(&T::from_f64(hm, p));
        }
        h
    }

    /// One trial step of size h from (s, y) with k[0] = f(s, y) valid; fills `ynew`, `yerr`, the
    /// stages, and for FSAL methods the last stage f(s + h, ynew).
    fn attempt<S: Switching<T>>(&mut self, sys: &mut S, stats: &mut Statistics, s: &T, y: &[T], h: &T) {
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
            self.core.tmp.assign_mul(&self.tableau.c[st], h);
            self.core.tmp += s;
            let mut kst = std::mem::take(&mut self.k[st]);
            counted_rhs(sys, stats, &self.core.tmp, &self.ytmp, &mut kst);
            self.k[st] = kst;
        }
        if self.tableau.fsal {
            // The last stage was evaluated at y + h Σ a_last,j k_j = y + h Σ b_j k_j.
            for i in 0..dim {
                self.core.ynew[i].assign(&self.ytmp[i]);
            }
        } else {
            for i in 0..dim {
                self.acc.assign_f64(0.0);
                for (j, b) in self.tableau.b.iter().enumerate() {
                    self.acc.add_mul_mut(b, &self.k[j][i]);
                }
                self.core.ynew[i].assign(&y[i]);
                self.core.ynew[i].add_mul_mut(h, &self.acc);
            }
        }
        for i in 0..dim {
            self.acc.assign_f64(0.0);
            for (j, e) in self.tableau.e.iter().enumerate() {
                self.acc.add_mul_mut(e, &self.k[j][i]);
            }
            self.core.yerr[i].assign_mul(&self.acc, h);
        }
    }

    /// Integrate from `state` until the horizon, the step limit, or the observer stops.
    /// `state` is updated in place and can be checkpointed at any observer call.
    pub fn integrate<S: Switching<T>, O: Observer<T, S>>(
        &mut self,
        sys: &mut S,
        state: &mut IntegratorState<T>,
        horizon: &Horizon<T>,
        observer: &mut O,
    ) -> Status {
        driver::integrate(self, sys, state, horizon, observer)
    }
}

/// The explicit pair as a [`Stepper`]: stage 1 is f(s, y), carried over from the last stage of
/// the previous step for first-same-as-last pairs (and in [`IntegratorState::first_stage`]).
impl<T: Real, S: Switching<T>> Stepper<T, S> for Integrator<T> {
    fn core(&self) -> &StepCore<T> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut StepCore<T> {
        &mut self.core
    }

    fn begin(&mut self, state: &mut IntegratorState<T>) {
        self.k1_valid = match &state.first_stage {
            Some(k) if k.len() == self.k[0].len() => {
                self.k[0].clone_from_slice(k);
                true
            }
            _ => false,
        };
    }

    fn prepare(&mut self, sys: &mut S, state: &mut IntegratorState<T>) -> bool {
        if !self.k1_valid {
            let mut k0 = std::mem::take(&mut self.k[0]);
            counted_rhs(sys, &mut state.stats, &state.s, &state.y, &mut k0);
            self.k[0] = k0;
            self.k1_valid = true;
            if self.k[0].iter().any(|v| !v.is_finite()) {
                return false;
            }
            state.remember_first_stage(&self.k[0]);
        }
        true
    }

    fn initial_step(&mut self, sys: &mut S, state: &mut IntegratorState<T>) -> T {
        Integrator::initial_step(self, sys, state)
    }

    fn try_step(&mut self, sys: &mut S, stats: &mut Statistics, s0: &T, y0: &[T], h: &T) -> Attempt {
        self.attempt(sys, stats, s0, y0, h);
        self.core.error_norm(y0, &mut self.err);
        Attempt { error: self.err.to_f64(), accepted: self.err.is_finite() && self.err <= self.one }
    }

    /// Components `range` of y(s + θh) on the continuous extension of the last accepted trial
    /// step, into the workspace's `ydense`. For methods without one, re-steps from (s, y) with θh (full order, all
    /// components; needs `sys`).
    fn interpolate(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s: &T,
        y: &[T],
        h: &T,
        theta: &T,
        range: Range<usize>,
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
                        ydiff[i].assign(&self.core.ynew[i]);
                        ydiff[i] -= &y[i];
                        bspl[i].assign_mul(&self.k[0][i], h);
                        bspl[i] -= &ydiff[i];
                        self.core.tmp.assign_mul(&self.k[last][i], h);
                        r4[i].assign(&ydiff[i]);
                        r4[i] -= &self.core.tmp;
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
                self.core.tmp.assign_f64(1.0);
                self.core.tmp -= theta;
                let StepCore { tmp: th1, ydense, .. } = &mut self.core;
                for i in range {
                    // Horner form of CONTD5.
                    let v = &mut ydense[i];
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
                let saved_new = self.core.ynew.clone();
                let saved_err = self.core.yerr.clone();
                let hh = h.clone() * theta;
                self.attempt(sys, stats, s, y, &hh);
                self.core.ydense.clone_from(&self.core.ynew);
                self.k = saved_k;
                self.core.ynew = saved_new;
                self.core.yerr = saved_err;
            }
        }
    }

    fn after_full_step(&mut self, state: &mut IntegratorState<T>) {
        if self.tableau.fsal {
            let last = self.tableau.stages() - 1;
            self.k.swap(0, last);
            self.k1_valid = true;
            state.remember_first_stage(&self.k[0]);
        } else {
            self.k1_valid = false;
            state.first_stage = None;
        }
    }

    fn after_cut(&mut self, state: &mut IntegratorState<T>) {
        self.k1_valid = false;
        state.first_stage = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::OdeSystem;
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
    impl Switching<f64> for Exp {}

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

    #[test]
    fn a_component_horizon_stop_leaves_no_stale_first_stage() {
        // Stop where y reaches 10 (inside a step), then go on to s = 3: the continuation must
        // start from f(s, y) at the stop, as a fresh start from the same point does.
        let mut integ = scalar_integrator();
        let mut st = IntegratorState::new(0.0, vec![1.0]);
        let reach = Horizon { s_end: None, component_reaches: Some((0, 10.0)) };
        assert_eq!(integ.integrate(&mut Exp, &mut st, &reach, &mut ()), Status::Reached);
        if let Some(k) = &st.first_stage {
            assert_eq!(k, &st.y, "the cached first stage is f at the stop");
        }
        let mut fresh = IntegratorState { first_stage: None, stats: Statistics::default(), ..st.clone() };
        let end = Horizon { s_end: Some(3.0), component_reaches: None };
        assert_eq!(integ.integrate(&mut Exp, &mut st, &end, &mut ()), Status::Reached);
        assert_eq!(scalar_integrator().integrate(&mut Exp, &mut fresh, &end, &mut ()), Status::Reached);
        assert_eq!(st.y, fresh.y);
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
    }
    impl Switching<f64> for Kink {
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
