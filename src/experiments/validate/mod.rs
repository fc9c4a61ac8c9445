//! Validation of implicit-bias theorems on scenario files: a library of theorems as data
//! ([`theorems`]: id, citation, statement, assumptions, kinds, claims), each claim one function
//! (`claims` for frei2023-gf's and `kkt`, [`theorem_claims`] for the others, [`dynamics`] for
//! the quantities read off trajectory rows).
//!
//! A scenario names a data set (a file or a `[generate]` table, optionally a clean `[test]` set),
//! a model, what runs (`kind = "flow"`, the default, or `"descent"`) and the theorems it checks
//! (`theorems = [...]`, default: every theorem of its kind). A flow scenario runs one gradient flow
//! (plus `restarts` flows from other random initializations); a descent scenario one gradient
//! descent. The claims of its theorems are then measured against thresholds:
//!
//! - frei2023-gf (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023): `assumption` (reported, never
//!   gating), `interpolation`, `theory_pattern`, `rank`, `global_max_margin`, `linear_boundary`;
//! - lyu-li2020: `smoothed_margin` (non-decreasing), `loss_rates` (L·t and ‖W‖/ln t bounded),
//!   `kkt` (a certified KKT point of the flow's own limit pattern, the multiplier check scaled by
//!   the conditioning √κ(A) of the map from the loss weights to the velocity);
//! - ji-telgarsky2020: `path_length` (a bound of the direction's path length decays);
//! - frei2023-gd (descent): `gd_stable_rank` at steps 0, 1, 10, T;
//! - kou-chen-gu2023 (descent and flow): `block_stable_rank` (W₊, W₋; ReLU: W bounded),
//!   `margin_ratio`;
//! - frei2023-benign (flow with `[test]`): `benign_overfitting`.
//!
//! With γ = 0 (ReLU) the claims of theorems that assume γ > 0 are reported, never gating.
//!
//! Everything here returns values; rendering is in [`crate::experiments::report`] and
//! [`crate::experiments::plot`], files are written by the binary.
//!
//! Imports go one way, a stack: `claim` (what a claim records: kind, verdict, measurements) ←
//! [`theorems`] ← `evidence` (what the claims read, and a claim's record under its theorem) ←
//! `limit_claims`, [`theorem_claims`] (with [`dynamics`]) ← `claims` (the flow claims in report
//! order) ← this module (the runs and the report); `scenario` (files, defaults, checks) reads
//! `claim` and `theorems`. From outside: `flow`, `descent`, `maxmargin`, `model`, `metrics`,
//! `thresholds`.
//!
//! The linear max margin comes from [`crate::maxmargin::linear_max_margin`] (certified).

mod claim;
mod claims;
pub mod dynamics;
mod evidence;
mod limit_claims;
pub use evidence::late_rows;
pub use limit_claims::position_gap_fit;
mod scenario;
pub mod theorem_claims;
pub mod theorems;

pub use claim::{fit_line, ClaimKind, ClaimResult, Comparison, LineFit, Measurement, Verdict};
pub use scenario::{
    parse, prepare, prepare_default_suite, prepare_file, prepare_parsed, GenerateTable, PreparedScenario, Scenario,
    TestTable, Thresholds, DEFAULT_SUITE,
};
pub use theorems::{theorem, theorem_of, ScenarioKind, Theorem, THEOREMS};

