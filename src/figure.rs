//! What every figure shares: the embedded font (so text is drawn the same on a machine without
//! fonts) and PNG encoding of a drawing.

use std::path::{Path, PathBuf};

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

/// A figure drawn by one piece of code on any plotters backend, so that its SVG and its PNG
/// are the same picture.
pub(crate) trait Drawing {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draw on `root` (white background included).
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// The drawing as SVG text.
pub(crate) fn svg(drawing: &impl Drawing) -> Result<String> {
    fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, drawing.size()).into_drawing_area();
        drawing.draw(&root).map_err(Error::Other)?;
        root.present().map_err(|e| Error::Other(e.to_string()))?;
    }
    Ok(svg)
}

/// Write the drawing as `<stem>.svg` and `<stem>.png`, each atomically; an error names the
/// file.
pub(crate) fn write_svg_png(stem: &Path, drawing: &impl Drawing) -> Result<()> {
    let mut staged = crate::output::Staged::default();
    stage_svg_png(stem, drawing, &mut staged)?;
    staged.commit()
}

/// Draw `<stem>.svg` and `<stem>.png` into `staged`, to appear when it is committed.
pub(crate) fn stage_svg_png(
    stem: &Path,
    drawing: &impl Drawing,
    staged: &mut crate::output::Staged,
) -> Result<()> {
    let with = |ext: &str| {
        let mut s = stem.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    let named = |e: Error| match e {
        Error::Other(m) => Error::Other(format!("{}: {m}", with(".svg").display())),
        e => e,
    };
    let text = svg(drawing).map_err(named)?;
    staged.put(&with(".svg"), text.as_bytes())?;
    let (w, h) = drawing.size();
    let png = png(w, h, |root| drawing.draw(root)).map_err(named)?;
    staged.put(&with(".png"), &png)
}

/// A tick label without needless decimals: `16`, not `16.0`; `0.25`, not `0.250`.
pub(crate) fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Width and height of a bar plot with a few groups.
pub(crate) const BARS_SIZE: (u32, u32) = (900, 520);

/// A grouped bar plot (see [`draw_bars`]).
pub(crate) struct Bars {
    /// Caption.
    pub(crate) title: String,
    /// The y axis.
    pub(crate) y_desc: String,
    /// One name per group of bars.
    pub(crate) groups: Vec<String>,
    /// One bar per series in each group.
    pub(crate) series: Vec<Series>,
    /// Pixels.
    pub(crate) size: (u32, u32),
}

impl Drawing for Bars {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        draw_bars(root, &self.title, &self.y_desc, &self.groups, &self.series)
    }
}

/// One model's bars: its key label and a value per group (`None`: no bar).
pub(crate) struct Series {
    /// The key's label.
    pub(crate) label: String,
    /// One value per group.
    pub(crate) values: Vec<Option<f64>>,
}

/// Grouped bars with their values printed: one group per name in `groups`, one bar per
/// series in each, a key above the tallest bar.
fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[Series],
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(0.0f64, f64::min).min(0.0);
    let hi = values.iter().copied().fold(0.0f64, f64::max).max(0.1);
    let pad = (hi - lo) * 0.12;
    // Room above the tallest bar for the key (a line per series).
    let room = (hi - lo) * (0.12 + 0.09 * series.len() as f64);
    let n = series.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            0.0..groups.len().max(1) as f64,
            (lo - pad.min(lo.abs()))..hi + room,
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(groups.len().max(1) * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 && i < groups.len() {
                groups[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
    for (m, s) in series.iter().enumerate() {
        let colour = palette[m % palette.len()];
        let value = |g: usize| s.values.get(g).copied().flatten().filter(|v| v.is_finite());
        let bars: Vec<Rectangle<(f64, f64)>> = (0..groups.len())
            .filter_map(|g| {
                let v = value(g)?;
                let x0 = g as f64 + 0.1 + 0.8 * m as f64 / n;
                let x1 = x0 + 0.8 / n * 0.9;
                Some(Rectangle::new([(x0, 0.0), (x1, v)], colour.filled()))
            })
            .collect();
        let labels: Vec<Text<(f64, f64), String>> = (0..groups.len())
            .filter_map(|g| {
                let v = value(g)?;
                let x = g as f64 + 0.1 + 0.8 * (m as f64 + 0.2) / n;
                let y = if v >= 0.0 {
                    v + pad * 0.45
                } else {
                    v - pad * 0.1
                };
                Some(Text::new(
                    format!("{v:.3}"),
                    (x, y),
                    ("sans-serif", 14).into_font(),
                ))
            })
            .collect();
        chart.draw_series(labels).map_err(e)?;
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(s.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    Ok(())
}
