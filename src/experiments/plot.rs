//! SVG plots of a validation scenario, and the line charts of sweeps and phase diagrams
//! ([`LineChart`]), drawn with `plotters`' SVG backend (text as SVG `<text>` elements, so no font
//! library is needed). Every function returns the SVG as a string; the binary writes the files.

use crate::error::{Error, Result};
use crate::experiments::validate::{PlotFile, ScenarioReport, TrajectoryPoint};
use plotters::prelude::*;

/// The plots drawn for each scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    /// −log10 L against s (log–log), with the interpolation threshold −log10(log 2 / n).
    Loss,
    /// Normalized margin against s (log axis), with the QP's max-margin line.
    Margin,
    /// The reported singular values of W against s (log–log).
    SingularValues,
    /// Position and velocity gaps 1 − cos against s (log–log).
    Gaps,
    /// Activation-pattern agreement with the theory pattern against s (log axis).
    Pattern,
}

impl PlotKind {
    /// All plots, in report order.
    pub const ALL: [PlotKind; 5] =
        [PlotKind::Loss, PlotKind::Margin, PlotKind::SingularValues, PlotKind::Gaps, PlotKind::Pattern];

    /// Title shown in the report.
    pub fn title(&self) -> &'static str {
        match self {
            PlotKind::Loss => "loss",
            PlotKind::Margin => "normalized margin",
            PlotKind::SingularValues => "singular values",
            PlotKind::Gaps => "position and velocity gaps",
            PlotKind::Pattern => "pattern agreement",
        }
    }

    fn suffix(&self) -> &'static str {
        match self {
            PlotKind::Loss => "loss",
            PlotKind::Margin => "margin",
            PlotKind::SingularValues => "singular-values",
            PlotKind::Gaps => "gaps",
            PlotKind::Pattern => "pattern",
        }
    }

    /// The file name for scenario `slug`.
    pub fn file_name(&self, slug: &str) -> String {
        format!("{slug}-{}.svg", self.suffix())
    }
}

const SIZE: (u32, u32) = (720, 440);
/// The ten colours of matplotlib's "tab10" cycle; the scenario plots cycle through the first
/// [`SCENARIO_COLORS`], the sweep plots through all ten.
pub(crate) const TAB10: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const SCENARIO_COLORS: usize = 8;

/// A named series of (x, y) points.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::setting("plot", e.to_string())
}

fn range(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        if hi <= lo {
            return (lo / 10.0, hi * 10.0);
        }
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = if hi > lo { 0.05 * (hi - lo) } else { lo.abs().max(1.0) * 0.05 };
        (lo - pad, hi + pad)
    }
}

