//! Runs that end on request and within their memory: SIGTERM during a flow ends it with exit
//! status 3, its checkpoint and a summary with status `interrupted` (issue 23, item 4); a memory
//! limit below what a run needs is refused in one line with exit 2, and a pattern QP too large
//! for the limit is solved in the dual instead (item 5).

mod common;

use common::{bin, data_file, summary};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Generous bound on the time from SIGTERM to exit (the measured time is about 0.1 s; the
/// bound is for a loaded machine).
const EXIT_BOUND: Duration = Duration::from_secs(10);

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success(), "kill -{name} failed");
}

/// Wait at most `bound` for the child; kill it (and fail) beyond.
fn wait_within(child: &mut Child, bound: Duration) -> (ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, start.elapsed());
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            panic!("still running {bound:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start a flow long enough to be interrupted (n = 60, d = 600, m = 32: its reference QP and its
/// integration take seconds), send SIGTERM after `after`, and check the documented end.
fn terminate_after(dir: &Path, after: Duration) {
    let data = data_file(dir, 60, 600, 3);
    let out = dir.join("run");
    let mut child = bin()
        .args(["flow", "--data"])
        .arg(&data)
        .args(["--width", "32", "--leak", "0.1", "--quiet", "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    signal(&child, "TERM");
    let (status, took) = wait_within(&mut child, EXIT_BOUND);
    eprintln!("exit {status:?} {took:?} after SIGTERM at {after:?}");
    if status.code() == Some(0) {
        // Finished before the signal: nothing to check on this machine.
        assert_eq!(summary(&out)["status"], "reached");
        return;
    }
    assert_eq!(status.code(), Some(3), "SIGTERM must end the run with exit status 3");
    let s = summary(&out);
    assert_eq!(s["status"], "interrupted", "summary: {s}");
    assert!(s["peak_rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "peak_rss_bytes: {}", s["peak_rss_bytes"]);
    assert_eq!(s["limit_reference"]["error"], "not computed: the run was interrupted");
    assert!(out.join("checkpoint").exists(), "no checkpoint after SIGTERM");
}

#[test]
fn sigterm_early_ends_the_run_with_status_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    terminate_after(dir.path(), Duration::from_millis(300));
}

#[test]
fn sigterm_later_ends_the_run_with_status_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    terminate_after(dir.path(), Duration::from_millis(1500));
}

/// `--memory-limit` below the flow's own matrices: one line naming the size and the flag, exit 2,
/// no panic text.
#[test]
fn a_flow_above_the_memory_limit_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 20, 400, 1);
    let out =
        bin().args(["flow", "--data"]).arg(&data).args(["--width", "8", "--memory-limit", "64K"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.contains("the flow (its matrices") && err.contains("needs") && err.contains("--memory-limit"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A bad `--memory-limit` is a usage error naming the flag.
#[test]
fn a_bad_memory_limit_is_a_usage_error() {
    let out = bin().args(["maxmargin", "--data", "x.json", "--width", "2", "--memory-limit", "lots"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--memory-limit") && err.contains("not a size"), "{err}");
}

/// Below the primal pattern QP's size (here 230 kB) the reference is solved in the dual, and is
/// the same certified point.
#[test]
fn a_pattern_qp_above_the_limit_is_solved_in_the_dual() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 20, 400, 1);
    let run = |limit: &str| -> serde_json::Value {
        let out = bin()
            .args(["maxmargin", "--data"])
            .arg(&data)
            .args(["--width", "8", "--json", "--memory-limit", limit])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (primal, dual) = (run("1G"), run("100K"));
    assert_eq!(primal["certified"], true);
    assert_eq!(dual["certified"], true, "{dual}");
    let (a, b) = (primal["norm"].as_f64().unwrap(), dual["norm"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 * a, "‖W*‖ {a} (primal) vs {b} (dual)");
}
