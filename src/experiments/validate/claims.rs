//! The flow scenario's claims in report order ([`flow_claims`]), and those of its claims that
//! read only the summary and the data (`assumption`, `interpolation`, `kkt`). The top of this
//! folder's claim stack: it imports `claim`, `evidence`, `theorems`, `limit_claims` and
//! `theorem_claims`; none of them imports it.

use super::claim::*;
use super::evidence::*;
use super::limit_claims::*;
use super::theorems::theorem_of;
use crate::error::Result;
use crate::model::data::Geometry;
use marginflow_solvers::linalg;

/// Every claim of the scenario's theorems, in report order.
pub(super) fn flow_claims(ev: &Evidence<'_>, geometry: &Geometry) -> Result<Vec<ClaimResult>> {
    use super::theorem_claims as tc;
    let sc = &ev.p.scenario;
    let th = &sc.thresholds;
    let expect = ev.expect();
    let rows = dynamics_rows(ev.trajectory);
    let act = crate::model::activation::Activation::Leaky { gamma: sc.leak };
    let train_margins = ev.weights.map(|w| tc::margins(w, ev.a, act, &ev.p.data));
    let mut out = Vec::new();
    for kind in ClaimKind::ALL {
        if !ev.p.checks(kind) {
            continue;
        }
        out.push(match kind {
            ClaimKind::Assumption => assumption_claim(ev, geometry),
            ClaimKind::Interpolation => interpolation_claim(ev),
            ClaimKind::Kkt => kkt_claim(ev),
            ClaimKind::TheoryPattern => theory_pattern_claim(ev),
            ClaimKind::Rank => rank_claim(ev)?,
            ClaimKind::GlobalMaxMargin => global_max_margin_claim(ev),
            ClaimKind::LinearBoundary => linear_boundary_claim(ev),
            ClaimKind::SmoothedMargin => {
                tc::smoothed_margin_claim(sc.loss, ev.p.data.n, &rows, ev.summary.state.normalized_margin, th, expect)
            }
            ClaimKind::LossRates => tc::loss_rates_claim(&rows, th, expect),
            ClaimKind::PathLength => {
                let gaps: Vec<(f64, f64)> =
                    ev.trajectory.iter().filter_map(|r| r.position_gap.map(|g| (r.s, g))).collect();
                let fin = final_gaps(ev);
                tc::path_length_claim(sc.loss, ev.p.data.n, &rows, &gaps, fin, th, expect)
            }
            ClaimKind::BlockStableRank => {
                tc::block_stable_rank_claim(ev.weights, ev.a, &ev.p.data, sc.leak, th, expect)
            }
            ClaimKind::MarginRatio => tc::margin_ratio_claim(train_margins.as_deref(), th, expect),
            ClaimKind::BenignOverfitting => {
                let test = ev.p.test.as_ref().zip(ev.weights).map(|(t, w)| tc::margins(w, ev.a, act, t));
                let noise = sc.generate.as_ref().map_or(0.0, |g| g.label_noise);
                tc::benign_claim(train_margins.as_deref(), test.as_deref(), noise, th, expect)
            }
            ClaimKind::GdStableRank => continue,
        });
    }
    Ok(relu_reported(out, sc.leak))
}

/// With γ = 0 (ReLU) the claims of theorems that assume γ > 0 are measured and reported, never
/// gating (their theorem says nothing there).
pub(super) fn relu_reported(mut claims: Vec<ClaimResult>, leak: f64) -> Vec<ClaimResult> {
    if leak != 0.0 {
        return claims;
    }
    for c in claims.iter_mut().filter(|c| theorem_of(c.claim).needs_leak) {
        if c.verdict == Verdict::NotApplicable {
            continue;
        }
        for m in c.measurements.iter_mut() {
            m.gating = false;
        }
        c.verdict = Verdict::Reported;
        let note = format!("{} assumes γ > 0: measured and reported at γ = 0 (ReLU), not gating", c.theorem);
        c.note = Some(match c.note.take() {
            Some(n) => format!("{note}; {n}"),
            None => note,
        });
    }
    claims
}

