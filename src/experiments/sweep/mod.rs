//! Sweeps: the cartesian product of listed settings, run in parallel on one machine or as
//! shards of a plan on many, merged into a table and plots (and, for a validate sweep, a phase
//! diagram of the theorem's claims).
//!
//! Every run is a pure function of its settings (its own data seed, its own initialization seed;
//! no shared random stream), and the results are kept in run-index order, so a sweep's output is
//! the same whatever the number of threads or shards.
//!
//! A stack; each file imports only those before it: `grid` (the shared types: settings, axes,
//! results and their typed rows) → `plan` (every run resolved, shards) → `shard` (run a share,
//! write the run directories) → `phase` (the phase table and plots of merged validate points) →
//! `merge` (read the run directories, write the outputs). Beyond the folder they use the flow,
//! descent, data, validate, plot and io modules, and nothing imports back into them from there.

pub mod grid;
pub mod merge;
pub mod phase;
pub mod plan;
pub mod shard;

pub use grid::{
    Axis, Columns, DataSource, Describe, PointColumns, PointSummary, RunColumns, RunResult, RunSpec, ScenarioBase,
    SweepKind, SweepSettings, Variable,
};
pub use plan::{Plan, PlannedRun, RunTask, Shard};
pub use shard::run;
