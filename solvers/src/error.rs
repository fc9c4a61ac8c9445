//! Errors of the numerical layer. Payloads hold `f64` copies of high-precision values so the
//! type stays non-generic.

use thiserror::Error;

/// Everything that can go wrong inside `marginflow-solvers`.
#[derive(Debug, Error)]
pub enum SolverError {
    /// Matrix dimensions do not fit together.
    #[error("dimension mismatch in {op}: {detail}")]
    Dimension {
        /// The operation.
        op: &'static str,
        /// The shapes involved.
        detail: String,
    },
    /// A factorization met a zero or negative pivot.
    #[error("{op}: matrix is singular or not positive definite (pivot {pivot} at index {index})")]
    Singular {
        /// The factorization.
        op: &'static str,
        /// Index of the failing pivot.
        index: usize,
        /// Its value.
        pivot: f64,
    },
    /// An iteration did not converge.
    #[error("{op} did not converge after {iterations} iterations")]
    NoConvergence {
        /// The iteration.
        op: &'static str,
        /// How many were done.
        iterations: usize,
    },
    /// Invalid integrator or solver settings.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint could not be decoded.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),
    /// The QP solver failed outright.
    #[error("QP solver: {0}")]
    Qp(String),
    /// A stop was requested (SIGINT/SIGTERM, see [`crate::interrupt`]) during a computation.
    #[error("interrupted")]
    Interrupted,
    /// An allocation would exceed the memory limit (see [`crate::memory`]).
    #[error("{what} needs {} in memory, above the memory limit of {}", crate::memory::format_bytes(*bytes), crate::memory::format_bytes(*limit))]
    MemoryLimit {
        /// What would be allocated.
        what: String,
        /// Its estimated size in bytes.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
}
