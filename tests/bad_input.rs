//! Reliability through the real binary (issue 7): every bad input exits with status 2 and ONE
//! line on stderr naming the file (and line) or flag and what is wrong, never panic text, and
//! leaves no output behind; runs that do not converge end with a status that says so and still
//! write summary.json; the same command twice gives byte-identical results.
//!
//! `tests/data_io.rs` covers the readers through `check`/`gen`; here the same kinds of files go
//! through `flow` (and `descent`/`maxmargin` where cheap), with `--out` given so the "nothing
//! half-written" rule is checked too.

use assert_cmd::prelude::OutputAssertExt;
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::bin;

/// Run `marginflow args...` and check the bad-input contract: exit status 2, nothing on stdout,
/// exactly one non-empty line on stderr that contains every needle and no panic text.
/// Returns that line.
fn expect_bad(args: &[&str], needles: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: status {:?}, stderr {stderr:?}", out.status);
    assert!(out.stdout.is_empty(), "args {args:?}: stdout not empty: {:?}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "args {args:?}: stderr is not one line: {stderr:?}");
    let line = lines[0];
    assert!(!line.trim().is_empty(), "args {args:?}: empty error line");
    for bad in ["panicked", "RUST_BACKTRACE", "Usage:", "unwrap"] {
        assert!(!line.contains(bad), "args {args:?}: {bad:?} in {line:?}");
    }
    for needle in needles {
        assert!(line.contains(needle), "args {args:?}: {needle:?} not in {line:?}");
    }
    line.to_string()
}

/// The `--out` directory of a run that failed on input: not created at all.
fn assert_no_output(dir: &Path) {
    assert!(!dir.exists(), "{} was left behind: {:?}", dir.display(), std::fs::read_dir(dir).map(|r| r.count()));
}

/// `expect_bad` on `args... --out OUT`, then `assert_no_output(OUT)`. Returns the error line.
fn expect_bad_out(args: &[&str], out: &Path, needles: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--out", out.to_str().unwrap()]);
    let line = expect_bad(&all, needles);
    assert_no_output(out);
    line
}

/// `flow --data DATA --width WIDTH`.
fn flow_args<'a>(data: &'a Path, width: &'a str) -> Vec<&'a str> {
    vec!["flow", "--data", data.to_str().unwrap(), "--width", width]
}

/// `descent --data DATA --width 2 --step-size STEP_SIZE --steps STEPS`.
fn descent_args<'a>(data: &'a Path, step_size: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec!["descent", "--data", data.to_str().unwrap(), "--width", "2", "--step-size", step_size, "--steps", steps]
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// Four nearly orthogonal points, two per class, in R^6 (CSV: label first).
const GOOD_CSV: &str = "1,1,0.1,0,0,0,0\n-1,0,1,0.1,0,0,0\n1,0,0,1,0,0.1,0\n-1,0,0,0,1,0,0.1\n";

/// A temporary directory holding `GOOD_CSV` as `d.csv`, and that file's path.
fn good_data() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "d.csv", GOOD_CSV.as_bytes());
    (tmp, p)
}

/// `flow --data FILE --width 2 --until-s 1 extra... --out DIR`, expected to fail on input.
fn flow_bad(data: &Path, extra: &[&str], needles: &[&str]) -> String {
    let mut args = flow_args(data, "2");
    args.extend(["--until-s", "1"]);
    args.extend(extra);
    expect_bad_out(&args, &data.parent().unwrap().join("out"), needles)
}

/// `flow` on a data file with `contents`, expected to fail naming `name` (and `:line`).
fn flow_bad_file(name: &str, contents: &[u8], line: Option<usize>, needles: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), name, contents);
    let at = match line {
        Some(l) => format!("{}:{l}:", p.display()),
        None => format!("{}:", p.display()),
    };
    let mut all = vec![at.as_str()];
    all.extend(needles);
    flow_bad(&p, &[], &all)
}

/// `flow` on the good data set with `extra` flags, expected to fail naming a flag.
fn flow_bad_flags(extra: &[&str], needles: &[&str]) -> String {
    let (_tmp, p) = good_data();
    flow_bad(&p, extra, needles)
}