use crate::error::Result;
use crate::flow::{self, FlowObserver, FlowSettings, FlowStatus, TrajectoryRow};
use crate::model::data::{self, Dataset, Geometry};
use crate::model::network::{Network, OuterLayer};
use evidence::Evidence;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One trajectory row, as numbers for plots and fits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Normalized time s.
    pub s: f64,
    /// log10 t.
    pub log10_time: f64,
    /// log10 L.
    pub log10_loss: f64,
    /// ‖W‖_F.
    #[serde(default)]
    pub frobenius_norm: f64,
    /// Stable rank ‖W‖_F²/‖W‖_2².
    #[serde(default)]
    pub stable_rank: f64,
    /// min_i q_i / ‖W‖_F.
    pub normalized_margin: f64,
    /// Top singular values of W, largest first.
    pub singular_values: Vec<f64>,
    /// σ3/σ1.
    pub sigma3_over_sigma1: f64,
    /// Fraction of the theory pattern matched.
    pub pattern_agreement: f64,
    /// 1 − cos(W, W*), when the reference exists.
    pub position_gap: Option<f64>,
    /// 1 − cos(dW/ds, W*), when the reference exists.
    pub velocity_gap: Option<f64>,
}

impl TrajectoryPoint {
    /// The numbers of a row (a non-finite value, null in the row, becomes NaN here); `None` for
    /// a row without a finite s.
    fn from_row(row: &TrajectoryRow) -> Option<Self> {
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let st = &row.state;
        Some(TrajectoryPoint {
            s: row.time.s?,
            log10_time: nan(row.time.log10_time),
            log10_loss: nan(st.log10_loss),
            frobenius_norm: nan(st.frobenius_norm),
            stable_rank: nan(st.stable_rank),
            normalized_margin: nan(st.normalized_margin),
            singular_values: st.singular_values.iter().map(|v| nan(*v)).collect(),
            sigma3_over_sigma1: nan(st.sigma3_over_sigma1),
            pattern_agreement: st.pattern_agreement,
            position_gap: row.cosines.as_ref().and_then(|c| c.cosine_position).map(|c| 1.0 - c),
            velocity_gap: row.cosines.as_ref().and_then(|c| c.cosine_velocity).map(|c| 1.0 - c),
        })
    }
}

/// A flow observer that keeps the rows in memory and writes no checkpoints.
#[derive(Default)]
pub struct RowCollector {
    /// The rows, in order.
    pub rows: Vec<TrajectoryRow>,
}

impl FlowObserver for RowCollector {
    fn row(&mut self, row: &TrajectoryRow) -> Result<()> {
        self.rows.push(row.clone());
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    fn checkpoint(&mut self, _cp: &crate::flow::checkpoint::Checkpoint) -> Result<()> {
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        marginflow_solvers::interrupt::requested()
    }
}

/// The outcome of one restart flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartResult {
    /// Its initialization seed.
    pub seed: u64,
    /// Its final normalized margin.
    pub normalized_margin: Option<f64>,
    /// Its final status.
    pub status: FlowStatus,
}

/// The work counters of a scenario's main run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScenarioWork {
    /// Gradient descent: the steps taken (listed first: reading tries it first, and it needs
    /// `steps`).
    Descent {
        /// Steps taken.
        steps: u64,
    },
    /// The flow's integrator counters (keys sorted, as in every file).
    Flow(#[serde(serialize_with = "sorted_keys")] marginflow_solvers::ode::Statistics),
}

/// Serialize `value` with its keys sorted ([`crate::metrics::to_json_value`]).
fn sorted_keys<V: Serialize, S: serde::Serializer>(value: &V, s: S) -> std::result::Result<S::Ok, S::Error> {
    crate::metrics::to_json_value(value).serialize(s)
}

