//! The ODE interface shared by every integrator of this crate: the system (right-hand side
//! [`OdeSystem`], switching functions [`Switching`], the shifted solve [`ShiftedSolve`] of
//! implicit methods), the settings, the horizon, the checkpointable [`IntegratorState`] with its
//! work counters, how a run ends ([`Status`]) and the [`Observer`] that sees every accepted step.
//!
//! **Switching events.** A system may have switching functions g_k(y) and a current *mode* ±1 for
//! each; its right-hand side uses the modes, not the live signs, so every stage of a step sees one
//! smooth vector field. When an accepted step ends with mode_k·g_k < 0, the earliest such root is
//! located on the step (module `events`), the step is cut there, the mode flips and the method restarts; the
//! system chooses the new mode in [`Switching::flip`] (it may recognise a Filippov sliding mode
//! there). A switch that still flips back and forth at one point is *released*
//! ([`Switching::release`]) and counted, instead of grinding through tiny steps.

use crate::error::SolverError;
use crate::scalar::Real;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A first-order system y' = f(s, y): the right-hand side.
pub trait OdeSystem<T: Real> {
    /// Dimension of y.
    fn dim(&self) -> usize;
    /// dy ← f(s, y) (under the current modes of a [`Switching`] system).
    fn eval_inplace(&mut self, s: &T, y: &[T], dy: &mut [T]);
}

/// Switching functions g_k(s, y) with a current *mode* ±1 each, which the right-hand side uses
/// instead of the live signs, so that every stage of a step sees one smooth vector field.
///
/// Every method has a default describing a smooth system (no switches): such a system only
/// writes `impl Switching<T> for MySystem {}`.
pub trait Switching<T: Real>: OdeSystem<T> {
    /// Number of switching functions g_k (0 for a smooth system).
    fn num_switches(&self) -> usize {
        0
    }
    /// g_k(s, y). Only called for tracked k (mode ≠ 0).
    fn switch_value(&mut self, _k: usize, _s: &T, _y: &[T]) -> T {
        unreachable!("system has no switching functions")
    }
    /// g ← all switching functions at (s, y) (default: one by one).
    fn switch_values_inplace(&mut self, s: &T, y: &[T], g: &mut [T]) {
        for (k, gk) in g.iter_mut().enumerate() {
            if self.mode(k) != 0 {
                *gk = self.switch_value(k, s, y);
            }
        }
    }
    /// Side of switch k the right-hand side assumes: +1, −1, or 0 when untracked (the system then
    /// evaluates it by its live sign and no event is located for it).
    fn mode(&self, _k: usize) -> i8 {
        0
    }
    /// Switch k crossed at the state (s, y): choose its new mode (normally the other side; a
    /// system may instead enter a sliding mode and report a different switching function for k).
    fn flip(&mut self, _k: usize, _s: &T, _y: &[T]) {}
    /// Stop locating events for switch k (events off): evaluate it by its live sign.
    fn untrack(&mut self, _k: usize) {}
    /// Switch k chatters at (s, y) (it flipped back and forth at one point): handle it as a
    /// sliding mode if the system can, else untrack it (the default).
    fn release(&mut self, k: usize, _s: &T, _y: &[T]) {
        self.untrack(k);
    }
    /// The components of y that g_k reads (default: all); event location evaluates only these.
    fn switch_support(&self, _k: usize) -> Range<usize> {
        0..self.dim()
    }
}

/// The shifted linear solve of linearly implicit methods (see [`crate::extrapolation`]).
///
/// The default provides no Jacobian: such a system only writes `impl ShiftedSolve<T> for MySystem {}`
/// and is integrated with J = 0.
pub trait ShiftedSolve<T: Real>: OdeSystem<T> {
    /// Solve (I − c·J) x = rhs in place, J = ∂f/∂y(s, y) under the current modes. Returns false
    /// when the system provides no Jacobian (the default; `rhs` is then unchanged). An
    /// approximate J only costs efficiency in the extrapolation method, never its order.
    fn solve_shifted(&mut self, _s: &T, _y: &[T], _c: &T, _rhs: &mut [T]) -> bool {
        false
    }
}

