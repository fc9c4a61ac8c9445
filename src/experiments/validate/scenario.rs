//! Scenario files: parsing, defaults, data loading and the checks of every value.

use super::claim::ClaimKind;
use super::theorems::{self, ScenarioKind, Theorem};
use crate::descent::{DescentActivation, DescentSettings};
use crate::error::{Error, Result};
use crate::flow::{FlowHorizon, FlowSettings};
use crate::model::data::{self, Dataset, GenSettings};
use crate::model::loss::Loss;
use crate::model::network::{Init, ModelSettings, OuterLayer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::thresholds::Thresholds;

/// The built-in default suite: (file name, contents), the same files as `validation/*.toml`
/// except `phase_d.toml` (the base scenario of the `sweep validate` example, docs/phase.md) and
/// `relu_gd.toml` (a finding: gradient descent's margins have not equalized at T = 2·10⁴).
pub const DEFAULT_SUITE: &[(&str, &str)] = &[
    ("gaussian.toml", include_str!("../../../validation/gaussian.toml")),
    ("mixture.toml", include_str!("../../../validation/mixture.toml")),
    ("random_outer.toml", include_str!("../../../validation/random_outer.toml")),
    ("low_dimensional.toml", include_str!("../../../validation/low_dimensional.toml")),
    ("gd_small_init.toml", include_str!("../../../validation/gd_small_init.toml")),
    ("gd_default_init.toml", include_str!("../../../validation/gd_default_init.toml")),
    ("benign.toml", include_str!("../../../validation/benign.toml")),
    ("benign_low_snr.toml", include_str!("../../../validation/benign_low_snr.toml")),
    ("relu.toml", include_str!("../../../validation/relu.toml")),
];

/// The `[generate]` table of a scenario: the options of `marginflow gen`, as the generator's own
/// settings (unknown keys are rejected).
pub type GenerateTable = GenSettings;

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
    /// What runs: gradient flow or gradient descent (default: flow).
    #[serde(default)]
    pub kind: ScenarioKind,
    /// The theorems checked (ids, see `validate --list-theorems`) (default: every theorem that
    /// applies to the kind; `frei2023-benign` only with a `[test]` table).
    #[serde(default)]
    pub theorems: Vec<String>,
    /// Descent: step size α (default: 0.05).
    #[serde(default)]
    pub step_size: Option<f64>,
    /// Descent: number of steps T (default: 1000).
    #[serde(default)]
    pub steps: Option<u64>,
    /// Descent: `"leaky"` or `"smooth"` (default: leaky).
    #[serde(default)]
    pub activation: Option<String>,
    /// Descent: the smoothness H of the smooth activation (default: 1).
    #[serde(default)]
    pub smoothness: Option<f64>,
    /// A clean test set drawn with the training data (needs `[generate]`): `n` points from the
    /// same distribution, labels without noise.
    #[serde(default)]
    pub test: Option<TestTable>,
}

/// The `[test]` table: a clean test set from the training distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestTable {
    /// Number of test points (default: 500).
    #[serde(default = "defaults::test_n")]
    pub n: usize,
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
    pub fn test_n() -> usize {
        500
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
    /// The flow settings (for `kind = "descent"` the model part is the one descent uses).
    pub flow: FlowSettings,
    /// The descent settings (`kind = "descent"`).
    pub descent: Option<DescentSettings>,
    /// The clean test set (`[test]`).
    pub test: Option<Dataset>,
    /// The theorems checked, in report order.
    pub theorems: Vec<&'static Theorem>,
}

impl PreparedScenario {
    /// Keep only theorem `id`; `false` when the scenario does not check it.
    pub fn restrict_to(&mut self, id: &str) -> bool {
        self.theorems.retain(|t| t.id == id);
        !self.theorems.is_empty()
    }
    /// Whether the scenario checks the theorem that `claim` belongs to.
    pub fn checks(&self, claim: ClaimKind) -> bool {
        self.theorems.iter().any(|t| t.claims.contains(&claim))
    }
}

