//! The driver: set up the network and the reference, integrate (explicit, then SEULEX for
//! `auto`), and summarize.

use super::auto::{HorizonEnd, Phase, SwitchMemory};
use super::checkpoint::Checkpoint;
use super::dual::{self, DualState};
use super::observer::{velocity_small, FlowObserver, Rows};
use super::settings::{Engine, FlowHorizon, FlowSettings};
use super::span::{FlowSystem, Mode};
use super::summary::{
    FlowReference, FlowStatus, FlowSummary, FlowTime, KktNumbers, ReferenceComparison, RowCosines, SwitchPoint,
};
use crate::error::{Error, Result};
use crate::maxmargin;
use crate::metrics::{self, cosine, list_fields, num_fields, Shape, StateMetrics, StateNumbers};
use crate::model::data::Dataset;
use crate::model::network::Network;
use marginflow_solvers::extrapolation::Extrapolation;
use marginflow_solvers::ode::{Horizon, IntegratorSettings, IntegratorState, Status};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::tableau::Method;
use marginflow_solvers::{interrupt, memory, Mat, Real, SolverError};
use std::time::Instant;

/// KKT residuals of the flow's own direction: with W̄ = W/min_i q_i and μ = c·w (w the loss
/// weights, c minimizing the residual), stationarity ‖W̄ − Σ μ_i y_i ∇f_i(W)‖/‖W̄‖ and
/// complementarity Σ_i μ_i (q̄_i − 1) / Σ μ_i.
#[derive(Clone, Debug)]
pub struct KktResiduals<T> {
    /// Relative stationarity residual.
    pub stationarity: T,
    /// Weighted complementarity residual.
    pub complementarity: T,
}

fn kkt_residuals<T: Real>(sm: &StateMetrics<T>, v: &Mat<T>) -> KktResiduals<T> {
    let p = v.precision();
    let w = &sm.w_small;
    let qmin = sm.min_margin.clone();
    // W̄ = W / q_min; V = Σ w_i y_i ∇f_i(W); c = ⟨W̄, V⟩/‖V‖².
    let vv = metrics::frobenius_dot(v, v);
    let wv = metrics::frobenius_dot(w, v) / &qmin;
    let c = wv / &vv;
    let mut res = T::zero(p);
    for (wi, vi) in w.data.iter().zip(&v.data) {
        let r = wi.clone() / &qmin - &(vi.clone() * &c);
        res.add_mul_mut(&r, &r);
    }
    let wbar_norm = sm.frobenius_norm.clone() / &qmin.abs();
    let stationarity = res.sqrt() / &wbar_norm;
    let mut comp = T::zero(p);
    for (lw, q) in sm.loss_weights.iter().zip(&sm.margins) {
        let gap = q.clone() / &qmin - &T::one(p);
        comp.add_mul_mut(lw, &gap);
    }
    KktResiduals { stationarity, complementarity: comp }
}

/// The summary's comparison of the end state with W* (multipliers λ): cosines and gaps of W and
/// dW/ds (`v`) with W*, and max_i |w_i − λ_i/Σλ| for the loss weights w.
fn compare_with_reference<T: Real>(
    sm: &StateMetrics<T>,
    v: &Mat<T>,
    kkt: &KktResiduals<T>,
    r: &maxmargin::Reference<T>,
    wstar: &Mat<T>,
    lambda: &[T],
) -> ReferenceComparison {
    let prec = v.precision();
    let mut lsum = T::zero(prec);
    for l in lambda {
        lsum += l;
    }
    let mut merr = T::zero(prec);
    for (w, l) in sm.loss_weights.iter().zip(lambda) {
        merr = merr.max_of(&(w.clone() - &(l.clone() / &lsum)).abs());
    }
    let cp = cosine(&sm.w_small, wstar);
    let cv = cosine(v, wstar);
    let (normalized_margin, normalized_margin_decimal) = num_fields(&(T::one(prec) / &r.norm));
    let (position_gap, position_gap_decimal) = num_fields(&(T::one(prec) - &cp));
    let (velocity_gap, velocity_gap_decimal) = num_fields(&(T::one(prec) - &cv));
    let (multiplier_error, multiplier_error_decimal) = num_fields(&merr);
    ReferenceComparison {
        normalized_margin,
        normalized_margin_decimal,
        cosines: RowCosines::of(&cp, &cv),
        position_gap,
        position_gap_decimal,
        velocity_gap,
        velocity_gap_decimal,
        multiplier_error,
        multiplier_error_decimal,
        kkt: KktNumbers::of(&kkt.stationarity, &kkt.complementarity),
        certified: r.certified,
        not_certified_because: r.failure.clone(),
    }
}

