//! Benchmarks of the max-margin reference at f64 on seeded shared inputs (Gaussian data from
//! `marginflow::data::generate`, seed 1; n = 20, d = 4000, width m = 16, leak 0.1):
//!
//! - `theory_reference`: the certified theory-pattern solution as the flow computes it (closed
//!   form when it certifies, else the QP).
//! - `pattern_max_margin`: the QP on the theory pattern S_ji = sign(a_j) y_i (clarabel, polish,
//!   active-set refinement, certificate), always through the QP.
//! - `network setup`: `Network::new` (Gram matrix, P0, the QR of [Xᵀ | W0ᵀ]) that both need.
//!
//! Run: `cargo bench --bench maxmargin`.

use criterion::{criterion_group, criterion_main, Criterion};
use marginflow::data::{generate, DataKind, GenSettings};
use marginflow::maxmargin::{pattern_max_margin, theory_reference, MaxMarginSettings};
use marginflow::network::{ModelSettings, Network};
use std::hint::black_box;

fn maxmargin(c: &mut Criterion) {
    let data = generate(&GenSettings { kind: DataKind::Gaussian, n: 20, d: 4000, seed: 1, ..Default::default() })
        .expect("data");
    let model = ModelSettings { width: 16, leak: 0.1, ..Default::default() };
    let net: Network<f64> = Network::new(&data, &model, 53).expect("network");
    let pattern = net.theory_pattern();
    let settings = MaxMarginSettings::default();
    // Both must succeed and certify on this nearly-orthogonal set, or the timing means nothing.
    assert!(theory_reference(&net).expect("reference").certified, "theory reference not certified");
    let out = pattern_max_margin(&net, &pattern, &settings).expect("qp");
    assert!(out.reference.as_ref().is_some_and(|r| r.certified), "pattern QP not certified: {:?}", out.failure);

    let mut g = c.benchmark_group("maxmargin n=20 d=4000 m=16");
    g.bench_function("theory_reference", |b| {
        b.iter(|| black_box(theory_reference(black_box(&net)).expect("reference")))
    });
    g.bench_function("pattern_max_margin (QP)", |b| {
        b.iter(|| black_box(pattern_max_margin(black_box(&net), &pattern, &settings).expect("qp")))
    });
    g.sample_size(10);
    g.bench_function("network setup", |b| {
        b.iter(|| black_box(Network::<f64>::new(&data, &model, 53).expect("network")))
    });
    g.finish();
}

criterion_group!(benches, maxmargin);
criterion_main!(benches);
