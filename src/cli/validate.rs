//! `marginflow validate [SCENARIO.toml ...] [--out DIR]`: run scenarios (or the built-in default
//! suite), check the theorem's claims, write DIR/report.md, DIR/report.json, DIR/report.html and the
//! figures (SVG, with PNG and PDF beside each).
//! Exit 0 when every claim holds (or fails as expected), 1 when one fails, 2 for bad input.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use marginflow::experiments::validate::{self, PreparedScenario, Report, ScenarioReport};
use marginflow::experiments::{plot, render, report};
use marginflow::io::fsutil::write_atomic;
use marginflow::io::rundir;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Flags of `marginflow validate`.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Scenario files (TOML). Without any, the built-in default suite (the files in
    /// `validation/`, embedded in the binary) runs.
    pub scenarios: Vec<PathBuf>,
    /// Output directory for report.md, report.json, report.html and the figures (SVG, PNG, PDF).
    #[arg(long, default_value = "out/validate")]
    pub out: PathBuf,
    /// Replace another run in --out (removes only the files marginflow wrote there).
    #[arg(long)]
    pub force: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Check only this theorem (an id of `--list-theorems`): scenarios that do not check it are
    /// skipped, the others report only its claims.
    #[arg(long, value_name = "ID")]
    pub theorem: Option<String>,
    /// Print the theorems (id, kinds, claims, citation) and exit.
    #[arg(long)]
    pub list_theorems: bool,
    /// Seconds between plain progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = super::progress::PLAIN_EVERY, hide = true)]
    pub progress_every: f64,
}

/// The table of `--list-theorems`.
fn list_theorems() -> String {
    let mut out = String::from("| theorem | kinds | claims | citation |\n|---|---|---|---|\n");
    for t in validate::THEOREMS {
        let kinds: Vec<&str> = t.kinds.iter().map(|k| k.name()).collect();
        let claims: Vec<&str> = t.claims.iter().map(|c| c.name()).collect();
        out.push_str(&format!("| {} | {} | {} | {} |\n", t.id, kinds.join(", "), claims.join(", "), t.citation));
    }
    out
}

/// Parse and load every scenario (the default suite without files), names unique.
fn load_scenarios(args: &ValidateArgs) -> anyhow::Result<Vec<PreparedScenario>> {
    let prepared: Vec<PreparedScenario> = if args.scenarios.is_empty() {
        validate::prepare_default_suite()?
    } else {
        args.scenarios.iter().map(|p| validate::prepare_file(p)).collect::<Result<_, _>>()?
    };
    let mut prepared = prepared;
    if let Some(id) = &args.theorem {
        if validate::theorem(id).is_none() {
            anyhow::bail!(
                "--theorem {id}: unknown theorem (known: {})",
                validate::THEOREMS.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
            );
        }
        prepared.retain_mut(|p| p.restrict_to(id));
        if prepared.is_empty() {
            anyhow::bail!("--theorem {id}: no scenario checks it");
        }
    }
    let mut names = std::collections::HashSet::new();
    for p in &prepared {
        if !names.insert(p.scenario.name.clone()) {
            anyhow::bail!("{}: key `name`: scenario name {:?} is used twice", p.source, p.scenario.name);
        }
    }
    Ok(prepared)
}

/// A progress bar on a terminal; off one, a first line (the rest come from [`heartbeat`]).
fn progress_bar(quiet: bool, total: usize) -> Option<ProgressBar> {
    if quiet {
        None
    } else if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} scenarios {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(b)
    } else {
        eprintln!("validate: running {total} scenario(s)");
        None
    }
}

/// Which scenario is on which stage, since when.
type Running = Mutex<BTreeMap<String, (Instant, String)>>;

/// Off a terminal: every `every` seconds until `done`, a line naming what is still running.
fn heartbeat(done: &AtomicBool, running: &Running, every: f64) {
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed().as_secs_f64() >= every {
            last = Instant::now();
            let now: Vec<String> = running
                .lock()
                .map(|m| {
                    m.iter().map(|(k, (t, st))| format!("{k}: {st} ({:.0} s)", t.elapsed().as_secs_f64())).collect()
                })
                .unwrap_or_default();
            if !now.is_empty() {
                eprintln!("validate: running {}", now.join("; "));
            }
        }
    }
}

