//! Sweeps as plan + shards + merge: the merged outputs equal the local sweep's byte for byte
//! (wall-clock fields aside), shards skip completed runs, a shard killed with SIGKILL and rerun
//! merges to the same bytes, and missing or failed runs are listed by `merge` with their error.

mod common;
use common::{assert_same_outputs, bin, data_file, ok, read};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

fn flow_sweep_args(data: &Path) -> Vec<String> {
    ["sweep", "flow", "--data", data.to_str().unwrap(), "--width", "4,6", "--seed", "0..2", "--until-log10-time", "3,5"]
        .map(String::from)
        .to_vec()
}

#[test]
fn plan_shards_and_merge_equal_the_local_sweep_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 3);
    let local = tmp.path().join("local");
    ok(bin().args(flow_sweep_args(&data)).arg("--out").arg(&local));
    let sharded = tmp.path().join("sharded");
    ok(bin().args(flow_sweep_args(&data)).arg("--out").arg(&sharded).arg("--plan-only"));
    // The plan is deterministic and the local sweep wrote the same one.
    assert_eq!(read(&sharded.join("plan.json")), read(&local.join("plan.json")));
    let again = tmp.path().join("again");
    ok(bin().args(flow_sweep_args(&data)).arg("--out").arg(&again).arg("--plan-only"));
    assert_eq!(read(&sharded.join("plan.json")), read(&again.join("plan.json")));
    // Only the plan so far.
    assert!(!sharded.join("runs.csv").exists() && !sharded.join("runs").exists());
    // Shards in a scrambled order, one through --task-id/--tasks.
    for s in ["2/4", "0/4", "3/4"] {
        ok(bin().args(["sweep", "run"]).arg(&sharded).args(["--shard", s]));
    }
    ok(bin().args(["sweep", "run"]).arg(&sharded).args(["--task-id", "1", "--tasks", "4"]));
    ok(bin().args(["sweep", "merge"]).arg(&sharded));
    assert_same_outputs(&local, &sharded);
    // 2 widths × 3 seeds × 2 horizons, last axis fastest; the plan's run order is runs.jsonl's.
    let plan: serde_json::Value = serde_json::from_slice(&read(&sharded.join("plan.json"))).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 12);
    let jsonl = String::from_utf8(read(&local.join("runs.jsonl"))).unwrap();
    for (k, (line, run)) in jsonl.lines().zip(runs).enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["index"], k);
        assert_eq!(run["index"], k);
        for pair in run["values"].as_array().unwrap() {
            assert_eq!(v["values"][pair[0].as_str().unwrap()], pair[1]);
        }
    }
    assert_eq!(runs[7]["values"], serde_json::json!([["width", 6.0], ["seed", 0.0], ["until_log10_time", 5.0]]));
    // Run 7 equals a direct `flow` run with its settings.
    let direct = tmp.path().join("direct");
    ok(bin()
        .args(["flow", "--data", data.to_str().unwrap(), "--width", "6", "--seed", "0", "--until-log10-time", "5"])
        .arg("--out")
        .arg(&direct));
    let summary: serde_json::Value = serde_json::from_slice(&read(&direct.join("summary.json"))).unwrap();
    let line7: serde_json::Value = serde_json::from_str(jsonl.lines().nth(7).unwrap()).unwrap();
    for key in ["normalized_margin", "stable_rank", "log10_loss", "s"] {
        assert_eq!(line7["summary"][key], summary[key], "{key}");
    }
}

