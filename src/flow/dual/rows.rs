//! The rows of B as linear functions of Ω between their events, and the pattern that fixes them.
//!
//! Row j has free entries F_j (sides σ_ji ∈ {γ, 1}) and a pinned set S_j (P_ji = 0 held by the
//! minimal-norm sliding). With D_j = diag(y ⊙ σ_j) on F_j (0 on S_j) and
//! Z_j = K_SS⁻¹ K_{S,:}, row j's velocity is v_j = M_j w with (M_j w)_F = D_F w_F and
//! (M_j w)_S = −Z_{S,F} D_F w_F, so that dP_S/ds = a_j (K v_j)_S = 0. While (σ_j, S_j) is fixed,
//!
//!   B_j(Ω) = c_j + a_j M_j Ω,   P_j(Ω) = P0_j + B_j(Ω) K,
//!
//! with the offset c_j fixed at the row's last event (the row's anchor).

use crate::flow::span::Mode;
use crate::model::network::Network;
use marginflow_solvers::linalg::{self, Mat};
use marginflow_solvers::Real;

/// The pinned part of one row: S_j and R_j = −Z_{S,F} D_F (|S|×n, zero on the columns of S).
#[derive(Clone, Debug)]
pub struct PinnedRow<T> {
    /// S_j, increasing.
    pub set: Vec<usize>,
    /// Z_j = K_SS⁻¹ K_{S,:} (|S|×n).
    pub z: Mat<T>,
    /// R_j = −Z_{S,F} D_F (|S|×n).
    pub r: Mat<T>,
}

/// Sides, pinned sets and anchors of all rows, and the bounds that schedule their events.
#[derive(Clone, Debug)]
pub struct RowSet<T> {
    /// Width m.
    pub m: usize,
    /// Points n.
    pub n: usize,
    /// Mode of each entry (j, i) at index j·n + i: `Positive` (σ = 1), `Negative` (σ = γ) or
    /// `Sliding` (pinned).
    pub modes: Vec<Mode>,
    /// Offsets c (m×n): B_j(Ω) = c_j + a_j M_j Ω.
    pub c: Vec<T>,
    /// The pinned part of each row (None when S_j is empty).
    pub pinned: Vec<Option<PinnedRow<T>>>,
    /// Ĝ = |K| + ε_K (n×n, row-major), ε_K = 1e-6 max_i K_ii: the clocks c_i = Σ_k Ĝ_ik Ω_k.
    pub cover: Vec<f64>,
    /// κ_ji ≥ 1 with |(K M_j)_ik| ≤ κ_ji Ĝ_ik for all k, so that
    /// |ΔP_ji| ≤ |a_j| κ_ji Δc_i for any ΔΩ ≥ 0 while row j keeps its modes (1 on free rows).
    pub reach: Vec<f64>,
}

impl<T: Real> RowSet<T> {
    /// Rows anchored at B (m×n) with Ω = 0, sides from `modes` (pinned entries allowed).
    pub fn new(net: &Network<T>, b: &[T], modes: Vec<Mode>) -> Self {
        let (m, n) = (net.m, net.n);
        let k_diag = (0..n).map(|i| net.k_mat.at(i, i).to_f64()).fold(0.0f64, f64::max);
        let floor = 1e-6 * k_diag;
        let cover = net.k_mat.data.iter().map(|v| v.to_f64().abs() + floor).collect();
        let mut rows = RowSet { m, n, modes, c: b.to_vec(), pinned: vec![None; m], cover, reach: vec![1.0; m * n] };
        for j in 0..m {
            rows.rebuild_row(net, j);
        }
        rows
    }

