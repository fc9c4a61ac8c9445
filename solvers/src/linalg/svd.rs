//! Singular values and vectors by one-sided Jacobi (Demmel–Veselić), on a QR-preconditioned
//! start; accurate to relative precision for graded matrices.

use super::qr::{qr_from_columns, Qr};
use super::{axpy, dot4, two_rows, Mat};
use crate::error::SolverError;
use crate::scalar::Real;

/// Rank estimate: the number of singular values greater than `rel_tol`·σ_max (0 for an empty or
/// zero list). `sv` need not be sorted.
pub fn rank_from_singular_values<T: Real>(sv: &[T], rel_tol: f64) -> usize {
    let Some(first) = sv.first() else { return 0 };
    let mut smax = first.abs();
    for s in sv {
        smax = smax.max_of(&s.abs());
    }
    let cut = smax * &T::from_f64(rel_tol, first.precision());
    let zero = T::zero(first.precision());
    sv.iter().filter(|s| s.abs() > cut && s.abs() > zero).count()
}

/// Thin singular value decomposition A = U diag(σ) Vᵀ of an m×n matrix, k = min(m, n).
#[derive(Clone, Debug)]
pub struct Svd<T> {
    /// m×k, orthonormal columns (left singular vectors).
    pub u: Mat<T>,
    /// The k singular values, descending.
    pub sigma: Vec<T>,
    /// n×k, orthonormal columns (right singular vectors).
    pub v: Mat<T>,
}

/// Maximum number of Jacobi sweeps before giving up.
pub(super) const JACOBI_MAX_SWEEPS: usize = 100;

/// One-sided (Hestenes) Jacobi on the columns of a matrix stored transposed: row j of `gt`
/// (length `len`) is column j. Columns are rotated pairwise until every pair satisfies
/// |⟨g_p, g_q⟩| ≤ tol·‖g_p‖‖g_q‖ with tol = √len·ε (LAPACK `xGESVJ`'s working-precision
/// threshold; ε = [`Real::epsilon`]). The same rotations are applied to the rows of `vt` if given.
///
/// Rotation (Demmel–Veselić 1992, Alg. 4.1): ζ = (β − α)/(2γ), t = sign(ζ)/(|ζ| + √(1+ζ²)),
/// c = 1/√(1+t²) (computed as √((|ζ| + r)/(2r)), r = √(1+ζ²)), s = c t, with α = ‖g_p‖²,
/// β = ‖g_q‖², γ = ⟨g_p, g_q⟩. It maps the squared norms to α − tγ and β + tγ exactly (t solves
/// t²γ + (β − α)t − γ = 0), so as in `xGESVJ` they are updated by these formulas rather than
/// recomputed: each pair then costs one inner product unless it is rotated. A formula result below half its old value (where the subtraction may
/// cancel) is recomputed from the column instead, and all norms are recomputed at the start of
/// every sweep, when the columns are sorted by decreasing norm (de Rijk 1989), which speeds
/// convergence and orders the output. So every norm in use has relative error O(n·len·ε) at
/// most (n − 1 updates a sweep); they only steer the rotations and the convergence test, and the
/// singular values themselves are taken from the final columns. A column that a rotation
/// cancels to rounding level (norm reduced by a factor ≤ tol) is numerically dependent on its
/// partner and is set to zero.
pub(super) fn jacobi_columns<T: Real>(gt: &mut Mat<T>, mut vt: Option<&mut Mat<T>>) -> Result<(), SolverError> {
    let (n, len) = (gt.rows, gt.cols);
    if n < 2 {
        return Ok(());
    }
    let prec = gt.precision();
    let eps = T::epsilon(prec);
    let tol = eps.clone() * &T::from_f64((len.max(1) as f64).sqrt(), prec);
    let tol2 = tol.clone() * &tol;
    let big = T::one(prec) / &eps;
    let zero = T::zero(prec);
    let one = T::one(prec);
    let two = T::from_f64(2.0, prec);
    let half = T::from_f64(0.5, prec);
    let mut tmp = T::zero(prec);
    for _sweep in 0..JACOBI_MAX_SWEEPS {
        // Squared norms α_j and their roots, exact at the start of the sweep.
        let mut norm2 = sort_rows_by_norm(gt, vt.as_deref_mut());
        let mut norm: Vec<T> = norm2.iter().map(|a| a.sqrt()).collect();
        let mut rotated = false;
        for p in 0..n - 1 {
            for q in p + 1..n {
                if norm2[p] == zero || norm2[q] == zero {
                    continue;
                }
                let (gp, gq) = two_rows(&mut gt.data, len, p, q);
                let gamma = dot4(gp, gq);
                let bound = tol.clone() * &norm[p] * &norm[q];
                if gamma.abs() <= bound {
                    continue;
                }
                rotated = true;
                let (alpha, beta) = (norm2[p].clone(), norm2[q].clone());
                let zeta = (beta.clone() - &alpha) / &(gamma.clone() * &two);
                // t = sign(ζ)/(|ζ| + r) with r = √(1+ζ²), and c = 1/√(1+t²) = √((|ζ| + r)/(2r)),
                // the two divisions independent of each other.
                let (t, c) = if zeta.abs() > big {
                    let t = one.clone() / &(zeta * &two);
                    let mut c2 = t.clone() * &t;
                    c2 += &one;
                    (t, one.clone() / &c2.sqrt())
                } else {
                    let mut r = zeta.clone() * &zeta;
                    r += &one;
                    let r = r.sqrt();
                    let denom = zeta.abs() + &r;
                    let t = one.clone() / &denom;
                    let c = (denom / &(r * &two)).sqrt();
                    (if zeta.is_sign_negative() { -t } else { t }, c)
                };
                let s = c.clone() * &t;
                let ms = -s.clone();
                rotate_pair(gp, gq, &c, &s, &ms, &mut tmp);
                let t_gamma = t * &gamma;
                let mut new_alpha = alpha.clone() - &t_gamma;
                if new_alpha < half.clone() * &alpha {
                    new_alpha = dot4(gp, gp);
                }
                let mut new_beta = beta.clone() + &t_gamma;
                if new_beta < half.clone() * &beta {
                    new_beta = dot4(gq, gq);
                }
                // A column that the rotation cancels to rounding level (‖g'‖ ≤ tol·‖g‖) was
                // numerically parallel to the other one: set it to zero. Otherwise the rounding
                // residual, itself parallel to the partner, would be rotated away forever (MPFR
                // has no underflow to stop it). Such a norm was recomputed above.
                if new_beta <= tol2.clone() * &beta {
                    gq.iter_mut().for_each(|x| x.assign_f64(0.0));
                    new_beta = zero.clone();
                }
                if new_alpha <= tol2.clone() * &alpha {
                    gp.iter_mut().for_each(|x| x.assign_f64(0.0));
                    new_alpha = zero.clone();
                }
                norm[p] = new_alpha.sqrt();
                norm[q] = new_beta.sqrt();
                norm2[p] = new_alpha;
                norm2[q] = new_beta;
                if let Some(v) = vt.as_deref_mut() {
                    let w = v.cols;
                    let (vp, vq) = two_rows(&mut v.data, w, p, q);
                    rotate_pair(vp, vq, &c, &s, &ms, &mut tmp);
                }
            }
        }
        if !rotated {
            sort_rows_by_norm(gt, vt);
            return Ok(());
        }
    }
    Err(SolverError::NoConvergence { op: "one-sided Jacobi SVD", iterations: JACOBI_MAX_SWEEPS })
}

