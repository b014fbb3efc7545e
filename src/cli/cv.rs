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
    /// Drosophila: the held-out chromosomes, comma-separated (default chr2L,chr2R,chr3L,chr3R,chrX).
    #[arg(long, value_delimiter = ',')]
    chromosomes: Vec<String>,
    /// Drosophila: train/validation folds per held-out chromosome (default 10).
    #[arg(long)]
    folds: Option<u16>,
    /// Epochs per run (default: the model's recipe: 80 for DREAM, 100 for the baselines).
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per batch (default: the model's recipe).
    #[arg(long)]
    batch_size: Option<usize>,
    /// An epoch as this many batches.
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
    config.apply(&TrainOverrides {
        epochs: a.epochs,
        batch_size: a.batch_size,
        batch_per_epoch: a.batch_per_epoch,
        patience: a.patience,
        seed: a.seed,
        ..Default::default()
    });
    let protocol = match kind {
        prixfixe::DataKind::Drosophila => {
            let Protocol::Chromosomes { test, folds } = Protocol::drosophila() else {
                unreachable!("the Drosophila protocol holds out chromosomes")
            };
            Protocol::Chromosomes {
                test: if a.chromosomes.is_empty() {
                    test
                } else {
                    a.chromosomes
                },
                folds: a.folds.unwrap_or(folds),
            }
        }
        _ => Protocol::Folds,
    };
    let seed = config.recipe.seed;
    let plan = cv::plan(
        &a.out,
        &a.model,
        &config.model,
        config.data,
        config.recipe,
        &protocol,
        seed,
    )
    .map_err(err)?;
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
        eprintln!("predicting with {name}")
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
