//! Small dense linear algebra over [`Real`]: a row-major matrix and its products (this file),
//! Householder QR and least squares (`qr`), Cholesky (`cholesky`), LU with partial pivoting
//! (`lu`), one-sided Jacobi SVD (`svd`: singular values to high relative accuracy, never via
//! eigenvalues of AᵀA).
//!
//! Imports go one way: every factorization uses [`Mat`] and the vector kernels here; `svd` also
//! uses `qr` (its preconditioned start); nothing here imports a factorization except to
//! re-export it. The folder imports only `scalar` and `error`.

use crate::error::SolverError;
use crate::scalar::Real;

mod cholesky;
mod lu;
mod qr;
mod svd;
#[cfg(test)]
mod tests;

pub use cholesky::{cholesky, cholesky_solve, Cholesky};
pub use lu::{lu, lu_solve, Lu};
pub(crate) use qr::{back_substitute_upper, forward_substitute_upper_transpose};
pub use qr::{
    householder_qr, householder_qr_of_transpose, householder_qr_of_transpose_interruptible,
    householder_qr_of_transpose_owned, solve_least_squares, Qr,
};
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
pub(crate) fn dot4<T: Real>(a: &[T], b: &[T]) -> T {
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
pub(crate) fn axpy<T: Real>(y: &mut [T], alpha: &T, x: &[T]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        yi.add_mul_mut(alpha, xi);
    }
}

/// Two distinct mutable rows (`p < q`) of a row-major buffer with `width` columns.
pub(crate) fn two_rows<T>(data: &mut [T], width: usize, p: usize, q: usize) -> (&mut [T], &mut [T]) {
    debug_assert!(p < q);
    let (head, tail) = data.split_at_mut(q * width);
    (&mut head[p * width..(p + 1) * width], &mut tail[..width])
}

/// `a` is square and `b_len` its order, else [`SolverError::Dimension`] naming `op`.
fn check_square<T>(a: &Mat<T>, b_len: usize, op: &'static str) -> Result<(), SolverError> {
    if a.rows != a.cols || b_len != a.rows {
        return Err(SolverError::Dimension {
            op,
            detail: format!("matrix {}x{}, right-hand side of length {}", a.rows, a.cols, b_len),
        });
    }
    Ok(())
}
