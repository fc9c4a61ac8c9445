//! Data and `.npy` input/output through the real binary and the library: every malformed input
//! is exit status 2 with one stderr line naming the file (and line), round trips are bit-exact,
//! generation is deterministic, and `check --json` is one parseable JSON object.

use assert_cmd::prelude::OutputAssertExt;
use marginflow::io::npy;
use marginflow::model::data::{self, DataKind, Dataset, GenSettings, Geometry, Verdict};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::bin;

/// Run `check --data <file>` on `contents` and assert a one-line failure naming the file, the
/// line (if given) and `needle`.
fn expect_bad(name: &str, contents: &[u8], line: Option<usize>, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    expect_bad_path(&path, line, needle);
}

/// `marginflow check --data PATH`.
fn check(path: &Path) -> Command {
    let mut cmd = bin();
    cmd.arg("check").arg("--data").arg(path);
    cmd
}

/// A run that failed on input: exit status 2 and exactly one line on stderr, which is returned.
/// `what` names the run in the failure messages.
fn one_line_failure(o: &Output, what: &str) -> String {
    assert_eq!(o.status.code(), Some(2), "{what}: {}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: not one line: {err}");
    err
}

fn expect_bad_path(path: &Path, line: Option<usize>, needle: &str) {
    let out = check(path).output().unwrap();
    let err = one_line_failure(&out, "check");
    assert!(out.stdout.is_empty());
    let shown = path.display().to_string();
    let at = match line {
        Some(l) => format!("{shown}:{l}: "),
        None => format!("{shown}: "),
    };
    assert!(err.contains(&at), "expected '{at}' in: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

#[test]
fn missing_file_and_unknown_extension() {
    let dir = tempfile::tempdir().unwrap();
    expect_bad_path(&dir.path().join("absent.csv"), None, "cannot read");
    expect_bad("data.xlsx", b"1,2\n", None, "unknown extension '.xlsx'");
    expect_bad("data", b"1,2\n", None, "no file extension");
}

#[test]
fn empty_files() {
    expect_bad("e.csv", b"", None, "no data rows");
    expect_bad("e.csv", b"label,x1,x2\n", None, "no data rows");
    expect_bad("e.svm", b"", None, "no data");
    expect_bad("e.svm", b"# only a comment\n\n", None, "no data");
    expect_bad("e.json", b"", None, "empty");
    expect_bad("e.json", b"  \n", None, "empty");
}

#[test]
fn csv_errors() {
    expect_bad("r.csv", b"1,0.5,2\n-1,1\n", Some(2), "row has 2 fields but line 1 has 3");
    expect_bad("h.csv", b"label,a,b\n1,0.5,2\n-1,1,2,3\n", Some(3), "the header (line 1) has 3");
    expect_bad("n.csv", b"1,0.5,2\n-1,abc,2\n", Some(2), "feature 1 'abc' is not a number");
    expect_bad("nan.csv", b"1,0.5,2\n-1,1,NaN\n", Some(2), "feature 2 is NaN");
    expect_bad("inf.csv", b"1,0.5,inf\n", Some(1), "feature 2 is inf");
    expect_bad("l.csv", b"1,0.5\n2,1\n", Some(2), "label '2' is not one of -1, 0, +1");
    expect_bad("l.csv", b"1,0.5\nyes,1\n", Some(2), "label 'yes' is not a number");
    expect_bad("m.csv", b"0,0.5\n1,1\n-1,2\n", Some(3), "mixed with label 0 (line 1)");
    expect_bad("o.csv", b"1\n-1\n", None, "no feature columns");
    expect_bad("e.csv", b"1,0.5,\n", Some(1), "feature 2 '' is not a number");
}

/// `check --json` on a CSV text: the data set's sha256, n and d (exit 0 required).
fn csv_check(contents: &str) -> (String, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    std::fs::write(&path, contents).unwrap();
    let o = check(&path).arg("--json").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (v["hash"].as_str().unwrap().to_string(), v["n"].as_u64().unwrap(), v["d"].as_u64().unwrap())
}

#[test]
fn csv_header_names_the_label_and_pandas_index_is_recognized() {
    let plain = csv_check("1,0.5,2\n-1,1,3\n");
    assert_eq!((plain.1, plain.2), (2, 2));
    // pandas' default to_csv: an unnamed index first, the label column named (anywhere).
    assert_eq!(csv_check(",a,b,label\n0,0.5,2,1\n1,1,3,-1\n"), plain);
    assert_eq!(csv_check("Unnamed: 0,y,a,b\n0,1,0.5,2\n1,-1,1,3\n"), plain);
    assert_eq!(csv_check("a,TARGET,b\n0.5,1,2\n1,-1,3\n"), plain);
    // A header without a label name keeps the label first.
    assert_eq!(csv_check("class,a,b\n1,0.5,2\n-1,1,3\n"), plain);
    // An index column but no label column: refused, naming the index.
    expect_bad("i.csv", b",a,b\n0,0.5,2\n1,1,3\n", Some(1), "the first column has no name, as pandas writes its index");
    expect_bad("i.csv", b"index,a,b\n0,0.5,2\n", Some(1), "the first column is named 'index'");
    expect_bad(
        "two.csv",
        b"y,a,label\n1,0.5,2\n",
        Some(1),
        "more than one label column: 'y' (column 1), 'label' (column 3)",
    );
    // A feature named by the header is named in its error.
    expect_bad("f.csv", b",x1,x2,label\n0,0.5,oops,1\n", Some(2), "feature 2 ('x2') 'oops' is not a number");
}

#[test]
fn csv_other_separators_are_named_and_echoes_are_cut() {
    let row: Vec<String> = (0..2000).map(|k| format!("{}", k as f64 * 0.001)).collect();
    let semi = format!("1;{}\n-1;{}\n", row.join(";"), row.join(";"));
    expect_bad("s.csv", semi.as_bytes(), Some(1), "fields are separated by ';' (2001 fields), not ','");
    expect_bad("t.csv", b"label\ta\tb\n1\t2\t3\n", Some(1), "separated by a tab");
    // A 10 KB field is echoed by its first 40 characters.
    let long = "7".repeat(10_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.csv");
    std::fs::write(&path, format!("1,0.5\n{long}x,1\n")).unwrap();
    let err = one_line_failure(&check(&path).output().unwrap(), "long label");
    assert!(err.contains(&format!("label '{}… (10001 characters)' is not a number", "7".repeat(40))), "{err}");
    assert!(err.len() < 300, "{err}");
}

#[test]
fn labels_outside_the_set_get_the_mapping_hint() {
    expect_bad("l.csv", b"1,0.5\n2,1\n", Some(2), "map the two classes to -1/+1 (or 0/1) first");
}

#[test]
fn libsvm_errors() {
    expect_bad("z.svm", b"1 0:0.5\n", Some(1), "feature index 0: indices are 1-based");
    expect_bad("i.svm", b"1 1:1\n-1 3:0.5 2:1\n", Some(2), "index 2 is not greater than the previous index 3");
    expect_bad("i.svm", b"1 1:1 1:2\n", Some(1), "index 1 is not greater");
    expect_bad("v.txt", b"# c\n1 1:1\n-1 2:x\n", Some(3), "feature 2 'x' is not a number");
    expect_bad("v.libsvm", b"1 1:nan\n", Some(1), "feature 1 is NaN");
    expect_bad("v.svm", b"1 1:-inf\n", Some(1), "feature 1 is -inf");
    expect_bad("f.svm", b"1 1:1\n-1 2\n", Some(2), "'2' is not of the form index:value");
    expect_bad("q.svm", b"1 qid:3 1:1\n", Some(1), "feature index 'qid' is not a positive integer");
    expect_bad("l.svm", b"1 1:1\n-2 1:1\n", Some(2), "label '-2' is not one of");
    expect_bad("m.svm", b"-1 1:1\n0 1:1\n", Some(2), "label 0 mixed with label -1 (line 1)");
    expect_bad("o.svm", b"1\n-1\n", None, "no features");
}

#[test]
fn json_errors() {
    expect_bad("s.json", b"{\"x\": [[1, 2],\n [3, 4]],\n \"y\": [1, -1]\n", Some(4), "EOF while parsing");
    expect_bad("t.json", b"[1, 2]", Some(1), "expected");
    expect_bad("t.json", b"{\"x\": [[1, 2]]}", Some(1), "missing field `y`");
    expect_bad("t.json", b"{\"x\": [[1, \"a\"]],\n \"y\": [1]}", Some(1), "invalid type");
    expect_bad("t.json", b"{\"x\": [1, 2], \"y\": [1, -1]}", Some(1), "invalid type");
    expect_bad(
        "r.json",
        b"{\"x\": [\n [1, 2],\n [3]\n], \"y\": [1, -1]}",
        Some(3),
        "row 2 of \"x\" has 1 entries but row 1 has 2",
    );
    expect_bad(
        "y.json",
        b"{\"x\": [[1], [2],\n [3]],\n \"y\": [1,\n -1]}",
        Some(4),
        "\"y\" has 2 labels but \"x\" has 3 rows",
    );
    expect_bad("l.json", b"{\"x\": [[1], [2]],\n \"y\": [1,\n 3]}", Some(3), "label '3' is not one of");
    expect_bad("m.json", b"{\"x\": [[1], [2]], \"y\": [0,\n -1]}", Some(2), "label -1 mixed with label 0");
    expect_bad("e.json", b"{\"x\": [], \"y\": []}", Some(1), "\"x\" holds no points");
    expect_bad("big.json", b"{\"x\": [[1e999]], \"y\": [1]}", Some(1), "out of range");
    expect_bad("nan.json", b"{\"x\": [[NaN]], \"y\": [1]}", Some(1), "expected");
}

#[test]
fn invalid_utf8_is_bad_data() {
    expect_bad("u.csv", b"1,2\n-1,\xff\n", Some(2), "UTF-8");
}

#[test]
fn zero_one_labels_map_to_minus_one_plus_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.csv");
    std::fs::write(&p, "y,f1,f2\n0,1,2\n1,3,4\n").unwrap();
    let d = Dataset::load(&p).unwrap();
    assert_eq!((d.n, d.d), (2, 2));
    assert_eq!(d.y, vec![-1.0, 1.0]);
    assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.0]);
    let p = dir.path().join("a.svm");
    std::fs::write(&p, "+1 2:1.5 # comment\n\n0 1:-2\n").unwrap();
    let d = Dataset::load(&p).unwrap();
    assert_eq!((d.n, d.d), (2, 2));
    assert_eq!(d.x, vec![0.0, 1.5, -2.0, 0.0]);
    assert_eq!(d.y, vec![1.0, -1.0]);
}

