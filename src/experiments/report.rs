//! Rendering of a validation [`Report`]: Markdown (claims tables with measured values,
//! thresholds and verdicts, and relative links to the SVG plots) and JSON (the typed report).
//! Pure functions of the report value; the binary writes the files.

use crate::experiments::validate::{Comparison, Measurement, Report, ScenarioReport, Verdict};
use std::fmt::Write;

/// `report.json`: the report serialized (pretty).
pub fn render_json(report: &Report) -> String {
    // Serializing plain data (strings, numbers, vectors, maps with string keys) cannot fail.
    serde_json::to_string_pretty(report).expect("a Report serializes to JSON")
}

/// A number for tables: enough digits to see a 1e-8 gap, scientific where due.
pub fn fmt_num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(0.0) => "0".into(),
        Some(x) if x.is_infinite() => if x > 0.0 { "∞" } else { "−∞" }.into(),
        Some(x) if x.abs() >= 1e5 || x.abs() < 1e-3 => format!("{x:.4e}"),
        Some(x) => {
            let s = format!("{x:.6}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

/// A measured value for the tables. A gap 1 − cos that round-off made slightly negative (cos
/// computed as 1 + a few ulps) is shown as 0 with the raw value beside it.
pub fn fmt_value(m: &Measurement) -> String {
    match m.value {
        Some(v) if m.name.contains("1 − cos") && v < 0.0 && v > -1e-12 => {
            format!("0 (round-off: {})", fmt_num(Some(v)).replace('-', "−"))
        }
        v => fmt_num(v),
    }
}

/// The integrator's work counters in words ("402 accepted steps, 3 rejected, …"), or `None`
/// when the run recorded none.
pub fn work_text(stats: &serde_json::Value) -> Option<String> {
    let o = stats.as_object()?;
    let get = |k: &str| o.get(k).and_then(|v| v.as_u64());
    let mut parts = Vec::new();
    for (key, label) in [
        ("accepted", "accepted steps"),
        ("rejected", "rejected"),
        ("rhs_evaluations", "right-hand sides"),
        ("events", "kink events"),
        ("released", "released sliding modes"),
    ] {
        if let Some(v) = get(key) {
            parts.push(format!("{v} {label}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn fmt_threshold(m: &Measurement) -> String {
    let t = fmt_num(m.threshold);
    match m.comparison {
        Comparison::AtMost => format!("≤ {t}"),
        Comparison::Below => format!("< {t}"),
        Comparison::AtLeast => format!("≥ {t}"),
        Comparison::Reported => "—".into(),
    }
}

fn fmt_pass(m: &Measurement) -> &'static str {
    match (m.pass, m.gating) {
        (None, _) => "",
        (Some(true), true) => "✓",
        (Some(false), true) => "✗",
        (Some(true), false) => "(✓)",
        (Some(false), false) => "(✗)",
    }
}

/// One line per failing claim: "scenario: claim FAILS: measurement = v (threshold ≤ t); ...".
pub fn failure_lines(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        for c in s.claims.iter().filter(|c| c.verdict.fails_run()) {
            let what: Vec<String> = if c.verdict == Verdict::UnexpectedlyHeld {
                vec!["listed in expect_fail but held".into()]
            } else {
                c.failing().map(|m| format!("{} = {} (needs {})", m.name, fmt_value(m), fmt_threshold(m))).collect()
            };
            out.push(format!("{}: {} {}: {}", s.name, c.claim.name(), c.verdict.label(), what.join("; ")));
        }
    }
    out
}

fn scenario_markdown(md: &mut String, s: &ScenarioReport) {
    let g = &s.geometry;
    let sc = &s.scenario;
    let _ = writeln!(md, "## {}\n", s.name);
    let outer = if sc.outer == "balanced" && sc.width % 2 == 1 {
        format!(
            "`balanced` with odd m ({} entries +1/√m, {} entries −1/√m; exactly balanced needs even m)",
            sc.width.div_ceil(2),
            sc.width / 2
        )
    } else {
        format!("`{}`", sc.outer)
    };
    let loss = serde_json::to_value(sc.loss).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let _ = writeln!(md, "Source: `{}`. Data: n = {}, d = {} ({} positive, {} negative). Model: m = {}, γ = {}, outer layer {}, init scale {}, seed {}, {loss} loss.",
        s.source, g.n, g.d, g.positives, g.negatives, sc.width, sc.leak, outer, fmt_num(Some(sc.init_scale)), sc.seed);
    if let Some(dr) = &s.descent {
        let at = |k: u64| dr.rows.iter().find(|r| r.step == k).map(|r| r.stable_rank);
        let _ = writeln!(
            md,
            "Gradient descent, {} activation, step size {}, {} steps: status `{}`; stable rank {} (step 0), {} (1), {} (10), {} (T); final log10 L = {}; {:.2} s wall.\n",
            dr.activation,
            fmt_num(Some(dr.step_size)),
            dr.steps,
            dr.status,
            fmt_num(at(0)),
            fmt_num(at(1)),
            fmt_num(at(10)),
            fmt_num(at(dr.steps)),
            fmt_num(dr.rows.last().map(|r| r.log10_loss)),
            s.wall_seconds
        );
    } else {
        let _ = writeln!(
        md,
        "Flow to t = 10^{}: status `{}`, final s = {}, reference {} (QP normalized margin {}), {} restart(s), {:.2} s wall.\n",
        sc.until_log10_time,
        s.flow_status,
        fmt_num(s.final_s),
        if s.reference_certified { "certified" } else { "NOT certified" },
        fmt_num(s.reference_margin),
        s.restarts.len(),
        s.wall_seconds
    );
    }
    if let Some(work) = work_text(&crate::metrics::to_json_value(&s.statistics)) {
        let _ = writeln!(md, "Work: {work}.\n");
    }
    if !sc.expect_fail.is_empty() {
        let names: Vec<&str> = sc.expect_fail.iter().map(|c| c.name()).collect();
        let _ = writeln!(md, "Negative control: expected to fail: {}.\n", names.join(", "));
    }
    for tid in &s.theorems {
        let cite = crate::experiments::validate::theorem(tid).map_or("", |t| t.citation);
        let _ = writeln!(md, "### {tid}\n\n{cite}.\n");
        let _ = writeln!(md, "| claim | verdict | measurement | value | threshold | |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for c in s.claims.iter().filter(|c| &c.theorem == tid) {
            if c.measurements.is_empty() {
                let _ = writeln!(md, "| {} | {} | — | — | — | |", c.claim.name(), c.verdict.label());
            }
            for (k, m) in c.measurements.iter().enumerate() {
                let (name, verdict) = if k == 0 { (c.claim.name(), c.verdict.label()) } else { ("", "") };
                let mname = m.name.replace('|', "\\|");
                let _ = writeln!(
                    md,
                    "| {name} | {verdict} | {mname} | {} | {} | {} |",
                    fmt_value(m),
                    fmt_threshold(m),
                    fmt_pass(m)
                );
            }
        }
        let _ = writeln!(md);
    }
    let notes: Vec<String> =
        s.claims.iter().filter_map(|c| c.note.as_ref().map(|n| format!("- `{}`: {n}", c.claim.name()))).collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\nNotes:\n{}", notes.join("\n"));
    }
    if !s.restarts.is_empty() {
        let list: Vec<String> = s
            .restarts
            .iter()
            .map(|r| format!("seed {}: {} ({})", r.seed, fmt_num(r.normalized_margin), r.status))
            .collect();
        let _ = writeln!(md, "\nRestart normalized margins: {}.", list.join("; "));
    }
    if !s.plots.is_empty() {
        let _ = writeln!(md);
        for p in &s.plots {
            let _ = writeln!(md, "![{} — {}]({})\n", s.name, p.title, p.file);
            if let Some(stem) = p.file.strip_suffix(".svg") {
                let _ = writeln!(md, "[PNG]({stem}.png) · [PDF]({stem}.pdf)\n");
            }
        }
    }
    let _ = writeln!(md);
}

/// `report.md`: a summary table, then per scenario its claims table and plots.
pub fn render_markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# marginflow validation report\n");
    let _ = writeln!(
        md,
        "marginflow {}. Overall: **{}**.\n",
        report.version,
        if report.passed { "every claim holds or fails as expected" } else { "some claim failed" }
    );
    let _ = writeln!(md, "Verdicts: ✓/✗ mark gating measurements; (✓)/(✗) compare a reported value with a threshold without gating (assumptions are reported, never gating).\n");
    let used: Vec<&crate::experiments::validate::Theorem> = crate::experiments::validate::THEOREMS
        .iter()
        .filter(|t| report.scenarios.iter().any(|s| s.theorems.iter().any(|id| id == t.id)))
        .collect();
    let _ = writeln!(md, "## Theorems\n");
    for t in &used {
        let _ = writeln!(
            md,
            "- **{}**: {}. {} Assumptions (reported): {}.\n",
            t.id,
            t.citation,
            t.statement,
            t.assumptions.join("; ")
        );
    }
    let _ = writeln!(md, "| theorem | scenario | verdicts |");
    let _ = writeln!(md, "|---|---|---|");
    for t in &used {
        for s in report.scenarios.iter().filter(|s| s.theorems.iter().any(|id| id == t.id)) {
            let cells: Vec<String> = s
                .claims
                .iter()
                .filter(|c| c.theorem == t.id)
                .map(|c| format!("{}: {}", c.claim.name(), c.verdict.label()))
                .collect();
            let _ = writeln!(md, "| {} | {} | {} |", t.id, s.name, cells.join(", "));
        }
    }
    let fails = failure_lines(report);
    if !fails.is_empty() {
        let _ = writeln!(md, "\nFailures:\n");
        for f in fails {
            let _ = writeln!(md, "- {f}");
        }
    }
    let _ = writeln!(md);
    for s in &report.scenarios {
        scenario_markdown(&mut md, s);
    }
    md
}

/// `report.html`: `report.md` as a page a browser shows (tables styled, every figure as its
/// PNG, which carries the embedded font, with links to the SVG and PDF beside it).
pub fn render_html(report: &Report) -> String {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
    let md = render_markdown(report);
    let events = Parser::new_ext(&md, Options::ENABLE_TABLES).map(|ev| match ev {
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let png = dest_url.strip_suffix(".svg").map(|stem| CowStr::from(format!("{stem}.png")));
            Event::Start(Tag::Image { link_type, dest_url: png.unwrap_or(dest_url), title, id })
        }
        ev => ev,
    });
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, events);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>marginflow validation report</title>\n<style>\n{HTML_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

const HTML_STYLE: &str = "body { font-family: 'DejaVu Sans', sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
img { width: 760px; max-width: 100%; display: block; margin: 1.2em 0 0.2em; border: 1px solid #ddd; }
h2 { border-bottom: 2px solid #888; padding-bottom: 0.2em; margin-top: 2em; }
code { background: #f4f4f4; padding: 0 0.2em; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::validate::Comparison;

    fn m(name: &str, v: f64) -> Measurement {
        Measurement {
            name: name.into(),
            value: Some(v),
            threshold: Some(1e-8),
            comparison: Comparison::AtMost,
            pass: Some(true),
            gating: true,
        }
    }

    /// A gap 1 − cos made negative by round-off reads as 0 with the raw value beside it; a real
    /// negative value of another measurement is shown as is.
    #[test]
    fn round_off_gap_reads_as_zero() {
        assert_eq!(fmt_value(&m("velocity gap 1 − cos(dW/ds, W*)", -6.66e-16)), "0 (round-off: −6.6600e−16)");
        assert_eq!(fmt_value(&m("velocity gap 1 − cos(dW/ds, W*)", 2e-9)), "2.0000e-9");
        assert_eq!(fmt_value(&m("min log10 L", -21.5)), "-21.5");
    }

    /// The work counters read as words.
    #[test]
    fn work_counters_in_words() {
        let v =
            serde_json::json!({"accepted": 402, "rejected": 3, "rhs_evaluations": 2594, "events": 162, "released": 0});
        assert_eq!(
            work_text(&v).unwrap(),
            "402 accepted steps, 3 rejected, 2594 right-hand sides, 162 kink events, 0 released sliding modes"
        );
        assert_eq!(work_text(&serde_json::Value::Null), None);
    }
}
