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

#[cfg(test)]
mod tests {
    //! Event location on closure interpolants (no integrator, no network), as diffsol's
    //! `nonlinear_solver/root.rs` tests its root finder: known roots of polynomials and a sine.
    use super::*;
    use crate::ode::OdeSystem;

    /// y(θ) given by one function per component; switch k reads component k alone.
    struct Components {
        modes: Vec<i8>,
    }
    impl OdeSystem<f64> for Components {
        fn dim(&self) -> usize {
            self.modes.len()
        }
        fn eval_inplace(&mut self, _s: &f64, _y: &[f64], _dy: &mut [f64]) {
            unreachable!("event location never evaluates the right-hand side")
        }
    }
    impl Switching<f64> for Components {
        fn num_switches(&self) -> usize {
            self.modes.len()
        }
        fn switch_value(&mut self, k: usize, _s: &f64, y: &[f64]) -> f64 {
            y[k]
        }
        fn mode(&self, k: usize) -> i8 {
            self.modes[k]
        }
        fn switch_support(&self, k: usize) -> Range<usize> {
            k..k + 1
        }
    }

    type Curve = fn(f64) -> f64;

    /// The closure interpolant of `curves`: component i at θ is curves[i](θ).
    fn interpolant(curves: &[Curve]) -> impl FnMut(&mut Components, &f64, Range<usize>, &mut [f64]) + '_ {
        move |_, theta, range, out| {
            for i in range {
                out[i] = curves[i](*theta);
            }
        }
    }

    fn start(curves: &[Curve]) -> Vec<f64> {
        curves.iter().map(|c| c(0.0)).collect()
    }

    /// Round-off in θ allowed by `locate` at step start s and step h: 4ε·max(|s|/h, 1), plus one
    /// rounding of the root itself.
    fn tolerance(s: f64, h: f64) -> f64 {
        4.0 * f64::EPSILON * (s.abs() / h).max(1.0) + f64::EPSILON
    }

    #[test]
    fn locates_a_cubic_root_to_round_off() {
        // g(θ) = (0.3 − θ)(θ + 1)(2 − θ): g(0) = 0.6 > 0, g(1) = −1.4, one root in (0, 1) at 0.3.
        let curves: [Curve; 1] = [|t| (0.3 - t) * (t + 1.0) * (2.0 - t)];
        let mut sys = Components { modes: vec![1] };
        let y0 = start(&curves);
        let mut at = interpolant(&curves);
        let theta = locate(&mut sys, &mut at, 53, &0.0, &y0, &1.0, 1.0, 0..1, |_, y| y[0]);
        assert!((theta - 0.3).abs() <= tolerance(0.0, 1.0), "θ = {theta:e}, error {:e}", theta - 0.3);
        // The returned end of the bracket is on the crossed side.
        assert!(curves[0](theta) <= 0.0);
    }

    #[test]
    fn locates_a_sine_root_to_round_off_in_s() {
        // g(θ) = cos 3θ, root π/6; the step starts at s = 1000 with h = 1/2, so round-off in s is
        // 2000 times round-off in θ.
        let curves: [Curve; 1] = [|t| (3.0 * t).cos()];
        let (s, h) = (1000.0, 0.5);
        let mut sys = Components { modes: vec![1] };
        let y0 = start(&curves);
        let mut at = interpolant(&curves);
        let theta = locate(&mut sys, &mut at, 53, &s, &y0, &h, 1.0, 0..1, |_, y| y[0]);
        let root = std::f64::consts::PI / 6.0;
        assert!((theta - root).abs() <= tolerance(s, h), "θ = {theta}, error {:e}", theta - root);
        assert!(curves[0](theta) <= 0.0);
    }

    #[test]
    fn a_root_at_the_end_of_the_bracket_is_found_there() {
        // g(θ) = (1 − θ)(1 + θ²): the root is θ = 1 exactly, where g = 0 counts as crossed.
        let curves: [Curve; 1] = [|t| (1.0 - t) * (1.0 + t * t)];
        let mut sys = Components { modes: vec![1] };
        let y0 = start(&curves);
        let mut at = interpolant(&curves);
        let theta = locate(&mut sys, &mut at, 53, &0.0, &y0, &1.0, 1.0, 0..1, |_, y| y[0]);
        assert_eq!(theta, 1.0);
    }

    #[test]
    fn an_event_already_crossed_at_the_start_is_at_theta_zero() {
        let curves: [Curve; 1] = [|t| -0.5 - t];
        let mut sys = Components { modes: vec![1] };
        let y0 = start(&curves);
        let mut at = interpolant(&curves);
        let theta = locate(&mut sys, &mut at, 53, &0.0, &y0, &1.0, 1.0, 0..1, |_, y| y[0]);
        assert_eq!(theta, 0.0);
    }

    /// `step_end` on `curves` with switching values at θ = 1 from the curves themselves.
    fn end_of_step(
        sys: &mut Components,
        curves: &[Curve],
        reaches: Option<(usize, f64)>,
        s0: f64,
        h: f64,
    ) -> StepEnd<f64> {
        let y0 = start(curves);
        let y1: Vec<f64> = curves.iter().map(|c| c(1.0)).collect();
        let mut g = vec![0.0; sys.num_switches()];
        sys.switch_values_inplace(&(s0 + h), &y1, &mut g);
        let reaches = reaches.map(|(c, target)| (c, target, y1[c] >= target));
        let reaches = reaches.as_ref().map(|(c, target, r)| (*c, target, *r));
        step_end(sys, 53, &s0, &y0, &h, Some(&g), reaches, interpolant(curves))
    }

    #[test]
    fn the_earliest_of_several_switches_is_found() {
        // Roots: switch 0 at 0.7 (linear), switch 1 at 0.4 whose chord predicts 0.8 (so the
        // search starts elsewhere and must shrink its bracket onto it), switch 2 at 0.55, switch 3
        // (mode −1: crossed when g > 0) at 0.45, switch 4 untracked with a root at 0.1.
        let curves: [Curve; 5] = [|t| 0.7 - t, |t| (0.4 - t) * (1.2 - t), |t| 0.55 - t, |t| t - 0.45, |t| 0.1 - t];
        let mut sys = Components { modes: vec![1, 1, 1, -1, 0] };
        match end_of_step(&mut sys, &curves, None, 0.0, 1.0) {
            StepEnd::Event { theta, switch, s, y } => {
                assert_eq!(switch, 1);
                assert!((theta - 0.4).abs() <= tolerance(0.0, 1.0), "θ = {theta}");
                assert_eq!(s, theta);
                let expect: Vec<f64> = curves.iter().map(|c| c(theta)).collect();
                assert_eq!(y, expect);
            }
            _ => panic!("expected an event"),
        }
    }

    #[test]
    fn a_root_at_the_step_end_is_not_an_event_inside_it() {
        // g(1) = 0 exactly: not crossed (mode·g < 0 is strict); the next step starts on it and
        // locates it at θ = 0. A root just before the end is an event near θ = 1.
        let curves: [Curve; 1] = [|t| 1.0 - t];
        let mut sys = Components { modes: vec![1] };
        assert!(matches!(end_of_step(&mut sys, &curves, None, 0.0, 1.0), StepEnd::Full));
        let curves: [Curve; 1] = [|t| (1.0 - 2f64.powi(-30)) - t];
        match end_of_step(&mut sys, &curves, None, 0.0, 1.0) {
            StepEnd::Event { theta, switch: 0, .. } => {
                let root = 1.0 - 2f64.powi(-30);
                assert!((theta - root).abs() <= tolerance(0.0, 1.0), "θ = {theta}");
            }
            _ => panic!("expected an event"),
        }
    }

    #[test]
    fn a_horizon_before_the_first_event_ends_the_step_there() {
        // Component 1 is not a switch (untracked) and reaches 1 at θ = 1/2 (y = 2θ); the
        // switch crosses at 0.7: the step ends at the horizon, s = s0 + h/2.
        let curves: [Curve; 2] = [|t| 0.7 - t, |t| 2.0 * t];
        let mut sys = Components { modes: vec![1, 0] };
        match end_of_step(&mut sys, &curves, Some((1, 1.0)), 2.0, 0.25) {
            StepEnd::Terminal { s, y } => {
                assert!((s - 2.125).abs() <= 4.0 * f64::EPSILON * 2.125, "s = {s}");
                assert!(y[1] >= 1.0 && y[1] - 1.0 < 1e-14, "{y:?}");
            }
            _ => panic!("expected the horizon"),
        }
        // The switch now crosses at 0.3, before the horizon: an event, not the end.
        let curves: [Curve; 2] = [|t| 0.3 - t, |t| 2.0 * t];
        match end_of_step(&mut sys, &curves, Some((1, 1.0)), 2.0, 0.25) {
            StepEnd::Event { theta, switch: 0, .. } => assert!((theta - 0.3).abs() <= tolerance(2.0, 0.25)),
            _ => panic!("expected the event"),
        }
    }
}
