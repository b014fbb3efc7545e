//! ATAC regions (SPEC_BENCHMARKS §5.2, §5.4, §5.7): windows around peak summits and
//! non-peak centres, cut once from the genome and the signal into a region file on disk,
//! then filtered, weighted and sampled per epoch with jitter and reverse complement.
//!
//! The region file holds, per region, [`SEQ_WIDTH`] base codes and [`COUNT_WIDTH`] counts
//! (f32), centred on the region: the largest window any use of it needs (training peaks are
//! jittered by up to ±[`MAX_JITTER`]). Batches read the records they need from it, so memory
//! holds a batch, not the data set.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::inputs::{ChromFolds, Peak, Signal, Split};
use super::model::{INPUT_LENGTH, PROFILE_LENGTH};
use crate::data::alphabet;
use crate::data::genome::Genome;
use crate::error::{Error, Problem, Result};

/// The largest jitter of a training peak's window, each way (ChromBPNet's `max_jitter`).
pub const MAX_JITTER: usize = 500;
/// Bases stored per region: the input plus the jitter each way (3,114).
pub const SEQ_WIDTH: usize = INPUT_LENGTH + 2 * MAX_JITTER;
/// Counts stored per region: the profile plus the jitter each way (2,000).
pub const COUNT_WIDTH: usize = PROFILE_LENGTH + 2 * MAX_JITTER;
const RECORD_BYTES: usize = SEQ_WIDTH + 4 * COUNT_WIDTH;

/// Peak or background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A called peak.
    Peak,
    /// A non-peak (background) region.
    Nonpeak,
}

/// One region of the region file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Chromosome.
    pub chrom: String,
    /// Window centre (0-based).
    pub centre: u64,
    /// Peak or non-peak.
    pub kind: Kind,
    /// The split its chromosome is in.
    pub split: Split,
    /// Line of its peak file.
    pub line: usize,
    /// Σ counts over the central [`PROFILE_LENGTH`] positions.
    pub total: f64,
}

/// What extraction left out, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// Regions whose window leaves its chromosome.
    pub off_chromosome: usize,
    /// Regions on chromosomes no fold lists.
    pub no_fold: usize,
}

/// The regions of a task, and their bases and counts on disk.
pub struct Regions {
    /// Every kept region, in file order (peaks, then non-peaks).
    pub index: Vec<Region>,
    /// What was left out.
    pub dropped: Dropped,
    file: File,
    path: PathBuf,
    sources: Sources,
}

/// The files a region set is cut from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sources {
    /// Reference FASTA (with its `.fai`).
    pub genome: PathBuf,
    /// Tn5-insertion bigWig.
    pub signal: PathBuf,
    /// Peaks (narrowPeak).
    pub peaks: PathBuf,
    /// Non-peaks (narrowPeak).
    pub nonpeaks: PathBuf,
    /// Chromosome folds (JSON).
    pub folds: PathBuf,
}

impl Regions {
    /// Cut every region of `sources` into `dir/regions.bin` (index `regions.json`), or open
    /// the ones there when they were cut from the same files (same sizes and modification
    /// times). Written to temporary names and renamed: a kill leaves either the old set or
    /// the new one.
    pub fn open_or_extract(sources: &Sources, dir: &Path) -> Result<Self> {
        let stamp = stamp(sources)?;
        let (bin, json) = (dir.join("regions.bin"), dir.join("regions.json"));
        if let Ok(text) = std::fs::read_to_string(&json)
            && let Ok(saved) = serde_json::from_str::<Saved>(&text)
            && saved.stamp == stamp
            && std::fs::metadata(&bin)
                .is_ok_and(|m| m.len() == (saved.index.len() * RECORD_BYTES) as u64)
        {
            let file = File::open(&bin).map_err(|e| Error::io(&bin, e))?;
            return Ok(Regions {
                index: saved.index,
                dropped: saved.dropped,
                file,
                path: bin,
                sources: sources.clone(),
            });
        }
        let folds = ChromFolds::read(&sources.folds)?;
        let mut genome = Genome::open(&sources.genome)?;
        let mut signal = Signal::open(&sources.signal)?;
        let tmp = crate::output::temporary_path(&bin);
        let mut out = BufWriter::new(File::create(&tmp).map_err(|e| Error::io(&tmp, e))?);
        let mut index = Vec::new();
        let mut dropped = Dropped::default();
        for (path, kind) in [
            (&sources.peaks, Kind::Peak),
            (&sources.nonpeaks, Kind::Nonpeak),
        ] {
            let peaks = super::inputs::read_peaks(path)?;
            for p in &peaks {
                let Some(r) = cut(
                    p,
                    kind,
                    path,
                    &folds,
                    &mut genome,
                    &mut signal,
                    &mut dropped,
                    &mut out,
                )?
                else {
                    continue;
                };
                index.push(r);
            }
        }
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        out.get_ref().sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(out);
        std::fs::rename(&tmp, &bin).map_err(|e| Error::io(&bin, e))?;
        let saved = Saved {
            stamp,
            index,
            dropped,
        };
        crate::output::write_atomic(
            &json,
            serde_json::to_string(&saved).expect("json").as_bytes(),
        )?;
        let file = File::open(&bin).map_err(|e| Error::io(&bin, e))?;
        Ok(Regions {
            index: saved.index,
            dropped: saved.dropped,
            file,
            path: bin,
            sources: sources.clone(),
        })
    }