// ---------------------------------------------------------------- data files through `flow`

#[test]
fn flow_missing_data_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("absent.csv");
    flow_bad(&p, &[], &[&p.display().to_string(), "cannot read"]);
}

#[test]
fn flow_unknown_extension() {
    flow_bad_file("d.dat", GOOD_CSV.as_bytes(), None, &["unknown extension '.dat'"]);
}

#[test]
fn flow_csv_ragged_row() {
    flow_bad_file("d.csv", b"1,1,0,0\n-1,0,1,0\n1,0,0\n", Some(3), &["3 fields", "line 1 has 4"]);
}

#[test]
fn flow_csv_non_numeric_feature() {
    flow_bad_file("d.csv", b"1,1,0\n-1,0,abc\n", Some(2), &["feature 2 'abc' is not a number"]);
}

#[test]
fn flow_csv_nan_feature() {
    flow_bad_file("d.csv", b"1,1,0\n-1,NaN,1\n", Some(2), &["feature 1 is NaN", "finite"]);
}

#[test]
fn flow_csv_infinite_feature() {
    flow_bad_file("d.csv", b"1,1,-inf\n-1,0,1\n", Some(1), &["feature 2 is -inf", "finite"]);
}

#[test]
fn flow_libsvm_infinite_feature() {
    flow_bad_file("d.svm", b"1 1:1\n-1 2:inf\n", Some(2), &["feature 2 is inf"]);
}

#[test]
fn flow_label_outside_minus_one_one_zero() {
    flow_bad_file("d.csv", b"1,1,0\n2,0,1\n", Some(2), &["label '2'", "-1, 0, +1"]);
}

#[test]
fn flow_json_label_outside_set() {
    flow_bad_file("d.json", b"{\"x\": [[1, 0],\n [0, 1]],\n \"y\": [1,\n 0.5]}\n", Some(4), &["label '0.5'"]);
}

#[test]
fn flow_single_class() {
    flow_bad_file("e.csv", b"1,1,0\n1,0,1\n", None, &["class"]);
}

#[test]
fn descent_single_class() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "d.svm", b"-1 1:1\n-1 2:1\n-1 3:1\n");
    expect_bad_out(&descent_args(&p, "0.1", "3"), &tmp.path().join("out"), &[&p.display().to_string(), "class"]);
}

#[test]
fn maxmargin_single_class() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "d.json", b"{\"x\": [[1, 0], [0, 1]], \"y\": [1, 1]}");
    let out = tmp.path().join("mm.json");
    expect_bad_out(
        &["maxmargin", "--data", p.to_str().unwrap(), "--width", "2"],
        &out,
        &[&p.display().to_string(), "class"],
    );
}

#[test]
fn flow_libsvm_index_zero() {
    flow_bad_file("d.svm", b"1 1:1\n-1 0:1 2:1\n", Some(2), &["index 0", "1-based"]);
}

#[test]
fn flow_libsvm_indices_not_increasing() {
    flow_bad_file(
        "d.libsvm",
        b"1 1:1 3:1\n-1 3:1 2:1\n",
        Some(2),
        &["index 2 is not greater than the previous index 3"],
    );
}

#[test]
fn flow_libsvm_repeated_index() {
    flow_bad_file("d.txt", b"1 1:1 1:2\n-1 2:1\n", Some(1), &["index 1 is not greater"]);
}

/// Found by `fuzz/` (target libsvm): a 25-byte file whose one index asks for a dense row of
/// 8.9e15 features aborted the process on allocation instead of failing with a message.
#[test]
fn flow_libsvm_huge_index_regression() {
    flow_bad_file("d.svm", b"1 8888888888888881:188888", Some(1), &["feature index 8888888888888881", "dense"]);
    // Large only in n * d: 3 points of 2^29 features.
    flow_bad_file("d.svm", b"1 1:1\n-1 536870912:1\n1 2:1\n", Some(2), &["with 3 points exceeds"]);
}