#[test]
fn single_class_rejected_for_training() {
    let d = Dataset { n: 3, d: 1, x: vec![1.0, 2.0, 3.0], y: vec![1.0; 3] };
    let e = d.validate_for_training(Path::new("p.csv")).unwrap_err().to_string();
    assert!(e.contains("p.csv") && e.contains("all 3 labels are +1"), "{e}");
    let d = Dataset { n: 2, d: 1, x: vec![1.0, 0.0], y: vec![1.0, -1.0] };
    let e = d.validate_for_training(Path::new("p.csv")).unwrap_err().to_string();
    assert!(e.contains("point 2 is the zero vector"), "{e}");
}

#[test]
fn gen_bad_output_dir_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing").join("d.csv");
    let o = bin().args(["gen", "--n", "4", "--d", "3", "--out"]).arg(&out).output().unwrap();
    let err = one_line_failure(&o, "gen");
    assert!(err.contains("d.csv"), "{err}");
    assert!(!dir.path().join("missing").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn gen_bad_settings_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--n", "1"], "d.csv", "--n"),
        (&["--d", "0"], "d.csv", "--d"),
        (&["--kind", "orthogonal", "--n", "5", "--d", "3"], "d.csv", "n <= d"),
        (&["--kind", "mixture", "--label-noise", "0.5"], "d.csv", "--label-noise"),
        (&["--kind", "mixture", "--label-noise", "-0.1"], "d.csv", "--label-noise"),
        (&["--kind", "gaussian", "--label-noise", "0.1"], "d.csv", "mixture"),
        (&["--kind", "mixture", "--mean-norm", "-1"], "d.csv", "--mean-norm"),
        (&["--n", "4", "--d", "3"], "d.xlsx", "unknown extension"),
    ];
    for (args, name, needle) in cases {
        let o = bin().arg("gen").args(*args).arg("--out").arg(dir.path().join(name)).output().unwrap();
        let err = one_line_failure(&o, &format!("{args:?}"));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn gen_file(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    bin().arg("gen").args(args).arg("--out").arg(&out).assert().success();
    out
}

#[test]
fn gen_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, ext) in [("gaussian", "csv"), ("mixture", "svm"), ("orthogonal", "json")] {
        let args = ["--kind", kind, "--n", "7", "--d", "40", "--seed", "11"];
        let a = std::fs::read(gen_file(dir.path(), &format!("a.{ext}"), &args)).unwrap();
        let b = std::fs::read(gen_file(dir.path(), &format!("b.{ext}"), &args)).unwrap();
        assert_eq!(a, b, "{kind}");
        let args = ["--kind", kind, "--n", "7", "--d", "40", "--seed", "12"];
        let c = std::fs::read(gen_file(dir.path(), &format!("c.{ext}"), &args)).unwrap();
        assert_ne!(a, c, "{kind}");
    }
    // Library and binary agree, whatever the format.
    let s = GenSettings { kind: DataKind::Mixture, n: 7, d: 40, seed: 11, ..Default::default() };
    let lib = data::generate(&s).unwrap();
    assert_eq!(Dataset::load(&dir.path().join("a.svm")).unwrap().hash(), lib.hash());
}

