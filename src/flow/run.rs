//! The driver: set up the network and the reference, integrate (explicit, then SEULEX for
//! `auto`), and summarize.

use super::auto::{HorizonEnd, Phase, SwitchMemory};
use super::checkpoint::Checkpoint;
use super::observer::{put_state, velocity_small, FlowObserver, FlowSummary, Rows};
use super::settings::{FlowHorizon, FlowSettings};
use super::system::{FlowSystem, Mode};
use crate::error::{Error, Result};
use crate::maxmargin;
use crate::metrics::{self, cosine, put, put_list, Num, StateMetrics};
use crate::model::data::Dataset;
use crate::model::network::Network;
use marginflow_solvers::extrapolation::Extrapolation;
use marginflow_solvers::rk::{Horizon, Integrator, IntegratorSettings, IntegratorState, Status};
use marginflow_solvers::tableau::Method;
use marginflow_solvers::{Mat, Real};
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

/// The end of a run.
pub struct FlowOutcome {
    /// summary.json.
    pub summary: FlowSummary,
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
    if settings.precision == 53 {
        return run_at::<f64>(data, settings, resume, want_weights, obs);
    }
    #[cfg(feature = "mpfr")]
    {
        run_at::<rug::Float>(data, settings, resume, want_weights, obs)
    }
    #[cfg(not(feature = "mpfr"))]
    unreachable!("validate() rejects precision != 53 without the mpfr feature")
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
    let net: Network<T> = Network::new(data, &settings.model, prec)?;
    let mn = net.m * net.n;
    let data_hash = data.hash();

    let (mut state, modes, rows_written, next_row, wall_before, phase, switch) = match resume {
        Some(cp) => {
            let r = cp.restore::<T>(&data_hash, mn + 1)?;
            (r.state, Some(r.modes), cp.rows_written, cp.next_row(), cp.wall_seconds, cp.phase, cp.switch.clone())
        }
        None => {
            let y0 = vec![T::zero(prec); mn + 1];
            (IntegratorState::new(T::zero(prec), y0), None, 0, -6.0, 0.0, Phase::Explicit, SwitchMemory::default())
        }
    };
    let auto = settings.method == Method::Auto;
    if phase == Phase::Stiff && !auto {
        return Err(Error::BadCheckpoint {
            path: "checkpoint".into(),
            reason: format!("phase 2 (SEULEX) recorded for method {:?}, which has no phases", settings.method),
        });
    }
    let switched_at: Option<T> = match &switch.switched_at_s {
        Some(x) => Some(T::from_exact(x).ok_or_else(|| Error::BadCheckpoint {
            path: "checkpoint".into(),
            reason: format!("cannot decode switched_at_s {x:?}"),
        })?),
        None => None,
    };
    let mut sys = FlowSystem::new(&net, &state.y[..mn]);
    if let Some(m) = modes {
        sys.modes = m
            .iter()
            .map(|&c| {
                Mode::from_code(c).ok_or_else(|| Error::BadCheckpoint {
                    path: "checkpoint".into(),
                    reason: format!("unknown switching mode {c}"),
                })
            })
            .collect::<Result<_>>()?;
    }

    // The independent reference: the certified theory-pattern max-margin solution.
    let reference = maxmargin::theory_reference(&net);
    let reference_small =
        reference.as_ref().ok().map(|r| (net.small_span(&r.coefficients.data), r.multipliers.clone()));

    let isettings = IntegratorSettings {
        rtol: settings.rtol,
        atol: settings.atol,
        events: settings.events,
        max_steps: settings.max_steps,
        ..Default::default()
    };
    let horizon = match settings.horizon {
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
    };
    let mut switched_at = switched_at;
    // Steps (accepted + rejected) before this call: `max_steps` limits this call across phases.
    let steps_before = state.stats.accepted + state.stats.rejected;
    let explicit = !settings.method.is_extrapolation() && rows.phase == Phase::Explicit;
    let mut status = Status::Stopped;
    if explicit {
        let tableau = settings.method.tableau::<T>(settings.rtol, prec);
        let mut integ = Integrator::new(tableau, isettings.clone(), mn + 1, prec)?;
        status = integ.integrate(&mut sys, &mut state, &horizon, &mut rows);
        if status == Status::Stopped && rows.switch_now && rows.error.is_none() {
            // Not a user stop: the criterion fired. Phase 2 continues from the same state.
            rows.phase = Phase::Stiff;
            rows.switch.switched_at_s = Some(state.s.to_exact());
            rows.switch.switched_at_accepted = Some(state.stats.accepted);
            switched_at = Some(state.s.clone());
        }
    }
    if rows.error.is_none() && (settings.method.is_extrapolation() || rows.phase == Phase::Stiff) {
        // Linearly implicit Euler extrapolation with the Woodbury solve of FlowSystem.
        let used = state.stats.accepted + state.stats.rejected - steps_before;
        let isettings =
            IntegratorSettings { max_steps: settings.max_steps.map(|m| m.saturating_sub(used)), ..isettings };
        let mut integ = Extrapolation::new(isettings, mn + 1, prec)?;
        status = integ.integrate(&mut sys, &mut state, &horizon, &mut rows);
    }
    if let Some(e) = rows.error.take() {
        return Err(e);
    }
    // Final row (always), then the summary.
    let mut scratch = FlowSystem::new(&net, &state.y[..mn]);
    scratch.modes = sys.modes.clone();
    let final_row = rows.row_json(&mut scratch, &state)?;
    // The checkpoint counts the rows before this final one: a resumed run drops it, so its
    // trajectory is the uninterrupted one.
    let checkpoint = rows.checkpoint_of(&sys, &state);
    // A row already written at this very state (s only grows) is not repeated.
    if rows.last_row_s != Some(state.s.to_f64()) {
        rows.obs.row(&final_row)?;
    }
    rows.obs.checkpoint(&checkpoint)?;

