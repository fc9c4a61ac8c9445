//! Scenario files: parsing, defaults, data loading and the checks of every value.

use super::claims::ClaimKind;
use crate::error::{Error, Result};
use crate::flow::{FlowHorizon, FlowSettings};
use crate::model::data::{self, Dataset, GenSettings};
use crate::model::loss::Loss;
use crate::model::network::{Init, ModelSettings, OuterLayer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in default suite: (file name, contents), the same files as `validation/*.toml`
/// except `phase_d.toml` (the base scenario of the `sweep validate` example, docs/phase.md).
pub const DEFAULT_SUITE: &[(&str, &str)] = &[
    ("gaussian.toml", include_str!("../../../validation/gaussian.toml")),
    ("mixture.toml", include_str!("../../../validation/mixture.toml")),
    ("random_outer.toml", include_str!("../../../validation/random_outer.toml")),
    ("low_dimensional.toml", include_str!("../../../validation/low_dimensional.toml")),
];

/// The `[generate]` table of a scenario: the options of `marginflow gen`, as the generator's own
/// settings (unknown keys are rejected).
pub type GenerateTable = GenSettings;

/// Thresholds of the claims (the `[thresholds]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Constant C of the near-orthogonality condition R_min² ≥ C γ⁻³ R² n p (default: 3).
    pub assumption_constant: f64,
    /// Largest velocity gap 1 − cos(dW/ds, W*) at the end (default: 1e-8).
    pub velocity_gap: f64,
    /// Largest multiplier error max_i |w_i − λ_i/Σλ| at the end (default: 1e-6).
    pub multiplier_error: f64,
    /// Singular values of W* below this fraction of σ1 count as zero for its rank (default: 1e-10).
    pub rank_tolerance: f64,
    /// Largest σ3/σ1 of the flow's W at the end (default: 0.05).
    pub sigma_ratio: f64,
    /// Relative tolerance of the normalized-margin ratios (flow / QP, flow / best restart):
    /// each must be ≥ 1 − this (default: 1e-3).
    pub margin_tolerance: f64,
    /// Smallest fraction of Gaussian test points where sign f(x; W) = sign⟨z, x⟩ (default: 0.99).
    pub boundary_agreement: f64,
    /// Smallest ratio of z's normalized margin to the linear max margin (default: 0.9).
    pub z_margin_ratio: f64,
    /// Number of Gaussian test points for the boundary (default: 1000).
    pub test_points: usize,
    /// Late rows are those within this many decades of the final s (default: 1).
    pub late_decades: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            assumption_constant: 3.0,
            velocity_gap: 1e-8,
            multiplier_error: 1e-6,
            rank_tolerance: 1e-10,
            sigma_ratio: 0.05,
            margin_tolerance: 1e-3,
            boundary_agreement: 0.99,
            z_margin_ratio: 0.9,
            test_points: 1000,
            late_decades: 1.0,
        }
    }
}

/// A scenario file. Unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in the report (and used for plot file names) (default: the file stem, e.g.
    /// `my` for `my.toml`).
    #[serde(default)]
    pub name: String,
    /// A data file, relative to the scenario file (exclusive with `generate`).
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// The labels for `data = "X.npy"` (points in a NumPy file), a `.npy` file relative to the
    /// scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Generate the data instead (exclusive with `data`).
    #[serde(default)]
    pub generate: Option<GenerateTable>,
    /// Width m (default: 16).
    #[serde(default = "defaults::width")]
    pub width: usize,
    /// Leak γ (default: 0.1).
    #[serde(default = "defaults::leak")]
    pub leak: f64,
    /// Outer layer: "balanced", "random" or a .npy file relative to the scenario (default: balanced).
    #[serde(default = "defaults::outer")]
    pub outer: String,
    /// Initialization scale ω (default: 1e-3).
    #[serde(default = "defaults::init_scale")]
    pub init_scale: f64,
    /// Seed of the initialization and of a random outer layer (default: 0).
    #[serde(default)]
    pub seed: u64,
    /// "logistic" or "exponential" (default: logistic).
    #[serde(default)]
    pub loss: Loss,
    /// Horizon t = 10^X (default: 1000).
    #[serde(default = "defaults::until_log10_time")]
    pub until_log10_time: f64,
    /// Relative tolerance (default: 1e-10).
    #[serde(default = "defaults::rtol")]
    pub rtol: f64,
    /// Absolute tolerance (default: 1e-12).
    #[serde(default = "defaults::atol")]
    pub atol: f64,
    /// Working precision in bits (default: 53).
    #[serde(default = "defaults::precision")]
    pub precision: u32,
    /// Extra flows from random initializations with seeds seed+1..=seed+restarts (default: 0).
    #[serde(default)]
    pub restarts: u32,
    /// Step limit of each flow (default: none).
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Thresholds of the claims.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Claims expected to fail (negative controls).
    #[serde(default)]
    pub expect_fail: Vec<ClaimKind>,
}

