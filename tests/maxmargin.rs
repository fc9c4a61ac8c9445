//! `marginflow maxmargin` against closed forms and an independent dual solver written here.
//!
//! The independent solver works on the dual of the pattern QP in the full constraint space,
//! with Gram matrix G_rt = ⟨∇g_r, ∇g_t⟩ built directly from the data (K = X Xᵀ in f64 here):
//! coordinate ascent ν_r ← max(0, ν_r + (b_r − (Gν)_r)/G_rr) (Hildreth's method) identifies the
//! active set, then G_AA ν_A = b_A is solved exactly with nalgebra's LU and the KKT conditions are
//! checked. Nothing is shared with the binary's method (small-coordinate primal, clarabel,
//! Householder range-space polish).

use assert_cmd::prelude::OutputAssertExt;
use nalgebra::{DMatrix, DVector};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug)]
struct Linear {
    norm: Option<f64>,
    multipliers: Option<Vec<f64>>,
    certified: bool,
}

#[derive(Deserialize, Debug)]
struct Report {
    norm: Option<f64>,
    normalized_margin: Option<f64>,
    multipliers: Option<Vec<f64>>,
    active: Option<Vec<usize>>,
    certified: bool,
    not_certified_because: Option<String>,
    certificate: Option<serde_json::Value>,
    singular_values: Option<Vec<f64>>,
    rank: Option<usize>,
    structure: Option<f64>,
    linear: Linear,
    z_margin_ratio: Option<f64>,
    balanced: bool,
    linear_boundary_agreement: Option<f64>,
    solver_status: serde_json::Value,
    active_pattern_constraints: Option<usize>,
}

struct Data {
    n: usize,
    d: usize,
    x: Vec<f64>,
    y: Vec<f64>,
}

mod common;
use common::bin;

fn gen(dir: &Path, kind: &str, n: usize, d: usize, seed: u64) -> PathBuf {
    let path = dir.join(format!("{kind}_{n}_{d}_{seed}.json"));
    bin()
        .args([
            "gen",
            "--kind",
            kind,
            "--n",
            &n.to_string(),
            "--d",
            &d.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&path)
        .assert()
        .success();
    path
}

fn load(path: &Path) -> Data {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let rows = v["x"].as_array().unwrap();
    let n = rows.len();
    let d = rows[0].as_array().unwrap().len();
    let x: Vec<f64> = rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|e| e.as_f64().unwrap())).collect();
    let y: Vec<f64> = v["y"].as_array().unwrap().iter().map(|e| e.as_f64().unwrap()).collect();
    Data { n, d, x, y }
}

