//! The dual engine (`--engine dual`, the default): gradient flow in normalized time as an ODE
//! in the n cumulated loss weights Ω(s) = ∫₀ˢ w ds' (and u = log(1+t)), with the outer layer
//! fixed. While row j's sides and pinned set are fixed its velocity is a_j M_j w, so
//!
//!   B_j(s) = c_j + a_j M_j Ω(s),   q(s) = q_e + A (Ω(s) − Ω_e),   dΩ/ds = w(q),
//!
//! O(n²) per right-hand side for any width m; a kink of one entry costs O(n) in A and O(n) in
//! its row's anchor, and entries are examined only when their certified earliest crossing
//! time falls inside a step. Derivation, order, error control and costs: docs/engine.md.
//!
//! Imports go one way: `queue` and `rows` (no engine imports) ← `kernel` ← `system` ←
//! `probe` ← `schedule` ← `events` ← `drive` ← this module's `integrate`, which `crate::flow::run` calls; what both
//! engines share (settings, observer, summary, checkpoint, weights) lives in `crate::flow`.

pub mod drive;
pub mod events;
pub mod kernel;
pub(crate) mod probe;
pub mod queue;
pub mod rows;
pub mod schedule;
pub mod system;

use self::drive::{drive, DriveLimits, REFRESH_MIN_CHANGES};
use self::rows::RowSet;
pub use self::system::{DualStatistics, DualSystem};
use super::auto::Phase;
use super::observer::Rows;
use super::settings::FlowSettings;
use super::span::{FlowSystem, Mode};
use crate::error::{Error, Result};
use crate::model::network::Network;
use marginflow_solvers::extrapolation::Extrapolation;
use marginflow_solvers::ode::{Control, Horizon, IntegratorSettings, IntegratorState, Status};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

/// The dual engine's part of a checkpoint (exact values): its integrator state on (Ω, u), the
/// row offsets c, the kernel A with its anchor, and the refresh counter. Restoring it continues
/// bit for bit (with the queue's keys, which decide which entries are examined).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DualCheckpoint {
    /// (Ω, u).
    pub y: Vec<String>,
    /// Next step size.
    pub h: String,
    /// Controller memory.
    pub err_old: String,
    /// Whether the last attempt was rejected.
    pub last_rejected: bool,
    /// The first-same-as-last stage, when the method keeps one.
    pub first_stage: Option<Vec<String>>,
    /// Row offsets c (m×n, row-major).
    pub offsets: Vec<String>,
    /// A (n×n, row-major).
    pub kernel: Vec<String>,
    /// Ω_e.
    pub omega_anchor: Vec<String>,
    /// q_e.
    pub q_anchor: Vec<String>,
    /// Mode changes since the last exact refresh.
    pub changes_since_refresh: u64,
    /// Work counters.
    pub statistics: DualStatistics,
    /// The event queue: (entry, IEEE bits of its key on its point's clock), by entry (empty:
    /// rebuilt at the restored state; a checkpoint's earlier `queue` of times is not read).
    #[serde(default)]
    pub queue_keys: Vec<(usize, u64)>,
}

/// The dual engine's state between calls: the system's parts and its integrator state.
pub struct DualState<T> {
    /// Integrator state on (Ω, u).
    pub state: IntegratorState<T>,
    /// Rows.
    pub rows: RowSet<T>,
    /// A, Ω_e, q_e (None: built from the rows with exact margins).
    pub kernel: Option<(marginflow_solvers::Mat<T>, Vec<T>, Vec<T>)>,
    /// Refresh counter.
    pub changes_since_refresh: u64,
    /// Counters.
    pub stats: DualStatistics,
    /// The queue's entries (None: every free entry scheduled at the start).
    pub queue: Option<Vec<(usize, f64)>>,
}

