//! `prixfixe grid`: plan the Prix Fixe grid, run one cell (a Slurm array task), run every cell
//! on this machine, and collect the results.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process};

use clap::{Args, Subcommand, ValueEnum};
use prixfixe::grid::{self, CellOutcome, CellStatus, Size};
use prixfixe::train::{TrainConfig, TrainOptions, TrainOverrides};

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe grid list
  prixfixe grid plan --out grid --train train.txt --cells ABBA,AUAA --epochs 2
  prixfixe grid local grid --jobs 2
  prixfixe grid slurm grid --parallel 8 --time 12:00:00 --submit
  prixfixe grid status grid")]
pub struct GridArgs {
    #[command(subcommand)]
    command: GridCommand,
}

#[derive(Subcommand)]
enum GridCommand {
    /// List the combinations this version builds, with their parameter counts.
    List(ListArgs),
    /// Write a grid's plan (grid.toml) and task list (tasks.tsv) into a new directory.
    Plan(PlanArgs),
    /// Run, resume or skip one cell (a task of the plan); the unit a Slurm array runs.
    Run(RunArgs),
    /// Run every unfinished cell on this machine with K worker processes, then collect.
    Local(LocalArgs),
    /// Every cell's status and best validation figures; writes results.csv.
    Status(StatusArgs),
    /// Write the Slurm batch scripts (an array of cells, then a collect job) and, with
    /// --submit, submit them.
    Slurm(SlurmArgs),
}

