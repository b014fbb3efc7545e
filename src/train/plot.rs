//! Training curves as SVG: loss per epoch and validation correlations per epoch.

use std::path::Path;

use plotters::prelude::*;

use super::run_dir::EpochRecord;
use crate::error::{Error, Result};

/// Draw `curves.svg`: training loss and validation MSE (left), Pearson r and Spearman ρ (right).
pub fn plot_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    let err = |e: String| Error::Other(format!("{}: {e}", path.display()));
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let (left, right) = root.split_horizontally(480);
    let epochs = history.len().max(2) as f64;

    let losses: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.train_loss))
        .collect();
    let mses: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.epoch as f64, r.val_mse))
        .collect();
    let top = losses
        .iter()
        .chain(&mses)
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption("loss", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, 0.0..top.max(1e-6))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(losses, &BLUE))
        .map_err(|e| err(e.to_string()))?
        .label("train loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    chart
        .draw_series(LineSeries::new(mses, &RED))
        .map_err(|e| err(e.to_string()))?
        .label("validation MSE")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;

    let series = |f: fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let mut chart = ChartBuilder::on(&right)
        .caption("validation correlation", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1.0..epochs, -0.1..1.0)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(series(|r| r.val_pearson), &BLUE))
        .map_err(|e| err(e.to_string()))?
        .label("Pearson r")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    chart
        .draw_series(LineSeries::new(series(|r| r.val_spearman), &GREEN))
        .map_err(|e| err(e.to_string()))?
        .label("Spearman ρ")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], GREEN));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}
