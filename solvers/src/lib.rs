//! Numerics for marginflow that know nothing about neural networks: a scalar trait with `f64` and
//! MPFR implementations, small dense linear algebra, embedded Runge–Kutta integrators with event
//! location and checkpointable state, and a convex-QP front end.
#![warn(missing_docs)]
// Numerical kernels walk several arrays in lockstep by index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod boxqp;
pub mod error;
mod events;
pub mod extrapolation;
pub mod linalg;
pub mod qp;
pub mod rk;
pub mod scalar;
pub mod tableau;

pub use error::SolverError;
pub use linalg::Mat;
pub use scalar::{Precision, Real};
