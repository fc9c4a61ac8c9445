//! Helpers shared by the integration tests (`mod common;` in each file that uses them).
//! Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use marginflow::model::data::{generate, DataKind, GenSettings};
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
