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
pub(super) fn fmt_f64(v: f64) -> String {
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
pub(super) struct CsvState {
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