impl<T: Real> DualState<T> {
    /// The start at the span state (B, u) with `modes` (a fresh run: B = 0): Ω = 0, c = B.
    pub fn from_span(net: &Network<T>, s: &T, y: &[T], modes: &[Mode]) -> Self {
        let (m, n, p) = (net.m, net.n, net.prec);
        let mut omega_u = vec![T::zero(p); n + 1];
        omega_u[n] = y[m * n].clone();
        let rows = RowSet::new(net, &y[..m * n], modes.to_vec());
        DualState {
            state: IntegratorState::new(s.clone(), omega_u),
            rows,
            kernel: None,
            changes_since_refresh: 0,
            stats: DualStatistics::default(),
            queue: None,
        }
    }

    /// Restore from a checkpoint's dual part (`span` holds s, the statistics and the modes).
    pub fn restore(net: &Network<T>, span: &IntegratorState<T>, modes: &[Mode], cp: &DualCheckpoint) -> Result<Self> {
        let bad = |reason: String| Error::BadCheckpoint { path: "checkpoint".into(), reason };
        let dec = |v: &[String], what: &str| -> Result<Vec<T>> {
            v.iter().map(|x| T::from_exact(x).ok_or_else(|| bad(format!("cannot decode {what} {x:?}")))).collect()
        };
        let (m, n) = (net.m, net.n);
        let y = dec(&cp.y, "dual state")?;
        let offsets = dec(&cp.offsets, "row offset")?;
        let a = dec(&cp.kernel, "kernel entry")?;
        let oa = dec(&cp.omega_anchor, "kernel anchor")?;
        let qa = dec(&cp.q_anchor, "margin anchor")?;
        if y.len() != n + 1 || offsets.len() != m * n || a.len() != n * n || oa.len() != n || qa.len() != n {
            return Err(bad("the dual engine's state does not match the model's size".into()));
        }
        let one = |s: &String, what: &str| -> Result<T> {
            T::from_exact(s).ok_or_else(|| bad(format!("cannot decode {what}")))
        };
        let mut state = IntegratorState::new(span.s.clone(), y);
        state.h = one(&cp.h, "step size")?;
        state.err_old = one(&cp.err_old, "controller memory")?;
        state.last_rejected = cp.last_rejected;
        state.stats = span.stats.clone();
        state.first_stage = match &cp.first_stage {
            Some(k) => Some(dec(k, "first stage")?),
            None => None,
        };
        let rows = RowSet::new(net, &offsets, modes.to_vec());
        Ok(DualState {
            state,
            rows,
            kernel: Some((marginflow_solvers::Mat::from_vec(n, n, a), oa, qa)),
            changes_since_refresh: cp.changes_since_refresh,
            stats: cp.statistics.clone(),
            queue: (!cp.queue_keys.is_empty())
                .then(|| cp.queue_keys.iter().map(|&(k, t)| (k, f64::from_bits(t))).collect()),
        })
    }
}

/// The system of a [`DualState`] (A rebuilt and the margins computed exactly on a fresh start;
/// the checkpoint's kernel on a resume), with every free entry scheduled.
fn system_of<'a, T: Real>(net: &'a Network<T>, st: &mut DualState<T>) -> DualSystem<'a, T> {
    let n = net.n;
    let p = net.prec;
    let rows = std::mem::replace(
        &mut st.rows,
        RowSet::new(net, &vec![T::zero(p); net.m * n], vec![Mode::Positive; net.m * n]),
    );
    let omega = st.state.y[..n].to_vec();
    let mut sys = DualSystem::new(net, rows, &omega, vec![T::zero(p); n]);
    match st.kernel.take() {
        Some((a, oa, qa)) => {
            sys.kernel.a = a;
            sys.kernel.omega_anchor = oa;
            sys.kernel.q_anchor = qa;
        }
        None => {
            let before = sys.stats.clone();
            sys.refresh(&omega);
            sys.stats = before;
        }
    }
    sys.stats = st.stats.clone();
    match st.queue.take() {
        Some(q) => {
            for (k, t) in q {
                sys.queue.schedule(k, t);
            }
        }
        None => {
            let all: Vec<usize> = (0..net.m * n).collect();
            sys.schedule_entries(&all, &omega);
        }
    }
    sys
}

