//! The two-layer network f(x; W) = Σ_j a_j φ(⟨w_j, x⟩) in span-reduced form.
//!
//! Every gradient row is a combination of the data, so W = W0 + B X with B ∈ R^{m×n}. With the
//! Gram matrix K = X Xᵀ and P0 = W0 Xᵀ computed once, the pre-activations are P = P0 + B K and a
//! right-hand side costs O(m n²), independent of d.
//!
//! Norms and singular values come from a *small representation*: an orthonormal basis
//! [Q1 | Q2] of span(X) + span(W0) with X = X̃ [Q1|Q2]ᵀ and W0 = W̃0 [Q1|Q2]ᵀ, so that
//! W = (W̃0 + B X̃)[Q1|Q2]ᵀ has the singular values of the m×(n+m) matrix W̃0 + B X̃. The basis is
//! the Householder QR of [Xᵀ | W0ᵀ] (DESIGN §2); when d ≤ n + m the identity basis (W itself)
//! is used.

use crate::error::{Error, Result};
use crate::model::activation::Activation;
use crate::model::data::Dataset;
use crate::model::loss::Loss;
use marginflow_solvers::{linalg, Mat, Real};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The fixed second layer a.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OuterLayer {
    /// a_j = +1/√m for j < ⌈m/2⌉, −1/√m for the rest.
    Balanced,
    /// i.i.d. uniform signs times 1/√m, drawn from the seed.
    Random,
    /// A length-m vector from a `.npy` file.
    File(PathBuf),
    /// A length-m vector given in memory (e.g. the random layer of a run, reused by its restarts).
    Vector(Vec<f64>),
}

impl std::str::FromStr for OuterLayer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "balanced" => Ok(OuterLayer::Balanced),
            "random" => Ok(OuterLayer::Random),
            f if f.ends_with(".npy") => Ok(OuterLayer::File(PathBuf::from(f))),
            other => Err(format!("expected balanced, random or a .npy file, got {other:?}")),
        }
    }
}

/// The initialization W(0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Entries i.i.d. N(0, ω²) from the seed.
    Scale(f64),
    /// An m×d float64 `.npy` file.
    File(PathBuf),
    /// An m×d matrix given in memory, row-major (the Python module's `W0=ndarray`).
    Weights(Vec<f64>),
    /// An in-memory matrix as reports name it instead of copying it ([`Init::named`]); it
    /// cannot initialize a run.
    Named {
        /// The argument that held it (`W0`).
        name: String,
        /// SHA-256 of its entries' little-endian f64 bit patterns, row-major.
        sha256: String,
    },
}

impl Init {
    /// The initialization as a summary records it: [`Init::Weights`] named `name` with the
    /// SHA-256 of its entries, any other unchanged.
    pub fn named(&self, name: &str) -> Init {
        use sha2::{Digest, Sha256};
        use std::fmt::Write;
        match self {
            Init::Weights(w) => {
                let mut h = Sha256::new();
                for v in w {
                    h.update(v.to_bits().to_le_bytes());
                }
                let sha256 = h.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
                Init::Named { name: name.to_string(), sha256 }
            }
            other => other.clone(),
        }
    }
}

/// Everything that defines the model apart from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// Width m (default: 16).
    pub width: usize,
    /// Leak γ of the activation, in [0, 1); 0 is the plain ReLU (default: 0.1).
    pub leak: f64,
    /// Second layer (default: balanced).
    pub outer: OuterLayer,
    /// Initialization (default: N(0, 1e-6), i.e. scale 1e-3).
    pub init: Init,
    /// Seed of the initialization and of a random outer layer (default: 0).
    pub seed: u64,
    /// Loss (default: logistic).
    pub loss: Loss,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            width: 16,
            leak: 0.1,
            outer: OuterLayer::Balanced,
            init: Init::Scale(1e-3),
            seed: 0,
            loss: Loss::Logistic,
        }
    }
}

/// The one check of the leak γ for every command and scenario: the leaky ReLU
/// φ(z) = max(z, γz) needs γ ∈ [0, 1). γ = 0 is the plain ReLU: φ' ∈ {0, 1} off the kinks and the
/// Clarke slope σ ∈ [0, 1] on them; a neuron whose pre-activations are all negative stops moving.
pub fn validate_leak(leak: f64) -> Result<()> {
    if !(leak >= 0.0 && leak < 1.0) {
        return Err(Error::setting("leak", format!("must be in [0, 1) (0 is the plain ReLU), got {leak}")));
    }
    Ok(())
}

