//! Helpers shared by the integration tests (`mod common;` in each file that uses them).
//! Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use marginflow::model::data::{generate, DataKind, GenSettings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `marginflow` binary built for these tests, with stdin closed (it reads none).
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marginflow"));
    cmd.stdin(Stdio::null());
    cmd
}

/// A Gaussian data set (`gen --kind gaussian`, library defaults otherwise) saved as
/// `DIR/data_{n}_{d}_{seed}.json`.
pub fn data_file(dir: &Path, n: usize, d: usize, seed: u64) -> PathBuf {
    let p = dir.join(format!("data_{n}_{d}_{seed}.json"));
    generate(&GenSettings { kind: DataKind::Gaussian, n, d, seed, ..Default::default() }).unwrap().save(&p).unwrap();
    p
}

/// Run `cmd` and require exit status 0 (stderr shown otherwise).
pub fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
}

/// The bytes of `p` (a panic naming the file if it cannot be read).
pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `DIR/summary.json`, parsed.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(&dir.join("summary.json"))).unwrap()
}

/// Run `cmd` and require exit status 3: the run ended before its horizon (its summary written).
pub fn early(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
}

/// Every file of a sweep's outputs under `dir` (relative path → bytes), except the run
/// directories, slurm/ and plan.json; JSON lines lose their `wall_seconds` fields (the only
/// wall-clock values).
pub fn sweep_outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if rel.starts_with("runs") || rel.starts_with("slurm") || rel == Path::new("plan.json") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = read(&p);
                let bytes = if p.extension().is_some_and(|x| x == "jsonl") { strip_wall(&bytes) } else { bytes };
                out.insert(rel, bytes);
            }
        }
    }
    out
}

fn strip_wall(bytes: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(s) = v.get_mut("summary").and_then(|s| s.as_object_mut()) {
            s.remove("wall_seconds");
        }
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    out.into_bytes()
}

/// Assert two sweep directories hold the same outputs, naming the first differing file.
pub fn assert_same_outputs(a: &Path, b: &Path) {
    let (x, y) = (sweep_outputs(a), sweep_outputs(b));
    assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "different files");
    for (k, v) in &x {
        assert!(v == &y[k], "{} differs between {} and {}", k.display(), a.display(), b.display());
    }
    assert!(x.contains_key(Path::new("runs.csv")) && x.contains_key(Path::new("runs.jsonl")));
}
