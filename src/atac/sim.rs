//! A synthetic genome with known accessibility (issue: the real K562 data cannot ship):
//! random chromosomes with motif clusters planted at peak sites, an accessibility landscape
//! made of the motifs' footprints, a known Tn5 sequence bias, and Poisson insertion counts.
//! Written as the files a ChromBPNet user has: `genome.fa` + `.fai`, `signal.bw`,
//! `peaks.narrowPeak`, `nonpeaks.narrowPeak`, `folds.json`; plus `truth.tsv` (every region's
//! expected counts) and `simulation.json` (the parameters and the truth's own scores, the
//! ceiling a model can reach).
//!
//! The model of an insertion at position `i`: rate `r_i = background · (1 + A_i) · b_i`,
//! with `A_i` the sum of Gaussian footprints (sd `footprint_sd`) of the motif instances near
//! `i`, each scaled by its motif's strength, and `b_i = exp(Σ_k w[k][base(i + k − 3)])` the
//! Tn5 bias of the 7-mer around `i` (a PWM, mean-centred per position). Counts are
//! Poisson(`r_i`). Memory holds one chromosome at a time.

use std::io::Write;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use super::inputs::{ChromFolds, write_bigwig};
use super::model::PROFILE_LENGTH;
use crate::data::alphabet;
use crate::error::{Error, Result};
use crate::output::AtomicFile;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtacSim {
    /// Chromosomes (`chr1`, `chr2`, …).
    pub chromosomes: usize,
    /// Length of each.
    pub chromosome_length: u64,
    /// Peaks per chromosome.
    pub peaks_per_chromosome: usize,
    /// Non-peaks per chromosome.
    pub nonpeaks_per_chromosome: usize,
    /// Insertions per base away from any footprint (before the bias).
    pub background: f64,
    /// Sd of a motif's footprint, in bases.
    pub footprint_sd: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for AtacSim {
    fn default() -> Self {
        AtacSim {
            chromosomes: 6,
            chromosome_length: 400_000,
            peaks_per_chromosome: 60,
            nonpeaks_per_chromosome: 60,
            background: 0.03,
            footprint_sd: 40.0,
            seed: 42,
        }
    }
}

/// The motifs (consensus, strength) planted at peaks.
const MOTIFS: [(&str, f64); 4] = [
    ("TGACTCA", 120.0),   // AP-1
    ("CCGCGGGAGG", 80.0), // a CTCF-like core
    ("AGATAAG", 60.0),    // GATA
    ("CACGTG", 40.0),     // E-box
];

/// The Tn5 bias: log-weights of A, C, G, T at each of 7 positions around the insertion,
/// mean-centred per position (a palindromic-ish G/C preference at the cut site).
pub const TN5_BIAS: [[f64; 4]; 7] = [
    [0.1, -0.2, 0.3, -0.2],
    [-0.3, 0.2, 0.4, -0.3],
    [0.2, 0.3, -0.2, -0.3],
    [-0.6, 0.6, 0.6, -0.6],
    [-0.3, -0.2, 0.3, 0.2],
    [-0.3, 0.4, 0.2, -0.3],
    [-0.2, 0.3, -0.2, 0.1],
];

/// What the simulation wrote and the truth's own scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AtacSimReport {
    /// The parameters.
    pub params: AtacSim,
    /// The Tn5 bias PWM (log-weights, A C G T per position).
    pub tn5_bias: Vec<[f64; 4]>,
    /// The motifs and their strengths.
    pub motifs: Vec<(String, f64)>,
    /// Regions written.
    pub peaks: usize,
    /// Non-peaks written.
    pub nonpeaks: usize,
    /// The folds.
    pub folds: ChromFolds,
}

fn chrom_name(i: usize) -> String {
    format!("chr{}", i + 1)
}

/// One chromosome: bases (codes), peak centres and the expected insertion rate per base.
struct Chrom {
    bases: Vec<u8>,
    peaks: Vec<u64>,
    rate: Vec<f64>,
}

