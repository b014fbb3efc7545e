//! The simulator behind `prixfixe simulate`: the random-promoter experiment and the DREAM test
//! set with known ground truth, written in exactly the challenge's formats (SPEC §2.1, §2.6).
//!
//! - [`truth`] — the regulatory model (`truth(seq) → log expression`).
//! - [`measure`] — cells, noise, 18 sort bins; training and test measurements.
//! - [`library`] — reads: adapters, random regions, native-like promoters.
//! - [`testset`] — the eight test subsets (GA designs on proxy models, SNVs, motifs).
//! - [`report`] — calibration: value distribution against the real sample, the replicate
//!   ceiling and a k-mer ridge baseline on the DREAM score.
//!
//! Everything is a function of the seed: each training row draws from its own random stream
//! (seed, row), so the output does not depend on the number of threads.

pub mod library;
pub mod measure;
pub mod report;
pub mod species;
pub mod testset;
pub mod truth;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::alphabet::decode;
use crate::design::ga::{GaConfig, GenerationStats};
use crate::error::{Error, Result};
use library::LibrarySpec;
use measure::{MeasureParams, Sorter, format_value};
use testset::{TestSizes, TestSpec};
use truth::{TruthModel, TruthParams};

/// Random streams, so that each part of the simulation draws independently of the others.
pub mod streams {
    /// Training rows.
    pub const TRAIN: u64 = 1;
    /// Test-set construction.
    pub const TEST_DESIGN: u64 = 2;
    /// Test measurements.
    pub const TEST_MEASURE: u64 = 3;
    /// GA for high expression.
    pub const GA_HIGH: u64 = 4;
    /// GA for low expression.
    pub const GA_LOW: u64 = 5;
    /// GA for challenging sequences.
    pub const GA_CHALLENGING: u64 = 6;
    /// Calibration library (fixed, independent of the seed).
    pub const CALIBRATION: u64 = 7;
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream of item `index` of `stream` under `seed`.
pub fn rng_for(seed: u64, stream: u64, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix(splitmix(seed ^ splitmix(stream)) ^ index))
}

/// Progress of a simulation.
#[derive(Debug, Clone)]
pub enum Stage {
    /// A line to show.
    Message(String),
    /// Training rows written so far.
    TrainRows {
        /// Written.
        done: usize,
        /// In all.
        total: usize,
    },
    /// A GA generation finished.
    Generation(GenerationStats),
}

/// Everything a simulation depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Training rows.
    pub train_rows: usize,
    /// Training library.
    pub library: LibrarySpec,
    /// Ground truth.
    pub truth: TruthParams,
    /// Measurement.
    pub measure: MeasureParams,
    /// Test set.
    pub test: TestSpec,
}

impl SimConfig {
    /// The challenge's sizes: 6,739,258 training rows, 71,103 test rows, the paper's GA.
    pub fn full() -> Self {
        Self {
            seed: 42,
            train_rows: 6_739_258,
            library: LibrarySpec::from_sample(),
            truth: TruthParams::default(),
            measure: MeasureParams::default(),
            test: TestSpec {
                sizes: TestSizes::default(),
                ga: GaConfig::paper(),
                ga_challenging: GaConfig::challenging(),
                proxy_strength: 0.3,
            },
        }
    }

    /// 100,000 training rows and a test set of ~4,500 rows, for tests and the demo: seconds.
    pub fn small() -> Self {
        let mut c = Self::full();
        c.train_rows = 100_000;
        c.test.sizes = TestSizes::small();
        c.test.ga.population = 2000;
        c.test.ga_challenging.generations = 30;
        c
    }

    /// Calibrate the bins on a fixed random library of 20,000 reads (independent of the seed,
    /// so the truth-to-value map is the same for every seed).
    pub fn sorter(&self, truth: &TruthModel) -> Result<Sorter> {
        let ys: Vec<f64> = (0..20_000u64)
            .into_par_iter()
            .map(|i| truth.truth(&self.library.read(&mut rng_for(0, streams::CALIBRATION, i))))
            .collect();
        Sorter::calibrate(self.measure.clone(), &ys).map_err(Error::Config)
    }
}

/// What a simulation wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimSummary {
    /// The configuration.
    pub config: SimConfig,
    /// The calibrated sorter of the training experiment.
    pub sorter: Sorter,
    /// The sorter of the test experiment.
    pub test_sorter: Sorter,
    /// Training file.
    pub train: PathBuf,
    /// Training rows whose read was seen in one cell.
    pub train_singletons: usize,
    /// Test file.
    pub test: PathBuf,
    /// Test rows.
    pub test_rows: usize,
    /// Entries per subset.
    pub subsets: Vec<(String, usize)>,
    /// Seconds spent on the training file.
    pub train_seconds: f64,
    /// Seconds spent on the test set.
    pub test_seconds: f64,
    /// prixfixe version.
    pub version: String,
}

