//! Switching events and component horizons on an accepted step: where inside it the step ends,
//! for the loop of [`crate::driver`] that every integrator shares.
//!
//! After a step from (s0, y0) of size h has been accepted, the integrator asks where inside it the
//! step must be cut. The state at s0 + θh, θ ∈ [0, 1], is supplied by the integrator as a closure
//! `state_at(sys, θ, range, out)` writing components `range` into `out`: the continuous extension
//! of the step (Dormand–Prince) or a re-step of size θh from (s0, y0) (extrapolation). Root
//! finding for switch k asks only for its support ([`Switching::switch_support`]). Every function
//! here calls it in a fixed order, so the integrators' results and work counters do not depend on
//! which of them drives the search.
//!
//! - A tracked switch k has *crossed* at a state when mode_k·g_k < 0 there.
//! - The earliest crossing is found by starting from the crossing whose linear estimate
//!   θ ≈ g_k(0)/(g_k(0) − g_k(1)) is smallest, locating its root θ_k by the Illinois method, and
//!   shrinking the bracket to [0, θ_k] while another tracked switch has already crossed at θ_k.
//! - A component horizon y_c ≥ target is located the same way inside [0, θ_cut].
//! - The same switch flipping again after less than 1/100 of a step counts as chatter; after
//!   `chatter_limit` flips in a row it is released ([`Switching::release`]).

use crate::ode::{Horizon, IntegratorState, Switching};
use crate::scalar::Real;
use std::ops::Range;

/// Whether tracked switch k has crossed at switching values `g`: mode_k·g_k < 0.
pub(crate) fn crossed<T: Real, S: Switching<T>>(sys: &S, g: &[T], k: usize) -> bool {
    use std::cmp::Ordering::{Greater, Less};
    match sys.mode(k) {
        0 => false,
        m if m > 0 => g[k].sign() == Some(Less),
        _ => g[k].sign() == Some(Greater),
    }
}

/// Stop tracking every switch (events off): the system then follows the live signs.
pub(crate) fn untrack_all<T: Real, S: Switching<T>>(sys: &mut S) {
    for k in 0..sys.num_switches() {
        if sys.mode(k) != 0 {
            sys.untrack(k);
        }
    }
}

/// Earliest θ in (0, hi_init] where `value` (negative = crossed) first becomes ≤ 0, given
/// value(0) > 0 ≥ value(hi_init); Illinois iteration (regula falsi halving the stale end's value
/// after two moves on one side) to 4ε·max(|s|/|h|, 1) in θ, i.e. round-off in s. Returns 0 when
/// value(y) ≤ 0 already (the event is at the start of the step). `value` may read only the
/// components in `support`: the others hold y.
#[allow(clippy::too_many_arguments)]
pub(crate) fn locate<T, S, F, V>(
    sys: &mut S,
    state_at: &mut F,
    prec: u32,
    s: &T,
    y: &[T],
    h: &T,
    hi_init: T,
    support: Range<usize>,
    mut value: V,
) -> T
where
    T: Real,
    F: FnMut(&mut S, &T, Range<usize>, &mut [T]),
    V: FnMut(&mut S, &[T]) -> T,
{
    let p = prec;
    let mut lo = T::zero(p);
    let mut hi = hi_init;
    let mut f_lo = value(sys, y);
    if f_lo <= T::zero(p) {
        // Already on the far side at the start of the step: the event is at the start.
        return lo;
    }
    let mut buf = y.to_vec();
    state_at(sys, &hi, support.clone(), &mut buf);
    let mut f_hi = value(sys, &buf);
    let tol = T::epsilon(p) * &T::from_f64(4.0, p) * &(s.abs() / &h.abs()).max_of(&T::one(p));
    let mut side = 0i8;
    for _ in 0..200 {
        if (hi.clone() - &lo) <= tol {
            break;
        }
        // Regula falsi point, guarded to stay inside the bracket.
        let denom = f_lo.clone() - &f_hi;
        let mut mid = if denom.is_finite() && denom > T::zero(p) {
            lo.clone() + &((hi.clone() - &lo) * &(f_lo.clone() / &denom))
        } else {
            (lo.clone() + &hi) * &T::ratio(1, 2, p)
        };
        if !(mid > lo && mid < hi) {
            mid = (lo.clone() + &hi) * &T::ratio(1, 2, p);
        }
        state_at(sys, &mid, support.clone(), &mut buf);
        let fm = value(sys, &buf);
        if fm > T::zero(p) {
            lo = mid;
            f_lo = fm;
            if side == -1 {
                f_hi *= &T::ratio(1, 2, p);
            }
            side = -1;
        } else {
            hi = mid;
            f_hi = fm;
            if side == 1 {
                f_lo *= &T::ratio(1, 2, p);
            }
            side = 1;
        }
    }
    hi
}

/// Where an accepted step ends.
pub(crate) enum StepEnd<T> {
    /// At s0 + h: nothing happens inside the step.
    Full,
    /// At the earliest crossing θ of tracked switch `switch`, state `y` at s = s0 + θh.
    Event {
        /// Fraction of the step.
        theta: T,
        /// The switch that crossed.
        switch: usize,
        /// s0 + θh.
        s: T,
        /// The state there.
        y: Vec<T>,
    },
    /// Where the component horizon is reached (before any event), state `y` at `s`.
    Terminal {
        /// s0 + θh.
        s: T,
        /// The state there.
        y: Vec<T>,
    },
}