mod defaults {
    pub fn width() -> usize {
        16
    }
    pub fn leak() -> f64 {
        0.1
    }
    pub fn outer() -> String {
        "balanced".into()
    }
    pub fn init_scale() -> f64 {
        1e-3
    }
    pub fn until_log10_time() -> f64 {
        1000.0
    }
    pub fn rtol() -> f64 {
        1e-10
    }
    pub fn atol() -> f64 {
        1e-12
    }
    pub fn precision() -> u32 {
        53
    }
}

/// A parsed scenario with its data, ready to run.
#[derive(Clone, Debug)]
pub struct PreparedScenario {
    /// Where it came from (a path, or `builtin:NAME` for the default suite).
    pub source: String,
    /// The scenario.
    pub scenario: Scenario,
    /// Its data.
    pub data: Dataset,
    /// The flow settings.
    pub flow: FlowSettings,
}

fn bad(source: &str, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error::BadData { path: PathBuf::from(source), line, reason: reason.into() }
}

/// Parse a scenario, load or generate its data and check every value. `source` names it in
/// errors; `base` is the directory relative paths are resolved against (`None` for the built-in
/// suite, which must not name files).
pub fn prepare(text: &str, source: &str, base: Option<&Path>) -> Result<PreparedScenario> {
    prepare_parsed(parse(text, source)?, source, base)
}

/// Parse a scenario file's text (unknown keys are errors naming the line), without checking
/// its values or loading its data.
pub fn parse(text: &str, source: &str) -> Result<Scenario> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
        bad(source, line, e.message().replace('\n', " ").replace("unknown field", "unknown key"))
    })
}