/// Plots, then the report that links them, into `out`; the manifest lists every file.
fn write_report(
    out: &std::path::Path,
    mut scenarios: Vec<ScenarioReport>,
    manifest: &mut rundir::Manifest,
) -> anyhow::Result<Report> {
    for s in scenarios.iter_mut() {
        let plots = plot::render_all(s)?;
        s.plots = plots.iter().map(|(f, _)| f.clone()).collect();
        for (f, svg) in &plots {
            write_atomic(&out.join(&f.file), svg.as_bytes())?;
            manifest.files.push(f.file.clone());
            // PNG and PDF beside every SVG (pure Rust, embedded font).
            let stem = f.file.strip_suffix(".svg").unwrap_or(&f.file);
            let png = format!("{stem}.png");
            write_atomic(&out.join(&png), &render::svg_to_png(svg, render::PNG_SCALE)?)?;
            let pdf = format!("{stem}.pdf");
            write_atomic(&out.join(&pdf), &render::svg_to_pdf(svg)?)?;
            manifest.files.extend([png, pdf]);
        }
    }
    let report = Report::new(scenarios);
    write_atomic(&out.join("report.json"), report::render_json(&report).as_bytes())?;
    write_atomic(&out.join("report.md"), report::render_markdown(&report).as_bytes())?;
    write_atomic(&out.join("report.html"), report::render_html(&report).as_bytes())?;
    manifest.files.extend(["report.json".to_string(), "report.md".to_string(), "report.html".to_string()]);
    manifest.save(out)?;
    Ok(report)
}

/// Run `marginflow validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    if args.list_theorems {
        print!("{}", list_theorems());
        return Ok(ExitCode::SUCCESS);
    }
    // Parse and load everything first, so bad input exits 2 before any work.
    let prepared = load_scenarios(&args)?;
    // The same scenarios (settings and data) into the same folder are the same run.
    let inputs: Vec<_> = prepared.iter().map(|p| (&p.scenario, &p.flow, p.data.hash())).collect();
    let mut manifest =
        rundir::Manifest::new(rundir::Command::Validate, rundir::identity(rundir::Command::Validate, &inputs));
    rundir::prepare_out_dir(&args.out, args.force, &manifest)?;

    let total = prepared.len();
    let bar = progress_bar(args.quiet, total);
    // Which scenario is on which stage, for the progress lines.
    let running: Running = Mutex::new(BTreeMap::new());
    let done = AtomicBool::new(false);
    let show = |line: String| match &bar {
        Some(b) => b.set_message(line),
        None if !args.quiet => eprintln!("validate: {line}"),
        None => {}
    };
    let results: Vec<anyhow::Result<ScenarioReport>> = std::thread::scope(|scope| {
        if bar.is_none() && !args.quiet {
            scope.spawn(|| heartbeat(&done, &running, args.progress_every));
        }
        let r = prepared
            .par_iter()
            .map(|p| {
                let name = p.scenario.name.clone();
                let stage = |st: &str| {
                    if let Ok(mut m) = running.lock() {
                        let e = m.entry(name.clone()).or_insert((Instant::now(), String::new()));
                        e.1 = st.to_string();
                    }
                    show(format!("{name}: {st}"));
                };
                let r = validate::run_scenario_with(p, &stage)
                    .with_context(|| format!("{}: scenario {:?}", p.source, p.scenario.name));
                if let Ok(mut m) = running.lock() {
                    m.remove(&name);
                }
                let line = match &r {
                    Ok(s) => {
                        let bad = s.claims.iter().filter(|c| c.verdict.fails_run()).count();
                        format!(
                            "{}: {} ({:.1} s)",
                            s.name,
                            if bad == 0 { "ok".to_string() } else { format!("{bad} claim(s) failed") },
                            s.wall_seconds
                        )
                    }
                    Err(e) => format!("{}: error: {}", p.scenario.name, super::one_line(e)),
                };
                match &bar {
                    Some(b) => {
                        b.inc(1);
                        b.println(line);
                    }
                    None if !args.quiet => eprintln!("validate: {line}"),
                    None => {}
                }
                r
            })
            .collect();
        done.store(true, Ordering::Relaxed);
        r
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // Stopped by SIGINT/SIGTERM: no report (nothing half-written), exit 3.
    marginflow_solvers::interrupt::check()?;
    let mut scenarios = Vec::with_capacity(total);
    for r in results {
        scenarios.push(r?);
    }

    let report = write_report(&args.out, scenarios, &mut manifest)?;
    for line in report::failure_lines(&report) {
        eprintln!("validate: {line}");
    }
    eprintln!(
        "validate: {} — wrote {}",
        if report.passed { "every claim holds or fails as expected" } else { "some claim failed" },
        args.out.join("report.md").display()
    );
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