fn simulate_chrom(p: &AtacSim, c: usize) -> Chrom {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ (0x5EED_0000 + c as u64));
    let n = p.chromosome_length as usize;
    // A, G, C, T codes at 42% GC.
    let mut bases: Vec<u8> = (0..n)
        .map(|_| {
            let u: f64 = rng.random();
            match u {
                u if u < 0.29 => alphabet::A,
                u if u < 0.50 => alphabet::G,
                u if u < 0.71 => alphabet::C,
                _ => alphabet::T,
            }
        })
        .collect();
    let margin = 3_000u64;
    let mut peaks: Vec<u64> = Vec::new();
    let mut footprint = vec![0f64; n];
    let sd = p.footprint_sd;
    let reach = (4.0 * sd) as i64;
    while peaks.len() < p.peaks_per_chromosome {
        let centre = rng.random_range(margin..p.chromosome_length - margin);
        if peaks.iter().any(|&q| q.abs_diff(centre) < PEAK_SPACING) {
            continue;
        }
        // 2–5 motif instances within ±150 nt of the centre, either strand.
        let k = rng.random_range(2..=5);
        for _ in 0..k {
            let (motif, strength) = MOTIFS[rng.random_range(0..MOTIFS.len())];
            let mut codes = alphabet::encode(motif.as_bytes()).expect("motif");
            if rng.random_bool(0.5) {
                codes = alphabet::reverse_complement(&codes);
            }
            let at = (centre as i64 + rng.random_range(-150..=150)) as usize;
            bases[at..at + codes.len()].copy_from_slice(&codes);
            let mid = at as i64 + codes.len() as i64 / 2;
            let s = strength * rng.random_range(0.5..1.5);
            for i in (mid - reach).max(0)..(mid + reach).min(n as i64) {
                let d = (i - mid) as f64 / sd;
                footprint[i as usize] += s * (-0.5 * d * d).exp();
            }
        }
        peaks.push(centre);
    }
    peaks.sort_unstable();
    let rate = (0..n)
        .map(|i| p.background * (1.0 + footprint[i]) * tn5_bias_at(&bases, i))
        .collect();
    Chrom { bases, peaks, rate }
}

/// `exp(Σ_k w[k][base(i + k − 3)])`, positions off the chromosome contributing 0.
pub fn tn5_bias_at(codes: &[u8], i: usize) -> f64 {
    let mut s = 0.0;
    for (k, w) in TN5_BIAS.iter().enumerate() {
        let j = i as i64 + k as i64 - 3;
        if j < 0 || j as usize >= codes.len() || codes[j as usize] >= 4 {
            continue;
        }
        s += w[crate::data::BaseOrder::Acgt.channel(codes[j as usize])];
    }
    s.exp()
}

/// The least distance between two peaks, and between a non-peak and a peak.
const PEAK_SPACING: u64 = 2_500;
const NONPEAK_SPACING: u64 = 1_500;