impl ModelSettings {
    /// Check ranges, naming the flag at fault.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 {
            return Err(Error::setting("width", "must be at least 1"));
        }
        validate_leak(self.leak)?;
        if let Init::Scale(w) = self.init {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(Error::setting("init_scale", format!("must be finite and ≥ 0, got {w}")));
            }
        }
        Ok(())
    }

    /// The outer layer a (length m) as `f64`.
    pub fn outer_weights(&self) -> Result<Vec<f64>> {
        let m = self.width;
        let s = 1.0 / (m as f64).sqrt();
        Ok(match &self.outer {
            OuterLayer::Balanced => (0..m).map(|j| if j < m.div_ceil(2) { s } else { -s }).collect(),
            OuterLayer::Random => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(2);
                (0..m).map(|_| if rand::Rng::random::<bool>(&mut rng) { s } else { -s }).collect()
            }
            OuterLayer::File(path) => {
                let a = crate::io::npy::read_vector(path, m, "--outer")?;
                if let Some(bad) = a.iter().find(|v| !v.is_finite()) {
                    return Err(Error::BadNpy { path: path.clone(), reason: format!("non-finite outer weight {bad}") });
                }
                a
            }
            OuterLayer::Vector(a) => {
                if a.len() != m {
                    return Err(Error::setting("outer", format!("expected {m} values (the width), got {}", a.len())));
                }
                if let Some(bad) = a.iter().find(|v| !v.is_finite()) {
                    return Err(Error::setting("outer", format!("non-finite outer weight {bad}")));
                }
                a.clone()
            }
        })
    }

    /// Whether a has as many entries +c as −c, all of one magnitude c: the symmetry under which the
    /// theory's decision boundary is linear. The `balanced` outer layer has it for even m only
    /// (for odd m it has one more +c).
    pub fn is_balanced(a: &[f64]) -> bool {
        let pos: Vec<f64> = a.iter().copied().filter(|v| *v > 0.0).collect();
        let neg: Vec<f64> = a.iter().copied().filter(|v| *v < 0.0).map(|v| -v).collect();
        let c = a.first().map_or(0.0, |v| v.abs());
        pos.len() == neg.len() && a.iter().all(|v| (v.abs() - c).abs() <= 1e-15 * c)
    }

    /// The initialization W(0) (m×d, row-major) as `f64`.
    pub fn initial_weights(&self, d: usize) -> Result<Vec<f64>> {
        let mut w = Vec::with_capacity(self.width * d);
        self.for_each_initial_weight(d, |v| w.push(v))?;
        Ok(w)
    }

    /// Feed the entries of W(0) (m×d, row-major) to `f` in order, without holding them: N(0, ω²)
    /// draws from ChaCha8 (seed, stream 1), or the `--init-file` matrix read in pieces (an error
    /// for a non-finite entry ends the feed; callers discard what they were given).
    pub fn for_each_initial_weight(&self, d: usize, mut f: impl FnMut(f64)) -> Result<()> {
        let m = self.width;
        match &self.init {
            Init::Scale(omega) => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(1);
                for _ in 0..m * d {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    f(omega * z);
                }
            }
            Init::File(path) => crate::io::npy::for_each_matrix_value(path, m, d, "--init-file", |v| {
                if !v.is_finite() {
                    return Err(Error::BadNpy { path: path.clone(), reason: format!("non-finite initial weight {v}") });
                }
                f(v);
                Ok(())
            })?,
            Init::Weights(w) => {
                if w.len() != m * d {
                    return Err(Error::setting(
                        "W0",
                        format!("expected {m}×{d} = {} values (width × d), got {}", m * d, w.len()),
                    ));
                }
                if let Some(bad) = w.iter().find(|v| !v.is_finite()) {
                    return Err(Error::setting("W0", format!("non-finite initial weight {bad}")));
                }
                w.iter().for_each(|&v| f(v));
            }
            Init::Named { name, .. } => {
                return Err(Error::setting(name, "an array named in a summary, not held: pass it again"));
            }
        }
        Ok(())
    }
}

