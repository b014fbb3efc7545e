//! `prixfixe train --task atac` and `prixfixe simulate --kind atac`.

use std::path::{Path, PathBuf};

use clap::Args;

use prixfixe::atac::regions::Sources;
use prixfixe::atac::train::{AtacOverrides, AtacTask, train_atac};

/// The ATAC task's inputs and its bias model.
#[derive(Args, Default)]
pub struct AtacArgs {
    /// ATAC: reference FASTA (its .fai is built beside it when missing).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub genome: Option<PathBuf>,
    /// ATAC: Tn5-insertion counts per base (bigWig).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub signal: Option<PathBuf>,
    /// ATAC: peaks (narrowPeak; window centre = start + summit).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub peaks: Option<PathBuf>,
    /// ATAC: non-peak background regions (narrowPeak).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub nonpeaks: Option<PathBuf>,
    /// ATAC: chromosome folds, JSON {"train": [...], "valid": [...], "test": [...]}.
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub folds: Option<PathBuf>,
    /// ATAC: a trained bias model (prixfixe checkpoint) instead of training one.
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub bias_model: Option<PathBuf>,
    /// ATAC: the bias model as a model TOML ([input], [first], [core], [final]); default
    /// ChromBPNet's (128 filters, 4 dilated layers).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub bias_config: Option<PathBuf>,
    /// ATAC: most epochs of the bias model (default 50).
    #[arg(long, help_heading = "ATAC (--task atac)")]
    pub bias_epochs: Option<usize>,
}

/// The options of `train` that the ATAC task takes as well.
pub struct Common<'a> {
    pub config: &'a Option<PathBuf>,
    pub model: &'a Option<String>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub max_lr: Option<f64>,
    pub batch_per_epoch: Option<usize>,
    pub patience: Option<usize>,
    pub seed: Option<u64>,
    pub out: &'a Path,
    pub resume: bool,
    pub force: bool,
}

/// A model config (TOML); errors name the file.
pub fn read_model(path: &Path) -> Result<prixfixe::NetConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    prixfixe::NetConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Run the ATAC task.
pub fn train(a: &AtacArgs, c: Common) -> Result<(), String> {
    let need = |p: &Option<PathBuf>, flag: &str| -> Result<PathBuf, String> {
        p.clone()
            .ok_or_else(|| format!("--task atac needs --{flag} FILE"))
    };
    let sources = Sources {
        genome: need(&a.genome, "genome")?,
        signal: need(&a.signal, "signal")?,
        peaks: need(&a.peaks, "peaks")?,
        nonpeaks: need(&a.nonpeaks, "nonpeaks")?,
        folds: need(&a.folds, "folds")?,
    };
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let sources = Sources {
        genome: absolute(sources.genome),
        signal: absolute(sources.signal),
        peaks: absolute(sources.peaks),
        nonpeaks: absolute(sources.nonpeaks),
        folds: absolute(sources.folds),
    };
    let name = c.model.clone().unwrap_or("chrombpnet".into());
    let mut task = AtacTask::new(sources, &name).map_err(|e| e.to_string())?;
    if let Some(path) = c.config {
        task.model = read_model(path)?;
        if c.model.is_none() {
            task.name = "model".into();
        }
    }
    if let Some(path) = &a.bias_config {
        task.bias = read_model(path)?;
    }
    task.bias_model = a.bias_model.clone().map(absolute);
    task.apply(&AtacOverrides {
        epochs: c.epochs,
        bias_epochs: a.bias_epochs,
        batch_size: c.batch_size,
        batch_per_epoch: c.batch_per_epoch,
        patience: c.patience,
        seed: c.seed,
        lr: c.max_lr,
    })
    .map_err(|e| e.to_string())?;
    let mut observer = super::progress::TrainProgress::new();
    let stop = super::stop_on_usr1();
    let summary = match train_atac(
        &task,
        c.out,
        c.resume,
        c.force,
        &mut observer,
        stop.as_deref(),
    ) {
        Err(e @ prixfixe::Error::Stopped { .. }) => super::exit_for_requeue(&e),
        other => other.map_err(|e| e.to_string())?,
    };
    let p = &summary.plan;
    println!(
        "{} training peaks, {} non-peaks in the pool ({} per epoch), {} validation regions; \
         counts weight {}; bias shift {:+.4}; left out: {} windows off their chromosome, {} on \
         chromosomes in no fold",
        p.train_peaks,
        p.train_nonpeaks,
        p.nonpeaks_per_epoch.unwrap_or(p.train_nonpeaks),
        p.valid,
        p.counts_weight,
        p.bias_shift.unwrap_or(0.0),
        p.dropped.off_chromosome,
        p.dropped.no_fold
    );
    let fmt = |v: Option<f64>| v.map_or("undefined".into(), |x| format!("{x:.4}"));
    println!(
        "test             regions  counts r  counts ρ  counts MSE  median JSD  median norm. JSD"
    );
    let truth = summary
        .truth
        .iter()
        .flatten()
        .map(|(g, m)| (format!("{g} (truth)"), m));
    for (group, m) in summary
        .test
        .iter()
        .map(|(g, m)| (g.clone(), m))
        .chain(truth)
    {
        println!(
            "{group:<16} {:>7}  {:>8}  {:>8}  {:>10.4}  {:>10.4}  {:>16.4}",
            m.n,
            fmt(m.counts_pearson),
            fmt(m.counts_spearman),
            m.counts_mse,
            m.profile_median_jsd,
            m.profile_median_norm_jsd
        );
    }
    let dir = c.out.join(&task.name);
    println!(
        "model {} (best epoch {}), test predictions {}, tracks {}",
        dir.join("best.safetensors").display(),
        summary.best_epoch.map_or("-".into(), |e| e.to_string()),
        dir.join("test_predictions.tsv").display(),
        dir.join("predicted.bw").display()
    );
    Ok(())
}

