//! The Prix Fixe grid (paper Fig. 2, Extended Data Fig. 6): every combination of the teams'
//! modules, retrained on one split with one seed and compared.
//!
//! A grid is a directory. [`plan`] writes its plan (`grid.toml`: data, recipe and one model
//! per cell) and the task list (`tasks.tsv`: index → cell). Each cell is a unit of work, run
//! by [`run_cell`] into `cells/<index>-<name>/`, a training run directory like any other: a
//! finished cell is skipped, a killed one resumes from its last committed epoch, and one
//! whose loss diverges is recorded as not converged (`cells/<index>-<name>.diverged.json`)
//! rather than failing. The status of every cell is read from these files ([`status`]), never
//! from a scheduler, so any executor can run the tasks: the local worker pool of the CLI, a
//! Slurm array, a Snakemake rule.
//!
//! A cell is named by its slots' teams, data processor + trainer first: `A` Autosome.org,
//! `B` BHI, `U` Unlock_DNA (`ABBA` = Autosome data processor, BHI first and core, Autosome
//! final = DREAM-RNN). Every module of the three teams is built, so the grid has all 45
//! compatible combinations of the paper's 81 ([`buildable`]); the other 36 are refused
//! with the reason ([`incompatibility`]).

pub mod benchmark;
pub mod cv;
pub mod heatmap;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blocks::core_layers::autosome::AutosomeCoreConfig;
use crate::blocks::core_layers::bhi::BhiCoreConfig;
use crate::blocks::core_layers::unlock_dna::UnlockDnaConfig;
use crate::blocks::final_layers::bhi::BhiFinalConfig;
use crate::blocks::final_layers::unlock_dna::UnlockDnaFinalConfig;
use crate::blocks::first_layers::autosome::AutosomeFirstConfig;
use crate::blocks::first_layers::bhi::BhiFirstConfig;
use crate::blocks::first_layers::unlock_dna::UnlockDnaFirstConfig;
use crate::blocks::{CoreConfig, FinalConfig, FirstConfig};
use crate::error::{Error, Result};
use crate::net::InputConfig;
use crate::net::{DataKind, NetConfig};
use crate::train::{
    DataSection, Recipe, TrainConfig, TrainOptions, TrainerKind, TrainerState,
    UNLOCK_FINAL_NEEDS_ITS_TRAINER, UNLOCK_TRAINER_NEEDS_ITS_FINAL,
};

/// The plan's file in a grid directory.
pub const PLAN_FILE: &str = "grid.toml";
/// The task list: index → cell, one line each.
pub const TASKS_FILE: &str = "tasks.tsv";
/// The collected results.
pub const RESULTS_FILE: &str = "results.csv";

/// Block widths: the paper's, or small ones for tests and trials on a laptop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The grid's widths (SPEC_GRID §9.2): Autosome first 256, BHI first 320, Unlock_DNA
    /// first 256 (k = 10); cores at their defaults, the Unlock_DNA core as wide as its input.
    Full,
    /// Every width shrunk (16-channel first blocks, 8-channel cores): minutes on a CPU.
    Tiny,
}

/// One combination: its name and its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Position in the task list (Slurm's array index).
    pub index: usize,
    /// Teams per slot, data processor first, e.g. `ABBA`.
    pub name: String,
    /// The model.
    pub model: NetConfig,
    /// A cross-validation's fold run: its own data split, the plan's recipe as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<FoldRun>,
}

/// One run of a cross-validation ([`cv`]): what it trains and validates on, and the test group
/// whose rows it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldRun {
    /// The split: the data file, its validation fold and its test folds left out.
    pub data: DataSection,
    /// The test group (a test fold, or a held-out chromosome).
    pub test: String,
}

impl Cell {
    /// The cell's run directory under `grid`.
    pub fn dir(&self, grid: &Path) -> PathBuf {
        grid.join("cells")
            .join(format!("{:03}-{}", self.index, self.name))
    }

    /// The team of its data processor and trainer (the name's first letter).
    pub fn data_processor(&self) -> char {
        self.name.chars().next().unwrap_or('A')
    }

