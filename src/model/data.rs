//! Data sets: loading and saving (LIBSVM/svmlight, CSV, JSON, chosen by extension), seeded
//! generation (Gaussian, two-cluster mixture, exactly orthogonal), and the near-orthogonality
//! statistics of Frei, Vardi, Bartlett, Srebro, Hu (ICLR 2023) that `marginflow check` reports.
//!
//! Every malformed input is a [`Error::BadData`] naming the file and, where one applies, the
//! 1-based line, so the binary can print one line and exit with status 2. Writers emit the
//! shortest representation that parses back to the same `f64` bit pattern, so
//! `load(save(data))` reproduces `data` exactly (and [`Dataset::hash`] with it).

use crate::error::{Error, Result};
use crate::io::fsutil::write_atomic;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
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
    /// `.csv`: label first, then the features; an optional header line.
    Csv,
    /// `.json`: `{"x": [[...], ...], "y": [...]}`.
    Json,
}

fn bad(path: &Path, line: Option<usize>, reason: impl Into<String>) -> Error {
    Error::BadData { path: path.to_path_buf(), line, reason: reason.into() }
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "svm" | "libsvm" | "txt" => Ok(Format::Libsvm),
        "csv" => Ok(Format::Csv),
        "json" => Ok(Format::Json),
        "" => Err(bad(path, None, "no file extension: use .svm/.libsvm/.txt (LIBSVM), .csv or .json")),
        other => {
            Err(bad(path, None, format!("unknown extension '.{other}': use .svm/.libsvm/.txt (LIBSVM), .csv or .json")))
        }
    }
}

/// Check that `path` has a data-file extension this module can write (or read).
pub fn check_extension(path: &Path) -> Result<()> {
    format_of(path).map(|_| ())
}

