//! The accept/reject, event and observer loop, written once for every method of this crate.
//!
//! A method implements [`Stepper`] over the workspace [`StepCore`] (settings, step-size law and
//! error norm of [`crate::control`], solution buffers): try a step of size h from (s0, y0) and report its error norm,
//! propose the next step size after an acceptance or a rejection, give the state at s0 + θh for
//! event location, keep (or drop) its first stage across steps, and choose an initial step. The
//! loop in [`integrate`] owns everything else, in this order per step:
//!
//! 1. stop at the horizon s_end or after `max_steps` attempts;
//! 2. make sure f(s, y) is known ([`Stepper::prepare`]); choose an initial step if h ≤ 0;
//! 3. clip h to `max_step` and land exactly on s_end when 1.01·h reaches it;
//! 4. try the step; on rejection shrink h and repeat;
//! 5. on acceptance find where the step ends (switching events and component horizons, module
//!    `events`) and move the state there: to s0 + h (the method keeps its first-same-as-last
//!    stage), to an event (flip the switch, restart the method), or to a component horizon
//!    (drop the first stage, return);
//! 6. call the observer.
//!
//! The same structure as diffsol's per-method `step()` under shared solve loops
//! (`ode_solver/method.rs`), with the root finding on the method's interpolant
//! (`nonlinear_solver/root.rs`).

use crate::control::StepCore;
use crate::events;
use crate::ode::{Control, Horizon, IntegratorSettings, IntegratorState, Observer, Statistics, Status, Switching};
use crate::scalar::Real;
use std::ops::Range;

/// What trying one step produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attempt {
    /// The error norm of the step (scaled RMS norm; ∞ when a value was not finite), as f64.
    pub error: f64,
    /// Whether the method accepts the step (error ≤ 1 by the method's own test).
    pub accepted: bool,
}

/// One step of an adaptive one-step method, as the shared loop [`integrate`] drives it.
///
/// A method owns its workspace: stages, the proposed solution y1 of the last trial step, and
/// what it needs to evaluate the state inside that step. `S` is the system type the method can
/// integrate (implicit methods also need [`crate::ode::ShiftedSolve`]).
pub trait Stepper<T: Real, S: Switching<T>> {
    /// The shared workspace: settings, control law, solution and interpolation buffers.
    fn core(&self) -> &StepCore<T>;
    /// The shared workspace, mutable.
    fn core_mut(&mut self) -> &mut StepCore<T>;
    /// Start of an `integrate` call: take over the first stage f(s, y) cached in `state` (explicit
    /// first-same-as-last pairs) or drop it (methods that do not carry one).
    fn begin(&mut self, state: &mut IntegratorState<T>);
    /// Make f(s, y) at the current state known, evaluating it if the method does not hold it yet.
    /// Returns false when it is not finite.
    fn prepare(&mut self, sys: &mut S, state: &mut IntegratorState<T>) -> bool;
    /// The first step size, with f(s, y) known.
    fn initial_step(&mut self, sys: &mut S, state: &mut IntegratorState<T>) -> T;
    /// Try one step of size h from (s0, y0) with f(s0, y0) known: y1 into the method's solution
    /// buffer ([`Stepper::solution`]), and the error norm.
    fn try_step(&mut self, sys: &mut S, stats: &mut Statistics, s0: &T, y0: &[T], h: &T) -> Attempt;
    /// Components `range` of the state at s0 + θh, θ ∈ [0, 1], inside the accepted step h from
    /// (s0, y0), into the workspace's `ydense[range]` (continuous extension or a re-step; may count
    /// evaluations).
    #[allow(clippy::too_many_arguments)]
    fn interpolate(
        &mut self,
        sys: &mut S,
        stats: &mut Statistics,
        s0: &T,
        y0: &[T],
        h: &T,
        theta: &T,
        range: Range<usize>,
    );
    /// The state moved to the end of the trial step: keep what the next step can reuse
    /// (first-same-as-last stage), else forget f(s, y).
    fn after_full_step(&mut self, state: &mut IntegratorState<T>);
    /// The state moved to a point inside the step (an event, a component horizon): f(s, y) must
    /// be evaluated again.
    fn after_cut(&mut self, state: &mut IntegratorState<T>);

