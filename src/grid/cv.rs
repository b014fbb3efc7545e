//! Cross-validation as the paper ran it for the cross-species benchmarks (SPEC_BENCHMARKS
//! §1.5, §2.3), on the grid's machinery: a plan of fold runs, each an ordinary run directory
//! (`cells/NNN-NAME/`) run by any executor of the grid (`grid local`, `grid run --task`, a
//! Slurm array), resumed where it was killed; then [`collect`] averages, per test group, the
//! test predictions of its models and scores them.
//!
//! - [`Protocol::Folds`] (human lentiMPRA): the file's fold column (0–9). For each test fold
//!   t and each validation fold v ≠ t, a model trains on the other folds and validates on v;
//!   the 9 models of t are averaged on t's rows; the 10 test folds are concatenated and
//!   scored. Both orientations of an element must share a fold (checked at plan time).
//! - [`Protocol::Chromosomes`] (Drosophila STARR-seq): each listed chromosome is held out as
//!   test in turn (the chromosome is the id's first field, matched exactly, so `chr2LHet`
//!   stays in the pool); the other rows are dealt into `folds` folds by region (both strands
//!   of a region share a fold), seeded, and written to `folds/<chromosome>.tsv`; model k
//!   validates on fold k and trains on the others (the paper says "10 train/validation folds";
//!   that model k validates on fold k is our reading, by analogy with the human protocol).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Cell, CellStatus, FoldRun, GridPlan, PLAN_FILE, Size, cell_status, read_plan};
use crate::data::formats::detect::{Format, detect_format, read_any};
use crate::data::{ReadOptions, SeqDataset};
use crate::error::{Error, Problem, Result};
use crate::eval::{mse, pearson, spearman};
use crate::net::NetConfig;
use crate::train::{DataSection, Recipe, TrainConfig};

/// The predictions file of a collected cross-validation.
pub const PREDICTIONS_FILE: &str = "cv_predictions.tsv";
/// Its scores.
pub const SCORES_FILE: &str = "cv_scores.csv";

/// How rows are split into test groups and validation folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Protocol {
    /// The file's fold column: every fold is a test group in turn, every other fold a
    /// validation fold (human: 10 folds, 90 runs).
    Folds,
    /// Each of these chromosomes held out in turn, the rest dealt into `folds` region-grouped
    /// folds (Drosophila: 5 chromosomes × 10 folds = 50 runs).
    Chromosomes {
        /// The test chromosomes.
        test: Vec<String>,
        /// Train/validation folds per test chromosome.
        folds: u16,
    },
}

impl Protocol {
    /// The paper's Drosophila protocol: the five largest chromosomes, 10 folds.
    pub fn drosophila() -> Self {
        Protocol::Chromosomes {
            test: ["chr2L", "chr2R", "chr3L", "chr3R", "chrX"]
                .map(String::from)
                .to_vec(),
            folds: 10,
        }
    }
}

/// The element an oligo id names, and whether it is the reversed oligo: `seq40335_Reversed:`
/// and `seq40335_F` name `seq40335`.
fn element_of(id: &str) -> (&str, bool) {
    if let Some(e) = id.strip_suffix("_Reversed:") {
        (e, true)
    } else if let Some(e) = id.strip_suffix("_F") {
        (e, false)
    } else {
        (id, false)
    }
}

/// The region of a DeepSTARR id `chr_start_end_strand_class`: `(chr, start, end)`.
fn region_of(id: &str) -> Option<(&str, &str, &str)> {
    let mut f = id.split('_');
    Some((f.next()?, f.next()?, f.next()?))
}

/// Both orientations of an element in one fold (SPEC_BENCHMARKS §2.1).
fn check_orientations(ds: &SeqDataset, folds: &[u16], ids: &[String]) -> Result<()> {
    let mut seen: BTreeMap<&str, (u16, usize, &str)> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let (element, _) = element_of(id);
        let line = ds.lines[i] as usize;
        match seen.get(element) {
            Some(&(fold, first_line, first_id)) if fold != folds[i] => {
                return Err(Error::data(
                    &ds.path,
                    line,
                    Problem::Other(format!(
                        "{id} is in fold {} and {first_id} (line {first_line}), the other \
                         orientation of element {element}, in fold {fold}; both orientations \
                         of an element must share a fold, or the test fold leaks into training",
                        folds[i]
                    )),
                ));
            }
            Some(_) => {}
            None => {
                seen.insert(element, (folds[i], line, id));
            }
        }
    }
    Ok(())
}

