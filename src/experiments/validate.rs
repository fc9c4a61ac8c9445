//! Validation of the implicit-bias theorem (Frei, Vardi, Bartlett, Srebro, Hu, ICLR 2023) on
//! scenario files.
//!
//! A scenario names a data set (a file or a `[generate]` table), a model and a horizon. For each
//! scenario one gradient flow is run (plus `restarts` flows from other random initializations) and
//! the theorem's claims are measured against thresholds:
//!
//! - `assumption`: the near-orthogonality statistics ([`data::geometry`]); reported, never gating;
//! - `interpolation`: the loss falls below log 2 / n (every margin is then positive);
//! - `kkt`: the velocity dW/ds is parallel to the certified max-margin solution W* (gap 1 − cos
//!   below a threshold), the loss weights converge to λ/Σλ, and the position gap 1 − cos(W, W*)
//!   decays (a least-squares fit of log gap against log(1/s) over the late rows);
//! - `rank`: rank W* ≤ 2, and σ3/σ1 of W(s) decreasing to (near) 0;
//! - `global_max_margin`: the flow's normalized margin reaches the certified QP value and is not
//!   beaten by flows from other initializations;
//! - `linear_boundary` (balanced outer layer only): sign f(x; W) = sign⟨z, x⟩ with
//!   z = Σ λ_i y_i x_i on the data and on Gaussian test points, and z's normalized margin against
//!   the linear max margin.
//!
//! Everything here returns values; rendering is in [`crate::experiments::report`] and [`crate::experiments::plot`], files
//! are written by the binary.
//!
//! The linear max margin comes from [`crate::maxmargin::linear_max_margin`] (certified).

use crate::error::{Error, Result};
use crate::flow::{self, FlowHorizon, FlowObserver, FlowSettings};
use crate::maxmargin;
use crate::model::data::{self, Dataset, GenSettings, Geometry};
use crate::model::loss::Loss;
use crate::model::network::{Init, ModelSettings, Network, OuterLayer};
use marginflow_solvers::linalg;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The built-in default suite: (file name, contents), the same files as `validation/*.toml`.
pub const DEFAULT_SUITE: &[(&str, &str)] = &[
    ("gaussian.toml", include_str!("../../validation/gaussian.toml")),
    ("mixture.toml", include_str!("../../validation/mixture.toml")),
    ("random_outer.toml", include_str!("../../validation/random_outer.toml")),
    ("low_dimensional.toml", include_str!("../../validation/low_dimensional.toml")),
];

/// A claim of the theorem that a scenario checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// The near-orthogonality condition (reported, never gating).
    Assumption,
    /// The loss falls below log 2 / n.
    Interpolation,
    /// Convergence in direction to the certified KKT point.
    Kkt,
    /// rank W* ≤ 2 and σ3/σ1 of W(s) → 0.
    Rank,
    /// The limit is a global max-margin solution.
    GlobalMaxMargin,
    /// A linear decision boundary given by z = Σ λ_i y_i x_i (balanced outer layer).
    LinearBoundary,
}

impl ClaimKind {
    /// All claims, in report order.
    pub const ALL: [ClaimKind; 6] = [
        ClaimKind::Assumption,
        ClaimKind::Interpolation,
        ClaimKind::Kkt,
        ClaimKind::Rank,
        ClaimKind::GlobalMaxMargin,
        ClaimKind::LinearBoundary,
    ];

    /// The snake_case name used in scenario files and reports.
    pub fn name(&self) -> &'static str {
        match self {
            ClaimKind::Assumption => "assumption",
            ClaimKind::Interpolation => "interpolation",
            ClaimKind::Kkt => "kkt",
            ClaimKind::Rank => "rank",
            ClaimKind::GlobalMaxMargin => "global_max_margin",
            ClaimKind::LinearBoundary => "linear_boundary",
        }
    }
}

