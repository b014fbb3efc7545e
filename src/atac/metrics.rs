//! ChromBPNet's metrics (SPEC_BENCHMARKS §5.8): log counts against `log(1 + Σ counts)`
//! (Pearson r, Spearman ρ, MSE) and each region's profile against the measured one by
//! SciPy's `jensenshannon` (the JS *distance*, natural log), with its normalised form.

use serde::{Deserialize, Serialize};

use crate::eval::metrics::{mse, pearson, spearman};

/// `softmax(logits)`.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// SciPy's `jensenshannon(p, q)` (natural log): both normalised to sum 1 first; NaN where
/// `p` sums to 0.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp <= 0.0 || sq <= 0.0 {
        return f64::NAN;
    }
    let rel = |a: f64, b: f64| if a > 0.0 { a * (a / b).ln() } else { 0.0 };
    let mut js = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        js += rel(a, m) + rel(b, m);
    }
    (js / 2.0).max(0.0).sqrt()
}

/// The JS distance of a measured profile (`true / (0.001 + Σ true)`) from the prediction
/// (`softmax(logits)`), and its normalised form `clip(1 − JSD / JSD(true, uniform), 0, 1)`.
pub fn profile_jsd(counts: &[f32], logits: &[f32]) -> (f64, f64) {
    let total: f64 = counts.iter().map(|&v| v as f64).sum();
    let p: Vec<f64> = counts.iter().map(|&v| v as f64 / (0.001 + total)).collect();
    let q = softmax(logits);
    let jsd = js_distance(&p, &q);
    let uniform = vec![1.0; counts.len()];
    let worst = js_distance(&p, &uniform);
    let norm = (1.0 - jsd / worst).clamp(0.0, 1.0);
    (jsd, norm)
}

/// The median of the finite values (NaN where none are): NumPy's `nanmedian`.
pub fn nan_median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    crate::eval::metrics::median(&mut v)
}

/// One group's figures (peaks, non-peaks or both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// Regions.
    pub n: usize,
    /// Pearson r of the log counts.
    pub counts_pearson: Option<f64>,
    /// Spearman ρ of the log counts.
    pub counts_spearman: Option<f64>,
    /// MSE of the log counts.
    pub counts_mse: f64,
    /// Median JS distance of the profiles (lower is better).
    pub profile_median_jsd: f64,
    /// Median normalised JSD (higher is better).
    pub profile_median_norm_jsd: f64,
}

impl GroupMetrics {
    /// From per-region measured and predicted log counts and JSDs.
    pub fn of(true_lc: &[f64], pred_lc: &[f64], jsd: &[f64], norm: &[f64]) -> Self {
        GroupMetrics {
            n: true_lc.len(),
            counts_pearson: pearson(pred_lc, true_lc),
            counts_spearman: spearman(pred_lc, true_lc),
            counts_mse: if true_lc.is_empty() {
                f64::NAN
            } else {
                mse(pred_lc, true_lc)
            },
            profile_median_jsd: nan_median(jsd),
            profile_median_norm_jsd: nan_median(norm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SciPy 1.16 gives `jensenshannon([1, 0, 3], [0.2, 0.3, 0.5])` = 0.3434363608367091 and
    /// NaN for an all-zero `p`.
    #[test]
    fn js_distance_matches_scipy() {
        let d = js_distance(&[1.0, 0.0, 3.0], &[0.2, 0.3, 0.5]);
        assert!((d - 0.343_436_360_836_709_1).abs() < 1e-12, "{d}");
        assert_eq!(js_distance(&[1.0, 1.0], &[1.0, 1.0]), 0.0);
        assert!(js_distance(&[0.0, 0.0], &[1.0, 1.0]).is_nan());
        assert_eq!(nan_median(&[3.0, f64::NAN, 1.0, 2.0]), 2.0);
        let (j, n) = profile_jsd(&[2.0, 2.0, 2.0], &[0.0, 0.0, 0.0]);
        // A uniform measured profile has no distance to normalise by: NaN, as in ChromBPNet
        // (left out of the nan-median).
        assert!(j.abs() < 1e-6 && n.is_nan(), "{j} {n}");
        // SciPy: jensenshannon(t / (0.001 + Σt), softmax([5, 0, 0])) = 0.06804804590287815
        // and the normalised form 0.8793779740369357 for t = [4, 0, 0].
        let (j, n) = profile_jsd(&[4.0, 0.0, 0.0], &[5.0, 0.0, 0.0]);
        assert!((j - 0.068_048_045_902_878_15).abs() < 1e-7, "{j}");
        assert!((n - 0.879_377_974_036_935_7).abs() < 1e-6, "{n}");
    }
}
