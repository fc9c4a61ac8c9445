//! LU factorization with partial pivoting, P A = L U, and its solve.

use super::{axpy, check_square, dot4, two_rows, Mat};
use crate::error::SolverError;
use crate::scalar::Real;

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
