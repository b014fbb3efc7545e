//! A genetic algorithm over DNA sequences (SPEC §6), as used to design the DREAM test set's
//! high-, low-expression and "challenging" sequences.
//!
//! One generation follows DEAP's `eaSimple`, which the challenge organisers used: tournament
//! selection of a whole new population, then on consecutive pairs a two-point crossover with
//! probability [`GaConfig::crossover`], then on each individual a mutation with probability
//! [`GaConfig::mutation`] that substitutes each base of the mutable region with probability
//! [`GaConfig::per_base`]. Only individuals that changed are re-evaluated; fitness comes from any
//! function of a batch of sequences (a simulator's proxy model, or trained models) and is
//! maximised — to minimise, negate it.

use std::ops::Range;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A sequence as base codes (`A, G, C, T` = 0–3, see [`crate::data::alphabet`]).
pub type Seq = Vec<u8>;

/// Settings of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaConfig {
    /// Individuals per generation.
    pub population: usize,
    /// Generations.
    pub generations: usize,
    /// Tournament size of the selection.
    pub tournament: usize,
    /// Probability that a pair of consecutive individuals undergoes two-point crossover.
    pub crossover: f64,
    /// Probability that an individual is mutated.
    pub mutation: f64,
    /// Probability that a base of a mutated individual is substituted.
    pub per_base: f64,
    /// Sequences per fitness call.
    pub batch: usize,
    /// Seed of selection, crossover and mutation.
    pub seed: u64,
}

impl GaConfig {
    /// The settings used for the test set's high- and low-expression sequences: population
    /// 100,000, 10 generations, tournament 3, crossover and mutation probabilities 0.1
    /// (per-base rate of a mutated individual 0.02).
    pub fn paper() -> Self {
        Self {
            population: 100_000,
            generations: 10,
            tournament: 3,
            crossover: 0.1,
            mutation: 0.1,
            per_base: 0.02,
            batch: 4096,
            seed: 0,
        }
    }

    /// The settings used for the "challenging" sequences: populations of 100, 100 generations,
    /// recombination 0.5, every individual mutated at a per-base rate of 0.02.
    pub fn challenging() -> Self {
        Self {
            population: 100,
            generations: 100,
            tournament: 3,
            crossover: 0.5,
            mutation: 1.0,
            per_base: 0.02,
            batch: 4096,
            seed: 0,
        }
    }

