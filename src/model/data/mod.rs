//! Data sets: loading and saving (LIBSVM/svmlight, CSV, JSON, chosen by extension), seeded
//! generation (Gaussian, two-cluster mixture, exactly orthogonal), and the near-orthogonality
//! statistics of Frei, Vardi, Bartlett, Srebro, Hu (ICLR 2023) that `marginflow check` reports.
//!
//! Every malformed input is a [`Error::BadData`] naming the file and, where one applies, the
//! 1-based line, so the binary can print one line and exit with status 2. Writers emit the
//! shortest representation that parses back to the same `f64` bit pattern, so
//! `load(save(data))` reproduces `data` exactly (and [`Dataset::hash`] with it).
//!
//! Imports go one way: this module (the data set, writing, hashing, geometry) ← [`read`]
//! (parsers), [`generate`](mod@generate) (synthetic data), which import nothing else of the
//! folder; from outside only `error` and `io`.

mod generate;
mod read;

pub use generate::{generate, DataKind, GenSettings, MAX_ENTRIES};
pub use read::{check_extension, MAX_DENSE_ENTRIES};

use crate::error::{Error, Result};
use crate::io::fsutil::write_atomic;
use read::{fmt_f64, format_of, parse_csv, parse_json, parse_libsvm};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// A labelled data set: n points in R^d (rows of X, row-major) with labels in {-1, +1}.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Number of points.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// The points, `n * d` entries, row-major (row i is point i).
    pub x: Vec<f64>,
    /// The labels, each exactly -1.0 or +1.0.
    pub y: Vec<f64>,
}

/// The on-disk formats, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `.svm`, `.libsvm`, `.txt`: `label idx:val ...`, 1-based increasing indices.
    Libsvm,
    /// `.csv`: comma-separated; the label first, or the column a header names `label`/`y`/`target`
    /// (a leading unnamed index column, as pandas writes it, is skipped).
    Csv,
    /// `.json`: `{"x": [[...], ...], "y": [...]}`.
    Json,
    /// `.npy`: the points only (n × d, float64 or float32, C or Fortran order); the labels come
    /// from a second `.npy` file (`--labels`).
    Npy,
    /// `.npz` (`np.savez`, `np.savez_compressed`): arrays `X` (n × d) and `y` (n).
    Npz,
}

fn bad(path: &Path, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error::BadData { path: path.to_path_buf(), line, reason: reason.into() }
}

impl Dataset {
    /// Load a data set, the format chosen by extension (`.svm`/`.libsvm`/`.txt`, `.csv`, `.json`).
    ///
    /// Labels may be -1/+1 or 0/1 (0 maps to -1); a file mixing 0 and -1 is rejected.
    pub fn load(path: &Path) -> Result<Dataset> {
        Dataset::load_with_labels(path, None)
    }

    /// [`Dataset::load`], with the labels in their own `.npy` file when `path` is a `.npy` of
    /// the points (as NumPy users keep `X.npy` and `y.npy`); `labels` is refused otherwise.
    pub fn load_with_labels(path: &Path, labels: Option<&Path>) -> Result<Dataset> {
        let format = format_of(path)?;
        let read = |p: &Path| std::fs::read(p).map_err(|e| bad(p, None, format!("cannot read: {e}")));
        match (format, labels) {
            (Format::Npy, Some(y_path)) => {
                if format_of(y_path)? != Format::Npy {
                    return Err(bad(y_path, None, "--labels needs a .npy file (a vector of n labels)"));
                }
                let x = crate::io::npy::parse_any_npy(path, &read(path)?)?;
                let y = crate::io::npy::parse_any_npy(y_path, &read(y_path)?)?;
                read::from_arrays(path, x, y_path, "--labels", y)
            }
            (_, Some(y_path)) => Err(bad(
                y_path,
                None,
                format!("--labels goes with points in a .npy file; {} holds its own labels", path.display()),
            )),
            (_, None) => Dataset::parse_bytes(path, &read(path)?),
        }
    }

