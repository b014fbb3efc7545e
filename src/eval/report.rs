//! `prixfixe score` as a library call: read the test file, its subsets and prediction files,
//! score each model, optionally bootstrap ranks; print a table, write JSON and a rank plot.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use super::bootstrap::{Bootstrap, bootstrap_ranks};
use super::predictions::read_predictions_for;
use super::score::{DreamScore, ScoredSubset, dream_score, prepare, weight_of};
use crate::data::io::{Lines, is_blank};
use crate::data::{DreamFile, ReadOptions, SeqDataset, Subset, read_dream, read_subset};
use crate::error::{Error, Problem, Result};

/// A test set ready to score against.
pub struct TestSet {
    /// The test file's rows.
    pub data: SeqDataset,
    /// Measured values, per row.
    pub measured: Vec<f64>,
    /// The subsets, after exclusion, `all` first.
    pub subsets: Vec<ScoredSubset>,
    /// Rows excluded.
    pub excluded: usize,
}

/// Read the ids of an exclusion file: one test-row id per line.
pub fn read_exclusion(path: &Path, rows: usize) -> Result<HashSet<usize>> {
    let mut lines = Lines::open(path)?;
    let mut out = HashSet::new();
    while let Some((n, l)) = lines.next_line()? {
        if is_blank(l) {
            continue;
        }
        let text = String::from_utf8_lossy(l);
        let id: usize = text.trim().parse().map_err(|_| {
            Error::data(
                path,
                n,
                Problem::Other(format!("{:?} is not a test-row id", text.trim())),
            )
        })?;
        if id >= rows {
            return Err(Error::data(
                path,
                n,
                Problem::Other(format!("id {id} is outside the test file ({rows} rows)")),
            ));
        }
        out.insert(id);
    }
    Ok(out)
}

/// The subset files of a directory (`*.csv`, sorted), each a known DREAM subset.
pub fn subset_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".csv") || n.ends_with(".csv.gz")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Config(format!(
            "{}: no subset CSV files there",
            dir.display()
        )));
    }
    Ok(files)
}

/// Read the test file and its subsets, check them against each other, apply the exclusion.
pub fn load_test_set(test: &Path, subsets: &[PathBuf], exclude: Option<&Path>) -> Result<TestSet> {
    let data = read_dream(test, DreamFile::Test, &ReadOptions::default())?;
    if data.n_tasks() != 1 {
        return Err(Error::Config(format!(
            "{}: the test file has no measured values (second column); they are needed to score",
            test.display()
        )));
    }
    let measured = data.targets.clone();
    let mut read = Vec::new();
    for path in subsets {
        let s: Subset = read_subset(path)?;
        weight_of(&s.name).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        s.check_against(&data)?;
        read.push(s);
    }
    let excluded = match exclude {
        Some(p) => read_exclusion(p, data.len())?,
        None => HashSet::new(),
    };
    let subsets = prepare(data.len(), &read, &excluded)?;
    Ok(TestSet {
        data,
        measured,
        subsets,
        excluded: excluded.len(),
    })
}

/// One model's score, labelled.
#[derive(Debug, Clone, Serialize)]
pub struct ModelScore {
    /// The prediction file.
    pub model: String,
    /// Its score.
    pub score: DreamScore,
}

/// What `prixfixe score` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    /// Test rows.
    pub test_rows: usize,
    /// Rows excluded.
    pub excluded: usize,
    /// Per model.
    pub models: Vec<ModelScore>,
    /// Bootstrap ranks, when asked.
    pub bootstrap: Option<Bootstrap>,
    /// Each model's predictions, one per test row (for figures; not in the JSON).
    #[serde(skip)]
    pub predictions: Vec<Vec<f64>>,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapSpec {
    /// Replicates.
    pub replicates: usize,
    /// Fraction of the test rows per replicate.
    pub fraction: f64,
    /// Seed.
    pub seed: u64,
}

