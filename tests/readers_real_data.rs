//! Readers on real samples of the reference release (fixtures in `tests/data`).

use std::path::PathBuf;

use prixfixe::data::formats::detect::{Format, detect_format, read_any, summarize};
use prixfixe::data::{
    DreamFile, Padding, ReadOptions, SubsetRows, TableSpec, read_dream, read_subset, read_table,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn yeast_training_sample() {
    let opts = ReadOptions {
        padding: Some(Padding::yeast()),
    };
    let ds = read_dream(&fixture("yeast_demo_train.txt"), DreamFile::Train, &opts).unwrap();
    assert_eq!(ds.len(), 6370);
    assert_eq!(ds.n_tasks(), 1);
    let s = summarize(&ds, &Format::Dream);
    assert_eq!((s.min_len, s.max_len), (87, 135));
    assert_eq!(s.length_counts.iter().find(|x| x.0 == 110).unwrap().1, 5219);
    let singletons = s.singletons.unwrap();
    assert!(singletons > 0 && singletons < ds.len());
    let label = &s.labels[0];
    assert!(label.min >= 0.0 && label.max <= 17.0);
    assert_eq!(ds.target(1), &[12.0]);
    assert!(ds.is_singleton[1] && !ds.is_singleton[0]);
}

#[test]
fn drosophila_sample() {
    let path = fixture("drosophila_train_200.txt");
    assert_eq!(
        detect_format(&path).unwrap(),
        Format::Table(TableSpec::drosophila())
    );
    let ds = read_table(&path, &TableSpec::drosophila(), &ReadOptions::default()).unwrap();
    assert_eq!(ds.len(), 200);
    assert_eq!(ds.n_tasks(), 2);
    assert!(ds.seqs.iter().all(|s| s.len() == 249));
    assert_eq!(ds.is_reverse.iter().filter(|&&r| r).count(), 88);
    let ids = ds.ids.as_ref().unwrap();
    for (id, &rev) in ids.iter().zip(&ds.is_reverse) {
        assert_eq!(id.contains("_-_"), rev);
    }
}

#[test]
fn human_sample() {
    let path = fixture("human_train_200.txt");
    let format = detect_format(&path).unwrap();
    assert_eq!(format, Format::Table(TableSpec::human()));
    let ds = read_any(&path, &format, &ReadOptions::default()).unwrap();
    assert_eq!(ds.len(), 200);
    assert!(ds.seqs.iter().all(|s| s.len() == 230));
    assert_eq!(ds.is_reverse.iter().filter(|&&r| r).count(), 102);
    assert!(ds.folds.as_ref().unwrap().iter().all(|&f| f < 10));
}

#[test]
fn subset_files() {
    let high = read_subset(&fixture("high_exp_seqs.csv")).unwrap();
    match &high.rows {
        SubsetRows::Single(p) => assert_eq!(p.len() + high.repeats, 968),
        _ => panic!("high_exp_seqs is a single-sequence subset"),
    }
    let tiling = read_subset(&fixture("motif_tiling_seqs.csv")).unwrap();
    match &tiling.rows {
        SubsetRows::Pair(p) => {
            assert_eq!(p.len() + tiling.repeats, 2653);
            let mut unique = p.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), p.len());
        }
        _ => panic!("motif_tiling_seqs is a pair subset"),
    }
    assert_eq!(
        detect_format(&fixture("motif_tiling_seqs.csv")).unwrap(),
        Format::Subset
    );
}

#[test]
fn dream_format_is_detected() {
    assert_eq!(
        detect_format(&fixture("yeast_demo_train.txt")).unwrap(),
        Format::Dream
    );
}
