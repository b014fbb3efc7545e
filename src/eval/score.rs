//! The DREAM Challenge score (SPEC §5): per subset Pearson r and Spearman ρ between predicted
//! and measured values (pair subsets on differences `alt − ref`), then the weighted Pearson
//! score `Σ wᵢ·rᵢ² / Σ wᵢ` and Spearman score `Σ wᵢ·ρᵢ / Σ wᵢ` over the subsets present.

use std::collections::HashSet;

use serde::Serialize;

use super::metrics::{pearson, spearman};
use crate::data::{Subset, SubsetRows};
use crate::error::{Error, Result};

/// The challenge's subsets: file stem, display name, weight.
pub const SUBSETS: [(&str, &str, f64); 9] = [
    ("all", "all", 1.0),
    ("high_exp_seqs", "high expression", 0.3),
    ("low_exp_seqs", "low expression", 0.3),
    ("yeast_seqs", "native (yeast)", 0.3),
    ("all_random_seqs", "random", 0.3),
    ("challenging_seqs", "challenging", 0.5),
    ("all_SNVs_seqs", "SNV", 1.25),
    ("motif_perturbation_seqs", "motif perturbation", 0.3),
    ("motif_tiling_seqs", "motif tiling", 0.4),
];

/// Total weight with every subset present.
pub const TOTAL_WEIGHT: f64 = 4.65;

/// The weight of a subset by file stem.
pub fn weight_of(name: &str) -> Result<(&'static str, f64)> {
    SUBSETS
        .iter()
        .find(|s| s.0 == name)
        .map(|s| (s.1, s.2))
        .ok_or_else(|| {
            Error::Config(format!(
                "unknown subset {name:?}; the DREAM subsets are {}",
                SUBSETS[1..]
                    .iter()
                    .map(|s| s.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// A subset ready to score: its rows after exclusion.
#[derive(Debug, Clone)]
pub struct ScoredSubset {
    /// File stem (`all` for the whole test set).
    pub name: String,
    /// Weight in the score.
    pub weight: f64,
    /// The rows.
    pub rows: SubsetRows,
}

/// The subsets to score: `all` (every test row) plus the given files, with excluded rows (and
/// pairs touching them) dropped.
pub fn prepare(
    test_rows: usize,
    subsets: &[Subset],
    exclude: &HashSet<usize>,
) -> Result<Vec<ScoredSubset>> {
    let mut out = vec![ScoredSubset {
        name: "all".into(),
        weight: 1.0,
        rows: SubsetRows::Single((0..test_rows).filter(|r| !exclude.contains(r)).collect()),
    }];
    for s in subsets {
        let (_, weight) = weight_of(&s.name)?;
        let rows = match &s.rows {
            SubsetRows::Single(v) => {
                SubsetRows::Single(v.iter().copied().filter(|r| !exclude.contains(r)).collect())
            }
            SubsetRows::Pair(v) => SubsetRows::Pair(
                v.iter()
                    .copied()
                    .filter(|(a, r)| !exclude.contains(a) && !exclude.contains(r))
                    .collect(),
            ),
        };
        out.push(ScoredSubset {
            name: s.name.clone(),
            weight,
            rows,
        });
    }
    Ok(out)
}

/// Predicted and measured vectors of one subset (differences for pairs).
pub fn subset_vectors(rows: &SubsetRows, pred: &[f64], meas: &[f64]) -> (Vec<f64>, Vec<f64>) {
    match rows {
        SubsetRows::Single(v) => (
            v.iter().map(|&i| pred[i]).collect(),
            v.iter().map(|&i| meas[i]).collect(),
        ),
        SubsetRows::Pair(v) => (
            v.iter().map(|&(a, r)| pred[a] - pred[r]).collect(),
            v.iter().map(|&(a, r)| meas[a] - meas[r]).collect(),
        ),
    }
}

/// One subset's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SubsetScore {
    /// File stem.
    pub name: String,
    /// Weight.
    pub weight: f64,
    /// Entries scored (unique positions or pairs).
    pub n: usize,
    /// Pearson r (`None` when undefined: constant vector or fewer than 2 entries).
    pub pearson: Option<f64>,
    /// Spearman ρ.
    pub spearman: Option<f64>,
}

/// A model's DREAM score.
#[derive(Debug, Clone, Serialize)]
pub struct DreamScore {
    /// Per subset.
    pub subsets: Vec<SubsetScore>,
    /// `Σ w·r² / Σ w` over the subsets with a defined r.
    pub pearson_score: f64,
    /// `Σ w·ρ / Σ w` over the subsets with a defined ρ.
    pub spearman_score: f64,
    /// `Σ w` actually used (4.65 with every subset present and defined).
    pub weight_used: f64,
    /// Subsets of the challenge not scored (absent, or undefined correlation).
    pub missing: Vec<String>,
}

/// A score as JSON (what `prixfixe score --json` writes for each model).
pub fn to_json(score: &DreamScore) -> Result<String> {
    serde_json::to_string_pretty(score).map_err(|e| crate::Error::Other(e.to_string()))
}

/// Score predictions against measured values on prepared subsets.
pub fn dream_score(subsets: &[ScoredSubset], pred: &[f64], meas: &[f64]) -> DreamScore {
    let mut scores = Vec::new();
    let (mut wp, mut ws, mut sp, mut ss) = (0.0, 0.0, 0.0, 0.0);
    for s in subsets {
        let (p, m) = subset_vectors(&s.rows, pred, meas);
        let r = pearson(&p, &m);
        let rho = spearman(&p, &m);
        if let Some(r) = r {
            sp += s.weight * r * r;
            wp += s.weight;
        }
        if let Some(rho) = rho {
            ss += s.weight * rho;
            ws += s.weight;
        }
        scores.push(SubsetScore {
            name: s.name.clone(),
            weight: s.weight,
            n: p.len(),
            pearson: r,
            spearman: rho,
        });
    }
    let missing = SUBSETS
        .iter()
        .filter(|(name, ..)| {
            !scores
                .iter()
                .any(|s| s.name == *name && s.pearson.is_some() && s.spearman.is_some())
        })
        .map(|s| s.0.to_string())
        .collect();
    DreamScore {
        subsets: scores,
        pearson_score: if wp > 0.0 { sp / wp } else { f64::NAN },
        spearman_score: if ws > 0.0 { ss / ws } else { f64::NAN },
        weight_used: wp.min(ws),
        missing,
    }
}