/// Write the simulation into `dir`.
pub fn simulate(p: &AtacSim, dir: &Path) -> Result<AtacSimReport> {
    // Random placement with spacing fills at most about half of the room there is; refuse
    // more rather than search forever.
    let room = p.chromosome_length.saturating_sub(6_000);
    let most = (room / PEAK_SPACING / 2) as usize;
    if p.peaks_per_chromosome > most
        || p.nonpeaks_per_chromosome > (room / NONPEAK_SPACING / 4) as usize
    {
        return Err(Error::Config(format!(
            "{} peaks and {} non-peaks do not fit on a {}-nt chromosome with peaks {PEAK_SPACING} nt \
             apart (at most {most} peaks); use longer chromosomes or fewer peaks",
            p.peaks_per_chromosome, p.nonpeaks_per_chromosome, p.chromosome_length
        )));
    }
    if p.chromosomes < 3 {
        return Err(Error::Config(
            "simulate atac needs at least 3 chromosomes (test, validation, training)".into(),
        ));
    }
    if p.chromosome_length < 20_000 {
        return Err(Error::Config(
            "simulate atac needs chromosomes of at least 20,000 nt".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut fasta = AtomicFile::create(&dir.join("genome.fa"))?;
    let mut peaks_out = AtomicFile::create(&dir.join("peaks.narrowPeak"))?;
    let mut nonpeaks_out = AtomicFile::create(&dir.join("nonpeaks.narrowPeak"))?;
    let mut truth = AtomicFile::create(&dir.join("truth.tsv"))?;
    truth.put(b"chrom\tcentre\tkind\texpected_total\texpected_log_counts\n")?;
    let mut runs: Vec<(String, u32, u32, f32)> = Vec::new();
    let mut sizes = Vec::new();
    let (mut n_peaks, mut n_nonpeaks) = (0, 0);
    let half = (PROFILE_LENGTH / 2) as u64;
    for c in 0..p.chromosomes {
        let name = chrom_name(c);
        let chrom = simulate_chrom(p, c);
        sizes.push((name.clone(), p.chromosome_length));
        fasta.put(format!(">{name}\n").as_bytes())?;
        for line in chrom.bases.chunks(60) {
            let mut text = alphabet::decode(line).into_bytes();
            text.push(b'\n');
            fasta.put(&text)?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed ^ (0xC0DE_0000 + c as u64));
        for (i, &r) in chrom.rate.iter().enumerate() {
            let k = if r > 0.0 {
                Poisson::new(r).expect("positive rate").sample(&mut rng)
            } else {
                0.0
            };
            if k > 0.0 {
                runs.push((name.clone(), i as u32, i as u32 + 1, k as f32));
            }
        }
        let expected = |centre: u64| -> f64 {
            chrom.rate[(centre - half) as usize..(centre + half) as usize]
                .iter()
                .sum()
        };
        for (k, &centre) in chrom.peaks.iter().enumerate() {
            // A called peak: 500 nt around the centre, summit at the centre.
            let (s, e) = (centre - 250, centre + 250);
            peaks_out.put(
                format!("{name}\t{s}\t{e}\tpeak_{name}_{k}\t1000\t.\t0\t0\t0\t250\n").as_bytes(),
            )?;
            let t = expected(centre);
            truth.put(
                format!("{name}\t{centre}\tpeak\t{t:.4}\t{:.6}\n", (1.0 + t).ln()).as_bytes(),
            )?;
            n_peaks += 1;
        }
        let mut placed = 0;
        let margin = 3_000u64;
        while placed < p.nonpeaks_per_chromosome {
            let centre = rng.random_range(margin..p.chromosome_length - margin);
            if chrom
                .peaks
                .iter()
                .any(|&q| q.abs_diff(centre) < NONPEAK_SPACING)
            {
                continue;
            }
            let (s, e) = (centre - 250, centre + 250);
            nonpeaks_out.put(
                format!("{name}\t{s}\t{e}\tnonpeak_{name}_{placed}\t0\t.\t0\t0\t0\t250\n")
                    .as_bytes(),
            )?;
            let t = expected(centre);
            truth.put(
                format!("{name}\t{centre}\tnonpeak\t{t:.4}\t{:.6}\n", (1.0 + t).ln()).as_bytes(),
            )?;
            placed += 1;
            n_nonpeaks += 1;
        }
    }
    fasta.commit()?;
    peaks_out.commit()?;
    nonpeaks_out.commit()?;
    truth.commit()?;
    // The index, as samtools would write it.
    crate::data::genome::Genome::open(&dir.join("genome.fa"))?;
    write_bigwig(&dir.join("signal.bw"), &sizes, runs.into_iter())?;
    let names: Vec<String> = (0..p.chromosomes).map(chrom_name).collect();
    let folds = ChromFolds {
        test: vec![names[0].clone()],
        valid: vec![names[1].clone()],
        train: names[2..].to_vec(),
    };
    folds.write(&dir.join("folds.json"))?;
    let report = AtacSimReport {
        params: p.clone(),
        tn5_bias: TN5_BIAS.to_vec(),
        motifs: MOTIFS.iter().map(|(m, s)| (m.to_string(), *s)).collect(),
        peaks: n_peaks,
        nonpeaks: n_nonpeaks,
        folds,
    };
    let mut f = AtomicFile::create(&dir.join("simulation.json"))?;
    let text = serde_json::to_string_pretty(&report).expect("json");
    f.put(text.as_bytes())?;
    f.put(b"\n")?;
    f.commit()?;
    let _ = std::io::stdout().flush();
    Ok(report)
}

/// The simulation beside a genome file (its `simulation.json`), if there is one.
pub fn report_beside(genome: &Path) -> Option<AtacSimReport> {
    let path = genome.parent()?.join("simulation.json");
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The truth's own scores on regions `idx` (the ceiling a model can reach): the expected
/// insertions' `log(1 + Σ rate)` as the predicted log counts and `log(rate)` as the profile's
/// logits, against the measured counts, per group (peaks, non-peaks, all).
pub fn truth_groups(
    report: &AtacSimReport,
    regions: &super::regions::Regions,
    idx: &[usize],
) -> crate::error::Result<Vec<(String, super::metrics::GroupMetrics)>> {
    use super::metrics::profile_jsd;
    use super::regions::MAX_JITTER;
    let half = PROFILE_LENGTH / 2;
    let mut rows: Vec<super::train::Scored> = Vec::new();
    for c in 0..report.params.chromosomes {
        let name = chrom_name(c);
        let here: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| regions.index[i].chrom == name)
            .collect();
        if here.is_empty() {
            continue;
        }
        let chrom = simulate_chrom(&report.params, c);
        for i in here {
            let r = &regions.index[i];
            let (_, counts) = regions.read(i)?;
            let measured = &counts[MAX_JITTER..MAX_JITTER + PROFILE_LENGTH];
            let at = r.centre as usize - half;
            let rate = &chrom.rate[at..at + PROFILE_LENGTH];
            let logits: Vec<f32> = rate.iter().map(|&v| v.ln() as f32).collect();
            let (jsd, norm) = profile_jsd(measured, &logits);
            let truth = (1.0 + measured.iter().map(|&v| v as f64).sum::<f64>()).ln();
            let expected = (1.0 + rate.iter().sum::<f64>()).ln();
            rows.push((r.kind, truth, expected, jsd, norm));
        }
    }
    Ok(super::train::group_metrics(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atac::regions::{Kind, Regions, Sources, accessibility_plan, bias_plan};

    /// The files read back through the task's readers; peaks carry far more insertions than
    /// non-peaks; the same seed gives the same bytes.
    #[test]
    fn a_small_simulated_genome_reads_back_as_a_task() {
        let d = tempfile::tempdir().unwrap();
        let p = AtacSim {
            chromosomes: 3,
            chromosome_length: 60_000,
            peaks_per_chromosome: 6,
            nonpeaks_per_chromosome: 6,
            ..Default::default()
        };
        let r = simulate(&p, d.path()).unwrap();
        assert_eq!((r.peaks, r.nonpeaks), (18, 18));
        let sources = Sources {
            genome: d.path().join("genome.fa"),
            signal: d.path().join("signal.bw"),
            peaks: d.path().join("peaks.narrowPeak"),
            nonpeaks: d.path().join("nonpeaks.narrowPeak"),
            folds: d.path().join("folds.json"),
        };
        let regions = Regions::open_or_extract(&sources, d.path()).unwrap();
        assert_eq!(regions.index.len() + regions.dropped.off_chromosome, 36);
        let mean = |k| {
            let v: Vec<f64> = regions
                .index
                .iter()
                .filter(|r| r.kind == k)
                .map(|r| r.total)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean(Kind::Peak) > 3.0 * mean(Kind::Nonpeak));
        let plan = accessibility_plan(&regions, 1);
        assert!(!plan.train_peaks.is_empty() && !plan.valid.is_empty());
        assert!(plan.counts_weight >= 1.0);
        let bias = bias_plan(&regions, 0.5);
        assert!(bias.train_peaks.is_empty());
        // Re-opened from the region file without cutting again.
        let again = Regions::open_or_extract(&sources, d.path()).unwrap();
        assert_eq!(again.index, regions.index);
        assert_eq!(again.read(3).unwrap(), regions.read(3).unwrap());
        let e = tempfile::tempdir().unwrap();
        simulate(&p, e.path()).unwrap();
        for f in ["genome.fa", "signal.bw", "peaks.narrowPeak", "truth.tsv"] {
            assert_eq!(
                std::fs::read(d.path().join(f)).unwrap(),
                std::fs::read(e.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }
}
