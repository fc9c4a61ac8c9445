//! Small dense linear algebra over [`Real`]: a row-major matrix, products, Householder QR,
//! one-sided Jacobi SVD (singular values to high relative accuracy, never via eigenvalues of
//! AᵀA), Cholesky and pivoted LU solves.

use crate::error::SolverError;
use crate::scalar::Real;

mod svd;
#[allow(unused_imports)]
use svd::*;
pub use svd::{rank_from_singular_values, singular_values, singular_values_jacobi, svd, Svd};

/// Dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat<T> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Entries, row after row (`rows·cols` values).
    pub data: Vec<T>,
}

impl<T: Real> Mat<T> {
    /// The zero matrix at `prec` bits.
    pub fn zeros(rows: usize, cols: usize, prec: u32) -> Self {
        Mat { rows, cols, data: vec![T::zero(prec); rows * cols] }
    }
    /// The identity at `prec` bits.
    pub fn identity(n: usize, prec: u32) -> Self {
        let mut m = Self::zeros(n, n, prec);
        for i in 0..n {
            m.data[i * n + i] = T::one(prec);
        }
        m
    }
    /// Build from row-major values.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), rows * cols, "Mat::from_vec: {rows}x{cols} needs {} values", rows * cols);
        Mat { rows, cols, data }
    }
    /// Build from `f64` row-major values rounded to `prec` bits.
    pub fn from_f64(rows: usize, cols: usize, data: &[f64], prec: u32) -> Self {
        assert_eq!(data.len(), rows * cols);
        Mat { rows, cols, data: data.iter().map(|&x| T::from_f64(x, prec)).collect() }
    }
    /// Entries rounded to `f64`, row-major.
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|x| x.to_f64()).collect()
    }
    /// Entry (i, j).
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> &T {
        &self.data[i * self.cols + j]
    }
    /// Mutable entry (i, j).
    #[inline]
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut T {
        &mut self.data[i * self.cols + j]
    }
    /// Row i as a slice.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Precision of the entries (53 for an empty matrix).
    pub fn precision(&self) -> u32 {
        self.data.first().map_or(53, |x| x.precision())
    }
    /// Transpose.
    pub fn transpose(&self) -> Self {
        let mut data = Vec::with_capacity(self.data.len());
        for j in 0..self.cols {
            for i in 0..self.rows {
                data.push(self.at(i, j).clone());
            }
        }
        Mat { rows: self.cols, cols: self.rows, data }
    }
    /// Product self · other.
    pub fn matmul(&self, other: &Self) -> Self {
        assert_eq!(self.cols, other.rows, "matmul {}x{} by {}x{}", self.rows, self.cols, other.rows, other.cols);
        let mut c = Self::zeros(self.rows, other.cols, self.precision());
        T::gemm(self.rows, self.cols, other.cols, &self.data, &other.data, &mut c.data, false);
        c
    }
    /// Frobenius norm √Σ a_ij².
    pub fn frobenius_norm(&self) -> T {
        let mut s = T::zero(self.precision());
        for x in &self.data {
            s.add_mul_mut(x, x);
        }
        s.sqrt()
    }
    /// Horizontal concatenation [self | other].
    pub fn hcat(&self, other: &Self) -> Self {
        assert_eq!(self.rows, other.rows);
        let cols = self.cols + other.cols;
        let mut data = Vec::with_capacity(self.rows * cols);
        for i in 0..self.rows {
            data.extend_from_slice(self.row(i));
            data.extend_from_slice(other.row(i));
        }
        Mat { rows: self.rows, cols, data }
    }
}

/// Dot product Σ a_i b_i.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut s = T::zero(a.first().map_or(53, |x| x.precision()));
    for (x, y) in a.iter().zip(b) {
        s.add_mul_mut(x, y);
    }
    s
}