#[test]
fn generated_data_have_both_classes() {
    for kind in [DataKind::Gaussian, DataKind::Mixture, DataKind::Orthogonal] {
        for n in 2..6 {
            let s = GenSettings { kind, n, d: 10, seed: n as u64, ..Default::default() };
            let d = data::generate(&s).unwrap();
            d.validate_for_training(Path::new("gen")).unwrap();
            assert_eq!(d.x.len(), n * 10);
        }
    }
}

#[test]
fn mixture_clusters_follow_the_mean() {
    let s = GenSettings { kind: DataKind::Mixture, n: 40, d: 400, mean_norm: Some(30.0), ..Default::default() };
    let d = data::generate(&s).unwrap();
    // Mean of y_i x_i estimates mu, with ||mu|| = 30 and noise of norm about sqrt(400/40) = 3.2.
    let mut m = vec![0.0; d.d];
    for i in 0..d.n {
        for (mj, xj) in m.iter_mut().zip(d.row(i)) {
            *mj += d.y[i] * xj / d.n as f64;
        }
    }
    let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 30.0).abs() < 5.0, "{norm}");
}

#[test]
fn orthogonal_gram_is_diagonal() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_file(dir.path(), "o.svm", &["--kind", "orthogonal", "--n", "12", "--d", "50", "--seed", "3"]);
    let d = Dataset::load(&p).unwrap();
    let k = d.gram();
    for i in 0..d.n {
        for j in 0..d.n {
            if i != j {
                assert_eq!(k[i * d.n + j], 0.0);
            } else {
                assert!(k[i * d.n + i] >= 0.25 * 50.0 && k[i * d.n + i] <= 4.0 * 50.0);
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct CheckJson {
    data: String,
    hash: String,
    #[serde(flatten)]
    geometry: Geometry,
}

#[test]
fn check_json_parses() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_file(dir.path(), "g.json", &["--n", "6", "--d", "300"]);
    let o = check(&p).args(["--json", "--leak", "0.5"]).output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    let r: CheckJson = serde_json::from_str(&text).unwrap();
    let d = Dataset::load(&p).unwrap();
    assert_eq!(r.hash, d.hash());
    assert_eq!(r.data, p.display().to_string());
    assert_eq!(r.geometry, data::geometry(&d, 0.5, 3.0));
    assert_eq!((r.geometry.n, r.geometry.d), (6, 300));
    assert_eq!(r.geometry.positives + r.geometry.negatives, 6);

    // Exactly orthogonal: infinite ratios are null, the condition holds.
    let p = gen_file(dir.path(), "o.csv", &["--kind", "orthogonal", "--n", "4", "--d", "9"]);
    let o = check(&p).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["ratio"].is_null() && v["paper_ratio"].is_null());
    assert_eq!(v["condition"], "holds");
    let r: CheckJson = serde_json::from_value(v).unwrap();
    assert_eq!(r.geometry.condition, Verdict::Holds);

    // The table says "inf".
    let o = check(&p).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8(o.stdout).unwrap().contains("inf"));
}

