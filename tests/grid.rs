//! The Prix Fixe grid at a tiny size: a plan, cells run, skipped, resumed and recorded as
//! not converged, and the collected table.

use std::path::PathBuf;

use prixfixe::grid::{self, CellOutcome, CellStatus, Size};
use prixfixe::train::{DataSection, Recipe, TrainOptions};

use crate::common::yeast_rows;

fn data(train: PathBuf) -> DataSection {
    DataSection {
        train,
        valid: None,
        valid_fraction: 0.2,
        valid_fold: None,
        table: None,
        folds: None,
        test_folds: Vec::new(),
    }
}

fn recipe(epochs: usize) -> Recipe {
    Recipe {
        epochs,
        batch_size: 32,
        seed: 5,
        ..Default::default()
    }
}

#[test]
fn cells_run_skip_resume_and_collect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("grid");
    let cells = vec!["ABAA".to_string(), "AUBB".to_string()];
    let train = yeast_rows(tmp.path(), 120);
    let plan = grid::plan(&dir, &cells, Size::Tiny, data(train.clone()), recipe(2)).unwrap();
    assert_eq!(grid::read_plan(&dir).unwrap(), plan);
    assert_eq!(
        std::fs::read_to_string(dir.join(grid::TASKS_FILE)).unwrap(),
        "task\tcell\n0\tABAA\n1\tAUBB\n"
    );
    // Data that do not fit a cell's data processor are refused before anything is written:
    // here a read too short for the BHI padding.
    let short = tmp.path().join("short.txt");
    std::fs::write(
        &short,
        format!(
            "{}ACGTACGT\t4.0\n",
            std::fs::read_to_string(&train).unwrap()
        ),
    )
    .unwrap();
    let elsewhere = tmp.path().join("grid2");
    let e = grid::plan(
        &elsewhere,
        &["BBBB".to_string()],
        Size::Tiny,
        data(short),
        recipe(2),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("BHI data processor's cells (checked on BBBB)") && e.contains(":121:"),
        "{e}"
    );
    assert!(!elsewhere.exists());
    // A second plan in the same directory is refused; the first stays as it was.
    let e = grid::plan(&dir, &cells, Size::Tiny, data(train), recipe(3)).unwrap_err();
    assert!(e.to_string().contains("already holds a grid plan"), "{e}");
    assert_eq!(grid::read_plan(&dir).unwrap(), plan);

    let quiet = TrainOptions::default();
    assert_eq!(
        grid::run_cell(&dir, 0, &quiet).unwrap(),
        CellOutcome::Trained { from_epoch: 0 }
    );
    assert_eq!(
        grid::run_cell(&dir, 0, &quiet).unwrap(),
        CellOutcome::AlreadyFinished
    );
    // Cell 1 stopped after one epoch (what a kill or a Slurm preemption leaves), then resumed.
    let one = TrainOptions {
        stop_after: Some(1),
        ..Default::default()
    };
    grid::run_cell(&dir, 1, &one).unwrap();
    let rows = grid::status(&dir).unwrap();
    assert_eq!(rows[0].status, CellStatus::Finished);
    assert_eq!(rows[1].status, CellStatus::Partial { epochs: 1 });
    assert_eq!(
        grid::run_cell(&dir, 1, &quiet).unwrap(),
        CellOutcome::Trained { from_epoch: 1 }
    );
    let rows = grid::status(&dir).unwrap();
    assert!(rows.iter().all(|r| r.status == CellStatus::Finished));
    assert!(
        rows.iter()
            .all(|r| r.val_pearson.is_some() && r.best_epoch.is_some())
    );
    let csv = grid::results_csv(&rows);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with("0,ABAA,bhi,autosome,soft-class,finished,"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("1,AUBB,unlock-dna,bhi,bhi,finished,"),
        "{csv}"
    );
    grid::write_heatmap(&dir, &rows).unwrap();
    let png = std::fs::read(dir.join("heatmap.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.join("heatmap.svg")).unwrap();
    assert!(svg.contains("Pearson r") && svg.contains("incompatible (36 of 81)"));
    let e = grid::run_cell(&dir, 2, &quiet).unwrap_err();
    assert!(e.to_string().contains("tasks are 0–1"), "{e}");

    // The DREAM score on a test file (40 rows the cells never saw; the `all` subset only):
    // r² and ρ of the predictions each best checkpoint wrote.
    let sample = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/yeast_demo_train.txt"),
    )
    .unwrap();
    let held: Vec<&str> = sample.lines().skip(1000).take(40).collect();
    let test_file = tmp.path().join("test.txt");
    std::fs::write(&test_file, held.join("\n") + "\n").unwrap();
    let measured: Vec<f64> = held
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    let test = prixfixe::eval::report::load_test_set(&test_file, &[], None).unwrap();
    let mut rows = rows;
    let mut scored = Vec::new();
    grid::score_cells(&dir, &mut rows, &test, &test_file, |n| {
        scored.push(n.to_string())
    })
    .unwrap();
    assert_eq!(scored, cells);
    for r in &rows {
        let written = std::fs::read_dir(r.cell.dir(&dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("test-")
            })
            .expect("the cell's test predictions");
        let text = std::fs::read_to_string(&written).unwrap();
        let col = text
            .lines()
            .next()
            .unwrap()
            .split('\t')
            .position(|c| c == "prediction")
            .expect("a prediction column");
        let preds: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| l.split('\t').nth(col).unwrap().parse().unwrap())
            .collect();
        let r_ = prixfixe::eval::pearson(&preds, &measured).unwrap();
        let rho = prixfixe::eval::spearman(&preds, &measured).unwrap();
        let (p, s) = r.dream.expect("scored");
        assert!(
            (p - r_ * r_).abs() < 1e-9 && (s - rho).abs() < 1e-9,
            "{p} {s} {r_} {rho}"
        );
    }
    let csv = grid::results_csv(&rows);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",dream_pearson_score,dream_spearman_score")
    );
    assert!(grid::results_table(&rows).contains("DREAM r²"));
}

