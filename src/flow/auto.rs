//! `--method auto`: when the explicit phase hands over to SEULEX.

use crate::model::network::Network;
use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

/// Phase of a `--method auto` run (the other methods stay in [`Phase::Explicit`], whose meaning for
/// them is simply "the method asked for").
///
/// `auto` starts with the explicit pair `Method::Auto.resolve(rtol)` (Dormand–Prince 5(4), or
/// Verner 9(8) below rtol 1e-12), whose dense output locates the early, dense kinks cheaply. In
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
pub(super) enum HorizonEnd {
    /// s = S.
    S(f64),
    /// log(1+t) = U.
    LogTime(f64),
}

impl SwitchMemory {
    /// Record the accepted state (s, h, u = log(1+t), events + releases), once per accepted step:
    /// the streak restarts at an event or when max h > [`AUTO_STEP_RATIO`] · min h.
    pub(super) fn observe(&mut self, accepted: u64, s: f64, h: f64, u: f64, events: u64) {
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
    pub(super) fn note_pattern<T: Real>(&mut self, accepted: u64, net: &Network<T>, b: &[T], p: &mut [T]) -> u64 {
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
    pub(super) fn ready(&self, s: f64, h: f64, u: f64, end: HorizonEnd) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::data::{generate, GenSettings};
    use crate::model::network::ModelSettings;

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
