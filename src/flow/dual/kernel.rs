//! The kernel A of the margins: between events q(Ω) = q_e + A (Ω − Ω_e) with
//!
//!   A = Σ_j a_j² D_j (K − K_{:,S_j} K_{S_j S_j}⁻¹ K_{S_j,:}) D_j,   D_j = diag(y ⊙ σ_j) (0 on S_j),
//!
//! the first layer's tangent kernel on the current pattern (symmetric positive semidefinite;
//! without pins A = D_y (K ∘ Σᵀ D_{a²} Σ) D_y). A flip of a free entry (j, i) changes row j's
//! term in row and column i only (O(n)); a change of S_j replaces row j's term (O(n²|S_j|)).

use super::rows::RowSet;
use crate::flow::span::Mode;
use crate::model::network::Network;
use marginflow_solvers::{Mat, Real};

/// A, with the anchor (Ω_e, q_e) of the margins.
#[derive(Clone, Debug)]
pub struct Kernel<T> {
    /// A (n×n).
    pub a: Mat<T>,
    /// Ω_e.
    pub omega_anchor: Vec<T>,
    /// q_e = q(Ω_e).
    pub q_anchor: Vec<T>,
    /// Changes of A since it was built (it is rebuilt at every refresh).
    pub version: u64,
}

impl<T: Real> Kernel<T> {
    /// A of the pattern in `rows`, anchored at (Ω, q).
    pub fn new(net: &Network<T>, rows: &RowSet<T>, omega: &[T], q: Vec<T>) -> Self {
        let mut k =
            Kernel { a: Mat::zeros(net.n, net.n, net.prec), omega_anchor: omega.to_vec(), q_anchor: q, version: 0 };
        k.rebuild(net, rows);
        k
    }

    /// A from scratch: D_y (K ∘ Σ'ᵀΣ') D_y with Σ'_ji = |a_j| σ_ji (0 on pinned entries), minus
    /// the pinned rows' corrections a_j² D_j K_{:,S} Z_j D_j. O(m n²).
    pub fn rebuild(&mut self, net: &Network<T>, rows: &RowSet<T>) {
        let (m, n, p) = (net.m, net.n, net.prec);
        let (one, zero) = (T::one(p), T::zero(p));
        // Σ'ᵀ (n×m), so that C = Σ'ᵀ Σ' is one gemm_nt.
        let mut st = vec![T::zero(p); n * m];
        for j in 0..m {
            let aa = net.a[j].abs();
            for i in 0..n {
                st[i * m + j] = aa.clone() * rows.slope(net, j * n + i, &one, &zero);
            }
        }
        let mut c = vec![T::zero(p); n * n];
        T::gemm_nt(n, m, n, &st, &st, &mut c);
        for i in 0..n {
            for k in 0..n {
                let v = c[i * n + k].clone() * net.k_mat.at(i, k) * &net.y[i] * &net.y[k];
                *self.a.at_mut(i, k) = v;
            }
        }
        for j in 0..m {
            if rows.is_pinned_row(j) {
                self.pinned_correction(net, rows, j, &-T::one(p));
            }
        }
        self.version += 1;
    }

    /// A += sign · a_j² D_j K_{:,S} Z_j D_j (row j pinned), the part of row j's term that the
    /// free formula does not hold.
    fn pinned_correction(&mut self, net: &Network<T>, rows: &RowSet<T>, j: usize, sign: &T) {
        let (n, p) = (net.n, net.prec);
        let pr = rows.pinned[j].as_ref().expect("pinned row");
        let (one, zero) = (T::one(p), T::zero(p));
        let d: Vec<T> = (0..n).map(|i| net.y[i].clone() * rows.slope(net, j * n + i, &one, &zero)).collect();
        let a2 = net.a[j].clone() * &net.a[j] * sign;
        for i in 0..n {
            if d[i].sign() == Some(std::cmp::Ordering::Equal) {
                continue;
            }
            // (K_{:,S} Z)_ik = Σ_r K_{i,S_r} Z_{r,k}.
            let mut row = vec![T::zero(p); n];
            for (r, &l) in pr.set.iter().enumerate() {
                let kil = net.k_mat.at(i, l);
                for (acc, zv) in row.iter_mut().zip(pr.z.row(r)) {
                    acc.add_mul_mut(kil, zv);
                }
            }
            let di = a2.clone() * &d[i];
            for k in 0..n {
                if d[k].sign() == Some(std::cmp::Ordering::Equal) {
                    continue;
                }
                let v = di.clone() * &row[k] * &d[k];
                *self.a.at_mut(i, k) += &v;
            }
        }
    }

