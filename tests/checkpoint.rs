//! Long runs lose no work: a flow stopped (by a step limit, or by SIGKILL between checkpoints)
//! and resumed from DIR/checkpoint ends with the same bytes as an uninterrupted run.

use marginflow::model::data::{generate, DataKind, GenSettings};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{bin, data_file, early, ok, read, summary};

/// The model flags shared by every run of a test (horizon added by the caller).
fn flow_args(data: &Path, width: &str, rtol: &str) -> Vec<String> {
    ["flow", "--data", data.to_str().unwrap(), "--width", width, "--leak", "0.2", "--rtol", rtol, "--atol", "1e-14"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn resume_after_step_limit_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 20, 1000, 4);
    let base = flow_args(&data, "8", "1e-11");
    let full = tmp.path().join("full");
    let part = tmp.path().join("part");
    ok(bin().args(&base).args(["--until-log10-time", "50", "--save-weights", "--out"]).arg(&full));
    early(bin().args(&base).args(["--until-log10-time", "50", "--max-steps", "40", "--out"]).arg(&part));
    let s = summary(&part);
    assert_eq!(s["status"], "max_steps", "the step limit must stop the first leg");
    ok(bin().args(["flow", "--resume"]).arg(&part).args(["--until-log10-time", "50", "--save-weights"]));
    assert_eq!(read(&full.join("W.npy")), read(&part.join("W.npy")), "W.npy differs after resume");
    assert_eq!(read(&full.join("trajectory.jsonl")), read(&part.join("trajectory.jsonl")), "trajectory differs");
    let strip = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&read(p)).unwrap();
        v.as_object_mut().unwrap().remove("wall_seconds");
        v.as_object_mut().unwrap().remove("peak_rss_bytes");
        v
    };
    let (a, mut b) = (strip(&full.join("summary.json")), strip(&part.join("summary.json")));
    // The resumed leg has no step limit; everything else is the same run.
    b["settings"]["max_steps"] = serde_json::Value::Null;
    assert_eq!(a, b);
}

#[test]
fn resume_after_sigkill_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 40, 3000, 2);
    let mut base = flow_args(&data, "64", "1e-12");
    base.extend(["--until-log10-time", "3000", "--save-weights"].iter().map(|s| s.to_string()));
    let full = tmp.path().join("full");
    let killed = tmp.path().join("killed");
    ok(bin().args(&base).arg("--out").arg(&full));

    let mut child = bin()
        .args(&base)
        .args(["--checkpoint-every", "0.05", "--out"])
        .arg(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let cp = killed.join("checkpoint");
    while !cp.exists() {
        assert!(child.try_wait().unwrap().is_none(), "run ended before its first checkpoint");
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint written");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert!(child.try_wait().unwrap().is_none(), "the run must still be going when killed");
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    assert!(!killed.join("W.npy").exists() && !killed.join("summary.json").exists());

    ok(bin().args(["flow", "--resume"]).arg(&killed).args(["--until-log10-time", "3000", "--save-weights"]));
    assert_eq!(read(&full.join("W.npy")), read(&killed.join("W.npy")), "W.npy differs after SIGKILL + resume");
    assert_eq!(read(&full.join("trajectory.jsonl")), read(&killed.join("trajectory.jsonl")));
}

#[test]
fn resume_refuses_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 200, 1);
    let run = tmp.path().join("run");
    ok(bin().args(flow_args(&data, "4", "1e-8")).args(["--until-log10-time", "5", "--out"]).arg(&run));
    // Replace the data behind the run's back.
    generate(&GenSettings { kind: DataKind::Gaussian, n: 10, d: 200, seed: 99, ..Default::default() })
        .unwrap()
        .save(&data)
        .unwrap();
    let out = bin().args(["flow", "--resume"]).arg(&run).args(["--until-log10-time", "10"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data hash") && err.lines().count() == 1, "{err}");
}