/// (x, y) ← (c x − s y, s x + c y) elementwise.
#[inline]
pub(super) fn rotate_pair<T: Real>(x: &mut [T], y: &mut [T], c: &T, s: &T, ms: &T, tmp: &mut T) {
    for (xi, yi) in x.iter_mut().zip(y.iter_mut()) {
        tmp.assign(xi);
        *xi *= c;
        xi.add_mul_mut(ms, yi);
        *yi *= c;
        yi.add_mul_mut(s, tmp);
    }
}

/// Permute the rows of `gt` (and of `vt`) into decreasing Euclidean norm; returns the squared
/// norms in the new order.
pub(super) fn sort_rows_by_norm<T: Real>(gt: &mut Mat<T>, vt: Option<&mut Mat<T>>) -> Vec<T> {
    let len = gt.cols;
    let norms: Vec<T> = (0..gt.rows).map(|i| dot4(gt.row(i), gt.row(i))).collect();
    let mut order: Vec<usize> = (0..gt.rows).collect();
    order.sort_by(|&a, &b| norms[b].partial_cmp(&norms[a]).unwrap_or(std::cmp::Ordering::Equal));
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        return norms;
    }
    permute_rows(gt, &order, len);
    if let Some(v) = vt {
        let w = v.cols;
        permute_rows(v, &order, w);
    }
    order.iter().map(|&o| norms[o].clone()).collect()
}

pub(super) fn permute_rows<T: Real>(m: &mut Mat<T>, order: &[usize], width: usize) {
    let mut out = Vec::with_capacity(m.data.len());
    for &o in order {
        out.extend_from_slice(&m.data[o * width..(o + 1) * width]);
    }
    m.data = out;
}

/// The matrix whose columns the Jacobi iteration orthogonalizes, stored transposed (k rows),
/// plus the QR used to get there (if any). For m ≥ n this is R of A = QR (or A itself when
/// square); for m < n the same is done for Aᵀ.
pub(super) fn jacobi_start<T: Real>(a: &Mat<T>) -> (Mat<T>, Option<Qr<T>>) {
    let (m, n) = (a.rows, a.cols);
    if m == n {
        (a.transpose(), None)
    } else {
        let qr = if m > n { qr_from_columns(a.transpose(), m) } else { qr_from_columns(a.clone(), n) };
        (qr.r.transpose(), Some(qr))
    }
}

