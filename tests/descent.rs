//! Gradient descent: the span-reduced step against an independent full-W computation, the
//! one-step stable-rank drop from a small initialization (and its absence from the default
//! 1/√d scale), the O(α) distance between GD and gradient flow, and the CLI's files.

use marginflow::descent::{self, DescentActivation, DescentSettings, DescentWorkspace, Kernel, NaturalFlow};
use marginflow::model::data::{self, DataKind, Dataset, GenSettings};
use marginflow::model::network::{Init, ModelSettings, Network};
use marginflow_solvers::ode::{Horizon, IntegratorSettings, IntegratorState};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::tableau::dopri5;
use nalgebra::DMatrix;

mod common;
use common::bin;

fn gaussian(n: usize, d: usize, seed: u64) -> Dataset {
    data::generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed, ..Default::default() }).unwrap()
}

/// φ and φ' written out from the paper's definition (independent of `activation.rs`).
fn phi(z: f64, gamma: f64, h: Option<f64>) -> (f64, f64) {
    match h {
        None => {
            if z >= 0.0 {
                (z, 1.0)
            } else {
                (gamma * z, gamma)
            }
        }
        Some(h) => {
            if z >= 1.0 / h {
                (z - (1.0 - gamma) / (4.0 * h), 1.0)
            } else if z <= -1.0 / h {
                (gamma * z - (1.0 - gamma) / (4.0 * h), gamma)
            } else {
                (
                    (1.0 - gamma) * h / 4.0 * z * z + (1.0 + gamma) / 2.0 * z,
                    (1.0 - gamma) * h / 2.0 * z + (1.0 + gamma) / 2.0,
                )
            }
        }
    }
}

/// Plain full-W gradient descent on the mean logistic loss: W ← W − α ∇L(W), W m×d.
fn reference_gd(
    data: &Dataset,
    a: &[f64],
    w0: &[f64],
    gamma: f64,
    h: Option<f64>,
    alpha: f64,
    steps: usize,
) -> Vec<f64> {
    let (n, d, m) = (data.n, data.d, a.len());
    let mut w = w0.to_vec();
    for _ in 0..steps {
        let mut grad = vec![0.0; m * d];
        for i in 0..n {
            let x = &data.x[i * d..(i + 1) * d];
            let mut f = 0.0;
            let mut dphi = vec![0.0; m];
            for j in 0..m {
                let z: f64 = w[j * d..(j + 1) * d].iter().zip(x).map(|(u, v)| u * v).sum();
                let (v, dv) = phi(z, gamma, h);
                f += a[j] * v;
                dphi[j] = dv;
            }
            let q = data.y[i] * f;
            let lprime = -1.0 / (1.0 + q.exp()); // ℓ'(q) for ℓ = log(1 + e^{−q})
            for j in 0..m {
                let coef = lprime * data.y[i] * a[j] * dphi[j] / n as f64;
                for k in 0..d {
                    grad[j * d + k] += coef * x[k];
                }
            }
        }
        for (wv, g) in w.iter_mut().zip(&grad) {
            *wv -= alpha * g;
        }
    }
    w
}

fn stable_rank_full(w: &[f64], m: usize, d: usize) -> f64 {
    let mat = DMatrix::from_row_slice(m, d, w);
    let sv = mat.singular_values();
    let s1 = sv.iter().cloned().fold(0.0, f64::max);
    sv.iter().map(|s| s * s).sum::<f64>() / (s1 * s1)
}

fn settings(act: DescentActivation, scale: f64, steps: u64) -> DescentSettings {
    DescentSettings {
        model: ModelSettings { width: 16, leak: 0.2, init: Init::Scale(scale), seed: 3, ..Default::default() },
        activation: act,
        step_size: 0.05,
        steps,
        ..Default::default()
    }
}

fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