/// The flow's own limit pattern at the end state: +1/−1 by the mode of each P_ji (the live sign
/// when events are off); a pinned entry (P_ji = 0) takes the side of its σ_ji (≥ (1+γ)/2: +1).
/// The pattern QP with S_ji = +1 and the constraint ⟨w_j, x_i⟩ ≥ 0 active has μ_ji = λ_i y_i a_j
/// (σ_ji − 1) at a point where that entry is pinned with slope σ_ji, which is ≥ 0 for a pinned
/// entry of the attracting kind (a_j y_i < 0), and symmetrically for −1: a Clarke KKT point of the
/// flow's limit is the optimum of this convex QP, so the QP's certificate applies to it.
fn limit_pattern<T: Real>(sys: &FlowSystem<'_, T>, b: &[T]) -> Vec<i8> {
    let net = sys.network();
    let mut p = vec![T::zero(net.prec); net.m * net.n];
    net.preactivations_inplace(b, &mut p);
    sys.modes
        .iter()
        .enumerate()
        .map(|(k, md)| match md {
            Mode::Positive => 1,
            Mode::Negative => -1,
            Mode::Sliding => {
                if sys.pinned_sigma(k) >= sys.mid_slope() {
                    1
                } else {
                    -1
                }
            }
            Mode::Live => {
                if p[k].is_sign_negative() {
                    -1
                } else {
                    1
                }
            }
        })
        .collect()
}

