//! Cross-checks of the flow engine against independent computations: a direct full-W
//! integration in natural time with the `ode_solvers` crate's Dopri5, finite differences of the
//! loss, a direct full-W evaluation of the span-reduced right-hand side, and the closed-form
//! velocity limit W*/‖W*‖² of the theory pattern.

use marginflow::flow::FlowSystem;
use marginflow::model::data::{generate, DataKind, Dataset, GenSettings};
use marginflow::model::network::{Init, ModelSettings, Network};
use marginflow_solvers::ode::{Horizon, IntegratorSettings, IntegratorState, OdeSystem};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::tableau::dopri5;
use ode_solvers::{DVector, Dopri5, OutputType, System};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

mod common;
use common::bin;

const N: usize = 20;
const D: usize = 4000;
const M: usize = 16;
const LEAK: f64 = 0.2;

fn gaussian(seed: u64) -> Dataset {
    generate(&GenSettings { kind: DataKind::Gaussian, n: N, d: D, seed, ..Default::default() }).unwrap()
}

/// W0 with entries N(0, 1/d): pre-activations ⟨w_j, x_i⟩ are O(1), so kinks are crossed.
fn unit_init(seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let s = 1.0 / (D as f64).sqrt();
    (0..M * D)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            s * z
        })
        .collect()
}

fn balanced() -> Vec<f64> {
    let c = 1.0 / (M as f64).sqrt();
    (0..M).map(|j| if j < M.div_ceil(2) { c } else { -c }).collect()
}

/// The full-W gradient flow in natural time, dW/dt = −∇L(W), L = (1/n) Σ log(1 + e^{−q_i}),
/// written directly on the m×d matrix (no span reduction), with φ'(z) = 1 for z > 0, γ otherwise.
struct FullW<'a> {
    x: &'a nalgebra::DMatrix<f64>, // n×d
    y: Vec<f64>,
    a: Vec<f64>,
}

impl FullW<'_> {
    fn gradient(&self, w: &nalgebra::DMatrix<f64>) -> nalgebra::DMatrix<f64> {
        let p = w * self.x.transpose(); // m×n
        let mut g = nalgebra::DMatrix::<f64>::zeros(M, N); // coefficients of x_i in row j
        for i in 0..N {
            let mut f = 0.0;
            for j in 0..M {
                let z = p[(j, i)];
                f += self.a[j] * if z > 0.0 { z } else { LEAK * z };
            }
            let q = self.y[i] * f;
            let dl = -1.0 / (1.0 + q.exp()); // ℓ'(q)
            for j in 0..M {
                let slope = if p[(j, i)] > 0.0 { 1.0 } else { LEAK };
                g[(j, i)] = dl * self.y[i] * self.a[j] * slope / N as f64;
            }
        }
        g * self.x
    }
}

impl System<f64, DVector<f64>> for FullW<'_> {
    fn system(&self, _t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        // Column-major m×d view of the flat state.
        let w = nalgebra::DMatrix::from_column_slice(M, D, y.as_slice());
        let g = self.gradient(&w);
        dy.copy_from_slice((-g).as_slice());
    }
}

fn write_data(dir: &Path, data: &Dataset) -> PathBuf {
    let p = dir.join("data.json");
    data.save(&p).unwrap();
    p
}

fn run_flow(args: &[&str]) -> serde_json::Value {
    let out = bin().arg("flow").args(args).arg("--json").output().unwrap();
    assert!(out.status.success(), "flow failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout holds only the summary JSON")
}

/// Our Dormand–Prince 5(4) in f64 on the span-reduced state (B, s) of dimension M·N + 1.
fn span_dopri5(rtol: f64, atol: f64) -> Integrator<f64> {
    Integrator::new(dopri5::<f64>(53), IntegratorSettings { rtol, atol, ..Default::default() }, M * N + 1, 53).unwrap()
}

/// `--data DATA --width 16 --leak 0.2` (the M, LEAK model on an N×D data file), then `extra`.
fn model_args<'a>(data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--data", data.to_str().unwrap(), "--width", "16", "--leak", "0.2"];
    args.extend(extra);
    args
}

