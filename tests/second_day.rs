//! Issue 25, "a researcher's second day", through the real binary: `gen` keeps an existing file,
//! a run finds its moved data, a finished run resumed without a horizon says so.

use std::path::Path;
use std::process::Output;

mod common;
use common::{bin, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit status 2 and one stderr line, returned.
fn bad(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn gen_refuses_an_existing_file_without_force() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("g.json");
    let gen = |seed: &str, force: bool| {
        let mut c = bin();
        c.args(["gen", "--kind", "gaussian", "--n", "6", "--d", "30", "--seed", seed, "--out", s(&out)]);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    assert!(gen("1", false).status.success());
    let first = std::fs::read(&out).unwrap();
    // The same data again: nothing to refuse, nothing rewritten.
    let again = gen("1", false);
    assert!(again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already holds this data set"));
    let err = bad(&gen("2", false));
    assert!(err.contains("--out") && err.contains("holds other data") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), first, "the file was changed");
    assert!(gen("2", true).status.success());
    assert_ne!(std::fs::read(&out).unwrap(), first);
    // Not a data file at all: refused too.
    std::fs::write(&out, "notes").unwrap();
    assert!(bad(&gen("1", false)).contains("the file exists"));
}

#[test]
fn resume_takes_moved_data_after_checking_its_hash() {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 8, 40, 3);
    let other = common::data_file(t.path(), 8, 40, 4);
    let run = t.path().join("run");
    ok(bin().args(["flow", "--data", s(&data), "--width", "4", "--until-log10-time", "10", "-q", "--out", s(&run)]));
    let moved = t.path().join("moved.json");
    std::fs::rename(&data, &moved).unwrap();
    let resume = |extra: &[&str]| {
        bin().args(["flow", "--resume", s(&run), "--until-log10-time", "20", "-q"]).args(extra).output().unwrap()
    };
    let err = bad(&resume(&[]));
    assert!(err.contains("give its new path with --data") && err.contains("cannot read"), "{err}");
    let err = bad(&resume(&["--data", s(&other)]));
    assert!(err.contains("differs from the run's") && err.contains(s(&other)), "{err}");
    assert!(resume(&["--data", s(&moved)]).status.success());
    // The new path is recorded: the next resume needs no --data.
    assert!(std::fs::read_to_string(run.join("data_path")).unwrap().contains("moved.json"));
    let o = bin().args(["flow", "--resume", s(&run), "--until-log10-time", "30", "-q"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn resume_of_a_finished_run_without_a_horizon_says_so() {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 8, 40, 5);
    let run = t.path().join("run");
    ok(bin().args(["flow", "--data", s(&data), "--width", "4", "--until-log10-time", "10", "-q", "--out", s(&run)]));
    let err = bad(&bin().args(["flow", "--resume", s(&run)]).output().unwrap());
    assert!(
        err.contains("already reached its horizon (--until-log10-time 10") && err.contains("nothing to do"),
        "{err}"
    );
}

/// Every link and path the docs give is inside the repository: no `../` out of it, no
/// `shared/` design notes that a clone does not have; relative Markdown links resolve.
#[test]
fn docs_link_nothing_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files =
        vec![root.join("README.md"), root.join("validation/README.md"), root.join("examples/quickstart.py")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("shared/DESIGN.md") && !text.contains("shared/STYLE.md"),
            "{} names shared/",
            f.display()
        );
        // Markdown links [text](target): relative targets must exist.
        for (k, _) in text.match_indices("](") {
            let rest = &text[k + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = f.parent().unwrap().join(target);
            assert!(resolved.exists(), "{}: link {target} does not resolve", f.display());
            let canon = resolved.canonicalize().unwrap();
            assert!(canon.starts_with(root.canonicalize().unwrap()), "{}: {target} leaves the repository", f.display());
        }
    }
}

/// README, quickstart and docs agree with each other and with the code on what row 13 of
/// issue 25 found them disagreeing about.
#[test]
fn docs_agree_on_rates_defaults_and_claims() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    // The position gap 1 − cos falls like 1/s² everywhere it is said.
    for f in ["README.md", "examples/quickstart.py", "docs/precision.md"] {
        let text = read(f).replace('\n', " ");
        for (k, _) in text.match_indices("position gap") {
            let window: String = text[k..].chars().take(70).collect();
            if let Some(j) = window.find("like 1/s") {
                let after = &window[j + "like 1/s".len()..];
                assert!(after.starts_with('²') || after.starts_with("^2"), "{f}: {window}");
            }
        }
    }
    // The descent default initialization scale, as --help and the README give it.
    let d = marginflow::descent::DescentSettings::default();
    let scale = match d.model.init {
        marginflow::model::network::Init::Scale(w) => w,
        _ => unreachable!(),
    };
    let help = String::from_utf8(bin().args(["descent", "--help"]).output().unwrap().stdout).unwrap();
    assert!(help.contains(&format!("[default: {scale:e}]")), "{help}");
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("the\ndefault `--init-scale` is {scale:e}"))
            || readme.contains(&format!("default `--init-scale` is {scale:e}"))
    );
    assert!(!readme.contains("default 1/√d"));
    // Every claim of validate is named in README and validation/README.md.
    for c in marginflow::experiments::validate::ClaimKind::ALL {
        let name = format!("`{}`", c.name());
        assert!(readme.contains(&name), "README lacks {name}");
        assert!(read("validation/README.md").contains(&name), "validation/README.md lacks {name}");
    }
}

