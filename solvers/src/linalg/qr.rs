//! Householder QR (blocked, compact WY), least squares and the triangular solves with R.

use super::{axpy, dot4, Mat};
use crate::error::SolverError;
use crate::scalar::Real;

/// Householder vector of `x` (Golub–Van Loan, *Matrix Computations*, 4th ed., Alg. 5.1.1, in the
/// LAPACK `xLARFG` form): on return `x` holds v with v₀ = 1, and (I − τ v vᵀ) x_in = β e₀ with
/// |β| = ‖x_in‖ and β of sign opposite to x₀ (no cancellation). Returns (β, τ); τ = 0 when x is
/// already a multiple of e₀.
fn make_householder<T: Real>(x: &mut [T]) -> (T, T) {
    let prec = x[0].precision();
    let sigma = dot4(&x[1..], &x[1..]);
    let alpha = x[0].clone();
    let zero = T::zero(prec);
    if sigma == zero {
        x[0] = T::one(prec);
        return (alpha, zero);
    }
    let mut nrm = alpha.clone() * &alpha;
    nrm += &sigma;
    let nrm = nrm.sqrt();
    let beta = if alpha.is_sign_negative() { nrm } else { -nrm };
    let tau = (beta.clone() - &alpha) / &beta;
    let scale = T::one(prec) / &(alpha - &beta);
    for xi in x[1..].iter_mut() {
        *xi *= &scale;
    }
    x[0] = T::one(prec);
    (beta, tau)
}

/// Upper triangular factor T of the compact WY form H₀H₁⋯H_{k−1} = I − Y T Yᵀ (Schreiber–Van
/// Loan 1989; LAPACK `xLARFT`, forward, columnwise). `v` holds the k Householder vectors as rows
/// (length `width`, explicit zeros and unit leading entries); `vt` is its transpose.
fn wy_factor<T: Real>(v: &[T], vt: &[T], k: usize, width: usize, tau: &[T]) -> Vec<T> {
    let prec = tau.first().map_or(53, |x| x.precision());
    let mut g = vec![T::zero(prec); k * k];
    T::gemm(k, width, k, v, vt, &mut g, false);
    let mut t = vec![T::zero(prec); k * k];
    for j in 0..k {
        // T[0..j, j] = −τ_j · T[0..j, 0..j] · G[0..j, j]
        for i in 0..j {
            let mut s = T::zero(prec);
            for l in i..j {
                s.add_mul_mut(&t[i * k + l], &g[l * k + j]);
            }
            t[i * k + j] = -(s * &tau[j]);
        }
        t[j * k + j] = tau[j].clone();
    }
    t
}

/// Panel width of the blocked Householder QR.
const QR_BLOCK: usize = 16;

/// Householder QR factorization A = Q R of an m×n matrix, k = min(m, n).
///
/// Q = H₀H₁⋯H_{k−1} with H_j = I − τ_j v_j v_jᵀ is kept in factored form (the v_j as contiguous
/// rows); [`Qr::thin_q`] forms the m×k thin factor explicitly and [`Qr::apply_qt_mut`] applies Qᵀ.
#[derive(Clone, Debug)]
pub struct Qr<T> {
    /// Number of rows m of the factored matrix.
    pub rows: usize,
    /// Number of columns n of the factored matrix.
    pub cols: usize,
    /// The k×n upper trapezoidal factor R (diagonal entries may be negative).
    pub r: Mat<T>,
    /// Householder vectors as rows: row j is v_j (length m) with zeros before index j and 1 at j.
    reflectors: Mat<T>,
    /// The scalars τ_j.
    tau: Vec<T>,
}

/// Householder QR of `a` (m×n, tall or wide); see [`Qr`].
///
/// Blocked right-looking algorithm (Golub–Van Loan §5.2.3, compact WY trailing updates through
/// [`Real::gemm`]); internally the columns of `a` are stored as contiguous rows so that every
/// Householder vector and every dot product runs over contiguous memory, which is what makes
/// m = 10⁵ cache-friendly. Cost ≈ 2mn² − 2n³/3 flops for m ≥ n.
pub fn householder_qr<T: Real>(a: &Mat<T>) -> Qr<T> {
    qr_from_columns(a.transpose(), a.rows)
}

/// Householder QR of the *transpose* of `x`: for x (n×d) returns the factorization xᵀ = Q R
/// (Q d×k, R k×n, k = min(n, d)) without forming xᵀ — the rows of `x` are already the columns
/// being factored. This is the form used for a data matrix X with d ≫ n.
pub fn householder_qr_of_transpose<T: Real>(x: &Mat<T>) -> Qr<T> {
    qr_from_columns(x.clone(), x.cols)
}

/// [`householder_qr_of_transpose`] consuming `x`: the factorization works in its storage, so a
/// large data matrix is not copied.
pub fn householder_qr_of_transpose_owned<T: Real>(x: Mat<T>) -> Qr<T> {
    let cols = x.cols;
    qr_from_columns(x, cols)
}