#[test]
fn a_diverging_cell_is_recorded_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("grid");
    let train = yeast_rows(tmp.path(), 120);
    let wild = Recipe {
        max_lr: Some(1e30),
        ..recipe(2)
    };
    grid::plan(&dir, &["ABAA".to_string()], Size::Tiny, data(train), wild).unwrap();
    let quiet = TrainOptions::default();
    let CellOutcome::Diverged(e) = grid::run_cell(&dir, 0, &quiet).unwrap() else {
        panic!("a learning rate of 1e30 should diverge");
    };
    assert!(e.contains("training loss became"), "{e}");
    let rows = grid::status(&dir).unwrap();
    assert!(matches!(rows[0].status, CellStatus::Diverged(_)));
    assert!(grid::results_csv(&rows).contains(",not-converged,"));
    // Run again: recorded, not retrained.
    assert!(matches!(
        grid::run_cell(&dir, 0, &quiet).unwrap(),
        CellOutcome::Diverged(_)
    ));
}

/// One cell named `name`, planned on the first 120 yeast rows and trained for 2 epochs: the
/// plan, the cell's run directory, its stored config, manifest and per-batch log
/// (`step, epoch, batch, loss, lr, beta1` as numbers), and the temporary directory.
struct TrainedCell {
    plan: grid::GridPlan,
    run: PathBuf,
    config: prixfixe::train::TrainConfig,
    manifest: serde_json::Value,
    batches: Vec<Vec<f64>>,
    _tmp: tempfile::TempDir,
}

fn train_one_cell(name: &str) -> TrainedCell {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("grid");
    let train = yeast_rows(tmp.path(), 120);
    let plan = grid::plan(
        &dir,
        &[name.to_string()],
        Size::Tiny,
        data(train),
        recipe(2),
    )
    .unwrap();
    assert_eq!(
        grid::run_cell(&dir, 0, &TrainOptions::default()).unwrap(),
        CellOutcome::Trained { from_epoch: 0 }
    );
    let run = plan.cells[0].dir(&dir);
    let read = |f: &str| std::fs::read_to_string(run.join(f)).unwrap();
    TrainedCell {
        config: prixfixe::train::TrainConfig::from_toml(&read("config.toml")).unwrap(),
        manifest: serde_json::from_str(&read("manifest.json")).unwrap(),
        batches: read("batches.csv")
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect(),
        plan,
        run,
        _tmp: tmp,
    }
}

