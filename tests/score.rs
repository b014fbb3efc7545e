//! The DREAM score against values computed independently with scipy
//! (`tools/score_fixture.py`), plus bad input.

use std::collections::HashSet;
use std::path::PathBuf;

use prixfixe::data::SubsetRows;
use prixfixe::eval::report::{BootstrapSpec, load_test_set, score_files, subset_files};
use prixfixe::eval::score::{dream_score, prepare};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/score")
        .join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fx("expected.json")).unwrap()).unwrap()
}

fn subsets() -> Vec<PathBuf> {
    vec![fx("high_exp_seqs.csv"), fx("motif_tiling_seqs.csv")]
}

fn check(score: &prixfixe::eval::DreamScore, want: &serde_json::Value) {
    for s in &score.subsets {
        let w = &want["subsets"][&s.name];
        assert_eq!(s.n as u64, w["n"].as_u64().unwrap(), "{} n", s.name);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(
            close(s.pearson.unwrap(), w["pearson"].as_f64().unwrap()),
            "{} r",
            s.name
        );
        assert!(
            close(s.spearman.unwrap(), w["spearman"].as_f64().unwrap()),
            "{} rho",
            s.name
        );
    }
    assert!((score.pearson_score - want["pearson_score"].as_f64().unwrap()).abs() < 1e-9);
    assert!((score.spearman_score - want["spearman_score"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn scores_match_scipy_with_ties_pairs_and_repeats() {
    let test = load_test_set(&fx("test.txt"), &subsets(), None).unwrap();
    let report = score_files(&test, &[fx("pred_a.tsv"), fx("pred_b.json")], None).unwrap();
    let e = expected();
    check(&report.models[0].score, &e["a"]);
    check(&report.models[1].score, &e["b"]);
    // Renormalised over the three subsets present; the others are named as missing.
    assert!(
        report.models[0]
            .score
            .missing
            .contains(&"all_SNVs_seqs".to_string())
    );
    assert!((report.models[0].score.weight_used - 1.7).abs() < 1e-12);
}

#[test]
fn exclusion_drops_rows_and_pairs_touching_them() {
    let test = load_test_set(&fx("test.txt"), &subsets(), Some(&fx("exclude.txt"))).unwrap();
    assert_eq!(test.excluded, 15);
    let report = score_files(&test, &[fx("pred_a.tsv")], None).unwrap();
    check(&report.models[0].score, &expected()["a_excluded"]);
}

#[test]
fn constant_predictions_are_undefined_not_nan() {
    let test = load_test_set(&fx("test.txt"), &subsets(), None).unwrap();
    let flat = vec![1.0; test.data.len()];
    let s = dream_score(&test.subsets, &flat, &test.measured);
    assert!(
        s.subsets
            .iter()
            .all(|x| x.pearson.is_none() && x.spearman.is_none())
    );
    assert!(s.missing.contains(&"all".to_string()));
}

#[test]
fn bootstrap_ranks_the_informative_model_first() {
    let test = load_test_set(&fx("test.txt"), &subsets(), None).unwrap();
    let boot = BootstrapSpec {
        replicates: 300,
        fraction: 0.5,
        seed: 3,
    };
    let report = score_files(&test, &[fx("pred_a.tsv"), fx("pred_b.json")], Some(boot)).unwrap();
    let b = report.bootstrap.unwrap();
    assert_eq!(b.models[0].pearson_rank_counts.iter().sum::<usize>(), 300);
    assert!(
        b.models[0].mean_combined_rank < 1.1,
        "{}",
        b.models[0].mean_combined_rank
    );
    assert!(b.models[1].mean_combined_rank > 1.9);
    // Same seed, same ranks.
    let again = score_files(&test, &[fx("pred_a.tsv"), fx("pred_b.json")], Some(boot)).unwrap();
    assert_eq!(
        again.bootstrap.unwrap().models[1].pearson_rank_counts,
        b.models[1].pearson_rank_counts
    );
}

#[test]
fn unique_positions_and_pairs_only() {
    let test = load_test_set(&fx("test.txt"), &subsets(), None).unwrap();
    for s in &test.subsets {
        match &s.rows {
            SubsetRows::Single(v) => assert_eq!(v.iter().collect::<HashSet<_>>().len(), v.len()),
            SubsetRows::Pair(v) => assert_eq!(v.iter().collect::<HashSet<_>>().len(), v.len()),
        }
    }
    let _ = prepare(3, &[], &HashSet::new()).unwrap();
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // A subset position outside the test file.
    let sub = dir.path().join("high_exp_seqs.csv");
    std::fs::write(&sub, ",tag,sequence,pos,exp\n0,a,ACGT,500,\n").unwrap();
    let e = load_test_set(&fx("test.txt"), &[sub], None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("high_exp_seqs.csv:2") && e.contains("outside the test file"),
        "{e}"
    );
    // An unknown subset name.
    let odd = dir.path().join("my_subset.csv");
    std::fs::write(&odd, ",tag,sequence,pos,exp\n0,a,ACGT,1,\n").unwrap();
    let e = load_test_set(&fx("test.txt"), &[odd], None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("unknown subset \"my_subset\""), "{e}");
    // Predictions of the wrong length, and non-finite ones.
    let test = load_test_set(&fx("test.txt"), &[], None).unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "1\n2\n").unwrap();
    let e = score_files(&test, &[short], None).unwrap_err().to_string();
    assert!(
        e.contains("2 predictions for a test file of 120 rows"),
        "{e}"
    );
    let inf = dir.path().join("inf.txt");
    std::fs::write(&inf, "1\ninf\n").unwrap();
    let e = score_files(&test, &[inf], None).unwrap_err();
    assert_eq!(e.line(), Some(2));
    // A test file without measured values.
    let bare = dir.path().join("bare.txt");
    std::fs::write(&bare, "ACGT\nACGA\n").unwrap();
    let e = load_test_set(&bare, &[], None).err().unwrap().to_string();
    assert!(e.contains("no measured values"), "{e}");
    assert!(subset_files(dir.path()).is_ok());
}
