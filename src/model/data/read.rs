//! Reading and parsing data files: LIBSVM/svmlight, CSV (split over two threads when large) and
//! JSON, every error naming the file and line.

use super::{bad, Dataset, Format};
use crate::error::Result;
use serde::Deserialize;
use std::path::Path;

pub(super) fn format_of(path: &Path) -> Result<Format> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "svm" | "libsvm" | "txt" => Ok(Format::Libsvm),
        "csv" => Ok(Format::Csv),
        "json" => Ok(Format::Json),
        "npy" => Ok(Format::Npy),
        "npz" => Ok(Format::Npz),
        "" => Err(bad(path, None, format!("no file extension: use {KINDS}"))),
        other => Err(bad(path, None, format!("unknown extension '.{other}': use {KINDS}"))),
    }
}

/// The data-file kinds, as error messages list them.
const KINDS: &str = ".svm/.libsvm/.txt (LIBSVM), .csv, .json, .npz (X and y) or .npy (X, with --labels y.npy)";

/// Check that `path` has a data-file extension this module can write: the text formats (NumPy
/// files are read, not written).
pub fn check_extension(path: &Path) -> Result<()> {
    match format_of(path)? {
        Format::Npy | Format::Npz => {
            Err(bad(path, None, "gen writes .svm/.libsvm/.txt, .csv or .json (NumPy files are read only)"))
        }
        _ => Ok(()),
    }
}

/// The labels of a NumPy array: -1/+1 or 0/1 (0 maps to -1), any numeric dtype; `what` names
/// the array in errors.
fn array_labels(path: &Path, what: &str, y: &[f64]) -> Result<Vec<f64>> {
    let zero = y.iter().position(|&v| v == 0.0);
    let minus = y.iter().position(|&v| v == -1.0);
    if let (Some(z), Some(m)) = (zero, minus) {
        return Err(bad(
            path,
            None,
            format!("{what} mixes label 0 (index {z}) and label -1 (index {m}): use -1/+1 or 0/1, not both"),
        ));
    }
    if let Some(k) = y.iter().position(|&v| v != 1.0 && v != -1.0 && v != 0.0) {
        let v = y[k];
        return Err(bad(
            path,
            None,
            format!("{what}[{k}] = {v} is not one of -1, 0, +1: map the two classes to -1/+1 (or 0/1) first, e.g. y = np.where(y == {v}, 1, -1)"),
        ));
    }
    Ok(y.iter().map(|&v| if v == 1.0 { 1.0 } else { -1.0 }).collect())
}

/// A data set from NumPy arrays: points `x` of shape (n, d) (from `x_path`) and labels `y` of
/// shape (n,), (n, 1) or (1, n) (from `y_path`, named `y_what` in errors).
pub(super) fn from_arrays(
    x_path: &Path,
    (x_shape, x): (Vec<usize>, Vec<f64>),
    y_path: &Path,
    y_what: &str,
    (y_shape, y): (Vec<usize>, Vec<f64>),
) -> Result<Dataset> {
    let shape = crate::io::npy::shape_text;
    let [n, d] = x_shape[..] else {
        return Err(bad(
            x_path,
            None,
            format!("the points have shape {} but need (n, d): one row per point", shape(&x_shape)),
        ));
    };
    if n == 0 || d == 0 {
        return Err(bad(x_path, None, format!("the points have shape {}: no data", shape(&x_shape))));
    }
    let flat = y_shape == [n] || y_shape == [n, 1] || y_shape == [1, n];
    if !flat {
        return Err(bad(
            y_path,
            None,
            format!("{y_what} has shape {} but the {n} points need ({n},)", shape(&y_shape)),
        ));
    }
    if let Some(k) = x.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            x_path,
            None,
            format!("point {}, feature {} is {}: features must be finite", k / d, k % d + 1, x[k]),
        ));
    }
    Ok(Dataset { n, d, x, y: array_labels(y_path, y_what, &y)? })
}

/// Shortest round-trip text of a finite f64 (plain notation for moderate magnitudes, exponent
/// notation otherwise); `str::parse::<f64>` gives back the same bit pattern, sign of zero included.
pub(super) fn fmt_f64(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// The longest echo of a value from the file in an error message, in characters.
pub(super) const ECHO_CHARS: usize = 40;

/// `tok` as echoed in an error: whole up to [`ECHO_CHARS`] characters, else its start, "…" and
/// the full length (a 10 KB field stays a one-line message).
pub(super) fn cut(tok: &str) -> String {
    let count = tok.chars().count();
    if count <= ECHO_CHARS {
        tok.to_string()
    } else {
        let head: String = tok.chars().take(ECHO_CHARS).collect();
        format!("{head}… ({count} characters)")
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
        let v: f64 =
            tok.trim().parse().map_err(|_| bad(path, Some(line), format!("label '{}' is not a number", cut(tok))))?;
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
            Err(bad(
                path,
                Some(line),
                format!(
                    "label '{}' is not one of -1, 0, +1: map the two classes to -1/+1 (or 0/1) first, e.g. y = np.where(y == {}, 1, -1)",
                    cut(tok),
                    cut(tok.trim())
                ),
            ))
        }
    }
}

