//! What a new user trips over (issue 15): one test per item, each checked against something
//! computed independently of the code path it tests (bytes of files, the norm of W.npy, the
//! library defaults, clap's parse).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
use common::{bin, data_file, early, ok, read, summary};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `flow` on `data` with width 8, leak 0.2 and extra flags.
fn flow(data: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = bin();
    c.args(["flow", "--data", s(data), "--width", "8", "--leak", "0.2"]).args(extra);
    c
}

/// The f64 payload of a C-order float64 .npy file (little-endian, header skipped).
fn npy_values(p: &Path) -> Vec<f64> {
    let b = read(p);
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hlen = if b[6] == 1 { u16::from_le_bytes([b[8], b[9]]) as usize + 10 } else { unreachable!() };
    b[hlen..].chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// The files of a folder, sorted (relative paths).
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn rows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("trajectory.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Item 1: a resumed run keeps `--save-weights`: W.npy is rewritten at the new end, and its
/// Frobenius norm (computed here from the file's bytes) is the resumed summary's.
#[test]
fn item01_resume_keeps_save_weights() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 20, 1000, 4);
    let run = t.path().join("run");
    ok(&mut flow(&data, &["--until-log10-time", "10", "--save-weights", "--out", s(&run)]));
    let first = read(&run.join("W.npy"));
    ok(bin().args(["flow", "--resume", s(&run), "--until-log10-time", "40"]));
    let w = npy_values(&run.join("W.npy"));
    assert_ne!(read(&run.join("W.npy")), first, "W.npy was left from the first leg");
    let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
    let sm = summary(&run);
    assert!((sm["log10_time"].as_f64().unwrap() - 40.0).abs() < 1e-6);
    let fro = sm["frobenius_norm"].as_f64().unwrap();
    assert!((norm - fro).abs() <= 1e-9 * fro, "‖W.npy‖_F = {norm}, summary {fro}");
    let m: Value = serde_json::from_slice(&read(&run.join("run.json"))).unwrap();
    assert_eq!(m["save_weights"], true);
}

/// Item 2: one run per folder. A different run into a used folder is refused (exit 2, one line,
/// nothing touched); `--force` replaces it without leaving the old W.npy; a smaller sweep with
/// `--force` leaves no trajectory of the larger one.
#[test]
fn item02_one_run_per_folder() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 10, 200, 1);
    let run = t.path().join("run");
    ok(&mut flow(&data, &["--until-log10-time", "5", "--save-weights", "--out", s(&run)]));
    let before: Vec<(String, Vec<u8>)> = files(&run).into_iter().map(|f| (f.clone(), read(&run.join(&f)))).collect();
    let out = bin()
        .args([
            "flow",
            "--data",
            s(&data),
            "--width",
            "3",
            "--leak",
            "0.2",
            "--until-log10-time",
            "5",
            "--out",
            s(&run),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--out") && err.contains("--force"), "{err}");
    let after: Vec<(String, Vec<u8>)> = files(&run).into_iter().map(|f| (f.clone(), read(&run.join(&f)))).collect();
    assert_eq!(before, after, "a refused run changed the folder");
    // The same run again is a rerun, allowed.
    ok(&mut flow(&data, &["--until-log10-time", "5", "--save-weights", "--out", s(&run)]));
    // --force: the new run wrote no weights, and none are left.
    ok(bin()
        .args(["flow", "--data", s(&data), "--width", "3", "--leak", "0.2", "--until-log10-time", "5", "--force"])
        .args(["--out", s(&run)]));
    assert!(!run.join("W.npy").exists(), "stale W.npy after --force");
    assert_eq!(summary(&run)["shape"]["m"], 3);
    // A foreign file survives --force.
    std::fs::write(run.join("notes.txt"), b"mine").unwrap();
    ok(bin()
        .args(["flow", "--data", s(&data), "--width", "2", "--leak", "0.2", "--until-log10-time", "5", "--force"])
        .args(["--out", s(&run)]));
    assert_eq!(read(&run.join("notes.txt")), b"mine");

    // Sweeps: 3 runs, then 1 run with --force.
    let sw = t.path().join("sweep");
    let sweep = |widths: &str, force: bool| {
        let mut c = bin();
        c.args(["sweep", "descent", "--n", "6", "--d", "50", "--width", widths, "--step-size", "0.1", "--steps", "3"]);
        c.args(["--out", s(&sw)]);
        if force {
            c.arg("--force");
        }
        c
    };
    ok(&mut sweep("2,4,6", false));
    assert!(sw.join("trajectories/run-2.jsonl").exists());
    let refused = sweep("2", false).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    ok(&mut sweep("2", true));
    let traj: Vec<String> = files(&sw).into_iter().filter(|f| f.starts_with("trajectories")).collect();
    assert_eq!(traj, vec!["trajectories/run-0.jsonl".to_string()], "stale sweep trajectories");
}

/// Item 2: `maxmargin --pattern-from DIR` never reads a W.npy of another run: a W.npy copied in
/// from another run (same shape) is refused with exit 2; the run's own W.npy is accepted.
#[test]
fn item02_pattern_from_verifies_the_weights() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 10, 200, 1);
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    ok(&mut flow(&data, &["--until-log10-time", "5", "--save-weights", "--out", s(&a)]));
    ok(&mut flow(&data, &["--until-log10-time", "5", "--seed", "7", "--save-weights", "--out", s(&b)]));
    let mm = |dir: &Path| {
        bin()
            .args([
                "maxmargin",
                "--data",
                s(&data),
                "--width",
                "8",
                "--leak",
                "0.2",
                "--pattern-from",
                s(dir),
                "--json",
            ])
            .output()
            .unwrap()
    };
    assert_eq!(mm(&a).status.code(), Some(0));
    assert_ne!(read(&a.join("W.npy")), read(&b.join("W.npy")));
    std::fs::copy(b.join("W.npy"), a.join("W.npy")).unwrap();
    let out = mm(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--pattern-from") && err.contains("W.npy"), "{err}");
}