/// What the dual integration hands back to the shared driver: the span view of the end state
/// (B, u) with the statistics, the modes, how it ended, and the dual checkpoint.
pub struct DualEnd<T> {
    /// (B, u) at the end, with the integrator's counters.
    pub span_state: IntegratorState<T>,
    /// Modes at the end (`Sliding` for pinned entries).
    pub modes: Vec<Mode>,
    /// The integrator's status.
    pub status: Status,
    /// Set when the run stalled (cycling flips).
    pub stalled: Option<String>,
    /// The dual part of the end checkpoint.
    pub checkpoint: DualCheckpoint,
    /// Counters.
    pub stats: DualStatistics,
}

/// The dual checkpoint of the system and state.
fn checkpoint_of<T: Real>(sys: &DualSystem<'_, T>, st: &IntegratorState<T>, changes: u64) -> DualCheckpoint {
    let ex = |v: &[T]| v.iter().map(|x| x.to_exact()).collect::<Vec<String>>();
    DualCheckpoint {
        y: ex(&st.y),
        h: st.h.to_exact(),
        err_old: st.err_old.to_exact(),
        last_rejected: st.last_rejected,
        first_stage: st.first_stage.as_ref().map(|k| ex(k)),
        offsets: ex(&sys.rows.c),
        kernel: ex(&sys.kernel.a.data),
        omega_anchor: ex(&sys.kernel.omega_anchor),
        q_anchor: ex(&sys.kernel.q_anchor),
        changes_since_refresh: changes,
        statistics: sys.stats.clone(),
        queue_keys: sys.queue.live().into_iter().map(|(k, t)| (k, t.to_bits())).collect(),
    }
}

/// The span view (B, u) of the dual state, written into `span` (s, step size and counters too).
fn sync_span<T: Real>(sys: &DualSystem<'_, T>, st: &IntegratorState<T>, span: &mut IntegratorState<T>) {
    let (m, n) = (sys.net.m, sys.net.n);
    sys.rows.b_at(sys.net, &st.y[..n], &mut span.y[..m * n]);
    span.y[m * n].assign(&st.y[n]);
    span.s.assign(&st.s);
    span.h.assign(&st.h);
    span.stats = st.stats.clone();
}

/// One observer call: the span view, then the shared rows, progress, checkpoint (with the
/// dual part) and stop logic.
fn observe_step<'a, T: Real>(
    rows: &mut Rows<'_, T>,
    shadow: &mut FlowSystem<'a, T>,
    span: &mut IntegratorState<T>,
    sys: &mut DualSystem<'a, T>,
    st: &IntegratorState<T>,
    changes: u64,
) -> Control {
    // B (O(mn)) only where it is read: a trajectory row, a checkpoint, the end.
    let s = st.s.to_f64();
    if s > 0.0 && s.log10() >= rows.next_row && rows.rows_written < rows.max_rows {
        sync_span(sys, st, span);
    } else {
        let mn = sys.net.m * sys.net.n;
        span.y[mn].assign(&st.y[sys.net.n]);
        span.s.assign(&st.s);
        span.h.assign(&st.h);
        span.stats = st.stats.clone();
    }
    shadow.modes.copy_from_slice(&sys.rows.modes);
    if rows.observe(shadow, span) == Control::Stop {
        return Control::Stop;
    }
    let shadow_ref: &FlowSystem<'a, T> = shadow;
    let span_ref: &IntegratorState<T> = span;
    let sys_ref: &DualSystem<'a, T> = sys;
    rows.finish_step(&|r: &Rows<'_, T>| {
        let mut full = span_ref.clone();
        sync_span(sys_ref, st, &mut full);
        let mut cp = r.checkpoint_of(shadow_ref, &full);
        cp.dual = Some(checkpoint_of(sys_ref, st, changes));
        cp
    })
}

