//! One evaluation point of a step: Ω there, and what the events read from it, computed on
//! demand and kept: rows of B and their round-off scales, the pre-activations P_ji, the loss
//! weights and the pinned entries' equivalent controls σ.

use super::rows::RowSet;
use super::system::DualSystem;
use crate::flow::span::Mode;
use marginflow_solvers::Real;
use std::collections::HashMap;

/// One evaluation point: the state and the quantities read there so far.
pub(crate) struct Probe<T> {
    /// (Ω, u).
    pub y: Vec<T>,
    rows: HashMap<usize, (Vec<T>, f64)>,
    /// Loss weights w at the probe (computed on first use).
    pub weights: Option<Vec<T>>,
    /// σ on the pinned set of row j, (R_j w)_l / (y_l w_l) in the order of S_j.
    pub sigma: HashMap<usize, Vec<T>>,
    /// All of P and the rows' round-off scales, when many entries are read at this probe
    /// (one P0 + B K product instead of one dot product per entry).
    pub full: Option<(Vec<T>, Vec<f64>)>,
}

impl<T> Probe<T> {
    /// A probe at y = (Ω, u).
    pub fn new(y: Vec<T>) -> Self {
        Probe { y, rows: HashMap::new(), weights: None, sigma: HashMap::new(), full: None }
    }
}

impl<T: Real> DualSystem<'_, T> {
    /// Row j of B and its round-off scale at the probe.
    pub(crate) fn probe_row<'p>(&self, probe: &'p mut Probe<T>, j: usize) -> &'p (Vec<T>, f64) {
        let n = self.net.n;
        probe.rows.entry(j).or_insert_with(|| {
            let mut bj = vec![T::zero(self.net.prec); n];
            let mut tmp = T::zero(self.net.prec);
            self.rows.row_at(self.net, j, &probe.y[..n], &mut bj, &mut tmp);
            let rho = RowSet::roundoff(self.net, j, &bj, self.k_max);
            (bj, rho)
        })
    }

    /// Fill the probe's full P (P0 + B K by one matrix product) and round-off scales.
    pub(crate) fn probe_full(&self, probe: &mut Probe<T>) {
        let net = self.net;
        let (m, n, p) = (net.m, net.n, net.prec);
        let mut b = vec![T::zero(p); m * n];
        self.rows.b_at(net, &probe.y[..n], &mut b);
        let rho: Vec<f64> = (0..m).map(|j| RowSet::roundoff(net, j, &b[j * n..(j + 1) * n], self.k_max)).collect();
        let mut pre = vec![T::zero(p); m * n];
        net.preactivations_inplace(&b, &mut pre);
        probe.full = Some((pre, rho));
    }

    /// P_ji at the probe, with row j's round-off scale.
    pub(crate) fn probe_p(&self, probe: &mut Probe<T>, k: usize) -> (T, f64) {
        let n = self.net.n;
        if let Some((pre, rho)) = &probe.full {
            return (pre[k].clone(), rho[k / n]);
        }
        let (j, i) = (k / n, k % n);
        let (bj, rho) = self.probe_row(probe, j);
        (RowSet::preactivation(self.net, j, i, bj), *rho)
    }

    /// The loss weights w at the probe.
    pub(crate) fn probe_weights<'p>(&mut self, probe: &'p mut Probe<T>) -> &'p [T] {
        if probe.weights.is_none() {
            let n = self.net.n;
            self.prepare(&probe.y[..n]);
            probe.weights = Some((0..n).map(|i| self.weight(i)).collect());
        }
        probe.weights.as_deref().expect("weights")
    }

    /// The oriented switching value of entry k at the probe: ≥ 0 while it keeps its mode,
    /// < 0 once it crossed (past the round-off band). Free: ±P + ρ_j; pinned: the margin
    /// min(σ − γ, 1 − σ) of its equivalent control plus [`crate::flow::span::SIGMA_ROUNDOFF_EPS`]·ε.
    pub(crate) fn oriented(&mut self, probe: &mut Probe<T>, k: usize) -> T {
        let n = self.net.n;
        let p = self.net.prec;
        match self.rows.modes[k] {
            Mode::Positive => {
                let (v, rho) = self.probe_p(probe, k);
                v + &T::from_f64(rho, p)
            }
            Mode::Negative => {
                let (v, rho) = self.probe_p(probe, k);
                T::from_f64(rho, p) - &v
            }
            _ => {
                let (j, l) = (k / n, k % n);
                if !probe.sigma.contains_key(&j) {
                    self.probe_weights(probe);
                    let w = probe.weights.as_ref().expect("weights");
                    let pr = self.rows.pinned[j].as_ref().expect("pinned row");
                    let sig: Vec<T> = pr
                        .set
                        .iter()
                        .enumerate()
                        .map(|(r, &l)| {
                            let mut v = T::zero(p);
                            for (rv, wi) in pr.r.row(r).iter().zip(w) {
                                v.add_mul_mut(rv, wi);
                            }
                            v / &(w[l].clone() * &self.net.y[l])
                        })
                        .collect();
                    probe.sigma.insert(j, sig);
                }
                let pr = self.rows.pinned[j].as_ref().expect("pinned row");
                let r = pr.set.iter().position(|&x| x == l).expect("pinned entry");
                let sigma = probe.sigma[&j][r].clone();
                let lo = sigma.clone() - &self.net.gamma;
                let hi = T::one(p) - &sigma;
                lo.min_of(&hi) + &(T::epsilon(p) * &T::from_f64(crate::flow::span::SIGMA_ROUNDOFF_EPS, p))
            }
        }
    }
}
