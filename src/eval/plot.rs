//! The figures of a score: predicted against measured (points, or a density where there are
//! many), and the DREAM score's subsets as bars per model.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::ScoreReport;
use crate::error::{Error, Result};
use crate::figure::{Bars, Drawing, Series, tick, write_svg_png};

/// Above this many points a scatter is drawn as a density (counts per cell).
pub const DENSITY_ABOVE: usize = 5_000;
/// Cells per axis of a density.
const CELLS: usize = 120;

/// Predicted against measured, with Pearson r and Spearman ρ in the corner.
pub struct Scatter<'a> {
    /// Caption.
    pub title: String,
    /// Measured values (x).
    pub measured: &'a [f64],
    /// Predictions (y), one per measured value.
    pub predicted: &'a [f64],
}

impl Scatter<'_> {
    /// Write it as `<stem>.svg` and `<stem>.png`. Non-finite pairs are left out of the
    /// figure (and of r and ρ); fewer than two pairs is an error.
    pub fn write(&self, stem: &Path) -> Result<()> {
        if self.measured.len() != self.predicted.len() {
            return Err(Error::Other(format!(
                "{} measured values for {} predictions",
                self.measured.len(),
                self.predicted.len()
            )));
        }
        if self.pairs().count() < 2 {
            return Err(Error::Other(format!(
                "{}: a scatter needs at least two measured values",
                stem.display()
            )));
        }
        write_svg_png(stem, self)
    }

    fn pairs(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.measured
            .iter()
            .zip(self.predicted)
            .map(|(&x, &y)| (x, y))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// The smallest and largest value, widened a little (and a little more where they are equal).
fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let pad = ((hi - lo) * 0.04).max(1e-6);
    (lo - pad, hi + pad)
}

/// Viridis-like colour for `t` ∈ 0..1.
fn density_colour(t: f64) -> RGBColor {
    const STOPS: [(f64, (u8, u8, u8)); 5] = [
        (0.0, (68, 1, 84)),
        (0.25, (59, 82, 139)),
        (0.5, (33, 145, 140)),
        (0.75, (94, 201, 98)),
        (1.0, (253, 231, 37)),
    ];
    let t = t.clamp(0.0, 1.0);
    let i = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let ((t0, a), (t1, b)) = (STOPS[i - 1], STOPS[i]);
    let f = (t - t0) / (t1 - t0);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Drawing for Scatter<'_> {
    fn size(&self) -> (u32, u32) {
        (760, 640)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (xs, ys): (Vec<f64>, Vec<f64>) = self.pairs().unzip();
        let (x0, x1) = range(xs.iter().copied());
        let (y0, y1) = range(ys.iter().copied());
        let density = xs.len() > DENSITY_ABOVE;
        let (plot, key) = if density {
            root.split_horizontally(660)
        } else {
            root.split_horizontally(760)
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .x_desc("measured")
            .y_desc("predicted")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        let mut top = 1usize;
        if density {
            let cell = |v: f64, lo: f64, hi: f64| {
                (((v - lo) / (hi - lo) * CELLS as f64) as usize).min(CELLS - 1)
            };
            let mut counts = vec![0usize; CELLS * CELLS];
            for (&x, &y) in xs.iter().zip(&ys) {
                counts[cell(y, y0, y1) * CELLS + cell(x, x0, x1)] += 1;
            }
            top = counts.iter().copied().max().unwrap_or(1).max(1);
            let (dx, dy) = ((x1 - x0) / CELLS as f64, (y1 - y0) / CELLS as f64);
            let lt = (top as f64).ln_1p();
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c > 0)
                        .map(|(i, &c)| {
                            let (cx, cy) = ((i % CELLS) as f64, (i / CELLS) as f64);
                            let colour = density_colour((c as f64).ln_1p() / lt);
                            Rectangle::new(
                                [
                                    (x0 + cx * dx, y0 + cy * dy),
                                    (x0 + (cx + 1.0) * dx, y0 + (cy + 1.0) * dy),
                                ],
                                colour.filled(),
                            )
                        }),
                )
                .map_err(e)?;
        } else {
            let dot = RGBColor(31, 119, 180).mix(0.45).filled();
            chart
                .draw_series(
                    xs.iter()
                        .zip(&ys)
                        .map(|(&x, &y)| Circle::new((x, y), 3, dot)),
                )
                .map_err(e)?;
        }
        let fmt = |v: Option<f64>| v.map_or("undefined".into(), |v| format!("{v:.3}"));
        let text = [
            format!("r = {}", fmt(super::pearson(&xs, &ys))),
            format!("ρ = {}", fmt(super::spearman(&xs, &ys))),
            format!("n = {}", xs.len()),
        ];
        let style = ("sans-serif", 16).into_font();
        for (k, t) in text.iter().enumerate() {
            plot.draw(&Text::new(
                t.clone(),
                (84, 48 + 20 * k as i32),
                style.clone(),
            ))
            .map_err(e)?;
        }
        if density {
            // The colour key: counts per cell, on the log scale the cells use.
            let (_, h) = key.dim_in_pixel();
            let (top_px, bottom_px) = (60i32, h as i32 - 60);
            let lt = (top as f64).ln_1p();
            for py in top_px..bottom_px {
                let t = 1.0 - (py - top_px) as f64 / (bottom_px - top_px) as f64;
                key.draw(&Rectangle::new(
                    [(10, py), (34, py + 1)],
                    density_colour(t).filled(),
                ))
                .map_err(e)?;
            }
            let label = ("sans-serif", 14).into_font();
            for t in [0.0, 0.5, 1.0] {
                let count = (t * lt).exp_m1().round() as usize;
                let py = bottom_px - (t * (bottom_px - top_px) as f64) as i32;
                key.draw(&Text::new(
                    format!("{}", count.max(1)),
                    (40, py - 7),
                    label.clone(),
                ))
                .map_err(e)?;
            }
            key.draw(&Text::new("per cell", (6, top_px - 24), label))
                .map_err(e)?;
        }
        Ok(())
    }
}

