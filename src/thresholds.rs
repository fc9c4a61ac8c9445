//! The thresholds of the claims and of the flow's verdict (a scenario's `[thresholds]` table,
//! `validate`'s defaults). A leaf: it imports nothing of this crate, so `flow` (the verdict) and
//! `experiments` (the claims) both read it.

use serde::{Deserialize, Serialize};

/// Thresholds of the claims (the `[thresholds]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Constant C of the near-orthogonality condition R_min² ≥ C γ⁻³ R² n p (default: 3).
    pub assumption_constant: f64,
    /// Largest velocity gap 1 − cos(dW/ds, W*) at the end (default: 1e-8).
    pub velocity_gap: f64,
    /// Largest multiplier error max_i |w_i − λ_i/Σλ| at the end (default: 1e-6).
    pub multiplier_error: f64,
    /// Singular values of W* below this fraction of σ1 count as zero for its rank (default: 1e-10).
    pub rank_tolerance: f64,
    /// Largest σ3/σ1 of the flow's W at the end (default: 0.05).
    pub sigma_ratio: f64,
    /// Relative tolerance of the normalized-margin ratios (flow / QP, flow / best restart):
    /// each must be ≥ 1 − this (default: 1e-3).
    pub margin_tolerance: f64,
    /// Smallest fraction of Gaussian test points where sign f(x; W) = sign⟨z, x⟩ (default: 0.99).
    pub boundary_agreement: f64,
    /// Smallest ratio of z's normalized margin to the linear max margin (default: 0.9).
    pub z_margin_ratio: f64,
    /// Number of Gaussian test points for the boundary (default: 1000).
    pub test_points: usize,
    /// Late rows are those within this many decades of the final s (default: 1).
    pub late_decades: f64,
    /// Largest relative decrease of the smoothed margin γ̃ between rows (`smoothed_margin`)
    /// (default: 1e-8, a hundred times the default rtol).
    pub smoothed_margin_decrease: f64,
    /// Largest spread, in decades, of L·t and of ‖W‖/ln t over the late rows (`loss_rates`)
    /// (default: 1, a factor 10).
    pub rate_spread: f64,
    /// Largest ratio of the path-length bound of W/‖W‖ over the last `late_decades` of s to the
    /// bound over the decades before (`path_length`) (default: 0.5).
    pub path_length_decay: f64,
    /// The sign blocks' stable ranks must be at most 1 + this (`block_stable_rank`) (default: 0.05).
    pub stable_rank_excess: f64,
    /// Largest max_i q_i / min_i q_i at the end (`margin_ratio`) (default: 1.05).
    pub margin_ratio: f64,
    /// Largest stable rank at steps 1, 10 and T of gradient descent (`gd_stable_rank`) (default: 2).
    pub gd_stable_rank: f64,
    /// Largest ratio of the stable rank after one step to that at step 0 (`gd_stable_rank`)
    /// (default: 0.5).
    pub gd_drop: f64,
    /// Largest error on the clean test set (`benign_overfitting`) (default: 0.05).
    pub test_error: f64,
    /// ReLU (γ = 0): largest stable rank of W, the constant of Kou–Chen–Gu's bound
    /// (`block_stable_rank`) (default: 4).
    pub relu_stable_rank: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            assumption_constant: 3.0,
            velocity_gap: 1e-8,
            multiplier_error: 1e-6,
            rank_tolerance: 1e-10,
            sigma_ratio: 0.05,
            margin_tolerance: 1e-3,
            boundary_agreement: 0.99,
            z_margin_ratio: 0.9,
            test_points: 1000,
            late_decades: 1.0,
            smoothed_margin_decrease: 1e-8,
            rate_spread: 1.0,
            path_length_decay: 0.5,
            stable_rank_excess: 0.05,
            margin_ratio: 1.05,
            gd_stable_rank: 2.0,
            gd_drop: 0.5,
            test_error: 0.05,
            relu_stable_rank: 4.0,
        }
    }
}
