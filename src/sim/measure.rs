//! The measurement model: cells sorted into 18 fluorescence bins.
//!
//! A cell carrying a read with true log expression `y` fluoresces at `y + δ + ε`, where `ε`
//! (sd [`MeasureParams::cell_noise`]) is the cell's own noise and `δ` (sd
//! [`MeasureParams::sequence_noise`]) is shared by every cell of that read in one experiment
//! (integration site, plasmid copy number). Bin `k` holds `[e_k, e_{k+1})` on the log scale, with
//! 17 equally spaced inner edges and the outer bins open; the edges are placed so that the
//! training values have the real sample's mean and spread.
//!
//! Training measurement: a read is seen in `n` cells, `n` geometric with
//! `P(n = 1)` = [`MeasureParams::singleton_fraction`], and its value is the mean bin index of its
//! cells — an integer for a singleton, as in the real file. Test measurement: about
//! [`MeasureParams::test_cells`] cells (Poisson), reported on another scale, like the challenge's
//! MAUDE values: `(mean bin − 7.5) / 5.5`, about −1.4 … 1.7, with the 18 bins spread over the
//! test set's own range of truths ([`Sorter::for_test`]).

use rand::Rng;
use rand_distr::{Distribution, Geometric, Normal, Poisson};
use serde::{Deserialize, Serialize};

/// Number of sort bins.
pub const BINS: usize = 18;

/// Noise and counting parameters; noise sds are in units of the truth's sd over random reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureParams {
    /// Per-cell noise sd, relative to the truth's sd across random reads.
    pub cell_noise: f64,
    /// Per-read, per-experiment noise sd, relative likewise.
    pub sequence_noise: f64,
    /// Fraction of training reads seen in a single cell.
    pub singleton_fraction: f64,
    /// Mean number of cells per test sequence.
    pub test_cells: f64,
    /// Mean training value the bin edges are placed for (the real sample: 11.15).
    pub target_mean: f64,
    /// Spread of training values the bin edges are placed for (the real sample: 2.35).
    pub target_sd: f64,
}

impl Default for MeasureParams {
    fn default() -> Self {
        Self {
            cell_noise: 0.7,
            sequence_noise: 0.15,
            singleton_fraction: 0.37,
            test_cells: 100.0,
            target_mean: 11.15,
            target_sd: 2.35,
        }
    }
}

impl MeasureParams {
    /// Whether every value can work; the key and the problem if not.
    pub fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::within;
        within("[measure] cell_noise", self.cell_noise, 0.0, 100.0)?;
        within("[measure] sequence_noise", self.sequence_noise, 0.0, 100.0)?;
        within(
            "[measure] singleton_fraction",
            self.singleton_fraction,
            0.0,
            1.0,
        )?;
        within("[measure] test_cells", self.test_cells, 1.0, 1e7)?;
        within("[measure] target_mean", self.target_mean, 0.0, 17.0)?;
        within("[measure] target_sd", self.target_sd, 1e-3, 17.0)
    }
}

/// Test-scale value of a mean bin index.
pub fn test_scale(mean_bin: f64) -> f64 {
    (mean_bin - 7.5) / 5.5
}

fn phi(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// Calibrated bins and noise on the truth's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sorter {
    /// Parameters.
    pub params: MeasureParams,
    /// Lower edge of bin 1 on the log scale.
    pub first_edge: f64,
    /// Bin width on the log scale.
    pub bin_width: f64,
    /// Per-cell noise sd on the log scale.
    pub cell_sd: f64,
    /// Per-read noise sd on the log scale.
    pub sequence_sd: f64,
}