/// Σ a_i b_i with four interleaved partial sums (independent dependency chains, so the `f64`
/// loop pipelines); the summation order differs from [`dot`] but the error bound is the same.
fn dot4<T: Real>(a: &[T], b: &[T]) -> T {
    let prec = a.first().map_or(53, |x| x.precision());
    let mut s = [T::zero(prec), T::zero(prec), T::zero(prec), T::zero(prec)];
    let n = a.len().min(b.len());
    let (a4, ar) = a[..n].split_at(n - n % 4);
    let (b4, br) = b[..n].split_at(n - n % 4);
    for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        s[0].add_mul_mut(&x[0], &y[0]);
        s[1].add_mul_mut(&x[1], &y[1]);
        s[2].add_mul_mut(&x[2], &y[2]);
        s[3].add_mul_mut(&x[3], &y[3]);
    }
    for (x, y) in ar.iter().zip(br) {
        s[0].add_mul_mut(x, y);
    }
    let [mut s0, s1, s2, s3] = s;
    s0 += &s1;
    s0 += &s2;
    s0 += &s3;
    s0
}

/// y += alpha·x.
#[inline]
fn axpy<T: Real>(y: &mut [T], alpha: &T, x: &[T]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        yi.add_mul_mut(alpha, xi);
    }
}

/// Two distinct mutable rows (`p < q`) of a row-major buffer with `width` columns.
fn two_rows<T>(data: &mut [T], width: usize, p: usize, q: usize) -> (&mut [T], &mut [T]) {
    debug_assert!(p < q);
    let (head, tail) = data.split_at_mut(q * width);
    (&mut head[p * width..(p + 1) * width], &mut tail[..width])
}

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

