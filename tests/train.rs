//! Training at a tiny size: the loss falls, a seed fixes the result, an interrupted run
//! resumes to the same result, and bad set-ups are refused clearly.

use std::path::{Path, PathBuf};

use prixfixe::blocks::core_layers::autosome::AutosomeCoreConfig;
use prixfixe::blocks::first_layers::bhi::BhiFirstConfig;
use prixfixe::blocks::{CoreConfig, FirstConfig};
use prixfixe::train::{self, DataSection, Recipe, TrainConfig, TrainOptions};
use prixfixe::weights::WeightMap;
use prixfixe::{DataKind, NetConfig};

use crate::common::yeast_rows;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tiny_config(train: PathBuf, epochs: usize) -> TrainConfig {
    let mut model = NetConfig::preset("dream-cnn", DataKind::Yeast).unwrap();
    model.first = FirstConfig::Bhi(BhiFirstConfig {
        out_channels: 16,
        ..Default::default()
    });
    model.core = CoreConfig::Autosome(AutosomeCoreConfig {
        widths: vec![8, 8],
        ..Default::default()
    });
    TrainConfig {
        model,
        data: DataSection {
            train,
            valid: None,
            valid_fraction: 0.2,
            valid_fold: None,
            table: None,
            folds: None,
            test_folds: Vec::new(),
        },
        recipe: Recipe {
            epochs,
            batch_size: 32,
            seed: 11,
            ..Default::default()
        },
    }
}

fn quiet() -> TrainOptions {
    TrainOptions {
        ..Default::default()
    }
}

fn history(dir: &Path) -> Vec<String> {
    // Everything but the wall-clock figures.
    std::fs::read_to_string(dir.join("epochs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v.as_object_mut().unwrap().remove("seqs_per_sec");
            v.to_string()
        })
        .collect()
}

fn weights(dir: &Path, name: &str) -> WeightMap {
    WeightMap::read(&dir.join(name)).unwrap()
}

fn batch_losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("batches.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn loss_falls_and_the_run_directory_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(yeast_rows(tmp.path(), 300), 6);
    let out = tmp.path().join("run");
    let summary = train::train(&config, &out, &quiet()).unwrap();
    assert_eq!(summary.history.len(), 6);
    let losses = batch_losses(&out);
    let per_epoch = losses.len() / 6;
    let first: f64 = losses[..per_epoch].iter().sum::<f64>() / per_epoch as f64;
    let last: f64 = losses[losses.len() - per_epoch..].iter().sum::<f64>() / per_epoch as f64;
    assert!(last < 0.9 * first, "loss did not fall: {first} -> {last}");
    for f in [
        "config.toml",
        "manifest.json",
        "batches.csv",
        "epochs.jsonl",
        "best.safetensors",
        "last.safetensors",
        "last_optimizer.safetensors",
        "state.json",
        "curves.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 11);
    assert_eq!(manifest["data_files"][0][1].as_str().unwrap().len(), 64);
    // The best checkpoint predicts on its own: its config travels in its metadata.
    let model = prixfixe::predict::Model::from_checkpoint(
        &out.join("best.safetensors"),
        &burn::tensor::Device::flex(),
    )
    .unwrap();
    assert_eq!(model.config, config.model);
}

#[test]
fn same_seed_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(yeast_rows(tmp.path(), 120), 2);
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    train::train(&config, &a, &quiet()).unwrap();
    // The same seed again while another training runs on a second thread: burn's generator
    // is one per process, and neither run may take the other's draws.
    let mut other = config.clone();
    other.recipe.seed = 12;
    std::thread::scope(|s| {
        s.spawn(|| train::train(&config, &b, &quiet()).unwrap());
        s.spawn(|| train::train(&other, &c, &quiet()).unwrap());
    });
    assert_eq!(history(&a), history(&b));
    assert_eq!(
        weights(&a, "last.safetensors").tensors,
        weights(&b, "last.safetensors").tensors
    );
    assert_ne!(
        weights(&a, "last.safetensors").tensors,
        weights(&c, "last.safetensors").tensors
    );
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(yeast_rows(tmp.path(), 120), 3);
    let whole = tmp.path().join("whole");
    train::train(&config, &whole, &quiet()).unwrap();

    let parts = tmp.path().join("parts");
    let stop = TrainOptions {
        stop_after: Some(1),
        ..quiet()
    };
    train::train(&config, &parts, &stop).unwrap();
    // What a kill in the middle of the next epoch leaves: logged batches of the unfinished
    // epoch and a half-written checkpoint.
    std::fs::OpenOptions::new()
        .append(true)
        .open(parts.join("batches.csv"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"99,2,1,0.5,0.001,0.9\n99,2,2,0.4"))
        .unwrap();
    std::fs::write(parts.join(".last.safetensors.partial"), b"half").unwrap();

    let resume = TrainOptions {
        resume: true,
        ..quiet()
    };
    train::train(&config, &parts, &resume).unwrap();
    assert_eq!(history(&whole), history(&parts));
    assert_eq!(
        weights(&whole, "last.safetensors").tensors,
        weights(&parts, "last.safetensors").tensors
    );
    assert_eq!(batch_losses(&whole), batch_losses(&parts));
}

#[test]
fn a_directory_holding_a_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(yeast_rows(tmp.path(), 60), 1);
    let out = tmp.path().join("run");
    train::train(&config, &out, &quiet()).unwrap();
    let e = train::train(&config, &out, &quiet())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already holds a run") && e.contains("--resume") && e.contains("--force"),
        "{e}"
    );
    let force = TrainOptions {
        force: true,
        ..quiet()
    };
    train::train(&config, &out, &force).unwrap();
}

#[test]
fn data_that_does_not_fit_the_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A human table (one regression target, 230 nt) for a yeast soft-classification model.
    let config = tiny_config(fixture("human_train_200.txt"), 1);
    let e = train::train(&config, &tmp.path().join("run"), &quiet())
        .unwrap_err()
        .to_string();
    assert!(e.contains("human_train_200.txt"), "{e}");
    // Drosophila (two tasks) for a one-task regression model.
    let mut config = tiny_config(fixture("drosophila_train_200.txt"), 1);
    config.model = NetConfig::preset("dream-cnn", DataKind::Human).unwrap();
    config.model.input = prixfixe::net::InputConfig::drosophila();
    let e = train::train(&config, &tmp.path().join("run2"), &quiet())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs 1 label column(s) but the file has 2"),
        "{e}"
    );
}

#[test]
fn a_stop_request_ends_the_epoch_without_committing_it() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(yeast_rows(tmp.path(), 120), 3);
    let out = tmp.path().join("run");
    let one = TrainOptions {
        stop_after: Some(1),
        ..quiet()
    };
    train::train(&config, &out, &one).unwrap();
    let before = history(&out);
    let weights_before = weights(&out, "last.safetensors").tensors;
    // The flag is up from the start: the first batch of epoch 2 trains, then the run stops.
    let stopped = TrainOptions {
        resume: true,
        stop: Some(Arc::new(AtomicBool::new(true))),
        ..quiet()
    };
    let e = train::train(&config, &out, &stopped).unwrap_err();
    assert!(
        matches!(e, prixfixe::Error::Stopped { epochs_done: 1 }),
        "{e}"
    );
    assert_eq!(history(&out), before);
    assert_eq!(weights(&out, "last.safetensors").tensors, weights_before);
    // And the run resumes from there.
    let resume = TrainOptions {
        resume: true,
        ..quiet()
    };
    assert_eq!(
        train::train(&config, &out, &resume).unwrap().history.len(),
        3
    );
}