/// The kink-crossing problem: `gaussian(3)` and W0 = `unit_init(11)` (O(1) pre-activations),
/// written to DIR/data.json and DIR/W0.npy.
struct KinkProblem {
    data: Dataset,
    w0: Vec<f64>,
    dpath: PathBuf,
    w0path: PathBuf,
}

impl KinkProblem {
    fn new(dir: &Path) -> Self {
        let data = gaussian(3);
        let dpath = write_data(dir, &data);
        let w0 = unit_init(11);
        let w0path = dir.join("W0.npy");
        marginflow::io::npy::write_npy(&w0path, &[M, D], &w0).unwrap();
        KinkProblem { data, w0, dpath, w0path }
    }

    /// `flow` from W0 to t = 5 at rtol 1e-11, atol 1e-13 with `extra` flags, W saved in OUT.
    fn run(&self, out: &Path, extra: &[&str]) -> serde_json::Value {
        let w0 = self.w0path.to_str().unwrap();
        let mut args = model_args(&self.dpath, &["--init-file", w0, "--until-time", "5"]);
        args.extend(["--rtol", "1e-11", "--atol", "1e-13"]);
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap(), "--save-weights"]);
        run_flow(&args)
    }
}

/// The `ode_solvers` crate's Dopri5 from `s0` to `s1` at rtol 1e-13, atol 1e-15 (Hairer's default
/// controller, no step-size cap, stiffness test off, per-step output), returning y(s1).
fn reference_dopri5<S: System<f64, DVector<f64>>>(
    sys: S,
    s0: f64,
    s1: f64,
    y0: DVector<f64>,
    max_steps: u32,
) -> DVector<f64> {
    let span = s1 - s0;
    let mut solver = Dopri5::from_param(
        sys,
        s0,
        s1,
        span,
        y0,
        1e-13,
        1e-15,
        0.9,
        0.04,
        0.2,
        10.0,
        span,
        0.0,
        max_steps,
        u32::MAX,
        OutputType::Sparse,
    );
    solver.integrate().expect("reference integration");
    assert_eq!(*solver.x_out().last().unwrap(), s1, "reference stopped early");
    solver.y_out().last().unwrap().clone()
}

#[test]
fn flow_matches_direct_full_w_integration_through_kinks() {
    let tmp = tempfile::tempdir().unwrap();
    let problem = KinkProblem::new(tmp.path());
    let (data, w0) = (&problem.data, &problem.w0);
    let out = tmp.path().join("run");
    let summary = problem.run(&out, &[]);
    assert_eq!(summary["status"], "reached");
    let events = summary["statistics"]["events"].as_u64().unwrap();
    assert!(events > 0, "the O(1) initialization must cross kinks");
    let log10_t = summary["log10_time"].as_f64().unwrap();
    assert!((log10_t - 5f64.log10()).abs() < 1e-12, "stopped at log10 t = {log10_t}");
    let (shape, w_flow) = marginflow::io::npy::read_npy(&out.join("W.npy")).unwrap();
    assert_eq!(shape, vec![M, D]);

    // Independent reference: full W, natural time, ode_solvers' Dopri5 at a tighter tolerance.
    let x = nalgebra::DMatrix::from_row_slice(N, D, &data.x);
    let sys = FullW { x: &x, y: data.y.clone(), a: balanced() };
    let w0m = nalgebra::DMatrix::from_row_slice(M, D, w0);
    let y0 = DVector::from_column_slice(w0m.as_slice());
    let y_end = reference_dopri5(sys, 0.0, 5.0, y0, 10_000_000);
    let w_ref = nalgebra::DMatrix::from_column_slice(M, D, y_end.as_slice());
    let w_ours = nalgebra::DMatrix::from_row_slice(M, D, &w_flow);
    let rel = (&w_ours - &w_ref).norm() / w_ref.norm();
    eprintln!("full-W check at t = 5: relative Frobenius difference {rel:e}, {events} kink events");
    assert!(rel < 1e-6, "relative difference {rel:e}");
}

