//! Sweeps on a real Slurm cluster (`scripts/local-slurm.sh start` brings up a single-node one):
//! a 12-run sweep as a job array of 4 shards plus a dependent merge equals the local sweep; a
//! cancelled shard resubmitted reruns only its runs; a shard that fails (its data file gone)
//! shows in the merge with its error.
//!
//! Skipped, with a printed reason, only when `sbatch` is absent and `MARGINFLOW_REQUIRE_SLURM`
//! is unset; `.ci/run` sets it after starting the cluster, so in CI they run.

mod common;

use common::{assert_same_outputs, bin, data_file, ok, read};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const TIMEOUT: Duration = Duration::from_secs(300);

/// Whether to run: true with sbatch on PATH; a panic when Slurm is required but absent.
fn slurm_available() -> bool {
    let found = Command::new("sbatch").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("MARGINFLOW_REQUIRE_SLURM").is_some() {
            panic!("MARGINFLOW_REQUIRE_SLURM is set but sbatch is not available (run scripts/local-slurm.sh start)");
        }
        eprintln!("skipped: sbatch not found and MARGINFLOW_REQUIRE_SLURM unset (scripts/local-slurm.sh start)");
    }
    found
}

fn sbatch(args: &[&str]) -> u64 {
    let o = Command::new("sbatch").arg("--parsable").args(args).output().unwrap();
    assert!(o.status.success(), "sbatch {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap().parse().unwrap()
}

fn scontrol(args: &[&str]) {
    let o = Command::new("scontrol").args(args).output().unwrap();
    assert!(o.status.success(), "scontrol {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Wait until no job (or array task) of `job` is pending or running, by polling squeue.
fn wait_for(job: u64) {
    let started = Instant::now();
    loop {
        let o = Command::new("squeue").args(["-h", "-j", &job.to_string(), "-o", "%i %T"]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        if o.status.success() && text.trim().is_empty() {
            return;
        }
        // A job finished longer ago than MinJobAge is no longer known.
        if String::from_utf8_lossy(&o.stderr).contains("Invalid job id") {
            return;
        }
        assert!(started.elapsed() < TIMEOUT, "job {job} still queued after {TIMEOUT:?}: {text}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A 12-run descent sweep planned in `dir` (and its local counterpart in `local`).
fn plan(tmp: &Path, data: &Path, dir: &Path, local: &Path) {
    let args = |out: &Path| {
        let mut c = bin();
        c.args(["sweep", "descent", "--data", data.to_str().unwrap(), "--width", "4,6", "--step-size", "0.1"])
            .args(["--seed", "0..5", "--steps", "40", "--out"])
            .arg(out);
        c
    };
    let _ = tmp;
    ok(&mut args(local));
    ok(args(dir).arg("--plan-only"));
}

fn mtimes(dir: &Path) -> Vec<Option<SystemTime>> {
    (0..12).map(|i| std::fs::metadata(dir.join(format!("runs/{i}/result.json"))).ok()?.modified().ok()).collect()
}

#[test]
fn a_job_array_of_four_shards_and_its_merge_equal_the_local_sweep() {
    if !slurm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 11);
    let (dir, local) = (tmp.path().join("slurm-sweep"), tmp.path().join("local"));
    plan(tmp.path(), &data, &dir, &local);
    let o = bin().args(["sweep", "submit"]).arg(&dir).args(["--shards", "4", "--max-parallel", "2"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let ids: Vec<u64> = out.lines().map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert!(out.starts_with("array ") && ids.len() == 2, "{out}");
    let array = String::from_utf8(read(&dir.join("slurm/array.sbatch"))).unwrap();
    assert!(array.contains("#SBATCH --array=0-3%2") && array.contains("#SBATCH --requeue"), "{array}");
    wait_for(ids[0]);
    wait_for(ids[1]);
    for k in 0..4 {
        let log = String::from_utf8_lossy(&read(&dir.join(format!("slurm/shard-{k}.out")))).into_owned();
        assert!(log.contains(&format!("shard {k}/4: ran 3 run(s) (0 failed)")), "{log}");
    }
    let merge_log = String::from_utf8_lossy(&read(&dir.join("slurm/merge.out"))).into_owned();
    assert!(merge_log.contains("12 runs (0 failed) merged"), "{merge_log}");
    assert_same_outputs(&local, &dir);
}

#[test]
fn a_cancelled_shard_resubmitted_reruns_only_its_runs() {
    if !slurm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 12);
    let (dir, local) = (tmp.path().join("slurm-sweep"), tmp.path().join("local"));
    plan(tmp.path(), &data, &dir, &local);
    ok(bin().args(["sweep", "submit"]).arg(&dir).args(["--shards", "4", "--dry-run"]));
    let array = dir.join("slurm/array.sbatch");
    let merge = dir.join("slurm/merge.sbatch");
    // Held, so shard 2 is cancelled before it can start; then the rest are released.
    let id = sbatch(&["--hold", array.to_str().unwrap()]);
    let cancel = Command::new("scancel").arg(format!("{id}_2")).status().unwrap();
    assert!(cancel.success());
    let merge_id = sbatch(&[&format!("--dependency=afterany:{id}"), merge.to_str().unwrap()]);
    scontrol(&["release", &id.to_string()]);
    wait_for(id);
    wait_for(merge_id);
    let log = String::from_utf8_lossy(&read(&dir.join("slurm/merge.out"))).into_owned();
    assert!(log.contains("3 of 12 runs missing"), "{log}");
    for i in [2, 6, 10] {
        assert!(log.contains(&format!("run {i}: missing")), "{log}");
    }
    assert!(!dir.join("runs.csv").exists(), "merge wrote outputs with runs missing");
    let before = mtimes(&dir);
    assert_eq!(before.iter().filter(|t| t.is_none()).count(), 3);
    std::thread::sleep(Duration::from_millis(20));
    // Resubmit the cancelled task only (Slurm's --array on the command line overrides the script's).
    let id2 = sbatch(&["--array=2", array.to_str().unwrap()]);
    let merge2 = sbatch(&[&format!("--dependency=afterany:{id2}"), merge.to_str().unwrap()]);
    wait_for(id2);
    wait_for(merge2);
    let after = mtimes(&dir);
    for i in 0..12 {
        if i % 4 == 2 {
            assert!(before[i].is_none() && after[i].is_some(), "run {i} of the cancelled shard");
        } else {
            assert_eq!(before[i], after[i], "run {i} was rerun");
        }
    }
    assert_same_outputs(&local, &dir);
}

#[test]
fn a_failing_shard_shows_in_the_merge_with_its_error() {
    if !slurm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = data_file(tmp.path(), 10, 50, 13);
    let (dir, local) = (tmp.path().join("slurm-sweep"), tmp.path().join("local"));
    plan(tmp.path(), &data, &dir, &local);
    ok(bin().args(["sweep", "submit"]).arg(&dir).args(["--shards", "4", "--dry-run"]));
    let array = dir.join("slurm/array.sbatch");
    let merge = dir.join("slurm/merge.sbatch");
    // Shards 0-2 with the data in place, shard 3 after the data file is gone.
    let first = sbatch(&["--array=0-2", array.to_str().unwrap()]);
    wait_for(first);
    let moved = tmp.path().join("elsewhere.json");
    std::fs::rename(&data, &moved).unwrap();
    let id = sbatch(&["--array=3", array.to_str().unwrap()]);
    let merge_id = sbatch(&[&format!("--dependency=afterany:{id}"), merge.to_str().unwrap()]);
    wait_for(id);
    wait_for(merge_id);
    let log = String::from_utf8_lossy(&read(&dir.join("slurm/merge.out"))).into_owned();
    for i in [3, 7, 11] {
        assert!(log.contains(&format!("run {i}: failed: ")), "{log}");
    }
    assert!(log.contains(data.to_str().unwrap()) && log.contains("3 failed"), "the error names the file: {log}");
    let shard_log = String::from_utf8_lossy(&read(&dir.join("slurm/shard-3.out"))).into_owned();
    assert!(shard_log.contains("ran 3 run(s) (3 failed)"), "{shard_log}");
    // Repaired and resubmitted: the merge equals the local sweep.
    std::fs::rename(&moved, &data).unwrap();
    let id = sbatch(&["--array=3", array.to_str().unwrap()]);
    let merge_id = sbatch(&[&format!("--dependency=afterany:{id}"), merge.to_str().unwrap()]);
    wait_for(id);
    wait_for(merge_id);
    assert_same_outputs(&local, &dir);
}