/// Shortest round-trip text of a finite f64 (plain notation for moderate magnitudes, exponent
/// notation otherwise); `str::parse::<f64>` gives back the same bit pattern, sign of zero included.
fn fmt_f64(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Tracks how labels were written: -1/+1 or 0/1. Mixing 0 and -1 is ambiguous and rejected.
#[derive(Default)]
struct LabelState {
    zero_line: Option<usize>,
    minus_line: Option<usize>,
}

impl LabelState {
    /// Parse one label token at `line`; 0 maps to -1.
    fn parse(&mut self, path: &Path, line: usize, tok: &str) -> Result<f64> {
        let v: f64 = tok.trim().parse().map_err(|_| bad(path, Some(line), format!("label '{tok}' is not a number")))?;
        self.accept(path, line, v, tok)
    }

    fn accept(&mut self, path: &Path, line: usize, v: f64, tok: &str) -> Result<f64> {
        if v == 1.0 {
            Ok(1.0)
        } else if v == -1.0 {
            if let Some(z) = self.zero_line {
                return Err(bad(
                    path,
                    Some(line),
                    format!("label -1 mixed with label 0 (line {z}): use -1/+1 or 0/1, not both"),
                ));
            }
            self.minus_line.get_or_insert(line);
            Ok(-1.0)
        } else if v == 0.0 {
            if let Some(m) = self.minus_line {
                return Err(bad(
                    path,
                    Some(line),
                    format!("label 0 mixed with label -1 (line {m}): use -1/+1 or 0/1, not both"),
                ));
            }
            self.zero_line.get_or_insert(line);
            Ok(-1.0)
        } else {
            Err(bad(path, Some(line), format!("label '{tok}' is not one of -1, 0, +1")))
        }
    }
}

/// Parse a feature value; non-numbers, NaN and infinities are errors.
fn parse_feature(path: &Path, line: usize, col: usize, tok: &str) -> Result<f64> {
    let v: f64 = trim_field(tok)
        .parse()
        .map_err(|_| bad(path, Some(line), format!("feature {col} '{}' is not a number", tok.trim())))?;
    if !v.is_finite() {
        return Err(bad(path, Some(line), format!("feature {col} is {v}: features must be finite")));
    }
    Ok(v)
}

/// The largest dense data set a LIBSVM file may expand to: n·d ≤ 2^30 entries (8 GiB of f64).
/// A sparse line as short as `1 99999999999:1` would otherwise ask for an impossible dense
/// matrix and abort the process instead of failing with a message (found by `fuzz/`).
pub const MAX_DENSE_ENTRIES: usize = 1 << 30;

fn parse_libsvm(path: &Path, text: &str) -> Result<Dataset> {
    let mut labels = LabelState::default();
    let mut y = Vec::new();
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut d = 0usize;
    let mut d_line = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut toks = content.split_whitespace();
        let label_tok = toks.next().unwrap_or("");
        y.push(labels.parse(path, line, label_tok)?);
        let mut row = Vec::new();
        let mut prev = 0usize;
        for tok in toks {
            let (idx_s, val_s) = tok
                .split_once(':')
                .ok_or_else(|| bad(path, Some(line), format!("'{tok}' is not of the form index:value")))?;
            let idx: usize = idx_s
                .parse()
                .map_err(|_| bad(path, Some(line), format!("feature index '{idx_s}' is not a positive integer")))?;
            if idx == 0 {
                return Err(bad(path, Some(line), "feature index 0: indices are 1-based"));
            }
            if idx <= prev {
                return Err(bad(
                    path,
                    Some(line),
                    format!("feature index {idx} is not greater than the previous index {prev}"),
                ));
            }
            prev = idx;
            row.push((idx, parse_feature(path, line, idx, val_s)?));
        }
        if prev > d {
            (d, d_line) = (prev, line);
        }
        rows.push(row);
        if rows.len().checked_mul(d).is_none_or(|e| e > MAX_DENSE_ENTRIES) {
            return Err(bad(
                path,
                Some(d_line),
                format!(
                    "feature index {d} with {} points exceeds the {MAX_DENSE_ENTRIES} entries of a dense data set",
                    rows.len()
                ),
            ));
        }
    }
    if rows.is_empty() {
        return Err(bad(path, None, "no data: the file is empty or holds only comments"));
    }
    if d == 0 {
        return Err(bad(path, None, "no features: every line holds only a label"));
    }
    let n = rows.len();
    let mut x = vec![0.0; n * d];
    for (r, row) in rows.iter().enumerate() {
        for &(idx, v) in row {
            x[r * d + idx - 1] = v;
        }
    }
    Ok(Dataset { n, d, x, y })
}

/// Files at least this long are parsed as two halves on two threads (see [`parse_csv`]).
const CSV_SPLIT_BYTES: usize = 256 * 1024;

/// Parse CSV text. Large files are cut at a line boundary near the middle and the halves parsed
/// concurrently; the result is accepted only when both halves parse cleanly and agree (same field
/// count, no 0 labels in one half with -1 labels in the other), and is then the concatenation of
/// exactly what the one-pass parse computes for those lines. Anything else (any error, a header
/// that is not on the first line, mixed labels) is decided by the one-pass parse, so error
/// messages and their line numbers do not depend on the split.
fn parse_csv(path: &Path, text: &str) -> Result<Dataset> {
    if text.len() < CSV_SPLIT_BYTES {
        return parse_csv_lines(path, text, CsvState::default()).and_then(|c| c.finish(path));
    }
    let mid = match text.as_bytes()[text.len() / 2..].iter().position(|&b| b == b'\n') {
        Some(k) => text.len() / 2 + k + 1,
        None => return parse_csv_lines(path, text, CsvState::default()).and_then(|c| c.finish(path)),
    };
    let (head, tail) = text.split_at(mid);
    let (first, second) = std::thread::scope(|scope| {
        // The second half continues after at least one line, so its first line is never a header.
        let second = scope.spawn(|| parse_csv_lines(path, tail, CsvState { first: false, ..Default::default() }).ok());
        let first = parse_csv_lines(path, head, CsvState::default());
        (first, second.join())
    });
    // An error in the first half is the one-pass parse's first error (same lines, same state).
    let mut first = first?;
    let merged = match (first.width, second) {
        (Some((w, _, _)), Ok(Some(second)))
            if !first.y.is_empty()
                && second.width.is_none_or(|(w2, _, _)| w2 == w)
                && !((first.labels.zero_line.is_some() && second.labels.minus_line.is_some())
                    || (first.labels.minus_line.is_some() && second.labels.zero_line.is_some())) =>
        {
            first.y.extend_from_slice(&second.y);
            first.x.reserve_exact(second.x.len());
            first.x.extend_from_slice(&second.x);
            Some(first)
        }
        _ => None,
    };
    match merged {
        Some(c) => c.finish(path),
        None => parse_csv_lines(path, text, CsvState::default()).and_then(|c| c.finish(path)),
    }
}

