//! What the caller sees during a run (rows, checkpoints, stop requests), and the integrator
//! observer that produces trajectory rows and watches `auto`'s switch criterion.

use super::auto::{HorizonEnd, Phase, SwitchMemory};
use super::checkpoint::Checkpoint;
use super::settings::FlowSettings;
use super::span::FlowSystem;
use super::summary::{FlowStatus, FlowTime, RowCosines, StationaryPoint, TrajectoryRow};
use super::watchdog::{NoProgress, Plateau, Watchdog};
use crate::error::{Error, Result};
use crate::metrics::{self, cosine, log10_time, StateNumbers};
use crate::model::loss::Loss;
use marginflow_solvers::ode::{Control, IntegratorState, Observer, OdeSystem};
use marginflow_solvers::{Mat, Real};
use serde::Serialize;
use std::time::Instant;

/// Velocity dW/ds (small representation) at the state, under the system's modes.
pub(super) fn velocity_small<T: Real>(sys: &mut FlowSystem<'_, T>, y: &[T], s: &T) -> Mat<T> {
    let net = sys.net;
    let mut dy = vec![T::zero(net.prec); y.len()];
    sys.eval_inplace(s, y, &mut dy);
    net.small_span(&dy[..net.m * net.n])
}

/// What the caller of [`run`] does with rows, checkpoints and stop requests.
pub trait FlowObserver {
    /// A trajectory row was produced.
    fn row(&mut self, row: &TrajectoryRow) -> Result<()>;
    /// Whether a checkpoint should be written now.
    fn checkpoint_due(&mut self) -> bool;
    /// Write this checkpoint.
    fn checkpoint(&mut self, cp: &Checkpoint) -> Result<()>;
    /// Whether the run should stop now (e.g. a signal arrived).
    fn stop_requested(&mut self) -> bool;
    /// Where the run is, after every accepted step (for progress displays; default: ignored).
    fn progress(&mut self, _at: &FlowProgress) {}
}

/// Where a run is, reported to [`FlowObserver::progress`] after every accepted step.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FlowProgress {
    /// Normalized time s.
    pub s: f64,
    /// log10 t.
    pub log10_time: f64,
    /// log10 L at the last trajectory row (`None` before the first).
    pub log10_loss: Option<f64>,
    /// Accepted steps so far.
    pub accepted: u64,
    /// Rejected steps so far.
    pub rejected: u64,
    /// Kink events so far.
    pub events: u64,
}

pub(super) struct Rows<'o, T: Real> {
    pub(super) obs: &'o mut dyn FlowObserver,
    pub(super) reference: Option<(Mat<T>, Vec<T>)>,
    pub(super) rows_written: usize,
    pub(super) next_row: f64,
    pub(super) per_decade: f64,
    pub(super) max_rows: usize,
    pub(super) settings: FlowSettings,
    pub(super) data_hash: String,
    pub(super) error: Option<Error>,
    pub(super) started: Instant,
    pub(super) wall_before: f64,
    /// Phase of the run (see [`Phase`]).
    pub(super) phase: Phase,
    /// Switch criterion memory (observed only in phase 1 of an `auto` run).
    pub(super) switch: SwitchMemory,
    /// Whether this run is `auto` in phase 1 (the criterion is checked).
    pub(super) watch_switch: bool,
    /// Index of u = log(1+t) in the state.
    pub(super) u_index: usize,
    /// The horizon in f64 for the criterion.
    pub(super) end: HorizonEnd,
    /// Set when the observer stopped phase 1 to switch (not a user stop).
    pub(super) switch_now: bool,
    /// log10 L of the last trajectory row (gradient flow never increases the loss).
    pub(super) last_row_loss: Option<f64>,
    /// Why the run was stopped as numerically broken: the loss rose between two rows.
    pub(super) loss_rise: Option<String>,
    /// Scratch for the sign pattern of P (events off).
    pub(super) p_scratch: Vec<T>,
    /// s of the last trajectory row written (the final row is not repeated at the same state).
    pub(super) last_row_s: Option<f64>,
    /// Whether the switch criterion fired at the last [`Rows::observe`].
    pub(super) switch_pending: bool,
    /// The watchdog's memory (module `watchdog`).
    pub(super) watch: Watchdog,
    /// Set when the watchdog ended the run: `stalled` or `stationary`, and why.
    pub(super) ended: Option<(FlowStatus, String)>,
    /// The stationary point, at status `stationary`.
    pub(super) stationary: Option<StationaryPoint>,
    /// Set when the watchdog raised the tolerance: the integration restarts with
    /// `watch.rtol(settings.rtol)` from this state (not a user stop).
    pub(super) loosen_now: bool,
}

