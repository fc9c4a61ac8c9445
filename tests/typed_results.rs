//! Typed results (flow, descent, maxmargin) against their JSON, the reference a flow hands over
//! against an independent solve, the in-memory outer layer against the seeded one, and errors that
//! name settings (fields) and checkpoint files.

use marginflow::descent::{self, DescentRow, DescentSettings, DescentSummary};
use marginflow::error::Error;
use marginflow::experiments::validate::{self, RowCollector};
use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::{self, FlowHorizon, FlowSettings, FlowSummary, TrajectoryRow};
use marginflow::maxmargin::{self, MaxMarginSettings, MaxMarginSummary, PatternSource};
use marginflow::metrics::to_json_value;
use marginflow::model::data::{generate, DataKind, Dataset, GenSettings};
use marginflow::model::network::{ModelSettings, Network, OuterLayer};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn gaussian(n: usize, d: usize, seed: u64) -> Dataset {
    generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed, ..Default::default() }).unwrap()
}

fn flow_settings(width: usize, outer: OuterLayer, seed: u64) -> FlowSettings {
    FlowSettings {
        model: ModelSettings { width, leak: 0.2, outer, seed, ..Default::default() },
        horizon: FlowHorizon::Log10Time(20.0),
        ..Default::default()
    }
}

/// `value` → JSON → back gives the same struct, and writing it again gives the same JSON.
fn round_trip<S: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &S) -> serde_json::Value {
    let json = to_json_value(value);
    let back: S = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(&back, value);
    assert_eq!(to_json_value(&back), json);
    json
}

/// The keys of a JSON object, in the order a file holds them.
fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn flow_summary_and_rows_round_trip_with_sorted_keys_and_no_absent_groups() {
    let data = gaussian(8, 400, 1);
    let mut rows = RowCollector::default();
    let out = flow::run(&data, &flow_settings(6, OuterLayer::Balanced, 0), None, false, &mut rows).unwrap();
    let json = round_trip(&out.summary);
    let k = keys(&json);
    let mut sorted = k.clone();
    sorted.sort();
    assert_eq!(k, sorted, "summary.json keys are written sorted");
    for key in ["status", "s", "log10_time", "singular_values", "statistics", "reference", "shape", "wall_seconds"] {
        assert!(json.get(key).is_some(), "summary lacks {key}: {json}");
    }
    // At 53 bits there are no decimal strings; the switch point is there exactly when `auto`
    // switched, and a summary without one reads back without one.
    assert!(k.iter().all(|k| !k.ends_with("_decimal")), "{k:?}");
    assert_eq!(json.get("switched_at_s").is_some(), out.summary.switch.is_some());
    assert_eq!(out.summary.switch.is_some(), out.summary.method_used.ends_with("+seulex"));
    let unswitched = FlowSummary { switch: None, ..out.summary.clone() };
    let j = round_trip(&unswitched);
    assert!(j.get("switched_at_s").is_none() && j.get("switched_at_accepted").is_none());
    assert!(!rows.rows.is_empty());
    for r in &rows.rows {
        let j = round_trip(r);
        assert!(j.get("cosine_position").is_some() && r.cosines.is_some(), "rows carry the cosines: {j}");
    }
    // A row without the reference has no cosine keys and reads back without cosines.
    let bare = TrajectoryRow { cosines: None, ..rows.rows[0].clone() };
    let j = round_trip(&bare);
    assert!(j.get("cosine_position").is_none() && j.get("cosine_velocity").is_none());
    // The summary's last row and the summary agree on the shared numbers (the final row is the end state).
    let last = rows.rows.last().unwrap();
    assert_eq!(last.time, out.summary.time);
    assert_eq!(last.state, out.summary.state);
}