fn read_rows(config: &TrainConfig) -> Result<SeqDataset> {
    let d = &config.data;
    let format = match &d.table {
        Some(spec) => Format::Table(spec.clone()),
        None => detect_format(&d.train)?,
    };
    let opts = ReadOptions {
        padding: Some(config.model.input.padding.clone()),
    };
    read_any(&d.train, &format, &opts)
}

/// What a cross-validation runs.
#[derive(Debug, Clone)]
pub struct CvSpec {
    /// The model's name in its runs' names (`mprann-test3-valid5`).
    pub name: String,
    /// The model.
    pub model: NetConfig,
    /// The one data file (`train`) and its columns; no validation file, fold file or test
    /// folds (the protocol makes the splits).
    pub data: DataSection,
    /// Every run's recipe.
    pub recipe: Recipe,
    /// How rows become test groups and validation folds.
    pub protocol: Protocol,
    /// Seed of the Drosophila protocol's folds.
    pub seed: u64,
}

/// Plan the cross-validation `spec` in `dir`: writes `grid.toml` and `tasks.tsv` (and, for
/// chromosomes, `folds/`); nothing is trained. A directory that holds a plan already is
/// refused; a plan that fails leaves no directory it made behind.
pub fn plan(dir: &Path, spec: &CvSpec) -> Result<GridPlan> {
    let made = !dir.exists();
    let planned = plan_in(dir, spec);
    if planned.is_err() && made && dir.exists() {
        let _ = std::fs::remove_dir_all(dir);
    }
    planned
}

fn plan_in(dir: &Path, spec: &CvSpec) -> Result<GridPlan> {
    let CvSpec {
        name,
        model,
        data,
        recipe,
        protocol,
        seed,
    } = spec;
    let (data, recipe, seed) = (data.clone(), recipe.clone(), *seed);
    recipe.check()?;
    model.check()?;
    if dir.join(PLAN_FILE).exists() {
        return Err(Error::Config(format!(
            "{} already holds a plan; run its tasks, or plan the cross-validation in another \
             directory",
            dir.display()
        )));
    }
    if data.valid.is_some() || data.folds.is_some() || !data.test_folds.is_empty() {
        return Err(Error::Config(
            "a cross-validation makes its own splits: give one data file, without a validation \
             file, fold file or test folds"
                .into(),
        ));
    }
    let base = TrainConfig {
        model: model.clone(),
        data: data.clone(),
        recipe: recipe.clone(),
    };
    let ds = read_rows(&base)?;
    let ids = ds.ids.clone().ok_or_else(|| {
        Error::Config(format!(
            "{}: a cross-validation needs an id column (to keep an element's orientations, or a \
             region's strands, in one fold)",
            ds.path.display()
        ))
    })?;
    let mut cells = Vec::new();
    let mut push = |test: String, valid: u16, data: DataSection| {
        let index = cells.len();
        cells.push(Cell {
            index,
            name: format!("{name}-{test}-valid{valid}"),
            model: model.clone(),
            fold: Some(FoldRun { data, test }),
        });
    };
    match protocol {
        Protocol::Folds => {
            let folds = ds.folds.as_ref().ok_or_else(|| {
                Error::Config(format!(
                    "{}: the fold protocol needs a fold column",
                    ds.path.display()
                ))
            })?;
            check_orientations(&ds, folds, &ids)?;
            let groups: std::collections::BTreeSet<u16> = folds.iter().copied().collect();
            if groups.len() < 3 {
                return Err(Error::Config(format!(
                    "{}: {} fold(s) in the fold column; a cross-validation needs at least 3 \
                     (a test fold, a validation fold and one to train on)",
                    ds.path.display(),
                    groups.len()
                )));
            }
            for &t in &groups {
                for &v in groups.iter().filter(|&&v| v != t) {
                    push(
                        format!("test{t}"),
                        v,
                        DataSection {
                            valid_fold: Some(v),
                            test_folds: vec![t],
                            ..data.clone()
                        },
                    );
                }
            }
        }
        Protocol::Chromosomes { test, folds: k } => {
            let k = *k;
            if k < 2 {
                return Err(Error::Config(format!(
                    "{k} fold(s): the chromosome protocol needs at least 2 train/validation folds"
                )));
            }
            let mut regions = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                regions.push(region_of(id).ok_or_else(|| {
                    Error::data(
                        &ds.path,
                        ds.lines[i] as usize,
                        Problem::Other(format!(
                            "id {id:?} is not chromosome_start_end_…: the chromosome protocol \
                             reads the chromosome and the region from the id"
                        )),
                    )
                })?);
            }
            std::fs::create_dir_all(dir.join("folds")).map_err(|e| Error::io(dir, e))?;
            for (c, chrom) in test.iter().enumerate() {
                if !regions.iter().any(|r| r.0 == chrom) {
                    return Err(Error::Config(format!(
                        "{}: no row on test chromosome {chrom:?} (the chromosome is the id's \
                         first field)",
                        ds.path.display()
                    )));
                }
                // Regions off the test chromosome, in a seeded order, dealt round the folds.
                let mut pool: Vec<(&str, &str, &str)> =
                    regions.iter().copied().filter(|r| r.0 != chrom).collect();
                pool.sort_unstable();
                pool.dedup();
                if pool.len() < k as usize {
                    return Err(Error::Config(format!(
                        "{}: {} region(s) off {chrom}, fewer than the {k} folds",
                        ds.path.display(),
                        pool.len()
                    )));
                }
                pool.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ (c as u64 + 1) << 32));
                let fold_of: std::collections::HashMap<_, u16> = pool
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (*r, (i % k as usize) as u16))
                    .collect();
                let row_folds: Vec<u16> = regions
                    .iter()
                    .map(|r| if r.0 == chrom { k } else { fold_of[r] })
                    .collect();
                let path = absolute(&dir.join("folds").join(format!("{chrom}.tsv")))?;
                crate::data::folds::write(&path, &row_folds)?;
                for v in 0..k {
                    push(
                        chrom.clone(),
                        v,
                        DataSection {
                            valid_fold: Some(v),
                            folds: Some(path.clone()),
                            test_folds: vec![k],
                            ..data.clone()
                        },
                    );
                }
            }
        }
    }
    let plan = GridPlan {
        size: Size::Full,
        data,
        recipe,
        cells,
    };
    // The first run's data as it will read them: a label or a split that cannot work is
    // refused now, not by every task of a submitted array.
    crate::train::load_data(&plan.train_config(&plan.cells[0]))?;
    super::write_plan(dir, &plan)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(p, e))
}

