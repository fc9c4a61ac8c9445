//! The typed results of a descent run: [`DescentRow`] (one line of trajectory.jsonl) and
//! [`DescentSummary`] (summary.json). Real numbers `x` appear as `x` (f64, null when not finite)
//! and, above 53 bits, `x_decimal`; the files hold them through
//! [`crate::metrics::to_json_value`] (keys sorted).

use super::DescentSettings;
use crate::metrics::{Shape, StateNumbers};
use serde::{Deserialize, Serialize};

/// One trajectory row: the state after `step` steps (step 0 is the initialization).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescentRow {
    /// Steps taken.
    pub step: u64,
    /// The mean loss L.
    pub loss: Option<f64>,
    /// `loss` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_decimal: Option<String>,
    /// Loss, norm, margins, singular values, pattern agreement.
    #[serde(flatten)]
    pub state: StateNumbers,
}

/// How a descent run ended (summary.json's `status`, in snake case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DescentEnd {
    /// All steps were taken.
    Completed,
    /// The caller stopped the run.
    Interrupted,
    /// The coefficients diverged (`status_detail` says at which step).
    Diverged,
}

impl std::fmt::Display for DescentEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DescentEnd::Completed => "completed",
            DescentEnd::Interrupted => "interrupted",
            DescentEnd::Diverged => "diverged",
        })
    }
}

/// The summary of a descent run (summary.json): the final row's numbers and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescentSummary {
    /// How the run ended.
    pub status: DescentEnd,
    /// Details of a divergence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    /// The final state (step, loss, metrics).
    #[serde(flatten)]
    pub last: DescentRow,
    /// The step size α.
    pub step_size: f64,
    /// Stable rank of W(0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_stable_rank: Option<f64>,
    /// `initial_stable_rank` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_stable_rank_decimal: Option<String>,
    /// Loss weights −ℓ'(q_i)/(nL), summing to 1.
    pub loss_weights: Vec<Option<f64>>,
    /// `loss_weights` with all digits (above 53 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_weights_decimal: Option<Vec<String>>,
    /// L < log 2 / n (every margin positive).
    pub interpolated: bool,
    /// The settings of the run.
    pub settings: DescentSettings,
    /// Working precision in bits.
    pub precision_bits: u32,
    /// The arithmetic behind the precision: "f64", "double-double", "quad-double" or "mpfr"
    /// (summaries written before the field read as empty).
    #[serde(default)]
    pub arithmetic: String,
    /// n, d, m.
    pub shape: Shape,
}
