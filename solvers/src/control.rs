//! Step-size control, written once for every method of this crate: the scaled RMS error norm,
//! the two step-size laws, and the workspace every [`crate::driver::Stepper`] shares (settings,
//! solution and interpolation buffers, switching scratch). Imports only `ode` and `scalar`.

use crate::ode::{IntegratorSettings, IntegratorState, OdeSystem, Statistics};
use crate::scalar::Real;

/// β of Hairer's PI step control (DOPRI5).
pub const PI_BETA: f64 = 0.04;

/// f(s, y) into `dy`, counted in `stats.rhs_evaluations`.
pub fn counted_rhs<T: Real, S: OdeSystem<T>>(sys: &mut S, stats: &mut Statistics, s: &T, y: &[T], dy: &mut [T]) {
    stats.rhs_evaluations += 1;
    sys.eval_inplace(s, y, dy);
}

/// The RMS norm ‖v‖ = (1/n Σ_i (v_i / (atol + rtol·max(|a_i|, |b_i|)))²)^{1/2}, with its scalar
/// scratch (nothing is allocated per call).
#[derive(Clone, Debug)]
pub struct ErrorNorm<T: Real> {
    rtol: T,
    atol: T,
    acc: T,
    tmp: T,
    scale: T,
}

impl<T: Real> ErrorNorm<T> {
    /// The norm of the tolerances of `settings`, at precision `prec`.
    pub fn new(settings: &IntegratorSettings, prec: u32) -> Self {
        ErrorNorm {
            rtol: T::from_f64(settings.rtol, prec),
            atol: T::from_f64(settings.atol, prec),
            acc: T::zero(prec),
            tmp: T::zero(prec),
            scale: T::zero(prec),
        }
    }

    /// rtol at the working precision.
    pub fn rtol(&self) -> &T {
        &self.rtol
    }

    /// atol at the working precision.
    pub fn atol(&self) -> &T {
        &self.atol
    }

    /// ‖v‖ scaled by atol + rtol·max(|a_i|, |b_i|), into `out`.
    pub fn rms_into(&mut self, v: &[T], a: &[T], b: &[T], out: &mut T) {
        let n = v.len().max(1);
        let ErrorNorm { rtol, atol, acc, tmp, scale } = self;
        acc.assign_f64(0.0);
        for i in 0..v.len() {
            scale.assign(&a[i]);
            scale.abs_mut();
            tmp.assign(&b[i]);
            tmp.abs_mut();
            if *tmp > *scale {
                scale.assign(tmp);
            }
            *scale *= &*rtol;
            *scale += &*atol;
            tmp.assign_div(&v[i], scale);
            acc.add_mul_mut(tmp, tmp);
        }
        acc.div_u32_mut(u32::try_from(n).unwrap_or(u32::MAX));
        out.assign(acc);
        out.sqrt_mut();
    }
}

/// How the next step size follows from the error norm `err` of an attempt (err ≤ 1 accepts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepControl {
    /// Hairer's PI control (Hairer–Nørsett–Wanner I, II.4, code DOPRI5; safety 0.9, β =
    /// [`PI_BETA`], α = 1/(q+1) − 0.75β for embedded order q): accepted,
    /// h_new = h / clamp(err^α / err_old^β / 0.9, 1/10, 5); rejected,
    /// h ← h·min(1, 1/min(err^α/0.9, 5)).
    Pi {
        /// α = 1/(q+1) − 0.75β.
        alpha: f64,
    },
    /// SEULEX's control for order k (Hairer–Wanner II, §IV.9): with f = 0.94 (0.65/err)^{1/k},
    /// accepted, h_new = h·clamp(f, 0.1, 4); rejected, h ← h·clamp(f, 0.1, 0.9).
    Extrapolation {
        /// The order k (number of columns).
        order: usize,
    },
}

impl StepControl {
    /// PI control for an embedded pair of order q.
    pub fn pi(embedded_order: u32) -> Self {
        StepControl::Pi { alpha: 1.0 / (embedded_order as f64 + 1.0) - 0.75 * PI_BETA }
    }

    /// After a rejection with error norm `error`: the factor (≤ 1) applied to h; a non-finite
    /// error shrinks by 5.
    pub fn reject_factor(&self, error: f64) -> f64 {
        if !error.is_finite() {
            return 0.2;
        }
        match *self {
            StepControl::Pi { alpha } => (1.0 / (error.powf(alpha) / 0.9).min(5.0)).min(1.0),
            StepControl::Extrapolation { order } => extrapolation_factor(order, error).clamp(0.1, 0.9),
        }
    }