/// Work counters, reported with every result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// Accepted steps.
    pub accepted: u64,
    /// Rejected steps.
    pub rejected: u64,
    /// Right-hand-side evaluations.
    pub rhs_evaluations: u64,
    /// Switching events located (mode flips).
    pub events: u64,
    /// Switches released after chattering (sliding modes).
    pub released: u64,
    /// Steps taken at the round-off floor h = 32ε|s| and accepted whatever their error estimate
    /// (the tolerance asked for more than the arithmetic holds there; absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub floor_steps: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Integrator settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IntegratorSettings {
    /// Relative tolerance (default: 1e-10).
    pub rtol: f64,
    /// Absolute tolerance (default: 1e-12).
    pub atol: f64,
    /// Locate switching events (default: true). When false, switches are released at the start.
    pub events: bool,
    /// Maximum number of steps (accepted + rejected); `None` = no limit (default: None).
    pub max_steps: Option<u64>,
    /// Initial step; `None` = Hairer's automatic choice (default: None).
    pub initial_step: Option<f64>,
    /// Maximum step; `None` = unbounded (default: None).
    pub max_step: Option<f64>,
    /// A switch flipping this many times in a row at the same point is released (default: 4).
    pub chatter_limit: u32,
    /// Consecutive steps at the round-off floor 32ε|s| (accepted whatever their error estimate:
    /// below it s + h rounds to s) before the run ends with `StepSizeUnderflow` (default: 100,000).
    #[serde(default = "default_floor_step_limit")]
    pub floor_step_limit: u64,
}

fn default_floor_step_limit() -> u64 {
    100_000
}

impl Default for IntegratorSettings {
    fn default() -> Self {
        IntegratorSettings {
            rtol: 1e-10,
            atol: 1e-12,
            events: true,
            max_steps: None,
            initial_step: None,
            max_step: None,
            chatter_limit: 4,
            floor_step_limit: default_floor_step_limit(),
        }
    }
}

impl IntegratorSettings {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), SolverError> {
        if !(self.rtol > 0.0 && self.rtol.is_finite()) {
            return Err(SolverError::Setting { name: "rtol", reason: format!("must be > 0, got {}", self.rtol) });
        }
        if !(self.atol > 0.0 && self.atol.is_finite()) {
            return Err(SolverError::Setting { name: "atol", reason: format!("must be > 0, got {}", self.atol) });
        }
        Ok(())
    }
}

/// Where integration stops.
#[derive(Clone, Debug)]
pub struct Horizon<T> {
    /// Stop exactly at s = `s_end`, if given.
    pub s_end: Option<T>,
    /// Stop exactly where component `.0` of y first reaches `.1` from below, if given.
    pub component_reaches: Option<(usize, T)>,
}

/// How an integration ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The horizon was reached.
    Reached,
    /// The observer asked to stop.
    Stopped,
    /// The step limit was hit.
    MaxSteps,
    /// The step size fell below round-off relative to s: h ≤ 0, or `floor_step_limit`
    /// consecutive steps at the round-off floor.
    StepSizeUnderflow {
        /// Where.
        s: f64,
        /// The step.
        h: f64,
    },
    /// The right-hand side produced a NaN or infinity.
    NonFinite {
        /// Where.
        s: f64,
    },
}

/// The complete integrator state at a step boundary: enough to resume bit for bit.
#[derive(Clone, Debug)]
pub struct IntegratorState<T> {
    /// Current time.
    pub s: T,
    /// Current state.
    pub y: Vec<T>,
    /// Next step size to try (0 before the first step: choose automatically).
    pub h: T,
    /// Controller memory: the previous accepted error norm.
    pub err_old: T,
    /// Whether the previous attempt was rejected.
    pub last_rejected: bool,
    /// Consecutive flips of the same switch at one point (chatter detection): (switch, count).
    pub chatter: Option<(usize, u32)>,
    /// Work counters.
    pub stats: Statistics,
    /// f(s, y) when already known (the first-same-as-last stage of an explicit pair), so that a
    /// resumed run neither repeats nor counts that evaluation.
    pub first_stage: Option<Vec<T>>,
}

impl<T: Real> IntegratorState<T> {
    /// Fresh state at (s0, y0).
    pub fn new(s0: T, y0: Vec<T>) -> Self {
        let prec = s0.precision();
        IntegratorState {
            s: s0,
            y: y0,
            h: T::zero(prec),
            err_old: T::ratio(1, 10000, prec),
            last_rejected: false,
            chatter: None,
            stats: Statistics::default(),
            first_stage: None,
        }
    }

    /// Record k as f(s, y) (reusing the buffer).
    pub(crate) fn remember_first_stage(&mut self, k: &[T]) {
        match &mut self.first_stage {
            Some(v) if v.len() == k.len() => v.clone_from_slice(k),
            other => *other = Some(k.to_vec()),
        }
    }
}

/// What the observer wants after an accepted step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop now (status `Stopped`).
    Stop,
}

/// Called after every accepted step (and at the start) with the system and the state.
pub trait Observer<T: Real, S: OdeSystem<T>> {
    /// Inspect the state; return `Control::Stop` to end the integration.
    fn on_step(&mut self, system: &S, state: &IntegratorState<T>) -> Control;
}

impl<T: Real, S: OdeSystem<T>> Observer<T, S> for () {
    fn on_step(&mut self, _: &S, _: &IntegratorState<T>) -> Control {
        Control::Continue
    }
}