    /// The settings (tolerances, events, limits).
    fn settings(&self) -> &IntegratorSettings {
        &self.core().settings
    }
    /// The working precision in bits.
    fn precision(&self) -> u32 {
        self.core().prec
    }
    /// Scratch for the n switching values at the end of a step (kept across calls so that a
    /// second `integrate` call allocates nothing).
    fn switch_scratch(&mut self) -> &mut Vec<T> {
        &mut self.core_mut().switches
    }
    /// After a rejection with error norm `error`: the factor (≤ 1) applied to h.
    fn reject_factor(&self, error: f64) -> f64 {
        self.core().control.reject_factor(error)
    }
    /// After an acceptance of step h with error norm `error`: the next step size into `hnew`
    /// (`state` holds the controller memory and whether the previous attempt was rejected).
    fn accepted_size(&mut self, h: &T, error: f64, state: &IntegratorState<T>, hnew: &mut T) {
        let core = self.core_mut();
        core.control.accepted_size(h, error, state, hnew, &mut core.tmp);
    }
    /// y1 of the last trial step.
    fn solution(&self) -> &[T] {
        &self.core().ynew
    }
    /// Swap the solution buffer: return y1 and keep `spare` (same length) as the new buffer.
    fn exchange_solution(&mut self, spare: Vec<T>) -> Vec<T> {
        std::mem::replace(&mut self.core_mut().ynew, spare)
    }
    /// Components `range` of the state at s0 + θh ([`Stepper::interpolate`]) into `out[range]`.
    #[allow(clippy::too_many_arguments)]
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
        self.interpolate(sys, stats, s0, y0, h, theta, range.clone());
        out[range.clone()].clone_from_slice(&self.core().ydense[range]);
    }
}

