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

/// A panel with a caption, epochs on x and the given y range.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    epochs: f64,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| e.to_string())?;
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

    let mut chart = panel(&left, "loss", epochs, 0.0..top.max(1e-6))?;
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
    let mut chart = panel(&right, title, epochs, low..1.0)?;
    line(&mut chart, pearson, BLUE, "Pearson r")?;
    line(&mut chart, spearman, GREEN, "Spearman ρ")?;
    legend(&mut chart)?;
    root.present().map_err(|e| e.to_string())
}