/// Draw series on linear or logarithmic axes into an SVG string.
fn draw(title: &str, xlabel: &str, ylabel: &str, series: &[Series], xlog: bool, ylog: bool) -> Result<String> {
    let ok = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!xlog || x > 0.0) && (!ylog || y > 0.0);
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            label: s.label.clone(),
            points: s.points.iter().copied().filter(|(x, y)| ok(*x, *y)).collect(),
            dashed: s.dashed,
        })
        .collect();
    // x: the data's own extent (a reference line never reaches past the data).
    let (x0, x1) = {
        let (a, b) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)), xlog);
        if xlog {
            (a * 1.5, b / 1.5)
        } else {
            (a, b)
        }
    };
    let (x0, x1) =
        if x1 > x0 { (x0, x1) } else { range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)), xlog) };
    let (y0, y1) = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), ylog);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut builder = ChartBuilder::on(&root);
        builder.caption(title, ("sans-serif", 20)).margin(12).x_label_area_size(40).y_label_area_size(70);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(xlabel)
                    .y_desc(ylabel)
                    .x_labels(8)
                    .y_labels(8)
                    .x_label_formatter(&|v| fmt_tick(*v))
                    .y_label_formatter(&|v| fmt_tick(*v))
                    .draw()
                    .map_err(err)?;
                for (k, s) in series.iter().enumerate() {
                    if s.points.is_empty() {
                        continue;
                    }
                    let color = TAB10[k % SCENARIO_COLORS];
                    let style = ShapeStyle::from(&color).stroke_width(2);
                    if s.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(s.points.iter().copied(), 8, 5, style))
                            .map_err(err)?
                            .label(s.label.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                    } else {
                        chart
                            .draw_series(LineSeries::new(s.points.iter().copied(), style))
                            .map_err(err)?
                            .label(s.label.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                    }
                }
                if series.len() > 1 {
                    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
                    let frac = |x: f64, y: f64| (axis_frac(x, x0, x1, xlog), axis_frac(y, y0, y1, ylog));
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK)
                        .position(legend_corner(&pts, frac, series.len()))
                        .draw()
                        .map_err(err)?;
                }
            }};
        }
        match (xlog, ylog) {
            (false, false) => body!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
            (false, true) => body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(err)?),
            (true, false) => body!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1).map_err(err)?),
            (true, true) => {
                body!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(err)?)
            }
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A readable axis tick: at most three significant digits, powers of ten as `1e-5` (never
/// `9.999999999999999e-6`, the float a log axis computes for 10⁻⁵).
pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    if v.abs() >= 1e4 || v.abs() < 1e-2 {
        // Round the mantissa to 3 significant digits, then trim its zeros.
        let text = format!("{v:.2e}");
        let (mant, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let mant = if mant.contains('.') { mant.trim_end_matches('0').trim_end_matches('.') } else { mant };
        format!("{mant}e{exp}")
    } else {
        let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// The corner of the plot area whose legend box (about a third of the width, a row per series)
/// covers the fewest data points, so the legend stays off the curves. `frac` maps a point to
/// (0..1, 0..1) plot coordinates (x rightwards, y upwards).
pub(crate) fn legend_corner(
    points: &[(f64, f64)],
    frac: impl Fn(f64, f64) -> (f64, f64),
    n_series: usize,
) -> SeriesLabelPosition {
    let h = (0.08 + 0.07 * n_series as f64).min(0.6);
    let w = 0.45;
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0, 1.0 - h, 1.0),
        (SeriesLabelPosition::UpperLeft, 0.0, w, 1.0 - h, 1.0),
        (SeriesLabelPosition::LowerRight, 1.0 - w, 1.0, 0.0, h),
        (SeriesLabelPosition::LowerLeft, 0.0, w, 0.0, h),
        (SeriesLabelPosition::MiddleRight, 1.0 - w, 1.0, 0.5 - h / 2.0, 0.5 + h / 2.0),
        (SeriesLabelPosition::MiddleLeft, 0.0, w, 0.5 - h / 2.0, 0.5 + h / 2.0),
    ];
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (pos, x0, x1, y0, y1) in corners {
        // Margins of 3 % around the box: a curve touching its edge counts too.
        let hits = points
            .iter()
            .map(|&(x, y)| frac(x, y))
            .filter(|&(fx, fy)| fx >= x0 - 0.03 && fx <= x1 + 0.03 && fy >= y0 - 0.03 && fy <= y1 + 0.03)
            .count();
        if hits < best.0 {
            best = (hits, pos);
        }
    }
    best.1
}

/// Fractional position of `v` in `[lo, hi]` on a linear or log axis.
pub(crate) fn axis_frac(v: f64, lo: f64, hi: f64, log: bool) -> f64 {
    if log {
        (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
    } else {
        (v - lo) / (hi - lo)
    }
}

/// Points (s, f(row)) of the trajectory: plots use normalized time s on a log axis, where rows
/// are evenly spread and the transient is visible (log10 t grows linearly in s late on, so a
/// log10 t axis squeezes the transient into its first percent).
fn by_s(rows: &[TrajectoryPoint], f: impl Fn(&TrajectoryPoint) -> f64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.s, f(r))).collect()
}