    /// Row j's whole term a_j² D_j G_j D_j added with `sign` (±1), G_j = K − K_{:,S} Z_j.
    pub fn row_term(&mut self, net: &Network<T>, rows: &RowSet<T>, j: usize, sign: &T) {
        let (n, p) = (net.n, net.prec);
        let (one, zero) = (T::one(p), T::zero(p));
        let a2 = net.a[j].clone() * &net.a[j] * sign;
        let d: Vec<T> = (0..n).map(|i| net.y[i].clone() * rows.slope(net, j * n + i, &one, &zero)).collect();
        for i in 0..n {
            if d[i].sign() == Some(std::cmp::Ordering::Equal) {
                continue;
            }
            let di = a2.clone() * &d[i];
            for k in 0..n {
                let v = di.clone() * net.k_mat.at(i, k) * &d[k];
                *self.a.at_mut(i, k) += &v;
            }
        }
        if rows.is_pinned_row(j) {
            self.pinned_correction(net, rows, j, &-sign.clone());
        }
        self.version += 1;
    }

    /// Free entry (j, i) of a free row changes side from `old` to `new` (the other entries of
    /// row j at their current sides in `rows`): the rank-two change of row j's term in row and
    /// column i.
    pub fn flip_free(&mut self, net: &Network<T>, rows: &RowSet<T>, j: usize, i: usize, old: Mode, new: Mode) {
        let (n, p) = (net.n, net.prec);
        let (one, zero) = (T::one(p), T::zero(p));
        let sig = |md: Mode| -> T {
            match md {
                Mode::Positive => one.clone(),
                Mode::Negative => net.gamma.clone(),
                _ => zero.clone(),
            }
        };
        let (so, sn) = (sig(old), sig(new));
        let a2 = net.a[j].clone() * &net.a[j];
        // Δ_ik = a_j² y_i y_k K_ik σ_k (σ'_i − σ_i), k ≠ i; Δ_ii = a_j² K_ii (σ'_i² − σ_i²).
        let delta = (sn.clone() - &so) * &a2 * &net.y[i];
        for k in 0..n {
            if k == i {
                continue;
            }
            let v = delta.clone() * rows.slope(net, j * n + k, &one, &zero) * &net.y[k] * net.k_mat.at(i, k);
            *self.a.at_mut(i, k) += &v;
            *self.a.at_mut(k, i) += &v;
        }
        let dd = (sn.clone() * &sn - &(so.clone() * &so)) * &a2 * net.k_mat.at(i, i);
        *self.a.at_mut(i, i) += &dd;
        self.version += 1;
    }

    /// q(Ω) = q_e + A (Ω − Ω_e) into `q`; `d` is scratch of length n.
    pub fn margins_into(&self, omega: &[T], q: &mut [T], d: &mut [T]) {
        for ((dv, o), oe) in d.iter_mut().zip(omega).zip(&self.omega_anchor) {
            dv.assign(o);
            *dv -= oe;
        }
        let n = q.len();
        for i in 0..n {
            q[i].assign(&self.q_anchor[i]);
            for (av, dv) in self.a.row(i).iter().zip(d.iter()) {
                q[i].add_mul_mut(av, dv);
            }
        }
    }

    /// Move the anchor to Ω (q_e ← q(Ω) under the current A).
    pub fn rebase(&mut self, omega: &[T]) {
        let n = omega.len();
        let p = omega.first().map(|v| v.precision()).unwrap_or(53);
        let mut q = vec![T::zero(p); n];
        let mut d = vec![T::zero(p); n];
        self.margins_into(omega, &mut q, &mut d);
        self.q_anchor = q;
        self.omega_anchor = omega.to_vec();
    }
}
