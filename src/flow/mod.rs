//! Gradient flow in normalized time.
//!
//! Natural time t is hopeless for the asymptotics (L ~ 1/t, ‖W‖ ~ log t, direction error
//! ~ 1/log t). With ds = L dt the same trajectory solves dW/ds = −∇L/L = −∇ log L, whose velocity
//! stays O(1) and tends to W*/‖W*‖²: the solution becomes a straight line and adaptive steps grow
//! geometrically. In span coordinates
//!
//!   dB_ji/ds = a_j φ'(P_ji) y_i w_i,   w_i = −ℓ'(q_i)/(nL) = exp(log(−ℓ'(q_i)) − logsumexp_k log ℓ(q_k)),
//!   du/ds = 1/((1+t) L) = exp(−u − log L),   u = log(1+t),
//!
//! so neither L, e^{−q} nor t is ever formed. φ' follows the integrator's switching modes (one per
//! pre-activation P_ji), and each sign change of a P_ji is a located event.
//!
//! Imports go one way, from the bottom: `settings`, `weights` (the loss weights), `auto` (the
//! method switch) ← `span/` (the span engine) ← `summary` (typed rows and summary), `checkpoint`
//! ← `observer` (rows and checkpoints as a run goes) ← `dual/` (the dual engine) ← `run` (the
//! driver of both engines) ← `verdict` (which point the flow reached, from the summary alone).
//! One open circle: `summary` and `checkpoint` hold the dual engine's `DualStatistics` and
//! `DualCheckpoint`, while `dual` reports through `observer::Rows` (those two types belong in a
//! data module of `dual/`, left for after the engine work there). From outside the folder:
//! `model`, `metrics`, `maxmargin`, `thresholds`, `error`.

pub mod auto;
pub mod checkpoint;
pub mod dual;
pub mod observer;
pub mod run;
pub mod settings;
pub mod span;
pub mod summary;
pub mod verdict;
pub mod watchdog;
pub mod weights;

pub use auto::{Phase, SwitchMemory, AUTO_MIN_REMAINING_STEPS, AUTO_QUIET_STEPS, AUTO_STEP_RATIO};
pub use observer::{FlowObserver, FlowProgress};
pub use run::{run, FlowOutcome, KktResiduals};
pub use settings::{Engine, FlowHorizon, FlowSettings};
pub use span::{FlowSystem, Mode};
pub use summary::{
    FlowReference, FlowStatus, FlowSummary, FlowTime, KktNumbers, ReferenceComparison, RowCosines, SwitchPoint,
    TrajectoryRow,
};
pub use watchdog::WatchdogSettings;