/// Parser state carried from line to line of a CSV file.
struct CsvState {
    labels: LabelState,
    y: Vec<f64>,
    x: Vec<f64>,
    /// (fields, line, from header) of the first row or header.
    width: Option<(usize, usize, bool)>,
    /// The next content line is the file's first (and may be a header).
    first: bool,
}

impl Default for CsvState {
    fn default() -> Self {
        CsvState { labels: LabelState::default(), y: Vec::new(), x: Vec::new(), width: None, first: true }
    }
}

impl CsvState {
    /// The data set of a whole file's parse.
    fn finish(self, path: &Path) -> Result<Dataset> {
        let CsvState { x, y, .. } = self;
        let n = y.len();
        if n == 0 {
            return Err(bad(path, None, "no data rows: the file is empty or holds only a header"));
        }
        let d = x.len() / n;
        if d == 0 {
            return Err(bad(path, None, "no feature columns: each row holds only a label"));
        }
        Ok(Dataset { n, d, x, y })
    }
}

/// Append the comma-separated fields of `line`, each trimmed, to `out`: one vectorized comma
/// scan over the line (`memchr_iter`) rather than a search per field, and no trimming work for
/// the usual field that starts and ends with a visible ASCII character.
fn csv_fields<'a>(line: &'a str, out: &mut Vec<&'a str>) {
    let mut start = 0;
    for k in memchr::memchr_iter(b',', line.as_bytes()) {
        out.push(trim_field(&line[start..k]));
        start = k + 1;
    }
    out.push(trim_field(&line[start..]));
}

/// `field.trim()`, skipped when the first and last bytes are visible ASCII.
#[inline]
fn trim_field(field: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|c| c.is_ascii_graphic());
    let bytes = field.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        field
    } else {
        field.trim()
    }
}

/// Parse the lines of `text` (line numbers counted from 1 at its start) continuing from `state`.
fn parse_csv_lines(path: &Path, text: &str, mut state: CsvState) -> Result<CsvState> {
    let mut fields: Vec<&str> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        fields.clear();
        csv_fields(content, &mut fields);
        if state.first {
            state.first = false;
            let label = fields[0].trim_matches('"');
            if label.parse::<f64>().is_err() {
                state.width = Some((fields.len(), line, true));
                continue;
            }
        }
        match state.width {
            None => {
                state.width = Some((fields.len(), line, false));
                // About as many rows again as the bytes per row allow.
                let rows = text.len() / (raw.len() + 1) + 1;
                state.x.reserve(rows.saturating_mul(fields.len() - 1).min(MAX_DENSE_ENTRIES));
                state.y.reserve(rows);
            }
            Some((w, wl, header)) if w != fields.len() => {
                let what = if header { "the header" } else { "line" };
                let lead = if header { format!("{what} (line {wl})") } else { format!("{what} {wl}") };
                return Err(bad(path, Some(line), format!("row has {} fields but {lead} has {w}", fields.len())));
            }
            _ => {}
        }
        state.y.push(state.labels.parse(path, line, fields[0])?);
        for (c, f) in fields[1..].iter().enumerate() {
            state.x.push(parse_feature(path, line, c + 1, f)?);
        }
    }
    Ok(state)
}