    /// The files the regions were cut from.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The bases and counts of region `i`.
    pub fn read(&self, i: usize) -> Result<(Vec<u8>, Vec<f32>)> {
        let mut buf = vec![0u8; RECORD_BYTES];
        self.file
            .read_exact_at(&mut buf, (i * RECORD_BYTES) as u64)
            .map_err(|e| Error::io(&self.path, e))?;
        let counts = buf[SEQ_WIDTH..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        buf.truncate(SEQ_WIDTH);
        Ok((buf, counts))
    }

    /// Regions of `kind` in `split`.
    pub fn select(&self, kind: Kind, split: Split) -> Vec<usize> {
        (0..self.index.len())
            .filter(|&i| self.index[i].kind == kind && self.index[i].split == split)
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    stamp: Vec<(PathBuf, u64, u64)>,
    index: Vec<Region>,
    dropped: Dropped,
}

/// Each source's path, size and modification time (ns).
fn stamp(s: &Sources) -> Result<Vec<(PathBuf, u64, u64)>> {
    [&s.genome, &s.signal, &s.peaks, &s.nonpeaks, &s.folds]
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            Ok((p.clone(), m.len(), t))
        })
        .collect()
}

/// The length of `p`'s chromosome, once the genome holds it, the peak lies on it and the
/// signal (when given) holds it at the same length; errors name `path` and the peak's line.
pub(crate) fn checked_length(
    p: &Peak,
    path: &Path,
    genome: &Genome,
    signal: Option<&Signal>,
) -> Result<u64> {
    let bad = |msg: String| Error::data(path, p.line, Problem::Other(msg));
    let len = genome.length(&p.chrom).ok_or_else(|| {
        bad(format!(
            "chromosome {:?} is not in the genome {} (it has {})",
            p.chrom,
            genome.path().display(),
            crate::data::genome::preview(genome.names())
        ))
    })?;
    if p.end > len {
        return Err(bad(format!(
            "the region {}:{}-{} runs past the chromosome's end ({len} nt in {})",
            p.chrom,
            p.start,
            p.end,
            genome.path().display()
        )));
    }
    if let Some(signal) = signal {
        match signal.length(&p.chrom) {
            None => {
                return Err(bad(format!(
                    "chromosome {:?} is not in the signal {}",
                    p.chrom,
                    signal.path().display()
                )));
            }
            Some(l) if l != len => {
                return Err(bad(format!(
                    "chromosome {:?} has {len} nt in the genome and {l} in the signal {}: \
                     they are not of the same assembly",
                    p.chrom,
                    signal.path().display()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(len)
}

/// Cut one region into `out`; `None` where it is left out (counted in `dropped`).
#[allow(clippy::too_many_arguments)]
fn cut(
    p: &Peak,
    kind: Kind,
    path: &Path,
    folds: &ChromFolds,
    genome: &mut Genome,
    signal: &mut Signal,
    dropped: &mut Dropped,
    out: &mut impl Write,
) -> Result<Option<Region>> {
    let bad = |msg: String| Error::data(path, p.line, Problem::Other(msg));
    let len = checked_length(p, path, genome, Some(signal))?;
    let Some(split) = folds.split(&p.chrom) else {
        dropped.no_fold += 1;
        return Ok(None);
    };
    // Training peaks are jittered and need the wide window; others the model's input.
    let need = if kind == Kind::Peak && split == Split::Train {
        SEQ_WIDTH
    } else {
        INPUT_LENGTH
    } as u64;
    let c = p.centre;
    if c < need / 2 || c + need.div_ceil(2) > len {
        dropped.off_chromosome += 1;
        return Ok(None);
    }
    // The stored window, clipped to the chromosome; the rest is N and zero counts.
    let (lo, hi) = (
        c as i64 - (SEQ_WIDTH / 2) as i64,
        c + SEQ_WIDTH.div_ceil(2) as u64,
    );
    let (a, b) = (lo.max(0) as u64, hi.min(len));
    let mut seq = vec![alphabet::N; SEQ_WIDTH];
    let got = genome.fetch(&p.chrom, a, b)?;
    let off = (a as i64 - lo) as usize;
    seq[off..off + got.len()].copy_from_slice(&got);
    let (clo, chi) = (
        c as i64 - (COUNT_WIDTH / 2) as i64,
        c + COUNT_WIDTH.div_ceil(2) as u64,
    );
    let (ca, cb) = (clo.max(0) as u64, chi.min(len));
    let mut counts = vec![0f32; COUNT_WIDTH];
    let got = signal.values(&p.chrom, ca, cb)?;
    let off = (ca as i64 - clo) as usize;
    counts[off..off + got.len()].copy_from_slice(&got);
    if let Some(v) = counts.iter().find(|v| **v < 0.0) {
        return Err(bad(format!(
            "the signal {} holds a negative count ({v}) in this region; it should hold Tn5 \
             insertion counts",
            signal.path().display()
        )));
    }
    let total = counts[MAX_JITTER..MAX_JITTER + PROFILE_LENGTH]
        .iter()
        .map(|&v| v as f64)
        .sum();
    out.write_all(&seq)
        .and_then(|_| {
            let bytes: Vec<u8> = counts.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.write_all(&bytes)
        })
        .map_err(|e| Error::Other(format!("cannot write the region file: {e}")))?;
    Ok(Some(Region {
        chrom: p.chrom.clone(),
        centre: c,
        kind,
        split,
        line: p.line,
        total,
    }))
}

/// numpy's default (linear) quantile of `values` (`q` in 0–1).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < v.len() {
        v[i] + f * (v[i + 1] - v[i])
    } else {
        v[i]
    }
}

/// ChromBPNet's counts loss weight: the median total ÷ 10, rounded to 2 decimals, at least 1.
pub fn counts_loss_weight(totals: &[f64]) -> f64 {
    let w = (quantile(totals, 0.5) / 10.0 * 100.0).round() / 100.0;
    if w.is_finite() { w.max(1.0) } else { 1.0 }
}

/// The regions a model trains and validates on, and its counts weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Training peaks (jittered each epoch).
    pub train_peaks: Vec<usize>,
    /// The pool of training non-peaks an epoch draws from.
    pub train_nonpeaks: Vec<usize>,
    /// Non-peaks per epoch (all of the pool where `None`).
    pub nonpeaks_per_epoch: Option<usize>,
    /// Validation regions (fixed).
    pub valid: Vec<usize>,
    /// The outlier thresholds on total counts (kept strictly between).
    pub thresholds: (f64, f64),
    /// The counts loss weight.
    pub counts_weight: f64,
}

/// The outlier thresholds over `totals`: the 0.0001 and 0.9999 quantiles.
fn thresholds(totals: &[f64]) -> (f64, f64) {
    (quantile(totals, 0.0001), quantile(totals, 0.9999))
}

/// The accessibility model's regions (§5.2, §5.7): train/valid peaks and non-peaks strictly
/// inside the outlier thresholds (computed over the peaks plus 0.1 × n_peaks sampled
/// non-peaks), training non-peaks capped at n_peaks, 0.1 × n_peaks of them per epoch, the
/// validation peaks plus a fixed sample of 0.1 × n_peaks validation non-peaks.
pub fn accessibility_plan(r: &Regions, seed: u64) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let peaks: Vec<usize> = [Split::Train, Split::Valid]
        .into_iter()
        .flat_map(|s| r.select(Kind::Peak, s))
        .collect();
    let mut nonpeaks: Vec<usize> = [Split::Train, Split::Valid]
        .into_iter()
        .flat_map(|s| r.select(Kind::Nonpeak, s))
        .collect();
    nonpeaks.shuffle(&mut rng);
    let tenth = peaks.len().div_ceil(10).max(1);
    let mut pool: Vec<f64> = peaks.iter().map(|&i| r.index[i].total).collect();
    pool.extend(nonpeaks.iter().take(tenth).map(|&i| r.index[i].total));
    let (lo, hi) = thresholds(&pool);
    let inside = |i: &usize| r.index[*i].total > lo && r.index[*i].total < hi;
    let kept: Vec<f64> = pool
        .iter()
        .copied()
        .filter(|t| *t > lo && *t < hi)
        .collect();
    let keep =
        |kind, split| -> Vec<usize> { r.select(kind, split).into_iter().filter(inside).collect() };
    let train_peaks = keep(Kind::Peak, Split::Train);
    let mut train_nonpeaks = keep(Kind::Nonpeak, Split::Train);
    train_nonpeaks.shuffle(&mut rng);
    train_nonpeaks.truncate(train_peaks.len().max(1));
    train_nonpeaks.sort_unstable();
    let valid_peaks = keep(Kind::Peak, Split::Valid);
    let mut valid_nonpeaks = keep(Kind::Nonpeak, Split::Valid);
    valid_nonpeaks.shuffle(&mut rng);
    valid_nonpeaks.truncate(valid_peaks.len().div_ceil(10).max(1));
    let mut valid = valid_peaks;
    valid.extend(valid_nonpeaks);
    valid.sort_unstable();
    Plan {
        nonpeaks_per_epoch: Some(train_peaks.len().div_ceil(10).max(1)),
        train_peaks,
        train_nonpeaks,
        valid,
        thresholds: (lo, hi),
        counts_weight: counts_loss_weight(&kept),
    }
}

/// The bias model's regions (§5.4): train/valid non-peaks whose totals are below `fraction`
/// (0.5 for ATAC) × the 1% quantile of the peaks' totals, then outlier-filtered; no jitter;
/// its own counts weight.
pub fn bias_plan(r: &Regions, fraction: f64) -> Plan {
    let peaks: Vec<f64> = [Split::Train, Split::Valid]
        .into_iter()
        .flat_map(|s| r.select(Kind::Peak, s))
        .map(|i| r.index[i].total)
        .collect();
    let cap = fraction * quantile(&peaks, 0.01);
    let low = |split| -> Vec<usize> {
        r.select(Kind::Nonpeak, split)
            .into_iter()
            .filter(|&i| r.index[i].total < cap)
            .collect()
    };
    let (train, valid) = (low(Split::Train), low(Split::Valid));
    let pool: Vec<f64> = train
        .iter()
        .chain(&valid)
        .map(|&i| r.index[i].total)
        .collect();
    let (lo, hi) = thresholds(&pool);
    let inside = |v: Vec<usize>| -> Vec<usize> {
        v.into_iter()
            .filter(|&i| r.index[i].total > lo && r.index[i].total < hi)
            .collect()
    };
    let kept: Vec<f64> = pool
        .iter()
        .copied()
        .filter(|t| *t > lo && *t < hi)
        .collect();
    Plan {
        train_peaks: Vec::new(),
        train_nonpeaks: inside(train),
        nonpeaks_per_epoch: None,
        valid: inside(valid),
        thresholds: (lo, hi),
        counts_weight: counts_loss_weight(&kept),
    }
}

/// One example of an epoch: a region, its window's offset in the stored one (`MAX_JITTER`
/// is centred) and whether it is reverse-complemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Region index.
    pub region: usize,
    /// Offset of the window in the stored one, 0..=2·MAX_JITTER.
    pub offset: usize,
    /// Reverse complement.
    pub rc: bool,
}

impl Item {
    /// A region's centred window, as it is.
    pub fn plain(region: usize) -> Self {
        Item {
            region,
            offset: MAX_JITTER,
            rc: false,
        }
    }
}

/// The examples of training epoch `epoch` (0-based), shuffled: every training peak with a
/// fresh jitter, non-peaks drawn without replacement, half of all reverse-complemented
/// (each example by a fair coin). Depends only on `(seed, epoch)`.
pub fn epoch_items(plan: &Plan, seed: u64, epoch: usize, jitter: bool) -> Vec<Item> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0xA7AC_0000 + epoch as u64));
    let mut items: Vec<Item> = plan
        .train_peaks
        .iter()
        .map(|&region| Item {
            region,
            offset: if jitter {
                rng.random_range(0..=2 * MAX_JITTER)
            } else {
                MAX_JITTER
            },
            rc: false,
        })
        .collect();
    let mut pool = plan.train_nonpeaks.clone();
    pool.shuffle(&mut rng);
    if let Some(n) = plan.nonpeaks_per_epoch {
        pool.truncate(n);
    }
    items.extend(pool.into_iter().map(Item::plain));
    items.shuffle(&mut rng);
    for it in &mut items {
        it.rc = rng.random_bool(0.5);
    }
    items
}

