//! The grid's heatmap (Extended Data Fig. 6): rows data processor · first block, columns core ·
//! final block, each cell coloured by its validation Pearson r at the best epoch; the
//! incompatible, unplanned and not-converged cells in greys, named in a key.

use std::collections::HashMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{CellResult, CellStatus, incompatibility};

const TEAMS: [char; 3] = ['A', 'B', 'U'];
const CELL: i32 = 64;
const LEFT: i32 = 120;
const TOP: i32 = 70;
/// Width and height of the picture.
pub const SIZE: (u32, u32) = (900, 740);

/// White → blue, by `t` in [0, 1].
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// What a square shows.
enum Square {
    Value(f64),
    Plain(&'static str, RGBColor),
}

fn square(name: &str, results: &HashMap<String, &CellResult>) -> Square {
    if incompatibility(name).is_some() {
        return Square::Plain("", RGBColor(150, 150, 150));
    }
    match results.get(name) {
        None => Square::Plain("", RGBColor(235, 235, 235)),
        Some(r) => match (&r.status, r.val_pearson) {
            (CellStatus::Diverged(_), _) => Square::Plain("n.c.", RGBColor(70, 70, 70)),
            (_, Some(v)) => Square::Value(v),
            _ => Square::Plain("…", RGBColor(255, 255, 255)),
        },
    }
}

/// The heat map of a grid's cells, as a figure.
pub struct Heatmap<'a>(pub &'a [CellResult]);

impl crate::figure::Drawing for Heatmap<'_> {
    fn size(&self) -> (u32, u32) {
        SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self.0)
    }
}

/// Draw the heatmap of `rows` on `root`.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[CellResult],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let results: HashMap<String, &CellResult> =
        rows.iter().map(|r| (r.cell.name.clone(), r)).collect();
    let values: Vec<f64> = rows.iter().filter_map(|r| r.val_pearson).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if values.is_empty() {
        (0.0, 1.0)
    } else if hi - lo < 1e-9 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo, hi)
    };
    let text = |size: i32| ("sans-serif", size).into_font();
    root.draw(&Text::new(
        "Prix Fixe grid: validation Pearson r at the best epoch",
        (LEFT, 8),
        text(20),
    ))
    .map_err(e)?;
    root.draw(&Text::new(
        "core · final →",
        (LEFT + 3 * CELL, 34),
        text(15),
    ))
    .map_err(e)?;
    root.draw(&Text::new("data processor · first ↓", (8, 34), text(13)))
        .map_err(e)?;
    let pairs: Vec<(char, char)> = TEAMS
        .iter()
        .flat_map(|&a| TEAMS.iter().map(move |&b| (a, b)))
        .collect();
    for (j, (core, fin)) in pairs.iter().enumerate() {
        let x = LEFT + j as i32 * CELL;
        root.draw(&Text::new(
            format!("{core}·{fin}"),
            (x + 20, TOP - 20),
            text(15),
        ))
        .map_err(e)?;
    }
    for (i, (dp, first)) in pairs.iter().enumerate() {
        let y = TOP + i as i32 * CELL;
        root.draw(&Text::new(
            format!("{dp}·{first}"),
            (LEFT - 50, y + 24),
            text(15),
        ))
        .map_err(e)?;
        for (j, (core, fin)) in pairs.iter().enumerate() {
            let x = LEFT + j as i32 * CELL;
            let name = format!("{dp}{first}{core}{fin}");
            let (fill, label, ink) = match square(&name, &results) {
                Square::Value(v) => {
                    let t = (v - lo) / (hi - lo);
                    (
                        ramp(t),
                        format!("{v:.2}"),
                        if t > 0.55 { WHITE } else { BLACK },
                    )
                }
                Square::Plain(label, color) => (color, label.to_string(), BLACK),
            };
            root.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + CELL - 1, y + CELL - 1)],
                fill.filled(),
            ))
            .map_err(e)?;
            if !label.is_empty() {
                root.draw(&Text::new(label, (x + 14, y + 24), text(15).color(&ink)))
                    .map_err(e)?;
            }
        }
    }
    // Colour bar.
    let (bx, by, bh) = (LEFT + 9 * CELL + 30, TOP, 9 * CELL);
    for k in 0..bh {
        let t = 1.0 - k as f64 / bh as f64;
        root.draw(&Rectangle::new(
            [(bx, by + k), (bx + 22, by + k + 1)],
            ramp(t).filled(),
        ))
        .map_err(e)?;
    }
    root.draw(&Rectangle::new([(bx, by), (bx + 22, by + bh)], BLACK))
        .map_err(e)?;
    for k in 0..=4 {
        let v = hi - (hi - lo) * k as f64 / 4.0;
        let y = by + bh * k / 4;
        root.draw(&PathElement::new(vec![(bx + 22, y), (bx + 28, y)], BLACK))
            .map_err(e)?;
        root.draw(&Text::new(format!("{v:.2}"), (bx + 32, y - 7), text(13)))
            .map_err(e)?;
    }
    root.draw(&Text::new("Pearson r", (bx - 6, by - 22), text(13)))
        .map_err(e)?;
    // Key.
    let key = [
        (RGBColor(150, 150, 150), "incompatible (36 of 81)"),
        (RGBColor(235, 235, 235), "not in this grid's plan"),
        (RGBColor(70, 70, 70), "n.c.: not converged"),
        (RGBColor(255, 255, 255), "…: not trained yet"),
    ];
    let ky = TOP + 9 * CELL + 20;
    for (k, (color, what)) in key.iter().enumerate() {
        let x = LEFT + (k as i32 % 3) * 240;
        let y = ky + (k as i32 / 3) * 24;
        root.draw(&Rectangle::new([(x, y), (x + 16, y + 16)], color.filled()))
            .map_err(e)?;
        root.draw(&Rectangle::new([(x, y), (x + 16, y + 16)], BLACK))
            .map_err(e)?;
        root.draw(&Text::new(*what, (x + 22, y + 1), text(13)))
            .map_err(e)?;
    }
    Ok(())
}