#[test]
fn a_shard_killed_mid_run_and_rerun_merges_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 5);
    // 12 descent runs of 300,000 steps each: long enough to kill the shard between runs.
    let args = |out: &Path| {
        let mut c = bin();
        c.args(["sweep", "descent", "--data", data.to_str().unwrap(), "--width", "8", "--step-size", "0.1"])
            .args(["--seed", "0..5", "--steps", "300000,300001", "--threads", "1", "--out"])
            .arg(out);
        c
    };
    let local = tmp.path().join("local");
    ok(&mut args(&local));
    let dir = tmp.path().join("killed");
    ok(args(&dir).arg("--plan-only"));
    let mut child = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "0/1", "--threads", "1"]).spawn().unwrap();
    let complete = |d: &Path| (0..12).filter(|i| d.join(format!("runs/{i}/result.json")).exists()).count();
    let started = Instant::now();
    while complete(&dir) < 2 {
        assert!(started.elapsed() < Duration::from_secs(120), "no run completed");
        assert!(child.try_wait().unwrap().is_none(), "the shard ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = complete(&dir);
    assert!((2..12).contains(&done), "{done} runs complete when killed");
    let before: Vec<(usize, SystemTime)> = (0..12)
        .filter_map(|i| {
            let p = dir.join(format!("runs/{i}/result.json"));
            p.exists().then(|| (i, std::fs::metadata(&p).unwrap().modified().unwrap()))
        })
        .collect();
    // Merging now lists the missing runs and writes nothing.
    let o = bin().args(["sweep", "merge"]).arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{} of 12 runs missing", 12 - done)), "{err}");
    assert!(!dir.join("runs.csv").exists());
    // Rerun: only the missing runs run; the completed ones are untouched.
    let o = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "0/1"]).output().unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("ran {} run(s) (0 failed), skipped {done} completed", 12 - done)), "{err}");
    for (i, t) in before {
        let now = std::fs::metadata(dir.join(format!("runs/{i}/result.json"))).unwrap().modified().unwrap();
        assert_eq!(now, t, "run {i} was rerun");
    }
    ok(bin().args(["sweep", "merge"]).arg(&dir));
    assert_same_outputs(&local, &dir);
}

#[test]
fn merge_names_failed_runs_with_their_error_and_a_rerun_repairs_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 7);
    let dir = tmp.path().join("sweep");
    let local = tmp.path().join("local");
    for (out, plan_only) in [(&dir, true), (&local, false)] {
        let mut c = bin();
        c.args(["sweep", "descent", "--data", data.to_str().unwrap(), "--width", "4", "--step-size", "0.1"])
            .args(["--seed", "0..5", "--steps", "30", "--out"])
            .arg(out);
        if plan_only {
            c.arg("--plan-only");
        }
        ok(&mut c);
    }
    ok(bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "0/2"]));
    let moved = tmp.path().join("moved.json");
    std::fs::rename(&data, &moved).unwrap();
    let o = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "1/2"]).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "a shard whose runs failed exits 3");
    let o = bin().args(["sweep", "merge"]).arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    for i in [1, 3, 5] {
        assert!(err.contains(&format!("run {i}: failed: ")), "{err}");
    }
    assert!(err.contains(data.to_str().unwrap()), "the error names the data file: {err}");
    assert!(!err.contains("run 0:") && !err.contains("run 2:"), "{err}");
    // Failed runs appear in runs.csv with their error, as in a local sweep.
    let csv = String::from_utf8(read(&dir.join("runs.csv"))).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",error,")).count(), 3, "{csv}");
    // With the file back, a rerun of the shard redoes only the failed runs.
    std::fs::rename(&moved, &data).unwrap();
    let o = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "1/2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("ran 3 run(s) (0 failed), skipped 0"));
    let o = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", "0/2"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("ran 0 run(s) (0 failed), skipped 3"));
    ok(bin().args(["sweep", "merge"]).arg(&dir));
    assert_same_outputs(&local, &dir);
}