/// The smallest and largest positive s of the trajectory (where reference lines start and end).
fn s_span(rows: &[TrajectoryPoint]) -> (f64, f64) {
    rows.iter()
        .map(|r| r.s)
        .filter(|s| *s > 0.0 && s.is_finite())
        .fold((f64::INFINITY, 0.0), |(a, b), s| (a.min(s), b.max(s)))
}

const S_AXIS: &str = "normalized time s (log scale)";

/// Render one plot of a scenario as SVG.
pub fn render(kind: PlotKind, sc: &ScenarioReport) -> Result<String> {
    let rows = &sc.trajectory;
    let title = format!("{}: {}", sc.name, kind.title());
    let line = |label: &str, points: Vec<(f64, f64)>| Series { label: label.into(), points, dashed: false };
    let (sa, sb) = s_span(rows);
    match kind {
        PlotKind::Loss => {
            // −log10 L on a log axis: the early decrease (−log10 L ~ 0.1) and the late one
            // (−log10 L ~ log10 t, hundreds) both visible.
            let mut s = vec![line("-log10 L", by_s(rows, |r| -r.log10_loss))];
            let thr = -(2f64.ln() / sc.geometry.n as f64).log10();
            s.push(Series {
                label: "-log10(log 2 / n): every margin > 0 above".into(),
                points: vec![(sa, thr), (sb, thr)],
                dashed: true,
            });
            draw(&title, S_AXIS, "-log10 L (log scale)", &s, true, true)
        }
        PlotKind::Margin => {
            let mut s = vec![line("flow min_i q_i / ||W||_F", by_s(rows, |r| r.normalized_margin))];
            if let Some(q) = sc.reference_margin {
                s.push(Series {
                    label: "max margin 1/||W*|| (QP)".into(),
                    points: vec![(sa, q), (sb, q)],
                    dashed: true,
                });
            }
            draw(&title, S_AXIS, "normalized margin", &s, true, false)
        }
        PlotKind::SingularValues => {
            let k = rows.iter().map(|r| r.singular_values.len()).max().unwrap_or(0);
            let all = sc.scenario.width.min(sc.geometry.d);
            let s: Vec<Series> = (0..k)
                .map(|i| {
                    line(
                        &format!("sigma_{}", i + 1),
                        rows.iter().filter_map(|r| r.singular_values.get(i).map(|v| (r.s, *v))).collect(),
                    )
                })
                .collect();
            let ylabel = if k >= all {
                format!("all {all} singular values of W (log scale)")
            } else {
                format!("top {k} of {all} singular values of W (log scale)")
            };
            draw(&title, S_AXIS, &ylabel, &s, true, true)
        }
        PlotKind::Gaps => {
            let s = vec![
                line(
                    "position gap 1 - cos(W, W*)",
                    rows.iter().filter_map(|r| r.position_gap.map(|g| (r.s, g))).collect(),
                ),
                line(
                    "velocity gap 1 - cos(dW/ds, W*)",
                    rows.iter().filter_map(|r| r.velocity_gap.map(|g| (r.s, g))).collect(),
                ),
            ];
            draw(&title, S_AXIS, "gap (log scale)", &s, true, true)
        }
        PlotKind::Pattern => {
            let s = vec![line("fraction of theory pattern", by_s(rows, |r| r.pattern_agreement))];
            draw(&title, S_AXIS, "pattern agreement", &s, true, false)
        }
    }
}