/// [`prepare`] for an already parsed scenario (e.g. one with swept values applied).
pub fn prepare_parsed(scenario: Scenario, source: &str, base: Option<&Path>) -> Result<PreparedScenario> {
    let mut scenario = scenario;
    if scenario.name.is_empty() {
        // No `name` key: the file stem (`builtin:gaussian` → `gaussian`).
        let file = source.strip_prefix("builtin:").unwrap_or(source);
        scenario.name = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    }
    let sc = &scenario;
    if sc.name.trim().is_empty() {
        return Err(bad(source, None, "key `name`: must not be empty"));
    }
    let resolve = |p: &Path| -> Result<PathBuf> {
        match base {
            Some(b) => Ok(b.join(p)),
            None if p.is_absolute() => Ok(p.to_path_buf()),
            None => {
                Err(bad(source, None, format!("`{}`: a built-in scenario cannot name a relative file", p.display())))
            }
        }
    };
    let data = match (&sc.data, &sc.generate) {
        (Some(_), Some(_)) => return Err(bad(source, None, "keys `data` and `[generate]` exclude each other")),
        (None, None) => return Err(bad(source, None, "needs `data = \"FILE\"` or a `[generate]` table")),
        (Some(p), None) => {
            let path = resolve(p)?;
            let labels = sc.labels.as_deref().map(resolve).transpose()?;
            let d = Dataset::load_with_labels(&path, labels.as_deref())
                .map_err(|e| bad(source, None, format!("key `data`: {e}")))?;
            d.validate_for_training(&path).map_err(|e| bad(source, None, format!("key `data`: {e}")))?;
            d
        }
        (None, Some(g)) => {
            g.validate().map_err(|e| key_error(source, "generate.", e))?;
            let d = data::generate(g).map_err(|e| key_error(source, "generate.", e))?;
            d.validate_for_training(Path::new(source)).map_err(|e| bad(source, None, format!("`[generate]`: {e}")))?;
            d
        }
    };
    let outer = match sc.outer.as_str() {
        "balanced" => OuterLayer::Balanced,
        "random" => OuterLayer::Random,
        f if f.ends_with(".npy") => OuterLayer::File(resolve(Path::new(f))?),
        other => {
            return Err(bad(
                source,
                None,
                format!("key `outer`: expected balanced, random or a .npy file, got {other:?}"),
            ))
        }
    };
    let model = ModelSettings {
        width: sc.width,
        leak: sc.leak,
        outer,
        init: Init::Scale(sc.init_scale),
        seed: sc.seed,
        loss: sc.loss,
    };
    let flow = FlowSettings {
        model,
        horizon: FlowHorizon::Log10Time(sc.until_log10_time),
        rtol: sc.rtol,
        atol: sc.atol,
        precision: sc.precision,
        max_steps: sc.max_steps,
        ..FlowSettings::default()
    };
    flow.validate().map_err(|e| key_error(source, "", e))?;
    flow.model.outer_weights().map_err(|e| bad(source, None, format!("key `outer`: {e}")))?;
    let t = &sc.thresholds;
    let positive = [
        ("assumption_constant", t.assumption_constant),
        ("velocity_gap", t.velocity_gap),
        ("multiplier_error", t.multiplier_error),
        ("rank_tolerance", t.rank_tolerance),
        ("sigma_ratio", t.sigma_ratio),
        ("margin_tolerance", t.margin_tolerance),
        ("late_decades", t.late_decades),
    ];
    for (k, v) in positive {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(source, None, format!("key `thresholds.{k}`: must be finite and > 0, got {v}")));
        }
    }
    for (k, v) in [("boundary_agreement", t.boundary_agreement), ("z_margin_ratio", t.z_margin_ratio)] {
        if !(0.0..=1.0).contains(&v) {
            return Err(bad(source, None, format!("key `thresholds.{k}`: must be in [0, 1], got {v}")));
        }
    }
    if t.test_points == 0 {
        return Err(bad(source, None, "key `thresholds.test_points`: must be at least 1"));
    }
    if sc.expect_fail.contains(&ClaimKind::Assumption) {
        return Err(bad(source, None, "key `expect_fail`: `assumption` is reported only and never fails"));
    }
    Ok(PreparedScenario { source: source.to_string(), scenario, data, flow })
}

fn key_error(source: &str, prefix: &str, e: Error) -> Error {
    match e {
        // Settings are named by their fields, which are the scenario's keys.
        Error::BadSetting { setting, reason } => bad(source, None, format!("key `{prefix}{setting}`: {reason}")),
        other => bad(source, None, other.to_string()),
    }
}

/// Read and prepare a scenario file.
pub fn prepare_file(path: &Path) -> Result<PreparedScenario> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let base = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    prepare(&text, &path.display().to_string(), base)
}

/// Prepare the built-in default suite.
pub fn prepare_default_suite() -> Result<Vec<PreparedScenario>> {
    DEFAULT_SUITE.iter().map(|(name, text)| prepare(text, &format!("builtin:{name}"), None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = prepare("name = \"x\"\ncolour = 3\n[generate]\nn = 4\nd = 50\n", "s.toml", None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("s.toml:2") && msg.contains("colour"), "{msg}");
    }
}
