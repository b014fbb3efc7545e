//! Interpretation figures, SVG and PNG: a sequence logo (letters drawn as filled glyph shapes,
//! each as tall as its score, stacked above the axis for positive scores and upside down below
//! it for negative ones, as logomaker draws them) over a heat map of A, C, G, T × position with
//! its colour bar (red raises, blue lowers the prediction). Positions are 1-based.
//!
//! ISM: the logo shows each position's reference base at its importance (minus the mean
//! substitution effect), the heat map every substitution's effect. Attributions: the logo and
//! the heat map both show the `(4, L)` attributions.
//!
//! A long input (an ATAC model's 2,114 nt) is drawn over the [`DRAWN`]-nt window where the
//! values are largest (the most |effect| or |attribution| in total), its positions numbered
//! as in the whole input and the title saying which they are; the tables and arrays hold all.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::attribute::Attribution;
use super::ism::IsmMap;
use crate::error::Result;

/// Letter colours, A, C, G, T (logomaker's classic scheme).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0, 150, 0),
    RGBColor(0, 0, 200),
    RGBColor(245, 160, 0),
    RGBColor(210, 0, 0),
];
const NAMES: [&str; 4] = ["A", "C", "G", "T"];

fn diverging(v: f32, scale: f32) -> RGBColor {
    let t = (v / scale).clamp(-1.0, 1.0);
    let fade = |x: f32| (255.0 * (1.0 - x.abs())) as u8;
    if t >= 0.0 {
        RGBColor(255, fade(t), fade(t))
    } else {
        RGBColor(fade(t), fade(t), 255)
    }
}

/// The most positions one figure draws: 9 pixels a letter, readable without zooming.
pub const DRAWN: usize = 400;

/// The window of at most [`DRAWN`] positions of `(4, len)` `values` with the largest sum of
/// |value| (the first such): `(start, width)`, 0-based.
fn window(values: &[f32], len: usize) -> (usize, usize) {
    if len <= DRAWN {
        return (0, len);
    }
    let column: Vec<f64> = (0..len)
        .map(|p| (0..4).map(|b| f64::from(values[b * len + p].abs())).sum())
        .collect();
    let mut sum: f64 = column[..DRAWN].iter().sum();
    let (mut best, mut start) = (sum, 0);
    for s in 1..=len - DRAWN {
        sum += column[s + DRAWN - 1] - column[s - 1];
        if sum > best + 1e-12 {
            (best, start) = (sum, s);
        }
    }
    (start, DRAWN)
}

/// Positions `start..start + width` of each of the 4 rows of `(4, len)` values.
fn crop(values: &[f32], len: usize, start: usize, width: usize) -> Vec<f32> {
    (0..4)
        .flat_map(|b| {
            values[b * len + start..b * len + start + width]
                .iter()
                .copied()
        })
        .collect()
}

/// `title`, with the positions shown where the figure draws a window of a longer input.
fn window_title(title: &str, start: usize, width: usize, len: usize) -> String {
    if width == len {
        title.to_string()
    } else {
        format!(
            "{title} (positions {}–{} of {len})",
            start + 1,
            start + width
        )
    }
}

/// Draw the ISM map (task `task`) as `stem`.svg and `stem`.png into `staged`.
pub fn plot_ism(
    map: &IsmMap,
    task: usize,
    title: &str,
    stem: &Path,
    staged: &mut crate::output::Staged,
) -> Result<()> {
    // codes A=0 G=1 C=2 T=3 → rows A, C, G, T
    const CODE: [u8; 4] = [0, 2, 1, 3];
    let len = map.seq.len();
    let mut logo = vec![0.0f32; 4 * len];
    let mut heat = vec![0.0f32; 4 * len];
    for p in 0..len {
        for (row, &b) in CODE.iter().enumerate() {
            heat[row * len + p] = map.effect(p, b, task);
            if map.seq[p] == b {
                logo[row * len + p] = -map.position_mean(p, task);
            }
        }
    }
    let (start, width) = window(&heat, len);
    let panels = Panels {
        title: &window_title(title, start, width, len),
        logo: &crop(&logo, len, start, width),
        logo_label: "importance",
        heat: &crop(&heat, len, start, width),
        heat_label: "effect",
        len: width,
        offset: start,
    };
    crate::figure::stage_svg_png(stem, &panels, staged)
}

