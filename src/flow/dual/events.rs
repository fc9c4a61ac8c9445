//! Events of the dual engine: which entries may have crossed in a step (the queue's due
//! entries and every pinned entry), where (on the method's own interpolant, earliest first,
//! simultaneous ones as one batch), and what happens there (the row's minimal-norm selection
//! decides sides and pins; A and the row's anchor are updated).
//!
//! **Double crossings.** An entry with the same side at both ends of a step may have crossed
//! inside only if its certified delays from the step's two ends (see `schedule`: forwards from
//! the time it was scheduled, backwards from the end) leave a gap in the step; then its value
//! is examined on the interpolant at the [`GRID_POINTS`] − 1 interior points of a uniform grid
//! (shared by all such entries of the step), and the first sign change brackets its root.

use super::probe::Probe;
use super::system::DualSystem;
use crate::flow::span::Mode;
use marginflow_solvers::boxqp::{self, BoxSide};
use marginflow_solvers::Real;

/// Sub-intervals of the grid on which a step's interpolant is examined for an entry whose
/// rate bound does not exclude a crossing inside the step.
pub const GRID_POINTS: usize = 8;

/// The first prefix [0, θ] of a step examined for events is at least this long.
pub const PREFIX_MIN: f64 = 1.0 / 4096.0;

/// Each further prefix is this many times longer.
pub const PREFIX_GROWTH: f64 = 4.0;

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

