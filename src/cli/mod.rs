//! Command-line surface. Each subcommand parses its flags and calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod atac;
mod cv;
mod grid;
mod input;
mod interpret;
mod log;
mod progress;
mod simulate;

use prixfixe::data::formats::detect::{Format, inspect_file};

/// Prix Fixe sequence-to-expression models of gene regulation (Random Promoter DREAM
/// Challenge 2022): simulate data, train, predict, score, interpret and design.
#[derive(Parser)]
#[command(name = "prixfixe", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads for every parallel step (training, prediction, ISM, design); default:
    /// one per core. `RAYON_NUM_THREADS` sets it too.
    #[arg(long, global = true, env = "RAYON_NUM_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// More log lines on stderr: -v debug, -vv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Fewer: -q no progress bars and no info lines (warnings and errors stay), -qq errors
    /// only. Results still go to stdout and files.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run the small end-to-end job on built-in defaults: data → train → predict → score.
    Demo(DemoArgs),
    /// Simulate the random-promoter experiment and the DREAM test set, with known truth.
    Simulate(simulate::SimulateArgs),
    /// Train a Prix Fixe model (DREAM-CNN, DREAM-RNN, DREAM-Attn or any block combination).
    Train(TrainArgs),
    /// Predict expression for sequences with a trained model.
    Predict(PredictArgs),
    /// Score predictions with the DREAM Challenge's weighted metrics.
    Score(ScoreArgs),
    /// In-silico mutagenesis: the predicted effect of every single-base substitution.
    Ism(interpret::IsmArgs),
    /// Gradient attributions (saliency, input × gradient, integrated gradients, SHAP with
    /// dinucleotide-shuffled references), as `.npz` arrays TF-MoDISco reads, and logos.
    Attribute(interpret::AttributeArgs),
    /// Variant effects: predicted alt − ref for sequence pairs or VCF records.
    Variants(interpret::VariantsArgs),
    /// Design sequences with a genetic algorithm driven by trained models.
    Design(interpret::DesignArgs),
    /// The Prix Fixe grid: plan it, run a cell (a Slurm array task), run all here, collect.
    Grid(grid::GridArgs),
    /// Cross-validation as the paper's cross-species benchmarks ran it: plan the fold runs
    /// (run by the grid's executors), then average and score their test predictions.
    Cv(cv::CvArgs),
    /// The cross-species benchmark (Fig. 3a,b): each model cross-validated under the data's
    /// protocol, Pearson r per task per model as a table, a manifest and a bar plot.
    #[command(after_help = "Examples:
  prixfixe benchmark --data human --train human.txt --out bench_human
  prixfixe benchmark --data drosophila --train fly.txt --out bench_fly --models dream-rnn,deepstarr --jobs 2")]
    Benchmark(cv::BenchmarkArgs),
    /// Show a model's blocks and parameter counts; check that a weight file fits it.
    Inspect(InspectArgs),
    /// Measure training and inference speed and memory.
    Bench(BenchArgs),
    /// Validate a data file and summarise it (rows, lengths, singletons, label range).
    InspectData(InspectDataArgs),
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe train --model dream-cnn --train train.txt --out runs/cnn
  prixfixe train --model dream-rnn --train train.txt --out runs/rnn --epochs 80 --device cuda
  prixfixe train --resume --out runs/cnn")]
