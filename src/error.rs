//! Errors of the `marginflow` library. Each variant names the file, line or flag at fault so the
//! binary can print it in one line and exit with status 2.

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
    /// A setting or flag is out of range or conflicts with another.
    #[error("{flag}: {reason}")]
    BadSetting {
        /// The flag or scenario key.
        flag: String,
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
    /// An error from the numerical layer.
    #[error(transparent)]
    Solver(#[from] marginflow_solvers::SolverError),
}

impl Error {
    /// A `BadSetting` for `flag`.
    pub fn setting(flag: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadSetting { flag: flag.into(), reason: reason.into() }
    }
    /// An `Io` error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Result with the library error.
pub type Result<T> = std::result::Result<T, Error>;
