//! Tests of the factorizations and the SVD against nalgebra, closed forms and MPFR.

use super::svd::jacobi_start;
use super::*;
use nalgebra::{DMatrix, DVector};

/// Seeded LCG, uniform in [−1, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn mat(&mut self, r: usize, c: usize) -> Mat<f64> {
        Mat::from_vec(r, c, (0..r * c).map(|_| self.next()).collect())
    }
}

fn na(a: &Mat<f64>) -> DMatrix<f64> {
    DMatrix::from_row_slice(a.rows, a.cols, &a.data)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn orthonormality_error(q: &Mat<f64>) -> f64 {
    let g = q.transpose().matmul(q);
    max_abs_diff(&g.data, &Mat::<f64>::identity(q.cols, 53).data)
}

fn sorted_desc(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| b.partial_cmp(a).unwrap());
    v
}

#[test]
fn qr_reconstructs_tall_and_wide() {
    let mut rng = Lcg(1);
    for &(m, n) in &[(7, 3), (3, 7), (5, 5), (100, 40), (40, 100), (1, 4), (4, 1)] {
        let a = rng.mat(m, n);
        let qr = householder_qr(&a);
        let k = m.min(n);
        assert_eq!((qr.r.rows, qr.r.cols), (k, n));
        for i in 0..k {
            for j in 0..i.min(n) {
                assert_eq!(*qr.r.at(i, j), 0.0);
            }
        }
        let q = qr.thin_q();
        assert_eq!((q.rows, q.cols), (m, k));
        assert!(orthonormality_error(&q) < 1e-14, "{m}x{n}");
        let back = q.matmul(&qr.r);
        assert!(max_abs_diff(&back.data, &a.data) < 1e-13, "{m}x{n}");
        // |diag R| agrees with nalgebra's QR.
        let rn = na(&a).qr().r();
        for i in 0..k {
            assert!((qr.r.at(i, i).abs() - rn[(i, i)].abs()).abs() < 1e-12);
        }
        // Qᵀ b on the first k entries equals Q_thinᵀ b; Q Qᵀ b = b.
        let b: Vec<f64> = (0..m).map(|_| rng.next()).collect();
        let qtb = qr.thin_qt_vec(&b);
        let direct = q.transpose().matmul(&Mat::from_vec(m, 1, b.clone()));
        assert!(max_abs_diff(&qtb, &direct.data) < 1e-13);
        let mut w = b.clone();
        qr.apply_qt_mut(&mut w);
        qr.apply_q_mut(&mut w);
        assert!(max_abs_diff(&w, &b) < 1e-13);
    }
}

#[test]
fn qr_of_transpose_matches() {
    let mut rng = Lcg(2);
    let x = rng.mat(6, 300);
    let a = householder_qr_of_transpose(&x);
    let b = householder_qr(&x.transpose());
    assert!(max_abs_diff(&a.r.data, &b.r.data) < 1e-13);
    let back = a.thin_q().matmul(&a.r);
    assert!(max_abs_diff(&back.data, &x.transpose().data) < 1e-13);
}