#[test]
fn check_rejects_bad_leak_and_constant() {
    let dir = tempfile::tempdir().unwrap();
    let p = gen_file(dir.path(), "g.csv", &["--n", "4", "--d", "5"]);
    // `--leak 0` is the plain ReLU (accepted: the paper's ratio, with γ³ in it, is then 0).
    for (flag, v) in [("--leak", "1"), ("--leak", "-0.2"), ("--leak", "NaN"), ("--constant", "0"), ("--constant", "-1")]
    {
        let o = check(&p).args([flag, v]).output().unwrap();
        let err = one_line_failure(&o, flag);
        assert!(err.contains(flag), "{err}");
    }
}

// ---------------------------------------------------------------- npy

fn npy_bytes(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY".to_vec();
    b.extend_from_slice(&[major, 0]);
    if major == 1 {
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn le(vals: &[f64]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn npy_versions_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }          \n";
    let vals = [1.0, 2.0, 3.0, 4.0, 5.0, -0.0];
    for major in [1, 2, 3] {
        std::fs::write(&p, npy_bytes(major, h, &le(&vals))).unwrap();
        let (shape, data) = npy::read_npy(&p).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(le(&data), le(&vals));
    }
    let err = |bytes: Vec<u8>| {
        std::fs::write(&p, bytes).unwrap();
        let e = npy::read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("a.npy"), "{e}");
        e
    };
    assert!(err(npy_bytes(1, h, &le(&vals[..5]))).contains("truncated"));
    assert!(err(npy_bytes(1, h, &le(&[0.0; 7]))).contains("unexpected bytes"));
    assert!(err(b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec()).contains("truncated header"));
    assert!(err(b"PK\x03\x04 not numpy".to_vec()).contains("not a NumPy"));
    assert!(err(npy_bytes(4, h, &le(&vals))).contains("version 4.0"));
    let f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    assert!(err(npy_bytes(1, f4, &[0u8; 8])).contains("'<f4'"));
    let be = "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }\n";
    assert!(err(npy_bytes(1, be, &[0u8; 8])).contains("'>f8'"));
    let i8s = "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n";
    assert!(err(npy_bytes(1, i8s, &[0u8; 8])).contains("'<i8'"));
    let fo = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n";
    assert!(err(npy_bytes(1, fo, &le(&vals))).contains("Fortran"));
    let e = npy::read_npy(&dir.path().join("absent.npy")).unwrap_err().to_string();
    assert!(e.contains("absent.npy"), "{e}");
}

