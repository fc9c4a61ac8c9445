//! The theorems `validate` checks, as data: each has an id, a citation, a one-paragraph statement,
//! its assumptions (measured and reported, never gating), the kinds of run it speaks about and
//! its claims. Every claim belongs to exactly one theorem ([`theorem_of`]); a scenario names the
//! theorems it checks (`theorems = [...]`, default: every theorem that applies to its kind).

use super::claim::ClaimKind;
use serde::{Deserialize, Serialize};

/// What a scenario runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// Gradient flow in normalized time (`marginflow flow`) (the default).
    #[default]
    Flow,
    /// Full-batch gradient descent (`marginflow descent`).
    Descent,
}

impl ScenarioKind {
    /// The name in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            ScenarioKind::Flow => "flow",
            ScenarioKind::Descent => "descent",
        }
    }
}

/// A theorem and its claims.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Theorem {
    /// Short id used in scenario files and on the command line (`frei2023-gf`).
    pub id: &'static str,
    /// Authors, title, venue, year, arXiv id and theorem numbers where known.
    pub citation: &'static str,
    /// What it states, as far as it could be read, and how marginflow measures it.
    pub statement: &'static str,
    /// Its assumptions (reported, never gating).
    pub assumptions: &'static [&'static str],
    /// The kinds of run it speaks about.
    pub kinds: &'static [ScenarioKind],
    /// Its claims, in report order.
    pub claims: &'static [ClaimKind],
    /// Whether it assumes a leak γ > 0: with γ = 0 (ReLU) its claims are measured and reported,
    /// never gating.
    pub needs_leak: bool,
    /// Whether a scenario checks it by default (without `theorems = [...]`); `frei2023-benign`
    /// needs a `[test]` table and is checked only where one is given.
    pub default_on: bool,
}

