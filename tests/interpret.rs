//! Interpretation and design: ISM exact against brute force, ensembles, variants, design, CLI.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use prixfixe::NetConfig;
use prixfixe::data::alphabet;
use prixfixe::interpret::ism::ism;
use prixfixe::predict::{Ensemble, Model, Predictor, predict_codes};

use crate::common;
use common::{TINY_RNN, prixfixe};

const TINY_AUTOSOME: &str = r#"[input]
padding = { kind = "plasmid", length = 150 }
channels = { is_reverse = true, is_singleton = true }
[first]
block = "autosome"
out_channels = 16
[core]
block = "autosome"
widths = [8, 8]
[final]
block = "soft-class"
"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The tiny DREAM-RNN-shaped model with weights saved by PyTorch.
fn pytorch_rnn() -> Model {
    let config = NetConfig::from_toml(TINY_RNN).unwrap();
    Model::from_weights(config, &fixture("tiny_dream-rnn.pth"), &Device::flex()).unwrap()
}

/// A tiny CNN with its own random weights (seeded).
fn random_cnn(seed: u64) -> Model {
    let device = Device::flex();
    let config = NetConfig::from_toml(TINY_AUTOSOME).unwrap();
    let net = config.init_seeded(&device, seed).unwrap();
    Model::new(config, net, device).unwrap()
}

fn seqs() -> Vec<Vec<u8>> {
    [
        "TGCATTTTTTTCACATCAAAACCCGGGTTTGATTACCCGGAGGTTACGGCTGTT",
        "TGCATTTTTTTCACATCGGNGGGGGGTTATAAAGCTGGTTACGGCTGTT",
    ]
    .iter()
    .map(|s| alphabet::encode(s.as_bytes()).unwrap())
    .collect()
}

fn check_brute_force(model: &impl Predictor) {
    let seqs = seqs();
    // Batches of 7 mix references and mutants of both sequences.
    let maps = ism(model, &seqs, 7).unwrap();
    let mut max_diff = 0f32;
    let mut nonzero = 0;
    for (s, m) in seqs.iter().zip(&maps) {
        let reference = predict_codes(model, &[s.as_slice()], 1).unwrap()[0];
        assert!((m.reference[0] - reference).abs() < 1e-5);
        for pos in 0..s.len() {
            for b in 0..4u8 {
                let got = m.effect(pos, b, 0);
                if b == s[pos] {
                    assert_eq!(got, 0.0);
                    continue;
                }
                let mut mutant = s.clone();
                mutant[pos] = b;
                let want = predict_codes(model, &[mutant.as_slice()], 1).unwrap()[0] - reference;
                max_diff = max_diff.max((got - want).abs());
                nonzero += usize::from(want.abs() > 1e-6);
            }
        }
    }
    assert!(
        max_diff < 1e-4,
        "ISM differs from brute force by {max_diff}"
    );
    assert!(
        nonzero > 50,
        "the model should react to substitutions ({nonzero})"
    );
}

#[test]
fn ism_equals_brute_force_for_pytorch_weights_and_a_cnn() {
    check_brute_force(&pytorch_rnn());
    check_brute_force(&random_cnn(1));
}