/// Parse a feature value; non-numbers, NaN and infinities are errors.
fn parse_feature(path: &Path, line: usize, col: usize, tok: &str) -> Result<f64> {
    parse_named_feature(path, line, col, None, tok)
}

/// [`parse_feature`] for a column the header names (`feature 2 ('x2')` in errors).
fn parse_named_feature(path: &Path, line: usize, col: usize, name: Option<&str>, tok: &str) -> Result<f64> {
    let what = match name {
        Some(n) if !n.is_empty() => format!("feature {col} ('{}')", cut(n)),
        _ => format!("feature {col}"),
    };
    let v: f64 = trim_field(tok)
        .parse()
        .map_err(|_| bad(path, Some(line), format!("{what} '{}' is not a number", cut(tok.trim()))))?;
    if !v.is_finite() {
        return Err(bad(path, Some(line), format!("{what} is {v}: features must be finite")));
    }
    Ok(v)
}

/// The largest dense data set a LIBSVM file may expand to: n·d ≤ 2^30 entries (8 GiB of f64).
/// A sparse line as short as `1 99999999999:1` would otherwise ask for an impossible dense
/// matrix and abort the process instead of failing with a message (found by `fuzz/`).
pub const MAX_DENSE_ENTRIES: usize = 1 << 30;

