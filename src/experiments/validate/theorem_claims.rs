//! The claims of the theorems beyond frei2023-gf, one function each: Lyu–Li's smoothed margin and
//! rates, Ji–Telgarsky's path length, Kou–Chen–Gu's stable ranks and margin ratio, the GD
//! stable rank of Frei et al. and their benign overfitting. The measurement helpers are plain
//! functions of weights and numbers, tested on closed forms.

use super::claim::{ClaimKind, ClaimResult, Comparison, Measurement};
use super::dynamics::{self, Row};
use super::evidence::claim;
use super::Thresholds;
use crate::model::activation::Activation;
use crate::model::data::Dataset;
use crate::model::loss::Loss;
use marginflow_solvers::linalg::{self, Mat};

/// Lyu–Li: γ̃ = ℓ⁻¹(nL)/‖W‖ non-decreasing (to `smoothed_margin_decrease`) over the rows after
/// nL < ℓ(0).
pub fn smoothed_margin_claim(
    loss: Loss,
    n: usize,
    rows: &[Row],
    final_normalized_margin: Option<f64>,
    th: &Thresholds,
    expect: &[ClaimKind],
) -> ClaimResult {
    let sep = dynamics::separated(loss, n, rows);
    let decrease = dynamics::largest_relative_decrease(&sep);
    let first = sep.first().map(|(_, g)| *g);
    let last = sep.last().map(|(_, g)| *g);
    let ms = vec![
        Measurement::gate("rows with nL < ℓ(0)", Some(sep.len() as f64), Comparison::AtLeast, 2.0),
        Measurement::gate(
            "largest relative decrease of γ̃ between rows",
            decrease.map(|d| d.0),
            Comparison::AtMost,
            th.smoothed_margin_decrease,
        ),
        Measurement::report("s of that row", decrease.map(|d| d.1)),
        Measurement::report("γ̃ at the first separated row", first),
        Measurement::report("γ̃ at the end", last),
        Measurement::report(
            "normalized margin − γ̃ at the end (≥ 0; → 0)",
            final_normalized_margin.zip(last).map(|(g, t)| g - t),
        ),
    ];
    let note = format!(
        "γ̃ = ℓ⁻¹(nL)/‖W‖ from each row's log10 L and ‖W‖ ({}); a decrease is (γ̃_k − γ̃_(k+1))/γ̃_k",
        match loss {
            Loss::Logistic => "ℓ⁻¹(v) = −ln(e^v − 1)",
            Loss::Exponential => "ℓ⁻¹(v) = −ln v",
        }
    );
    claim(ClaimKind::SmoothedMargin, ms, Some(note), expect)
}

/// Lyu–Li: over the rows of the last `late_decades` decades of s (which span hundreds of decades
/// of t: s grows like ln t), log10(L·t) and log10(‖W‖/ln t) each vary by at most `rate_spread`
/// decades; their drifts (slopes against log10 t) are reported.
pub fn loss_rates_claim(rows: &[Row], th: &Thresholds, expect: &[ClaimKind]) -> ClaimResult {
    let s_end = rows.last().map_or(f64::NAN, |r| r.s);
    let late: Vec<Row> = rows.iter().filter(|r| r.s >= s_end / 10f64.powf(th.late_decades)).copied().collect();
    let series = dynamics::rate_series(&late, 1.0);
    let lt: Vec<f64> = series.iter().map(|v| v.1).collect();
    let lt_spread = if series.len() >= 2 {
        Some(lt.iter().cloned().fold(f64::MIN, f64::max) - lt.iter().cloned().fold(f64::MAX, f64::min))
    } else {
        None
    };
    let wl: Vec<f64> = series.iter().map(|v| v.2).collect();
    let x: Vec<f64> = series.iter().map(|v| v.0).collect();
    let lt_fit = super::fit_line(&x, &lt);
    let wl_log: Vec<f64> = wl.iter().map(|v| v.log10()).collect();
    let wl_fit = super::fit_line(&x, &wl_log);
    let ms = vec![
        Measurement::gate("late rows", Some(series.len() as f64), Comparison::AtLeast, 3.0),
        Measurement::gate("spread of log10(L·t) (decades)", lt_spread, Comparison::AtMost, th.rate_spread),
        Measurement::gate(
            "spread of log10(‖W‖/ln t) (decades)",
            dynamics::log10_spread(&wl),
            Comparison::AtMost,
            th.rate_spread,
        ),
        Measurement::report("L·t at the end", lt.last().map(|v| 10f64.powf(*v))),
        Measurement::report("‖W‖/ln t at the end", wl.last().copied()),
        Measurement::report("drift of log10(L·t) per decade of t", lt_fit.map(|f| f.slope)),
        Measurement::report("drift of log10(‖W‖/ln t) per decade of t", wl_fit.map(|f| f.slope)),
    ];
    let note = format!(
        "late rows: s ≥ s_end/10^{} (and t > 10), from log10 t = {} to {}; Θ(1/t) and Θ(log t) mean bounded ratios \
         (drift → 0)",
        th.late_decades,
        super::super::report::fmt_num(x.first().copied()),
        super::super::report::fmt_num(x.last().copied()),
    );
    claim(ClaimKind::LossRates, ms, Some(note), expect)
}

