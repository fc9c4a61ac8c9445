//! SVG plots of a validation scenario (flow figures against log10 t with s on the top axis,
//! thresholds, fits and both max-margin references drawn), and the line charts of sweeps and phase diagrams
//! ([`LineChart`]), drawn with `plotters`' SVG backend (text as SVG `<text>` elements, so no font
//! library is needed). Every function returns the SVG as a string; the binary writes the files.

use crate::error::{Error, Result};
use crate::experiments::validate::{PlotFile, ScenarioReport, TrajectoryPoint};
use plotters::prelude::*;

/// The plots drawn for each flow scenario, all against log10 t (the theorems' time) with
/// normalized time s on the top axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    /// −log10 L (log axis), with the interpolation threshold −log10(log 2 / n).
    Loss,
    /// Normalized margin, with both QPs' max margins (theory pattern and the flow's own limit
    /// pattern).
    Margin,
    /// The reported singular values of W (log axis), each with its own colour, dash and marker.
    SingularValues,
    /// σ3/σ1 (log axis), with the `rank` claim's threshold.
    SigmaRatio,
    /// Position and velocity gaps 1 − cos against the theory pattern's W* (log axis), the
    /// velocity-gap threshold, the fitted position-gap slope, and the gaps against the limit
    /// pattern's W* at the end.
    Gaps,
    /// Activation-pattern agreement with the theory pattern.
    Pattern,
}

impl PlotKind {
    /// All plots, in report order.
    pub const ALL: [PlotKind; 6] = [
        PlotKind::Loss,
        PlotKind::Margin,
        PlotKind::SingularValues,
        PlotKind::SigmaRatio,
        PlotKind::Gaps,
        PlotKind::Pattern,
    ];

    /// Title shown in the report.
    pub fn title(&self) -> &'static str {
        match self {
            PlotKind::Loss => "loss",
            PlotKind::Margin => "normalized margin",
            PlotKind::SingularValues => "singular values",
            PlotKind::SigmaRatio => "σ3/σ1",
            PlotKind::Gaps => "position and velocity gaps",
            PlotKind::Pattern => "pattern agreement",
        }
    }

    fn suffix(&self) -> &'static str {
        match self {
            PlotKind::Loss => "loss",
            PlotKind::Margin => "margin",
            PlotKind::SingularValues => "singular-values",
            PlotKind::SigmaRatio => "sigma-ratio",
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

/// How a line of a flow figure is drawn: solid or dashed, with or without sparse markers.
#[derive(Clone, Copy)]
struct LineStyle {
    color: RGBColor,
    width: u32,
    /// (dash, gap) in pixels; `None` is solid.
    dash: Option<(u32, u32)>,
    /// Marker shape index (see [`marker`]); `None` for none.
    marker: Option<usize>,
}

impl LineStyle {
    fn with_color(self, color: RGBColor) -> Self {
        LineStyle { color, ..self }
    }
}

/// The k-th of a family of lines that must stay apart where they coincide: its own colour,
/// dash pattern and marker shape.
fn family_style(k: usize) -> LineStyle {
    const DASHES: [Option<(u32, u32)>; 4] = [None, Some((10, 5)), Some((3, 4)), Some((12, 4))];
    LineStyle { color: TAB10[k % TAB10.len()], width: 2, dash: DASHES[k % 4], marker: Some(k % 5) }
}

/// A threshold or reference line: grey (or `color`), dashed, no markers.
fn rule_style(color: RGBColor) -> LineStyle {
    LineStyle { color, width: 2, dash: Some((7, 5)), marker: None }
}

/// A series of a flow figure: (log10 t, y) points.
#[derive(Clone)]
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    style: LineStyle,
}

