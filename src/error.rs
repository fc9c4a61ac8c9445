//! Errors of the `marginflow` library. Each variant names the file, line or setting at fault so
//! the binary can print it in one line (a setting as its flag) and exit with status 2.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong in the model layer.
#[derive(Debug, Error)]
pub enum Error {
    /// A data file could not be read or parsed.
    #[error("{path}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    BadData {
        /// The file.
        path: PathBuf,
        /// 1-based line, where one applies.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A `.npy` file is malformed or has the wrong shape or dtype.
    #[error("{path}: {reason}")]
    BadNpy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A setting is out of range or conflicts with another. `setting` is the field's name in
    /// the settings structs (`rtol`, `until_log10_time`, `generate.n` style keys are added by
    /// the scenario loader); the binary shows it as its flag (`--rtol`).
    #[error("{setting}: {reason}")]
    BadSetting {
        /// The setting, by its field name.
        setting: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint is unusable.
    #[error("{path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A figure could not be rendered to PNG or PDF.
    #[error("rendering a figure to {format}: {reason}")]
    Render {
        /// `png` or `pdf`.
        format: &'static str,
        /// What failed.
        reason: String,
    },
    /// An error from the numerical layer.
    #[error(transparent)]
    Solver(#[from] marginflow_solvers::SolverError),
}

impl Error {
    /// A `BadSetting` for the setting named `setting` (a field name, not a flag).
    pub fn setting(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadSetting { setting: setting.into(), reason: reason.into() }
    }
    /// An `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Result with the library error.
pub type Result<T> = std::result::Result<T, Error>;
