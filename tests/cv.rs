//! Cross-validation (`prixfixe::grid::cv`): the paper's protocols planned on the grid's
//! machinery, each fold run an ordinary run directory, the test predictions averaged per
//! test group and scored.

use std::path::{Path, PathBuf};

use prixfixe::blocks::first_layers::deepstarr::DeepStarrFirstConfig;
use prixfixe::blocks::{FinalConfig, FirstConfig};
use prixfixe::grid::cv::{self, CvSpec, Protocol};
use prixfixe::grid::{self, CellOutcome};
use prixfixe::train::{DataSection, Recipe, TrainConfig, TrainOptions};
use prixfixe::{DataKind, NetConfig};

fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// DeepSTARR's layers at a few hundred parameters, for `data`.
fn tiny_deepstarr(data: DataKind) -> NetConfig {
    let mut m = NetConfig::preset("deepstarr", data).unwrap();
    m.first = FirstConfig::DeepStarr(DeepStarrFirstConfig {
        filters: 4,
        ..Default::default()
    });
    m.core = serde_json::from_value(
        serde_json::json!({"block": "deepstarr", "filters": [4, 4, 4], "kernels": [3, 3, 3]}),
    )
    .unwrap();
    let tasks = m.final_block.tasks();
    m.final_block = serde_json::from_value::<FinalConfig>(
        serde_json::json!({"block": "deepstarr", "tasks": tasks, "hidden": [8], "dropout": 0.0}),
    )
    .unwrap();
    m
}

fn recipe(model: &NetConfig, kind: DataKind) -> Recipe {
    Recipe {
        epochs: 2,
        batch_size: 16,
        ..TrainConfig::for_data(model.clone(), kind, PathBuf::new()).recipe
    }
}

fn data(train: &Path) -> DataSection {
    TrainConfig::for_data(
        NetConfig::preset("dream-cnn", DataKind::Human).unwrap(),
        DataKind::Human,
        train.to_path_buf(),
    )
    .data
}

fn spec(model: &NetConfig, kind: DataKind, train: &Path, protocol: Protocol, seed: u64) -> CvSpec {
    CvSpec {
        name: "tiny".into(),
        model: model.clone(),
        data: data(train),
        recipe: recipe(model, kind),
        protocol,
        seed,
    }
}

fn run_all(dir: &Path, n: usize) {
    for task in 0..n {
        let outcome = grid::run_cell(dir, task, &TrainOptions::default()).unwrap();
        assert!(
            matches!(outcome, CellOutcome::Trained { from_epoch: 0 }),
            "{outcome:?}"
        );
    }
}

