//! Full-batch gradient descent on the span-reduced network.
//!
//! With the mean loss L(W) = (1/n) Σ_i ℓ(q_i), q_i = y_i Σ_j a_j φ(⟨w_j, x_i⟩), the gradient row
//! is ∇_{w_j} L = (1/n) Σ_i ℓ'(q_i) y_i a_j φ'(P_ji) x_i, a combination of the data. So W = W0 + B X
//! stays exact under W ← W − α∇L(W), and the step acts on B ∈ R^{m×n} alone:
//!
//!   B_ji ← B_ji + α c_i a_j φ'(P_ji),   c_i = (1/n) (−ℓ'(q_i)) y_i,   P = P0 + B K,
//!
//! (ℓ' < 0, so c_i has the sign of y_i). One step costs one m×n×n product B K plus O(mn) work,
//! independent of d, and runs in preallocated buffers ([`DescentWorkspace`]).
//!
//! Frei et al. (ICLR 2023, Thm. 4.2) show that from a small initialization on nearly-orthogonal
//! data one step of GD with the H-smooth leaky ReLU drops the stable rank ‖W‖_F²/‖W‖_2² to a
//! constant (the first step is W0 + α/(2n) Σ_i y_i diag(a ⊙ φ'(P0_{·i})) 1 x_iᵀ, whose rows all
//! lie near the same few directions), and that it stays low. [`NaturalFlow`] is the gradient flow
//! dB/dt = −∇_B L in natural time t that GD approximates with error O(α) at t = kα.
//!
//! Imports go one way: `summary` (the typed rows and summary) ← this file (the steps, the
//! natural flow, the run); from outside only `model`, `metrics` and `error`.

use crate::error::{Error, Result};
use crate::metrics::{self, list_fields, num_fields, Shape, StateMetrics, StateNumbers};
use crate::model::activation::Activation;
use crate::model::data::Dataset;
use crate::model::network::{ModelSettings, Network};
use marginflow_solvers::ode::{OdeSystem, Switching};
use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};

pub mod summary;
pub use summary::{DescentEnd, DescentRow, DescentSummary};

/// The activation gradient descent uses (its leak is the model's `leak`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DescentActivation {
    /// Leaky ReLU φ(z) = max(z, γz) (φ'(0) taken as 1).
    Leaky,
    /// The H-smooth leaky ReLU of [`Activation::Smooth`].
    Smooth {
        /// The smoothness H > 0.
        smoothness: f64,
    },
}

/// Settings of a gradient-descent run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescentSettings {
    /// The model (width, leak, outer layer, initialization, seed, loss).
    pub model: ModelSettings,
    /// Activation (default: leaky).
    pub activation: DescentActivation,
    /// Step size α > 0 (default: 0.05).
    pub step_size: f64,
    /// Number of steps T (default: 1000).
    pub steps: u64,
    /// Working precision in bits; 53 is f64 (default: 53).
    pub precision: u32,
    /// Every step up to this one gets a trajectory row (default: 100).
    pub dense_rows: u64,
    /// Trajectory rows per decade of steps after `dense_rows` (default: 20).
    pub rows_per_decade: u32,
}

impl Default for DescentSettings {
    fn default() -> Self {
        DescentSettings {
            model: ModelSettings::default(),
            activation: DescentActivation::Leaky,
            step_size: 0.05,
            steps: 1000,
            precision: 53,
            dense_rows: 100,
            rows_per_decade: 20,
        }
    }
}

