//! Exact, resumable snapshots of a flow run: integrator state (f64 as bit patterns, MPFR as exact
//! hexadecimal strings), step-size controller memory, switching modes, counters, the trajectory
//! position, the settings, and a hash of the data. A resumed run continues bit for bit.

use crate::error::{Error, Result};
use crate::flow::{FlowSettings, Phase, SwitchMemory};
use marginflow_solvers::ode::{IntegratorState, Statistics};
use marginflow_solvers::Real;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format version of the checkpoint file.
pub const VERSION: u32 = 1;

/// A flow checkpoint (DIR/checkpoint, JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The run's settings.
    pub settings: FlowSettings,
    /// SHA-256 of the data (n, d, bit patterns of X and y).
    pub data_hash: String,
    /// Working precision in bits.
    pub precision: u32,
    /// Normalized time s (exact).
    pub s: String,
    /// State (B row-major, then log(1+t)), exact.
    pub y: Vec<String>,
    /// Next step size, exact.
    pub h: String,
    /// Controller memory, exact.
    pub err_old: String,
    /// Whether the last attempt was rejected.
    pub last_rejected: bool,
    /// Chatter detector memory.
    pub chatter: Option<(usize, u32)>,
    /// Work counters.
    pub statistics: Statistics,
    /// f(s, y) when the integrator already had it (exact), so a resume does not re-evaluate it.
    #[serde(default)]
    pub first_stage: Option<Vec<String>>,
    /// Switching modes of the P_ji (+1, −1, 0 released).
    pub modes: Vec<i8>,
    /// Trajectory rows written so far.
    pub rows_written: usize,
    /// log10 s of the next trajectory row, as f64 bits.
    pub next_row_bits: String,
    /// Wall-clock seconds spent so far.
    pub wall_seconds: f64,
    /// Phase of a `--method auto` run (explicit pair, or SEULEX after the switch); absent in
    /// checkpoints written before phases existed, which were all explicit.
    #[serde(default)]
    pub phase: Phase,
    /// Memory of `auto`'s switch criterion (quiet streak, switch point); absent in old
    /// checkpoints (an empty streak: the criterion starts counting at the resumed state).
    #[serde(default)]
    pub switch: SwitchMemory,
    /// The watchdog's windows and rows (absent in old checkpoints: it starts afresh).
    #[serde(default)]
    pub watchdog: crate::flow::watchdog::Watchdog,
    /// The dual engine's state (absent for the span engine).
    #[serde(default)]
    pub dual: Option<crate::flow::dual::DualCheckpoint>,
    /// The file it was loaded from (not stored; `None` for a checkpoint made in memory), named by
    /// its errors.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// A restored state.
pub struct Restored<T> {
    /// Integrator state.
    pub state: IntegratorState<T>,
    /// Switching modes.
    pub modes: Vec<i8>,
}

impl Checkpoint {
    /// Capture the state of a run (in [`Phase::Explicit`] with an empty switch memory; the flow
    /// driver sets [`Checkpoint::phase`] and [`Checkpoint::switch`]).
    pub fn capture<T: Real>(
        settings: &FlowSettings,
        data_hash: &str,
        st: &IntegratorState<T>,
        modes: &[i8],
        rows_written: usize,
        next_row: f64,
        wall_seconds: f64,
    ) -> Self {
        Checkpoint {
            version: VERSION,
            settings: settings.clone(),
            data_hash: data_hash.to_string(),
            precision: st.s.precision(),
            s: st.s.to_exact(),
            y: st.y.iter().map(|v| v.to_exact()).collect(),
            h: st.h.to_exact(),
            err_old: st.err_old.to_exact(),
            last_rejected: st.last_rejected,
            chatter: st.chatter,
            first_stage: st.first_stage.as_ref().map(|k| k.iter().map(|v| v.to_exact()).collect()),
            statistics: st.stats.clone(),
            modes: modes.to_vec(),
            rows_written,
            next_row_bits: next_row.to_exact(),
            wall_seconds,
            phase: Phase::Explicit,
            switch: SwitchMemory::default(),
            watchdog: Default::default(),
            dual: None,
            source: None,
        }
    }