/// Ji–Telgarsky: the path-length bound over the last `late_decades` decades of s is at most
/// `path_length_decay` times the bound over the decades before (a geometric decay, so the path
/// length converges; for γ̃ − lim γ̃ ∝ 1/‖W‖ the bound decays like ‖W‖^(−1/2), 10^(−1/2) per decade
/// of s); the chord (from the position cosines with W*), the whole bound after
/// separation and the alignment bound are reported.
pub fn path_length_claim(
    loss: Loss,
    n: usize,
    rows: &[Row],
    position_gaps: &[(f64, f64)],
    final_gaps: Option<(f64, f64)>,
    th: &Thresholds,
    expect: &[ClaimKind],
) -> ClaimResult {
    let sep = dynamics::separated(loss, n, rows);
    let s_end = rows.last().map_or(f64::NAN, |r| r.s);
    let from_s = s_end / 10f64.powf(th.late_decades);
    let tail = dynamics::path_length_bound(&sep, from_s);
    let before: Vec<(Row, f64)> = sep.iter().filter(|(r, _)| r.s <= from_s * 1.000001).copied().collect();
    let previous = dynamics::path_length_bound(&before, from_s / 10f64.powf(th.late_decades));
    let decay = tail.zip(previous).filter(|(_, p)| *p > 0.0).map(|(t, p)| t / p);
    let whole = dynamics::path_length_bound(&sep, f64::NEG_INFINITY);
    // The angle to W* changes by at most the path length: a lower bound of the tail.
    let angle = |g: f64| (1.0 - g).clamp(-1.0, 1.0).acos();
    let tail_gaps: Vec<&(f64, f64)> = position_gaps.iter().filter(|(s, _)| *s >= from_s).collect();
    let chord = match (tail_gaps.first(), tail_gaps.last()) {
        (Some(a), Some(b)) if tail_gaps.len() >= 2 => Some((angle(a.1) - angle(b.1)).abs()),
        _ => None,
    };
    // cos(W, V) ≥ cos(θ(W, W*) + θ(V, W*)).
    let alignment = final_gaps.map(|(p, v)| (angle(p) + angle(v)).min(std::f64::consts::PI).cos());
    let ms = vec![
        Measurement::gate(
            "path-length bound, last decade(s) of s / the decade(s) before",
            decay,
            Comparison::AtMost,
            th.path_length_decay,
        ),
        Measurement::report("path-length bound over the last decade(s) of s (radians)", tail),
        Measurement::report("path-length bound over the decade(s) before", previous),
        Measurement::report(
            "bound of the rest to s = ∞ if the decay stays geometric, tail·r/(1 − r)",
            tail.zip(decay).filter(|(_, r)| *r < 1.0).map(|(t, r)| t * r / (1.0 - r)),
        ),
        Measurement::report("change of the angle to W* over that tail (a lower bound)", chord),
        Measurement::report("path-length bound after nL < ℓ(0)", whole),
        Measurement::report("alignment cos(W, −∇L) ≥ cos(θ(W,W*) + θ(dW/ds,W*)) at the end", alignment),
    ];
    let note = format!(
        "bound Σ sqrt(|Δ ln γ̃| Δ ln ‖W‖) over rows with s ≥ s_end/10^{} (Lyu–Li Lemma 5.1 and Cauchy–Schwarz); \
         the alignment is proven for smooth activations only and is reported",
        th.late_decades
    );
    claim(ClaimKind::PathLength, ms, Some(note), expect)
}

