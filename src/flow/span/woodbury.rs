//! The linear solves of the stiff method: (I − cJ) x = r for the flow's Jacobian, by Woodbury in
//! n×n.

use super::system::FlowSystem;
use marginflow_solvers::{linalg, Mat, Real};

impl<T: Real> FlowSystem<'_, T> {
    /// Fill (or reuse) the Jacobian pieces at y under the current modes.
    pub(crate) fn jacobian_at(&mut self, y: &[T]) {
        let fresh = matches!(&self.jac, Some(j) if j.y.as_slice() == y && j.modes == self.modes);
        if fresh {
            return;
        }
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        self.prepare(&y[..m * n]);
        let w: Vec<T> = self.lw.wy.iter().zip(&net.y).map(|(wy, yi)| wy.clone() * yi).collect();
        let dw = crate::flow::weights::weighted_curvature(&net.loss, &self.lw.q, &w);
        let mut fu = T::zero(p);
        self.du_ds_into(&y[m * n], &mut fu);
        let mut qa = Mat::zeros(n, n, p);
        for r in 0..n {
            for i in 0..n {
                let mut acc = T::zero(p);
                for l in 0..m {
                    let t = net.a[l].clone() * &net.a[l] * &self.slope[l * n + r];
                    acc.add_mul_mut(&t, &self.slope[l * n + i]);
                }
                *qa.at_mut(r, i) = acc * net.k_mat.at(i, r) * &net.y[r] * &net.y[i];
            }
        }
        self.jac = Some(Box::new(super::system::JacobianCache {
            y: y.to_vec(),
            modes: self.modes.clone(),
            slope: self.slope.clone(),
            w,
            dw,
            fu,
            qa,
        }));
    }

    /// Solve (I − cJ) x = rhs in place, J = ∂f/∂y at y = (B, u) under the current modes.
    ///
    /// With the slopes s_ji = φ'(P_ji) fixed, dB_ji/ds = a_j s_ji y_i w_i(q) with
    /// q_r = y_r Σ_l a_l s_lr P_lr and P = P0 + B K, so ∂(dB/ds)/∂B = A J_w Q with
    /// A_{(ji),i} = a_j s_ji y_i (mn×n), Q_{r,(lk)} = y_r a_l s_lr K_kr (n×mn) and
    /// J_w = ∂w/∂q = −diag(w_i c_i) + w wᵀ (w_i = g_i/S, g = −ℓ', S = Σ ℓ; logistic:
    /// g' = −g(1−g), c_i = 1 − g_i = σ(q_i); exponential: c_i = 1). The u-row: du/ds = f_u =
    /// exp(−u − log L) with ∂ log L/∂q_r = ℓ'_r/S = −w_r, so ∂f_u/∂u = −f_u and
    /// ∂f_u/∂B = f_u wᵀQ; u does not feed back into B. Woodbury:
    /// (I − cAJ_wQ)⁻¹ = I + cA(I − cJ_wQA)⁻¹J_wQ, an n×n LU solve; then
    /// x_u = (r_u + c f_u wᵀQx_B)/(1 + c f_u), using Qx_B = Qr_B + c QA z.
    ///
    /// Sliding entries keep their equivalent-control slope frozen (their dependence on B through
    /// σ is left out of J): the extrapolation method keeps its order with any J, so this only
    /// affects efficiency. Returns false when the n×n system is singular.
    pub fn shifted_solve_inplace(&mut self, y: &[T], c: &T, rhs: &mut [T]) -> bool {
        self.jacobian_at(y);
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        let jac = self.jac.as_ref().expect("jacobian prepared");
        // v = Q r_B: v_r = y_r Σ_l a_l s_lr (r_B K)_lr.
        let mut v = vec![T::zero(p); n];
        for l in 0..m {
            let row = &rhs[l * n..(l + 1) * n];
            for (r, vr) in v.iter_mut().enumerate() {
                let mut acc = T::zero(p);
                for (k, rk) in row.iter().enumerate() {
                    acc.add_mul_mut(rk, net.k_mat.at(k, r));
                }
                let t = net.a[l].clone() * &jac.slope[l * n + r];
                vr.add_mul_mut(&t, &acc);
            }
        }
        for (vr, yr) in v.iter_mut().zip(&net.y) {
            *vr *= yr;
        }
        // t = J_w v.
        let wv = linalg::dot(&jac.w, &v);
        let t: Vec<T> = (0..n).map(|i| jac.w[i].clone() * &wv - &(jac.dw[i].clone() * &v[i])).collect();
        // Z = I − c J_w QA, (J_w QA)_ir = −dw_i QA_ir + w_i Σ_p w_p QA_pr.
        let mut wqa = vec![T::zero(p); n];
        for (r, acc) in wqa.iter_mut().enumerate() {
            for pp in 0..n {
                acc.add_mul_mut(&jac.w[pp], jac.qa.at(pp, r));
            }
        }
        let mut z = Mat::zeros(n, n, p);
        for i in 0..n {
            for r in 0..n {
                let jwqa = jac.w[i].clone() * &wqa[r] - &(jac.dw[i].clone() * jac.qa.at(i, r));
                let mut e = -(c.clone() * &jwqa);
                if i == r {
                    e += &T::one(p);
                }
                *z.at_mut(i, r) = e;
            }
        }
        let zs = match linalg::lu_solve(&z, &t) {
            Ok(v) => v,
            Err(_) => return false,
        };
        // x_B = r_B + c A z: x_ji += c a_j s_ji y_i z_i.
        for j in 0..m {
            let caj = c.clone() * &net.a[j];
            for i in 0..n {
                let coef = caj.clone() * &jac.slope[j * n + i] * &net.y[i];
                rhs[j * n + i].add_mul_mut(&coef, &zs[i]);
            }
        }
        // Q x_B = v + c QA z; x_u = (r_u + c f_u wᵀ Q x_B)/(1 + c f_u).
        let mut wqx = wv;
        for r in 0..n {
            let mut qaz = T::zero(p);
            for i in 0..n {
                qaz.add_mul_mut(jac.qa.at(r, i), &zs[i]);
            }
            let t = c.clone() * &qaz;
            wqx.add_mul_mut(&jac.w[r], &t);
        }
        let cfu = c.clone() * &jac.fu;
        let mut xu = rhs[m * n].clone();
        xu.add_mul_mut(&cfu, &wqx);
        rhs[m * n] = xu / &(T::one(p) + &cfu);
        true
    }
}
