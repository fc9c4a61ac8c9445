//! Which point a flow reached, in one line: the certified KKT point of its own limit pattern
//! (which gradient flow reaches on any separable data, Lyu–Li 2020, Ji–Telgarsky 2020), and
//! whether that point is the one the theory predicts (the theory pattern's W*, Frei et al. 2023).
//! A pure function of the summary, so a reader of summary.json gets the same answer as the CLI.
//!
//! Thresholds are `validate`'s defaults ([`Thresholds`]): the theory pattern counts as reached
//! when its W* is certified, 1 − cos(dW/ds, W*) ≤ `velocity_gap` and the limit point's normalized
//! margin is within `margin_tolerance` of W*'s; the rank counts the singular values of the flow's W above
//! `sigma_ratio` σ1 (the `rank` claim's test of σ3/σ1).

use crate::flow::summary::{FlowReference, FlowSummary};
use crate::thresholds::Thresholds;
use serde::Serialize;

/// What the summary says about the flow's limit.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LimitVerdict {
    /// The QP on the flow's own final pattern is certified.
    Certified {
        /// Singular values of the flow's W above `sigma_ratio` σ1.
        rank: usize,
        /// The limit point's normalized margin 1/‖W*‖.
        normalized_margin: Option<f64>,
    },
    /// The limit pattern's QP was solved but not certified, or failed.
    NotCertified {
        /// The certificate's first failure, or the solver's error.
        reason: String,
    },
    /// No limit reference (the run ended before it was computed).
    Unknown,
}

/// Whether the flow reached the theory pattern's max-margin point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TheoryVerdict {
    /// Reached: certified, velocity gap and margin ratio within the thresholds.
    pub reached: bool,
    /// 1 − cos(dW/ds, W*) against the theory pattern's W*.
    pub velocity_gap: Option<f64>,
    /// The limit point's normalized margin over the theory pattern's W*'s (1 when they are the
    /// same point; the flow's own margin when the limit pattern has no certified QP).
    pub margin_ratio: Option<f64>,
    /// Why it is not reached, when the reference is missing or not certified.
    pub because: Option<String>,
}

/// The verdict on a flow run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The flow's limit point.
    pub limit: LimitVerdict,
    /// The theory's point.
    pub theory_pattern: TheoryVerdict,
    /// The one-line text ([`Verdict::line`]).
    pub text: String,
}

/// The verdict on `summary` with `validate`'s default thresholds.
pub fn verdict(summary: &FlowSummary) -> Verdict {
    verdict_with(summary, &Thresholds::default())
}

/// The verdict on `summary` with the given thresholds.
pub fn verdict_with(summary: &FlowSummary, th: &Thresholds) -> Verdict {
    let sv: Vec<f64> = summary.state.singular_values.iter().flatten().copied().collect();
    let rank = match sv.first() {
        Some(&s1) if s1 > 0.0 => sv.iter().filter(|&&s| s > th.sigma_ratio * s1).count(),
        _ => 0,
    };
    let limit = match &summary.limit_reference {
        None => LimitVerdict::Unknown,
        Some(r) => match r.comparison() {
            Some(c) if c.certified => LimitVerdict::Certified { rank, normalized_margin: c.normalized_margin },
            _ => {
                LimitVerdict::NotCertified { reason: r.not_certified_because().unwrap_or("not certified").to_string() }
            }
        },
    };
    let theory_pattern = match summary.reference.as_ref() {
        None => TheoryVerdict {
            reached: false,
            velocity_gap: None,
            margin_ratio: None,
            because: Some("no theory-pattern reference".into()),
        },
        Some(FlowReference::Unavailable { error, .. }) => {
            TheoryVerdict { reached: false, velocity_gap: None, margin_ratio: None, because: Some(error.clone()) }
        }
        Some(FlowReference::Compared(c)) => {
            // The limit point's margin (the flow's own, which lags by O(1/s), without one) over W*'s.
            let limit_margin = summary
                .limit_reference
                .as_ref()
                .and_then(|r| r.comparison())
                .filter(|l| l.certified)
                .and_then(|l| l.normalized_margin)
                .or(summary.state.normalized_margin);
            let margin_ratio = match (limit_margin, c.normalized_margin) {
                (Some(f), Some(q)) if q > 0.0 => Some(f / q),
                _ => None,
            };
            let close = c.velocity_gap.is_some_and(|g| g <= th.velocity_gap)
                && margin_ratio.is_some_and(|r| (r - 1.0).abs() <= th.margin_tolerance);
            let because = (!c.certified).then(|| c.not_certified_because.clone().unwrap_or("not certified".into()));
            TheoryVerdict { reached: c.certified && close, velocity_gap: c.velocity_gap, margin_ratio, because }
        }
    };
    let mut v = Verdict { limit, theory_pattern, text: String::new() };
    v.text = v.line();
    v
}

/// The summary as summary.json holds it: the run's numbers and, under `verdict`, which point the
/// flow reached (the CLI's files and `--json`, and the Python module's `summary`, all use this).
pub fn summary_json(summary: &FlowSummary) -> serde_json::Value {
    let mut v = crate::metrics::to_json_value(summary);
    if let Some(map) = v.as_object_mut() {
        map.insert("verdict".into(), crate::metrics::to_json_value(&verdict(summary)));
    }
    v
}

/// A number as the line shows it: 3 significant digits, "?" when absent.
fn g(x: Option<f64>) -> String {
    match x {
        Some(v) if v == 0.0 => "0".into(),
        Some(v) if v.abs() < 1e-3 || v.abs() >= 1e4 => format!("{v:.2e}"),
        Some(v) => format!("{v:.4}"),
        None => "?".into(),
    }
}

impl Verdict {
    /// `limit: certified KKT point of its own pattern (rank r, normalized margin x); theory
    /// pattern: reached | not reached (velocity gap g, margin ratio ρ)`.
    pub fn line(&self) -> String {
        let limit = match &self.limit {
            LimitVerdict::Certified { rank, normalized_margin } => {
                format!(
                    "certified KKT point of its own pattern (rank {rank}, normalized margin {})",
                    g(*normalized_margin)
                )
            }
            LimitVerdict::NotCertified { reason } => format!("not certified ({reason})"),
            LimitVerdict::Unknown => "unknown (no limit-pattern reference)".into(),
        };
        let t = &self.theory_pattern;
        let mut theory = format!(
            "{} (velocity gap {}, margin ratio {})",
            if t.reached { "reached" } else { "not reached" },
            g(t.velocity_gap),
            g(t.margin_ratio)
        );
        if let Some(b) = &t.because {
            theory.push_str(&format!(": {b}"));
        }
        format!("limit: {limit}; theory pattern: {theory}")
    }
}
