//! `prixfixe ism`, `prixfixe variants`, `prixfixe design`, and the model flags they share with
//! `predict`.

use std::path::{Path, PathBuf};

use super::progress::bar;
use clap::{Args, ValueEnum};

use prixfixe::data::Trim;
use prixfixe::interpret::{ism_files, variants};
use prixfixe::predict::{Ensemble, Model, Predictor};

use super::input::InputArgs;
use super::{err, model_config};

/// Which model(s) to use.
#[derive(Args)]
pub struct ModelArgs {
    /// A run directory written by `prixfixe train`; repeat it to average several models. A
    /// cross-validation (or grid) directory stands for all its finished runs, averaged.
    #[arg(long = "model-dir", conflicts_with = "weights")]
    pub model_dir: Vec<PathBuf>,
    /// Which checkpoint of each run: best or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    pub checkpoint: String,
    /// Weights from elsewhere (.pth, .pt, .safetensors), with --model or --config.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The named model of --weights: dream-cnn, dream-rnn, dream-attn, legnet, deepstarr, mprann.
    #[arg(long)]
    pub model: Option<String>,
    /// Data kind of --model.
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "human", "drosophila"])]
    pub data: String,
    /// A model config (TOML) for --weights.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Device: cpu, cuda[:N], wgpu[:N], vulkan[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Cut sequences longer than the model input instead of refusing them: keep the 3' end
    /// (5p: drop bases from the 5' end, as the reference's yeast padding does), the 5' end
    /// (3p) or the centre (center). Cropped sequences are counted and reported.
    #[arg(long, value_enum)]
    pub crop: Option<CropArg>,
}

/// Where an over-long sequence is cut.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CropArg {
    /// Drop bases from the 5' end.
    #[value(name = "5p")]
    FivePrime,
    /// Drop bases from the 3' end.
    #[value(name = "3p")]
    ThreePrime,
    /// Drop bases from both ends.
    Center,
}

impl CropArg {
    fn trim(self) -> Trim {
        match self {
            CropArg::FivePrime => Trim::FivePrime,
            CropArg::ThreePrime => Trim::ThreePrime,
            CropArg::Center => Trim::Center,
        }
    }
}

impl ModelArgs {
    /// Load every model named; an ATAC profile model is refused (its predictions need the
    /// bias model it was trained with: `predict atac`).
    pub fn load(&self) -> Result<Vec<Model>, String> {
        self.load_models(false)
    }

    /// Load every model named, for `ism` and `attribute`: an ATAC profile model is taken on
    /// its own, explaining its log counts without the bias model — the bias-free accessibility
    /// model, which is what ChromBPNet's contribution scores and TF-MoDISco runs explain.
    pub fn load_for_interpretation(&self) -> Result<Vec<Model>, String> {
        self.load_models(true)
    }

    fn load_models(&self, profile_alone: bool) -> Result<Vec<Model>, String> {
        let models = self.load_uncropped()?;
        let profile = models
            .iter()
            .any(|m| prixfixe::atac::model::counts_weight(&m.config).is_some());
        if profile && profile_alone {
            tracing::info!(
                "an ATAC profile model: explaining its predicted log counts without the bias \
                 model (the bias-free accessibility model, as ChromBPNet's contribution scores do)"
            );
        } else if profile {
            return Err(prixfixe::atac::model::PREDICTION_NEEDS_BIAS.into());
        }
        for m in &models {
            tracing::debug!(
                "model: {} × {} input, columns {}",
                m.encoder().channels().count(),
                m.encoder().length(),
                m.columns().join(", ")
            );
        }
        match self.crop {
            None => Ok(models),
            Some(c) => models
                .into_iter()
                .map(|m| m.with_crop(c.trim()).map_err(err))
                .collect(),
        }
    }

    fn load_uncropped(&self) -> Result<Vec<Model>, String> {
        let device = prixfixe::device::parse_device(&self.device).map_err(err)?;
        if !self.model_dir.is_empty() {
            // A grid or cross-validation directory stands for its finished runs.
            let mut dirs = Vec::new();
            for dir in &self.model_dir {
                if dir.join(prixfixe::grid::PLAN_FILE).exists() {
                    dirs.extend(prixfixe::grid::finished_run_dirs(dir).map_err(err)?);
                } else {
                    dirs.push(dir.clone());
                }
            }
            return dirs
                .iter()
                .map(|dir| Model::from_run_dir(dir, &self.checkpoint, &device).map_err(err))
                .collect();
        }
        let Some(w) = &self.weights else {
            return Err("give --model-dir RUN, or --weights FILE with --model NAME".into());
        };
        let config = model_config(&self.model, &self.data, &self.config)?
            .ok_or("--weights needs --model NAME or --config FILE to say which model they are")?;
        Ok(vec![Model::from_weights(config, w, &device).map_err(err)?])
    }