/// Draw an attribution (over the model's `len`-nt input window) as `stem`.svg and `.png`
/// into `staged`.
pub fn plot_attribution(
    a: &Attribution,
    len: usize,
    title: &str,
    stem: &Path,
    staged: &mut crate::output::Staged,
) -> Result<()> {
    let (start, width) = window(&a.values, len);
    let values = crop(&a.values, len, start, width);
    let panels = Panels {
        title: &window_title(title, start, width, len),
        logo: &values,
        logo_label: "attribution",
        heat: &values,
        heat_label: "attribution",
        len: width,
        offset: start,
    };
    crate::figure::stage_svg_png(stem, &panels, staged)
}

struct Panels<'a> {
    title: &'a str,
    /// `(4, len)`, A, C, G, T.
    logo: &'a [f32],
    logo_label: &'a str,
    heat: &'a [f32],
    heat_label: &'a str,
    /// Positions drawn.
    len: usize,
    /// The input position (0-based) of the first one drawn.
    offset: usize,
}

impl crate::figure::Drawing for Panels<'_> {
    fn size(&self) -> (u32, u32) {
        ((self.len as u32 * 9 + 190).clamp(500, 4000), 380)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self)
    }
}

/// The outline of a letter in the unit box (x, y ∈ 0..1, y up): filled polygons, then holes
/// (drawn in the background colour inside the letter's own box).
type Outline = Vec<Vec<(f64, f64)>>;

fn glyph(letter: usize) -> (Outline, Outline) {
    let arc = |r0: f64, r1: f64, from: f64, to: f64| -> Vec<(f64, f64)> {
        let n = 40;
        let pt = |r: f64, t: f64| (0.5 + 0.5 * r * t.cos(), 0.5 + 0.5 * r * t.sin());
        let mut v: Vec<(f64, f64)> = (0..=n)
            .map(|i| pt(r1, from + (to - from) * i as f64 / n as f64))
            .collect();
        v.extend(
            (0..=n)
                .rev()
                .map(|i| pt(r0, from + (to - from) * i as f64 / n as f64)),
        );
        v
    };
    let deg = std::f64::consts::PI / 180.0;
    match letter {
        0 => (
            vec![vec![
                (0.0, 0.0),
                (0.4, 1.0),
                (0.6, 1.0),
                (1.0, 0.0),
                (0.79, 0.0),
                (0.69, 0.27),
                (0.31, 0.27),
                (0.21, 0.0),
            ]],
            vec![vec![(0.37, 0.43), (0.5, 0.79), (0.63, 0.43)]],
        ),
        1 => (vec![arc(0.64, 1.0, 40.0 * deg, 320.0 * deg)], vec![]),
        2 => (
            vec![
                arc(0.64, 1.0, 40.0 * deg, 360.0 * deg),
                vec![(0.55, 0.42), (1.0, 0.42), (1.0, 0.56), (0.55, 0.56)],
            ],
            vec![],
        ),
        _ => (
            vec![vec![
                (0.0, 1.0),
                (1.0, 1.0),
                (1.0, 0.84),
                (0.59, 0.84),
                (0.59, 0.0),
                (0.41, 0.0),
                (0.41, 0.84),
                (0.0, 0.84),
            ]],
            vec![],
        ),
    }
}

