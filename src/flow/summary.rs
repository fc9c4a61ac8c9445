//! The typed results of a flow run: [`TrajectoryRow`] (one line of trajectory.jsonl) and
//! [`FlowSummary`] (summary.json), field names as in DESIGN §3–4.
//!
//! Every real number `x` appears as `x` (f64, null when not finite) and, at precision above
//! 53 bits, `x_decimal` (a string with all its digits). The files hold these structs serialized
//! through `serde_json::Value`, whose objects keep their keys sorted: write them with
//! [`crate::metrics::to_json_value`] so the bytes stay those of the file format.

use crate::flow::settings::FlowSettings;
use crate::metrics::{log10_time, num_fields, Shape, StateNumbers};
use marginflow_solvers::ode::Statistics;
use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

/// Where a flow state is: normalized time s and physical time as log10 t.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowTime {
    /// Normalized time s.
    pub s: Option<f64>,
    /// `s` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s_decimal: Option<String>,
    /// log10 t, from u = log(1 + t).
    pub log10_time: Option<f64>,
    /// `log10_time` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log10_time_decimal: Option<String>,
}

impl FlowTime {
    /// From s and u = log(1 + t) at working precision.
    pub fn of<T: Real>(s: &T, u: &T) -> Self {
        let (s, s_decimal) = num_fields(s);
        let (log10_time, log10_time_decimal) = num_fields(&log10_time(u));
        FlowTime { s, s_decimal, log10_time, log10_time_decimal }
    }
}

/// The cosines of one row with the certified max-margin solution W* (rows of a run that has it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowCosines {
    /// cos(W, W*) (Frobenius). Required when reading (so a row without cosines reads as none).
    #[serde(deserialize_with = "Option::deserialize")]
    pub cosine_position: Option<f64>,
    /// `cosine_position` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine_position_decimal: Option<String>,
    /// cos(dW/ds, W*).
    pub cosine_velocity: Option<f64>,
    /// `cosine_velocity` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine_velocity_decimal: Option<String>,
}

impl RowCosines {
    /// From cos(W, W*) and cos(dW/ds, W*) at working precision.
    pub fn of<T: Real>(position: &T, velocity: &T) -> Self {
        let (cosine_position, cosine_position_decimal) = num_fields(position);
        let (cosine_velocity, cosine_velocity_decimal) = num_fields(velocity);
        RowCosines { cosine_position, cosine_position_decimal, cosine_velocity, cosine_velocity_decimal }
    }
}

/// The KKT residuals of the flow's own direction W/q_min (stationarity and complementarity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KktNumbers {
    /// Relative stationarity residual.
    pub kkt_stationarity: Option<f64>,
    /// `kkt_stationarity` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kkt_stationarity_decimal: Option<String>,
    /// Weighted complementarity residual.
    pub kkt_complementarity: Option<f64>,
    /// `kkt_complementarity` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kkt_complementarity_decimal: Option<String>,
}

impl KktNumbers {
    /// From the two residuals at working precision.
    pub fn of<T: Real>(stationarity: &T, complementarity: &T) -> Self {
        let (kkt_stationarity, kkt_stationarity_decimal) = num_fields(stationarity);
        let (kkt_complementarity, kkt_complementarity_decimal) = num_fields(complementarity);
        KktNumbers { kkt_stationarity, kkt_stationarity_decimal, kkt_complementarity, kkt_complementarity_decimal }
    }
}

/// One trajectory row (a line of trajectory.jsonl): the state at normalized time s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRow {
    /// s and log10 t.
    #[serde(flatten)]
    pub time: FlowTime,
    /// Loss, norm, margins, singular values, pattern agreement.
    #[serde(flatten)]
    pub state: StateNumbers,
    /// Cosines with the reference W*, when the reference exists.
    #[serde(flatten)]
    pub cosines: Option<RowCosines>,
    /// Accepted steps so far.
    pub accepted: u64,
    /// Rejected steps so far.
    pub rejected: u64,
    /// Kink events located so far.
    pub events: u64,
    /// Right-hand-side evaluations so far.
    pub rhs_evaluations: u64,
}

/// Where `auto` switched to SEULEX.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwitchPoint {
    /// Normalized time of the switch. Required when reading (a run without a switch has none).
    #[serde(deserialize_with = "Option::deserialize")]
    pub switched_at_s: Option<f64>,
    /// `switched_at_s` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at_s_decimal: Option<String>,
    /// Accepted explicit steps before the switch (recorded together with `switched_at_s`).
    pub switched_at_accepted: Option<u64>,
}

/// The flow's end state compared with the certified max-margin solution W* of the theory pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceComparison {
    /// The QP's normalized margin 1/‖W*‖.
    pub normalized_margin: Option<f64>,
    /// `normalized_margin` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_margin_decimal: Option<String>,
    /// cos(W, W*) and cos(dW/ds, W*).
    #[serde(flatten)]
    pub cosines: RowCosines,
    /// 1 − cos(W, W*) at working precision.
    pub position_gap: Option<f64>,
    /// `position_gap` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_gap_decimal: Option<String>,
    /// 1 − cos(dW/ds, W*) at working precision.
    pub velocity_gap: Option<f64>,
    /// `velocity_gap` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity_gap_decimal: Option<String>,
    /// max_i |w_i − λ_i/Σλ| (loss weights against normalized multipliers).
    pub multiplier_error: Option<f64>,
    /// `multiplier_error` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier_error_decimal: Option<String>,
    /// The flow direction's KKT residuals (as in the summary).
    #[serde(flatten)]
    pub kkt: KktNumbers,
    /// Whether W* is certified.
    pub certified: bool,
    /// The first certificate condition that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_certified_because: Option<String>,
}

