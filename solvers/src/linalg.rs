//! Small dense linear algebra over [`Real`]: a row-major matrix, products, Householder QR,
//! one-sided Jacobi SVD (singular values to high relative accuracy, never via eigenvalues of
//! AᵀA), Cholesky and pivoted LU solves.

use crate::error::SolverError;
use crate::scalar::Real;

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
            s.mul_add_mut(x, x);
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
        s.mul_add_mut(x, y);
    }
    s
}

/// Placeholder to keep the error type referenced until factorizations land.
#[allow(dead_code)]
fn _uses(_: SolverError) {}
