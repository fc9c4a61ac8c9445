//! Arbitrary precision (issue 4): the MPFR scalar, the tableaux at 256 bits, the orders of
//! Dormand–Prince 5(4) and Verner 9(8), exact checkpoints, and the `_decimal` JSON fields.
//! Without the `mpfr` feature only the refusal of `--precision` above 53 is tested.

use std::path::Path;

mod common;
use common::bin;

/// The tiny nearly-orthogonal set of docs/precision.md: Gaussian, n = 6, d = 300, seed 1.
fn tiny_data(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.json");
    let out = bin()
        .args(["gen", "--kind", "gaussian", "--n", "6", "--d", "300", "--seed", "1", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "gen: {}", String::from_utf8_lossy(&out.stderr));
    path
}

#[cfg(not(feature = "mpfr"))]
#[test]
fn precision_above_53_needs_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = bin()
        .args(["flow", "--width", "4", "--leak", "0.5", "--until-s", "1", "--precision", "256", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--precision") && err.contains("mpfr"), "{err}");
}

#[test]
fn precision_between_53_and_64_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = bin()
        .args(["flow", "--width", "4", "--leak", "0.5", "--until-s", "1", "--precision", "60", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--precision"));
}

#[cfg(feature = "mpfr")]
mod mpfr {
    use super::*;
    use marginflow::flow::checkpoint::Checkpoint;
    use marginflow::flow::FlowSettings;
    use marginflow_solvers::ode::{
        Horizon, IntegratorSettings, IntegratorState, OdeSystem, Statistics, Status, Switching,
    };
    use marginflow_solvers::rk::Integrator;
    use marginflow_solvers::tableau::{dopri5, verner98, Tableau, DOPRI5_A, DOPRI5_B, DOPRI5_C, DOPRI5_D, DOPRI5_E};
    use marginflow_solvers::Real;
    use rug::Float;

    const P: u32 = 256;
    /// Exact arithmetic on 256-bit values: sums of a few of them with exponents within
    /// 2^±100 are exact at 2048 bits.
    const WIDE: u32 = 2048;

    fn wide(x: &Float) -> Float {
        Float::with_val(WIDE, x)
    }

    /// 2^(e − P) for the exponent e of x, i.e. one ulp of x at P bits.
    fn ulp(x: &Float) -> Float {
        let e = x.get_exp().unwrap_or(0);
        Float::with_val(WIDE, Float::i_exp(1, e - P as i32))
    }

    /// Each 256-bit coefficient is p/q rounded once: |x·q − p| ≤ ½ ulp(x)·|q| (exact check).
    fn assert_rounded_once(x: &Float, (p, q): (i64, i64), what: &str) {
        assert_eq!(x.prec(), P, "{what}");
        let diff = (wide(x) * q - p).abs();
        let bound = ulp(x) * q.abs() / 2;
        assert!(diff <= bound, "{what}: |x q − p| = {diff:e} > {bound:e}");
    }

    #[test]
    fn dopri5_at_256_bits_is_the_rationals_rounded_once() {
        let t: Tableau<Float> = dopri5(P);
        for (i, &r) in DOPRI5_C.iter().enumerate() {
            assert_rounded_once(&t.c[i], r, &format!("c{i}"));
        }
        for (i, row) in DOPRI5_A.iter().enumerate() {
            for (j, &r) in row.iter().enumerate() {
                assert_rounded_once(&t.a[i][j], r, &format!("a{i}{j}"));
            }
        }
        for i in 0..7 {
            assert_rounded_once(&t.b[i], DOPRI5_B[i], &format!("b{i}"));
            assert_rounded_once(&t.e[i], DOPRI5_E[i], &format!("e{i}"));
        }
        if let marginflow_solvers::tableau::Dense::DormandPrince { d } = &t.dense {
            for i in 0..7 {
                assert_rounded_once(&d[i], DOPRI5_D[i], &format!("d{i}"));
            }
        }
    }

    /// Row sums against c and Σb against 1, summed exactly. The rationals satisfy them exactly
    /// (solvers' unit test, in integers); each 256-bit coefficient is rounded once and
    /// independently, so the exact sums can only differ by the accumulated half-ulps, and do
    /// differ in general: exact equality of rounded values is impossible, the bound is tight.
    #[test]
    fn dopri5_row_sums_at_256_bits_to_the_rounding_bound() {
        let t: Tableau<Float> = dopri5(P);
        for (i, row) in t.a.iter().enumerate() {
            let mut s = Float::with_val(WIDE, 0);
            let mut bound = ulp(&t.c[i]) / 2u32;
            for a in row {
                s += wide(a);
                bound += ulp(a) / 2u32;
            }
            let diff = (s - wide(&t.c[i])).abs();
            assert!(diff <= bound, "row {i}: {diff:e} > {bound:e}");
        }
        let mut s = Float::with_val(WIDE, 0);
        let mut bound = Float::with_val(WIDE, 0);
        for b in &t.b {
            s += wide(b);
            bound += ulp(b) / 2u32;
        }
        assert!((s - 1u32).abs() <= bound);
        // At 256 bits these bounds are below 1e-75.
        assert!(bound < 1e-75);
    }

    /// Verner 9(8) at 256 bits: the published 40-digit coefficients satisfy the row sums and the
    /// quadrature conditions Σ b_i c_i^(k−1) = 1/k (k ≤ 9; k ≤ 8 for b̂) to their own 40 digits,
    /// not exactly (several nodes are irrational; see tableau.rs). Each decimal is exact where it
    /// terminates: c2 = 0.03462 and a9,1 = 0.071806640625 are the decimals rounded once.
    #[test]
    fn verner98_at_256_bits_to_the_published_digits() {
        let t: Tableau<Float> = verner98(P);
        let tol = Float::with_val(P, 1e-39);
        for (i, row) in t.a.iter().enumerate() {
            let mut s = Float::with_val(WIDE, 0);
            let mut mag = Float::with_val(WIDE, 1);
            for a in row {
                s += wide(a);
                mag += wide(a).abs();
            }
            let diff = (s - wide(&t.c[i])).abs();
            assert!(diff <= Float::with_val(WIDE, &tol * &mag), "row {i}: {diff:e}");
        }
        for (weights, kmax) in
            [(t.b.clone(), 9u32), (t.b.iter().zip(&t.e).map(|(b, e)| Float::with_val(P, b - e)).collect(), 8)]
        {
            for k in 1..=kmax {
                let mut q = Float::with_val(WIDE, 0);
                for (b, c) in weights.iter().zip(&t.c) {
                    let mut term = wide(b);
                    for _ in 1..k {
                        term *= wide(c);
                    }
                    q += term;
                }
                let inv_k = Float::with_val(WIDE, 1) / k;
                let err = Float::with_val(WIDE, q - inv_k).abs();
                assert!(err < 1e-38, "k = {k}: {err:e}");
            }
        }
        assert_eq!(t.c[1], Float::with_val(P, Float::parse("0.03462").unwrap()));
        assert_eq!(t.a[8][0], Float::with_val(P, Float::parse("0.071806640625").unwrap()));
        assert!(t.c.iter().chain(t.b.iter()).all(|v| v.prec() == P));
    }

    /// y' = y², y(0) = 1/2: y(s) = 1/(2 − s), so y(1) = 1.
    struct Riccati;
    impl OdeSystem<Float> for Riccati {
        fn dim(&self) -> usize {
            1
        }
        fn eval_inplace(&mut self, _s: &Float, y: &[Float], dy: &mut [Float]) {
            dy[0].assign(&y[0]);
            dy[0] *= &y[0];
        }
    }
    impl Switching<Float> for Riccati {}

    /// Global error at s = 1 with fixed steps 1/steps (tolerances so loose that every step is
    /// accepted at the forced size).
    fn fixed_step_error(tab: Tableau<Float>, steps: u32) -> f64 {
        let h = 1.0 / steps as f64;
        let settings = IntegratorSettings {
            rtol: 1e30,
            atol: 1e30,
            initial_step: Some(h),
            max_step: Some(h),
            ..Default::default()
        };
        let mut integ = Integrator::new(tab, settings, 1, P).unwrap();
        let mut st = IntegratorState::new(Float::with_val(P, 0), vec![Float::with_val(P, 0.5)]);
        let horizon = Horizon { s_end: Some(Float::with_val(P, 1)), component_reaches: None };
        assert_eq!(integ.integrate(&mut Riccati, &mut st, &horizon, &mut ()), Status::Reached);
        assert_eq!(st.stats.accepted, steps as u64);
        (st.y[0].clone() - 1u32).abs().to_f64()
    }

    #[test]
    fn observed_orders_are_five_and_nine() {
        for (name, order, steps) in [("dopri5", 5.0, [256u32, 512, 1024]), ("verner98", 9.0, [32, 64, 128])] {
            let errs: Vec<f64> = steps
                .iter()
                .map(|&n| fixed_step_error(if name == "dopri5" { dopri5(P) } else { verner98(P) }, n))
                .collect();
            eprintln!("{name}: {errs:?}");
            for w in errs.windows(2) {
                let observed = (w[0] / w[1]).log2();
                assert!((observed - order).abs() < 0.5, "{name}: errors {errs:?}, observed order {observed}");
            }
            // Far below f64 round-off: the order is seen at 256 bits, not capped near 1e-16.
            assert!(errs[2] < 1e-17, "{name}: {errs:?}");
        }
    }

    #[test]
    fn scalar_basics_at_256_bits() {
        let third = <Float as Real>::ratio(1, 3, P);
        assert_eq!(third.prec(), P);
        // Correctly rounded once: |3x − 1| ≤ ½ ulp · 3.
        assert!((wide(&third) * 3u32 - 1u32).abs() <= ulp(&third) * 3u32 / 2u32);
        let eps = <Float as Real>::epsilon(P);
        assert_eq!(eps, Float::with_val(P, Float::i_exp(1, 1 - P as i32)));
        assert!(Float::with_val(P, 1) + &eps > 1u32);
        let two = Float::with_val(P, 2);
        let back = Real::exp(&Real::ln(&two));
        assert!((back - 2u32).abs() <= Float::with_val(P, &eps * 8u32));
        let s = third.to_decimal();
        assert!(s.len() > 75, "{s}");
        assert_eq!(<Float as Real>::parse_decimal(&s, P).unwrap(), third);
        assert_eq!(<Float as Real>::from_exact(&third.to_exact()).unwrap(), third);
        let mut acc = Float::with_val(P, 1);
        acc.add_mul_mut(&third, &Float::with_val(P, 3));
        let err = Float::with_val(P, &acc - 2u32).abs();
        assert!(err <= eps, "1 + 3·(1/3) − 2 = {err:e}, acc prec {}", acc.prec());
    }

    /// A 256-bit integrator state survives Checkpoint::capture → JSON → restore bit for bit.
    #[test]
    fn checkpoint_round_trip_at_256_bits() {
        let v = |p: i64, q: i64| <Float as Real>::ratio(p, q, P);
        let y: Vec<Float> =
            vec![v(1, 3), v(-22, 7), Real::ln(&v(10, 1)), Float::with_val(P, Float::i_exp(1, -5000)), v(0, 1)];
        let st = IntegratorState {
            s: Real::exp(&v(1, 1)),
            y: y.clone(),
            h: v(1, 1_000_003),
            err_old: v(3, 7),
            last_rejected: true,
            chatter: Some((3, 2)),
            stats: Statistics { accepted: 5, rejected: 2, rhs_evaluations: 99, events: 1, released: 0, floor_steps: 0 },
            first_stage: Some(y.iter().map(|x| x.clone() * &v(-3, 11)).collect()),
        };
        let settings = FlowSettings { precision: P, ..Default::default() };
        let modes = vec![1i8, -1, 0, 1];
        let cp = Checkpoint::capture(&settings, "abc", &st, &modes, 7, 1.25, 3.0);
        let json = cp.to_bytes();
        let cp2: Checkpoint = serde_json::from_slice(&json).unwrap();
        let r = cp2.restore::<Float>("abc", 5).unwrap();
        assert_eq!(r.state.s, st.s);
        assert_eq!(r.state.h, st.h);
        assert_eq!(r.state.err_old, st.err_old);
        assert_eq!(r.state.first_stage, st.first_stage);
        for (a, b) in r.state.y.iter().zip(&y) {
            assert_eq!(a, b);
            assert_eq!(a.prec(), P);
        }
        assert_eq!(r.state.s.prec(), P);
        assert_eq!(r.modes, modes);
        assert_eq!(cp2.precision, P);
        assert!(cp2.restore::<Float>("other", 5).is_err());
    }

    fn flow_json(data: &Path, extra: &[&str]) -> serde_json::Value {
        let out = bin()
            .args(["flow", "--width", "4", "--leak", "0.5", "--json", "--data"])
            .arg(data)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "flow {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn decimals(v: &serde_json::Value, key: &str) -> Vec<Float> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing"))
            .iter()
            .map(|s| Float::with_val(P, Float::parse(s.as_str().unwrap()).unwrap()))
            .collect()
    }

    /// At 128 bits every key number has a `_decimal` twin with all its digits, consistent with
    /// the f64 value, and the run agrees with the f64 run to the f64 run's tolerance.
    #[test]
    fn decimal_fields_at_128_bits() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let hi = flow_json(&data, &["--until-log10-time", "20", "--precision", "128"]);
        let lo = flow_json(&data, &["--until-log10-time", "20"]);
        for key in ["s", "log10_time", "log10_loss", "frobenius_norm", "min_margin", "normalized_margin", "stable_rank"]
        {
            let d = hi[format!("{key}_decimal")].as_str().unwrap_or_else(|| panic!("{key}_decimal missing"));
            let x: f64 = d.parse().unwrap();
            assert!((x - hi[key].as_f64().unwrap()).abs() <= 1e-15 * x.abs(), "{key}");
            assert!(d.trim_start_matches('-').len() >= 38, "{key}: {d}");
            assert!(lo.get(format!("{key}_decimal")).is_none(), "f64 run has {key}_decimal");
        }
        for key in ["loss_weights", "singular_values"] {
            let d = decimals(&hi, &format!("{key}_decimal"));
            assert_eq!(d.len(), hi[key].as_array().unwrap().len());
        }
        let reference = &hi["reference"];
        for key in ["position_gap", "velocity_gap", "normalized_margin"] {
            assert!(reference[format!("{key}_decimal")].is_string(), "reference.{key}_decimal");
        }
        let w_hi = decimals(&hi, "loss_weights_decimal");
        let w_lo: Vec<f64> = lo["loss_weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let total = w_hi.iter().fold(Float::with_val(P, 0), |a, b| a + b);
        assert!((total - 1u32).abs() < 1e-35);
        for (a, b) in w_hi.iter().zip(&w_lo) {
            assert!((a.to_f64() - b).abs() < 1e-7, "{} vs {b}", a.to_f64());
        }
    }

    /// Deep into the asymptotic regime at 256 bits with the ninth-order pair: the loss weights
    /// equal the certified reference's λ/Σλ to far below f64 round-off.
    #[test]
    fn loss_weights_converge_to_multipliers_at_256_bits() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let v = flow_json(
            &data,
            &["--until-log10-time", "100", "--precision", "256", "--rtol", "1e-30", "--atol", "1e-40"],
        );
        assert_eq!(v["status"], "reached");
        assert_eq!(v["settings"]["method"], "auto");
        assert_eq!(v["reference"]["certified"], true);
        let err: f64 = v["reference"]["multiplier_error_decimal"].as_str().unwrap().parse().unwrap();
        assert!(err < 1e-20, "multiplier error {err:e}");
    }
}