/// `assumption`: the paper's near-orthogonality ratio against C (reported, never gating).
pub(super) fn assumption_claim(ev: &Evidence<'_>, geometry: &Geometry) -> ClaimResult {
    let c = ev.p.scenario.thresholds.assumption_constant;
    claim(
        ClaimKind::Assumption,
        vec![
            Measurement::info_threshold(
                "paper ratio R_min²/(γ⁻³R²np) ≥ C",
                geometry.paper_ratio.or(Some(f64::INFINITY)),
                Comparison::AtLeast,
                c,
            ),
            Measurement::report("ratio min‖x_i‖²/(n p)", geometry.ratio),
            Measurement::report("max |⟨x_i,x_k⟩|", Some(geometry.max_abs_inner)),
            Measurement::report("min ‖x_i‖²", Some(geometry.min_sq_norm)),
        ],
        Some(format!("the paper's condition {} for C = {}; reported only", geometry.condition, c)),
        ev.expect(),
    )
}

/// `interpolation`: the smallest log10 L over the rows and the end is below log10(log 2 / n).
pub(super) fn interpolation_claim(ev: &Evidence<'_>) -> ClaimResult {
    let interp_threshold = (2f64.ln() / ev.p.data.n as f64).log10();
    let min_loss = ev
        .trajectory
        .iter()
        .map(|r| r.log10_loss)
        .chain(ev.summary.state.log10_loss)
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    claim(
        ClaimKind::Interpolation,
        vec![Measurement::gate(
            "min log10 L (threshold log10(log 2 / n): below it every margin is positive)",
            Some(min_loss),
            Comparison::Below,
            interp_threshold,
        )],
        None,
        ev.expect(),
    )
}

/// `kkt`: the max-margin QP on the flow's own limit pattern is certified, the velocity is parallel
/// to its solution W*, and the loss weights match its λ/Σλ; the flow direction's KKT residuals are
/// reported.
pub(super) fn kkt_claim(ev: &Evidence<'_>) -> ClaimResult {
    let th = &ev.p.scenario.thresholds;
    let limit = ev.summary.limit_reference.as_ref();
    let comparison = limit.and_then(|r| r.comparison());
    let certified = comparison.is_some_and(|c| c.certified);
    let kappa = ev.weights.and_then(|w| multiplier_conditioning(ev, w));
    let wnorm = ev.summary.loss_weights.iter().map(|v| v.unwrap_or(0.0).powi(2)).sum::<f64>().sqrt();
    let mut notes =
        vec!["against the certified max-margin QP on the flow's own limit pattern; the loss weights w = −ℓ'(q)/(nL) \
         are read from the velocity through A = G Gᵀ (G_i = ∇_W q_i at the end), so an error δ of the direction \
         allows a relative multiplier error √κ(A)·δ: the multiplier threshold is scaled by √κ(A)"
            .to_string()];
    if let Some(why) = limit.and_then(|r| r.not_certified_because()) {
        notes.push(format!("limit-pattern reference not certified: {why}"));
    }
    claim(
        ClaimKind::Kkt,
        vec![
            Measurement::gate(
                "limit-pattern reference certified (1 = yes)",
                Some(if certified { 1.0 } else { 0.0 }),
                Comparison::AtLeast,
                1.0,
            ),
            Measurement::gate(
                "velocity gap 1 − cos(dW/ds, W*_limit)",
                comparison.and_then(|c| c.velocity_gap),
                Comparison::AtMost,
                th.velocity_gap,
            ),
            Measurement::gate(
                "multiplier error max|w_i − λ_i/Σλ| (limit pattern), against multiplier_error·√κ(A)",
                comparison.and_then(|c| c.multiplier_error),
                Comparison::AtMost,
                th.multiplier_error * kappa.map_or(f64::INFINITY, f64::sqrt),
            ),
            Measurement::info_threshold(
                "the same against multiplier_error unscaled",
                comparison.and_then(|c| c.multiplier_error),
                Comparison::AtMost,
                th.multiplier_error,
            ),
            Measurement::report("condition number κ(A) of the multiplier map", kappa),
            Measurement::report(
                "multiplier error the velocity gap allows, √κ(A)·√(2·gap)·‖w‖₂",
                kappa
                    .zip(comparison.and_then(|c| c.velocity_gap))
                    .map(|(k, g)| k.sqrt() * (2.0 * g.max(0.0)).sqrt() * wnorm),
            ),
            Measurement::report("KKT stationarity (flow direction)", ev.summary.kkt.kkt_stationarity),
            Measurement::report("KKT complementarity (flow direction)", ev.summary.kkt.kkt_complementarity),
            Measurement::report("position gap 1 − cos(W, W*_limit)", comparison.and_then(|c| c.position_gap)),
        ],
        Some(notes.join("; ")),
        ev.expect(),
    )
}

