//! Simulated cross-species data with known truth (SPEC_BENCHMARKS §1–2 layouts), so that the
//! benchmark means something without the real files: Drosophila-like STARR-seq regions (249 nt,
//! two tasks from two different motif grammars, both strands as rows with the region's labels,
//! chromosome labels) and human-like lentiMPRA oligos (230 nt: the two 15-nt adapters around a
//! 200-nt element; the forward and the reversed oligo measured separately; folds 0–9 per
//! element). Labels are the truth, z-scored over the data set, plus Normal noise of sd `noise`;
//! `truth.tsv` holds the noise-free values and `simulation.json` the ceiling (the truth's
//! Pearson r with the measured labels). Written in two passes over seeded per-row streams, so
//! memory stays flat whatever the row count.

use std::io::Write;
use std::path::Path;

use rand::Rng;
use serde::Serialize;

use super::library::LibrarySpec;
use super::rng_for;
use super::truth::{TruthModel, TruthParams};
use crate::data::alphabet::{decode, reverse_complement};
use crate::error::{Error, Result};

/// The lentiMPRA adapters (SPEC_BENCHMARKS §2.1).
pub const HUMAN_LEFT: &str = "AGGACCGGATCAACT";
/// The right adapter.
pub const HUMAN_RIGHT: &str = "CATTGCGTGAACCGA";

/// Which layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Species {
    /// DeepSTARR's merged table: 249 nt, dev and hk.
    Drosophila,
    /// The lentiMPRA table: 230 nt, one activity, folds.
    Human,
}

/// Chromosomes and their lengths (dm6), drawn in proportion to length.
const FLY: [(&str, u64); 7] = [
    ("chr2L", 23_513_712),
    ("chr2R", 25_286_936),
    ("chr3L", 28_110_227),
    ("chr3R", 32_079_331),
    ("chrX", 23_542_271),
    ("chr4", 1_348_131),
    ("chrXHet", 204_112),
];

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SpeciesSummary {
    /// The layout.
    pub species: Species,
    /// Seed of everything.
    pub seed: u64,
    /// Regions (Drosophila) or elements (human).
    pub units: usize,
    /// Rows written (two per unit).
    pub rows: usize,
    /// Label noise sd, in units of the truth's sd.
    pub noise: f64,
    /// Task names.
    pub tasks: Vec<String>,
    /// Per task: the truth's Pearson r with the measured labels (what no model can beat).
    pub ceiling: Vec<f64>,
}

/// Two rows of one unit: (id, sequence, raw truth per task).
struct Unit {
    rows: [(String, Vec<u8>, Vec<f64>); 2],
    chrom: &'static str,
    start: u64,
    fold: u16,
}

fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn unit(species: Species, models: &[TruthModel], seed: u64, i: usize) -> Unit {
    let mut rng = rng_for(seed, 17, i as u64);
    let lib = LibrarySpec::uniform();
    match species {
        Species::Drosophila => {
            let total: u64 = FLY.iter().map(|c| c.1).sum();
            let mut at = rng.random_range(0..total);
            let (chrom, len) = *FLY
                .iter()
                .find(|c| {
                    if at < c.1 {
                        true
                    } else {
                        at -= c.1;
                        false
                    }
                })
                .expect("a position falls on a chromosome");
            let start = 1 + rng.random_range(0..len - 249);
            let seq = lib.core(&mut rng, 249);
            let rc = reverse_complement(&seq);
            // An enhancer's activity does not depend on the strand read: the mean of both.
            let truth: Vec<f64> = models
                .iter()
                .map(|m| (m.activity(&seq) + m.activity(&rc)) / 2.0)
                .collect();
            // Units draw their places independently, so two may share one: the unit's number
            // keeps every id unique (readers refuse repeated ids).
            let id =
                |strand: char| format!("{chrom}_{start}_{}_{strand}_simulated_{i}", start + 248);
            Unit {
                rows: [(id('+'), seq, truth.clone()), (id('-'), rc, truth)],
                chrom,
                start,
                fold: 0,
            }
        }
        Species::Human => {
            let core = lib.core(&mut rng, 200);
            let oligo = |c: &[u8]| {
                let mut s = crate::data::alphabet::encode(HUMAN_LEFT.as_bytes()).expect("ACGT");
                s.extend_from_slice(c);
                s.extend(crate::data::alphabet::encode(HUMAN_RIGHT.as_bytes()).expect("ACGT"));
                s
            };
            let fwd = oligo(&core);
            let rev = oligo(&reverse_complement(&core));
            let t = |s: &[u8]| vec![models[0].activity(s)];
            let fold = rng.random_range(0..10u16);
            Unit {
                rows: [
                    (format!("seq{i}_F"), fwd.clone(), t(&fwd)),
                    (format!("seq{i}_Reversed:"), rev.clone(), t(&rev)),
                ],
                chrom: "",
                start: 0,
                fold,
            }
        }
    }
}