/// A colour-bar label: 0 for rounding noise, three significant digits otherwise.
fn bar_label(v: f64, scale: f64) -> String {
    if v.abs() < 1e-6 * scale {
        return "0".into();
    }
    if (0.01..1e4).contains(&scale) {
        let decimals = (1.0 - scale.log10().floor()).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.1e}")
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Panels) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let len = p.len;
    root.fill(&WHITE).map_err(e)?;
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 - 110);
    let (top, bottom) = main.split_vertically(220);
    // Positions in the input's numbering (1-based): the drawn window starts after `offset`.
    let first = p.offset as f64 + 0.5;
    let x_range = first..first + len as f64;
    // The logo's axis: the tallest stack either way.
    let (mut up, mut down) = (1e-9f64, 1e-9f64);
    for pos in 0..len {
        let (mut u, mut d) = (0.0, 0.0);
        for b in 0..4 {
            let v = f64::from(p.logo[b * len + pos]);
            if v > 0.0 { u += v } else { d -= v }
        }
        up = up.max(u);
        down = down.max(d);
    }
    let mut logo = ChartBuilder::on(&top)
        .caption(p.title, ("sans-serif", 18))
        .margin(8)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), -down * 1.05..up * 1.05)
        .map_err(e)?;
    logo.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(0)
        .y_desc(p.logo_label)
        .y_label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    for pos in 0..len {
        // Stack the smallest first, so the largest letter sits on top (below: at the bottom).
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| {
            p.logo[a * len + pos]
                .abs()
                .total_cmp(&p.logo[b * len + pos].abs())
        });
        let (mut above, mut below) = (0.0f64, 0.0f64);
        let x0 = first + pos as f64 + 0.04;
        for b in order {
            let v = f64::from(p.logo[b * len + pos]);
            if v == 0.0 {
                continue;
            }
            // y0: the letter's foot; h: its signed height (negative: drawn upside down).
            let (y0, h) = if v > 0.0 {
                above += v;
                (above - v, v)
            } else {
                below += v;
                (below - v, v)
            };
            let place = |pts: &Vec<(f64, f64)>| -> Vec<(f64, f64)> {
                pts.iter()
                    .map(|&(gx, gy)| (x0 + 0.92 * gx, y0 + h * gy))
                    .collect()
            };
            let (fills, holes) = glyph(b);
            for f in &fills {
                logo.draw_series(std::iter::once(Polygon::new(place(f), COLOURS[b].filled())))
                    .map_err(e)?;
            }
            for hole in &holes {
                logo.draw_series(std::iter::once(Polygon::new(place(hole), WHITE.filled())))
                    .map_err(e)?;
            }
        }
    }
    logo.draw_series(std::iter::once(PathElement::new(
        vec![(first, 0.0), (first + len as f64, 0.0)],
        BLACK.stroke_width(1),
    )))
    .map_err(e)?;
    let scale = p.heat.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
    let mut heat = ChartBuilder::on(&bottom)
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0f64..4.0)
        .map_err(e)?;
    let ticks = (len / 10).clamp(2, 20);
    heat.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_desc("position")
        .x_labels(ticks)
        .x_label_formatter(&|v| format!("{}", v.round() as i64))
        .y_labels(0)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    heat.draw_series((0..4).flat_map(|row| {
        let y = 3.0 - row as f64;
        (0..len).map(move |pos| {
            let x = first + pos as f64;
            Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                diverging(p.heat[row * len + pos], scale).filled(),
            )
        })
    }))
    .map_err(e)?;
    // Row names left of the map, in the letters' colours.
    let area = heat.plotting_area();
    let (x_px, _) = area.get_pixel_range();
    let (_, y_px) = area.get_pixel_range();
    let row_h = (y_px.end - y_px.start) as f64 / 4.0;
    for (row, name) in NAMES.iter().enumerate() {
        let y = y_px.start as f64 + (row as f64 + 0.5) * row_h - 8.0;
        root.draw(&Text::new(
            name.to_string(),
            (x_px.start - 24, y as i32),
            ("sans-serif", 16).into_font().color(&COLOURS[row]),
        ))
        .map_err(e)?;
    }
    // The colour bar: −scale (blue) … +scale (red), beside the heat map.
    let (_, bar_bottom) = bar.split_vertically(220);
    let mut cb = ChartBuilder::on(&bar_bottom)
        .margin_top(8)
        .margin_bottom(48)
        .margin_right(8)
        .y_label_area_size(62)
        .caption(p.heat_label, ("sans-serif", 12))
        .build_cartesian_2d(0f64..1.0, -f64::from(scale)..f64::from(scale))
        .map_err(e)?;
    cb.configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(5)
        .y_label_formatter(&|v| bar_label(*v, f64::from(scale)))
        .label_style(("sans-serif", 10))
        .draw()
        .map_err(e)?;
    let steps = 60;
    let s = f64::from(scale);
    cb.draw_series((0..steps).map(|i| {
        let lo = -s + 2.0 * s * i as f64 / steps as f64;
        let hi = lo + 2.0 * s / steps as f64;
        Rectangle::new(
            [(0.0, lo), (1.0, hi)],
            diverging(((lo + hi) / 2.0) as f32, scale).filled(),
        )
    }))
    .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_input_is_drawn_where_its_values_are_largest() {
        let len = 2114;
        let mut v = vec![0.01f32; 4 * len];
        // A motif at 1,500–1,510 (0-based) on row G, negative.
        for p in 1500..1510 {
            v[2 * len + p] = -3.0;
        }
        let (start, width) = window(&v, len);
        assert_eq!(width, DRAWN);
        assert!(start <= 1500 && start + width >= 1510, "{start}");
        let c = crop(&v, len, start, width);
        assert_eq!(c.len(), 4 * DRAWN);
        assert_eq!(c[2 * DRAWN + (1500 - start)], -3.0);
        assert_eq!(
            window_title("r1", start, width, len),
            format!("r1 (positions {}–{} of 2114)", start + 1, start + DRAWN)
        );
        // A short input is drawn whole, its title as it is.
        assert_eq!(window(&v[..4 * 230], 230), (0, 230));
        assert_eq!(window_title("r1", 0, 230, 230), "r1");
    }
}