/// The comparison with the certified max-margin QP on the flow's own limit pattern (Lyu–Li 2020;
/// Ji–Telgarsky 2020: gradient flow converges to a KKT point of the max-margin problem on any
/// separable data, on its own pattern). For the pinned entries the certificate also checks the
/// implied slope σ_ji = C_ji/(λ_i y_i a_j) ∈ [γ, 1] (the Clarke subdifferential of φ at 0).
fn limit_reference<T: Real>(
    net: &Network<T>,
    sys: &FlowSystem<'_, T>,
    b: &[T],
    sm: &StateMetrics<T>,
    v: &Mat<T>,
    kkt: &KktResiduals<T>,
) -> FlowReference {
    let settings = maxmargin::MaxMarginSettings::default();
    // The dual with the flow's pinned entries as w_j ⊥ x_i (n multipliers, no matrix beyond
    // n² + m n) first; the primal pattern QP (pinned entries on their limit side) where the
    // dual finds no certified point and the primal fits in memory.
    let modes: Vec<Mode> = limit_pattern(sys, b)
        .iter()
        .zip(&sys.modes)
        .map(|(&side, &md)| match md {
            Mode::Sliding => Mode::Sliding,
            _ if side > 0 => Mode::Positive,
            _ => Mode::Negative,
        })
        .collect();
    // Past n added sign constraints the primal is the cheaper path where it fits.
    let limit = if maxmargin::pattern_qp_too_large::<T>(net).is_some() { usize::MAX } else { net.n };
    let r = match maxmargin::dual::dual_max_margin_limited(net, &modes, &settings, limit) {
        Ok(r) if r.certified => r,
        Err(Error::Solver(SolverError::Interrupted)) => return not_computed(),
        dual => {
            let dual_error = match dual {
                Ok(_) => "dual: not certified".to_string(),
                Err(e) => format!("dual: {e}"),
            };
            if maxmargin::pattern_qp_too_large::<T>(net).is_some() {
                return FlowReference::Unavailable { certified: false, error: dual_error };
            }
            let pattern = limit_pattern(sys, b);
            let outcome = match maxmargin::pattern_max_margin(net, &pattern, &settings) {
                Ok(o) => o,
                Err(Error::Solver(SolverError::Interrupted)) => return not_computed(),
                Err(e) => return FlowReference::Unavailable { certified: false, error: format!("{dual_error}; {e}") },
            };
            let Some(r) = outcome.reference else {
                let why = outcome.failure.unwrap_or_else(|| format!("QP solver status {:?}", outcome.status));
                return FlowReference::Unavailable { certified: false, error: format!("{dual_error}; {why}") };
            };
            r
        }
    };
    let wstar = net.small_span(&r.coefficients.data);
    let mut cmp = compare_with_reference(sm, v, kkt, &r, &wstar, &r.multipliers);
    let (m, n, p) = (net.m, net.n, net.prec);
    let tol = r.certificate.tolerance.clone() * &T::from_f64(1e3, p);
    let one = T::one(p);
    for k in (0..m * n).filter(|&k| sys.modes[k].pinned()) {
        let (j, i) = (k / n, k % n);
        let den = r.multipliers[i].clone() * &net.y[i] * &net.a[j];
        if den.sign() == Some(std::cmp::Ordering::Equal) {
            continue;
        }
        let sigma = r.coefficients.at(j, i).clone() / &den;
        let outside = sigma < net.gamma.clone() - &tol || sigma > one.clone() + &tol;
        if outside && cmp.certified {
            cmp.certified = false;
            cmp.not_certified_because =
                Some(format!("pinned entry ({j}, {i}): the implied slope σ = {:e} is outside [γ, 1]", sigma.to_f64()));
        }
    }
    FlowReference::Compared(Box::new(cmp))
}

/// A reference left out because the run was interrupted (SIGINT/SIGTERM, a stop request).
fn not_computed() -> FlowReference {
    FlowReference::Unavailable { certified: false, error: "not computed: the run was interrupted".into() }
}

/// Bytes of the flow's matrices that grow faster than the data: about 8 n² values (the Gram
/// matrix, the dual kernel A, SEULEX's n×n Jacobian and its LU, scratch), 8 m n (the state B,
/// P, the modes' slopes, the rows' anchors) and (n + m) d (the QR of [X; W(0)] for the span
/// reduction), at `bytes` per value.
pub fn flow_bytes(n: usize, d: usize, m: usize, bytes: usize) -> u64 {
    let values = (8 * n as u128 * n as u128) + (8 * m as u128 * n as u128) + ((n + m) as u128 * d as u128);
    u64::try_from(values.saturating_mul(bytes.max(8) as u128)).unwrap_or(u64::MAX)
}

/// The end of a run.
pub struct FlowOutcome {
    /// summary.json.
    pub summary: FlowSummary,
    /// The certified max-margin reference of the theory pattern that the summary compares with
    /// (rounded to f64; `None` when its QP failed: the summary's `reference.error` says why).
    pub reference: Option<maxmargin::Reference<f64>>,
    /// Final W (m×d, f64), when requested.
    pub weights: Option<Vec<f64>>,
    /// Checkpoint of the final state (so a later `--resume` can go further).
    pub checkpoint: Checkpoint,
}

/// Run (or resume) a flow on `data`, at the precision in the settings.
pub fn run(
    data: &Dataset,
    settings: &FlowSettings,
    resume: Option<Checkpoint>,
    want_weights: bool,
    obs: &mut dyn FlowObserver,
) -> Result<FlowOutcome> {
    settings.validate()?;
    crate::with_real!(settings.precision, T => run_at::<T>(data, settings, resume, want_weights, obs),
        missing => unreachable!("validate() rejects MPFR precisions without the mpfr feature"))
}