/// The verdict on one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every gating measurement is within its threshold.
    Holds,
    /// Some gating measurement is outside its threshold.
    Fails,
    /// Fails, and the scenario lists it in `expect_fail` (a negative control working as intended).
    ExpectedFailure,
    /// Holds although the scenario lists it in `expect_fail`: the run fails.
    UnexpectedlyHeld,
    /// Does not apply to this scenario (e.g. the linear boundary with an unbalanced outer layer).
    NotApplicable,
    /// Measured and reported only (the assumption).
    Reported,
}

impl Verdict {
    /// Whether this verdict makes the run fail (exit status 1).
    pub fn fails_run(&self) -> bool {
        matches!(self, Verdict::Fails | Verdict::UnexpectedlyHeld)
    }

    /// A short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "FAILS",
            Verdict::ExpectedFailure => "expected failure",
            Verdict::UnexpectedlyHeld => "UNEXPECTEDLY HELD",
            Verdict::NotApplicable => "not applicable",
            Verdict::Reported => "reported",
        }
    }
}

/// How a measurement is compared with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// value ≤ threshold.
    AtMost,
    /// value < threshold.
    Below,
    /// value ≥ threshold.
    AtLeast,
    /// No threshold: reported only.
    Reported,
}

/// One measured number of a claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    /// The value (`None` when it could not be computed or is not finite).
    pub value: Option<f64>,
    /// The threshold it is compared with.
    pub threshold: Option<f64>,
    /// How it is compared.
    pub comparison: Comparison,
    /// Whether it passes (`None` for reported-only measurements).
    pub pass: Option<bool>,
    /// Whether its pass/fail enters the claim's verdict.
    pub gating: bool,
}

impl Measurement {
    fn gate(name: &str, value: Option<f64>, comparison: Comparison, threshold: f64) -> Self {
        let pass = value.map(|v| match comparison {
            Comparison::AtMost => v <= threshold,
            Comparison::Below => v < threshold,
            Comparison::AtLeast => v >= threshold,
            Comparison::Reported => true,
        });
        Measurement {
            name: name.into(),
            value: value.filter(|v| v.is_finite()),
            threshold: Some(threshold),
            comparison,
            pass: Some(pass.unwrap_or(false)),
            gating: true,
        }
    }

    /// Compared with a threshold but not gating (shown for information).
    fn info_threshold(name: &str, value: Option<f64>, comparison: Comparison, threshold: f64) -> Self {
        let mut m = Measurement::gate(name, value, comparison, threshold);
        m.gating = false;
        m
    }

    fn report(name: &str, value: Option<f64>) -> Self {
        Measurement {
            name: name.into(),
            value: value.filter(|v| v.is_finite()),
            threshold: None,
            comparison: Comparison::Reported,
            pass: None,
            gating: false,
        }
    }
}

/// The verdict on one claim with its measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Which claim.
    pub claim: ClaimKind,
    /// The verdict, after `expect_fail`.
    pub verdict: Verdict,
    /// The measurements behind it.
    pub measurements: Vec<Measurement>,
    /// Why it does not apply, or what could not be computed.
    pub note: Option<String>,
}

impl ClaimResult {
    /// The gating measurements that failed.
    pub fn failing(&self) -> impl Iterator<Item = &Measurement> {
        self.measurements.iter().filter(|m| m.gating && m.pass == Some(false))
    }
}

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

/// Why the linear-boundary claim does not apply: the outer layer has unequal positive and negative
/// mass. With `outer = "balanced"` and odd m that is the ⌈m/2⌉ / ⌊m/2⌋ split: exact balance
/// needs even m.
pub fn unbalanced_note(outer: &str, a: &[f64]) -> String {
    let pos = a.iter().filter(|v| **v > 0.0).count();
    let neg = a.len() - pos;
    if outer == "balanced" && a.len() % 2 == 1 {
        format!(
            "with odd width m = {} the `balanced` outer layer has {pos} entries +1/√m and {neg} entries −1/√m, \
             so it is not exactly balanced (that needs even m): the claim does not apply",
            a.len()
        )
    } else {
        format!(
            "the outer layer is not balanced ({pos} positive, {neg} negative entries): the boundary is piecewise \
             linear and the claim does not apply"
        )
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

/// Map a library flag name (`--until-log10-time`) to the scenario key (`until_log10_time`).
fn key_of_flag(flag: &str) -> String {
    flag.trim_start_matches("--").replace('-', "_")
}

/// Parse a scenario, load or generate its data and check every value. `source` names it in
/// errors; `base` is the directory relative paths are resolved against (`None` for the built-in
/// suite, which must not name files).
pub fn prepare(text: &str, source: &str, base: Option<&Path>) -> Result<PreparedScenario> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
        bad(source, line, e.message().replace('\n', " ").replace("unknown field", "unknown key"))
    })?;
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
            let d = Dataset::load(&path).map_err(|e| bad(source, None, format!("key `data`: {e}")))?;
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
        Error::BadSetting { flag, reason } => {
            bad(source, None, format!("key `{prefix}{}`: {reason}", key_of_flag(&flag)))
        }
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

