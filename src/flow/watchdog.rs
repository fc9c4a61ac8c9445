//! The run's watchdog (issue 23): a flow makes progress, or it ends with a diagnosis.
//!
//! **No progress.** After every accepted step the watchdog looks at the work counters: when more
//! than `rejection_fraction` of the last `rejection_window` attempts were rejected with no new
//! kink, or s advanced by less than `min_relative_advance`·s over `progress_window` attempts
//! (steps at the round-off floor, a grind), the integrator is not getting anywhere. The
//! documented remedy is taken once (`--method auto` in its explicit phase switches to SEULEX);
//! if the watchdog fires again, or there is no remedy, the run ends `stalled` with where it is,
//! what was seen and what to try.
//!
//! **Stationary points of positive loss.** For the positively homogeneous network,
//! ⟨W, ∇L(W)⟩ = (1/n) Σ ℓ'(q_i) q_i, which is < 0 when every q_i > 0: a stationary point has a
//! point with q_i ≤ 0, so L ≥ ℓ(0)/n there. In normalized time d ln L/ds = −‖∇L‖²/L² = −‖v‖²
//! (v = dW/ds), and L stays above ℓ(0)/n, so s ≥ L·t grows linearly in t and a horizon in t is
//! out of reach. On the trajectory rows (log-spaced in s) the watchdog takes the decreases of
//! ln L over the last two decades of s, D₂ (s/10 → s) and D₁ (s/100 → s/10); a flow that
//! converges to a stationary point has D₂ small and D₂/D₁ = r < 1, and its limit is about
//! ln L − D₂ r/(1 − r) (a geometric tail). It is declared stationary when, with a point
//! misclassified at all three rows, D₂ ≤ `stationary_decade_drop`, r ≤ `stationary_drop_ratio`,
//! the projected limit lies above ln(ℓ(0)/n) (so the flow is not on its way to interpolation)
//! and the instantaneous rate d ln L/d ln s = s‖v‖² is at most `stationary_rate`. On separable
//! data in the asymptotic regime s‖v‖² ≈ s/‖W*‖² grows without bound, and every margin is
//! positive, so the test cannot fire there.

use serde::{Deserialize, Serialize};

/// What the watchdog watches for, and when it acts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchdogSettings {
    /// Attempts (accepted + rejected) per window of the rejection test (default: 1000).
    pub rejection_window: u64,
    /// Fraction of rejected attempts in a window without a new kink that means no progress
    /// (default: 0.5).
    pub rejection_fraction: f64,
    /// With `--events off` no kink is seen, and crossing kinks costs rejections: the rejection
    /// test then also needs s to have advanced by less than this times |s| in its window
    /// (default: 0.01).
    pub unseen_kink_advance: f64,
    /// Attempts per window of the advance test (default: 10,000).
    pub progress_window: u64,
    /// s advancing by less than this times |s| over `progress_window` attempts means no progress
    /// (default: 1e-9).
    pub min_relative_advance: f64,
    /// Detect stationary points of positive loss (default: true).
    pub stationary: bool,
    /// Smallest s at which a stationary point is declared (default: 100).
    pub stationary_min_s: f64,
    /// Largest decrease D₂ of ln L over the last decade of s (default: 0.01).
    pub stationary_decade_drop: f64,
    /// Largest ratio D₂/D₁ of the last decade's decrease of ln L to the one before (default: 0.5).
    pub stationary_drop_ratio: f64,
    /// Largest rate d ln L / d ln s = s‖dW/ds‖² at the end (default: 0.1).
    pub stationary_rate: f64,
    /// Times the tolerance may be raised tenfold when the steps sit at the round-off floor
    /// (the tolerance asks for more than the arithmetic holds: the relative error of the loss
    /// weights is about ε·max|q_i|, which grows like ε log t) (default: 3).
    pub max_loosenings: u32,
}

impl Default for WatchdogSettings {
    fn default() -> Self {
        WatchdogSettings {
            rejection_window: 1000,
            rejection_fraction: 0.5,
            unseen_kink_advance: 0.01,
            progress_window: 10_000,
            min_relative_advance: 1e-9,
            stationary: true,
            stationary_min_s: 100.0,
            stationary_decade_drop: 0.01,
            stationary_drop_ratio: 0.5,
            stationary_rate: 0.1,
            max_loosenings: 3,
        }
    }
}