/// Stable rank ‖M‖_F²/‖M‖_2² of the rows `rows` of a row-major matrix with `cols` columns, from
/// the Gram matrix of those rows (σ1² is its largest eigenvalue, accurate relative to itself).
/// `None` for no rows or a zero block.
pub fn block_stable_rank(w: &[f64], cols: usize, rows: &[usize]) -> Option<f64> {
    let k = rows.len();
    if k == 0 {
        return None;
    }
    let mut g = vec![0.0; k * k];
    for (a, &ra) in rows.iter().enumerate() {
        for (b, &rb) in rows.iter().enumerate().skip(a) {
            let v: f64 =
                w[ra * cols..(ra + 1) * cols].iter().zip(&w[rb * cols..(rb + 1) * cols]).map(|(p, q)| p * q).sum();
            g[a * k + b] = v;
            g[b * k + a] = v;
        }
    }
    let trace: f64 = (0..k).map(|a| g[a * k + a]).sum();
    let sv = linalg::singular_values(&Mat::from_vec(k, k, g)).ok()?;
    let top = *sv.first()?;
    (top > 0.0).then(|| trace / top)
}

/// Margins q_i = y_i Σ_j a_j φ(⟨w_j, x_i⟩) of W (m×d row-major).
pub fn margins(w: &[f64], a: &[f64], act: Activation, data: &Dataset) -> Vec<f64> {
    margins_on(w, a, act, data.d, &data.x, &data.y)
}

/// Margins on any points (rows of `x`) with labels `y`.
pub fn margins_on(w: &[f64], a: &[f64], act: Activation, d: usize, x: &[f64], y: &[f64]) -> Vec<f64> {
    x.chunks(d)
        .zip(y)
        .map(|(xi, yi)| {
            let f: f64 = w
                .chunks(d)
                .zip(a)
                .map(|(wj, aj)| aj * act.value(&wj.iter().zip(xi).map(|(p, q)| p * q).sum::<f64>()))
                .sum();
            yi * f
        })
        .collect()
}

/// Kou–Chen–Gu, stable rank: of each sign block W₊, W₋ (gating, at most 1 + `stable_rank_excess`)
/// and of the whole W (reported, with the balanced closed-form value 2(1+γ²)/(1+γ)²).
pub fn block_stable_rank_claim(
    w: Option<&[f64]>,
    a: &[f64],
    data: &Dataset,
    gamma: f64,
    th: &Thresholds,
    expect: &[ClaimKind],
) -> ClaimResult {
    let Some(w) = w else {
        let ms = vec![Measurement::gate("final weights available (1 = yes)", Some(0.0), Comparison::AtLeast, 1.0)];
        return claim(ClaimKind::BlockStableRank, ms, Some("no final weights".into()), expect);
    };
    let d = data.d;
    let pos: Vec<usize> = (0..a.len()).filter(|&j| a[j] > 0.0).collect();
    let neg: Vec<usize> = (0..a.len()).filter(|&j| a[j] < 0.0).collect();
    let all: Vec<usize> = (0..a.len()).collect();
    let limit = 1.0 + th.stable_rank_excess;
    let whole = block_stable_rank(w, d, &all);
    let dead = (0..a.len())
        .filter(|&j| {
            data.x.chunks(d).all(|x| w[j * d..(j + 1) * d].iter().zip(x).map(|(p, q)| p * q).sum::<f64>() <= 0.0)
        })
        .count();
    let relu = gamma == 0.0;
    let mut ms = Vec::new();
    for (label, rows) in [("stable rank of W₊ (a_j > 0)", &pos), ("stable rank of W₋ (a_j < 0)", &neg)] {
        if rows.is_empty() {
            continue;
        }
        let v = block_stable_rank(w, d, rows);
        ms.push(if relu {
            Measurement::info_threshold(label, v, Comparison::AtMost, limit)
        } else {
            Measurement::gate(label, v, Comparison::AtMost, limit)
        });
    }
    if relu {
        ms.push(Measurement::gate("stable rank of W (ReLU: bounded)", whole, Comparison::AtMost, th.relu_stable_rank));
    } else {
        ms.push(Measurement::info_threshold("stable rank of W (the other reading)", whole, Comparison::AtMost, limit));
    }
    ms.push(Measurement::report(
        "2(1+γ²)/(1+γ)² (W at the balanced max-margin point, orthogonal equal-norm data)",
        Some(2.0 * (1.0 + gamma * gamma) / ((1.0 + gamma) * (1.0 + gamma))),
    ));
    ms.push(Measurement::report("dead neurons (⟨w_j, x_i⟩ ≤ 0 for every i)", Some(dead as f64)));
    let blocks_hold =
        ms.iter().filter(|m| m.name.contains("W₊") || m.name.contains("W₋")).all(|m| m.pass == Some(true));
    let reading = match (blocks_hold, whole.is_some_and(|v| v <= limit)) {
        (true, true) => "both readings hold",
        (true, false) => "the sign-block reading holds, the whole-W reading does not",
        (false, true) => "the whole-W reading holds, the sign-block reading does not",
        (false, false) => "neither reading holds",
    };
    let note = if relu {
        format!(
            "ReLU: the theorem bounds the stable rank of W by a constant (gating: at most {}); the rank-one readings \
             are reported: {reading}",
            th.relu_stable_rank
        )
    } else {
        format!("readings: W₊ and W₋ each (gating) or the whole W (reported); here {reading}")
    };
    claim(ClaimKind::BlockStableRank, ms, Some(note), expect)
}