struct TrainArgs {
    /// A run config in TOML ([model], [data], [recipe]); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training file (DREAM, table or any format inspect-data reads).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Validation file; without one, --valid-fraction of the training rows is held out.
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Fraction of training rows held out (seeded) when there is no validation file.
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Named model: dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann (default dream-cnn).
    #[arg(long)]
    model: Option<String>,
    /// Data kind of a named model (default yeast).
    #[arg(long, value_parser = ["yeast", "human", "drosophila"])]
    data: Option<String>,
    /// Epochs (default 80).
    #[arg(long)]
    epochs: Option<usize>,
    /// Sequences per batch (default 1024; 32 for --data human or drosophila, as in the paper).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate (default 0.005; 0.001 for attention cores).
    #[arg(long)]
    max_lr: Option<f64>,
    /// An epoch as this many batches of one running shuffled stream.
    #[arg(long)]
    batch_per_epoch: Option<usize>,
    /// Early stopping: end the run after this many epochs without a better validation score
    /// (the baselines' recipe uses 10; the DREAM recipe runs every epoch).
    #[arg(long)]
    patience: Option<usize>,
    /// Seed (default 42).
    #[arg(long)]
    seed: Option<u64>,
    /// Device: cpu, cuda[:N], wgpu[:N], vulkan[:N] (default cpu).
    #[arg(long)]
    device: Option<String>,
    /// Output directory of the run.
    #[arg(long, short)]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Overwrite a run in --out.
    #[arg(long)]
    force: bool,
    /// What to train: expression from sequence files, or ChromBPNet's ATAC-seq task from a
    /// genome, peaks and a bigWig (--genome, --signal, --peaks, --nonpeaks, --folds; --model
    /// chrombpnet, dream-cnn, dream-rnn or dream-attn).
    #[arg(long, value_enum, default_value_t = Task::Expression)]
    task: Task,
    #[command(flatten)]
    atac: atac::AtacArgs,
}

/// What `train` trains.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Task {
    /// Sequence → expression (yeast, Drosophila, human).
    Expression,
    /// ATAC-seq profile and counts (ChromBPNet's task).
    Atac,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
#[command(after_help = "Examples:
  prixfixe predict --model-dir runs/cnn --input test.txt --output pred.tsv
  prixfixe predict --model-dir runs/fold0 --model-dir runs/fold1 --input seqs.fa --output pred.tsv")]
struct PredictArgs {
    /// `atac`: regions of a genome through a `train --task atac` model (its frozen bias model
    /// included), with tracks.
    #[command(subcommand)]
    task: Option<PredictTask>,
    #[command(flatten)]
    model: interpret::ModelArgs,
    /// Sequences to predict: DREAM train/test file, FASTA or table (`predict`'s and
    /// `design`'s outputs too). A table's other columns are written back beside the
    /// predictions.
    #[arg(long, required = true)]
    input: Option<PathBuf>,
    #[command(flatten)]
    read: input::InputArgs,
    /// Where to write `sequence<TAB>prediction` (TSV; rows in input order).
    #[arg(long, required = true)]
    output: Option<PathBuf>,
    /// Compare the predictions with measured values: print Pearson r and Spearman ρ and draw
    /// predicted against measured beside the output (`pred.scatter.svg`/`.png`; a density
    /// where the points are many). The measured column is `measured` (a DREAM file's values)
    /// unless named; for several tasks name one column per task, comma-separated.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "COLUMNS")]
    measured: Option<String>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
}

