//! Training curves as SVG and PNG, three panels: the training loss, the validation error (MSE,
//! or a profile model's validation loss), and the validation correlations, per epoch, the best
//! epoch marked in each.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::run_dir::EpochRecord;
use crate::error::Result;

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line.
fn line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    data: Vec<(f64, f64)>,
    color: RGBColor,
    label: &str,
) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(data, color))
        .map_err(|e| e.to_string())?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
    Ok(())
}

/// A panel with a caption, epochs on x (whole-number ticks) and the given y range; the best
/// epoch, if any, as a grey vertical line.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    epochs: f64,
    y: std::ops::Range<f64>,
    best: Option<usize>,
) -> Result<Chart<'a, DB>, String> {
    let (lo, hi) = (y.start, y.end);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, y)
        .map_err(|e| e.to_string())?;
    // At most one tick per epoch: plotters then steps by 1, 2, 5, 10, … epochs, all whole.
    let ticks = (epochs as usize).clamp(2, 10);
    // As many decimals as the y range needs: "3000", not "3000.0"; "0.25" on a small range.
    let decimals = match hi - lo {
        s if s >= 10.0 => 0,
        s if s >= 1.0 => 1,
        _ => 2,
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(ticks)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .draw()
        .map_err(|e| e.to_string())?;
    if let Some(e) = best {
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(LineSeries::new(
                [(e as f64, lo), (e as f64, hi)],
                grey.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("best epoch {e}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], grey));
    }
    Ok(chart)
}

/// The corner of the panel (`x` over `1..epochs`, `y` over `lo..hi`) that the fewest points
/// of `lines` fall in (the outer third each way), for the legend.
fn quiet_corner(lines: &[&[(f64, f64)]], epochs: f64, lo: f64, hi: f64) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    let count = |right: bool, top: bool| {
        lines
            .iter()
            .flat_map(|l| l.iter())
            .filter(|&&(x, y)| {
                let fx = (x - 1.0) / (epochs - 1.0).max(1e-9);
                let fy = (y - lo) / (hi - lo).max(1e-12);
                (if right { fx >= 0.6 } else { fx <= 0.4 })
                    && (if top { fy >= 0.6 } else { fy <= 0.4 })
            })
            .count()
    };
    [
        (UpperRight, true, true),
        (LowerRight, true, false),
        (UpperLeft, false, true),
        (LowerLeft, false, false),
    ]
    .into_iter()
    .min_by_key(|&(_, r, t)| count(r, t))
    .map(|(p, _, _)| p)
    .expect("four corners")
}

/// The legend, in the corner the curves leave free.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    at: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Draw `curves.svg` and, beside it, `curves.png`.
pub fn plot_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    crate::figure::write_svg_png(&path.with_extension(""), &Curves(history))
}

struct Curves<'a>(&'a [EpochRecord]);

impl crate::figure::Drawing for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        SIZE
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        draw(root, self.0)
    }
}

const SIZE: (u32, u32) = (1200, 400);

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    history: &[EpochRecord],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, 3));
    let epochs = history.len().max(2) as f64;
    let best = history.iter().rev().find(|r| r.best).map(|r| r.epoch);
    let series = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let top = |v: &[(f64, f64)]| {
        (v.iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            * 1.1)
            .max(1e-6)
    };
    let losses = series(|r| Some(r.train_loss));
    let hi = top(&losses);
    let corner = quiet_corner(&[&losses], epochs, 0.0, hi);
    let mut chart = panel(&panels[0], "training loss", epochs, 0.0..hi, best)?;
    line(&mut chart, losses, BLUE, "train loss")?;
    legend(&mut chart, corner)?;

    // A profile model's validation figure is its loss (MNLL + weighted log-count MSE); the
    // correlations are then the log counts'.
    let profile = history.iter().any(|r| r.val_loss.is_some());
    let (errors, label) = if profile {
        (series(|r| r.val_loss), "validation loss")
    } else {
        (series(|r| Some(r.val_mse)), "validation MSE")
    };
    let hi = top(&errors);
    let corner = quiet_corner(&[&errors], epochs, 0.0, hi);
    let mut chart = panel(&panels[1], label, epochs, 0.0..hi, best)?;
    line(&mut chart, errors, RED, label)?;
    legend(&mut chart, corner)?;

    let (pearson, spearman) = (series(|r| r.val_pearson), series(|r| r.val_spearman));
    let low = pearson
        .iter()
        .chain(&spearman)
        .map(|p| p.1 - 0.05)
        .fold(-0.1f64, f64::min);
    let title = if profile {
        "validation log-counts correlation"
    } else {
        "validation correlation"
    };
    let corner = quiet_corner(&[&pearson, &spearman], epochs, low, 1.0);
    let mut chart = panel(&panels[2], title, epochs, low..1.0, best)?;
    line(&mut chart, pearson, BLUE, "Pearson r")?;
    line(&mut chart, spearman, GREEN, "Spearman ρ")?;
    legend(&mut chart, corner)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, best: bool) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 1.0 / epoch as f64,
            val_mse: 0.5,
            val_pearson: Some(0.1 * epoch as f64),
            val_spearman: Some(0.1 * epoch as f64),
            lr: 1e-3,
            seconds: 1.0,
            seqs_per_sec: 1.0,
            best,
            val_loss: None,
            val_jsd: None,
        }
    }

    /// The x ticks are whole epochs (no "1.5" on a 3-epoch run, no "10.0" on a long one) and
    /// the best epoch is drawn and named in all three panels.
    #[test]
    fn curves_tick_whole_epochs_and_mark_the_best() {
        let svg_of = |h: &[EpochRecord]| crate::figure::svg(&Curves(h)).unwrap();
        let tick_labels = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .filter_map(|t| t.split('>').nth(1))
                .map(|t| t.split('<').next().unwrap_or("").trim().to_string())
                .collect()
        };
        let short = vec![record(1, true), record(2, true), record(3, false)];
        let labels = tick_labels(&svg_of(&short));
        assert_eq!(
            labels.iter().filter(|l| *l == "best epoch 2").count(),
            3,
            "{labels:?}"
        );
        assert!(labels.iter().any(|l| l == "3"), "{labels:?}");
        assert!(
            !labels.iter().any(|l| l == "1.5" || l == "2.5"),
            "{labels:?}"
        );
        let long: Vec<EpochRecord> = (1..=80).map(|e| record(e, e == 61)).collect();
        let labels = tick_labels(&svg_of(&long));
        assert!(labels.iter().any(|l| l == "70"), "{labels:?}");
        assert!(
            !labels.iter().any(|l| l == "10.0" || l == "70.0"),
            "{labels:?}"
        );
        assert!(labels.iter().any(|l| l == "best epoch 61"), "{labels:?}");
    }
}
