//! The memory budget: allocations that grow faster than the inputs (a QP's dense matrix, a
//! dense Jacobian) are estimated first and refused above the limit, so a run ends with one line
//! naming the size instead of an abort on allocation; and the peak resident set, for reports.
//!
//! The limit is process-wide (a property of the machine, not of a run's mathematics): by default
//! half of `MemTotal` in /proc/meminfo (8 GiB where that cannot be read), set by the binary's
//! `--memory-limit` through [`set_limit`].

use std::sync::atomic::{AtomicU64, Ordering};

/// 0 = not set: the default applies.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// The default limit where /proc/meminfo cannot be read (bytes).
pub const FALLBACK_LIMIT: u64 = 8 << 30;

/// Half the machine's memory (`MemTotal` of /proc/meminfo), or [`FALLBACK_LIMIT`].
pub fn default_limit() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| proc_field_kib(&s, "MemTotal:"))
        .map_or(FALLBACK_LIMIT, |kib| kib * 1024 / 2)
}

/// The limit in bytes: the one set by [`set_limit`], else [`default_limit`].
pub fn limit() -> u64 {
    match LIMIT.load(Ordering::Relaxed) {
        0 => default_limit(),
        l => l,
    }
}

/// Set the process's limit (bytes, > 0).
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes.max(1), Ordering::Relaxed);
}

/// `Err(MemoryLimit)` when `bytes` for `what` exceed the limit.
pub fn check(what: &str, bytes: u64) -> Result<(), crate::SolverError> {
    let limit = limit();
    if bytes > limit {
        return Err(crate::SolverError::MemoryLimit { what: what.to_string(), bytes, limit });
    }
    Ok(())
}

/// Bytes of `entries` values of `bytes_each`, saturating.
pub fn bytes_of(entries: usize, bytes_each: usize) -> u64 {
    (entries as u64).saturating_mul(bytes_each as u64)
}

/// "51.5 GB" (decimal units, as the sizes in messages are compared by eye with `free -g`-style
/// figures; 3 significant digits).
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        _ if b >= 1e12 => format!("{:.3} TB", b / 1e12),
        _ if b >= 1e9 => format!("{:.3} GB", b / 1e9),
        _ if b >= 1e6 => format!("{:.3} MB", b / 1e6),
        _ if b >= 1e3 => format!("{:.3} kB", b / 1e3),
        _ => format!("{bytes} B"),
    }
}

/// A size such as `8G`, `512M`, `1.5GiB`, `2e9` or `4096`: K/M/G/T (optionally followed by `B`,
/// or `iB`) are powers of 1024, as `ulimit` and Slurm's `--mem` read them.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix("IB").or_else(|| upper.strip_suffix('B')).unwrap_or(&upper);
    let (num, shift) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 10),
        Some('M') => (&body[..body.len() - 1], 20),
        Some('G') => (&body[..body.len() - 1], 30),
        Some('T') => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("not a size: {t:?} (e.g. 8G, 512M, 2e9)"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 1.8e19) {
        return Err(format!("must be at least 1 byte and finite, got {t:?}"));
    }
    Ok(bytes as u64)
}

/// The peak resident set of this process (`VmHWM` of /proc/self/status), when it can be read.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_field_kib(&s, "VmHWM:").map(|kib| kib * 1024)
}

/// The value in kB of a `Name:   1234 kB` line.
fn proc_field_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("8G"), Ok(8 << 30));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2e9"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("10KB"), Ok(10240));
        for bad in ["", "G", "abc", "-1G", "0", "nanG"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn proc_files_are_read() {
        assert!(default_limit() > 0);
        let rss = peak_rss_bytes().expect("/proc/self/status on Linux");
        assert!(rss > 1 << 20, "peak RSS {rss} below 1 MiB");
        assert_eq!(proc_field_kib("MemTotal:       24683772 kB\n", "MemTotal:"), Some(24683772));
    }

    #[test]
    fn messages_name_the_size() {
        assert_eq!(format_bytes(51_456_000_000), "51.456 GB");
        let e = crate::SolverError::MemoryLimit { what: "x".into(), bytes: 3, limit: 2 };
        assert!(e.to_string().contains("3 B"), "{e}");
    }
}