/// `simulate --kind atac`.
pub fn simulate(
    out: &Path,
    seed: u64,
    chromosomes: Option<usize>,
    length: Option<u64>,
    peaks: Option<usize>,
) -> Result<(), String> {
    let mut p = prixfixe::atac::sim::AtacSim {
        seed,
        ..Default::default()
    };
    if let Some(c) = chromosomes {
        p.chromosomes = c;
    }
    if let Some(l) = length {
        p.chromosome_length = l;
    }
    if let Some(n) = peaks {
        p.peaks_per_chromosome = n;
        p.nonpeaks_per_chromosome = n;
    }
    let r = prixfixe::atac::sim::simulate(&p, out).map_err(|e| e.to_string())?;
    println!(
        "{} chromosomes × {} nt, {} peaks, {} non-peaks in {} (genome.fa, signal.bw, \
         peaks.narrowPeak, nonpeaks.narrowPeak, folds.json, truth.tsv, simulation.json)",
        p.chromosomes,
        p.chromosome_length,
        r.peaks,
        r.nonpeaks,
        out.display()
    );
    Ok(())
}

/// `benchmark atac`.
#[derive(Args)]
pub struct BenchAtacArgs {
    /// The benchmark directory (fold_<k>/ per fold file, benchmark_atac.csv/.json). Running
    /// the command again continues unfinished runs.
    #[arg(long)]
    out: PathBuf,
    /// Reference FASTA.
    #[arg(long)]
    genome: PathBuf,
    /// Tn5-insertion counts (bigWig).
    #[arg(long)]
    signal: PathBuf,
    /// Peaks (narrowPeak).
    #[arg(long)]
    peaks: PathBuf,
    /// Non-peaks (narrowPeak).
    #[arg(long)]
    nonpeaks: PathBuf,
    /// Fold files (ChromBPNet's JSON), one per fold, in fold order.
    #[arg(long, num_args = 1.., required = true)]
    folds: Vec<PathBuf>,
    /// Models, comma-separated: chrombpnet, dream-cnn, dream-rnn, dream-attn, or model TOML
    /// files (named by their stem). Default chrombpnet,dream-cnn,dream-rnn (the paper's).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// The bias model as a model TOML (default ChromBPNet's); one is trained per fold.
    #[arg(long)]
    bias_config: Option<PathBuf>,
    /// Most epochs per accessibility model (default: the model's recipe).
    #[arg(long)]
    epochs: Option<usize>,
    /// Most epochs of each fold's bias model (default 50).
    #[arg(long)]
    bias_epochs: Option<usize>,
    /// Examples per batch (default 64).
    #[arg(long)]
    batch_size: Option<usize>,
    /// An epoch as at most this many batches (for trials).
    #[arg(long)]
    batch_per_epoch: Option<usize>,
    /// Early-stopping patience (default: the model's recipe).
    #[arg(long)]
    patience: Option<usize>,
    /// Seed (default 1234).
    #[arg(long)]
    seed: Option<u64>,
}

