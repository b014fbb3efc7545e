//! Training curves as SVG: loss per epoch and validation correlations per epoch.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::run_dir::EpochRecord;
use crate::error::{Error, Result};

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line.
fn line(
    chart: &mut Chart<'_, '_>,
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
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    epochs: f64,
    y: std::ops::Range<f64>,
    best: Option<usize>,
) -> Result<Chart<'a, 'b>, String> {
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

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Draw `curves.svg`: training loss and validation MSE (left), Pearson r and Spearman ρ (right).
pub fn plot_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(history, &mut svg).map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    crate::output::write_atomic(path, svg.as_bytes())
}

fn draw(history: &[EpochRecord], svg: &mut String) -> Result<(), String> {
    crate::figure::fonts();
    let root = SVGBackend::with_string(svg, (960, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(480);
    let epochs = history.len().max(2) as f64;
    let best = history.iter().rev().find(|r| r.best).map(|r| r.epoch);
    let series = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let losses = series(|r| Some(r.train_loss));
    // A profile model's validation figure is its loss (MNLL + weighted log-count MSE), on the
    // training loss's scale; the correlations are then the log counts'.
    let profile = history.iter().any(|r| r.val_loss.is_some());
    let mses = if profile {
        series(|r| r.val_loss)
    } else {
        series(|r| Some(r.val_mse))
    };
    let top = losses
        .iter()
        .chain(&mses)
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        * 1.1;

    let mut chart = panel(&left, "loss", epochs, 0.0..top.max(1e-6), best)?;
    line(&mut chart, losses, BLUE, "train loss")?;
    let val_label = if profile {
        "validation loss"
    } else {
        "validation MSE"
    };
    line(&mut chart, mses, RED, val_label)?;
    legend(&mut chart)?;

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
    let mut chart = panel(&right, title, epochs, low..1.0, best)?;
    line(&mut chart, pearson, BLUE, "Pearson r")?;
    line(&mut chart, spearman, GREEN, "Spearman ρ")?;
    legend(&mut chart)?;
    root.present().map_err(|e| e.to_string())
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
    /// the best epoch is drawn and named in both panels.
    #[test]
    fn curves_tick_whole_epochs_and_mark_the_best() {
        let tick_labels = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .filter_map(|t| t.split('>').nth(1))
                .map(|t| t.split('<').next().unwrap_or("").trim().to_string())
                .collect()
        };
        let short = vec![record(1, true), record(2, true), record(3, false)];
        let mut svg = String::new();
        draw(&short, &mut svg).unwrap();
        let labels = tick_labels(&svg);
        assert_eq!(
            labels.iter().filter(|l| *l == "best epoch 2").count(),
            2,
            "{labels:?}"
        );
        assert!(labels.iter().any(|l| l == "3"), "{labels:?}");
        assert!(
            !labels.iter().any(|l| l == "1.5" || l == "2.5"),
            "{labels:?}"
        );
        let long: Vec<EpochRecord> = (1..=80).map(|e| record(e, e == 61)).collect();
        let mut svg = String::new();
        draw(&long, &mut svg).unwrap();
        let labels = tick_labels(&svg);
        assert!(labels.iter().any(|l| l == "70"), "{labels:?}");
        assert!(
            !labels.iter().any(|l| l == "10.0" || l == "70.0"),
            "{labels:?}"
        );
        assert!(labels.iter().any(|l| l == "best epoch 61"), "{labels:?}");
    }
}