    /// Where a diverged cell is recorded.
    pub fn diverged_file(&self, grid: &Path) -> PathBuf {
        grid.join("cells")
            .join(format!("{:03}-{}.diverged.json", self.index, self.name))
    }
}

/// A grid: the shared data and recipe, and its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridPlan {
    /// Block widths.
    pub size: Size,
    /// One split and one seed for every cell (initialisation, shuffling, dropout, split).
    pub data: DataSection,
    /// One recipe for every cell.
    pub recipe: Recipe,
    /// The cells, in task order.
    #[serde(rename = "cell")]
    pub cells: Vec<Cell>,
}

fn first_block(team: char, size: Size) -> FirstConfig {
    let tiny = size == Size::Tiny;
    match team {
        'A' => FirstConfig::Autosome(AutosomeFirstConfig {
            out_channels: if tiny { 16 } else { 256 },
            ..Default::default()
        }),
        'B' => FirstConfig::Bhi(BhiFirstConfig {
            out_channels: if tiny { 16 } else { 320 },
            ..Default::default()
        }),
        _ => FirstConfig::UnlockDna(UnlockDnaFirstConfig {
            out_channels: if tiny { 16 } else { 256 },
            kmer: 10,
        }),
    }
}

fn core_block(team: char, size: Size, cin: usize) -> CoreConfig {
    let tiny = size == Size::Tiny;
    match team {
        'A' => CoreConfig::Autosome(if tiny {
            AutosomeCoreConfig {
                widths: vec![8, 8],
                ..Default::default()
            }
        } else {
            AutosomeCoreConfig::default()
        }),
        'B' => CoreConfig::Bhi(if tiny {
            BhiCoreConfig {
                hidden: 8,
                out_channels: 8,
                ..Default::default()
            }
        } else {
            BhiCoreConfig::default()
        }),
        // in = out (SPEC_GRID Q14): as wide as the first block.
        _ => CoreConfig::UnlockDna(if tiny {
            UnlockDnaConfig {
                d: cin,
                layers: 1,
                ff: 32,
                ..Default::default()
            }
        } else {
            // The reference's feed-forward width is 4 · d (`ff_mult`).
            UnlockDnaConfig {
                d: cin,
                ff: 4 * cin,
                ..Default::default()
            }
        }),
    }
}

fn final_block(team: char, size: Size) -> FinalConfig {
    match team {
        'A' => DataKind::Yeast.final_block(),
        'U' => FinalConfig::UnlockDna(UnlockDnaFinalConfig::default()),
        _ => FinalConfig::Bhi(BhiFinalConfig {
            hidden: if size == Size::Tiny { 8 } else { 64 },
        }),
    }
}

/// A data processor slot's team: its input, its trainer and its name.
fn data_processor(team: char) -> (InputConfig, TrainerKind, &'static str) {
    match team {
        'B' => (InputConfig::bhi(), TrainerKind::Bhi, "BHI"),
        'U' => (
            InputConfig::unlock_dna(),
            TrainerKind::UnlockDna,
            "Unlock_DNA",
        ),
        _ => (
            DataKind::Yeast.input(),
            TrainerKind::Autosome,
            "Autosome.org",
        ),
    }
}

/// Why a combination cannot train in any implementation (SPEC_GRID §9.3), or `None`: the
/// Unlock_DNA trainer reads the Unlock_DNA final block's nucleotide logits, and the other
/// trainers validate on a single prediction tensor, which that block does not give.
pub fn incompatibility(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    match (b.first(), b.get(3)) {
        (Some(b'U'), Some(f)) if *f != b'U' => Some(UNLOCK_TRAINER_NEEDS_ITS_FINAL),
        (Some(d), Some(b'U')) if *d != b'U' => Some(UNLOCK_FINAL_NEEDS_ITS_TRAINER),
        _ => None,
    }
}

/// All 81 combinations, in task order (A before B before U in each slot).
pub fn all_combinations() -> Vec<String> {
    let teams = ['A', 'B', 'U'];
    let mut names = Vec::with_capacity(81);
    for dp in teams {
        for first in teams {
            for core in teams {
                for fin in teams {
                    names.push([dp, first, core, fin].iter().collect());
                }
            }
        }
    }
    names
}