impl DescentSettings {
    /// Check all ranges, naming the flag at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return Err(Error::setting("step_size", format!("must be finite and > 0, got {}", self.step_size)));
        }
        if let DescentActivation::Smooth { smoothness } = self.activation {
            if !(smoothness > 0.0 && smoothness.is_finite()) {
                return Err(Error::setting("smoothness", format!("must be finite and > 0, got {smoothness}")));
            }
        }
        if self.precision < 53 || (self.precision > 53 && self.precision < 64) {
            return Err(Error::setting(
                "precision",
                format!("must be 53 (f64) or at least 64 bits, got {}", self.precision),
            ));
        }
        if !marginflow_solvers::Precision::from_bits(self.precision).available() {
            return Err(Error::setting(
                "precision",
                format!("{} bits needs the MPFR build (53, 106 and 212 are built in)", self.precision),
            ));
        }
        if self.rows_per_decade == 0 {
            return Err(Error::setting("rows_per_decade", "must be at least 1"));
        }
        Ok(())
    }

    /// The activation with the model's leak.
    pub fn activation(&self) -> Activation {
        match self.activation {
            DescentActivation::Leaky => Activation::Leaky { gamma: self.model.leak },
            DescentActivation::Smooth { smoothness } => Activation::Smooth { gamma: self.model.leak, h: smoothness },
        }
    }

    /// The steps that get a trajectory row: 0..=min(dense_rows, steps), then the first step at or
    /// after each 10^(log10(dense_rows) + k/rows_per_decade), and always the last step.
    pub fn row_steps(&self) -> Vec<u64> {
        let dense = self.dense_rows.min(self.steps);
        let mut v: Vec<u64> = (0..=dense).collect();
        let base = (self.dense_rows.max(1) as f64).log10();
        let mut k = 1u32;
        loop {
            let s = 10f64.powf(base + k as f64 / self.rows_per_decade as f64).ceil() as u64;
            if s >= self.steps {
                break;
            }
            if s > *v.last().unwrap_or(&0) {
                v.push(s);
            }
            k += 1;
        }
        if *v.last().unwrap_or(&0) != self.steps {
            v.push(self.steps);
        }
        v
    }
}

/// φ and φ' with their constants precomputed at the working precision (no allocation per call
/// for `f64`).
#[derive(Clone, Debug)]
pub struct Kernel<T> {
    smooth: bool,
    gamma: T,
    zero: T,
    one: T,
    inv_h: T,
    neg_inv_h: T,
    /// (1−γ)/(4H).
    shift: T,
    /// (1−γ)H/4.
    quad: T,
    /// (1+γ)/2.
    lin: T,
    /// (1−γ)H/2.
    slope: T,
}

impl<T: Real> Kernel<T> {
    /// Constants of `act` at `prec` bits.
    pub fn new(act: Activation, prec: u32) -> Self {
        let g = T::from_f64(act.gamma(), prec);
        let one = T::one(prec);
        let (smooth, h) = match act {
            Activation::Leaky { .. } => (false, T::one(prec)),
            Activation::Smooth { h, .. } => (true, T::from_f64(h, prec)),
        };
        let four = T::from_f64(4.0, prec);
        let two = T::from_f64(2.0, prec);
        let one_m_g = one.clone() - &g;
        Kernel {
            smooth,
            inv_h: one.clone() / &h,
            neg_inv_h: -(one.clone() / &h),
            shift: one_m_g.clone() / &(h.clone() * &four),
            quad: one_m_g.clone() * &h / &four,
            lin: (one.clone() + &g) / &two,
            slope: one_m_g * &h / &two,
            gamma: g,
            zero: T::zero(prec),
            one,
        }
    }

    /// out ← φ(z).
    #[inline]
    pub fn value_into(&self, z: &T, out: &mut T) {
        if !self.smooth {
            out.assign(z);
            if z.is_sign_negative() {
                *out *= &self.gamma;
            }
        } else if *z >= self.inv_h {
            out.assign(z);
            *out -= &self.shift;
        } else if *z <= self.neg_inv_h {
            out.assign(z);
            *out *= &self.gamma;
            *out -= &self.shift;
        } else {
            // (quad z + lin) z
            out.assign(&self.lin);
            out.add_mul_mut(&self.quad, z);
            *out *= z;
        }
    }

    /// out ← φ'(z) (leaky: 1 at z = 0).
    #[inline]
    pub fn derivative_into(&self, z: &T, out: &mut T) {
        if !self.smooth {
            let neg = *z < self.zero;
            out.assign(if neg { &self.gamma } else { &self.one });
        } else if *z >= self.inv_h {
            out.assign(&self.one);
        } else if *z <= self.neg_inv_h {
            out.assign(&self.gamma);
        } else {
            out.assign(&self.lin);
            out.add_mul_mut(&self.slope, z);
        }
    }
}

