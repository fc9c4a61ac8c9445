//! The run folder: one run per folder, and the tool owns a manifest of what it wrote.
//!
//! Every command that writes a folder (`flow --out`, `descent --out`, `sweep --out`,
//! `validate --out`) follows one rule, [`prepare_out_dir`]:
//!
//! - an absent or empty folder is created and used;
//! - a folder whose manifest `run.json` names the **same run** (same command, same identity: a
//!   hash of the settings and inputs) is a rerun: the files that run wrote are removed first;
//! - any other non-empty folder is refused with one line naming `--out`, unless `--force`, which
//!   removes the files marginflow owns there (those the manifest lists, else the command's known
//!   names) and never anything else.
//!
//! So two runs are never mixed in one folder: no `W.npy` of an older run beside a newer summary,
//! no `trajectories/run-7.jsonl` of a larger sweep, no plots of another validation. A flow run
//! continued with `flow --resume DIR` is the same run: it keeps the output settings recorded in
//! the manifest ([`Manifest::save_weights`]), and `maxmargin --pattern-from DIR` reads `W.npy`
//! only when the manifest's hash of it and of the data match ([`verified_weights`]).

use crate::error::{Error, Result};
use crate::io::fsutil::{create_dir, write_atomic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The manifest of a run folder.
pub const MANIFEST: &str = "run.json";
/// A flow's or descent's summary.
pub const SUMMARY: &str = "summary.json";
/// A flow's or descent's trajectory, one JSON row per line.
pub const TRAJECTORY: &str = "trajectory.jsonl";
/// A flow's exact checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// The final weights (m×d float64), with `--save-weights`.
pub const WEIGHTS: &str = "W.npy";
/// The absolute path of a flow's data file (read by `flow --resume`).
pub const DATA_PATH: &str = "data_path";

/// The text of a run's `data_path` file: the data file's absolute path on the first line and,
/// for points in a `.npy` file, the labels file's on the second (`flow --resume` reads it; the
/// Python module writes it too).
pub fn data_path_text(data: &Path, labels: Option<&Path>) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).to_string_lossy().into_owned();
    match labels {
        Some(l) => format!("{}\n{}\n", abs(data), abs(l)),
        None => abs(data),
    }
}

/// The data and labels paths of a `data_path` file's text (see [`data_path_text`]).
pub fn parse_data_path(text: &str) -> (PathBuf, Option<PathBuf>) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let data = PathBuf::from(lines.next().unwrap_or(""));
    (data, lines.next().map(PathBuf::from))
}

/// The command that owns a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `marginflow flow`.
    Flow,
    /// `marginflow descent`.
    Descent,
    /// `marginflow sweep`.
    Sweep,
    /// `marginflow validate`.
    Validate,
}

impl Command {
    /// The command's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Command::Flow => "flow",
            Command::Descent => "descent",
            Command::Sweep => "sweep",
            Command::Validate => "validate",
        }
    }

    /// Files the command always may write (the manifest aside), relative to the folder.
    pub fn known_files(self) -> &'static [&'static str] {
        match self {
            Command::Flow => &[SUMMARY, TRAJECTORY, CHECKPOINT, WEIGHTS, DATA_PATH],
            Command::Descent => &[SUMMARY, TRAJECTORY, WEIGHTS, ".trajectory.jsonl.partial"],
            Command::Sweep => &["runs.csv", "runs.jsonl", "sweep.json"],
            Command::Validate => &["report.md", "report.json"],
        }
    }

    /// Whether a file name (relative to the folder) is one the command writes under a varying
    /// name: sweep and validate plots (`*.svg`) and sweep trajectories
    /// (`trajectories/run-*.jsonl`).
    fn owns_pattern(self, rel: &str) -> bool {
        match self {
            Command::Sweep => {
                rel.ends_with(".svg")
                    || (rel.starts_with("trajectories/run-") && rel.ends_with(".jsonl") && !rel[17..].contains('/'))
            }
            Command::Validate => rel.ends_with(".svg") && !rel.contains('/'),
            _ => false,
        }
    }
}

/// What `run.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always "marginflow".
    pub tool: String,
    /// The command that wrote the folder.
    pub command: Command,
    /// SHA-256 of the run's settings and inputs (see [`identity`]): equal identities are the
    /// same run.
    pub identity: String,
    /// SHA-256 of the data set (n, d, bit patterns), when the run has one data set.
    #[serde(default)]
    pub data_sha256: Option<String>,
    /// Whether the run writes its final weights to W.npy (`--save-weights`); a resumed flow keeps it.
    #[serde(default)]
    pub save_weights: bool,
    /// SHA-256 of the W.npy bytes this run wrote last.
    #[serde(default)]
    pub weights_sha256: Option<String>,
    /// Files the run wrote, relative to the folder (the manifest aside).
    #[serde(default)]
    pub files: Vec<String>,
}