/// Item 3: no repeated row, fresh or resumed (s strictly increases), and `data_path` is in the
/// README's list of `flow --out` files.
#[test]
fn item03_trajectory_rows_are_not_repeated() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 20, 1000, 4);
    let run = t.path().join("run");
    ok(&mut flow(&data, &["--until-log10-time", "20", "--out", s(&run)]));
    let check = |dir: &Path| {
        let r = rows(dir);
        for w in r.windows(2) {
            assert!(w[1]["s"].as_f64().unwrap() > w[0]["s"].as_f64().unwrap(), "repeated row: {} then {}", w[0], w[1]);
        }
        r.len()
    };
    let n1 = check(&run);
    ok(bin().args(["flow", "--resume", s(&run), "--until-log10-time", "200"]));
    assert!(check(&run) > n1);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("`DIR/data_path`"), "README does not mention data_path");
}

/// Item 4: sweep.json records the values the runs used.
#[test]
fn item04_sweep_json_records_what_ran() {
    let t = tempfile::tempdir().unwrap();
    let sw = t.path().join("sw");
    ok(bin()
        .args(["sweep", "descent", "--n", "6", "--d", "50", "--width", "4", "--leak", "0.2", "--seed", "1,2"])
        .args(["--step-size", "0.1", "--steps", "3", "--out", s(&sw)]));
    let v: Value = serde_json::from_slice(&read(&sw.join("sweep.json"))).unwrap();
    assert_eq!(v["descent"]["model"]["leak"], 0.2, "{v}");
    assert_eq!(v["descent"]["model"]["width"], 4);
    assert_eq!(v["descent"]["model"]["seed"], serde_json::json!([1, 2]));
    assert_eq!(v["data"]["generated"]["n"], 6);
    assert!(v["flow"].is_null(), "the flow base settings were not used: {}", v["flow"]);
    // Each run's own record agrees.
    let runs = std::fs::read_to_string(sw.join("runs.jsonl")).unwrap();
    assert!(runs.lines().all(|l| l.contains("\"leak\":0.2")), "{runs}");
}

/// Item 5: a run that ends before its horizon exits 3 (summary written), one that reaches it 0;
/// resuming to a horizon already passed exits 2 and says so, leaving the folder as it was.
#[test]
fn item05_early_end_exit_status() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 20, 1000, 4);
    let run = t.path().join("run");
    early(&mut flow(&data, &["--until-log10-time", "20", "--max-steps", "10", "--out", s(&run)]));
    assert_eq!(summary(&run)["status"], "max_steps");
    ok(bin().args(["flow", "--resume", s(&run), "--until-log10-time", "20"]));
    assert_eq!(summary(&run)["status"], "reached");
    let before = read(&run.join("summary.json"));
    let out = bin().args(["flow", "--resume", s(&run), "--until-log10-time", "10"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("already") && err.contains("--until-log10-time 10"), "{err}");
    assert_eq!(read(&run.join("summary.json")), before);
    // descent: diverged is an early end too.
    let d = bin()
        .args(["descent", "--data", s(&data), "--width", "4", "--step-size", "1e200", "--steps", "5"])
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(3));
}