#[derive(clap::Subcommand)]
enum PredictTask {
    /// Regions of a genome (narrowPeak) through an ATAC profile model and the bias model it
    /// was trained with: predictions.tsv (log counts; with --signal the measured ones and the
    /// profile's JSD) and predicted.bw (the predicted insertions over each central 1,000 nt).
    Atac(atac::PredictAtacArgs),
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe demo
  prixfixe demo --out my-demo")]
struct DemoArgs {
    /// Working directory for the demo's data, run, predictions and score.
    #[arg(long, default_value = "prixfixe-demo")]
    out: PathBuf,
    /// Epochs of training.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Simulated training rows.
    #[arg(long, default_value_t = 10_000)]
    train_rows: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe score --test test.txt --subsets test_subsets --predictions pred.tsv
  prixfixe score --test test.txt --subsets test_subsets --predictions a.tsv --predictions b.tsv --bootstrap 1000 --plot ranks.svg
  prixfixe score --test test.txt --subsets test_subsets --predictions pred.tsv --plots figures")]
struct ScoreArgs {
    /// The DREAM test file (sequence<TAB>measured; row number = id).
    #[arg(long)]
    test: PathBuf,
    /// Directory of subset CSVs (high_exp_seqs.csv, all_SNVs_seqs.csv, …).
    #[arg(long)]
    subsets: Option<PathBuf>,
    /// Prediction files: `prixfixe predict` output, one value per line, or {"id": value} JSON.
    #[arg(long, num_args = 1.., required = true)]
    predictions: Vec<PathBuf>,
    /// Test-row ids to leave out (one per line), as the reference does for the public leaderboard.
    #[arg(long)]
    exclude: Option<PathBuf>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Bootstrap model ranks with this many replicates (the paper used 10000).
    #[arg(long)]
    bootstrap: Option<usize>,
    /// Fraction of the test rows per bootstrap replicate.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Plot the bootstrap rank histograms: this SVG file and a PNG beside it.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write figures into this directory (SVG and PNG): the subsets' Pearson r² and
    /// Spearman ρ as bars per model, and per prediction file predicted against measured
    /// over every test row (a density where the points are many), with r and ρ.
    #[arg(long)]
    plots: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe bench --model dream-cnn --train-batches 32,64
  prixfixe bench --model dream-attn --train-batches 1024 --reps 1 --json bench.json
  prixfixe bench --task atac --model chrombpnet")]
struct BenchArgs {
    /// A named model: dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann; with
    /// `--task atac`: chrombpnet, dream-cnn, dream-rnn, dream-attn.
    #[arg(long, default_value = "dream-cnn", conflicts_with = "config")]
    model: String,
    /// The task the model is built for: `atac` measures the profile model at 2,114 nt with
    /// ChromBPNet's frozen bias model in every step, as `train --task atac` runs it.
    #[arg(long, value_enum, default_value_t = Task::Expression)]
    task: Task,
    /// Data kind of --model.
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "human", "drosophila"])]
    data: String,
    /// A model config (TOML) instead of a named model.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Batch sizes of the timed training step.
    #[arg(long, value_delimiter = ',', default_value = "32,64")]
    train_batches: Vec<usize>,
    /// Timed repetitions per training batch size (after one warm-up).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Largest inference batch tried (doubling from 32).
    #[arg(long, default_value_t = 1024)]
    max_infer_batch: usize,
    /// Device: cpu, cuda[:N], wgpu[:N], vulkan[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe inspect --model dream-rnn
  prixfixe inspect --model deepstarr --data drosophila --show-config
  prixfixe inspect --weights model_best.pth --model dream-cnn")]
struct InspectArgs {
    /// A named model: dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann.
    #[arg(long, conflicts_with = "config")]
    model: Option<String>,
    /// The data set the named model is for (sets its input and head).
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "human", "drosophila"])]
    data: String,
    /// A model config in TOML (`preset = …` or `[input]`, `[first]`, `[core]`, `[final]`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A weight file (.pth, .pt or .safetensors) to load into the model, by the reference's
    /// parameter names.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print the resolved config as TOML too.
    #[arg(long)]
    show_config: bool,
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe inspect-data train.txt
  prixfixe inspect-data fly.tsv --json
  prixfixe inspect-data data.csv --seq-col dna --target-col y --id-col name
  prixfixe inspect-data seqs.fa --model dream-cnn --data human")]
struct InspectDataArgs {
    /// The file to check (plain or gzip-compressed).
    file: PathBuf,
    #[command(flatten)]
    read: input::InputArgs,
    /// Tables: a label column (repeat for several tasks).
    #[arg(long = "target-col")]
    target_cols: Vec<String>,
    /// Tables: a fold column.
    #[arg(long)]
    fold_col: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Also check every sequence against this named model's input (length, padding).
    #[arg(long)]
    model: Option<String>,
    /// Data kind of --model.
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "human", "drosophila"])]
    data: String,
}