/// Work counters at the start of a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Mark {
    attempts: u64,
    rejected: u64,
    kinks: u64,
    floor_steps: u64,
    s: f64,
}

/// The watchdog's memory (checkpointed, so a resumed run decides as an uninterrupted one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Watchdog {
    short: Option<Mark>,
    long: Option<Mark>,
    /// Whether the remedy (the switch to SEULEX) was already taken.
    pub remedied: bool,
    /// Times the tolerance was raised tenfold because steps sat at the round-off floor.
    pub loosened: u32,
    /// What the watchdog changed during the run (the summary's `warnings`).
    pub warnings: Vec<String>,
    /// (log10 s, ln L, some q_i ≤ 0) of the trajectory rows of the last three decades of s.
    rows: Vec<(f64, f64, bool)>,
}

/// What the no-progress test saw.
#[derive(Clone, Debug, PartialEq)]
pub struct NoProgress {
    /// Attempts in the window that fired.
    pub attempts: u64,
    /// Rejected among them.
    pub rejected: u64,
    /// Steps at the round-off floor among them.
    pub floor_steps: u64,
    /// s at the start of that window.
    pub s_from: f64,
}

/// What the stationarity test measured on the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Plateau {
    /// Decrease of ln L over the last decade of s.
    pub last_decade: f64,
    /// Over the decade before.
    pub decade_before: f64,
    /// Projected limit of log10 L.
    pub log10_limit: f64,
}

impl Watchdog {
    /// After an accepted step with the counters `(attempts, rejected, kinks, floor_steps)` at s
    /// (`kinks_seen`: events are located): `Some` when a window closed without progress (the
    /// windows restart either way).
    pub fn step(
        &mut self,
        ws: &WatchdogSettings,
        counts: (u64, u64, u64, u64),
        s: f64,
        kinks_seen: bool,
    ) -> Option<NoProgress> {
        let (attempts, rejected, kinks, floor_steps) = counts;
        let now = Mark { attempts, rejected, kinks, floor_steps, s };
        let short = self.short.get_or_insert_with(|| now.clone()).clone();
        let long = self.long.get_or_insert_with(|| now.clone()).clone();
        let mut seen = None;
        if attempts - short.attempts >= ws.rejection_window.max(1) {
            let rej = rejected - short.rejected;
            let stuck = kinks_seen || (s - short.s).abs() < ws.unseen_kink_advance * s.abs();
            if rej as f64 > ws.rejection_fraction * (attempts - short.attempts) as f64 && kinks == short.kinks && stuck
            {
                seen = Some(NoProgress {
                    attempts: attempts - short.attempts,
                    rejected: rej,
                    floor_steps: floor_steps - short.floor_steps,
                    s_from: short.s,
                });
            }
            self.short = Some(now.clone());
        }
        if attempts - long.attempts >= ws.progress_window.max(1) {
            if (s - long.s).abs() < ws.min_relative_advance * s.abs() && seen.is_none() {
                seen = Some(NoProgress {
                    attempts: attempts - long.attempts,
                    rejected: rejected - long.rejected,
                    floor_steps: floor_steps - long.floor_steps,
                    s_from: long.s,
                });
            }
            self.long = Some(now);
        }
        seen
    }

    /// The tolerance in force: `rtol` raised tenfold per loosening.
    pub fn rtol(&self, rtol: f64) -> f64 {
        rtol * 10f64.powi(self.loosened as i32)
    }

    /// Restart both windows (after the remedy: the new method gets a fresh look).
    pub fn restart(&mut self) {
        self.short = None;
        self.long = None;
    }