#[test]
fn the_reference_handed_over_is_the_independent_theory_solution() {
    let data = gaussian(8, 400, 2);
    let settings = flow_settings(6, OuterLayer::Balanced, 0);
    let out = flow::run(&data, &settings, None, false, &mut RowCollector::default()).unwrap();
    let r = out.reference.expect("the theory QP is solved on this data");
    let net: Network<f64> = Network::new(&data, &settings.model, 53).unwrap();
    let again = maxmargin::theory_reference(&net).unwrap();
    assert_eq!(r.norm.to_bits(), again.norm.to_bits());
    assert_eq!(r.multipliers, again.multipliers);
    assert_eq!(r.coefficients.data, again.coefficients.data);
    assert_eq!(r.certified, again.certified);
    let c = out.summary.reference.as_ref().and_then(|x| x.comparison()).unwrap();
    assert_eq!(c.normalized_margin, Some(1.0 / again.norm));
    assert_eq!(c.certified, again.certified);
}

#[test]
fn an_outer_layer_in_memory_runs_the_flow_of_the_seeded_one() {
    let data = gaussian(8, 400, 3);
    let seeded = flow_settings(7, OuterLayer::Random, 5);
    let a = seeded.model.outer_weights().unwrap();
    let in_memory = flow_settings(7, OuterLayer::Vector(a.clone()), 5);
    let x = flow::run(&data, &seeded, None, false, &mut RowCollector::default()).unwrap();
    let y = flow::run(&data, &in_memory, None, false, &mut RowCollector::default()).unwrap();
    assert_eq!(x.summary.time, y.summary.time);
    assert_eq!(x.summary.state, y.summary.state);
    assert_eq!(x.summary.loss_weights, y.summary.loss_weights);
    assert_eq!(x.summary.statistics, y.summary.statistics);
    // A vector of the wrong length is an error naming the setting.
    let short = flow_settings(7, OuterLayer::Vector(a[..6].to_vec()), 5);
    let e = flow::run(&data, &short, None, false, &mut RowCollector::default()).err().unwrap();
    assert!(matches!(&e, Error::BadSetting { setting, .. } if setting == "outer"), "{e}");
}

#[test]
fn library_errors_name_settings_and_scenarios_name_keys() {
    let setting_of = |e: Error| match e {
        Error::BadSetting { setting, .. } => setting,
        other => panic!("not a setting error: {other}"),
    };
    let mut s = FlowSettings { rtol: 0.0, ..Default::default() };
    assert_eq!(setting_of(s.validate().unwrap_err()), "rtol");
    s.rtol = 1e-10;
    s.horizon = FlowHorizon::Log10Time(f64::NAN);
    assert_eq!(setting_of(s.validate().unwrap_err()), "until_log10_time");
    s.horizon = FlowHorizon::Time(-1.0);
    assert_eq!(setting_of(s.validate().unwrap_err()), "until_time");
    s.horizon = FlowHorizon::Log10Time(3.0);
    s.model.init = marginflow::model::network::Init::Scale(-1.0);
    assert_eq!(setting_of(s.validate().unwrap_err()), "init_scale");
    let d = DescentSettings { step_size: 0.0, ..Default::default() };
    assert_eq!(setting_of(d.validate().unwrap_err()), "step_size");
    let g = GenSettings { n: 1, ..Default::default() };
    assert_eq!(setting_of(g.validate().unwrap_err()), "n");
    // The scenario loader names the key (and the file) without editing flag names.
    let scenario = |body: &str| validate::prepare(body, "s.toml", None).unwrap_err().to_string();
    let m = scenario("name = \"x\"\nuntil_log10_time = nan\n[generate]\nn = 4\nd = 50\n");
    assert!(m.starts_with("s.toml: key `until_log10_time`: must be finite and > 0"), "{m}");
    let m = scenario("name = \"x\"\ninit_scale = -1\n[generate]\nn = 4\nd = 50\n");
    assert!(m.starts_with("s.toml: key `init_scale`:"), "{m}");
    let m = scenario("name = \"x\"\n[generate]\nn = 1\nd = 50\n");
    assert!(m.starts_with("s.toml: key `generate.n`:"), "{m}");
}