/// Where a run starts: from zero, or from a checkpoint.
struct Start<T> {
    state: IntegratorState<T>,
    modes: Option<Vec<Mode>>,
    rows_written: usize,
    next_row: f64,
    wall_before: f64,
    phase: Phase,
    switch: SwitchMemory,
    switched_at: Option<T>,
    watch: super::watchdog::Watchdog,
}

/// The starting point: B = 0, u = 0 at s = 0, or the checkpoint's exact state (its errors name
/// its file).
fn start<T: Real>(
    resume: Option<Checkpoint>,
    settings: &FlowSettings,
    data_hash: &str,
    dim: usize,
) -> Result<Start<T>> {
    let prec = settings.precision;
    let Some(cp) = resume else {
        return Ok(Start {
            state: IntegratorState::new(T::zero(prec), vec![T::zero(prec); dim]),
            modes: None,
            rows_written: 0,
            next_row: -6.0,
            wall_before: 0.0,
            phase: Phase::Explicit,
            switch: SwitchMemory::default(),
            switched_at: None,
            watch: Default::default(),
        });
    };
    let r = cp.restore::<T>(data_hash, dim)?;
    if cp.phase == Phase::Stiff && settings.method != Method::Auto {
        return Err(Error::BadCheckpoint {
            path: cp.path(),
            reason: format!("phase 2 (SEULEX) recorded for method {:?}, which has no phases", settings.method),
        });
    }
    let switched_at: Option<T> = match &cp.switch.switched_at_s {
        Some(x) => Some(T::from_exact(x).ok_or_else(|| Error::BadCheckpoint {
            path: cp.path(),
            reason: format!("cannot decode switched_at_s {x:?}"),
        })?),
        None => None,
    };
    let modes = r
        .modes
        .iter()
        .map(|&c| {
            Mode::from_code(c)
                .ok_or_else(|| Error::BadCheckpoint { path: cp.path(), reason: format!("unknown switching mode {c}") })
        })
        .collect::<Result<Vec<Mode>>>()?;
    Ok(Start {
        state: r.state,
        modes: Some(modes),
        rows_written: cp.rows_written,
        next_row: cp.next_row(),
        wall_before: cp.wall_seconds,
        phase: cp.phase,
        switch: cp.switch.clone(),
        switched_at,
        watch: cp.watchdog.clone(),
    })
}

/// The integrator's horizon (s = S, or u = log(1+t) reaching its target) and the same end in f64
/// for `auto`'s criterion.
fn horizon_of<T: Real>(h: FlowHorizon, mn: usize, prec: u32) -> (Horizon<T>, HorizonEnd) {
    let horizon = match h {
        FlowHorizon::S(s) => Horizon { s_end: Some(T::from_f64(s, prec)), component_reaches: None },
        FlowHorizon::Time(t) => Horizon { s_end: None, component_reaches: Some((mn, T::from_f64(t, prec).ln_1p())) },
        FlowHorizon::Log10Time(x) => {
            // log(1 + 10^X) = X ln 10 + log(1 + 10^−X).
            let xl = T::from_f64(x, prec) * &T::from_f64(10.0, prec).ln();
            let target = xl.clone() + &(-xl).exp().ln_1p();
            Horizon { s_end: None, component_reaches: Some((mn, target)) }
        }
    };
    let end = match (&horizon.s_end, &horizon.component_reaches) {
        (Some(se), _) => HorizonEnd::S(se.to_f64()),
        (None, Some((_, ue))) => HorizonEnd::LogTime(ue.to_f64()),
        (None, None) => HorizonEnd::S(f64::INFINITY),
    };
    (horizon, end)
}