/// The span-reduced network at precision `T`.
#[derive(Clone, Debug)]
pub struct Network<T> {
    /// Width m.
    pub m: usize,
    /// Number of data points n.
    pub n: usize,
    /// Input dimension d.
    pub d: usize,
    /// Working precision in bits.
    pub prec: u32,
    /// Leak γ.
    pub gamma: T,
    /// Outer layer a (length m).
    pub a: Vec<T>,
    /// Labels y (length n).
    pub y: Vec<T>,
    /// Gram matrix K = X Xᵀ (n×n).
    pub k_mat: Mat<T>,
    /// P0 = W0 Xᵀ (m×n).
    pub p0: Mat<T>,
    /// The small representation (X̃, W̃0), computed on first use ([`Network::x_small`]).
    small: SmallRep<T>,
    /// Loss.
    pub loss: Loss,
    /// Outer layer as `f64`.
    pub a_f64: Vec<f64>,
    /// The model settings, from which W0 is drawn again to write W = W0 + B X (W0 is not kept:
    /// at d = 10^5 it is the largest array after X).
    pub settings: ModelSettings,
}

/// The small representation of [`Network`], or the stacked [X; W0] (row-major, (n+m)×d) it is
/// computed from until first use.
#[derive(Debug)]
struct SmallRep<T> {
    rep: OnceLock<(Mat<T>, Mat<T>)>,
    stacked: Mutex<Option<Vec<T>>>,
}

impl<T: Clone> Clone for SmallRep<T> {
    /// The representation if it exists, else the stacked buffer; when neither is there another
    /// thread is computing the representation, and the clone waits for it.
    fn clone(&self) -> Self {
        let (stacked, failed) = match self.stacked.lock() {
            Ok(guard) => (guard.clone(), false),
            Err(poisoned) => (poisoned.into_inner().clone(), true),
        };
        let rep = match (&stacked, self.rep.get()) {
            // The factorization holds the lock while it runs: a poisoned lock with neither
            // buffer nor result means it panicked, and waiting would never end.
            (None, None) if failed => panic!("the network's small representation failed to compute"),
            (None, None) => OnceLock::from(self.rep.wait().clone()),
            _ => self.rep.clone(),
        };
        SmallRep { rep, stacked: Mutex::new(stacked) }
    }
}

impl<T: Real> Network<T> {
    /// Build the network for `data` and `settings` at `prec` bits.
    pub fn new(data: &Dataset, settings: &ModelSettings, prec: u32) -> Result<Self> {
        settings.validate()?;
        let (m, n, d) = (settings.width, data.n, data.d);
        let a_f64 = settings.outer_weights()?;
        // [X; W0] in one buffer ((n+m)×d), converted once (W0 drawn straight into it); K = X Xᵀ
        // and P0 = W0 Xᵀ read it in place.
        let mut stacked: Vec<T> = Vec::with_capacity((n + m) * d);
        stacked.extend(data.x.iter().map(|&v| T::from_f64(v, prec)));
        settings.for_each_initial_weight(d, |v| stacked.push(T::from_f64(v, prec)))?;
        let (xs_rows, w0_rows) = stacked.split_at(n * d);
        let mut k_mat = Mat::zeros(n, n, prec);
        T::gemm_nt(n, d, n, xs_rows, xs_rows, &mut k_mat.data);
        let mut p0 = Mat::zeros(m, n, prec);
        T::gemm_nt(m, d, n, w0_rows, xs_rows, &mut p0.data);
        Ok(Network {
            m,
            n,
            d,
            prec,
            gamma: T::from_f64(settings.leak, prec),
            a: a_f64.iter().map(|&v| T::from_f64(v, prec)).collect(),
            y: data.y.iter().map(|&v| T::from_f64(v, prec)).collect(),
            k_mat,
            p0,
            small: SmallRep { rep: OnceLock::new(), stacked: Mutex::new(Some(stacked)) },
            loss: settings.loss,
            a_f64,
            settings: settings.clone(),
        })
    }

    /// The activation (leaky ReLU with this network's γ).
    pub fn activation(&self) -> Activation {
        Activation::Leaky { gamma: self.gamma.to_f64() }
    }