/// Run `benchmark atac`.
pub fn benchmark(a: BenchAtacArgs) -> Result<(), String> {
    use prixfixe::atac::benchmark;
    let absolute = |p: &Path| std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
    let models = if a.models.is_empty() {
        ["chrombpnet", "dream-cnn", "dream-rnn"]
            .map(String::from)
            .to_vec()
    } else {
        a.models.clone()
    };
    let bias = a.bias_config.as_deref().map(read_model).transpose()?;
    let mut tasks = Vec::new();
    for fold in &a.folds {
        let sources = Sources {
            genome: absolute(&a.genome)?,
            signal: absolute(&a.signal)?,
            peaks: absolute(&a.peaks)?,
            nonpeaks: absolute(&a.nonpeaks)?,
            folds: absolute(fold)?,
        };
        let mut row = Vec::new();
        for m in &models {
            let mut task = if m.ends_with(".toml") {
                let path = Path::new(m);
                let mut t =
                    AtacTask::new(sources.clone(), "chrombpnet").map_err(|e| e.to_string())?;
                t.model = read_model(path)?;
                t.name = path
                    .file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy().into_owned());
                t
            } else {
                AtacTask::new(sources.clone(), m).map_err(|e| e.to_string())?
            };
            if let Some(b) = &bias {
                task.bias = b.clone();
            }
            task.apply(&AtacOverrides {
                epochs: a.epochs,
                bias_epochs: a.bias_epochs,
                batch_size: a.batch_size,
                batch_per_epoch: a.batch_per_epoch,
                patience: a.patience,
                seed: a.seed,
                lr: None,
            })
            .map_err(|e| e.to_string())?;
            row.push(task);
        }
        tasks.push(row);
    }
    let mut observer = super::progress::TrainProgress::new();
    let stop = super::stop_on_usr1();
    let rows = match benchmark::run(&tasks, &a.out, &mut observer, stop.as_deref()) {
        Err(e @ prixfixe::Error::Stopped { .. }) => super::exit_for_requeue(&e),
        other => other.map_err(|e| e.to_string())?,
    };
    let manifest = benchmark::Manifest {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        folds: a.folds.clone(),
        models: tasks
            .first()
            .map_or(vec![], |r| r.iter().map(|t| t.name.clone()).collect()),
        runs_completed: tasks.iter().map(Vec::len).sum(),
        rows,
    };
    benchmark::write(&a.out, &manifest).map_err(|e| e.to_string())?;
    print!("{}", benchmark::table_text(&manifest.rows));
    println!(
        "every figure: {} (peaks, non-peaks and all; {} fold(s) × {} model(s))",
        a.out.join("benchmark_atac.csv").display(),
        a.folds.len(),
        manifest.models.len()
    );
    Ok(())
}

/// `predict atac`.
#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe predict atac --model atac_run/chrombpnet --genome hg38.fa --regions peaks.narrowPeak --out preds
  prixfixe predict atac --model atac_run/dream-rnn --genome hg38.fa --regions test.narrowPeak --signal k562.bw --out preds")]
pub struct PredictAtacArgs {
    /// A trained model's directory inside a `train --task atac` output (OUT/chrombpnet,
    /// OUT/dream-rnn, …): its best weights and the adjusted bias model beside them.
    #[arg(long)]
    model: PathBuf,
    /// Reference FASTA (its .fai is built beside it when missing).
    #[arg(long)]
    genome: PathBuf,
    /// Regions to predict (narrowPeak; window centre = start + summit).
    #[arg(long)]
    regions: PathBuf,
    /// A measured Tn5-insertion bigWig: adds the measured log counts and the profile's JSD per
    /// region, and prints counts r and median JSD.
    #[arg(long)]
    signal: Option<PathBuf>,
    /// Output directory: predictions.tsv and predicted.bw.
    #[arg(long)]
    out: PathBuf,
    /// Windows per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

pub fn predict(a: PredictAtacArgs) -> Result<(), String> {
    use prixfixe::atac::predict::{ProfileModel, predict_regions};
    let inputs: Vec<&Path> = [
        Some(a.genome.as_path()),
        Some(a.regions.as_path()),
        a.signal.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for name in ["predictions.tsv", "predicted.bw"] {
        prixfixe::output::refuse_overwriting_input(&a.out.join(name), &inputs)
            .map_err(|e| e.to_string())?;
    }
    let model = ProfileModel::load(&a.model).map_err(|e| e.to_string())?;
    let bar = super::progress::spinner("predict", "regions");
    let summary = predict_regions(
        &model,
        &a.genome,
        &a.regions,
        a.signal.as_deref(),
        &a.out,
        a.batch_size,
        |n| bar.inc(n as u64),
    )
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    if summary.off_chromosome > 0 {
        tracing::warn!(
            "{} region(s) skipped: their 2,114-nt window leaves the chromosome",
            summary.off_chromosome
        );
    }
    println!(
        "{} regions predicted: {} and {}",
        summary.predicted,
        a.out.join("predictions.tsv").display(),
        a.out.join("predicted.bw").display()
    );
    if let Some(m) = &summary.metrics {
        let r = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.4}"));
        println!(
            "against {}: counts r {}, ρ {}, MSE {:.4}; median JSD {:.4}, median normalised JSD {:.4}",
            a.signal
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            r(m.counts_pearson),
            r(m.counts_spearman),
            m.counts_mse,
            m.profile_median_jsd,
            m.profile_median_norm_jsd
        );
    }
    Ok(())
}
