//! Activations: leaky ReLU φ(z) = max(z, γz), and its H-smooth version used for gradient descent.

use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

/// Which activation a network uses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Activation {
    /// φ(z) = z for z > 0, γz for z < 0; φ'(z) = 1 or γ. γ = 0 is the plain ReLU.
    Leaky {
        /// The leak γ ∈ [0, 1).
        gamma: f64,
    },
    /// H-smooth leaky ReLU (Frei et al. 2023):
    /// φ(z) = z − (1−γ)/(4H) for z ≥ 1/H; ((1−γ)H/4) z² + ((1+γ)/2) z for |z| ≤ 1/H;
    /// γz − (1−γ)/(4H) for z ≤ −1/H. It is C¹ with φ' ∈ [γ, 1] and φ'' ≤ (1−γ)H/2.
    Smooth {
        /// The leak γ ∈ (0, 1).
        gamma: f64,
        /// The smoothness H > 0.
        h: f64,
    },
}

impl Activation {
    /// The leak γ.
    pub fn gamma(&self) -> f64 {
        match *self {
            Activation::Leaky { gamma } | Activation::Smooth { gamma, .. } => gamma,
        }
    }

    /// φ(z) at the precision of `z`.
    pub fn value<T: Real>(&self, z: &T) -> T {
        let p = z.precision();
        match *self {
            Activation::Leaky { gamma } => {
                if z.is_sign_negative() {
                    z.clone() * &T::from_f64(gamma, p)
                } else {
                    z.clone()
                }
            }
            Activation::Smooth { gamma, h } => {
                let hh = T::from_f64(h, p);
                let g = T::from_f64(gamma, p);
                let one = T::one(p);
                let inv_h = one.clone() / &hh;
                let shift = (one.clone() - &g) / &(hh.clone() * &T::from_f64(4.0, p));
                if *z >= inv_h {
                    z.clone() - &shift
                } else if *z <= -inv_h.clone() {
                    z.clone() * &g - &shift
                } else {
                    // ((1−γ)H/4) z² + ((1+γ)/2) z
                    let quad = (one.clone() - &g) * &hh / &T::from_f64(4.0, p);
                    let lin = (one + &g) / &T::from_f64(2.0, p);
                    (quad * z + &lin) * z
                }
            }
        }
    }

    /// φ'(z) (for the leaky ReLU at z = 0 the right derivative, 1).
    pub fn derivative<T: Real>(&self, z: &T) -> T {
        let p = z.precision();
        match *self {
            Activation::Leaky { gamma } => {
                if z.is_sign_negative() && *z != T::zero(p) {
                    T::from_f64(gamma, p)
                } else {
                    T::one(p)
                }
            }
            Activation::Smooth { gamma, h } => {
                let hh = T::from_f64(h, p);
                let g = T::from_f64(gamma, p);
                let one = T::one(p);
                let inv_h = one.clone() / &hh;
                if *z >= inv_h {
                    one
                } else if *z <= -inv_h.clone() {
                    g
                } else {
                    // ((1−γ)H/2) z + (1+γ)/2
                    (one.clone() - &g) * &hh / &T::from_f64(2.0, p) * z + &((one + &g) / &T::from_f64(2.0, p))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_is_continuous_with_continuous_derivative() {
        let a = Activation::Smooth { gamma: 0.2, h: 4.0 };
        for z0 in [0.25f64, -0.25] {
            let (l, r) = (z0 - 1e-9, z0 + 1e-9);
            assert!((a.value(&l) - a.value(&r)).abs() < 1e-8);
            assert!((a.derivative(&l) - a.derivative(&r)).abs() < 1e-7);
        }
        // Finite-difference derivative inside the quadratic zone.
        let z = 0.1f64;
        let fd = (a.value(&(z + 1e-6)) - a.value(&(z - 1e-6))) / 2e-6;
        assert!((fd - a.derivative(&z)).abs() < 1e-8);
    }

    #[test]
    fn leaky_values() {
        let a = Activation::Leaky { gamma: 0.1 };
        assert_eq!(a.value(&-2.0f64), -0.2);
        assert_eq!(a.value(&3.0f64), 3.0);
        assert_eq!(a.derivative(&-1.0f64), 0.1);
    }

    /// γ = 0 is the plain ReLU: max(z, 0), slope 0 on the negative side, 1 (the right
    /// derivative) at 0.
    #[test]
    fn relu_values() {
        let a = Activation::Leaky { gamma: 0.0 };
        assert_eq!(a.value(&-2.0f64), 0.0);
        assert_eq!(a.value(&3.0f64), 3.0);
        assert_eq!(a.derivative(&-1.0f64), 0.0);
        assert_eq!(a.derivative(&0.0f64), 1.0);
        assert_eq!(a.derivative(&2.0f64), 1.0);
    }
}
