//! `marginflow validate` through the real binary.

use marginflow::experiments::validate::{ClaimKind, Report, Verdict};
use std::path::Path;

mod common;
use common::bin;

fn read_report(dir: &Path) -> Report {
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    serde_json::from_str(&text).expect("report.json parses as a typed Report")
}

#[test]
fn default_suite_passes_and_writes_report_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let o = bin().args(["validate", "--out"]).arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr: {stderr}");
    assert!(out.join("report.md").is_file());
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert!(svgs.len() >= 5, "{} svg files", svgs.len());
    for e in &svgs {
        let t = std::fs::read_to_string(e.path()).unwrap();
        assert!(t.contains("<svg") && t.contains("<text"), "{:?} is not an SVG with labels", e.path());
    }
    let report = read_report(&out);
    assert!(report.passed);
    assert_eq!(report.scenarios.len(), 9);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for s in &report.scenarios {
        assert!(md.contains(&format!("## {}", s.name)));
        for p in &s.plots {
            assert!(out.join(&p.file).is_file(), "plot {} linked but missing", p.file);
            assert!(md.contains(&format!("]({})", p.file)));
        }
        // The negative control fails exactly its listed claims; the others hold.
        for c in &s.claims {
            match c.verdict {
                Verdict::Fails | Verdict::UnexpectedlyHeld => panic!("{}: {:?}", s.name, c),
                Verdict::ExpectedFailure => assert!(s.scenario.expect_fail.contains(&c.claim)),
                _ => {}
            }
        }
    }
    // Independent check of the KKT claim on the Gaussian scenario: the velocity gap recorded in
    // the last trajectory row is below the threshold and the position gap shrinks along s.
    let g = report.scenarios.iter().find(|s| s.name == "gaussian").unwrap();
    let last = g.trajectory.last().unwrap();
    assert!(last.velocity_gap.unwrap() <= g.scenario.thresholds.velocity_gap);
    let late: Vec<f64> = g.trajectory.iter().rev().take(10).filter_map(|r| r.position_gap).collect();
    assert!(late.first().unwrap() < late.last().unwrap(), "position gap does not shrink: {late:?}");
    // Random outer layer: the linear-boundary claim is not applicable rather than failing.
    let r = report.scenarios.iter().find(|s| s.name == "random-outer").unwrap();
    let lb = r.claims.iter().find(|c| c.claim == ClaimKind::LinearBoundary).unwrap();
    assert_eq!(lb.verdict, Verdict::NotApplicable);
}

#[test]
fn low_dimensional_scenario_without_expect_fail_exits_1_naming_claims() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("low.toml");
    std::fs::write(
        &sc,
        "name = \"low\"\nwidth = 16\nleak = 0.2\nuntil_log10_time = 30\n\n[generate]\nkind = \"mixture\"\nn = 40\nd = 8\nseed = 4\nmean_norm = 1.5\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = bin().args(["validate"]).arg(&sc).arg("--out").arg(&out).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    let report = read_report(&out);
    assert!(!report.passed);
    let s = &report.scenarios[0];
    let failing: Vec<_> = s.claims.iter().filter(|c| c.verdict == Verdict::Fails).collect();
    assert!(failing.iter().any(|c| c.claim == ClaimKind::Kkt), "kkt should fail on d = 8: {:?}", s.claims);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for c in failing {
        let m = c.failing().next().expect("a failing claim has a failing measurement");
        let v = marginflow::experiments::report::fmt_num(m.value);
        let line = format!("{} FAILS: {} = {v}", c.claim.name(), m.name);
        assert!(stderr.contains(&line), "stderr lacks {line:?}: {stderr}");
        assert!(md.contains(&line), "report.md lacks {line:?}");
    }
    // The velocity gap in the report is the flow's own final row, far above the threshold.
    let vg = s.trajectory.last().unwrap().velocity_gap.unwrap();
    assert!(vg > 1e-3, "velocity gap {vg}");
}

#[test]
fn unknown_key_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("bad.toml");
    std::fs::write(&sc, "name = \"bad\"\nwidth = 4\nlearning_rate = 0.1\n[generate]\nn = 4\nd = 100\n").unwrap();
    let o = bin().args(["validate"]).arg(&sc).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("learning_rate") && stderr.contains("bad.toml"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
}

#[test]
fn bad_value_and_missing_data_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("leak.toml");
    std::fs::write(&sc, "name = \"x\"\nleak = 1.5\n[generate]\nn = 4\nd = 100\n").unwrap();
    let o = bin().args(["validate"]).arg(&sc).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("leak.toml") && stderr.contains("`leak`"), "{stderr}");
    let sc = dir.path().join("missing.toml");
    std::fs::write(&sc, "name = \"x\"\ndata = \"nope.json\"\n").unwrap();
    let o = bin().args(["validate"]).arg(&sc).arg("--out").arg(dir.path().join("o")).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.toml") && stderr.contains("nope.json"), "{stderr}");
}