/// A `B···` cell runs BHI's trainer: its config says so, its targets are the file's labels
/// standardised by the file's σ (recorded in the manifest), its schedule is cosine annealing
/// over training rows × epochs, there is no row doubling, and each batch's loss is the mean
/// of the forward and the reverse-complement pass — the first batch's logged loss is
/// recomputed here from the seeded initial weights.
#[test]
fn a_bhi_cell_runs_the_bhi_trainer() {
    use burn::tensor::{Tensor, TensorData};
    use prixfixe::data::{Mode, Targets, encode_batch, epoch_items};
    use prixfixe::train::{TrainerKind, load_data};

    let c = train_one_cell("BAAB");
    let (plan, stored, rows) = (&c.plan, &c.config, &c.batches);
    let cell = &plan.cells[0];
    assert_eq!(stored.recipe.trainer, TrainerKind::Bhi);
    assert!(!stored.recipe.rc_double);
    assert_eq!(stored.model.input.channels.count(), 4);
    assert_eq!(stored.model.input.padding.length(), 110);

    // σ: the population SD of the whole file's labels (the held-out rows share it).
    let labels: Vec<f64> = std::fs::read_to_string(&plan.data.train)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    let mean = labels.iter().sum::<f64>() / labels.len() as f64;
    let sd = (labels.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / labels.len() as f64).sqrt();
    let s = &c.manifest["standardized_labels"];
    assert_eq!(s["centre"], 11.0);
    assert!((s["train_sd"].as_f64().unwrap() - sd).abs() < 1e-12, "{s}");
    assert!((s["valid_sd"].as_f64().unwrap() - sd).abs() < 1e-12, "{s}");

    // 96 training rows, batch 32, no doubling: 3 batches an epoch; lr by cosine over 96 × 2.
    assert_eq!(rows.len(), 6, "{rows:?}");
    for r in rows {
        let step = r[0];
        let lr = 0.0015 * (1.0 + (std::f64::consts::PI * step / 192.0).cos()) / 2.0;
        assert!(
            (r[4] - lr).abs() < 1e-9 * 0.0015 + 5e-10,
            "step {step}: {} vs {lr}",
            r[4]
        );
        assert_eq!(r[5], 0.9);
    }

    // The first batch, recomputed: the seeded initial net, the epoch's first 32 rows.
    let config = plan.train_config(cell);
    let data = load_data(&config).unwrap();
    assert_eq!(data.train.len(), 96);
    let items = epoch_items(96, false, Some(config.recipe.seed), 0);
    let targets = Targets::Standardized {
        shift: 11.0,
        scale: sd,
    };
    let encoder = config.model.input.encoder().unwrap();
    let batch = encode_batch(&data.train, &encoder, &items[..32], targets, Mode::Train).unwrap();
    let ad = prixfixe::device::parse_device("cpu").unwrap().autodiff();
    let net = config.model.init_seeded(&ad, config.recipe.seed).unwrap();
    let x = Tensor::<3>::from_data(TensorData::new(batch.x, [32, 4, 110]), &ad);
    let y = Tensor::<2>::from_data(TensorData::new(batch.y, [32, 1]), &ad);
    let loss = |x: Tensor<3>| {
        let out = net.forward(x).out;
        net.final_block().loss(out, y.clone()).into_scalar::<f32>() as f64
    };
    let forward = loss(x.clone());
    let reverse = loss(x.flip([1, 2]));
    let logged = rows[0][3];
    assert!(
        (logged - (forward + reverse) / 2.0).abs() < 2e-6,
        "logged {logged}, forward {forward}, reverse {reverse}"
    );
    // The test can tell: the two strands' losses differ.
    assert!((forward - reverse).abs() > 1e-4, "{forward} {reverse}");
}

/// A `U···` cell runs Unlock_DNA's trainer: its config says so, its training targets are
/// z-scored by the training file (recorded in the manifest) while validation compares raw
/// labels (Q5: an unscaled MSE), its schedule is the Transformer warm-up at the first block's
/// width, and there is no row doubling (both strands are in the 6 × 200 token input).
#[test]
fn an_unlock_dna_cell_runs_the_unlock_dna_trainer() {
    use prixfixe::train::TrainerKind;

    let c = train_one_cell("UBBU");
    let (plan, stored, run) = (&c.plan, &c.config, &c.run);
    assert_eq!(stored.recipe.trainer, TrainerKind::UnlockDna);
    assert!(!stored.recipe.rc_double);
    assert!(stored.model.input.channels.tokens);
    assert_eq!(stored.model.input.channels.count(), 6);
    assert_eq!(stored.model.input.padding.length(), 200);

    // z-scoring by the training rows (96 of the 120: the split is seeded).
    let data = prixfixe::train::load_data(&plan.train_config(&plan.cells[0])).unwrap();
    let y: Vec<f64> = (0..data.train.len())
        .map(|i| data.train.target(i)[0])
        .collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    let s = &c.manifest["standardized_labels"];
    assert!((s["centre"].as_f64().unwrap() - mean).abs() < 1e-12, "{s}");
    assert!((s["train_sd"].as_f64().unwrap() - sd).abs() < 1e-12, "{s}");
    assert!(s["valid_sd"].is_null(), "{s}");

    // 3 batches an epoch; lr(n) = 16^−½ · min(n^−½, n · 12500^−1.5), n = step + 1.
    assert_eq!(c.batches.len(), 6, "{:?}", c.batches);
    for r in &c.batches {
        let n = r[0] + 1.0;
        let lr = 0.25 * n.powf(-0.5).min(n * 12_500f64.powf(-1.5));
        assert!(
            (r[4] - lr).abs() < 1e-6 * lr,
            "step {}: {} vs {lr}",
            r[0],
            r[4]
        );
        assert!(r[3].is_finite() && r[3] > 0.0);
    }
    // Predictions are z-scores, validation labels raw (~11): the MSE is the raw one.
    let epochs = std::fs::read_to_string(run.join("epochs.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(epochs.lines().next().unwrap()).unwrap();
    assert!(first["val_mse"].as_f64().unwrap() > 50.0, "{first}");
}
