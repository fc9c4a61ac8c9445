//! The theorem library of `validate`: the path-length bound against the chord between saved
//! weights (an independent computation), the conditioning of the multiplier map against its
//! closed form on orthogonal data, scenario checks, `--list-theorems` and `--theorem`.

use marginflow::experiments::validate::{self, dynamics, ClaimKind, Report, Verdict};
use marginflow::flow::{self, FlowHorizon, FlowSettings};
use marginflow::model::data::{generate, DataKind, GenSettings};
use marginflow::model::loss::Loss;
use marginflow::model::network::ModelSettings;

mod common;
use common::bin;

fn settings(horizon: FlowHorizon) -> FlowSettings {
    FlowSettings { model: ModelSettings { width: 8, leak: 0.2, ..Default::default() }, horizon, ..Default::default() }
}

fn angle(u: &[f64], v: &[f64]) -> f64 {
    let dot: f64 = u.iter().zip(v).map(|(a, b)| a * b).sum();
    let nu: f64 = u.iter().map(|a| a * a).sum::<f64>().sqrt();
    let nv: f64 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    (dot / (nu * nv)).clamp(-1.0, 1.0).acos()
}

/// The path length of W/‖W‖ over [s1, s2] is at least the angle between W(s1) and W(s2)
/// (computed from the saved weights of two runs); the bound from the rows of the longer run
/// over rows enclosing [s1, s2] must be at least that angle. And it is not vacuous: within a
/// factor 100 of it.
#[test]
fn path_length_bound_is_at_least_the_chord_of_saved_weights() {
    let data =
        generate(&GenSettings { kind: DataKind::Gaussian, n: 10, d: 600, seed: 3, ..Default::default() }).unwrap();
    for (s1, s2) in [(0.5, 2.0), (2.0, 6.0)] {
        let mut c1 = validate::RowCollector::default();
        let a = flow::run(&data, &settings(FlowHorizon::S(s1)), None, true, &mut c1).unwrap();
        let mut c2 = validate::RowCollector::default();
        let b = flow::run(&data, &settings(FlowHorizon::S(s2)), None, true, &mut c2).unwrap();
        let chord = angle(a.weights.as_ref().unwrap(), b.weights.as_ref().unwrap());
        let rows: Vec<dynamics::Row> = c2
            .rows
            .iter()
            .map(|r| dynamics::Row {
                s: r.time.s.unwrap(),
                log10_time: r.time.log10_time.unwrap(),
                log10_loss: r.state.log10_loss.unwrap(),
                norm: r.state.frobenius_norm.unwrap(),
            })
            .collect();
        let sep = dynamics::separated(Loss::Logistic, data.n, &rows);
        let from = sep.iter().map(|(r, _)| r.s).filter(|s| *s <= s1).fold(f64::NAN, f64::max);
        assert!(from.is_finite(), "no separated row before s = {s1}");
        let bound = dynamics::path_length_bound(&sep, from).unwrap();
        assert!(bound >= chord, "[{s1}, {s2}]: bound {bound} < chord {chord}");
        assert!(bound <= 100.0 * chord, "[{s1}, {s2}]: bound {bound} vacuous against chord {chord}");
    }
}

/// On exactly orthogonal data with the theory pattern and a balanced outer layer the multiplier
/// map's Gram matrix is diagonal, A_ii = ‖x_i‖² (1 + γ²)/2, so κ(A) = R_max²/R_min².
#[test]
fn kkt_conditioning_matches_the_orthogonal_closed_form() {
    let text = "name = \"orth\"\nwidth = 8\nleak = 0.2\nuntil_log10_time = 100\ntheorems = [\"lyu-li2020\"]\n\n\
                [generate]\nkind = \"orthogonal\"\nn = 6\nd = 50\nseed = 2\n";
    let p = validate::prepare(text, "orth.toml", None).unwrap();
    let norms: Vec<f64> = (0..p.data.n).map(|i| p.data.row(i).iter().map(|v| v * v).sum()).collect();
    let expected = norms.iter().cloned().fold(f64::MIN, f64::max) / norms.iter().cloned().fold(f64::MAX, f64::min);
    let r = validate::run_scenario(&p).unwrap();
    let kkt = r.claims.iter().find(|c| c.claim == ClaimKind::Kkt).unwrap();
    assert_eq!(kkt.verdict, Verdict::Holds, "{kkt:?}");
    let kappa = kkt.measurements.iter().find(|m| m.name.starts_with("condition number")).unwrap().value.unwrap();
    assert!((kappa / expected - 1.0).abs() < 1e-6, "κ = {kappa}, closed form {expected}");
}