fn maxmargin(data: &Path, extra: &[&str]) -> Report {
    let out = bin().arg("maxmargin").arg("--data").arg(data).args(extra).arg("--json").assert().success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn balanced(m: usize) -> Vec<f64> {
    let s = 1.0 / (m as f64).sqrt();
    (0..m).map(|j| if j < m.div_ceil(2) { s } else { -s }).collect()
}

fn gram(d: &Data) -> Vec<f64> {
    let mut k = vec![0.0; d.n * d.n];
    for i in 0..d.n {
        for l in 0..d.n {
            k[i * d.n + l] = (0..d.d).map(|c| d.x[i * d.d + c] * d.x[l * d.d + c]).sum();
        }
    }
    k
}

/// Independent solution of the theory-pattern QP: returns (λ margin multipliers, ‖W*‖²).
fn independent_theory_qp(d: &Data, a: &[f64], gamma: f64) -> (Vec<f64>, f64) {
    let (n, m) = (d.n, a.len());
    let k = gram(d);
    let s_pat = |j: usize, i: usize| a[j].signum() * d.y[i];
    let slope = |j: usize, i: usize| if s_pat(j, i) > 0.0 { 1.0 } else { gamma };
    let nr = n + m * n;
    // Gradient of constraint r as (row j → coefficient on x_i) pairs.
    let grad = |r: usize| -> Vec<(usize, usize, f64)> {
        if r < n {
            (0..m).map(|j| (j, r, d.y[r] * a[j] * slope(j, r))).collect()
        } else {
            let (j, i) = ((r - n) / n, (r - n) % n);
            vec![(j, i, s_pat(j, i))]
        }
    };
    let grads: Vec<_> = (0..nr).map(grad).collect();
    let mut g = DMatrix::<f64>::zeros(nr, nr);
    for r in 0..nr {
        for t in r..nr {
            let mut v = 0.0;
            for &(j1, i1, c1) in &grads[r] {
                for &(j2, i2, c2) in &grads[t] {
                    if j1 == j2 {
                        v += c1 * c2 * k[i1 * n + i2];
                    }
                }
            }
            g[(r, t)] = v;
            g[(t, r)] = v;
        }
    }
    let b: Vec<f64> = (0..nr).map(|r| if r < n { 1.0 } else { 0.0 }).collect();
    let mut nu = vec![0.0; nr];
    let mut gnu = vec![0.0; nr];
    for round in 0..200 {
        for _ in 0..200 {
            for r in 0..nr {
                let new = (nu[r] + (b[r] - gnu[r]) / g[(r, r)]).max(0.0);
                let delta = new - nu[r];
                if delta != 0.0 {
                    for t in 0..nr {
                        gnu[t] += delta * g[(t, r)];
                    }
                    nu[r] = new;
                }
            }
        }
        // Exact solve on the identified active set, then check the KKT conditions.
        let act: Vec<usize> = (0..nr).filter(|&r| nu[r] > 0.0).collect();
        let ga = DMatrix::from_fn(act.len(), act.len(), |p, q| g[(act[p], act[q])]);
        let ba = DVector::from_iterator(act.len(), act.iter().map(|&r| b[r]));
        let Some(sol) = ga.lu().solve(&ba) else { continue };
        let mut cand = vec![0.0; nr];
        for (p, &r) in act.iter().enumerate() {
            cand[r] = sol[p];
        }
        let gc = &g * DVector::from_column_slice(&cand);
        let feasible = (0..nr).all(|r| gc[r] >= b[r] - 1e-13 * (1.0 + b[r]));
        if cand.iter().all(|&v| v >= 0.0) && feasible {
            let norm2: f64 = (0..nr).map(|r| cand[r] * gc[r]).sum();
            return (cand[..n].to_vec(), norm2);
        }
        assert!(round < 199, "independent dual solver did not converge");
    }
    unreachable!()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |e, (x, y)| e.max((x - y).abs())) / scale
}

