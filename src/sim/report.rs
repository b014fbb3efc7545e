//! `prixfixe simulate --report`: is the simulation calibrated, and does it leave room to compare
//! models?
//!
//! - Training values side by side with the real sample (singleton fraction, mean, spread,
//!   percentiles, histogram).
//! - The DREAM score of the noise-free truth against the measured test values: the replicate
//!   ceiling no model can beat on average.
//! - The score of proxy model A (the one the GA designs exploited).
//! - The score of a k-mer ridge regression (k = 1…4 counts) trained on the training file: a
//!   simple baseline that must stay clearly below the ceiling.

use std::fmt::Write as _;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::truth::TruthModel;
use super::{SimSummary, write_atomic};
use crate::data::YEAST_SAMPLE;
use crate::data::formats::sequence_codes;
use crate::data::io::{Lines, is_blank};
use crate::error::{Error, Problem, Result};
use crate::eval::report::{ModelScore, ScoreReport, load_test_set, subset_files};
use crate::eval::score::dream_score;

/// Distribution of training values.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueStats {
    /// Rows.
    pub rows: usize,
    /// Fraction of integer values (singletons).
    pub singleton_fraction: f64,
    /// Mean value.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// 1st, 5th, 25th, 50th, 75th, 95th, 99th percentiles.
    pub percentiles: [f64; 7],
    /// Fraction of rows with value in `[k, k+1)` for k = 0..17 (17 includes 17).
    pub histogram: [f64; 18],
    /// Fraction of reads 110 nt long.
    pub reads_110: f64,
}

/// Accumulates [`ValueStats`] in bounded memory (values binned to 0.01).
#[derive(Debug, Clone)]
struct Acc {
    n: usize,
    singles: usize,
    sum: f64,
    sum2: f64,
    fine: Vec<u64>,
    len110: usize,
}

impl Acc {
    fn new() -> Self {
        Self {
            n: 0,
            singles: 0,
            sum: 0.0,
            sum2: 0.0,
            fine: vec![0; 1701],
            len110: 0,
        }
    }

    fn push(&mut self, len: usize, v: f64) {
        self.n += 1;
        self.singles += usize::from(v.fract() == 0.0);
        self.sum += v;
        self.sum2 += v * v;
        self.fine[((v * 100.0).round().clamp(0.0, 1700.0)) as usize] += 1;
        self.len110 += usize::from(len == 110);
    }

    fn stats(&self) -> ValueStats {
        let n = self.n.max(1) as f64;
        let mean = self.sum / n;
        let pct = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99].map(|q| {
            let target = (q * n).ceil() as u64;
            let mut acc = 0;
            for (i, c) in self.fine.iter().enumerate() {
                acc += c;
                if acc >= target.max(1) {
                    return i as f64 / 100.0;
                }
            }
            17.0
        });
        let mut histogram = [0.0; 18];
        for (i, c) in self.fine.iter().enumerate() {
            histogram[(i / 100).min(17)] += *c as f64 / n;
        }
        ValueStats {
            rows: self.n,
            singleton_fraction: self.singles as f64 / n,
            mean,
            sd: (self.sum2 / n - mean * mean).max(0.0).sqrt(),
            percentiles: pct,
            histogram,
            reads_110: self.len110 as f64 / n,
        }
    }
}

fn parse_row(line: &[u8]) -> Option<(&[u8], f64)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut cols = text.trim_end().split('\t');
    let seq = cols.next()?;
    let v = cols.next()?.trim().parse().ok()?;
    Some((seq.as_bytes(), v))
}

/// Value statistics of the bundled real sample.
pub fn sample_stats() -> ValueStats {
    let mut acc = Acc::new();
    for line in YEAST_SAMPLE.lines() {
        if let Some((seq, v)) = parse_row(line.as_bytes()) {
            acc.push(seq.len(), v);
        }
    }
    acc.stats()
}

/// Stream the `sequence<TAB>value` rows of a DREAM training file to `f` (line, sequence,
/// value) until it returns `false`; a row that is not one is an error naming its line.
fn for_each_row(path: &Path, mut f: impl FnMut(usize, &[u8], f64) -> Result<bool>) -> Result<()> {
    let mut lines = Lines::open(path)?;
    while let Some((n, l)) = lines.next_line()? {
        if is_blank(l) {
            continue;
        }
        let (seq, v) = parse_row(l).ok_or_else(|| {
            Error::data(
                path,
                n,
                Problem::Other("expected `sequence<TAB>value`".into()),
            )
        })?;
        if !f(n, seq, v)? {
            break;
        }
    }
    Ok(())
}