/// One trajectory row, as numbers for plots and fits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Normalized time s.
    pub s: f64,
    /// log10 t.
    pub log10_time: f64,
    /// log10 L.
    pub log10_loss: f64,
    /// min_i q_i / ‖W‖_F.
    pub normalized_margin: f64,
    /// Top singular values of W, largest first.
    pub singular_values: Vec<f64>,
    /// σ3/σ1.
    pub sigma3_over_sigma1: f64,
    /// Fraction of the theory pattern matched.
    pub pattern_agreement: f64,
    /// 1 − cos(W, W*), when the reference exists.
    pub position_gap: Option<f64>,
    /// 1 − cos(dW/ds, W*), when the reference exists.
    pub velocity_gap: Option<f64>,
}

impl TrajectoryPoint {
    fn from_row(row: &serde_json::Value) -> Option<Self> {
        let f = |k: &str| row.get(k).and_then(|v| v.as_f64());
        Some(TrajectoryPoint {
            s: f("s")?,
            log10_time: f("log10_time").unwrap_or(f64::NAN),
            log10_loss: f("log10_loss").unwrap_or(f64::NAN),
            normalized_margin: f("normalized_margin").unwrap_or(f64::NAN),
            singular_values: row
                .get("singular_values")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .unwrap_or_default(),
            sigma3_over_sigma1: f("sigma3_over_sigma1").unwrap_or(f64::NAN),
            pattern_agreement: f("pattern_agreement").unwrap_or(f64::NAN),
            position_gap: f("cosine_position").map(|c| 1.0 - c),
            velocity_gap: f("cosine_velocity").map(|c| 1.0 - c),
        })
    }
}

/// A least-squares line y = intercept + slope·x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    /// Slope.
    pub slope: f64,
    /// Intercept.
    pub intercept: f64,
    /// Coefficient of determination R².
    pub r_squared: f64,
    /// Number of points.
    pub points: usize,
}

/// Ordinary least squares of y on x (`None` for fewer than 3 points or constant x).
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<LineFit> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let syy: f64 = y.iter().map(|v| (v - my) * (v - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r_squared = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    Some(LineFit { slope, intercept, r_squared, points: n })
}

/// A flow observer that keeps the rows in memory and writes no checkpoints.
#[derive(Default)]
pub struct RowCollector {
    /// The rows, in order.
    pub rows: Vec<serde_json::Value>,
}

impl FlowObserver for RowCollector {
    fn row(&mut self, row: &serde_json::Value) -> Result<()> {
        self.rows.push(row.clone());
        Ok(())
    }
    fn checkpoint_due(&mut self) -> bool {
        false
    }
    fn checkpoint(&mut self, _cp: &crate::flow::checkpoint::Checkpoint) -> Result<()> {
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        false
    }
}

/// The outcome of one restart flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestartResult {
    /// Its initialization seed.
    pub seed: u64,
    /// Its final normalized margin.
    pub normalized_margin: Option<f64>,
    /// Its final status.
    pub status: String,
}