/// The human protocol on the shipped lentiMPRA sample cut to three folds: 3 × 2 runs, each
/// test fold's two models averaged on exactly its rows, every row predicted once, and the
/// pooled figures those of the concatenated predictions.
#[test]
fn human_folds_are_averaged_per_test_fold_and_pooled() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data_file("human_train_200.txt")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines
        .filter(|l| matches!(l.rsplit('\t').next(), Some("0" | "1" | "2")))
        .collect();
    let train = tmp.path().join("three_folds.txt");
    std::fs::write(&train, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let model = tiny_deepstarr(DataKind::Human);
    let dir = tmp.path().join("cv");
    let plan = cv::plan(
        &dir,
        &spec(&model, DataKind::Human, &train, Protocol::Folds, 42),
    )
    .unwrap();
    let names: Vec<&str> = plan.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tiny-test0-valid1",
            "tiny-test0-valid2",
            "tiny-test1-valid0",
            "tiny-test1-valid2",
            "tiny-test2-valid0",
            "tiny-test2-valid1"
        ]
    );
    // A run trains on neither its test fold nor its validation fold.
    let run = prixfixe::train::load_data(&plan.train_config(&plan.cells[0])).unwrap();
    let folds = |ds: &prixfixe::data::SeqDataset| ds.folds.clone().unwrap();
    assert!(folds(&run.train).iter().all(|&f| f == 2));
    assert!(folds(&run.valid).iter().all(|&f| f == 1));
    // Collecting before the runs finish scores nothing and says so.
    let e = cv::collect(&dir, 64, |_| {}).unwrap_err().to_string();
    assert!(e.contains("0 of 6 runs"), "{e}");
    run_all(&dir, plan.cells.len());
    let report = cv::collect(&dir, 64, |_| {}).unwrap();
    assert_eq!(report.runs_finished, 6);
    let count = |f: &str| {
        rows.iter()
            .filter(|l| l.ends_with(&format!("\t{f}")))
            .count()
    };
    for (g, f) in report.scores.iter().zip(["0", "1", "2"]) {
        assert_eq!(
            (g.group.as_str(), g.rows, g.models),
            (&*format!("test{f}"), count(f), 2)
        );
    }
    let pooled = report.scores.last().unwrap();
    assert_eq!((pooled.group.as_str(), pooled.rows), ("pooled", rows.len()));
    // Every row once, and the pooled Pearson r is that of the written predictions.
    let table = std::fs::read_to_string(dir.join(cv::PREDICTIONS_FILE)).unwrap();
    let body: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(body.len(), rows.len());
    let mut ids: Vec<&str> = body.iter().map(|r| r[2]).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len());
    let col = |i: usize| -> Vec<f64> { body.iter().map(|r| r[i].parse().unwrap()).collect() };
    let r = prixfixe::eval::pearson(&col(4), &col(3)).unwrap();
    assert!((r - pooled.pearson[0].unwrap()).abs() < 1e-5, "{r}");
    // A test row's prediction is the mean of its test fold's two models.
    use prixfixe::predict::{Model, predict_oriented};
    let device = burn::tensor::Device::flex();
    let first = &body[0];
    let group = first[0];
    let line: usize = first[1].parse().unwrap();
    let seq = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .split('\t')
        .nth(1)
        .unwrap();
    let codes = prixfixe::data::alphabet::encode(seq.as_bytes()).unwrap();
    let reverse = first[2].ends_with("_Reversed:");
    let mut sum = 0.0;
    for cell in plan
        .cells
        .iter()
        .filter(|c| c.fold.as_ref().unwrap().test == group)
    {
        let m = Model::from_checkpoint(&cell.dir(&dir).join("best.safetensors"), &device).unwrap();
        sum += predict_oriented(&m, &[&codes], Some(&[reverse]), 1).unwrap()[0];
    }
    let written: f32 = first[4].parse().unwrap();
    assert!(
        (sum / 2.0 - written).abs() < 1e-5,
        "{} vs {written}",
        sum / 2.0
    );
    // The directory stands for its models wherever models are read.
    let dirs = grid::finished_run_dirs(&dir).unwrap();
    assert_eq!(dirs.len(), 6);
    // A second collect gives the same figures.
    assert_eq!(cv::collect(&dir, 64, |_| {}).unwrap(), report);
    // The truth's figures on the same rows: a truth equal to the labels scores r = 1, and an
    // id it lacks is named.
    let truth = tmp.path().join("truth.tsv");
    let mut t = String::from("id\tmean_value\n");
    for r in &body {
        t.push_str(&format!("{}\t{}\n", r[2], r[3]));
    }
    std::fs::write(&truth, &t).unwrap();
    let ceiling = cv::truth_report(&dir, &truth).unwrap();
    assert_eq!(ceiling.scores.len(), 4);
    assert!((ceiling.scores[3].pearson[0].unwrap() - 1.0).abs() < 1e-9);
    std::fs::write(&truth, t.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let e = cv::truth_report(&dir, &truth).unwrap_err().to_string();
    assert!(e.contains("is not in"), "{e}");
}