/// Double-double (106 bits) and quad-double (212 bits), issue 18: pure Rust, always built.
mod expansions {
    use super::*;
    use marginflow_solvers::{Dd, Qd, Real};

    fn json(args: &[&str], data: &Path, extra: &[&str]) -> serde_json::Value {
        let out = bin().args(args).arg("--data").arg(data).args(extra).output().unwrap();
        assert!(out.status.success(), "{args:?} {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn flow(data: &Path, extra: &[&str]) -> serde_json::Value {
        json(&["flow", "--width", "4", "--leak", "0.5", "--json"], data, extra)
    }

    fn qds(v: &serde_json::Value) -> Vec<Qd> {
        v.as_array()
            .expect("a list of decimals")
            .iter()
            .map(|s| Qd::parse_decimal(s.as_str().unwrap(), 212).expect("decimal"))
            .collect()
    }

    fn max_diff(a: &[Qd], b: &[Qd]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (*x - y).abs().to_f64()).fold(0.0, f64::max)
    }

    /// Significant digits of a `d.ddd…e±X` string.
    fn digits(s: &str) -> usize {
        s.trim_start_matches('-').split('e').next().unwrap().chars().filter(|c| c.is_ascii_digit()).count()
    }

    /// Quad-double: the loss weights reach λ/Σλ of the certified 212-bit max-margin solution far
    /// below f64 and double-double round-off, print 64 digits and sum to 1 to quad-double level.
    #[test]
    fn quad_double_loss_weights_converge_to_multipliers() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let v = flow(&data, &["--until-log10-time", "40", "--precision", "212", "--rtol", "1e-30", "--atol", "1e-40"]);
        assert_eq!(v["arithmetic"], "quad-double");
        assert_eq!(v["status"], "reached");
        assert_eq!(v["reference"]["certified"], true);
        let err: f64 = v["reference"]["multiplier_error_decimal"].as_str().unwrap().parse().unwrap();
        assert!(err < 1e-25, "multiplier error {err:e}");
        let w = qds(&v["loss_weights_decimal"]);
        assert!(v["loss_weights_decimal"].as_array().unwrap().iter().all(|s| digits(s.as_str().unwrap()) == 64));
        let mut sum = Qd::zero(212);
        for x in &w {
            sum += x;
        }
        assert!((sum - &Qd::one(212)).abs().to_f64() < 1e-60, "Σw − 1 = {:e}", (sum - &Qd::one(212)).to_f64());
    }

    /// Double-double against quad-double on the same command: the same trajectory to the
    /// tolerance (both runs take the same steps and events), 32 digits printed.
    #[test]
    fn double_double_agrees_with_quad_double() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let args = ["--until-log10-time", "20", "--rtol", "1e-24", "--atol", "1e-34"];
        let dd = flow(&data, &[&args[..], &["--precision", "106"]].concat());
        let qd = flow(&data, &[&args[..], &["--precision", "212"]].concat());
        assert_eq!(dd["arithmetic"], "double-double");
        assert_eq!(dd["statistics"]["events"], qd["statistics"]["events"]);
        let diff = max_diff(&qds(&dd["loss_weights_decimal"]), &qds(&qd["loss_weights_decimal"]));
        assert!(diff < 1e-22 && diff > 0.0, "double-double vs quad-double weights: {diff:e}");
        assert!(dd["loss_weights_decimal"].as_array().unwrap().iter().all(|s| digits(s.as_str().unwrap()) == 32));
        // and against f64 at its own tolerance
        let f = flow(&data, &["--until-log10-time", "20", "--rtol", "1e-12", "--atol", "1e-14"]);
        assert_eq!(f["arithmetic"], "f64");
        let fw: Vec<f64> = f["loss_weights"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let qw = qds(&qd["loss_weights_decimal"]);
        for (a, b) in fw.iter().zip(&qw) {
            assert!((a - b.to_f64()).abs() < 1e-9, "{a} vs {}", b.to_f64());
        }
    }

    /// The max-margin polish at 106 and 212 bits: certified, and the multipliers agree with each
    /// other to double-double level and with f64 to f64 level.
    #[test]
    fn maxmargin_at_106_and_212_bits() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let mm =
            |p: &str| json(&["maxmargin", "--width", "4", "--leak", "0.5", "--json", "--precision", p], &data, &[]);
        let (f, dd, qd) = (mm("53"), mm("106"), mm("212"));
        assert_eq!((f["arithmetic"].as_str(), dd["arithmetic"].as_str()), (Some("f64"), Some("double-double")));
        assert_eq!(qd["arithmetic"], "quad-double");
        assert!(dd["certified"] == true && qd["certified"] == true);
        let (ld, lq) = (qds(&dd["multipliers_decimal"]), qds(&qd["multipliers_decimal"]));
        let scale = lq.iter().map(|x| x.to_f64().abs()).fold(0.0, f64::max);
        assert!(max_diff(&ld, &lq) < 1e-29 * scale, "106 vs 212: {:e}", max_diff(&ld, &lq));
        let lf: Vec<f64> = f["multipliers"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        for (a, b) in lf.iter().zip(&lq) {
            assert!((a - b.to_f64()).abs() < 1e-12 * scale);
        }
    }

    /// A double-double run stopped by the step limit and resumed from its checkpoint ends with the
    /// same W.npy bytes as an uninterrupted run (the `dd:` checkpoint text is exact).
    #[test]
    fn double_double_resume_is_bit_identical() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let (full, part) = (dir.path().join("full"), dir.path().join("part"));
        let base = |extra: &[&str], out: &Path| {
            let o = bin()
                .args(["flow", "--width", "4", "--leak", "0.5", "--precision", "106", "--rtol", "1e-20", "--data"])
                .arg(&data)
                .args(["--until-log10-time", "10"])
                .args(extra)
                .arg("--out")
                .arg(out)
                .output()
                .unwrap();
            o.status.code()
        };
        assert_eq!(base(&["--save-weights"], &full), Some(0));
        assert!(matches!(base(&["--max-steps", "8"], &part), Some(0) | Some(3)));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(part.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["status"], "max_steps");
        let cp = std::fs::read_to_string(part.join("checkpoint")).unwrap();
        assert!(cp.contains("dd:"), "double-double values in the checkpoint");
        let o = bin()
            .args(["flow", "--resume"])
            .arg(&part)
            .args(["--until-log10-time", "10", "--save-weights"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(full.join("W.npy")).unwrap(), std::fs::read(part.join("W.npy")).unwrap());
    }

    /// Gradient descent at 106 bits: the same trajectory as f64 to f64 accuracy, and the
    /// arithmetic named.
    #[test]
    fn descent_at_106_bits() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let d = |p: &str| {
            json(
                &[
                    "descent",
                    "--width",
                    "4",
                    "--leak",
                    "0.5",
                    "--step-size",
                    "0.5",
                    "--steps",
                    "50",
                    "--json",
                    "--precision",
                    p,
                ],
                &data,
                &[],
            )
        };
        let (f, dd) = (d("53"), d("106"));
        assert_eq!(dd["arithmetic"], "double-double");
        let (a, b) = (f["frobenius_norm"].as_f64().unwrap(), dd["frobenius_norm"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-12 * a, "{a} vs {b}");
        let _ = Dd::zero(106);
    }
}