/// Kou–Chen–Gu, margins: max_i q_i / min_i q_i at most `margin_ratio`.
pub fn margin_ratio_claim(q: Option<&[f64]>, th: &Thresholds, expect: &[ClaimKind]) -> ClaimResult {
    let (min, max) = match q {
        Some(q) if !q.is_empty() => {
            (q.iter().cloned().fold(f64::INFINITY, f64::min), q.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
        }
        _ => (f64::NAN, f64::NAN),
    };
    let ratio = (min > 0.0).then(|| max / min);
    let ms = vec![
        Measurement::gate("max_i q_i / min_i q_i", ratio, Comparison::AtMost, th.margin_ratio),
        Measurement::report("min_i q_i", Some(min)),
        Measurement::report("max_i q_i", Some(max)),
    ];
    claim(ClaimKind::MarginRatio, ms, Some("the ratio of normalized margins equals that of margins".into()), expect)
}

/// Frei et al. (GD): stable rank at steps 0, 1, 10 and T; those after step 0 at most
/// `gd_stable_rank`, and step 1 at most `gd_drop` × step 0.
pub fn gd_stable_rank_claim(
    ranks: &[(u64, Option<f64>)],
    steps: u64,
    th: &Thresholds,
    expect: &[ClaimKind],
) -> ClaimResult {
    let at = |k: u64| ranks.iter().find(|(s, _)| *s == k).and_then(|(_, v)| *v);
    let (r0, r1) = (at(0), at(1));
    let mut ms = vec![Measurement::report("stable rank at step 0", r0)];
    let mut checked: Vec<u64> = [1, 10, steps].into_iter().filter(|k| *k >= 1 && *k <= steps).collect();
    checked.dedup();
    for k in checked {
        ms.push(Measurement::gate(&format!("stable rank at step {k}"), at(k), Comparison::AtMost, th.gd_stable_rank));
    }
    ms.push(Measurement::gate(
        "stable rank at step 1 / at step 0",
        r0.zip(r1).map(|(a, b)| b / a),
        Comparison::AtMost,
        th.gd_drop,
    ));
    let later_max = ranks
        .iter()
        .filter(|(s, _)| *s >= 1)
        .filter_map(|(_, v)| *v)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    ms.push(Measurement::report("largest stable rank over the rows after step 0", later_max));
    claim(
        ClaimKind::GdStableRank,
        ms,
        Some(format!(
            "the constant bound is `gd_stable_rank` = {}; the drop `gd_drop` = {}",
            th.gd_stable_rank, th.gd_drop
        )),
        expect,
    )
}

/// Frei et al. (benign): the flow interpolates the noisy training labels and its error on the
/// clean test set is at most `test_error`.
pub fn benign_claim(
    train_margins: Option<&[f64]>,
    test_margins: Option<&[f64]>,
    label_noise: f64,
    th: &Thresholds,
    expect: &[ClaimKind],
) -> ClaimResult {
    let err = |q: &[f64]| q.iter().filter(|v| **v <= 0.0).count() as f64 / q.len().max(1) as f64;
    let train = train_margins.map(err);
    let test = test_margins.map(err);
    let ms = vec![
        Measurement::gate("training error on the noisy labels", train, Comparison::AtMost, 0.0),
        Measurement::gate("test error on clean samples", test, Comparison::AtMost, th.test_error),
        Measurement::report("label noise rate η", Some(label_noise)),
        Measurement::report(
            "implied error on the noisy distribution η + (1 − 2η)·test error",
            test.map(|e| label_noise + (1.0 - 2.0 * label_noise) * e),
        ),
        Measurement::report("test points", test_margins.map(|q| q.len() as f64)),
    ];
    claim(ClaimKind::BenignOverfitting, ms, Some("test points from the same μ, labels without noise".into()), expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stable rank of a block against closed forms: rank-one rows give 1; two orthogonal rows
    /// of norms 1 and r give 1 + r²; the balanced max-margin structure gives 2(1+γ²)/(1+γ)².
    #[test]
    fn block_stable_rank_closed_forms() {
        let w = [1.0, 2.0, 0.0, 2.0, 4.0, 0.0, 0.0, 0.0, 0.5];
        assert!((block_stable_rank(&w, 3, &[0, 1]).unwrap() - 1.0).abs() < 1e-12);
        let sr = block_stable_rank(&w, 3, &[0, 2]).unwrap();
        assert!((sr - (1.0 + 0.25 / 5.0)).abs() < 1e-12, "{sr}");
        // Orthogonal unit data e_1 (y = +1), e_2 (y = −1); v+ = e1 − γ e2, v− = e2 − γ e1 (up to
        // the common factor), rows a_j v±: the whole W has 2(1+γ²)/(1+γ)².
        let g = 0.2;
        let w = [1.0, -g, 1.0, -g, -g, 1.0, -g, 1.0];
        let sr = block_stable_rank(&w, 2, &[0, 1, 2, 3]).unwrap();
        assert!((sr - 2.0 * (1.0 + g * g) / ((1.0 + g) * (1.0 + g))).abs() < 1e-12, "{sr}");
        assert!((block_stable_rank(&w, 2, &[0, 1]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(block_stable_rank(&w, 2, &[]), None);
    }

    /// The block claim holds on the rank-one blocks and fails on a random one; the whole W is
    /// reported, never gating.
    #[test]
    fn block_claim_holds_and_fails() {
        let g = 0.2;
        let w = [1.0, -g, 1.0, -g, -g, 1.0, -g, 1.0];
        let a = [0.5, 0.5, -0.5, -0.5];
        let th = Thresholds::default();
        let data = Dataset { n: 2, d: 2, x: vec![1.0, 0.0, 0.0, 1.0], y: vec![1.0, -1.0] };
        let c = block_stable_rank_claim(Some(&w), &a, &data, g, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Holds, "{c:?}");
        assert!(c.note.as_deref().unwrap().contains("sign-block reading holds"));
        let w2 = [1.0, 0.0, 0.0, 1.0, -g, 1.0, -g, 1.0];
        let c = block_stable_rank_claim(Some(&w2), &a, &data, g, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Fails);
        // ReLU: the whole W's stable rank gates (bounded), the blocks are reported; a neuron with
        // ⟨w_j, x_i⟩ ≤ 0 on both points is dead.
        let w3 = [1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.0, 1.0];
        let c = block_stable_rank_claim(Some(&w3), &a, &data, 0.0, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Holds, "{c:?}");
        let dead = c.measurements.iter().find(|m| m.name.starts_with("dead")).unwrap().value;
        assert_eq!(dead, Some(1.0));
        let strict = Thresholds { relu_stable_rank: 1.2, ..Thresholds::default() };
        assert_eq!(
            block_stable_rank_claim(Some(&w3), &a, &data, 0.0, &strict, &[]).verdict,
            super::super::Verdict::Fails
        );
    }

    #[test]
    fn margin_ratio_and_benign() {
        let th = Thresholds::default();
        assert_eq!(margin_ratio_claim(Some(&[1.0, 1.001]), &th, &[]).verdict, super::super::Verdict::Holds);
        assert_eq!(margin_ratio_claim(Some(&[1.0, 3.0]), &th, &[]).verdict, super::super::Verdict::Fails);
        assert_eq!(margin_ratio_claim(Some(&[-1.0, 3.0]), &th, &[]).verdict, super::super::Verdict::Fails);
        let c = benign_claim(Some(&[1.0, 2.0]), Some(&[1.0, 1.0, -1.0]), 0.1, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Fails);
        let c = benign_claim(Some(&[1.0, 2.0]), Some(&[1.0; 40]), 0.1, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Holds);
        let c = benign_claim(Some(&[1.0, -2.0]), Some(&[1.0; 40]), 0.1, &th, &[]);
        assert_eq!(c.verdict, super::super::Verdict::Fails);
    }

    fn row(s: f64, log10_time: f64, log10_loss: f64, norm: f64) -> Row {
        Row { s, log10_time, log10_loss, norm }
    }

    /// An asymptotic trajectory by hand (exponential loss, n = 1): ‖W‖ = ln t / γ, L = c/t, so
    /// γ̃ = (ln t − ln c)/‖W‖ = γ (1 − ln c/ln t) increases, L·t = c, and the direction is fixed
    /// up to the 1/ρ offset; every Lyu–Li and Ji–Telgarsky claim holds. A dip in γ̃, a slow loss
    /// (L = t^(−1/2)) and a γ̃ that keeps rising by the same step each decade each fail.
    #[test]
    fn trajectory_claims_hold_and_fail_on_hand_made_trajectories() {
        use super::super::Verdict;
        let th = Thresholds::default();
        let (g, lnc) = (0.5f64, 2.0f64);
        let good: Vec<Row> = (0..40)
            .map(|k| {
                let lt = 10f64.powf(1.0 + k as f64 / 10.0); // log10 t from 10 to ~ 7900
                let s = lt / 10.0;
                let ln_t = lt * std::f64::consts::LN_10;
                row(s, lt, (lnc - ln_t) / std::f64::consts::LN_10, ln_t / g)
            })
            .collect();
        let sm = smoothed_margin_claim(Loss::Exponential, 1, &good, None, &th, &[]);
        assert_eq!(sm.verdict, Verdict::Holds, "{sm:?}");
        assert_eq!(loss_rates_claim(&good, &th, &[]).verdict, Verdict::Holds);
        let pl = path_length_claim(Loss::Exponential, 1, &good, &[], None, &th, &[]);
        assert_eq!(pl.verdict, Verdict::Holds, "{pl:?}");
        // A dip: one row's loss raised (γ̃ falls there).
        let mut dip = good.clone();
        dip[20].log10_loss += 0.5;
        assert_eq!(smoothed_margin_claim(Loss::Exponential, 1, &dip, None, &th, &[]).verdict, Verdict::Fails);
        // L = t^(−1/2): L·t grows by decades.
        let slow: Vec<Row> = good.iter().map(|r| row(r.s, r.log10_time, -0.5 * r.log10_time, r.norm)).collect();
        assert_eq!(loss_rates_claim(&slow, &th, &[]).verdict, Verdict::Fails);
        // γ̃ doubling every decade of s while ‖W‖ grows 10×: the bound does not decay.
        let wander: Vec<Row> = (0..40)
            .map(|k| {
                let norm = 10f64.powf(k as f64 / 10.0);
                let gt = 2f64.powf(k as f64 / 10.0);
                row(norm, 1.0 + k as f64, -(gt * norm) / std::f64::consts::LN_10, norm)
            })
            .collect();
        let pl = path_length_claim(Loss::Exponential, 1, &wander, &[], None, &th, &[]);
        assert_eq!(pl.verdict, Verdict::Fails, "{pl:?}");
    }

    #[test]
    fn gd_claim_holds_and_fails() {
        let th = Thresholds::default();
        let good = [(0, Some(80.0)), (1, Some(1.3)), (10, Some(1.2)), (100, Some(1.15))];
        assert_eq!(gd_stable_rank_claim(&good, 100, &th, &[]).verdict, super::super::Verdict::Holds);
        let bad = [(0, Some(80.0)), (1, Some(79.0)), (10, Some(78.0)), (100, Some(70.0))];
        assert_eq!(gd_stable_rank_claim(&bad, 100, &th, &[]).verdict, super::super::Verdict::Fails);
    }
}