#[derive(Args)]
struct SlurmArgs {
    /// The grid directory.
    grid: PathBuf,
    /// At most this many cells at once (the array's `%K`).
    #[arg(long)]
    parallel: Option<usize>,
    /// CPUs per cell.
    #[arg(long, default_value_t = 2)]
    cpus: usize,
    /// Time limit per cell, in Slurm's format (e.g. 12:00:00).
    #[arg(long)]
    time: Option<String>,
    /// Partition to run in.
    #[arg(long)]
    partition: Option<String>,
    /// Seconds before the time limit at which a cell stops after its batch and is requeued.
    #[arg(long, default_value_t = 300)]
    warning: u32,
    /// Submit the array and the collect job (sbatch) after writing them.
    #[arg(long)]
    submit: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SizeArg {
    /// The paper's widths.
    Full,
    /// Small widths, for trials (minutes on a CPU).
    Tiny,
}

#[derive(Args)]
struct ListArgs {
    /// Block widths.
    #[arg(long, value_enum, default_value = "full")]
    size: SizeArg,
}

#[derive(Args)]
struct PlanArgs {
    /// The grid directory (created).
    #[arg(long)]
    out: PathBuf,
    /// Training file (yeast DREAM format); every cell trains on it.
    #[arg(long)]
    train: PathBuf,
    /// Validation file; without one, --valid-fraction of the training rows is held out (the
    /// same rows for every cell).
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Fraction of training rows held out when there is no validation file.
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Cells to plan, comma-separated (e.g. ABBA,AUAA); default: every one `grid list` shows.
    #[arg(long, value_delimiter = ',')]
    cells: Vec<String>,
    /// Block widths.
    #[arg(long, value_enum, default_value = "full")]
    size: SizeArg,
    /// Epochs per cell (default 80).
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per batch (default 1024).
    #[arg(long)]
    batch_size: Option<usize>,
    /// One seed for every cell: initialisation, shuffling, dropout, the validation split
    /// (default 42).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct RunArgs {
    /// The grid directory.
    grid: PathBuf,
    /// Task index (0-based); defaults to $SLURM_ARRAY_TASK_ID.
    #[arg(long)]
    task: Option<usize>,
}

#[derive(Args)]
struct LocalArgs {
    /// The grid directory.
    grid: PathBuf,
    /// Worker processes at once; each gets its share of the cores.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

#[derive(Args)]
struct StatusArgs {
    /// The grid directory.
    grid: PathBuf,
    /// A test file (the DREAM test set's format): each finished cell's best checkpoint
    /// predicts it and the table adds the DREAM score (predictions are kept in the cell's
    /// directory and reused).
    #[arg(long)]
    test: Option<PathBuf>,
    /// The test set's subset files (a directory), for the weighted score; without it, only
    /// the `all` subset is scored.
    #[arg(long, requires = "test")]
    subsets: Option<PathBuf>,
}

fn size(s: SizeArg) -> Size {
    match s {
        SizeArg::Full => Size::Full,
        SizeArg::Tiny => Size::Tiny,
    }
}

fn err(e: prixfixe::Error) -> String {
    e.to_string()
}

/// Run `prixfixe grid …`.
pub fn run(a: GridArgs) -> Result<(), String> {
    match a.command {
        GridCommand::List(a) => list(a),
        GridCommand::Plan(a) => plan(a),
        GridCommand::Run(a) => run_task(a),
        GridCommand::Local(a) => local(a),
        GridCommand::Status(a) => status(a),
        GridCommand::Slurm(a) => slurm(a),
    }
}

fn list(a: ListArgs) -> Result<(), String> {
    let device = burn::tensor::Device::flex();
    println!("cell  input   first        core         final        parameters");
    let mut compatible = 0;
    for name in grid::all_combinations() {
        if let Some(why) = grid::incompatibility(&name) {
            println!("{name}  incompatible: {why}");
            continue;
        }
        compatible += 1;
        let m = grid::model_of(&name, size(a.size)).map_err(err)?;
        let params = m.init(&device).map_err(err)?.param_counts().total();
        let input = format!("{}×{}", m.input.channels.count(), m.input.padding.length());
        println!(
            "{name}  {input:<7} {:<12} {:<12} {:<12} {params:>10}",
            m.first.name(),
            m.core.name(),
            m.final_block.name()
        );
    }
    println!(
        "\n{compatible} of the 81 combinations (data processor · first · core · final; \
         A Autosome.org, B BHI, U Unlock_DNA) are compatible, and all are built.\n\
         The published reference code runs 42: its Unlock_DNA first block cannot take the \
         Unlock_DNA data processor's integer tokens. Here those tokens reach every first \
         block one-hot (A, C, G, T, N and the mask token: 6 channels), as the team's original \
         model did, which makes the 45 (SPEC_GRID §9.2, Q1)."
    );
    Ok(())
}

fn plan(a: PlanArgs) -> Result<(), String> {
    // Absolute paths: the tasks may run from another directory (a Slurm job's).
    let absolute = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let model = grid::model_of("ABAA", size(a.size)).map_err(err)?;
    let mut config = TrainConfig::for_data(model, prixfixe::DataKind::Yeast, absolute(&a.train)?);
    config.apply(&TrainOverrides {
        valid: a.valid.as_deref().map(absolute).transpose()?,
        valid_fraction: a.valid_fraction,
        epochs: a.epochs,
        batch_size: a.batch_size,
        seed: a.seed,
        ..Default::default()
    });
    let plan =
        grid::plan(&a.out, &a.cells, size(a.size), config.data, config.recipe).map_err(err)?;
    println!(
        "planned {} cells in {} ({} and {}); run one with `prixfixe grid run {} --task N`, \
         all here with `prixfixe grid local {} --jobs K`",
        plan.cells.len(),
        a.out.display(),
        grid::PLAN_FILE,
        grid::TASKS_FILE,
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

fn run_task(a: RunArgs) -> Result<(), String> {
    let task = match a.task {
        Some(t) => t,
        None => {
            let v = std::env::var("SLURM_ARRAY_TASK_ID")
                .map_err(|_| "give --task N (or run inside a Slurm array job)".to_string())?;
            v.parse()
                .map_err(|_| format!("SLURM_ARRAY_TASK_ID={v:?} is not a task index"))?
        }
    };
    let opts = TrainOptions {
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        stop: super::stop_on_usr1(),
        ..Default::default()
    };
    let plan = grid::read_plan(&a.grid).map_err(err)?;
    let name = plan.cell(task).map_err(err)?.name.clone();
    let outcome = match grid::run_cell(&a.grid, task, &opts) {
        Err(e @ prixfixe::Error::Stopped { .. }) => super::exit_for_requeue(&e),
        other => other.map_err(err)?,
    };
    match outcome {
        CellOutcome::AlreadyFinished => println!("task {task} ({name}): already finished"),
        CellOutcome::Trained { from_epoch: 0 } => println!("task {task} ({name}): trained"),
        CellOutcome::Trained { from_epoch } => {
            println!("task {task} ({name}): resumed after epoch {from_epoch} and trained")
        }
        CellOutcome::Diverged(e) => println!("task {task} ({name}): not converged: {e}"),
    }
    Ok(())
}

/// Run every unfinished task of the plan in `grid` here, `jobs` at a time, then print its
/// status (what `prixfixe grid local` does).
pub(crate) fn run_local(grid: PathBuf, jobs: usize) -> Result<(), String> {
    local(LocalArgs { grid, jobs })
}

fn local(a: LocalArgs) -> Result<(), String> {
    if a.jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    let plan = grid::read_plan(&a.grid).map_err(err)?;
    let mut todo = Vec::new();
    for cell in &plan.cells {
        match grid::cell_status(&plan, &a.grid, cell).map_err(err)? {
            CellStatus::Finished | CellStatus::Diverged(_) => {}
            _ => todo.push(cell.clone()),
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / a.jobs).max(1);
    let logs = a.grid.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    tracing::info!(
        "{} of {} cells to run, {} at a time ({threads} threads each); logs in {}",
        todo.len(),
        plan.cells.len(),
        a.jobs,
        logs.display()
    );
    let mut running: Vec<(grid::Cell, PathBuf, Child)> = Vec::new();
    let mut failed = Vec::new();
    let mut queue = todo.into_iter();
    loop {
        while running.len() < a.jobs {
            let Some(cell) = queue.next() else { break };
            let log = logs.join(format!("{:03}-{}.log", cell.index, cell.name));
            let file =
                std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let child = Process::new(&exe)
                .args(["grid", "run"])
                .arg(&a.grid)
                .args(["--task", &cell.index.to_string()])
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdout(file.try_clone().map_err(|e| e.to_string())?)
                .stderr(file)
                .spawn()
                .map_err(|e| format!("starting a worker: {e}"))?;
            tracing::info!("started task {} ({})", cell.index, cell.name);
            running.push((cell, log, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            match running[i].2.try_wait().map_err(|e| e.to_string())? {
                Some(code) => {
                    let (cell, log, _) = running.swap_remove(i);
                    if code.success() {
                        tracing::info!("done    task {} ({})", cell.index, cell.name);
                    } else {
                        tracing::info!(
                            "failed  task {} ({}): {code}; see {}",
                            cell.index,
                            cell.name,
                            log.display()
                        );
                        failed.push(cell.name);
                    }
                }
                None => i += 1,
            }
        }
    }
    status(StatusArgs {
        grid: a.grid.clone(),
        test: None,
        subsets: None,
    })?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} cell(s) failed: {}; run `prixfixe grid local` again to retry them",
            failed.len(),
            failed.join(", ")
        ))
    }
}

fn status(a: StatusArgs) -> Result<(), String> {
    let dir = a.grid.as_path();
    let mut rows = grid::status(dir).map_err(err)?;
    if let Some(test_file) = &a.test {
        use prixfixe::eval::report::{load_test_set, subset_files};
        let subsets = match &a.subsets {
            Some(d) => subset_files(d).map_err(err)?,
            None => Vec::new(),
        };
        let test = load_test_set(test_file, &subsets, None).map_err(err)?;
        grid::score_cells(dir, &mut rows, &test, test_file, |name| {
            tracing::info!("scoring {name} on {}", test_file.display())
        })
        .map_err(err)?;
    }
    let csv = grid::results_csv(&rows);
    let path = dir.join(grid::RESULTS_FILE);
    prixfixe::output::write_atomic(&path, csv.as_bytes()).map_err(err)?;
    print!("{}", grid::results_table(&rows));
    if rows.iter().any(|r| r.cell.fold.is_some()) {
        println!(
            "results in {}; score the cross-validation with `prixfixe cv collect {}`",
            path.display(),
            dir.display()
        );
        return Ok(());
    }
    grid::write_heatmap(dir, &rows).map_err(err)?;
    println!(
        "results in {}; heatmap in {} and {}",
        path.display(),
        dir.join("heatmap.svg").display(),
        dir.join("heatmap.png").display()
    );
    Ok(())
}

fn slurm(a: SlurmArgs) -> Result<(), String> {
    if a.cpus == 0 || a.parallel == Some(0) {
        return Err("--cpus and --parallel must be at least 1".into());
    }
    let grid_dir =
        std::fs::canonicalize(&a.grid).map_err(|e| format!("{}: {e}", a.grid.display()))?;
    let plan = grid::read_plan(&grid_dir).map_err(err)?;
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let options = grid::SlurmOptions {
        exe,
        parallel: a.parallel,
        cpus: a.cpus,
        time: a.time,
        partition: a.partition,
        warning_seconds: a.warning,
    };
    let (array, collect) = grid::slurm_scripts(&grid_dir, &plan, &options);
    let dir = grid_dir.join("slurm");
    for d in [&dir, &grid_dir.join("logs")] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let (array_path, collect_path) = (dir.join("array.sbatch"), dir.join("collect.sbatch"));
    for (path, text) in [(&array_path, &array), (&collect_path, &collect)] {
        prixfixe::output::write_atomic(path, text.as_bytes()).map_err(err)?;
    }
    if !a.submit {
        println!(
            "wrote {} and {}; submit them with\n  job=$(sbatch --parsable {})\n  sbatch --dependency=afterok:$job {}",
            array_path.display(),
            collect_path.display(),
            array_path.display(),
            collect_path.display()
        );
        return Ok(());
    }
    let submit = |args: &[&str]| -> Result<String, String> {
        let out = Process::new("sbatch")
            .arg("--parsable")
            .args(args)
            .output()
            .map_err(|e| format!("running sbatch: {e} (is Slurm installed here?)"))?;
        if !out.status.success() {
            return Err(format!(
                "sbatch {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // `--parsable` prints `id` or `id;cluster`.
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.trim().split(';').next().unwrap_or("").to_string())
    };
    let job = submit(&[&array_path.display().to_string()])?;
    let after = format!("--dependency=afterok:{job}");
    let collector = submit(&[&after, &collect_path.display().to_string()])?;
    println!(
        "submitted array job {job} ({} cells) and collect job {collector}; \
         watch with `prixfixe grid status {}`",
        plan.cells.len(),
        grid_dir.display()
    );
    Ok(())
}