#[test]
fn npy_shape_checks_name_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("W0.npy");
    npy::write_npy(&p, &[3, 5], &[0.5; 15]).unwrap();
    assert_eq!(npy::read_matrix(&p, 3, 5, "--init-file").unwrap(), vec![0.5; 15]);
    let e = npy::read_matrix(&p, 16, 4000, "--init-file").unwrap_err().to_string();
    assert!(e.contains("W0.npy") && e.contains("has shape (3, 5) but --init-file needs (16, 4000)"), "{e}");
    let v = dir.path().join("a.npy");
    for shape in [vec![4], vec![4, 1], vec![1, 4]] {
        npy::write_npy(&v, &shape, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(npy::read_vector(&v, 4, "--outer").unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    }
    npy::write_npy(&v, &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let e = npy::read_vector(&v, 4, "--outer").unwrap_err().to_string();
    assert!(e.contains("has shape (2, 2) but --outer needs (4,)"), "{e}");
    assert!(npy::write_npy(&v, &[3], &[1.0]).is_err());
}

#[test]
fn npy_header_is_aligned_v1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    npy::write_npy(&p, &[2, 3], &[0.0; 6]).unwrap();
    let b = std::fs::read(&p).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    assert_eq!(b[10 + hlen - 1], b'\n');
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert!(header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"));
    assert_eq!(b.len(), 10 + hlen + 48);
}

fn finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    prop_oneof![
        (POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO),
        (-1000i32..1000).prop_map(|v| v as f64 / 8.0),
        Just(0.0),
        Just(-0.0),
    ]
}

fn dataset() -> impl Strategy<Value = Dataset> {
    (1usize..6, 1usize..6).prop_flat_map(|(n, d)| {
        (prop::collection::vec(finite(), n * d), prop::collection::vec(any::<bool>(), n))
            .prop_map(move |(x, ys)| Dataset { n, d, x, y: ys.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect() })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn data_round_trips(data in dataset()) {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["svm", "libsvm", "txt", "csv", "json"] {
            let p = dir.path().join(format!("d.{ext}"));
            data.save(&p).unwrap();
            let back = Dataset::load(&p).unwrap();
            prop_assert_eq!((back.n, back.d), (data.n, data.d), "{}", ext);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back.x), bits(&data.x), "{}", ext);
            prop_assert_eq!(bits(&back.y), bits(&data.y), "{}", ext);
            prop_assert_eq!(back.hash(), data.hash());
        }
    }

    #[test]
    fn npy_round_trips(shape in prop::collection::vec(0usize..5, 0..4), seed in any::<u64>()) {
        let count: usize = shape.iter().product();
        let vals: Vec<f64> = (0..count as u64)
            .map(|i| f64::from_bits(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i.wrapping_mul(0xD1B5_4A32_D192_ED03))))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        npy::write_npy(&p, &shape, &vals).unwrap();
        let (s, back) = npy::read_npy(&p).unwrap();
        prop_assert_eq!(s, shape);
        prop_assert_eq!(le(&back), le(&vals));
    }
}

