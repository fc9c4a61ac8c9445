//! NumPy `.npy` input and output for float64 arrays in C order, so users load weights and
//! initializations with `numpy.load` directly. The format (NEP 1): the magic `\x93NUMPY`, a
//! version byte pair, a little-endian header length (u16 for v1, u32 for v2/v3), an ASCII (v3:
//! UTF-8) Python dict literal `{'descr': '<f8', 'fortran_order': False, 'shape': (m, d), }` padded
//! with spaces and a newline, then the raw data. Written by hand: no extra crate needed.

use crate::error::{Error, Result};
use crate::io::fsutil::write_atomic;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadNpy { path: path.to_path_buf(), reason: reason.into() }
}

/// A shape as Python prints it: `(3,)`, `(3, 4)`, `()`.
pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [a] => format!("({a},)"),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// The value of `key` in the header dict, as raw text up to the next top-level comma or brace.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = header;
    loop {
        let k = rest.find(key)?;
        let before = rest[..k].chars().last();
        let after_key = &rest[k + key.len()..];
        let closing = after_key.chars().next();
        if matches!(before, Some('\'') | Some('"')) && closing == before {
            let tail = after_key[1..].trim_start();
            let tail = tail.strip_prefix(':')?.trim_start();
            let end = if tail.starts_with('(') {
                tail.find(')').map(|e| e + 1)?
            } else {
                tail.find([',', '}']).unwrap_or(tail.len())
            };
            return Some(tail[..end].trim());
        }
        rest = after_key;
    }
}

/// The element types a data array may have (`descr` of the header), read as f64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtype {
    /// IEEE float of 4 or 8 bytes.
    Float(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// NumPy bool (one byte, 0 or 1).
    Bool,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::Float(b) | Dtype::Int(b) | Dtype::Uint(b) => b,
            Dtype::Bool => 1,
        }
    }
}

/// The parsed header of any `.npy` array: (dtype, big-endian, fortran order, shape).
type AnyHeader = (Dtype, bool, bool, Vec<usize>);

/// Parse a header with any numeric dtype and either order (for data arrays).
fn parse_any_header(path: &Path, header: &str) -> Result<AnyHeader> {
    let descr =
        dict_value(header, "descr").ok_or_else(|| bad(path, format!("header has no 'descr': {}", header.trim())))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let unsupported = || {
        bad(
            path,
            format!("dtype '{descr}' is not supported: use float64 or float32 (integers and bools for labels); convert with a.astype('<f8')"),
        )
    };
    let (order, kind) = descr.split_at(descr.len().min(1));
    let big = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(unsupported()),
    };
    let bytes: usize = kind.get(1..).and_then(|b| b.parse().ok()).ok_or_else(unsupported)?;
    let dtype = match (kind.chars().next(), bytes) {
        (Some('f'), 4 | 8) => Dtype::Float(bytes),
        (Some('i'), 1 | 2 | 4 | 8) => Dtype::Int(bytes),
        (Some('u'), 1 | 2 | 4 | 8) => Dtype::Uint(bytes),
        (Some('b'), 1) => Dtype::Bool,
        _ => return Err(unsupported()),
    };
    let fortran = match dict_value(header, "fortran_order") {
        Some("False") => false,
        Some("True") => true,
        other => return Err(bad(path, format!("header has no valid 'fortran_order' ({other:?})"))),
    };
    Ok((dtype, big, fortran, parse_shape(path, header)?))
}

