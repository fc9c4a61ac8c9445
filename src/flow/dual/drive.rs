//! The dual engine's step loop: the accept/reject loop of `marginflow_solvers::driver` with
//! the engine's own events (queue, location on the method's interpolant, batches).

use super::events::StepEnd;
use super::system::DualSystem;
use crate::flow::span::FLIP_CYCLE_LIMIT;
use marginflow_solvers::driver::Stepper;
use marginflow_solvers::ode::{Control, IntegratorState, Status};
use marginflow_solvers::Real;

/// Mode changes between two exact refreshes of A and q (at least this many; the cadence is
/// max(m, this)), so that a refresh (O(m n²)) costs O(n²) per change on average.
pub const REFRESH_MIN_CHANGES: u64 = 64;

/// How a drive ended.
pub struct DriveEnd {
    /// The integrator's status.
    pub status: Status,
    /// Set when the run cannot advance (flips cycling at one s): what was seen.
    pub stalled: Option<String>,
}

/// Where a drive stops and how it treats kinks.
pub struct DriveLimits<'h, T> {
    /// s_end.
    pub s_end: Option<&'h T>,
    /// u = log(1+t) target.
    pub u_target: Option<&'h T>,
    /// Locate events (false: crossings are applied at step ends).
    pub events: bool,
    /// Step limit for this call (accepted + rejected).
    pub max_steps: Option<u64>,
    /// Mode changes between exact refreshes.
    pub refresh_every: u64,
}