    /// log10 s of the next trajectory row.
    pub fn next_row(&self) -> f64 {
        f64::from_exact(&self.next_row_bits).unwrap_or(-6.0)
    }

    /// Decode the integrator state, refusing a different data set or dimension.
    pub fn restore<T: Real>(&self, data_hash: &str, dim: usize) -> Result<Restored<T>> {
        let bad = |reason: String| Error::BadCheckpoint { path: self.path(), reason };
        if self.data_hash != data_hash {
            return Err(bad(format!(
                "data hash {} differs from the data given ({}): refusing to resume on other data",
                short(&self.data_hash),
                short(data_hash)
            )));
        }
        if self.y.len() != dim || self.modes.len() + 1 != dim {
            return Err(bad(format!("state has {} values, the model needs {dim}", self.y.len())));
        }
        let dec = |s: &str, what: &str| T::from_exact(s).ok_or_else(|| bad(format!("cannot decode {what} {s:?}")));
        let mut y = Vec::with_capacity(dim);
        for v in &self.y {
            y.push(dec(v, "state value")?);
        }
        let state = IntegratorState {
            s: dec(&self.s, "s")?,
            y,
            h: dec(&self.h, "step size")?,
            err_old: dec(&self.err_old, "controller memory")?,
            last_rejected: self.last_rejected,
            chatter: self.chatter,
            stats: self.statistics.clone(),
            first_stage: match &self.first_stage {
                Some(k) => Some(k.iter().map(|v| dec(v, "first stage")).collect::<Result<Vec<T>>>()?),
                None => None,
            },
        };
        if state.s.precision() != self.precision {
            return Err(bad(format!("precision {} does not match the stored values", self.precision)));
        }
        Ok(Restored { state, modes: self.modes.clone() })
    }

    /// The weights W = W(0) + B X (m×d row-major, rounded to f64) of the checkpointed state on
    /// `data`, computed at the checkpoint's precision exactly as [`crate::flow::run`] computes
    /// its final `weights` (the same network construction and the same B), so W of a finished
    /// run can be produced later, on request, without keeping the m×d matrix.
    pub fn weights(&self, data: &crate::model::data::Dataset) -> Result<Vec<f64>> {
        if self.precision == 53 {
            return self.weights_at::<f64>(data);
        }
        #[cfg(feature = "mpfr")]
        {
            self.weights_at::<rug::Float>(data)
        }
        #[cfg(not(feature = "mpfr"))]
        Err(Error::BadCheckpoint {
            path: "checkpoint".into(),
            reason: format!("{} bits needs the MPFR build (feature `mpfr`)", self.precision),
        })
    }

    fn weights_at<T: Real>(&self, data: &crate::model::data::Dataset) -> Result<Vec<f64>> {
        let net: crate::model::network::Network<T> =
            crate::model::network::Network::new(data, &self.settings.model, self.precision)?;
        let mn = net.m * net.n;
        let r = self.restore::<T>(&data.hash(), mn + 1)?;
        net.full_weights(data, &r.state.y[..mn])
    }

    /// Serialize to JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("checkpoint serializes")
    }

    /// Read DIR/checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| Error::BadCheckpoint {
            path: path.into(),
            reason: format!("not a marginflow checkpoint: {e}"),
        })?;
        if cp.version != VERSION {
            return Err(Error::BadCheckpoint {
                path: path.into(),
                reason: format!("version {} (expected {VERSION})", cp.version),
            });
        }
        Ok(Checkpoint { source: Some(path.to_path_buf()), ..cp })
    }

    /// The file it was loaded from, for errors (`checkpoint` when made in memory).
    pub fn path(&self) -> PathBuf {
        self.source.clone().unwrap_or_else(|| PathBuf::from("checkpoint"))
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}