/// A data array read from `.npy` bytes: float64/float32 (or integer, bool), either byte order,
/// C or Fortran order. Returns the shape and the values in C (row-major) order as f64.
pub fn parse_any_npy(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let (start, end) = data_offset(path, bytes)?;
    if end > bytes.len() {
        return Err(bad(path, format!("truncated header: {} bytes announced", end - start)));
    }
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad(path, "header is not valid text"))?;
    let (dtype, big, fortran, shape) = parse_any_header(path, header)?;
    let size = dtype.size();
    let body = &bytes[end..];
    let count = shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .filter(|c| c.checked_mul(size).is_some())
        .ok_or_else(|| bad(path, format!("shape {} is too large", shape_text(&shape))))?;
    if body.len() != count * size {
        let what = if body.len() < count * size { "truncated" } else { "wrong length" };
        return Err(bad(
            path,
            format!(
                "{what}: shape {} of {size}-byte values needs {} data bytes, the file holds {}",
                shape_text(&shape),
                count * size,
                body.len()
            ),
        ));
    }
    let value = |c: &[u8]| -> f64 {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        if big {
            b[..size].reverse();
        }
        match dtype {
            Dtype::Float(8) => f64::from_le_bytes(b),
            Dtype::Float(_) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            Dtype::Int(n) => {
                let shift = 64 - 8 * n as u32;
                ((i64::from_le_bytes(b) << shift) >> shift) as f64
            }
            Dtype::Uint(_) => u64::from_le_bytes(b) as f64,
            Dtype::Bool => f64::from(b[0] != 0),
        }
    };
    let flat: Vec<f64> = body.chunks_exact(size).map(value).collect();
    if !fortran || shape.len() < 2 {
        return Ok((shape, flat));
    }
    // Fortran order: the first index varies fastest. Reorder to C order.
    let mut c_order = vec![0.0; count];
    let mut index = vec![0usize; shape.len()];
    for &v in &flat {
        let mut at = 0;
        for (k, &i) in index.iter().enumerate() {
            at = at * shape[k] + i;
        }
        c_order[at] = v;
        for (k, i) in index.iter_mut().enumerate() {
            *i += 1;
            if *i < shape[k] {
                break;
            }
            *i = 0;
        }
    }
    Ok((shape, c_order))
}

fn parse_header(path: &Path, header: &str) -> Result<Vec<usize>> {
    let descr =
        dict_value(header, "descr").ok_or_else(|| bad(path, format!("header has no 'descr': {}", header.trim())))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if descr != "<f8" {
        return Err(bad(
            path,
            format!(
                "dtype '{descr}' is not supported: only little-endian float64 ('<f8'); convert with a.astype('<f8')"
            ),
        ));
    }
    match dict_value(header, "fortran_order") {
        Some("False") => {}
        Some("True") => {
            return Err(bad(path, "Fortran (column-major) order is not supported: save np.ascontiguousarray(a)"))
        }
        other => {
            return Err(bad(path, format!("header has no valid 'fortran_order' ({other:?})")));
        }
    }
    parse_shape(path, header)
}

/// The 'shape' tuple of a header.
fn parse_shape(path: &Path, header: &str) -> Result<Vec<usize>> {
    let shape =
        dict_value(header, "shape").ok_or_else(|| bad(path, format!("header has no 'shape': {}", header.trim())))?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad(path, format!("shape '{shape}' is not a tuple")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(path, format!("shape '{shape}' holds a non-integer '{s}'")))
        })
        .collect()
}

/// Read a float64 C-order `.npy` file (format versions 1, 2 and 3): its shape and its data.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(path, &bytes)
}

/// Parse the contents `bytes` of a `.npy` file as [`read_npy`] does (`path` is used only in
/// error messages; nothing is read from disk). The entry point of the fuzz target in `fuzz/`.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let (shape, end) = parse_prefix(path, bytes)?;
    check_body_length(path, &shape, bytes.len() - end)?;
    Ok((shape, bytes[end..].chunks_exact(8).map(le_f64).collect()))
}

/// The little-endian f64 in an 8-byte chunk.
fn le_f64(chunk: &[u8]) -> f64 {
    f64::from_le_bytes(chunk.try_into().expect("chunk of 8"))
}

/// Offsets of the header and of the data: magic (6 bytes), version (2), header length (u16 for
/// v1, u32 for v2/v3), then the header of that length, from the first 12 bytes of the file (or
/// all of a shorter one).
fn data_offset(path: &Path, bytes: &[u8]) -> Result<(usize, usize)> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(path, "not a NumPy .npy file (no \\x93NUMPY magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad(path, "truncated header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Err(bad(path, format!("unsupported .npy format version {major}.{minor}"))),
    };
    let end = start.checked_add(hlen).ok_or_else(|| bad(path, format!("truncated header: {hlen} bytes announced")))?;
    Ok((start, end))
}

