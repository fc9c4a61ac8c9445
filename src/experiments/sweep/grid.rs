//! The shared types of a sweep: what is swept ([`Variable`], [`Axis`]), the settings
//! ([`SweepSettings`]: the cartesian product of the axes, run r with the *last* axis varying
//! fastest), and what a run yields ([`RunResult`], the typed summary of a validate grid point
//! [`PointSummary`], the typed columns of runs.csv). Imports none of the other sweep modules.

use crate::descent::{self, DescentSettings};
use crate::error::{Error, Result};
use crate::experiments::validate::{ClaimKind, ClaimResult, Scenario, Verdict};
use crate::flow::{FlowHorizon, FlowSettings};
use crate::metrics::to_json_value;
use crate::model::data::GenSettings;
use crate::model::network::Init;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which subcommand a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SweepKind {
    /// Gradient flow (`marginflow flow`).
    Flow,
    /// Gradient descent (`marginflow descent`).
    Descent,
    /// The claims of `marginflow validate` on a scenario file, per grid point (a phase diagram).
    Validate,
}

/// A numeric setting a sweep can vary (names are the command-line flags without dashes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// `--width`.
    Width,
    /// `--leak`.
    Leak,
    /// `--init-scale` (times 1/√d when the sweep's `init_relative` is set).
    InitScale,
    /// `--seed` (initialization and random outer layer).
    Seed,
    /// `--n` of generated data.
    N,
    /// `--d` of generated data.
    D,
    /// `--data-seed` of generated data.
    DataSeed,
    /// `--mean-norm` of generated mixture data.
    MeanNorm,
    /// `--step-size` (descent).
    StepSize,
    /// `--steps` (descent).
    Steps,
    /// `--smoothness` (descent, smooth activation).
    Smoothness,
    /// `--until-log10-time` (flow).
    UntilLog10Time,
    /// `--rtol` (flow).
    Rtol,
}

impl Variable {
    /// The column name (the flag without dashes, with underscores).
    pub fn name(self) -> &'static str {
        match self {
            Variable::Width => "width",
            Variable::Leak => "leak",
            Variable::InitScale => "init_scale",
            Variable::Seed => "seed",
            Variable::N => "n",
            Variable::D => "d",
            Variable::DataSeed => "data_seed",
            Variable::MeanNorm => "mean_norm",
            Variable::StepSize => "step_size",
            Variable::Steps => "steps",
            Variable::Smoothness => "smoothness",
            Variable::UntilLog10Time => "until_log10_time",
            Variable::Rtol => "rtol",
        }
    }

    /// Whether the variable only replicates a grid point (seeds) rather than moving it.
    pub fn is_replicate(self) -> bool {
        matches!(self, Variable::Seed | Variable::DataSeed)
    }

    /// Whether values must be non-negative integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Variable::Width | Variable::Seed | Variable::N | Variable::D | Variable::DataSeed | Variable::Steps
        )
    }
}

/// One swept setting and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The setting.
    pub variable: Variable,
    /// Its values, in the order given.
    pub values: Vec<f64>,
}

/// Where each run's data come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// One loaded data set shared by all runs (then n, d, data_seed, mean_norm cannot be swept).
    Loaded {
        /// The file it came from.
        path: PathBuf,
        /// The labels file, for points in a `.npy` file (`--labels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        labels: Option<PathBuf>,
    },
    /// Data generated per run from these settings (with swept n, d, data_seed, mean_norm applied).
    Generated(GenSettings),
}

/// The base scenario of a validate sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioBase {
    /// The scenario as parsed (every default filled in).
    pub scenario: Scenario,
    /// Where it came from (for error messages).
    pub source: String,
    /// The directory its relative paths are resolved against (absolute).
    pub base_dir: Option<PathBuf>,
}

/// Settings of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    /// What to run (default: descent).
    pub kind: SweepKind,
    /// Base flow settings (used when `kind` is flow; default: `FlowSettings::default()`).
    pub flow: FlowSettings,
    /// Base descent settings (used when `kind` is descent; default: `DescentSettings::default()`).
    pub descent: DescentSettings,
    /// Data source (default: generated with `GenSettings::default()`).
    pub data: DataSource,
    /// Read `init_scale` as a multiple of 1/√d (default: false).
    pub init_relative: bool,
    /// The swept settings; the runs are their cartesian product (default: none, one run).
    pub axes: Vec<Axis>,
    /// The base scenario of a validate sweep (kind validate only; default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioBase>,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            kind: SweepKind::Descent,
            flow: FlowSettings::default(),
            descent: DescentSettings::default(),
            data: DataSource::Generated(GenSettings::default()),
            init_relative: false,
            axes: Vec::new(),
            scenario: None,
        }
    }
}