/// Every theorem, in report order.
pub const THEOREMS: &[Theorem] = &[
    Theorem {
        id: "frei2023-gf",
        citation: "S. Frei, G. Vardi, P. L. Bartlett, N. Srebro, W. Hu, \"Implicit Bias in Leaky ReLU Networks \
                   Trained on High-Dimensional Data\", ICLR 2023, arXiv:2210.07082 (gradient-flow theorem, Sec. 3)",
        statement: "On nearly orthogonal data, gradient flow on a two-layer leaky-ReLU network with a fixed outer \
                    layer converges in direction to a KKT point of the max-margin problem whose activation pattern \
                    is S_ji = sign(a_j) y_i, which has rank at most two, is a global max-margin solution, and (with \
                    a balanced outer layer) has the linear decision boundary of z = Σ λ_i y_i x_i, an approximately \
                    max-margin linear predictor.",
        assumptions: &["near orthogonality R_min² ≥ C γ⁻³ R² n p (C recalled as 3)", "leak γ ∈ (0, 1)"],
        kinds: &[ScenarioKind::Flow],
        claims: &[
            ClaimKind::Assumption,
            ClaimKind::Interpolation,
            ClaimKind::TheoryPattern,
            ClaimKind::Rank,
            ClaimKind::GlobalMaxMargin,
            ClaimKind::LinearBoundary,
        ],
        needs_leak: true,
        default_on: true,
    },
    Theorem {
        id: "lyu-li2020",
        citation: "K. Lyu, J. Li, \"Gradient Descent Maximizes the Margin of Homogeneous Neural Networks\", ICLR 2020, \
                   arXiv:1906.05890 (Thms. 4.1, 4.3, 4.4; Lemma 5.1)",
        statement: "For gradient flow on a homogeneous network (here 1-homogeneous in W), once nL < ℓ(0) the smoothed \
                    normalized margin γ̃ = ℓ⁻¹(nL)/‖W‖ is non-decreasing; the loss decays as Θ(1/(t (log t)^{2−2/k})) and ‖W‖ grows as \
                    Θ((log t)^{1/k}) for degree k, here L = Θ(1/t) and ‖W‖ = Θ(log t); every limit direction \
                    is a KKT point of the max-margin problem. Measured: the largest relative decrease of γ̃ between \
                    rows, L·t and ‖W‖/ln t over the late decades of t, and the KKT point of the flow's own limit \
                    pattern (`kkt`).",
        assumptions: &["separability reached along the flow: nL < ℓ(0) at some time"],
        kinds: &[ScenarioKind::Flow],
        claims: &[ClaimKind::SmoothedMargin, ClaimKind::LossRates, ClaimKind::Kkt],
        needs_leak: false,
        default_on: true,
    },
    Theorem {
        id: "ji-telgarsky2020",
        citation: "Z. Ji, M. Telgarsky, \"Directional convergence and alignment in deep learning\", NeurIPS 2020, \
                   arXiv:2006.06657",
        statement: "For gradient flow on a homogeneous network with a definable (o-minimal) loss, once the data are \
                    separated W/‖W‖ converges: its path length ∫‖d(W/‖W‖)/ds‖ ds is finite. For smooth \
                    activations the gradient aligns with the weights, cos(W, −∇L) → 1. Measured: an upper bound of \
                    the path length over the last decade of s, from Lyu–Li's Lemma 5.1 (‖dŴ/ds‖² ≤ \
                    (d log γ̃/ds)(d log ‖W‖/ds)) and Cauchy–Schwarz per row interval; the alignment is reported \
                    (the leaky ReLU is not smooth).",
        assumptions: &["separability reached along the flow: nL < ℓ(0) at some time"],
        kinds: &[ScenarioKind::Flow],
        claims: &[ClaimKind::PathLength],
        needs_leak: false,
        default_on: true,
    },
    Theorem {
        id: "frei2023-gd",
        citation: "S. Frei, G. Vardi, P. L. Bartlett, N. Srebro, W. Hu, \"Implicit Bias in Leaky ReLU Networks \
                   Trained on High-Dimensional Data\", ICLR 2023, arXiv:2210.07082 (gradient-descent theorem, Sec. 4)",
        statement: "On nearly orthogonal data, gradient descent on the H-smooth leaky ReLU from a small enough \
                    initialization makes the stable rank ‖W‖_F²/‖W‖_2² at most a constant (independent of m and d) \
                    after one step, and it stays small through training; from the default 1/√d scale it does not \
                    drop. Measured: the stable rank at steps 0, 1, 10 and T.",
        assumptions: &["near orthogonality", "initialization scale small (ω ≪ 1/√d)", "step size α ≤ 1/C_smooth"],
        kinds: &[ScenarioKind::Descent],
        claims: &[ClaimKind::GdStableRank],
        needs_leak: true,
        default_on: true,
    },
    Theorem {
        id: "kou-chen-gu2023",
        citation: "Y. Kou, Z. Chen, Q. Gu, \"Implicit Bias of Gradient Descent for Two-layer ReLU and Leaky ReLU \
                   Networks on Nearly-orthogonal Data\", NeurIPS 2023, arXiv:2310.18935",
        statement: "On nearly orthogonal data (‖x_i‖² ≥ C n max_{k≠i} |⟨x_i, x_k⟩|), gradient descent on a leaky-ReLU \
                    network drives the stable rank to 1 (ReLU: bounded by a constant), and all training points reach \
                    the same normalized margin asymptotically (max_i q_i / min_i q_i → 1). Which matrix has stable \
                    rank 1 is read two ways: the whole W, or each sign block W₊ (a_j > 0) and W₋ (a_j < 0); at the \
                    balanced max-margin point on orthogonal equal-norm data W has stable rank 2(1+γ²)/(1+γ)², not 1. \
                    Both are measured; the blocks gate, the whole W is reported. For the ReLU (γ = 0) the theorem \
                    bounds the stable rank of W by a constant: that gates (at most `relu_stable_rank`) and the \
                    neurons that are dead (all pre-activations ≤ 0) are counted. On flows it is checked in the \
                    step-size → 0 limit.",
        assumptions: &["near orthogonality ‖x_i‖² ≥ C n max_{k≠i}|⟨x_i,x_k⟩|", "small initialization"],
        kinds: &[ScenarioKind::Descent, ScenarioKind::Flow],
        claims: &[ClaimKind::BlockStableRank, ClaimKind::MarginRatio],
        needs_leak: false,
        default_on: true,
    },
    Theorem {
        id: "frei2023-benign",
        citation: "S. Frei, G. Vardi, P. L. Bartlett, N. Srebro, \"Benign Overfitting in Linear Classifiers and Leaky \
                   ReLU Networks from KKT Conditions for Margin Maximization\", COLT 2023, arXiv:2303.01462",
        statement: "On nearly orthogonal noisy class-conditional Gaussians (x = y μ + ξ, a fraction η of the labels \
                    flipped), KKT points of the max-margin problem of a leaky-ReLU network overfit benignly: they \
                    interpolate the noisy labels while their error on the noisy distribution stays near the \
                    noise rate η, that is, their error on fresh clean samples is small. \
                    Measured: training error on the noisy labels, test error on a clean test set from the same μ.",
        assumptions: &["near orthogonality", "‖μ‖ large enough against d and n (signal-to-noise)"],
        kinds: &[ScenarioKind::Flow],
        claims: &[ClaimKind::BenignOverfitting],
        needs_leak: true,
        default_on: false,
    },
];

/// The theorem with this id.
pub fn theorem(id: &str) -> Option<&'static Theorem> {
    THEOREMS.iter().find(|t| t.id == id)
}

/// The theorem a claim belongs to.
pub fn theorem_of(claim: ClaimKind) -> &'static Theorem {
    THEOREMS.iter().find(|t| t.claims.contains(&claim)).expect("every claim belongs to a theorem")
}

/// The ids of every theorem, comma separated (for error messages).
pub fn ids() -> String {
    THEOREMS.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_belongs_to_exactly_one_theorem() {
        for c in ClaimKind::ALL {
            assert_eq!(THEOREMS.iter().filter(|t| t.claims.contains(&c)).count(), 1, "{c:?}");
        }
        let n: usize = THEOREMS.iter().map(|t| t.claims.len()).sum();
        assert_eq!(n, ClaimKind::ALL.len());
    }
}