/// κ(A) = σ_max/σ_min of the multiplier map's Gram matrix at the final W, on the support of the
/// loss weights (w_i ≥ 1e-6 max w): A = Σ_j a_j² D_j K_j D_j with D_j = diag(y ⊙ σ_j),
/// σ_ji = φ'(⟨w_j, x_i⟩), and K_j the Gram matrix of the data projected orthogonally to the points
/// where row j is pinned at 0 (K − K_{:,S} K_SS⁻¹ K_{S,:}, DESIGN §8; a pinned entry's slope is free
/// in [γ, 1], so its direction carries no information about w). The velocity is
/// V = Σ_i w_i ∇_W q_i + (pinned directions), so w are V's coordinates in this Gram matrix.
/// Infinite when A is singular to round-off (the weights are then not determined by the direction).
pub(super) fn multiplier_conditioning(ev: &Evidence<'_>, w: &[f64]) -> Option<f64> {
    let data = &ev.p.data;
    let (n, d, m) = (data.n, data.d, ev.a.len());
    let gamma = ev.p.scenario.leak;
    let weights: Vec<f64> = ev.summary.loss_weights.iter().map(|v| v.unwrap_or(0.0)).collect();
    let wmax = weights.iter().cloned().fold(0.0, f64::max);
    let support: Vec<usize> = (0..n).filter(|&i| weights[i] >= 1e-6 * wmax && wmax > 0.0).collect();
    let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    let k = ev.net.k_mat.to_f64();
    let ns = support.len();
    let mut amat = vec![0.0; ns * ns];
    for j in 0..m {
        let wj = &w[j * d..(j + 1) * d];
        let wn = dot(wj, wj).sqrt();
        let p: Vec<f64> = (0..n).map(|i| dot(wj, data.row(i))).collect();
        let pinned: Vec<usize> = (0..n).filter(|&i| p[i].abs() <= 1e-9 * wn * k[i * n + i].sqrt()).collect();
        let sigma: Vec<f64> = (0..n)
            .map(|i| {
                if pinned.contains(&i) {
                    0.0
                } else if p[i] > 0.0 {
                    1.0
                } else {
                    gamma
                }
            })
            .collect();
        // Gram of the support points projected away from the pinned points (Gram–Schmidt).
        let kj: Vec<f64> = if pinned.is_empty() {
            support.iter().flat_map(|&i| support.iter().map(move |&l| (i, l))).map(|(i, l)| k[i * n + l]).collect()
        } else {
            let mut basis: Vec<Vec<f64>> = Vec::new();
            for &s in &pinned {
                let mut v = data.row(s).to_vec();
                for b in &basis {
                    let c = dot(&v, b);
                    v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
                }
                let nv = dot(&v, &v).sqrt();
                if nv > 1e-12 * k[s * n + s].sqrt() {
                    v.iter_mut().for_each(|x| *x /= nv);
                    basis.push(v);
                }
            }
            let proj: Vec<Vec<f64>> = support
                .iter()
                .map(|&i| {
                    let mut v = data.row(i).to_vec();
                    for b in &basis {
                        let c = dot(&v, b);
                        v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
                    }
                    v
                })
                .collect();
            proj.iter().flat_map(|u| proj.iter().map(move |v| (u, v))).map(|(u, v)| dot(u, v)).collect()
        };
        let aj2 = ev.a[j] * ev.a[j];
        for (r, &i) in support.iter().enumerate() {
            for (c, &l) in support.iter().enumerate() {
                amat[r * ns + c] += aj2 * data.y[i] * sigma[i] * data.y[l] * sigma[l] * kj[r * ns + c];
            }
        }
    }
    let sv = linalg::singular_values(&linalg::Mat::from_vec(ns, ns, amat)).ok()?;
    let (max, min) = (*sv.first()?, *sv.last()?);
    if !(max > 0.0) {
        return None;
    }
    Some(if min > 1e-15 * max { max / min } else { f64::INFINITY })
}