/// The model of a combination named `name` (e.g. `AUBA`), or why it cannot be built here.
pub fn model_of(name: &str, size: Size) -> Result<NetConfig> {
    let teams: Vec<char> = name.chars().collect();
    let bad = |why: &str| Err(Error::Config(format!("grid cell {name:?}: {why}")));
    if teams.len() != 4 || teams.iter().any(|c| !"ABU".contains(*c)) {
        return bad(
            "a cell is four letters from A (Autosome.org), B (BHI), U (Unlock_DNA): data processor, first, core, final",
        );
    }
    if let Some(why) = incompatibility(name) {
        return bad(&format!("incompatible: {why}"));
    }
    let first = first_block(teams[1], size);
    let core = core_block(teams[2], size, first.out_channels());
    let model = NetConfig {
        tasks: Vec::new(),
        input: data_processor(teams[0]).0,
        first,
        core,
        final_block: final_block(teams[3], size),
    };
    model.check()?;
    Ok(model)
}

/// Every combination this version can build, in task order: the 45 compatible ones,
/// {A,B} · {A,B,U} · {A,B,U} · {A,B} and U · {A,B,U} · {A,B,U} · U.
pub fn buildable() -> Vec<String> {
    all_combinations()
        .into_iter()
        .filter(|n| incompatibility(n).is_none())
        .collect()
}

/// Plan a grid in `dir` (created; a directory that already holds a plan is refused): the
/// cells named (all buildable ones when `names` is empty), each with its model, on `data`
/// with `recipe`. Writes `grid.toml` and `tasks.tsv`, each atomically.
pub fn plan(
    dir: &Path,
    names: &[String],
    size: Size,
    data: DataSection,
    recipe: Recipe,
) -> Result<GridPlan> {
    recipe.check()?;
    let names = if names.is_empty() {
        buildable()
    } else {
        names.to_vec()
    };
    let mut cells = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if names[..index].contains(name) {
            return Err(Error::Config(format!("grid cell {name:?} is named twice")));
        }
        let model = model_of(name, size)?;
        cells.push(Cell {
            index,
            name: name.clone(),
            model,
            fold: None,
        });
    }
    if dir.join(PLAN_FILE).exists() {
        return Err(Error::Config(format!(
            "{} already holds a grid plan; run its cells, or plan the new grid in another \
             directory",
            dir.display()
        )));
    }
    let plan = GridPlan {
        size,
        data,
        recipe,
        cells,
    };
    // The data, read once per data processor as its cells will read it: a bad row or a
    // split that leaves nothing is refused now, not by every task of a submitted array.
    let mut seen = Vec::new();
    for cell in &plan.cells {
        let dp = cell.data_processor();
        if !seen.contains(&dp) {
            seen.push(dp);
            crate::train::load_data(&plan.train_config(cell)).map_err(|e| {
                Error::Config(format!(
                    "the grid's data do not fit its {} data processor's cells (checked on {}): {e}",
                    data_processor(dp).2,
                    cell.name
                ))
            })?;
        }
    }
    write_plan(dir, &plan)
}

/// Write `plan` into `dir` (`cells/`, `tasks.tsv`, then `grid.toml`, each file atomically) and
/// read it back.
pub(crate) fn write_plan(dir: &Path, plan: &GridPlan) -> Result<GridPlan> {
    std::fs::create_dir_all(dir.join("cells")).map_err(|e| Error::io(dir, e))?;
    let text = toml::to_string_pretty(plan).expect("a grid plan serialises");
    let mut tasks = String::from("task\tcell\n");
    for c in &plan.cells {
        writeln!(tasks, "{}\t{}", c.index, c.name).expect("a string takes writes");
    }
    crate::output::write_atomic(&dir.join(TASKS_FILE), tasks.as_bytes())?;
    crate::output::write_atomic(&dir.join(PLAN_FILE), text.as_bytes())?;
    read_plan(dir)
}