/// Integrate `sys` with `method` from `state` until the horizon, the step limit, a stall, or
/// `observe` stops; `changes_since_refresh` is the refresh cadence's counter (checkpointed).
pub fn drive<'a, T, M, O>(
    method: &mut M,
    sys: &mut DualSystem<'a, T>,
    state: &mut IntegratorState<T>,
    limits: &DriveLimits<'_, T>,
    changes_since_refresh: &mut u64,
    mut observe: O,
) -> DriveEnd
where
    T: Real,
    M: Stepper<T, DualSystem<'a, T>>,
    O: FnMut(&mut DualSystem<'a, T>, &IntegratorState<T>, u64) -> Control,
{
    let p = state.s.precision();
    let n = sys.net.n;
    let dim = n + 1;
    let end = |status| DriveEnd { status, stalled: None };
    method.begin(state);
    let start_steps = state.stats.accepted + state.stats.rejected;
    let eps16 = T::epsilon(p) * &T::from_f64(16.0, p);
    let (mut due, mut crossed) = (Vec::new(), Vec::new());
    let mut flips_here = (f64::NAN, 0usize);
    let mut hnew = T::zero(p);
    let mut at_floor_run = 0u64;
    if observe(sys, state, *changes_since_refresh) == Control::Stop {
        return end(Status::Stopped);
    }
    loop {
        if let Some(se) = limits.s_end {
            if state.s >= *se {
                return end(Status::Reached);
            }
        }
        if let Some(max) = limits.max_steps {
            if state.stats.accepted + state.stats.rejected - start_steps >= max {
                return end(Status::MaxSteps);
            }
        }
        if !method.prepare(sys, state) {
            return end(Status::NonFinite { s: state.s.to_f64() });
        }
        if state.h.sign() != Some(std::cmp::Ordering::Greater) {
            state.h = method.initial_step(sys, state);
        }
        let mut h = state.h.clone();
        let mut hits_end = false;
        if let Some(se) = limits.s_end {
            let left = se.clone() - &state.s;
            if h.clone() * &T::from_f64(1.01, p) >= left {
                h = left;
                hits_end = true;
            }
        }
        if h.sign() != Some(std::cmp::Ordering::Greater) {
            return end(Status::StepSizeUnderflow { s: state.s.to_f64(), h: h.to_f64() });
        }
        // Below 16ε|s| s + h rounds to s: such a step is raised to the round-off floor 32ε|s|
        // and accepted whatever its (round-off) error estimate, `floor_step_limit` times in a row.
        let floor = state.s.abs() * &eps16;
        let at_floor = h <= floor && !hits_end;
        if at_floor {
            h = floor.clone() + &floor;
        }
        at_floor_run = if at_floor { at_floor_run + 1 } else { 0 };
        if at_floor_run > method.settings().floor_step_limit {
            return end(Status::StepSizeUnderflow { s: state.s.to_f64(), h: h.to_f64() });
        }
        let s0 = state.s.clone();
        let y0 = std::mem::take(&mut state.y);
        let mut attempt = method.try_step(sys, &mut state.stats, &s0, &y0, &h);
        if at_floor && attempt.error.is_finite() {
            attempt.accepted = true;
            state.stats.floor_steps += 1;
        }
        if !attempt.accepted {
            state.y = y0;
            state.stats.rejected += 1;
            state.h = h.clone() * &T::from_f64(method.reject_factor(attempt.error), p);
            state.last_rejected = true;
            continue;
        }
        method.accepted_size(&h, attempt.error, state, &mut hnew);
        let y1 = method.solution().to_vec();
        let step_end = {
            let stats = &mut state.stats;
            let mut at = |sy: &mut DualSystem<'a, T>, th: &T, out: &mut [T]| {
                method.state_at(sy, stats, &s0, &y0, &h, th, 0..dim, out)
            };
            sys.step_end(&mut at, &s0, &y0, &h, &y1, limits.u_target, limits.events, &mut due, &mut crossed)
        };
        state.stats.accepted += 1;
        state.err_old.assign_f64(attempt.error.max(1e-4));
        state.last_rejected = false;
        match step_end {
            StepEnd::Terminal { s, y } => {
                method.after_cut(state);
                state.s = s;
                state.y = y;
                state.h = hnew.clone();
                let _ = observe(sys, state, *changes_since_refresh);
                return end(Status::Reached);
            }
            StepEnd::Event { s, y, batch } => {
                method.after_cut(state);
                let taken = s.clone() - &s0;
                state.s = s;
                state.y = y;
                let others: Vec<usize> = due.iter().map(|e| e.0).collect();
                let changes = sys.apply_events(&state.s, &state.y[..n], &batch, &others, &mut flips_here);
                state.stats.events += changes as u64;
                *changes_since_refresh += changes as u64;
                state.h = hnew.max_of(&taken);
                if flips_here.1 > FLIP_CYCLE_LIMIT * sys.net.n.max(1) {
                    return DriveEnd {
                        status: Status::Stopped,
                        stalled: Some(format!(
                            "{} mode changes at one point s = {:e} without progress (entries cycling between \
                             sides, e.g. duplicate points with opposite labels); try --engine span, or \
                             --events off",
                            flips_here.1,
                            state.s.to_f64()
                        )),
                    };
                }
            }
            StepEnd::Full => {
                match (limits.s_end, hits_end) {
                    (Some(se), true) => state.s.assign(se),
                    _ => state.s = s0.clone() + &h,
                }
                state.y = method.exchange_solution(y0);
                state.h = hnew.clone();
                method.after_full_step(state);
                state.chatter = None;
                if !limits.events && !crossed.is_empty() {
                    // Crossings at the step's end; step_end rescheduled nothing.
                    let batch = crossed.clone();
                    let others: Vec<usize> = due.iter().map(|e| e.0).collect();
                    let changes = sys.apply_events(&state.s, &state.y[..n], &batch, &others, &mut flips_here);
                    state.stats.events += changes as u64;
                    *changes_since_refresh += changes as u64;
                    method.after_cut(state);
                }
            }
        }
        if *changes_since_refresh >= limits.refresh_every {
            sys.refresh(&state.y[..n]);
            *changes_since_refresh = 0;
            method.after_cut(state);
        }
        if state.y.iter().any(|v| !v.is_finite()) {
            return end(Status::NonFinite { s: state.s.to_f64() });
        }
        if observe(sys, state, *changes_since_refresh) == Control::Stop {
            return end(Status::Stopped);
        }
    }
}
