//! ISM figures as SVG: an importance track — per position a bar in the reference base's colour,
//! as tall as the importance (minus the mean substitution effect: bars above the axis are bases
//! whose loss lowers the prediction), topped by the base's letter — over a heatmap of every
//! substitution's effect (red raises, blue lowers the prediction). Positions are 1-based, as in
//! `ism.tsv`.

use std::path::Path;

use plotters::prelude::*;

use super::ism::IsmMap;
use crate::data::alphabet::{LETTERS, N};
use crate::error::{Error, Result};

/// Letter colours in code order A, G, C, T, N.
const COLOURS: [RGBColor; 5] = [
    RGBColor(0, 150, 0),
    RGBColor(245, 160, 0),
    RGBColor(0, 0, 200),
    RGBColor(210, 0, 0),
    RGBColor(120, 120, 120),
];

fn diverging(v: f32, scale: f32) -> RGBColor {
    let t = (v / scale).clamp(-1.0, 1.0);
    let fade = |x: f32| (255.0 * (1.0 - x.abs())) as u8;
    if t >= 0.0 {
        RGBColor(255, fade(t), fade(t))
    } else {
        RGBColor(fade(t), fade(t), 255)
    }
}

/// Draw `map` (task `task`) to `path`.
pub fn plot_ism(map: &IsmMap, task: usize, title: &str, path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(map, task, title, &mut svg)
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    crate::output::write_atomic(path, svg.as_bytes())
}

fn draw(map: &IsmMap, task: usize, title: &str, svg: &mut String) -> Result<(), String> {
    let len = map.seq.len();
    let cell = 8i32;
    let width = (len as i32 * cell + 80).max(400) as u32;
    crate::figure::fonts();
    let root = SVGBackend::with_string(svg, (width, 330)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(190);
    let importance: Vec<f32> = (0..len).map(|p| -map.position_mean(p, task)).collect();
    let max_imp = importance.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
    let x_range = 0.5f64..len as f64 + 0.5;
    let y_max = max_imp as f64 * 1.25;
    let mut logo = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 16))
        .margin(5)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), -y_max..y_max)
        .map_err(|e| e.to_string())?;
    logo.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .y_desc("importance")
        .draw()
        .map_err(|e| e.to_string())?;
    for (p, (&b, &imp)) in map.seq.iter().zip(&importance).enumerate() {
        let colour = COLOURS[usize::from(b.min(N))];
        let x = p as f64 + 1.0;
        let imp = f64::from(imp);
        logo.draw_series(std::iter::once(Rectangle::new(
            [(x - 0.4, 0.0), (x + 0.4, imp)],
            colour.filled(),
        )))
        .map_err(|e| e.to_string())?;
        let letter = (LETTERS[usize::from(b.min(N))] as char).to_string();
        let y = if imp >= 0.0 {
            imp + 0.2 * max_imp as f64
        } else {
            imp
        };
        logo.draw_series(std::iter::once(Text::new(
            letter,
            (x - 0.4, y),
            ("monospace", cell).into_font().color(&colour),
        )))
        .map_err(|e| e.to_string())?;
    }
    let max_eff = map.effects.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
    let mut heat = ChartBuilder::on(&bottom)
        .margin(5)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, 0f64..4.0)
        .map_err(|e| e.to_string())?;
    heat.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_desc("position")
        .y_labels(0)
        .draw()
        .map_err(|e| e.to_string())?;
    // Rows from the top: A, C, G, T (codes 0, 2, 1, 3).
    const ROWS: [(u8, &str); 4] = [(0, "A"), (2, "C"), (1, "G"), (3, "T")];
    heat.draw_series(ROWS.iter().enumerate().flat_map(|(i, &(b, _))| {
        let row = 3.0 - i as f64;
        (0..len).map(move |p| {
            let v = map.effect(p, b, task);
            let x = p as f64 + 0.5;
            Rectangle::new(
                [(x, row), (x + 1.0, row + 1.0)],
                diverging(v, max_eff).filled(),
            )
        })
    }))
    .map_err(|e| e.to_string())?;
    for (i, &(b, name)) in ROWS.iter().enumerate() {
        heat.draw_series(std::iter::once(Text::new(
            name.to_string(),
            (-0.02 * len as f64, 3.7 - i as f64),
            ("monospace", 14)
                .into_font()
                .color(&COLOURS[usize::from(b)]),
        )))
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