pub(crate) use crate::output::write_atomic;

/// Rows per chunk of the training file: bounded memory whatever the size.
const CHUNK: usize = 1 << 16;

/// Stream the training file to `path`; returns the number of singletons.
fn write_train(
    path: &Path,
    cfg: &SimConfig,
    truth: &TruthModel,
    sorter: &Sorter,
    on: &mut dyn FnMut(Stage),
) -> Result<usize> {
    let mut out = crate::output::AtomicFile::create(path)?;
    let mut singletons = 0;
    let mut start = 0;
    while start < cfg.train_rows {
        let end = (start + CHUNK).min(cfg.train_rows);
        let lines: Vec<(String, bool)> = (start..end)
            .into_par_iter()
            .map(|i| {
                let mut rng = rng_for(cfg.seed, streams::TRAIN, i as u64);
                let read = cfg.library.read(&mut rng);
                let (v, cells) = sorter.measure_train(truth.truth(&read), &mut rng);
                (
                    format!("{}\t{}\n", decode(&read), format_value(v)),
                    cells == 1,
                )
            })
            .collect();
        for (line, single) in &lines {
            out.write_all(line.as_bytes())
                .map_err(|e| Error::io(path, e))?;
            singletons += usize::from(*single);
        }
        on(Stage::TrainRows {
            done: end,
            total: cfg.train_rows,
        });
        start = end;
    }
    out.commit()?;
    Ok(singletons)
}

/// The files a simulation writes in its directory.
pub const OUTPUTS: [&str; 5] = [
    "train.txt",
    "test.txt",
    "test_truth.tsv",
    "test_subsets",
    "simulation.json",
];

/// Run a simulation into `dir` (created; files of an earlier simulation are refused unless
/// `force`).
pub fn simulate(
    dir: &Path,
    cfg: &SimConfig,
    force: bool,
    on: &mut dyn FnMut(Stage),
) -> Result<SimSummary> {
    cfg.library.check().map_err(Error::Config)?;
    cfg.truth.check().map_err(Error::Config)?;
    cfg.measure.check().map_err(Error::Config)?;
    if !force && let Some(existing) = OUTPUTS.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
        return Err(Error::Config(format!(
            "{} already exists; pass --force to overwrite the simulation in {}",
            existing.display(),
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let truth = TruthModel::new(cfg.truth.clone()).map_err(Error::Config)?;
    let sorter = cfg.sorter(&truth)?;

    on(Stage::Message(format!(
        "training file: {} rows (streamed in chunks of {CHUNK})",
        cfg.train_rows
    )));
    let t0 = Instant::now();
    let train = dir.join("train.txt");
    let train_singletons = write_train(&train, cfg, &truth, &sorter, on)?;
    let train_seconds = t0.elapsed().as_secs_f64();

    on(Stage::Message("test set: eight subsets".into()));
    let t1 = Instant::now();
    let t = testset::build(&cfg.test, cfg.seed, &truth, on)?;
    let truth_log: Vec<f64> = t.rows.par_iter().map(|s| truth.truth(s)).collect();
    let test_sorter = sorter.for_test(&truth_log);
    let truth_test: Vec<f64> = truth_log
        .iter()
        .map(|&y| test_sorter.expected_test(y))
        .collect();
    let mut order: Vec<usize> = (0..t.rows.len()).collect();
    order.shuffle(&mut rng_for(cfg.seed, streams::TEST_MEASURE, u64::MAX));
    let measured: Vec<f64> = truth_log
        .par_iter()
        .enumerate()
        .map(|(i, &y)| {
            test_sorter.measure_test(y, &mut rng_for(cfg.seed, streams::TEST_MEASURE, i as u64))
        })
        .collect();
    testset::write(dir, &t, &order, &measured, &truth_log, &truth_test)?;
    let test_seconds = t1.elapsed().as_secs_f64();

    let summary = SimSummary {
        config: cfg.clone(),
        sorter,
        test_sorter,
        train,
        train_singletons,
        test: dir.join("test.txt"),
        test_rows: t.rows.len(),
        subsets: testset::counts(&t),
        train_seconds,
        test_seconds,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    write_atomic(&dir.join("simulation.json"), json.as_bytes())?;
    Ok(summary)
}