#[test]
fn ten_steps_match_full_gradient_descent_and_rank_drops_after_one_step() {
    let data = gaussian(20, 4000, 11);
    for (act, h) in [(DescentActivation::Leaky, None), (DescentActivation::Smooth { smoothness: 4.0 }, Some(4.0))] {
        let s = settings(act, 1e-7, 10);
        let w0 = s.model.initial_weights(data.d).unwrap();
        let a = s.model.outer_weights().unwrap();
        let mut rows: Vec<descent::DescentRow> = Vec::new();
        let out = descent::run(&data, &s, true, &mut rows).unwrap();
        assert_eq!(out.status, descent::DescentStatus::Completed);
        let w = out.weights.unwrap();
        let w_ref = reference_gd(&data, &a, &w0, 0.2, h, 0.05, 10);
        let err = rel_diff(&w, &w_ref);
        assert!(err < 1e-10, "{act:?}: relative difference {err:e}");

        // One row per step 0..=10; stable ranks checked against SVDs of the full W.
        assert_eq!(rows.len(), 11);
        let sr: Vec<f64> = rows.iter().map(|r| r.state.stable_rank.unwrap()).collect();
        let sr0_ref = stable_rank_full(&w0, 16, data.d);
        let w1_ref = reference_gd(&data, &a, &w0, 0.2, h, 0.05, 1);
        let sr1_ref = stable_rank_full(&w1_ref, 16, data.d);
        assert!((sr[0] - sr0_ref).abs() < 1e-9 * sr0_ref, "{} vs {sr0_ref}", sr[0]);
        assert!((sr[1] - sr1_ref).abs() < 1e-9 * sr1_ref, "{} vs {sr1_ref}", sr[1]);
        assert!(sr[0] > 12.0, "initial stable rank {} should be near min(m, d) = 16", sr[0]);
        assert!(sr[1] < 1.5, "{act:?}: stable rank after one step {}", sr[1]);
        assert!(sr.iter().skip(1).all(|v| *v < 1.5), "{act:?}: stays low: {sr:?}");
    }
}

#[test]
fn default_scale_initialization_keeps_its_stable_rank() {
    let data = gaussian(20, 4000, 11);
    let s = settings(DescentActivation::Leaky, 1.0 / (4000f64).sqrt(), 10);
    let mut rows: Vec<descent::DescentRow> = Vec::new();
    descent::run(&data, &s, false, &mut rows).unwrap();
    let sr: Vec<f64> = rows.iter().map(|r| r.state.stable_rank.unwrap()).collect();
    assert!(sr[0] > 12.0, "{sr:?}");
    for v in &sr[1..] {
        assert!(*v > 0.8 * sr[0], "stable rank fell from {} to {v}", sr[0]);
    }
}

/// ‖W_GD(k) − W_GF(kα)‖ at the fixed time kα = 1 for α = 1/20, 1/40, 1/80, 1/160 (smooth activation, so the
/// flow is C¹ and GD is its explicit Euler discretization): the error halves with α.
#[test]
fn gradient_descent_approaches_gradient_flow_at_first_order() {
    let data = gaussian(10, 300, 5);
    let model = ModelSettings { width: 8, leak: 0.2, init: Init::Scale(0.05), seed: 2, ..Default::default() };
    let act = marginflow::model::activation::Activation::Smooth { gamma: 0.2, h: 4.0 };
    let net: Network<f64> = Network::new(&data, &model, 53).unwrap();
    let dim = net.m * net.n;

    // Gradient flow to t = 1 at tight tolerance.
    let t_end = 1.0;
    let mut sys = NaturalFlow::new(&net, act);
    let isettings = IntegratorSettings { rtol: 1e-13, atol: 1e-15, ..Default::default() };
    let mut integ = Integrator::new(dopri5::<f64>(53), isettings, dim, 53).unwrap();
    let mut state = IntegratorState::new(0.0, vec![0.0; dim]);
    let horizon = Horizon { s_end: Some(t_end), component_reaches: None };
    let status = integ.integrate(&mut sys, &mut state, &horizon, &mut ());
    assert_eq!(status, marginflow_solvers::ode::Status::Reached);
    let b_gf = state.y.clone();

    let kern = Kernel::new(act, 53);
    let mut errors = Vec::new();
    for k in [20usize, 40, 80, 160] {
        let alpha = t_end / k as f64;
        let mut ws = DescentWorkspace::new(&net);
        let mut b = vec![0.0; dim];
        for _ in 0..k {
            descent::step_inplace(&net, &kern, &mut ws, &alpha, &mut b);
        }
        let diff: Vec<f64> = b.iter().zip(&b_gf).map(|(u, v)| u - v).collect();
        errors.push(net.small_span(&diff).frobenius_norm());
    }
    let moved = net.small_span(&b_gf).frobenius_norm();
    assert!(errors[0] < 0.1 * moved, "GD far from GF: {errors:?} vs displacement {moved}");
    for w in errors.windows(2) {
        let ratio = w[0] / w[1];
        assert!((1.9..2.15).contains(&ratio), "error ratio {ratio} (errors {errors:?})");
    }
    // e(α) = Cα + O(α²): the ratio tends to 2 as α shrinks.
    let first = (errors[0] / errors[1] - 2.0).abs();
    let last = (errors[2] / errors[3] - 2.0).abs();
    assert!(last < first, "ratios do not approach 2: {errors:?}");
}