/// [`householder_qr_of_transpose`] that polls the stop request ([`crate::interrupt`]) before
/// every block of columns and ends with [`SolverError::Interrupted`] (for the large
/// factorizations of an active-set polish, seconds each).
pub fn householder_qr_of_transpose_interruptible<T: Real>(x: &Mat<T>) -> Result<Qr<T>, SolverError> {
    qr_columns(x.clone(), x.cols, true)
}

/// QR of the m×n matrix A given as `at` = Aᵀ (n rows of length m).
pub(super) fn qr_from_columns<T: Real>(at: Mat<T>, m: usize) -> Qr<T> {
    match qr_columns(at, m, false) {
        Ok(qr) => qr,
        Err(_) => unreachable!("an unpolled QR does not fail"),
    }
}

/// [`qr_from_columns`], polling the stop request before each block when `poll`.
fn qr_columns<T: Real>(mut at: Mat<T>, m: usize, poll: bool) -> Result<Qr<T>, SolverError> {
    let n = at.rows;
    debug_assert_eq!(at.cols, m);
    let k = m.min(n);
    let prec = at.precision();
    let mut tau: Vec<T> = Vec::with_capacity(k);
    let mut beta: Vec<T> = Vec::with_capacity(k);
    let mut j0 = 0;
    while j0 < k {
        if poll {
            crate::interrupt::check()?;
        }
        let jb = QR_BLOCK.min(k - j0);
        // Unblocked factorization of the panel (columns j0..j0+jb of A).
        for j in j0..j0 + jb {
            let (head, tail) = at.data.split_at_mut((j + 1) * m);
            let v = &mut head[j * m + j..];
            let (b, t) = make_householder(v);
            if t != T::zero(prec) {
                for i in 0..(j0 + jb - j - 1) {
                    let y = &mut tail[i * m + j..(i + 1) * m];
                    let w = -(dot4(v, y) * &t);
                    axpy(y, &w, v);
                }
            }
            beta.push(b);
            tau.push(t);
        }
        // Trailing update A_trail ← Q_pᵀ A_trail, i.e. At_trail ← At_trail − (At_trail Y) T Yᵀ.
        let c = n - (j0 + jb);
        if c > 0 {
            let mut vp = vec![T::zero(prec); jb * m];
            for r in 0..jb {
                let j = j0 + r;
                vp[r * m + j..(r + 1) * m].clone_from_slice(&at.data[j * m + j..(j + 1) * m]);
            }
            let vpt = Mat::from_vec(jb, m, vp.clone()).transpose().data;
            let t = wy_factor(&vp, &vpt, jb, m, &tau[j0..j0 + jb]);
            let trail = &mut at.data[(j0 + jb) * m..];
            let mut w = vec![T::zero(prec); c * jb];
            T::gemm(c, m, jb, trail, &vpt, &mut w, false);
            let mut w2 = vec![T::zero(prec); c * jb];
            T::gemm(c, jb, jb, &w, &t, &mut w2, false);
            for x in w2.iter_mut() {
                *x = -x.clone();
            }
            T::gemm(c, jb, m, &w2, &vp, trail, true);
        }
        j0 += jb;
    }
    // Extract R (k×n) and the reflectors (first k rows of `at`, lower part zeroed).
    let mut r = Mat::zeros(k, n, prec);
    for (col, column) in at.data.chunks_exact(m).enumerate() {
        for (i, v) in column.iter().enumerate().take(k.min(col)) {
            r.data[i * n + col] = v.clone();
        }
    }
    for (i, b) in beta.into_iter().enumerate() {
        r.data[i * n + i] = b;
    }
    at.data.truncate(k * m);
    at.rows = k;
    for j in 0..k {
        for x in at.data[j * m..j * m + j].iter_mut() {
            x.assign_f64(0.0);
        }
    }
    Ok(Qr { rows: m, cols: n, r, reflectors: at, tau })
}

impl<T: Real> Qr<T> {
    /// k = min(m, n), the number of Householder reflectors and of rows of R.
    pub fn rank_bound(&self) -> usize {
        self.tau.len()
    }

    /// b ← Qᵀ b for a vector of length m (the full orthogonal Qᵀ; its first k entries are
    /// Q_thinᵀ b and the remaining m − k entries are the component orthogonal to range(Q_thin)).
    pub fn apply_qt_mut(&self, b: &mut [T]) {
        assert_eq!(b.len(), self.rows, "Qr::apply_qt_mut: vector of length {} for {} rows", b.len(), self.rows);
        for (j, t) in self.tau.iter().enumerate() {
            let v = &self.reflectors.row(j)[j..];
            let w = -(dot4(v, &b[j..]) * t);
            axpy(&mut b[j..], &w, v);
        }
    }