/// Buffers of one gradient evaluation, allocated once.
#[derive(Clone, Debug)]
pub struct DescentWorkspace<T> {
    /// Pre-activations P = P0 + B K (m×n).
    pub p: Vec<T>,
    /// Margins q_i.
    pub q: Vec<T>,
    /// c_i = (1/n)(−ℓ'(q_i)) y_i.
    pub c: Vec<T>,
    tmp: T,
    tmp2: T,
    inv_n: T,
}

impl<T: Real> DescentWorkspace<T> {
    /// Buffers for `net`.
    pub fn new(net: &Network<T>) -> Self {
        let p = net.prec;
        DescentWorkspace {
            p: vec![T::zero(p); net.m * net.n],
            q: vec![T::zero(p); net.n],
            c: vec![T::zero(p); net.n],
            tmp: T::zero(p),
            tmp2: T::zero(p),
            inv_n: T::one(p) / &T::from_f64(net.n as f64, p),
        }
    }
}

/// Margins q_i = y_i Σ_j a_j φ(P_ji) at the pre-activations in `ws.p` into `ws.q`.
fn margins_into<T: Real>(net: &Network<T>, kern: &Kernel<T>, ws: &mut DescentWorkspace<T>) {
    let n = net.n;
    for q in ws.q.iter_mut() {
        q.assign_f64(0.0);
    }
    for j in 0..net.m {
        let row = &ws.p[j * n..(j + 1) * n];
        for (i, z) in row.iter().enumerate() {
            kern.value_into(z, &mut ws.tmp);
            ws.q[i].add_mul_mut(&net.a[j], &ws.tmp);
        }
    }
    for (q, y) in ws.q.iter_mut().zip(&net.y) {
        *q *= y;
    }
}

/// With P = P0 + B K already in `ws.p`: margins q, coefficients c_i = (1/n)(−ℓ'(q_i)) y_i
/// (times `scale` when given), then `apply(j·n + i, φ'(P_ji), c_i a_j)` for every (j, i).
fn for_each_gradient_term<T: Real>(
    net: &Network<T>,
    kern: &Kernel<T>,
    ws: &mut DescentWorkspace<T>,
    scale: Option<&T>,
    mut apply: impl FnMut(usize, &T, &T),
) {
    margins_into(net, kern, ws);
    coefficients(net, ws);
    if let Some(scale) = scale {
        for c in ws.c.iter_mut() {
            *c *= scale;
        }
    }
    let n = net.n;
    for j in 0..net.m {
        for i in 0..n {
            let idx = j * n + i;
            kern.derivative_into(&ws.p[idx], &mut ws.tmp);
            ws.tmp2.assign(&ws.c[i]);
            ws.tmp2 *= &net.a[j];
            apply(idx, &ws.tmp, &ws.tmp2);
        }
    }
}

/// Natural-time gradient G = −∇_B L (m×n): G_ji = c_i a_j φ'(P_ji) with c_i = (1/n)(−ℓ'(q_i)) y_i,
/// evaluated at coefficients `b` into `g` (allocation-free for `f64`).
pub fn neg_gradient_inplace<T: Real>(
    net: &Network<T>,
    kern: &Kernel<T>,
    ws: &mut DescentWorkspace<T>,
    b: &[T],
    g: &mut [T],
) {
    net.preactivations_inplace(b, &mut ws.p);
    for_each_gradient_term(net, kern, ws, None, |idx, dphi, ca| {
        g[idx].assign(dphi);
        g[idx] *= ca;
    });
}

fn coefficients<T: Real>(net: &Network<T>, ws: &mut DescentWorkspace<T>) {
    for i in 0..net.n {
        let mut ci = net.loss.neg_derivative(&ws.q[i]);
        ci *= &ws.inv_n;
        ci *= &net.y[i];
        ws.c[i] = ci;
    }
}

