//! Numerics for marginflow that know nothing about neural networks: a scalar trait with `f64`,
//! double-double, quad-double and MPFR implementations, small dense linear algebra, embedded Runge–Kutta integrators with event
//! location and checkpointable state, and a convex-QP front end.
//!
//! The integrators: [`ode`] holds the interface (systems, settings, state, observer), [`control`]
//! the step-size laws, the error norm and the workspace every method shares, [`driver`] the one
//! accept/event/observer loop over its [`driver::Stepper`] trait, which [`rk::Integrator`]
//! (explicit pairs) and [`extrapolation::Extrapolation`] (SEULEX) implement; the module `events`
//! decides where an accepted step ends.
//!
//! Imports go one way: `error`, `scalar` ← `linalg`, `tableau`, `boxqp`, `ode` ← `qp` (on
//! `linalg`), `control` and `events` (on `ode`) ← `driver` ← `rk`, `extrapolation`.
#![warn(missing_docs)]
// Numerical kernels walk several arrays in lockstep by index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod boxqp;
pub mod control;
pub mod driver;
pub mod error;
mod events;
pub mod extrapolation;
pub mod interrupt;
pub mod linalg;
pub mod memory;
pub mod ode;
pub mod qp;
pub mod rk;
pub mod scalar;
pub mod tableau;

pub use error::SolverError;
pub use linalg::Mat;
pub use scalar::{Dd, Precision, Qd, Real};
