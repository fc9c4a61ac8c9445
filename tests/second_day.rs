//! Issue 25, "a researcher's second day", through the real binary: `gen` keeps an existing file,
//! a run finds its moved data, a finished run resumed without a horizon says so.

use std::path::Path;
use std::process::Output;

mod common;
use common::{bin, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit status 2 and one stderr line, returned.
fn bad(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn gen_refuses_an_existing_file_without_force() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("g.json");
    let gen = |seed: &str, force: bool| {
        let mut c = bin();
        c.args(["gen", "--kind", "gaussian", "--n", "6", "--d", "30", "--seed", seed, "--out", s(&out)]);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert!(gen("1", false).status.success());
    let first = std::fs::read(&out).unwrap();
    // The same data again: nothing to refuse, nothing rewritten.
    let again = gen("1", false);
    assert!(again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already holds this data set"));
    let err = bad(&gen("2", false));
    assert!(err.contains("--out") && err.contains("holds other data") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), first, "the file was changed");
    assert!(gen("2", true).status.success());
    assert_ne!(std::fs::read(&out).unwrap(), first);
    // Not a data file at all: refused too.
    std::fs::write(&out, "notes").unwrap();
    assert!(bad(&gen("1", false)).contains("the file exists"));
}

#[test]
fn resume_takes_moved_data_after_checking_its_hash() {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 8, 40, 3);
    let other = common::data_file(t.path(), 8, 40, 4);
    let run = t.path().join("run");
    ok(bin().args(["flow", "--data", s(&data), "--width", "4", "--until-log10-time", "10", "-q", "--out", s(&run)]));
    let moved = t.path().join("moved.json");
    std::fs::rename(&data, &moved).unwrap();
    let resume = |extra: &[&str]| {
        bin().args(["flow", "--resume", s(&run), "--until-log10-time", "20", "-q"]).args(extra).output().unwrap()
    };
    let err = bad(&resume(&[]));
    assert!(err.contains("give its new path with --data") && err.contains("cannot read"), "{err}");
    let err = bad(&resume(&["--data", s(&other)]));
    assert!(err.contains("differs from the run's") && err.contains(s(&other)), "{err}");
    assert!(resume(&["--data", s(&moved)]).status.success());
    // The new path is recorded: the next resume needs no --data.
    assert!(std::fs::read_to_string(run.join("data_path")).unwrap().contains("moved.json"));
    let o = bin().args(["flow", "--resume", s(&run), "--until-log10-time", "30", "-q"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn resume_of_a_finished_run_without_a_horizon_says_so() {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 8, 40, 5);
    let run = t.path().join("run");
    ok(bin().args(["flow", "--data", s(&data), "--width", "4", "--until-log10-time", "10", "-q", "--out", s(&run)]));
    let err = bad(&bin().args(["flow", "--resume", s(&run)]).output().unwrap());
    assert!(err.contains("already reached its horizon (--until-log10-time 10") && err.contains("nothing to do"), "{err}");
}