/// The Drosophila protocol: the held-out chromosome's rows are the test rows of its runs;
/// the other regions are dealt into folds with both strands in one fold, the same way from
/// the same seed.
#[test]
fn drosophila_chromosomes_keep_strands_together() {
    let tmp = tempfile::tempdir().unwrap();
    // The shipped sample is chrX; put every region whose start is even on chr2L.
    let text = std::fs::read_to_string(data_file("drosophila_train_200.txt")).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        let even = i > 0 && f[1].parse::<u64>().unwrap() % 2 == 0;
        if even {
            let id = f[3].replacen(f[0], "chr2L", 1);
            out.push_str(&format!(
                "chr2L\t{}\t{}\t{id}\t{}\n",
                f[1],
                f[2],
                f[4..].join("\t")
            ));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    let train = tmp.path().join("fly.txt");
    std::fs::write(&train, &out).unwrap();
    let model = tiny_deepstarr(DataKind::Drosophila);
    let protocol = Protocol::Chromosomes {
        test: vec!["chr2L".into(), "chrX".into()],
        folds: 3,
    };
    let dir = tmp.path().join("cv");
    let plan = cv::plan(
        &dir,
        &spec(&model, DataKind::Drosophila, &train, protocol.clone(), 7),
    )
    .unwrap();
    assert_eq!(plan.cells.len(), 6);
    let fold_file = dir.join("folds/chr2L.tsv");
    let folds = prixfixe::data::folds::read(&fold_file, 200).unwrap();
    let mut region_fold = std::collections::HashMap::new();
    for (l, &f) in out.lines().skip(1).zip(&folds) {
        let c: Vec<&str> = l.split('\t').collect();
        assert_eq!(c[0] == "chr2L", f == 3, "{l}");
        let prev = region_fold.insert((c[0].to_string(), c[1].to_string()), f);
        assert!(
            prev.is_none_or(|p| p == f),
            "both strands of {} {} in one fold",
            c[0],
            c[1]
        );
    }
    // Each of the 3 folds holds regions.
    for k in 0..3 {
        assert!(folds.contains(&k), "fold {k} empty");
    }
    let run = prixfixe::train::load_data(&plan.train_config(&plan.cells[0])).unwrap();
    let on_2l = |ds: &prixfixe::data::SeqDataset| {
        ds.ids
            .as_ref()
            .unwrap()
            .iter()
            .filter(|id| id.starts_with("chr2L_"))
            .count()
    };
    assert_eq!(on_2l(&run.train) + on_2l(&run.valid), 0);
    // The same seed deals the same folds.
    let again = tmp.path().join("cv2");
    cv::plan(
        &again,
        &spec(&model, DataKind::Drosophila, &train, protocol.clone(), 7),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&fold_file).unwrap(),
        std::fs::read(again.join("folds/chr2L.tsv")).unwrap()
    );
    // A chromosome not in the file is refused by name.
    let e = cv::plan(
        &tmp.path().join("cv3"),
        &spec(
            &model,
            DataKind::Drosophila,
            &train,
            Protocol::Chromosomes {
                test: vec!["chr3R".into()],
                folds: 3,
            },
            7,
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("chr3R"), "{e}");
    assert!(
        !tmp.path().join("cv3").exists(),
        "a failed plan leaves nothing"
    );
}

/// An element whose two orientations sit in different folds would leak the test fold into
/// training: refused with the file, the line and both ids.
#[test]
fn a_fold_column_that_splits_an_element_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let seq = format!("AGGACCGGATCAACT{}CATTGCGTGAACCGA", "ACGT".repeat(50));
    let train = tmp.path().join("h.txt");
    let mut text = String::from("seq_id\tseq\tmean_value\tfold\n");
    for (id, fold) in [("e1_F", 0), ("e2_F", 1), ("e3_F", 2), ("e1_Reversed:", 2)] {
        text.push_str(&format!("{id}\t{seq}\t0.5\t{fold}\n"));
    }
    std::fs::write(&train, text).unwrap();
    let model = tiny_deepstarr(DataKind::Human);
    let e = cv::plan(
        &tmp.path().join("cv"),
        &spec(&model, DataKind::Human, &train, Protocol::Folds, 42),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("h.txt:5") && e.contains("e1_Reversed:") && e.contains("e1_F"),
        "{e}"
    );
    assert!(!tmp.path().join("cv").exists());
}

/// `prixfixe benchmark` end to end on the shipped human sample cut to three folds, with the
/// baseline at one batch per epoch: the table, the manifest, both pictures; run again, it
/// trains nothing and writes the same table.
#[test]
fn benchmark_command_runs_end_to_end_and_resumes() {
    use crate::common::prixfixe;
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(data_file("human_train_200.txt")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines
        .filter(|l| matches!(l.rsplit('\t').next(), Some("0" | "1" | "2")))
        .collect();
    let train = tmp.path().join("three_folds.txt");
    std::fs::write(&train, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let out = tmp.path().join("bench");
    let args = [
        "benchmark",
        "--data",
        "human",
        "--train",
        train.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--models",
        "deepstarr",
        "--epochs",
        "1",
        "--batch-per-epoch",
        "1",
    ];
    let (ok, stdout, stderr) = prixfixe(&args);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("deepstarr") && stdout.contains("6/6"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("benchmark.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "3 test folds and pooled: {csv}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("benchmark.json")).unwrap()).unwrap();
    assert_eq!(manifest["data"], "human");
    assert_eq!(manifest["train_sha256"].as_str().unwrap().len(), 64);
    assert!(
        std::fs::read(out.join("benchmark.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert!(out.join("benchmark.svg").exists());
    let (ok, _, stderr) = prixfixe(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("0 of 6 cells to run"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("benchmark.csv")).unwrap(),
        csv
    );
}