    /// A trajectory row at s with ln L and whether some q_i ≤ 0: `Some` when the rows of the
    /// last two decades show the plateau of a stationary point (the caller still checks the
    /// rate s‖v‖²). `floor_ln` = ln(ℓ(0)/n).
    pub fn row(
        &mut self,
        ws: &WatchdogSettings,
        s: f64,
        ln_loss: f64,
        misclassified: bool,
        floor_ln: f64,
    ) -> Option<Plateau> {
        if !(s > 0.0 && ln_loss.is_finite()) {
            return None;
        }
        let ls = s.log10();
        self.rows.push((ls, ln_loss, misclassified));
        self.rows.retain(|r| r.0 >= ls - 2.5);
        if !ws.stationary || s < ws.stationary_min_s || !misclassified {
            return None;
        }
        // The latest rows at least one and two decades back.
        let at = |back: f64| self.rows.iter().rev().find(|r| r.0 <= ls - back).copied();
        let (Some(a), Some(b)) = (at(2.0), at(1.0)) else { return None };
        if !(a.2 && b.2) || a.0 < ls - 2.5 {
            return None;
        }
        let (d1, d2) = (a.1 - b.1, b.1 - ln_loss);
        if !(d2 >= 0.0 && d2 <= ws.stationary_decade_drop && d1 > 0.0 && d2 <= ws.stationary_drop_ratio * d1) {
            return None;
        }
        let r = d2 / d1;
        let limit = ln_loss - d2 * r / (1.0 - r);
        if limit <= floor_ln {
            return None;
        }
        Some(Plateau { last_decade: d2, decade_before: d1, log10_limit: limit / std::f64::consts::LN_10 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_without_kinks_fire_and_progress_does_not() {
        let ws = WatchdogSettings::default();
        let mut w = Watchdog::default();
        assert!(w.step(&ws, (0, 0, 0, 0), 1.0, true).is_none());
        // 1000 attempts, 400 rejected: fine.
        assert!(w.step(&ws, (1000, 400, 0, 0), 2.0, true).is_none());
        // 1000 more, 600 rejected but a kink: fine.
        assert!(w.step(&ws, (2000, 1000, 1, 0), 3.0, true).is_none());
        // 1000 more, 600 rejected, no kink: fires.
        let seen = w.step(&ws, (3000, 1600, 1, 0), 3.5, true).unwrap();
        assert_eq!((seen.attempts, seen.rejected), (1000, 600));
    }

    #[test]
    fn s_stuck_over_the_long_window_fires() {
        let ws = WatchdogSettings::default();
        let mut w = Watchdog::default();
        w.step(&ws, (0, 0, 0, 0), 2.0, true);
        for k in 1..10 {
            assert!(w.step(&ws, (k * 1000, 0, k, k * 1000), 2.0 + 1e-12 * k as f64, true).is_none());
        }
        let seen = w.step(&ws, (10_000, 0, 10, 10_000), 2.0 + 1e-11, true).unwrap();
        assert_eq!(seen.floor_steps, 10_000);
    }

    /// ln L = L* + c/s with some point misclassified: a plateau; ln L = −s/4 (interpolating):
    /// never; a plateau above the floor but with all points classified: never.
    #[test]
    fn plateaus_are_told_from_progress() {
        let ws = WatchdogSettings::default();
        let mut w = Watchdog::default();
        let mut fired = None;
        for k in 0..=120 {
            let s = 10f64.powf(k as f64 / 20.0);
            if let Some(p) = w.row(&ws, s, -1.5 + 1.0 / s, true, (2f64.ln() / 11.0).ln()) {
                fired = Some((s, p));
                break;
            }
        }
        let (s, p) = fired.expect("plateau");
        assert!((100.0..=1e4).contains(&s), "{s}");
        assert!((p.log10_limit - (-1.5 / std::f64::consts::LN_10)).abs() < 0.01, "{p:?}");
        for (lossf, mis) in
            [(Box::new(|s: f64| -s / 4.0) as Box<dyn Fn(f64) -> f64>, true), (Box::new(|s: f64| -1.5 + 1.0 / s), false)]
        {
            let mut w = Watchdog::default();
            for k in 0..=120 {
                let s = 10f64.powf(k as f64 / 20.0);
                assert!(w.row(&ws, s, lossf(s), mis, (2f64.ln() / 11.0).ln()).is_none(), "{s}");
            }
        }
    }
}