/// The span-reduced right-hand side equals −∇ log L computed directly on the full W, and the
/// pre-activations P0 + B K equal W Xᵀ, at a random state.
#[test]
fn span_reduction_is_exact_and_gradient_matches_finite_differences() {
    let data = gaussian(5);
    let w0 = unit_init(7);
    let tmp = tempfile::tempdir().unwrap();
    let w0path = tmp.path().join("W0.npy");
    marginflow::io::npy::write_npy(&w0path, &[M, D], &w0).unwrap();
    let settings = ModelSettings { width: M, leak: LEAK, init: Init::File(w0path), ..Default::default() };
    let net: Network<f64> = Network::new(&data, &settings, 53).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let b: Vec<f64> = (0..M * N)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            1e-3 * z
        })
        .collect();
    let mut y = b.clone();
    y.push(0.0);
    let mut sys = FlowSystem::new(&net, &b);
    let mut dy = vec![0.0; M * N + 1];
    sys.eval_inplace(&0.0, &y, &mut dy);

    // Direct: W = W0 + B X, P = W Xᵀ.
    let x = nalgebra::DMatrix::from_row_slice(N, D, &data.x);
    let bm = nalgebra::DMatrix::from_row_slice(M, N, &b);
    let w = nalgebra::DMatrix::from_row_slice(M, D, &w0) + &bm * &x;
    let p_direct = &w * x.transpose();
    let mut p_span = vec![0.0; M * N];
    net.preactivations_inplace(&b, &mut p_span);
    let p_span = nalgebra::DMatrix::from_row_slice(M, N, &p_span);
    let prel = (&p_span - &p_direct).norm() / p_direct.norm();
    assert!(prel < 1e-13, "P0 + B K vs W Xᵀ: {prel:e}");

    // log L(W) directly, and −∇ log L by central differences along random directions.
    let log_loss = |w: &nalgebra::DMatrix<f64>| -> f64 {
        let p = w * x.transpose();
        let a = balanced();
        let mut l = 0.0;
        for i in 0..N {
            let f: f64 = (0..M).map(|j| a[j] * if p[(j, i)] > 0.0 { p[(j, i)] } else { LEAK * p[(j, i)] }).sum();
            l += (1.0 + (-data.y[i] * f).exp()).ln();
        }
        (l / N as f64).ln()
    };
    let vel = nalgebra::DMatrix::from_row_slice(M, N, &dy[..M * N]) * &x; // dW/ds = dB/ds X
    for trial in 0..3 {
        let dir = nalgebra::DMatrix::from_fn(M, D, |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z
        });
        let eps = 1e-6;
        let fd = (log_loss(&(&w + &dir * eps)) - log_loss(&(&w - &dir * eps))) / (2.0 * eps);
        let analytic = -vel.dot(&dir);
        let rel = (fd - analytic).abs() / analytic.abs();
        assert!(rel < 1e-6, "trial {trial}: finite difference {fd:e} vs {analytic:e}");
    }
    // The velocity lies in span(X) and equals −∇ log L computed in closed form on the full W.
    let p = &p_direct;
    let a = balanced();
    let mut loss_terms = [0.0; N];
    let mut dl = [0.0; N];
    for i in 0..N {
        let f: f64 = (0..M).map(|j| a[j] * if p[(j, i)] > 0.0 { p[(j, i)] } else { LEAK * p[(j, i)] }).sum();
        let q = data.y[i] * f;
        loss_terms[i] = (1.0 + (-q).exp()).ln();
        dl[i] = 1.0 / (1.0 + q.exp());
    }
    let total: f64 = loss_terms.iter().sum();
    let mut coef = nalgebra::DMatrix::<f64>::zeros(M, N);
    for i in 0..N {
        for j in 0..M {
            let slope = if p[(j, i)] > 0.0 { 1.0 } else { LEAK };
            coef[(j, i)] = a[j] * slope * data.y[i] * dl[i] / total;
        }
    }
    let direct_vel = coef * &x;
    let vrel = (&vel - &direct_vel).norm() / direct_vel.norm();
    assert!(vrel < 1e-13, "span velocity vs direct: {vrel:e}");
}