/// Every new flow claim holds on a Gaussian scenario in the regime; the descent claims hold from
/// a small initialization and fail from the default scale.
#[test]
fn new_claims_hold_and_fail_where_the_theory_says() {
    let flow =
        "name = \"g\"\nwidth = 8\nleak = 0.2\nuntil_log10_time = 300\n\n[generate]\nn = 10\nd = 2000\nseed = 1\n";
    let r = validate::run_scenario(&validate::prepare(flow, "g.toml", None).unwrap()).unwrap();
    for k in [
        ClaimKind::SmoothedMargin,
        ClaimKind::LossRates,
        ClaimKind::Kkt,
        ClaimKind::PathLength,
        ClaimKind::BlockStableRank,
        ClaimKind::MarginRatio,
    ] {
        let c = r.claims.iter().find(|c| c.claim == k).unwrap_or_else(|| panic!("{k:?} missing"));
        assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
        assert_eq!(c.theorem, validate::theorem_of(k).id);
    }
    let gd = |scale: &str| {
        format!(
            "name = \"gd\"\nkind = \"descent\"\nwidth = 20\nleak = 0.1\ninit_scale = {scale}\nsteps = 200\n\
             activation = \"smooth\"\n\n[generate]\nkind = \"mixture\"\nn = 10\nd = 2000\nseed = 2\n"
        )
    };
    let small = validate::run_scenario(&validate::prepare(&gd("1e-8"), "gd.toml", None).unwrap()).unwrap();
    let c = small.claims.iter().find(|c| c.claim == ClaimKind::GdStableRank).unwrap();
    assert_eq!(c.verdict, Verdict::Holds, "{c:?}");
    // The stable rank at step 1 reported equals the descent row's, computed independently by the
    // descent module's SVD.
    let row1 = small.descent.as_ref().unwrap().rows.iter().find(|r| r.step == 1).unwrap().stable_rank;
    let m1 = c.measurements.iter().find(|m| m.name == "stable rank at step 1").unwrap().value.unwrap();
    assert_eq!(row1, m1);
    let large = validate::run_scenario(&validate::prepare(&gd("0.02236"), "gd.toml", None).unwrap()).unwrap();
    let c = large.claims.iter().find(|c| c.claim == ClaimKind::GdStableRank).unwrap();
    assert_eq!(c.verdict, Verdict::Fails, "{c:?}");
}

#[test]
fn scenario_theorem_keys_are_checked() {
    let base = "name = \"x\"\n[generate]\nn = 6\nd = 100\n";
    let e = validate::prepare(&format!("theorems = [\"nope\"]\n{base}"), "x.toml", None).unwrap_err().to_string();
    assert!(e.contains("unknown theorem") && e.contains("frei2023-gf"), "{e}");
    let e =
        validate::prepare(&format!("theorems = [\"frei2023-gd\"]\n{base}"), "x.toml", None).unwrap_err().to_string();
    assert!(e.contains("does not apply to kind = \"flow\""), "{e}");
    let e = validate::prepare(&format!("theorems = [\"frei2023-benign\"]\n{base}"), "x.toml", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a `[test]` table"), "{e}");
    let e = validate::prepare(&format!("steps = 10\n{base}"), "x.toml", None).unwrap_err().to_string();
    assert!(e.contains("applies to kind = \"descent\" only"), "{e}");
    let e = validate::prepare(&format!("expect_fail = [\"gd_stable_rank\"]\n{base}"), "x.toml", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not check"), "{e}");
    // Default theorems by kind.
    let p = validate::prepare(base, "x.toml", None).unwrap();
    let ids: Vec<&str> = p.theorems.iter().map(|t| t.id).collect();
    assert_eq!(ids, ["frei2023-gf", "lyu-li2020", "ji-telgarsky2020", "kou-chen-gu2023"]);
    let p = validate::prepare(&format!("kind = \"descent\"\n{base}"), "x.toml", None).unwrap();
    let ids: Vec<&str> = p.theorems.iter().map(|t| t.id).collect();
    assert_eq!(ids, ["frei2023-gd", "kou-chen-gu2023"]);
}

#[test]
fn list_theorems_and_theorem_filter() {
    let o = bin().args(["validate", "--list-theorems"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    for t in validate::THEOREMS {
        assert!(text.contains(t.id) && text.contains(t.citation), "{} missing", t.id);
    }
    let o = bin().args(["validate", "--theorem", "nope"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let o = bin().args(["validate", "-q", "--theorem", "frei2023-gd", "--out"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Report = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let names: Vec<&str> = report.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gd-small-init", "gd-default-init"]);
    for s in &report.scenarios {
        assert!(s.claims.iter().all(|c| c.theorem == "frei2023-gd"));
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("### frei2023-gd") && md.contains("arXiv:2210.07082"));
}

/// ReLU (γ = 0): the flow runs, Lyu–Li's and Ji–Telgarsky's claims hold, Kou–Chen–Gu's bounded
/// stable rank holds, and the claims of theorems that assume γ > 0 are reported, not gating.
#[test]
fn relu_flow_checks_the_theorems_that_cover_it() {
    let text =
        "name = \"relu\"\nwidth = 8\nleak = 0.0\nuntil_log10_time = 200\n\n[generate]\nn = 10\nd = 2000\nseed = 1\n";
    let r = validate::run_scenario(&validate::prepare(text, "relu.toml", None).unwrap()).unwrap();
    for c in &r.claims {
        match c.theorem.as_str() {
            "frei2023-gf" => {
                assert!(matches!(c.verdict, Verdict::Reported | Verdict::NotApplicable), "{c:?}");
                assert!(c.measurements.iter().all(|m| !m.gating));
            }
            _ => assert_eq!(c.verdict, Verdict::Holds, "{c:?}"),
        }
    }
    let b = r.claims.iter().find(|c| c.claim == ClaimKind::BlockStableRank).unwrap();
    assert!(b.measurements.iter().any(|m| m.gating && m.name.contains("ReLU: bounded")));
    assert!(!r.fails());
}
