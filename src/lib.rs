//! marginflow: gradient flow on two-layer leaky-ReLU networks, followed deep into the asymptotic
//! regime in normalized time, and checked against independently solved max-margin problems
//! (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023).
#![warn(missing_docs)]
// Numerical kernels walk several arrays in lockstep by index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod descent;
pub mod error;
pub mod experiments;
pub mod flow;
pub mod io;
pub mod maxmargin;
pub mod metrics;
pub mod model;

pub use error::{Error, Result};
