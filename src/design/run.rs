//! Design with trained models: the genetic algorithm ([`super::ga`]) maximising an
//! [`Objective`] over one task of the models' predictions, from random sequences of the
//! model's input (yeast: random 80-nt regions between the plasmid adapters) or given ones.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ga::{GaConfig, GenerationStats, Individual, Seq, best_distinct, evolve};
use crate::data::Padding;
use crate::error::{Error, Result};
use crate::predict::{Ensemble, Predictor, predict_codes};
use crate::sim::library::{LibrarySpec, core_range};

/// What design maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// The prediction (mean over the models).
    Max,
    /// Minus the prediction: the lowest.
    Min,
    /// `|first model − second model|`: where two models disagree most (exactly two models).
    Disagree,
}

/// One design run.
#[derive(Debug, Clone)]
pub struct DesignSpec {
    /// The algorithm's settings; its seed is drawn from `seed` after the initial population.
    pub ga: GaConfig,
    /// What to maximise.
    pub objective: Objective,
    /// The task of a multi-task model.
    pub task: usize,
    /// Designed sequences to keep (the best distinct ones).
    pub n: usize,
    /// Start from these sequences instead of random ones (all positions mutable).
    pub init: Option<Vec<Seq>>,
    /// Seed of the initial population and of the algorithm.
    pub seed: u64,
}

/// A design run's result.
#[derive(Debug, Clone)]
pub struct Design {
    /// The best distinct sequences, best first.
    pub best: Vec<Individual>,
    /// Per model, its prediction of the task for each of `best`.
    pub per_model: Vec<Vec<f32>>,
}

/// The initial population and the positions the algorithm may change: given sequences whole,
/// or `size` random ones (at most 100,000).
fn initial(
    ensemble: &Ensemble,
    spec: &DesignSpec,
    rng: &mut ChaCha8Rng,
) -> (Vec<Seq>, Range<usize>) {
    let enc = ensemble.encoder();
    let yeast = matches!(enc.padding(), Padding::Plasmid { .. });
    let init: Vec<Seq> = match &spec.init {
        Some(seqs) => seqs.clone(),
        None => {
            let lib = LibrarySpec::uniform();
            (0..spec.ga.population.min(100_000))
                .map(|_| {
                    if yeast {
                        lib.read(rng)
                    } else {
                        lib.core(rng, enc.length())
                    }
                })
                .collect()
        }
    };
    let len = init.iter().map(Vec::len).min().unwrap_or(0);
    let mutable = if yeast && spec.init.is_none() {
        core_range(len)
    } else {
        0..len
    };
    (init, mutable)
}

/// Run the design. `evaluated` gets the number of sequences of each fitness call, and
/// `generation` each generation's figures.
pub fn run(
    ensemble: &Ensemble,
    spec: &DesignSpec,
    evaluated: &mut dyn FnMut(usize),
    generation: &mut dyn FnMut(GenerationStats),
) -> Result<Design> {
    let members = ensemble.models();
    if spec.objective == Objective::Disagree && members.len() != 2 {
        return Err(Error::Config(format!(
            "--objective disagree needs exactly two models (--model-dir A --model-dir B); got {}",
            members.len()
        )));
    }
    let tasks = ensemble.tasks();
    if spec.task >= tasks {
        return Err(Error::Config(format!(
            "--task {} but the model has {tasks} task(s)",
            spec.task
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let (init, mutable) = initial(ensemble, spec, &mut rng);
    let cfg = GaConfig {
        seed: rng.random(),
        ..spec.ga.clone()
    };
    let (task, batch) = (spec.task, spec.ga.batch);
    let pick = |p: Vec<f32>| -> Vec<f64> { p.chunks(tasks).map(|r| f64::from(r[task])).collect() };
    let fitness = |seqs: &[Vec<u8>]| -> Result<Vec<f64>> {
        let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
        let f = match spec.objective {
            Objective::Max => pick(predict_codes(ensemble, &refs, batch)?),
            Objective::Min => pick(predict_codes(ensemble, &refs, batch)?)
                .into_iter()
                .map(|v| -v)
                .collect(),
            Objective::Disagree => {
                let x = pick(predict_codes(&members[0], &refs, batch)?);
                let y = pick(predict_codes(&members[1], &refs, batch)?);
                x.iter().zip(&y).map(|(a, b)| (a - b).abs()).collect()
            }
        };
        evaluated(seqs.len());
        Ok(f)
    };
    let pop = evolve(&init, mutable, &cfg, fitness, generation)?;
    let best = best_distinct(&pop, spec.n);
    let seqs: Vec<&[u8]> = best.iter().map(|i| i.seq.as_slice()).collect();
    let per_model = members
        .iter()
        .map(|m| {
            let p = predict_codes(m, &seqs, batch)?;
            Ok(p.chunks(tasks).map(|r| r[task]).collect())
        })
        .collect::<Result<_>>()?;
    Ok(Design { best, per_model })
}

/// The designed sequences as FASTA, best first: `>design_<rank> fitness=<value>`.
pub fn design_fasta(d: &Design) -> String {
    let mut out = String::new();
    for (i, ind) in d.best.iter().enumerate() {
        out.push_str(&format!(
            ">design_{} fitness={}\n{}\n",
            i + 1,
            ind.fitness,
            crate::data::alphabet::decode(&ind.seq)
        ));
    }
    out
}

/// The designs as a TSV: `rank sequence fitness prediction_m1 …`.
pub fn design_table(d: &Design) -> String {
    let mut out = String::from("rank\tsequence\tfitness");
    for k in 0..d.per_model.len() {
        out.push_str(&format!("\tprediction_m{}", k + 1));
    }
    out.push('\n');
    for (i, ind) in d.best.iter().enumerate() {
        out.push_str(&format!(
            "{}\t{}\t{}",
            i + 1,
            crate::data::alphabet::decode(&ind.seq),
            ind.fitness
        ));
        for p in &d.per_model {
            out.push_str(&format!("\t{}", p[i]));
        }
        out.push('\n');
    }
    out
}