pub(super) fn parse_libsvm(path: &Path, text: &str) -> Result<Dataset> {
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
                .ok_or_else(|| bad(path, Some(line), format!("'{}' is not of the form index:value", cut(tok))))?;
            let idx: usize = idx_s.parse().map_err(|_| {
                bad(path, Some(line), format!("feature index '{}' is not a positive integer", cut(idx_s)))
            })?;
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
pub(super) const CSV_SPLIT_BYTES: usize = 256 * 1024;

/// Parse CSV text. Large files are cut at a line boundary near the middle and the halves parsed
/// concurrently; the result is accepted only when both halves parse cleanly and agree (same field
/// count, no 0 labels in one half with -1 labels in the other), and is then the concatenation of
/// exactly what the one-pass parse computes for those lines. Anything else (any error, a header
/// that is not on the first line, mixed labels) is decided by the one-pass parse, so error
/// messages and their line numbers do not depend on the split.
pub(super) fn parse_csv(path: &Path, text: &str) -> Result<Dataset> {
    if text.len() < CSV_SPLIT_BYTES {
        return parse_csv_lines(path, text, CsvState::default()).and_then(|c| c.finish(path));
    }
    let mid = match text.as_bytes()[text.len() / 2..].iter().position(|&b| b == b'\n') {
        Some(k) => text.len() / 2 + k + 1,
        None => return parse_csv_lines(path, text, CsvState::default()).and_then(|c| c.finish(path)),
    };
    let (head, tail) = text.split_at(mid);
    let (first, second) = std::thread::scope(|scope| {
        // The second half continues after at least one line, so its first line is never a header;
        // it reads its rows by the first line's layout.
        let second = scope.spawn(|| {
            let layout = csv_layout(path, head)?;
            parse_csv_lines(path, tail, CsvState { first: false, layout, ..Default::default() }).ok()
        });
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

/// Names a header may give the label column (compared without case).
pub const LABEL_NAMES: [&str; 3] = ["label", "y", "target"];

/// Which field of a CSV row is the label, which (if any) is a skipped index column, and the
/// header's names of the fields.
#[derive(Clone, Debug, Default)]
pub(super) struct CsvLayout {
    /// The label's field (0 without a header naming one: label first).
    label: usize,
    /// A leading index column (pandas' `to_csv` default), recognized by its header name and skipped.
    index: Option<usize>,
    /// The header's field names (empty without a header).
    names: Vec<String>,
}

/// Whether a header name is pandas' unnamed index: empty (as `to_csv` writes it), `Unnamed: 0`
/// (as `read_csv` names it) or `index` (as `reset_index` does).
fn is_index_name(name: &str) -> bool {
    name.is_empty() || name.eq_ignore_ascii_case("index") || name.starts_with("Unnamed: 0")
}

impl CsvLayout {
    /// The layout a header line's `fields` (at `line`) give.
    fn from_header(path: &Path, line: usize, fields: &[&str]) -> Result<CsvLayout> {
        let names: Vec<String> = fields.iter().map(|f| f.trim().trim_matches('"').trim().to_string()).collect();
        let labelled: Vec<usize> =
            (0..names.len()).filter(|&k| LABEL_NAMES.iter().any(|l| names[k].eq_ignore_ascii_case(l))).collect();
        if labelled.len() > 1 {
            let both: Vec<String> =
                labelled.iter().map(|&k| format!("'{}' (column {})", cut(&names[k]), k + 1)).collect();
            return Err(bad(
                path,
                Some(line),
                format!("the header names more than one label column: {}; keep one", both.join(", ")),
            ));
        }
        let index = (names.len() > 1 && is_index_name(&names[0])).then_some(0);
        let label = match (labelled.first(), index) {
            (Some(&k), _) => k,
            (None, Some(_)) => {
                let shown = if names[0].is_empty() {
                    "has no name".to_string()
                } else {
                    format!("is named '{}'", cut(&names[0]))
                };
                return Err(bad(
                    path,
                    Some(line),
                    format!(
                        "the first column {shown}, as pandas writes its index (to_csv without index=False), and no column is named label, y or target: write with index=False, or name the label column"
                    ),
                ));
            }
            (None, None) => 0,
        };
        Ok(CsvLayout { label, index, names })
    }

    /// The header's name of field `k`, if any.
    fn name(&self, k: usize) -> Option<&str> {
        self.names.get(k).map(String::as_str)
    }
}

/// A separator other than `,` that `line` (a file's first content line) appears to use.
fn other_separator(line: &str) -> Option<(&'static str, char)> {
    let commas = line.matches(',').count();
    [("';'", ';'), ("a tab", '\t'), ("'|'", '|')].into_iter().find(|&(_, c)| line.matches(c).count() > commas)
}

/// The layout of a CSV text's header, or the default when the first content line is data.
pub(super) fn csv_layout(path: &Path, text: &str) -> Option<CsvLayout> {
    let (i, first) = text.lines().enumerate().find(|(_, l)| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    })?;
    let mut fields = Vec::new();
    csv_fields(first.trim(), &mut fields);
    if fields[0].trim_matches('"').parse::<f64>().is_ok() {
        return Some(CsvLayout::default());
    }
    CsvLayout::from_header(path, i + 1, &fields).ok()
}

/// Parser state carried from line to line of a CSV file.
pub(super) struct CsvState {
    /// Where the label is and what to skip (from the header).
    layout: CsvLayout,
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
        CsvState {
            layout: CsvLayout::default(),
            labels: LabelState::default(),
            y: Vec::new(),
            x: Vec::new(),
            width: None,
            first: true,
        }
    }
}

impl CsvState {
    /// The data set of a whole file's parse.
    pub(super) fn finish(self, path: &Path) -> Result<Dataset> {
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
pub(super) fn parse_csv_lines(path: &Path, text: &str, mut state: CsvState) -> Result<CsvState> {
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
            if let Some((name, sep)) = other_separator(content) {
                let n = content.split(sep).count();
                return Err(bad(
                    path,
                    Some(line),
                    format!(
                        "fields are separated by {name} ({n} fields), not ',': marginflow reads comma-separated CSV (pandas: to_csv(sep=','); or convert the separators)"
                    ),
                ));
            }
            let label = fields[0].trim_matches('"');
            if label.parse::<f64>().is_err() {
                state.layout = CsvLayout::from_header(path, line, &fields)?;
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
        let layout = &state.layout;
        if layout.label == 0 && layout.index.is_none() {
            state.y.push(state.labels.parse(path, line, fields[0])?);
            for (c, f) in fields[1..].iter().enumerate() {
                state.x.push(parse_named_feature(path, line, c + 1, layout.name(c + 1), f)?);
            }
        } else {
            state.y.push(state.labels.parse(path, line, fields[layout.label])?);
            let mut col = 0;
            for (k, f) in fields.iter().enumerate() {
                if k != layout.label && Some(k) != layout.index {
                    col += 1;
                    state.x.push(parse_named_feature(path, line, col, layout.name(k), f)?);
                }
            }
        }
    }
    Ok(state)
}

/// Line of the start of element `index` of the top-level array `key` in (valid) JSON `text`.
pub(super) fn json_element_line(text: &str, key: &str, index: usize) -> Option<usize> {
    json_element_lines(text, key, Some(index)).pop()
}

/// Lines of the starts of the elements of the top-level array `key` in (valid) JSON `text`, in
/// one pass: all of them, or (with `only`) just that element's.
pub(super) fn json_element_lines(text: &str, key: &str, only: Option<usize>) -> Vec<usize> {
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

pub(super) fn parse_json(path: &Path, text: &str) -> Result<Dataset> {
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
