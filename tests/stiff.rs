//! The stiff integrator (linearly implicit Euler extrapolation, `--method seulex`) on the flow:
//! the Woodbury solve of (I − cJ) against a dense finite-difference Jacobian, agreement with
//! Dormand–Prince through kinks, and the step-count payoff on a long horizon.

#![allow(clippy::needless_range_loop)]
use marginflow::flow::{FlowSystem, Mode};
use marginflow::model::data::{generate, DataKind, Dataset, GenSettings};
use marginflow::model::loss::Loss;
use marginflow::model::network::{Init, ModelSettings, Network};
use marginflow_solvers::extrapolation::Extrapolation;
use marginflow_solvers::linalg;
use marginflow_solvers::ode::{Horizon, IntegratorSettings, IntegratorState, OdeSystem, ShiftedSolve, Status};
use marginflow_solvers::rk::Integrator;
use marginflow_solvers::tableau::dopri5;
use marginflow_solvers::Mat;

fn data() -> Dataset {
    generate(&GenSettings { kind: DataKind::Gaussian, n: 6, d: 300, seed: 1, ..Default::default() }).unwrap()
}

fn model(loss: Loss, init: f64) -> ModelSettings {
    ModelSettings { width: 4, leak: 0.5, init: Init::Scale(init), loss, ..Default::default() }
}

/// A state (B, u) partway along the flow, reached with dopri5 from the model's start.
fn state_at(net: &Network<f64>, s_end: f64) -> (Vec<f64>, Vec<Mode>) {
    let mn = net.m * net.n;
    let mut sys = FlowSystem::new(net, &vec![0.0; mn]);
    let mut integ = Integrator::new(dopri5::<f64>(53), IntegratorSettings::default(), mn + 1, 53).unwrap();
    let mut st = IntegratorState::new(0.0, vec![0.0; mn + 1]);
    let status = integ.integrate(&mut sys, &mut st, &Horizon { s_end: Some(s_end), component_reaches: None }, &mut ());
    assert_eq!(status, Status::Reached);
    (st.y, sys.modes.clone())
}

/// Dense J by central differences of the right-hand side (modes fixed, so f is smooth in y).
fn fd_jacobian(sys: &mut FlowSystem<'_, f64>, y: &[f64]) -> Mat<f64> {
    let dim = y.len();
    let mut j = Mat::zeros(dim, dim, 53);
    let (mut fp, mut fm) = (vec![0.0; dim], vec![0.0; dim]);
    for c in 0..dim {
        let h = 1e-6 * y[c].abs().max(1.0);
        let mut yp = y.to_vec();
        yp[c] += h;
        sys.eval_inplace(&0.0, &yp, &mut fp);
        let mut ym = y.to_vec();
        ym[c] -= h;
        sys.eval_inplace(&0.0, &ym, &mut fm);
        for r in 0..dim {
            *j.at_mut(r, c) = (fp[r] - fm[r]) / (2.0 * h);
        }
    }
    j
}

fn check_solve(loss: Loss) {
    let d = data();
    let net: Network<f64> = Network::new(&d, &model(loss, 0.05), 53).unwrap();
    let mn = net.m * net.n;
    let (y, modes) = state_at(&net, 3.0);
    let mut sys = FlowSystem::new(&net, &y[..mn]);
    sys.modes = modes;
    assert!(sys.modes.contains(&Mode::Negative) && sys.modes.contains(&Mode::Positive), "mixed modes");
    let j = fd_jacobian(&mut sys, &y);
    let dim = mn + 1;
    for (ci, &c) in [0.1f64, 2.0, 50.0].iter().enumerate() {
        let rhs: Vec<f64> = (0..dim).map(|i| ((i * 7 + ci * 3) as f64 * 0.37).sin()).collect();
        let mut a = Mat::identity(dim, 53);
        for r in 0..dim {
            for k in 0..dim {
                *a.at_mut(r, k) -= c * j.at(r, k);
            }
        }
        let dense = linalg::lu_solve(&a, &rhs).unwrap();
        let mut x = rhs.clone();
        assert!(sys.solve_shifted(&0.0, &y, &c, &mut x));
        let scale = dense.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = x.iter().zip(&dense).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        // Central differences are good to ~1e-9 relative; (I − cJ) amplifies that by its
        // condition number, which grows with c, so the solutions are compared for c ≤ 2 and the
        // residual (insensitive to conditioning) for every c.
        if c <= 2.0 {
            assert!(err <= 1e-6 * scale, "{loss:?} c = {c}: max error {err:e} vs scale {scale:e}");
        }
        // The residual of the Woodbury solution against the finite-difference operator.
        let mut res = 0.0f64;
        for r in 0..dim {
            let mut ax = 0.0;
            for k in 0..dim {
                ax += a.at(r, k) * x[k];
            }
            res = res.max((ax - rhs[r]).abs());
        }
        eprintln!("{loss:?} c = {c}: solution difference {err:e}, residual {res:e}");
        assert!(res <= 1e-6 * (1.0 + c), "{loss:?} c = {c}: residual {res:e}");
    }
}

#[test]
fn woodbury_solve_matches_finite_difference_jacobian_logistic() {
    check_solve(Loss::Logistic);
}