#[test]
fn flow_empty_file() {
    flow_bad_file("d.csv", b"", None, &["no data"]);
    flow_bad_file("d.svm", b"", None, &["no data"]);
    flow_bad_file("d.json", b"", None, &["empty"]);
}

// ---------------------------------------------------------------- .npy inputs

/// A version-1.0 `.npy` file with the given header dict and raw data bytes.
fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f64_bytes(vals: &[f64]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f8(shape: &str) -> String {
    format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}")
}

/// `flow` with `--flag FILE.npy` on the good data set (n = 4, d = 6, width 2).
fn flow_bad_npy(flag: &str, contents: &[u8], needles: &[&str]) {
    let (tmp, data) = good_data();
    let npy = write(tmp.path(), "w.npy", contents);
    let mut all = vec![npy.to_str().unwrap()];
    all.extend(needles);
    flow_bad(&data, &[flag, npy.to_str().unwrap()], &all);
}

#[test]
fn init_file_truncated() {
    let full = npy_bytes(&f8("(2, 6)"), &f64_bytes(&[0.001; 12]));
    flow_bad_npy("--init-file", &full[..full.len() - 5], &["truncated", "96 data bytes", "91"]);
}

#[test]
fn init_file_truncated_header() {
    let full = npy_bytes(&f8("(2, 6)"), &f64_bytes(&[0.001; 12]));
    flow_bad_npy("--init-file", &full[..40], &["truncated header"]);
}

#[test]
fn init_file_wrong_dtype() {
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 6), }";
    flow_bad_npy("--init-file", &npy_bytes(dict, &[0u8; 48]), &["'<f4'", "float64"]);
}

#[test]
fn init_file_not_npy() {
    flow_bad_npy("--init-file", b"1,2,3\n", &["not a NumPy .npy file"]);
}

#[test]
fn init_file_wrong_shape() {
    // W0 must be m x d = 2 x 6; a 6 x 2 array has the right count but the wrong shape.
    flow_bad_npy(
        "--init-file",
        &npy_bytes(&f8("(6, 2)"), &f64_bytes(&[0.001; 12])),
        &["--init-file", "(6, 2)", "(2, 6)"],
    );
}

#[test]
fn init_file_non_finite() {
    let mut w = [0.001; 12];
    w[7] = f64::NAN;
    flow_bad_npy("--init-file", &npy_bytes(&f8("(2, 6)"), &f64_bytes(&w)), &["non-finite"]);
}

#[test]
fn outer_file_wrong_shape() {
    flow_bad_npy("--outer", &npy_bytes(&f8("(3,)"), &f64_bytes(&[0.5, -0.5, 0.5])), &["--outer", "(3,)", "(2,)"]);
}

#[test]
fn descent_init_file_wrong_shape() {
    let (tmp, data) = good_data();
    let npy = write(tmp.path(), "w.npy", &npy_bytes(&f8("(2, 5)"), &f64_bytes(&[0.001; 10])));
    let mut args = descent_args(&data, "0.1", "3");
    args.extend(["--init-file", npy.to_str().unwrap()]);
    expect_bad_out(&args, &tmp.path().join("out"), &[npy.to_str().unwrap(), "(2, 5)", "(2, 6)"]);
}

#[test]
fn descent_init_file_not_a_regular_file() {
    // W0 is read again where it is needed, so a pipe or device cannot serve as --init-file.
    let (tmp, data) = good_data();
    let mut args = descent_args(&data, "0.1", "3");
    args.extend(["--init-file", "/dev/null"]);
    expect_bad_out(&args, &tmp.path().join("out"), &["/dev/null", "--init-file must be a regular file"]);
}

// ---------------------------------------------------------------- flags

#[test]
fn leak_outside_unit_interval() {
    // γ = 0 is the plain ReLU (accepted); the unit interval's other end and beyond are not.
    for leak in ["1", "1.5", "-0.2", "NaN"] {
        flow_bad_flags(&["--leak", leak], &["--leak", "[0, 1)"]);
    }
}