/// Integrate to the horizon: the explicit pair (phase 1), then SEULEX for `seulex`, or for `auto`
/// once its criterion fires (recorded in `rows.switch` and `switched_at`). `max_steps` limits the
/// whole call across phases.
fn integrate<T: Real>(
    settings: &FlowSettings,
    sys: &mut FlowSystem<'_, T>,
    state: &mut IntegratorState<T>,
    horizon: &Horizon<T>,
    rows: &mut Rows<'_, T>,
    switched_at: &mut Option<T>,
) -> Result<Status> {
    let (prec, dim) = (settings.precision, state.y.len());
    // Steps (accepted + rejected) before this call.
    let steps_before = state.stats.accepted + state.stats.rejected;
    let explicit = !settings.method.is_extrapolation() && rows.phase == Phase::Explicit;
    let mut status = Status::Stopped;
    if explicit {
        let tableau = settings.method.tableau::<T>(settings.rtol, prec);
        // Restarted (same state) each time the watchdog raises the tolerance.
        loop {
            let isettings = IntegratorSettings { rtol: rows.watch.rtol(settings.rtol), ..settings.integrator() };
            let mut integ = Integrator::new(tableau.clone(), isettings, dim, prec)?;
            status = integ.integrate(sys, state, horizon, rows);
            if !std::mem::take(&mut rows.loosen_now) {
                break;
            }
        }
        if status == Status::Stopped && rows.switch_now && rows.error.is_none() {
            // Not a user stop: the criterion fired. Phase 2 continues from the same state.
            rows.phase = Phase::Stiff;
            rows.switch.switched_at_s = Some(state.s.to_exact());
            rows.switch.switched_at_accepted = Some(state.stats.accepted);
            *switched_at = Some(state.s.clone());
        }
    }
    if rows.error.is_none() && (settings.method.is_extrapolation() || rows.phase == Phase::Stiff) {
        // Linearly implicit Euler extrapolation with the Woodbury solve of FlowSystem.
        loop {
            let used = state.stats.accepted + state.stats.rejected - steps_before;
            let isettings = IntegratorSettings {
                max_steps: settings.max_steps.map(|m| m.saturating_sub(used)),
                rtol: rows.watch.rtol(settings.rtol),
                ..settings.integrator()
            };
            let mut integ = Extrapolation::new(isettings, dim, prec)?;
            status = integ.integrate(sys, state, horizon, rows);
            if !std::mem::take(&mut rows.loosen_now) {
                break;
            }
        }
    }
    Ok(status)
}

/// The summary's `status` and `status_detail` for how the integration ended.
fn status_of(status: &Status, loss_rise: &Option<String>) -> (FlowStatus, Option<String>) {
    let name = match status {
        Status::Reached => FlowStatus::Reached,
        Status::Stopped if loss_rise.is_some() => FlowStatus::LossIncreased,
        Status::Stopped => FlowStatus::Interrupted,
        Status::MaxSteps => FlowStatus::MaxSteps,
        Status::StepSizeUnderflow { .. } => FlowStatus::StepSizeUnderflow,
        Status::NonFinite { .. } => FlowStatus::NonFinite,
    };
    let detail = match status {
        Status::NonFinite { s } => Some(format!("non-finite value at s = {s:e}")),
        _ if loss_rise.is_some() => loss_rise.clone(),
        Status::StepSizeUnderflow { s, h } => Some(format!("step size {h:e} underflowed at s = {s:e}")),
        _ => None,
    };
    (name, detail)
}

/// The engine that runs: the dual engine needs located kinks (its kernel A and row anchors
/// change only at events), so `--events off` runs the span engine.
pub fn engine_of(settings: &FlowSettings) -> Engine {
    if settings.events {
        settings.engine
    } else {
        Engine::Span
    }
}