/// Read a grid's plan back.
pub fn read_plan(dir: &Path) -> Result<GridPlan> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Config(format!(
            "{}: no grid plan there (no {PLAN_FILE}); make one with `prixfixe grid plan`",
            dir.display()
        )),
        _ => Error::io(&path, e),
    })?;
    let plan: GridPlan = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: not a grid plan: {e}", path.display())))?;
    for (i, c) in plan.cells.iter().enumerate() {
        if c.index != i {
            return Err(Error::Config(format!(
                "{}: cell {:?} has index {}, expected {i}",
                path.display(),
                c.name,
                c.index
            )));
        }
        c.model
            .check()
            .map_err(|e| Error::Config(format!("{}: cell {}: {e}", path.display(), c.name)))?;
    }
    Ok(plan)
}

impl GridPlan {
    /// The training config of a cell: the grid's recipe, run by the cell's trainer; a
    /// cross-validation's fold run: its own split, the plan's recipe.
    pub fn train_config(&self, cell: &Cell) -> TrainConfig {
        if let Some(f) = &cell.fold {
            return TrainConfig {
                model: cell.model.clone(),
                data: f.data.clone(),
                recipe: self.recipe.clone(),
            };
        }
        TrainConfig {
            model: cell.model.clone(),
            data: self.data.clone(),
            recipe: self
                .recipe
                .with_trainer(data_processor(cell.data_processor()).1),
        }
    }

    /// The cell of task `task`.
    pub fn cell(&self, task: usize) -> Result<&Cell> {
        self.cells.get(task).ok_or_else(|| {
            Error::Config(format!(
                "task {task} is not in this grid: its tasks are 0–{}",
                self.cells.len().saturating_sub(1)
            ))
        })
    }
}

/// Where a cell stands, read from its files.
#[derive(Debug, Clone, PartialEq)]
pub enum CellStatus {
    /// Nothing run yet.
    Pending,
    /// Some epochs committed (a run that was stopped or is running).
    Partial {
        /// Epochs committed.
        epochs: usize,
    },
    /// Every epoch of the recipe done, or stopped early by its patience.
    Finished,
    /// The loss diverged; the message says where.
    Diverged(String),
}

/// What [`run_cell`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOutcome {
    /// It was finished already: nothing ran.
    AlreadyFinished,
    /// It trained to the end (resumed from `from_epoch` when that is not 0).
    Trained {
        /// Epochs committed before this run.
        from_epoch: usize,
    },
    /// Its loss diverged; recorded, not an error.
    Diverged(String),
}

/// The status of one cell.
pub fn cell_status(plan: &GridPlan, grid: &Path, cell: &Cell) -> Result<CellStatus> {
    let state = TrainerState::read(&cell.dir(grid))?;
    classify(plan, grid, cell, state.as_ref())
}