/// QR of the m×n matrix A given as `at` = Aᵀ (n rows of length m).
fn qr_from_columns<T: Real>(mut at: Mat<T>, m: usize) -> Qr<T> {
    let n = at.rows;
    debug_assert_eq!(at.cols, m);
    let k = m.min(n);
    let prec = at.precision();
    let mut tau: Vec<T> = Vec::with_capacity(k);
    let mut beta: Vec<T> = Vec::with_capacity(k);
    let mut j0 = 0;
    while j0 < k {
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
    Qr { rows: m, cols: n, r, reflectors: at, tau }
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

fn check_square<T>(a: &Mat<T>, b_len: usize, op: &'static str) -> Result<(), SolverError> {
    if a.rows != a.cols || b_len != a.rows {
        return Err(SolverError::Dimension {
            op,
            detail: format!("matrix {}x{}, right-hand side of length {}", a.rows, a.cols, b_len),
        });
    }
    Ok(())
}

/// Cholesky factor A = L Lᵀ of a symmetric positive definite matrix (L lower triangular).
#[derive(Clone, Debug)]
pub struct Cholesky<T> {
    /// The lower triangular factor (entries above the diagonal are zero).
    pub l: Mat<T>,
}

/// Cholesky factorization (row-oriented, Golub–Van Loan Alg. 4.2.1). Only the lower triangle of
/// `a` is read. Fails with [`SolverError::Singular`] at the first pivot a_jj − Σ l_jk² that is not
/// positive (or not finite).
pub fn cholesky<T: Real>(a: &Mat<T>) -> Result<Cholesky<T>, SolverError> {
    check_square(a, a.rows, "cholesky")?;
    let n = a.rows;
    let prec = a.precision();
    let mut l = Mat::zeros(n, n, prec);
    let zero = T::zero(prec);
    for i in 0..n {
        for j in 0..=i {
            let s = a.at(i, j).clone() - &dot4(&l.data[i * n..i * n + j], &l.data[j * n..j * n + j]);
            if i == j {
                if s <= zero || !s.is_finite() {
                    return Err(SolverError::Singular { op: "cholesky", index: i, pivot: s.to_f64() });
                }
                l.data[i * n + i] = s.sqrt();
            } else {
                l.data[i * n + j] = s / &l.data[j * n + j];
            }
        }
    }
    Ok(Cholesky { l })
}

impl<T: Real> Cholesky<T> {
    /// Solve A x = b by forward (L y = b) and backward (Lᵀ x = y) substitution.
    pub fn solve(&self, b: &[T]) -> Vec<T> {
        let n = self.l.rows;
        assert_eq!(b.len(), n, "Cholesky::solve: right-hand side of length {} for order {n}", b.len());
        let mut y = b.to_vec();
        for i in 0..n {
            let s = dot4(&self.l.data[i * n..i * n + i], &y[..i]);
            y[i] -= &s;
            y[i] /= self.l.at(i, i);
        }
        for i in (0..n).rev() {
            y[i] /= self.l.at(i, i);
            let xi = -y[i].clone();
            let (head, _) = y.split_at_mut(i);
            axpy(head, &xi, &self.l.data[i * n..i * n + i]);
        }
        y
    }
}

/// Solve A x = b for symmetric positive definite A by Cholesky; see [`cholesky`].
pub fn cholesky_solve<T: Real>(a: &Mat<T>, b: &[T]) -> Result<Vec<T>, SolverError> {
    check_square(a, b.len(), "cholesky_solve")?;
    Ok(cholesky(a)?.solve(b))
}

/// LU factorization with partial pivoting, P A = L U (L unit lower, stored below the diagonal of
/// `lu`; U on and above it).
#[derive(Clone, Debug)]
pub struct Lu<T> {
    /// L (strictly lower part, unit diagonal implied) and U packed together.
    pub lu: Mat<T>,
    /// Row permutation: row i of P A is row `perm[i]` of A.
    pub perm: Vec<usize>,
}

/// LU factorization with partial (row) pivoting (Golub–Van Loan Alg. 3.4.1). Fails with
/// [`SolverError::Singular`] when a whole pivot column is exactly zero (or a pivot is not finite).
pub fn lu<T: Real>(a: &Mat<T>) -> Result<Lu<T>, SolverError> {
    check_square(a, a.rows, "lu")?;
    let n = a.rows;
    let mut m = a.clone();
    let mut perm: Vec<usize> = (0..n).collect();
    let zero = T::zero(a.precision());
    for k in 0..n {
        let mut p = k;
        let mut best = m.at(k, k).abs();
        for i in k + 1..n {
            let v = m.at(i, k).abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best == zero || !best.is_finite() {
            return Err(SolverError::Singular { op: "lu", index: k, pivot: best.to_f64() });
        }
        if p != k {
            let (rk, rp) = two_rows(&mut m.data, n, k, p);
            rk.swap_with_slice(rp);
            perm.swap(k, p);
        }
        let (head, tail) = m.data.split_at_mut((k + 1) * n);
        let rowk = &head[k * n..];
        for i in 0..n - k - 1 {
            let ri = &mut tail[i * n..(i + 1) * n];
            let l = ri[k].clone() / &rowk[k];
            let ml = -l.clone();
            axpy(&mut ri[k + 1..], &ml, &rowk[k + 1..]);
            ri[k] = l;
        }
    }
    Ok(Lu { lu: m, perm })
}

impl<T: Real> Lu<T> {
    /// Solve A x = b.
    pub fn solve(&self, b: &[T]) -> Vec<T> {
        let n = self.lu.rows;
        assert_eq!(b.len(), n, "Lu::solve: right-hand side of length {} for order {n}", b.len());
        let mut y: Vec<T> = self.perm.iter().map(|&p| b[p].clone()).collect();
        for i in 0..n {
            let s = dot4(&self.lu.data[i * n..i * n + i], &y[..i]);
            y[i] -= &s;
        }
        for i in (0..n).rev() {
            let s = dot4(&self.lu.data[i * n + i + 1..(i + 1) * n], &y[i + 1..]);
            y[i] -= &s;
            y[i] /= self.lu.at(i, i);
        }
        y
    }
}

/// Solve A x = b for square A by LU with partial pivoting; see [`lu`].
pub fn lu_solve<T: Real>(a: &Mat<T>, b: &[T]) -> Result<Vec<T>, SolverError> {
    check_square(a, b.len(), "lu_solve")?;
    Ok(lu(a)?.solve(b))
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

#[cfg(test)]
mod tests {
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
            let h = Mat::from_vec(
                n,
                n,
                (0..n * n).map(|k| <Float as Real>::ratio(1, (k / n + k % n + 1) as i64, P)).collect(),
            );
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
            for sol in
                [lu_solve(&h, &b).unwrap(), cholesky_solve(&h, &b).unwrap(), solve_least_squares(&h, &b).unwrap()]
            {
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
            let sigma = [
                f(1.0),
                <Float as Real>::ratio(1, 100_000_000, P),
                <Float as Real>::ratio(1, 1_000_000_000_000_000, P),
            ];
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
}