fn inspect_data(a: InspectDataArgs) -> Result<(), String> {
    let format = a.read.format_with(&a.file, &a.target_cols, &a.fold_col)?;
    let opts = prixfixe::data::ReadOptions {
        padding: model_config(&a.model, &a.data, &None)?.map(|c| c.input.padding),
    };
    if a.json {
        let format = match format {
            Some(f) => f,
            None => prixfixe::data::formats::detect::detect_format(&a.file)
                .map_err(|e| e.to_string())?,
        };
        if format == Format::Subset {
            return Err("--json is for sequence files, not subset files".into());
        }
        let ds = prixfixe::data::formats::detect::read_any(&a.file, &format, &opts)
            .map_err(|e| e.to_string())?;
        let summary = prixfixe::data::formats::detect::summarize(&ds, &format);
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
        );
    } else {
        print!(
            "{}",
            inspect_file(&a.file, format, &opts).map_err(|e| e.to_string())?
        );
    }
    Ok(())
}

fn err(e: prixfixe::Error) -> String {
    e.to_string()
}

fn model_config(
    model: &Option<String>,
    data: &str,
    config: &Option<PathBuf>,
) -> Result<Option<prixfixe::NetConfig>, String> {
    use prixfixe::{DataKind, NetConfig};
    Ok(match (model, config) {
        (Some(name), _) => {
            Some(NetConfig::preset(name, DataKind::parse(data).map_err(err)?).map_err(err)?)
        }
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(NetConfig::from_toml(&text).map_err(err)?)
        }
        (None, None) => None,
    })
}

fn read_train_config(path: &std::path::Path) -> Result<prixfixe::train::TrainConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    prixfixe::train::TrainConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn train(a: TrainArgs) -> Result<(), String> {
    use prixfixe::train::{self, TrainConfig, TrainOptions, TrainOverrides};
    if a.task == Task::Atac {
        if a.train.is_some() || a.valid.is_some() || a.data.is_some() {
            return Err(
                "--task atac reads --genome, --signal, --peaks, --nonpeaks and --folds, not \
                 --train/--valid/--data"
                    .into(),
            );
        }
        return atac::train(
            &a.atac,
            atac::Common {
                config: &a.config,
                model: &a.model,
                epochs: a.epochs,
                batch_size: a.batch_size,
                max_lr: a.max_lr,
                batch_per_epoch: a.batch_per_epoch,
                patience: a.patience,
                seed: a.seed,
                out: &a.out,
                resume: a.resume,
                force: a.force,
            },
        );
    }
    if a.atac.genome.is_some() || a.atac.peaks.is_some() || a.atac.signal.is_some() {
        return Err("--genome/--peaks/--signal belong to --task atac".into());
    }
    if a.config.is_some() && (a.model.is_some() || a.data.is_some()) {
        return Err(
            "--config names the model in its [model] table; --model/--data would replace it. \
             Drop --model/--data, or change the config"
                .into(),
        );
    }
    // The model --model/--data name (dream-cnn on yeast by default).
    let named_model = || -> Result<prixfixe::NetConfig, String> {
        let name = a.model.clone().unwrap_or("dream-cnn".into());
        Ok(
            model_config(&Some(name), a.data.as_deref().unwrap_or("yeast"), &None)?
                .expect("a named model"),
        )
    };
    let mut config = match (&a.config, a.resume) {
        (Some(path), _) => read_train_config(path)?,
        (None, true) => {
            let path = a.out.join("config.toml");
            if !path.exists() {
                return Err(format!(
                    "{}: nothing to resume (no config.toml there); drop --resume to start a run",
                    a.out.display()
                ));
            }
            read_train_config(&path)?
        }
        (None, false) => {
            let train = a
                .train
                .clone()
                .ok_or("give --train FILE (or --config FILE)")?;
            let kind =
                prixfixe::DataKind::parse(a.data.as_deref().unwrap_or("yeast")).map_err(err)?;
            TrainConfig::for_data(named_model()?, kind, train)
        }
    };
    if a.resume && a.config.is_none() && (a.model.is_some() || a.data.is_some()) {
        // The same command again with --resume: its --model/--data must name the stored model.
        config.model = named_model()?;
    }
    config.apply(&TrainOverrides {
        train: a.train,
        valid: a.valid,
        valid_fraction: a.valid_fraction,
        epochs: a.epochs,
        batch_size: a.batch_size,
        max_lr: a.max_lr,
        batch_per_epoch: a.batch_per_epoch,
        patience: a.patience,
        seed: a.seed,
        device: a.device,
    });
    let opts = TrainOptions {
        resume: a.resume,
        force: a.force,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
        stop_after: None,
        stop: stop_on_usr1(),
    };
    let mut observer = progress::TrainProgress::new();
    let summary = match train::train_with(&config, &a.out, &opts, &mut observer) {
        Err(e @ prixfixe::Error::Stopped { .. }) => exit_for_requeue(&e),
        other => other.map_err(err)?,
    };
    if let Some(best) = summary.best_epoch {
        let r = &summary.history[best - 1];
        println!(
            "best epoch {best}: validation Pearson {}, Spearman {}, MSE {:.4}; weights in {}",
            r.val_pearson
                .map_or("undefined".into(), |v| format!("{v:.4}")),
            r.val_spearman
                .map_or("undefined".into(), |v| format!("{v:.4}")),
            r.val_mse,
            a.out.join("best.safetensors").display()
        );
    }
    Ok(())
}

