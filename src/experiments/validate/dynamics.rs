//! Quantities of Lyu–Li (2020) and Ji–Telgarsky (2020) computed from trajectory rows alone
//! (s, log10 t, log10 L, ‖W‖): the smoothed normalized margin, its monotonicity, the rates
//! L·t and ‖W‖/ln t, and an upper bound of the direction's path length.
//!
//! Pure functions of plain numbers, so the tests can feed hand-made trajectories.

use crate::model::loss::Loss;
use std::f64::consts::LN_10;

/// ℓ(0): log 2 for the logistic loss, 1 for the exponential loss.
pub fn loss_at_zero(loss: Loss) -> f64 {
    match loss {
        Loss::Logistic => 2f64.ln(),
        Loss::Exponential => 1.0,
    }
}

/// ℓ⁻¹(v) from ln v without forming v where it would underflow: −ln v for the exponential loss,
/// −ln(e^v − 1) for the logistic loss (= −ln v − ln(1 + v/2 + …), −ln v once v underflows).
/// `None` unless 0 < v < ℓ(0) (the inverse is then positive).
pub fn inverse_loss(loss: Loss, ln_v: f64) -> Option<f64> {
    if !ln_v.is_finite() || ln_v >= loss_at_zero(loss).ln() {
        return None;
    }
    Some(match loss {
        Loss::Exponential => -ln_v,
        Loss::Logistic => {
            let v = ln_v.exp();
            if v > 1e-300 {
                -v.exp_m1().ln()
            } else {
                -ln_v
            }
        }
    })
}

/// One row's numbers that these quantities read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// Normalized time s.
    pub s: f64,
    /// log10 t.
    pub log10_time: f64,
    /// log10 of the mean loss L.
    pub log10_loss: f64,
    /// ‖W‖_F.
    pub norm: f64,
}

/// The smoothed normalized margin γ̃ = ℓ⁻¹(nL)/‖W‖ of a row (`None` while nL ≥ ℓ(0)).
pub fn smoothed_margin(loss: Loss, n: usize, row: &Row) -> Option<f64> {
    let ln_sum = (n as f64).ln() + row.log10_loss * LN_10;
    inverse_loss(loss, ln_sum).filter(|_| row.norm > 0.0 && row.norm.is_finite()).map(|v| v / row.norm)
}

/// The rows from the first one with nL < ℓ(0) on, with their γ̃.
pub fn separated(loss: Loss, n: usize, rows: &[Row]) -> Vec<(Row, f64)> {
    let first = rows.iter().position(|r| smoothed_margin(loss, n, r).is_some());
    let Some(first) = first else { return Vec::new() };
    rows[first..].iter().filter_map(|r| smoothed_margin(loss, n, r).map(|g| (*r, g))).collect()
}

/// The largest relative decrease max_k (γ̃_k − γ̃_{k+1}) / γ̃_k between consecutive rows (≤ 0 when
/// γ̃ is non-decreasing: then the smallest relative increase, negated), and the row's s where it
/// happens. `None` for fewer than two rows.
pub fn largest_relative_decrease(margins: &[(Row, f64)]) -> Option<(f64, f64)> {
    margins.windows(2).map(|w| ((w[0].1 - w[1].1) / w[0].1.abs(), w[1].0.s)).fold(None, |acc: Option<(f64, f64)>, v| {
        match acc {
            Some(a) if a.0 >= v.0 => Some(a),
            _ => Some(v),
        }
    })
}

/// Spread of a series on a log10 scale, log10(max/min), for positive values (`None` when a
/// value is not positive and finite, or for fewer than two).
pub fn log10_spread(values: &[f64]) -> Option<f64> {
    if values.len() < 2 || values.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return None;
    }
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    Some((max / min).log10())
}

/// The rate series of Lyu–Li's Thm. 4.3 for degree 1 on the rows with log10 t ≥ `from_log10_time`
/// (and t > 10, so ln t is positive and not small): (log10 t, log10(L·t), ‖W‖/ln t).
pub fn rate_series(rows: &[Row], from_log10_time: f64) -> Vec<(f64, f64, f64)> {
    rows.iter()
        .filter(|r| r.log10_time.is_finite() && r.log10_time >= from_log10_time.max(1.0))
        .map(|r| (r.log10_time, r.log10_loss + r.log10_time, r.norm / (r.log10_time * LN_10)))
        .collect()
}