/// The shipped NumPy fixtures (written by numpy 2.4 from data/mixture_n10_d50.csv).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// `check --json ARGS`: the data hash (exit 0 required).
fn hash_of(args: &[&Path]) -> String {
    let mut c = bin();
    c.arg("check").arg("--data").arg(args[0]);
    if let Some(l) = args.get(1) {
        c.arg("--labels").arg(l);
    }
    let o = c.arg("--json").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["hash"].as_str().unwrap().to_string()
}

#[test]
fn numpy_data_is_the_same_data_set_as_its_csv() {
    let csv = fixture("mixture_n10_d50.csv");
    let want = Dataset::load(&csv).unwrap().hash();
    let (x, y) = (fixture("numpy/mixture_X.npy"), fixture("numpy/mixture_y.npy"));
    assert_eq!(hash_of(&[&x, &y]), want, "X.npy + int64 y.npy");
    assert_eq!(hash_of(&[&fixture("numpy/mixture.npz")]), want, "np.savez (ZIP64 members)");
    assert_eq!(hash_of(&[&fixture("numpy/mixture_compressed.npz")]), want, "np.savez_compressed (deflate)");
    // float32 in Fortran order, labels 0/1 as uint8: the CSV's values rounded to f32.
    let d = Dataset::load_with_labels(
        &fixture("numpy/mixture_X_f32_fortran.npy"),
        Some(&fixture("numpy/mixture_y01_u8.npy")),
    )
    .unwrap();
    let c = Dataset::load(&csv).unwrap();
    assert_eq!((d.n, d.d, &d.y), (c.n, c.d, &c.y));
    assert!(d.x.iter().zip(&c.x).all(|(a, b)| *a == (*b as f32) as f64));
    assert!(d.x != c.x);
}