/// A flow figure: lines against log10 t, horizontal rules, single points at the end, and the
/// s axis on top.
struct FlowFigure {
    title: String,
    y_label: String,
    y_log: bool,
    lines: Vec<Line>,
    /// Horizontal lines across the plot (label, y, style).
    rules: Vec<(String, f64, LineStyle)>,
    /// Single points (label, (log10 t, y), colour, marker).
    points: Vec<(String, (f64, f64), RGBColor, usize)>,
    /// Ticks of the top axis: (log10 t, label).
    top_ticks: Vec<(f64, String)>,
    /// Below this a log-axis value is drawn at the floor (round-off of a gap ~ 1e-16).
    floor: Option<f64>,
}

/// Draw marker `$shape` (see [`glyph_impl`]) of `$size` pixels at every point of `$pts` into
/// `$chart`, returning the series annotation's result mapped to `()`-free form.
macro_rules! draw_markers {
    ($chart:expr, $pts:expr, $shape:expr, $c:expr, $size:expr) => {{
        let (c, size) = ($c, $size);
        let pts: Vec<(f64, f64)> = $pts;
        match $shape % 5 {
            0 => {
                $chart.draw_series(pts.into_iter().map(|q| EmptyElement::at(q) + Circle::new((0, 0), size, c.filled())))
            }
            1 => $chart.draw_series(
                pts.into_iter().map(|q| EmptyElement::at(q) + TriangleMarker::new((0, 0), size + 1, c.filled())),
            ),
            2 => $chart.draw_series(
                pts.into_iter().map(|q| EmptyElement::at(q) + Cross::new((0, 0), size, c.stroke_width(2))),
            ),
            3 => $chart.draw_series(
                pts.into_iter()
                    .map(|q| EmptyElement::at(q) + Rectangle::new([(-size, -size), (size, size)], c.filled())),
            ),
            _ => $chart.draw_series(
                pts.into_iter().map(|q| EmptyElement::at(q) + Circle::new((0, 0), size + 1, c.stroke_width(2))),
            ),
        }
        .map_err(err)?
    }};
}

/// Rows of the legend below a flow figure (two entries a row).
fn legend_rows(fig: &FlowFigure) -> u32 {
    let n = fig.lines.len() + fig.rules.len() + fig.points.len();
    if n <= 1 {
        0
    } else {
        n.div_ceil(2) as u32
    }
}

const LEGEND_ROW: u32 = 20;

/// One legend entry at pixel (x, y) of `area`: a line sample (none for width 0), its marker,
/// the label.
fn legend_entry(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    (x, y): (i32, i32),
    label: &str,
    st: LineStyle,
    size: i32,
) -> Result<()> {
    let c = st.color;
    if st.width > 0 {
        let style = c.stroke_width(st.width);
        match st.dash {
            None => area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], style)).map_err(err)?,
            Some((d, g)) => {
                let mut u = x;
                while u < x + 30 {
                    let v = (u + d as i32).min(x + 30);
                    area.draw(&PathElement::new(vec![(u, y), (v, y)], style)).map_err(err)?;
                    u = v + g as i32;
                }
            }
        }
    }
    let m = (x + 15, y);
    match st.marker.map(|k| k % 5) {
        None => {}
        Some(0) => area.draw(&Circle::new(m, size, c.filled())).map_err(err)?,
        Some(1) => area.draw(&TriangleMarker::new(m, size + 1, c.filled())).map_err(err)?,
        Some(2) => area.draw(&Cross::new(m, size, c.stroke_width(2))).map_err(err)?,
        Some(3) => {
            area.draw(&Rectangle::new([(m.0 - size, m.1 - size), (m.0 + size, m.1 + size)], c.filled())).map_err(err)?
        }
        Some(_) => area.draw(&Circle::new(m, size + 1, c.stroke_width(2))).map_err(err)?,
    }
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    let font = font.pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    area.draw(&Text::new(label.to_string(), (x + 38, y), font)).map_err(err)
}

