//! The claims about the limit of the flow that compare it with the theory pattern's W*:
//! `theory_pattern`, `rank`, `global_max_margin`, `linear_boundary` (balanced or not).
//! Imports go one way: this module uses `claim` (the records) and `evidence` (what the claims
//! read); `claims` lists these claims.

#![allow(unused_imports)]
use super::claim::*;
use super::evidence::*;
use super::theorems::theorem_of;
use super::{PreparedScenario, RestartResult, TrajectoryPoint};
use crate::error::Result;
use crate::flow::FlowSummary;
use crate::maxmargin::{self, Reference};
use crate::model::data::Geometry;
use crate::model::network::{ModelSettings, Network};
use marginflow_solvers::linalg;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `theory_pattern`: the theory-pattern reference is certified, the velocity is parallel to its
/// W*, the loss weights match its λ/Σλ; the position gap and its fit against 1/s are reported.
pub(super) fn theory_pattern_claim(ev: &Evidence<'_>) -> ClaimResult {
    let th = &ev.p.scenario.thresholds;
    let comparison = ev.summary.reference.as_ref().and_then(|r| r.comparison());
    let velocity_gap = comparison.and_then(|c| c.cosines.cosine_velocity).map(|c| 1.0 - c);
    let position_gap = comparison.and_then(|c| c.cosines.cosine_position).map(|c| 1.0 - c);
    let gap_fit = position_gap_fit(&ev.late());
    let mut notes = Vec::new();
    if let Some(why) = ev.summary.reference.as_ref().and_then(|r| r.not_certified_because()) {
        notes.push(format!("theory-pattern reference not certified: {why}"));
    }
    notes.push("position-gap fit: log10(1 − cos(W,W*)) = a + b·log10(1/s) over the late rows".into());
    claim(
        ClaimKind::TheoryPattern,
        vec![
            Measurement::gate(
                "theory-pattern reference certified (1 = yes)",
                Some(if ev.reference_certified() { 1.0 } else { 0.0 }),
                Comparison::AtLeast,
                1.0,
            ),
            Measurement::gate("velocity gap 1 − cos(dW/ds, W*)", velocity_gap, Comparison::AtMost, th.velocity_gap),
            Measurement::gate(
                "multiplier error max|w_i − λ_i/Σλ|",
                comparison.and_then(|c| c.multiplier_error),
                Comparison::AtMost,
                th.multiplier_error,
            ),
            Measurement::report("position gap 1 − cos(W, W*)", position_gap),
            Measurement::report("position-gap fit slope b", gap_fit.map(|f| f.slope)),
            Measurement::report("position-gap fit R²", gap_fit.map(|f| f.r_squared)),
        ],
        Some(notes.join("; ")),
        ev.expect(),
    )
}

/// The position-gap fit log10(1 − cos(W, W*)) = a + b·log10(1/s) over `late` rows (the
/// `theory_pattern` claim reports b; the gaps figure draws the line).
pub fn position_gap_fit(late: &[TrajectoryPoint]) -> Option<LineFit> {
    let (lx, ly): (Vec<f64>, Vec<f64>) = late
        .iter()
        .filter_map(|r| r.position_gap.filter(|g| *g > 0.0).map(|g| ((1.0 / r.s).log10(), g.log10())))
        .unzip();
    fit_line(&lx, &ly)
}

/// `rank`: rank W* ≤ 2, σ3/σ1 of W small at the end and decreasing over the late rows.
pub(super) fn rank_claim(ev: &Evidence<'_>) -> Result<ClaimResult> {
    let th = &ev.p.scenario.thresholds;
    let (wstar_rank, wstar_ratio) = match ev.reference {
        Some(r) => {
            let sv = linalg::singular_values(&ev.net.small_span(&r.coefficients.data))?;
            let rank = linalg::rank_from_singular_values(&sv, th.rank_tolerance);
            let ratio = if sv.len() >= 3 && sv[0] > 0.0 { sv[2] / sv[0] } else { 0.0 };
            (Some(rank as f64), Some(ratio))
        }
        None => (None, None),
    };
    let (rx, ry): (Vec<f64>, Vec<f64>) = ev
        .late()
        .iter()
        .filter(|r| r.sigma3_over_sigma1 > 0.0)
        .map(|r| (r.s.log10(), r.sigma3_over_sigma1.log10()))
        .unzip();
    let ratio_fit = fit_line(&rx, &ry);
    Ok(claim(
        ClaimKind::Rank,
        vec![
            Measurement::gate("rank W*", wstar_rank, Comparison::AtMost, 2.0),
            Measurement::report("σ3/σ1 of W*", wstar_ratio),
            Measurement::gate(
                "σ3/σ1 of W at the end",
                ev.summary.state.sigma3_over_sigma1,
                Comparison::AtMost,
                th.sigma_ratio,
            ),
            Measurement::gate(
                "slope of log σ3/σ1 vs log s (late rows)",
                ratio_fit.map(|f| f.slope),
                Comparison::Below,
                0.0,
            ),
        ],
        Some(format!("rank counts singular values above {:e}·σ1", th.rank_tolerance)),
        ev.expect(),
    ))
}