/// The status of a cell whose committed state is `state`.
fn classify(
    plan: &GridPlan,
    grid: &Path,
    cell: &Cell,
    state: Option<&TrainerState>,
) -> Result<CellStatus> {
    let diverged = cell.diverged_file(grid);
    if diverged.exists() {
        let text = std::fs::read_to_string(&diverged).map_err(|e| Error::io(&diverged, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Other(format!("{}: {e}", diverged.display())))?;
        return Ok(CellStatus::Diverged(
            v["error"].as_str().unwrap_or("diverged").to_string(),
        ));
    }
    Ok(match state {
        None => CellStatus::Pending,
        Some(s) if crate::train::run_finished(&plan.train_config(cell).recipe, s) => {
            CellStatus::Finished
        }
        Some(s) => CellStatus::Partial {
            epochs: s.epochs_done,
        },
    })
}

/// The run directories of a plan's finished cells (a cross-validation's models, to be
/// averaged), in task order; an error when none is finished.
pub fn finished_run_dirs(grid: &Path) -> Result<Vec<PathBuf>> {
    let plan = read_plan(grid)?;
    let mut dirs = Vec::new();
    for cell in &plan.cells {
        if cell_status(&plan, grid, cell)? == CellStatus::Finished {
            dirs.push(cell.dir(grid));
        }
    }
    if dirs.is_empty() {
        return Err(Error::Config(format!(
            "{}: none of its {} runs is finished, so it has no model to use yet",
            grid.display(),
            plan.cells.len()
        )));
    }
    Ok(dirs)
}

/// Run (or resume, or skip) task `task` of the grid in `grid`.
pub fn run_cell(grid: &Path, task: usize, opts: &TrainOptions) -> Result<CellOutcome> {
    let plan = read_plan(grid)?;
    let cell = plan.cell(task)?;
    let from_epoch = match cell_status(&plan, grid, cell)? {
        CellStatus::Finished => return Ok(CellOutcome::AlreadyFinished),
        CellStatus::Diverged(e) => return Ok(CellOutcome::Diverged(e)),
        CellStatus::Partial { epochs } => epochs,
        CellStatus::Pending => 0,
    };
    let dir = cell.dir(grid);
    // A directory holding a run (even one killed before its first epoch was committed) is
    // resumed; otherwise a fresh run starts.
    let resume = dir.join("config.toml").exists();
    let opts = TrainOptions {
        resume,
        ..opts.clone()
    };
    match crate::train::train(&plan.train_config(cell), &dir, &opts) {
        Ok(_) => Ok(CellOutcome::Trained { from_epoch }),
        Err(e @ Error::Diverged { .. }) => {
            let message = e.to_string();
            let record = serde_json::json!({ "cell": cell.name, "error": message });
            crate::output::write_atomic(&cell.diverged_file(grid), record.to_string().as_bytes())?;
            Ok(CellOutcome::Diverged(message))
        }
        Err(e) => Err(e),
    }
}

/// One row of the results table.
#[derive(Debug, Clone, PartialEq)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// Where it stands.
    pub status: CellStatus,
    /// Parameters of its model.
    pub params: usize,
    /// The best epoch (1-based), when one is committed.
    pub best_epoch: Option<usize>,
    /// Validation Pearson r at the best epoch.
    pub val_pearson: Option<f64>,
    /// Validation Spearman ρ at the best epoch.
    pub val_spearman: Option<f64>,
    /// Training seconds over the committed epochs.
    pub seconds: f64,
    /// The DREAM score of its best checkpoint on a test set (weighted Pearson r², weighted
    /// Spearman ρ), once [`score_cells`] has computed it.
    pub dream: Option<(f64, f64)>,
}

/// Every cell's status and, where epochs are committed, its best validation figures.
pub fn status(grid: &Path) -> Result<Vec<CellResult>> {
    let plan = read_plan(grid)?;
    let device = burn::tensor::Device::flex();
    let mut rows = Vec::new();
    for cell in &plan.cells {
        let state = TrainerState::read(&cell.dir(grid))?;
        let status = classify(&plan, grid, cell, state.as_ref())?;
        let history = state.map(|s| s.history).unwrap_or_default();
        // The last epoch marked best is the best one.
        let best = history.iter().rfind(|r| r.best).or(history.last());
        let params = cell.model.init(&device)?.param_counts().total();
        rows.push(CellResult {
            cell: cell.clone(),
            status,
            params,
            best_epoch: best.map(|r| r.epoch),
            val_pearson: best.and_then(|r| r.val_pearson),
            val_spearman: best.and_then(|r| r.val_spearman),
            seconds: history.iter().map(|r| r.seconds).sum(),
            dream: None,
        });
    }
    Ok(rows)
}

/// Score every finished cell on a test set: its best checkpoint predicts `test_file` into
/// `cells/NNN-NAME/test-<first 12 hex of the file's SHA-256>.tsv` (kept, and reused while it
/// is newer than the checkpoint), scored on the test set's subsets with the challenge's
/// weights. `on_cell` is told each cell's name before it is scored.
pub fn score_cells(
    grid: &Path,
    rows: &mut [CellResult],
    test: &crate::eval::report::TestSet,
    test_file: &Path,
    mut on_cell: impl FnMut(&str),
) -> Result<()> {
    use crate::predict::{Model, predict_file};
    let tag = crate::train::run_dir::sha256_file(test_file)?;
    let device = burn::tensor::Device::flex();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    for row in rows.iter_mut() {
        if row.status != CellStatus::Finished {
            continue;
        }
        on_cell(&row.cell.name);
        let dir = row.cell.dir(grid);
        let best = dir.join("best.safetensors");
        let out = dir.join(format!("test-{}.tsv", &tag[..12]));
        let fresh = matches!((modified(&out), modified(&best)), (Some(o), Some(b)) if o >= b);
        if !fresh {
            let model = Model::from_checkpoint(&best, &device)?;
            predict_file(&model, test_file, None, &out, 1024, |_| {})?;
        }
        let preds = crate::eval::read_predictions_for(&out, &test.data)?;
        let s = crate::eval::dream_score(&test.subsets, &preds, &test.measured);
        row.dream = Some((s.pearson_score, s.spearman_score));
    }
    Ok(())
}