/// The method(s) a run used: the resolved first method, `+seulex` after `auto`'s switch.
fn method_used(settings: &FlowSettings, phase: Phase) -> String {
    let name = |m: Method| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let first = name(settings.method.resolve(settings.rtol));
    if phase == Phase::Stiff {
        format!("{first}+seulex")
    } else {
        first
    }
}

fn run_at<T: Real>(
    data: &Dataset,
    settings: &FlowSettings,
    resume: Option<Checkpoint>,
    want_weights: bool,
    obs: &mut dyn FlowObserver,
) -> Result<FlowOutcome> {
    let prec = settings.precision;
    let started = Instant::now();
    let bytes = flow_bytes(data.n, data.d, settings.model.width, std::mem::size_of::<T>());
    memory::check("the flow (its matrices: about 8 n² + 8 m n + (n + m) d values)", bytes)?;
    let net: Network<T> = Network::new(data, &settings.model, prec)?;
    let mn = net.m * net.n;
    let data_hash = data.hash();

    let dual_start = resume.as_ref().and_then(|cp| cp.dual.clone());
    if engine_of(settings) == Engine::Dual && resume.is_some() && dual_start.is_none() {
        return Err(Error::BadCheckpoint {
            path: resume.as_ref().map(|cp| cp.path()).unwrap_or_default(),
            reason: "written by the span engine: resume it with --engine span".into(),
        });
    }
    let Start { mut state, modes, rows_written, next_row, wall_before, phase, switch, mut switched_at, watch } =
        start::<T>(resume, settings, &data_hash, mn + 1)?;
    let auto = settings.method == Method::Auto;
    let mut sys = FlowSystem::new(&net, &state.y[..mn]);
    if let Some(m) = modes {
        sys.modes = m;
    }

    // The independent reference: the certified theory-pattern max-margin solution.
    let reference = maxmargin::theory_reference(&net);
    let reference_small =
        reference.as_ref().ok().map(|r| (net.small_span(&r.coefficients.data), r.multipliers.clone()));

    let (horizon, end) = horizon_of::<T>(settings.horizon, mn, prec);
    let mut rows = Rows {
        obs,
        reference: reference_small.clone(),
        rows_written,
        next_row,
        per_decade: settings.rows_per_decade as f64,
        max_rows: settings.max_rows,
        settings: settings.clone(),
        data_hash: data_hash.clone(),
        error: None,
        started,
        wall_before,
        phase,
        switch,
        watch_switch: auto,
        u_index: mn,
        end,
        switch_now: false,
        last_row_loss: None,
        loss_rise: None,
        p_scratch: Vec::new(),
        last_row_s: None,
        switch_pending: false,
        watch,
        ended: None,
        stationary: None,
        loosen_now: false,
    };
    let (status, stalled, dual_end) = match engine_of(settings) {
        Engine::Span => (integrate(settings, &mut sys, &mut state, &horizon, &mut rows, &mut switched_at)?, None, None),
        Engine::Dual => {
            let start = match &dual_start {
                Some(cp) => DualState::restore(&net, &state, &sys.modes, cp)?,
                None => DualState::from_span(&net, &state.s, &state.y, &sys.modes),
            };
            let end = dual::integrate(settings, &net, start, &horizon, &mut rows, &mut sys, &mut switched_at)?;
            state = end.span_state;
            sys.modes = end.modes;
            (end.status, end.stalled, Some((end.checkpoint, end.stats)))
        }
    };
    if let Some(e) = rows.error.take() {
        return Err(e);
    }
    // Final row (always), then the summary.
    let mut scratch = FlowSystem::new(&net, &state.y[..mn]);
    scratch.modes = sys.modes.clone();
    let final_row = rows.row(&mut scratch, &state)?;
    // The checkpoint counts the rows before this final one: a resumed run drops it, so its
    // trajectory is the uninterrupted one.
    let mut checkpoint = rows.checkpoint_of(&sys, &state);
    checkpoint.dual = dual_end.as_ref().map(|(cp, _)| cp.clone());
    // A row already written at this very state (s only grows) is not repeated.
    if rows.last_row_s != Some(state.s.to_f64()) {
        rows.obs.row(&final_row)?;
    }
    rows.obs.checkpoint(&checkpoint)?;

    let sm = metrics::measure(&net, &state.y[..mn])?;
    let (mut status_str, mut status_detail) = status_of(&status, &rows.loss_rise);
    if let Some(why) = stalled {
        (status_str, status_detail) = (FlowStatus::Stalled, Some(why));
    }
    if let (Status::Stopped, Some((why, detail))) = (&status, rows.ended.take()) {
        (status_str, status_detail) = (why, Some(detail));
    }
    let (loss_weights, loss_weights_decimal) = list_fields(&sm.loss_weights);
    let ln2 = 2f64.ln();
    let interpolated = sm.log10_loss.to_f64() < (ln2 / net.n as f64).log10();
    let v = velocity_small(&mut scratch, &state.y, &state.s);
    let kkt = kkt_residuals(&sm, &v);
    let method_used = method_used(settings, rows.phase);
    let switch = switched_at.as_ref().map(|sw| {
        let (switched_at_s, switched_at_s_decimal) = num_fields(sw);
        SwitchPoint { switched_at_s, switched_at_s_decimal, switched_at_accepted: rows.switch.switched_at_accepted }
    });
    let reference_summary = match (&reference, &reference_small) {
        (Ok(r), Some((wstar, lambda))) => {
            Some(FlowReference::Compared(Box::new(compare_with_reference(&sm, &v, &kkt, r, wstar, lambda))))
        }
        (Err(Error::Solver(SolverError::Interrupted)), _) => Some(not_computed()),
        (Err(e), _) => Some(FlowReference::Unavailable { certified: false, error: e.to_string() }),
        (Ok(_), None) => None,
    };
    // An interrupted run ends now: the limit pattern's QP (seconds on an unconverged pattern) is
    // not solved.
    let mut limit_reference = Some(if status_str == FlowStatus::Interrupted || interrupt::requested() {
        not_computed()
    } else {
        limit_reference(&net, &scratch, &state.y[..mn], &sm, &v, &kkt)
    });
    if interrupt::requested() && status_str != FlowStatus::Interrupted {
        // Stopped while that QP was solved: the summary is not the whole one, and says so.
        limit_reference = Some(not_computed());
        status_detail = Some(format!(
            "stopped after the integration ended ({status_str}{}), while the limit pattern's QP was solved",
            status_detail.map(|d| format!(": {d}")).unwrap_or_default()
        ));
        status_str = FlowStatus::Interrupted;
    }
    let summary = FlowSummary {
        status: status_str,
        status_detail,
        stationary: rows.stationary.take(),
        warnings: rows.watch.warnings.clone(),
        time: FlowTime::of(&state.s, &state.y[mn]),
        state: StateNumbers::of(&sm),
        loss_weights,
        loss_weights_decimal,
        interpolated,
        kkt: KktNumbers::of(&kkt.stationarity, &kkt.complementarity),
        statistics: state.stats.clone(),
        sliding_at_end: sys.sliding_count(),
        engine: engine_of(settings),
        engine_statistics: dual_end.map(|(_, st)| st),
        settings: settings.clone(),
        method_used,
        switch,
        precision_bits: prec,
        arithmetic: marginflow_solvers::Precision::from_bits(prec).arithmetic().to_string(),
        shape: Shape { n: net.n, d: net.d, m: net.m },
        reference: reference_summary,
        limit_reference,
        peak_rss_bytes: None,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
    };
    let weights = if want_weights { Some(net.full_weights(data, &state.y[..mn])?) } else { None };
    let reference = reference.ok().map(|r| r.to_f64());
    Ok(FlowOutcome { summary, weights, checkpoint, reference })
}