/// One GD step B ← B − α ∇_B L(B) in place (α = `step_size`).
pub fn step_inplace<T: Real>(
    net: &Network<T>,
    kern: &Kernel<T>,
    ws: &mut DescentWorkspace<T>,
    step_size: &T,
    b: &mut [T],
) {
    net.preactivations_inplace(b, &mut ws.p);
    for_each_gradient_term(net, kern, ws, Some(step_size), |idx, dphi, ca| b[idx].add_mul_mut(dphi, ca));
}

/// Gradient flow dB/dt = −∇_B L in natural time t (the continuous limit of GD: W_GD(k) is
/// within O(α) of W_GF(kα) for a smooth activation).
pub struct NaturalFlow<'a, T> {
    net: &'a Network<T>,
    kern: Kernel<T>,
    ws: DescentWorkspace<T>,
}

impl<'a, T: Real> NaturalFlow<'a, T> {
    /// The flow of `net` with activation `act`.
    pub fn new(net: &'a Network<T>, act: Activation) -> Self {
        NaturalFlow { net, kern: Kernel::new(act, net.prec), ws: DescentWorkspace::new(net) }
    }
}

impl<T: Real> OdeSystem<T> for NaturalFlow<'_, T> {
    fn dim(&self) -> usize {
        self.net.m * self.net.n
    }
    fn eval_inplace(&mut self, _t: &T, y: &[T], dy: &mut [T]) {
        neg_gradient_inplace(self.net, &self.kern, &mut self.ws, y, dy);
    }
}

/// The natural-time flow locates no switching events: activation slopes follow the live signs.
impl<T: Real> Switching<T> for NaturalFlow<'_, T> {}

/// Measure the state with coefficients `b` under activation `act` (margins from the run's kernel
/// φ; the rest as [`metrics::measure_with`]).
pub fn measure<T: Real>(net: &Network<T>, act: Activation, b: &[T]) -> Result<StateMetrics<T>> {
    let kern = Kernel::new(act, net.prec);
    let mut ws = DescentWorkspace::new(net);
    net.preactivations_inplace(b, &mut ws.p);
    margins_into(net, &kern, &mut ws);
    metrics::measure_with(net, b, &ws.p, ws.q)
}

/// How a descent run ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DescentStatus {
    /// All steps were taken.
    Completed,
    /// The observer asked to stop after this many steps.
    Stopped {
        /// Steps taken.
        step: u64,
    },
    /// A coefficient became non-finite or exceeded [`DIVERGENCE_BOUND`] in magnitude at this step
    /// (step size too large); the outcome describes the state before it.
    Diverged {
        /// The first step whose result diverged.
        step: u64,
    },
}

/// |B_ji| above this counts as divergence: squared norms of such weights would overflow f64.
pub const DIVERGENCE_BOUND: f64 = 1e150;

/// What the caller of [`run`] does with trajectory rows and stop requests.
pub trait DescentObserver {
    /// A trajectory row was produced.
    fn row(&mut self, row: &DescentRow) -> Result<()>;
    /// Whether the run should stop now (checked at every row).
    fn stop_requested(&mut self) -> bool {
        marginflow_solvers::interrupt::requested()
    }
}

