//! The paper figures through the real binary: PNG and PDF beside every SVG, `report.html` that
//! links only files that exist, a headless-browser screenshot of it (skipped, with the reason
//! printed, where no browser is installed), and `flow --singular-values K`.

use resvg::tiny_skia::Pixmap;
use std::path::{Path, PathBuf};

mod common;
use common::bin;

/// One validate run on the ReLU scenario (a few seconds), shared by the tests below.
fn validated() -> &'static Path {
    static DIR: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, out) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("v");
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("validation/relu.toml");
        let o = bin().arg("validate").arg(&scenario).arg("--out").arg(&out).arg("-q").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&o.stderr));
        (dir, out)
    });
    out
}

/// The `width`/`height` attributes of an SVG's root element.
fn svg_size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let at = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        svg[at..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("width"), attr("height"))
}

/// The fraction of pixels that are not (near) white.
fn inked(p: &Pixmap) -> f64 {
    let n = p.pixels().iter().filter(|c| c.red() < 200 || c.green() < 200 || c.blue() < 200).count();
    n as f64 / (p.width() * p.height()) as f64
}

#[test]
fn every_svg_has_a_png_and_a_pdf() {
    let out = validated();
    let svgs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 6, "six flow figures: {svgs:?}");
    for svg in &svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        let (w, h) = svg_size(&text);
        let png = Pixmap::decode_png(&std::fs::read(svg.with_extension("png")).unwrap()).unwrap();
        assert_eq!((png.width(), png.height()), (2 * w, 2 * h), "{svg:?}: the PNG is the SVG at 2×");
        let ink = inked(&png);
        assert!(ink > 0.01 && ink < 0.5, "{svg:?}: {:.1} % of the PNG is drawn", 100.0 * ink);
        let pdf = std::fs::read(svg.with_extension("pdf")).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{svg:?}: not a PDF");
        assert!(pdf.windows(10).any(|w| w == b"DejaVuSans"), "{svg:?}: the PDF does not embed the font");
    }
    // The figures are against log10 t, with s on the top axis and the σ3/σ1 threshold drawn.
    let sv = std::fs::read_to_string(out.join("relu-sigma-ratio.svg")).unwrap();
    assert!(sv.contains("log10 t (physical time)") && sv.contains("normalized time s"));
    assert!(sv.contains("rank claim: σ3/σ1 ≤"));
    let gaps = std::fs::read_to_string(out.join("relu-gaps.svg")).unwrap();
    assert!(gaps.contains("limit W* (own pattern)") && gaps.contains("theory W*"), "both references");
    assert!(gaps.contains("fit: position gap ∝ s^-"), "the fitted slope");
}

/// Every `src`/`href` of report.html names a file that exists, and every figure is shown.
#[test]
fn report_html_links_existing_files() {
    let out = validated();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<table>"));
    let mut links = Vec::new();
    for key in ["src=\"", "href=\""] {
        for part in html.split(key).skip(1) {
            links.push(part.split('"').next().unwrap().to_string());
        }
    }
    let local: Vec<&String> = links.iter().filter(|l| !l.starts_with('#') && !l.contains("://")).collect();
    assert!(local.len() >= 18, "6 images and 12 PNG/PDF links: {local:?}");
    for l in &local {
        assert!(out.join(l).is_file(), "report.html links {l}, which does not exist");
    }
    assert_eq!(html.matches("<img").count(), 6);
}

/// A browser for the screenshot: MARGINFLOW_BROWSER, or chromium on the PATH.
fn browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("MARGINFLOW_BROWSER") {
        return Some(b.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// report.html as a browser shows it: a headless Chromium screenshot with the first figure (its
/// blue curve) visible.
#[test]
fn report_html_screenshot() {
    let Some(chromium) = browser() else {
        eprintln!("report_html_screenshot: skipped: no chromium on the PATH (apt-get install -y chromium)");
        return;
    };
    let out = validated();
    let profile = tempfile::tempdir().unwrap();
    let shot = out.join("report-screenshot.png");
    let o = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,8000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    assert!(shot.is_file(), "no screenshot; chromium said: {}", String::from_utf8_lossy(&o.stderr));
    let img = Pixmap::decode_png(&std::fs::read(&shot).unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (1200, 8000));
    assert!(inked(&img) > 0.01, "the page is blank");
    // The loss figure's curve is tab10 blue (31, 119, 180): the images loaded.
    let blue = img
        .pixels()
        .iter()
        .filter(|c| (c.red() as i32 - 31).abs() < 30 && (c.green() as i32 - 119).abs() < 30 && c.blue() > 150)
        .count();
    assert!(blue > 500, "no figure visible in the screenshot ({blue} blue pixels)");
    if let Some(keep) = std::env::var_os("MARGINFLOW_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// `--singular-values K` sets how many singular values each trajectory row lists; the rows keep
/// their keys.
#[test]
fn singular_values_flag_sets_the_row_length() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("g.json");
    let o = bin().args(["gen", "--kind", "gaussian", "--n", "10", "--d", "200", "--out"]).arg(&data).output().unwrap();
    assert!(o.status.success());
    let keys = |run: &Path| -> Vec<(Vec<String>, usize)> {
        std::fs::read_to_string(run.join("trajectory.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object().unwrap();
                (o.keys().cloned().collect(), o["singular_values"].as_array().unwrap().len())
            })
            .collect()
    };
    let mut rows = Vec::new();
    for k in ["3", "12"] {
        let run = dir.path().join(format!("k{k}"));
        let o = bin()
            .args(["flow", "--width", "16", "--until-log10-time", "4", "--quiet", "--singular-values", k, "--data"])
            .arg(&data)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        rows.push(keys(&run));
    }
    assert!(rows[0].iter().all(|r| r.1 == 3));
    // W is 16 × 200 of rank ≤ 16 + 10: 12 values at every row.
    assert!(rows[1].iter().all(|r| r.1 == 12));
    assert_eq!(rows[0][0].0, rows[1][0].0, "the same keys");
    let o = bin().args(["flow", "--width", "4", "--singular-values", "0", "--data"]).arg(&data).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--singular-values"));
}
