//! Benchmarks of the flow at f64 on seeded shared inputs (`marginflow::model::data::generate`, Gaussian
//! data, seed 1; W0 from `--init-scale`-style seeded initialization):
//!
//! - `flow step`: one accepted Dormand–Prince step (with kink-event checks) of the flow on
//!   n = 20, d = 4000, m = 16, from a state 30 steps into the run (events already crossing); at
//!   f64 and, with `--features mpfr`, at 128 and 256 bits.
//! - `flow to horizon`: the whole run `flow::run` to log10 t = 100 on small data
//!   (n = 10, d = 1000, m = 8), metrics and reference included, no files.
//! - `rhs vs gemm`: `FlowSystem::eval_inplace` against the bare m×n×n product `f64::gemm` of the
//!   same shape (B K, the one O(m n²) part of a right-hand side), for n = m = 64, n = m = 128 and
//!   n = 200, m = 256. The RHS target is within 3× of the product.
//!
//! Run: `cargo bench --bench flow` (add `-- 'rhs vs gemm'` to pick a group); the MPFR steps with
//! `CARGO_TARGET_DIR=/work/target-mpfr cargo bench --features mpfr --bench flow -- 'flow step'`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::{self, FlowHorizon, FlowObserver, FlowSettings, FlowSystem, TrajectoryRow};
use marginflow::model::data::{generate, DataKind, Dataset, GenSettings};
use marginflow::model::network::{Init, ModelSettings, Network};
use marginflow_solvers::ode::{Control, Horizon, IntegratorSettings, IntegratorState, Observer, OdeSystem};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::tableau::Method;
use marginflow_solvers::Real;
use std::hint::black_box;

fn dataset(n: usize, d: usize) -> Dataset {
    generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed: 1, ..Default::default() }).expect("data")
}

/// Width m, leak 0.1, W0 entries N(0, 1/d) (large enough that pre-activations cross zero).
fn model(m: usize, d: usize) -> ModelSettings {
    ModelSettings { width: m, leak: 0.1, init: Init::Scale(1.0 / (d as f64).sqrt()), seed: 3, ..Default::default() }
}

/// Stops after a given number of observer calls (the first call is at the start).
struct StopAfter(usize);

impl<T: Real, S: OdeSystem<T>> Observer<T, S> for StopAfter {
    fn on_step(&mut self, _: &S, _: &IntegratorState<T>) -> Control {
        if self.0 == 0 {
            return Control::Stop;
        }
        self.0 -= 1;
        Control::Continue
    }
}

/// One accepted Dormand–Prince step (rtol 1e-8) 30 steps into a run, at `prec` bits.
fn flow_step_at<T: Real>(c: &mut Criterion, prec: u32, label: &str) {
    let data = dataset(20, 4000);
    let net: Network<T> = Network::new(&data, &model(16, 4000), prec).expect("network");
    let mn = net.m * net.n;
    let settings = IntegratorSettings { rtol: 1e-8, atol: 1e-10, ..Default::default() };
    let mut integ =
        Integrator::new(Method::Dopri5.tableau::<T>(1e-8, prec), settings, mn + 1, prec).expect("integrator");
    let horizon = Horizon { s_end: Some(T::from_f64(1e6, prec)), component_reaches: None };
    // Warm-up: 30 accepted steps, so the step size and the modes are those of a live run.
    let mut state = IntegratorState::new(T::zero(prec), vec![T::zero(prec); mn + 1]);
    let mut sys = FlowSystem::new(&net, &state.y[..mn]);
    integ.integrate(&mut sys, &mut state, &horizon, &mut StopAfter(30));
    let (events0, s0) = (state.stats.events, state.s.to_f64());
    assert!(events0 > 0, "the warm-up should cross kinks (events {events0}, s {s0})");
    c.bench_function(&format!("flow step n=20 d=4000 m=16 {label}"), |b| {
        b.iter_batched(
            || (state.clone(), sys.clone()),
            |(mut st, mut sy)| {
                integ.integrate(&mut sy, &mut st, &horizon, &mut StopAfter(1));
                black_box(st.s.to_f64())
            },
            BatchSize::SmallInput,
        )
    });
}

fn flow_step(c: &mut Criterion) {
    flow_step_at::<f64>(c, 53, "f64");
    #[cfg(feature = "mpfr")]
    {
        flow_step_at::<rug::Float>(c, 128, "mpfr 128");
        flow_step_at::<rug::Float>(c, 256, "mpfr 256");
    }
}

/// Discards rows and checkpoints.
struct Quiet;

impl FlowObserver for Quiet {
    fn row(&mut self, _: &TrajectoryRow) -> marginflow::Result<()> {
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    fn checkpoint(&mut self, _: &Checkpoint) -> marginflow::Result<()> {
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        false
    }
}

fn flow_to_horizon(c: &mut Criterion) {
    let data = dataset(10, 1000);
    let settings = FlowSettings {
        model: model(8, 1000),
        horizon: FlowHorizon::Log10Time(100.0),
        rtol: 1e-10,
        atol: 1e-12,
        ..Default::default()
    };
    let mut g = c.benchmark_group("flow to horizon");
    g.sample_size(10);
    g.bench_function("log10 t = 100, n=10 d=1000 m=8", |b| {
        b.iter(|| {
            let out = flow::run(&data, &settings, None, false, &mut Quiet).expect("flow");
            black_box(out.summary.statistics.accepted)
        })
    });
    g.finish();
}

fn rhs_vs_gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("rhs vs gemm");
    for (n, m) in [(64usize, 64usize), (128, 128), (200, 256)] {
        let d = 4 * n;
        let data = dataset(n, d);
        let net: Network<f64> = Network::new(&data, &model(m, d), 53).expect("network");
        // A state in the middle of a run: B_ji = 0.1 sign(a_j) y_i (margins O(1), mixed signs of P).
        let mut y: Vec<f64> = Vec::with_capacity(m * n + 1);
        for j in 0..m {
            for i in 0..n {
                y.push(0.1 * net.a_f64[j].signum() * data.y[i]);
            }
        }
        y.push(1.0);
        let mut sys = FlowSystem::new(&net, &y[..m * n]);
        let mut dy = vec![0.0; m * n + 1];
        g.bench_function(format!("eval_inplace n={n} m={m}"), |b| {
            b.iter(|| sys.eval_inplace(black_box(&1.0), black_box(&y), &mut dy))
        });
        let bm = &y[..m * n];
        let mut p = vec![0.0; m * n];
        g.bench_function(format!("f64::gemm {m}x{n}x{n}"), |b| {
            b.iter(|| f64::gemm(m, n, n, black_box(bm), black_box(&net.k_mat.data), &mut p, false))
        });
    }
    g.finish();
}

criterion_group!(benches, flow_step, flow_to_horizon, rhs_vs_gemm);
criterion_main!(benches);