#[test]
fn cli_writes_trajectory_summary_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = dir.path().join("g.json");
    gaussian(12, 300, 1).save(&data_path).unwrap();
    let out = dir.path().join("run");
    let o = bin()
        .args([
            "descent",
            "--width",
            "6",
            "--step-size",
            "0.1",
            "--steps",
            "1000",
            "--activation",
            "smooth",
            "--smoothness",
            "4",
        ])
        .arg("--data")
        .arg(&data_path)
        .arg("--out")
        .arg(&out)
        .args(["--save-weights", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["step"], 1000);
    let text = std::fs::read_to_string(out.join("trajectory.jsonl")).unwrap();
    let steps: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert_eq!(&steps[..101], &(0..=100).collect::<Vec<u64>>()[..]);
    assert_eq!(*steps.last().unwrap(), 1000);
    // Log-spaced after step 100: 20 per decade → at most ~21 more rows, strictly increasing.
    assert!(steps.len() <= 101 + 21, "{} rows", steps.len());
    assert!(steps.windows(2).all(|w| w[0] < w[1]));
    let file_summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(file_summary, summary);
    let w = marginflow::io::npy::read_matrix(&out.join("W.npy"), 6, 300, "W").unwrap();
    assert_eq!(w.len(), 6 * 300);
    // The last row's Frobenius norm is that of the saved W.
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let fro = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let reported = last["frobenius_norm"].as_f64().unwrap();
    assert!((fro - reported).abs() < 1e-12 * fro, "{fro} vs {reported}");
}

#[test]
fn sweep_is_a_cartesian_product_independent_of_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}"));
        let o = bin()
            .args(["sweep", "descent", "--kind", "mixture", "--n", "10", "--d", "200,400", "--width", "6"])
            .args(["--init-scale", "1e-6,1", "--init-relative", "--seed", "1,2", "--step-size", "0.1", "--steps", "50"])
            .args(["--threads", threads])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
        let jsonl = std::fs::read_to_string(out.join("runs.jsonl")).unwrap();
        assert!(out.join("stable_rank_vs_d.svg").exists() && out.join("stable_rank_vs_step.svg").exists());
        outputs.push((csv, jsonl));
    }
    assert_eq!(outputs[0], outputs[1], "results depend on the thread count");
    let (csv, jsonl) = &outputs[0];
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0].split(',').take(8).collect::<Vec<_>>(),
        ["index", "n", "d", "width", "init_scale", "seed", "step_size", "steps"]
    );
    assert_eq!(lines.len(), 1 + 8);
    // Run 5 = (d = 400, init 1e-6, seed 2), last axis fastest; it equals a direct descent run.
    let row: serde_json::Value = serde_json::from_str(jsonl.lines().nth(5).unwrap()).unwrap();
    assert_eq!(row["values"]["d"], 400.0);
    assert_eq!(row["values"]["init_scale"], 1e-6);
    assert_eq!(row["values"]["seed"], 2.0);
    let data =
        data::generate(&GenSettings { kind: DataKind::Mixture, n: 10, d: 400, seed: 0, ..Default::default() }).unwrap();
    let s = DescentSettings {
        model: ModelSettings { width: 6, init: Init::Scale(1e-6 / 20.0), seed: 2, ..Default::default() },
        step_size: 0.1,
        steps: 50,
        ..Default::default()
    };
    let direct = descent::run(&data, &s, false, &mut Vec::new()).unwrap();
    assert_eq!(row["summary"]["stable_rank"].as_f64(), direct.summary.last.state.stable_rank);
    assert_eq!(row["summary"]["log10_loss"].as_f64(), direct.summary.last.state.log10_loss);
}

#[test]
fn a_step_size_far_too_large_ends_as_diverged_with_the_last_good_state() {
    let data = gaussian(12, 300, 1);
    let mut s = settings(DescentActivation::Leaky, 1e-3, 50);
    s.step_size = 1e306;
    let mut rows: Vec<descent::DescentRow> = Vec::new();
    let out = descent::run(&data, &s, false, &mut rows).unwrap();
    let descent::DescentStatus::Diverged { step } = out.status else { panic!("{:?}", out.status) };
    assert_eq!(out.summary.status, marginflow::descent::DescentEnd::Diverged);
    assert_eq!(out.summary.last.step + 1, step);
    assert!(out.coefficients.iter().all(|v| v.abs() <= descent::DIVERGENCE_BOUND));
    assert!(out.summary.last.state.stable_rank.unwrap().is_finite());
}
