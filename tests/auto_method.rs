//! `--method auto`: Dormand–Prince while kinks are dense, then SEULEX once the normalized flow is
//! stiff (stability-bound steps, no events). It must pay off on a long horizon, agree with the
//! explicit method, leave kink-dense short runs alone, and checkpoint its phase so a run stopped
//! in either phase resumes to the same bytes as an uninterrupted run.

use marginflow::flow::checkpoint::Checkpoint;
use marginflow::flow::Phase;
use marginflow::io::npy::read_npy;
use std::path::Path;

mod common;
use common::{bin, data_file, early, ok, read, summary};

/// The n = 6, d = 300, m = 4, leak 0.5 problem of docs/stiff.md.
fn small_args(data: &Path) -> Vec<String> {
    ["flow", "--data", data.to_str().unwrap(), "--width", "4", "--leak", "0.5"].iter().map(|s| s.to_string()).collect()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn auto_switches_to_seulex_and_agrees_with_dopri5() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 6, 300, 1);
    let base = small_args(&data);
    let (auto, dp) = (tmp.path().join("auto"), tmp.path().join("dopri5"));
    ok(bin().args(&base).args(["--until-log10-time", "1e4", "--out"]).arg(&auto));
    ok(bin().args(&base).args(["--until-log10-time", "1e4", "--method", "dopri5", "--out"]).arg(&dp));
    let (a, d) = (summary(&auto), summary(&dp));
    assert_eq!(a["status"], "reached");
    assert_eq!(d["status"], "reached");
    assert_eq!(a["settings"]["method"], "auto", "settings echo the method asked for");
    assert_eq!(a["method_used"], "dopri5+seulex");
    assert_eq!(d["method_used"], "dopri5");
    assert!(d.get("switched_at_s").is_none());
    let sw = f(&a["switched_at_s"]);
    assert!(sw > 0.0 && sw < f(&a["s"]), "switch point {sw} inside the run");
    // The explicit phase is the uninterrupted dopri5 run up to the switch: same step count there.
    let acc_sw = a["switched_at_accepted"].as_u64().unwrap();
    assert!(acc_sw >= marginflow::flow::AUTO_QUIET_STEPS);

    let (na, nd) = (a["statistics"]["accepted"].as_u64().unwrap(), d["statistics"]["accepted"].as_u64().unwrap());
    assert!(10 * na <= nd, "auto took {na} accepted steps, dopri5 {nd}: expected at least 10× fewer");
    assert_eq!(a["statistics"]["events"], d["statistics"]["events"], "same kinks crossed");

    // Same end point. dopri5 at the default rtol 1e-10 accumulates an error of ~2e-7 in the loss
    // weights over its ~8,000 steps (its multiplier_error is ~2e-7, auto's ~5e-10), so the loss
    // weights are compared with an independent tight dopri5 run (rtol 1e-13, atol 1e-16).
    assert!(rel(f(&a["normalized_margin"]), f(&d["normalized_margin"])) < 1e-7);
    assert!(rel(f(&a["s"]), f(&d["s"])) < 1e-7);
    let tight = tmp.path().join("tight");
    ok(bin()
        .args(&base)
        .args(["--until-log10-time", "1e4", "--method", "dopri5", "--rtol", "1e-13", "--atol", "1e-16", "--out"])
        .arg(&tight));
    let t = summary(&tight);
    assert!(rel(f(&a["normalized_margin"]), f(&t["normalized_margin"])) < 1e-7);
    let (wa, wt) = (a["loss_weights"].as_array().unwrap(), t["loss_weights"].as_array().unwrap());
    assert_eq!(wa.len(), 6);
    for (x, y) in wa.iter().zip(wt) {
        assert!(rel(f(x), f(y)) < 1e-7, "loss weight {x} (auto) vs {y} (dopri5, rtol 1e-13)");
    }
    // Both converge to the certified max-margin multipliers.
    assert_eq!(a["reference"]["certified"], true);
    assert!(f(&a["reference"]["multiplier_error"]) < 1e-6, "{}", a["reference"]);
    assert!(f(&d["reference"]["multiplier_error"]) < 1e-6, "{}", d["reference"]);
    assert!(rel(f(&a["normalized_margin"]), f(&a["reference"]["normalized_margin"])) < 1e-3);
}