/// Everything measured on one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// The scenario as parsed (with every default filled in).
    pub scenario: Scenario,
    /// The flow settings it ran with.
    pub flow_settings: FlowSettings,
    /// Near-orthogonality statistics.
    pub geometry: Geometry,
    /// Final flow status.
    pub flow_status: FlowStatus,
    /// Final s.
    pub final_s: Option<f64>,
    /// Work counters of the main run.
    pub statistics: ScenarioWork,
    /// The certified QP's normalized margin 1/‖W*‖ (theory pattern), if solved.
    pub reference_margin: Option<f64>,
    /// Whether the reference is certified.
    pub reference_certified: bool,
    /// The comparison with the certified QP on the flow's own limit pattern, at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_reference: Option<LimitPoint>,
    /// The restart flows.
    pub restarts: Vec<RestartResult>,
    /// The claims.
    pub claims: Vec<ClaimResult>,
    /// The main flow's trajectory.
    pub trajectory: Vec<TrajectoryPoint>,
    /// Plot files, relative to the report (filled in by the renderer's caller).
    pub plots: Vec<PlotFile>,
    /// Wall-clock seconds for this scenario.
    pub wall_seconds: f64,
    /// What ran (flow or descent).
    #[serde(default)]
    pub kind: ScenarioKind,
    /// The ids of the theorems checked, in report order.
    #[serde(default)]
    pub theorems: Vec<String>,
    /// The descent run (`kind = "descent"`); its status is also in `flow_status`, mapped
    /// (completed → reached, interrupted → interrupted, diverged → non_finite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descent: Option<DescentReport>,
}

/// The end of a flow against the max-margin QP on its own limit pattern (drawn beside the
/// theory pattern's curves in the figures).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitPoint {
    /// Whether that reference is certified.
    pub certified: bool,
    /// Its normalized margin 1/‖W*‖.
    pub normalized_margin: Option<f64>,
    /// 1 − cos(W, W*) at the end.
    pub position_gap: Option<f64>,
    /// 1 − cos(dW/ds, W*) at the end.
    pub velocity_gap: Option<f64>,
}

impl LimitPoint {
    fn of(r: &crate::flow::FlowReference) -> Option<Self> {
        let c = r.comparison()?;
        Some(LimitPoint {
            certified: c.certified,
            normalized_margin: c.normalized_margin,
            position_gap: c.cosines.cosine_position.map(|c| 1.0 - c),
            velocity_gap: c.cosines.cosine_velocity.map(|c| 1.0 - c),
        })
    }
}

/// What a descent scenario ran and measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescentReport {
    /// How it ended.
    pub status: crate::descent::DescentEnd,
    /// Steps taken.
    pub steps: u64,
    /// Step size α.
    pub step_size: f64,
    /// `leaky` or `smooth (H = …)`.
    pub activation: String,
    /// Its rows.
    pub rows: Vec<DescentPoint>,
}

/// One descent row, as numbers for plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescentPoint {
    /// Steps taken.
    pub step: u64,
    /// Stable rank of W.
    pub stable_rank: f64,
    /// log10 L.
    pub log10_loss: f64,
    /// min_i q_i / ‖W‖_F.
    pub normalized_margin: f64,
    /// Top singular values of W, largest first.
    pub singular_values: Vec<f64>,
}

impl ScenarioReport {
    /// Whether any claim makes the run fail.
    pub fn fails(&self) -> bool {
        self.claims.iter().any(|c| c.verdict.fails_run())
    }
    /// A file-name-safe form of the name.
    pub fn slug(&self) -> String {
        let s: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
            .collect();
        if s.is_empty() {
            "scenario".into()
        } else {
            s
        }
    }
}

/// A plot of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotFile {
    /// What it shows.
    pub title: String,
    /// File name, relative to the report directory.
    pub file: String,
}

/// The whole validation report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// marginflow version.
    pub version: String,
    /// One entry per scenario, in the order given.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether every claim held (or failed as expected).
    pub passed: bool,
}

impl Report {
    /// Assemble a report (computes `passed`).
    pub fn new(scenarios: Vec<ScenarioReport>) -> Self {
        let passed = scenarios.iter().all(|s| !s.fails());
        Report { version: env!("CARGO_PKG_VERSION").to_string(), scenarios, passed }
    }
}

/// A flow's outcome and its rows.
type MainRun = (flow::FlowOutcome, Vec<TrajectoryRow>);

/// Run one flow and collect its rows.
fn run_flow(data: &Dataset, settings: &FlowSettings, want_weights: bool) -> Result<MainRun> {
    let mut c = RowCollector::default();
    let out = flow::run(data, settings, None, want_weights, &mut c)?;
    Ok((out, c.rows))
}

