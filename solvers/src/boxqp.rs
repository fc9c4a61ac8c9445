//! Convex quadratic programs over a box: minimize ½ xᵀHx + gᵀx subject to lo ≤ x_i ≤ hi, with H
//! symmetric positive **semi**definite, solved exactly by a primal active-set method.
//!
//! Method (Nocedal–Wright, *Numerical Optimization*, §16.5, specialized to bounds): the working
//! set holds the variables fixed at a bound; on the free set F the step to the minimizer of the
//! face solves H_FF d_F = −(Hx + g)_F; the step is cut at the first bound it meets (that
//! variable joins the working set); at a face minimizer, a bound variable whose multiplier has the
//! wrong sign (gradient component pushing it into the box) leaves the working set. Each face is
//! visited with a strictly smaller objective, so the method ends after finitely many iterations.
//!
//! **Singular H** (more free variables than independent directions, e.g. a Gram matrix of more
//! points than dimensions): H_FF is factored by Cholesky with diagonal pivoting, which picks a
//! maximal set of independent columns (largest remaining pivot first, ties by index); the step
//! moves only those, and the dependent free variables keep their values. When H comes from a
//! Gram matrix (H = AᵀA, g = Aᵀb) the gradient (Hx + g)_F lies in the range of H_FF, so the step
//! on the independent set reaches the minimum of the face: the objective (and Ax) is exact; the
//! minimizer x itself is one of many, a deterministic function of (H, g).

use crate::error::SolverError;
use crate::scalar::Real;

/// Where a variable ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxSide {
    /// Strictly inside or free at the bound with a zero multiplier.
    Free,
    /// At the lower bound.
    Lower,
    /// At the upper bound.
    Upper,
}

/// The solution of a box QP.
#[derive(Clone, Debug)]
pub struct BoxQpSolution<T> {
    /// The minimizer.
    pub x: Vec<T>,
    /// Where each variable ended (working set at the end).
    pub side: Vec<BoxSide>,
    /// The gradient Hx + g at the minimizer (the multipliers of the bound variables, up to sign).
    pub gradient: Vec<T>,
    /// The round-off scale of each gradient entry, Σ_j |H_ij x_j| + |g_i|: a multiplier within
    /// `pivot_tol` times it is zero for all the arithmetic can tell.
    pub gradient_scale: Vec<T>,
    /// Active-set iterations.
    pub iterations: usize,
    /// Whether the KKT conditions were met before the iteration limit.
    pub converged: bool,
}

/// Minimize ½ xᵀHx + gᵀx over lo ≤ x ≤ hi (H k×k row-major, symmetric PSD), starting from `start`
/// (clamped into the box). `pivot_tol` is the relative size below which a Cholesky pivot counts as
/// zero (dependent column), e.g. k·ε·1e3.
pub fn solve_box_qp<T: Real>(h: &[T], g: &[T], lo: &T, hi: &T, start: &[T], pivot_tol: f64) -> BoxQpSolution<T> {
    match box_qp(h, g, lo, hi, start, pivot_tol, false) {
        Ok(sol) => sol,
        Err(_) => unreachable!("an unpolled box QP does not fail"),
    }
}

/// [`solve_box_qp`] polling the stop request ([`crate::interrupt`]) every iteration, ending with
/// [`SolverError::Interrupted`] (for the large box QPs of a max-margin dual).
pub fn solve_box_qp_interruptible<T: Real>(
    h: &[T],
    g: &[T],
    lo: &T,
    hi: &T,
    start: &[T],
    pivot_tol: f64,
) -> Result<BoxQpSolution<T>, SolverError> {
    box_qp(h, g, lo, hi, start, pivot_tol, true)
}

