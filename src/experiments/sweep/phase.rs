//! Phase diagrams of the theorem's claims: `validate` on every point of a grid (a scenario file
//! as the base, swept keys on the command line), and per claim the fraction of replicate seeds
//! on which it holds, against the swept variable, the measured near-orthogonality ratio
//! min‖x_i‖²/(n·max_{i≠k}|⟨x_i,x_k⟩|) and the paper's ratio R_min²/(γ⁻³R²np).
//!
//! Each grid point runs `validate::run_scenario` unchanged (`shard::run_point`). The replicate
//! axes are `seed` (the initialization seed, and the data seed unless `data_seed` is swept too)
//! and `data_seed`; the other swept axes index the rows of `phase.csv`. This file renders the
//! merged points; it imports `grid` only (of the sweep modules).

use super::grid::{Axis, PointSummary, RunResult, SweepSettings, Variable};
use crate::error::{Error, Result};
use crate::experiments::plot::{draw_line_chart, ChartLine, LineChart, TAB10};
use crate::experiments::validate::ClaimKind;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of the phase table: a grid point and its replicates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRow {
    /// Values of the non-replicate axes.
    pub values: Vec<(Variable, f64)>,
    /// Replicates planned.
    pub runs: usize,
    /// Replicates that ended in an error.
    pub errors: usize,
    /// Replicates whose main flow stopped before its horizon (status other than `reached`,
    /// e.g. `max_steps`); their claims are measured where the flow stopped.
    pub not_reached: usize,
    /// Median over replicates of min‖x_i‖²/(n p) (infinite for exactly orthogonal data).
    pub ratio_median: Option<f64>,
    /// Median over replicates of the paper's ratio.
    pub paper_ratio_median: Option<f64>,
    /// Per claim (in [`ClaimKind::SWEPT`] order): (replicates where it holds, where it applies).
    pub counts: Vec<(usize, usize)>,
}

impl PhaseRow {
    /// The fraction of replicates where claim `k` (index in [`ClaimKind::SWEPT`]) holds, among
    /// those where it applies.
    pub fn fraction(&self, k: usize) -> Option<f64> {
        let (h, a) = self.counts[k];
        (a > 0).then(|| h as f64 / a as f64)
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) })
}

/// The phase table: results grouped by the non-replicate axes, in order of first appearance
/// (the run order, so the grid's order).
pub fn table(results: &[RunResult]) -> Result<Vec<PhaseRow>> {
    let mut rows: Vec<(PhaseRow, Vec<f64>, Vec<f64>)> = Vec::new();
    for r in results {
        let key: Vec<(Variable, f64)> = r.values.iter().copied().filter(|(v, _)| !v.is_replicate()).collect();
        let pos = match rows.iter().position(|(row, _, _)| row.values == key) {
            Some(p) => p,
            None => {
                let row = PhaseRow {
                    values: key,
                    runs: 0,
                    errors: 0,
                    not_reached: 0,
                    ratio_median: None,
                    paper_ratio_median: None,
                    counts: vec![(0, 0); ClaimKind::SWEPT.len()],
                };
                rows.push((row, Vec::new(), Vec::new()));
                rows.len() - 1
            }
        };
        let (row, ratios, papers) = &mut rows[pos];
        row.runs += 1;
        let Ok(s) = &r.summary else {
            row.errors += 1;
            continue;
        };
        let s = PointSummary::deserialize(s).map_err(|e| Error::BadData {
            path: format!("runs/{}/result.json", r.index).into(),
            line: None,
            reason: format!("not a validate point's summary: {e}"),
        })?;
        if s.status != "reached" {
            row.not_reached += 1;
        }
        // null: infinite (exactly orthogonal data).
        ratios.push(s.ratio.unwrap_or(f64::INFINITY));
        papers.push(s.paper_ratio.unwrap_or(f64::INFINITY));
        for (k, c) in ClaimKind::SWEPT.iter().enumerate() {
            if let Some(b) = *s.holds.get(*c) {
                row.counts[k].1 += 1;
                row.counts[k].0 += b as usize;
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|(mut row, ratios, papers)| {
            row.ratio_median = median(ratios);
            row.paper_ratio_median = median(papers);
            row
        })
        .collect())
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        Some(x) if x > 0.0 => "inf".into(),
        _ => String::new(),
    }
}