#[test]
fn checkpoint_errors_name_the_checkpoint_file() {
    let data = gaussian(8, 400, 4);
    let settings = flow_settings(6, OuterLayer::Balanced, 0);
    let out = flow::run(&data, &settings, None, false, &mut RowCollector::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-a").join("checkpoint");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, out.checkpoint.to_bytes()).unwrap();
    let cp = Checkpoint::load(&path).unwrap();
    assert_eq!(cp.path(), path);
    // Resuming on other data is refused, naming the file.
    let other = gaussian(8, 400, 5);
    let e = flow::run(&other, &settings, Some(cp), false, &mut RowCollector::default()).err().unwrap();
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}: data hash", path.display())), "{msg}");
}

#[test]
fn descent_summary_and_rows_round_trip() {
    let data = gaussian(10, 300, 6);
    let s = DescentSettings {
        model: ModelSettings { width: 6, ..Default::default() },
        step_size: 0.3,
        steps: 40,
        ..Default::default()
    };
    let mut rows: Vec<DescentRow> = Vec::new();
    let out = descent::run(&data, &s, false, &mut rows).unwrap();
    let json = round_trip::<DescentSummary>(&out.summary);
    assert_eq!(json["step"], 40);
    assert_eq!(json["initial_stable_rank"].as_f64(), rows[0].state.stable_rank);
    assert_eq!(rows.len(), 41, "one row per step for the first 100 steps");
    for r in &rows {
        round_trip(r);
    }
    assert_eq!(rows.last().unwrap(), &out.summary.last);
}

#[test]
fn maxmargin_summary_round_trips_and_a_given_pattern_is_used_as_given() {
    let data = gaussian(8, 400, 7);
    let model = ModelSettings { width: 6, leak: 0.2, ..Default::default() };
    let settings = MaxMarginSettings::default();
    let theory = maxmargin::solve(&data, &model, &PatternSource::Theory, 53, &settings).unwrap();
    let json = round_trip::<MaxMarginSummary>(&theory.summary);
    assert_eq!(json["pattern"], "theory");
    assert!(json.get("norm").is_some() && json.get("sigma3_over_sigma1").is_some());
    // The theory pattern handed over as a given pattern gives the same solution.
    let net: Network<f64> = Network::new(&data, &model, 53).unwrap();
    let given = PatternSource::Given { name: "mine".into(), signs: net.theory_pattern() };
    let same = maxmargin::solve(&data, &model, &given, 53, &settings).unwrap();
    assert_eq!(same.summary.pattern, "mine");
    assert_eq!(same.summary.solution, theory.summary.solution);
    assert_eq!(same.weights, theory.weights);
    // Every sign flipped on one row's first point changes the problem (a different pattern).
    let mut flipped = net.theory_pattern();
    flipped[0] = -flipped[0];
    let other = PatternSource::Given { name: "flipped".into(), signs: flipped };
    let changed = maxmargin::solve(&data, &model, &other, 53, &settings).unwrap();
    assert_ne!(changed.summary.solution, theory.summary.solution);
    // A pattern of the wrong size names the setting.
    let short = PatternSource::Given { name: "short".into(), signs: vec![1; 5] };
    let e = maxmargin::solve(&data, &model, &short, 53, &settings).err().unwrap();
    assert!(matches!(&e, Error::BadSetting { setting, .. } if setting == "pattern"), "{e}");
}

#[test]
fn a_summary_read_from_its_file_is_the_summary() {
    let data = gaussian(8, 400, 8);
    let out = flow::run(&data, &flow_settings(6, OuterLayer::Balanced, 1), None, false, &mut RowCollector::default())
        .unwrap();
    let text = serde_json::to_vec_pretty(&to_json_value(&out.summary)).unwrap();
    let back: FlowSummary = serde_json::from_slice(&text).unwrap();
    assert_eq!(back, out.summary);
}
