//! Soak test of odd data (issue 23 item 7): a seeded generator of small problems that mix
//! duplicate points (same and opposite labels), collinear and rank-deficient data (n > d), a
//! zero feature vector, norms from 1e-6 to 1e6, m = 1 and odd m, γ near 0.01 and 0.99,
//! exponential and logistic loss, non-separable labels, events off, both engines, 53 and 106
//! bits. Every run must end within its budget (the observer stops it after `BUDGET_SECONDS`,
//! status `interrupted`, counted apart) with a documented status or a typed error, no panic,
//! finite numbers where the summary claims them, and a summary that serializes and parses.
//!
//! `SOAK_RUNS` (default 40, the CI size) sets the number of problems and `SOAK_SEED` the seed;
//! `benches/soak/run.sh` runs 300 and prints the counts per status.

use marginflow::flow::{self, Engine, FlowHorizon, FlowObserver, FlowSettings, FlowStatus, FlowSummary, TrajectoryRow};
use marginflow::metrics::to_json_value;
use marginflow::model::data::Dataset;
use marginflow::model::loss::Loss;
use marginflow::model::network::{Init, ModelSettings};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Wall-clock budget of one run (the observer stops it).
const BUDGET_SECONDS: f64 = 1.5;

struct Budget {
    until: Instant,
    rows: usize,
    finite_rows: bool,
}

impl FlowObserver for Budget {
    fn row(&mut self, row: &TrajectoryRow) -> marginflow::error::Result<()> {
        self.rows += 1;
        self.finite_rows &= row.time.s.is_some_and(f64::is_finite);
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    fn checkpoint(&mut self, _: &marginflow::flow::checkpoint::Checkpoint) -> marginflow::error::Result<()> {
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        Instant::now() >= self.until
    }
}

/// One odd problem: the data and the settings, with a label saying what is odd about it.
struct Problem {
    what: String,
    data: Dataset,
    settings: FlowSettings,
}

fn gaussian(rng: &mut ChaCha8Rng, k: usize) -> Vec<f64> {
    (0..k).map(|_| rng.sample::<f64, _>(StandardNormal)).collect()
}

/// The i-th problem of the stream seeded by `seed`.
fn problem(seed: u64, i: u64) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i));
    let mut what = Vec::new();
    let kind = rng.random_range(0..6);
    let (mut n, d) = (rng.random_range(2..12usize), rng.random_range(1..24usize));
    let mut x = match kind {
        // Collinear: every point a multiple of one direction (n > d allowed).
        1 => {
            what.push("collinear");
            let v = gaussian(&mut rng, d);
            (0..n)
                .flat_map(|_| {
                    let c: f64 = rng.sample(StandardNormal);
                    v.iter().map(move |vi| c * vi).collect::<Vec<f64>>()
                })
                .collect()
        }
        // Rank-deficient: points in an r-dimensional subspace, n > d.
        2 => {
            what.push("rank-deficient");
            n = d + rng.random_range(1..6);
            let r = rng.random_range(1..=d.max(1));
            let basis = gaussian(&mut rng, r * d);
            (0..n)
                .flat_map(|_| {
                    let z = gaussian(&mut rng, r);
                    (0..d).map(|c| (0..r).map(|k| z[k] * basis[k * d + c]).sum::<f64>()).collect::<Vec<f64>>()
                })
                .collect()
        }
        _ => gaussian(&mut rng, n * d),
    };
    let mut y: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    if kind == 3 {
        what.push("duplicate same label");
        let row = x[..d].to_vec();
        x.extend(row);
        y.push(y[0]);
        n += 1;
    }
    if kind == 4 || rng.random_bool(0.15) {
        what.push("duplicate opposite label");
        let row = x[..d].to_vec();
        x.extend(row);
        y.push(-y[0]);
        n += 1;
    }
    if kind == 5 || rng.random_bool(0.1) {
        what.push("zero vector");
        let i = rng.random_range(0..n);
        x[i * d..(i + 1) * d].iter_mut().for_each(|v| *v = 0.0);
    }
    if rng.random_bool(0.3) {
        what.push("random labels");
        for v in y.iter_mut() {
            *v = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        }
        y[0] = 1.0;
        y[1] = -1.0;
    }
    // Norms from 1e-6 to 1e6: one scale for all, or one per point.
    if rng.random_bool(0.5) {
        let scale = 10f64.powf(rng.random_range(-6.0..6.0));
        what.push("scaled");
        x.iter_mut().for_each(|v| *v *= scale);
    } else if rng.random_bool(0.3) {
        what.push("mixed norms");
        for i in 0..n {
            let scale = 10f64.powf(rng.random_range(-6.0..6.0));
            x[i * d..(i + 1) * d].iter_mut().for_each(|v| *v *= scale);
        }
    }
    let width = [1, 1, 2, 3, 5, 7, 8][rng.random_range(0..7)];
    let leak = [0.01, 0.011, 0.1, 0.5, 0.98, 0.99][rng.random_range(0..6)];
    let loss = if rng.random_bool(0.3) { Loss::Exponential } else { Loss::Logistic };
    let events = rng.random_bool(0.8);
    let engine = if rng.random_bool(0.5) { Engine::Dual } else { Engine::Span };
    let precision = if rng.random_bool(0.15) { 106 } else { 53 };
    let horizon = FlowHorizon::Log10Time([3.0, 10.0, 20.0, 100.0][rng.random_range(0..4)]);
    let init = Init::Scale(10f64.powf(rng.random_range(-4.0..0.0)));
    let settings = FlowSettings {
        model: ModelSettings { width, leak, init, seed: i, loss, ..Default::default() },
        horizon,
        events,
        engine,
        precision,
        ..Default::default()
    };
    let what = format!(
        "#{i} n={n} d={d} m={width} γ={leak} {loss:?} events={events} {engine:?} {precision} bits {horizon:?} [{}]",
        what.join(", ")
    );
    Problem { what, data: Dataset { n, d, x, y }, settings }
}