impl Manifest {
    /// A manifest for `command` with this identity and nothing written yet.
    pub fn new(command: Command, identity: String) -> Self {
        Manifest {
            tool: "marginflow".into(),
            command,
            identity,
            data_sha256: None,
            save_weights: false,
            weights_sha256: None,
            files: Vec::new(),
        }
    }

    /// Read `DIR/run.json`: `Ok(None)` when absent.
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::BadData {
            path,
            line: Some(e.line()),
            reason: format!("not a run manifest: {e}"),
        })
    }

    /// Write `DIR/run.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        bytes.push(b'\n');
        write_atomic(&dir.join(MANIFEST), &bytes)
    }
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of a run: SHA-256 of the command and the JSON of its settings and inputs.
pub fn identity(command: Command, settings: &impl Serialize) -> String {
    let json = serde_json::to_string(settings).expect("settings serialize");
    sha256_hex(format!("{}\n{json}", command.name()).as_bytes())
}

/// How [`prepare_out_dir`] found the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Absent or empty: created.
    Fresh,
    /// It held the same run, whose files were removed.
    Rerun {
        /// Files removed.
        removed: usize,
    },
    /// It held another run or other files; `--force` removed the files marginflow owns.
    Forced {
        /// Files removed.
        removed: usize,
    },
}