/// One test group's figures, per task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScore {
    /// The test group (`test3`, `chr2L`), or `pooled`.
    pub group: String,
    /// Test rows scored.
    pub rows: usize,
    /// Models averaged (per group; the pooled row sums them).
    pub models: usize,
    /// Per task: Pearson r.
    pub pearson: Vec<Option<f64>>,
    /// Per task: Spearman ρ.
    pub spearman: Vec<Option<f64>>,
    /// Per task: mean squared error.
    pub mse: Vec<f64>,
}

/// What [`collect`] found and wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvReport {
    /// The task names (the data file's label columns).
    pub tasks: Vec<String>,
    /// Per scored group, then `pooled` over them all.
    pub scores: Vec<GroupScore>,
    /// Test groups left out because some of their runs are not finished, with the count.
    pub incomplete: Vec<(String, usize, usize)>,
    /// Runs finished of all planned.
    pub runs_finished: usize,
    /// Runs planned.
    pub runs: usize,
}

/// A correlation of predictions with the truth.
type Metric = fn(&[f64], &[f64]) -> Option<f64>;

fn scores(group: &str, models: usize, truth: &[f64], pred: &[f64], tasks: usize) -> GroupScore {
    let rows = truth.len() / tasks.max(1);
    let col = |v: &[f64], t: usize| -> Vec<f64> { (0..rows).map(|r| v[r * tasks + t]).collect() };
    let per = |f: Metric| {
        (0..tasks)
            .map(|t| f(&col(pred, t), &col(truth, t)))
            .collect()
    };
    GroupScore {
        group: group.into(),
        rows,
        models,
        pearson: per(pearson),
        spearman: per(spearman),
        mse: (0..tasks)
            .map(|t| mse(&col(pred, t), &col(truth, t)))
            .collect(),
    }
}

