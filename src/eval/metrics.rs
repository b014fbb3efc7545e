//! Pearson r, Spearman ρ (average ranks for ties) and MSE, in `f64`.
//!
//! A correlation is undefined when either vector is constant or shorter than 2: these return
//! `None`, never a silent NaN.

/// Pearson correlation, or `None` when undefined.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len(), "pearson: vectors of different lengths");
    let n = x.len();
    if n < 2 {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 || !sxx.is_finite() || !syy.is_finite() {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks 1..=n, ties sharing the average of their ranks (as `scipy.stats.rankdata`).
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman correlation (Pearson of average ranks), or `None` when undefined.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&rank_average(x), &rank_average(y))
}

/// The median of `v` (sorted in place; the mean of the two middle values for an even
/// count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Mean squared error.
pub fn mse(pred: &[f64], target: &[f64]) -> f64 {
    assert_eq!(
        pred.len(),
        target.len(),
        "mse: vectors of different lengths"
    );
    if pred.is_empty() {
        return f64::NAN;
    }
    pred.iter()
        .zip(target)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / pred.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_known_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 4.1, 5.9, 8.2, 9.8];
        // numpy.corrcoef
        assert!((pearson(&x, &y).unwrap() - 0.998_829_649_3).abs() < 1e-6);
        assert!((pearson(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn undefined_correlations_are_none() {
        assert_eq!(pearson(&[1.0, 2.0], &[3.0, 3.0]), None);
        assert_eq!(pearson(&[1.0], &[2.0]), None);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn ties_get_average_ranks() {
        assert_eq!(
            rank_average(&[10.0, 20.0, 10.0, 30.0]),
            vec![1.5, 3.0, 1.5, 4.0]
        );
        // scipy.stats.spearmanr([1,2,2,3,4], [1,3,2,2,5]) = 0.763158 (approx)
        let r = spearman(&[1.0, 2.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 2.0, 5.0]).unwrap();
        assert!((r - 0.763_157_9).abs() < 1e-6, "{r}");
    }

    #[test]
    fn mse_value() {
        assert_eq!(mse(&[1.0, 2.0], &[2.0, 4.0]), 2.5);
    }
}