    /// σ_ji as used by D_j: 1, γ, or 0 on the pinned set.
    pub fn slope<'a>(&self, net: &'a Network<T>, k: usize, one: &'a T, zero: &'a T) -> &'a T {
        match self.modes[k] {
            Mode::Positive => one,
            Mode::Negative => &net.gamma,
            _ => zero,
        }
    }

    /// Whether row j has pinned entries.
    pub fn is_pinned_row(&self, j: usize) -> bool {
        self.pinned[j].is_some()
    }

    /// After a change of row j's modes: its pinned part (Z_j, R_j) and reaches κ_j.
    pub fn rebuild_row(&mut self, net: &Network<T>, j: usize) {
        let (n, p) = (self.n, net.prec);
        let set: Vec<usize> = (0..n).filter(|&i| self.modes[j * n + i] == Mode::Sliding).collect();
        if set.is_empty() {
            self.pinned[j] = None;
            self.reach[j * n..(j + 1) * n].iter_mut().for_each(|v| *v = 1.0);
            return;
        }
        let ks = set.len();
        let mut kss = Mat::zeros(ks, ks, p);
        for (r, &i) in set.iter().enumerate() {
            for (c, &l) in set.iter().enumerate() {
                *kss.at_mut(r, c) = net.k_mat.at(i, l).clone();
            }
        }
        let mut z = Mat::zeros(ks, n, p);
        let lu = linalg::lu(&kss);
        for col in 0..n {
            let rhs: Vec<T> = set.iter().map(|&i| net.k_mat.at(i, col).clone()).collect();
            let sol = match &lu {
                Ok(f) => f.solve(&rhs),
                // K_SS singular (more pinned points than independent directions): the
                // least-squares solution gives the same K v (v is unique up to the null space).
                Err(_) => linalg::solve_least_squares(&kss, &rhs).unwrap_or_else(|_| vec![T::zero(p); ks]),
            };
            for r in 0..ks {
                *z.at_mut(r, col) = sol[r].clone();
            }
        }
        let (one, zero) = (T::one(p), T::zero(p));
        let mut rm = Mat::zeros(ks, n, p);
        for r in 0..ks {
            for k in 0..n {
                let d = net.y[k].clone() * self.slope(net, j * n + k, &one, &zero);
                *rm.at_mut(r, k) = -(z.at(r, k).clone() * &d);
            }
        }
        // Reaches: (K M_j)_ik = G_ik y_k σ_k on F with G = K − K_{:,S} Z.
        let kz: Vec<Vec<f64>> = (0..ks).map(|r| z.row(r).iter().map(|v| v.to_f64()).collect()).collect();
        let sides: Vec<f64> = (0..n).map(|k| self.slope(net, j * n + k, &one, &zero).to_f64()).collect();
        for i in 0..n {
            let mut reach = 1.0f64;
            for k in 0..n {
                if sides[k] == 0.0 {
                    continue;
                }
                let mut g = net.k_mat.at(i, k).to_f64();
                for (r, &l) in set.iter().enumerate() {
                    g -= net.k_mat.at(i, l).to_f64() * kz[r][k];
                }
                reach = reach.max((g * sides[k]).abs() / self.cover[i * n + k]);
            }
            self.reach[j * n + i] = reach;
        }
        self.pinned[j] = Some(PinnedRow { set, z, r: rm });
    }

    /// B_j(Ω) into `out` (length n).
    pub fn row_at(&self, net: &Network<T>, j: usize, omega: &[T], out: &mut [T], tmp: &mut T) {
        let n = self.n;
        let aj = &net.a[j];
        for k in 0..n {
            out[k].assign(&self.c[j * n + k]);
            match self.modes[j * n + k] {
                Mode::Positive => {
                    tmp.assign_mul(aj, &net.y[k]);
                    out[k].add_mul_mut(tmp, &omega[k]);
                }
                Mode::Negative => {
                    tmp.assign_mul(aj, &net.y[k]);
                    *tmp *= &net.gamma;
                    out[k].add_mul_mut(tmp, &omega[k]);
                }
                _ => {}
            }
        }
        if let Some(pr) = &self.pinned[j] {
            for (r, &l) in pr.set.iter().enumerate() {
                let mut acc = T::zero(net.prec);
                for (rv, om) in pr.r.row(r).iter().zip(omega) {
                    acc.add_mul_mut(rv, om);
                }
                out[l].add_mul_mut(aj, &acc);
            }
        }
    }

    /// P_ji = P0_ji + Σ_k B_jk K_ki from row j of B (`bj`).
    pub fn preactivation(net: &Network<T>, j: usize, i: usize, bj: &[T]) -> T {
        let mut v = net.p0.data[j * net.n + i].clone();
        for (bk, kk) in bj.iter().zip(net.k_mat.row(i)) {
            v.add_mul_mut(bk, kk);
        }
        v
    }

    /// Round-off scale of row j's pre-activations: 16ε(‖B_j‖₁ max|K| + max_i |P0_ji|).
    pub fn roundoff(net: &Network<T>, j: usize, bj: &[T], k_max: f64) -> f64 {
        let n = net.n;
        let b1: f64 = bj.iter().map(|v| v.to_f64().abs()).sum();
        let p0 = net.p0.data[j * n..(j + 1) * n].iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
        16.0 * T::epsilon(net.prec).to_f64() * (b1 * k_max + p0)
    }

    /// Re-anchor row j at (Ω, B_j) after its modes changed: c_j = B_j − a_j M_j Ω.
    pub fn reanchor(&mut self, net: &Network<T>, j: usize, omega: &[T], bj: &[T]) {
        let n = self.n;
        for k in 0..n {
            self.c[j * n + k].assign(&bj[k]);
        }
        // c = B − (a_j M_j Ω) with the new M_j: subtract row_at's linear part (computed with c = 0).
        let saved: Vec<T> = self.c[j * n..(j + 1) * n].to_vec();
        for v in &mut self.c[j * n..(j + 1) * n] {
            v.assign_f64(0.0);
        }
        let mut lin = vec![T::zero(net.prec); n];
        let mut tmp = T::zero(net.prec);
        self.row_at(net, j, omega, &mut lin, &mut tmp);
        for k in 0..n {
            self.c[j * n + k] = saved[k].clone() - &lin[k];
        }
    }

    /// The whole B (m×n) at Ω.
    pub fn b_at(&self, net: &Network<T>, omega: &[T], out: &mut [T]) {
        let n = self.n;
        let mut tmp = T::zero(net.prec);
        for j in 0..self.m {
            self.row_at(net, j, omega, &mut out[j * n..(j + 1) * n], &mut tmp);
        }
    }
}