#[test]
fn ensemble_is_the_mean_of_its_members() {
    let (a, b) = (random_cnn(1), random_cnn(2));
    let s = seqs();
    let refs: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
    let pa = predict_codes(&a, &refs, 8).unwrap();
    let pb = predict_codes(&b, &refs, 8).unwrap();
    assert!((pa[0] - pb[0]).abs() > 1e-6, "two seeds, two models");
    let e = Ensemble::new(vec![a, b]).unwrap();
    let pe = predict_codes(&e, &refs, 8).unwrap();
    for i in 0..2 {
        assert!((pe[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-5);
    }
    // Models of other inputs cannot be averaged.
    let human = NetConfig::preset("dream-cnn", prixfixe::DataKind::Human).unwrap();
    let device = Device::flex();
    let h = Model::new(human.clone(), human.init(&device).unwrap(), device).unwrap();
    let err = Ensemble::new(vec![random_cnn(1), h])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model 2"), "{err}");
}

fn run_dir(dir: &Path, name: &str, seed: u64) -> String {
    let run = dir.join(name);
    std::fs::create_dir_all(&run).unwrap();
    random_cnn(seed)
        .save(&run.join("best.safetensors"))
        .unwrap();
    run.display().to_string()
}

/// Two random-CNN run directories and a FASTA of `extra` beside sequences a and b.
fn runs_and_fasta(d: &Path, extra: &str) -> (String, String, PathBuf) {
    let (run1, run2) = (run_dir(d, "r1", 1), run_dir(d, "r2", 2));
    let fa = d.join("x.fa");
    let text = format!(
        ">a\nTGCATTTTTTTCACATCAAAACCCGGGTTTGGTTACGGCTGTT\n>b\nTGCATTTTTTTCACATCGGGTGGGAGGGGTTACGGCTGTT\n{extra}"
    );
    std::fs::write(&fa, text).unwrap();
    (run1, run2, fa)
}

#[test]
fn ism_variants_and_design_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (run1, run2, fa) = runs_and_fasta(d, "");
    let out = d.join("ism");
    let s = |p: &Path| p.display().to_string();
    let (ok, _, err) = prixfixe(&[
        "ism",
        "--model-dir",
        &run1,
        "--input",
        &s(&fa),
        "--out",
        &s(&out),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let tsv = std::fs::read_to_string(out.join("ism.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), 1 + 43 + 40);
    assert!(tsv.starts_with("id\tposition\tref\tA\tC\tG\tT\tmean\na\t1\tT\t"));
    assert!(out.join("plots/a.svg").exists() && out.join("plots/b.png").exists());
    // Unequal lengths do not fit one array: a clear error.
    let (ok, _, err) = prixfixe(&[
        "ism",
        "--model-dir",
        &run1,
        "--input",
        &s(&fa),
        "--out",
        &s(&d.join("ism2")),
        "--npy",
        "--quiet",
    ]);
    assert!(!ok && err.contains("one length"), "{err}");
    let fa2 = d.join("y.fa");
    std::fs::write(&fa2, ">a\nTGCATTTTTTTCACATCAAAACCCGGGTTTGGTTACGGCTGTT\n").unwrap();
    let (ok, _, err) = prixfixe(&[
        "ism",
        "--model-dir",
        &run1,
        "--input",
        &s(&fa2),
        "--out",
        &s(&d.join("ism3")),
        "--npy",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let npy = std::fs::read(d.join("ism3/ism.npy")).unwrap();
    assert_eq!(npy.len(), 128 + 43 * 4 * 4);
    assert!(String::from_utf8_lossy(&npy[..128]).contains("'shape': (1, 43, 4)"));

    // Variants from pairs, averaged over two models.
    let pairs = d.join("pairs.tsv");
    std::fs::write(
        &pairs,
        "id\tref\talt\nv1\tTGCATTTTTTTCACATCAAAACCCGGGTTTGGTTACGGCTGTT\tTGCATTTTTTTCACATCAAAACCTGGGTTTGGTTACGGCTGTT\n",
    )
    .unwrap();
    let vout = d.join("v.tsv");
    let (ok, _, err) = prixfixe(&[
        "variants",
        "--model-dir",
        &run1,
        "--model-dir",
        &run2,
        "--pairs",
        &s(&pairs),
        "--output",
        &s(&vout),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let v = std::fs::read_to_string(&vout).unwrap();
    let lines: Vec<&str> = v.lines().collect();
    assert_eq!(
        lines[0],
        "id\tref_pred\talt_pred\teffect\teffect_m1\teffect_m2"
    );
    let f: Vec<f64> = lines[1]
        .split('\t')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!((f[2] - (f[1] - f[0])).abs() < 1e-5);
    assert!((f[2] - (f[3] + f[4]) / 2.0).abs() < 1e-5);

    // Design: a short GA; the best sequence beats the mean of random ones.
    let dout = d.join("designs.tsv");
    let (ok, _, err) = prixfixe(&[
        "design",
        "--model-dir",
        &run1,
        "--population",
        "40",
        "--generations",
        "3",
        "--n",
        "5",
        "--output",
        &s(&dout),
    ]);
    assert!(ok, "{err}");
    // Before the long part: the remaining generations' time from the measured rate.
    assert!(
        err.contains("3 more generation(s), at most about") && err.contains("sequences/s"),
        "{err}"
    );
    let text = std::fs::read_to_string(&dout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0], "rank\tsequence\tfitness\tprediction_m1");
    let seq = rows[1].split('\t').nth(1).unwrap();
    assert!(
        seq.starts_with("TGCATTTTTTTCACATC") && seq.ends_with("GGTTACGGCTGTT") && seq.len() == 110
    );
    let fit: f64 = rows[1].split('\t').nth(2).unwrap().parse().unwrap();
    let pred: f64 = rows[1].split('\t').nth(3).unwrap().parse().unwrap();
    assert!(
        (fit - pred).abs() < 1e-4,
        "fitness of max is the prediction"
    );
    // The same designs as FASTA beside the table, best first, read back by `predict`: the
    // same predictions.
    let fasta = std::fs::read_to_string(d.join("designs.fa")).unwrap();
    let lines: Vec<&str> = fasta.lines().collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines[0].starts_with(">design_1 fitness=") && lines[1] == seq,
        "{fasta}"
    );
    let pout = d.join("designs_pred.tsv");
    let (ok, _, err) = prixfixe(&[
        "predict",
        "--model-dir",
        &run1,
        "--input",
        &s(&d.join("designs.fa")),
        "--output",
        &s(&pout),
    ]);
    assert!(ok, "{err}");
    let again = std::fs::read_to_string(&pout).unwrap();
    let first: f64 = again
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next_back())
        .unwrap()
        .parse()
        .unwrap();
    assert!((first - pred).abs() < 1e-4, "{again}");
    // Disagreement needs two models.
    let (ok, _, err) = prixfixe(&[
        "design",
        "--model-dir",
        &run1,
        "--objective",
        "disagree",
        "--population",
        "10",
        "--quiet",
    ]);
    assert!(!ok && err.contains("exactly two models"), "{err}");
    let (ok, _, err) = prixfixe(&[
        "design",
        "--model-dir",
        &run1,
        "--model-dir",
        &run2,
        "--objective",
        "disagree",
        "--population",
        "20",
        "--generations",
        "2",
        "--n",
        "3",
        "--output",
        &s(&d.join("dis.tsv")),
        "--quiet",
    ]);
    assert!(ok, "{err}");
}

/// Integrated gradients and SHAP sum to f(x) − f(reference), with f the prediction exactly as
/// `predict` makes it (both strands, running statistics): checked for the PyTorch-weighted
/// BiLSTM model and a CNN with batch norm, against `predict_codes`.
#[test]
fn attributions_sum_to_the_difference_of_predictions() {
    use prixfixe::interpret::attribute::{AttributeOptions, Method, attribute};
    let seqs = seqs();
    for model in [pytorch_rnn(), random_cnn(3)] {
        let preds = predict_codes(&model, &[&seqs[0], &seqs[1]], 8).unwrap();
        for method in [Method::IntegratedGradients, Method::Shap] {
            let mut opts = AttributeOptions::new(method);
            opts.shuffles = 4;
            opts.steps = if method == Method::Shap { 24 } else { 48 };
            let out = attribute(&[&model], &seqs, &opts, 16).unwrap();
            for (a, want) in out.iter().zip(&preds) {
                let l = model.encoder().length();
                assert_eq!((a.onehot.len(), a.values.len()), (4 * l, 4 * l));
                assert!(
                    (a.prediction - want).abs() < 1e-4,
                    "{} vs {want}",
                    a.prediction
                );
                let diff = a.prediction - a.reference.unwrap();
                assert!(
                    diff.abs() > 1e-4,
                    "{method:?}: the reference differs from the input"
                );
                let sum: f32 = a.values.iter().sum();
                assert!(
                    (sum - diff).abs() < 0.02 * diff.abs() + 2e-5,
                    "{method:?}: Σ attributions {sum} vs f(x) − f(ref) {diff}"
                );
            }
        }
        // Input × gradient is the saliency at the bases present.
        let sal = attribute(
            &[&model],
            &seqs[..1],
            &AttributeOptions::new(Method::Saliency),
            8,
        )
        .unwrap();
        let ixg = attribute(
            &[&model],
            &seqs[..1],
            &AttributeOptions::new(Method::InputXGradient),
            8,
        )
        .unwrap();
        let (s, x) = (&sal[0], &ixg[0]);
        assert!(s.values.iter().any(|v| v.abs() > 1e-6));
        // The input planes a PyTorch twin takes are that one-hot.
        let (planes, x0) = prixfixe::interpret::input_planes(&model, &seqs[..1]).unwrap();
        assert_eq!((planes, &x0), (4, &s.onehot));
        for j in 0..s.values.len() {
            assert!((x.values[j] - s.values[j] * s.onehot[j]).abs() < 1e-6);
        }
    }
}

/// `prixfixe attribute` on an ensemble of two runs: the two `.npz` arrays read back with the
/// shape TF-MoDISco takes, `(N, 4, L)`; the one-hot is the input as the model sees it; the
/// SHAP values sum to the prediction minus the references' mean, per the table; figures in
/// both formats; a task the model lacks is refused naming its columns.
#[test]
fn attribute_command_writes_arrays_modisco_reads() {
    use prixfixe::output::read_npz_f32;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (run1, run2, fa) = runs_and_fasta(d, ">c\nACGTTGCATGCCATG\n");
    let out = d.join("attr");
    let s = |p: &Path| p.display().to_string();
    let (ok, _, err) = prixfixe(&[
        "attribute",
        "--model-dir",
        &run1,
        "--model-dir",
        &run2,
        "--input",
        &s(&fa),
        "--out",
        &s(&out),
        "--method",
        "shap",
        "--shuffles",
        "3",
        "--steps",
        "16",
        "--plots",
        "1",
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("shap of 3 sequences: 48 gradient passes each"),
        "{err}"
    );
    let (shape, onehot) = read_npz_f32(&out.join("onehot.npz"), "arr_0").unwrap();
    let (shape2, values) = read_npz_f32(&out.join("attributions.npz"), "arr_0").unwrap();
    assert_eq!(shape, vec![3, 4, 150]);
    assert_eq!(shape2, shape);
    // Every position of the padded window holds one base (the plasmid padding has no N).
    for n in 0..3 {
        for j in 0..150 {
            let col: f32 = (0..4).map(|c| onehot[(n * 4 + c) * 150 + j]).sum();
            assert_eq!(col, 1.0);
        }
    }
    let tsv = std::fs::read_to_string(out.join("attributions.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("id\ttask\tmethod\tprediction\treference\tsum")
    );
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f[i].parse::<f32>().unwrap();
        let sum: f32 = values[n * 600..(n + 1) * 600].iter().sum();
        assert!((num(5) - sum).abs() < 1e-4, "{line}");
        let diff = num(3) - num(4);
        assert!(
            (sum - diff).abs() < 0.05 * diff.abs() + 5e-5,
            "{line}: Σ {sum} vs {diff}"
        );
    }
    assert!(out.join("plots/a.svg").exists() && out.join("plots/a.png").exists());
    assert!(!out.join("plots/b.png").exists());
    let (ok, _, err) = prixfixe(&[
        "attribute",
        "--model-dir",
        &run1,
        "--input",
        &s(&fa),
        "--out",
        &s(&d.join("x")),
        "--task",
        "hk",
        "--quiet",
    ]);
    assert!(!ok && err.contains("prediction columns are"), "{err}");
    assert!(!d.join("x").exists());
}