/// The plots of a descent scenario (as in docs/descent.md): stable rank and −log10 L against
/// step + 1 on log axes (the initialization sits at 1, the one-step drop is the segment to 2).
fn render_descent(
    sc: &ScenarioReport,
    dr: &crate::experiments::validate::DescentReport,
) -> Result<Vec<(PlotFile, String)>> {
    let slug = sc.slug();
    let line = |label: &str, points: Vec<(f64, f64)>| Series { label: label.into(), points, dashed: false };
    let x = |step: u64| step as f64 + 1.0;
    let sr: Vec<(f64, f64)> =
        dr.rows.iter().filter(|r| r.stable_rank > 0.0).map(|r| (x(r.step), r.stable_rank)).collect();
    let loss: Vec<(f64, f64)> =
        dr.rows.iter().filter(|r| r.log10_loss < 0.0).map(|r| (x(r.step), -r.log10_loss)).collect();
    let xlabel = "step + 1 (log scale)";
    let rank = draw(
        &format!("{}: stable rank", sc.name),
        xlabel,
        "stable rank ||W||_F^2/||W||_2^2 (log scale)",
        &[line("stable rank of W", sr)],
        true,
        true,
    )?;
    let loss =
        draw(&format!("{}: loss", sc.name), xlabel, "-log10 L (log scale)", &[line("-log10 L", loss)], true, true)?;
    Ok(vec![
        (PlotFile { title: "stable rank".into(), file: format!("{slug}-stable-rank.svg") }, rank),
        (PlotFile { title: "loss".into(), file: format!("{slug}-loss.svg") }, loss),
    ])
}

/// Every plot of a scenario: (file entry, SVG text).
pub fn render_all(sc: &ScenarioReport) -> Result<Vec<(PlotFile, String)>> {
    if let Some(dr) = &sc.descent {
        return render_descent(sc, dr);
    }
    let slug = sc.slug();
    PlotKind::ALL
        .iter()
        .map(|k| Ok((PlotFile { title: k.title().to_string(), file: k.file_name(&slug) }, render(*k, sc)?)))
        .collect()
}

/// A line of a plot: label and (x, y) points.
pub type ChartLine = (String, Vec<(f64, f64)>);

/// Render line series as an SVG string. `log_x` / `log_y` choose logarithmic axes (points with
/// non-positive coordinates are then dropped).
pub fn line_plot_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[ChartLine],
    log_x: bool,
    log_y: bool,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| Error::setting("plot", e.to_string()))?;
        let chart = LineChart { title, x_label, y_label, series, log_x, log_y, y_range: None };
        draw_line_chart(&root, &chart)?;
        root.present().map_err(|e| Error::setting("plot", e.to_string()))?;
    }
    Ok(svg)
}

/// A line chart: labelled series on linear or logarithmic axes.
pub struct LineChart<'a> {
    /// Caption.
    pub title: &'a str,
    /// x-axis description.
    pub x_label: &'a str,
    /// y-axis description.
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [ChartLine],
    /// Logarithmic x axis (points with x ≤ 0 dropped).
    pub log_x: bool,
    /// Logarithmic y axis (points with y ≤ 0 dropped).
    pub log_y: bool,
    /// A fixed y range instead of the data's (linear y only; tick labels then show 2 decimals).
    pub y_range: Option<(f64, f64)>,
}