impl CellStatus {
    /// One word for tables.
    pub fn word(&self) -> String {
        match self {
            CellStatus::Pending => "pending".into(),
            CellStatus::Partial { epochs } => format!("partial({epochs})"),
            CellStatus::Finished => "finished".into(),
            CellStatus::Diverged(_) => "not-converged".into(),
        }
    }
}

/// Draw the heatmap of `rows` as `heatmap.svg` and `heatmap.png` in `grid` (each written
/// atomically).
pub fn write_heatmap(grid: &Path, rows: &[CellResult]) -> Result<()> {
    crate::figure::write_svg_png(&grid.join("heatmap"), &heatmap::Heatmap(rows))
}

/// The results as CSV (one row per cell).
pub fn results_csv(rows: &[CellResult]) -> String {
    let mut out = String::from(
        "task,cell,first,core,final,status,params,best_epoch,val_pearson,val_spearman,seconds,\
         dream_pearson_score,dream_spearman_score\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    for r in rows {
        let m = &r.cell.model;
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{:.1},{},{}",
            r.cell.index,
            r.cell.name,
            m.first.name(),
            m.core.name(),
            m.final_block.name(),
            r.status.word(),
            r.params,
            r.best_epoch.map_or(String::new(), |e| e.to_string()),
            opt(r.val_pearson),
            opt(r.val_spearman),
            r.seconds,
            opt(r.dream.map(|d| d.0)),
            opt(r.dream.map(|d| d.1)),
        )
        .expect("a string takes writes");
    }
    out
}

/// The results as a table for the terminal (with the DREAM score's two columns when any
/// cell has one).
pub fn results_table(rows: &[CellResult]) -> String {
    let scored = rows.iter().any(|r| r.dream.is_some());
    let mut out = format!(
        "{:>4}  {:<5} {:<14} {:>11} {:>5} {:>8} {:>9} {:>8}",
        "task", "cell", "status", "parameters", "best", "Pearson", "Spearman", "seconds"
    );
    if scored {
        out.push_str("  DREAM r²  DREAM ρ");
    }
    out.push('\n');
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    for r in rows {
        write!(
            out,
            "{:>4}  {:<5} {:<14} {:>11} {:>5} {:>8} {:>9} {:>8.1}",
            r.cell.index,
            r.cell.name,
            r.status.word(),
            r.params,
            r.best_epoch.map_or("-".to_string(), |e| e.to_string()),
            opt(r.val_pearson),
            opt(r.val_spearman),
            r.seconds
        )
        .expect("a string takes writes");
        if scored {
            write!(
                out,
                "  {:>8}  {:>7}",
                opt(r.dream.map(|d| d.0)),
                opt(r.dream.map(|d| d.1))
            )
            .expect("a string takes writes");
        }
        out.push('\n');
    }
    out
}

/// How the Slurm array is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmOptions {
    /// The `prixfixe` binary the tasks run (an absolute path).
    pub exe: PathBuf,
    /// At most this many tasks at once (`--array=0-N%K`); `None`: Slurm decides.
    pub parallel: Option<usize>,
    /// CPUs per task.
    pub cpus: usize,
    /// Time limit per task (`--time`, Slurm's format, e.g. `12:00:00`).
    pub time: Option<String>,
    /// Partition.
    pub partition: Option<String>,
    /// Seconds before the time limit that Slurm sends SIGUSR1 (`--signal=B:USR1@…`).
    pub warning_seconds: u32,
}

