//! Events of the dual engine: which entries may have crossed in a step (the queue's due
//! entries and every pinned entry), where (on the method's own interpolant, earliest first,
//! simultaneous ones as one batch), and what happens there (the row's minimal-norm selection
//! decides sides and pins; A and the row's anchor are updated).
//!
//! **Double crossings.** Along the flow ‖Ω(s) − Ω(s')‖₁ ≤ |s − s'| (w ≥ 0, Σw ≤ 1), so
//! |dP_ji/ds| ≤ |a_j| c_ji. An entry with the same side at both ends of the step cannot have
//! crossed inside when |P(s0)| + |P(s1)| > |a_j| c_ji h; otherwise its value is examined on the
//! interpolant at the [`GRID_POINTS`] − 1 interior points of a uniform grid (shared by all such
//! entries of the step), and the first sign change brackets its root.

use super::rows::RowSet;
use super::system::DualSystem;
use crate::flow::span::{Mode, SIGMA_ROUNDOFF_EPS};
use marginflow_solvers::boxqp::{self, BoxSide};
use marginflow_solvers::Real;
use std::collections::HashMap;

/// Safety factor on the rate bounds (the numerical solution's Σw may exceed 1 by its error).
pub const RATE_SAFETY: f64 = 1.25;

/// Sub-intervals of the grid on which a step's interpolant is examined for an entry whose
/// rate bound does not exclude a crossing inside the step.
pub const GRID_POINTS: usize = 8;

/// The end of an accepted step.
pub enum StepEnd<T> {
    /// No event: the step ends at s0 + h.
    Full,
    /// Events at s = s0 + θh: the state there and the entries crossing there.
    Event {
        /// s of the event.
        s: T,
        /// The state there.
        y: Vec<T>,
        /// The entries of the batch.
        batch: Vec<usize>,
    },
    /// The horizon on u is reached at s inside the step.
    Terminal {
        /// s there.
        s: T,
        /// The state there.
        y: Vec<T>,
    },
}

/// One evaluation point of the step: Ω(θ) and the rows of B there, computed on demand.
struct Probe<T> {
    y: Vec<T>,
    rows: HashMap<usize, (Vec<T>, f64)>,
    /// Loss weights w at the probe (computed on first use by a pinned entry).
    weights: Option<Vec<T>>,
    /// σ on the pinned set of row j, (R_j w)_l / (y_l w_l) in the order of S_j.
    sigma: HashMap<usize, Vec<T>>,
    /// All of P and the rows' round-off scales, when many entries are examined at this probe
    /// (one P0 + B K product instead of one dot product per entry).
    full: Option<(Vec<T>, Vec<f64>)>,
}

impl<T> Probe<T> {
    fn new(y: Vec<T>) -> Self {
        Probe { y, rows: HashMap::new(), weights: None, sigma: HashMap::new(), full: None }
    }
}