/// Superscript digits for tick labels such as 10³.
fn superscript(k: i32) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits: String = k.unsigned_abs().to_string().chars().map(|c| SUP[c as usize - '0' as usize]).collect();
    if k < 0 {
        format!("⁻{digits}")
    } else {
        digits
    }
}

/// The top axis: where s = 10^k (and 2·10^k, 5·10^k when the run spans under two decades)
/// falls on the log10 t axis, by interpolating log10 t in log10 s between rows.
fn s_ticks(rows: &[TrajectoryPoint]) -> Vec<(f64, String)> {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.s > 0.0 && r.s.is_finite() && r.log10_time.is_finite())
        .map(|r| (r.s.log10(), r.log10_time))
        .collect();
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else { return Vec::new() };
    let (a, b) = (first.0, last.0);
    let at = |ls: f64| -> Option<f64> {
        let w = pts.windows(2).find(|w| w[0].0 <= ls && ls <= w[1].0)?;
        let f = if w[1].0 > w[0].0 { (ls - w[0].0) / (w[1].0 - w[0].0) } else { 0.0 };
        Some(w[0].1 + f * (w[1].1 - w[0].1))
    };
    let mults: &[f64] = if b - a < 2.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut out = Vec::new();
    for k in (a.floor() as i32)..=(b.ceil() as i32) {
        for &m in mults {
            let ls = k as f64 + m.log10();
            if let Some(x) = at(ls) {
                let label =
                    if m == 1.0 { format!("10{}", superscript(k)) } else { format!("{m}·10{}", superscript(k)) };
                out.push((x, label));
            }
        }
    }
    // At most ~9 labels: keep every other one while crowded.
    while out.len() > 9 {
        out = out.into_iter().step_by(2).collect();
    }
    out
}

const T_AXIS: &str = "log10 t (physical time)";
const FLOW_SIZE: (u32, u32) = (760, 480);