/// Collects rows in memory.
impl DescentObserver for Vec<DescentRow> {
    fn row(&mut self, row: &DescentRow) -> Result<()> {
        self.push(row.clone());
        Ok(())
    }
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct DescentOutcome {
    /// How it ended.
    pub status: DescentStatus,
    /// summary.json (field names as for `flow`, plus `step`, `step_size`, `loss`,
    /// `initial_stable_rank`).
    pub summary: DescentSummary,
    /// Final W (m×d, f64), when requested.
    pub weights: Option<Vec<f64>>,
    /// Final span coefficients B (m×n, f64).
    pub coefficients: Vec<f64>,
}

/// The row of the state after `step` steps.
fn row_of<T: Real>(step: u64, sm: &StateMetrics<T>) -> DescentRow {
    let (loss, loss_decimal) = num_fields(&sm.log_loss.exp());
    DescentRow { step, loss, loss_decimal, state: StateNumbers::of(sm) }
}

/// Run gradient descent on `data` at the settings' precision.
pub fn run(
    data: &Dataset,
    settings: &DescentSettings,
    want_weights: bool,
    obs: &mut dyn DescentObserver,
) -> Result<DescentOutcome> {
    settings.validate()?;
    crate::with_real!(settings.precision, T => run_at::<T>(data, settings, want_weights, obs),
        missing => unreachable!("validate() rejects MPFR precisions without the mpfr feature"))
}

/// Measure queued rows `(index, B)` until the queue is closed and empty, sending each result.
fn measure_queued<T: Real>(
    net: &Network<T>,
    act: Activation,
    jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<(usize, Vec<T>)>>,
    done: &std::sync::mpsc::Sender<(usize, Result<StateMetrics<T>>)>,
) {
    loop {
        // A poisoned lock means the other measuring thread panicked; the scope re-raises that.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((index, b)) = job else { return };
        if done.send((index, measure(net, act, &b))).is_err() {
            return;
        }
    }
}

/// Hands measured rows to the observer in step order.
struct RowEmitter<T> {
    /// Step of each queued row, in queue order.
    steps: Vec<u64>,
    /// Measured rows not yet emitted.
    ready: Vec<Option<Result<StateMetrics<T>>>>,
    /// Index of the next row to emit.
    next: usize,
    /// Stable rank of the row at step 0.
    initial_stable_rank: Option<(Option<f64>, Option<String>)>,
    /// Step and metrics of the last row emitted.
    last: Option<(u64, StateMetrics<T>)>,
}

impl<T: Real> RowEmitter<T> {
    /// Emit every row whose predecessors are all emitted; with `all`, wait for every queued row.
    /// The first measurement error in step order is returned as the run's error.
    fn emit_ready(
        &mut self,
        done: &std::sync::mpsc::Receiver<(usize, Result<StateMetrics<T>>)>,
        obs: &mut dyn DescentObserver,
        all: bool,
    ) -> Result<()> {
        loop {
            while let Some(slot) = self.ready.get_mut(self.next) {
                let Some(result) = slot.take() else { break };
                let sm = result?;
                let step = self.steps[self.next];
                self.next += 1;
                if step == 0 {
                    self.initial_stable_rank = Some(num_fields(&sm.stable_rank));
                }
                obs.row(&row_of(step, &sm))?;
                self.last = Some((step, sm));
            }
            if self.next == self.ready.len() {
                return Ok(());
            }
            let (index, result) = if all {
                // Fails only when every sender is gone with rows missing: the worker panicked,
                // and the enclosing thread scope re-raises that panic.
                done.recv().expect("row measurement thread panicked")
            } else {
                match done.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            };
            self.ready[index] = Some(result);
        }
    }
}

/// Run gradient descent at precision `T` (settings validated by [`run`]).
pub fn run_at<T: Real>(
    data: &Dataset,
    settings: &DescentSettings,
    want_weights: bool,
    obs: &mut dyn DescentObserver,
) -> Result<DescentOutcome> {
    let prec = settings.precision;
    let net: Network<T> = Network::new(data, &settings.model, prec)?;
    let act = settings.activation();
    let kern = Kernel::new(act, prec);
    let mut ws = DescentWorkspace::new(&net);
    let alpha = T::from_f64(settings.step_size, prec);
    let mut b = vec![T::zero(prec); net.m * net.n];
    let rows = settings.row_steps();
    let mut next_row = 0usize;
    let mut status = DescentStatus::Completed;
    let mut previous = b.clone();
    let mut step = 0u64;
    // Trajectory rows are measured (an SVD each, the bulk of a run's work at small n and m) on a
    // second thread while this one keeps stepping; once the steps are done this thread takes its
    // share of the rows still queued. Rows reach the observer in step order, each measured from
    // the same B with the same code as before, so the results do not depend on the schedule.
    let jobs_tx_rx = std::sync::mpsc::channel::<(usize, Vec<T>)>();
    let (jobs_tx, jobs_rx) = (Some(jobs_tx_rx.0), std::sync::Mutex::new(jobs_tx_rx.1));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, Result<StateMetrics<T>>)>();
    let mut emitter =
        RowEmitter { steps: Vec::new(), ready: Vec::new(), next: 0, initial_stable_rank: None, last: None };
    let main_tx = done_tx.clone();
    std::thread::scope(|scope| -> Result<()> {
        let (net, jobs_rx) = (&net, &jobs_rx);
        scope.spawn(move || measure_queued(net, act, jobs_rx, &done_tx));
        let mut jobs_tx = jobs_tx;
        loop {
            if next_row < rows.len() && rows[next_row] == step {
                next_row += 1;
                emitter.steps.push(step);
                emitter.ready.push(None);
                let tx = jobs_tx.as_ref().expect("open while stepping");
                // The receiver outlives this scope, so sending cannot fail.
                tx.send((emitter.steps.len() - 1, b.clone())).expect("row queue open");
                emitter.emit_ready(&done_rx, obs, false)?;
                if obs.stop_requested() && step < settings.steps {
                    status = DescentStatus::Stopped { step };
                    break;
                }
            }
            if step >= settings.steps {
                break;
            }
            previous.clone_from_slice(&b);
            step_inplace(net, &kern, &mut ws, &alpha, &mut b);
            if b.iter().any(|v| !v.is_finite() || v.abs().to_f64() > DIVERGENCE_BOUND) {
                // Report the last good state (step size too large for the loss scale).
                status = DescentStatus::Diverged { step: step + 1 };
                b.clone_from_slice(&previous);
                break;
            }
            step += 1;
        }
        // No more rows: this thread measures queued rows beside the worker, then emits the rest.
        drop(jobs_tx.take());
        measure_queued(net, act, jobs_rx, &main_tx);
        drop(main_tx);
        emitter.emit_ready(&done_rx, obs, true)
    })?;
    let initial_stable_rank = emitter.initial_stable_rank;
    // The final state is the last row's state unless the run diverged between rows.
    let sm = match emitter.last {
        Some((row_step, sm)) if row_step == step => sm,
        _ => measure(&net, act, &b)?,
    };
    let status_str = match &status {
        DescentStatus::Completed => DescentEnd::Completed,
        DescentStatus::Stopped { .. } => DescentEnd::Interrupted,
        DescentStatus::Diverged { .. } => DescentEnd::Diverged,
    };
    let status_detail = match &status {
        DescentStatus::Diverged { step } => Some(format!(
            "coefficients non-finite or above {DIVERGENCE_BOUND:e} at step {step}; state of step {}",
            step - 1
        )),
        _ => None,
    };
    // A non-finite initial stable rank is left out, as a missing one (the row at step 0 is always
    // measured, and W(0) is finite).
    let (initial_stable_rank, initial_stable_rank_decimal) = initial_stable_rank.unwrap_or((None, None));
    let (loss_weights, loss_weights_decimal) = list_fields(&sm.loss_weights);
    // L < log(2)/n forces every margin positive (as in `flow`).
    let interpolated = sm.log10_loss.to_f64() < (2f64.ln() / net.n as f64).log10();
    let summary = DescentSummary {
        status: status_str,
        status_detail,
        last: row_of(step, &sm),
        step_size: settings.step_size,
        initial_stable_rank,
        initial_stable_rank_decimal,
        loss_weights,
        loss_weights_decimal,
        interpolated,
        settings: settings.clone(),
        precision_bits: prec,
        arithmetic: marginflow_solvers::Precision::from_bits(prec).arithmetic().to_string(),
        shape: Shape { n: net.n, d: net.d, m: net.m },
    };
    let weights = if want_weights { Some(net.full_weights(data, &b)?) } else { None };
    Ok(DescentOutcome { status, summary, weights, coefficients: b.iter().map(|v| v.to_f64()).collect() })
}
