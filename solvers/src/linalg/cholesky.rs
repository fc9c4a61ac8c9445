//! Cholesky factorization A = L Lᵀ and its solve.

use super::{axpy, check_square, dot4, Mat};
use crate::error::SolverError;
use crate::scalar::Real;

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