impl<'o, T: Real> Rows<'o, T> {
    pub(super) fn row(&self, sys: &mut FlowSystem<'_, T>, st: &IntegratorState<T>) -> Result<TrajectoryRow> {
        let net = sys.net;
        let mn = net.m * net.n;
        let sm = metrics::measure(net, &st.y[..mn])?;
        let cosines = self.reference.as_ref().map(|(wstar, _)| {
            let v = velocity_small(sys, &st.y, &st.s);
            RowCosines::of(&cosine(&sm.w_small, wstar), &cosine(&v, wstar))
        });
        Ok(TrajectoryRow {
            time: FlowTime::of(&st.s, &st.y[mn]),
            state: StateNumbers::with_singular_values(&sm, self.settings.singular_values),
            cosines,
            accepted: st.stats.accepted,
            rejected: st.stats.rejected,
            events: st.stats.events,
            rhs_evaluations: st.stats.rhs_evaluations,
        })
    }

    pub(super) fn checkpoint_of(&self, sys: &FlowSystem<'_, T>, st: &IntegratorState<T>) -> Checkpoint {
        let mut cp = Checkpoint::capture(
            &self.settings,
            &self.data_hash,
            st,
            &sys.modes.iter().map(|m| m.code()).collect::<Vec<i8>>(),
            self.rows_written,
            self.next_row,
            self.wall_before + self.started.elapsed().as_secs_f64(),
        );
        cp.phase = self.phase;
        cp.switch = self.switch.clone();
        cp.watchdog = self.watch.clone();
        cp
    }
}