/// Singular values of `a` (min(m, n) of them), descending.
///
/// The matrix is first reduced by Householder QR to its k×k triangular factor when it is not
/// square, then one-sided Jacobi orthogonalizes the columns and σ_j = ‖g_j‖. AᵀA is never formed.
/// For A = B D with D diagonal, the computed σ have relative error O(ε κ(B)) (Demmel–Veselić,
/// "Jacobi's method is more accurate than QR", SIAM J. Matrix Anal. Appl. 13, 1992; Drmač 1997 for
/// the QR preconditioning), so tiny singular values of column-graded matrices come out to high
/// *relative* accuracy; in general the error is O(ε‖A‖).
pub fn singular_values<T: Real>(a: &Mat<T>) -> Result<Vec<T>, SolverError> {
    if let Some(sv) = T::large_singular_values(a.rows, a.cols, &a.data) {
        return Ok(sv);
    }
    singular_values_jacobi(a)
}

/// Singular values (descending) by QR reduction and one-sided Jacobi, whatever the size.
pub fn singular_values_jacobi<T: Real>(a: &Mat<T>) -> Result<Vec<T>, SolverError> {
    let (mut gt, _) = jacobi_start(a);
    if let Some(rotated) = T::clustered_jacobi_start(gt.rows, gt.cols, &gt.data) {
        gt.data = rotated;
    }
    jacobi_columns(&mut gt, None)?;
    Ok((0..gt.rows).map(|j| dot4(gt.row(j), gt.row(j)).sqrt()).collect())
}

/// Thin SVD A = U diag(σ) Vᵀ (see [`Svd`]), by the method of [`singular_values`], with the
/// rotations accumulated into V and U = Q_thin·(G diag(σ)⁻¹) (left vectors of zero singular
/// values are completed to an orthonormal set).
pub fn svd<T: Real>(a: &Mat<T>) -> Result<Svd<T>, SolverError> {
    let (m, n) = (a.rows, a.cols);
    if m < n {
        let s = svd(&a.transpose())?;
        return Ok(Svd { u: s.v, sigma: s.sigma, v: s.u });
    }
    let prec = a.precision();
    let (mut gt, qr) = jacobi_start(a);
    let k = gt.rows;
    let mut vt = Mat::identity(k, prec);
    jacobi_columns(&mut gt, Some(&mut vt))?;
    let sigma: Vec<T> = (0..k).map(|j| dot4(gt.row(j), gt.row(j)).sqrt()).collect();
    // Left vectors of the Jacobi matrix: rows of gt scaled to unit norm.
    let len = gt.cols;
    let zero = T::zero(prec);
    let mut ut = gt; // k × len, row j = u_j
    let mut missing = Vec::new();
    for (j, s) in sigma.iter().enumerate() {
        if *s > zero {
            let inv = T::one(prec) / s;
            for x in ut.data[j * len..(j + 1) * len].iter_mut() {
                *x *= &inv;
            }
        } else {
            missing.push(j);
        }
    }
    complete_orthonormal(&mut ut, &missing);
    let u_small = ut.transpose(); // len × k
    let u = match qr {
        Some(qr) => qr.thin_q().matmul(&u_small),
        None => u_small,
    };
    Ok(Svd { u, sigma, v: vt.transpose() })
}

/// Replace the rows listed in `missing` by unit vectors orthogonal to all other rows
/// (Gram–Schmidt, twice, on the standard basis vector with the largest residual).
pub(super) fn complete_orthonormal<T: Real>(ut: &mut Mat<T>, missing: &[usize]) {
    let (k, len) = (ut.rows, ut.cols);
    let prec = ut.precision();
    let mut done: Vec<bool> = (0..k).map(|j| !missing.contains(&j)).collect();
    for &j in missing {
        let mut best: Option<(T, Vec<T>)> = None;
        for e in 0..len {
            let mut w = vec![T::zero(prec); len];
            w[e] = T::one(prec);
            for _ in 0..2 {
                for (i, ok) in done.iter().enumerate() {
                    if *ok {
                        let c = -dot4(ut.row(i), &w);
                        axpy(&mut w, &c, ut.row(i));
                    }
                }
            }
            let nrm = dot4(&w, &w);
            if best.as_ref().is_none_or(|(b, _)| nrm > *b) {
                best = Some((nrm, w));
            }
        }
        if let Some((nrm, mut w)) = best {
            let inv = T::one(prec) / &nrm.sqrt();
            for x in w.iter_mut() {
                *x *= &inv;
            }
            ut.data[j * len..(j + 1) * len].clone_from_slice(&w);
        }
        done[j] = true;
    }
}
