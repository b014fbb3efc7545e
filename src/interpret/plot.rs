//! ISM figures as SVG: a letter logo of the sequence, each reference letter scaled by its
//! position's importance (minus the mean substitution effect: tall letters above the axis are
//! bases whose loss lowers the prediction), over a heatmap of every substitution's effect.

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
    draw(map, task, title, path).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
}

fn draw(map: &IsmMap, task: usize, title: &str, path: &Path) -> Result<(), String> {
    let len = map.seq.len();
    let cell = 8i32;
    let width = (len as i32 * cell + 80).max(400) as u32;
    let root = SVGBackend::new(path, (width, 330)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(190);
    let importance: Vec<f32> = (0..len).map(|p| -map.position_mean(p, task)).collect();
    let max_imp = importance.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
    let mut logo = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 16))
        .margin(5)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..len as f64, -(max_imp as f64)..max_imp as f64)
        .map_err(|e| e.to_string())?;
    logo.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .y_desc("importance")
        .draw()
        .map_err(|e| e.to_string())?;
    for (p, (&b, &imp)) in map.seq.iter().zip(&importance).enumerate() {
        let h = (imp.abs() / max_imp * 160.0) as i32;
        if h < 2 {
            continue;
        }
        let letter = (LETTERS[usize::from(b.min(N))] as char).to_string();
        let colour = COLOURS[usize::from(b.min(N))];
        let y = if imp >= 0.0 { imp as f64 } else { 0.0 };
        logo.draw_series(std::iter::once(Text::new(
            letter,
            (p as f64, y),
            ("monospace", h).into_font().color(&colour),
        )))
        .map_err(|e| e.to_string())?;
    }
    let max_eff = map.effects.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
    let mut heat = ChartBuilder::on(&bottom)
        .margin(5)
        .x_label_area_size(25)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..len as f64, 0f64..4.0)
        .map_err(|e| e.to_string())?;
    heat.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_desc("position")
        .y_labels(4)
        .y_label_formatter(&|y| {
            // rows from the bottom: T, C, G, A (codes 3..0)
            ["T", "C", "G", "A"]
                .get(*y as usize)
                .map_or(String::new(), |s| s.to_string())
        })
        .draw()
        .map_err(|e| e.to_string())?;
    heat.draw_series((0..len).flat_map(|p| {
        (0..4u8).map(move |b| {
            let v = map.effect(p, b, task);
            let row = f64::from(3 - b);
            Rectangle::new(
                [(p as f64, row), (p as f64 + 1.0, row + 1.0)],
                diverging(v, max_eff).filled(),
            )
        })
    }))
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