#[test]
fn orthogonal_data_matches_closed_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), "orthogonal", 20, 100, 4);
    let data = load(&path);
    for gamma in [0.1, 0.2, 0.5] {
        let r = maxmargin(&path, &["--width", "16", "--leak", &gamma.to_string()]);
        assert!(r.certified, "{:?}", r.not_certified_because);
        assert!(r.balanced);
        let lambda = r.multipliers.unwrap();
        let expect: Vec<f64> = (0..data.n)
            .map(|i| {
                let nx2: f64 = data.x[i * data.d..(i + 1) * data.d].iter().map(|v| v * v).sum();
                2.0 / ((1.0 + gamma * gamma) * nx2)
            })
            .collect();
        for (l, e) in lambda.iter().zip(&expect) {
            assert!(((l - e) / e).abs() < 1e-12, "gamma {gamma}: λ {l} vs closed form {e}");
        }
        let sum: f64 = expect.iter().sum();
        let norm = r.norm.unwrap();
        assert!((norm * norm - sum).abs() / sum < 1e-12, "‖W*‖² {} vs Σλ {sum}", norm * norm);
        // Linear: α_i = 1/‖x_i‖², and z = Σ λ_i y_i x_i is exactly the linear max-margin direction.
        let alpha = r.linear.multipliers.unwrap();
        for (i, a) in alpha.iter().enumerate() {
            let e = expect[i] * (1.0 + gamma * gamma) / 2.0;
            assert!(((a - e) / e).abs() < 1e-12, "α_{i} {a} vs {e}");
        }
        assert!(r.linear.certified);
        assert!((r.z_margin_ratio.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(r.linear_boundary_agreement, Some(1.0));
        assert_eq!(r.rank, Some(2));
    }
}

fn check_against_independent(kind: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), kind, 20, 4000, seed);
    let data = load(&path);
    let wpath = dir.path().join("W.npy");
    let r = maxmargin(&path, &["--width", "16", "--leak", "0.2", "--save-weights", wpath.to_str().unwrap()]);
    assert!(r.certified, "{kind}: {:?}", r.not_certified_because);
    assert_eq!(r.solver_status, serde_json::json!("Solved"));
    let a = balanced(16);
    let (lambda_ind, norm2_ind) = independent_theory_qp(&data, &a, 0.2);
    let lambda = r.multipliers.clone().unwrap();
    let norm = r.norm.unwrap();
    let e_l = rel_err(&lambda, &lambda_ind);
    let e_n = (norm - norm2_ind.sqrt()).abs() / norm2_ind.sqrt();
    eprintln!(
        "{kind}: norm {norm:.17e} independent {:.17e} (rel {e_n:.2e}); multipliers rel {e_l:.2e}",
        norm2_ind.sqrt()
    );
    assert!(e_l < 1e-9, "{kind}: multipliers differ by {e_l:e}");
    assert!(e_n < 1e-9, "{kind}: norms differ by {e_n:e}");
    assert!((r.normalized_margin.unwrap() * norm - 1.0).abs() < 1e-15);
    // Rank 2: σ3/σ1 at round-off; rows equal within each sign group.
    let sv = r.singular_values.clone().unwrap();
    eprintln!("{kind}: σ = {:?}, structure {:e}", &sv[..4], r.structure.unwrap());
    assert_eq!(r.rank, Some(2));
    assert!(sv[2] / sv[0] < 1e-14, "σ3/σ1 = {:e}", sv[2] / sv[0]);
    assert!(r.structure.unwrap() < 1e-13, "structure {:e}", r.structure.unwrap());
    assert_eq!(r.active.clone().unwrap().len(), 20);
    assert!(r.certificate.is_some());
    // W* from the .npy file, checked directly with the leaky ReLU: margins ≥ 1, min = 1, norm.
    let (m, d) = (16, data.d);
    let w = marginflow::io::npy::read_matrix(&wpath, m, d, "test").unwrap();
    let wn: f64 = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((wn - norm).abs() / norm < 1e-12, "‖W.npy‖ {wn} vs norm {norm}");
    let margins: Vec<f64> = (0..data.n)
        .map(|i| {
            let f: f64 = (0..m)
                .map(|j| {
                    let p: f64 = (0..d).map(|c| w[j * d + c] * data.x[i * d + c]).sum();
                    a[j] * if p < 0.0 { 0.2 * p } else { p }
                })
                .sum();
            data.y[i] * f
        })
        .collect();
    for q in &margins {
        assert!((q - 1.0).abs() < 1e-12, "{kind}: margin {q} of W.npy (all margins active)");
    }
    // The linear problem and the boundary.
    assert!(r.linear.certified);
    let zr = r.z_margin_ratio.unwrap();
    assert!(zr > 0.0 && zr <= 1.0 + 1e-12, "z margin ratio {zr}");
    assert_eq!(r.linear_boundary_agreement, Some(1.0));
    assert!(r.linear.norm.unwrap() > 0.0);
}

#[test]
fn nearly_orthogonal_gaussian_matches_independent_solver() {
    check_against_independent("gaussian", 1);
}

#[test]
fn two_cluster_mixture_matches_independent_solver() {
    check_against_independent("mixture", 2);
}

#[test]
fn low_dimensional_theory_pattern_is_not_certified() {
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), "gaussian", 40, 8, 3);
    let r = maxmargin(&path, &["--width", "16", "--leak", "0.2"]);
    assert!(!r.certified);
    let why = r.not_certified_because.unwrap();
    eprintln!("low-dimensional gaussian: {why}; status {}", r.solver_status);
    assert!(why.contains("PrimalInfeasible"), "{why}");
    assert_eq!(r.solver_status, serde_json::json!("PrimalInfeasible"));
    assert!(r.norm.is_none() && r.multipliers.is_none());
    // Labels in R^8 with n = 40 are not linearly separable here: the linear dual is unbounded.
    assert!(!r.linear.certified);
    assert!(r.linear.norm.is_none());
    // --save-weights without a solution is a usage error, and nothing is written.
    let w = dir.path().join("W.npy");
    bin()
        .args(["maxmargin", "--width", "16", "--leak", "0.2", "--data"])
        .arg(&path)
        .arg("--save-weights")
        .arg(&w)
        .assert()
        .code(2);
    assert!(!w.exists());
}