/// `global_max_margin`: the flow's normalized margin reaches the certified QP's, and no restart
/// beats it (or the QP).
pub(super) fn global_max_margin_claim(ev: &Evidence<'_>) -> ClaimResult {
    let tol = ev.p.scenario.thresholds.margin_tolerance;
    let gf_margin = ev.summary.state.normalized_margin;
    let reference_margin = ev.reference_margin();
    let best_restart = ev
        .restarts
        .iter()
        .filter_map(|r| r.normalized_margin)
        .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))));
    let mut gm = vec![
        Measurement::report("flow normalized margin", gf_margin),
        Measurement::report("QP normalized margin 1/‖W*‖", reference_margin),
        Measurement::gate(
            "flow / QP margin",
            gf_margin.zip(reference_margin.filter(|_| ev.reference_certified())).map(|(g, q)| g / q),
            Comparison::AtLeast,
            1.0 - tol,
        ),
    ];
    if let Some(b) = best_restart {
        gm.push(Measurement::report("best restart normalized margin", Some(b)));
        gm.push(Measurement::gate(
            "flow / best restart margin",
            gf_margin.map(|g| g / b),
            Comparison::AtLeast,
            1.0 - tol,
        ));
        gm.push(Measurement::gate(
            "best restart / QP margin",
            reference_margin.map(|q| b / q),
            Comparison::AtMost,
            1.0 + tol,
        ));
    }
    claim(
        ClaimKind::GlobalMaxMargin,
        gm,
        Some(format!("{} restart(s); the QP is solved on the theory pattern", ev.restarts.len())),
        ev.expect(),
    )
}

/// `linear_boundary`: not applicable unless the outer layer is balanced.
pub(super) fn linear_boundary_claim(ev: &Evidence<'_>) -> ClaimResult {
    if ModelSettings::is_balanced(ev.a) {
        return balanced_boundary_claim(ev);
    }
    let expect = ev.expect();
    ClaimResult {
        claim: ClaimKind::LinearBoundary,
        theorem: theorem_of(ClaimKind::LinearBoundary).id.to_string(),
        verdict: if expect.contains(&ClaimKind::LinearBoundary) {
            Verdict::UnexpectedlyHeld
        } else {
            Verdict::NotApplicable
        },
        measurements: vec![],
        note: Some(unbalanced_note(&ev.p.scenario.outer, ev.a)),
    }
}

/// Signs of f(x; W) for the rows of `points` (k×d), W m×d row-major.
pub(super) fn network_signs(w: &[f64], a: &[f64], gamma: f64, d: usize, points: &[f64]) -> Vec<f64> {
    points
        .chunks(d)
        .map(|x| {
            let f: f64 = w
                .chunks(d)
                .zip(a)
                .map(|(wj, aj)| {
                    let z: f64 = wj.iter().zip(x).map(|(p, q)| p * q).sum();
                    aj * if z >= 0.0 { z } else { gamma * z }
                })
                .sum();
            f.signum()
        })
        .collect()
}

