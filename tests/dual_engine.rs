//! The dual engine against independent computations: the span engine on the same flow, the
//! queue's certified crossing times against brute-force evaluation of every entry, a crossing
//! and recrossing inside one step, and the dual max-margin solution against the primal QP.

use marginflow::flow::dual::rows::RowSet;
use marginflow::flow::dual::DualSystem;
use marginflow::flow::span::{FlowSystem, Mode};
use marginflow::flow::{self, Engine, FlowHorizon, FlowObserver, FlowSettings, TrajectoryRow};
use marginflow::maxmargin::{self, MaxMarginSettings};
#[allow(unused_imports)]
use marginflow::model::data::Dataset;
use marginflow::model::data::{generate, GenSettings};
use marginflow::model::network::{Init, ModelSettings, Network};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Quiet;
impl FlowObserver for Quiet {
    fn row(&mut self, _: &TrajectoryRow) -> marginflow::error::Result<()> {
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    fn checkpoint(&mut self, _: &marginflow::flow::checkpoint::Checkpoint) -> marginflow::error::Result<()> {
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        false
    }
}

fn data(n: usize, d: usize, seed: u64) -> marginflow::model::data::Dataset {
    generate(&GenSettings { n, d, seed, ..Default::default() }).unwrap()
}

/// The dual system at B = 0, Ω = 0, sides from the signs of P0 (as a fresh run starts).
fn system_at_start(net: &Network<f64>) -> DualSystem<'_, f64> {
    let (m, n) = (net.m, net.n);
    let b0 = vec![0.0; m * n];
    let span = FlowSystem::new(net, &b0);
    let rows = RowSet::new(net, &b0, span.modes.clone());
    DualSystem::new(net, rows, &vec![0.0; n], vec![0.0; n])
}

/// W of both engines at s-horizons, rtol 1e-12: the same flow to 1e-7 relative.
#[test]
fn dual_and_span_engines_integrate_the_same_flow() {
    let ds = data(20, 4000, 1);
    for horizon in [FlowHorizon::Time(1e-3), FlowHorizon::Time(1.0), FlowHorizon::Log10Time(10.0)] {
        let mut w = Vec::new();
        for engine in [Engine::Dual, Engine::Span] {
            let settings = FlowSettings {
                model: ModelSettings { width: 16, leak: 0.2, ..Default::default() },
                horizon,
                rtol: 1e-12,
                atol: 1e-14,
                engine,
                ..Default::default()
            };
            let out = flow::run(&ds, &settings, None, true, &mut Quiet).unwrap();
            assert_eq!(out.summary.status, flow::FlowStatus::Reached, "{engine:?} {horizon:?}");
            w.push(out.weights.unwrap());
        }
        let num: f64 = w[0].iter().zip(&w[1]).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        let den: f64 = w[1].iter().map(|a| a * a).sum::<f64>().sqrt();
        assert!(num / den < 1e-7, "{horizon:?}: dual vs span W differ by {:e} relative", num / den);
    }
}

/// Every entry whose key lies beyond its point's clock keeps its sign along 1,000 random
/// steps with ΔΩ ≥ 0 (any w ≥ 0, concentrated on a few points: the bound's worst case):
/// brute force over all entries.
#[test]
fn queue_bound_holds_against_brute_force() {
    let ds = data(12, 30, 5);
    let model = ModelSettings { width: 6, leak: 0.2, init: Init::Scale(0.5), seed: 3, ..Default::default() };
    let net: Network<f64> = Network::new(&ds, &model, 53).unwrap();
    let (m, n) = (net.m, net.n);
    let mut sys = system_at_start(&net);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut omega = vec![0.0; n];
    for j in 0..m {
        sys.schedule_row(j, &omega);
    }
    let pre = |sys: &DualSystem<'_, f64>, omega: &[f64]| -> Vec<f64> {
        let mut b = vec![0.0; m * n];
        sys.rows.b_at(&net, omega, &mut b);
        let mut p = vec![0.0; m * n];
        net.preactivations_inplace(&b, &mut p);
        p
    };
    let mut checked = 0;
    for _ in 0..1000 {
        let before = pre(&sys, &omega);
        let keys: Vec<(usize, f64)> = sys.queue.live();
        let ds_step: f64 = rng.random_range(1e-4..0.05);
        let mut w: Vec<f64> = (0..n).map(|_| rng.random::<f64>().powi(8)).collect();
        let sum: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= sum);
        for (o, wi) in omega.iter_mut().zip(&w) {
            *o += wi * ds_step;
        }
        let clocks = sys.clocks(&omega);
        let after = pre(&sys, &omega);
        for (k, key) in keys {
            if key > clocks[k % n] && sys.rows.modes[k] != Mode::Sliding {
                assert_eq!(before[k] > 0.0, after[k] > 0.0, "entry {k} crossed before its key {key}");
                checked += 1;
            }
        }
        // Reschedule every entry at the new point (the rows stay: the pattern is not followed
        // here, the bound holds for any sides).
        for j in 0..m {
            sys.schedule_row(j, &omega);
        }
    }
    assert!(checked > 1000, "only {checked} entries were certified");
}