    /// Reject settings the algorithm cannot run.
    pub fn check(&self) -> Result<()> {
        let prob = |name: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "GA {name} must be a probability in [0, 1], got {p}"
                )))
            }
        };
        prob("crossover", self.crossover)?;
        prob("mutation", self.mutation)?;
        prob("per-base rate", self.per_base)?;
        if self.population < 2 {
            return Err(Error::Config("GA population must be at least 2".into()));
        }
        if self.tournament == 0 || self.batch == 0 {
            return Err(Error::Config(
                "GA tournament size and batch must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A sequence and its fitness.
#[derive(Debug, Clone, PartialEq)]
pub struct Individual {
    /// Base codes.
    pub seq: Seq,
    /// Fitness (higher is better).
    pub fitness: f64,
}

/// What one generation looked like, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationStats {
    /// Generation number; 0 is the initial population.
    pub generation: usize,
    /// Best fitness.
    pub best: f64,
    /// Mean fitness.
    pub mean: f64,
    /// Individuals evaluated in this generation.
    pub evaluated: usize,
}

fn evaluate(
    seqs: &[Seq],
    batch: usize,
    fitness: &mut impl FnMut(&[Seq]) -> Result<Vec<f64>>,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(batch) {
        let f = fitness(chunk)?;
        if f.len() != chunk.len() {
            return Err(Error::Config(format!(
                "fitness function returned {} values for {} sequences",
                f.len(),
                chunk.len()
            )));
        }
        if let Some(bad) = f.iter().find(|v| v.is_nan()) {
            return Err(Error::Config(format!("fitness function returned {bad}")));
        }
        out.extend(f);
    }
    Ok(out)
}

fn stats(generation: usize, pop: &[Individual], evaluated: usize) -> GenerationStats {
    let best = pop
        .iter()
        .map(|i| i.fitness)
        .fold(f64::NEG_INFINITY, f64::max);
    let mean = pop.iter().map(|i| i.fitness).sum::<f64>() / pop.len() as f64;
    GenerationStats {
        generation,
        best,
        mean,
        evaluated,
    }
}

/// Substitute a base by one of the three others.
pub fn substitute(base: u8, rng: &mut impl Rng) -> u8 {
    let shift = rng.random_range(1..4u8);
    // N (4) becomes a random base.
    if base > 3 { shift } else { (base + shift) % 4 }
}

/// Evolve `initial` (which fixes the population size when `cfg.population` is 0 — otherwise
/// it is cycled or cut to `cfg.population`) for `cfg.generations`, changing only positions in
/// `mutable`. Returns the final population, best first.
pub fn evolve(
    initial: &[Seq],
    mutable: Range<usize>,
    cfg: &GaConfig,
    mut fitness: impl FnMut(&[Seq]) -> Result<Vec<f64>>,
    mut on_generation: impl FnMut(GenerationStats),
) -> Result<Vec<Individual>> {
    cfg.check()?;
    if initial.is_empty() {
        return Err(Error::Config(
            "GA needs at least one initial sequence".into(),
        ));
    }
    let min_len = initial.iter().map(Vec::len).min().unwrap_or(0);
    if mutable.end > min_len || mutable.is_empty() {
        return Err(Error::Config(format!(
            "GA mutable region {}..{} does not fit sequences of {min_len} nt",
            mutable.start, mutable.end
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let seqs: Vec<Seq> = initial
        .iter()
        .cycle()
        .take(cfg.population)
        .cloned()
        .collect();
    let f = evaluate(&seqs, cfg.batch, &mut fitness)?;
    let mut pop: Vec<Individual> = seqs
        .into_iter()
        .zip(f)
        .map(|(seq, fitness)| Individual { seq, fitness })
        .collect();
    on_generation(stats(0, &pop, pop.len()));

    for generation in 1..=cfg.generations {
        // Tournament selection of a whole population.
        let mut offspring: Vec<(Seq, Option<f64>)> = (0..pop.len())
            .map(|_| {
                let best = (0..cfg.tournament)
                    .map(|_| pop.choose(&mut rng).expect("non-empty"))
                    .max_by(|a, b| a.fitness.total_cmp(&b.fitness))
                    .expect("tournament of at least one");
                (best.seq.clone(), Some(best.fitness))
            })
            .collect();
        // Two-point crossover on consecutive pairs.
        for pair in offspring.chunks_mut(2) {
            if let [a, b] = pair
                && rng.random_bool(cfg.crossover)
            {
                let mut i = rng.random_range(mutable.clone());
                let mut j = rng.random_range(mutable.clone());
                if i > j {
                    std::mem::swap(&mut i, &mut j);
                }
                let j = (j + 1).min(mutable.end);
                a.0[i..j].swap_with_slice(&mut b.0[i..j]);
                a.1 = None;
                b.1 = None;
            }
        }
        // Mutation.
        for (seq, fit) in offspring.iter_mut() {
            if rng.random_bool(cfg.mutation) {
                let mut changed = false;
                for p in mutable.clone() {
                    if rng.random_bool(cfg.per_base) {
                        seq[p] = substitute(seq[p], &mut rng);
                        changed = true;
                    }
                }
                if changed {
                    *fit = None;
                }
            }
        }
        let stale: Vec<usize> = (0..offspring.len())
            .filter(|&i| offspring[i].1.is_none())
            .collect();
        let to_eval: Vec<Seq> = stale.iter().map(|&i| offspring[i].0.clone()).collect();
        let f = evaluate(&to_eval, cfg.batch, &mut fitness)?;
        for (&i, v) in stale.iter().zip(f) {
            offspring[i].1 = Some(v);
        }
        pop = offspring
            .into_iter()
            .map(|(seq, f)| Individual {
                seq,
                fitness: f.expect("evaluated"),
            })
            .collect();
        on_generation(stats(generation, &pop, stale.len()));
    }
    pop.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
    Ok(pop)
}

/// The best `n` distinct sequences of a population sorted best first.
pub fn best_distinct(pop: &[Individual], n: usize) -> Vec<Individual> {
    let mut seen = std::collections::HashSet::new();
    pop.iter()
        .filter(|i| seen.insert(i.seq.clone()))
        .take(n)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_a(seqs: &[Seq]) -> Result<Vec<f64>> {
        Ok(seqs
            .iter()
            .map(|s| s.iter().filter(|&&b| b == 0).count() as f64)
            .collect())
    }

    fn random_pop(n: usize, len: usize, seed: u64) -> Vec<Seq> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..len).map(|_| rng.random_range(0..4u8)).collect())
            .collect()
    }

    #[test]
    fn fitness_rises_and_fixed_region_stays() {
        let init = random_pop(200, 30, 1);
        let cfg = GaConfig {
            population: 200,
            generations: 30,
            crossover: 0.5,
            mutation: 1.0,
            per_base: 0.05,
            seed: 3,
            ..GaConfig::paper()
        };
        let mut history = Vec::new();
        let pop = evolve(&init, 5..25, &cfg, count_a, |s| history.push(s)).unwrap();
        assert_eq!(history.len(), 31);
        assert!(history[30].mean > history[0].mean + 5.0, "{history:?}");
        assert!(pop.windows(2).all(|w| w[0].fitness >= w[1].fitness));
        let prefixes: std::collections::HashSet<_> = init.iter().map(|s| s[..5].to_vec()).collect();
        for ind in &pop {
            assert!(prefixes.contains(&ind.seq[..5]), "fixed prefix changed");
            assert_eq!(
                count_a(std::slice::from_ref(&ind.seq)).unwrap()[0],
                ind.fitness
            );
        }
    }

    #[test]
    fn same_seed_same_result_and_batches_do_not_matter() {
        let init = random_pop(50, 20, 2);
        let mut cfg = GaConfig {
            population: 50,
            generations: 5,
            seed: 9,
            ..GaConfig::challenging()
        };
        let a = evolve(&init, 0..20, &cfg, count_a, |_| {}).unwrap();
        cfg.batch = 7;
        let b = evolve(&init, 0..20, &cfg, count_a, |_| {}).unwrap();
        assert_eq!(a, b);
        cfg.seed = 10;
        let c = evolve(&init, 0..20, &cfg, count_a, |_| {}).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn bad_settings_are_errors() {
        let init = random_pop(4, 10, 0);
        let cfg = GaConfig {
            crossover: 1.5,
            ..GaConfig::challenging()
        };
        assert!(evolve(&init, 0..10, &cfg, count_a, |_| {}).is_err());
        let cfg = GaConfig::challenging();
        assert!(evolve(&init, 0..11, &cfg, count_a, |_| {}).is_err());
        let wrong = |s: &[Seq]| Ok(vec![0.0; s.len() + 1]);
        assert!(evolve(&init, 0..10, &cfg, wrong, |_| {}).is_err());
    }
}
