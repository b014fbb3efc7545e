//! The small end-to-end job behind `prixfixe demo`: data → train → predict → score, on
//! built-in defaults, in a few minutes on two CPU cores.
//!
//! Until the simulator lands, the data are the 6,370 real yeast rows bundled with prixfixe
//! (reference release, MIT licence), split into training and held-out rows by a seed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::blocks::core_layers::autosome::AutosomeCoreConfig;
use crate::blocks::first_layers::bhi::BhiFirstConfig;
use crate::blocks::{CoreConfig, FirstConfig};
use crate::data::{DreamFile, ReadOptions, read_dream};
use crate::error::{Error, Result};
use crate::eval::report::{ScoreReport, load_test_set, score_files};
use crate::predict::Model;
use crate::train::{self, DataSection, Recipe, TrainConfig, TrainOptions};
use crate::{DataKind, NetConfig};

/// The bundled real yeast sample (`sequence<TAB>expression`).
const SAMPLE: &str = include_str!("../tests/data/yeast_demo_train.txt");

/// Settings of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Working directory (data, run, predictions, score).
    pub out: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// No progress bars.
    pub quiet: bool,
}

/// A small Prix Fixe model (BHI first block → Autosome core → soft classification) that
/// trains in minutes on a CPU.
pub fn demo_model() -> NetConfig {
    let mut m = NetConfig::preset("dream-cnn", DataKind::Yeast).expect("preset");
    m.first = FirstConfig::Bhi(BhiFirstConfig {
        out_channels: 64,
        ..Default::default()
    });
    m.core = CoreConfig::Autosome(AutosomeCoreConfig {
        widths: vec![32, 32, 16, 16],
        ..Default::default()
    });
    m
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Run the demo; returns the held-out score.
pub fn run_demo(opts: &DemoOptions, mut say: impl FnMut(&str)) -> Result<ScoreReport> {
    let data_dir = opts.out.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;

    say(
        "1/4 data: the simulator is not yet available in this build; using the bundled 6,370 real yeast rows",
    );
    let mut rows: Vec<&str> = SAMPLE.lines().filter(|l| !l.trim().is_empty()).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
    let n_test = rows.len() / 10;
    let (test, train_rows) = rows.split_at(n_test);
    let train_path = data_dir.join("train.txt");
    let test_path = data_dir.join("test.txt");
    write(&train_path, &(train_rows.join("\n") + "\n"))?;
    write(&test_path, &(test.join("\n") + "\n"))?;
    say(&format!(
        "    {} training rows ({}), {} held-out test rows ({})",
        train_rows.len(),
        train_path.display(),
        test.len(),
        test_path.display()
    ));

    say("2/4 train: BHI first block → Autosome core → soft-classification head, DREAM recipe");
    let config = TrainConfig {
        model: demo_model(),
        data: DataSection {
            train: train_path,
            valid: None,
            valid_fraction: 0.1,
            valid_fold: None,
            table: None,
        },
        recipe: Recipe {
            epochs: opts.epochs,
            batch_size: 64,
            seed: opts.seed,
            ..Default::default()
        },
    };
    let run = opts.out.join("run");
    let train_opts = TrainOptions {
        force: true,
        quiet: opts.quiet,
        command_line: "prixfixe demo".into(),
        ..Default::default()
    };
    train::train(&config, &run, &train_opts)?;

    say("3/4 predict: the held-out rows, forward and reverse complement averaged");
    let device = train::run_device(&config)?;
    let model = Model::from_checkpoint(&run.join("best.safetensors"), &device)?;
    let ds = Arc::new(read_dream(
        &test_path,
        DreamFile::Test,
        &ReadOptions {
            padding: Some(model.config.input.padding.clone()),
        },
    )?);
    let preds = model.predict(ds.clone(), 256, |_| {})?;
    let pred_path = opts.out.join("predictions.tsv");
    model.write_predictions(&pred_path, &ds, &preds)?;

    say("4/4 score: Pearson and Spearman on the held-out rows (DREAM scorer, subset `all`)");
    let test_set = load_test_set(&test_path, &[], None)?;
    let report = score_files(&test_set, &[pred_path], None)?;
    let json = serde_json::to_string_pretty(&report).expect("json");
    write(&opts.out.join("score.json"), &json)?;
    Ok(report)
}
