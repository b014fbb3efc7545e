//! `prixfixe cv`: plan a cross-validation (its fold runs are run by `grid local`, `grid run`
//! or `grid slurm`, the grid's executors) and collect its averaged test predictions.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use prixfixe::grid::cv::{self, Protocol};
use prixfixe::train::{TrainConfig, TrainOverrides};

#[derive(Args)]
pub struct CvArgs {
    #[command(subcommand)]
    command: CvCommand,
}

#[derive(Subcommand)]
enum CvCommand {
    /// Write the plan of fold runs into a new directory (run them with `prixfixe grid local
    /// DIR`, `grid run DIR --task N` or `grid slurm DIR`).
    #[command(
        after_help = "Examples:\n  prixfixe cv plan --out cv_human --model mprann --data human --train human.txt\n  prixfixe cv plan --out cv_fly --model dream-rnn --data drosophila --train fly.txt\n  prixfixe grid local cv_fly --jobs 2 && prixfixe cv collect cv_fly"
    )]
    Plan(PlanArgs),
    /// Average each test group's models on its test rows and score them (per group and
    /// pooled); writes cv_predictions.tsv and cv_scores.csv.
    Collect(CollectArgs),
}

#[derive(Args)]
struct PlanArgs {
    /// The cross-validation directory (created).
    #[arg(long)]
    out: PathBuf,
    /// A named model: dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann.
    #[arg(long)]
    model: String,
    /// Data kind, which also picks the protocol: human (the file's folds: 9 runs per test
    /// fold) or drosophila (5 held-out chromosomes × 10 region-grouped folds).
    #[arg(long, value_parser = ["human", "drosophila"])]
    data: String,
    /// The data file (lentiMPRA or DeepSTARR layout, with ids).
    #[arg(long)]
    train: PathBuf,
    #[command(flatten)]
    runs: RunsArgs,
    /// Sequences per batch (default: the model's recipe).
    #[arg(long)]
    batch_size: Option<usize>,
}