    /// Load one model (or an averaged ensemble when several are named).
    pub fn load_ensemble(&self) -> Result<Ensemble, String> {
        Ensemble::new(self.load()?).map_err(err)
    }

    /// [`ModelArgs::load_ensemble`] for `ism` (see [`ModelArgs::load_for_interpretation`]).
    pub fn load_ensemble_for_interpretation(&self) -> Result<Ensemble, String> {
        Ensemble::new(self.load_for_interpretation()?).map_err(err)
    }
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe ism --model-dir runs/cnn --input seqs.fa --out ism --npy
  prixfixe ism --model-dir runs/fold0 --model-dir runs/fold1 --input pred.tsv --plots 0")]
pub struct IsmArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Sequences: DREAM file, FASTA or table (`predict`'s and `design`'s outputs too).
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    read: InputArgs,
    /// Output directory: ism.tsv, ism.npy (with --npy), plots/.
    #[arg(long, default_value = "ism")]
    out: PathBuf,
    /// Draw a figure (logo over heatmap, SVG) for the first N sequences.
    #[arg(long, default_value_t = 10)]
    plots: usize,
    /// Also write the effects as a NumPy array `[sequences, length, 4 (A,C,G,T)]` (equal
    /// lengths only; a task axis is added for multi-task models).
    #[arg(long)]
    npy: bool,
    /// Sequences (references and mutants) per model call.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
}

pub fn run_ism(a: IsmArgs) -> Result<(), String> {
    let model = a.model.load_ensemble_for_interpretation()?;
    let ds = a.read.read(&a.input, model.encoder().padding())?;
    let progress = bar(ds.len(), "ism");
    let out = ism_files::IsmOutput {
        dir: a.out.clone(),
        plots: a.plots,
        npy: a.npy,
        batch: a.batch_size,
    };
    ism_files::write_files(&model, &ds, &a.input, &out, &mut |done| {
        progress.set_position(done as u64)
    })
    .map_err(err)?;
    report_written(&progress, "ISM", ds.len(), &a.out, a.plots);
    Ok(())
}

/// The prediction column `--task` names, by name or 1-based number.
fn task_index(columns: &[String], task: &str) -> Result<usize, String> {
    if let Some(i) = columns.iter().position(|c| c == task) {
        return Ok(i);
    }
    match task.parse::<usize>() {
        Ok(n) if (1..=columns.len()).contains(&n) => Ok(n - 1),
        _ => Err(format!(
            "--task {task}: the model's prediction columns are {} (give a name or a number from \
             1 to {})",
            columns.join(", "),
            columns.len()
        )),
    }
}

/// Close the bar and say what a per-sequence command wrote.
fn report_written(
    progress: &indicatif::ProgressBar,
    what: &str,
    n: usize,
    out: &Path,
    plots: usize,
) {
    progress.finish_and_clear();
    tracing::info!(
        "{what} of {n} sequences written to {} ({} figures)",
        out.display(),
        plots.min(n)
    );
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe attribute --model-dir run --input seqs.fa --method shap --out attr
  modisco motifs -s attr/onehot.npz -a attr/attributions.npz -n 2000 -o modisco.h5
  prixfixe attribute --model-dir run --input seqs.txt --method integrated-gradients --steps 100")]
pub struct AttributeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Sequences: DREAM file, FASTA or table (`predict`'s and `design`'s outputs too).
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    read: InputArgs,
    /// Output directory: onehot.npz, attributions.npz (each `arr_0`, shape (N, 4, L), A, C, G,
    /// T, over the model's whole input window), attributions.tsv, plots/.
    #[arg(long, default_value = "attributions")]
    out: PathBuf,
    /// The method.
    #[arg(long, value_enum, default_value = "shap")]
    method: prixfixe::interpret::Method,
    /// The prediction column explained, by name or 1-based number (default: the first).
    #[arg(long)]
    task: Option<String>,
    /// Points on each path (integrated gradients: 50; SHAP: 10 per reference).
    #[arg(long)]
    steps: Option<usize>,
    /// Dinucleotide-shuffled references per sequence (SHAP).
    #[arg(long, default_value_t = 20)]
    shuffles: usize,
    /// Seed of the shuffles.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Draw a figure (logo over heat map, SVG and PNG) for the first N sequences.
    #[arg(long, default_value_t = 10)]
    plots: usize,
    /// Input rows per gradient pass.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
}