    /// Parse the contents `bytes` of a data file as [`Dataset::load`] does, the format chosen by
    /// the extension of `path` (which is used only for that and for error messages; nothing is
    /// read from disk). The entry point of the fuzz targets in `fuzz/`.
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Dataset> {
        let format = format_of(path)?;
        match format {
            Format::Npz => return Dataset::from_npz(path, bytes),
            Format::Npy => {
                return Err(bad(
                    path,
                    None,
                    "a .npy file holds the points only: give the labels with --labels y.npy (or save both: np.savez('d.npz', X=X, y=y))",
                ))
            }
            _ => {}
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let upto = &bytes[..e.valid_up_to()];
            let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
            bad(path, Some(line), "not valid UTF-8 text")
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match format {
            Format::Libsvm => parse_libsvm(path, text),
            Format::Csv => parse_csv(path, text),
            Format::Json => parse_json(path, text),
            Format::Npy | Format::Npz => unreachable!("handled above"),
        }
    }

    /// The arrays `X` and `y` of an `.npz` archive.
    fn from_npz(path: &Path, bytes: &[u8]) -> Result<Dataset> {
        let mut members = crate::io::npz::read_members(path, bytes)?;
        let mut take = |names: &[&str]| {
            let k = members.iter().position(|(n, _)| names.contains(&n.as_str()))?;
            Some(members.remove(k))
        };
        let (x, y) = (take(&["X", "x"]), take(&["y", "Y"]));
        let (Some((xn, xb)), Some((yn, yb))) = (x, y) else {
            let names: Vec<String> = crate::io::npz::read_members(path, bytes)?.into_iter().map(|(n, _)| n).collect();
            return Err(bad(
                path,
                None,
                format!(
                    "holds the arrays [{}]; a data set needs X (n × d) and y (n): np.savez(f, X=X, y=y)",
                    names.join(", ")
                ),
            ));
        };
        let member = |n: &str| path.join(format!("{n}.npy"));
        let x = crate::io::npy::parse_any_npy(&member(&xn), &xb)?;
        let y = crate::io::npy::parse_any_npy(&member(&yn), &yb)?;
        read::from_arrays(path, x, path, &format!("array {yn}"), y)
    }

    /// Save atomically, the format chosen by extension, with full round-trip precision.
    pub fn save(&self, path: &Path) -> Result<()> {
        check_extension(path)?;
        let text = self.to_text(format_of(path)?);
        write_atomic(path, text.as_bytes())
    }

    fn label_text(v: f64) -> &'static str {
        if v > 0.0 {
            "1"
        } else {
            "-1"
        }
    }

    fn to_text(&self, format: Format) -> String {
        let mut s = String::new();
        match format {
            Format::Libsvm => {
                for i in 0..self.n {
                    s.push_str(Self::label_text(self.y[i]));
                    for (j, &v) in self.row(i).iter().enumerate() {
                        // Zeros are implicit, except -0.0 (kept bit-exact) and the last column
                        // (written so the dimension survives the round trip).
                        if v.to_bits() != 0 || j + 1 == self.d {
                            let _ = write!(s, " {}:{}", j + 1, fmt_f64(v));
                        }
                    }
                    s.push('\n');
                }
            }
            Format::Csv => {
                s.push_str("label");
                for j in 0..self.d {
                    let _ = write!(s, ",x{}", j + 1);
                }
                s.push('\n');
                for i in 0..self.n {
                    s.push_str(Self::label_text(self.y[i]));
                    for &v in self.row(i) {
                        s.push(',');
                        s.push_str(&fmt_f64(v));
                    }
                    s.push('\n');
                }
            }
            Format::Npy | Format::Npz => {
                unreachable!("NumPy data files are not written (check_extension refuses them)")
            }
            Format::Json => {
                s.push_str("{\"x\": [\n");
                for i in 0..self.n {
                    s.push_str("  [");
                    for (j, &v) in self.row(i).iter().enumerate() {
                        if j > 0 {
                            s.push_str(", ");
                        }
                        // serde_json writes the shortest round-trip form (ryu), "-0.0" included.
                        s.push_str(&serde_json::to_string(&v).unwrap_or_else(|_| "null".into()));
                    }
                    s.push_str(if i + 1 < self.n { "],\n" } else { "]\n" });
                }
                s.push_str("], \"y\": [");
                for i in 0..self.n {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(Self::label_text(self.y[i]));
                }
                s.push_str("]}\n");
            }
        }
        s
    }