impl<T: Real> DualSystem<'_, T> {
    /// Where the accepted step from (s0, y0) of size h with end state y1 ends: at the earliest
    /// event, at the horizon u = `u_target`, or at its end. `at(sys, θ, out)` writes the
    /// method's state at s0 + θh. `events` false: no location (crossings are handled at the
    /// step end by the caller). On an event, or a crossing without events, `due` holds the
    /// entries the caller reschedules at the step's final state.
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
        due: &mut Vec<(usize, f64)>,
        crossed: &mut Vec<usize>,
    ) -> StepEnd<T>
    where
        F: FnMut(&mut Self, &T, &mut [T]),
    {
        let (n, p) = (self.net.n, self.net.prec);
        let (c0, c1) = (self.clocks(&y0[..n]), self.clocks(&y1[..n]));
        let pinned: Vec<usize> = (0..self.rows.m * n).filter(|&k| self.rows.modes[k] == Mode::Sliding).collect();
        crossed.clear();
        // (entry, θ of the bracket's crossed end)
        let mut cand: Vec<(usize, T)> = Vec::new();
        // Entries popped in this step; the last prefix's are in `due`.
        let mut touched: Vec<usize> = Vec::new();
        // The step is examined on growing prefixes [0, θ], from where the clocks' chords first
        // reach a key: an event early in a long step pops only the entries due before it.
        let mut theta_f = 1.0f64;
        if events {
            let first = self.queue.first_keys();
            for i in 0..n {
                if c1[i] > c0[i] {
                    theta_f = theta_f.min((first[i] - c0[i]) / (c1[i] - c0[i]));
                }
            }
            theta_f = theta_f.max(PREFIX_MIN);
        }
        let mut end;
        let mut th;
        let mut start: Option<Probe<T>> = None;
        loop {
            let last = theta_f >= 1.0;
            let cl;
            if last {
                th = T::one(p);
                end = Probe::new(y1.to_vec());
                cl = c1.clone();
            } else {
                th = T::from_f64(theta_f, p);
                end = self.probe_at(at, &th);
                cl = self.clocks(&end.y[..n]);
            }
            self.queue.pop_due(&cl, due);
            touched.extend(due.iter().map(|e| e.0));
            self.stats.entries_examined += due.len() as u64;
            // Many due entries: all of P at the probe by one product.
            if due.len() * 8 > self.rows.m * n {
                self.probe_full(&mut end);
            }
            let mut suspicious: Vec<usize> = Vec::new();
            for &(k, key) in due.iter() {
                if self.oriented(&mut end, k).is_sign_negative() {
                    cand.push((k, th.clone()));
                    continue;
                }
                // No sign change while its clock is below max(c(s0), key), nor within the
                // distance of its value here: a gap between them may hide two crossings.
                let i = k % n;
                let back = self.clock_distance(k, self.probe_p(&mut end, k).0.to_f64());
                if key.max(c0[i]) + back < cl[i] {
                    suspicious.push(k);
                }
            }
            if events && !suspicious.is_empty() {
                self.screen_double_crossings(at, y0, &th, &mut end, &mut start, &suspicious, &mut cand);
            }
            if !cand.is_empty() || last {
                break;
            }
            // No event in [0, θ]: the popped entries are rescheduled there (on the trajectory).
            let ks: Vec<usize> = due.iter().map(|e| e.0).collect();
            self.schedule_at(&mut end, &ks, &cl);
            theta_f = (theta_f * PREFIX_GROWTH).min(1.0);
        }
        // Pinned entries at the last prefix only: keys set on earlier prefixes are replaced at
        // the event if one of them left before those prefixes (every popped entry is
        // rescheduled there).
        self.stats.entries_examined += pinned.len() as u64;
        for &k in &pinned {
            if self.oriented(&mut end, k).is_sign_negative() {
                cand.push((k, th.clone()));
            }
        }
        if cand.is_empty() || !events {
            let finish = self.terminal_or_full(at, s0, h, y1, u_target, None);
            match &finish {
                // The run ends inside the step: the popped entries are rescheduled there.
                StepEnd::Terminal { y, .. } => self.reschedule(&touched, y),
                // Without events the caller applies the crossings at s1 (and reschedules).
                _ if !cand.is_empty() => crossed.extend(cand.iter().map(|(k, _)| *k)),
                // The step ends at s1 with the same rows: the due entries are rescheduled there.
                _ => {
                    let ks: Vec<usize> = due.iter().map(|e| e.0).collect();
                    self.schedule_at(&mut end, &ks, &c1);
                }
            }
            return finish;
        }
        let mut start = start.unwrap_or_else(|| Probe::new(y0.to_vec()));
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
            self.reschedule(&touched, &y);
            return StepEnd::Terminal { s, y };
        }
        // Every entry popped in this step is rescheduled at the event by the caller.
        due.clear();
        due.extend(touched.iter().map(|&k| (k, 0.0)));
        let s = s0.clone() + &(h.clone() * &theta);
        StepEnd::Event { s, y: probe.y, batch: crossed.clone() }
    }

    /// Entries that keep their side at both ends of the prefix [0, θ] (`end` is its probe) but
    /// whose bounds do not exclude a crossing inside: on the grid θg/[`GRID_POINTS`], the
    /// interpolant's deviation e_g from the chord of Ω gives |P(θ_g) − chord_P(θ_g)| ≤
    /// |a_j| κ_ji (Ĝ|e_g|)_i; an entry whose chord stays farther from 0 than that (both ends on
    /// one side) is cleared, the others are evaluated at the grid points, and the first sign
    /// change found is a candidate.
    #[allow(clippy::too_many_arguments)]
    fn screen_double_crossings<F: FnMut(&mut Self, &T, &mut [T])>(
        &mut self,
        at: &mut F,
        y0: &[T],
        th: &T,
        end: &mut Probe<T>,
        start: &mut Option<Probe<T>>,
        suspicious: &[usize],
        cand: &mut Vec<(usize, T)>,
    ) {
        let (n, p) = (self.net.n, self.net.prec);
        let many = suspicious.len() * 8 > self.rows.m * n;
        let st = start.get_or_insert_with(|| Probe::new(y0.to_vec()));
        if many && st.full.is_none() {
            self.probe_full(st);
        }
        let om0: Vec<f64> = y0[..n].iter().map(|v| v.to_f64()).collect();
        let om1: Vec<f64> = end.y[..n].iter().map(|v| v.to_f64()).collect();
        let mut grid: Vec<(T, Probe<T>)> = Vec::with_capacity(GRID_POINTS - 1);
        let mut dev = vec![0.0f64; n];
        let mut e = vec![0.0f64; n];
        for g in 1..GRID_POINTS {
            let frac = g as f64 / GRID_POINTS as f64;
            let tg = th.clone() * &T::ratio(g as i64, GRID_POINTS as i64, p);
            let pr = self.probe_at(at, &tg);
            for k in 0..n {
                e[k] = (pr.y[k].to_f64() - om0[k] - frac * (om1[k] - om0[k])).abs();
            }
            for (i, d) in dev.iter_mut().enumerate() {
                let v: f64 = self.rows.cover[i * n..(i + 1) * n].iter().zip(&e).map(|(c, x)| c * x).sum();
                *d = d.max(v);
            }
            grid.push((tg, pr));
        }
        let st = start.as_mut().expect("start probe");
        let mut fails = Vec::new();
        for &k in suspicious {
            let p0 = self.probe_p(st, k).0.to_f64();
            let p1 = self.probe_p(end, k).0.to_f64();
            let reach = self.clock_distance(k, 1.0);
            // safety·|a|κ·dev < min |chord| ⇔ dev < min(|p0|, |p1|) / (safety |a| κ).
            if p0.signum() != p1.signum() || dev[k % n] >= p0.abs().min(p1.abs()) * reach {
                fails.push(k);
            }
        }
        if fails.len() * 8 > self.rows.m * n {
            for (_, pr) in grid.iter_mut() {
                self.probe_full(pr);
            }
        }
        for k in fails {
            for (tg, pr) in grid.iter_mut() {
                if self.oriented(pr, k).is_sign_negative() {
                    self.stats.double_crossings += 1;
                    cand.push((k, tg.clone()));
                    break;
                }
            }
        }
    }

    /// Reschedule entries at y (the run ends there).
    fn reschedule(&mut self, ks: &[usize], y: &[T]) {
        self.schedule_entries(ks, &y[..self.net.n]);
    }

    fn probe_at<F: FnMut(&mut Self, &T, &mut [T])>(&mut self, at: &mut F, theta: &T) -> Probe<T> {
        let mut y = vec![T::zero(self.net.prec); self.net.n + 1];
        at(self, theta, &mut y);
        Probe::new(y)
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
        let mut changed = Vec::new();
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
            changed.push(j);
        }
        // Rescheduled at (s, Ω): every entry of a changed row, and the step's other popped
        // entries and batch entries (a crossing may decide to stay) in unchanged rows.
        let mut ks: Vec<usize> = changed.iter().flat_map(|&j| j * n..(j + 1) * n).collect();
        ks.extend(others.iter().chain(batch).copied().filter(|k| changed.binary_search(&(k / n)).is_err()));
        ks.sort_unstable();
        ks.dedup();
        self.schedule_entries(&ks, omega);
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