/// Integrate `sys` with `method` from `state` until the horizon, the step limit, or the observer
/// stops. `state` is updated in place and can be checkpointed at any observer call.
pub fn integrate<T, S, M, O>(
    method: &mut M,
    sys: &mut S,
    state: &mut IntegratorState<T>,
    horizon: &Horizon<T>,
    observer: &mut O,
) -> Status
where
    T: Real,
    S: Switching<T>,
    M: Stepper<T, S>,
    O: Observer<T, S>,
{
    let p = method.precision();
    let dim = sys.dim();
    assert_eq!(state.y.len(), dim, "state dimension");
    let nsw = sys.num_switches();
    if method.switch_scratch().len() != nsw {
        *method.switch_scratch() = vec![T::zero(p); nsw];
    }
    let (events_on, chatter_limit) = (method.settings().events, method.settings().chatter_limit);
    if !events_on {
        events::untrack_all(sys);
    }
    method.begin(state);
    let start_steps = state.stats.accepted + state.stats.rejected;
    // Scalars of the step control, allocated once per call (none per step).
    let eps16 = T::epsilon(p) * &T::from_f64(16.0, p);
    let (mut h, mut s0, mut s1, mut hnew) = (T::zero(p), T::zero(p), T::zero(p), T::zero(p));
    let (mut t1, mut t2) = (T::zero(p), T::zero(p));
    let mut at_floor_run = 0u64;

    if observer.on_step(sys, state) == Control::Stop {
        return Status::Stopped;
    }
    loop {
        if let Some(status) = limit_reached(method.settings(), horizon, state, start_steps) {
            return status;
        }
        if !method.prepare(sys, state) {
            return Status::NonFinite { s: state.s.to_f64() };
        }
        if state.h.sign() != Some(std::cmp::Ordering::Greater) {
            state.h = method.initial_step(sys, state);
        }
        let (hits_end, at_floor) =
            match step_to_try(method.settings(), horizon, state, &eps16, &mut h, &mut t1, &mut t2) {
                Ok(v) => v,
                Err(status) => return status,
            };
        at_floor_run = if at_floor { at_floor_run + 1 } else { 0 };
        if at_floor_run > method.settings().floor_step_limit {
            return Status::StepSizeUnderflow { s: state.s.to_f64(), h: h.to_f64() };
        }

        s0.assign(&state.s);
        let y0 = std::mem::take(&mut state.y);
        let mut attempt = method.try_step(sys, &mut state.stats, &s0, &y0, &h);
        if at_floor && attempt.error.is_finite() {
            // Below this step s + h rounds to s: the error estimate is round-off, not truncation.
            attempt.accepted = true;
            state.stats.floor_steps += 1;
        }
        if !attempt.accepted {
            state.y = y0;
            state.stats.rejected += 1;
            state.h.assign(&h);
            t1.assign_f64(method.reject_factor(attempt.error));
            state.h *= &t1;
            state.last_rejected = true;
            continue;
        }
        method.accepted_size(&h, attempt.error, state, &mut hnew);
        let new_err_old = attempt.error.max(1e-4);

        // Switching events (earliest tracked k with mode_k·g_k(y1) < 0) and the component
        // horizon, located inside the step on the method's state at s0 + θh.
        let mut g = std::mem::take(method.switch_scratch());
        s1.assign(&s0);
        s1 += &h;
        let (g_end, reaches) = events::end_values(sys, events_on, horizon, &s1, method.solution(), &mut g);
        let stats = &mut state.stats;
        let end = events::step_end(sys, p, &s0, &y0, &h, g_end, reaches, |sy, theta, range, out| {
            method.state_at(sy, stats, &s0, &y0, &h, theta, range, out)
        });
        *method.switch_scratch() = g;
        state.stats.accepted += 1;
        state.err_old.assign_f64(new_err_old);
        state.last_rejected = false;
        match end {
            events::StepEnd::Terminal { s, y } => {
                method.after_cut(state);
                state.s = s;
                state.y = y;
                state.h.assign(&hnew);
                let _ = observer.on_step(sys, state);
                return Status::Reached;
            }
            events::StepEnd::Event { theta, switch, s, y } => {
                method.after_cut(state);
                let (hc, hn) = (h.clone(), hnew.clone());
                events::record_event(sys, state, p, chatter_limit, theta, switch, s, y, hc, hn);
            }
            events::StepEnd::Full => {
                match (&horizon.s_end, hits_end) {
                    (Some(se), true) => state.s.assign(se),
                    _ => state.s.assign(&s1),
                }
                state.y = method.exchange_solution(y0);
                state.h.assign(&hnew);
                method.after_full_step(state);
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

/// Before a step from `state`: `Some(Reached)` when s ≥ s_end, `Some(MaxSteps)` when
/// `max_steps` attempts have been made since `start_steps`, else `None`.
fn limit_reached<T: Real>(
    settings: &IntegratorSettings,
    horizon: &Horizon<T>,
    state: &IntegratorState<T>,
    start_steps: u64,
) -> Option<Status> {
    if let Some(se) = &horizon.s_end {
        if state.s >= *se {
            return Some(Status::Reached);
        }
    }
    if let Some(max) = settings.max_steps {
        if state.stats.accepted + state.stats.rejected - start_steps >= max {
            return Some(Status::MaxSteps);
        }
    }
    None
}

/// The step to try from `state`, written into `h`: h = min(state.h, max_step), replaced by
/// s_end − s when 1.01·h ≥ s_end − s (returned with `true`: the step lands exactly on s_end). A
/// step h ≤ 16ε|s| (`eps16` = 16ε) is raised to the round-off floor 32ε|s| (returned with
/// `true` second: the caller accepts it whatever its error estimate); h ≤ 0 is
/// `Err(StepSizeUnderflow)`. `tmp` and `tmp2` are scratch: nothing is allocated.
fn step_to_try<T: Real>(
    settings: &IntegratorSettings,
    horizon: &Horizon<T>,
    state: &IntegratorState<T>,
    eps16: &T,
    h: &mut T,
    tmp: &mut T,
    tmp2: &mut T,
) -> Result<(bool, bool), Status> {
    h.assign(&state.h);
    if let Some(hm) = settings.max_step {
        tmp.assign_f64(hm);
        if *tmp < *h {
            h.assign(tmp);
        }
    }
    let mut hits_end = false;
    if let Some(se) = &horizon.s_end {
        // tmp = s_end − s, tmp2 = 1.01·h.
        tmp.assign(se);
        *tmp -= &state.s;
        tmp2.assign_f64(1.01);
        *tmp2 *= &*h;
        if *tmp2 >= *tmp {
            h.assign(tmp);
            hits_end = true;
        }
    }
    // Floor 16ε·|s|.
    tmp.assign(&state.s);
    tmp.abs_mut();
    *tmp *= eps16;
    if h.sign() != Some(std::cmp::Ordering::Greater) {
        return Err(Status::StepSizeUnderflow { s: state.s.to_f64(), h: h.to_f64() });
    }
    if *h <= *tmp && !hits_end {
        h.assign(tmp);
        *h += &*tmp;
        return Ok((false, true));
    }
    Ok((hits_end, false))
}