impl Sorter {
    /// Place the bins for truths `ys` of a random calibration library so that training values
    /// reach the target mean and spread (a few fixed-point steps on simulated measurements with
    /// a fixed seed, so the result depends only on the inputs).
    pub fn calibrate(params: MeasureParams, ys: &[f64]) -> Result<Self, String> {
        if !(0.0 < params.singleton_fraction && params.singleton_fraction <= 1.0) {
            return Err(format!(
                "singleton fraction must be in (0, 1], got {}",
                params.singleton_fraction
            ));
        }
        if params.cell_noise < 0.0 || params.sequence_noise < 0.0 || params.test_cells < 1.0 {
            return Err("noise sds must be ≥ 0 and test cells ≥ 1".into());
        }
        let n = ys.len() as f64;
        let mean = ys.iter().sum::<f64>() / n;
        let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
        if sd.is_nan() || sd <= 0.0 {
            return Err("the truth does not vary across the calibration library".into());
        }
        let cell_sd = params.cell_noise * sd;
        let sequence_sd = params.sequence_noise * sd;
        let total = (sd * sd + cell_sd * cell_sd + sequence_sd * sequence_sd).sqrt();
        let mut s = Self {
            first_edge: 0.0,
            bin_width: total / params.target_sd,
            cell_sd,
            sequence_sd,
            params,
        };
        s.first_edge = mean - (s.params.target_mean - 0.5) * s.bin_width;
        use rand::SeedableRng;
        for _ in 0..4 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
            let v: Vec<f64> = ys.iter().map(|&y| s.measure_train(y, &mut rng).0).collect();
            let m = v.iter().sum::<f64>() / n;
            let d = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
            let centre = s.first_edge + (s.params.target_mean - 0.5) * s.bin_width;
            s.bin_width *= d / s.params.target_sd;
            let shift = (m - s.params.target_mean) * s.bin_width;
            s.first_edge = centre - (s.params.target_mean - 0.5) * s.bin_width + shift;
        }
        Ok(s)
    }

    /// The sorter of the test experiment: same noise, but 18 bins spread over the test set's
    /// own range of truths `ys` (the test library was sorted with its own gates, so designed
    /// extremes are not all piled into the outer bins).
    pub fn for_test(&self, ys: &[f64]) -> Self {
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min) - 2.0 * self.cell_sd;
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 2.0 * self.cell_sd;
        let bin_width = ((hi - lo) / (BINS - 2) as f64).max(1e-9);
        Self {
            first_edge: lo + bin_width,
            bin_width,
            ..self.clone()
        }
    }

    /// The bin of a log fluorescence.
    pub fn bin(&self, v: f64) -> u32 {
        let k = ((v - self.first_edge) / self.bin_width).floor() + 1.0;
        k.clamp(0.0, (BINS - 1) as f64) as u32
    }

    fn cells_mean(&self, y: f64, cells: u64, rng: &mut impl Rng) -> f64 {
        let shared = Normal::new(0.0, self.sequence_sd.max(1e-300))
            .expect("finite sd")
            .sample(rng);
        let noise = Normal::new(0.0, self.cell_sd.max(1e-300)).expect("finite sd");
        let sum: u64 = (0..cells)
            .map(|_| u64::from(self.bin(y + shared + noise.sample(rng))))
            .sum();
        sum as f64 / cells as f64
    }

    /// A training measurement: (mean bin index, number of cells).
    pub fn measure_train(&self, y: f64, rng: &mut impl Rng) -> (f64, u64) {
        let extra = Geometric::new(self.params.singleton_fraction)
            .expect("probability checked")
            .sample(rng);
        let cells = 1 + extra.min(1000);
        (self.cells_mean(y, cells, rng), cells)
    }

    /// A test measurement on the test scale.
    pub fn measure_test(&self, y: f64, rng: &mut impl Rng) -> f64 {
        let cells = (Poisson::new(self.params.test_cells)
            .expect("positive mean")
            .sample(rng) as u64)
            .max(1);
        test_scale(self.cells_mean(y, cells, rng))
    }

    /// Expected mean bin index of a read with truth `y` over infinitely many cells (no
    /// per-read noise).
    pub fn expected_bin(&self, y: f64) -> f64 {
        (1..BINS)
            .map(|k| {
                let edge = self.first_edge + (k as f64 - 1.0) * self.bin_width;
                if self.cell_sd > 0.0 {
                    phi((y - edge) / self.cell_sd)
                } else if y >= edge {
                    1.0
                } else {
                    0.0
                }
            })
            .sum()
    }

    /// The noise-free truth on the test scale.
    pub fn expected_test(&self, y: f64) -> f64 {
        test_scale(self.expected_bin(y))
    }
}

/// Format a training value as the real file does: an integer without a decimal point.
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ys() -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = Normal::new(0.0, 1.0).unwrap();
        (0..20_000).map(|_| n.sample(&mut rng)).collect()
    }

    #[test]
    fn calibration_hits_targets_and_singletons_are_integers() {
        let s = Sorter::calibrate(MeasureParams::default(), &ys()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let v: Vec<(f64, u64)> = ys().iter().map(|&y| s.measure_train(y, &mut rng)).collect();
        let m = v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64;
        let d = (v.iter().map(|x| (x.0 - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!((m - 11.15).abs() < 0.1, "{m}");
        assert!((d - 2.35).abs() < 0.1, "{d}");
        let singles = v.iter().filter(|x| x.1 == 1).count() as f64 / v.len() as f64;
        let p = MeasureParams::default().singleton_fraction;
        assert!((singles - p).abs() < 0.02, "{singles}");
        assert!(v.iter().filter(|x| x.1 == 1).all(|x| x.0.fract() == 0.0));
        assert!(v.iter().all(|x| (0.0..=17.0).contains(&x.0)));
    }

    #[test]
    fn expected_bin_is_monotone_and_matches_many_cells() {
        let s = Sorter::calibrate(MeasureParams::default(), &ys()).unwrap();
        let a = s.expected_bin(-1.0);
        let b = s.expected_bin(1.0);
        assert!(a < b);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let no_shared = Sorter {
            sequence_sd: 0.0,
            ..s.clone()
        };
        let mean = no_shared.cells_mean(0.3, 200_000, &mut rng);
        assert!((mean - s.expected_bin(0.3)).abs() < 0.02);
        assert_eq!(format_value(12.0), "12");
        assert_eq!(format_value(12.5), "12.5");
    }
}
