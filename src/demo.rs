//! The small end-to-end job behind `prixfixe demo`: simulate → train → predict → score, on
//! built-in defaults, in a few minutes on two CPU cores.
//!
//! The data come from the simulator (a small training library and a test set with all eight
//! subsets), so the score can be read against the replicate ceiling of the noise-free truth.

use std::path::{Path, PathBuf};

use crate::blocks::core_layers::autosome::AutosomeCoreConfig;
use crate::blocks::first_layers::bhi::BhiFirstConfig;
use crate::blocks::{CoreConfig, FirstConfig};
use crate::error::{Error, Result};
use crate::eval::report::{ScoreReport, load_test_set, score_files, subset_files};
use crate::predict::Model;
use crate::sim::testset::TestSizes;
use crate::sim::{SimConfig, Stage, simulate};
use crate::train::{self, Recipe, TrainConfig, TrainObserver, TrainOptions};
use crate::{DataKind, NetConfig};

/// Settings of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Working directory (data, run, predictions, score).
    pub out: PathBuf,
    /// Epochs.
    pub epochs: usize,
    /// Simulated training rows.
    pub train_rows: usize,
    /// Seed.
    pub seed: u64,
}

/// A small Prix Fixe model (BHI first block → Autosome core → soft classification) that
/// trains in minutes on a CPU.
pub fn demo_model() -> NetConfig {
    let mut m = NetConfig::preset("dream-cnn", DataKind::Yeast).expect("preset");
    m.first = FirstConfig::Bhi(BhiFirstConfig {
        out_channels: 32,
        ..Default::default()
    });
    m.core = CoreConfig::Autosome(AutosomeCoreConfig {
        widths: vec![16, 16],
        ..Default::default()
    });
    m
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::output::write_atomic(path, text.as_bytes())
}

/// Run the demo; returns the held-out score. `say` gets one line per step, `observer` the
/// training's progress.
pub fn run_demo(
    opts: &DemoOptions,
    mut say: impl FnMut(&str),
    observer: &mut dyn TrainObserver,
) -> Result<ScoreReport> {
    let data_dir = opts.out.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io(&data_dir, e))?;

    let mut sim = SimConfig::small();
    sim.seed = opts.seed;
    sim.train_rows = opts.train_rows;
    sim.test.sizes = TestSizes {
        random: 500,
        high: 100,
        low: 100,
        native: 100,
        challenging: 100,
        snv: 1000,
        motif_perturbation: 200,
        motif_tiling: 200,
        total: 0,
    };
    say(&format!(
        "1/4 simulate: {} training rows and a test set with all eight subsets, known truth",
        sim.train_rows
    ));
    let summary = simulate(&data_dir, &sim, true, &mut |s| {
        if let Stage::Message(m) = s {
            say(&format!("    {m}"))
        }
    })?;
    let train_path = summary.train.clone();
    let test_path = summary.test.clone();
    say(&format!(
        "    {} test rows ({})",
        summary.test_rows,
        test_path.display()
    ));

    say("2/4 train: BHI first block → Autosome core → soft-classification head, DREAM recipe");
    let config = TrainConfig {
        recipe: Recipe {
            epochs: opts.epochs,
            batch_size: 64,
            seed: opts.seed,
            ..Default::default()
        },
        ..TrainConfig::for_data(demo_model(), DataKind::Yeast, train_path)
    };
    let run = opts.out.join("run");
    let train_opts = TrainOptions {
        force: true,
        command_line: "prixfixe demo".into(),
        ..Default::default()
    };
    train::train_with(&config, &run, &train_opts, observer)?;

    say("3/4 predict: the test set, forward and reverse complement averaged");
    let device = train::run_device(&config)?;
    let model = Model::from_checkpoint(&run.join("best.safetensors"), &device)?;
    let pred_path = opts.out.join("predictions.tsv");
    crate::predict::predict_file(
        &model,
        &test_path,
        Some(crate::data::formats::detect::Format::DreamTest),
        &pred_path,
        256,
        |_| {},
    )?;

    say("4/4 score: the DREAM score of the model and, for reference, of the noise-free truth");
    let test_set = load_test_set(
        &test_path,
        &subset_files(&data_dir.join("test_subsets"))?,
        None,
    )?;
    let report = score_files(
        &test_set,
        &[pred_path, data_dir.join("test_truth.tsv")],
        None,
    )?;
    let json = serde_json::to_string_pretty(&report).expect("json");
    write(&opts.out.join("score.json"), &json)?;
    Ok(report)
}