#[test]
fn auto_matches_dopri5_through_dense_kinks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 20, 4000, 1);
    let run = |method: &str| {
        let out = tmp.path().join(method);
        ok(bin()
            .args(["flow", "--data", data.to_str().unwrap(), "--width", "16", "--leak", "0.2"])
            .args(["--rtol", "1e-11", "--until-time", "5", "--method", method, "--save-weights", "--out"])
            .arg(&out));
        let (shape, w) = read_npy(&out.join("W.npy")).unwrap();
        assert_eq!(shape, vec![16, 4000]);
        (summary(&out), w)
    };
    let (a, wa) = run("auto");
    let (d, wd) = run("dopri5");
    assert!(d["statistics"]["events"].as_u64().unwrap() > 10, "the test needs many kinks");
    let num: f64 = wa.iter().zip(&wd).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let den: f64 = wd.iter().map(|y| y * y).sum::<f64>().sqrt();
    assert!(num / den < 1e-8, "W differs by {} relative", num / den);
    assert!(a["method_used"] == "dopri5" || a["method_used"] == "dopri5+seulex", "{}", a["method_used"]);
}

/// Stop the auto run with a step limit, resume, and compare everything with the uninterrupted run.
fn resume_case(limit: u64, expect_phase: Phase) {
    resume_case_with(&[], limit, expect_phase);
}

/// [`resume_case`] with extra flags for both legs of the run.
fn resume_case_with(extra: &[&str], limit: u64, expect_phase: Phase) {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 6, 300, 1);
    let mut base = small_args(&data);
    base.extend(extra.iter().map(|s| s.to_string()));
    let (full, part) = (tmp.path().join("full"), tmp.path().join("part"));
    ok(bin().args(&base).args(["--until-log10-time", "1e4", "--save-weights", "--out"]).arg(&full));
    early(bin().args(&base).args(["--until-log10-time", "1e4", "--max-steps", &limit.to_string(), "--out"]).arg(&part));
    let s = summary(&part);
    assert_eq!(s["status"], "max_steps");
    let st = &s["statistics"];
    assert_eq!(
        st["accepted"].as_u64().unwrap() + st["rejected"].as_u64().unwrap(),
        limit,
        "the limit spans both phases"
    );
    let cp = Checkpoint::load(&part.join("checkpoint")).unwrap();
    assert_eq!(cp.phase, expect_phase);
    let expect_used = if expect_phase == Phase::Stiff { "dopri5+seulex" } else { "dopri5" };
    assert_eq!(s["method_used"], expect_used);

    ok(bin().args(["flow", "--resume"]).arg(&part).args(["--until-log10-time", "1e4", "--save-weights"]));
    assert!(read(&full.join("W.npy")) == read(&part.join("W.npy")), "W.npy differs after resume");
    let strip = |p: &Path| {
        let mut v = summary(p);
        v.as_object_mut().unwrap().remove("wall_seconds");
        v.as_object_mut().unwrap().remove("peak_rss_bytes");
        v
    };
    let (a, mut b) = (strip(&full), strip(&part));
    b["settings"]["max_steps"] = serde_json::Value::Null;
    assert_eq!(a["method_used"], "dopri5+seulex");
    let (ta, tb) = (read(&full.join("trajectory.jsonl")), read(&part.join("trajectory.jsonl")));
    // Both phases resume exactly: SEULEX evaluates f at every step start, and Dormand–Prince's
    // first-same-as-last stage is part of the checkpoint, so even the counters agree.
    assert!(ta == tb, "trajectory differs after a resume in {expect_phase:?}");
    assert_eq!(a, b);
}

