//! The plan of a sweep: every run (index, swept values, the complete settings it runs with) in
//! the local sweep's order, written to `DIR/plan.json`; and the share of it that one process
//! runs ([`Shard`] `I/N`: the runs with `index mod N = I`, round robin, so a grid ordered by
//! cost spreads evenly). Deterministic: the same settings give the same bytes.
//! Imports `grid` only (of the sweep modules).

use super::grid::{SweepKind, SweepSettings, Variable};
use crate::descent::DescentSettings;
use crate::error::{Error, Result};
use crate::experiments::validate::Scenario;
use crate::flow::FlowSettings;
use crate::io::fsutil::{create_dir, write_atomic};
use crate::model::data::GenSettings;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The plan's file name inside a sweep directory.
pub const PLAN_FILE: &str = "plan.json";
/// Format version of plan.json.
pub const PLAN_FORMAT: u32 = 1;

/// What one run executes, with every setting resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTask {
    /// A gradient flow on generated data (`gen`) or the sweep's data file.
    Flow {
        /// Flow settings.
        flow: FlowSettings,
        /// Data generation settings (none: the sweep's data file).
        gen: Option<GenSettings>,
    },
    /// A gradient-descent run.
    Descent {
        /// Descent settings.
        descent: DescentSettings,
        /// Data generation settings (none: the sweep's data file).
        gen: Option<GenSettings>,
    },
    /// The validate claims on one scenario.
    Validate {
        /// The scenario with the swept values applied.
        scenario: Scenario,
    },
}

/// One planned run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Index in the cartesian product (the last axis varies fastest).
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// What it runs.
    pub task: RunTask,
}

/// A sweep's plan: its settings and every run, in run-index order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version ([`PLAN_FORMAT`]).
    pub format: u32,
    /// The sweep's settings (as in sweep.json).
    pub settings: SweepSettings,
    /// The runs.
    pub runs: Vec<PlannedRun>,
}

/// Which share of a plan a process runs: the runs with `index mod count = index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 0-based (Slurm's `SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)`).
    pub index: usize,
    /// Number of shards, at least 1.
    pub count: usize,
}

impl Shard {
    /// All runs in one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A checked shard (`flag` names the option in errors).
    pub fn new(index: usize, count: usize, flag: &str) -> Result<Shard> {
        if count == 0 {
            return Err(Error::setting(flag, "the number of shards must be at least 1"));
        }
        if index >= count {
            return Err(Error::setting(
                flag,
                format!("shard {index} of {count}: shards are numbered 0..{}", count - 1),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parse `I/N`.
    pub fn parse(text: &str, flag: &str) -> Result<Shard> {
        let bad = || Error::setting(flag, format!("expected I/N with 0 <= I < N, got {text:?}"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse::<usize>().map_err(|_| bad())?;
        let n = n.trim().parse::<usize>().map_err(|_| bad())?;
        Shard::new(i, n, flag)
    }

    /// Whether run `index` belongs to this shard.
    pub fn owns(&self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl Plan {
    /// The plan of `settings` (validated, every run's settings checked), for a loaded data set of
    /// dimension `file_d` when the data come from a file.
    pub fn new(settings: &SweepSettings, file_d: Option<usize>) -> Result<Plan> {
        settings.validate()?;
        let mut runs = Vec::with_capacity(settings.run_count());
        for index in 0..settings.run_count() {
            let spec = settings.run_spec(index, file_d);
            let task = match settings.kind {
                SweepKind::Flow => {
                    spec.flow.validate()?;
                    RunTask::Flow { flow: spec.flow, gen: spec.gen }
                }
                SweepKind::Descent => {
                    spec.descent.validate()?;
                    RunTask::Descent { descent: spec.descent, gen: spec.gen }
                }
                SweepKind::Validate => {
                    let base = settings.scenario.as_ref().expect("validated");
                    RunTask::Validate { scenario: scenario_for(&base.scenario, &spec.values) }
                }
            };
            if let RunTask::Flow { gen: Some(g), .. } | RunTask::Descent { gen: Some(g), .. } = &task {
                g.validate()?;
            }
            runs.push(PlannedRun { index, values: spec.values, task });
        }
        Ok(Plan { format: PLAN_FORMAT, settings: settings.clone(), runs })
    }

    /// The plan as written to plan.json (deterministic: the same settings give the same bytes).
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a plan serializes");
        v.push(b'\n');
        v
    }

    /// Read `DIR/plan.json`.
    pub fn read(dir: &Path) -> Result<Plan> {
        let path = dir.join(PLAN_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Plan::parse_bytes(&path, &bytes)
    }

    /// A plan from the bytes of `path` (its format version checked).
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Plan> {
        let plan: Plan = serde_json::from_slice(bytes).map_err(|e| Error::BadData {
            path: path.to_path_buf(),
            line: Some(e.line()),
            reason: format!("not a sweep plan: {e}"),
        })?;
        if plan.format != PLAN_FORMAT {
            return Err(Error::BadData {
                path: path.to_path_buf(),
                line: None,
                reason: format!("plan format {} (this marginflow reads {PLAN_FORMAT})", plan.format),
            });
        }
        Ok(plan)
    }

    /// Write `DIR/plan.json` atomically (creating DIR).
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        write_atomic(&dir.join(PLAN_FILE), &self.to_json())
    }
}

/// The scenario of one grid point: `base` with the swept `values` applied. `seed` sets the
/// initialization seed and, unless `data_seed` is among the values, the data seed too.
pub fn scenario_for(base: &Scenario, values: &[(Variable, f64)]) -> Scenario {
    let mut sc = base.clone();
    let data_seed_swept = values.iter().any(|(v, _)| *v == Variable::DataSeed);
    for &(var, x) in values {
        match var {
            Variable::Width => sc.width = x as usize,
            Variable::Leak => sc.leak = x,
            Variable::InitScale => sc.init_scale = x,
            Variable::Seed => sc.seed = x as u64,
            Variable::UntilLog10Time => sc.until_log10_time = x,
            Variable::Rtol => sc.rtol = x,
            _ => {}
        }
        if let Some(g) = sc.generate.as_mut() {
            match var {
                Variable::N => g.n = x as usize,
                Variable::D => g.d = x as usize,
                Variable::DataSeed => g.seed = x as u64,
                Variable::Seed if !data_seed_swept => g.seed = x as u64,
                Variable::MeanNorm => g.mean_norm = Some(x),
                _ => {}
            }
        }
    }
    sc
}