/// Everything measured on one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// The scenario as parsed (with every default filled in).
    pub scenario: Scenario,
    /// The flow settings it ran with.
    pub flow_settings: FlowSettings,
    /// Near-orthogonality statistics.
    pub geometry: Geometry,
    /// Final flow status.
    pub flow_status: String,
    /// Final s.
    pub final_s: Option<f64>,
    /// Work counters of the main flow.
    pub statistics: serde_json::Value,
    /// The certified QP's normalized margin 1/‖W*‖ (theory pattern), if solved.
    pub reference_margin: Option<f64>,
    /// Whether the reference is certified.
    pub reference_certified: bool,
    /// The restart flows.
    pub restarts: Vec<RestartResult>,
    /// The claims.
    pub claims: Vec<ClaimResult>,
    /// The main flow's trajectory.
    pub trajectory: Vec<TrajectoryPoint>,
    /// Plot files, relative to the report (filled in by the renderer's caller).
    pub plots: Vec<PlotFile>,
    /// Wall-clock seconds for this scenario.
    pub wall_seconds: f64,
}

impl ScenarioReport {
    /// Whether any claim makes the run fail.
    pub fn fails(&self) -> bool {
        self.claims.iter().any(|c| c.verdict.fails_run())
    }
    /// A file-name-safe form of the name.
    pub fn slug(&self) -> String {
        let s: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_ascii_lowercase() } else { '-' })
            .collect();
        if s.is_empty() {
            "scenario".into()
        } else {
            s
        }
    }
}

/// A plot of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotFile {
    /// What it shows.
    pub title: String,
    /// File name, relative to the report directory.
    pub file: String,
}

/// The whole validation report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// marginflow version.
    pub version: String,
    /// One entry per scenario, in the order given.
    pub scenarios: Vec<ScenarioReport>,
    /// Whether every claim held (or failed as expected).
    pub passed: bool,
}

impl Report {
    /// Assemble a report (computes `passed`).
    pub fn new(scenarios: Vec<ScenarioReport>) -> Self {
        let passed = scenarios.iter().all(|s| !s.fails());
        Report { version: env!("CARGO_PKG_VERSION").to_string(), scenarios, passed }
    }
}

fn num(v: &serde_json::Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_f64()
}

fn apply_expectation(raw: Option<bool>, expected_fail: bool, not_gating: Verdict) -> Verdict {
    match (raw, expected_fail) {
        (None, _) => not_gating,
        (Some(true), false) => Verdict::Holds,
        (Some(false), false) => Verdict::Fails,
        (Some(false), true) => Verdict::ExpectedFailure,
        (Some(true), true) => Verdict::UnexpectedlyHeld,
    }
}

fn claim(kind: ClaimKind, measurements: Vec<Measurement>, note: Option<String>, expect: &[ClaimKind]) -> ClaimResult {
    let gating: Vec<&Measurement> = measurements.iter().filter(|m| m.gating).collect();
    let raw = if gating.is_empty() { None } else { Some(gating.iter().all(|m| m.pass == Some(true))) };
    let verdict = apply_expectation(raw, expect.contains(&kind), Verdict::Reported);
    ClaimResult { claim: kind, verdict, measurements, note }
}

/// Run one flow and collect its rows.
fn run_flow(
    data: &Dataset,
    settings: &FlowSettings,
    want_weights: bool,
) -> Result<(flow::FlowOutcome, Vec<serde_json::Value>)> {
    let mut c = RowCollector::default();
    let out = flow::run(data, settings, None, want_weights, &mut c)?;
    Ok((out, c.rows))
}

/// Signs of f(x; W) for the rows of `points` (k×d), W m×d row-major.
fn network_signs(w: &[f64], a: &[f64], gamma: f64, d: usize, points: &[f64]) -> Vec<f64> {
    points
        .chunks(d)
        .map(|x| {
            let f: f64 = w
                .chunks(d)
                .zip(a)
                .map(|(wj, aj)| {
                    let z: f64 = wj.iter().zip(x).map(|(p, q)| p * q).sum();
                    aj * if z >= 0.0 { z } else { gamma * z }
                })
                .sum();
            f.signum()
        })
        .collect()
}