/// An entry that crosses and comes back inside one step (same side at both ends) is caught,
/// with Ω nondecreasing as along the flow: Ω(θ) = f(θ) u + g(θ) v, u moving P_k down by 2P_k
/// during the first half and v moving it back up during the second (f, g smoothsteps).
#[test]
fn an_entry_crossing_twice_inside_one_step_is_caught() {
    let ds = data(6, 50, 2);
    let model = ModelSettings { width: 3, leak: 0.2, init: Init::Scale(0.3), seed: 1, ..Default::default() };
    let net: Network<f64> = Network::new(&ds, &model, 53).unwrap();
    let (m, n) = (net.m, net.n);
    let mut sys = system_at_start(&net);
    // ∂P_ji/∂Ω_l = a_j y_l σ_jl K_li; an entry with both signs among its gradients.
    let grad_of = |sys: &DualSystem<'_, f64>, k: usize| -> Vec<f64> {
        let (j, i) = (k / n, k % n);
        (0..n)
            .map(|l| {
                let sigma = if sys.rows.modes[j * n + l] == Mode::Positive { 1.0 } else { net.gamma };
                net.a[j] * net.y[l] * sigma * net.k_mat.at(l, i)
            })
            .collect()
    };
    let k = (0..m * n)
        .find(|&k| {
            let g = grad_of(&sys, k);
            sys.rows.modes[k] == Mode::Positive && g.iter().any(|&v| v < 0.0) && g.iter().any(|&v| v > 0.0)
        })
        .expect("an entry with gradients of both signs");
    let p0 = net.p0.data[k];
    let grad = grad_of(&sys, k);
    let down = (0..n).min_by(|&a, &b| grad[a].partial_cmp(&grad[b]).unwrap()).unwrap();
    let up = (0..n).max_by(|&a, &b| grad[a].partial_cmp(&grad[b]).unwrap()).unwrap();
    let (u, v) = (2.0 * p0 / -grad[down], 2.0 * p0 / grad[up]);
    let smooth = |x: f64| -> f64 {
        let x = x.clamp(0.0, 1.0);
        x * x * (3.0 - 2.0 * x)
    };
    let path = move |th: f64, out: &mut [f64]| {
        out.iter_mut().for_each(|o| *o = 0.0);
        out[down] += smooth(2.0 * th) * u;
        out[up] += smooth(2.0 * th - 1.0) * v;
    };
    let y0 = vec![0.0; n + 1];
    let mut y1 = vec![0.0; n + 1];
    path(1.0, &mut y1);
    let mut at = |_: &mut DualSystem<'_, f64>, th: &f64, out: &mut [f64]| path(*th, out);
    for jj in 0..m {
        sys.schedule_row(jj, &vec![0.0; n]);
    }
    let (mut due, mut crossed) = (Vec::new(), Vec::new());
    let end = sys.step_end(&mut at, &0.0, &y0, &1.0, &y1, None, true, &mut due, &mut crossed);
    match end {
        marginflow::flow::dual::events::StepEnd::Event { batch, s, .. } => {
            // Entry k's first root is at θ ≤ ½ (P_k falls from p0 to −p0 over [0, ½]); another
            // entry may cross first. No entry changes sign between the ends in k's place.
            assert!(!batch.is_empty() && s > 0.0 && s <= 0.5 + 1e-9, "θ = {s}");
        }
        _ => panic!("the double crossing of entry {k} was missed"),
    }
    let mut pend = vec![0.0; m * n];
    let mut b = vec![0.0; m * n];
    sys.rows.b_at(&net, &y1[..n], &mut b);
    net.preactivations_inplace(&b, &mut pend);
    assert!(pend[k] > 0.0, "entry {k} is on its side at the step's end");
}

/// The dual solution with n multipliers equals the primal pattern QP's (λ and W*).
#[test]
fn dual_max_margin_matches_the_primal_qp() {
    for (n, d, m, seed) in [(8, 400, 4, 1), (12, 60, 6, 2), (20, 4000, 16, 3)] {
        let ds = data(n, d, seed);
        let model = ModelSettings { width: m, leak: 0.2, ..Default::default() };
        let net: Network<f64> = Network::new(&ds, &model, 53).unwrap();
        let pattern = net.theory_pattern();
        let modes: Vec<Mode> = pattern.iter().map(|&s| if s > 0 { Mode::Positive } else { Mode::Negative }).collect();
        let primal = maxmargin::pattern_max_margin(&net, &pattern, &MaxMarginSettings::default()).unwrap();
        let dual = maxmargin::dual::dual_max_margin(&net, &modes, &MaxMarginSettings::default());
        match (primal.reference, dual) {
            (Some(p), Ok(q)) => {
                assert!(p.certified && q.certified, "n={n}: primal {:?} dual {:?}", p.failure, q.failure);
                let dl = p.multipliers.iter().zip(&q.multipliers).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                let lmax = p.multipliers.iter().fold(0.0f64, |a, b| a.max(b.abs()));
                assert!(dl <= 1e-9 * lmax, "n={n}: λ differ by {dl:e}");
                assert!((p.norm - q.norm).abs() <= 1e-9 * p.norm, "n={n}: ‖W*‖ {} vs {}", p.norm, q.norm);
            }
            (None, Err(_)) => {}
            (p, q) => panic!("n={n}: primal {:?} vs dual {:?}", p.map(|r| r.certified), q.map(|r| r.certified)),
        }
    }
}