/// Average each finished test group's models on its test rows, write every test row's
/// measured and predicted values to `cv_predictions.tsv` and the scores per group and pooled
/// to `cv_scores.csv` (each atomically), and return them. Groups with unfinished runs are
/// listed, not scored. `on_model` is told each model as it predicts.
pub fn collect(dir: &Path, batch: usize, mut on_model: impl FnMut(&str)) -> Result<CvReport> {
    use crate::predict::Model;
    let plan = read_plan(dir)?;
    let device = burn::tensor::Device::flex();
    let mut groups: Vec<(String, Vec<&Cell>)> = Vec::new();
    for cell in &plan.cells {
        let f = cell.fold.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "{}: cell {} is a grid cell, not a fold run; this is not a cross-validation",
                dir.display(),
                cell.name
            ))
        })?;
        match groups.iter_mut().find(|(g, _)| *g == f.test) {
            Some((_, cells)) => cells.push(cell),
            None => groups.push((f.test.clone(), vec![cell])),
        }
    }
    let mut report = CvReport {
        tasks: Vec::new(),
        scores: Vec::new(),
        incomplete: Vec::new(),
        runs_finished: 0,
        runs: plan.cells.len(),
    };
    let mut table = String::new();
    let (mut all_truth, mut all_pred, mut all_models) = (Vec::new(), Vec::new(), 0);
    // Every run reads the same data file: read once, each group applying its own folds.
    let mut rows_read: Option<SeqDataset> = None;
    for (group, cells) in &groups {
        let finished = cells
            .iter()
            .map(|c| cell_status(&plan, dir, c))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .filter(|s| **s == CellStatus::Finished)
            .count();
        report.runs_finished += finished;
        if finished < cells.len() {
            report
                .incomplete
                .push((group.clone(), finished, cells.len()));
            continue;
        }
        // The group's test rows: the data file's rows in its test folds.
        let config = plan.train_config(cells[0]);
        if rows_read.is_none() {
            rows_read = Some(read_rows(&config)?);
        }
        let file = rows_read.as_ref().expect("read above");
        let folds = match &config.data.folds {
            Some(path) => crate::data::folds::read(path, file.len())?,
            None => file.folds.clone().unwrap_or_default(),
        };
        let test = &config.data.test_folds;
        let rows: Vec<usize> = (0..file.len())
            .filter(|&i| test.contains(&folds[i]))
            .collect();
        let ds = std::sync::Arc::new(file.select(&rows));
        let tasks = ds.n_tasks();
        if report.tasks.is_empty() {
            report.tasks = ds.task_names.clone();
            write!(table, "group\tline\tid").expect("a string takes writes");
            for t in &report.tasks {
                write!(table, "\t{t}\tpredicted_{t}").expect("a string takes writes");
            }
            table.push('\n');
        }
        let mut sum = vec![0.0f64; ds.len() * tasks];
        for cell in cells {
            on_model(&cell.name);
            let model = Model::from_checkpoint(&cell.dir(dir).join("best.safetensors"), &device)?;
            let p = model.predict(ds.clone(), batch, |_| {})?;
            sum.iter_mut().zip(p).for_each(|(s, v)| *s += v as f64);
        }
        let pred: Vec<f64> = sum.iter().map(|s| s / cells.len() as f64).collect();
        for r in 0..ds.len() {
            let id = ds.ids.as_ref().map_or("", |ids| ids[r].as_str());
            write!(table, "{group}\t{}\t{id}", ds.lines[r]).expect("a string takes writes");
            for t in 0..tasks {
                write!(
                    table,
                    "\t{}\t{}",
                    ds.target(r)[t],
                    pred[r * tasks + t] as f32
                )
                .expect("a string takes writes");
            }
            table.push('\n');
        }
        report
            .scores
            .push(scores(group, cells.len(), &ds.targets, &pred, tasks));
        all_truth.extend_from_slice(&ds.targets);
        all_pred.extend(pred);
        all_models += cells.len();
    }
    if report.scores.is_empty() {
        return Err(Error::Config(format!(
            "{}: no test group has all its runs finished ({} of {} runs are); run the tasks \
             first (`prixfixe grid local {}` or `grid slurm`)",
            dir.display(),
            report.runs_finished,
            report.runs,
            dir.display()
        )));
    }
    let tasks = report.tasks.len();
    report
        .scores
        .push(scores("pooled", all_models, &all_truth, &all_pred, tasks));
    crate::output::write_atomic(&dir.join(PREDICTIONS_FILE), table.as_bytes())?;
    crate::output::write_atomic(&dir.join(SCORES_FILE), scores_csv(&report).as_bytes())?;
    Ok(report)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("NA".into(), |v| format!("{v:.6}"))
}

