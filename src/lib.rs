//! marginflow: gradient flow on two-layer leaky-ReLU networks, followed deep into the asymptotic
//! regime in normalized time, and checked against independently solved max-margin problems
//! (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023).
#![warn(missing_docs)]
// Numerical kernels walk several arrays in lockstep by index; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod activation;
pub mod checkpoint;
pub mod data;
pub mod descent;
pub mod error;
pub mod flow;
pub mod fsutil;
pub mod loss;
pub mod maxmargin;
pub mod metrics;
pub mod network;
pub mod npy;
pub mod plot;
pub mod report;
pub mod sweep;
pub mod validate;

pub use error::{Error, Result};