/// The `reference` object of a summary: the comparison, or why the reference could not be solved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlowReference {
    /// The reference QP failed (listed first: reading tries it first, and it needs `error`).
    Unavailable {
        /// Always false.
        certified: bool,
        /// The solver's error.
        error: String,
    },
    /// The reference was solved (certified or not).
    Compared(Box<ReferenceComparison>),
}

impl FlowReference {
    /// Why the reference is not certified (the certificate's failure or the solver's error).
    pub fn not_certified_because(&self) -> Option<&str> {
        match self {
            FlowReference::Compared(c) => c.not_certified_because.as_deref(),
            FlowReference::Unavailable { error, .. } => Some(error),
        }
    }
    /// The comparison, when the reference was solved.
    pub fn comparison(&self) -> Option<&ReferenceComparison> {
        match self {
            FlowReference::Compared(c) => Some(&**c),
            FlowReference::Unavailable { .. } => None,
        }
    }
}

/// How a flow run ended (summary.json's `status`, in snake case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// The horizon was reached.
    Reached,
    /// The step limit was hit.
    MaxSteps,
    /// The step size fell below round-off relative to s.
    StepSizeUnderflow,
    /// The right-hand side produced a NaN or infinity.
    NonFinite,
    /// The loss rose above its tolerance (`status_detail` says where).
    LossIncreased,
    /// The caller stopped the run (Ctrl-C, a stop request).
    Interrupted,
    /// The run could not advance (`status_detail` says where, what was seen, what to try).
    Stalled,
    /// The flow converged to a stationary point of positive loss (the data are not separated
    /// along the flow; `stationary` and `status_detail` give the loss, ‖∇L‖ and the points
    /// left misclassified).
    Stationary,
}

impl FlowStatus {
    /// The name written to summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Reached => "reached",
            FlowStatus::MaxSteps => "max_steps",
            FlowStatus::StepSizeUnderflow => "step_size_underflow",
            FlowStatus::NonFinite => "non_finite",
            FlowStatus::LossIncreased => "loss_increased",
            FlowStatus::Interrupted => "interrupted",
            FlowStatus::Stalled => "stalled",
            FlowStatus::Stationary => "stationary",
        }
    }
}

impl std::fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a flow ended at a stationary point of positive loss (status `stationary`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StationaryPoint {
    /// log10 L at the end.
    pub log10_loss: f64,
    /// The projected limit of log10 L (geometric tail of the decreases per decade of s).
    pub log10_loss_limit: f64,
    /// ‖∇L‖ (Frobenius) at the end.
    pub gradient_norm: f64,
    /// The points with q_i ≤ 0 (0-based).
    pub misclassified: Vec<usize>,
}

/// The summary of a flow run (summary.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowSummary {
    /// How the run ended.
    pub status: FlowStatus,
    /// Details of an early end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    /// What the watchdog changed during the run (e.g. a tolerance raised to what the arithmetic
    /// holds); absent when nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// At status `stationary`: the stationary point's loss, gradient norm and misclassified points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stationary: Option<StationaryPoint>,
    /// Final s and log10 t.
    #[serde(flatten)]
    pub time: FlowTime,
    /// Loss, norm, margins, singular values, pattern agreement at the end.
    #[serde(flatten)]
    pub state: StateNumbers,
    /// Loss weights −ℓ'(q_i)/(nL), summing to 1.
    pub loss_weights: Vec<Option<f64>>,
    /// `loss_weights` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_weights_decimal: Option<Vec<String>>,
    /// L < log 2 / n (every margin positive).
    pub interpolated: bool,
    /// KKT residuals of the flow's own direction.
    #[serde(flatten)]
    pub kkt: KktNumbers,
    /// Work counters.
    pub statistics: Statistics,
    /// Pre-activations in a sliding mode at the end.
    pub sliding_at_end: usize,
    /// The engine that ran.
    #[serde(default)]
    pub engine: crate::flow::Engine,
    /// The dual engine's work counters (kinks, pins entered and left, entries examined, kernel
    /// updates, refreshes and their drift; absent for the span engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_statistics: Option<crate::flow::dual::DualStatistics>,
    /// The settings of the run.
    pub settings: FlowSettings,
    /// The method(s) used, e.g. `dopri5+seulex`.
    pub method_used: String,
    /// Where `auto` switched to SEULEX, if it did.
    #[serde(flatten)]
    pub switch: Option<SwitchPoint>,
    /// Working precision in bits.
    pub precision_bits: u32,
    /// The arithmetic behind the precision: "f64", "double-double", "quad-double" or "mpfr"
    /// (summaries written before the field read as empty).
    #[serde(default)]
    pub arithmetic: String,
    /// n, d, m.
    pub shape: Shape,
    /// The comparison with the max-margin reference, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<FlowReference>,
    /// The comparison with the certified max-margin QP on the flow's own limit pattern (pinned
    /// entries included): the KKT point gradient flow converges to on any separable data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_reference: Option<FlowReference>,
    /// Peak resident memory of the process in bytes (`VmHWM`), written by `marginflow flow`
    /// (absent where the process runs other work: sweeps, validate, Python).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Wall-clock seconds of the run (all its resumed parts).
    pub wall_seconds: f64,
}