/// A batch: one-hot `(n, 4, INPUT_LENGTH)` in A, C, G, T order (other bases all zero) and
/// counts `(n, PROFILE_LENGTH)`.
pub struct Batch {
    /// One-hot inputs, row-major.
    pub x: Vec<f32>,
    /// Per-base counts, row-major.
    pub counts: Vec<f32>,
    /// Examples.
    pub n: usize,
}

/// Read and encode `items`.
pub fn batch(r: &Regions, items: &[Item]) -> Result<Batch> {
    let (l, p) = (INPUT_LENGTH, PROFILE_LENGTH);
    let mut x = vec![0f32; items.len() * 4 * l];
    let mut counts = vec![0f32; items.len() * p];
    for (k, it) in items.iter().enumerate() {
        let (seq, c) = r.read(it.region)?;
        let seq = &seq[it.offset..it.offset + l];
        let c = &c[it.offset..it.offset + p];
        let plane = &mut x[k * 4 * l..(k + 1) * 4 * l];
        encode_window(seq, it.rc, plane);
        let row = &mut counts[k * p..(k + 1) * p];
        if it.rc {
            for (j, v) in c.iter().rev().enumerate() {
                row[j] = *v;
            }
        } else {
            row.copy_from_slice(c);
        }
    }
    Ok(Batch {
        x,
        counts,
        n: items.len(),
    })
}