/// Value statistics of a DREAM training file, streamed.
pub fn file_stats(path: &Path) -> Result<ValueStats> {
    let mut acc = Acc::new();
    for_each_row(path, |_, seq, v| {
        acc.push(seq.len(), v);
        Ok(true)
    })?;
    Ok(acc.stats())
}

/// Number of k-mer features for k = 1…4, plus the intercept.
const FEATURES: usize = 4 + 16 + 64 + 256 + 1;

fn kmer_features(codes: &[u8], out: &mut [f64; FEATURES]) {
    out.fill(0.0);
    out[FEATURES - 1] = 1.0;
    let mut offset = 0;
    for k in 1..=4usize {
        for w in codes.windows(k) {
            if w.iter().all(|&b| b < 4) {
                let idx = w.iter().fold(0usize, |a, &b| a * 4 + usize::from(b));
                out[offset + idx] += 1.0;
            }
        }
        offset += 4usize.pow(k as u32);
    }
}

/// Ridge regression on k-mer counts (k = 1…4) of the read.
#[derive(Debug, Clone)]
pub struct KmerRidge {
    coef: Vec<f64>,
}

fn cholesky_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    Some(b)
}

impl KmerRidge {
    /// Fit on (read, value) pairs with penalty `lambda` (the intercept is not penalised).
    pub fn fit(rows: &[(Vec<u8>, f64)], lambda: f64) -> Option<Self> {
        let n = FEATURES;
        let (xtx, xty) = rows
            .par_chunks(4096)
            .map(|chunk| {
                let mut xtx = vec![0.0; n * n];
                let mut xty = vec![0.0; n];
                let mut f = [0.0; FEATURES];
                for (seq, y) in chunk {
                    kmer_features(seq, &mut f);
                    let nz: Vec<usize> = (0..n).filter(|&i| f[i] != 0.0).collect();
                    for &i in &nz {
                        xty[i] += f[i] * y;
                        for &j in &nz {
                            xtx[i * n + j] += f[i] * f[j];
                        }
                    }
                }
                (xtx, xty)
            })
            .reduce(
                || (vec![0.0; n * n], vec![0.0; n]),
                |(mut a, mut b), (c, d)| {
                    a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
                    b.iter_mut().zip(d).for_each(|(x, y)| *x += y);
                    (a, b)
                },
            );
        let mut a = xtx;
        for i in 0..n - 1 {
            a[i * n + i] += lambda;
        }
        cholesky_solve(a, xty, n).map(|coef| Self { coef })
    }

    /// Predict one read.
    pub fn predict(&self, seq: &[u8]) -> f64 {
        let mut f = [0.0; FEATURES];
        kmer_features(seq, &mut f);
        f.iter().zip(&self.coef).map(|(a, b)| a * b).sum()
    }
}

/// The calibration report.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The real sample's training values.
    pub real_sample: ValueStats,
    /// The simulated training values.
    pub simulated: ValueStats,
    /// Training rows the baseline was fitted on.
    pub baseline_rows: usize,
    /// DREAM scores: truth (ceiling), proxy A, k-mer ridge.
    pub scores: ScoreReport,
}

fn read_train_rows(path: &Path, max: usize) -> Result<Vec<(Vec<u8>, f64)>> {
    let mut out = Vec::new();
    for_each_row(path, |n, seq, v| {
        if out.len() >= max {
            return Ok(false);
        }
        out.push((sequence_codes(path, n, seq)?, v));
        Ok(true)
    })?;
    Ok(out)
}