/// The settings of one run of a sweep.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Index in the cartesian product.
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// Flow settings (kind flow).
    pub flow: FlowSettings,
    /// Descent settings (kind descent).
    pub descent: DescentSettings,
    /// Generation settings (generated data only).
    pub gen: Option<GenSettings>,
}

/// How a run's error is written into its result (the binary names settings by their flags;
/// `|e| e.to_string()` names them by their fields).
pub type Describe = dyn Fn(&Error) -> String + Sync;

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Index in the cartesian product.
    pub index: usize,
    /// (variable, value) for every axis.
    pub values: Vec<(Variable, f64)>,
    /// The run's summary as the JSON object its file holds (a [`crate::flow::FlowSummary`],
    /// [`crate::descent::DescentSummary`] or [`PointSummary`]; a merge reads it back from
    /// `result.json`), or the error that stopped it.
    pub summary: std::result::Result<serde_json::Value, String>,
    /// The run's trajectory rows (JSON objects, as in trajectory.jsonl).
    pub trajectory: Vec<serde_json::Value>,
}

/// A run's line of runs.jsonl and its result.json: `index`, `values` {axis: value}, and
/// `summary` or `error`.
#[derive(Serialize)]
struct ResultLine<'a> {
    index: usize,
    values: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl RunResult {
    /// The run's line of runs.jsonl (keys sorted, newline-terminated).
    pub fn json_line(&self) -> String {
        let line = ResultLine {
            index: self.index,
            values: self.values.iter().map(|(k, v)| (k.name(), *v)).collect(),
            summary: self.summary.as_ref().ok(),
            error: self.summary.as_ref().err().map(String::as_str),
        };
        let mut out = serde_json::to_string(&to_json_value(&line)).expect("serializes");
        out.push('\n');
        out
    }
}

/// One value per claim of [`ClaimKind::SWEPT`], named by the claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims<T> {
    /// [`ClaimKind::Assumption`].
    pub assumption: T,
    /// [`ClaimKind::Interpolation`].
    pub interpolation: T,
    /// [`ClaimKind::Kkt`].
    pub kkt: T,
    /// [`ClaimKind::TheoryPattern`].
    pub theory_pattern: T,
    /// [`ClaimKind::Rank`].
    pub rank: T,
    /// [`ClaimKind::GlobalMaxMargin`].
    pub global_max_margin: T,
    /// [`ClaimKind::LinearBoundary`].
    pub linear_boundary: T,
}

impl<T> Claims<T> {
    /// The value of each claim from `f`.
    pub fn from_fn(mut f: impl FnMut(ClaimKind) -> T) -> Self {
        Claims {
            assumption: f(ClaimKind::Assumption),
            interpolation: f(ClaimKind::Interpolation),
            kkt: f(ClaimKind::Kkt),
            theory_pattern: f(ClaimKind::TheoryPattern),
            rank: f(ClaimKind::Rank),
            global_max_margin: f(ClaimKind::GlobalMaxMargin),
            linear_boundary: f(ClaimKind::LinearBoundary),
        }
    }

    /// The value of `claim`.
    pub fn get(&self, claim: ClaimKind) -> &T {
        match claim {
            ClaimKind::Assumption => &self.assumption,
            ClaimKind::Interpolation => &self.interpolation,
            ClaimKind::Kkt => &self.kkt,
            ClaimKind::TheoryPattern => &self.theory_pattern,
            ClaimKind::Rank => &self.rank,
            ClaimKind::GlobalMaxMargin => &self.global_max_margin,
            ClaimKind::LinearBoundary => &self.linear_boundary,
            other => unreachable!("{other:?} is not in ClaimKind::SWEPT, the claims with sweep columns"),
        }
    }
}

/// Whether a claim held: `Some(true)` for holds (or held although expected to fail),
/// `Some(false)` for fails, `None` when it does not apply; the assumption by the paper's condition.
pub fn holds(claim: &ClaimResult, condition_holds: bool) -> Option<bool> {
    match claim.verdict {
        Verdict::Holds | Verdict::UnexpectedlyHeld => Some(true),
        Verdict::Fails | Verdict::ExpectedFailure => Some(false),
        Verdict::NotApplicable => None,
        Verdict::Reported => Some(condition_holds),
    }
}