/// The shape and the data offset of a file whose first bytes (at least through the header,
/// when the file has them) are `bytes`.
fn parse_prefix(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize)> {
    let (start, end) = data_offset(path, bytes)?;
    if end > bytes.len() {
        return Err(bad(path, format!("truncated header: {} bytes announced", end - start)));
    }
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad(path, "header is not valid text"))?;
    Ok((parse_header(path, header)?, end))
}

/// The number of values of `shape`, checking that the data holds exactly that many (8 bytes each).
fn check_body_length(path: &Path, shape: &[usize], body_len: usize) -> Result<usize> {
    let count = shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .filter(|c| c.checked_mul(8).is_some())
        .ok_or_else(|| bad(path, format!("shape {} is too large", shape_text(shape))))?;
    if body_len < count * 8 {
        return Err(bad(
            path,
            format!(
                "truncated: shape {} needs {} data bytes, the file holds {}",
                shape_text(shape),
                count * 8,
                body_len
            ),
        ));
    }
    if body_len > count * 8 {
        return Err(bad(
            path,
            format!(
                "{} unexpected bytes after the {} data bytes of shape {}",
                body_len - count * 8,
                count * 8,
                shape_text(shape)
            ),
        ));
    }
    Ok(count)
}

/// Feed the values of a `rows x cols` matrix file to `f` in file (row-major) order, reading it
/// in 64 KiB pieces instead of holding it: the header, shape and length checks of
/// [`read_matrix`], with the same messages, all made before `f` sees any value. `f` may fail
/// (say, on a value it rejects), which ends the read with its error. The file must be a regular
/// file (callers read it more than once; a pipe would be empty the second time).
pub fn for_each_matrix_value(
    path: &Path,
    rows: usize,
    cols: usize,
    what: &str,
    mut f: impl FnMut(f64) -> Result<()>,
) -> Result<()> {
    use std::io::Read;
    let io = |e| Error::io(path, e);
    // Checked before opening: opening a pipe with no writer would block.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(bad(
            path,
            format!(
                "{what} must be a regular file, not a directory, pipe or device: it is read again where needed, not kept"
            ),
        ));
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let mut head = vec![0u8; len.min(12)];
    file.read_exact(&mut head).map_err(io)?;
    let (_, end) = data_offset(path, &head)?;
    if end > head.len() {
        let have = head.len();
        head.resize(end.min(len), 0);
        file.read_exact(&mut head[have..]).map_err(io)?;
    }
    let (shape, end) = parse_prefix(path, &head)?;
    // In read_matrix's order: the body length (in parse_npy), then the shape.
    let mut left = check_body_length(path, &shape, len - end)? * 8;
    check_matrix_shape(path, &shape, rows, cols, what)?;
    let mut buf = vec![0u8; left.min(1 << 16)];
    while left > 0 {
        let piece = &mut buf[..left.min(1 << 16)];
        file.read_exact(piece).map_err(io)?;
        piece.chunks_exact(8).map(le_f64).try_for_each(&mut f)?;
        left -= piece.len();
    }
    Ok(())
}

/// Write `data` with `shape` as a version 1.0 (2.0 if the header needs it), '<f8', C-order
/// `.npy` file, atomically.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f64]) -> Result<()> {
    write_atomic(path, &encode_npy(path, shape, data)?)
}