/// Draw a flow figure into an SVG string.
fn draw_flow(fig: &FlowFigure) -> Result<String> {
    let mut buf = String::new();
    {
        let size = (FLOW_SIZE.0, FLOW_SIZE.1 + legend_rows(fig) * LEGEND_ROW);
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_flow_on(&root, fig)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Two flow figures stacked in one SVG (the lower one two thirds as tall).
fn draw_panels(upper: &FlowFigure, lower: &FlowFigure) -> Result<String> {
    let h_upper = FLOW_SIZE.1 + legend_rows(upper) * LEGEND_ROW;
    let h_lower = FLOW_SIZE.1 * 2 / 3 + legend_rows(lower) * LEGEND_ROW;
    let size = (FLOW_SIZE.0, h_upper + h_lower);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (a, b) = root.split_vertically(h_upper);
        draw_flow_on(&a, upper)?;
        draw_flow_on(&b, lower)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The points of `pts` nearest to `count` evenly spaced x positions, shifted by `phase` (0..1)
/// of a spacing so that lines drawn on top of each other show their markers side by side.
fn marker_points(pts: &[(f64, f64)], count: usize, phase: f64) -> Vec<(f64, f64)> {
    let (Some(a), Some(b)) = (pts.first(), pts.last()) else { return Vec::new() };
    let step = (b.0 - a.0) / count as f64;
    let mut out: Vec<(f64, f64)> = Vec::new();
    for k in 0..count {
        let x = a.0 + (k as f64 + phase) * step;
        let near = pts.iter().min_by(|p, q| (p.0 - x).abs().total_cmp(&(q.0 - x).abs()));
        if let Some(p) = near.filter(|p| !out.contains(p)) {
            out.push(*p);
        }
    }
    out
}

/// Draw a flow figure on a drawing area (a whole SVG or one panel).
fn draw_flow_on(root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, fig: &FlowFigure) -> Result<()> {
    let floor = |y: f64| match fig.floor {
        Some(f) if fig.y_log && y.is_finite() && y < f => f,
        _ => y,
    };
    let ok = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!fig.y_log || y > 0.0);
    let lines: Vec<(&Line, Vec<(f64, f64)>)> =
        fig.lines.iter().map(|l| (l, l.points.iter().map(|&(x, y)| (x, floor(y))).filter(ok).collect())).collect();
    let points: Vec<_> =
        fig.points.iter().map(|(l, (x, y), c, m)| (l, (*x, floor(*y)), *c, *m)).filter(|p| ok(&p.1)).collect();
    let rules: Vec<_> = fig.rules.iter().filter(|r| ok(&(0.0, r.1))).collect();
    let data_x = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).chain(points.iter().map(|p| p.1 .0));
    let (x0, x1) = range(data_x, false);
    let all_y = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .chain(points.iter().map(|p| p.1 .1))
        .chain(rules.iter().map(|r| r.1));
    let (y0, y1) = range(all_y, fig.y_log);
    let (_, h) = root.dim_in_pixel();
    let (root, legend_area) = root.split_vertically(h - legend_rows(fig) * LEGEND_ROW);
    // The title above the s axis (plotters' caption would sit below the top margin).
    let title_font = ("sans-serif", 20).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Top,
    ));
    root.draw(&Text::new(fig.title.clone(), (root.dim_in_pixel().0 as i32 / 2, 8), title_font)).map_err(err)?;
    let mut legend: Vec<(String, LineStyle, i32)> = Vec::new();
    {
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin(12)
            .margin_top(if fig.top_ticks.is_empty() { 40 } else { 80 })
            .x_label_area_size(44)
            .y_label_area_size(72);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(T_AXIS)
                    .y_desc(fig.y_label.as_str())
                    .x_labels(10)
                    .y_labels(8)
                    .x_label_formatter(&|v| fmt_tick(*v))
                    .y_label_formatter(&|v| fmt_tick(*v))
                    .label_style(("sans-serif", 14))
                    .axis_desc_style(("sans-serif", 15))
                    .light_line_style(WHITE.mix(0.0))
                    .bold_line_style(BLACK.mix(0.12))
                    .draw()
                    .map_err(err)?;
                for (r, y, st) in &rules {
                    let pts = vec![(x0, *y), (x1, *y)];
                    let style = st.color.stroke_width(st.width);
                    let (d, g) = st.dash.unwrap_or((7, 5));
                    chart.draw_series(DashedLineSeries::new(pts, d, g, style)).map_err(err)?;
                    legend.push((r.clone(), *st, 4));
                }
                for (k, (l, pts)) in lines.iter().enumerate() {
                    if pts.is_empty() {
                        continue;
                    }
                    let st = l.style;
                    let style = st.color.stroke_width(st.width);
                    match st.dash {
                        None => chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(err)?,
                        Some((d, g)) => {
                            chart.draw_series(DashedLineSeries::new(pts.clone(), d, g, style)).map_err(err)?
                        }
                    };
                    legend.push((l.label.clone(), st, 4));
                    if let Some(m) = st.marker {
                        // 12 markers evenly spaced along x, staggered between lines so that
                        // coinciding curves still show each one's markers.
                        let marked = marker_points(pts, 12, (k as f64 + 0.5) / lines.len().max(1) as f64);
                        draw_markers!(chart, marked, m, st.color, 4);
                    }
                }
                for (label, q, c, m) in &points {
                    let (c, m) = (*c, *m);
                    draw_markers!(chart, vec![*q], m, c, 6);
                    legend.push(((*label).clone(), LineStyle { color: c, width: 0, dash: None, marker: Some(m) }, 6));
                }
                // The s axis on top: ticks where s = 10^k lies on the log10 t axis.
                if !fig.top_ticks.is_empty() {
                    let (xr, yr) = chart.plotting_area().get_pixel_range();
                    let top = yr.start;
                    let font = ("sans-serif", 13).into_font().color(&BLACK);
                    let centered = font.clone().pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    ));
                    root.draw(&PathElement::new(vec![(xr.start, top), (xr.end, top)], BLACK)).map_err(err)?;
                    let mut last_px: Option<i32> = None;
                    for (x, label) in &fig.top_ticks {
                        let px = chart.backend_coord(&(*x, y0)).0;
                        if px < xr.start || px > xr.end || last_px.is_some_and(|l| px - l < 44) {
                            continue;
                        }
                        last_px = Some(px);
                        root.draw(&PathElement::new(vec![(px, top), (px, top - 5)], BLACK)).map_err(err)?;
                        root.draw(&Text::new(label.clone(), (px, top - 7), centered.clone())).map_err(err)?;
                    }
                    let right = font.pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Right,
                        plotters::style::text_anchor::VPos::Bottom,
                    ));
                    root.draw(&Text::new("normalized time s", (xr.end, top - 26), right)).map_err(err)?;
                }
            }};
        }
        if fig.y_log {
            body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(err)?)
        } else {
            body!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?)
        }
    }
    // The legend below the figure, two entries a row, never over a curve.
    if legend.len() > 1 {
        let w = legend_area.dim_in_pixel().0 as i32;
        for (k, (label, st, size)) in legend.iter().enumerate() {
            let x = if k % 2 == 0 { 84 } else { 84 + (w - 84) / 2 };
            let y = (k / 2) as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
            legend_entry(&legend_area, (x, y), label, *st, *size)?;
        }
    }
    Ok(())
}