/// The summary of one validate grid point (its `result.json` summary).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    /// The main flow's status (`reached`, `max_steps`, …).
    pub status: String,
    /// min‖x_i‖²/(n p) (null when infinite).
    pub ratio: Option<f64>,
    /// The paper's ratio R_min²/(γ⁻³R²np) (null when infinite).
    pub paper_ratio: Option<f64>,
    /// Per claim: whether it held ([`holds`]; null where it does not apply).
    #[serde(flatten)]
    pub holds: Claims<Option<bool>>,
    /// Per claim: its verdict.
    pub verdicts: Claims<Verdict>,
    /// Whether the theory pattern's reference was certified.
    pub reference_certified: bool,
    /// The main flow's final s (null when it has none).
    pub final_s: Option<f64>,
    /// Wall-clock seconds of the grid point.
    pub wall_seconds: f64,
}

/// The columns of runs.csv after the index and the swept values, one struct per kind of sweep;
/// the header is the struct's field names ([`field_names`]).
pub trait Columns: Serialize + serde::de::DeserializeOwned {
    /// The row of a run that failed with `error`.
    fn failed(error: &str) -> Self;
    /// The row of a run whose summary (its JSON object) is `summary`.
    fn of_summary(summary: &serde_json::Value) -> std::result::Result<Self, serde_json::Error> {
        Self::deserialize(summary)
    }
}

/// runs.csv columns of a flow or descent sweep (from the run's summary; the flow's comparison
/// with the references and its verdict read from `reference`, `limit_reference` and `verdict`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunColumns {
    /// How the run ended (`error` for a run that failed).
    pub status: Option<String>,
    /// Final normalized time s (flow).
    pub s: Option<f64>,
    /// Final log10 t (flow).
    pub log10_time: Option<f64>,
    /// Final stable rank.
    pub stable_rank: Option<f64>,
    /// Stable rank at the initialization W(0).
    pub initial_stable_rank: Option<f64>,
    /// Final σ3/σ1.
    pub sigma3_over_sigma1: Option<f64>,
    /// Final min_i q_i/‖W‖_F.
    pub normalized_margin: Option<f64>,
    /// Final log10 L.
    pub log10_loss: Option<f64>,
    /// Final ‖W‖_F.
    pub frobenius_norm: Option<f64>,
    /// Final agreement with the theory pattern.
    pub pattern_agreement: Option<f64>,
    /// cos(dW/ds, W*) against the theory pattern's W* (flow).
    pub cosine_velocity: Option<f64>,
    /// 1 − cos(dW/ds, W*), theory pattern (flow).
    pub velocity_gap: Option<f64>,
    /// 1 − cos(W, W*), theory pattern (flow).
    pub position_gap: Option<f64>,
    /// max_i |w_i − λ_i/Σλ|, theory pattern (flow).
    pub multiplier_error: Option<f64>,
    /// 1 − cos(dW/ds, W*) against the limit pattern's certified W* (flow).
    pub limit_velocity_gap: Option<f64>,
    /// The flow direction's KKT stationarity residual (flow).
    pub kkt_stationarity: Option<f64>,
    /// The flow direction's KKT complementarity residual (flow).
    pub kkt_complementarity: Option<f64>,
    /// Whether the theory pattern's W* was reached ([`crate::flow::verdict`]; flow).
    pub theory_pattern_reached: Option<bool>,
    /// The verdict's line (flow).
    pub verdict: Option<String>,
    /// The error of a run that failed.
    pub error: Option<String>,
}

impl Columns for RunColumns {
    fn failed(error: &str) -> Self {
        RunColumns { status: Some("error".into()), error: Some(error.into()), ..Default::default() }
    }
    fn of_summary(summary: &serde_json::Value) -> std::result::Result<Self, serde_json::Error> {
        let mut flat = summary.clone();
        let get = |path: &[&str]| path.iter().try_fold(summary, |v, k| v.get(k)).cloned();
        let nested: [(&str, &[&str]); 7] = [
            ("cosine_velocity", &["reference", "cosine_velocity"]),
            ("velocity_gap", &["reference", "velocity_gap"]),
            ("position_gap", &["reference", "position_gap"]),
            ("multiplier_error", &["reference", "multiplier_error"]),
            ("limit_velocity_gap", &["limit_reference", "velocity_gap"]),
            ("theory_pattern_reached", &["verdict", "theory_pattern", "reached"]),
            ("verdict", &["verdict", "text"]),
        ];
        if let Some(map) = flat.as_object_mut() {
            for (column, path) in nested {
                map.insert(column.into(), get(path).unwrap_or(serde_json::Value::Null));
            }
        }
        Self::deserialize(&flat)
    }
}