/// Line of the start of element `index` of the top-level array `key` in (valid) JSON `text`.
fn json_element_line(text: &str, key: &str, index: usize) -> Option<usize> {
    json_element_lines(text, key, Some(index)).pop()
}

/// Lines of the starts of the elements of the top-level array `key` in (valid) JSON `text`, in
/// one pass: all of them, or (with `only`) just that element's.
fn json_element_lines(text: &str, key: &str, only: Option<usize>) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let (mut in_str, mut esc) = (false, false);
    let mut cur = String::new();
    let mut last_str: Option<String> = None;
    let mut pending_key: Option<String> = None;
    let (mut in_target, mut expect_elem, mut count) = (false, false, 0usize);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            if esc {
                esc = false;
                cur.push(c);
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
                last_str = Some(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
            continue;
        }
        if in_target && depth == 2 && expect_elem && !c.is_whitespace() && c != ']' {
            match only {
                Some(index) if count == index => return vec![line],
                Some(_) => {}
                None => lines.push(line),
            }
            count += 1;
            expect_elem = false;
        }
        match c {
            '"' => {
                in_str = true;
                cur.clear();
            }
            ':' if depth == 1 => pending_key = last_str.take(),
            ',' if depth == 1 => pending_key = None,
            ',' if depth == 2 && in_target => expect_elem = true,
            '{' | '[' => {
                depth += 1;
                if depth == 2 && c == '[' && pending_key.as_deref() == Some(key) {
                    in_target = true;
                    expect_elem = true;
                }
            }
            '}' | ']' => {
                if depth == 2 && in_target {
                    return if only.is_some() { Vec::new() } else { lines };
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    if only.is_some() {
        Vec::new()
    } else {
        lines
    }
}

/// The JSON layout, parsed by serde (type errors carry a line).
#[derive(Deserialize)]
struct JsonData {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
}

fn parse_json(path: &Path, text: &str) -> Result<Dataset> {
    if text.trim().is_empty() {
        return Err(bad(path, None, "the file is empty"));
    }
    let parsed: JsonData = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(k) => msg[..k].to_string(),
            None => msg,
        };
        let line = if e.line() > 0 { Some(e.line()) } else { None };
        let col = if e.column() > 0 { format!(" (column {})", e.column()) } else { String::new() };
        bad(path, line, format!("{msg}{col}; expected {{\"x\": [[...], ...], \"y\": [...]}}"))
    })?;
    let n = parsed.x.len();
    if n == 0 {
        return Err(bad(path, json_element_line(text, "x", 0).or(Some(1)), "\"x\" holds no points"));
    }
    let d = parsed.x[0].len();
    if d == 0 {
        return Err(bad(path, json_element_line(text, "x", 0), "the first row of \"x\" is empty"));
    }
    let mut x = Vec::with_capacity(n * d);
    for (i, row) in parsed.x.iter().enumerate() {
        if row.len() != d {
            return Err(bad(
                path,
                json_element_line(text, "x", i),
                format!("row {} of \"x\" has {} entries but row 1 has {d}", i + 1, row.len()),
            ));
        }
        x.extend_from_slice(row);
    }
    if parsed.y.len() != n {
        // Point at the first extra label, or at the last one present.
        let at = if parsed.y.len() > n { n } else { parsed.y.len().saturating_sub(1) };
        let line = json_element_line(text, "y", at);
        return Err(bad(path, line, format!("\"y\" has {} labels but \"x\" has {n} rows", parsed.y.len())));
    }
    let mut labels = LabelState::default();
    let mut y = Vec::with_capacity(n);
    let y_lines = json_element_lines(text, "y", None);
    for (i, &v) in parsed.y.iter().enumerate() {
        let line = y_lines.get(i).copied().unwrap_or(1);
        y.push(labels.accept(path, line, v, &format!("{v}"))?);
    }
    Ok(Dataset { n, d, x, y })
}