    /// Pre-activations P = P0 + B K (m×n) into `p`.
    pub fn preactivations_inplace(&self, b: &[T], p: &mut [T]) {
        T::gemm(self.m, self.n, self.n, b, &self.k_mat.data, p, false);
        for (pv, p0v) in p.iter_mut().zip(&self.p0.data) {
            *pv += p0v;
        }
    }

    /// Small representation W̃ = W̃0 + B X̃ (m×r): same Frobenius products and singular values as W.
    pub fn small_weights(&self, b: &[T]) -> Mat<T> {
        let (x_small, w0_small) = self.small();
        let mut w = w0_small.clone();
        T::gemm(self.m, self.n, x_small.cols, b, &x_small.data, &mut w.data, true);
        w
    }

    /// Small representation of the data, X̃ (n×r), with X̃ X̃ᵀ = X Xᵀ.
    pub fn x_small(&self) -> &Mat<T> {
        &self.small().0
    }

    /// Small representation of W0, W̃0 (m×r), with W̃0 X̃ᵀ = W0 Xᵀ and W̃0 W̃0ᵀ = W0 W0ᵀ.
    pub fn w0_small(&self) -> &Mat<T> {
        &self.small().1
    }

    /// (X̃, W̃0), from one Householder QR of A = [Xᵀ | W0ᵀ] (d×(n+m)) on first use: A = Q R, so
    /// Xᵀ = Q R[:, :n] and W0ᵀ = Q R[:, n:], i.e. X̃ = R[:, :n]ᵀ and W̃0 = R[:, n:]ᵀ (for d ≤ n + m,
    /// X and W0 themselves). The factorization works in the stacked buffer kept since
    /// [`Network::new`], which it frees. Deferred so that a caller can step (which needs only K
    /// and P0) while another thread computes it; concurrent first callers wait for one result.
    fn small(&self) -> &(Mat<T>, Mat<T>) {
        self.small.rep.get_or_init(|| {
            let (n, m, d) = (self.n, self.m, self.d);
            // Held until the representation is computed (see `SmallRep::clone`).
            let mut guard = self.small.stacked.lock().unwrap_or_else(PoisonError::into_inner);
            let mut stacked = guard.take().expect("the stacked [X; W0] is kept until the small representation exists");
            if d <= n + m {
                let w0_part = stacked.split_off(n * d);
                return (Mat::from_vec(n, d, stacked), Mat::from_vec(m, d, w0_part));
            }
            let r = linalg::householder_qr_of_transpose_owned(Mat::from_vec(n + m, d, stacked)).r;
            let rt = r.transpose();
            let r_dim = rt.cols;
            let xs = Mat::from_vec(n, r_dim, rt.data[..n * r_dim].to_vec());
            let ws = Mat::from_vec(m, r_dim, rt.data[n * r_dim..].to_vec());
            (xs, ws)
        })
    }

    /// Small representation of C X for span coefficients C (m×n).
    pub fn small_span(&self, c: &[T]) -> Mat<T> {
        let x_small = self.x_small();
        let mut w = Mat::zeros(self.m, x_small.cols, self.prec);
        T::gemm(self.m, self.n, x_small.cols, c, &x_small.data, &mut w.data, false);
        w
    }

    /// The theory's activation pattern S_ji = sign(a_j) y_i, as ±1 (m×n, row-major).
    pub fn theory_pattern(&self) -> Vec<i8> {
        let mut s = Vec::with_capacity(self.m * self.n);
        for aj in &self.a_f64 {
            for yi in &self.y {
                let v = aj.signum() * yi.to_f64();
                s.push(if v > 0.0 { 1 } else { -1 });
            }
        }
        s
    }

    /// Margins q_i = y_i Σ_j a_j φ(P_ji) for pre-activations P (m×n).
    pub fn margins(&self, p: &[T]) -> Vec<T> {
        let act = self.activation();
        (0..self.n)
            .map(|i| {
                let mut f = T::zero(self.prec);
                for j in 0..self.m {
                    f.add_mul_mut(&self.a[j], &act.value(&p[j * self.n + i]));
                }
                f * &self.y[i]
            })
            .collect()
    }