fn box_qp<T: Real>(
    h: &[T],
    g: &[T],
    lo: &T,
    hi: &T,
    start: &[T],
    pivot_tol: f64,
    poll: bool,
) -> Result<BoxQpSolution<T>, SolverError> {
    let k = g.len();
    assert_eq!(h.len(), k * k, "H is k×k");
    let p = lo.precision();
    let mut x: Vec<T> = start.iter().map(|v| v.max_of(lo).min_of(hi)).collect();
    let mut side: Vec<BoxSide> = x
        .iter()
        .map(|v| {
            if v <= lo {
                BoxSide::Lower
            } else if v >= hi {
                BoxSide::Upper
            } else {
                BoxSide::Free
            }
        })
        .collect();
    let zero = T::zero(p);
    let mut grad = vec![T::zero(p); k];
    let max_iter = 10 * k + 20;
    let mut iterations = 0;
    // After a full (uncut) step the free gradient is zero up to round-off: test the multipliers.
    let mut at_face_min = false;
    let mut converged = false;
    while iterations < max_iter {
        if poll {
            crate::interrupt::check()?;
        }
        iterations += 1;
        gradient(h, g, &x, &mut grad);
        if !at_face_min {
            let free: Vec<usize> = (0..k).filter(|&i| side[i] == BoxSide::Free).collect();
            let d = face_step(h, &grad, &free, pivot_tol, p);
            if d.iter().all(|v| v.sign() == Some(std::cmp::Ordering::Equal)) {
                at_face_min = true;
                continue;
            }
            // Longest step α ≤ 1 along d that stays in the box; the first blocking variable.
            let mut alpha = T::one(p);
            let mut block: Option<(usize, BoxSide)> = None;
            for (c, &i) in free.iter().enumerate() {
                let (bound, s) = match d[c].sign() {
                    Some(std::cmp::Ordering::Less) => (lo, BoxSide::Lower),
                    Some(std::cmp::Ordering::Greater) => (hi, BoxSide::Upper),
                    _ => continue,
                };
                let a = (bound.clone() - &x[i]) / &d[c];
                if a < alpha {
                    alpha = a;
                    block = Some((i, s));
                }
            }
            for (c, &i) in free.iter().enumerate() {
                x[i].add_mul_mut(&alpha, &d[c]);
                x[i] = x[i].max_of(lo).min_of(hi);
            }
            match block {
                Some((i, s)) => {
                    x[i].assign(if s == BoxSide::Lower { lo } else { hi });
                    side[i] = s;
                }
                None => at_face_min = true,
            }
            continue;
        }
        // Face minimizer: a bound variable leaves when its gradient points into the box
        // (lower bound: ∂ < 0; upper bound: ∂ > 0) by more than its round-off scale. The largest
        // violation leaves first.
        let mut worst: Option<(usize, T)> = None;
        for i in 0..k {
            let v = match side[i] {
                BoxSide::Lower if grad[i] < zero => -grad[i].clone(),
                BoxSide::Upper if grad[i] > zero => grad[i].clone(),
                _ => continue,
            };
            if v.to_f64() <= pivot_tol * gradient_scale(h, g, &x, i).to_f64() {
                continue;
            }
            if worst.as_ref().is_none_or(|(_, w)| v > *w) {
                worst = Some((i, v));
            }
        }
        match worst {
            Some((i, _)) => {
                side[i] = BoxSide::Free;
                at_face_min = false;
            }
            None => {
                converged = true;
                break;
            }
        }
    }
    gradient(h, g, &x, &mut grad);
    let gradient_scale = (0..k).map(|i| gradient_scale(h, g, &x, i)).collect();
    Ok(BoxQpSolution { x, side, gradient: grad, gradient_scale, iterations, converged })
}

/// The minimizer of ½ xᵀHx + gᵀx without bounds, reached from `start` by one step to the minimizer
/// of the face where every variable is free (pivoted Cholesky as in [`solve_box_qp`]; exact when
/// H = AᵀA, g = Aᵀb, the objective then being bounded below). Returns (x, Hx + g).
pub fn solve_unconstrained<T: Real>(h: &[T], g: &[T], start: &[T], pivot_tol: f64) -> (Vec<T>, Vec<T>) {
    let k = g.len();
    assert_eq!(h.len(), k * k, "H is k×k");
    let p = match start.first() {
        Some(v) => v.precision(),
        None => return (Vec::new(), Vec::new()),
    };
    let mut x = start.to_vec();
    let mut grad = vec![T::zero(p); k];
    gradient(h, g, &x, &mut grad);
    let free: Vec<usize> = (0..k).collect();
    let d = face_step(h, &grad, &free, pivot_tol, p);
    for (xi, di) in x.iter_mut().zip(&d) {
        *xi += di;
    }
    gradient(h, g, &x, &mut grad);
    (x, grad)
}

/// Σ_j |H_ij x_j| + |g_i|.
fn gradient_scale<T: Real>(h: &[T], g: &[T], x: &[T], i: usize) -> T {
    let k = g.len();
    let mut s = g[i].abs();
    for j in 0..k {
        s += &(h[i * k + j].clone() * &x[j]).abs();
    }
    s
}

/// grad = Hx + g.
fn gradient<T: Real>(h: &[T], g: &[T], x: &[T], grad: &mut [T]) {
    let k = g.len();
    for i in 0..k {
        grad[i].assign(&g[i]);
        for j in 0..k {
            grad[i].add_mul_mut(&h[i * k + j], &x[j]);
        }
    }
}