impl Dataset {
    /// Load a data set, the format chosen by extension (`.svm`/`.libsvm`/`.txt`, `.csv`, `.json`).
    ///
    /// Labels may be -1/+1 or 0/1 (0 maps to -1); a file mixing 0 and -1 is rejected.
    pub fn load(path: &Path) -> Result<Dataset> {
        format_of(path)?;
        let bytes = std::fs::read(path).map_err(|e| bad(path, None, format!("cannot read: {e}")))?;
        Dataset::parse_bytes(path, &bytes)
    }

    /// Parse the contents `bytes` of a data file as [`Dataset::load`] does, the format chosen by
    /// the extension of `path` (which is used only for that and for error messages; nothing is
    /// read from disk). The entry point of the fuzz targets in `fuzz/`.
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Dataset> {
        let format = format_of(path)?;
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
        }
    }

    /// Save atomically, the format chosen by extension, with full round-trip precision.
    pub fn save(&self, path: &Path) -> Result<()> {
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

/// Which synthetic data set to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataKind {
    /// x_i ~ N(0, I_d), labels a random balanced arrangement independent of x.
    Gaussian,
    /// Two clusters: x_i = y_i mu + xi_i, xi_i ~ N(0, I_d), ||mu|| = mean norm, optional label noise.
    Mixture,
    /// n exactly orthogonal points: signed, scaled standard basis vectors on random coordinates.
    Orthogonal,
}

/// Most entries a generated data set may hold (2^28 f64 values, 2 GiB).
pub const MAX_ENTRIES: usize = 1 << 28;

/// Settings of [`generate`]. The random stream is `ChaCha8Rng::seed_from_u64(seed)`, so the same
/// settings give bit-identical data on every machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenSettings {
    /// The kind of data (default: gaussian).
    pub kind: DataKind,
    /// Number of points, at least 2 (default: 20).
    pub n: usize,
    /// Dimension, at least 1; orthogonal data need n <= d (default: 4000).
    pub d: usize,
    /// Seed of the ChaCha8 random stream (default: 0).
    pub seed: u64,
    /// Norm of the cluster mean mu of mixture data (default: None, meaning d^0.3). Frei et al.'s
    /// mixture analyses take ||mu|| = Theta(d^beta) with beta in (1/4, 1/2): large enough for the
    /// clusters to be separable, small enough (||mu||^2 << d/n) for near-orthogonality.
    pub mean_norm: Option<f64>,
    /// Fraction of mixture labels flipped after x is generated, in [0, 0.5); only for mixture
    /// data (default: 0).
    pub label_noise: f64,
}

impl Default for GenSettings {
    fn default() -> Self {
        GenSettings { kind: DataKind::Gaussian, n: 20, d: 4000, seed: 0, mean_norm: None, label_noise: 0.0 }
    }
}

impl GenSettings {
    /// The mean norm used for mixture data: `mean_norm`, or d^0.3 by default.
    pub fn effective_mean_norm(&self) -> f64 {
        self.mean_norm.unwrap_or_else(|| (self.d as f64).powf(0.3))
    }

    /// Check the settings; errors name the command-line flag.
    pub fn validate(&self) -> Result<()> {
        if self.n < 2 {
            return Err(Error::setting("n", format!("{} points: need at least 2 (one per class)", self.n)));
        }
        if self.d < 1 {
            return Err(Error::setting("d", "dimension 0: need at least 1"));
        }
        match self.n.checked_mul(self.d) {
            Some(e) if e <= MAX_ENTRIES => {}
            _ => {
                return Err(Error::setting(
                    "n",
                    format!("n*d = {}*{} exceeds {MAX_ENTRIES} entries (2 GiB of f64)", self.n, self.d),
                ))
            }
        }
        if !(0.0..0.5).contains(&self.label_noise) {
            return Err(Error::setting("label_noise", format!("{} is outside [0, 0.5)", self.label_noise)));
        }
        if self.label_noise > 0.0 && self.kind != DataKind::Mixture {
            return Err(Error::setting(
                "label_noise",
                "applies only to --kind mixture (gaussian and orthogonal labels are already independent of x)",
            ));
        }
        if let Some(r) = self.mean_norm {
            if !(r.is_finite() && r >= 0.0) {
                return Err(Error::setting("mean_norm", format!("{r} is not a finite number >= 0")));
            }
            if self.kind != DataKind::Mixture {
                return Err(Error::setting("mean_norm", "applies only to --kind mixture"));
            }
        }
        if self.kind == DataKind::Orthogonal && self.n > self.d {
            return Err(Error::setting(
                "n",
                format!("orthogonal data need n <= d, got n = {} > d = {}", self.n, self.d),
            ));
        }
        Ok(())
    }
}