#[test]
fn width_zero() {
    let (tmp, p) = good_data();
    expect_bad_out(&flow_args(&p, "0"), &tmp.path().join("out"), &["--width", "at least 1"]);
}

#[test]
fn width_not_a_number() {
    expect_bad(&flow_args(Path::new("d.csv"), "abc"), &["--width", "abc"]);
}

#[test]
fn rtol_zero() {
    flow_bad_flags(&["--rtol", "0"], &["--rtol", "> 0"]);
}

#[test]
fn atol_negative() {
    flow_bad_flags(&["--atol", "-1"], &["--atol", "> 0", "-1"]);
}

/// `flow` on the good data set with horizon flags of our own (flow_bad passes `--until-s 1`).
fn flow_bad_horizon(horizon: &[&str], needles: &[&str]) {
    let (tmp, p) = good_data();
    let mut args = flow_args(&p, "2");
    args.extend(horizon);
    expect_bad_out(&args, &tmp.path().join("out"), needles);
}

#[test]
fn until_time_not_positive() {
    flow_bad_horizon(&["--until-time", "0"], &["--until-time", "> 0"]);
    flow_bad_horizon(&["--until-time", "-3"], &["--until-time", "> 0"]);
}

#[test]
fn until_s_not_positive() {
    flow_bad_horizon(&["--until-s", "-1"], &["--until-s", "> 0"]);
    flow_bad_horizon(&["--until-s", "0"], &["--until-s", "> 0"]);
}

#[test]
fn conflicting_horizons() {
    flow_bad_horizon(&["--until-time", "5", "--until-s", "3"], &["--until-time", "--until-s"]);
}

#[test]
fn unknown_flag_is_one_line() {
    let mut args = flow_args(Path::new("d.csv"), "2");
    args.push("--no-such-flag");
    expect_bad(&args, &["--no-such-flag"]);
}

#[test]
fn missing_flags_are_named() {
    let line = expect_bad(&["flow", "--data", "g.json"], &["--width <WIDTH>", "not provided"]);
    assert!(!line.contains("provided: (see"), "{line}");
    expect_bad(&["descent", "--data", "g.json"], &["--width <WIDTH>, --step-size <STEP_SIZE>, --steps <STEPS>"]);
}

#[test]
fn a_misspelt_flag_or_value_gets_did_you_mean_and_the_valid_values() {
    let mut args = flow_args(Path::new("d.csv"), "2");
    args.extend(["--witdh", "32"]);
    expect_bad(&args, &["'--witdh'", "did you mean '--width'?"]);
    expect_bad(
        &["gen", "--kind", "gauss", "--n", "4", "--d", "4", "--out", "x.json"],
        &["'gauss'", "possible values: gaussian, mixture, orthogonal", "did you mean 'gaussian'?"],
    );
    expect_bad(&["flwo"], &["did you mean 'flow'?"]);
}