/// Upper bound of the path length ∫‖d(W/‖W‖)/ds‖ ds of the direction between consecutive rows
/// (after nL < ℓ(0)): Lyu–Li's Lemma 5.1 gives ‖dŴ/ds‖² ≤ (d ln γ̃/ds)(d ln ‖W‖/ds) for a
/// 1-homogeneous network (a.e., any time parametrization), so by Cauchy–Schwarz the path length
/// over [s_k, s_{k+1}] is at most sqrt(|Δ ln γ̃| |Δ ln ‖W‖|). The sum over the rows with
/// s ≥ `from_s`; `None` for fewer than two such rows.
pub fn path_length_bound(margins: &[(Row, f64)], from_s: f64) -> Option<f64> {
    let tail: Vec<&(Row, f64)> = margins.iter().filter(|(r, _)| r.s >= from_s).collect();
    if tail.len() < 2 {
        return None;
    }
    Some(
        tail.windows(2)
            .map(|w| {
                let dg = (w[1].1 / w[0].1).ln().abs();
                let dr = (w[1].0.norm / w[0].0.norm).ln().abs();
                (dg * dr).sqrt()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(s: f64, log10_time: f64, log10_loss: f64, norm: f64) -> Row {
        Row { s, log10_time, log10_loss, norm }
    }

    /// ℓ⁻¹ against the forward losses, on both sides of the underflow switch.
    #[test]
    fn inverse_loss_inverts_the_losses() {
        for q in [0.1f64, 1.0, 5.0, 30.0, 600.0] {
            let v = (-q).exp().ln_1p(); // logistic ℓ(q)
            assert!((inverse_loss(Loss::Logistic, v.ln()).unwrap() - q).abs() < 1e-9 * q.max(1.0), "{q}");
            assert!((inverse_loss(Loss::Exponential, -q).unwrap() - q).abs() < 1e-12 * q);
        }
        // ln ℓ(q) = −q − ln(1 + …) ≈ −q far out: the inverse is q itself.
        assert_eq!(inverse_loss(Loss::Logistic, -2000.0), Some(2000.0));
        assert_eq!(inverse_loss(Loss::Logistic, 2f64.ln().ln()), None);
        assert_eq!(inverse_loss(Loss::Exponential, 0.1), None);
    }

    /// A non-decreasing γ̃ has a non-positive largest decrease; a hand-made dip is found, with
    /// its size and place.
    #[test]
    fn monotonicity_finds_a_hand_made_dip() {
        // Exponential loss, n = 1: γ̃ = −ln L / ‖W‖ = −log10 L · ln 10 / ‖W‖.
        let mk = |g: &[f64]| -> Vec<(Row, f64)> {
            let rows: Vec<Row> =
                g.iter().enumerate().map(|(k, gk)| row(k as f64 + 1.0, 0.0, -gk * 2.0 / LN_10, 2.0)).collect();
            separated(Loss::Exponential, 1, &rows)
        };
        let up = mk(&[1.0, 1.5, 1.5, 2.0]);
        assert!((up[1].1 - 1.5).abs() < 1e-12);
        let (d, _) = largest_relative_decrease(&up).unwrap();
        assert!(d <= 0.0 && d.abs() < 1e-12, "{d}");
        let dip = mk(&[1.0, 2.0, 1.8, 2.5]);
        let (d, s) = largest_relative_decrease(&dip).unwrap();
        assert!((d - 0.1).abs() < 1e-12 && s == 3.0, "{d} {s}");
    }

    /// The rates of a trajectory with L = c/t and ‖W‖ = ln t / γ are constant; with L = t^(−1/2)
    /// the spread of L·t grows with the decades.
    #[test]
    fn rate_series_of_closed_forms() {
        let good: Vec<Row> = (1..=10)
            .map(|k| row(k as f64, 100.0 * k as f64, -100.0 * k as f64 - 0.3, 100.0 * k as f64 * LN_10 / 0.5))
            .collect();
        let r = rate_series(&good, 500.0);
        assert_eq!(r.len(), 6);
        let lt: Vec<f64> = r.iter().map(|v| 10f64.powf(v.1)).collect();
        let wl: Vec<f64> = r.iter().map(|v| v.2).collect();
        assert!(log10_spread(&lt).unwrap() < 1e-12 && log10_spread(&wl).unwrap() < 1e-12);
        assert!((wl[0] - 2.0).abs() < 1e-12);
        let slow: Vec<Row> = (1..=10).map(|k| row(k as f64, 100.0 * k as f64, -50.0 * k as f64, 1.0)).collect();
        let r = rate_series(&slow, 500.0);
        let spread = r.iter().map(|v| v.1).fold(f64::MIN, f64::max) - r.iter().map(|v| v.1).fold(f64::MAX, f64::min);
        assert!((spread - 250.0).abs() < 1e-9);
    }

    /// The path-length bound of a hand-made trajectory: sqrt(Δ ln γ̃ · Δ ln ‖W‖) summed; zero
    /// when γ̃ is constant (the direction cannot move).
    #[test]
    fn path_length_bound_by_hand() {
        let rows = [(row(1.0, 0.0, 0.0, 1.0), 1.0), (row(2.0, 0.0, 0.0, std::f64::consts::E), std::f64::consts::E)];
        assert!((path_length_bound(&rows, 0.0).unwrap() - 1.0).abs() < 1e-12);
        let flat = [(row(1.0, 0.0, 0.0, 1.0), 2.0), (row(2.0, 0.0, 0.0, 5.0), 2.0), (row(3.0, 0.0, 0.0, 9.0), 2.0)];
        assert_eq!(path_length_bound(&flat, 0.0), Some(0.0));
        assert_eq!(path_length_bound(&flat, 2.5), None);
    }
}
