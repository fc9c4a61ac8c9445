//! Benchmarks of the max-margin reference at f64 (and, with `--features mpfr`, at 128 and 256
//! bits) on seeded shared inputs (Gaussian data from
//! `marginflow::model::data::generate`, seed 1; n = 20, d = 4000, width m = 16, leak 0.1):
//!
//! - `theory_reference`: the certified theory-pattern solution as the flow computes it (closed
//!   form when it certifies, else the QP).
//! - `pattern_max_margin`: the QP on the theory pattern S_ji = sign(a_j) y_i (clarabel, polish,
//!   active-set refinement, certificate), always through the QP.
//! - `network setup`: `Network::new` (Gram matrix, P0, the QR of [Xᵀ | W0ᵀ]) that both need.
//!
//! Run: `cargo bench --bench maxmargin`, or with the MPFR variants
//! `CARGO_TARGET_DIR=/work/target-mpfr cargo bench --features mpfr --bench maxmargin`.

use criterion::{criterion_group, criterion_main, Criterion};
use marginflow::maxmargin::{pattern_max_margin, theory_reference, MaxMarginSettings};
use marginflow::model::data::{generate, DataKind, Dataset, GenSettings};
use marginflow::model::network::{ModelSettings, Network};
use marginflow_solvers::Real;
use std::hint::black_box;

fn bench_at<T: Real>(c: &mut Criterion, data: &Dataset, model: &ModelSettings, prec: u32, label: &str) {
    let net: Network<T> = Network::new(data, model, prec).expect("network");
    let pattern = net.theory_pattern();
    let settings = MaxMarginSettings::default();
    // Both must succeed and certify on this nearly-orthogonal set, or the timing means nothing.
    assert!(theory_reference(&net).expect("reference").certified, "theory reference not certified ({label})");
    let out = pattern_max_margin(&net, &pattern, &settings).expect("qp");
    assert!(out.reference.as_ref().is_some_and(|r| r.certified), "pattern QP not certified: {:?}", out.failure);

    let mut g = c.benchmark_group(format!("maxmargin n=20 d=4000 m=16 {label}"));
    g.bench_function("theory_reference", |b| {
        b.iter(|| black_box(theory_reference(black_box(&net)).expect("reference")))
    });
    g.bench_function("pattern_max_margin (QP)", |b| {
        b.iter(|| black_box(pattern_max_margin(black_box(&net), &pattern, &settings).expect("qp")))
    });
    g.sample_size(10);
    g.bench_function("network setup", |b| b.iter(|| black_box(Network::<T>::new(data, model, prec).expect("network"))));
    g.finish();
}

fn maxmargin(c: &mut Criterion) {
    let data = generate(&GenSettings { kind: DataKind::Gaussian, n: 20, d: 4000, seed: 1, ..Default::default() })
        .expect("data");
    let model = ModelSettings { width: 16, leak: 0.1, ..Default::default() };
    bench_at::<f64>(c, &data, &model, 53, "f64");
    #[cfg(feature = "mpfr")]
    {
        bench_at::<rug::Float>(c, &data, &model, 128, "mpfr 128");
        bench_at::<rug::Float>(c, &data, &model, 256, "mpfr 256");
    }
}

criterion_group!(benches, maxmargin);
criterion_main!(benches);