#[test]
fn bad_shards_and_missing_plans_are_one_line_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    ok(bin().args(["sweep", "descent", "--n", "10", "--d", "20", "--steps", "3", "--plan-only", "--out"]).arg(&dir));
    for shard in ["4/4", "1/0", "x", "1/"] {
        let o = bin().args(["sweep", "run"]).arg(&dir).args(["--shard", shard]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{shard}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--shard") && err.lines().count() == 1, "{err}");
    }
    let o = bin().args(["sweep", "merge"]).arg(tmp.path().join("nothing")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("plan.json"));
    let o = bin().args(["sweep", "submit"]).arg(&dir).args(["--shards", "9"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "more shards than runs");
    // --dry-run writes the scripts with the throttle and the dependency-free merge.
    ok(bin().args(["sweep", "submit"]).arg(&dir).args(["--shards", "1", "--max-parallel", "1", "--dry-run"]));
    let array = String::from_utf8(read(&dir.join("slurm/array.sbatch"))).unwrap();
    assert!(array.contains("#SBATCH --array=0-0%1") && array.contains("--tasks 1"), "{array}");
    assert!(dir.join("slurm/merge.sbatch").exists());
}

#[test]
fn sweep_validate_tabulates_claims_per_grid_point_from_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = tmp.path().join("base.toml");
    std::fs::write(
        &sc,
        "name = \"phase\"\nwidth = 8\nleak = 0.2\nuntil_log10_time = 100\n[generate]\nkind = \"gaussian\"\nn = 10\nd = 50\n",
    )
    .unwrap();
    let out = tmp.path().join("phase");
    ok(bin().args(["sweep", "validate"]).arg(&sc).args(["--d", "100,400", "--seed", "0..2", "--out"]).arg(&out));
    let runs = String::from_utf8(read(&out.join("runs.csv"))).unwrap();
    let phase = String::from_utf8(read(&out.join("phase.csv"))).unwrap();
    let head: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
    assert_eq!(&head[..3], ["index", "d", "seed"]);
    // Recompute each grid point's fraction from runs.csv (the per-run verdicts).
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let phead: Vec<&str> = phase.lines().next().unwrap().split(',').collect();
    let pcol = |name: &str| phead.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = runs.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let prow: Vec<Vec<&str>> = phase.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(prow.len(), 2);
    for p in &prow {
        let d = p[pcol("d")];
        let mine: Vec<&Vec<&str>> = rows.iter().filter(|r| r[col("d")] == d).collect();
        assert_eq!(mine.len(), 3);
        assert_eq!(p[pcol("runs")], "3");
        for claim in ["assumption", "interpolation", "kkt", "rank", "global_max_margin", "linear_boundary"] {
            let applicable: Vec<&&Vec<&str>> = mine.iter().filter(|r| !r[col(claim)].is_empty()).collect();
            let holding = applicable.iter().filter(|r| r[col(claim)] == "true").count();
            assert_eq!(p[pcol(&format!("{claim}_runs"))], applicable.len().to_string(), "{claim} d={d}");
            if !applicable.is_empty() {
                let f: f64 = p[pcol(claim)].parse().unwrap();
                assert_eq!(f, holding as f64 / applicable.len() as f64, "{claim} d={d}");
            }
        }
        // The median ratio is the middle of the three runs' ratios (odd count).
        let mut ratios: Vec<f64> = mine.iter().map(|r| r[col("ratio")].parse().unwrap()).collect();
        ratios.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(p[pcol("ratio_median")].parse::<f64>().unwrap(), ratios[1]);
    }
    // The measured ratio min‖x‖²/(n p), recomputed independently for one run's data.
    let d400 = rows.iter().find(|r| r[col("d")] == "400" && r[col("seed")] == "1").unwrap();
    let data = marginflow::model::data::generate(&marginflow::model::data::GenSettings {
        n: 10,
        d: 400,
        seed: 1,
        ..Default::default()
    })
    .unwrap();
    let x = |i: usize| &data.x[i * 400..(i + 1) * 400];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let min_sq = (0..10).map(|i| dot(x(i), x(i))).fold(f64::INFINITY, f64::min);
    let p = (0..10)
        .flat_map(|i| (0..10).filter(move |k| *k != i).map(move |k| (i, k)))
        .fold(0f64, |m, (i, k)| m.max(dot(x(i), x(k)).abs()));
    let ratio: f64 = d400[col("ratio")].parse().unwrap();
    assert!((ratio - min_sq / (10.0 * p)).abs() <= 1e-12 * ratio, "{ratio} vs {}", min_sq / (10.0 * p));
    // At d = 400 ≫ n the conclusions hold on every seed (kkt, rank, interpolation).
    let p400 = prow.iter().find(|p| p[pcol("d")] == "400").unwrap();
    for claim in ["interpolation", "kkt", "rank"] {
        assert_eq!(p400[pcol(claim)], "1", "{claim} at d = 400: {phase}");
    }
    for claim in ["interpolation", "kkt", "rank", "global_max_margin", "linear_boundary", "assumption"] {
        assert!(out.join(format!("phase_{claim}.svg")).exists(), "{claim}");
    }
}