/// The step d_F (in the order of `free`) to the minimizer of the face: H_FF d = −grad_F, by
/// Cholesky with diagonal pivoting; columns whose pivot falls below `pivot_tol`·(largest diagonal)
/// are dependent and get d = 0.
fn face_step<T: Real>(h: &[T], grad: &[T], free: &[usize], pivot_tol: f64, p: u32) -> Vec<T> {
    let k = grad.len();
    let f = free.len();
    let mut d = vec![T::zero(p); f];
    if f == 0 {
        return d;
    }
    // a = H_FF (f×f), factored in place: a = L Lᵀ on the chosen pivots.
    let mut a: Vec<T> = Vec::with_capacity(f * f);
    for &i in free {
        for &j in free {
            a.push(h[i * k + j].clone());
        }
    }
    let mut perm: Vec<usize> = (0..f).collect();
    let max_diag = (0..f).map(|i| a[i * f + i].to_f64()).fold(0.0, f64::max);
    let tol = pivot_tol * max_diag;
    let mut rank = 0;
    while rank < f {
        // Pivot: the largest remaining diagonal (first index on ties).
        let mut best = rank;
        for c in rank + 1..f {
            if a[perm[c] * f + perm[c]] > a[perm[best] * f + perm[best]] {
                best = c;
            }
        }
        if !(a[perm[best] * f + perm[best]].to_f64() > tol) {
            break;
        }
        perm.swap(rank, best);
        let pr = perm[rank];
        let piv = a[pr * f + pr].sqrt();
        a[pr * f + pr] = piv.clone();
        for c in rank + 1..f {
            let pc = perm[c];
            let v = a[pc * f + pr].clone() / &piv;
            a[pc * f + pr] = v;
        }
        for c in rank + 1..f {
            let pc = perm[c];
            let lc = a[pc * f + pr].clone();
            for e in rank + 1..=c {
                let pe = perm[e];
                let t = lc.clone() * &a[pe * f + pr];
                a[pc * f + pe] -= &t;
                if e != c {
                    let v = a[pc * f + pe].clone();
                    a[pe * f + pc] = v;
                }
            }
        }
        rank += 1;
    }
    // Solve L Lᵀ z = −grad on the first `rank` pivots (L lower, stored at a[perm[r]*f + perm[c]], c ≤ r).
    let mut z: Vec<T> = (0..rank).map(|r| -grad[free[perm[r]]].clone()).collect();
    for r in 0..rank {
        for c in 0..r {
            let t = a[perm[r] * f + perm[c]].clone() * &z[c];
            z[r] -= &t;
        }
        z[r] /= &a[perm[r] * f + perm[r]];
    }
    for r in (0..rank).rev() {
        for c in r + 1..rank {
            let t = a[perm[c] * f + perm[r]].clone() * &z[c];
            z[r] -= &t;
        }
        z[r] /= &a[perm[r] * f + perm[r]];
    }
    for r in 0..rank {
        d[perm[r]] = z[r].clone();
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objective(h: &[f64], g: &[f64], x: &[f64]) -> f64 {
        let k = g.len();
        let mut v = 0.0;
        for i in 0..k {
            v += g[i] * x[i];
            for j in 0..k {
                v += 0.5 * x[i] * h[i * k + j] * x[j];
            }
        }
        v
    }

    /// Brute force over the 3^k faces: each variable at lo, at hi or free; the free ones solve
    /// their stationarity equations by nalgebra's SVD (least squares, so singular faces work);
    /// feasible candidates compete on the objective.
    fn brute_force(h: &[f64], g: &[f64], lo: f64, hi: f64) -> (Vec<f64>, f64) {
        let k = g.len();
        let mut best: Option<(Vec<f64>, f64)> = None;
        for code in 0..3usize.pow(k as u32) {
            let mut c = code;
            let mut kind = vec![0u8; k];
            for v in kind.iter_mut() {
                *v = (c % 3) as u8;
                c /= 3;
            }
            let free: Vec<usize> = (0..k).filter(|&i| kind[i] == 2).collect();
            let mut x: Vec<f64> = kind.iter().map(|&t| if t == 0 { lo } else { hi }).collect();
            if !free.is_empty() {
                let f = free.len();
                let a = nalgebra::DMatrix::from_fn(f, f, |r, s| h[free[r] * k + free[s]]);
                let b = nalgebra::DVector::from_fn(f, |r, _| {
                    let i = free[r];
                    let mut v = -g[i];
                    for j in 0..k {
                        if kind[j] != 2 {
                            v -= h[i * k + j] * x[j];
                        }
                    }
                    v
                });
                let sol = a.svd(true, true).solve(&b, 1e-12).unwrap();
                for (r, &i) in free.iter().enumerate() {
                    x[i] = sol[r];
                }
            }
            if x.iter().any(|&v| v < lo - 1e-12 || v > hi + 1e-12) {
                continue;
            }
            let val = objective(h, g, &x);
            if best.as_ref().is_none_or(|(_, b)| val < *b) {
                best = Some((x, val));
            }
        }
        best.unwrap()
    }

    /// Gram data H = D K D, g = D K_{S,F} v: the flow's sliding problem with random points.
    fn gram_problem(k: usize, dim: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut s = seed;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let pts: Vec<Vec<f64>> = (0..k + 1).map(|_| (0..dim).map(|_| rnd()).collect()).collect();
        let dw: Vec<f64> = (0..k).map(|_| rnd()).collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut h = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                h[i * k + j] = dw[i] * dot(&pts[i], &pts[j]) * dw[j];
            }
        }
        // The fixed part: the last point with weight 2.
        let g: Vec<f64> = (0..k).map(|i| dw[i] * dot(&pts[i], &pts[k]) * 2.0).collect();
        (h, g)
    }

    #[test]
    fn matches_exhaustive_search_over_faces_with_two_and_three_variables() {
        let mut interior = 0;
        let mut bound = 0;
        for k in [2usize, 3] {
            for seed in 0..200 {
                let (h, g) = gram_problem(k, 5, seed);
                let start = vec![0.55; k];
                let sol = solve_box_qp(&h, &g, &0.1, &1.0, &start, 1e-12);
                assert!(sol.converged, "k = {k}, seed {seed}");
                let (xb, vb) = brute_force(&h, &g, 0.1, 1.0);
                let v = objective(&h, &g, &sol.x);
                assert!((v - vb).abs() <= 1e-12 * (1.0 + vb.abs()), "k = {k} seed {seed}: {v} vs {vb}");
                // Nonsingular H (k ≤ dim, random points): the minimizer is unique.
                for i in 0..k {
                    assert!((sol.x[i] - xb[i]).abs() <= 1e-9, "k = {k} seed {seed}: x {:?} vs {:?}", sol.x, xb);
                    match sol.side[i] {
                        BoxSide::Free => interior += 1,
                        _ => bound += 1,
                    }
                }
            }
        }
        assert!(interior > 50 && bound > 50, "both kinds of optimum exercised: {interior} interior, {bound} at bounds");
    }

    #[test]
    fn singular_gram_reaches_the_minimum_value() {
        // Six variables on points in R^2: H has rank ≤ 2.
        for seed in 0..100 {
            let (h, g) = gram_problem(6, 2, seed);
            let sol = solve_box_qp(&h, &g, &0.2, &1.0, &[0.6; 6], 1e-12);
            assert!(sol.converged, "seed {seed}");
            let (_, vb) = brute_force(&h, &g, 0.2, 1.0);
            let v = objective(&h, &g, &sol.x);
            assert!((v - vb).abs() <= 1e-10 * (1.0 + vb.abs()), "seed {seed}: {v} vs {vb}");
            // KKT: free variables have zero gradient, bound ones the right sign.
            for i in 0..6 {
                let gi = sol.gradient[i];
                match sol.side[i] {
                    BoxSide::Free => assert!(gi.abs() <= 1e-9, "seed {seed}: free gradient {gi}"),
                    BoxSide::Lower => assert!(gi >= -1e-9, "seed {seed}"),
                    BoxSide::Upper => assert!(gi <= 1e-9, "seed {seed}"),
                }
            }
        }
    }

    #[test]
    fn unconstrained_minimum_matches_least_squares_on_regular_and_singular_gram_data() {
        // k = 3 on points in R^5 (H regular) and k = 6 in R^2 (rank ≤ 2): the minimum value
        // of the quadratic against nalgebra's SVD least-squares solution of H x = −g.
        for (k, dim) in [(3, 5), (6, 2)] {
            for seed in 0..50 {
                let (h, g) = gram_problem(k, dim, seed);
                let (x, grad) = solve_unconstrained(&h, &g, &vec![0.6; k], 1e-12);
                let a = nalgebra::DMatrix::from_row_slice(k, k, &h);
                let b = nalgebra::DVector::from_iterator(k, g.iter().map(|v| -v));
                let xs = a.svd(true, true).solve(&b, 1e-12).unwrap();
                let vb = objective(&h, &g, xs.as_slice());
                let v = objective(&h, &g, &x);
                assert!((v - vb).abs() <= 1e-10 * (1.0 + vb.abs()), "k {k} seed {seed}: {v} vs {vb}");
                assert!(grad.iter().all(|gi| gi.abs() <= 1e-9), "k {k} seed {seed}: gradient {grad:?}");
            }
        }
    }
}