impl<'o, T: Real> Rows<'o, T> {
    /// After an accepted step: `auto`'s switch criterion, a trajectory row when due, progress.
    /// Stop when a row could not be written or the loss rose; `switch_pending` is set when the
    /// criterion fired (acted on by [`Rows::finish_step`]).
    pub(super) fn observe(&mut self, sys: &FlowSystem<'_, T>, st: &IntegratorState<T>) -> Control {
        let s = st.s.to_f64();
        // The switch criterion first, so a checkpoint written below holds this step's memory (a
        // resumed run then re-decides the same way at its first observer call).
        let mut switch = false;
        if self.watch_switch && self.phase == Phase::Explicit {
            let (h, u) = (st.h.to_f64(), st.y[self.u_index].to_f64());
            let mut kinks = st.stats.events + st.stats.released;
            if !self.settings.events {
                // Kinks are crossed without events: watch the sign pattern instead.
                let mn = self.u_index;
                let mut p = std::mem::take(&mut self.p_scratch);
                p.resize(mn, T::zero(st.s.precision()));
                kinks += self.switch.note_pattern(st.stats.accepted, sys.network(), &st.y[..mn], &mut p);
                self.p_scratch = p;
            }
            self.switch.observe(st.stats.accepted, s, h, u, kinks);
            switch = self.switch.ready(s, h, u, self.end);
        }
        let stats = &st.stats;
        let counts =
            (stats.accepted + stats.rejected, stats.rejected, stats.events + stats.released, stats.floor_steps);
        if let Some(seen) = self.watch.step(&self.settings.watchdog, counts, s, self.settings.events) {
            self.watch.restart();
            if self.watch_switch && self.phase == Phase::Explicit && !self.watch.remedied {
                // The remedy: the stiff method from this state.
                self.watch.remedied = true;
                switch = true;
            } else if seen.floor_steps > 0 && self.watch.loosened < self.settings.watchdog.max_loosenings {
                // Steps at the round-off floor: the tolerance is below what the arithmetic holds.
                let before = self.watch.rtol(self.settings.rtol);
                self.watch.loosened += 1;
                let arithmetic = marginflow_solvers::Precision::from_bits(self.settings.precision).arithmetic();
                self.watch.warnings.push(format!(
                    "rtol raised from {before:e} to {:e} at s = {s:e}: {} of {} steps sat at the round-off floor 32ε·s ({arithmetic} cannot hold the tolerance there; --precision 106 or 212 can)",
                    self.watch.rtol(self.settings.rtol),
                    seen.floor_steps,
                    seen.attempts
                ));
                self.loosen_now = true;
                return Control::Stop;
            } else {
                self.ended = Some((FlowStatus::Stalled, self.stall_message(sys, st, &seen)));
                return Control::Stop;
            }
        }
        let due = s > 0.0 && s.log10() >= self.next_row && self.rows_written < self.max_rows;
        if due {
            // Metrics need a scratch system (the integrator holds the live one immutably here).
            let mut scratch = sys.clone();
            let row = match self.row(&mut scratch, st) {
                Ok(r) => r,
                Err(e) => {
                    self.error = Some(e);
                    return Control::Stop;
                }
            };
            if let Err(e) = self.obs.row(&row) {
                self.error = Some(e);
                return Control::Stop;
            }
            self.rows_written += 1;
            self.last_row_s = Some(s);
            if let Some(now) = row.state.log10_loss {
                // dL/dt = −‖∇L‖² ≤ 0: a rise beyond the tolerance is a numerical failure, not a
                // result (typically round-off in B once |B| ~ s on linearly dependent data).
                let slack = (1e3 * self.settings.rtol).max(1e-9) * now.abs().max(1.0);
                if let Some(prev) = self.last_row_loss {
                    if now > prev + slack {
                        let bmax = st.y[..self.u_index].iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
                        self.loss_rise = Some(format!(
                            "the loss rose from log10 L = {prev} to {now} at s = {s:e}, which gradient flow \
                             cannot do: round-off now dominates (max |B_ji| = {bmax:e}; on linearly \
                             dependent data B drifts along the null space of X)"
                        ));
                        return Control::Stop;
                    }
                }
                self.last_row_loss = Some(now);
                if self.stationary_at(sys, st, now, row.state.min_margin) {
                    return Control::Stop;
                }
            }
            let step = 1.0 / self.per_decade;
            while self.next_row <= s.log10() {
                self.next_row += step;
            }
        }
        self.obs.progress(&FlowProgress {
            s,
            log10_time: log10_time(&st.y[self.u_index].to_f64()),
            log10_loss: self.last_row_loss,
            accepted: st.stats.accepted,
            rejected: st.stats.rejected,
            events: st.stats.events,
        });
        self.switch_pending = switch;
        Control::Continue
    }

    /// The watchdog's `stalled` message: where (s, t, loss), what it saw, what to try.
    fn stall_message(&self, sys: &FlowSystem<'_, T>, st: &IntegratorState<T>, seen: &NoProgress) -> String {
        let s = st.s.to_f64();
        let lt = log10_time(&st.y[self.u_index].to_f64());
        let ll = self.last_row_loss.map_or("unknown".into(), |l| format!("{l:.6}"));
        let arithmetic = marginflow_solvers::Precision::from_bits(self.settings.precision).arithmetic();
        let remedy = if self.watch.remedied { " after the switch to SEULEX" } else { "" };
        let try_this = if seen.floor_steps * 2 >= seen.attempts {
            format!(
                "--rtol {:e} asks for more than {arithmetic} holds at this s (steps at the round-off floor 32ε·s): rerun with --precision 106 (or 212), or a looser --rtol",
                self.settings.rtol
            )
        } else if !self.settings.events {
            "kinks are stepped over unseen with --events off (a pre-activation chattering at 0 costs a rejected \
             step per crossing): try --events on (kinks located, sliding modes held)"
                .into()
        } else if self.phase == Phase::Stiff || self.settings.method.is_extrapolation() {
            "try --events off, --engine span, or a looser --rtol".into()
        } else {
            "try --method seulex (the flow may be stiff here), --events off, or --engine span".into()
        };
        format!(
            "no progress{remedy} at s = {s:e} (log10 t = {lt:.6}, log10 L = {ll}): of the last {} step attempts (from s = {:e}) {} were rejected and {} taken at the round-off floor, with no new kink seen; step size {:e}; {} pre-activations sliding; {try_this}",
            seen.attempts,
            seen.s_from,
            seen.rejected,
            seen.floor_steps,
            st.h.to_f64(),
            sys.sliding_count()
        )
    }

