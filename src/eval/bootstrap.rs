//! Bootstrap ranking of models (SPEC §5): draw 10% of the test rows many times; in each draw
//! score every model on the subsets restricted to the drawn rows, rank the models by Pearson
//! score and by Spearman score (1 = best), and average the two ranks.
//!
//! A single-sequence subset keeps its entries whose row was drawn; a pair subset keeps its
//! pairs whose *alt* row was drawn (alt rows are distinct per pair, so a pair subset is
//! sampled at the same 10% rate instead of the 1% that requiring both rows would give).

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::score::{ScoredSubset, dream_score};
use crate::data::SubsetRows;

/// Per model, how its ranks fell over the replicates.
#[derive(Debug, Clone, Serialize)]
pub struct RankDistribution {
    /// Model label.
    pub model: String,
    /// `counts[k]` = replicates where the model's Pearson-score rank was `k + 1`.
    pub pearson_rank_counts: Vec<usize>,
    /// Same for the Spearman-score rank.
    pub spearman_rank_counts: Vec<usize>,
    /// Mean of the combined rank (average of the two ranks).
    pub mean_combined_rank: f64,
    /// Combined ranks, half-steps: `counts[k]` = replicates with combined rank `1 + k/2`.
    pub combined_rank_counts: Vec<usize>,
}

/// The bootstrap result.
#[derive(Debug, Clone, Serialize)]
pub struct Bootstrap {
    /// Replicates drawn.
    pub replicates: usize,
    /// Fraction of the test rows per replicate.
    pub fraction: f64,
    /// Seed.
    pub seed: u64,
    /// Per model.
    pub models: Vec<RankDistribution>,
}

fn restrict(s: &ScoredSubset, drawn: &[bool]) -> ScoredSubset {
    let rows = match &s.rows {
        SubsetRows::Single(v) => {
            SubsetRows::Single(v.iter().copied().filter(|&r| drawn[r]).collect())
        }
        SubsetRows::Pair(v) => {
            SubsetRows::Pair(v.iter().copied().filter(|&(a, _)| drawn[a]).collect())
        }
    };
    ScoredSubset {
        name: s.name.clone(),
        weight: s.weight,
        rows,
    }
}

/// Rank positions (1 = highest score); ties share the better rank.
fn ranks(scores: &[f64]) -> Vec<usize> {
    scores
        .iter()
        .map(|&s| {
            1 + scores
                .iter()
                .filter(|&&o| o > s || (!o.is_nan() && s.is_nan()))
                .count()
        })
        .collect()
}

/// Run the bootstrap over `models` (label, predictions).
pub fn bootstrap_ranks(
    subsets: &[ScoredSubset],
    models: &[(String, Vec<f64>)],
    meas: &[f64],
    replicates: usize,
    fraction: f64,
    seed: u64,
) -> Bootstrap {
    let n_rows = meas.len();
    let take = ((n_rows as f64 * fraction).round() as usize).clamp(1, n_rows);
    let m = models.len();
    // Each replicate: (pearson ranks, spearman ranks) per model.
    let per_rep: Vec<(Vec<usize>, Vec<usize>)> = (0..replicates)
        .into_par_iter()
        .map(|rep| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (rep as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut drawn = vec![false; n_rows];
            for i in sample(&mut rng, n_rows, take) {
                drawn[i] = true;
            }
            let subs: Vec<ScoredSubset> = subsets.iter().map(|s| restrict(s, &drawn)).collect();
            let scores: Vec<(f64, f64)> = models
                .iter()
                .map(|(_, p)| {
                    let d = dream_score(&subs, p, meas);
                    (d.pearson_score, d.spearman_score)
                })
                .collect();
            let p: Vec<f64> = scores.iter().map(|s| s.0).collect();
            let s: Vec<f64> = scores.iter().map(|s| s.1).collect();
            (ranks(&p), ranks(&s))
        })
        .collect();
    let models = models
        .iter()
        .enumerate()
        .map(|(k, (label, _))| {
            let mut pc = vec![0; m];
            let mut sc = vec![0; m];
            let mut cc = vec![0; 2 * m - 1];
            let mut sum = 0.0;
            for (p, s) in &per_rep {
                pc[p[k] - 1] += 1;
                sc[s[k] - 1] += 1;
                cc[p[k] + s[k] - 2] += 1;
                sum += (p[k] + s[k]) as f64 / 2.0;
            }
            RankDistribution {
                model: label.clone(),
                pearson_rank_counts: pc,
                spearman_rank_counts: sc,
                mean_combined_rank: sum / replicates.max(1) as f64,
                combined_rank_counts: cc,
            }
        })
        .collect();
    Bootstrap {
        replicates,
        fraction,
        seed,
        models,
    }
}