/// Quote `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The two batch scripts of a grid on Slurm: the array of cells and the collect job (run
/// with `--dependency=afterok:<array>`).
///
/// Each array task runs `prixfixe grid run --task $SLURM_ARRAY_TASK_ID`. Slurm's warning
/// (`--signal=B:USR1@…`) reaches the batch shell, which passes it on; the run stops after its
/// batch, keeping its last committed epoch, and exits 75, and the script then requeues the
/// task (`--requeue`), which resumes where the committed epochs end. A cancelled task
/// (`scancel`, SIGTERM) is not requeued; running the array again resumes it.
pub fn slurm_scripts(grid: &Path, plan: &GridPlan, o: &SlurmOptions) -> (String, String) {
    let dir = shell_quote(&grid.display().to_string());
    let exe = shell_quote(&o.exe.display().to_string());
    let logs = grid.join("logs");
    let last = plan.cells.len().saturating_sub(1);
    let throttle = o.parallel.map_or(String::new(), |k| format!("%{k}"));
    let mut head = String::new();
    if let Some(t) = &o.time {
        writeln!(head, "#SBATCH --time={t}").expect("a string takes writes");
    }
    if let Some(p) = &o.partition {
        writeln!(head, "#SBATCH --partition={p}").expect("a string takes writes");
    }
    let array = format!(
        r#"#!/bin/bash
# The Prix Fixe grid in {grid}: one array task per cell (tasks.tsv). Written by prixfixe.
#SBATCH --job-name=prixfixe-grid
#SBATCH --array=0-{last}{throttle}
#SBATCH --cpus-per-task={cpus}
#SBATCH --requeue
#SBATCH --signal=B:USR1@{warn}
#SBATCH --output={logs}/%A_%a.out
{head}set -u
export RAYON_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-{cpus}}}"
task="$SLURM_ARRAY_TASK_ID"
{exe} grid run {dir} --task "$task" &
child=$!
warned=0
# The time-limit warning: pass it on; the run stops after its batch and exits 75.
trap 'warned=1; kill -USR1 "$child" 2>/dev/null' USR1
# scancel: pass it on; the task is not requeued.
trap 'kill -TERM "$child" 2>/dev/null' TERM
rc=0
wait "$child" || rc=$?
# A trapped signal interrupts `wait` (status > 128): wait again for the real exit.
while kill -0 "$child" 2>/dev/null; do rc=0; wait "$child" || rc=$?; done
if [ "$rc" = 75 ] && [ "$warned" = 1 ]; then
  echo "task $task: stopped before the time limit; requeueing"
  scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_${{task}}"
  exit 0