    /// SHA-256 (lower-case hex) over n and d (u64 little-endian) and the bit patterns of x and y
    /// (little-endian): equal hashes mean bit-identical data, whatever the file format.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update((self.n as u64).to_le_bytes());
        h.update((self.d as u64).to_le_bytes());
        for v in self.x.iter().chain(self.y.iter()) {
            h.update(v.to_bits().to_le_bytes());
        }
        h.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Point `i` (row i of X).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// The Gram matrix K = X X^T, `n * n` row-major (symmetric).
    pub fn gram(&self) -> Vec<f64> {
        let n = self.n;
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let v = dot(self.row(i), self.row(j));
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
        }
        k
    }

    /// Number of +1 and of -1 labels.
    pub fn class_counts(&self) -> (usize, usize) {
        let pos = self.y.iter().filter(|&&v| v > 0.0).count();
        (pos, self.n - pos)
    }

    /// Reject data the margin problems cannot use: a single class, or a zero point (no network
    /// without bias reaches margin 1 on x = 0). `path` is named in the error.
    pub fn validate_for_training(&self, path: &Path) -> Result<()> {
        let (pos, neg) = self.class_counts();
        if neg == 0 || pos == 0 {
            let sign = if neg == 0 { "+1" } else { "-1" };
            return Err(bad(
                path,
                None,
                format!(
                    "all {} labels are {sign}: the margin problems and the theory's activation \
                     pattern need both classes",
                    self.n
                ),
            ));
        }
        if let Some(i) = (0..self.n).find(|&i| self.row(i).iter().all(|&v| v == 0.0)) {
            return Err(bad(
                path,
                None,
                format!("point {} is the zero vector: no network without bias has a positive margin on it", i + 1),
            ));
        }
        Ok(())
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| u * v).sum()
}

/// Whether the near-orthogonality condition holds for the chosen constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// paper_ratio >= constant (or infinite: exactly orthogonal data).
    Holds,
    /// paper_ratio < constant.
    Fails,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::Fails => "fails",
        })
    }
}

/// Near-orthogonality statistics of a data set (what `marginflow check` reports).
///
/// With R_min, R_max the smallest and largest ||x_i||, R = R_max/R_min and
/// p = max_{i != k} |<x_i, x_k>|, the gradient-flow theorem of Frei et al. (ICLR 2023) asks for
/// roughly R_min^2 >= C gamma^-3 R^2 n p. The exact constant could not be verified, so the measured
/// ratio is reported with the verdict for a configurable C; failing it does not mean the theorem's
/// conclusions fail. Ratios are `None` (JSON `null`) when p = 0, meaning infinite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Number of points.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Number of +1 labels.
    pub positives: usize,
    /// Number of -1 labels.
    pub negatives: usize,
    /// min_i ||x_i||^2 (R_min^2).
    pub min_sq_norm: f64,
    /// max_i ||x_i||^2 (R_max^2).
    pub max_sq_norm: f64,
    /// p = max_{i != k} |<x_i, x_k>| (0 for n = 1).
    pub max_abs_inner: f64,
    /// min_i ||x_i||^2 / (n p); `None` means infinite (p = 0).
    pub ratio: Option<f64>,
    /// R_min^2 / (gamma^-3 R^2 n p); `None` means infinite (p = 0).
    pub paper_ratio: Option<f64>,
    /// The leak gamma used in `paper_ratio`.
    pub leak: f64,
    /// The constant C the paper ratio is compared with.
    pub constant: f64,
    /// Whether paper_ratio >= C.
    pub condition: Verdict,
}