    let sm = metrics::measure(&net, &state.y[..mn])?;
    let mut o = serde_json::Map::new();
    let status_str = match &status {
        Status::Stopped if rows.loss_rise.is_some() => "loss_increased".to_string(),
        Status::Stopped => "interrupted".to_string(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(String::from).or_else(|| v.as_object().and_then(|m| m.keys().next().cloned())))
            .unwrap_or_else(|| format!("{other:?}")),
    };
    o.insert("status".into(), serde_json::json!(status_str));
    if let Status::StepSizeUnderflow { s, h } = &status {
        o.insert("status_detail".into(), serde_json::json!(format!("step size {h:e} underflowed at s = {s:e}")));
    }
    if let Some(why) = &rows.loss_rise {
        o.insert("status_detail".into(), serde_json::json!(why));
    }
    if let Status::NonFinite { s } = &status {
        o.insert("status_detail".into(), serde_json::json!(format!("non-finite value at s = {s:e}")));
    }
    put_state(&mut o, &state.s, &state.y[mn], &sm);
    put_list(&mut o, "loss_weights", &sm.loss_weights.iter().map(Num::of).collect::<Vec<_>>());
    let ln2 = 2f64.ln();
    let interpolated = sm.log10_loss.to_f64() < (ln2 / net.n as f64).log10();
    o.insert("interpolated".into(), serde_json::json!(interpolated));
    let v = velocity_small(&mut scratch, &state.y, &state.s);
    let kkt = kkt_residuals(&sm, &v);
    put(&mut o, "kkt_stationarity", &Num::of(&kkt.stationarity));
    put(&mut o, "kkt_complementarity", &Num::of(&kkt.complementarity));
    o.insert("statistics".into(), serde_json::to_value(&state.stats).unwrap_or_default());
    o.insert("sliding_at_end".into(), serde_json::json!(sys.sliding_count()));
    o.insert("settings".into(), serde_json::to_value(settings).unwrap_or_default());
    let name = |m: Method| serde_json::to_value(m).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let first = name(settings.method.resolve(settings.rtol));
    let method_used = if rows.phase == Phase::Stiff { format!("{first}+seulex") } else { first };
    o.insert("method_used".into(), serde_json::json!(method_used));
    if let Some(sw) = &switched_at {
        put(&mut o, "switched_at_s", &Num::of(sw));
        o.insert("switched_at_accepted".into(), serde_json::json!(rows.switch.switched_at_accepted));
    }
    o.insert("precision_bits".into(), serde_json::json!(prec));
    o.insert("shape".into(), serde_json::json!({"n": net.n, "d": net.d, "m": net.m}));
    match (&reference, &reference_small) {
        (Ok(r), Some((wstar, lambda))) => {
            let mut lsum = T::zero(prec);
            for l in lambda {
                lsum += l;
            }
            let mut merr = T::zero(prec);
            for (w, l) in sm.loss_weights.iter().zip(lambda) {
                merr = merr.max_of(&(w.clone() - &(l.clone() / &lsum)).abs());
            }
            let mut ro = serde_json::Map::new();
            put(&mut ro, "normalized_margin", &Num::of(&(T::one(prec) / &r.norm)));
            let cp = cosine(&sm.w_small, wstar);
            let cv = cosine(&v, wstar);
            put(&mut ro, "cosine_position", &Num::of(&cp));
            put(&mut ro, "cosine_velocity", &Num::of(&cv));
            put(&mut ro, "position_gap", &Num::of(&(T::one(prec) - &cp)));
            put(&mut ro, "velocity_gap", &Num::of(&(T::one(prec) - &cv)));
            put(&mut ro, "multiplier_error", &Num::of(&merr));
            put(&mut ro, "kkt_stationarity", &Num::of(&kkt.stationarity));
            put(&mut ro, "kkt_complementarity", &Num::of(&kkt.complementarity));
            ro.insert("certified".into(), serde_json::json!(r.certified));
            if let Some(why) = &r.failure {
                ro.insert("not_certified_because".into(), serde_json::json!(why));
            }
            o.insert("reference".into(), serde_json::Value::Object(ro));
        }
        (Err(e), _) => {
            o.insert("reference".into(), serde_json::json!({"certified": false, "error": e.to_string()}));
        }
        _ => {}
    }
    o.insert("wall_seconds".into(), serde_json::json!(wall_before + started.elapsed().as_secs_f64()));
    let weights = if want_weights { Some(net.full_weights(data, &state.y[..mn])?) } else { None };
    Ok(FlowOutcome { summary: FlowSummary { fields: o }, weights, checkpoint })
}