#[test]
fn woodbury_solve_matches_finite_difference_jacobian_exponential() {
    check_solve(Loss::Exponential);
}

fn run_to(net: &Network<f64>, seulex: bool, rtol: f64, horizon: Horizon<f64>) -> (IntegratorState<f64>, Status) {
    let mn = net.m * net.n;
    let mut sys = FlowSystem::new(net, &vec![0.0; mn]);
    let settings = IntegratorSettings { rtol, atol: rtol * 1e-2, ..Default::default() };
    let mut st = IntegratorState::new(0.0, vec![0.0; mn + 1]);
    let status = if seulex {
        let mut integ = Extrapolation::new(settings, mn + 1, 53).unwrap();
        integ.integrate(&mut sys, &mut st, &horizon, &mut ())
    } else {
        let mut integ = Integrator::new(dopri5::<f64>(53), settings, mn + 1, 53).unwrap();
        integ.integrate(&mut sys, &mut st, &horizon, &mut ())
    };
    (st, status)
}

#[test]
fn agrees_with_dopri5_through_kinks() {
    let d = data();
    let net: Network<f64> = Network::new(&d, &model(Loss::Logistic, 0.05), 53).unwrap();
    let mn = net.m * net.n;
    let horizon = || Horizon { s_end: Some(20.0), component_reaches: None };
    let (a, sa) = run_to(&net, false, 1e-11, horizon());
    let (b, sb) = run_to(&net, true, 1e-11, horizon());
    assert_eq!((sa, sb), (Status::Reached, Status::Reached));
    assert!(a.stats.events >= 3, "the run crosses kinks: {:?}", a.stats);
    assert_eq!(a.stats.events, b.stats.events, "same kinks crossed");
    let wa = net.small_weights(&a.y[..mn]);
    let wb = net.small_weights(&b.y[..mn]);
    let diff: f64 = wa.data.iter().zip(&wb.data).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let rel = diff / wa.frobenius_norm();
    assert!(rel < 1e-8, "relative W difference {rel:e}");
    assert!((a.y[mn] - b.y[mn]).abs() < 1e-8 * a.y[mn].abs(), "u: {} vs {}", a.y[mn], b.y[mn]);
}

#[test]
fn far_fewer_steps_to_a_deep_horizon() {
    let d = data();
    let net: Network<f64> = Network::new(&d, &ModelSettings { width: 4, leak: 0.5, ..Default::default() }, 53).unwrap();
    let mn = net.m * net.n;
    // t = 10^(10^4): u = log(1 + t) = 10^4 ln 10 (+ 10^(−10^4), below round-off).
    let target = 1e4 * 10f64.ln();
    let horizon = || Horizon { s_end: None, component_reaches: Some((mn, target)) };
    let (a, sa) = run_to(&net, false, 1e-10, horizon());
    let (b, sb) = run_to(&net, true, 1e-10, horizon());
    assert_eq!((sa, sb), (Status::Reached, Status::Reached));
    eprintln!("dopri5: s = {} {:?}\nseulex: s = {} {:?}", a.s, a.stats, b.s, b.stats);
    assert!(b.stats.accepted * 20 < a.stats.accepted, "seulex {:?} vs dopri5 {:?}", b.stats, a.stats);
    assert!(b.stats.rhs_evaluations * 4 < a.stats.rhs_evaluations, "seulex {:?} vs dopri5 {:?}", b.stats, a.stats);
    // Same end point: the located s agree to the tolerance.
    assert!((a.s - b.s).abs() < 1e-8 * a.s, "s: {} vs {}", a.s, b.s);
}

#[test]
fn resume_is_bit_identical() {
    let d = data();
    let net: Network<f64> = Network::new(&d, &model(Loss::Logistic, 0.05), 53).unwrap();
    let mn = net.m * net.n;
    let settings = IntegratorSettings { rtol: 1e-10, atol: 1e-12, ..Default::default() };
    let horizon = Horizon { s_end: Some(50.0), component_reaches: None };
    let (whole, _) = run_to(&net, true, 1e-10, Horizon { s_end: Some(50.0), component_reaches: None });
    let mut sys = FlowSystem::new(&net, &vec![0.0; mn]);
    let mut st = IntegratorState::new(0.0, vec![0.0; mn + 1]);
    let mut first =
        Extrapolation::new(IntegratorSettings { max_steps: Some(7), ..settings.clone() }, mn + 1, 53).unwrap();
    assert_eq!(first.integrate(&mut sys, &mut st, &horizon, &mut ()), Status::MaxSteps);
    // Resume with a fresh integrator and a fresh system carrying only the modes.
    let modes = sys.modes.clone();
    let mut sys2 = FlowSystem::new(&net, &st.y[..mn]);
    sys2.modes = modes;
    let mut second = Extrapolation::new(settings, mn + 1, 53).unwrap();
    assert_eq!(second.integrate(&mut sys2, &mut st, &horizon, &mut ()), Status::Reached);
    assert_eq!(st.stats, whole.stats);
    assert!(st.y.iter().zip(&whole.y).all(|(a, b)| a.to_bits() == b.to_bits()));
}
