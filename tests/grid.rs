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