/// The bytes [`write_npy`] writes (`path` only names the file in the error).
pub fn encode_npy(path: &Path, shape: &[usize], data: &[f64]) -> Result<Vec<u8>> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(bad(path, format!("cannot write {} values with shape {}", data.len(), shape_text(shape))));
    }
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {}, }}", shape_text(shape));
    // Pad so that magic + version + length + header is a multiple of 64, ending with '\n'.
    let pad = |prefix: usize| (64 - (prefix + dict.len() + 1) % 64) % 64;
    let (version, prefix) = if 10 + dict.len() + 1 + pad(10) <= u16::MAX as usize { (1u8, 10) } else { (2u8, 12) };
    let hlen = dict.len() + pad(prefix) + 1;
    let mut out = Vec::with_capacity(prefix + hlen + 8 * data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad(prefix)));
    out.push(b'\n');
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Read a `rows x cols` matrix; any other shape is an error naming both shapes and `what` (the
/// flag or role, e.g. "--init-file").
pub fn read_matrix(path: &Path, rows: usize, cols: usize, what: &str) -> Result<Vec<f64>> {
    let (shape, data) = read_npy(path)?;
    check_matrix_shape(path, &shape, rows, cols, what)?;
    Ok(data)
}

/// `shape` must be (rows, cols); the error names both shapes and `what` needs.
fn check_matrix_shape(path: &Path, shape: &[usize], rows: usize, cols: usize, what: &str) -> Result<()> {
    if shape != [rows, cols] {
        return Err(bad(
            path,
            format!("has shape {} but {what} needs {}", shape_text(shape), shape_text(&[rows, cols])),
        ));
    }
    Ok(())
}

/// Read a vector of length `len`, stored with shape (len,), (len, 1) or (1, len).
pub fn read_vector(path: &Path, len: usize, what: &str) -> Result<Vec<f64>> {
    let (shape, data) = read_npy(path)?;
    let ok = shape == [len] || shape == [len, 1] || shape == [1, len];
    if !ok {
        return Err(bad(path, format!("has shape {} but {what} needs ({len},)", shape_text(&shape))));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        let p = Path::new("a.npy");
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   \n";
        assert_eq!(parse_header(p, h).unwrap(), vec![3, 4]);
        let h = "{\"shape\": (5,), \"fortran_order\": False, \"descr\": \"<f8\"}";
        assert_eq!(parse_header(p, h).unwrap(), vec![5]);
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (), }";
        assert_eq!(parse_header(p, h).unwrap(), Vec::<usize>::new());
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        assert!(parse_header(p, h).unwrap_err().to_string().contains("'<f4'"));
        let h = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }";
        assert!(parse_header(p, h).unwrap_err().to_string().contains("Fortran"));
    }

    /// The streaming reader gives read_matrix's values (across several 64 KiB pieces) and, for
    /// every malformed file, read_matrix's error, before any value reaches the callback.
    #[test]
    fn streaming_matches_read_matrix_values_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npy");
        let (rows, cols) = (3, 5000);
        let data: Vec<f64> = (0..rows * cols).map(|k| (k as f64 * 0.37).sin() * 1e3).collect();
        let good = encode_npy(&path, &[rows, cols], &data).unwrap();
        let stream = |path: &Path| {
            let mut got = Vec::new();
            for_each_matrix_value(path, rows, cols, "--init-file", |v| {
                got.push(v);
                Ok(())
            })
            .map(|_| got)
        };
        std::fs::write(&path, &good).unwrap();
        assert_eq!(stream(&path).unwrap(), data);
        let mut v2 = good.clone();
        v2[6] = 2;
        v2.splice(8..10, [good[8], good[9], 0, 0]);
        let wrong_shape = encode_npy(&path, &[cols, rows], &data).unwrap();
        let wrong_shape_and_short = wrong_shape[..wrong_shape.len() - 8].to_vec();
        let cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 8].to_vec(),
            [good.clone(), vec![0; 3]].concat(),
            good[..40].to_vec(),
            good[..11].to_vec(),
            b"not numpy at all".to_vec(),
            v2[..11].to_vec(),
            wrong_shape,
            wrong_shape_and_short,
            Vec::new(),
        ];
        for (k, bytes) in cases.iter().enumerate() {
            std::fs::write(&path, bytes).unwrap();
            let expected = read_matrix(&path, rows, cols, "--init-file").unwrap_err().to_string();
            let mut seen = 0;
            let got = for_each_matrix_value(&path, rows, cols, "--init-file", |_| {
                seen += 1;
                Ok(())
            })
            .unwrap_err()
            .to_string();
            assert_eq!(got, expected, "case {k}");
            assert_eq!(seen, 0, "case {k}: values before the error");
        }
    }
}