/// Item 6: a closed stdout ends the run quietly: no panic, no backtrace, exit 0.
#[test]
fn item06_broken_pipe_is_quiet() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 20, 1000, 4);
    for args in [
        vec!["flow", "--data", s(&data), "--width", "8", "--until-log10-time", "50", "--json"],
        vec!["check", "--data", s(&data)],
    ] {
        let mut child = bin().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader goes away before anything is written
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// Item 7: a scenario without `name` takes the file stem; every scenario key is documented in
/// validation/README.md.
#[test]
fn item07_scenario_name_defaults_to_stem_and_keys_are_documented() {
    let t = tempfile::tempdir().unwrap();
    let sc = t.path().join("tiny_case.toml");
    std::fs::write(&sc, "# a comment first\nwidth = 4\nleak = 0.2\nuntil_log10_time = 5\n[generate]\nn = 6\nd = 100\n")
        .unwrap();
    let p = marginflow::experiments::validate::prepare_file(&sc).unwrap();
    assert_eq!(p.scenario.name, "tiny_case");
    let keys = serde_json::to_value(&p.scenario).unwrap();
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("validation/README.md")).unwrap();
    let mut all: Vec<String> = keys.as_object().unwrap().keys().cloned().collect();
    all.extend(keys["thresholds"].as_object().unwrap().keys().cloned());
    all.extend(keys["generate"].as_object().unwrap().keys().cloned());
    for k in all {
        assert!(doc.contains(&format!("`{k}`")) || doc.contains(&format!("[{k}]")), "key {k} not documented");
    }
    let out = t.path().join("v");
    let run = bin().args(["validate", s(&sc), "--out", s(&out)]).output().unwrap();
    assert_ne!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("## tiny_case"));
}

/// Item 8: a leak outside [0, 1) (`--leak 1`) is refused with one and the same message by every
/// command (`--leak 0`, the plain ReLU, is accepted since issue 24).
#[test]
fn item08_one_leak_message_everywhere() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 6, 50, 1);
    let sc = t.path().join("z.toml");
    std::fs::write(&sc, "leak = 1\n[generate]\nn = 6\nd = 50\n").unwrap();
    let d = s(&data);
    let vout = t.path().join("v");
    let cases: Vec<Vec<&str>> = vec![
        vec!["flow", "--data", d, "--width", "4", "--leak", "1"],
        vec!["check", "--data", d, "--leak", "1"],
        vec!["maxmargin", "--data", d, "--width", "4", "--leak", "1"],
        vec!["descent", "--data", d, "--width", "4", "--leak", "1", "--step-size", "0.1", "--steps", "2"],
        vec!["validate", s(&sc), "--out", s(&vout)],
    ];
    let mut messages = Vec::new();
    for c in &cases {
        let out = bin().args(c).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{c:?}");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let tail = err.rsplit_once("leak").map(|(_, r)| r.trim_start_matches('`').to_string()).unwrap();
        messages.push(tail);
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
}

/// Item 10: `--help` shows the defaults the library uses and the exit statuses; the README's
/// command list has every flag of `flow`, `check` and `maxmargin`.
#[test]
fn item10_help_defaults_and_readme_flags() {
    let d = marginflow::flow::FlowSettings::default();
    let help = String::from_utf8(bin().args(["flow", "--help"]).output().unwrap().stdout).unwrap();
    let init = match d.model.init {
        marginflow::model::network::Init::Scale(w) => w,
        _ => unreachable!(),
    };
    for needle in [
        format!("[default: {:e}", d.rtol),
        format!("[default: {:e}", d.atol),
        format!("[default: {init:e}]"),
        "[default: auto".into(),
        "[default: on]".into(),
        format!("[default: {}]", d.precision),
        "t = 10^100".into(),
        "Exit status:".into(),
        "3  the run ended before its horizon".into(),
    ] {
        assert!(help.contains(&needle), "flow --help lacks {needle:?}");
    }
    assert_eq!(d.horizon, marginflow::flow::FlowHorizon::Log10Time(100.0));
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for cmd in ["flow", "check", "maxmargin", "descent", "validate", "sweep"] {
        let h = String::from_utf8(bin().args([cmd, "--help"]).output().unwrap().stdout).unwrap();
        for flag in h.split_whitespace().filter(|w| w.starts_with("--") && w.len() > 2) {
            let flag = flag.trim_end_matches([',', '.', ']', ')', ':', ';', '`']).split(['=', '/']).next().unwrap();
            if ["--help", "--version"].contains(&flag) || flag.contains('<') {
                continue;
            }
            assert!(readme.contains(flag), "README lacks {cmd} {flag}");
        }
    }
}