/// Draw the training set and a clean test set of `n_test` points from the same distribution:
/// one data set of n + n_test points without label noise (same seed, so the same mean μ), the
/// first n for training with `label_noise` of their labels flipped (round(η n) distinct indices,
/// seeded from the data seed; both classes kept), the rest as the test set.
fn generate_with_test(g: &GenerateTable, n_test: usize) -> Result<(Dataset, Dataset)> {
    use rand::SeedableRng;
    let all = data::generate(&GenerateTable { n: g.n + n_test, label_noise: 0.0, ..g.clone() })?;
    let d = all.d;
    let mut train = Dataset { n: g.n, d, x: all.x[..g.n * d].to_vec(), y: all.y[..g.n].to_vec() };
    let test = Dataset { n: n_test, d, x: all.x[g.n * d..].to_vec(), y: all.y[g.n..].to_vec() };
    let flips = (g.label_noise * g.n as f64).round() as usize;
    if flips > 0 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(g.seed ^ 0x6e015e);
        for _ in 0..10_000 {
            let idx = rand::seq::index::sample(&mut rng, g.n, flips);
            let mut y = train.y.clone();
            for i in idx.iter() {
                y[i] = -y[i];
            }
            let pos = y.iter().filter(|v| **v > 0.0).count();
            if pos > 0 && pos < g.n {
                train.y = y;
                break;
            }
        }
    }
    Ok((train, test))
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
    if sc.test.is_some() && sc.generate.is_none() {
        return Err(bad(
            source,
            None,
            "table `[test]` needs `[generate]` (the test set is drawn with the training data)",
        ));
    }
    let mut test_set = None;
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
        (None, Some(g)) if sc.test.is_some() => {
            g.validate().map_err(|e| key_error(source, "generate.", e))?;
            let n_test = sc.test.as_ref().map_or(0, |t| t.n);
            if n_test == 0 {
                return Err(bad(source, None, "key `test.n`: must be at least 1"));
            }
            let (d, t) = generate_with_test(g, n_test).map_err(|e| key_error(source, "generate.", e))?;
            d.validate_for_training(Path::new(source)).map_err(|e| bad(source, None, format!("`[generate]`: {e}")))?;
            test_set = Some(t);
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
    for (k, v) in [
        ("smoothed_margin_decrease", t.smoothed_margin_decrease),
        ("rate_spread", t.rate_spread),
        ("path_length_decay", t.path_length_decay),
        ("stable_rank_excess", t.stable_rank_excess),
        ("gd_stable_rank", t.gd_stable_rank),
        ("gd_drop", t.gd_drop),
        ("relu_stable_rank", t.relu_stable_rank),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(bad(source, None, format!("key `thresholds.{k}`: must be finite and > 0, got {v}")));
        }
    }
    if !(t.margin_ratio.is_finite() && t.margin_ratio >= 1.0) {
        return Err(bad(source, None, format!("key `thresholds.margin_ratio`: must be ≥ 1, got {}", t.margin_ratio)));
    }
    if !(0.0..=1.0).contains(&t.test_error) {
        return Err(bad(source, None, format!("key `thresholds.test_error`: must be in [0, 1], got {}", t.test_error)));
    }
    let descent = match sc.kind {
        ScenarioKind::Flow => {
            for (k, set) in [
                ("step_size", sc.step_size.is_some()),
                ("steps", sc.steps.is_some()),
                ("activation", sc.activation.is_some()),
                ("smoothness", sc.smoothness.is_some()),
            ] {
                if set {
                    return Err(bad(source, None, format!("key `{k}`: applies to kind = \"descent\" only")));
                }
            }
            None
        }
        ScenarioKind::Descent => {
            if sc.restarts > 0 {
                return Err(bad(source, None, "key `restarts`: applies to kind = \"flow\" only"));
            }
            let activation = match sc.activation.as_deref().unwrap_or("leaky") {
                "leaky" => {
                    if sc.smoothness.is_some() {
                        return Err(bad(source, None, "key `smoothness`: needs activation = \"smooth\""));
                    }
                    DescentActivation::Leaky
                }
                "smooth" => DescentActivation::Smooth { smoothness: sc.smoothness.unwrap_or(1.0) },
                other => {
                    return Err(bad(source, None, format!("key `activation`: expected leaky or smooth, got {other:?}")))
                }
            };
            let ds = DescentSettings {
                model: flow.model.clone(),
                activation,
                step_size: sc.step_size.unwrap_or(0.05),
                steps: sc.steps.unwrap_or(1000),
                precision: sc.precision,
                ..DescentSettings::default()
            };
            ds.validate().map_err(|e| key_error(source, "", e))?;
            Some(ds)
        }
    };
    let theorems = select_theorems(sc, source)?;
    for c in &sc.expect_fail {
        if !theorems.iter().any(|t| t.claims.contains(c)) {
            return Err(bad(
                source,
                None,
                format!("key `expect_fail`: `{}` belongs to a theorem this scenario does not check", c.name()),
            ));
        }
    }
    Ok(PreparedScenario { source: source.to_string(), scenario, data, flow, descent, test: test_set, theorems })
}

/// The theorems a scenario checks: those it names (each must exist and apply to its kind), or
/// every default one that applies to its kind (`frei2023-benign` only with `[test]`).
fn select_theorems(sc: &Scenario, source: &str) -> Result<Vec<&'static Theorem>> {
    if sc.theorems.is_empty() {
        return Ok(theorems::THEOREMS
            .iter()
            .filter(|t| t.kinds.contains(&sc.kind) && (t.default_on || sc.test.is_some()))
            .collect());
    }
    let mut out: Vec<&'static Theorem> = Vec::new();
    for id in &sc.theorems {
        let t = theorems::theorem(id).ok_or_else(|| {
            bad(source, None, format!("key `theorems`: unknown theorem {id:?} (known: {})", theorems::ids()))
        })?;
        if !t.kinds.contains(&sc.kind) {
            return Err(bad(
                source,
                None,
                format!("key `theorems`: {id} does not apply to kind = \"{}\"", sc.kind.name()),
            ));
        }
        if t.claims.contains(&ClaimKind::BenignOverfitting) && sc.test.is_none() {
            return Err(bad(source, None, format!("key `theorems`: {id} needs a `[test]` table")));
        }
        if !out.iter().any(|o| o.id == t.id) {
            out.push(t);
        }
    }
    // Report order.
    out.sort_by_key(|t| theorems::THEOREMS.iter().position(|u| u.id == t.id));
    Ok(out)
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
