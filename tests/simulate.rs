//! The simulator: determinism by hash, challenge formats, calibration report.

use std::path::Path;

use prixfixe::data::{DreamFile, ReadOptions, read_dream};
use prixfixe::eval::predictions::read_predictions;
use prixfixe::eval::report::{load_test_set, subset_files};
use prixfixe::sim::testset::TestSizes;
use prixfixe::sim::{SimConfig, simulate};
use sha2::{Digest, Sha256};

fn tiny(seed: u64) -> SimConfig {
    let mut c = SimConfig::small();
    c.seed = seed;
    c.train_rows = 3000;
    c.test.sizes = TestSizes {
        random: 200,
        high: 20,
        low: 20,
        native: 30,
        challenging: 20,
        snv: 200,
        motif_perturbation: 100,
        motif_tiling: 100,
        total: 1000,
    };
    c.test.ga.population = 200;
    c.test.ga.generations = 3;
    c.test.ga_challenging.generations = 5;
    c
}

/// SHA-256 of every data file (not simulation.json, which holds timings).
fn digest(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "simulation.json" {
                let h = Sha256::digest(std::fs::read(&p).unwrap());
                let name = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((name, format!("{h:x}")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: u64| {
        let dir = tmp.path().join(name);
        simulate(&dir, &tiny(seed), false, &mut |_| {}).unwrap();
        digest(&dir)
    };
    let a = run("a", 7);
    let b = run("b", 7);
    let c = run("c", 8);
    assert_eq!(a.len(), 11, "{a:?}"); // train, test, truth, 8 subsets
    assert_eq!(a, b);
    for ((name, ha), (_, hc)) in a.iter().zip(&c) {
        assert_ne!(ha, hc, "{name} did not change with the seed");
    }
}

#[test]
fn files_are_in_the_challenge_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let cfg = tiny(3);
    let summary = simulate(&dir, &cfg, false, &mut |_| {}).unwrap();

    // Training file: our own DREAM reader accepts it; singletons are integers.
    let train = read_dream(
        &dir.join("train.txt"),
        DreamFile::Train,
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(train.len(), 3000);
    let singles = train.is_singleton.iter().filter(|&&s| s).count();
    assert!((1400..2100).contains(&singles), "{singles}");
    assert!(train.targets.iter().all(|v| (0.0..=17.0).contains(v)));
    let text = std::fs::read_to_string(dir.join("train.txt")).unwrap();
    for line in text.lines().take(200) {
        let (seq, v) = line.split_once('\t').unwrap();
        assert!(seq.starts_with("TGCATTTTTTTCACATC") && seq.ends_with("GGTTACGGCTGTT"));
        let v: f64 = v.parse().unwrap();
        assert_eq!(v.fract() == 0.0, !line.contains('.'), "{line}");
    }

    // Test file and subsets: the scorer's loader checks every position and sequence.
    let test = load_test_set(
        &dir.join("test.txt"),
        &subset_files(&dir.join("test_subsets")).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(test.data.len(), 1000);
    assert_eq!(summary.test_rows, 1000);
    assert_eq!(test.subsets.len(), 9, "all + eight subsets");
    assert!(test.measured.iter().all(|v| (-1.4..1.75).contains(v)));
    for (name, n) in &summary.subsets {
        let expected = match name.as_str() {
            "high_exp_seqs" | "low_exp_seqs" | "challenging_seqs" => 20,
            "yeast_seqs" => 30,
            "all_random_seqs" | "all_SNVs_seqs" => 200,
            _ => 100,
        };
        assert_eq!(*n, expected, "{name}");
    }
    let truth = read_predictions(&dir.join("test_truth.tsv"), 1000).unwrap();
    let r = prixfixe::eval::metrics::pearson(&truth, &test.measured).unwrap();
    assert!(r > 0.9, "truth vs measured r = {r}");

    // Calibration report: the k-mer baseline stays clearly below the ceiling.
    let rep = prixfixe::sim::report::calibrate(&dir, &summary, 3000).unwrap();
    let models = &rep.scores.models;
    assert_eq!(models.len(), 3);
    assert!(
        models[0].score.pearson_score > models[2].score.pearson_score + 0.2,
        "{}",
        rep.table()
    );
    assert!(dir.join("report.json").exists());

    // An existing simulation is not overwritten without force.
    let err = simulate(&dir, &cfg, false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn truth_is_exposed_and_the_designs_follow_their_proxy() {
    use prixfixe::sim::truth::{TruthModel, TruthParams};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let cfg = tiny(5);
    simulate(&dir, &cfg, false, &mut |_| {}).unwrap();
    let truth = TruthModel::new(TruthParams::default()).unwrap();
    let proxy = truth.perturbed(cfg.seed ^ 0xa, cfg.test.proxy_strength);
    let mean = |file: &str, m: &TruthModel| {
        let ds = prixfixe::data::read_subset(&dir.join("test_subsets").join(file)).unwrap();
        let v: Vec<f64> = ds.sequences.iter().map(|(_, s, _)| m.truth(s)).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    // The GA maximised / minimised the proxy: high designs beat low ones on it, and on the truth.
    assert!(mean("high_exp_seqs.csv", &proxy) > mean("all_random_seqs.csv", &proxy));
    assert!(mean("low_exp_seqs.csv", &proxy) < mean("all_random_seqs.csv", &proxy));
    assert!(mean("high_exp_seqs.csv", &truth) > mean("low_exp_seqs.csv", &truth));
}