/// Score every prediction file against the test set.
pub fn score_files(
    test: &TestSet,
    predictions: &[PathBuf],
    boot: Option<BootstrapSpec>,
) -> Result<ScoreReport> {
    let mut preds = Vec::new();
    for p in predictions {
        preds.push((
            p.display().to_string(),
            read_predictions_for(p, &test.data)?,
        ));
    }
    let models = preds
        .iter()
        .map(|(label, p)| ModelScore {
            model: label.clone(),
            score: dream_score(&test.subsets, p, &test.measured),
        })
        .collect();
    let bootstrap = boot.map(|b| {
        bootstrap_ranks(
            &test.subsets,
            &preds,
            &test.measured,
            b.replicates,
            b.fraction,
            b.seed,
        )
    });
    Ok(ScoreReport {
        test_rows: test.data.len(),
        excluded: test.excluded,
        models,
        bootstrap,
        predictions: preds.into_iter().map(|(_, p)| p).collect(),
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("undef".into(), |x| format!("{x:.4}"))
}

impl ScoreReport {
    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "test rows {}{}",
            self.test_rows,
            if self.excluded > 0 {
                format!(" ({} excluded)", self.excluded)
            } else {
                String::new()
            }
        );
        for m in &self.models {
            let _ = writeln!(s, "\n{}", m.model);
            let _ = writeln!(
                s,
                "  {:<26} {:>6} {:>7} {:>8} {:>8} {:>9}",
                "subset", "weight", "n", "r", "r²", "ρ"
            );
            for sub in &m.score.subsets {
                let _ = writeln!(
                    s,
                    "  {:<26} {:>6.2} {:>7} {:>8} {:>8} {:>9}",
                    sub.name,
                    sub.weight,
                    sub.n,
                    fmt_opt(sub.pearson),
                    fmt_opt(sub.pearson.map(|r| r * r)),
                    fmt_opt(sub.spearman)
                );
            }
            let _ = writeln!(
                s,
                "  Pearson score {:.4}   Spearman score {:.4}   (weights {:.2} of {:.2})",
                m.score.pearson_score,
                m.score.spearman_score,
                m.score.weight_used,
                super::score::TOTAL_WEIGHT
            );
            if !m.score.missing.is_empty() {
                let _ = writeln!(
                    s,
                    "  not scored (absent or undefined): {}; scores renormalised over the rest",
                    m.score.missing.join(", ")
                );
            }
        }
        if self.models.len() > 1 {
            let _ = writeln!(
                s,
                "\n  {:<40} {:>14} {:>15}",
                "model", "Pearson score", "Spearman score"
            );
            for m in &self.models {
                let _ = writeln!(
                    s,
                    "  {:<40} {:>14.4} {:>15.4}",
                    m.model, m.score.pearson_score, m.score.spearman_score
                );
            }
        }
        if let Some(b) = &self.bootstrap {
            let _ = writeln!(
                s,
                "\nbootstrap: {} replicates of {:.0}% of the test rows (seed {})",
                b.replicates,
                b.fraction * 100.0,
                b.seed
            );
            for m in &b.models {
                let pct = |c: &[usize]| {
                    c.iter()
                        .map(|&x| format!("{:>5.1}%", 100.0 * x as f64 / b.replicates as f64))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    s,
                    "  {}  mean final rank {:.2}",
                    m.model, m.mean_combined_rank
                );
                let _ = writeln!(s, "    Pearson rank 1..:  {}", pct(&m.pearson_rank_counts));
                let _ = writeln!(s, "    Spearman rank 1..: {}", pct(&m.spearman_rank_counts));
            }
        }
        s
    }
}

/// Histograms of each model's combined rank over the replicates, as SVG at `path` (`.svg`
/// added where it has another ending) and PNG beside it.
pub fn plot_ranks(b: &Bootstrap, path: &Path) -> Result<()> {
    let stem = match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    crate::figure::write_svg_png(&stem, &Ranks(b))
}

/// The rank histograms, one panel per model.
struct Ranks<'a>(&'a Bootstrap);

impl crate::figure::Drawing for Ranks<'_> {
    fn size(&self) -> (u32, u32) {
        (320 * self.0.models.len().max(1) as u32, 300)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        draw_ranks(self.0, root)
    }
}

fn draw_ranks<DB: DrawingBackend>(
    b: &Bootstrap,
    root: &DrawingArea<DB, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let m = b.models.len();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((1, m.max(1)));
    for (panel, model) in panels.iter().zip(&b.models) {
        let top = *model.combined_rank_counts.iter().max().unwrap_or(&1) as f64 * 1.1;
        let name = Path::new(&model.model)
            .file_name()
            .map_or(model.model.clone(), |n| n.to_string_lossy().into_owned());
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.5..(m as f64 + 0.5), 0.0..top.max(1.0))
            .map_err(err)?;
        chart
            .configure_mesh()
            // Ranks come in halves (the mean of two ranks); counts are whole.
            .x_labels(2 * m + 1)
            .x_label_formatter(&|v| crate::figure::tick(*v))
            .y_label_formatter(&|v| crate::figure::tick(*v))
            .x_desc("final rank")
            .y_desc("replicates")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                model
                    .combined_rank_counts
                    .iter()
                    .enumerate()
                    .map(|(k, &c)| {
                        let x = 1.0 + k as f64 / 2.0;
                        Rectangle::new([(x - 0.22, 0.0), (x + 0.22, c as f64)], BLUE.filled())
                    }),
            )
            .map_err(err)?;
    }
    Ok(())
}