fn predict(a: PredictArgs) -> Result<(), String> {
    if let Some(PredictTask::Atac(b)) = a.task {
        return atac::predict(b);
    }
    let (Some(input), Some(output)) = (a.input, a.output) else {
        return Err("predict needs --input and --output".into());
    };
    // One model, or several averaged (repeated --model-dir, a cross-validation directory).
    let model = a.model.load_ensemble()?;
    let format = a.read.format(&input)?;
    let bar = progress::spinner("predict", "sequences");
    let summary =
        prixfixe::predict::predict_file(&model, &input, format, &output, a.batch_size, |n| {
            bar.inc(n as u64)
        })
        .map_err(err)?;
    bar.finish_and_clear();
    if summary.adapters_added > 0 {
        tracing::warn!(
            "{} sequence(s) lacked the yeast read adapters; the plasmid's were added \
             (SPEC §2.2), so no base of theirs was dropped",
            summary.adapters_added
        );
    }
    if summary.cropped > 0 {
        tracing::warn!(
            "{} sequence(s) were longer than the {}-nt model input and were cropped (--crop)",
            summary.cropped,
            prixfixe::predict::Predictor::encoder(&model).length()
        );
    }
    tracing::info!(
        "{} predictions written to {}",
        summary.rows,
        output.display()
    );
    if let Some(names) = &a.measured {
        compare_measured(
            &output,
            names,
            &prixfixe::predict::Predictor::columns(&model),
        )?;
    }
    Ok(())
}

/// `predict --measured`: r and ρ of each prediction column against its measured column, read
/// back from the written output, and a scatter per task beside it.
fn compare_measured(output: &Path, names: &str, columns: &[String]) -> Result<(), String> {
    let measured: Vec<String> = match names {
        "" if columns.len() == 1 => vec!["measured".into()],
        "" => (1..=columns.len())
            .map(|i| format!("measured_{i}"))
            .collect(),
        list => list.split(',').map(|c| c.trim().to_string()).collect(),
    };
    if measured.len() != columns.len() {
        return Err(format!(
            "--measured names {} column(s) for {} prediction column(s) ({}); the predictions \
             are written to {}",
            measured.len(),
            columns.len(),
            columns.join(", "),
            output.display()
        ));
    }
    let stem = output.with_extension("");
    for (m, p) in measured.iter().zip(columns) {
        let (x, y) = prixfixe::eval::predictions::read_column_pair(output, m, p).map_err(|e| {
            format!("{e} (the predictions are written; --measured names the column)")
        })?;
        let fmt = |v: Option<f64>| v.map_or("undefined".into(), |v| format!("{v:.4}"));
        println!(
            "{p} against {m}: n {}  Pearson r {}  Spearman ρ {}",
            x.len(),
            fmt(prixfixe::eval::pearson(&x, &y)),
            fmt(prixfixe::eval::spearman(&x, &y))
        );
        let mut figure = stem.as_os_str().to_owned();
        figure.push(".scatter");
        figure.push(p.strip_prefix("prediction").unwrap_or(p));
        prixfixe::eval::plot::Scatter {
            title: format!("{p} against {m}"),
            measured: &x,
            predicted: &y,
        }
        .write(Path::new(&figure))
        .map_err(err)?;
        tracing::info!("figure: {}.svg, .png", Path::new(&figure).display());
    }
    Ok(())
}