/// Run a prepared scenario: the main flow, the restarts, the reference, and every claim.
/// Restarts keep the main flow's outer layer a: when a is random (drawn from the seed) it is
/// passed to them through a temporary `.npy` file, removed afterwards.
pub fn run_scenario(p: &PreparedScenario) -> Result<ScenarioReport> {
    run_scenario_with(p, &|_| {})
}

/// [`run_scenario`], telling `stage` what it is on ("flow …", "max-margin reference",
/// "claims") so a caller can show progress (the library never prints).
pub fn run_scenario_with(p: &PreparedScenario, stage: &(dyn Fn(&str) + Sync)) -> Result<ScenarioReport> {
    let started = Instant::now();
    let sc = &p.scenario;
    let th = &sc.thresholds;
    let data = &p.data;
    let expect = &sc.expect_fail;
    let n = data.n;

    // Main flow (with the full W for the boundary test), and restarts, in parallel.
    let restart_settings: Vec<FlowSettings> = (1..=sc.restarts as u64)
        .map(|k| {
            let mut s = p.flow.clone();
            s.model.seed = sc.seed + k;
            s
        })
        .collect();
    let a = p.flow.model.outer_weights()?;
    stage(&format!("flow to t = 10^{} and {} restart(s)", sc.until_log10_time, sc.restarts));
    let (main, restarts) = rayon::join(
        || run_flow(data, &p.flow, true),
        || restart_settings.par_iter().map(|s| restart_flow(data, s, &a)).collect::<Result<Vec<RestartResult>>>(),
    );
    let (outcome, rows) = main?;
    let restarts = restarts?;
    let summary = serde_json::Value::Object(outcome.summary.fields.clone());
    let trajectory: Vec<TrajectoryPoint> = rows.iter().filter_map(TrajectoryPoint::from_row).collect();

    // The reference, rebuilt here for W*'s singular values and multipliers.
    stage("max-margin reference");
    let net: Network<f64> = Network::new(data, &p.flow.model, 53)?;
    let reference = maxmargin::theory_reference(&net).ok();
    stage("claims (assumption, interpolation, kkt, rank, global_max_margin, linear_boundary)");
    let reference_certified = reference.as_ref().is_some_and(|r| r.certified);
    let reference_margin = reference.as_ref().map(|r| 1.0 / r.norm);

    let mut claims = Vec::new();

    // assumption
    let geometry = data::geometry(data, sc.leak, th.assumption_constant);
    claims.push(claim(
        ClaimKind::Assumption,
        vec![
            Measurement::info_threshold(
                "paper ratio R_min²/(γ⁻³R²np) ≥ C",
                geometry.paper_ratio.or(Some(f64::INFINITY)),
                Comparison::AtLeast,
                th.assumption_constant,
            ),
            Measurement::report("ratio min‖x_i‖²/(n p)", geometry.ratio),
            Measurement::report("max |⟨x_i,x_k⟩|", Some(geometry.max_abs_inner)),
            Measurement::report("min ‖x_i‖²", Some(geometry.min_sq_norm)),
        ],
        Some(format!("the paper's condition {} for C = {}; reported only", geometry.condition, th.assumption_constant)),
        expect,
    ));

    // interpolation
    let interp_threshold = (2f64.ln() / n as f64).log10();
    let min_loss = trajectory
        .iter()
        .map(|r| r.log10_loss)
        .chain(num(&summary, &["log10_loss"]))
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    claims.push(claim(
        ClaimKind::Interpolation,
        vec![Measurement::gate(
            "min log10 L (threshold log10(log 2 / n): below it every margin is positive)",
            Some(min_loss),
            Comparison::Below,
            interp_threshold,
        )],
        None,
        expect,
    ));

    // kkt
    let velocity_gap = num(&summary, &["reference", "cosine_velocity"]).map(|c| 1.0 - c);
    let position_gap = num(&summary, &["reference", "cosine_position"]).map(|c| 1.0 - c);
    let final_s = num(&summary, &["s"]);
    let late = late_rows(&trajectory, final_s, th.late_decades);
    let (lx, ly): (Vec<f64>, Vec<f64>) = late
        .iter()
        .filter_map(|r| r.position_gap.filter(|g| *g > 0.0).map(|g| ((1.0 / r.s).log10(), g.log10())))
        .unzip();
    let gap_fit = fit_line(&lx, &ly);
    let mut kkt_notes = Vec::new();
    if let Some(why) = summary.get("reference").and_then(|r| r.get("not_certified_because").or(r.get("error"))) {
        kkt_notes.push(format!("reference not certified: {}", why.as_str().unwrap_or("?")));
    }
    kkt_notes.push("position-gap fit: log10(1 − cos(W,W*)) = a + b·log10(1/s) over the late rows".into());
    claims.push(claim(
        ClaimKind::Kkt,
        vec![
            Measurement::gate(
                "reference certified (1 = yes)",
                Some(if reference_certified { 1.0 } else { 0.0 }),
                Comparison::AtLeast,
                1.0,
            ),
            Measurement::gate("velocity gap 1 − cos(dW/ds, W*)", velocity_gap, Comparison::AtMost, th.velocity_gap),
            Measurement::gate(
                "multiplier error max|w_i − λ_i/Σλ|",
                num(&summary, &["reference", "multiplier_error"]),
                Comparison::AtMost,
                th.multiplier_error,
            ),
            Measurement::report("KKT stationarity (flow direction)", num(&summary, &["kkt_stationarity"])),
            Measurement::report("KKT complementarity (flow direction)", num(&summary, &["kkt_complementarity"])),
            Measurement::report("position gap 1 − cos(W, W*)", position_gap),
            Measurement::report("position-gap fit slope b", gap_fit.map(|f| f.slope)),
            Measurement::report("position-gap fit R²", gap_fit.map(|f| f.r_squared)),
        ],
        Some(kkt_notes.join("; ")),
        expect,
    ));

    // rank
    let (wstar_rank, wstar_ratio) = match &reference {
        Some(r) => {
            let sv = linalg::singular_values(&net.small_span(&r.coefficients.data))?;
            let rank = linalg::rank_from_singular_values(&sv, th.rank_tolerance);
            let ratio = if sv.len() >= 3 && sv[0] > 0.0 { sv[2] / sv[0] } else { 0.0 };
            (Some(rank as f64), Some(ratio))
        }
        None => (None, None),
    };
    let final_ratio = num(&summary, &["sigma3_over_sigma1"]);
    let (rx, ry): (Vec<f64>, Vec<f64>) =
        late.iter().filter(|r| r.sigma3_over_sigma1 > 0.0).map(|r| (r.s.log10(), r.sigma3_over_sigma1.log10())).unzip();
    let ratio_fit = fit_line(&rx, &ry);
    claims.push(claim(
        ClaimKind::Rank,
        vec![
            Measurement::gate("rank W*", wstar_rank, Comparison::AtMost, 2.0),
            Measurement::report("σ3/σ1 of W*", wstar_ratio),
            Measurement::gate("σ3/σ1 of W at the end", final_ratio, Comparison::AtMost, th.sigma_ratio),
            Measurement::gate(
                "slope of log σ3/σ1 vs log s (late rows)",
                ratio_fit.map(|f| f.slope),
                Comparison::Below,
                0.0,
            ),
        ],
        Some(format!("rank counts singular values above {:e}·σ1", th.rank_tolerance)),
        expect,
    ));

    // global max margin
    let gf_margin = num(&summary, &["normalized_margin"]);
    let best_restart = restarts
        .iter()
        .filter_map(|r| r.normalized_margin)
        .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))));
    let mut gm = vec![
        Measurement::report("flow normalized margin", gf_margin),
        Measurement::report("QP normalized margin 1/‖W*‖", reference_margin),
        Measurement::gate(
            "flow / QP margin",
            gf_margin.zip(reference_margin.filter(|_| reference_certified)).map(|(g, q)| g / q),
            Comparison::AtLeast,
            1.0 - th.margin_tolerance,
        ),
    ];
    if let Some(b) = best_restart {
        gm.push(Measurement::report("best restart normalized margin", Some(b)));
        gm.push(Measurement::gate(
            "flow / best restart margin",
            gf_margin.map(|g| g / b),
            Comparison::AtLeast,
            1.0 - th.margin_tolerance,
        ));
        gm.push(Measurement::gate(
            "best restart / QP margin",
            reference_margin.map(|q| b / q),
            Comparison::AtMost,
            1.0 + th.margin_tolerance,
        ));
    }
    claims.push(claim(
        ClaimKind::GlobalMaxMargin,
        gm,
        Some(format!("{} restart(s); the QP is solved on the theory pattern", restarts.len())),
        expect,
    ));

    // linear boundary
    let balanced = ModelSettings::is_balanced(&a);
    if !balanced {
        claims.push(ClaimResult {
            claim: ClaimKind::LinearBoundary,
            verdict: if expect.contains(&ClaimKind::LinearBoundary) {
                Verdict::UnexpectedlyHeld
            } else {
                Verdict::NotApplicable
            },
            measurements: vec![],
            note: Some(unbalanced_note(&p.scenario.outer, &a)),
        });
    } else {
        claims.push(linear_boundary_claim(p, &net, &a, reference.as_ref(), outcome.weights.as_deref(), expect));
    }

    Ok(ScenarioReport {
        name: sc.name.clone(),
        source: p.source.clone(),
        scenario: sc.clone(),
        flow_settings: p.flow.clone(),
        geometry,
        flow_status: summary.get("status").and_then(|v| v.as_str()).unwrap_or("?").to_string(),
        final_s,
        statistics: summary.get("statistics").cloned().unwrap_or_default(),
        reference_margin,
        reference_certified,
        restarts,
        claims,
        trajectory,
        plots: Vec::new(),
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// A restart flow with the same outer layer `a` (fixed through a temporary `.npy` when random).
fn restart_flow(data: &Dataset, settings: &FlowSettings, a: &[f64]) -> Result<RestartResult> {
    let mut s = settings.clone();
    let mut tmp = None;
    if s.model.outer == OuterLayer::Random {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("marginflow-outer-{}-{k}.npy", std::process::id()));
        crate::io::npy::write_npy(&path, &[a.len()], a)?;
        s.model.outer = OuterLayer::File(path.clone());
        tmp = Some(path);
    }
    let result = run_flow(data, &s, false);
    if let Some(path) = tmp {
        let _ = std::fs::remove_file(path);
    }
    let (out, _) = result?;
    Ok(RestartResult {
        seed: s.model.seed,
        normalized_margin: out.summary.fields.get("normalized_margin").and_then(|v| v.as_f64()),
        status: out.summary.fields.get("status").and_then(|v| v.as_str()).unwrap_or("?").to_string(),
    })
}

/// Rows within `decades` decades of the final s.
fn late_rows(rows: &[TrajectoryPoint], final_s: Option<f64>, decades: f64) -> Vec<TrajectoryPoint> {
    let Some(s_end) = final_s.filter(|s| *s > 0.0) else { return Vec::new() };
    let s_min = s_end / 10f64.powf(decades);
    rows.iter().filter(|r| r.s >= s_min && r.s > 0.0).cloned().collect()
}

fn linear_boundary_claim(
    p: &PreparedScenario,
    net: &Network<f64>,
    a: &[f64],
    reference: Option<&maxmargin::Reference<f64>>,
    weights: Option<&[f64]>,
    expect: &[ClaimKind],
) -> ClaimResult {
    let data = &p.data;
    let th = &p.scenario.thresholds;
    let (n, d) = (data.n, data.d);
    let gamma = p.scenario.leak;
    let (Some(r), Some(w)) = (reference, weights) else {
        let ms = vec![Measurement::gate("reference available (1 = yes)", Some(0.0), Comparison::AtLeast, 1.0)];
        return claim(ClaimKind::LinearBoundary, ms, Some("no max-margin reference".into()), expect);
    };
    // z = Σ λ_i y_i x_i.
    let mut z = vec![0.0; d];
    for i in 0..n {
        let c = r.multipliers[i] * data.y[i];
        for (zk, xk) in z.iter_mut().zip(data.row(i)) {
            *zk += c * xk;
        }
    }
    let zsign = |x: &[f64]| -> f64 { x.iter().zip(&z).map(|(u, v)| u * v).sum::<f64>().signum() };
    let f_data = network_signs(w, a, gamma, d, &data.x);
    let agree_data = (0..n).filter(|&i| f_data[i] == zsign(data.row(i))).count() as f64 / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(p.scenario.seed ^ 0x7e57);
    let k = th.test_points;
    let test: Vec<f64> = (0..k * d).map(|_| StandardNormal.sample(&mut rng)).collect();
    let f_test = network_signs(w, a, gamma, d, &test);
    let agree_test = test.chunks(d).zip(&f_test).filter(|(x, f)| **f == zsign(x)).count() as f64 / k as f64;
    // W* itself: ⟨w*_j, x⟩ = Σ_i C_ji ⟨x_i, x⟩.
    let mut wstar = vec![0.0; a.len() * d];
    for j in 0..a.len() {
        for i in 0..n {
            let c = r.coefficients.data[j * n + i];
            for (wk, xk) in wstar[j * d..(j + 1) * d].iter_mut().zip(data.row(i)) {
                *wk += c * xk;
            }
        }
    }
    let fstar_test = network_signs(&wstar, a, gamma, d, &test);
    let agree_star = test.chunks(d).zip(&fstar_test).filter(|(x, f)| **f == zsign(x)).count() as f64 / k as f64;
    // z's normalized margin against the linear max margin.
    let znorm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    let zmargin = (0..n)
        .map(|i| data.y[i] * data.row(i).iter().zip(&z).map(|(u, v)| u * v).sum::<f64>())
        .fold(f64::INFINITY, f64::min)
        / znorm;
    let lin = maxmargin::linear_max_margin(net, &maxmargin::MaxMarginSettings::default()).ok();
    let lin_margin = lin.filter(|l| l.certified).map(|l| 1.0 / l.norm);
    let mut ms = vec![
        Measurement::gate("agreement on the data", Some(agree_data), Comparison::AtLeast, 1.0),
        Measurement::gate(
            "agreement on Gaussian test points",
            Some(agree_test),
            Comparison::AtLeast,
            th.boundary_agreement,
        ),
        Measurement::report("agreement of W* on the test points", Some(agree_star)),
        Measurement::report("z normalized margin", Some(zmargin)),
        Measurement::report("linear max margin", lin_margin),
        Measurement::gate(
            "z margin / linear max margin",
            lin_margin.map(|l| zmargin / l),
            Comparison::AtLeast,
            th.z_margin_ratio,
        ),
    ];
    if !r.certified {
        ms.insert(0, Measurement::gate("reference certified (1 = yes)", Some(0.0), Comparison::AtLeast, 1.0));
    }
    let note = format!("{k} test points x ~ N(0, I_d); z = Σ λ_i y_i x_i");
    claim(ClaimKind::LinearBoundary, ms, Some(note), expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_line_recovers_a_line() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 3.0 * v).collect();
        let f = fit_line(&x, &y).unwrap();
        assert!((f.slope + 3.0).abs() < 1e-12 && (f.intercept - 2.0).abs() < 1e-12);
        assert!((f.r_squared - 1.0).abs() < 1e-12);
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = prepare("name = \"x\"\ncolour = 3\n[generate]\nn = 4\nd = 50\n", "s.toml", None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("s.toml:2") && msg.contains("colour"), "{msg}");
    }

    #[test]
    fn expectation_logic() {
        assert_eq!(apply_expectation(Some(true), true, Verdict::Reported), Verdict::UnexpectedlyHeld);
        assert_eq!(apply_expectation(Some(false), true, Verdict::Reported), Verdict::ExpectedFailure);
        assert_eq!(apply_expectation(Some(false), false, Verdict::Reported), Verdict::Fails);
        assert_eq!(apply_expectation(None, false, Verdict::NotApplicable), Verdict::NotApplicable);
    }
}
