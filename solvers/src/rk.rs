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

use crate::driver::{self, Attempt, Stepper};
use crate::error::SolverError;
use crate::ode::{Horizon, IntegratorSettings, IntegratorState, Observer, Statistics, Status, Switching};
use crate::scalar::Real;
use crate::tableau::{Dense, Tableau};
use std::ops::Range;

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
    /// Error norm of the last trial step, and 1.
    err: T,
    one: T,
}

/// β of Hairer's PI step control (DOPRI5).
const BETA: f64 = 0.04;

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
            err: T::zero(prec),
            one: T::one(prec),
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

    fn rhs<S: Switching<T>>(sys: &mut S, stats: &mut Statistics, s: &T, y: &[T], dy: &mut [T]) {
        stats.rhs_evaluations += 1;
        sys.eval_inplace(s, y, dy);
    }

    /// Exponent 1/(q+1) − 0.75β of the PI controller, q the embedded order.
    fn expo1(&self) -> f64 {
        1.0 / (self.tableau.embedded_order as f64 + 1.0) - 0.75 * BETA
    }

    /// RMS norm of `yerr` scaled by atol + rtol·max(|y0|, |ynew|), into `err`.
    fn error_norm(&mut self, y0: &[T]) {
        let n = y0.len().max(1);
        let Integrator { acc, tmp, scale, ynew, yerr, rtol, atol, err: out, .. } = self;
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
    fn initial_step<S: Switching<T>>(&mut self, sys: &mut S, st: &mut IntegratorState<T>) -> T {
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
    fn dense_at<S: Switching<T>>(
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
    fn settings(&self) -> &IntegratorSettings {
        &self.settings
    }

    fn precision(&self) -> u32 {
        self.prec
    }

    fn switch_scratch(&mut self) -> &mut Vec<T> {
        &mut self.g
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
            Self::rhs(sys, &mut state.stats, &state.s, &state.y, &mut k0);
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
        self.error_norm(y0);
        Attempt { error: self.err.to_f64(), accepted: self.err.is_finite() && self.err <= self.one }
    }

    /// h ← h·min(1, 0.9/err^{1/(q+1) − 0.75β}) (q the embedded order), at most 1/5 less; a
    /// non-finite error shrinks by 5.
    fn reject_factor(&self, error: f64) -> f64 {
        let ratio = if error.is_finite() { 1.0 / (error.powf(self.expo1()) / 0.9).min(5.0) } else { 0.2 };
        ratio.min(1.0)
    }

    /// PI control: h_new = h / clamp(err^{1/(q+1) − 0.75β} / err_old^β / 0.9, 1/10, 5), not
    /// growing right after a rejection.
    fn accepted_size(&mut self, h: &T, error: f64, state: &IntegratorState<T>, hnew: &mut T) {
        let fac11 = error.powf(self.expo1());
        let errold = state.err_old.to_f64();
        let mut fac = fac11 / errold.powf(BETA);
        fac = (fac / 0.9).clamp(0.1, 5.0);
        hnew.assign(h);
        self.tmp.assign_f64(fac);
        *hnew /= &self.tmp;
        if state.last_rejected && *h < *hnew {
            hnew.assign(h);
        }
    }

    fn solution(&self) -> &[T] {
        &self.ynew
    }

    fn exchange_solution(&mut self, spare: Vec<T>) -> Vec<T> {
        std::mem::replace(&mut self.ynew, spare)
    }

    fn state_at(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s0: &T,
        y0: &[T],
        h: &T,
        theta: &T,
        range: Range<usize>,
        out: &mut [T],
    ) {
        self.dense_at(sys, stats, s0, y0, h, theta, range.clone());
        out[range.clone()].clone_from_slice(&self.ydense[range]);
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