/// The end of the accepted step from (s0, y0) of size h.
///
/// `g_end`: the switching values at s0 + h when events are located (else `None`); `reaches`: the
/// component horizon (c, target) and whether y_c(s0 + h) ≥ target.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_end<T, S, F>(
    sys: &mut S,
    prec: u32,
    s0: &T,
    y0: &[T],
    h: &T,
    g_end: Option<&[T]>,
    reaches: Option<(usize, &T, bool)>,
    mut state_at: F,
) -> StepEnd<T>
where
    T: Real,
    S: Switching<T>,
    F: FnMut(&mut S, &T, Range<usize>, &mut [T]),
{
    let p = prec;
    let nsw = sys.num_switches();
    let dim = y0.len();
    let full_state = |sys: &mut S, state_at: &mut F, theta: &T| -> Vec<T> {
        let mut y = y0.to_vec();
        state_at(sys, theta, 0..dim, &mut y);
        y
    };
    let mut theta_cut: Option<(T, usize)> = None;
    if let Some(g) = g_end {
        let crossings: Vec<usize> = (0..nsw).filter(|&k| crossed(sys, g, k)).collect();
        if !crossings.is_empty() {
            // Start from the crossing whose linear estimate is earliest, then shrink the
            // bracket while another tracked switch has already crossed at its root.
            let est = |sys: &mut S, k: usize| -> f64 {
                let a = sys.switch_value(k, s0, y0).to_f64();
                let b = g[k].to_f64();
                if a == b {
                    0.0
                } else {
                    (a / (a - b)).clamp(0.0, 1.0)
                }
            };
            let mut kbest = crossings[0];
            let mut best = est(sys, kbest);
            for &k in &crossings[1..] {
                let e = est(sys, k);
                if e < best {
                    (kbest, best) = (k, e);
                }
            }
            let mut hi = T::one(p);
            let mut which = kbest;
            for _round in 0..nsw.max(1) {
                let k = which;
                let sign = T::from_f64(sys.mode(k) as f64, p);
                let support = sys.switch_support(k);
                let theta = locate(sys, &mut state_at, p, s0, y0, h, hi.clone(), support, |sy, yy| {
                    sy.switch_value(k, s0, yy) * &sign
                });
                // Any other tracked switch already crossed at θ?
                let yd = full_state(sys, &mut state_at, &theta);
                let sth = s0.clone() + &(h.clone() * &theta);
                let mut gt = vec![T::zero(p); nsw];
                sys.switch_values_inplace(&sth, &yd, &mut gt);
                let earlier = (0..nsw).find(|&j| j != k && crossed(sys, &gt, j));
                hi = theta;
                match earlier {
                    Some(j) => which = j,
                    None => {
                        theta_cut = Some((hi.clone(), k));
                        break;
                    }
                }
            }
            if theta_cut.is_none() {
                theta_cut = Some((hi, which));
            }
        }
    }
    // Terminal condition on a component.
    if let Some((c, target, reaches_at_end)) = reaches {
        let theta_lim = theta_cut.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| T::one(p));
        let reaches =
            if theta_cut.is_some() { full_state(sys, &mut state_at, &theta_lim)[c] >= *target } else { reaches_at_end };
        if reaches {
            let theta = locate(sys, &mut state_at, p, s0, y0, h, theta_lim, c..c + 1, |_, yy| target.clone() - &yy[c]);
            let y = full_state(sys, &mut state_at, &theta);
            return StepEnd::Terminal { s: s0.clone() + &(h.clone() * &theta), y };
        }
    }
    match theta_cut {
        Some((theta, switch)) => {
            let y = full_state(sys, &mut state_at, &theta);
            StepEnd::Event { s: s0.clone() + &(h.clone() * &theta), theta, switch, y }
        }
        None => StepEnd::Full,
    }
}

/// Move `state` to the event (s, y) of switch k at fraction θ of the step h, flip the switch,
/// count it, release it after `chatter_limit` flips in a row at one point (each with θ < 1/100),
/// and set the next step to max(h_new, θh).
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_event<T: Real, S: Switching<T>>(
    sys: &mut S,
    state: &mut IntegratorState<T>,
    prec: u32,
    chatter_limit: u32,
    theta: T,
    k: usize,
    s: T,
    y: Vec<T>,
    h: T,
    hnew: T,
) {
    state.s = s;
    state.y = y;
    sys.flip(k, &state.s, &state.y);
    state.stats.events += 1;
    // Chatter: the same switch flipping again without real progress.
    let again = matches!(state.chatter, Some((kk, _)) if kk == k) && theta < T::ratio(1, 100, prec);
    state.chatter = match state.chatter {
        Some((kk, c)) if again && kk == k => Some((kk, c + 1)),
        _ => Some((k, 1)),
    };
    if let Some((kk, c)) = state.chatter {
        if c >= chatter_limit {
            sys.release(kk, &state.s, &state.y);
            state.stats.released += 1;
            state.chatter = None;
        }
    }
    state.h = hnew.max_of(&(h * &theta));
}

/// What [`step_end`] needs to know about the end s1 = s0 + h of an accepted step with state y1:
/// the switching values there, written into `g` (when events are located), and the component
/// horizon (c, target) with whether y1_c ≥ target.
#[allow(clippy::type_complexity)]
pub(crate) fn end_values<'a, T: Real, S: Switching<T>>(
    sys: &mut S,
    events: bool,
    horizon: &'a Horizon<T>,
    s1: &T,
    y1: &[T],
    g: &'a mut [T],
) -> (Option<&'a [T]>, Option<(usize, &'a T, bool)>) {
    let reaches = horizon.component_reaches.as_ref().map(|(c, target)| (*c, target, y1[*c] >= *target));
    if events && !g.is_empty() {
        sys.switch_values_inplace(s1, y1, g);
        (Some(&*g), reaches)
    } else {
        (None, reaches)
    }
}
