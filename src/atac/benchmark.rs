//! `prixfixe benchmark atac` (Fig. 3c,d; SPEC_BENCHMARKS §7): every accessibility model on
//! every fold, each fold's models sharing its regions and its bias model, then one table:
//! counts Pearson r (3c) and the profiles' median JSD (3d) per model, fold and group, with the
//! truth's figures on a simulated genome.
//!
//! The directory: `fold_<k>/` per fold file (a `train --task atac` directory holding every
//! model), `benchmark_atac.csv`, `benchmark_atac.json` (the command's inputs, the folds, the
//! models, runs completed and every figure). Running it again continues unfinished runs and
//! reuses finished ones.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::metrics::GroupMetrics;
use super::train::{AtacSummary, AtacTask, train_atac};
use crate::error::{Error, Result};
use crate::figure::{BARS_SIZE, Bars, Series, write_svg_png};
use crate::train::TrainObserver;

/// One model's figures on one fold and group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The model (`truth` for the simulation's own figures).
    pub model: String,
    /// Trainable parameters (0 for the truth).
    pub parameters: usize,
    /// The fold (0-based, in the order the fold files were given).
    pub fold: usize,
    /// `peaks`, `nonpeaks` or `all`.
    pub group: String,
    /// The figures.
    pub metrics: GroupMetrics,
}

/// Train and score every `(fold, model)`: `tasks[f][m]` is model `m`'s task on fold `f`.
pub fn run(
    tasks: &[Vec<AtacTask>],
    out: &Path,
    observer: &mut dyn TrainObserver,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (fold, models) in tasks.iter().enumerate() {
        let dir = out.join(format!("fold_{fold}"));
        let mut truth_done = false;
        for task in models {
            let resume = super::train::holds_run(&dir.join(&task.name));
            let summary: AtacSummary = train_atac(task, &dir, resume, false, observer, stop)?;
            let mut net = task.model.init(&burn::tensor::Device::flex())?;
            let parameters = net.param_counts().total();
            for (group, metrics) in &summary.test {
                rows.push(Row {
                    model: task.name.clone(),
                    parameters,
                    fold,
                    group: group.clone(),
                    metrics: metrics.clone(),
                });
            }
            if !truth_done && let Some(truth) = &summary.truth {
                truth_done = true;
                for (group, metrics) in truth {
                    rows.push(Row {
                        model: "truth".into(),
                        parameters: 0,
                        fold,
                        group: group.clone(),
                        metrics: metrics.clone(),
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// The table as CSV.
pub fn table_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "model,parameters,fold,group,regions,counts_pearson,counts_spearman,counts_mse,profile_median_jsd,profile_median_norm_jsd\n",
    );
    let f = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
    for r in rows {
        let m = &r.metrics;
        writeln!(
            out,
            "{},{},{},{},{},{},{},{:.6},{:.6},{:.6}",
            r.model,
            r.parameters,
            r.fold,
            r.group,
            m.n,
            f(m.counts_pearson),
            f(m.counts_spearman),
            m.counts_mse,
            m.profile_median_jsd,
            m.profile_median_norm_jsd
        )
        .expect("a string takes writes");
    }
    out
}

/// The paper's comparison as text: test peaks, counts r (Fig. 3c) and median JSD (3d, lower
/// is better) per model and fold.
pub fn table_text(rows: &[Row]) -> String {
    let mut out = String::from("test peaks   model          fold  regions  counts r  median JSD\n");
    for r in rows.iter().filter(|r| r.group == "peaks") {
        let m = &r.metrics;
        writeln!(
            out,
            "             {:<14} {:>4}  {:>7}  {:>8}  {:>10.4}",
            r.model,
            r.fold,
            m.n,
            m.counts_pearson.map_or("-".into(), |v| format!("{v:.4}")),
            m.profile_median_jsd
        )
        .expect("a string takes writes");
    }
    out
}

/// What `benchmark_atac.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The command line.
    pub command: String,
    /// The fold files, in fold order.
    pub folds: Vec<PathBuf>,
    /// The models.
    pub models: Vec<String>,
    /// `(fold, model)` runs scored.
    pub runs_completed: usize,
    /// Every figure.
    pub rows: Vec<Row>,
}

/// One figure of a group's metrics.
type Figure = fn(&GroupMetrics) -> Option<f64>;

/// The series of one figure of test peaks per model, a value per fold.
fn peak_series(rows: &[Row], folds: usize, f: Figure) -> Vec<Series> {
    let mut models: Vec<&str> = Vec::new();
    for r in rows {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    // The truth last, beside the models it bounds.
    models.sort_by_key(|m| *m == "truth");
    models
        .into_iter()
        .map(|m| Series {
            label: m.to_string(),
            values: (0..folds)
                .map(|k| {
                    rows.iter()
                        .find(|r| r.model == m && r.fold == k && r.group == "peaks")
                        .and_then(|r| f(&r.metrics))
                })
                .collect(),
        })
        .collect()
}

/// The paper's two panels as bar plots of test peaks by fold: counts Pearson r
/// (`benchmark_atac_counts.svg/.png`, Fig. 3c) and the profiles' median JSD
/// (`benchmark_atac_profile.svg/.png`, 3d; lower is better).
fn plots(out: &Path, rows: &[Row], folds: usize) -> Result<()> {
    let groups: Vec<String> = (0..folds).map(|k| format!("fold {k}")).collect();
    let panels: [(&str, &str, &str, Figure); 2] = [
        (
            "benchmark_atac_counts",
            "ATAC test peaks: log counts",
            "Pearson r of log counts",
            |m| m.counts_pearson,
        ),
        (
            "benchmark_atac_profile",
            "ATAC test peaks: profiles (lower is better)",
            "median Jensen-Shannon distance",
            |m| Some(m.profile_median_jsd),
        ),
    ];
    for (file, title, y, f) in panels {
        let bars = Bars {
            title: title.into(),
            y_desc: y.into(),
            groups: groups.clone(),
            series: peak_series(rows, folds, f),
            size: BARS_SIZE,
        };
        write_svg_png(&out.join(file), &bars)?;
    }
    Ok(())
}

/// Write the table, the manifest and the two bar plots into `out`.
pub fn write(out: &Path, manifest: &Manifest) -> Result<()> {
    plots(out, &manifest.rows, manifest.folds.len())?;
    crate::output::write_atomic(
        &out.join("benchmark_atac.csv"),
        table_csv(&manifest.rows).as_bytes(),
    )?;
    let json = serde_json::to_string_pretty(manifest)
        .map_err(|e| Error::Other(format!("benchmark manifest: {e}")))?;
    crate::output::write_atomic(&out.join("benchmark_atac.json"), json.as_bytes())
}
