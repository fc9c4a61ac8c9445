//! The dual engine's ODE: y = (Ω, u) ∈ R^{n+1},
//!
//!   dΩ/ds = w(q(Ω)),   q(Ω) = q_e + A (Ω − Ω_e),   du/ds = 1/((1+t) L),
//!
//! O(n²) per right-hand side whatever the width. The kernel A and the rows change only at
//! events (see `events`), so every stage of a step sees one smooth vector field.

use super::kernel::Kernel;
use super::queue::EventQueue;
use super::rows::RowSet;
use crate::flow::weights::LossWeights;
use crate::model::network::Network;
use marginflow_solvers::linalg::{self, Lu};
use marginflow_solvers::ode::{OdeSystem, ShiftedSolve, Switching};
use marginflow_solvers::{Mat, Real};
use serde::{Deserialize, Serialize};

/// Work counters of the dual engine (besides the integrator's [`marginflow_solvers::ode::Statistics`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DualStatistics {
    /// Sign changes of free entries (kinks).
    pub kinks: u64,
    /// Entries that entered a pinned set.
    pub pins_entered: u64,
    /// Entries that left a pinned set.
    pub pins_left: u64,
    /// Entries examined at the ends of accepted steps (the queue's due entries; pinned ones
    /// are examined at every step).
    pub entries_examined: u64,
    /// Changes of A (rank-two flips, row replacements, rebuilds).
    pub kernel_updates: u64,
    /// Exact refreshes of A and q from B.
    pub refreshes: u64,
    /// Largest |q_anchor − q_exact| seen at a refresh (the drift of the incremental updates).
    pub max_refresh_drift: f64,
    /// Event batches (one located s with one or more entries).
    pub batches: u64,
    /// Entries whose sign change inside a step was found by subdivision (same side at both ends).
    pub double_crossings: u64,
}

/// The system (Ω, u) with its pattern, kernel and event queue.
pub struct DualSystem<'a, T> {
    /// The network.
    pub net: &'a Network<T>,
    /// Rows, sides and pinned sets.
    pub rows: RowSet<T>,
    /// The kernel and the margins' anchor.
    pub kernel: Kernel<T>,
    /// Margins and loss weights at the last evaluation.
    pub lw: LossWeights<T>,
    /// Earliest crossing times of the free entries.
    pub queue: EventQueue,
    /// Work counters.
    pub stats: DualStatistics,
    /// max |K_ik|.
    pub k_max: f64,
    /// The outer weights a in f64.
    pub a64: Vec<f64>,
    pub(crate) scratch: Vec<T>,
    stiff: Option<StiffCache<T>>,
}

/// The factorization of I − cJ_ΩΩ at one state, shift and kernel version.
struct StiffCache<T> {
    y: Vec<T>,
    c: T,
    version: u64,
    lu: Lu<T>,
    /// c·f_u·(wᵀA) and 1 + c f_u, for the u row.
    u_row: Vec<T>,
    u_diag: T,
}

impl<'a, T: Real> DualSystem<'a, T> {
    /// The system on `rows`, with the kernel anchored at Ω with margins `q`.
    pub fn new(net: &'a Network<T>, rows: RowSet<T>, omega: &[T], q: Vec<T>) -> Self {
        let kernel = Kernel::new(net, &rows, omega, q);
        let k_max = net.k_mat.data.iter().fold(0.0f64, |acc, v| acc.max(v.to_f64().abs()));
        let a64: Vec<f64> = net.a.iter().map(|v| v.to_f64()).collect();
        DualSystem {
            net,
            queue: EventQueue::new(net.m, net.n),
            rows,
            kernel,
            lw: LossWeights::new(net.n, net.prec),
            stats: DualStatistics::default(),
            k_max,
            a64,
            scratch: vec![T::zero(net.prec); net.n],
            stiff: None,
        }
    }

    /// Margins and loss weights at Ω (into `lw`).
    pub fn prepare(&mut self, omega: &[T]) {
        self.kernel.margins_into(omega, &mut self.lw.q, &mut self.scratch);
        self.lw.compute(&self.net.loss, &self.net.y);
    }

    /// w_i = (w_i y_i)·y_i at the prepared state (labels ±1).
    pub fn weight(&self, i: usize) -> T {
        self.lw.wy[i].clone() * &self.net.y[i]
    }
}

impl<T: Real> OdeSystem<T> for DualSystem<'_, T> {
    fn dim(&self) -> usize {
        self.net.n + 1
    }

    fn eval_inplace(&mut self, _s: &T, y: &[T], dy: &mut [T]) {
        let n = self.net.n;
        self.prepare(&y[..n]);
        for i in 0..n {
            dy[i].assign_mul(&self.lw.wy[i], &self.net.y[i]);
        }
        self.lw.du_ds_into(&y[n], &mut dy[n]);
    }
}

/// The integrators see a smooth system: events are the engine's own (module `events`).
impl<T: Real> Switching<T> for DualSystem<'_, T> {}

impl<T: Real> ShiftedSolve<T> for DualSystem<'_, T> {
    /// (I − cJ) x = rhs with J_ΩΩ = J_w A, J_w = ∂w/∂q = −diag(w_i c_i) + w wᵀ (c_i = σ(q_i)
    /// logistic, 1 exponential), J_uΩ = f_u wᵀA, J_uu = −f_u: one dense LU of the n×n block.
    fn solve_shifted(&mut self, _s: &T, y: &[T], c: &T, rhs: &mut [T]) -> bool {
        let (n, p) = (self.net.n, self.net.prec);
        let fresh =
            matches!(&self.stiff, Some(sc) if sc.version == self.kernel.version && sc.c == *c && sc.y.as_slice() == y);
        if !fresh {
            self.prepare(&y[..n]);
            let w: Vec<T> = (0..n).map(|i| self.weight(i)).collect();
            let dw = crate::flow::weights::weighted_curvature(&self.net.loss, &self.lw.q, &w);
            let a = &self.kernel.a;
            // wᵀA.
            let mut wa = vec![T::zero(p); n];
            for i in 0..n {
                for (acc, av) in wa.iter_mut().zip(a.row(i)) {
                    acc.add_mul_mut(&w[i], av);
                }
            }
            // M = I − c(−diag(dw) A + w (wᵀA)).
            let mut mm = Mat::zeros(n, n, p);
            for i in 0..n {
                for k in 0..n {
                    let jik = w[i].clone() * &wa[k] - &(dw[i].clone() * a.at(i, k));
                    let mut v = -(c.clone() * &jik);
                    if i == k {
                        v += &T::one(p);
                    }
                    *mm.at_mut(i, k) = v;
                }
            }
            let Ok(lu) = linalg::lu(&mm) else { return false };
            let mut fu = T::zero(p);
            self.lw.du_ds_into(&y[n], &mut fu);
            let cf = c.clone() * &fu;
            let u_row = wa.iter().map(|v| v.clone() * &cf).collect();
            let u_diag = T::one(p) + &cf;
            self.stiff =
                Some(StiffCache { y: y.to_vec(), c: c.clone(), version: self.kernel.version, lu, u_row, u_diag });
        }
        let sc = self.stiff.as_ref().expect("factorized");
        let x = sc.lu.solve(&rhs[..n]);
        let mut xu = rhs[n].clone();
        for (r, xv) in sc.u_row.iter().zip(&x) {
            xu.add_mul_mut(r, xv);
        }
        xu /= &sc.u_diag;
        for (r, v) in rhs.iter_mut().zip(x) {
            *r = v;
        }
        rhs[n] = xu;
        rhs.iter().all(|v| v.is_finite())
    }
}
