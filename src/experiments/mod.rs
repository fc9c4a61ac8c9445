//! What is built on the flow and the references: the validation of the theorem's claims, sweeps
//! over settings, and their rendering (Markdown/JSON reports, SVG plots).

pub mod phase;
pub mod plot;
pub mod report;
pub mod shard;
pub mod slurm;
pub mod sweep;
pub mod validate;