/// Integrate with the dual engine from `start` to the horizon: the explicit pair, then SEULEX
/// on the n×n Jacobian for `seulex`, or for `auto` once its criterion fires. Trajectory rows,
/// progress and checkpoints go through `rows` on the span view (B, u).
pub(super) fn integrate<'a, T: Real>(
    settings: &FlowSettings,
    net: &'a Network<T>,
    start: DualState<T>,
    horizon: &Horizon<T>,
    rows: &mut Rows<'_, T>,
    shadow: &mut FlowSystem<'a, T>,
    switched_at: &mut Option<T>,
) -> Result<DualEnd<T>> {
    let (m, n, prec) = (net.m, net.n, settings.precision);
    let mut st = start;
    let mut sys = system_of(net, &mut st);
    let mut state = st.state;
    let mut changes = st.changes_since_refresh;
    let mut span = IntegratorState::new(state.s.clone(), vec![T::zero(prec); m * n + 1]);
    let isettings = settings.integrator();
    let u_target = horizon.component_reaches.as_ref().map(|(_, t)| t.clone());
    let mut limits = DriveLimits {
        s_end: horizon.s_end.as_ref(),
        u_target: u_target.as_ref(),
        events: settings.events,
        max_steps: settings.max_steps,
        refresh_every: (m as u64).max(REFRESH_MIN_CHANGES),
    };
    let steps_before = state.stats.accepted + state.stats.rejected;
    let mut end = drive::DriveEnd { status: Status::Stopped, stalled: None };
    let explicit = !settings.method.is_extrapolation() && rows.phase == Phase::Explicit;
    if explicit {
        let tableau = settings.method.tableau::<T>(settings.rtol, prec);
        // Restarted (same state) each time the watchdog raises the tolerance.
        loop {
            let isettings = IntegratorSettings { rtol: rows.watch.rtol(settings.rtol), ..isettings.clone() };
            let mut integ = Integrator::new(tableau.clone(), isettings, n + 1, prec)?;
            end = drive(&mut integ, &mut sys, &mut state, &limits, &mut changes, |sy, s, c| {
                observe_step(rows, shadow, &mut span, sy, s, c)
            });
            if !std::mem::take(&mut rows.loosen_now) {
                break;
            }
        }
        if end.status == Status::Stopped && end.stalled.is_none() && rows.switch_now && rows.error.is_none() {
            rows.phase = Phase::Stiff;
            rows.switch.switched_at_s = Some(state.s.to_exact());
            rows.switch.switched_at_accepted = Some(state.stats.accepted);
            *switched_at = Some(state.s.clone());
        }
    }
    if rows.error.is_none()
        && end.stalled.is_none()
        && (settings.method.is_extrapolation() || rows.phase == Phase::Stiff)
    {
        loop {
            let used = state.stats.accepted + state.stats.rejected - steps_before;
            limits.max_steps = settings.max_steps.map(|mx| mx.saturating_sub(used));
            let rtol = rows.watch.rtol(settings.rtol);
            let isettings = IntegratorSettings { max_steps: limits.max_steps, rtol, ..isettings.clone() };
            let mut integ = Extrapolation::new(isettings, n + 1, prec)?;
            end = drive(&mut integ, &mut sys, &mut state, &limits, &mut changes, |sy, s, c| {
                observe_step(rows, shadow, &mut span, sy, s, c)
            });
            if !std::mem::take(&mut rows.loosen_now) {
                break;
            }
        }
    }
    sync_span(&sys, &state, &mut span);
    let checkpoint = checkpoint_of(&sys, &state, changes);
    Ok(DualEnd {
        span_state: span,
        modes: sys.rows.modes.clone(),
        status: end.status,
        stalled: end.stalled,
        checkpoint,
        stats: sys.stats.clone(),
    })
}