/// Points (log10 t, f(row)) of the trajectory.
fn by_t(rows: &[TrajectoryPoint], f: impl Fn(&TrajectoryPoint) -> Option<f64>) -> Vec<(f64, f64)> {
    rows.iter().filter_map(|r| f(r).map(|v| (r.log10_time, v))).collect()
}

/// Gaps at or below this are round-off (1 − cos of parallel f64 matrices) and drawn there.
const GAP_FLOOR: f64 = 1e-16;

/// Render one plot of a flow scenario as SVG.
pub fn render(kind: PlotKind, sc: &ScenarioReport) -> Result<String> {
    let rows = &sc.trajectory;
    let th = &sc.scenario.thresholds;
    let grey = RGBColor(90, 90, 90);
    let solid = |k: usize| LineStyle { marker: None, dash: None, ..family_style(k) };
    let line = |label: &str, points: Vec<(f64, f64)>, style: LineStyle| Line { label: label.into(), points, style };
    let mut fig = FlowFigure {
        title: format!("{}: {}", sc.name, kind.title()),
        y_label: String::new(),
        y_log: true,
        lines: Vec::new(),
        rules: Vec::new(),
        points: Vec::new(),
        top_ticks: s_ticks(rows),
        floor: None,
    };
    let end_t = rows.iter().rev().map(|r| r.log10_time).find(|t| t.is_finite());
    let limit = sc.limit_reference.as_ref();
    match kind {
        PlotKind::Loss => {
            // −log10 L on a log axis: the early decrease (−log10 L ~ 0.1) and the late one
            // (−log10 L ~ log10 t, hundreds) both visible.
            fig.y_label = "-log10 L (log scale)".into();
            fig.lines.push(line("-log10 L", by_t(rows, |r| Some(-r.log10_loss)), solid(0)));
            let thr = -(2f64.ln() / sc.geometry.n as f64).log10();
            fig.rules.push(("-log10(log 2 / n): every margin > 0 above".into(), thr, rule_style(grey)));
        }
        PlotKind::Margin => {
            fig.y_label = "normalized margin min_i q_i / ||W||_F".into();
            fig.y_log = false;
            fig.lines.push(line("flow", by_t(rows, |r| Some(r.normalized_margin)), solid(0)));
            if let Some(q) = sc.reference_margin {
                fig.rules.push(("QP max margin, theory pattern".into(), q, rule_style(TAB10[3])));
            }
            if let Some(q) = limit.and_then(|l| l.normalized_margin) {
                fig.rules.push((
                    "QP max margin, the flow's limit pattern".into(),
                    q,
                    LineStyle { dash: Some((2, 4)), ..rule_style(TAB10[2]) },
                ));
            }
        }
        PlotKind::SingularValues => {
            let k = rows.iter().map(|r| r.singular_values.len()).max().unwrap_or(0);
            let all = sc.scenario.width.min(sc.geometry.d);
            fig.y_label = if k >= all {
                format!("all {all} singular values of W (log scale)")
            } else {
                format!("top {k} of {all} singular values of W (log scale)")
            };
            for i in 0..k {
                let pts = rows.iter().filter_map(|r| r.singular_values.get(i).map(|v| (r.log10_time, *v))).collect();
                fig.lines.push(line(&format!("σ{}", i + 1), pts, family_style(i)));
            }
            if k > 3 {
                // σ3…σK stay near the initialization scale, in one band on the log axis: a
                // second panel shows them on their own linear axis.
                let bulk = FlowFigure {
                    title: format!("σ3…σ{k}, zoomed (linear axis)"),
                    y_label: "singular value".into(),
                    y_log: false,
                    lines: fig.lines[2..].to_vec(),
                    rules: Vec::new(),
                    points: Vec::new(),
                    top_ticks: Vec::new(),
                    floor: None,
                };
                return draw_panels(&fig, &bulk);
            }
        }
        PlotKind::SigmaRatio => {
            fig.y_label = "σ3/σ1 of W (log scale)".into();
            fig.lines.push(line("σ3/σ1", by_t(rows, |r| Some(r.sigma3_over_sigma1)), solid(0)));
            fig.rules.push((
                format!("rank claim: σ3/σ1 ≤ {} at the end", fmt_tick(th.sigma_ratio)),
                th.sigma_ratio,
                rule_style(grey),
            ));
        }
        PlotKind::Gaps => {
            fig.y_label = "gap 1 - cos (log scale; ≤ 1e-16 drawn at 1e-16)".into();
            fig.floor = Some(GAP_FLOOR);
            fig.lines.push(line("position gap, theory W*", by_t(rows, |r| r.position_gap), solid(0)));
            fig.lines.push(line("velocity gap, theory W*", by_t(rows, |r| r.velocity_gap), solid(1)));
            let late = crate::experiments::validate::late_rows(rows, sc.final_s, th.late_decades);
            if let Some(f) = crate::experiments::validate::position_gap_fit(&late) {
                let pts = late
                    .iter()
                    .filter(|r| r.s > 0.0)
                    .map(|r| (r.log10_time, 10f64.powf(f.intercept + f.slope * (1.0 / r.s).log10())))
                    .collect();
                let label = format!("fit: position gap ∝ s^-{:.2} (late rows)", f.slope);
                fig.lines.push(line(&label, pts, LineStyle { dash: Some((3, 3)), ..solid(0) }.with_color(BLACK)));
            }
            fig.rules.push((
                format!("velocity-gap threshold {}", fmt_tick(th.velocity_gap)),
                th.velocity_gap,
                rule_style(grey),
            ));
            if let (Some(l), Some(t)) = (limit, end_t) {
                let own = if l.certified { "limit W* (own pattern)" } else { "limit W* (own pattern, NOT certified)" };
                if let Some(g) = l.position_gap {
                    fig.points.push((format!("position gap, {own}, at the end"), (t, g), TAB10[0], 3));
                }
                if let Some(g) = l.velocity_gap {
                    fig.points.push((format!("velocity gap, {own}, at the end"), (t, g), TAB10[1], 1));
                }
            }
        }
        PlotKind::Pattern => {
            fig.y_label = "fraction of the theory pattern matched".into();
            fig.y_log = false;
            fig.lines.push(line("pattern agreement", by_t(rows, |r| Some(r.pattern_agreement)), solid(0)));
        }
    }
    draw_flow(&fig)
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