#[test]
fn resume_in_phase_two_is_bit_identical() {
    // The uninterrupted run switches after AUTO_QUIET_STEPS + (steps through the kinks) steps; a
    // limit well past that (and well before the ~90 steps of the whole run) stops in SEULEX.
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 6, 300, 1);
    let full = tmp.path().join("probe");
    ok(bin().args(small_args(&data)).args(["--until-log10-time", "1e4", "--out"]).arg(&full));
    let s = summary(&full);
    let at = s["switched_at_accepted"].as_u64().unwrap();
    let total = s["statistics"]["accepted"].as_u64().unwrap() + s["statistics"]["rejected"].as_u64().unwrap();
    assert!(at + 10 < total, "switch at {at} of {total} steps leaves too little phase 2 to cut");
    resume_case(at + 10, Phase::Stiff);
}

#[test]
fn resume_in_phase_one_switches_at_the_same_step() {
    // Stopped by the step limit inside the quiet streak: phase 2 must not start in the stopped
    // leg, and the resumed leg must carry the streak over and switch where the full run did.
    resume_case(30, Phase::Explicit);
}

#[test]
fn resume_with_events_off_keeps_the_pattern_watch() {
    // With events off the switch criterion watches the sign pattern of P; its memory is part of
    // the checkpoint, so a run stopped inside the quiet streak (10 accepted steps before the
    // switch) or after the switch resumes to the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 6, 300, 1);
    let mut args = small_args(&data);
    args.extend(["--events", "off", "--until-log10-time", "1e4"].map(String::from));
    let probe = tmp.path().join("probe");
    ok(bin().args(&args).arg("--out").arg(&probe));
    let s = summary(&probe);
    assert_eq!(s["method_used"], "dopri5+seulex", "the events-off run switches once the pattern settles");
    let at = s["switched_at_accepted"].as_u64().unwrap();
    let (accepted, rejected) =
        (s["statistics"]["accepted"].as_u64().unwrap(), s["statistics"]["rejected"].as_u64().unwrap());
    assert!(at > 60, "switched after only {at} accepted steps");
    // The smallest step limit (accepted + rejected) that reaches at − 10 accepted steps.
    let accepted_within = |limit: u64| {
        let out = tmp.path().join(format!("limit{limit}"));
        early(bin().args(&args).args(["--max-steps", &limit.to_string(), "--out"]).arg(&out));
        summary(&out)["statistics"]["accepted"].as_u64().unwrap()
    };
    let (mut lo, mut hi) = (at - 10, at - 10 + rejected);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if accepted_within(mid) >= at - 10 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    resume_case_with(&["--events", "off"], lo, Phase::Explicit);
    // Past every rejected step of the run as well: after the switch.
    let after = at + rejected + 5;
    assert!(after < accepted + rejected, "too little phase 2 to cut ({after} of {} steps)", accepted + rejected);
    resume_case_with(&["--events", "off"], after, Phase::Stiff);
}

#[test]
fn checkpoints_without_phase_fields_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 6, 300, 1);
    let run = tmp.path().join("run");
    ok(bin().args(small_args(&data)).args(["--until-log10-time", "5", "--out"]).arg(&run));
    let cpath = run.join("checkpoint");
    let mut v: serde_json::Value = serde_json::from_slice(&read(&cpath)).unwrap();
    let o = v.as_object_mut().unwrap();
    assert!(o.remove("phase").is_some() && o.remove("switch").is_some());
    std::fs::write(&cpath, serde_json::to_vec(&v).unwrap()).unwrap();
    let cp = Checkpoint::load(&cpath).unwrap();
    assert_eq!(cp.phase, Phase::Explicit);
    ok(bin().args(["flow", "--resume"]).arg(&run).args(["--until-log10-time", "10"]));
    assert_eq!(summary(&run)["status"], "reached");
}
