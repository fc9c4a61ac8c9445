//! `marginflow check`: the near-orthogonality statistics of a data set, as a table or one JSON
//! object on stdout.

use marginflow::model::data::{self, Dataset, Geometry};
use marginflow::Error;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `marginflow check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Data file: .svm/.libsvm/.txt (LIBSVM), .csv, .json, .npz (arrays X and y), or .npy (the
    /// points X, with --labels).
    #[arg(long)]
    pub data: PathBuf,
    /// Labels (n values, -1/+1 or 0/1) in a .npy file, for --data X.npy.
    #[arg(long, value_name = "Y.npy")]
    pub labels: Option<PathBuf>,
    /// Leak gamma of the leaky ReLU, in [0, 1) (0: the plain ReLU).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub leak: f64,
    /// Constant C of the near-orthogonality condition R_min^2 >= C gamma^-3 R^2 n p.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub constant: f64,
    /// Print exactly one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The JSON document: the geometry, with the file and the data hash.
#[derive(Serialize)]
struct CheckReport<'a> {
    data: &'a str,
    hash: String,
    #[serde(flatten)]
    geometry: Geometry,
}

fn ratio_text(r: Option<f64>) -> String {
    match r {
        None => "inf".to_string(),
        Some(v) => format!("{v:.6e}"),
    }
}

/// Run `marginflow check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    marginflow::model::network::validate_leak(args.leak)?;
    if !(args.constant.is_finite() && args.constant > 0.0) {
        return Err(Error::setting("constant", format!("{} is not a finite number > 0", args.constant)).into());
    }
    let dataset = Dataset::load_with_labels(&args.data, args.labels.as_deref())?;
    let g = data::geometry(&dataset, args.leak, args.constant);
    let path = args.data.display().to_string();
    if args.json {
        let report = CheckReport { data: &path, hash: dataset.hash(), geometry: g };
        super::common::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<(String, String)> = vec![
        ("data".into(), path.clone()),
        ("sha256".into(), dataset.hash()),
        ("points n".into(), g.n.to_string()),
        ("dimension d".into(), g.d.to_string()),
        ("labels".into(), format!("{} +1, {} -1", g.positives, g.negatives)),
        ("min ||x_i||^2".into(), format!("{:.6e}", g.min_sq_norm)),
        ("max ||x_i||^2".into(), format!("{:.6e}", g.max_sq_norm)),
        ("p = max |<x_i,x_k>|".into(), format!("{:.6e}", g.max_abs_inner)),
        ("min ||x_i||^2 / (n p)".into(), ratio_text(g.ratio)),
        ("R_min^2 / (gamma^-3 R^2 n p)".into(), ratio_text(g.paper_ratio)),
        (format!("condition (>= C = {}, gamma = {})", g.constant, g.leak), g.condition.to_string()),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (k, v) in &rows {
        text.push_str(&format!("{k:<w$}  {v}\n"));
    }
    if g.positives == 0 || g.negatives == 0 {
        text.push_str("note: only one class present; flow and maxmargin need both\n");
    }
    text.push_str(
        "note: the constant in the condition is not verified; its failure does not mean the \
         theorem's conclusions fail\n",
    );
    super::common::print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
