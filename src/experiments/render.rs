//! PNG and PDF from the SVG figures, in pure Rust: `usvg` parses the SVG, `resvg` rasterizes it
//! (tiny-skia), `svg2pdf` writes it as vector PDF with the glyphs embedded (subsetted). Text is
//! set in DejaVu Sans from the `dejavu` crate, compiled into the binary: no system fonts, no
//! external tools, the same pixels on every machine.

use crate::error::{Error, Result};
use std::sync::{Arc, OnceLock};

/// The family every figure's text is drawn in (plotters writes `font-family="sans-serif"`).
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// PNG pixels per SVG pixel (2: crisp on a slide or a high-density screen).
pub const PNG_SCALE: f32 = 2.0;

/// The font database with the embedded DejaVu Sans (regular and bold) as every generic family.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static DB: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(dejavu::sans::regular().to_vec());
        db.load_font_data(dejavu::sans::bold().to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        db.set_serif_family(FONT_FAMILY);
        db.set_monospace_family(FONT_FAMILY);
        Arc::new(db)
    })
    .clone()
}

fn tree(svg: &str, format: &'static str) -> Result<usvg::Tree> {
    let opt = usvg::Options { font_family: FONT_FAMILY.into(), fontdb: fonts(), ..Default::default() };
    usvg::Tree::from_str(svg, &opt).map_err(|e| Error::Render { format, reason: format!("parsing the SVG: {e}") })
}

/// The SVG rasterized at `scale` pixels per SVG pixel on a white background, PNG-encoded.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Render { format: "png", reason };
    let tree = tree(svg, "png")?;
    let size = tree.size().to_int_size().scale_by(scale).ok_or_else(|| fail("empty or huge figure".into()))?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| fail(format!("cannot allocate {}×{} pixels", size.width(), size.height())))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| fail(e.to_string()))
}

/// The SVG as a one-page vector PDF (page size = the SVG's size at 72 dpi), text as embedded
/// DejaVu Sans glyphs.
pub fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    let tree = tree(svg, "pdf")?;
    svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), svg2pdf::PageOptions::default())
        .map_err(|e| Error::Render { format: "pdf", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100">
<rect x="0" y="0" width="200" height="100" fill="#FFFFFF"/>
<line x1="10" y1="90" x2="190" y2="10" stroke="#1F77B4" stroke-width="3"/>
<text x="20" y="30" font-family="sans-serif" font-size="16">σ3/σ1 ≤ 0.1</text>
</svg>"##;

    /// The PNG decodes at twice the SVG's size, has the line's colour and dark text pixels.
    #[test]
    fn png_has_size_line_and_text() {
        let png = svg_to_png(SVG, 2.0).unwrap();
        let img = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
        assert_eq!((img.width(), img.height()), (400, 200));
        let px = img.pixels();
        let blue = px.iter().filter(|p| p.blue() > 150 && p.red() < 80).count();
        assert!(blue > 300, "the line is drawn ({blue} blue pixels)");
        // The text (black) sits in the top-left quarter, where the line does not pass.
        let dark = (0..100u32)
            .flat_map(|y| (0..200u32).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = px[(y * 400 + x) as usize];
                p.red() < 80 && p.green() < 80 && p.blue() < 80
            })
            .count();
        assert!(dark > 100, "the text is drawn with the embedded font ({dark} dark pixels)");
    }

    /// The PDF is a PDF with the embedded DejaVu Sans glyphs.
    #[test]
    fn pdf_embeds_the_font() {
        let pdf = svg_to_pdf(SVG).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let has = |needle: &[u8]| pdf.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"DejaVuSans"), "the font is named");
        assert!(has(b"/FontFile2"), "the font program is embedded");
    }

    /// A malformed SVG is a typed error, not a panic.
    #[test]
    fn bad_svg_is_an_error() {
        assert!(matches!(svg_to_png("<svg", 1.0), Err(Error::Render { format: "png", .. })));
        assert!(matches!(svg_to_pdf("not svg"), Err(Error::Render { format: "pdf", .. })));
    }
}
