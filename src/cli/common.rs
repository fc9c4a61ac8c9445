//! Flags shared by several subcommands, and their one conversion into library settings.

use anyhow::Context;
use marginflow::model::data::Dataset;
use marginflow::model::loss::Loss;
use marginflow::model::network::{Init, ModelSettings, OuterLayer};
use marginflow_solvers::SolverError;
use std::path::{Path, PathBuf};

/// Data and model flags (`--data --width --leak --outer --init-scale|--init-file --seed --loss`).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Data file: .svm/.libsvm/.txt (LIBSVM), .csv, .json, .npz (arrays X and y), or .npy (the
    /// points X, n×d float64/float32, with --labels).
    #[arg(long, required = true)]
    pub data: Option<PathBuf>,
    /// Labels (n values, -1/+1 or 0/1) in a .npy file, for --data X.npy.
    #[arg(long, value_name = "Y.npy")]
    pub labels: Option<PathBuf>,
    /// Width m of the hidden layer.
    #[arg(long, required = true)]
    pub width: Option<usize>,
    /// Leak γ of the leaky ReLU, in [0, 1) (0: the plain ReLU).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub leak: f64,
    /// Second layer: balanced (a_j = +1/√m for j < ⌈m/2⌉, −1/√m after; exactly balanced
    /// needs even m), random (uniform signs / √m from the seed), or a .npy vector of length m.
    #[arg(long, default_value = "balanced")]
    pub outer: OuterLayer,
    /// Initialization scale ω: W(0) entries i.i.d. N(0, ω²) [default: 1e-3].
    #[arg(long, conflicts_with = "init_file", allow_negative_numbers = true)]
    pub init_scale: Option<f64>,
    /// Initialization from an m×d float64 .npy file.
    #[arg(long)]
    pub init_file: Option<PathBuf>,
    /// Seed of the initialization and of a random outer layer.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Loss: logistic or exponential.
    #[arg(long, default_value = "logistic", value_parser = parse_loss)]
    pub loss: Loss,
}

fn parse_loss(s: &str) -> Result<Loss, String> {
    match s {
        "logistic" => Ok(Loss::Logistic),
        "exponential" => Ok(Loss::Exponential),
        other => Err(format!("expected logistic or exponential, got {other:?}")),
    }
}

impl ModelArgs {
    /// `--data` (clap requires it wherever it is read; flow: unless --resume).
    pub fn data(&self) -> &Path {
        self.data.as_deref().unwrap_or(Path::new(""))
    }

    /// Load `--data` (with `--labels`) for training.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        load_training_data(self.data(), self.labels.as_deref())
    }

    /// The library settings these flags mean.
    pub fn settings(&self) -> ModelSettings {
        ModelSettings {
            // clap requires --width wherever settings are built from flags (flow: unless
            // --resume, whose settings come from the checkpoint); 0 would fail validate().
            width: self.width.unwrap_or(0),
            leak: self.leak,
            outer: self.outer.clone(),
            init: match (&self.init_file, self.init_scale) {
                (Some(f), _) => Init::File(f.clone()),
                (None, Some(w)) => Init::Scale(w),
                (None, None) => Init::Scale(1e-3),
            },
            seed: self.seed,
            loss: self.loss,
        }
    }
}

/// Load a data set for training (both classes required), the labels from `labels` for .npy points.
pub fn load_training_data(path: &Path, labels: Option<&Path>) -> anyhow::Result<Dataset> {
    let data = Dataset::load_with_labels(path, labels)?;
    data.validate_for_training(path)?;
    Ok(data)
}

/// Read and check the model's input files (`--outer FILE.npy`, `--init-file W0.npy`) against
/// the data dimension `d`, so a bad file fails before any output directory is created.
pub fn check_model_files(model: &ModelSettings, d: usize) -> anyhow::Result<()> {
    if matches!(model.outer, OuterLayer::File(_)) {
        model.outer_weights()?;
    }
    if matches!(model.init, Init::File(_)) {
        model.for_each_initial_weight(d, |_| ())?;
    }
    Ok(())
}

/// Create an output directory, naming the flag on failure.
pub fn create_out_dir(dir: &Path) -> anyhow::Result<()> {
    marginflow::io::fsutil::create_dir(dir).with_context(|| format!("--out {}: cannot create directory", dir.display()))
}

/// Print a JSON value to stdout as the only thing there. A closed pipe (`… --json | head`) is
/// an `io::ErrorKind::BrokenPipe` error that `main` turns into a quiet exit.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    // Through a Value: its objects keep keys sorted, the order of the files.
    let text = serde_json::to_string_pretty(&serde_json::to_value(v)?)?;
    print_stdout(&format!("{text}\n"))
}

/// Write text to stdout and flush, returning the I/O error (never panicking on a closed pipe).
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).context("writing to stdout")?;
    Ok(())
}

/// The flag of each library setting (errors name settings by field name; the binary shows flags).
/// Settings without a flag (`tolerance_factor`, `sweep`, `plot`) keep their name.
pub const FLAG_OF_SETTING: &[(&str, &str)] = &[
    ("width", "--width"),
    ("leak", "--leak"),
    ("outer", "--outer"),
    ("init_scale", "--init-scale"),
    ("seed", "--seed"),
    ("rtol", "--rtol"),
    ("atol", "--atol"),
    ("precision", "--precision"),
    ("until_time", "--until-time"),
    ("until_log10_time", "--until-log10-time"),
    ("until_s", "--until-s"),
    ("step_size", "--step-size"),
    ("steps", "--steps"),
    ("rows_per_decade", "--rows-per-decade"),
    ("singular_values", "--singular-values"),
    ("smoothness", "--smoothness"),
    ("n", "--n"),
    ("d", "--d"),
    ("data_seed", "--data-seed"),
    ("label_noise", "--label-noise"),
    ("mean_norm", "--mean-norm"),
    ("data", "--data"),
    ("pattern", "--pattern-from"),
    ("constant", "--constant"),
];

/// The flag that sets `setting` (the setting's own name when it has no flag).
pub fn flag_of(setting: &str) -> &str {
    FLAG_OF_SETTING.iter().find(|(s, _)| *s == setting).map_or(setting, |(_, f)| f)
}

/// One error of a chain as the user sees it: a library setting error names the flag.
/// A memory refusal names the remedy.
pub fn describe(cause: &(dyn std::error::Error + 'static)) -> String {
    let solver = match cause.downcast_ref::<marginflow::Error>() {
        Some(marginflow::Error::BadSetting { setting, reason }) => return format!("{}: {reason}", flag_of(setting)),
        Some(marginflow::Error::Solver(e)) => Some(e),
        _ => cause.downcast_ref::<SolverError>(),
    };
    match solver {
        Some(e @ SolverError::MemoryLimit { .. }) => {
            format!("{e}: raise it with --memory-limit (e.g. --memory-limit 64G) on a machine that has the memory, or use fewer points or a smaller width")
        }
        _ => cause.to_string(),
    }
}

/// Whether a stop request (SIGINT/SIGTERM) ended the command.
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<marginflow::Error>(), Some(marginflow::Error::Solver(SolverError::Interrupted)))
            || matches!(c.downcast_ref::<SolverError>(), Some(SolverError::Interrupted))
    })
}
