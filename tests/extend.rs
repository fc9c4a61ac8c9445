//! Issue 23 item 6, "extending a run is running it": a run to log10 t = 5 resumed to 10 must end
//! byte-identical to one run to 10 (W.npy, summary minus timings, trajectory rows), for both
//! engines. Not yet true: a horizon inside a step moves the integrator's state to the horizon
//! (the step sequence restarts there on resume). The fix keeps the integrator's own step in the
//! checkpoint and writes the horizon state from the dense output; until then the test is ignored.

use std::path::Path;

mod common;
use common::{bin, ok, read};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn summary_without_timings(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap();
    v.as_object_mut().unwrap().remove("wall_seconds");
    v
}

fn extended_equals_one_go(engine: &str) {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 20, 400, 1);
    let (one, two) = (t.path().join("one"), t.path().join("two"));
    let flow = |out: &Path, x: &str| {
        let mut c = bin();
        c.args(["flow", "--data", s(&data), "--width", "16", "--leak", "0.2", "--engine", engine]);
        c.args(["--until-log10-time", x, "--save-weights", "-q", "--out", s(out)]);
        c
    };
    ok(&mut flow(&one, "10"));
    ok(&mut flow(&two, "5"));
    ok(bin().args(["flow", "--resume", s(&two), "--until-log10-time", "10", "-q"]));
    assert_eq!(read(&one.join("W.npy")), read(&two.join("W.npy")), "{engine}: W.npy");
    assert_eq!(read(&one.join("trajectory.jsonl")), read(&two.join("trajectory.jsonl")), "{engine}: rows");
    assert_eq!(summary_without_timings(&one), summary_without_timings(&two), "{engine}: summary");
}

#[test]
#[ignore = "issue 23 item 6 is not done yet: a horizon inside a step restarts the step sequence"]
fn extending_a_dual_run_is_running_it() {
    extended_equals_one_go("dual");
}

#[test]
#[ignore = "issue 23 item 6 is not done yet: a horizon inside a step restarts the step sequence"]
fn extending_a_span_run_is_running_it() {
    extended_equals_one_go("span");
}
