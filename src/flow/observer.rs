//! What the caller sees during a run (rows, checkpoints, stop requests), and the integrator
//! observer that produces trajectory rows and watches `auto`'s switch criterion.

use super::auto::{HorizonEnd, Phase, SwitchMemory};
use super::checkpoint::Checkpoint;
use super::settings::FlowSettings;
use super::system::FlowSystem;
use crate::error::{Error, Result};
use crate::metrics::{self, cosine, log10_time, put, put_list, Num, StateMetrics};
use marginflow_solvers::rk::{Control, IntegratorState, Observer, OdeSystem};
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

/// The summary of a flow run (summary.json).
#[derive(Clone, Debug, Serialize)]
pub struct FlowSummary {
    /// The JSON object, field names as in DESIGN §4.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What the caller of [`run`] does with rows, checkpoints and stop requests.
pub trait FlowObserver {
    /// A trajectory row (a JSON object) was produced.
    fn row(&mut self, row: &serde_json::Value) -> Result<()>;
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
}

/// The fields a trajectory row and the summary share: s, log10 t (from u = log(1+t)), and the
/// state's metrics.
pub(super) fn put_state<T: Real>(
    o: &mut serde_json::Map<String, serde_json::Value>,
    s: &T,
    u: &T,
    sm: &StateMetrics<T>,
) {
    put(o, "s", &Num::of(s));
    put(o, "log10_time", &Num::of(&log10_time(u)));
    put(o, "log10_loss", &Num::of(&sm.log10_loss));
    put(o, "frobenius_norm", &Num::of(&sm.frobenius_norm));
    put(o, "min_margin", &Num::of(&sm.min_margin));
    put(o, "normalized_margin", &Num::of(&sm.normalized_margin));
    put_list(o, "singular_values", &metrics::top_singular_values(&sm.singular_values));
    put(o, "stable_rank", &Num::of(&sm.stable_rank));
    put(o, "sigma3_over_sigma1", &Num::of(&sm.sigma3_over_sigma1));
    o.insert("pattern_agreement".into(), serde_json::json!(sm.pattern_agreement));
}

impl<'o, T: Real> Rows<'o, T> {
    pub(super) fn row_json(&self, sys: &mut FlowSystem<'_, T>, st: &IntegratorState<T>) -> Result<serde_json::Value> {
        let net = sys.net;
        let mn = net.m * net.n;
        let sm = metrics::measure(net, &st.y[..mn])?;
        let mut o = serde_json::Map::new();
        put_state(&mut o, &st.s, &st.y[mn], &sm);
        if let Some((wstar, _)) = &self.reference {
            let v = velocity_small(sys, &st.y, &st.s);
            put(&mut o, "cosine_position", &Num::of(&cosine(&sm.w_small, wstar)));
            put(&mut o, "cosine_velocity", &Num::of(&cosine(&v, wstar)));
        }
        o.insert("accepted".into(), serde_json::json!(st.stats.accepted));
        o.insert("rejected".into(), serde_json::json!(st.stats.rejected));
        o.insert("events".into(), serde_json::json!(st.stats.events));
        o.insert("rhs_evaluations".into(), serde_json::json!(st.stats.rhs_evaluations));
        Ok(serde_json::Value::Object(o))
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
        cp
    }
}

impl<'a, 'o, T: Real> Observer<T, FlowSystem<'a, T>> for Rows<'o, T> {
    fn on_step(&mut self, sys: &FlowSystem<'a, T>, st: &IntegratorState<T>) -> Control {
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
        let due = s > 0.0 && s.log10() >= self.next_row && self.rows_written < self.max_rows;
        if due {
            // Metrics need a scratch system (the integrator holds the live one immutably here).
            let mut scratch = sys.clone();
            let row = match self.row_json(&mut scratch, st) {
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
            if let Some(now) = row["log10_loss"].as_f64() {
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
        if self.obs.checkpoint_due() {
            let cp = self.checkpoint_of(sys, st);
            if let Err(e) = self.obs.checkpoint(&cp) {
                self.error = Some(e);
                return Control::Stop;
            }
        }
        if self.obs.stop_requested() {
            return Control::Stop;
        }
        if switch {
            self.switch_now = true;
            return Control::Stop;
        }
        Control::Continue
    }
}