impl<T: Real> DualSystem<'_, T> {
    /// Row j of B and its round-off scale at the probe.
    fn probe_row<'p>(&self, probe: &'p mut Probe<T>, j: usize) -> &'p (Vec<T>, f64) {
        let n = self.net.n;
        probe.rows.entry(j).or_insert_with(|| {
            let mut bj = vec![T::zero(self.net.prec); n];
            let mut tmp = T::zero(self.net.prec);
            self.rows.row_at(self.net, j, &probe.y[..n], &mut bj, &mut tmp);
            let rho = RowSet::roundoff(self.net, j, &bj, self.k_max);
            (bj, rho)
        })
    }

    /// Fill the probe's full P (P0 + B K by one matrix product) and round-off scales.
    fn probe_full(&self, probe: &mut Probe<T>) {
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        let mut b = vec![T::zero(p); m * n];
        self.rows.b_at(net, &probe.y[..n], &mut b);
        let rho: Vec<f64> = (0..m).map(|j| RowSet::roundoff(net, j, &b[j * n..(j + 1) * n], self.k_max)).collect();
        let mut pre = vec![T::zero(p); m * n];
        net.preactivations_inplace(&b, &mut pre);
        probe.full = Some((pre, rho));
    }

    /// P_ji at the probe.
    fn probe_p(&self, probe: &mut Probe<T>, k: usize) -> (T, f64) {
        let n = self.net.n;
        if let Some((pre, rho)) = &probe.full {
            return (pre[k].clone(), rho[k / n]);
        }
        let (j, i) = (k / n, k % n);
        let (bj, rho) = self.probe_row(probe, j);
        (RowSet::preactivation(self.net, j, i, bj), *rho)
    }

    /// The oriented switching value of entry k at the probe: ≥ 0 while it keeps its mode,
    /// < 0 once it crossed (past the round-off band). Free: ±P + ρ_j; pinned: the margin
    /// min(σ − γ, 1 − σ) of its equivalent control plus [`SIGMA_ROUNDOFF_EPS`]·ε.
    fn oriented(&mut self, probe: &mut Probe<T>, k: usize) -> T {
        let n = self.net.n;
        let p = self.net.prec;
        match self.rows.modes[k] {
            Mode::Positive => {
                let (v, rho) = self.probe_p(probe, k);
                v + &T::from_f64(rho, p)
            }
            Mode::Negative => {
                let (v, rho) = self.probe_p(probe, k);
                T::from_f64(rho, p) - &v
            }
            _ => {
                let (j, l) = (k / n, k % n);
                if probe.weights.is_none() {
                    self.prepare(&probe.y[..n]);
                    probe.weights = Some((0..n).map(|i| self.weight(i)).collect());
                }
                if !probe.sigma.contains_key(&j) {
                    let w = probe.weights.as_ref().expect("weights");
                    let pr = self.rows.pinned[j].as_ref().expect("pinned row");
                    let sig: Vec<T> = pr
                        .set
                        .iter()
                        .enumerate()
                        .map(|(r, &l)| {
                            let mut v = T::zero(p);
                            for (rv, wi) in pr.r.row(r).iter().zip(w) {
                                v.add_mul_mut(rv, wi);
                            }
                            v / &(w[l].clone() * &self.net.y[l])
                        })
                        .collect();
                    probe.sigma.insert(j, sig);
                }
                let pr = self.rows.pinned[j].as_ref().expect("pinned row");
                let r = pr.set.iter().position(|&x| x == l).expect("pinned entry");
                let sigma = probe.sigma[&j][r].clone();
                let lo = sigma.clone() - &self.net.gamma;
                let hi = T::one(p) - &sigma;
                lo.min_of(&hi) + &(T::epsilon(p) * &T::from_f64(SIGMA_ROUNDOFF_EPS, p))
            }
        }
    }

    /// Where the accepted step from (s0, y0) of size h with end state y1 ends: at the earliest
    /// event, at the horizon u = `u_target`, or at its end. `at(sys, θ, out)` writes the
    /// method's state at s0 + θh. `events` false: no location (crossings are handled at the
    /// step end by the caller).
    #[allow(clippy::too_many_arguments)]
    pub fn step_end<F>(
        &mut self,
        at: &mut F,
        s0: &T,
        y0: &[T],
        h: &T,
        y1: &[T],
        u_target: Option<&T>,
        events: bool,
        due: &mut Vec<usize>,
        crossed: &mut Vec<usize>,
    ) -> StepEnd<T>
    where
        F: FnMut(&mut Self, &T, &mut [T]),
    {
        let (n, p) = (self.net.n, self.net.prec);
        let s1 = s0.clone() + h;
        self.queue.pop_due(s1.to_f64(), due);
        let pinned: Vec<usize> = (0..self.rows.m * n).filter(|&k| self.rows.modes[k] == Mode::Sliding).collect();
        self.stats.entries_examined += (due.len() + pinned.len()) as u64;
        let mut end = Probe::new(y1.to_vec());
        let mut start = Probe::new(y0.to_vec());
        // Many due entries: one product for all of P at each end (the start's from the last
        // scheduling at this very state, when it made one).
        let p_start = self.p_start.take();
        self.p_end = None;
        if due.len() * 8 > self.rows.m * n {
            self.probe_full(&mut end);
            match p_start {
                Some(full) => start.full = Some(full),
                None => self.probe_full(&mut start),
            }
        }
        crossed.clear();
        // (entry, θ of the bracket's crossed end)
        let mut cand: Vec<(usize, T)> = Vec::new();
        let hf = h.to_f64();
        let mut suspicious: Vec<(usize, f64)> = Vec::new();
        for &k in due.iter() {
            let f1 = self.oriented(&mut end, k);
            if f1.is_sign_negative() {
                cand.push((k, T::one(p)));
                continue;
            }
            // The oriented value at the start from the same P (one evaluation, not two).
            let (pv0, rho0) = self.probe_p(&mut start, k);
            let f0 = match self.rows.modes[k] {
                Mode::Positive => pv0.clone() + &T::from_f64(rho0, p),
                Mode::Negative => T::from_f64(rho0, p) - &pv0,
                _ => self.oriented(&mut start, k),
            };
            let rate = RATE_SAFETY * self.net.a[k / n].to_f64().abs() * self.entry_rate(k, pv0.to_f64());
            if f0.to_f64().abs() + f1.to_f64().abs() <= rate * hf {
                suspicious.push((k, rate * hf));
            }
        }
        if events && !suspicious.is_empty() {
            // Same side at both ends but a crossing inside is not excluded by the rate bound:
            // examine the interpolant on a grid of GRID_POINTS sub-intervals (shared probes).
            let many = suspicious.len() * 8 > self.rows.m * n;
            let grid: Vec<(T, Probe<T>)> = (1..GRID_POINTS)
                .map(|g| {
                    let th = T::ratio(g as i64, GRID_POINTS as i64, p);
                    let mut pr = self.probe_at(at, &th);
                    if many {
                        self.probe_full(&mut pr);
                    }
                    (th, pr)
                })
                .collect();
            let mut grid = grid;
            for &(k, _) in &suspicious {
                for (th, pr) in grid.iter_mut() {
                    if self.oriented(pr, k).is_sign_negative() {
                        self.stats.double_crossings += 1;
                        cand.push((k, th.clone()));
                        break;
                    }
                }
            }
        }
        for &k in &pinned {
            let f1 = self.oriented(&mut end, k);
            if f1.is_sign_negative() {
                cand.push((k, T::one(p)));
            }
        }
        if !events {
            crossed.extend(cand.iter().map(|(k, _)| *k));
            return self.terminal_or_full(at, s0, h, y1, u_target, None);
        }
        if cand.is_empty() {
            // The next step starts here with the same rows: its start values are these.
            self.p_end = end.full.take();
            return self.terminal_or_full(at, s0, h, y1, u_target, None);
        }
        // Earliest first: locate the best candidate, then any other already crossed there.
        let mut which = 0;
        let mut hi = cand[0].1.clone();
        for (idx, (_, th)) in cand.iter().enumerate() {
            if *th < hi {
                hi = th.clone();
                which = idx;
            }
        }
        let mut theta;
        let mut probe;
        loop {
            let k = cand[which].0;
            theta = self.locate(at, k, &hi, s0, h);
            probe = self.probe_at(at, &theta);
            let mut earlier = None;
            for (idx, (kk, _)) in cand.iter().enumerate() {
                if idx != which && self.oriented(&mut probe, *kk).is_sign_negative() && earlier.is_none() {
                    // Crossed at θ already: is it strictly earlier? Its root lies in [0, θ].
                    let f0 = self.oriented(&mut start, *kk);
                    if !f0.is_sign_negative() {
                        earlier = Some(idx);
                    }
                }
            }
            match earlier {
                Some(idx) if theta > T::zero(p) => {
                    // Shrink the bracket unless the other root is at θ itself (a batch).
                    let k2 = cand[idx].0;
                    let th2 = self.locate(at, k2, &theta, s0, h);
                    if th2 < theta {
                        hi = th2.clone();
                        which = idx;
                        continue;
                    }
                    break;
                }
                _ => break,
            }
        }
        for (kk, _) in &cand {
            if self.oriented(&mut probe, *kk).is_sign_negative() {
                crossed.push(*kk);
            }
        }
        if crossed.is_empty() {
            crossed.push(cand[which].0);
        }
        if let StepEnd::Terminal { s, y } = self.terminal_or_full(at, s0, h, y1, u_target, Some(&theta)) {
            return StepEnd::Terminal { s, y };
        }
        let s = s0.clone() + &(h.clone() * &theta);
        StepEnd::Event { s, y: probe.y, batch: crossed.clone() }
    }

    fn probe_at<F: FnMut(&mut Self, &T, &mut [T])>(&mut self, at: &mut F, theta: &T) -> Probe<T> {
        let mut y = vec![T::zero(self.net.prec); self.net.n + 1];
        at(self, theta, &mut y);
        Probe::new(y)
    }

    /// |dP_ji/ds| / |a_j| bound of entry k whose pre-activation is `pv`: off-diagonal only
    /// when the diagonal term pushes P away from 0 (sign P = sign a_j y_i).
    fn entry_rate(&self, k: usize, pv: f64) -> f64 {
        let n = self.net.n;
        let away = (self.net.a[k / n].to_f64() * self.net.y[k % n].to_f64() > 0.0) == (pv > 0.0);
        if away {
            self.rows.rate_off[k]
        } else {
            self.rows.rate[k]
        }
    }

    /// The root of entry k's oriented value on [0, hi] (≥ 0 at 0, < 0 at hi), to round-off of
    /// s, by the Illinois variant of regula falsi; returns the crossed end of the final bracket.
    fn locate<F: FnMut(&mut Self, &T, &mut [T])>(&mut self, at: &mut F, k: usize, hi: &T, s0: &T, h: &T) -> T {
        let p = self.net.prec;
        let mut a = T::zero(p);
        let mut b = hi.clone();
        let mut pa = self.probe_at(at, &a);
        let mut fa = self.oriented(&mut pa, k).to_f64();
        if fa < 0.0 {
            return a;
        }
        let mut pb = self.probe_at(at, &b);
        let mut fb = self.oriented(&mut pb, k).to_f64();
        let eps = T::epsilon(p).to_f64();
        let scale = s0.to_f64().abs().max(h.to_f64().abs());
        let mut side = 0i32;
        for _ in 0..200 {
            let width = (b.clone() - &a).to_f64();
            if width * h.to_f64().abs() <= 4.0 * eps * scale || width <= 4.0 * eps {
                break;
            }
            let mut t = if fa.is_finite() && fb.is_finite() && fa != fb { fa / (fa - fb) } else { 0.5 };
            if !(t > 0.0 && t < 1.0) {
                t = 0.5;
            }
            // Keep the iterate away from the ends (guards against stagnation).
            t = t.clamp(0.01, 0.99);
            let c = a.clone() + &((b.clone() - &a) * &T::from_f64(t, p));
            let mut pc = self.probe_at(at, &c);
            let fc = self.oriented(&mut pc, k).to_f64();
            if fc < 0.0 {
                b = c;
                fb = fc;
                if side == -1 {
                    fa /= 2.0;
                }
                side = -1;
            } else {
                a = c;
                fa = fc;
                if side == 1 {
                    fb /= 2.0;
                }
                side = 1;
            }
        }
        b
    }

    /// The horizon on u inside [0, θ_lim] (θ_lim = 1 without an event), else the full step.
    fn terminal_or_full<F: FnMut(&mut Self, &T, &mut [T])>(
        &mut self,
        at: &mut F,
        s0: &T,
        h: &T,
        y1: &[T],
        u_target: Option<&T>,
        theta_lim: Option<&T>,
    ) -> StepEnd<T> {
        let (n, p) = (self.net.n, self.net.prec);
        let Some(target) = u_target else { return StepEnd::Full };
        let reaches = match theta_lim {
            None => y1[n] >= *target,
            Some(th) => self.probe_at(at, th).y[n] >= *target,
        };
        if !reaches {
            return StepEnd::Full;
        }
        // Bisection on u(θ) − target (u is increasing).
        let mut a = T::zero(p);
        let mut b = theta_lim.cloned().unwrap_or_else(|| T::one(p));
        let eps = T::epsilon(p).to_f64();
        for _ in 0..300 {
            if (b.clone() - &a).to_f64() <= 2.0 * eps {
                break;
            }
            let c = (a.clone() + &b) * &T::ratio(1, 2, p);
            if self.probe_at(at, &c).y[n] >= *target {
                b = c;
            } else {
                a = c;
            }
        }
        let y = self.probe_at(at, &b).y;
        StepEnd::Terminal { s: s0.clone() + &(h.clone() * &b), y }
    }

    /// Reschedule free entry k at Ω (its row anchored): τ = s + |P| / (safety |a_j| c), with the
    /// off-diagonal bound when the diagonal pushes P away from 0.
    pub fn schedule(&mut self, k: usize, s: f64, bj: &[T]) {
        let n = self.net.n;
        let (j, i) = (k / n, k % n);
        if self.rows.modes[k] == Mode::Sliding {
            self.queue.remove(k);
            return;
        }
        let pv = RowSet::preactivation(self.net, j, i, bj).to_f64();
        self.schedule_value(k, s, pv);
    }

    /// Schedule free entry k whose pre-activation at s is `pv`.
    fn schedule_value(&mut self, k: usize, s: f64, pv: f64) {
        let j = k / self.net.n;
        let rate = RATE_SAFETY * self.net.a[j].to_f64().abs() * self.entry_rate(k, pv);
        let tau = if rate > 0.0 { s + pv.abs() / rate } else { f64::INFINITY };
        self.queue.schedule(k, tau);
    }

    /// Reschedule every free entry of row j at Ω.
    pub fn schedule_row(&mut self, j: usize, s: f64, omega: &[T]) {
        let n = self.net.n;
        let mut bj = vec![T::zero(self.net.prec); n];
        let mut tmp = T::zero(self.net.prec);
        self.rows.row_at(self.net, j, omega, &mut bj, &mut tmp);
        for i in 0..n {
            self.schedule(j * n + i, s, &bj);
        }
    }

    /// Reschedule the entries in `ks` at Ω (rows computed once each; all of P in one product
    /// when there are many, or the step end's P when `full` is set).
    pub fn schedule_entries(&mut self, ks: &[usize], s: f64, omega: &[T]) {
        let n = self.net.n;
        let mut probe = Probe::new(omega.to_vec());
        if let Some(full) = self.p_end.take() {
            probe.full = Some(full);
        } else if ks.len() * 8 > self.rows.m * n {
            self.probe_full(&mut probe);
        }
        if probe.full.is_some() {
            for &k in ks {
                if self.rows.modes[k] == Mode::Sliding {
                    self.queue.remove(k);
                    continue;
                }
                let pv = self.probe_p(&mut probe, k).0.to_f64();
                self.schedule_value(k, s, pv);
            }
            self.p_start = probe.full.take();
            return;
        }
        for &k in ks {
            let bj = self.probe_row(&mut probe, k / n).0.clone();
            self.schedule(k, s, &bj);
        }
    }

    /// The minimal-norm σ of row j on `set` with the other entries at their sides, at the
    /// prepared weights: (σ, σ_free) per entry of the set, σ_free = σ − ∂/H_rr (outside [γ, 1]
    /// exactly when the entry must leave; see the span engine's `solve_row`).
    fn row_qp(&self, j: usize, set: &[usize]) -> Vec<T> {
        let net = self.net;
        let (n, p) = (net.n, net.prec);
        let k = set.len();
        let mut in_set = vec![false; n];
        for &i in set {
            in_set[i] = true;
        }
        let (one, zero) = (T::one(p), T::zero(p));
        let mut h = Vec::with_capacity(k * k);
        for &i in set {
            for &l in set {
                h.push(self.lw.wy[i].clone() * net.k_mat.at(i, l) * &self.lw.wy[l]);
            }
        }
        let mut g = vec![T::zero(p); k];
        for (r, &i) in set.iter().enumerate() {
            let mut acc = T::zero(p);
            for l in (0..n).filter(|&l| !in_set[l]) {
                let v = self.lw.wy[l].clone() * self.rows.slope(net, j * n + l, &one, &zero);
                acc.add_mul_mut(&v, net.k_mat.at(i, l));
            }
            g[r] = acc * &self.lw.wy[i];
        }
        let mid = (T::one(p) + &net.gamma) * &T::ratio(1, 2, p);
        let start = vec![mid; k];
        let tol = 1e3 * k as f64 * T::epsilon(p).to_f64();
        let sol = boxqp::solve_box_qp(&h, &g, &net.gamma, &one, &start, tol);
        (0..k)
            .map(|r| {
                let mut grad = sol.gradient[r].clone();
                let at_bound = sol.side[r] != BoxSide::Free;
                if at_bound && sol.gradient[r].abs().to_f64() <= tol * sol.gradient_scale[r].to_f64() {
                    grad.assign_f64(0.0);
                }
                let hrr = &h[r * k + r];
                let mut free = sol.x[r].clone();
                if hrr.sign() == Some(std::cmp::Ordering::Greater) {
                    free -= &(grad / hrr);
                }
                free
            })
            .collect()
    }

    fn row_set(&self, j: usize) -> Vec<usize> {
        let n = self.net.n;
        (0..n).filter(|&i| self.rows.modes[j * n + i] == Mode::Sliding).collect()
    }

    fn margin_of(&self, sf: &T) -> T {
        let p = self.net.prec;
        let lo = sf.clone() - &self.net.gamma;
        let hi = T::one(p) - sf;
        lo.min_of(&hi)
    }

    /// The side a pinned entry leaves to (see the span engine's `leaving_mode`).
    fn leaving(&self, k: usize, sf: &T) -> Mode {
        let n = self.net.n;
        let p = self.net.prec;
        let attracting = (self.net.a[k / n].clone() * &self.net.y[k % n]).is_sign_negative();
        let mid = (T::one(p) + &self.net.gamma) * &T::ratio(1, 2, p);
        if (*sf >= mid) == attracting {
            Mode::Positive
        } else {
            Mode::Negative
        }
    }

    /// New modes of row j after its entries in `batch` crossed (weights prepared): a pinned
    /// entry leaves on the side it moves to; a crossing entry is pinned when the row's
    /// minimal-norm selection with it added is interior, else it continues to the other side;
    /// then pinned entries whose selection is at a bound with a nonzero multiplier leave.
    fn decide_row(&mut self, j: usize, batch: &[usize]) {
        let n = self.net.n;
        let zero = T::zero(self.net.prec);
        for &k in batch {
            let i = k % n;
            if self.rows.modes[k] == Mode::Sliding {
                let set = self.row_set(j);
                let sf = self.row_qp(j, &set);
                let r = set.iter().position(|&x| x == i).expect("pinned");
                self.rows.modes[k] = self.leaving(k, &sf[r]);
            } else {
                let before = self.rows.modes[k];
                self.rows.modes[k] = Mode::Sliding;
                let set = self.row_set(j);
                let sf = self.row_qp(j, &set);
                let r = set.iter().position(|&x| x == i).expect("pinned");
                if self.margin_of(&sf[r]) < zero {
                    let mut md = self.leaving(k, &sf[r]);
                    if md == before {
                        md = if before == Mode::Positive { Mode::Negative } else { Mode::Positive };
                    }
                    self.rows.modes[k] = md;
                }
            }
        }
        for _ in 0..=n {
            let set = self.row_set(j);
            if set.is_empty() {
                return;
            }
            let sf = self.row_qp(j, &set);
            let leaving: Vec<(usize, Mode)> = set
                .iter()
                .zip(&sf)
                .filter(|(_, f)| self.margin_of(f) < zero)
                .map(|(&i, f)| (j * n + i, self.leaving(j * n + i, f)))
                .collect();
            if leaving.is_empty() {
                return;
            }
            for (k, md) in leaving {
                self.rows.modes[k] = md;
            }
        }
    }

    /// Apply the batch at (s, Ω): rebase the margins, decide each touched row, update A and
    /// the row anchors, reschedule. `others`: entries popped this step that did not cross
    /// (rescheduled at Ω). Returns the number of mode changes.
    pub fn apply_events(
        &mut self,
        s: &T,
        omega: &[T],
        batch: &[usize],
        others: &[usize],
        flips_here: &mut (f64, usize),
    ) -> usize {
        let net = self.net;
        let (n, p) = (net.n, net.prec);
        let sf = s.to_f64();
        self.kernel.rebase(omega);
        self.prepare(omega);
        self.stats.batches += 1;
        let mut rows: Vec<usize> = batch.iter().map(|&k| k / n).collect();
        rows.sort_unstable();
        rows.dedup();
        let mut changes = 0;
        let mut tmp = T::zero(p);
        for &j in &rows {
            let in_row: Vec<usize> = batch.iter().copied().filter(|&k| k / n == j).collect();
            *flips_here = if flips_here.0 == sf { (sf, flips_here.1 + in_row.len()) } else { (sf, in_row.len()) };
            let mut bj = vec![T::zero(p); n];
            self.rows.row_at(net, j, omega, &mut bj, &mut tmp);
            let old: Vec<Mode> = self.rows.modes[j * n..(j + 1) * n].to_vec();
            self.decide_row(j, &in_row);
            let new: Vec<Mode> = self.rows.modes[j * n..(j + 1) * n].to_vec();
            if old == new {
                continue;
            }
            for (o, nw) in old.iter().zip(&new) {
                match (o, nw) {
                    (a, b) if a == b => {}
                    (_, Mode::Sliding) => self.stats.pins_entered += 1,
                    (Mode::Sliding, _) => self.stats.pins_left += 1,
                    _ => self.stats.kinks += 1,
                }
                if o != nw {
                    changes += 1;
                }
            }
            let any_pinned = |ms: &[Mode]| ms.iter().any(|&m| m == Mode::Sliding);
            if !any_pinned(&old) && !any_pinned(&new) {
                // Rank-two changes, one entry at a time (the others at their current sides).
                self.rows.modes[j * n..(j + 1) * n].copy_from_slice(&old);
                for i in 0..n {
                    if old[i] != new[i] {
                        self.kernel.flip_free(net, &self.rows, j, i, old[i], new[i]);
                        self.rows.modes[j * n + i] = new[i];
                        self.stats.kernel_updates += 1;
                    }
                }
                self.rows.rebuild_row(net, j);
            } else {
                self.rows.modes[j * n..(j + 1) * n].copy_from_slice(&old);
                self.kernel.row_term(net, &self.rows, j, &-T::one(p));
                self.rows.modes[j * n..(j + 1) * n].copy_from_slice(&new);
                self.rows.rebuild_row(net, j);
                self.kernel.row_term(net, &self.rows, j, &T::one(p));
                self.stats.kernel_updates += 1;
            }
            self.rows.reanchor(net, j, omega, &bj);
            for i in 0..n {
                self.schedule(j * n + i, sf, &bj);
            }
        }
        let rest: Vec<usize> =
            others.iter().copied().filter(|k| !batch.contains(k) && rows.binary_search(&(k / n)).is_err()).collect();
        self.schedule_entries(&rest, sf, omega);
        // Batch entries whose row did not change (a crossing decided to stay): rescheduled too.
        let stay: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&k| self.rows.modes[k] != Mode::Sliding && rows.binary_search(&(k / n)).is_ok())
            .collect();
        self.schedule_entries(&stay, sf, omega);
        changes
    }

    /// Exact refresh at Ω: q from B = c + a M Ω through P = P0 + B K (O(m n²)) and A rebuilt;
    /// the drift of the incremental updates is recorded.
    pub fn refresh(&mut self, omega: &[T]) {
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        let mut b = vec![T::zero(p); m * n];
        self.rows.b_at(net, omega, &mut b);
        let mut pre = vec![T::zero(p); m * n];
        net.preactivations_inplace(&b, &mut pre);
        let mut q = vec![T::zero(p); n];
        for j in 0..m {
            for i in 0..n {
                let k = j * n + i;
                let phi = match self.rows.modes[k] {
                    Mode::Positive => pre[k].clone(),
                    Mode::Negative => pre[k].clone() * &net.gamma,
                    _ => continue,
                };
                q[i].add_mul_mut(&net.a[j], &phi);
            }
        }
        for (qi, yi) in q.iter_mut().zip(&net.y) {
            *qi *= yi;
        }
        let mut qk = vec![T::zero(p); n];
        let mut d = vec![T::zero(p); n];
        self.kernel.margins_into(omega, &mut qk, &mut d);
        let drift = q.iter().zip(&qk).map(|(a, b)| (a.clone() - b).abs().to_f64()).fold(0.0, f64::max);
        self.stats.max_refresh_drift = self.stats.max_refresh_drift.max(drift);
        self.stats.refreshes += 1;
        self.kernel.q_anchor = q;
        self.kernel.omega_anchor = omega.to_vec();
        self.kernel.rebuild(net, &self.rows);
        self.stats.kernel_updates += 1;
    }
}