/// On a stretch without kinks (modes fixed at the start pattern), our Dormand–Prince and the
/// `ode_solvers` crate's agree on the span-reduced flow.
#[test]
fn integrator_agrees_with_ode_solvers_on_a_smooth_stretch() {
    let data = gaussian(8);
    let settings = ModelSettings { width: M, leak: LEAK, init: Init::Scale(1e-3), seed: 2, ..Default::default() };
    let net: Network<f64> = Network::new(&data, &settings, 53).unwrap();
    // Start from the state after a short flow, where the pattern has settled.
    let mut integ = span_dopri5(1e-12, 1e-14);
    let zero = vec![0.0; M * N];
    let mut sys = FlowSystem::new(&net, &zero);
    let mut st = IntegratorState::new(0.0, vec![0.0; M * N + 1]);
    integ.integrate(&mut sys, &mut st, &Horizon { s_end: Some(1.0), component_reaches: None }, &mut ());
    let start = st.y.clone();
    let modes = sys.modes.clone();

    // Ours, from s = 1 to 3 with events on (none should occur: the pattern is settled).
    let mut ours = FlowSystem::new(&net, &start[..M * N]);
    ours.modes = modes.clone();
    let mut integ = span_dopri5(1e-10, 1e-12);
    let mut st = IntegratorState::new(1.0, start.clone());
    integ.integrate(&mut ours, &mut st, &Horizon { s_end: Some(3.0), component_reaches: None }, &mut ());
    assert_eq!(st.stats.events, 0, "stretch must be smooth");

    // ode_solvers on the same right-hand side, tighter tolerance.
    struct Wrapped<'a>(std::cell::RefCell<FlowSystem<'a, f64>>);
    impl System<f64, DVector<f64>> for Wrapped<'_> {
        fn system(&self, s: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
            self.0.borrow_mut().eval_inplace(&s, y.as_slice(), dy.as_mut_slice());
        }
    }
    let mut theirs = FlowSystem::new(&net, &start[..M * N]);
    theirs.modes = modes;
    let reference =
        &reference_dopri5(Wrapped(std::cell::RefCell::new(theirs)), 1.0, 3.0, DVector::from_vec(start), 1_000_000);
    let num: f64 = st.y.iter().zip(reference.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let den: f64 = reference.iter().map(|b| b * b).sum::<f64>().sqrt();
    let rel = num / den;
    eprintln!("smooth stretch: relative difference to ode_solvers {rel:e}");
    assert!(rel < 1e-8, "relative difference {rel:e}");
}

/// From a small initialization, at t = 10^100 the velocity dW/ds points along the certified
/// theory-pattern max-margin solution W* = Σ λ_i y_i ∇f_i (M λ = 1) to 1e-9 in cosine.
#[test]
fn velocity_converges_to_max_margin_direction() {
    let tmp = tempfile::tempdir().unwrap();
    let dpath = write_data(tmp.path(), &gaussian(1));
    let summary = run_flow(&model_args(&dpath, &["--init-scale", "1e-3", "--until-log10-time", "100"]));
    assert_eq!(summary["status"], "reached");
    let r = &summary["reference"];
    assert_eq!(r["certified"], true, "{r}");
    let gap = r["velocity_gap"].as_f64().unwrap();
    assert!(gap < 1e-9, "1 − cos(velocity, W*) = {gap:e}");
    assert!(r["multiplier_error"].as_f64().unwrap() < 1e-6);
    assert!((summary["log10_time"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert_eq!(summary["pattern_agreement"], 1.0);
}

/// Events on and off integrate the same trajectory; events need fewer right-hand sides.
#[test]
fn events_on_and_off_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let problem = KinkProblem::new(tmp.path());
    let mut results = Vec::new();
    for ev in ["on", "off"] {
        let out = tmp.path().join(ev);
        let s = problem.run(&out, &["--events", ev]);
        let (_, w) = marginflow::io::npy::read_npy(&out.join("W.npy")).unwrap();
        eprintln!("events {ev}: {}", s["statistics"]);
        results.push(w);
    }
    let num: f64 = results[0].iter().zip(&results[1]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let den: f64 = results[0].iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(num / den < 1e-6, "events on vs off: {:e}", num / den);
}