/// Item 9: with odd width the report names what `balanced` is, and never says "outer layer
/// balanced" beside "not balanced". Item 14: work counters in words, the interpolation threshold
/// explained, the loss in lowercase.
#[test]
fn item09_item14_report_text() {
    let t = tempfile::tempdir().unwrap();
    let sc = t.path().join("odd.toml");
    std::fs::write(&sc, "width = 5\nleak = 0.2\nuntil_log10_time = 20\n[generate]\nn = 6\nd = 300\nseed = 2\n")
        .unwrap();
    let out: PathBuf = t.path().join("v");
    let run = bin().args(["validate", s(&sc), "--out", s(&out)]).output().unwrap();
    assert_ne!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("outer layer balanced,"), "{md}");
    assert!(md.contains("odd m (3 entries +1/√m, 2 entries −1/√m"), "{md}");
    assert!(md.contains("with odd width m = 5"), "{md}");
    assert!(!md.contains("Work: `{"), "raw JSON work line");
    assert!(md.contains("accepted steps") && md.contains("right-hand sides"));
    assert!(md.contains("log10(log 2 / n)"));
    assert!(!md.contains("Logistic"));
}

/// Item 11: off a terminal, `flow` and `validate` print plain progress lines on stderr (here
/// every 0 s, the hidden `--progress-every`), naming s, log10 t, steps and kinks (flow) or the
/// scenario and its stage (validate); `--quiet` prints none. stdout stays the JSON alone.
#[test]
fn item11_progress_lines_and_quiet() {
    let t = tempfile::tempdir().unwrap();
    let data = data_file(t.path(), 20, 1000, 4);
    let base = ["flow", "--data", s(&data), "--width", "8", "--until-log10-time", "50", "--json"];
    let out = bin().args(base).args(["--progress-every", "0"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("flow: s ")).collect();
    assert!(lines.len() > 10, "{err}");
    assert!(lines.iter().all(|l| l.contains("log10 t") && l.contains("steps") && l.contains("kinks")));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The last progress line names the accepted steps of the summary.
    let acc = v["statistics"]["accepted"].as_u64().unwrap();
    assert!(lines.last().unwrap().contains(&format!("steps {acc} ")), "{} vs {acc}", lines.last().unwrap());
    let quiet = bin().args(base).args(["--progress-every", "0", "--quiet"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("flow: s "));

    let sc = t.path().join("p.toml");
    std::fs::write(&sc, "width = 4\nleak = 0.2\nuntil_log10_time = 5\n[generate]\nn = 6\nd = 100\n").unwrap();
    let v = bin().args(["validate", s(&sc), "--out", t.path().join("v").to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(err.contains("validate: p: flow to t = 10^5") && err.contains("validate: p: claims"), "{err}");
    let v =
        bin().args(["validate", s(&sc), "--quiet", "--out", t.path().join("v").to_str().unwrap()]).output().unwrap();
    assert!(!String::from_utf8_lossy(&v.stderr).contains("flow to t"));
}

/// The text of every `<text>` element of an SVG.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
        .collect()
}

/// Item 12 (revised by issue 25 item 7): the scenario plots are against log10 t with s on the
/// top axis, tick labels are short (never `9.999999999999999e-6`), reference lines stay inside the data's s range, the
/// singular-value plot says which values it shows.
#[test]
fn item12_scenario_plots_are_readable() {
    let t = tempfile::tempdir().unwrap();
    let sc = t.path().join("p.toml");
    std::fs::write(&sc, "width = 16\nleak = 0.2\nuntil_log10_time = 100\n[generate]\nn = 10\nd = 500\n").unwrap();
    let out = t.path().join("v");
    let run = bin().args(["validate", s(&sc), "--quiet", "--out", s(&out)]).output().unwrap();
    assert_ne!(run.status.code(), Some(2));
    for kind in ["loss", "margin", "singular-values", "gaps", "pattern"] {
        let svg = std::fs::read_to_string(out.join(format!("p-{kind}.svg"))).unwrap();
        let texts = svg_texts(&svg);
        // Issue 25 item 7: against log10 t (the theorems' time), s on the top axis.
        assert!(texts.iter().any(|x| x == "log10 t (physical time)"), "{kind}: {texts:?}");
        assert!(texts.iter().any(|x| x == "normalized time s"), "{kind}: no s axis: {texts:?}");
        for x in &texts {
            if x.parse::<f64>().is_ok()
                || x.contains('e') && x.replace(['e', '-', '.'], "").chars().all(|c| c.is_ascii_digit())
            {
                assert!(x.len() <= 6, "{kind}: unreadable tick {x:?}");
            }
        }
        if kind == "singular-values" {
            assert!(texts.iter().any(|x| x.contains("top 8 of 16 singular values")), "{texts:?}");
        }
    }
}

/// Item 12: tick labels of powers of ten computed in floating point read as powers of ten.
#[test]
fn item12_tick_labels() {
    use marginflow::experiments::plot::fmt_tick;
    assert_eq!(fmt_tick(9.999999999999999e-6), "1e-5");
    assert_eq!(fmt_tick(1e4), "1e4");
    assert_eq!(fmt_tick(0.30000000000000004), "0.3");
    assert_eq!(fmt_tick(123.456), "123");
    assert_eq!(fmt_tick(2.5e-7), "2.5e-7");
}

/// Item 13: the descent step plot shows step 0 (x = step + 1 = 1 on the log axis) and the one-step
/// drop, with one distinct marker shape per run.
#[test]
fn item13_step_plot_shows_step_zero() {
    let t = tempfile::tempdir().unwrap();
    let sw = t.path().join("sw");
    ok(bin().args(["sweep", "descent", "--kind", "mixture", "--n", "10", "--d", "400", "--width", "20"]).args([
        "--init-scale",
        "1e-6,1e-4,1",
        "--init-relative",
        "--step-size",
        "0.05",
        "--steps",
        "20",
        "--out",
        s(&sw),
    ]));
    let svg = std::fs::read_to_string(sw.join("stable_rank_vs_step.svg")).unwrap();
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|x| x.contains("1 = initialization")), "{texts:?}");
    assert!(texts.iter().any(|x| x == "1"), "no tick at step + 1 = 1: {texts:?}");
    // Three runs, three marker kinds: circles, triangles (polygons), crosses (lines).
    assert!(svg.contains("<circle") && svg.contains("<polygon"), "markers missing");
    // Step 0 is in every run's trajectory, so every line starts at x = 1.
    for k in 0..3 {
        let rows = std::fs::read_to_string(sw.join(format!("trajectories/run-{k}.jsonl"))).unwrap();
        let first: Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
        assert_eq!(first["step"], 0);
    }
}

/// Item 15: the README's numbers are the ones a rerun gives: the SEULEX step counts of the deep
/// run, and the fitted slope of 1 − cos(W, W*) against 1/s (2, not 1).
#[test]
fn item15_readme_numbers_match_a_rerun() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = |key: &str| -> String {
        let i = readme.find(key).unwrap_or_else(|| panic!("README lacks {key:?}"));
        readme[i + key.len()..].split_whitespace().next().unwrap().trim_end_matches([',', '.']).to_string()
    };
    let accepted: u64 = after("rank-(n+1) one by Woodbury in n×n) takes\n").parse().unwrap();
    let rejected: u64 = after("accepted and ").parse().unwrap();
    let slope: f64 = after("over the last decade gives b = ").parse().unwrap();

    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("stiff6.json");
    ok(bin().args(["gen", "--kind", "gaussian", "--n", "6", "--d", "300", "--seed", "1", "--out", s(&data)]));
    let out = bin()
        .args(["flow", "--data", s(&data), "--width", "4", "--leak", "0.5", "--until-log10-time", "1e6"])
        .args(["--method", "seulex", "--json", "--quiet"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["statistics"]["accepted"].as_u64().unwrap(), accepted);
    assert_eq!(v["statistics"]["rejected"].as_u64().unwrap(), rejected);

    let gauss = Path::new(env!("CARGO_MANIFEST_DIR")).join("validation/gaussian.toml");
    let vdir = t.path().join("v");
    bin().args(["validate", s(&gauss), "--quiet", "--out", s(&vdir)]).output().unwrap();
    let r: Value = serde_json::from_slice(&read(&vdir.join("report.json"))).unwrap();
    let b = r["scenarios"][0]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["measurements"].as_array().unwrap().iter())
        .find(|m| m["name"] == "position-gap fit slope b")
        .and_then(|m| m["value"].as_f64())
        .unwrap();
    assert!((b - slope).abs() < 5e-4, "README slope {slope}, rerun {b}");
    assert!((b - 2.0).abs() < 0.05, "1 − cos falls like 1/s^{b}");
}