fn score(a: ScoreArgs) -> Result<(), String> {
    use prixfixe::eval::report::{
        BootstrapSpec, load_test_set, plot_ranks, score_files, subset_files,
    };
    if !(a.fraction > 0.0 && a.fraction <= 1.0) {
        return Err(format!("--fraction {} must be in (0, 1]", a.fraction));
    }
    let subsets = match &a.subsets {
        Some(dir) => subset_files(dir).map_err(err)?,
        None => Vec::new(),
    };
    let test = load_test_set(&a.test, &subsets, a.exclude.as_deref()).map_err(err)?;
    let boot = a.bootstrap.map(|replicates| BootstrapSpec {
        replicates,
        fraction: a.fraction,
        seed: a.seed,
    });
    let report = score_files(&test, &a.predictions, boot).map_err(err)?;
    print!("{}", report.table());
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        prixfixe::output::write_atomic(path, text.as_bytes()).map_err(err)?;
    }
    if let (Some(path), Some(b)) = (&a.plot, &report.bootstrap) {
        plot_ranks(b, path).map_err(err)?;
    } else if a.plot.is_some() {
        return Err("--plot draws bootstrap ranks: add --bootstrap N".into());
    }
    if let Some(dir) = &a.plots {
        let written =
            prixfixe::eval::plot::write_score_figures(&report, &test.measured, dir).map_err(err)?;
        tracing::info!(
            "{} figures (SVG and PNG) written to {}",
            written.len(),
            dir.display()
        );
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<(), String> {
    use prixfixe::bench::{BenchSpec, bench, bench_with_bias};
    let bias = (a.task == Task::Atac).then(|| prixfixe::atac::model::bias_preset(1.0));
    let config = if a.task == Task::Atac {
        match &a.config {
            Some(path) => atac::read_model(path)?,
            None => prixfixe::atac::model::preset(&a.model, 1.0).map_err(err)?,
        }
    } else {
        model_config(
            &if a.config.is_some() {
                None
            } else {
                Some(a.model.clone())
            },
            &a.data,
            &a.config,
        )?
        .expect("a model or a config")
    };
    let device = prixfixe::device::parse_device(&a.device).map_err(err)?;
    let spec = BenchSpec {
        train_batches: a.train_batches.clone(),
        reps: a.reps.max(1),
        max_infer_batch: a.max_infer_batch,
        ..Default::default()
    };
    println!(
        "benchmark on {}: {} threads",
        a.device,
        rayon::current_num_threads()
    );
    let say = |line: &str| println!("{line}");
    let report = match &bias {
        Some(b) => bench_with_bias(&config, b, &device, &spec, say),
        None => bench(&config, &device, &spec, say),
    }
    .map_err(err)?;
    println!(
        "parameters {}; best inference {:.1} seq/s; peak memory {}",
        report.params,
        report.best_seqs_per_sec,
        report
            .peak_rss_mib
            .map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        prixfixe::output::write_atomic(path, text.as_bytes()).map_err(err)?;
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<(), String> {
    use prixfixe::net::ModelSummary;
    use prixfixe::{DataKind, NetConfig};
    let config = match (&a.model, &a.config) {
        (Some(name), _) => {
            NetConfig::preset(name, DataKind::parse(&a.data).map_err(|e| e.to_string())?)
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| prixfixe::Error::Other(format!("{}: {e}", path.display())))
            .and_then(|text| NetConfig::from_toml(&text)),
        (None, None) => return Err("name a model with --model NAME or --config FILE".into()),
    }
    .map_err(|e| e.to_string())?;
    let shapes = config.check().map_err(|e| e.to_string())?;
    let device = burn::tensor::Device::flex();
    let mut net = config.init(&device).map_err(|e| e.to_string())?;
    let counts = net.param_counts();
    print!(
        "{}",
        ModelSummary {
            config: &config,
            shapes,
            counts
        }
    );
    if let Some(path) = &a.weights {
        let map = prixfixe::weights::WeightMap::read(path).map_err(|e| e.to_string())?;
        map.apply_to(&mut net, "", &device)
            .map_err(|e| e.to_string())?;
        println!(
            "weights {}: all {} tensors loaded",
            path.display(),
            map.tensors.len()
        );
    }
    if a.show_config {
        println!("\n{}", config.to_toml());
    }
    Ok(())
}

fn demo(a: DemoArgs) -> Result<(), String> {
    use prixfixe::demo::{DemoOptions, run_demo};
    let started = std::time::Instant::now();
    println!(
        "prixfixe demo: simulate → train → predict → score, in {}",
        a.out.display()
    );
    let opts = DemoOptions {
        out: a.out.clone(),
        epochs: a.epochs,
        train_rows: a.train_rows,
        seed: a.seed,
    };
    let mut observer = progress::TrainProgress::new();
    let report = run_demo(&opts, |line| println!("{line}"), &mut observer).map_err(err)?;
    print!("{}", report.table());
    println!(
        "done in {:.0} s; run directory {}, predictions {}",
        started.elapsed().as_secs_f64(),
        a.out.join("run").display(),
        a.out.join("predictions.tsv").display()
    );
    Ok(())
}

/// Exit code of a run stopped by SIGUSR1 at a batch boundary: "try again later" (EX_TEMPFAIL);
/// the Slurm script of `prixfixe grid slurm` requeues the task on it.
pub const EXIT_REQUEUE: u8 = 75;

/// A flag SIGUSR1 sets (Slurm's `--signal=B:USR1@…` warning before a time limit).
fn stop_on_usr1() -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone()).ok()?;
    Some(flag)
}

/// Report a stopped run and exit with [`EXIT_REQUEUE`].
fn exit_for_requeue(e: &prixfixe::Error) -> ! {
    tracing::error!("{e}");
    std::process::exit(EXIT_REQUEUE as i32)
}

/// Parse the command line and run it; errors print as `error: …` with exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init(cli.verbose, cli.quiet);
    if let Some(n) = cli.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
    {
        tracing::error!("cannot start {n} threads: {e}");
        return ExitCode::FAILURE;
    }
    tracing::debug!(
        "prixfixe {}: {} worker thread(s)",
        env!("CARGO_PKG_VERSION"),
        rayon::current_num_threads()
    );
    let result = match cli.command {
        Command::Demo(a) => demo(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Train(a) => train(a),
        Command::Predict(a) => predict(a),
        Command::Score(a) => score(a),
        Command::Ism(a) => interpret::run_ism(a),
        Command::Attribute(a) => interpret::run_attribute(a),
        Command::Variants(a) => interpret::run_variants(a),
        Command::Design(a) => interpret::run_design(a),
        Command::Grid(a) => grid::run(a),
        Command::Cv(a) => cv::run(a),
        Command::Benchmark(a) => cv::benchmark(a),
        Command::Inspect(a) => inspect(a),
        Command::Bench(a) => bench(a),
        Command::InspectData(a) => inspect_data(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
