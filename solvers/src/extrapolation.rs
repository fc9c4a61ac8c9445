//! Linearly implicit Euler extrapolation (SEULEX) for stiff systems, with the same switching
//! events, horizons, observer and checkpointable state as [`crate::rk`].
//!
//! **Why.** An explicit Runge–Kutta step is stability-bound by the fastest negative eigenvalue of
//! ∂f/∂y even after the corresponding transients have decayed; a flow whose solution becomes a
//! straight line but keeps a fast relaxation (the margins of a gradient flow in normalized time)
//! then needs a fixed small step forever. An L-stable linearly implicit method lets the step grow
//! with the smoothness of the solution.
//!
//! **Method** (Deuflhard 1985, "Recent progress in extrapolation methods for ordinary differential
//! equations", SIAM Review 27; Hairer–Wanner, *Solving ODEs II*, §IV.9, code SEULEX). One macro
//! step of size H from (s0, y0) with J = ∂f/∂y(s0, y0) fixed for the whole step: for the harmonic
//! sequence n_j = j (j = 1, …, k) take n_j linearly implicit Euler steps of size h_j = H/n_j,
//!
//!   y_{i+1} = y_i + (I − h_j J)⁻¹ h_j f(s0 + i h_j, y_i),   T_{j,1} = y_{n_j},
//!
//! and extrapolate to h → 0 with the Aitken–Neville scheme
//! T_{j,l+1} = T_{j,l} + (T_{j,l} − T_{j−1,l}) / (n_j/n_{j−l} − 1). T_{k,k} (order k) is propagated;
//! ‖T_{k,k} − T_{k,k−1}‖ (the RMS norm of [`crate::rk`], scaled by atol + rtol·max(|y0|, |y1|))
//! estimates the error of the order-(k−1) value, so the step control is
//! H_new = H · clamp(0.94 (0.65/err)^{1/k}, 0.1, 4) (never growing right after a rejection).
//! The number of columns k is fixed by the tolerance ([`columns_for_tolerance`]): high order pays
//! at tight tolerances and high precision. A macro step costs 1 + k(k−1)/2 right-hand sides and
//! k(k+1)/2 linear solves.
//!
//! **Any J gives the order.** The linearly implicit Euler step with a constant matrix J is a
//! one-step method y1 = y0 + hΦ(y0, h) with Φ smooth in h, so its global error has an asymptotic
//! expansion in powers of h whatever J is (Hairer–Wanner II, §IV.9, "W-method" property of the
//! extrapolated linearly implicit Euler method); an approximate Jacobian costs only stability and
//! efficiency. Systems that provide no Jacobian ([`ShiftedSolve::solve_shifted`] returns false) are
//! integrated with J = 0, i.e. by explicit Euler extrapolation.
//!
//! SEULEX's increment-growth stability check is not used: on problems whose first increment
//! vanishes (a start on the smooth solution) it rejects every step; the error estimate alone
//! controls the step.
//!
//! **Events.** As in [`crate::rk`], the right-hand side follows the system's modes. When an accepted
//! step ends with mode_k·g_k < 0, the root is located in θ ∈ (0, 1] by the Illinois method, each
//! evaluation being a full macro step of size θH from the same start (deterministic, full order;
//! there is no continuous extension); the step is cut there and [`Switching::flip`] is called.
//! Component horizons are located the same way. Every macro step starts from the state alone
//! (no stage is carried over), so [`IntegratorState`] describes the integration completely and a
//! resumed run is bit-identical to an uninterrupted one.

use crate::control::{counted_rhs, StepControl, StepCore};
use crate::driver::{self, Attempt, Stepper};
use crate::error::SolverError;
use crate::ode::{Horizon, IntegratorSettings, IntegratorState, Observer, ShiftedSolve, Statistics, Status, Switching};
use crate::scalar::Real;
use std::ops::Range;

/// Number of extrapolation columns k used at relative tolerance `rtol`:
/// clamp(⌈−log10(rtol)/2⌉ + 2, 3, 12) (k = 7 at 1e-10, 12 at 1e-20 and below).
pub fn columns_for_tolerance(rtol: f64) -> usize {
    let k = (-rtol.log10() / 2.0).ceil() + 2.0;
    if k.is_finite() {
        k.clamp(3.0, 12.0) as usize
    } else {
        3
    }
}

/// How one macro step ended.
enum Outcome {
    /// T_{k,k} in `ynew`, T_{k,k} − T_{k,k−1} in `yerr`.
    Done,
    /// A non-finite value appeared.
    NonFinite,
}

/// The linearly implicit Euler extrapolation integrator with its workspace, allocated once.
pub struct Extrapolation<T: Real> {
    core: StepCore<T>,
    columns: usize,
    f0: Vec<T>,
    fy: Vec<T>,
    delta: Vec<T>,
    prev: Vec<Vec<T>>,
    cur: Vec<Vec<T>>,
    solves: u64,
    /// Whether `f0` = f(s, y) at the current state.
    f0_valid: bool,
}

