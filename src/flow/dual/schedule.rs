//! Certified keys of the free entries on their points' clocks (the event queue's keys).
//!
//! While row j keeps its modes, P_ji(Ω) − P_ji(Ω_e) = a_j (K M_j (Ω − Ω_e))_i, and along the
//! flow Ω is nondecreasing (w ≥ 0). With Ĝ = |K| + ε_K and κ_ji ≥ max_k |(K M_j)_ik| / Ĝ_ik,
//!
//!   |P_ji(Ω) − P_ji(Ω_e)| ≤ |a_j| κ_ji (c_i(Ω) − c_i(Ω_e)),   c_i(Ω) = Σ_k Ĝ_ik Ω_k,
//!
//! so entry (j, i) keeps its sign until its point's clock c_i reaches
//! c_i(Ω_e) + |P_ji| / (|a_j| κ_ji) (with the safety factor [`RATE_SAFETY`]). The clock weighs
//! each point's weight by its kernel entry: on data whose kernel is dominated by its diagonal
//! an entry's key follows its own point's weight, not the worst point's.

use super::probe::Probe;
use super::system::DualSystem;
use crate::flow::span::Mode;
use marginflow_solvers::Real;

/// Safety factor on the bounds (the numerical Ω may decrease by its error where w ≈ 0).
pub const RATE_SAFETY: f64 = 1.25;

impl<T: Real> DualSystem<'_, T> {
    /// The clocks c = Ĝ Ω (f64).
    pub fn clocks(&self, omega: &[T]) -> Vec<f64> {
        let n = self.net.n;
        let om: Vec<f64> = omega.iter().map(|v| v.to_f64()).collect();
        (0..n).map(|i| self.rows.cover[i * n..(i + 1) * n].iter().zip(&om).map(|(g, o)| g * o).sum()).collect()
    }

    /// Clock time entry k at pre-activation `pv` needs to change sign: |P| / (safety |a_j| κ_ji).
    pub fn clock_distance(&self, k: usize, pv: f64) -> f64 {
        let rate = RATE_SAFETY * self.a64[k / self.net.n].abs() * self.rows.reach[k];
        if rate > 0.0 {
            pv.abs() / rate
        } else {
            f64::INFINITY
        }
    }

    /// Schedule free entry k from its value at the probe, whose clocks are `clocks` (pinned
    /// entries leave the queue; one already past its side is due at once).
    pub(crate) fn schedule_probed(&mut self, probe: &mut Probe<T>, k: usize, clocks: &[f64]) {
        if self.rows.modes[k] == Mode::Sliding {
            self.queue.remove(k);
            return;
        }
        let c = clocks[k % self.net.n];
        if self.oriented(probe, k).is_sign_negative() {
            self.queue.schedule(k, c);
            return;
        }
        let pv = self.probe_p(probe, k).0.to_f64();
        let key = c + self.clock_distance(k, pv);
        self.queue.schedule(k, key);
    }

    /// Reschedule the entries in `ks` at Ω (rows computed once each; all of P in one product
    /// when there are many).
    pub fn schedule_entries(&mut self, ks: &[usize], omega: &[T]) {
        let clocks = self.clocks(omega);
        let mut probe = Probe::new(omega.to_vec());
        self.schedule_at(&mut probe, ks, &clocks);
    }

    /// [`DualSystem::schedule_entries`] on an existing probe with its clocks.
    pub(crate) fn schedule_at(&mut self, probe: &mut Probe<T>, ks: &[usize], clocks: &[f64]) {
        if ks.len() * 8 > self.rows.m * self.net.n && probe.full.is_none() {
            self.probe_full(probe);
        }
        for &k in ks {
            self.schedule_probed(probe, k, clocks);
        }
    }

    /// Reschedule every free entry of row j at Ω.
    pub fn schedule_row(&mut self, j: usize, omega: &[T]) {
        let n = self.net.n;
        let ks: Vec<usize> = (j * n..(j + 1) * n).collect();
        self.schedule_entries(&ks, omega);
    }
}
