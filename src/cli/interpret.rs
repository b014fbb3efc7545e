//! `prixfixe ism`, `prixfixe variants`, `prixfixe design`, and the model flags they share with
//! `predict`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::progress::bar;
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};

use prixfixe::data::inspect::read_sequences;
use prixfixe::data::{Padding, ReadOptions, SeqDataset, Trim};
use prixfixe::design::{GaConfig, evolve};
use prixfixe::interpret::{ism, plot, variants};
use prixfixe::predict::{Ensemble, Model, Predictor, predict_codes};
use prixfixe::sim::library::LibrarySpec;

use super::{err, model_config};

/// Which model(s) to use.
#[derive(Args)]
pub struct ModelArgs {
    /// A run directory written by `prixfixe train`; repeat it to average several models
    /// (e.g. the folds of a cross-validation).
    #[arg(long = "model-dir", conflicts_with = "weights")]
    pub model_dir: Vec<PathBuf>,
    /// Which checkpoint of each run: best or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    pub checkpoint: String,
    /// Weights from elsewhere (.pth, .pt, .safetensors), with --model or --config.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The named model of --weights: dream-cnn, dream-rnn, dream-attn, legnet.
    #[arg(long)]
    pub model: Option<String>,
    /// Data kind of --model: yeast, human, drosophila.
    #[arg(long, default_value = "yeast")]
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
    /// Load every model named.
    pub fn load(&self) -> Result<Vec<Model>, String> {
        let models = self.load_uncropped()?;
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
            return self
                .model_dir
                .iter()
                .map(|dir| {
                    let path = dir.join(format!("{}.safetensors", self.checkpoint));
                    if !path.exists() {
                        return Err(format!(
                            "{}: not a run directory of prixfixe train (it has no {}.safetensors)",
                            dir.display(),
                            self.checkpoint
                        ));
                    }
                    Model::from_checkpoint(&path, &device).map_err(err)
                })
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
}

pub fn read_input(path: &Path, padding: &Padding) -> Result<Arc<SeqDataset>, String> {
    let opts = ReadOptions {
        padding: Some(padding.clone()),
    };
    Ok(Arc::new(read_sequences(path, &opts).map_err(err)?))
}

#[derive(Args)]
pub struct IsmArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Sequences: DREAM file, FASTA or table.
    #[arg(long)]
    input: PathBuf,
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
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Write a `.npy` header for a little-endian f32 array, padded to 128 bytes so it can be
/// rewritten in place once the row count is known.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}{}), }}",
        dims.join(", "),
        if shape.len() == 1 { "," } else { "" }
    );
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 128 - 10 - dict.len() - 1;
    h.extend_from_slice(&(118u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.extend(std::iter::repeat_n(b' ', pad));
    h.push(b'\n');
    h
}

pub fn run_ism(a: IsmArgs) -> Result<(), String> {
    use prixfixe::output::{AtomicFile, create_dir, refuse_overwriting_input, remove_if_created};
    for name in ["ism.tsv", "ism.npy"] {
        refuse_overwriting_input(&a.out.join(name), &[&a.input]).map_err(err)?;
    }
    let model = a.model.load_ensemble()?;
    let ds = read_input(&a.input, model.encoder().padding())?;
    let tasks = model.tasks();
    let len0 = ds.seqs.seq_len(0);
    // Everything that can be checked is checked before any file is made.
    if a.npy
        && let Some(i) = (0..ds.len()).find(|&i| ds.seqs.seq_len(i) != len0)
    {
        return Err(format!(
            "{}:{}: --npy needs sequences of one length, and this one has {} nt where the \
             first has {len0}; drop --npy (ism.tsv holds every length) or split the input",
            a.input.display(),
            ds.lines[i],
            ds.seqs.seq_len(i)
        ));
    }
    let created = create_dir(&a.out).map_err(err)?;
    let result = (|| -> Result<(), String> {
        let plots = a.out.join("plots");
        if a.plots > 0 {
            std::fs::create_dir_all(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
        }
        let io = |e: std::io::Error| e.to_string();
        let mut tsv = AtomicFile::create(&a.out.join("ism.tsv")).map_err(err)?;
        tsv.write_all(ism::tsv_header(tasks).as_bytes())
            .map_err(io)?;
        let mut npy = if a.npy {
            let mut f = AtomicFile::create(&a.out.join("ism.npy")).map_err(err)?;
            let shape = if tasks > 1 {
                vec![ds.len(), len0, 4, tasks]
            } else {
                vec![ds.len(), len0, 4]
            };
            f.write_all(&npy_header(&shape)).map_err(io)?;
            Some(f)
        } else {
            None
        };
        let id = |i: usize| {
            ds.ids
                .as_ref()
                .map_or_else(|| format!("seq{}", i + 1), |v| v[i].clone())
        };
        let progress = bar(a.quiet, ds.len(), "ism");
        // Enough sequences per group to fill a batch of mutants (3L + 1 per sequence).
        let per_group = (a.batch_size / (3 * len0 + 1)).max(1);
        let mut start = 0;
        while start < ds.len() {
            let end = (start + per_group).min(ds.len());
            let seqs: Vec<Vec<u8>> = (start..end).map(|i| ds.seqs.get(i).to_vec()).collect();
            let maps = ism::ism(&model, &seqs, a.batch_size).map_err(err)?;
            let mut text = String::new();
            for (k, m) in maps.iter().enumerate() {
                let i = start + k;
                ism::write_tsv_rows(&id(i), m, &mut text);
                if let Some(f) = &mut npy {
                    let mut bytes = Vec::with_capacity(m.seq.len() * 4 * tasks * 4);
                    for pos in 0..m.seq.len() {
                        for b in [0u8, 2, 1, 3] {
                            for t in 0..tasks {
                                bytes.extend_from_slice(&m.effect(pos, b, t).to_le_bytes());
                            }
                        }
                    }
                    f.write_all(&bytes).map_err(io)?;
                }
                if i < a.plots {
                    let name = id(i).replace(['/', '\\', ' ', ':'], "_");
                    plot::plot_ism(m, 0, &id(i), &plots.join(format!("{name}.svg")))
                        .map_err(err)?;
                }
            }
            tsv.write_all(text.as_bytes()).map_err(io)?;
            progress.inc((end - start) as u64);
            start = end;
        }
        progress.finish_and_clear();
        tsv.commit().map_err(err)?;
        if let Some(f) = npy {
            f.commit().map_err(err)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir(a.out.join("plots"));
        remove_if_created(&a.out, created);
        return Err(e);
    }
    if !a.quiet {
        eprintln!(
            "ISM of {} sequences written to {} ({} figures)",
            ds.len(),
            a.out.display(),
            a.plots.min(ds.len())
        );
    }
    Ok(())
}

#[derive(Args)]
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
    /// No messages.
    #[arg(long)]
    quiet: bool,
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
                eprintln!(
                    "skipped {}:{}: {} ({})",
                    vcf.display(),
                    s.line,
                    s.site,
                    s.reason
                );
            }
            if !skips.is_empty() {
                eprintln!("{} allele(s) skipped, listed above", skips.len());
            }
            if pairs.is_empty() {
                return Err(format!("{}: no variant left to score", vcf.display()));
            }
            pairs
        }
        _ => return Err("give --pairs FILE, or --vcf FILE with --fasta GENOME".into()),
    };
    let padding = ensemble.encoder().padding().clone();
    for p in &pairs {
        for s in [&p.reference, &p.alternative] {
            padding
                .check(s)
                .map_err(|e| format!("variant {}: {e}", p.id))?;
        }
    }
    let members: Vec<&dyn Predictor> = ensemble
        .models()
        .iter()
        .map(|m| m as &dyn Predictor)
        .collect();
    let preds = variants::predict_pairs(&members, &pairs, a.batch_size).map_err(err)?;
    let table = variants::effects_table(&pairs, &preds, ensemble.tasks());
    prixfixe::output::write_atomic(&a.output, table.as_bytes()).map_err(err)?;
    if !a.quiet {
        eprintln!(
            "{} variant effects ({} model{}) written to {}",
            pairs.len(),
            members.len(),
            if members.len() > 1 { "s averaged" } else { "" },
            a.output.display()
        );
    }
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
    /// Start from these sequences (any readable format) instead of random ones.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Task of a multi-task model to optimise.
    #[arg(long, default_value_t = 0)]
    task: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output TSV.
    #[arg(long, default_value = "designs.tsv")]
    output: PathBuf,
    /// Sequences per model call.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
}