/// One-hot `codes` into `plane` (`4 × len`, A, C, G, T), reverse-complemented if `rc`.
pub fn encode_window(codes: &[u8], rc: bool, plane: &mut [f32]) {
    let l = codes.len();
    for (j, &code) in codes.iter().enumerate() {
        if code >= 4 {
            continue;
        }
        let (pos, code) = if rc {
            (l - 1 - j, alphabet::complement(code))
        } else {
            (j, code)
        };
        let ch = crate::data::BaseOrder::Acgt.channel(code);
        plane[ch * l + pos] = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_weight_follow_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert!((quantile(&v, 0.9999) - 3.9997).abs() < 1e-12);
        assert_eq!(counts_loss_weight(&[5.0, 7.0]), 1.0);
        assert_eq!(counts_loss_weight(&[100.0, 240.0, 300.0]), 24.0);
        assert_eq!(counts_loss_weight(&[123.456]), 12.35);
    }

    #[test]
    fn reverse_complement_flips_both_axes() {
        let codes = alphabet::encode(b"ACGTN").unwrap();
        let mut f = vec![0f32; 20];
        let mut r = vec![0f32; 20];
        encode_window(&codes, false, &mut f);
        encode_window(&codes, true, &mut r);
        // In A, C, G, T order the reverse complement is the plane flipped on both axes.
        for ch in 0..4 {
            for j in 0..5 {
                assert_eq!(r[ch * 5 + j], f[(3 - ch) * 5 + (4 - j)]);
            }
        }
        assert_eq!(&f[0..5], &[1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(f[4] + f[9] + f[14] + f[19], 0.0, "N is all zeros");
    }

    #[test]
    fn epochs_jitter_and_turn_half_repeatably() {
        let plan = Plan {
            train_peaks: (0..400).collect(),
            train_nonpeaks: (400..1000).collect(),
            nonpeaks_per_epoch: Some(40),
            valid: vec![],
            thresholds: (0.0, 1.0),
            counts_weight: 1.0,
        };
        let a = epoch_items(&plan, 7, 0, true);
        assert_eq!(a, epoch_items(&plan, 7, 0, true));
        assert_ne!(a, epoch_items(&plan, 7, 1, true));
        assert_eq!(a.len(), 440);
        let rc = a.iter().filter(|i| i.rc).count();
        assert!((180..260).contains(&rc), "{rc}");
        assert!(
            a.iter()
                .filter(|i| i.region >= 400)
                .all(|i| i.offset == MAX_JITTER)
        );
        let offsets: std::collections::HashSet<usize> = a
            .iter()
            .filter(|i| i.region < 400)
            .map(|i| i.offset)
            .collect();
        assert!(offsets.len() > 200);
    }
}