/// A random balanced labelling: ceil(n/2) labels +1 and floor(n/2) labels -1, uniformly shuffled.
fn balanced_labels(n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut y: Vec<f64> = (0..n).map(|i| if i < n.div_ceil(2) { 1.0 } else { -1.0 }).collect();
    y.shuffle(rng);
    y
}

/// Generate a data set (settings validated first).
///
/// Draw order from `ChaCha8Rng::seed_from_u64(seed)`:
/// - gaussian: labels (balanced shuffle), then x row by row, entries N(0,1);
/// - mixture: a direction g ~ N(0, I_d) (mu = mean_norm g/||g||), labels (balanced shuffle),
///   noise xi row by row (x_i = y_i mu + xi_i), then, if `label_noise > 0`, round(label_noise n)
///   distinct indices whose labels are flipped (redrawn if a class would vanish);
/// - orthogonal: labels, a permutation of the d coordinates, then per point a norm
///   r_i ~ U[0.5, 2] sqrt(d) and a sign; x_i = ±r_i e_{perm(i)}, so all inner products between
///   distinct points are exactly 0.
///
/// Both classes are always present.
pub fn generate(settings: &GenSettings) -> Result<Dataset> {
    settings.validate()?;
    let (n, d) = (settings.n, settings.d);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut x = vec![0.0; n * d];
    let y = match settings.kind {
        DataKind::Gaussian => {
            let y = balanced_labels(n, &mut rng);
            for v in x.iter_mut() {
                *v = rng.sample(StandardNormal);
            }
            y
        }
        DataKind::Mixture => {
            let mut mu: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
            let norm = dot(&mu, &mu).sqrt();
            let scale = if norm > 0.0 { settings.effective_mean_norm() / norm } else { 0.0 };
            mu.iter_mut().for_each(|m| *m *= scale);
            let mut y = balanced_labels(n, &mut rng);
            for i in 0..n {
                for j in 0..d {
                    let xi: f64 = rng.sample(StandardNormal);
                    x[i * d + j] = y[i] * mu[j] + xi;
                }
            }
            let flips = (settings.label_noise * n as f64).round() as usize;
            if flips > 0 {
                let mut attempt = 0;
                loop {
                    let idx = rand::seq::index::sample(&mut rng, n, flips);
                    let mut noisy = y.clone();
                    for i in idx.iter() {
                        noisy[i] = -noisy[i];
                    }
                    let pos = noisy.iter().filter(|&&v| v > 0.0).count();
                    if pos > 0 && pos < n {
                        y = noisy;
                        break;
                    }
                    attempt += 1;
                    if attempt >= 10_000 {
                        return Err(Error::setting(
                            "label_noise",
                            "flipping this many labels keeps leaving a single class; lower it or raise --n",
                        ));
                    }
                }
            }
            y
        }
        DataKind::Orthogonal => {
            let y = balanced_labels(n, &mut rng);
            let mut coords: Vec<usize> = (0..d).collect();
            coords.shuffle(&mut rng);
            let sd = (d as f64).sqrt();
            for i in 0..n {
                let r = rng.random_range(0.5..=2.0) * sd;
                let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                x[i * d + coords[i]] = s * r;
            }
            y
        }
    };
    Ok(Dataset { n, d, x, y })
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