fi
exit "$rc"
"#,
        grid = grid.display(),
        cpus = o.cpus,
        warn = o.warning_seconds,
        logs = logs.display(),
    );
    let collect = format!(
        r#"#!/bin/bash
# Collect the Prix Fixe grid in {grid} once every cell has finished. Written by prixfixe.
#SBATCH --job-name=prixfixe-grid-collect
#SBATCH --cpus-per-task=1
#SBATCH --output={logs}/collect_%j.out
{head}set -eu
{exe} grid status {dir}
"#,
        grid = grid.display(),
        logs = logs.display(),
    );
    (array, collect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildable_cells_match_the_reference_parameter_counts() {
        let device = burn::tensor::Device::flex();
        // SPEC_GRID §9.4, A · 6 × 150 (final A / final B).
        let want = [
            ("AAAA", 1_725_122),
            ("AAAB", 2_342_641),
            ("AABA", 3_954_642),
            ("AABB", 7_025_153),
            ("AAUA", 4_539_410),
            ("AAUB", 6_996_673),
            ("ABAA", 1_933_970),
            ("ABAB", 2_551_489),
            ("ABBA", 4_130_578),
            ("ABBB", 7_201_089),
            ("ABUA", 7_076_178),
            ("ABUB", 10_146_689),
            ("AUAA", 1_768_898),
            ("AUAB", 2_386_417),
            ("AUBA", 3_998_418),
            ("AUBB", 7_068_929),
            ("AUUA", 4_583_186),
            ("AUUB", 7_040_449),
            // B · 4 × 110.
            ("BAAA", 1_721_538),
            ("BAAB", 2_175_217),
            ("BABA", 3_951_058),
            ("BABB", 6_202_369),
            ("BAUA", 4_525_586),
            ("BAUB", 6_327_489),
            ("BBAA", 1_926_290),
            ("BBAB", 2_379_969),
            ("BBBA", 4_122_898),
            ("BBBB", 6_374_209),
            ("BBUA", 7_055_698),
            ("BBUB", 9_307_009),
            ("BUAA", 1_753_538),
            ("BUAB", 2_207_217),
            ("BUBA", 3_983_058),
            ("BUBB", 6_234_369),
            ("BUUA", 4_557_586),
            ("BUUB", 6_359_489),
            // U · 6 × 200 tokens.
            ("UAAU", 1_724_342),
            ("UABU", 3_950_790),
            ("UAUU", 4_549_126),
            ("UBAU", 1_933_190),
            ("UBBU", 4_126_726),
            ("UBUU", 7_088_326),
            ("UUAU", 1_780_918),
            ("UUBU", 4_007_366),
            ("UUUU", 4_605_702),
        ];
        assert_eq!(
            buildable(),
            want.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()
        );
        for (name, params) in want {
            let model = model_of(name, Size::Full).unwrap();
            let got = model.init(&device).unwrap().param_counts().total();
            assert_eq!(got, params, "{name}");
        }
    }

    #[test]
    fn slurm_scripts_ask_for_the_array_the_warning_and_the_requeue() {
        let names: Vec<String> = ["ABAA", "AUBB", "ABUA"].map(String::from).to_vec();
        let cells = names
            .iter()
            .enumerate()
            .map(|(index, name)| Cell {
                index,
                name: name.clone(),
                model: model_of(name, Size::Tiny).unwrap(),
                fold: None,
            })
            .collect();
        let plan = GridPlan {
            size: Size::Tiny,
            data: DataSection {
                train: "t.txt".into(),
                valid: None,
                valid_fraction: 0.1,
                valid_fold: None,
                table: None,
                folds: None,
                test_folds: Vec::new(),
            },
            recipe: Recipe::default(),
            cells,
        };
        let o = SlurmOptions {
            exe: "/opt/prix fixe/prixfixe".into(),
            parallel: Some(2),
            cpus: 4,
            time: Some("12:00:00".into()),
            partition: None,
            warning_seconds: 300,
        };
        let (array, collect) = slurm_scripts(Path::new("/g/it's"), &plan, &o);
        for line in [
            "#SBATCH --array=0-2%2",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@300",
            "#SBATCH --time=12:00:00",
            "'/opt/prix fixe/prixfixe' grid run '/g/it'\\''s' --task \"$task\" &",
            "if [ \"$rc\" = 75 ] && [ \"$warned\" = 1 ]; then",
        ] {
            assert!(array.lines().any(|l| l == line), "{line:?} not in\n{array}");
        }
        assert!(!array.contains("--partition"));
        assert!(collect.contains("'/opt/prix fixe/prixfixe' grid status '/g/it'\\''s'"));
    }

    #[test]
    fn of_the_81_combinations_45_are_compatible() {
        let all = all_combinations();
        assert_eq!(all.len(), 81);
        assert_eq!((all[0].as_str(), all[80].as_str()), ("AAAA", "UUUU"));
        let compatible: Vec<&String> = all
            .iter()
            .filter(|n| incompatibility(n).is_none())
            .collect();
        assert_eq!(compatible.len(), 45);
        // This version builds every compatible one.
        assert_eq!(buildable().iter().collect::<Vec<_>>(), compatible);
    }

    #[test]
    fn cells_that_cannot_be_built_say_why() {
        for (name, why) in [
            (
                "AAAU",
                "incompatible: the Unlock_DNA final block needs the Unlock_DNA trainer",
            ),
            (
                "UAAA",
                "incompatible: the Unlock_DNA trainer needs the Unlock_DNA final block",
            ),
            ("AXBA", "four letters"),
            ("ABA", "four letters"),
        ] {
            let e = model_of(name, Size::Tiny).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(name), "{name}: {e}");
        }
    }
}