#[test]
fn help_and_version_still_exit_zero() {
    let out = bin().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    let out = bin().args(["flow", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--until-time"));
    let out = bin().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn out_dir_under_a_regular_file() {
    let (tmp, p) = good_data();
    let file = write(tmp.path(), "plain", b"not a directory");
    let out = file.join("run");
    let out_flag = ["--out", out.to_str().unwrap()];
    let mut args = flow_args(&p, "2");
    args.extend(["--until-s", "1"]);
    args.extend(out_flag);
    expect_bad(&args, &["--out", &out.display().to_string()]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    let mut args = descent_args(&p, "0.1", "2");
    args.extend(out_flag);
    expect_bad(&args, &["--out", &out.display().to_string()]);
}

#[cfg(not(feature = "mpfr"))]
#[test]
fn precision_without_mpfr() {
    flow_bad_flags(&["--precision", "100"], &["--precision", "mpfr"]);
}

#[test]
fn precision_below_f64() {
    flow_bad_flags(&["--precision", "20"], &["--precision", "53"]);
}

#[test]
fn descent_bad_step_size() {
    let (tmp, p) = good_data();
    expect_bad_out(&descent_args(&p, "-0.1", "3"), &tmp.path().join("out"), &["--step-size"]);
}

// ---------------------------------------------------------------- runs that do not converge

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Two identical points with opposite labels (rows 1 and 2) plus two others: no network
/// interpolates, since f(x1) = f(x2) forces q1 = -q2.
const NON_SEPARABLE_CSV: &str = "1,1,0,0\n-1,1,0,0\n1,0,1,0\n-1,0,0,1\n";

/// A flow run on the non-separable set; `code` is the exit status expected (3: it ended before
/// its horizon).
fn non_separable_run(extra: &[&str], code: i32) -> (tempfile::TempDir, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "ns.csv", NON_SEPARABLE_CSV.as_bytes());
    let out = tmp.path().join("out");
    let mut args = flow_args(&p, "4");
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    bin().args(&args).assert().code(code);
    assert!(out.join("trajectory.jsonl").exists());
    let summary = read_json(&out.join("summary.json"));
    (tmp, summary)
}

#[test]
fn non_separable_data_report_no_interpolation() {
    let (_tmp, s) = non_separable_run(&["--until-s", "100"], 0);
    assert_eq!(s["status"], "reached");
    assert_eq!(s["interpolated"], false, "{s}");
    // q1 = -q2, so some margin is <= 0.
    assert!(s["min_margin"].as_f64().unwrap() <= 0.0, "{s}");
    // l(q) + l(-q) >= 2 log 2 for the logistic loss, so L >= 2 log 2 / n with n = 4.
    let floor = (2.0 * std::f64::consts::LN_2 / 4.0).log10();
    assert!(s["log10_loss"].as_f64().unwrap() >= floor - 1e-12, "{s}");
}

/// Along gradient flow the loss never increases (dL/dt = -|grad L|^2). On non-separable data with
/// dependent points (two identical x with opposite labels) the loss has a positive floor, the
/// horizon t = 10^100 needs s ~ 10^99, and the span coefficients B grow like s along the null space
/// of X until round-off dominates: the run must stop at the first rise of the loss and say so,
/// rather than report a rising loss or a horizon it did not reach.
#[test]
fn non_separable_loss_never_increases() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "ns.csv", NON_SEPARABLE_CSV.as_bytes());
    let out = tmp.path().join("out");
    let run = bin().args(flow_args(&p, "4")).args(["--out", out.to_str().unwrap()]).output().unwrap();
    let text = std::fs::read_to_string(out.join("trajectory.jsonl")).unwrap();
    let losses: Vec<f64> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["log10_loss"].as_f64().unwrap()).collect();
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["interpolated"], false);
    let status = s["status"].as_str().unwrap();
    assert_eq!(run.status.code(), Some(if status == "reached" { 0 } else { 3 }), "exit status for {status}");
    // Every row but the one that revealed the failure descends (the final row is not repeated).
    let checked = if status == "loss_increased" { losses.len() - 1 } else { losses.len() };
    for w in losses[..checked].windows(2) {
        assert!(w[1] <= w[0] + 1e-7, "log10 L rose from {} to {}", w[0], w[1]);
    }
    match status {
        "reached" => assert!((s["log10_time"].as_f64().unwrap() - 100.0).abs() < 1e-6, "{s}"),
        "loss_increased" => {
            assert!(s["status_detail"].as_str().unwrap().contains("round-off"), "{s}");
            assert!(s["log10_time"].as_f64().unwrap() < 100.0, "{s}");
        }
        // Issue 23: the flow converges to a stationary point of positive loss, and says so.
        "stationary" => {
            assert!(s["log10_time"].as_f64().unwrap() < 100.0, "{s}");
            assert!(!s["stationary"]["misclassified"].as_array().unwrap().is_empty(), "{s}");
            let floor = (2.0 * 2f64.ln() / 4.0).log10();
            assert!(s["stationary"]["log10_loss"].as_f64().unwrap() >= floor - 1e-9, "{s}");
        }
        other => panic!("unexpected status {other}: {s}"),
    }
}