/// `flow`'s last line and summary.json's `verdict`: which point the flow reached. Nearly
/// orthogonal data reach the theory pattern's W*; n = 50 points in d = 2000 (far from the
/// theory's d ≳ n² log n) reach a certified KKT point of their own pattern, not the theory's.
#[test]
fn flow_ends_with_its_verdict() {
    let t = tempfile::tempdir().unwrap();
    let run = |n: usize, d: usize, width: &str, horizon: &str| {
        let data = common::data_file(t.path(), n, d, 1);
        let out = t.path().join(format!("run{n}"));
        let o = bin()
            .args(["flow", "--data", s(&data), "--width", width, "--until-log10-time", horizon, "-q", "--out", s(&out)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8(o.stderr).unwrap();
        let last = err.lines().last().unwrap().to_string();
        (last, common::summary(&out))
    };
    let (line, summary) = run(10, 500, "4", "30");
    assert!(line.starts_with("limit: certified KKT point of its own pattern (rank "), "{line}");
    assert!(
        line.contains("; theory pattern: reached (velocity gap ") && line.contains("margin ratio 1.0000)"),
        "{line}"
    );
    assert_eq!(summary["verdict"]["text"], line.as_str());
    assert_eq!(summary["verdict"]["theory_pattern"]["reached"], true);
    assert_eq!(summary["verdict"]["limit"]["kind"], "certified");
    let (line, summary) = run(50, 2000, "32", "100");
    assert!(line.starts_with("limit: certified KKT point of its own pattern"), "{line}");
    assert!(line.contains("theory pattern: not reached (velocity gap "), "{line}");
    let gap = summary["verdict"]["theory_pattern"]["velocity_gap"].as_f64().unwrap();
    assert!(gap > 1e-8 && gap == summary["reference"]["velocity_gap"].as_f64().unwrap(), "{gap}");
}

/// runs.csv of a flow sweep: s, log10 t, the references' gaps, KKT numbers, the verdict, and
/// the stable rank of W(0) (the same as descent's step 0 from the same initialization).
#[test]
fn flow_sweep_runs_csv_has_the_flow_columns() {
    let t = tempfile::tempdir().unwrap();
    let data = common::data_file(t.path(), 10, 500, 2);
    let out = t.path().join("sw");
    ok(bin().args(["sweep", "flow", "--data", s(&data), "--width", "4", "--until-log10-time", "20", "--out", s(&out)]));
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row = lines.next().unwrap();
    // The verdict (quoted, with commas) is the last field before `error`.
    let (head, verdict) = row.split_once(",\"").unwrap();
    let fields: Vec<&str> = head.split(',').collect();
    let col = |name: &str| fields[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"))];
    for c in
        ["s", "log10_time", "cosine_velocity", "velocity_gap", "position_gap", "multiplier_error", "kkt_stationarity"]
    {
        assert!(col(c).parse::<f64>().is_ok(), "{c} = {:?} in {row}", col(c));
    }
    assert!((col("log10_time").parse::<f64>().unwrap() - 20.0).abs() < 1e-9, "the horizon");
    assert_eq!(col("theory_pattern_reached"), "true");
    assert!(verdict.starts_with("limit: certified KKT point"), "{verdict}");
    let o = bin()
        .args(["descent", "--data", s(&data), "--width", "4", "--step-size", "0.1", "--steps", "1", "--json"])
        .output()
        .unwrap();
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(col("initial_stable_rank").parse::<f64>().unwrap(), d["initial_stable_rank"].as_f64().unwrap());
}