/// `linear_boundary` with a balanced outer layer: sign f(x; W) = sign⟨z, x⟩, z = Σ λ_i y_i x_i, on
/// the data and on seeded Gaussian test points, and z's normalized margin against the linear max
/// margin.
pub(super) fn balanced_boundary_claim(ev: &Evidence<'_>) -> ClaimResult {
    let (p, net, a, expect) = (ev.p, ev.net, ev.a, ev.expect());
    let (reference, weights) = (ev.reference, ev.weights);
    let data = &p.data;
    let th = &p.scenario.thresholds;
    let (n, d) = (data.n, data.d);
    let gamma = p.scenario.leak;
    let (Some(r), Some(w)) = (reference, weights) else {
        let ms = vec![Measurement::gate("reference available (1 = yes)", Some(0.0), Comparison::AtLeast, 1.0)];
        return claim(ClaimKind::LinearBoundary, ms, Some("no max-margin reference".into()), expect);
    };
    // z = Σ λ_i y_i x_i.
    let mut z = vec![0.0; d];
    for i in 0..n {
        let c = r.multipliers[i] * data.y[i];
        for (zk, xk) in z.iter_mut().zip(data.row(i)) {
            *zk += c * xk;
        }
    }
    let zsign = |x: &[f64]| -> f64 { x.iter().zip(&z).map(|(u, v)| u * v).sum::<f64>().signum() };
    let f_data = network_signs(w, a, gamma, d, &data.x);
    let agree_data = (0..n).filter(|&i| f_data[i] == zsign(data.row(i))).count() as f64 / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(p.scenario.seed ^ 0x7e57);
    let k = th.test_points;
    let test: Vec<f64> = (0..k * d).map(|_| StandardNormal.sample(&mut rng)).collect();
    let f_test = network_signs(w, a, gamma, d, &test);
    let agree_test = test.chunks(d).zip(&f_test).filter(|(x, f)| **f == zsign(x)).count() as f64 / k as f64;
    // W* itself: ⟨w*_j, x⟩ = Σ_i C_ji ⟨x_i, x⟩.
    let mut wstar = vec![0.0; a.len() * d];
    for j in 0..a.len() {
        for i in 0..n {
            let c = r.coefficients.data[j * n + i];
            for (wk, xk) in wstar[j * d..(j + 1) * d].iter_mut().zip(data.row(i)) {
                *wk += c * xk;
            }
        }
    }
    let fstar_test = network_signs(&wstar, a, gamma, d, &test);
    let agree_star = test.chunks(d).zip(&fstar_test).filter(|(x, f)| **f == zsign(x)).count() as f64 / k as f64;
    // z's normalized margin against the linear max margin.
    let znorm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    let zmargin = (0..n)
        .map(|i| data.y[i] * data.row(i).iter().zip(&z).map(|(u, v)| u * v).sum::<f64>())
        .fold(f64::INFINITY, f64::min)
        / znorm;
    let lin = maxmargin::linear_max_margin(net, &maxmargin::MaxMarginSettings::default()).ok();
    let lin_margin = lin.filter(|l| l.certified).map(|l| 1.0 / l.norm);
    let mut ms = vec![
        Measurement::gate("agreement on the data", Some(agree_data), Comparison::AtLeast, 1.0),
        Measurement::gate(
            "agreement on Gaussian test points",
            Some(agree_test),
            Comparison::AtLeast,
            th.boundary_agreement,
        ),
        Measurement::report("agreement of W* on the test points", Some(agree_star)),
        Measurement::report("z normalized margin", Some(zmargin)),
        Measurement::report("linear max margin", lin_margin),
        Measurement::gate(
            "z margin / linear max margin",
            lin_margin.map(|l| zmargin / l),
            Comparison::AtLeast,
            th.z_margin_ratio,
        ),
    ];
    if !r.certified {
        ms.insert(0, Measurement::gate("reference certified (1 = yes)", Some(0.0), Comparison::AtLeast, 1.0));
    }
    let note = format!("{k} test points x ~ N(0, I_d); z = Σ λ_i y_i x_i");
    claim(ClaimKind::LinearBoundary, ms, Some(note), expect)
}

/// Why the linear-boundary claim does not apply: the outer layer has unequal positive and negative
/// mass. With `outer = "balanced"` and odd m that is the ⌈m/2⌉ / ⌊m/2⌋ split: exact balance
/// needs even m.
pub fn unbalanced_note(outer: &str, a: &[f64]) -> String {
    let pos = a.iter().filter(|v| **v > 0.0).count();
    let neg = a.len() - pos;
    if outer == "balanced" && a.len() % 2 == 1 {
        format!(
            "with odd width m = {} the `balanced` outer layer has {pos} entries +1/√m and {neg} entries −1/√m, \
             so it is not exactly balanced (that needs even m): the claim does not apply",
            a.len()
        )
    } else {
        format!(
            "the outer layer is not balanced ({pos} positive, {neg} negative entries): the boundary is piecewise \
             linear and the claim does not apply"
        )
    }
}