#[test]
fn numpy_data_in_every_command_and_in_scenarios() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, y) = (fixture("numpy/mixture_X.npy"), fixture("numpy/mixture_y.npy"));
    let data = ["--data", x.to_str().unwrap(), "--labels", y.to_str().unwrap()];
    for (cmd, extra) in [
        ("flow", vec!["--width", "4", "--until-s", "2"]),
        ("descent", vec!["--width", "4", "--step-size", "0.1", "--steps", "5"]),
        ("maxmargin", vec!["--width", "4", "--test-points", "10"]),
    ] {
        let o = bin().arg(cmd).args(data).args(&extra).arg("--json").output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A sweep on X.npy + y.npy gives the runs.csv of the same sweep on the CSV.
    let sweep = |data: &[&str], out: &Path| {
        let o = bin()
            .args(["sweep", "descent", "--width", "4", "--step-size", "0.1", "--steps", "5", "--seed", "0,1"])
            .args(data)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("runs.csv")).unwrap()
    };
    let csv = fixture("mixture_n10_d50.csv");
    assert_eq!(sweep(&data, &tmp.path().join("s1")), sweep(&["--data", csv.to_str().unwrap()], &tmp.path().join("s2")));
    let npz = fixture("numpy/mixture_compressed.npz");
    let o = bin().args(["flow", "--width", "4", "--until-s", "2", "--json", "--data"]).arg(&npz).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A scenario naming X.npy and its labels (paths relative to the scenario file).
    std::fs::copy(&x, tmp.path().join("X.npy")).unwrap();
    std::fs::copy(&y, tmp.path().join("y.npy")).unwrap();
    let sc = tmp.path().join("np.toml");
    std::fs::write(&sc, "data = \"X.npy\"\nlabels = \"y.npy\"\nwidth = 4\nuntil_log10_time = 3\n").unwrap();
    let p = marginflow::experiments::validate::prepare_file(&sc).unwrap();
    assert_eq!(p.data.hash(), Dataset::load(&fixture("mixture_n10_d50.csv")).unwrap().hash());
}

#[test]
fn numpy_data_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let x = fixture("numpy/mixture_X.npy");
    expect_bad_path(&x, None, "give the labels with --labels y.npy");
    let run = |args: &[&Path]| {
        let mut c = check(args[0]);
        c.arg("--labels").arg(args[1]);
        one_line_failure(&c.output().unwrap(), "labels")
    };
    let err = run(&[&x, &x]);
    assert!(err.contains("--labels has shape (10, 50) but the 10 points need (10,)"), "{err}");
    let two = dir.path().join("y2.npy");
    npy::write_npy(&two, &[10], &[2.0; 10]).unwrap();
    let err = run(&[&x, &two]);
    assert!(err.contains("--labels[0] = 2 is not one of -1, 0, +1: map the two classes"), "{err}");
    let err = run(&[&fixture("numpy/mixture.npz"), &two]);
    assert!(err.contains("holds its own labels"), "{err}");
    // An archive without y names what it holds; a float16 array names its dtype.
    expect_bad_path(
        &fixture("numpy/mixture_no_y.npz"),
        None,
        "holds the arrays [points]; a data set needs X (n × d) and y (n)",
    );
    let half = dir.path().join("h.npy");
    std::fs::write(&half, npy_bytes(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", &[0; 4])).unwrap();
    let err = run(&[&x, &half]);
    assert!(err.contains("dtype '<f2' is not supported: use float64 or float32"), "{err}");
    let o = bin()
        .args(["gen", "--kind", "gaussian", "--n", "4", "--d", "4", "--out"])
        .arg(dir.path().join("g.npy"))
        .output()
        .unwrap();
    assert!(one_line_failure(&o, "gen npy").contains("NumPy files are read only"));
}
