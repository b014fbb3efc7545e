//! `prixfixe simulate`.

use std::path::PathBuf;

use clap::Args;
use indicatif::ProgressBar;

use prixfixe::sim::{self, SimConfig, Stage};

#[derive(Args)]
#[command(after_help = "Examples:
  prixfixe simulate --small --out sim
  prixfixe simulate --kind drosophila --out fly
  prixfixe simulate --kind atac --out atac_sim --seed 7")]
pub struct SimulateArgs {
    /// What to simulate: the yeast experiment and DREAM test set, or Drosophila-like
    /// STARR-seq regions / human-like lentiMPRA oligos in the real files' layouts (train.txt,
    /// truth.tsv, simulation.json with the truth's ceiling).
    /// `atac` writes a synthetic genome with motif-driven accessibility, a known Tn5 bias and
    /// Poisson insertions: genome.fa(.fai), signal.bw, peaks/nonpeaks narrowPeak, folds.json.
    #[arg(long, default_value = "yeast", value_parser = ["yeast", "drosophila", "human", "atac"])]
    kind: String,
    /// atac: chromosomes (chr1 tests, chr2 validates, the rest train; default 6).
    #[arg(long)]
    chromosomes: Option<usize>,
    /// atac: length of each chromosome (default 400,000).
    #[arg(long)]
    chromosome_length: Option<u64>,
    /// atac: peaks and non-peaks per chromosome (default 60 each).
    #[arg(long)]
    peaks: Option<usize>,
    /// Drosophila regions or human elements (two rows each: both strands, or the forward and
    /// the reversed oligo).
    #[arg(long, default_value_t = 10_000)]
    elements: usize,
    /// Drosophila and human: label noise sd, in units of the truth's sd.
    #[arg(long, default_value_t = 0.5)]
    noise: f64,
    /// Output directory (train.txt, test.txt, test_truth.tsv, test_subsets/, simulation.json).
    #[arg(long, default_value = "sim")]
    out: PathBuf,
    /// Small preset: 100,000 training rows and a test set of ~4,400 rows (seconds).
    #[arg(long)]
    small: bool,
    /// Seed of everything; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Training rows (default 6,739,258, or 100,000 with --small).
    #[arg(long)]
    train: Option<usize>,
    /// Random test sequences.
    #[arg(long)]
    random: Option<usize>,
    /// High-expression designs.
    #[arg(long)]
    high: Option<usize>,
    /// Low-expression designs.
    #[arg(long)]
    low: Option<usize>,
    /// Native-like sequences.
    #[arg(long)]
    native: Option<usize>,
    /// Challenging designs.
    #[arg(long)]
    challenging: Option<usize>,
    /// SNV pairs.
    #[arg(long)]
    snv: Option<usize>,
    /// Motif-perturbation pairs.
    #[arg(long)]
    motif_perturbation: Option<usize>,
    /// Motif-tiling pairs.
    #[arg(long)]
    motif_tiling: Option<usize>,
    /// Test rows in all, filled with random sequences outside the subsets (default 71,103;
    /// 0 with --small).
    #[arg(long)]
    test_total: Option<usize>,
    /// Population of the high/low GA (paper: 100,000).
    #[arg(long)]
    ga_population: Option<usize>,
    /// Generations of the high/low GA (paper: 10).
    #[arg(long)]
    ga_generations: Option<usize>,
    /// Base composition of the training library's random regions, `A,G,C,T` (default: the
    /// real sample's, 0.225,0.281,0.192,0.301), or `uniform`.
    #[arg(long)]
    composition: Option<String>,
    /// Parameters of the truth and measurement models as TOML (`[truth]`, `[measure]`);
    /// see simulation.json of any run for every field.
    #[arg(long)]
    params: Option<PathBuf>,
    /// Also print and write the calibration report (report.json).
    #[arg(long)]
    report: bool,
    /// Training rows the report's k-mer ridge baseline is fitted on.
    #[arg(long, default_value_t = 200_000)]
    baseline_rows: usize,
    /// Overwrite an earlier simulation in --out.
    #[arg(long)]
    force: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    truth: Option<sim::truth::TruthParams>,
    measure: Option<sim::measure::MeasureParams>,
}