/// The main flow (with its final W for the boundary test) and the restart flows, in parallel.
fn run_flows(p: &PreparedScenario, a: &[f64]) -> Result<(MainRun, Vec<RestartResult>)> {
    let sc = &p.scenario;
    let restart_settings: Vec<FlowSettings> = (1..=sc.restarts as u64)
        .map(|k| {
            let mut s = p.flow.clone();
            s.model.seed = sc.seed + k;
            s
        })
        .collect();
    let (main, restarts) = rayon::join(
        || run_flow(&p.data, &p.flow, true),
        || restart_settings.par_iter().map(|s| restart_flow(&p.data, s, a)).collect::<Result<Vec<RestartResult>>>(),
    );
    Ok((main?, restarts?))
}

/// Run a prepared scenario: the main flow and the restarts, then every claim on the main flow's
/// summary, rows and max-margin reference (the one the flow solved and compared with).
pub fn run_scenario(p: &PreparedScenario) -> Result<ScenarioReport> {
    run_scenario_with(p, &|_| {})
}

/// [`run_scenario`], telling `stage` what it is on ("flow …", "claims …") so a caller can show
/// progress (the library never prints).
pub fn run_scenario_with(p: &PreparedScenario, stage: &(dyn Fn(&str) + Sync)) -> Result<ScenarioReport> {
    if p.scenario.kind == ScenarioKind::Descent {
        return run_descent_scenario(p, stage);
    }
    let started = Instant::now();
    let sc = &p.scenario;
    let a = p.flow.model.outer_weights()?;
    stage(&format!(
        "flow to t = 10^{} and {} restart(s), with its max-margin reference",
        sc.until_log10_time, sc.restarts
    ));
    let ((outcome, rows), restarts) = run_flows(p, &a)?;
    // Claims on interrupted flows would be noise: the stop request ends the scenario.
    marginflow_solvers::interrupt::check()?;
    let trajectory: Vec<TrajectoryPoint> = rows.iter().filter_map(TrajectoryPoint::from_row).collect();
    let net: Network<f64> = Network::new(&p.data, &p.flow.model, 53)?;
    let summary = &outcome.summary;
    let ev = Evidence {
        p,
        net: &net,
        a: &a,
        summary,
        reference: outcome.reference.as_ref(),
        weights: outcome.weights.as_deref(),
        trajectory: &trajectory,
        restarts: &restarts,
    };
    stage(&format!("claims of {}", p.theorems.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")));
    let geometry: Geometry = data::geometry(&p.data, sc.leak, sc.thresholds.assumption_constant);
    let claims = claims::flow_claims(&ev, &geometry)?;
    let (reference_margin, reference_certified) = (ev.reference_margin(), ev.reference_certified());
    Ok(ScenarioReport {
        name: sc.name.clone(),
        source: p.source.clone(),
        scenario: sc.clone(),
        flow_settings: p.flow.clone(),
        geometry,
        flow_status: summary.status,
        final_s: summary.time.s,
        statistics: ScenarioWork::Flow(summary.statistics.clone()),
        reference_margin,
        reference_certified,
        limit_reference: summary.limit_reference.as_ref().and_then(LimitPoint::of),
        restarts,
        claims,
        trajectory,
        plots: Vec::new(),
        wall_seconds: started.elapsed().as_secs_f64(),
        kind: ScenarioKind::Flow,
        theorems: p.theorems.iter().map(|t| t.id.to_string()).collect(),
        descent: None,
    })
}

/// A descent scenario: one gradient-descent run, then the claims of its theorems (the GD stable
/// rank of Frei et al. from the rows at steps 0, 1, 10 and T; Kou–Chen–Gu's stable ranks and
/// margin ratio from the final W).
fn run_descent_scenario(p: &PreparedScenario, stage: &(dyn Fn(&str) + Sync)) -> Result<ScenarioReport> {
    use crate::descent::{self, DescentActivation, DescentEnd, DescentRow};
    let started = Instant::now();
    let sc = &p.scenario;
    let ds = p.descent.as_ref().expect("a descent scenario has descent settings");
    let a = ds.model.outer_weights()?;
    stage(&format!("gradient descent, {} steps of size {}", ds.steps, ds.step_size));
    let mut rows: Vec<DescentRow> = Vec::new();
    let out = descent::run(&p.data, ds, true, &mut rows)?;
    let th = &sc.thresholds;
    let expect = &sc.expect_fail;
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let points: Vec<DescentPoint> = rows
        .iter()
        .map(|r| DescentPoint {
            step: r.step,
            stable_rank: nan(r.state.stable_rank),
            log10_loss: nan(r.state.log10_loss),
            normalized_margin: nan(r.state.normalized_margin),
            singular_values: r.state.singular_values.iter().map(|v| nan(*v)).collect(),
        })
        .collect();
    let steps = out.summary.last.step;
    let ranks: Vec<(u64, Option<f64>)> = rows.iter().map(|r| (r.step, r.state.stable_rank)).collect();
    let geometry: Geometry = data::geometry(&p.data, sc.leak, th.assumption_constant);
    let act = ds.activation();
    let weights = out.weights.as_deref();
    let q = weights.map(|w| theorem_claims::margins(w, &a, act, &p.data));
    let mut claims = Vec::new();
    for kind in ClaimKind::ALL.into_iter().filter(|k| p.checks(*k)) {
        claims.push(match kind {
            ClaimKind::GdStableRank => theorem_claims::gd_stable_rank_claim(&ranks, steps, th, expect),
            ClaimKind::BlockStableRank => {
                theorem_claims::block_stable_rank_claim(weights, &a, &p.data, sc.leak, th, expect)
            }
            ClaimKind::MarginRatio => theorem_claims::margin_ratio_claim(q.as_deref(), th, expect),
            _ => continue,
        });
    }
    let claims = claims::relu_reported(claims, sc.leak);
    let status = out.summary.status;
    Ok(ScenarioReport {
        name: sc.name.clone(),
        source: p.source.clone(),
        scenario: sc.clone(),
        flow_settings: p.flow.clone(),
        geometry,
        flow_status: match status {
            DescentEnd::Completed => FlowStatus::Reached,
            DescentEnd::Interrupted => FlowStatus::Interrupted,
            DescentEnd::Diverged => FlowStatus::NonFinite,
        },
        final_s: None,
        statistics: ScenarioWork::Descent { steps },
        reference_margin: None,
        reference_certified: false,
        limit_reference: None,
        restarts: Vec::new(),
        claims,
        trajectory: Vec::new(),
        plots: Vec::new(),
        wall_seconds: started.elapsed().as_secs_f64(),
        kind: ScenarioKind::Descent,
        theorems: p.theorems.iter().map(|t| t.id.to_string()).collect(),
        descent: Some(DescentReport {
            status,
            steps,
            step_size: ds.step_size,
            activation: match ds.activation {
                DescentActivation::Leaky => "leaky".into(),
                DescentActivation::Smooth { smoothness } => format!("smooth (H = {smoothness})"),
            },
            rows: points,
        }),
    })
}

/// A restart flow with the same outer layer `a` (held in memory when it is random: the restart's
/// own seed would draw another).
fn restart_flow(data: &Dataset, settings: &FlowSettings, a: &[f64]) -> Result<RestartResult> {
    let mut s = settings.clone();
    if s.model.outer == OuterLayer::Random {
        s.model.outer = OuterLayer::Vector(a.to_vec());
    }
    let (out, _) = run_flow(data, &s, false)?;
    Ok(RestartResult {
        seed: s.model.seed,
        normalized_margin: out.summary.state.normalized_margin,
        status: out.summary.status,
    })
}
