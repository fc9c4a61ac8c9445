//! Benchmarks of gradient descent's two costs on the side-by-side problem (Gaussian data, n = 20,
//! d = 4000, m = 16, leak 0.1, W0 entries N(0, 1/d), step size 0.05):
//!
//! - `gd steps`: 2000 steps B ← B + α c a φ'(P) in place (one 16×20×20 product each).
//! - `gd row`: the measurements of one trajectory row (`descent::measure`: margins, loss, the small
//!   representation W̃ and its singular values), at step 0, where W̃ ≈ W̃0 has nearly orthogonal
//!   rows and clustered singular values (the Gram-eigenvector start of the Jacobi SVD applies), and
//!   after 2000 steps.
//! - `singular values`: `linalg::singular_values` alone on the same two 16×36 matrices.
//!
//! Run: `cargo bench --bench gd`. The whole-process comparison with numpy is
//! `bash benches/compare/run.sh`.

use criterion::{criterion_group, criterion_main, Criterion};
use marginflow::descent::{self, step_inplace, DescentSettings, DescentWorkspace, Kernel};
use marginflow::model::data::{generate, DataKind, GenSettings};
use marginflow::model::network::{Init, ModelSettings, Network};
use marginflow_solvers::linalg;
use std::hint::black_box;

fn gd(c: &mut Criterion) {
    let (n, d, m) = (20, 4000, 16);
    let data = generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed: 1, ..Default::default() }).expect("data");
    let model = ModelSettings {
        width: m,
        leak: 0.1,
        init: Init::Scale(1.0 / (d as f64).sqrt()),
        seed: 3,
        ..Default::default()
    };
    let settings = DescentSettings { model: model.clone(), steps: 2000, ..Default::default() };
    let net: Network<f64> = Network::new(&data, &model, 53).expect("network");
    let act = settings.activation();
    let kern = Kernel::new(act, 53);
    let mut ws = DescentWorkspace::new(&net);
    let start = vec![0.0; m * n];
    let mut after = start.clone();
    for _ in 0..2000 {
        step_inplace(&net, &kern, &mut ws, &0.05, &mut after);
    }
    let mut g = c.benchmark_group("gd");
    g.bench_function("gd steps: 2000 steps n=20 d=4000 m=16", |bch| {
        bch.iter(|| {
            let mut b = start.clone();
            for _ in 0..2000 {
                step_inplace(&net, &kern, &mut ws, &0.05, &mut b);
            }
            black_box(b)
        })
    });
    for (label, b) in [("step 0", &start), ("step 2000", &after)] {
        g.bench_function(format!("gd row: measure at {label}"), |bch| {
            bch.iter(|| descent::measure(&net, act, black_box(b)).expect("measure"))
        });
        let w = net.small_weights(b);
        g.bench_function(format!("singular values: 16x36 W at {label}"), |bch| {
            bch.iter(|| linalg::singular_values(black_box(&w)).expect("svd"))
        });
    }
    g.finish();
}

criterion_group!(benches, gd);
criterion_main!(benches);