impl<T: Real> Extrapolation<T> {
    /// New integrator for systems of dimension `dim` at precision `prec`, with
    /// [`columns_for_tolerance`]`(settings.rtol)` columns.
    pub fn new(settings: IntegratorSettings, dim: usize, prec: u32) -> Result<Self, SolverError> {
        let k = columns_for_tolerance(settings.rtol);
        Self::with_columns(settings, k, dim, prec)
    }

    /// New integrator with a given number of columns k ≥ 2 (order k).
    pub fn with_columns(
        settings: IntegratorSettings,
        columns: usize,
        dim: usize,
        prec: u32,
    ) -> Result<Self, SolverError> {
        settings.validate()?;
        if columns < 2 {
            return Err(SolverError::Setting { name: "columns", reason: format!("must be at least 2, got {columns}") });
        }
        let z = || vec![T::zero(prec); dim];
        Ok(Extrapolation {
            core: StepCore::new(settings, StepControl::Extrapolation { order: columns }, dim, prec),
            columns,
            f0: z(),
            fy: z(),
            delta: z(),
            prev: (0..columns).map(|_| z()).collect(),
            cur: (0..columns).map(|_| z()).collect(),
            solves: 0,
            f0_valid: false,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &IntegratorSettings {
        &self.core.settings
    }

    /// Number of extrapolation columns k (the order of the propagated value).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Linear solves (I − cJ)x = r performed by this integrator object since it was created
    /// (not part of the checkpointed [`Statistics`]).
    pub fn linear_solves(&self) -> u64 {
        self.solves
    }

    /// One macro step of size h from (s0, y0) with `f0` = f(s0, y0) valid: `ynew` = T_{k,k},
    /// `yerr` = T_{k,k} − T_{k,k−1}.
    fn extrapolate<S: ShiftedSolve<T>>(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s0: &T,
        y0: &[T],
        h: &T,
    ) -> Outcome {
        let p = self.core.prec;
        let dim = y0.len();
        let k = self.columns;
        let mut prev = std::mem::take(&mut self.prev);
        let mut cur = std::mem::take(&mut self.cur);
        let mut outcome = Outcome::Done;
        'rows: for j in 0..k {
            let substeps = j + 1;
            let hj = h.clone() / &T::from_f64(substeps as f64, p);
            for (c, y) in cur[0].iter_mut().zip(y0) {
                c.assign(y);
            }
            for i in 0..substeps {
                if i == 0 {
                    for (d, f) in self.delta.iter_mut().zip(&self.f0) {
                        d.assign(f);
                        *d *= &hj;
                    }
                } else {
                    let si = s0.clone() + &(hj.clone() * &T::from_f64(i as f64, p));
                    counted_rhs(sys, stats, &si, &cur[0], &mut self.fy);
                    for (d, f) in self.delta.iter_mut().zip(&self.fy) {
                        d.assign(f);
                        *d *= &hj;
                    }
                }
                // Δ ← (I − h_j J)⁻¹ Δ (unchanged when the system has no Jacobian: J = 0).
                self.solves += 1;
                sys.solve_shifted(s0, y0, &hj, &mut self.delta);
                for (c, d) in cur[0].iter_mut().zip(&self.delta) {
                    *c += d;
                }
            }
            if cur[0].iter().any(|v| !v.is_finite()) {
                outcome = Outcome::NonFinite;
                break 'rows;
            }
            // Aitken–Neville: T_{j,l} = T_{j,l−1} + (T_{j,l−1} − T_{j−1,l−1})·(n_{j−l}/(n_j − n_{j−l}))
            // with n_j = j + 1 (0-based j, l), i.e. the factor (j − l + 1)/l.
            for l in 1..=j {
                let fac = T::ratio((j - l + 1) as i64, l as i64, p);
                let (lo, hi) = cur.split_at_mut(l);
                let (src, dst) = (&lo[l - 1], &mut hi[0]);
                for i in 0..dim {
                    let diff = src[i].clone() - &prev[l - 1][i];
                    dst[i].assign(&src[i]);
                    dst[i].add_mul_mut(&fac, &diff);
                }
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        if matches!(outcome, Outcome::Done) {
            // `prev` holds row k: T_{k,1..k}.
            let rows = prev[k - 1].iter().zip(&prev[k - 2]);
            for ((yn, ye), (top, below)) in self.core.ynew.iter_mut().zip(self.core.yerr.iter_mut()).zip(rows) {
                yn.assign(top);
                *ye = top.clone() - below;
            }
        }
        self.prev = prev;
        self.cur = cur;
        outcome
    }

    /// Initial step: `settings.initial_step`, else 0.01·‖y0‖/‖f0‖ in the scaled norm (1e-6 when
    /// either is tiny), capped by `max_step`.
    fn initial_step_guess(&mut self, y0: &[T]) -> T {
        let p = self.core.prec;
        if let Some(h0) = self.core.settings.initial_step {
            return T::from_f64(h0, p);
        }
        let (mut dnf, mut dny) = (T::zero(p), T::zero(p));
        self.core.norm.rms_into(&self.f0, y0, y0, &mut dnf);
        self.core.norm.rms_into(y0, y0, y0, &mut dny);
        let tiny = T::from_f64(1e-5, p);
        let mut h = if dnf <= tiny || dny <= tiny { T::from_f64(1e-6, p) } else { dny / &dnf * &T::from_f64(0.01, p) };
        if let Some(hm) = self.core.settings.max_step {
            h = h.min_of(&T::from_f64(hm, p));
        }
        h
    }

    /// Integrate from `state` until the horizon, the step limit, or the observer stops.
    /// `state` is updated in place and can be checkpointed at any observer call.
    pub fn integrate<S: Switching<T> + ShiftedSolve<T>, O: Observer<T, S>>(
        &mut self,
        sys: &mut S,
        state: &mut IntegratorState<T>,
        horizon: &Horizon<T>,
        observer: &mut O,
    ) -> Status {
        driver::integrate(self, sys, state, horizon, observer)
    }
}

/// One macro step as a [`Stepper`]: f(s0, y0) is evaluated afresh at every step (nothing is
/// carried over, so [`IntegratorState::first_stage`] stays empty), and the state inside a step is
/// a re-step of size θH.
impl<T: Real, S: Switching<T> + ShiftedSolve<T>> Stepper<T, S> for Extrapolation<T> {
    fn core(&self) -> &StepCore<T> {
        &self.core
    }

    fn core_mut(&mut self) -> &mut StepCore<T> {
        &mut self.core
    }

    fn begin(&mut self, state: &mut IntegratorState<T>) {
        // The explicit pairs' first-stage cache does not apply to this method.
        state.first_stage = None;
        self.f0_valid = false;
    }

    fn prepare(&mut self, sys: &mut S, state: &mut IntegratorState<T>) -> bool {
        if !self.f0_valid {
            let mut f0 = std::mem::take(&mut self.f0);
            counted_rhs(sys, &mut state.stats, &state.s, &state.y, &mut f0);
            self.f0 = f0;
            self.f0_valid = true;
            if self.f0.iter().any(|v| !v.is_finite()) {
                return false;
            }
        }
        true
    }

    fn initial_step(&mut self, _sys: &mut S, state: &mut IntegratorState<T>) -> T {
        self.initial_step_guess(&state.y)
    }

    fn try_step(&mut self, sys: &mut S, stats: &mut Statistics, s0: &T, y0: &[T], h: &T) -> Attempt {
        let mut err = T::zero(self.core.prec);
        match self.extrapolate(sys, stats, s0, y0, h) {
            Outcome::Done => self.core.error_norm(y0, &mut err),
            Outcome::NonFinite => err.assign_f64(f64::INFINITY),
        }
        let error = err.to_f64();
        Attempt { error, accepted: error.is_finite() && error <= 1.0 }
    }

    /// y at s0 + θh by a full macro step of size θh from (s0, y0) (all components; keeps `ynew`,
    /// `yerr`). θ = 0 gives y0.
    fn interpolate(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s0: &T,
        y0: &[T],
        h: &T,
        theta: &T,
        _range: Range<usize>,
    ) {
        if *theta <= T::zero(self.core.prec) {
            self.core.ydense.clone_from_slice(y0);
            return;
        }
        let saved_new = std::mem::take(&mut self.core.ynew);
        let saved_err = std::mem::take(&mut self.core.yerr);
        self.core.ynew = self.core.ydense.clone();
        self.core.yerr = self.core.ydense.clone();
        let hh = h.clone() * theta;
        let _ = self.extrapolate(sys, stats, s0, y0, &hh);
        std::mem::swap(&mut self.core.ydense, &mut self.core.ynew);
        self.core.ynew = saved_new;
        self.core.yerr = saved_err;
    }

    fn after_full_step(&mut self, _state: &mut IntegratorState<T>) {
        self.f0_valid = false;
    }

    fn after_cut(&mut self, _state: &mut IntegratorState<T>) {
        self.f0_valid = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::OdeSystem;

    /// Prothero–Robinson, autonomized with σ = s as the second component: y' = λ(y − cos σ) −
    /// sin σ, σ' = 1, y(0) = 1, exact y = cos s for any λ; λ = −1e6 is far beyond explicit
    /// stability for steps of order 1. J = [[λ, −λ(−sin σ) − cos σ], [0, 0]].
    struct ProtheroRobinson {
        lambda: f64,
    }
    impl OdeSystem<f64> for ProtheroRobinson {
        fn dim(&self) -> usize {
            2
        }
        fn eval_inplace(&mut self, _s: &f64, y: &[f64], dy: &mut [f64]) {
            dy[0] = self.lambda * (y[0] - y[1].cos()) - y[1].sin();
            dy[1] = 1.0;
        }
    }
    impl ShiftedSolve<f64> for ProtheroRobinson {
        fn solve_shifted(&mut self, _s: &f64, y: &[f64], c: &f64, rhs: &mut [f64]) -> bool {
            let j12 = self.lambda * y[1].sin() - y[1].cos();
            rhs[0] = (rhs[0] + c * j12 * rhs[1]) / (1.0 - c * self.lambda);
            true
        }
    }
    impl Switching<f64> for ProtheroRobinson {}

    #[test]
    fn stiff_linear_problem_takes_large_steps() {
        let settings = IntegratorSettings { rtol: 1e-8, atol: 1e-10, ..Default::default() };
        let mut integ = Extrapolation::new(settings, 2, 53).unwrap();
        let mut st = IntegratorState::new(0.0, vec![1.0, 0.0]);
        let mut sys = ProtheroRobinson { lambda: -1e6 };
        let status =
            integ.integrate(&mut sys, &mut st, &Horizon { s_end: Some(10.0), component_reaches: None }, &mut ());
        assert_eq!(status, Status::Reached);
        assert_eq!(st.s, 10.0);
        assert!((st.y[0] - 10f64.cos()).abs() < 1e-7, "{}", st.y[0]);
        // Explicit methods would need ≳ 10·1e6/3 steps.
        assert!(st.stats.accepted < 200, "{:?}", st.stats);
    }

    /// y' = y without a Jacobian: explicit Euler extrapolation, order k.
    struct Exp;
    impl OdeSystem<f64> for Exp {
        fn dim(&self) -> usize {
            1
        }
        fn eval_inplace(&mut self, _s: &f64, y: &[f64], dy: &mut [f64]) {
            dy[0] = y[0];
        }
    }
    impl ShiftedSolve<f64> for Exp {}

    #[test]
    fn order_of_one_step_is_columns() {
        // Local error of T_kk on y' = y behaves like C h^{k+1}: halving h divides it by 2^{k+1}.
        for k in [3usize, 4, 5] {
            let mut integ = Extrapolation::<f64>::with_columns(IntegratorSettings::default(), k, 1, 53).unwrap();
            let mut stats = Statistics::default();
            let mut errs = Vec::new();
            for h in [0.2f64, 0.1] {
                integ.f0 = vec![1.0];
                let _ = integ.extrapolate(&mut Exp, &mut stats, &0.0, &[1.0], &h);
                errs.push((integ.core.ynew[0] - h.exp()).abs());
            }
            let observed = (errs[0] / errs[1]).log2();
            assert!((observed - (k as f64 + 1.0)).abs() < 0.35, "k = {k}: observed order {observed}, errs {errs:?}");
        }
    }

    #[test]
    fn columns_from_tolerance() {
        assert_eq!(columns_for_tolerance(1e-10), 7);
        assert_eq!(columns_for_tolerance(1e-3), 4);
        assert_eq!(columns_for_tolerance(1e-2), 3);
        assert_eq!(columns_for_tolerance(1e-30), 12);
    }

    /// Kink: y' = 1 below y = 1/2, 2 above (mode-driven).
    struct Kink {
        mode: i8,
    }
    impl OdeSystem<f64> for Kink {
        fn dim(&self) -> usize {
            1
        }
        fn eval_inplace(&mut self, _s: &f64, _y: &[f64], dy: &mut [f64]) {
            dy[0] = if self.mode > 0 { 2.0 } else { 1.0 };
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
    }
    impl ShiftedSolve<f64> for Kink {
        fn solve_shifted(&mut self, _s: &f64, _y: &[f64], _c: &f64, _rhs: &mut [f64]) -> bool {
            true // J = 0
        }
    }

    #[test]
    fn kink_event_is_located() {
        let mut integ = Extrapolation::new(IntegratorSettings::default(), 1, 53).unwrap();
        let mut st = IntegratorState::new(0.0, vec![0.0]);
        let mut sys = Kink { mode: -1 };
        let status =
            integ.integrate(&mut sys, &mut st, &Horizon { s_end: Some(1.0), component_reaches: None }, &mut ());
        assert_eq!(status, Status::Reached);
        assert_eq!(st.stats.events, 1);
        assert!((st.y[0] - 1.5).abs() < 1e-13, "{}", st.y[0]);
    }
}