/// runs.csv columns of a validate sweep: the flow's status, the two ratios, whether each claim
/// holds (empty where it does not apply), and the error of a run that failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PointColumns {
    /// [`PointSummary::status`] (`error` for a run that failed).
    pub status: Option<String>,
    /// [`PointSummary::ratio`].
    pub ratio: Option<f64>,
    /// [`PointSummary::paper_ratio`].
    pub paper_ratio: Option<f64>,
    /// Whether [`ClaimKind::Assumption`] holds.
    pub assumption: Option<bool>,
    /// Whether [`ClaimKind::Interpolation`] holds.
    pub interpolation: Option<bool>,
    /// Whether [`ClaimKind::Kkt`] holds.
    pub kkt: Option<bool>,
    /// Whether [`ClaimKind::Rank`] holds.
    pub rank: Option<bool>,
    /// Whether [`ClaimKind::GlobalMaxMargin`] holds.
    pub global_max_margin: Option<bool>,
    /// Whether [`ClaimKind::LinearBoundary`] holds.
    pub linear_boundary: Option<bool>,
    /// The error of a run that failed.
    pub error: Option<String>,
}

impl Columns for PointColumns {
    fn failed(error: &str) -> Self {
        PointColumns { status: Some("error".into()), error: Some(error.into()), ..Default::default() }
    }
}

/// The field names of a struct, in declaration order (as its `Deserialize` impl lists them).
pub fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

impl SweepSettings {
    /// The settings as `sweep.json` records them: what the runs used. The base settings of the
    /// kind not run are `null`; a swept setting holds its value (one value) or the list of values
    /// (several), in place of the base value no run used. `axes` is kept as is.
    pub fn recorded(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("settings serialize");
        let (used, unused) = match self.kind {
            SweepKind::Flow => ("flow", "descent"),
            SweepKind::Descent => ("descent", "flow"),
            // The scenario holds the base settings; the axes say what each run changed.
            SweepKind::Validate => {
                v["flow"] = serde_json::Value::Null;
                v["descent"] = serde_json::Value::Null;
                return v;
            }
        };
        v[unused] = serde_json::Value::Null;
        for a in &self.axes {
            let integer = matches!(
                a.variable,
                Variable::N | Variable::D | Variable::DataSeed | Variable::Width | Variable::Seed | Variable::Steps
            );
            let num = |x: f64| if integer { serde_json::json!(x as u64) } else { serde_json::json!(x) };
            let value = match a.values.as_slice() {
                [one] => num(*one),
                many => serde_json::Value::Array(many.iter().map(|&x| num(x)).collect()),
            };
            let path: &[&str] = match a.variable {
                Variable::Width => &[used, "model", "width"],
                Variable::Leak => &[used, "model", "leak"],
                Variable::Seed => &[used, "model", "seed"],
                Variable::InitScale => &[used, "model", "init", "scale"],
                Variable::StepSize => &["descent", "step_size"],
                Variable::Steps => &["descent", "steps"],
                Variable::Smoothness => &["descent", "activation", "smoothness"],
                Variable::UntilLog10Time => &["flow", "horizon", "log10_time"],
                Variable::Rtol => &["flow", "rtol"],
                Variable::N => &["data", "generated", "n"],
                Variable::D => &["data", "generated", "d"],
                Variable::DataSeed => &["data", "generated", "seed"],
                Variable::MeanNorm => &["data", "generated", "mean_norm"],
            };
            let (last, parents) = path.split_last().expect("non-empty path");
            let mut node = &mut v;
            for key in parents {
                node = &mut node[*key];
            }
            if let Some(obj) = node.as_object_mut() {
                if *last == "log10_time" {
                    obj.clear();
                }
                obj.insert(last.to_string(), value);
            }
        }
        v
    }

