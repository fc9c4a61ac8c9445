//! Seeded generation of synthetic data sets (Gaussian, two-cluster mixture, exactly orthogonal).

use super::{dot, Dataset};
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Which synthetic data set to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    /// x_i ~ N(0, I_d), labels a random balanced arrangement independent of x.
    Gaussian,
    /// Two clusters: x_i = y_i mu + xi_i, xi_i ~ N(0, I_d), ||mu|| = mean norm, optional label noise.
    Mixture,
    /// n exactly orthogonal points: signed, scaled standard basis vectors on random coordinates.
    Orthogonal,
}

/// Most entries a generated data set may hold (2^28 f64 values, 2 GiB).
pub const MAX_ENTRIES: usize = 1 << 28;

/// Settings of [`generate`]. The random stream is `ChaCha8Rng::seed_from_u64(seed)`, so the same
/// settings give bit-identical data on every machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenSettings {
    /// The kind of data (default: gaussian).
    pub kind: DataKind,
    /// Number of points, at least 2 (default: 20).
    pub n: usize,
    /// Dimension, at least 1; orthogonal data need n <= d (default: 4000).
    pub d: usize,
    /// Seed of the ChaCha8 random stream (default: 0).
    pub seed: u64,
    /// Norm of the cluster mean mu of mixture data (default: None, meaning d^0.3). Frei et al.'s
    /// mixture analyses take ||mu|| = Theta(d^beta) with beta in (1/4, 1/2): large enough for the
    /// clusters to be separable, small enough (||mu||^2 << d/n) for near-orthogonality.
    pub mean_norm: Option<f64>,
    /// Fraction of mixture labels flipped after x is generated, in [0, 0.5); only for mixture
    /// data (default: 0).
    pub label_noise: f64,
}

impl Default for GenSettings {
    fn default() -> Self {
        GenSettings { kind: DataKind::Gaussian, n: 20, d: 4000, seed: 0, mean_norm: None, label_noise: 0.0 }
    }
}

impl GenSettings {
    /// The mean norm used for mixture data: `mean_norm`, or d^0.3 by default.
    pub fn effective_mean_norm(&self) -> f64 {
        self.mean_norm.unwrap_or_else(|| (self.d as f64).powf(0.3))
    }

    /// Check the settings; errors name the command-line flag.
    pub fn validate(&self) -> Result<()> {
        if self.n < 2 {
            return Err(Error::setting("n", format!("{} points: need at least 2 (one per class)", self.n)));
        }
        if self.d < 1 {
            return Err(Error::setting("d", "dimension 0: need at least 1"));
        }
        match self.n.checked_mul(self.d) {
            Some(e) if e <= MAX_ENTRIES => {}
            _ => {
                return Err(Error::setting(
                    "n",
                    format!("n*d = {}*{} exceeds {MAX_ENTRIES} entries (2 GiB of f64)", self.n, self.d),
                ))
            }
        }
        if !(0.0..0.5).contains(&self.label_noise) {
            return Err(Error::setting("label_noise", format!("{} is outside [0, 0.5)", self.label_noise)));
        }
        if self.label_noise > 0.0 && self.kind != DataKind::Mixture {
            return Err(Error::setting(
                "label_noise",
                "applies only to --kind mixture (gaussian and orthogonal labels are already independent of x)",
            ));
        }
        if let Some(r) = self.mean_norm {
            if !(r.is_finite() && r >= 0.0) {
                return Err(Error::setting("mean_norm", format!("{r} is not a finite number >= 0")));
            }
            if self.kind != DataKind::Mixture {
                return Err(Error::setting("mean_norm", "applies only to --kind mixture"));
            }
        }
        if self.kind == DataKind::Orthogonal && self.n > self.d {
            return Err(Error::setting(
                "n",
                format!("orthogonal data need n <= d, got n = {} > d = {}", self.n, self.d),
            ));
        }
        Ok(())
    }
}

/// A random balanced labelling: ceil(n/2) labels +1 and floor(n/2) labels -1, uniformly shuffled.
fn balanced_labels(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut y: Vec<f64> = (0..n).map(|i| if i < n.div_ceil(2) { 1.0 } else { -1.0 }).collect();
    y.shuffle(rng);
    y
}

/// Generate a data set (settings validated first).
///
/// Draw order from `ChaCha8Rng::seed_from_u64(seed)`:
/// - gaussian: labels (balanced shuffle), then x row by row, entries N(0,1);
/// - mixture: a direction g ~ N(0, I_d) (mu = mean_norm g/||g||), labels (balanced shuffle),
///   noise xi row by row (x_i = y_i mu + xi_i), then, if `label_noise > 0`, round(label_noise n)
///   distinct indices whose labels are flipped (redrawn if a class would vanish);
/// - orthogonal: labels, a permutation of the d coordinates, then per point a norm
///   r_i ~ U[0.5, 2] sqrt(d) and a sign; x_i = ±r_i e_{perm(i)}, so all inner products between
///   distinct points are exactly 0.
///
/// Both classes are always present.
pub fn generate(settings: &GenSettings) -> Result<Dataset> {
    settings.validate()?;
    let (n, d) = (settings.n, settings.d);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut x = vec![0.0; n * d];
    let y = match settings.kind {
        DataKind::Gaussian => {
            let y = balanced_labels(n, &mut rng);
            for v in x.iter_mut() {
                *v = rng.sample(StandardNormal);
            }
            y
        }
        DataKind::Mixture => {
            let mut mu: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
            let norm = dot(&mu, &mu).sqrt();
            let scale = if norm > 0.0 { settings.effective_mean_norm() / norm } else { 0.0 };
            mu.iter_mut().for_each(|m| *m *= scale);
            let mut y = balanced_labels(n, &mut rng);
            for i in 0..n {
                for j in 0..d {
                    let xi: f64 = rng.sample(StandardNormal);
                    x[i * d + j] = y[i] * mu[j] + xi;
                }
            }
            let flips = (settings.label_noise * n as f64).round() as usize;
            if flips > 0 {
                let mut attempt = 0;
                loop {
                    let idx = rand::seq::index::sample(&mut rng, n, flips);
                    let mut noisy = y.clone();
                    for i in idx.iter() {
                        noisy[i] = -noisy[i];
                    }
                    let pos = noisy.iter().filter(|&&v| v > 0.0).count();
                    if pos > 0 && pos < n {
                        y = noisy;
                        break;
                    }
                    attempt += 1;
                    if attempt >= 10_000 {
                        return Err(Error::setting(
                            "label_noise",
                            "flipping this many labels keeps leaving a single class; lower it or raise --n",
                        ));
                    }
                }
            }
            y
        }
        DataKind::Orthogonal => {
            let y = balanced_labels(n, &mut rng);
            let mut coords: Vec<usize> = (0..d).collect();
            coords.shuffle(&mut rng);
            let sd = (d as f64).sqrt();
            for i in 0..n {
                let r = rng.random_range(0.5..=2.0) * sd;
                let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                x[i * d + coords[i]] = s * r;
            }
            y
        }
    };
    Ok(Dataset { n, d, x, y })
}