/// Compute the near-orthogonality statistics for leak `leak` (gamma) and constant `constant` (C).
pub fn geometry(data: &Dataset, leak: f64, constant: f64) -> Geometry {
    let n = data.n;
    let k = data.gram();
    let mut min_sq = f64::INFINITY;
    let mut max_sq: f64 = 0.0;
    let mut p: f64 = 0.0;
    for i in 0..n {
        let s = k[i * n + i];
        min_sq = min_sq.min(s);
        max_sq = max_sq.max(s);
        for j in (i + 1)..n {
            p = p.max(k[i * n + j].abs());
        }
    }
    if n == 0 {
        min_sq = 0.0;
    }
    let nf = n as f64;
    let (ratio, paper_ratio) = if min_sq == 0.0 {
        (Some(0.0), Some(0.0))
    } else if p == 0.0 {
        (None, None)
    } else {
        // R_min^2 / (gamma^-3 R^2 n p) with R^2 = R_max^2 / R_min^2.
        (Some(min_sq / (nf * p)), Some(leak.powi(3) * min_sq * min_sq / (max_sq * nf * p)))
    };
    let condition = match paper_ratio {
        None => Verdict::Holds,
        Some(r) if r >= constant => Verdict::Holds,
        Some(_) => Verdict::Fails,
    };
    let (positives, negatives) = data.class_counts();
    Geometry {
        n,
        d: data.d,
        positives,
        negatives,
        min_sq_norm: min_sq,
        max_sq_norm: max_sq,
        max_abs_inner: p,
        ratio,
        paper_ratio,
        leak,
        constant,
        condition,
    }
}

#[cfg(test)]
mod tests {
    use super::read::{json_element_line, json_element_lines, parse_csv, parse_csv_lines, CsvState, CSV_SPLIT_BYTES};
    use super::*;

    /// A CSV text above [`CSV_SPLIT_BYTES`]: a header, then `rows` rows of 200 features, with the
    /// line `edit_line` (1-based, counting the header) replaced by `edit` when given.
    fn big_csv(rows: usize, labels: impl Fn(usize) -> &'static str, edit: Option<(usize, &str)>) -> String {
        let mut lines = vec![(0..=200)
            .map(|c| if c == 0 { "label".into() } else { format!("x{c}") })
            .collect::<Vec<_>>()
            .join(",")];
        for r in 0..rows {
            let feats: Vec<String> = (0..200).map(|c| format!("{}", ((r * 200 + c) as f64 * 0.37).sin())).collect();
            lines.push(format!("{},{}", labels(r), feats.join(",")));
        }
        if let Some((line, text)) = edit {
            lines[line - 1] = text.to_string();
        }
        let text = lines.join("\n") + "\n";
        assert!(text.len() >= CSV_SPLIT_BYTES);
        text
    }

    /// The two-half parse gives the one-pass parse's data set, or its error message, whatever
    /// half the data or the problem sits in.
    #[test]
    fn json_element_lines_in_one_pass_match_the_single_lookups() {
        let text = "{\"note\": \"[y, \\\"]\",\n \"x\": [[1, 0],\n [0, 1], [2,\n 3]],\n \"y\": [1,\n\n -1, 1\n ]}";
        let all = json_element_lines(text, "y", None);
        assert_eq!(all, vec![5, 7, 7]);
        for (i, &line) in all.iter().enumerate() {
            assert_eq!(json_element_line(text, "y", i), Some(line));
        }
        assert_eq!(json_element_line(text, "y", 3), None);
        assert_eq!(json_element_lines(text, "x", None), vec![2, 3, 3]);
    }