/// The protocol's and the runs' settings, shared by `cv plan` and `benchmark`.
#[derive(Args, Clone)]
struct RunsArgs {
    /// Drosophila: the held-out chromosomes, comma-separated (default chr2L,chr2R,chr3L,chr3R,chrX).
    #[arg(long, value_delimiter = ',')]
    chromosomes: Vec<String>,
    /// Drosophila: train/validation folds per held-out chromosome (default 10).
    #[arg(long)]
    folds: Option<u16>,
    /// Epochs per run (default: the model's recipe: 80 for DREAM, 100 for the baselines).
    #[arg(long)]
    epochs: Option<usize>,
    /// An epoch as this many batches (for trials).
    #[arg(long)]
    batch_per_epoch: Option<usize>,
    /// Early-stopping patience (default: the model's recipe).
    #[arg(long)]
    patience: Option<usize>,
    /// Seed of every run and of the Drosophila folds (default 42).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
struct CollectArgs {
    /// The cross-validation directory.
    dir: PathBuf,
    /// Sequences per prediction batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

pub fn run(a: CvArgs) -> Result<(), String> {
    match a.command {
        CvCommand::Plan(a) => plan(a),
        CvCommand::Collect(a) => collect(a),
    }
}

fn plan(a: PlanArgs) -> Result<(), String> {
    let err = |e: prixfixe::Error| e.to_string();
    let absolute = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let kind = prixfixe::DataKind::parse(&a.data).map_err(err)?;
    let model = prixfixe::NetConfig::preset(&a.model, kind).map_err(err)?;
    let mut config = TrainConfig::for_data(model, kind, absolute(&a.train)?);
    let r = &a.runs;
    config.apply(&TrainOverrides {
        epochs: r.epochs,
        batch_size: a.batch_size,
        batch_per_epoch: r.batch_per_epoch,
        patience: r.patience,
        seed: r.seed,
        ..Default::default()
    });
    let protocol = match kind {
        prixfixe::DataKind::Drosophila => {
            let Protocol::Chromosomes { test, folds } = Protocol::drosophila() else {
                unreachable!("the Drosophila protocol holds out chromosomes")
            };
            Protocol::Chromosomes {
                test: if r.chromosomes.is_empty() {
                    test
                } else {
                    r.chromosomes.clone()
                },
                folds: r.folds.unwrap_or(folds),
            }
        }
        _ => Protocol::Folds,
    };
    let spec = cv::CvSpec {
        name: a.model.clone(),
        seed: config.recipe.seed,
        model: config.model,
        data: config.data,
        recipe: config.recipe,
        protocol,
    };
    let plan = cv::plan(&a.out, &spec).map_err(err)?;
    println!(
        "planned {} fold runs of {} in {}; run them with `prixfixe grid local {} --jobs K` (or \
         `grid slurm`), then `prixfixe cv collect {}`",
        plan.cells.len(),
        a.model,
        a.out.display(),
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

fn collect(a: CollectArgs) -> Result<(), String> {
    let report = cv::collect(&a.dir, a.batch.max(1), |name| {
        tracing::info!("predicting with {name}")
    })
    .map_err(|e| e.to_string())?;
    print!("{}", cv::scores_table(&report));
    println!(
        "predictions in {}; scores in {}",
        a.dir.join(cv::PREDICTIONS_FILE).display(),
        a.dir.join(cv::SCORES_FILE).display()
    );
    Ok(())
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchmarkArgs {
    /// `atac`: ChromBPNet's ATAC-seq task (Fig. 3c,d) instead of the MPRA benchmarks.
    #[command(subcommand)]
    task: Option<BenchTask>,
    /// The benchmark directory: one cross-validation per model under it, then the table
    /// (benchmark.csv), the manifest (benchmark.json) and the bar plot (benchmark.svg/.png).
    /// Running the command again resumes the unfinished runs.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// Data kind, which picks the protocol and the baseline: human (the file's folds; MPRAnn)
    /// or drosophila (held-out chromosomes; DeepSTARR).
    #[arg(long, required = true, value_parser = ["human", "drosophila"])]
    data: Option<String>,
    /// The data file (lentiMPRA or DeepSTARR layout, with ids).
    #[arg(long, required = true)]
    train: Option<PathBuf>,
    /// Models, comma-separated (default: dream-cnn, dream-rnn, dream-attn and the data's
    /// baseline).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    #[command(flatten)]
    runs: RunsArgs,
    /// Runs at once on this machine.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

#[derive(clap::Subcommand)]
enum BenchTask {
    /// Every accessibility model on every fold of the ATAC task: counts r and median JSD per
    /// model, fold and group (benchmark_atac.csv, benchmark_atac.json, a printed table).
    Atac(super::atac::BenchAtacArgs),
}

pub fn benchmark(a: BenchmarkArgs) -> Result<(), String> {
    use prixfixe::grid::benchmark::{self, Entry};
    if let Some(BenchTask::Atac(b)) = a.task {
        return super::atac::benchmark(b);
    }
    let (Some(out), Some(data), Some(train)) = (a.out.clone(), a.data.clone(), a.train.clone())
    else {
        return Err("benchmark needs --out, --data and --train (or: benchmark atac …)".into());
    };
    let err = |e: prixfixe::Error| e.to_string();
    let baseline = if data == "human" {
        "mprann"
    } else {
        "deepstarr"
    };
    let models = if a.models.is_empty() {
        ["dream-cnn", "dream-rnn", "dream-attn", baseline]
            .map(String::from)
            .to_vec()
    } else {
        a.models.clone()
    };
    let kind = prixfixe::DataKind::parse(&data).map_err(err)?;
    for m in &models {
        prixfixe::NetConfig::preset(m, kind).map_err(err)?;
    }
    let train = std::fs::canonicalize(&train).map_err(|e| format!("{}: {e}", train.display()))?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut entries = Vec::new();
    for m in &models {
        let dir = out.join(m);
        if !dir.join(prixfixe::grid::PLAN_FILE).exists() {
            plan(PlanArgs {
                out: dir.clone(),
                model: m.clone(),
                data: data.clone(),
                train: train.clone(),
                runs: a.runs.clone(),
                batch_size: None,
            })?;
        }
        tracing::info!("benchmark: {m}");
        super::grid::run_local(dir.clone(), a.jobs)?;
        let report = cv::collect(&dir, 256, |_| {}).map_err(err)?;
        let plan = prixfixe::grid::read_plan(&dir).map_err(err)?;
        let device = burn::tensor::Device::flex();
        let parameters = plan.cells[0]
            .model
            .init(&device)
            .map_err(err)?
            .param_counts()
            .total();
        entries.push(Entry {
            model: m.clone(),
            parameters,
            batch_size: plan.recipe.batch_size,
            report,
        });
    }
    // On simulated data, the truth beside the models: its figures on the same test rows.
    let truth = train.with_file_name("truth.tsv");
    if let (true, Some(first)) = (truth.exists(), models.first()) {
        let report = cv::truth_report(&out.join(first), &truth).map_err(err)?;
        entries.push(Entry {
            model: "truth".into(),
            parameters: 0,
            batch_size: 0,
            report,
        });
    }
    let sha = prixfixe::train::run_dir::sha256_file(&train).map_err(err)?;
    let protocol = match kind {
        prixfixe::DataKind::Human => "human: every fold tests in turn; 9 models per test fold (one per validation fold, trained on the other 8), averaged; test folds concatenated".to_string(),
        _ => format!(
            "drosophila: held-out chromosomes {}; {} region-grouped folds each, model k validates on fold k; averaged per chromosome",
            if a.runs.chromosomes.is_empty() { "chr2L,chr2R,chr3L,chr3R,chrX".into() } else { a.runs.chromosomes.join(",") },
            a.runs.folds.unwrap_or(10)
        ),
    };
    let manifest = serde_json::json!({
        "prixfixe": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "data": data,
        "train": train,
        "train_sha256": sha,
        "protocol": protocol,
        "seed": a.runs.seed.unwrap_or(42),
        "epochs": a.runs.epochs,
        "batch_per_epoch": a.runs.batch_per_epoch,
        "truth": truth.exists().then(|| truth.display().to_string()),
    });
    let title = format!(
        "Cross-species benchmark: {} ({})",
        data,
        train
            .file_name()
            .map_or(String::new(), |f| f.to_string_lossy().into_owned())
    );
    benchmark::write(&out, &title, &entries, manifest).map_err(err)?;
    print!("{}", benchmark::table_text(&entries));
    println!(
        "table in {}; manifest in {}; plot in {} and {}",
        out.join(benchmark::TABLE_FILE).display(),
        out.join(benchmark::MANIFEST_FILE).display(),
        out.join("benchmark.svg").display(),
        out.join("benchmark.png").display()
    );
    Ok(())
}