/// Every file under `dir` (relative paths with `/`), the manifest and temporary files of
/// atomic writes included.
fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, sub: &Path, out: &mut Vec<String>) -> Result<()> {
        let here = root.join(sub);
        for e in std::fs::read_dir(&here).map_err(|e| Error::io(&here, e))? {
            let e = e.map_err(|e| Error::io(&here, e))?;
            let rel = sub.join(e.file_name());
            if e.file_type().map_err(|err| Error::io(e.path(), err))?.is_dir() {
                walk(root, &rel, out)?;
            } else {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

/// Whether `rel` is a file a run of `command` (with manifest `m`, if any) owns.
fn owned(command: Command, m: Option<&Manifest>, rel: &str) -> bool {
    let command = m.map(|m| m.command).unwrap_or(command);
    rel == MANIFEST
        || command.known_files().contains(&rel)
        || command.owns_pattern(rel)
        || m.is_some_and(|m| m.files.iter().any(|f| f == rel))
}

/// Remove the owned files (and then empty sub-folders) of the folder; returns how many.
fn clear_owned(dir: &Path, command: Command, m: Option<&Manifest>) -> Result<usize> {
    let mut removed = 0;
    for rel in list_files(dir)? {
        if owned(command, m, &rel) {
            let p = dir.join(&rel);
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            removed += 1;
        }
    }
    let t = dir.join("trajectories");
    if t.is_dir() && list_files(&t)?.is_empty() {
        let _ = std::fs::remove_dir(&t);
    }
    Ok(removed)
}

/// Make `dir` ready for a new run described by `manifest` (see the module doc for the rule) and
/// write the manifest. Errors name `--out` and say what to do.
pub fn prepare_out_dir(dir: &Path, force: bool, manifest: &Manifest) -> Result<Prepared> {
    let flag = || format!("--out {}", dir.display());
    if dir.exists() && !dir.is_dir() {
        return Err(Error::setting(flag(), "exists and is not a folder"));
    }
    let files = if dir.exists() { list_files(dir)? } else { Vec::new() };
    let outcome = if files.is_empty() {
        create_dir(dir).map_err(|e| match e {
            Error::Io { source, .. } => Error::setting(flag(), format!("cannot create the folder: {source}")),
            other => other,
        })?;
        Prepared::Fresh
    } else {
        let old = match Manifest::load(dir) {
            Ok(m) => m,
            Err(_) if force => None,
            Err(e) => return Err(e),
        };
        let same = old.as_ref().is_some_and(|o| o.command == manifest.command && o.identity == manifest.identity);
        if same {
            Prepared::Rerun { removed: clear_owned(dir, manifest.command, old.as_ref())? }
        } else if force {
            Prepared::Forced { removed: clear_owned(dir, manifest.command, old.as_ref())? }
        } else {
            let what = match &old {
                Some(o) if o.command == manifest.command => format!("holds another {} run", o.command.name()),
                Some(o) => format!("holds a {} run", o.command.name()),
                None => {
                    let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
                    let more = if files.len() > 3 { ", …" } else { "" };
                    format!("is not empty ({}{more})", shown.join(", "))
                }
            };
            let resume =
                if manifest.command == Command::Flow && old.as_ref().is_some_and(|o| o.command == Command::Flow) {
                    " or continue it with flow --resume,"
                } else {
                    ""
                };
            return Err(Error::setting(
                flag(),
                format!("{what}; choose an empty folder,{resume} or pass --force to replace the files marginflow wrote there"),
            ));
        }
    };
    manifest.save(dir)?;
    Ok(outcome)
}

/// The weights of the flow run in `dir`, only when its manifest vouches for them: the manifest
/// exists and belongs to a flow, its data hash equals `data_sha256`, and the SHA-256 of W.npy is
/// the one it recorded. `Ok(None)` when the run wrote no W.npy (and none lies there).
pub fn verified_weights(dir: &Path, data_sha256: &str) -> Result<Option<PathBuf>> {
    let wpath = dir.join(WEIGHTS);
    let m = Manifest::load(dir)?;
    let bad = |reason: String| Error::BadSetting { setting: format!("--pattern-from {}", dir.display()), reason };
    let Some(m) = m else {
        if wpath.exists() {
            return Err(bad(format!(
                "no {MANIFEST}: cannot tell whether {WEIGHTS} belongs to this run (rerun flow --out into an empty folder)"
            )));
        }
        return Ok(None);
    };
    if m.command != Command::Flow {
        return Err(bad(format!("holds a {} run, not a flow run", m.command.name())));
    }
    if m.data_sha256.as_deref() != Some(data_sha256) {
        return Err(bad("the run was made on other data than --data".into()));
    }
    match (&m.weights_sha256, wpath.exists()) {
        (None, false) => Ok(None),
        (None, true) => Err(bad(format!("{WEIGHTS} was not written by this run"))),
        (Some(_), false) => Err(bad(format!("{WEIGHTS} recorded in {MANIFEST} is missing"))),
        (Some(h), true) => {
            let bytes = std::fs::read(&wpath).map_err(|e| Error::io(&wpath, e))?;
            if &sha256_hex(&bytes) != h {
                return Err(bad(format!("{WEIGHTS} differs from the one this run wrote (hash mismatch)")));
            }
            Ok(Some(wpath))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn empty_folder_is_fresh_and_gets_a_manifest() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        let m = Manifest::new(Command::Flow, "id1".into());
        assert_eq!(prepare_out_dir(&dir, false, &m).unwrap(), Prepared::Fresh);
        assert_eq!(Manifest::load(&dir).unwrap().unwrap(), m);
    }

    #[test]
    fn another_run_is_refused_unless_forced_and_force_keeps_foreign_files() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let m1 = Manifest::new(Command::Sweep, "one".into());
        prepare_out_dir(dir, false, &m1).unwrap();
        for f in ["runs.csv", "trajectories/run-7.jsonl", "a.svg", "notes.txt"] {
            touch(dir, f);
        }
        let m2 = Manifest::new(Command::Sweep, "two".into());
        let e = prepare_out_dir(dir, false, &m2).unwrap_err().to_string();
        assert!(e.contains("--out") && e.contains("--force") && !e.contains('\n'), "{e}");
        assert!(dir.join("trajectories/run-7.jsonl").exists(), "a refusal removes nothing");
        assert_eq!(prepare_out_dir(dir, true, &m2).unwrap(), Prepared::Forced { removed: 4 });
        assert_eq!(list_files(dir).unwrap(), vec!["notes.txt".to_string(), MANIFEST.to_string()]);
    }

    #[test]
    fn the_same_run_is_a_rerun() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        let mut m = Manifest::new(Command::Validate, "v".into());
        prepare_out_dir(dir, false, &m).unwrap();
        touch(dir, "old_plot.svg");
        touch(dir, "report.md");
        m.files = vec!["report.md".into()];
        m.save(dir).unwrap();
        assert_eq!(prepare_out_dir(dir, false, &m).unwrap(), Prepared::Rerun { removed: 3 });
        assert!(!dir.join("old_plot.svg").exists());
    }

    #[test]
    fn a_non_empty_folder_without_manifest_is_refused() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "W.npy");
        let m = Manifest::new(Command::Flow, "x".into());
        let e = prepare_out_dir(t.path(), false, &m).unwrap_err().to_string();
        assert!(e.contains("not empty") && e.contains("W.npy"), "{e}");
    }
}