/// Write `train.txt`, `truth.tsv` and `simulation.json` into `dir` (created; existing files
/// of these names are refused unless `force`).
pub fn simulate(
    dir: &Path,
    species: Species,
    units: usize,
    noise: f64,
    seed: u64,
    force: bool,
) -> Result<SpeciesSummary> {
    if units == 0 {
        return Err(Error::Config("--rows must be at least 1".into()));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(Error::Config(format!(
            "noise {noise} must be a non-negative number"
        )));
    }
    let train = dir.join("train.txt");
    if train.exists() && !force {
        return Err(Error::Config(format!(
            "{} exists; use --force to overwrite it",
            train.display()
        )));
    }
    let base = TruthModel::new(TruthParams::default()).map_err(Error::Config)?;
    let (models, tasks) = match species {
        // A second grammar for hk: every potential and effect redrawn, one factor left out.
        Species::Drosophila => (
            vec![base.clone(), base.perturbed(seed ^ 0x4B, 1.0)],
            vec![
                "Dev_log2_enrichment".to_string(),
                "Hk_log2_enrichment".to_string(),
            ],
        ),
        Species::Human => (vec![base], vec!["mean_value".to_string()]),
    };
    let k = tasks.len();
    // Pass 1: the truth's mean and sd per task, to z-score it.
    let mut sum = vec![0.0f64; k];
    let mut sq = vec![0.0f64; k];
    let mut n = 0usize;
    for i in 0..units {
        for (_, _, t) in &unit(species, &models, seed, i).rows {
            for (j, v) in t.iter().enumerate() {
                sum[j] += v;
                sq[j] += v * v;
            }
            n += 1;
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
    let sd: Vec<f64> = (0..k)
        .map(|j| (sq[j] / n as f64 - mean[j] * mean[j]).max(1e-12).sqrt())
        .collect();
    // Pass 2: write as we go.
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = crate::output::AtomicFile::create(&train)?;
    let mut truth_out = crate::output::AtomicFile::create(&dir.join("truth.tsv"))?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| Error::io(&p, e)
    };
    let header = match species {
        Species::Drosophila => format!(
            "seqnames\tstart\tend\tID\tset\tSequence\t{}",
            tasks.join("\t")
        ),
        Species::Human => "seq_id\tseq\tmean_value\tfold".into(),
    };
    writeln!(out, "{header}").map_err(io(&train))?;
    writeln!(truth_out, "id\t{}", tasks.join("\t")).map_err(io(&train))?;
    let (mut s_xy, mut s_x, mut s_y, mut s_xx, mut s_yy) = (
        vec![0.0; k],
        vec![0.0; k],
        vec![0.0; k],
        vec![0.0; k],
        vec![0.0; k],
    );
    for i in 0..units {
        let u = unit(species, &models, seed, i);
        let mut rng = rng_for(seed, 23, i as u64);
        // Drosophila: one measurement per region, shared by its strands; human: each oligo
        // measured on its own.
        let shared: Vec<f64> = (0..k).map(|_| normal(&mut rng)).collect();
        for (id, seq, t) in &u.rows {
            let z: Vec<f64> = (0..k).map(|j| (t[j] - mean[j]) / sd[j]).collect();
            let e: Vec<f64> = match species {
                Species::Drosophila => shared.clone(),
                Species::Human => (0..k).map(|_| normal(&mut rng)).collect(),
            };
            let y: Vec<f64> = (0..k).map(|j| z[j] + noise * e[j]).collect();
            for j in 0..k {
                s_xy[j] += z[j] * y[j];
                s_x[j] += z[j];
                s_y[j] += y[j];
                s_xx[j] += z[j] * z[j];
                s_yy[j] += y[j] * y[j];
            }
            let ys: Vec<String> = y.iter().map(|v| format!("{v:.4}")).collect();
            let line = match species {
                Species::Drosophila => format!(
                    "{}\t{}\t{}\t{id}\tTrain\t{}\t{}",
                    u.chrom,
                    u.start,
                    u.start + 248,
                    decode(seq),
                    ys.join("\t")
                ),
                Species::Human => format!("{id}\t{}\t{}\t{}", decode(seq), ys[0], u.fold),
            };
            writeln!(out, "{line}").map_err(io(&train))?;
            let zs: Vec<String> = z.iter().map(|v| format!("{v:.6}")).collect();
            writeln!(truth_out, "{id}\t{}", zs.join("\t")).map_err(io(&train))?;
        }
    }
    let nf = n as f64;
    let ceiling = (0..k)
        .map(|j| {
            let cov = s_xy[j] / nf - s_x[j] / nf * s_y[j] / nf;
            let vx = s_xx[j] / nf - (s_x[j] / nf).powi(2);
            let vy = s_yy[j] / nf - (s_y[j] / nf).powi(2);
            cov / (vx * vy).sqrt()
        })
        .collect();
    out.commit()?;
    truth_out.commit()?;
    let summary = SpeciesSummary {
        species,
        seed,
        units,
        rows: n,
        noise,
        tasks,
        ceiling,
    };
    let json = serde_json::to_string_pretty(&summary).expect("json");
    crate::output::write_atomic(&dir.join("simulation.json"), json.as_bytes())?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::detect::{detect_format, read_any};

    /// Both layouts are read back by the table readers with the orientation, folds and the
    /// labels the simulation meant; the same seed writes the same bytes.
    #[test]
    fn both_layouts_read_back_with_their_rules() {
        let dir = tempfile::tempdir().unwrap();
        let fly = dir.path().join("fly");
        let s = simulate(&fly, Species::Drosophila, 40, 0.5, 3, false).unwrap();
        assert_eq!((s.rows, s.tasks.len()), (80, 2));
        assert!(
            s.ceiling.iter().all(|&c| c > 0.75 && c < 1.0),
            "{:?}",
            s.ceiling
        );
        let path = fly.join("train.txt");
        let ds = read_any(&path, &detect_format(&path).unwrap(), &Default::default()).unwrap();
        assert_eq!(ds.len(), 80);
        assert_eq!(ds.is_reverse.iter().filter(|&&r| r).count(), 40);
        for r in (0..80).step_by(2) {
            assert_eq!(
                ds.target(r),
                ds.target(r + 1),
                "a region's strands share labels"
            );
            let rc = reverse_complement(ds.seqs.get(r));
            assert_eq!(rc, ds.seqs.get(r + 1));
        }
        let human = dir.path().join("human");
        let s = simulate(&human, Species::Human, 30, 0.5, 3, false).unwrap();
        assert_eq!(s.rows, 60);
        let path = human.join("train.txt");
        let ds = read_any(&path, &detect_format(&path).unwrap(), &Default::default()).unwrap();
        let folds = ds.folds.clone().unwrap();
        for r in (0..60).step_by(2) {
            assert_eq!(folds[r], folds[r + 1], "both orientations in one fold");
            assert!(!ds.is_reverse[r] && ds.is_reverse[r + 1]);
            assert_eq!(ds.seqs.get(r).len(), 230);
        }
        assert!(simulate(&human, Species::Human, 30, 0.5, 3, false).is_err());
        // The default size draws two units on one place (seed 42 does, at chr3L:23601087);
        // their ids still differ, so the file reads back.
        let big = dir.path().join("big");
        simulate(&big, Species::Drosophila, 10_000, 0.5, 42, false).unwrap();
        let path_big = big.join("train.txt");
        let ds = read_any(
            &path_big,
            &detect_format(&path_big).unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(ds.len(), 20_000);
        let again = dir.path().join("again");
        simulate(&again, Species::Human, 30, 0.5, 3, false).unwrap();
        assert_eq!(
            std::fs::read(path).unwrap(),
            std::fs::read(again.join("train.txt")).unwrap()
        );
    }
}