    /// The stationarity test at a trajectory row with log10 L = `log10_loss` (module
    /// `watchdog`): true (and `ended`, `stationary` set) when the flow has converged to a
    /// stationary point of positive loss.
    fn stationary_at(
        &mut self,
        sys: &FlowSystem<'_, T>,
        st: &IntegratorState<T>,
        log10_loss: f64,
        min_margin: Option<f64>,
    ) -> bool {
        let net = sys.network();
        let l0 = match self.settings.model.loss {
            Loss::Logistic => 2f64.ln(),
            Loss::Exponential => 1.0,
        };
        let floor_ln = (l0 / net.n as f64).ln();
        let misclassified = min_margin.is_some_and(|q| q <= 0.0);
        let s = st.s.to_f64();
        let ws = self.settings.watchdog.clone();
        let Some(Plateau { last_decade, decade_before, log10_limit }) =
            self.watch.row(&ws, s, log10_loss * std::f64::consts::LN_10, misclassified, floor_ln)
        else {
            return false;
        };
        // d ln L/d ln s = s‖v‖², v = dW/ds; ‖∇L‖ = L‖v‖.
        let mut scratch = sys.clone();
        let v = velocity_small(&mut scratch, &st.y, &st.s);
        let vnorm = metrics::frobenius_dot(&v, &v).sqrt().to_f64();
        if s * vnorm * vnorm > ws.stationary_rate {
            return false;
        }
        let Ok(sm) = metrics::measure(net, &st.y[..self.u_index]) else { return false };
        let points: Vec<usize> = (0..net.n).filter(|&i| sm.margins[i].to_f64() <= 0.0).collect();
        let gradient_norm = 10f64.powf(log10_loss) * vnorm;
        let shown: Vec<String> = points.iter().take(20).map(|i| i.to_string()).collect();
        let more = if points.len() > 20 { format!(", … ({} in all)", points.len()) } else { String::new() };
        let lt = log10_time(&st.y[self.u_index].to_f64());
        let until = match self.end {
            super::auto::HorizonEnd::LogTime(u) => {
                format!(" (the horizon log10 t = {:.4} would take s ≈ L·t)", log10_time(&u))
            }
            super::auto::HorizonEnd::S(_) => String::new(),
        };
        self.ended = Some((
            FlowStatus::Stationary,
            format!(
                "stationary point of positive loss at s = {s:e} (log10 t = {lt:.6}): log10 L = {log10_loss:.8} (ln L fell by {last_decade:.2e} over the last decade of s and {decade_before:.2e} over the one before; projected limit log10 L = {log10_limit:.6}), ‖∇L‖ = {gradient_norm:.3e}, d ln L/d ln s = {:.2e}; {} points misclassified (q_i ≤ 0, 0-based): {}{more}. The data are not separated along this flow, so normalized time cannot reach later t{until}",
                s * vnorm * vnorm,
                points.len(),
                shown.join(", ")
            ),
        ));
        self.stationary =
            Some(StationaryPoint { log10_loss, log10_loss_limit: log10_limit, gradient_norm, misclassified: points });
        true
    }

    /// The end of an observer call: a checkpoint when due (built by `checkpoint`), a stop
    /// request, `auto`'s switch.
    pub(super) fn finish_step(&mut self, checkpoint: &dyn Fn(&Self) -> Checkpoint) -> Control {
        if self.obs.checkpoint_due() {
            let cp = checkpoint(self);
            if let Err(e) = self.obs.checkpoint(&cp) {
                self.error = Some(e);
                return Control::Stop;
            }
        }
        if self.obs.stop_requested() {
            return Control::Stop;
        }
        if self.switch_pending {
            self.switch_now = true;
            return Control::Stop;
        }
        Control::Continue
    }
}

impl<'a, 'o, T: Real> Observer<T, FlowSystem<'a, T>> for Rows<'o, T> {
    fn on_step(&mut self, sys: &FlowSystem<'a, T>, st: &IntegratorState<T>) -> Control {
        if self.observe(sys, st) == Control::Stop {
            return Control::Stop;
        }
        self.finish_step(&|rows: &Self| rows.checkpoint_of(sys, st))
    }
}
