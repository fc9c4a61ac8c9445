//! One right-hand-side evaluation `FlowSystem::eval_inplace` of the flow in normalized time, at
//! f64 and (with `--features mpfr`) at 128 and 256 bits, on the tiny nearly-orthogonal set of
//! docs/precision.md (Gaussian, n = 6, d = 300, seed 1; width 4, leak 0.5), and on the flow
//! engine's reference size (Gaussian, n = 20, d = 4000; width 16, leak 0.2), where the m·n² product
//! rather than the n transcendental functions dominates.
//!
//! Run: `cargo bench --bench rhs` (f64 only) or
//! `CARGO_TARGET_DIR=/work/target-mpfr cargo bench --features mpfr --bench rhs`.
//!
//! Two states, the same at every precision: B_ji = c sign(a_j) y_i with c = 0.02 (margins
//! q_i ≈ 10, e^{−q} ≈ 1e-4: every log1p is a full evaluation) and c = 5 (q_i in the thousands,
//! the asymptotic regime).

use criterion::{criterion_group, criterion_main, Criterion};
use marginflow::flow::FlowSystem;
use marginflow::model::data::{generate, DataKind, GenSettings};
use marginflow::model::network::{ModelSettings, Network};
use marginflow_solvers::ode::OdeSystem;
use marginflow_solvers::Real;
use std::hint::black_box;

/// (n, d, width, leak) of a benchmark problem.
type Shape = (usize, usize, usize, f64);

fn bench_at<T: Real>(c: &mut Criterion, name: &str, prec: u32, scale: f64, shape: Shape) {
    let (n, d, width, leak) = shape;
    let data = generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed: 1, ..Default::default() }).expect("data");
    let model = ModelSettings { width, leak, ..Default::default() };
    let net: Network<T> = Network::new(&data, &model, prec).expect("network");
    let (m, n) = (net.m, net.n);
    // B_ji = c·sign(a_j) y_i: the theory pattern scaled.
    let mut y: Vec<T> = net.theory_pattern().iter().map(|&sji| T::from_f64(scale * f64::from(sji), prec)).collect();
    y.push(T::from_f64(3.0, prec));
    let mut sys = FlowSystem::new(&net, &y[..m * n]);
    let mut dy = vec![T::zero(prec); m * n + 1];
    let s = T::from_f64(1.0, prec);
    // Warm-up: the first call sizes nothing new (all buffers exist), but touch them anyway.
    sys.eval_inplace(&s, &y, &mut dy);
    c.bench_function(name, |b| b.iter(|| sys.eval_inplace(black_box(&s), black_box(&y), &mut dy)));
}

fn rhs(c: &mut Criterion) {
    let tiny: Shape = (6, 300, 4, 0.5);
    let reference: Shape = (20, 4000, 16, 0.2);
    for (size, shape) in [("n6m4", tiny), ("n20m16", reference)] {
        for (label, scale) in [("q~10", 0.02), ("q~1e3", 5.0)] {
            bench_at::<f64>(c, &format!("eval_inplace {size} {label} f64"), 53, scale, shape);
            #[cfg(feature = "mpfr")]
            {
                bench_at::<rug::Float>(c, &format!("eval_inplace {size} {label} mpfr 128"), 128, scale, shape);
                bench_at::<rug::Float>(c, &format!("eval_inplace {size} {label} mpfr 256"), 256, scale, shape);
            }
        }
    }
}

criterion_group!(benches, rhs);
criterion_main!(benches);