/// The header of [`scores_csv`].
pub const SCORES_HEADER: &str = "group,task,rows,models,pearson,spearman,mse";

/// The scores as CSV: one row per group and task.
pub fn scores_csv(r: &CvReport) -> String {
    let mut out = format!("{SCORES_HEADER}\n");
    for g in &r.scores {
        for (t, task) in r.tasks.iter().enumerate() {
            writeln!(
                out,
                "{},{task},{},{},{},{},{:.6}",
                g.group,
                g.rows,
                g.models,
                fmt(g.pearson[t]),
                fmt(g.spearman[t]),
                g.mse[t]
            )
            .expect("a string takes writes");
        }
    }
    out
}

/// The scores as a printed table.
pub fn scores_table(r: &CvReport) -> String {
    let mut out = format!(
        "{:<10} {:<22} {:>7} {:>6} {:>8} {:>8} {:>8}\n",
        "group", "task", "rows", "models", "pearson", "spearman", "mse"
    );
    for g in &r.scores {
        for (t, task) in r.tasks.iter().enumerate() {
            let f = |v: Option<f64>| v.map_or("NA".into(), |v| format!("{v:.4}"));
            writeln!(
                out,
                "{:<10} {:<22} {:>7} {:>6} {:>8} {:>8} {:>8.4}",
                g.group,
                task,
                g.rows,
                g.models,
                f(g.pearson[t]),
                f(g.spearman[t]),
                g.mse[t]
            )
            .expect("a string takes writes");
        }
    }
    writeln!(out, "runs finished: {} of {}", r.runs_finished, r.runs).expect("writes");
    for (g, done, all) in &r.incomplete {
        writeln!(out, "not scored: {g} ({done} of {all} runs finished)").expect("writes");
    }
    out
}

/// The truth's figures on the same test rows as a collected cross-validation in `dir`: each
/// row of its `cv_predictions.tsv` scored with the noise-free value of `truth` (a simulation's
/// `truth.tsv`: `id` then one column per task) in place of the prediction — the ceiling a
/// benchmark on simulated data reports beside the models.
pub fn truth_report(dir: &Path, truth: &Path) -> Result<CvReport> {
    let text = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io(p, e));
    let mut values: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for (i, line) in text(truth)?.lines().enumerate().skip(1) {
        let mut f = line.split('\t');
        let id = f.next().unwrap_or_default().to_string();
        let v = f
            .map(|x| x.parse::<f64>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::data(truth, i + 1, Problem::Other(format!("{e}"))))?;
        values.insert(id, v);
    }
    let preds = dir.join(PREDICTIONS_FILE);
    let table = text(&preds)?;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let tasks: Vec<String> = header[3..]
        .iter()
        .step_by(2)
        .map(|s| s.to_string())
        .collect();
    let k = tasks.len();
    let mut groups: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let t = values.get(f[2]).ok_or_else(|| {
            Error::data(
                &preds,
                i + 2,
                Problem::Other(format!("id {:?} is not in {}", f[2], truth.display())),
            )
        })?;
        if groups.last().is_none_or(|g| g.0 != f[0]) {
            groups.push((f[0].to_string(), Vec::new(), Vec::new()));
        }
        let g = groups.last_mut().expect("pushed");
        for j in 0..k {
            g.1.push(f[3 + 2 * j].parse().unwrap_or(f64::NAN));
            g.2.push(t[j]);
        }
    }
    let mut report = CvReport {
        tasks,
        scores: Vec::new(),
        incomplete: Vec::new(),
        runs_finished: 0,
        runs: 0,
    };
    let (mut all_y, mut all_t) = (Vec::new(), Vec::new());
    for (g, y, t) in &groups {
        report.scores.push(scores(g, 0, y, t, k));
        all_y.extend_from_slice(y);
        all_t.extend_from_slice(t);
    }
    report.scores.push(scores("pooled", 0, &all_y, &all_t, k));
    Ok(report)
}
