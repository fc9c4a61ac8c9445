//! The span engine (`--engine span`): the network state B (W = W(0) + B X) integrated directly,
//! O(m n²) per right-hand side, one switching function per pre-activation. It is the dual
//! engine's cross-check and the base for a trainable outer layer.
//!
//! Imports go one way: `system` (the right-hand side, switches, sliding) ← `woodbury` (the
//! stiff method's linear solves); both use only `crate::flow::weights` and the model.

pub mod system;
pub mod woodbury;

pub use system::{FlowSystem, Mode, FLIP_CYCLE_LIMIT, SIGMA_ROUNDOFF_EPS};
