//! What every figure shares: the embedded font (so text is drawn the same on a machine without
//! fonts) and PNG encoding of a drawing.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans.LICENSE`).
static SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Register the embedded font as `sans-serif`; call before drawing (once is enough; later
/// calls do nothing).
pub(crate) fn fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, SANS)
                .unwrap_or_else(|_| unreachable!("the embedded font is a valid TrueType file"));
        }
    });
}

/// Draw a `width` × `height` picture with `draw` and encode it as PNG (RGB, 8 bits).
pub(crate) fn png(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    fonts();
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root).map_err(Error::Other)?;
        root.present().map_err(|e| Error::Other(e.to_string()))?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| Error::Other(format!("PNG encoding: {e}"));
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&rgb).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}