pub fn run_design(a: DesignArgs) -> Result<(), String> {
    if let Some(init) = &a.init {
        prixfixe::output::refuse_overwriting_input(&a.output, &[init]).map_err(err)?;
    }
    let models = a.model.load()?;
    if a.objective == Objective::Disagree && models.len() != 2 {
        return Err(format!(
            "--objective disagree needs exactly two models (--model-dir A --model-dir B); got {}",
            models.len()
        ));
    }
    let tasks = models[0].tasks();
    if a.task >= tasks {
        return Err(format!(
            "--task {} but the model has {tasks} task(s)",
            a.task
        ));
    }
    let ensemble = Ensemble::new(models).map_err(err)?;
    let enc = ensemble.encoder().clone();
    let yeast = matches!(enc.padding(), Padding::Plasmid { .. });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let init: Vec<Vec<u8>> = match &a.init {
        Some(p) => {
            let ds = read_input(p, enc.padding())?;
            (0..ds.len()).map(|i| ds.seqs.get(i).to_vec()).collect()
        }
        // Random 80-nt regions between the adapters, or random sequences of the input length.
        None => {
            let lib = LibrarySpec::uniform();
            (0..a.population.min(100_000))
                .map(|_| {
                    if yeast {
                        lib.read(&mut rng)
                    } else {
                        lib.core(&mut rng, enc.length())
                    }
                })
                .collect()
        }
    };
    let len = init.iter().map(Vec::len).min().unwrap_or(0);
    let mutable = if yeast && a.init.is_none() {
        prixfixe::sim::library::core_range(len)
    } else {
        0..len
    };
    let cfg = GaConfig {
        population: a.population,
        generations: a.generations,
        tournament: a.tournament,
        crossover: a.crossover,
        mutation: a.mutation,
        per_base: a.per_base,
        batch: a.batch_size,
        seed: rng.random(),
    };
    let progress = bar(a.quiet, a.population, "evaluate");
    let quiet = a.quiet;
    let (task, objective) = (a.task, a.objective);
    let members = ensemble.models();
    let fitness = |seqs: &[Vec<u8>]| -> prixfixe::Result<Vec<f64>> {
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let pick =
            |p: Vec<f32>| -> Vec<f64> { p.chunks(tasks).map(|r| f64::from(r[task])).collect() };
        let f = match objective {
            Objective::Max => pick(predict_codes(&ensemble, &refs, a.batch_size)?),
            Objective::Min => pick(predict_codes(&ensemble, &refs, a.batch_size)?)
                .into_iter()
                .map(|v| -v)
                .collect(),
            Objective::Disagree => {
                let x = pick(predict_codes(&members[0], &refs, a.batch_size)?);
                let y = pick(predict_codes(&members[1], &refs, a.batch_size)?);
                x.iter().zip(&y).map(|(a, b)| (a - b).abs()).collect()
            }
        };
        progress.inc(seqs.len() as u64);
        Ok(f)
    };
    let pop = evolve(&init, mutable, &cfg, fitness, |g| {
        progress.set_position(0);
        progress.set_length(a.population as u64);
        if !quiet {
            let line = format!(
                "generation {:>3}: best {:.4}, mean {:.4} ({} evaluated)",
                g.generation, g.best, g.mean, g.evaluated
            );
            // A bar that is not drawn (not a terminal) prints nothing: write to stderr then.
            if progress.is_hidden() {
                eprintln!("{line}");
            } else {
                progress.println(line);
            }
        }
    })
    .map_err(err)?;
    progress.finish_and_clear();
    let best = prixfixe::design::best_distinct(&pop, a.n);
    let seqs: Vec<&[u8]> = best.iter().map(|i| i.seq.as_slice()).collect();
    let mut out = String::from("rank\tsequence\tfitness");
    let mut per_model = Vec::new();
    for (k, m) in members.iter().enumerate() {
        out.push_str(&format!("\tprediction_m{}", k + 1));
        per_model.push(predict_codes(m, &seqs, a.batch_size).map_err(err)?);
    }
    out.push('\n');
    for (i, ind) in best.iter().enumerate() {
        out.push_str(&format!(
            "{}\t{}\t{}",
            i + 1,
            prixfixe::data::alphabet::decode(&ind.seq),
            ind.fitness
        ));
        for p in &per_model {
            out.push_str(&format!("\t{}", p[i * tasks + task]));
        }
        out.push('\n');
    }
    prixfixe::output::write_atomic(&a.output, out.as_bytes()).map_err(err)?;
    if !a.quiet {
        eprintln!(
            "{} designed sequences written to {}",
            best.len(),
            a.output.display()
        );
    }
    Ok(())
}