#[test]
fn max_steps_status_and_summary() {
    let (_tmp, s) = non_separable_run(&["--max-steps", "5"], 3);
    assert_eq!(s["status"], "max_steps", "{s}");
    let st = &s["statistics"];
    assert_eq!(st["accepted"].as_u64().unwrap() + st["rejected"].as_u64().unwrap(), 5, "{st}");
    // Stopped long before the default horizon t = 10^100.
    assert!(s["log10_time"].as_f64().unwrap() < 100.0);
}

/// Features of size 1e200 make the Gram matrix K = X X^T overflow (1e400): the run stops with
/// status `non_finite` and says where, and summary.json and the trajectory are still written.
#[test]
fn overflowing_features_end_non_finite() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "big.csv", b"1,1e200,0\n-1,0,1e200\n");
    let out = tmp.path().join("out");
    bin().args(flow_args(&p, "2")).args(["--out", out.to_str().unwrap()]).assert().code(3);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["status"], "non_finite", "{s}");
    assert!(s["status_detail"].as_str().unwrap().contains("non-finite value at s ="), "{s}");
    assert_eq!(s["interpolated"], false, "{s}");
    assert!(out.join("trajectory.jsonl").exists());
}

#[test]
fn descent_divergence_is_a_status() {
    let (tmp, p) = good_data();
    let out = tmp.path().join("out");
    bin().args(descent_args(&p, "1e200", "20")).args(["--out", out.to_str().unwrap()]).assert().code(3);
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["status"], "diverged", "{s}");
    assert!(s["status_detail"].as_str().unwrap().contains("step 1"), "{s}");
    // The reported state is the last finite one.
    assert!(s["log10_loss"].as_f64().unwrap().is_finite());
    assert!(out.join("trajectory.jsonl").exists());
}

// ---------------------------------------------------------------- determinism

/// Strip `wall_seconds` and `peak_rss_bytes` (the only fields that may differ between identical
/// runs) at any depth.
fn without_wall(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("wall_seconds");
            m.remove("peak_rss_bytes");
            m.values_mut().for_each(without_wall);
        }
        Value::Array(a) => a.iter_mut().for_each(without_wall),
        _ => {}
    }
}

fn assert_same_runs(a: &Path, b: &Path) {
    for f in ["trajectory.jsonl", "W.npy"] {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(!x.is_empty(), "{f} is empty");
        assert!(x == y, "{f} differs between identical runs");
    }
    let (mut x, mut y) = (read_json(&a.join("summary.json")), read_json(&b.join("summary.json")));
    without_wall(&mut x);
    without_wall(&mut y);
    assert_eq!(x, y);
}

#[test]
fn flow_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("g.json");
    bin()
        .args(["gen", "--kind", "gaussian", "--n", "8", "--d", "200", "--seed", "5", "--out", data.to_str().unwrap()])
        .assert()
        .success();
    let run = |name: &str| {
        let out = tmp.path().join(name);
        bin()
            .args(["flow", "--data", data.to_str().unwrap(), "--width", "6", "--outer", "random", "--seed", "3"])
            .args(["--until-log10-time", "20", "--save-weights", "--out", out.to_str().unwrap()])
            .assert()
            .success();
        out
    };
    let (a, b) = (run("a"), run("b"));
    assert_same_runs(&a, &b);
}

#[test]
fn descent_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("g.csv");
    bin()
        .args(["gen", "--kind", "mixture", "--n", "10", "--d", "100", "--seed", "2", "--out", data.to_str().unwrap()])
        .assert()
        .success();
    let run = |name: &str| {
        let out = tmp.path().join(name);
        bin()
            .args(["descent", "--data", data.to_str().unwrap(), "--width", "8", "--step-size", "0.5", "--steps", "300"])
            .args([
                "--activation",
                "smooth",
                "--smoothness",
                "2",
                "--seed",
                "4",
                "--save-weights",
                "--out",
                out.to_str().unwrap(),
            ])
            .assert()
            .success();
        out
    };
    let (a, b) = (run("a"), run("b"));
    assert_same_runs(&a, &b);
}