    #[test]
    fn split_csv_parse_matches_one_pass() {
        let path = Path::new("big.csv");
        let one_pass = |t: &str| parse_csv_lines(path, t, CsvState::default()).and_then(|c| c.finish(path));
        let pm = |r: usize| if r.is_multiple_of(3) { "-1" } else { "1" };
        let rows = 160;
        let mut cases = vec![
            big_csv(rows, pm, None),
            big_csv(rows, |r| if r % 2 == 0 { "0" } else { "1" }, None),
            // bad feature, short row, bad label, in the first and in the second half
            big_csv(rows, pm, Some((10, "1,2,oops"))),
            big_csv(rows, pm, Some((150, "1,2,oops"))),
            big_csv(rows, pm, Some((150, &format!("1{}", ",0.5".repeat(200)).replace("0.5,0.5,0.5", "0.5,nan,0.5")))),
            big_csv(rows, pm, Some((150, &format!("2{}", ",0.5".repeat(200))))),
            // label 0 in the second half while the first uses -1, and the other way round
            big_csv(rows, pm, Some((150, &format!("0{}", ",0.5".repeat(200))))),
            big_csv(rows, |r| if r < 100 { "0" } else { "1" }, Some((5, &format!("-1{}", ",0.5".repeat(200))))),
            big_csv(rows, |r| if r < 100 { "1" } else { "0" }, Some((5, &format!("-1{}", ",0.5".repeat(200))))),
        ];
        // No header; comments and blank lines around the cut.
        let plain = big_csv(rows, pm, None);
        cases.push(plain.split_once('\n').unwrap().1.to_string());
        let mid = plain.len() / 2;
        cases.push(format!("{}\n# comment\n\n{}", &plain[..mid], &plain[mid..]));
        // pandas' default to_csv: an unnamed index column first, the label found by its name; the
        // second half reads its rows by the header's layout.
        let indexed = |t: String| -> String {
            t.lines().enumerate().map(|(i, l)| if i == 0 { format!(",{l}\n") } else { format!("{i},{l}\n") }).collect()
        };
        cases.push(indexed(big_csv(rows, pm, None)));
        cases.push(indexed(big_csv(rows, pm, Some((150, "1,2,oops")))));
        let pandas = parse_csv(path, cases.last().map(|_| &cases[cases.len() - 2]).unwrap()).unwrap();
        assert_eq!((pandas.n, pandas.d), (rows, 200));
        assert_eq!(pandas, one_pass(&cases[0]).unwrap());
        for (k, text) in cases.iter().enumerate() {
            let (split, whole) = (parse_csv(path, text), one_pass(text));
            match (&split, &whole) {
                (Ok(a), Ok(b)) => {
                    assert_eq!((a.n, a.d, &a.y), (b.n, b.d, &b.y), "case {k}");
                    assert!(a.x.iter().zip(&b.x).all(|(u, v)| u.to_bits() == v.to_bits()), "case {k}");
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "case {k}"),
                _ => panic!("case {k}: split {:?} vs one pass {:?}", split.map(|d| d.n), whole.map(|d| d.n)),
            }
        }
        assert!(one_pass(&cases[0]).is_ok() && one_pass(&cases[3]).is_err() && one_pass(&cases[6]).is_err());
    }

    #[test]
    fn fmt_round_trips() {
        for v in [0.1, -0.0, 1e-300, 5e-324, f64::MAX, 1.0 / 3.0, -2.5e17, 123456.789] {
            assert_eq!(fmt_f64(v).parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v}");
        }
    }

    #[test]
    fn json_line_scanner() {
        let t = "{\"meta\": [1, [2]],\n \"x\": [\n [1, 2],\n  [3,\n 4]],\n \"y\": [1,\n -1]}";
        assert_eq!(json_element_line(t, "x", 0), Some(3));
        assert_eq!(json_element_line(t, "x", 1), Some(4));
        assert_eq!(json_element_line(t, "x", 2), None);
        assert_eq!(json_element_line(t, "y", 1), Some(7));
    }

    #[test]
    fn orthogonal_is_exact_and_geometry_infinite() {
        let s = GenSettings { kind: DataKind::Orthogonal, n: 10, d: 30, ..Default::default() };
        let data = generate(&s).unwrap();
        let g = geometry(&data, 0.1, 3.0);
        assert_eq!(g.max_abs_inner, 0.0);
        assert_eq!(g.paper_ratio, None);
        assert_eq!(g.condition, Verdict::Holds);
        assert!(g.min_sq_norm >= 0.25 * 30.0 && g.max_sq_norm <= 4.0 * 30.0);
    }

    #[test]
    fn mixture_mean_and_noise() {
        let s = GenSettings { kind: DataKind::Mixture, n: 3, d: 50, label_noise: 0.4, ..Default::default() };
        for seed in 0..50 {
            let data = generate(&GenSettings { seed, ..s.clone() }).unwrap();
            let (p, m) = data.class_counts();
            assert!(p > 0 && m > 0);
        }
    }

    #[test]
    fn geometry_ratio_formula() {
        let data = Dataset { n: 2, d: 2, x: vec![2.0, 0.0, 1.0, 1.0], y: vec![1.0, -1.0] };
        let g = geometry(&data, 0.5, 3.0);
        // min 2, max 4, p 2: ratio 2/(2*2) = 0.5; paper 0.125*4/(4*2*2) = 1/32.
        assert_eq!(g.ratio, Some(0.5));
        assert_eq!(g.paper_ratio, Some(1.0 / 32.0));
        assert_eq!(g.condition, Verdict::Fails);
    }
}