    /// Number of runs (the product of the axis lengths).
    pub fn run_count(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Check the axes (non-empty, integer where needed, no repeats, no data axes over a file).
    pub fn validate(&self) -> Result<()> {
        for (k, a) in self.axes.iter().enumerate() {
            let flag = a.variable.name();
            if a.values.is_empty() {
                return Err(Error::setting(flag, "empty list"));
            }
            if self.axes[..k].iter().any(|b| b.variable == a.variable) {
                return Err(Error::setting(flag, "given twice"));
            }
            if a.variable.is_integer()
                && a.values.iter().any(|v| !(v.fract() == 0.0 && *v >= 0.0 && *v < 2f64.powi(53)))
            {
                return Err(Error::setting(flag, "values must be non-negative integers"));
            }
            let data_axis = matches!(a.variable, Variable::N | Variable::D | Variable::DataSeed | Variable::MeanNorm);
            let loaded = match (&self.kind, &self.scenario) {
                (SweepKind::Validate, Some(b)) => b.scenario.generate.is_none(),
                _ => matches!(self.data, DataSource::Loaded { .. }),
            };
            if data_axis && loaded {
                return Err(Error::setting(flag, "sweeps generated data only (use --kind, not --data)"));
            }
            let for_kind = match a.variable {
                Variable::StepSize | Variable::Steps | Variable::Smoothness => self.kind == SweepKind::Descent,
                Variable::UntilLog10Time | Variable::Rtol => self.kind != SweepKind::Descent,
                _ => true,
            };
            if !for_kind {
                return Err(Error::setting(flag, format!("does not apply to a {:?} sweep", self.kind)));
            }
        }
        if (self.kind == SweepKind::Validate) != self.scenario.is_some() {
            return Err(Error::setting("sweep", "a validate sweep needs a scenario, and only it"));
        }
        if self.run_count() > 100_000 {
            return Err(Error::setting("sweep", format!("{} runs is more than 100000", self.run_count())));
        }
        Ok(())
    }

    /// The settings of run `index` (0 ≤ index < `run_count()`), for data of dimension `file_d`
    /// when the data are loaded.
    pub fn run_spec(&self, index: usize, file_d: Option<usize>) -> RunSpec {
        let mut rest = index;
        let mut picks = vec![0usize; self.axes.len()];
        for (k, a) in self.axes.iter().enumerate().rev() {
            picks[k] = rest % a.values.len();
            rest /= a.values.len();
        }
        let mut flow = self.flow.clone();
        let mut desc = self.descent.clone();
        let mut gen = match &self.data {
            DataSource::Generated(g) => Some(g.clone()),
            DataSource::Loaded { .. } => None,
        };
        let mut values = Vec::new();
        let mut init_scale = None;
        for (a, &p) in self.axes.iter().zip(&picks) {
            let v = a.values[p];
            values.push((a.variable, v));
            for model in [&mut flow.model, &mut desc.model] {
                match a.variable {
                    Variable::Width => model.width = v as usize,
                    Variable::Leak => model.leak = v,
                    Variable::Seed => model.seed = v as u64,
                    _ => {}
                }
            }
            match a.variable {
                Variable::InitScale => init_scale = Some(v),
                Variable::StepSize => desc.step_size = v,
                Variable::Steps => desc.steps = v as u64,
                Variable::Smoothness => {
                    if let descent::DescentActivation::Smooth { smoothness } = &mut desc.activation {
                        *smoothness = v;
                    } else {
                        desc.activation = descent::DescentActivation::Smooth { smoothness: v };
                    }
                }
                Variable::UntilLog10Time => flow.horizon = FlowHorizon::Log10Time(v),
                Variable::Rtol => flow.rtol = v,
                _ => {}
            }
            if let Some(g) = gen.as_mut() {
                match a.variable {
                    Variable::N => g.n = v as usize,
                    Variable::D => g.d = v as usize,
                    Variable::DataSeed => g.seed = v as u64,
                    Variable::MeanNorm => g.mean_norm = Some(v),
                    _ => {}
                }
            }
        }
        let d = gen.as_ref().map(|g| g.d).or(file_d).unwrap_or(1);
        let base_scale = |init: &Init| match init {
            Init::Scale(w) => Some(*w),
            Init::File(_) | Init::Weights(_) | Init::Named { .. } => None,
        };
        for model in [&mut flow.model, &mut desc.model] {
            if let Some(w) = init_scale.or_else(|| base_scale(&model.init)) {
                let w = if self.init_relative { w / (d as f64).sqrt() } else { w };
                if init_scale.is_some() || self.init_relative {
                    model.init = Init::Scale(w);
                }
            }
        }
        RunSpec { index, values, flow, descent: desc, gen }
    }
}
