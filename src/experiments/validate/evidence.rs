//! What the claims read ([`Evidence`]: the scenario, the flow's summary, rows, references and
//! restarts) and how one is recorded under its theorem ([`claim`]). Imports `claim`, `dynamics`,
//! `theorems` and the folder's `mod.rs` types, none of the claim modules.

use super::claim::{apply_expectation, ClaimKind, ClaimResult, Measurement, Verdict};
use super::theorems::theorem_of;
use super::{PreparedScenario, RestartResult, TrajectoryPoint};
use crate::flow::FlowSummary;
use crate::maxmargin::Reference;
use crate::model::network::Network;

/// A claim's result from its measurements: it holds when every gating measurement passes,
/// read against the scenario's expected failures; reported when none gates.
pub(super) fn claim(
    kind: ClaimKind,
    measurements: Vec<Measurement>,
    note: Option<String>,
    expect: &[ClaimKind],
) -> ClaimResult {
    let gating: Vec<&Measurement> = measurements.iter().filter(|m| m.gating).collect();
    let raw = if gating.is_empty() { None } else { Some(gating.iter().all(|m| m.pass == Some(true))) };
    let verdict = apply_expectation(raw, expect.contains(&kind), Verdict::Reported);
    ClaimResult { claim: kind, theorem: theorem_of(kind).id.to_string(), verdict, measurements, note }
}

/// What the claims read: the scenario, the main flow's summary, rows, reference and final W, and
/// the restarts.
pub(super) struct Evidence<'a> {
    /// The scenario.
    pub p: &'a PreparedScenario,
    /// The model at f64 (W*'s singular values, the linear max margin).
    pub net: &'a Network<f64>,
    /// The outer layer a.
    pub a: &'a [f64],
    /// The main flow's summary.
    pub summary: &'a FlowSummary,
    /// The main flow's max-margin reference (theory pattern), when its QP was solved.
    pub reference: Option<&'a Reference<f64>>,
    /// The main flow's final W (m×d).
    pub weights: Option<&'a [f64]>,
    /// The main flow's rows.
    pub trajectory: &'a [TrajectoryPoint],
    /// The restart flows.
    pub restarts: &'a [RestartResult],
}

impl Evidence<'_> {
    pub(super) fn expect(&self) -> &[ClaimKind] {
        &self.p.scenario.expect_fail
    }
    /// Rows within `late_decades` decades of the final s.
    pub(super) fn late(&self) -> Vec<TrajectoryPoint> {
        late_rows(self.trajectory, self.summary.time.s, self.p.scenario.thresholds.late_decades)
    }
    /// Whether the reference is certified.
    pub(super) fn reference_certified(&self) -> bool {
        self.reference.is_some_and(|r| r.certified)
    }
    /// The reference's normalized margin 1/‖W*‖.
    pub(super) fn reference_margin(&self) -> Option<f64> {
        self.reference.map(|r| 1.0 / r.norm)
    }
}

/// The rows as the numbers [`super::dynamics`] reads.
pub(super) fn dynamics_rows(trajectory: &[TrajectoryPoint]) -> Vec<super::dynamics::Row> {
    trajectory
        .iter()
        .map(|r| super::dynamics::Row {
            s: r.s,
            log10_time: r.log10_time,
            log10_loss: r.log10_loss,
            norm: r.frobenius_norm,
        })
        .collect()
}

/// The final position and velocity gaps with the limit-pattern reference when it is certified,
/// else with the theory pattern's.
pub(super) fn final_gaps(ev: &Evidence<'_>) -> Option<(f64, f64)> {
    let pick = |r: Option<&crate::flow::FlowReference>| {
        r.and_then(|r| r.comparison()).filter(|c| c.certified).and_then(|c| c.position_gap.zip(c.velocity_gap))
    };
    pick(ev.summary.limit_reference.as_ref()).or_else(|| pick(ev.summary.reference.as_ref()))
}

/// Rows within `decades` decades of the final s.
pub fn late_rows(rows: &[TrajectoryPoint], final_s: Option<f64>, decades: f64) -> Vec<TrajectoryPoint> {
    let Some(s_end) = final_s.filter(|s| *s > 0.0) else { return Vec::new() };
    let s_min = s_end / 10f64.powf(decades);
    rows.iter().filter(|r| r.s >= s_min && r.s > 0.0).cloned().collect()
}