/// Compute the report for a finished simulation in `dir`; writes `report.json`.
pub fn calibrate(dir: &Path, summary: &SimSummary, baseline_rows: usize) -> Result<Calibration> {
    let simulated = file_stats(&summary.train)?;
    let test = load_test_set(
        &summary.test,
        &subset_files(&dir.join("test_subsets"))?,
        None,
    )?;
    let seqs: Vec<Vec<u8>> = (0..test.data.len())
        .map(|i| test.data.seqs.get(i).to_vec())
        .collect();

    let truth_pred =
        crate::eval::predictions::read_predictions(&dir.join("test_truth.tsv"), seqs.len())?;
    let truth = TruthModel::new(summary.config.truth.clone()).map_err(Error::Config)?;
    let proxy = truth.perturbed(
        summary.config.seed ^ 0xa,
        summary.config.test.proxy_strength,
    );
    let proxy_pred: Vec<f64> = seqs.par_iter().map(|s| proxy.truth(s)).collect();
    let rows = read_train_rows(&summary.train, baseline_rows)?;
    let ridge = KmerRidge::fit(&rows, 1.0)
        .ok_or_else(|| Error::Config("k-mer ridge: the normal equations are singular".into()))?;
    let ridge_pred: Vec<f64> = seqs.par_iter().map(|s| ridge.predict(s)).collect();

    let score = |label: &str, p: &[f64]| ModelScore {
        model: label.into(),
        score: dream_score(&test.subsets, p, &test.measured),
    };
    let report = Calibration {
        real_sample: sample_stats(),
        simulated,
        baseline_rows: rows.len(),
        scores: ScoreReport {
            test_rows: test.data.len(),
            excluded: 0,
            models: vec![
                score("truth (replicate ceiling)", &truth_pred),
                score("proxy model A (drove the GA)", &proxy_pred),
                score(
                    &format!("k-mer ridge (k=1..4, {} rows)", rows.len()),
                    &ridge_pred,
                ),
            ],
            bootstrap: None,
            predictions: vec![truth_pred.clone(), proxy_pred.clone(), ridge_pred.clone()],
        },
    };
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    write_atomic(&dir.join("report.json"), json.as_bytes())?;
    Ok(report)
}

impl Calibration {
    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let (r, m) = (&self.real_sample, &self.simulated);
        let _ = writeln!(s, "training values          real sample   simulated");
        let _ = writeln!(s, "  rows                   {:>11}   {:>9}", r.rows, m.rows);
        let row = |s: &mut String, name: &str, a: f64, b: f64| {
            let _ = writeln!(s, "  {name:<22} {a:>11.3}   {b:>9.3}");
        };
        row(
            &mut s,
            "singleton fraction",
            r.singleton_fraction,
            m.singleton_fraction,
        );
        row(&mut s, "mean", r.mean, m.mean);
        row(&mut s, "sd", r.sd, m.sd);
        row(&mut s, "reads of 110 nt", r.reads_110, m.reads_110);
        for (i, q) in ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
            .iter()
            .enumerate()
        {
            row(&mut s, q, r.percentiles[i], m.percentiles[i]);
        }
        let _ = writeln!(s, "  histogram [k, k+1):");
        for k in 0..18 {
            let _ = writeln!(
                s,
                "    {k:>2}  {:>6.3}  {:>6.3}  {}",
                r.histogram[k],
                m.histogram[k],
                "#".repeat((m.histogram[k] * 100.0).round() as usize)
            );
        }
        let _ = writeln!(s, "\nDREAM score on the simulated test set");
        s.push_str(&self.scores.table());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_kmer_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let rows: Vec<(Vec<u8>, f64)> = (0..3000)
            .map(|_| {
                let s: Vec<u8> = (0..50).map(|_| rng.random_range(0..4u8)).collect();
                let mut f = [0.0; FEATURES];
                kmer_features(&s, &mut f);
                // A = code 0 count, "AG" dimer index 4 + 1
                let y = 0.5 * f[0] - 0.3 * f[5] + 2.0;
                (s, y)
            })
            .collect();
        let m = KmerRidge::fit(&rows, 1e-6).unwrap();
        for (s, y) in rows.iter().take(20) {
            assert!((m.predict(s) - y).abs() < 1e-3, "{} {y}", m.predict(s));
        }
    }

    #[test]
    fn bad_training_rows_name_file_and_line() {
        use crate::data::formats::test_util::file;
        let (_d, p) = file("t.txt", "ACGT\t3\n\nACGT\n");
        let e = file_stats(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.txt:3:") && e.contains("sequence<TAB>value"),
            "{e}"
        );
        let (_d, p) = file("t.txt", "ACGT\t3\nACXT\t2.5\n");
        let e = read_train_rows(&p, 10).unwrap_err().to_string();
        assert!(e.contains("t.txt:2:") && e.contains('X'), "{e}");
        assert_eq!(read_train_rows(&p, 1).unwrap().len(), 1, "stops at max");
        assert_eq!(file_stats(&p).unwrap().rows, 2);
    }

    #[test]
    fn sample_stats_match_the_sample() {
        let s = sample_stats();
        assert_eq!(s.rows, 6370);
        assert!((s.singleton_fraction - 3693.0 / 6370.0).abs() < 1e-9);
        assert!((s.mean - 11.1479).abs() < 1e-3);
        assert!((s.histogram.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}