fn config(a: &SimulateArgs) -> Result<SimConfig, String> {
    let mut c = if a.small {
        SimConfig::small()
    } else {
        SimConfig::full()
    };
    c.seed = a.seed;
    let s = &mut c.test.sizes;
    for (flag, field) in [
        (a.train, &mut c.train_rows),
        (a.random, &mut s.random),
        (a.high, &mut s.high),
        (a.low, &mut s.low),
        (a.native, &mut s.native),
        (a.challenging, &mut s.challenging),
        (a.snv, &mut s.snv),
        (a.motif_perturbation, &mut s.motif_perturbation),
        (a.motif_tiling, &mut s.motif_tiling),
        (a.test_total, &mut s.total),
        (a.ga_population, &mut c.test.ga.population),
        (a.ga_generations, &mut c.test.ga.generations),
    ] {
        if let Some(v) = flag {
            *field = v;
        }
    }
    if let Some(comp) = &a.composition {
        c.library.composition = if comp == "uniform" {
            [0.25; 4]
        } else {
            let v: Vec<f64> = comp
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("--composition {comp:?}: expected four numbers A,G,C,T"))?;
            <[f64; 4]>::try_from(v)
                .map_err(|_| format!("--composition {comp:?}: expected four numbers A,G,C,T"))?
        };
    }
    if let Some(p) = &a.params {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let f: ParamsFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(t) = f.truth {
            c.truth = t;
        }
        if let Some(m) = f.measure {
            c.measure = m;
        }
        c.truth
            .check()
            .and_then(|_| c.measure.check())
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(c)
}

pub fn run(a: SimulateArgs) -> Result<(), String> {
    if a.kind == "atac" {
        if a.out.join("genome.fa").exists() && !a.force {
            return Err(format!(
                "{} already holds a simulation (genome.fa); use --force to overwrite it",
                a.out.display()
            ));
        }
        return super::atac::simulate(&a.out, a.seed, a.chromosomes, a.chromosome_length, a.peaks);
    }
    if a.kind != "yeast" {
        use prixfixe::sim::species::{Species, simulate};
        let species = if a.kind == "human" {
            Species::Human
        } else {
            Species::Drosophila
        };
        let s =
            simulate(&a.out, species, a.elements, a.noise, a.seed, a.force).map_err(super::err)?;
        println!(
            "{} rows ({} {}) in {}; the truth's Pearson r with the labels (the ceiling): {}",
            s.rows,
            s.units,
            if a.kind == "human" {
                "elements"
            } else {
                "regions"
            },
            a.out.join("train.txt").display(),
            s.tasks
                .iter()
                .zip(&s.ceiling)
                .map(|(t, c)| format!("{t} {c:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    let cfg = config(&a)?;
    let started = std::time::Instant::now();
    let mut bar = ProgressBar::hidden();
    let quiet = crate::cli::log::quiet();
    let mut on = |s: Stage| match s {
        Stage::Message(m) => {
            tracing::info!("{m}");
        }
        Stage::TrainRows { done, total } => {
            if !quiet && bar.is_hidden() {
                bar = super::progress::bar(total, "train.txt");
            }
            bar.set_position(done as u64);
            if done == total {
                bar.finish_and_clear();
            }
        }
        Stage::Generation(g) => {
            tracing::info!(
                "      generation {:>3}: best {:.3}, mean {:.3} ({} evaluated)",
                g.generation,
                g.best,
                g.mean,
                g.evaluated
            );
        }
    };
    let summary = sim::simulate(&a.out, &cfg, a.force, &mut on).map_err(super::err)?;
    println!(
        "simulated {} training rows ({:.1}% seen in one cell) in {:.1} s and {} test rows in {:.1} s → {}",
        cfg.train_rows,
        100.0 * summary.train_singletons as f64 / cfg.train_rows.max(1) as f64,
        summary.train_seconds,
        summary.test_rows,
        summary.test_seconds,
        a.out.display()
    );
    for (name, n) in &summary.subsets {
        println!("  {name:<24} {n:>7}");
    }
    if a.report {
        let rep = sim::report::calibrate(&a.out, &summary, a.baseline_rows).map_err(super::err)?;
        print!("\n{}", rep.table());
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