    /// After an acceptance of step h with error norm `error`: the next step size into `hnew`,
    /// never above h right after a rejection (`state` holds err_old and whether the previous
    /// attempt was rejected). `tmp` is scratch.
    pub fn accepted_size<T: Real>(&self, h: &T, error: f64, state: &IntegratorState<T>, hnew: &mut T, tmp: &mut T) {
        hnew.assign(h);
        match *self {
            StepControl::Pi { alpha } => {
                let fac = (error.powf(alpha) / state.err_old.to_f64().powf(PI_BETA) / 0.9).clamp(0.1, 5.0);
                tmp.assign_f64(fac);
                *hnew /= &*tmp;
            }
            StepControl::Extrapolation { order } => {
                tmp.assign_f64(extrapolation_factor(order, error).clamp(0.1, 4.0));
                *hnew *= &*tmp;
            }
        }
        if state.last_rejected && *h < *hnew {
            hnew.assign(h);
        }
    }
}

/// 0.94·(0.65/err)^{1/k}.
fn extrapolation_factor(order: usize, error: f64) -> f64 {
    0.94 * (0.65 / error.max(1e-300)).powf(1.0 / order as f64)
}

/// What every method keeps besides its stages: settings, precision, control law and error norm,
/// the proposed solution y1 and error estimate of the last trial step, the interpolated state,
/// the switching values at a step's end, and scalar scratch.
#[derive(Clone, Debug)]
pub struct StepCore<T: Real> {
    /// The settings (tolerances, events, limits).
    pub settings: IntegratorSettings,
    /// The working precision in bits.
    pub prec: u32,
    /// The step-size law.
    pub control: StepControl,
    /// The error norm of the tolerances.
    pub norm: ErrorNorm<T>,
    /// y1 of the last trial step.
    pub ynew: Vec<T>,
    /// The error estimate of the last trial step.
    pub yerr: Vec<T>,
    /// The state inside the step (continuous extension or re-step).
    pub ydense: Vec<T>,
    /// The switching values at the end of a step.
    pub switches: Vec<T>,
    /// Scalar scratch.
    pub tmp: T,
}

impl<T: Real> StepCore<T> {
    /// The workspace for systems of dimension `dim` at precision `prec`.
    pub fn new(settings: IntegratorSettings, control: StepControl, dim: usize, prec: u32) -> Self {
        StepCore {
            norm: ErrorNorm::new(&settings, prec),
            settings,
            prec,
            control,
            ynew: vec![T::zero(prec); dim],
            yerr: vec![T::zero(prec); dim],
            ydense: vec![T::zero(prec); dim],
            switches: Vec::new(),
            tmp: T::zero(prec),
        }
    }

    /// ‖yerr‖ scaled by atol + rtol·max(|y0|, |ynew|), into `out`.
    pub fn error_norm(&mut self, y0: &[T], out: &mut T) {
        let StepCore { norm, ynew, yerr, .. } = self;
        norm.rms_into(yerr, y0, ynew, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_scales_by_the_larger_magnitude() {
        let s = IntegratorSettings { rtol: 0.5, atol: 1.0, ..Default::default() };
        let mut norm = ErrorNorm::<f64>::new(&s, 53);
        let mut out = 0.0;
        // Scales 1 + 0.5·2 = 2 and 1 + 0.5·4 = 3: ((1/2)² + (3/3)²)/2 = 5/8.
        norm.rms_into(&[1.0, 3.0], &[2.0, -4.0], &[-1.0, 0.0], &mut out);
        assert_eq!(out, (5.0f64 / 8.0).sqrt());
    }

    #[test]
    fn no_growth_after_a_rejection() {
        let mut st = IntegratorState::new(0.0, vec![0.0]);
        st.last_rejected = true;
        for control in [StepControl::pi(4), StepControl::Extrapolation { order: 5 }] {
            let (mut hnew, mut tmp) = (0.0, 0.0);
            control.accepted_size(&1.0, 1e-6, &st, &mut hnew, &mut tmp);
            assert_eq!(hnew, 1.0, "{control:?}");
            assert_eq!(control.reject_factor(f64::NAN), 0.2);
            assert!(control.reject_factor(4.0) < 1.0);
        }
    }
}