#[test]
fn svd_matches_nalgebra_on_random_matrices() {
    let mut rng = Lcg(3);
    for &(m, n) in &[(6, 6), (9, 4), (4, 9), (30, 30), (50, 12), (1, 5), (5, 1)] {
        let a = rng.mat(m, n);
        let s = svd(&a).unwrap();
        let k = m.min(n);
        let reference = sorted_desc(na(&a).singular_values().as_slice().to_vec());
        assert!(max_abs_diff(&s.sigma, &reference) < 1e-13, "{m}x{n}");
        let sv = singular_values(&a).unwrap();
        assert!(max_abs_diff(&sv, &reference) < 1e-13);
        assert!(s.sigma.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!((s.u.rows, s.u.cols, s.v.rows, s.v.cols), (m, k, n, k));
        assert!(orthonormality_error(&s.u) < 1e-13);
        assert!(orthonormality_error(&s.v) < 1e-13);
        let mut us = s.u.clone();
        for i in 0..m {
            for j in 0..k {
                *us.at_mut(i, j) *= s.sigma[j];
            }
        }
        let back = us.matmul(&s.v.transpose());
        assert!(max_abs_diff(&back.data, &a.data) < 1e-13, "{m}x{n}");
    }
}

#[test]
fn svd_of_rank_deficient_matrix_completes_u() {
    // Rank 1, 3×3: u v ᵀ with exact zeros as the other singular values.
    let a = Mat::from_vec(3, 3, vec![1.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let s = svd(&a).unwrap();
    assert!((s.sigma[0] - 3.0).abs() < 1e-15);
    assert!(orthonormality_error(&s.u) < 1e-15);
    assert_eq!(rank_from_singular_values(&s.sigma, 1e-12), 1);
}

/// 4×4 Hadamard/2: orthogonal with entries ±1/2 (exact in binary).
fn h4() -> Mat<f64> {
    let h = [1., 1., 1., 1., 1., -1., 1., -1., 1., 1., -1., -1., 1., -1., -1., 1.];
    Mat::from_vec(4, 4, h.iter().map(|x| x / 2.0).collect())
}

/// Orthogonal n×n (n = 6 or 8) with dyadic entries: products of block Hadamards that overlap.
fn dyadic_orthogonal(n: usize) -> Mat<f64> {
    let embed = |off: usize| {
        let mut m = Mat::<f64>::identity(n, 53);
        let h = h4();
        for i in 0..4 {
            for j in 0..4 {
                *m.at_mut(off + i, off + j) = *h.at(i, j);
            }
        }
        m
    };
    match n {
        6 => embed(0).matmul(&embed(2)),
        8 => embed(0).matmul(&embed(4)).matmul(&embed(2)),
        _ => unreachable!(),
    }
}

/// The 6×8 matrix U diag(σ) V₆ᵀ with dyadic orthogonal U, V and σ powers of two spanning
/// 1 … 2⁻⁴⁸ ≈ 3.6e−15: every entry is exact in f64 (checked with integers), so the exact
/// singular values are known.
fn exact_graded_6x8() -> (Mat<f64>, Vec<f64>) {
    let sigma = [1.0, 0.5, 0.25, 0.125, 2f64.powi(-26), 2f64.powi(-48)];
    let u = dyadic_orthogonal(6);
    let v = dyadic_orthogonal(8);
    let mut a = Mat::<f64>::zeros(6, 8, 53);
    for i in 0..6 {
        for j in 0..8 {
            let mut acc: i128 = 0;
            for (k, s) in sigma.iter().enumerate() {
                // All factors are integers after scaling: σ·2⁴⁸, u·8, v·8.
                let term = (s * 2f64.powi(48)) as i128 * (u.at(i, k) * 8.0) as i128 * (v.at(j, k) * 8.0) as i128;
                acc += term;
            }
            assert!(acc.abs() < 1i128 << 53);
            *a.at_mut(i, j) = acc as f64 * 2f64.powi(-54);
            let direct: f64 = (0..6).map(|k| sigma[k] * u.at(i, k) * v.at(j, k)).sum();
            assert!((direct - a.at(i, j)).abs() < 1e-15);
        }
    }
    (a, sigma.to_vec())
}

#[test]
fn jacobi_small_singular_values_f64() {
    let (a, exact) = exact_graded_6x8();
    let sv = singular_values(&a).unwrap();
    for j in 0..4 {
        assert!((sv[j] - exact[j]).abs() < 1e-15, "{j}: {} vs {}", sv[j], exact[j]);
    }
    // σ₅ ≈ 1.5e−8 to ~ε/σ relative, σ₆ ≈ 3.6e−15 to ~ε‖A‖ absolute (all a general matrix allows).
    assert!(((sv[4] - exact[4]) / exact[4]).abs() < 1e-6, "{}", sv[4]);
    assert!((sv[5] - exact[5]).abs() < 1e-15, "{}", sv[5]);
    let wide = svd(&a).unwrap();
    assert!(((wide.sigma[4] - exact[4]) / exact[4]).abs() < 1e-6);
    assert!(orthonormality_error(&wide.u) < 1e-14 && orthonormality_error(&wide.v) < 1e-14);
}

#[test]
fn jacobi_relative_accuracy_on_column_graded_matrix() {
    // A = Q D with Q (9×5) orthonormal to working precision: σ_j = d_j (1 + O(ε)) even for
    // d = 1e−20, which Jacobi delivers (Demmel–Veselić 1992); QR + Jacobi keeps the grading.
    let mut rng = Lcg(7);
    let q = householder_qr(&rng.mat(9, 5)).thin_q();
    let d = [1.0, 1e-5, 1e-10, 1e-15, 1e-20];
    let mut a = q.clone();
    for i in 0..9 {
        for (j, dj) in d.iter().enumerate() {
            *a.at_mut(i, j) *= dj;
        }
    }
    for m in [a.clone(), a.transpose()] {
        let sv = singular_values(&m).unwrap();
        for j in 0..5 {
            assert!(((sv[j] - d[j]) / d[j]).abs() < 1e-13, "{j}: {}", sv[j]);
        }
    }
}

/// Nearly orthogonal rows (a random 16×36 Q with a 1e−2 perturbation: σ clustered near 1, the
/// case where plain Jacobi needs the most sweeps) take the eigenvector start, and the singular
/// values still agree with nalgebra's Golub–Kahan SVD to a few ε relative. The graded matrix
/// of the test above (κ = 1e20) does not take it.
#[test]
fn clustered_start_is_taken_for_nearly_orthogonal_rows_and_keeps_accuracy() {
    let mut rng = Lcg(11);
    let q = householder_qr(&rng.mat(36, 16)).thin_q().transpose();
    let noise = rng.mat(16, 36);
    let mut a = q.clone();
    for (x, e) in a.data.iter_mut().zip(&noise.data) {
        *x += 1e-2 * e;
    }
    let (gt, _) = jacobi_start(&a);
    assert!(f64::clustered_jacobi_start(gt.rows, gt.cols, &gt.data).is_some());
    let sv = singular_values(&a).unwrap();
    let reference = sorted_desc(na(&a).singular_values().as_slice().to_vec());
    assert!(reference[0] / reference[15] < 1.2, "clustered: {reference:?}");
    for (x, r) in sv.iter().zip(&reference) {
        assert!(((x - r) / r).abs() < 1e-14, "{x} vs {r}");
    }
    let mut graded = q;
    for (i, x) in graded.data.iter_mut().enumerate() {
        *x *= 10f64.powi(-((i / 36) as i32));
    }
    let (gt, _) = jacobi_start(&graded);
    assert!(f64::clustered_jacobi_start(gt.rows, gt.cols, &gt.data).is_none());
    let mut bad = a.clone();
    bad.data[17] = f64::NAN;
    assert!(f64::clustered_jacobi_start(16, 36, &bad.data).is_none(), "non-finite input");
}

#[test]
fn solves_match_nalgebra() {
    let mut rng = Lcg(4);
    for n in [1, 2, 5, 17, 40] {
        let a = rng.mat(n, n);
        let b: Vec<f64> = (0..n).map(|_| rng.next()).collect();
        let x = lu_solve(&a, &b).unwrap();
        let xr = na(&a).lu().solve(&DVector::from_vec(b.clone())).unwrap();
        let scale = xr.amax().max(1.0);
        assert!(max_abs_diff(&x, xr.as_slice()) < 1e-10 * scale, "lu {n}");
        // SPD: AᵀA + I.
        let mut s = a.transpose().matmul(&a);
        for i in 0..n {
            *s.at_mut(i, i) += 1.0;
        }
        let x = cholesky_solve(&s, &b).unwrap();
        let xr = na(&s).cholesky().unwrap().solve(&DVector::from_vec(b.clone()));
        assert!(max_abs_diff(&x, xr.as_slice()) < 1e-12, "chol {n}");
    }
}

#[test]
fn singular_and_indefinite_are_reported() {
    let a = Mat::from_vec(3, 3, vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0]);
    match lu_solve(&a, &[1.0, 2.0, 3.0]) {
        Err(SolverError::Singular { op: "lu", index: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    let b = Mat::from_vec(2, 2, vec![1.0, 2.0, 2.0, 1.0]);
    match cholesky_solve(&b, &[1.0, 1.0]) {
        Err(SolverError::Singular { op: "cholesky", index: 1, pivot }) => assert!(pivot < 0.0),
        other => panic!("{other:?}"),
    }
    assert!(matches!(lu_solve(&b, &[1.0]), Err(SolverError::Dimension { .. })));
}

#[test]
fn least_squares_tall_and_minimum_norm_wide() {
    let mut rng = Lcg(5);
    let a = rng.mat(12, 4);
    let b: Vec<f64> = (0..12).map(|_| rng.next()).collect();
    let x = solve_least_squares(&a, &b).unwrap();
    let xr = na(&a).svd(true, true).solve(&DVector::from_vec(b.clone()), 1e-14).unwrap();
    assert!(max_abs_diff(&x, xr.as_slice()) < 1e-12);
    let w = rng.mat(3, 8);
    let c = [1.0, -2.0, 0.5];
    let x = solve_least_squares(&w, &c).unwrap();
    let xr = na(&w).svd(true, true).solve(&DVector::from_vec(c.to_vec()), 1e-14).unwrap();
    assert!(max_abs_diff(&x, xr.as_slice()) < 1e-12);
}

/// Timing of the d = 10⁵ case: `cargo test --release -p marginflow-solvers qr_timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn qr_timing() {
    let mut rng = Lcg(6);
    let x = rng.mat(200, 100_000);
    let t = std::time::Instant::now();
    let qr = householder_qr_of_transpose(&x);
    let t_qr = t.elapsed();
    let q = qr.thin_q();
    let t_q = t.elapsed() - t_qr;
    let t1 = std::time::Instant::now();
    let qr2 = householder_qr(&x.transpose());
    let t_qr2 = t1.elapsed();
    assert!(max_abs_diff(&qr.r.data, &qr2.r.data) < 1e-10);
    let back = q.matmul(&qr.r);
    assert!(max_abs_diff(&back.data, &x.transpose().data) < 1e-12);
    println!("QR of 100000x200: {t_qr:?} (of transpose), {t_qr2:?} (householder_qr), thin Q: {t_q:?}");
}

/// The bidiagonalization path agrees with one-sided Jacobi to ε‖A‖-level absolute error.
#[test]
fn large_singular_values_match_jacobi() {
    let (r, c) = (70, 90);
    let data: Vec<f64> =
        (0..r * c).map(|i| ((i * 7919 % 1013) as f64 / 1013.0 - 0.5) * (1.0 + (i % 3) as f64)).collect();
    let fast = f64::large_singular_values(r, c, &data).expect("above the threshold");
    let jacobi = singular_values_jacobi(&Mat::from_vec(r, c, data)).unwrap();
    assert_eq!(fast.len(), jacobi.len());
    for (a, b) in fast.iter().zip(&jacobi) {
        assert!((a - b).abs() <= 1e-12 * jacobi[0], "{a} vs {b}");
    }
}

#[cfg(feature = "mpfr")]
mod mpfr {
    use super::super::*;
    use rug::Float;

    const P: u32 = 256;

    fn f(x: f64) -> Float {
        Float::with_val(P, x)
    }

    /// Hilbert-like H_ij = 1/(i+j+1), exact x = (1, −2, 3, …), b = H x rounded once.
    fn hilbert_system(n: usize) -> (Mat<Float>, Vec<Float>, Vec<Float>) {
        let x: Vec<i64> = (0..n as i64).map(|i| if i % 2 == 0 { i + 1 } else { -(i + 1) }).collect();
        let h =
            Mat::from_vec(n, n, (0..n * n).map(|k| <Float as Real>::ratio(1, (k / n + k % n + 1) as i64, P)).collect());
        // b_i = Σ_j x_j/(i+j+1) = (Σ_j x_j·L/(i+j+1))/L exactly, L = lcm(1, …, 2n−1).
        let lcm: i64 = (1..2 * n as i64).fold(1, |l, k| l / gcd(l, k) * k);
        let b = (0..n)
            .map(|i| {
                let num: i64 = x.iter().enumerate().map(|(j, xj)| xj * (lcm / (i + j + 1) as i64)).sum();
                <Float as Real>::ratio(num, lcm, P)
            })
            .collect();
        (h, b, x.iter().map(|&v| Float::with_val(P, v)).collect())
    }

    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    fn max_err(a: &[Float], b: &[Float]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x.clone() - y).abs().to_f64()).fold(0.0, f64::max)
    }

    #[test]
    fn hilbert_solves_at_256_bits() {
        let n = 8; // κ(H₈) ≈ 1.5e10
        let (h, b, x) = hilbert_system(n);
        for sol in [lu_solve(&h, &b).unwrap(), cholesky_solve(&h, &b).unwrap(), solve_least_squares(&h, &b).unwrap()] {
            assert!(sol.iter().all(|v| v.prec() == P));
            let err = max_err(&sol, &x);
            assert!(err < 1e-60, "error {err:e}");
            let hx = h.matmul(&Mat::from_vec(n, 1, sol));
            let res = max_err(&hx.data, &b);
            assert!(res < 2f64.powi(-245), "residual {res:e}");
        }
    }

    #[test]
    fn small_singular_values_at_256_bits() {
        // σ = 1, 1e−8, 1e−15 (rounded at 256 bits) in a 6×8 with dyadic orthogonal factors.
        let sigma =
            [f(1.0), <Float as Real>::ratio(1, 100_000_000, P), <Float as Real>::ratio(1, 1_000_000_000_000_000, P)];
        let u = super::dyadic_orthogonal(6);
        let v = super::dyadic_orthogonal(8);
        let mut a = Mat::<Float>::zeros(6, 8, P);
        for i in 0..6 {
            for j in 0..8 {
                for (k, s) in sigma.iter().enumerate() {
                    let uv = f(u.at(i, k) * v.at(j, k + 2));
                    Real::add_mul_mut(a.at_mut(i, j), s, &uv);
                }
            }
        }
        let sv = singular_values(&a).unwrap();
        let sq = Mat::from_vec(6, 6, (0..36).map(|t| a.at(t / 6, t % 6).clone()).collect());
        // Square path (no QR): rank 3 plus rounding-level columns must still converge.
        let sq_sv = singular_values(&sq).unwrap();
        assert_eq!(rank_from_singular_values(&sq_sv, 1e-60), 3);
        let mut padded = sq.data.clone();
        padded.extend((0..6).map(|_| f(0.0)));
        let via_qr = singular_values(&Mat::from_vec(7, 6, padded)).unwrap();
        for k in 0..3 {
            assert!(((sq_sv[k].clone() - &via_qr[k]) / &via_qr[k]).abs().to_f64() < 1e-60);
        }
        for k in 0..3 {
            let rel = ((sv[k].clone() - &sigma[k]) / &sigma[k]).abs().to_f64();
            assert!(rel < 1e-60, "{k}: {rel:e}");
        }
        assert!(sv[3].to_f64().abs() < 1e-70);
        let s = svd(&a).unwrap();
        let mut us = s.u.clone();
        for i in 0..6 {
            for j in 0..6 {
                *us.at_mut(i, j) *= &s.sigma[j];
            }
        }
        let back = us.matmul(&s.v.transpose());
        assert!(max_err(&back.data, &a.data) < 1e-70);
    }

    #[test]
    fn qr_at_256_bits() {
        let (h, _, _) = hilbert_system(6);
        let qr = householder_qr(&h);
        let back = qr.thin_q().matmul(&qr.r);
        assert!(max_err(&back.data, &h.data) < 1e-70);
    }
}