/// phase.csv: `<grid axes…>,runs,errors,not_reached,ratio_median,paper_ratio_median`, then per claim its
/// fraction holding and the number of replicates it applied to (`<claim>`, `<claim>_runs`).
pub fn table_csv(settings: &SweepSettings, table: &[PhaseRow]) -> String {
    let mut out = String::new();
    let mut head: Vec<String> =
        settings.axes.iter().filter(|a| !a.variable.is_replicate()).map(|a| a.variable.name().to_string()).collect();
    head.extend(["runs", "errors", "not_reached", "ratio_median", "paper_ratio_median"].map(String::from));
    for c in ClaimKind::SWEPT {
        head.push(c.name().into());
        head.push(format!("{}_runs", c.name()));
    }
    out.push_str(&head.join(","));
    out.push('\n');
    for row in table {
        let mut f: Vec<String> = row.values.iter().map(|(_, x)| format!("{x}")).collect();
        f.push(row.runs.to_string());
        f.push(row.errors.to_string());
        f.push(row.not_reached.to_string());
        f.push(num(row.ratio_median));
        f.push(num(row.paper_ratio_median));
        for k in 0..ClaimKind::SWEPT.len() {
            f.push(num(row.fraction(k)));
            f.push(row.counts[k].1.to_string());
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

fn label(values: &[(Variable, f64)], skip: usize) -> String {
    let parts: Vec<String> =
        values.iter().enumerate().filter(|(k, _)| *k != skip).map(|(_, (v, x))| format!("{}={x}", v.name())).collect();
    if parts.is_empty() {
        "fraction holding".into()
    } else {
        parts.join(", ")
    }
}

/// The phase plots as (file name, SVG): per claim `phase_<claim>.svg` with three panels —
/// the fraction of replicates holding against the first grid axis (one line per combination of
/// the others), against the median measured ratio, and against the median paper ratio — and,
/// when the grid has exactly two axes, `phase_<claim>_2d.svg` (the fraction as colour, the axis
/// with more values across).
pub fn plots(settings: &SweepSettings, table: &[PhaseRow]) -> Result<Vec<(String, String)>> {
    let err = |e: String| Error::setting("plot", e);
    let grid: Vec<&Axis> = settings.axes.iter().filter(|a| !a.variable.is_replicate()).collect();
    let mut out = Vec::new();
    for (k, claim) in ClaimKind::SWEPT.iter().enumerate() {
        if table.iter().all(|r| r.fraction(k).is_none()) {
            continue;
        }
        let mut by_axis: Vec<ChartLine> = Vec::new();
        let mut by_ratio: Vec<ChartLine> = Vec::new();
        let mut by_paper: Vec<ChartLine> = Vec::new();
        for row in table {
            let Some(f) = row.fraction(k) else { continue };
            let lab = label(&row.values, 0);
            let x = row.values.first().map(|v| v.1).unwrap_or(0.0);
            for (list, xv) in
                [(&mut by_axis, Some(x)), (&mut by_ratio, row.ratio_median), (&mut by_paper, row.paper_ratio_median)]
            {
                let Some(xv) = xv else { continue };
                match list.iter_mut().find(|s| s.0 == lab) {
                    Some(s) => s.1.push((xv, f)),
                    None => list.push((lab.clone(), vec![(xv, f)])),
                }
            }
        }
        for list in [&mut by_axis, &mut by_ratio, &mut by_paper] {
            for s in list.iter_mut() {
                s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
        let axis_name = grid.first().map(|a| a.variable.name()).unwrap_or("grid point");
        let log_axis = grid.first().is_some_and(|a| {
            let (lo, hi) = a.values.iter().fold((f64::INFINITY, 0f64), |(l, h), v| (l.min(*v), h.max(*v)));
            lo > 0.0 && hi / lo >= 100.0
        });
        let y = "fraction of seeds where it holds";
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (1500, 460)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
            let panels = root.split_evenly((1, 3));
            let charts = [
                LineChart {
                    title: &format!("{} vs {axis_name}", claim.name()),
                    x_label: axis_name,
                    y_label: y,
                    series: &by_axis,
                    log_x: log_axis,
                    log_y: false,
                    y_range: Some((-0.05, 1.05)),
                },
                LineChart {
                    title: &format!("{} vs min‖x‖²/(n p)", claim.name()),
                    x_label: "median ratio min‖x_i‖²/(n·max|⟨x_i,x_k⟩|)",
                    y_label: y,
                    series: &by_ratio,
                    log_x: true,
                    log_y: false,
                    y_range: Some((-0.05, 1.05)),
                },
                LineChart {
                    title: &format!("{} vs paper ratio", claim.name()),
                    x_label: "median R_min²/(γ⁻³R²np)",
                    y_label: y,
                    series: &by_paper,
                    log_x: true,
                    log_y: false,
                    y_range: Some((-0.05, 1.05)),
                },
            ];
            for (panel, chart) in panels.iter().zip(&charts) {
                draw_line_chart(panel, chart)?;
            }
            root.present().map_err(|e| err(e.to_string()))?;
        }
        out.push((format!("phase_{}.svg", claim.name()), svg));
        if grid.len() == 2 {
            // The axis with more values across (ties: the later one, e.g. d in `--n … --d …`).
            let (xa, ya) =
                if grid[0].values.len() > grid[1].values.len() { (grid[0], grid[1]) } else { (grid[1], grid[0]) };
            out.push((format!("phase_{}_2d.svg", claim.name()), heatmap(claim.name(), xa, ya, table, k)?));
        }
    }
    Ok(out)
}

/// The fraction holding on a two-axis grid as coloured cells (white 0 … blue 1; grey: no data).
fn heatmap(claim: &str, xa: &Axis, ya: &Axis, table: &[PhaseRow], k: usize) -> Result<String> {
    let err = |e: String| Error::setting("plot", e);
    let (nx, ny) = (xa.values.len(), ya.values.len());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{claim}: fraction of seeds where it holds"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(xa.variable.name())
            .y_desc(ya.variable.name())
            .x_labels(0)
            .y_labels(0)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let blue = TAB10[0];
        for row in table {
            let (Some(xi), Some(yi)) = (
                xa.values.iter().position(|v| row.values.iter().any(|(var, x)| *var == xa.variable && x == v)),
                ya.values.iter().position(|v| row.values.iter().any(|(var, x)| *var == ya.variable && x == v)),
            ) else {
                continue;
            };
            let color = match row.fraction(k) {
                Some(f) => RGBColor(
                    (255.0 + f * (blue.0 as f64 - 255.0)) as u8,
                    (255.0 + f * (blue.1 as f64 - 255.0)) as u8,
                    (255.0 + f * (blue.2 as f64 - 255.0)) as u8,
                ),
                None => RGBColor(200, 200, 200),
            };
            let (x0, y0) = (xi as f64, yi as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new([(x0, y0), (x0 + 1.0, y0 + 1.0)], color.filled())))
                .map_err(|e| err(e.to_string()))?;
            // Each cell names its grid point (the axes carry no tick labels).
            let texts = [
                (format!("{}={}, {}={}", xa.variable.name(), xa.values[xi], ya.variable.name(), ya.values[yi]), 0.62),
                (num(row.fraction(k)), 0.45),
            ];
            for (text, dy) in texts {
                chart
                    .draw_series(std::iter::once(Text::new(text, (x0 + 0.08, y0 + dy), ("sans-serif", 13).into_font())))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}