    /// b ← Q b for a vector of length m (the full orthogonal Q).
    pub fn apply_q_mut(&self, b: &mut [T]) {
        assert_eq!(b.len(), self.rows, "Qr::apply_q_mut: vector of length {} for {} rows", b.len(), self.rows);
        for (j, t) in self.tau.iter().enumerate().rev() {
            let v = &self.reflectors.row(j)[j..];
            let w = -(dot4(v, &b[j..]) * t);
            axpy(&mut b[j..], &w, v);
        }
    }

    /// Q_thinᵀ b (length k) for b of length m.
    pub fn thin_qt_vec(&self, b: &[T]) -> Vec<T> {
        let mut w = b.to_vec();
        self.apply_qt_mut(&mut w);
        w.truncate(self.rank_bound());
        w
    }

    /// The thin factor Q_thin (m×k) with orthonormal columns, A = Q_thin R.
    ///
    /// Formed as E − Y (T (Yᵀ E)) with the compact WY form I − Y T Yᵀ of all k reflectors
    /// (E = first k columns of the identity), i.e. two matrix products of cost 2mk² each.
    pub fn thin_q(&self) -> Mat<T> {
        let (m, k) = (self.rows, self.rank_bound());
        let prec = self.r.precision();
        let vt = self.reflectors.transpose(); // m×k
        let t = wy_factor(&self.reflectors.data, &vt.data, k, m, &self.tau);
        // Yᵀ E = leading k×k block of the reflectors (unit upper triangular).
        let mut vk = vec![T::zero(prec); k * k];
        for j in 0..k {
            vk[j * k..(j + 1) * k].clone_from_slice(&self.reflectors.row(j)[..k]);
        }
        let mut mk = vec![T::zero(prec); k * k];
        T::gemm(k, k, k, &t, &vk, &mut mk, false);
        for x in mk.iter_mut() {
            *x = -x.clone();
        }
        let mut q = Mat::zeros(m, k, prec);
        for i in 0..k {
            q.data[i * k + i] = T::one(prec);
        }
        T::gemm(m, k, k, &vt.data, &mk, &mut q.data, true);
        q
    }
}

/// Least squares via Householder QR. For m ≥ n: the minimizer of ‖A x − b‖₂ (x = R⁻¹ Q_thinᵀ b).
/// For m < n: the minimum-norm solution of A x = b (Aᵀ = Q R, x = Q_thin R⁻ᵀ b). A must have full
/// rank min(m, n); an exactly zero diagonal entry of R gives [`SolverError::Singular`].
pub fn solve_least_squares<T: Real>(a: &Mat<T>, b: &[T]) -> Result<Vec<T>, SolverError> {
    let (m, n) = (a.rows, a.cols);
    if b.len() != m {
        return Err(SolverError::Dimension {
            op: "solve_least_squares",
            detail: format!("matrix {m}x{n}, right-hand side of length {}", b.len()),
        });
    }
    let zero = T::zero(a.precision());
    let check = |r: &Mat<T>| -> Result<(), SolverError> {
        for i in 0..r.rows {
            if *r.at(i, i) == zero || !r.at(i, i).is_finite() {
                return Err(SolverError::Singular { op: "solve_least_squares", index: i, pivot: r.at(i, i).to_f64() });
            }
        }
        Ok(())
    };
    if m >= n {
        let qr = qr_from_columns(a.transpose(), m);
        check(&qr.r)?;
        let mut y = qr.thin_qt_vec(b);
        back_substitute_upper(&qr.r, &mut y);
        Ok(y)
    } else {
        let qr = qr_from_columns(a.clone(), n); // Aᵀ = Q R, R m×m
        check(&qr.r)?;
        // Rᵀ z = b (forward), then x = Q [z; 0].
        let mut z = b.to_vec();
        forward_substitute_upper_transpose(&qr.r, &mut z);
        z.resize(n, zero);
        qr.apply_q_mut(&mut z);
        Ok(z)
    }
}

/// y ← R⁻ᵀ y for the leading square upper triangular block of `r` (order y.len()), i.e. forward
/// substitution with the lower triangular Rᵀ, run along the contiguous rows of R.
pub(crate) fn forward_substitute_upper_transpose<T: Real>(r: &Mat<T>, y: &mut [T]) {
    let k = y.len();
    for i in 0..k {
        y[i] /= r.at(i, i);
        let yi = -y[i].clone();
        axpy(&mut y[i + 1..k], &yi, &r.row(i)[i + 1..k]);
    }
}

/// y ← R⁻¹ y for the leading square upper triangular block of `r` (order y.len()).
pub(crate) fn back_substitute_upper<T: Real>(r: &Mat<T>, y: &mut [T]) {
    let k = y.len();
    for i in (0..k).rev() {
        let s = dot4(&r.row(i)[i + 1..k], &y[i + 1..k]);
        y[i] -= &s;
        y[i] /= r.at(i, i);
    }
}