pub fn run_attribute(a: AttributeArgs) -> Result<(), String> {
    use prixfixe::interpret::attribute_files::{AttributeOutput, write_files};
    let models = a.model.load_for_interpretation()?;
    let refs: Vec<&Model> = models.iter().collect();
    let ds = a.read.read(&a.input, models[0].encoder().padding())?;
    let mut options = prixfixe::interpret::AttributeOptions::new(a.method);
    options.shuffles = a.shuffles;
    options.seed = a.seed;
    if let Some(s) = a.steps {
        options.steps = s;
    }
    if let Some(t) = &a.task {
        options.task = task_index(&models[0].columns(), t)?;
    }
    tracing::info!(
        "{} of {} sequences: {} gradient passes each, {} in all ({} model(s))",
        a.method.name(),
        ds.len(),
        options.passes(),
        options.passes() * ds.len(),
        models.len()
    );
    let progress = bar(ds.len(), "attribute");
    let out = AttributeOutput {
        dir: a.out.clone(),
        options,
        plots: a.plots,
        batch: a.batch_size,
    };
    write_files(&refs, &ds, &a.input, &out, &mut |done| {
        progress.set_position(done as u64)
    })
    .map_err(err)?;
    report_written(&progress, "attributions", ds.len(), &a.out, a.plots);
    Ok(())
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe variants --model-dir runs/cnn --pairs pairs.tsv --output effects.tsv
  prixfixe variants --model-dir runs/cnn --vcf calls.vcf.gz --fasta genome.fa --window 110")]
pub struct VariantsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Reference/alternative pairs: a table with `ref` and `alt` columns (or `ref_sequence`,
    /// `alt_sequence` as in the DREAM pair subsets) and an optional `id`.
    #[arg(long, conflicts_with = "vcf")]
    pairs: Option<PathBuf>,
    /// A VCF of variants (with --fasta): windows around each record are cut from the genome.
    #[arg(long, requires = "fasta")]
    vcf: Option<PathBuf>,
    /// The genome FASTA for --vcf (REF alleles are checked against it).
    #[arg(long)]
    fasta: Option<PathBuf>,
    /// Window length around each VCF record (default: the model's input length).
    #[arg(long)]
    window: Option<usize>,
    /// Leave out VCF records whose REF differs from the genome (listed), instead of stopping.
    #[arg(long)]
    skip_mismatches: bool,
    /// Output TSV.
    #[arg(long, default_value = "variants.tsv")]
    output: PathBuf,
    /// Sequences per model call.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
}

pub fn run_variants(a: VariantsArgs) -> Result<(), String> {
    let inputs: Vec<&Path> = [&a.pairs, &a.vcf, &a.fasta]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    prixfixe::output::refuse_overwriting_input(&a.output, &inputs).map_err(err)?;
    let models = a.model.load()?;
    let ensemble = Ensemble::new(models).map_err(err)?;
    let pairs = match (&a.pairs, &a.vcf, &a.fasta) {
        (Some(p), _, _) => variants::read_pairs(p).map_err(err)?,
        (None, Some(vcf), Some(fa)) => {
            let window = a.window.unwrap_or(ensemble.encoder().length());
            let (pairs, skips) =
                variants::read_vcf(vcf, fa, window, a.skip_mismatches).map_err(err)?;
            for s in &skips {
                tracing::warn!(
                    "skipped {}:{}: {} ({})",
                    vcf.display(),
                    s.line,
                    s.site,
                    s.reason
                );
            }
            if !skips.is_empty() {
                tracing::warn!("{} allele(s) skipped, listed above", skips.len());
            }
            if pairs.is_empty() {
                return Err(format!("{}: no variant left to score", vcf.display()));
            }
            pairs
        }
        _ => return Err("give --pairs FILE, or --vcf FILE with --fasta GENOME".into()),
    };
    let preds = variants::run(&ensemble, &pairs, a.batch_size).map_err(err)?;
    let members = ensemble.models();
    let table = variants::effects_table(&pairs, &preds, &ensemble.columns());
    prixfixe::output::write_atomic(&a.output, table.as_bytes()).map_err(err)?;
    tracing::info!(
        "{} variant effects ({} model{}) written to {}",
        pairs.len(),
        members.len(),
        if members.len() > 1 { "s averaged" } else { "" },
        a.output.display()
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Objective {
    /// Highest prediction (mean over the models).
    Max,
    /// Lowest prediction.
    Min,
    /// Largest |first model − second model|.
    Disagree,
}

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe design --model-dir runs/cnn --objective max --population 10000 --generations 5
  prixfixe design --model-dir runs/a --model-dir runs/b --objective disagree --n 50")]
pub struct DesignArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to optimise.
    #[arg(long, value_enum, default_value = "max")]
    objective: Objective,
    /// Individuals per generation (paper: 100,000).
    #[arg(long, default_value_t = 100_000)]
    population: usize,
    /// Generations (paper: 10).
    #[arg(long, default_value_t = 10)]
    generations: usize,
    /// Tournament size (paper: 3).
    #[arg(long, default_value_t = 3)]
    tournament: usize,
    /// Two-point crossover probability per pair (paper: 0.1).
    #[arg(long, default_value_t = 0.1)]
    crossover: f64,
    /// Mutation probability per individual (paper: 0.1).
    #[arg(long, default_value_t = 0.1)]
    mutation: f64,
    /// Substitution probability per base of a mutated individual.
    #[arg(long, default_value_t = 0.02)]
    per_base: f64,
    /// Designed sequences to write (the best distinct ones).
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Start from these sequences (any readable format, a `designs.tsv` too) instead of
    /// random ones.
    #[arg(long)]
    init: Option<PathBuf>,
    #[command(flatten)]
    read: InputArgs,
    /// The prediction column optimised, by name or 1-based number (default: the first).
    #[arg(long)]
    task: Option<String>,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output TSV.
    #[arg(long, default_value = "designs.tsv")]
    output: PathBuf,
    /// Sequences per model call.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
}

/// The FASTA file written beside a design table: its name with `.fa` (`.fasta` when the
/// table itself ends in `.fa`).
fn fasta_beside(table: &Path) -> PathBuf {
    let fa = table.with_extension("fa");
    if fa == table {
        table.with_extension("fasta")
    } else {
        fa
    }
}

pub fn run_design(a: DesignArgs) -> Result<(), String> {
    use prixfixe::design::{self, DesignSpec, GaConfig};
    if let Some(init) = &a.init {
        prixfixe::output::refuse_overwriting_input(&a.output, &[init]).map_err(err)?;
        prixfixe::output::refuse_overwriting_input(&fasta_beside(&a.output), &[init])
            .map_err(err)?;
    }
    let ensemble = Ensemble::new(a.model.load()?).map_err(err)?;
    let init = match &a.init {
        Some(p) => {
            let ds = a.read.read(p, ensemble.encoder().padding())?;
            Some((0..ds.len()).map(|i| ds.seqs.get(i).to_vec()).collect())
        }
        None => None,
    };
    let spec = DesignSpec {
        ga: GaConfig {
            population: a.population,
            generations: a.generations,
            tournament: a.tournament,
            crossover: a.crossover,
            mutation: a.mutation,
            per_base: a.per_base,
            batch: a.batch_size,
            seed: 0,
        },
        objective: match a.objective {
            Objective::Max => design::Objective::Max,
            Objective::Min => design::Objective::Min,
            Objective::Disagree => design::Objective::Disagree,
        },
        task: match &a.task {
            Some(t) => task_index(&ensemble.columns(), t)?,
            None => 0,
        },
        n: a.n,
        init,
        seed: a.seed,
    };
    let progress = bar(a.population, "evaluate");
    let quiet = crate::cli::log::quiet();
    let started = std::time::Instant::now();
    let mut estimated = false;
    let result = design::run(
        &ensemble,
        &spec,
        &mut |n| progress.inc(n as u64),
        &mut |g| {
            progress.set_position(0);
            progress.set_length(a.population as u64);
            if !quiet {
                let mut line = format!(
                    "generation {:>3}: best {:.4}, mean {:.4} ({} evaluated)",
                    g.generation, g.best, g.mean, g.evaluated
                );
                // From the first generation's measured rate: an upper bound, as later
                // generations only evaluate the sequences they have not seen.
                let left = a.generations.saturating_sub(g.generation);
                if !estimated && left > 0 && g.evaluated > 0 {
                    estimated = true;
                    let rate = g.evaluated as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let most = (a.population * left) as f64 / rate;
                    line.push_str(&format!(
                        "; {left} more generation(s), at most about {} at {rate:.0} sequences/s",
                        super::progress::duration(most)
                    ));
                }
                // A bar that is not drawn (not a terminal) prints nothing: write to stderr then.
                if progress.is_hidden() {
                    tracing::info!("{line}");
                } else {
                    progress.println(line);
                }
            }
        },
    )
    .map_err(err)?;
    progress.finish_and_clear();
    prixfixe::output::write_atomic(&a.output, design::design_table(&result).as_bytes())
        .map_err(err)?;
    let fasta = fasta_beside(&a.output);
    prixfixe::output::write_atomic(&fasta, design::design_fasta(&result).as_bytes())
        .map_err(err)?;
    tracing::info!(
        "{} designed sequences written to {} and {}",
        result.best.len(),
        a.output.display(),
        fasta.display()
    );
    Ok(())
}