#[test]
fn low_dimensional_mixture_with_active_pattern_constraints() {
    // Two clusters in R^8: separable, and the theory-pattern optimum has active pattern
    // constraints, so the multipliers come from the full QP (not the closed form).
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), "mixture", 40, 8, 3);
    let data = load(&path);
    let r = maxmargin(&path, &["--width", "16", "--leak", "0.2"]);
    assert!(r.certified, "{:?}", r.not_certified_because);
    assert!(r.active_pattern_constraints.unwrap() > 0);
    let (lambda_ind, norm2_ind) = independent_theory_qp(&data, &balanced(16), 0.2);
    let e_l = rel_err(r.multipliers.as_ref().unwrap(), &lambda_ind);
    let e_n = (r.norm.unwrap() - norm2_ind.sqrt()).abs() / norm2_ind.sqrt();
    eprintln!("low-dimensional mixture: norm rel {e_n:.2e}, multipliers rel {e_l:.2e}");
    assert!(e_l < 1e-9 && e_n < 1e-9, "{e_l:e} {e_n:e}");
}

#[test]
fn pattern_from_flow_run_weights_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), "gaussian", 20, 4000, 1);
    let run = dir.path().join("run");
    bin()
        .args(["flow", "--width", "16", "--leak", "0.2", "--until-log10-time", "100", "--save-weights", "--data"])
        .arg(&path)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let from_w = maxmargin(&path, &["--width", "16", "--leak", "0.2", "--pattern-from", run.to_str().unwrap()]);
    let only_cp = dir.path().join("cp_only");
    std::fs::create_dir(&only_cp).unwrap();
    std::fs::copy(run.join("checkpoint"), only_cp.join("checkpoint")).unwrap();
    let from_cp = maxmargin(&path, &["--width", "16", "--leak", "0.2", "--pattern-from", only_cp.to_str().unwrap()]);
    let theory = maxmargin(&path, &["--width", "16", "--leak", "0.2"]);
    assert!(from_w.certified && from_cp.certified);
    // The flow's final pattern is the theory's here, so all three solve the same QP.
    assert_eq!(from_w.norm, from_cp.norm);
    assert!((from_w.norm.unwrap() - theory.norm.unwrap()).abs() < 1e-15);
    // A run on other data is refused.
    let other = gen(dir.path(), "gaussian", 20, 4000, 9);
    bin()
        .args(["maxmargin", "--width", "16", "--leak", "0.2", "--pattern-from"])
        .arg(&only_cp)
        .arg("--data")
        .arg(&other)
        .assert()
        .code(2);
}

#[test]
fn out_file_and_precision_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = gen(dir.path(), "orthogonal", 10, 30, 1);
    let out = dir.path().join("mm.json");
    let stdout = bin()
        .args(["maxmargin", "--width", "4", "--json", "--data"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let a: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(a, b);
    if cfg!(not(feature = "mpfr")) {
        bin().args(["maxmargin", "--width", "4", "--precision", "128", "--data"]).arg(&path).assert().code(2);
    }
}

#[cfg(feature = "mpfr")]
#[test]
fn f64_agrees_with_256_bits() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, seed) in [("gaussian", 1), ("mixture", 2)] {
        let path = gen(dir.path(), kind, 20, 4000, seed);
        let lo = maxmargin(&path, &["--width", "16", "--leak", "0.2"]);
        let out = bin()
            .args(["maxmargin", "--width", "16", "--leak", "0.2", "--precision", "256", "--json", "--data"])
            .arg(&path)
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let hi: Report = serde_json::from_value(v.clone()).unwrap();
        assert!(hi.certified && lo.certified);
        assert!(v["norm_decimal"].as_str().unwrap().len() > 60);
        let e_l = rel_err(lo.multipliers.as_ref().unwrap(), hi.multipliers.as_ref().unwrap());
        let e_n = (lo.norm.unwrap() - hi.norm.unwrap()).abs() / hi.norm.unwrap();
        eprintln!("{kind}: f64 vs 256 bits: norm rel {e_n:.2e}, multipliers rel {e_l:.2e}");
        assert!(e_l < 1e-9 && e_n < 1e-9);
        let tol = v["certificate"]["tolerance"].as_f64().unwrap();
        assert!(tol < 1e-70, "tolerance at 256 bits {tol:e}");
    }
}