/// The finite numbers a summary with this status claims.
fn claims_finite(s: &FlowSummary) -> bool {
    let t = &s.time;
    let fin = |v: Option<f64>| v.is_some_and(f64::is_finite);
    let log10_loss = s.state.log10_loss.filter(|l| l.is_finite());
    // u = log(1 + t) holds t only above f64's smallest numbers: with L = 10^300 and more (huge
    // initial margins under the exponential loss) t = ∫ ds/L underflows and log10 t is null.
    let time_ok = fin(t.log10_time) || log10_loss.is_some_and(|l| l > 300.0);
    fin(t.s) && time_ok && fin(s.state.frobenius_norm) && log10_loss.is_some()
}

/// Run the stream; counts per status (typed errors as `error`, budget stops as `budget`).
fn soak(runs: u64, seed: u64) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let only: Option<u64> = std::env::var("SOAK_ONLY").ok().and_then(|v| v.parse().ok());
    for i in 0..runs {
        if only.is_some_and(|k| k != i) {
            continue;
        }
        let p = problem(seed, i);
        if std::env::var_os("SOAK_VERBOSE").is_some() {
            eprintln!("start {}", p.what);
        }
        let started = Instant::now();
        let mut obs = Budget { until: started + Duration::from_secs_f64(BUDGET_SECONDS), rows: 0, finite_rows: true };
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flow::run(&p.data, &p.settings, None, false, &mut obs)
        }));
        let took = started.elapsed().as_secs_f64();
        let key = match out {
            Err(_) => panic!("{}: panicked", p.what),
            Ok(Err(e)) => {
                // A typed error with a message: a documented way to refuse a problem.
                assert!(!e.to_string().is_empty(), "{}: empty error", p.what);
                "error".to_string()
            }
            Ok(Ok(o)) => {
                let s = &o.summary;
                let text = serde_json::to_string(&to_json_value(s)).unwrap();
                let back: FlowSummary = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: summary does not parse back: {e}", p.what));
                assert_eq!(back.status, s.status, "{}", p.what);
                if s.status != FlowStatus::NonFinite {
                    assert!(claims_finite(s), "{}: non-finite numbers in a {} summary: {text}", p.what, s.status);
                    assert!(obs.finite_rows, "{}: a row with a non-finite s", p.what);
                }
                if std::env::var_os("SOAK_VERBOSE").is_some() {
                    eprintln!("  detail: {}", s.status_detail.as_deref().unwrap_or("-"));
                }
                if s.status == FlowStatus::Interrupted {
                    "budget".to_string()
                } else {
                    s.status.to_string()
                }
            }
        };
        // The budget is enforced by the observer; the references and summary come after it
        // and are not interruptible yet (issue 23 item 4): a run that overran is counted apart.
        let key = if took > BUDGET_SECONDS + 5.0 { format!("{key} (over budget)") } else { key };
        if std::env::var_os("SOAK_VERBOSE").is_some() {
            eprintln!("{key:>20} {took:6.2} s  {}", p.what);
        }
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

#[test]
fn odd_problems_end_with_a_documented_status() {
    let runs = std::env::var("SOAK_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let seed = std::env::var("SOAK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(23);
    let counts = soak(runs, seed);
    eprintln!("soak: {runs} runs (seed {seed}): {counts:?}");
    if std::env::var_os("SOAK_ONLY").is_none() {
        assert_eq!(counts.values().sum::<usize>() as u64, runs);
    }
    // Most problems end by themselves, not by the budget.
    let budget = counts.iter().filter(|(k, _)| k.starts_with("budget")).map(|(_, v)| *v as u64).sum::<u64>();
    assert!(budget * 4 <= runs, "{budget} of {runs} runs needed the budget: {counts:?}");
    if runs <= 40 {
        assert!(!counts.keys().any(|k| k.contains("over budget")), "{counts:?}");
    }
}
