//! What a flow run is asked to do: the model, the horizon, the tolerances, the method.

use super::watchdog::WatchdogSettings;
use crate::error::{Error, Result};
use crate::model::network::ModelSettings;
use marginflow_solvers::tableau::Method;
use serde::{Deserialize, Serialize};

/// Where the flow stops.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowHorizon {
    /// Physical time t = T.
    Time(f64),
    /// Physical time t = 10^X.
    Log10Time(f64),
    /// Normalized time s = S.
    S(f64),
}

impl FlowHorizon {
    /// Check the horizon is positive and finite.
    pub fn validate(&self) -> Result<()> {
        let (flag, v) = match *self {
            FlowHorizon::Time(t) => ("until_time", t),
            FlowHorizon::Log10Time(x) => ("until_log10_time", if x.is_finite() { 1.0 } else { x }),
            FlowHorizon::S(s) => ("until_s", s),
        };
        if !(v > 0.0 && v.is_finite()) {
            return Err(Error::setting(flag, format!("must be finite and > 0, got {v}")));
        }
        Ok(())
    }
}

/// Which engine integrates the flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The cumulated loss weights Ω ∈ Rⁿ (and u): O(n²) per right-hand side, kinks as queued
    /// events of single entries (src/flow/dual/).
    #[default]
    Dual,
    /// The network state B ∈ R^{m×n}: O(m n²) per right-hand side (src/flow/span/).
    Span,
}

/// Settings files written before the engine setting existed ran the span engine.
fn engine_before_setting() -> Engine {
    Engine::Span
}

/// Settings files written before the setting existed listed 8 singular values per row.
fn default_singular_values() -> usize {
    crate::metrics::REPORTED_SINGULAR_VALUES
}

/// Settings of a flow run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowSettings {
    /// The model (width, leak, outer layer, initialization, seed, loss).
    pub model: ModelSettings,
    /// Where to stop (default: t = 10^100).
    pub horizon: FlowHorizon,
    /// Relative tolerance (default: 1e-10).
    pub rtol: f64,
    /// Absolute tolerance (default: 1e-12).
    pub atol: f64,
    /// Integration method (default: auto: dopri5 for rtol ≥ 1e-12, else a high-order pair, then
    /// SEULEX once the flow is stiff; see [`Phase`]).
    pub method: Method,
    /// Locate kink events (default: true).
    pub events: bool,
    /// Working precision in bits; 53 is f64 (default: 53).
    pub precision: u32,
    /// Trajectory rows per decade of s (default: 20).
    pub rows_per_decade: u32,
    /// At most this many trajectory rows (default: 2000).
    pub max_rows: usize,
    /// Singular values of W in each trajectory row, largest first (default: 8; the summary
    /// always lists 8).
    #[serde(default = "default_singular_values")]
    pub singular_values: usize,
    /// Step limit, accepted plus rejected (default: none).
    pub max_steps: Option<u64>,
    /// The engine (default: dual).
    #[serde(default = "engine_before_setting")]
    pub engine: Engine,
    /// When a run without progress, or at a stationary point of positive loss, ends
    /// (default: [`WatchdogSettings::default`]).
    #[serde(default)]
    pub watchdog: WatchdogSettings,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            model: ModelSettings::default(),
            horizon: FlowHorizon::Log10Time(100.0),
            rtol: 1e-10,
            atol: 1e-12,
            method: Method::Auto,
            events: true,
            precision: 53,
            rows_per_decade: 20,
            max_rows: 2000,
            singular_values: default_singular_values(),
            max_steps: None,
            engine: Engine::Dual,
            watchdog: WatchdogSettings::default(),
        }
    }
}

impl FlowSettings {
    /// The integrator's settings of this run (tolerances, events, step limit).
    pub fn integrator(&self) -> marginflow_solvers::ode::IntegratorSettings {
        marginflow_solvers::ode::IntegratorSettings {
            rtol: self.rtol,
            atol: self.atol,
            events: self.events,
            max_steps: self.max_steps,
            ..Default::default()
        }
    }

    /// Check all ranges, naming the setting at fault.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.horizon.validate()?;
        if !(self.rtol > 0.0 && self.rtol.is_finite()) {
            return Err(Error::setting("rtol", format!("must be > 0, got {}", self.rtol)));
        }
        if !(self.atol > 0.0 && self.atol.is_finite()) {
            return Err(Error::setting("atol", format!("must be > 0, got {}", self.atol)));
        }
        if self.precision < 53 || (self.precision > 53 && self.precision < 64) {
            return Err(Error::setting(
                "precision",
                format!("must be 53 (f64) or at least 64 bits, got {}", self.precision),
            ));
        }
        if !marginflow_solvers::Precision::from_bits(self.precision).available() {
            return Err(Error::setting(
                "precision",
                format!(
                    "{} bits needs the MPFR build (53, 106 and 212 are built in): cargo build --release --features mpfr",
                    self.precision
                ),
            ));
        }
        if self.singular_values == 0 {
            return Err(Error::setting("singular_values", "must be at least 1"));
        }
        if self.rows_per_decade == 0 {
            return Err(Error::setting("rows_per_decade", "must be at least 1"));
        }
        Ok(())
    }
}