    /// Full W = W0 + B X as `f64` (m×d, row-major), computed at the working precision: W0 drawn
    /// again into W, then W += B[:, I] X[I, :] over blocks I of [`FULL_WEIGHTS_BLOCK`] data rows
    /// (no copy of X).
    pub fn full_weights(&self, data: &Dataset, b: &[T]) -> Result<Vec<f64>> {
        let (m, n, d, prec) = (self.m, self.n, self.d, self.prec);
        let mut w: Vec<T> = Vec::with_capacity(m * d);
        self.settings.for_each_initial_weight(d, |v| w.push(T::from_f64(v, prec)))?;
        let mut lo = 0;
        while lo < n {
            let hi = (lo + FULL_WEIGHTS_BLOCK).min(n);
            let rows = hi - lo;
            let xb: Vec<T> = data.x[lo * d..hi * d].iter().map(|&v| T::from_f64(v, prec)).collect();
            let bb: Vec<T> = (0..m).flat_map(|j| b[j * n + lo..j * n + hi].iter().cloned()).collect();
            T::gemm(m, rows, d, &bb, &xb, &mut w, true);
            lo = hi;
        }
        Ok(w.iter().map(|v| v.to_f64()).collect())
    }
}

/// Data rows per block in [`Network::full_weights`].
pub const FULL_WEIGHTS_BLOCK: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory W0 is named by the SHA-256 of its entries' bits; other inits are unchanged.
    #[test]
    fn named_init_hashes_the_weights_and_cannot_run() {
        let named = Init::Weights(vec![1.0, -0.5]).named("W0");
        // sha256 of the little-endian bytes of 1.0 and -0.5 (f64).
        let mut bytes = Vec::new();
        bytes.extend(1.0f64.to_bits().to_le_bytes());
        bytes.extend((-0.5f64).to_bits().to_le_bytes());
        use sha2::Digest;
        let expect: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(named, Init::Named { name: "W0".into(), sha256: expect });
        assert_eq!(Init::Scale(1e-3).named("W0"), Init::Scale(1e-3));
        let model = ModelSettings { width: 1, init: named, ..Default::default() };
        assert!(model.initial_weights(2).is_err());
    }

    /// The deferred small representation (X̃, W̃0) reproduces the inner products of X and W0
    /// (computed directly from the full d-dimensional rows), whether it is first used by one
    /// thread, by two at once, or by a clone made before any use.
    #[test]
    fn deferred_small_representation_has_the_inner_products_of_x_and_w0() {
        let data = crate::model::data::generate(&crate::model::data::GenSettings {
            n: 6,
            d: 50,
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        let settings = ModelSettings { width: 4, init: Init::Scale(0.3), ..Default::default() };
        let net: Network<f64> = Network::new(&data, &settings, 53).unwrap();
        let before_use = net.clone();
        let (from_a, from_b) = std::thread::scope(|s| {
            let a = s.spawn(|| net.x_small().clone());
            let b = s.spawn(|| net.w0_small().clone());
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut w0 = Vec::new();
        settings.for_each_initial_weight(data.d, |v| w0.push(v)).unwrap();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        for (xs, ws) in [(&from_a, &from_b), (before_use.x_small(), before_use.w0_small())] {
            assert_eq!(xs.rows, 6);
            assert_eq!(ws.rows, 4);
            for i in 0..6 {
                for k in 0..6 {
                    let exact = dot(data.row(i), data.row(k));
                    assert!((dot(xs.row(i), xs.row(k)) - exact).abs() < 1e-12 * data.d as f64);
                }
                for j in 0..4 {
                    let exact = dot(&w0[j * data.d..(j + 1) * data.d], data.row(i));
                    assert!((dot(ws.row(j), xs.row(i)) - exact).abs() < 1e-12 * data.d as f64);
                }
            }
        }
        assert_eq!(from_a.data, before_use.x_small().data, "the clone computes the same X̃");
    }

    #[test]
    fn balanced_outer_layer_contract() {
        let s = ModelSettings { width: 5, ..Default::default() };
        let a = s.outer_weights().unwrap();
        let c = 1.0 / 5f64.sqrt();
        assert_eq!(a, vec![c, c, c, -c, -c]);
    }
}
