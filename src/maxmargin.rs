//! Max-margin references, solved independently of the flow.
//!
//! Within an activation pattern S (S_ji = sign⟨w_j, x_i⟩) the network is linear in W:
//! f(x_i; W) = Σ_j a_j s_ji ⟨w_j, x_i⟩ with s_ji = 1 for S_ji = +1 and γ otherwise, so
//! min ½‖W‖_F² s.t. y_i f(x_i; W) ≥ 1, S_ji⟨w_j, x_i⟩ ≥ 0 is a convex QP whose solution lies in
//! span(X): W* = C X.

use crate::error::Result;
use crate::network::Network;
use marginflow_solvers::{linalg, Mat, Real};

/// A max-margin solution W* = C X on a pattern, with its multipliers and certificate verdict.
#[derive(Clone, Debug)]
pub struct Reference<T> {
    /// Span coefficients C (m×n): W* = C X.
    pub coefficients: Mat<T>,
    /// Multipliers λ_i of the margin constraints, in data order.
    pub multipliers: Vec<T>,
    /// ‖W*‖_F.
    pub norm: T,
    /// Whether every KKT condition was verified at working precision.
    pub certified: bool,
    /// The first condition that failed, when not certified.
    pub failure: Option<String>,
}

/// Slopes s_ji of the theory pattern S_ji = sign(a_j) y_i (m×n).
fn theory_slopes<T: Real>(net: &Network<T>) -> Vec<T> {
    let one = T::one(net.prec);
    net.theory_pattern().iter().map(|&s| if s > 0 { one.clone() } else { net.gamma.clone() }).collect()
}

/// The theory-pattern solution with every margin constraint active: W* = Σ λ_i y_i ∇f_i with
/// M λ = 1, M_ik = y_i y_k K_ik Σ_j a_j² s_ji s_jk, i.e. C_ji = a_j s_ji y_i λ_i. Certified when
/// λ ≥ 0 and the pattern constraints S_ji (C K)_ji ≥ 0 hold (then all KKT conditions hold exactly:
/// stationarity by construction, margins = 1 on the pattern).
pub fn theory_reference<T: Real>(net: &Network<T>) -> Result<Reference<T>> {
    let (m, n, p) = (net.m, net.n, net.prec);
    let slopes = theory_slopes(net);
    let mut mmat = Mat::zeros(n, n, p);
    for i in 0..n {
        for k in 0..n {
            let mut acc = T::zero(p);
            for j in 0..m {
                let t = net.a[j].clone() * &net.a[j] * &slopes[j * n + i];
                acc.mul_add_mut(&t, &slopes[j * n + k]);
            }
            acc *= net.k_mat.at(i, k);
            acc *= &net.y[i];
            acc *= &net.y[k];
            *mmat.at_mut(i, k) = acc;
        }
    }
    let ones = vec![T::one(p); n];
    let lambda = linalg::lu_solve(&mmat, &ones)?;
    let mut c = Mat::zeros(m, n, p);
    for j in 0..m {
        for i in 0..n {
            *c.at_mut(j, i) = net.a[j].clone() * &slopes[j * n + i] * &net.y[i] * &lambda[i];
        }
    }
    let mut failure = None;
    if let Some(i) = lambda.iter().position(|l| l.is_sign_negative()) {
        failure = Some(format!("multiplier {i} is negative ({:e})", lambda[i].to_f64()));
    }
    let ck = c.matmul(&net.k_mat);
    let pattern = net.theory_pattern();
    if failure.is_none() {
        if let Some(idx) = (0..m * n).find(|&idx| {
            let v = &ck.data[idx];
            (pattern[idx] > 0 && v.is_sign_negative()) || (pattern[idx] < 0 && !v.is_sign_negative())
        }) {
            failure = Some(format!(
                "sign of <w_{},x_{}> is wrong for the pattern ({:e})",
                idx / n,
                idx % n,
                ck.data[idx].to_f64()
            ));
        }
    }
    let norm = net.small_span(&c.data).frobenius_norm();
    Ok(Reference { coefficients: c, multipliers: lambda, norm, certified: failure.is_none(), failure })
}
