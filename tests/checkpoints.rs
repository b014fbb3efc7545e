//! Every file training writes is read back: each preset on each data kind trains for a few
//! batches at full size, and its `best` and `last` checkpoints load for prediction, for
//! `inspect --weights`-style loading into a fresh model, and for resuming. So does a model
//! with a block added through the registry (the BHI final block).

use std::path::{Path, PathBuf};

use prixfixe::blocks::FinalConfig;
use prixfixe::predict::{Model, predict_file};
use prixfixe::train::{self, DataSection, Recipe, TrainConfig, TrainOptions};
use prixfixe::weights::{WeightFormat, WeightMap};
use prixfixe::{DataKind, NetConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The first `rows` data rows of a fixture (and its header, for tables).
fn head(dir: &Path, name: &str, rows: usize, header: bool) -> PathBuf {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let path = dir.join(name);
    let keep: Vec<&str> = text.lines().take(rows + usize::from(header)).collect();
    std::fs::write(&path, keep.join("\n") + "\n").unwrap();
    path
}

fn quiet() -> TrainOptions {
    TrainOptions {
        ..Default::default()
    }
}

#[test]
fn every_preset_on_every_data_kind_reads_its_own_checkpoints_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = [
        (
            DataKind::Yeast,
            head(tmp.path(), "yeast_demo_train.txt", 8, false),
        ),
        (
            DataKind::Human,
            head(tmp.path(), "human_train_200.txt", 8, true),
        ),
        (
            DataKind::Drosophila,
            head(tmp.path(), "drosophila_train_200.txt", 8, true),
        ),
    ];
    let device = burn::tensor::Device::flex();
    let mut models = Vec::new();
    for preset in prixfixe::net::PRESETS {
        for (kind, train_file) in &data {
            let model = NetConfig::preset(preset, *kind).unwrap();
            models.push((format!("{preset} on {kind:?}"), model, train_file));
        }
    }
    // A block added by the registry recipe (and its engine twin).
    for (kind, train_file) in &data[..2] {
        let mut model = NetConfig::preset("dream-rnn", *kind).unwrap();
        model.final_block = FinalConfig::Bhi(Default::default());
        models.push((
            format!("dream-rnn with the BHI final block on {kind:?}"),
            model,
            train_file,
        ));
    }
    for (what, model, train_file) in models {
        let config = TrainConfig {
            model,
            data: DataSection {
                train: train_file.clone(),
                valid: None,
                valid_fraction: 0.25,
                valid_fold: None,
                table: None,
                folds: None,
                test_folds: Vec::new(),
            },
            recipe: Recipe {
                epochs: 2,
                batch_size: 2,
                batch_per_epoch: Some(1),
                seed: 3,
                ..Default::default()
            },
        };
        let out = tmp.path().join(what.replace(' ', "-"));
        let first = TrainOptions {
            stop_after: Some(1),
            ..quiet()
        };
        train::train(&config, &out, &first).unwrap_or_else(|e| panic!("{what}: {e}"));
        for name in ["best.safetensors", "last.safetensors"] {
            let path = out.join(name);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                WeightFormat::of(&bytes),
                WeightFormat::Safetensors,
                "{what} {name}"
            );
            // Our own loader, with the config from the file's metadata…
            let model = Model::from_checkpoint(&path, &device)
                .unwrap_or_else(|e| panic!("{what}: {name} does not load: {e}"));
            assert_eq!(model.config, config.model, "{what}");
            // …and the same weights named into a fresh model, as `inspect --weights` does.
            let mut net = config.model.init(&device).unwrap();
            WeightMap::read(&path)
                .unwrap()
                .apply_to(&mut net, "", &device)
                .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
            let pred = tmp.path().join("pred.tsv");
            let summary = predict_file(&model, train_file, None, &pred, 4, |_| {})
                .unwrap_or_else(|e| panic!("{what}: predict from {name}: {e}"));
            assert_eq!(summary.rows, 8, "{what}");
            let lines = std::fs::read_to_string(&pred).unwrap().lines().count();
            assert_eq!(lines, 9, "{what}");
        }
        // The run resumes from its own last checkpoint and finishes.
        let resume = TrainOptions {
            resume: true,
            ..quiet()
        };
        let summary =
            train::train(&config, &out, &resume).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(summary.history.len(), 2, "{what}");
    }
}

#[test]
fn a_safetensors_header_whose_length_starts_with_0x80_is_not_taken_for_a_pickle() {
    // The header length's low byte is the file's first byte: 0x80 is a pickle's first byte,
    // 0x50 0x4B ("PK") a zip's. Pad the metadata until each comes up.
    let tmp = tempfile::tempdir().unwrap();
    let mut map = WeightMap::default();
    map.tensors.insert(
        "w".into(),
        prixfixe::weights::WeightTensor {
            shape: vec![2],
            data: vec![1.0, -2.0],
        },
    );
    for want in [0x80u8, 0x50] {
        let mut pad = 0;
        loop {
            map.metadata.insert("pad".into(), "x".repeat(pad));
            let bytes = map.to_safetensors_bytes().unwrap();
            if bytes[0] == want && (want != 0x50 || bytes[1] == 0x4B) {
                break;
            }
            pad += 1;
            assert!(pad < 70_000, "no padding gives first byte {want:#x}");
        }
        let path = tmp.path().join("w.safetensors");
        map.write_safetensors(&path).unwrap();
        let back = WeightMap::read(&path).unwrap();
        assert_eq!(back.tensors, map.tensors, "first byte {want:#x}");
    }
}