/// The DREAM score's subsets as grouped bars, one bar per model: Pearson r² and Spearman ρ,
/// each its own figure.
pub(crate) fn subset_bars(report: &ScoreReport) -> [Bars; 2] {
    let mut groups: Vec<String> = Vec::new();
    for m in &report.models {
        for s in &m.score.subsets {
            if !groups.contains(&s.name) {
                groups.push(s.name.clone());
            }
        }
    }
    let name = |m: &str| {
        Path::new(m)
            .file_name()
            .map_or(m.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let series = |f: fn(&super::SubsetScore) -> Option<f64>| -> Vec<Series> {
        report
            .models
            .iter()
            .map(|m| Series {
                label: name(&m.model),
                values: groups
                    .iter()
                    .map(|g| m.score.subsets.iter().find(|s| &s.name == g).and_then(f))
                    .collect(),
            })
            .collect()
    };
    let size = ((150 * groups.len() as u32 + 160).max(700), 520);
    let bars = |title: &str, y: &str, s| Bars {
        title: title.into(),
        y_desc: y.into(),
        groups: groups.clone(),
        series: s,
        size,
    };
    [
        bars(
            "DREAM test subsets: Pearson r²",
            "Pearson r²",
            series(|s| s.pearson.map(|r| r * r)),
        ),
        bars(
            "DREAM test subsets: Spearman ρ",
            "Spearman ρ",
            series(|s| s.spearman),
        ),
    ]
}

/// Write `score --plots DIR`: `subsets_pearson` and `subsets_spearman` (SVG and PNG), and per
/// prediction file a scatter of every test row, `scatter_<file stem>`.
pub fn write_score_figures(
    report: &ScoreReport,
    measured: &[f64],
    dir: &Path,
) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    let [pearson, spearman] = subset_bars(report);
    for (stem, bars) in [("subsets_pearson", pearson), ("subsets_spearman", spearman)] {
        write_svg_png(&dir.join(stem), &bars)?;
        written.push(dir.join(stem));
    }
    let mut stems: Vec<String> = Vec::new();
    for (m, preds) in report.models.iter().zip(&report.predictions) {
        let base = Path::new(&m.model)
            .file_stem()
            .map_or("predictions".into(), |s| s.to_string_lossy().into_owned());
        // Two files of one name in different directories get their number.
        let mut stem = format!("scatter_{base}");
        if stems.contains(&stem) {
            stem = format!("{stem}_{}", stems.len() + 1);
        }
        stems.push(stem.clone());
        Scatter {
            title: format!("{}: all test rows", m.model),
            measured,
            predicted: preds,
        }
        .write(&dir.join(&stem))?;
        written.push(dir.join(stem));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap_or("").trim().to_string())
            .collect()
    }

    /// Few points are points, many a density with its key; r and ρ are those of the data.
    #[test]
    fn scatter_shows_r_and_rho_and_turns_dense() {
        let x: Vec<f64> = (0..200).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| (v * 0.1).sin() + v * 0.01).collect();
        let s = Scatter {
            title: "t".into(),
            measured: &x,
            predicted: &y,
        };
        let svg = crate::figure::svg(&s).unwrap();
        let r = super::super::pearson(&x, &y).unwrap();
        let rho = super::super::spearman(&x, &y).unwrap();
        let t = texts(&svg);
        assert!(t.contains(&format!("r = {r:.3}")), "{t:?}");
        assert!(t.contains(&format!("ρ = {rho:.3}")), "{t:?}");
        assert_eq!(svg.matches("<circle").count(), 200);
        assert!(!t.contains(&"per cell".to_string()));
        let x: Vec<f64> = (0..20_000).map(|i| (i % 997) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| v * 2.0).collect();
        let dense = Scatter {
            title: "t".into(),
            measured: &x,
            predicted: &y,
        };
        let svg = crate::figure::svg(&dense).unwrap();
        assert_eq!(svg.matches("<circle").count(), 0);
        assert!(texts(&svg).contains(&"per cell".to_string()));
        assert!(texts(&svg).contains(&"r = 1.000".to_string()));
        assert_eq!(
            (tick(16.0), tick(-0.0), tick(0.25)),
            ("16".into(), "0".into(), "0.25".into())
        );
        // Non-finite pairs are left out; one pair is not a scatter.
        let dir = tempfile::tempdir().unwrap();
        let one = Scatter {
            title: "t".into(),
            measured: &[1.0, f64::NAN],
            predicted: &[1.0, 2.0],
        };
        assert!(one.write(&dir.path().join("s")).is_err());
        assert!(!dir.path().join("s.svg").exists());
    }
}