/// The axes' ranges of `chart` drawn over `pts` (its kept points): the data's extent padded by 5%
/// (of the decades on a log axis), y from 0 on a linear axis unless `y_range` fixes it.
fn chart_ranges(pts: &[(f64, f64)], chart: &LineChart<'_>) -> ((f64, f64), (f64, f64)) {
    let (log_x, log_y, y_range) = (chart.log_x, chart.log_y, chart.y_range);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if pts.is_empty() {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let pad = |a: f64, b: f64, log: bool| -> (f64, f64) {
        if log {
            let (a, b) = if a == b { (a / 2.0, b * 2.0) } else { (a, b) };
            (a / (b / a).powf(0.05), b * (b / a).powf(0.05))
        } else {
            let w = if a == b { a.abs().max(1.0) * 0.1 } else { (b - a) * 0.05 };
            (a - w, b + w)
        }
    };
    let x = pad(x0, x1, log_x);
    let y = match y_range {
        Some(r) if !log_y => r,
        _ if log_y => pad(y0, y1, true),
        _ => pad(y0.min(0.0), y1, false),
    };
    (x, y)
}

/// Draw `chart` on a drawing area (a whole SVG or one panel of it).
pub fn draw_line_chart(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &LineChart<'_>,
) -> Result<()> {
    let LineChart { title, x_label, y_label, series, log_x, log_y, y_range } = *chart;
    let keep = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0) && (!log_y || p.1 > 0.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().filter(keep).copied()).collect();
    let ((x0, x1), (y0, y1)) = chart_ranges(&pts, chart);
    let err = |e: String| Error::setting("plot", e);
    {
        let mut b = ChartBuilder::on(root);
        b.caption(title, ("sans-serif", 18)).margin(12).x_label_area_size(40).y_label_area_size(60);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|e| err(e.to_string()))?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .x_label_formatter(&|v| fmt_tick(*v))
                    .y_label_formatter(&|v| {
                        if y_range.is_some() {
                            format!("{v:.2}")
                        } else {
                            fmt_tick(*v)
                        }
                    })
                    .draw()
                    .map_err(|e| err(e.to_string()))?;
                // Lines that coincide stay distinguishable: each series has its own colour, dash
                // pattern (solid, dashed, dotted, …) and marker shape, and later series are drawn
                // thinner on top of earlier ones.
                for (k, (label, points)) in series.iter().enumerate() {
                    let color = TAB10[k % TAB10.len()];
                    let p: Vec<(f64, f64)> = points.iter().filter(keep).copied().collect();
                    let width = (4 - (k as u32).min(2)).max(2);
                    let style = color.stroke_width(width);
                    let (dash, gap) = [(0, 0), (10, 5), (3, 4), (12, 4), (6, 3)][k % 5];
                    let shape = k % 4;
                    let anno = if dash == 0 {
                        chart.draw_series(LineSeries::new(p.clone(), style)).map_err(|e| err(e.to_string()))?
                    } else {
                        chart
                            .draw_series(DashedLineSeries::new(p.clone(), dash, gap, style))
                            .map_err(|e| err(e.to_string()))?
                    };
                    let anno = anno.label(label.clone());
                    let line =
                        move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2));
                    // Markers on at most ~25 points per series (the first two always: the
                    // initialization and the first step), staggered between series so that
                    // coinciding curves still show every series' markers.
                    let every = (p.len() / 25).max(1);
                    let marked: Vec<(f64, f64)> = p
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i < 2 || i % every == (k * every / series.len().max(1)) % every)
                        .map(|(_, q)| *q)
                        .collect();
                    macro_rules! with_marker {
                        ($mk:expr) => {{
                            let mk = $mk;
                            anno.legend(move |(x, y)| EmptyElement::at((x, y)) + line((0, 0)) + mk((11, 0)));
                            chart
                                .draw_series(marked.iter().map(|&q| EmptyElement::at(q) + mk((0, 0))))
                                .map_err(|e| err(e.to_string()))?;
                        }};
                    }
                    match shape {
                        0 => with_marker!(move |c| Circle::new(c, 4, color.filled())),
                        1 => with_marker!(move |c| TriangleMarker::new(c, 5, color.filled())),
                        2 => with_marker!(move |c| Cross::new(c, 4, color.stroke_width(2))),
                        _ => with_marker!(move |c| Circle::new(c, 5, color.stroke_width(2))),
                    }
                }
                if series.len() > 1 {
                    let frac = |x: f64, y: f64| (axis_frac(x, x0, x1, log_x), axis_frac(y, y0, y1, log_y));
                    let corner = legend_corner(&pts, frac, series.len());
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .position(corner)
                        .draw()
                        .map_err(|e| err(e.to_string()))?;
                }
            }};
        }
        match (log_x, log_y) {
            (false, false) => draw!(b.build_cartesian_2d(x0..x1, y0..y1)),
            (true, false) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)),
            (false, true) => draw!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())),
            (true, true) => draw!(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())),
        }
    }
    Ok(())
}
