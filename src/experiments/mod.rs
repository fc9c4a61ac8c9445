//! What is built on the flow and the references: the validation of the theorem's claims, sweeps
//! over settings, and their rendering (Markdown/JSON reports, SVG plots).
//!
//! Imports go one way: `sweep/` → `plot`, `report` → `validate/` (`render` turns SVG into PNG and PDF) → the library below
//! (`flow`, `descent`, `maxmargin`, `model`, `metrics`, `io`); `slurm` (job scripts) stands
//! alone. Nothing below imports from here.

pub mod plot;
pub mod render;
pub mod report;
pub mod run_pattern;
pub mod slurm;
pub mod sweep;
pub mod validate;
