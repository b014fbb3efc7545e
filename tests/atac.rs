//! The ATAC task end to end on a simulated genome: `simulate --kind atac` → `train --task
//! atac` (bias model, counts adjustment, accessibility model, test metrics, tracks), killed
//! mid-run and resumed to the same bytes, and bad inputs refused with file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::prixfixe;

const INPUT: &str = r#"[input.padding]
kind = "exact"
length = 2114
trim = "error"
[input.channels]
is_reverse = false
is_singleton = false
bases = "acgt"
n = "zero"
[input.strands]
kind = "given"
"#;

fn tiny_models(dir: &Path) -> (PathBuf, PathBuf) {
    let bias = dir.join("bias.toml");
    let main = dir.join("main.toml");
    std::fs::write(
        &bias,
        format!("{INPUT}[first]\nblock = \"bpnet\"\nfilters = 4\n[core]\nblock = \"bpnet\"\nlayers = 2\n[final]\nblock = \"profile\"\n"),
    )
    .unwrap();
    std::fs::write(
        &main,
        format!("{INPUT}[first]\nblock = \"bpnet\"\nfilters = 8\n[core]\nblock = \"bpnet\"\nlayers = 3\n[final]\nblock = \"profile\"\n"),
    )
    .unwrap();
    (bias, main)
}

fn simulate(dir: &Path) -> PathBuf {
    let sim = dir.join("sim");
    let (ok, _, err) = prixfixe(&[
        "simulate",
        "--kind",
        "atac",
        "--out",
        sim.to_str().unwrap(),
        "--chromosomes",
        "3",
        "--chromosome-length",
        "80000",
        "--peaks",
        "12",
    ]);
    assert!(ok, "{err}");
    sim
}

fn train_cmd(
    sim: &Path,
    dir: &Path,
    out: &Path,
    peaks: Option<&Path>,
    folds: Option<&Path>,
) -> Command {
    let (bias, main) = tiny_models(dir);
    let s = |f: &str| sim.join(f).to_str().unwrap().to_string();
    let mut c = Command::new(env!("CARGO_BIN_EXE_prixfixe"));
    c.args([
        "train",
        "--task",
        "atac",
        "--genome",
        &s("genome.fa"),
        "--signal",
        &s("signal.bw"),
    ])
    .args(["--nonpeaks", &s("nonpeaks.narrowPeak")])
    .arg("--folds")
    .arg(folds.map_or_else(|| sim.join("folds.json"), Path::to_path_buf))
    .arg("--peaks")
    .arg(peaks.map_or_else(|| sim.join("peaks.narrowPeak"), Path::to_path_buf))
    .arg("--config")
    .arg(&main)
    .arg("--bias-config")
    .arg(&bias)
    .args([
        "--epochs",
        "2",
        "--bias-epochs",
        "2",
        "--batch-size",
        "8",
        "--quiet",
    ])
    .arg("--out")
    .arg(out)
    .env_remove("PRIXFIXE_CRASH_AT");
    c
}

/// `prixfixe predict atac` with the model of `run` on `sim`'s genome.
fn predict_atac(
    run: &Path,
    sim: &Path,
    regions: &Path,
    out: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let mut args = vec![
        "predict".to_string(),
        "atac".into(),
        "--model".into(),
        run.display().to_string(),
        "--genome".into(),
        sim.join("genome.fa").display().to_string(),
        "--regions".into(),
        regions.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    prixfixe(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The sum of a bigWig over the 1,000 nt centred on `centre`.
fn track_sum(path: &Path, chrom: &str, centre: u64) -> f64 {
    let mut bw = prixfixe::atac::inputs::Signal::open(path).unwrap();
    let v = bw.values(chrom, centre - 500, centre + 500).unwrap();
    v.iter().map(|&x| x as f64).sum()
}

#[test]
fn atac_task_trains_scores_writes_tracks_and_resumes_after_a_kill() {
    let d = tempfile::tempdir().unwrap();
    let sim = simulate(d.path());
    let whole = d.path().join("whole");
    let o = train_cmd(&sim, d.path(), &whole, None, None)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("peaks") && stdout.contains("median JSD"),
        "{stdout}"
    );
    let run = whole.join("model");

    // Every test-chromosome region is scored once; the metrics name the three groups.
    let regions: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("regions.json")).unwrap())
            .unwrap();
    let test = regions["index"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["split"] == "test")
        .count();
    assert!(test > 0);
    let tsv = std::fs::read_to_string(run.join("test_predictions.tsv")).unwrap();
    assert_eq!(tsv.lines().count(), test + 1);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let groups: Vec<&str> = metrics["test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[0].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["peaks", "nonpeaks", "all"]);
    let all = &metrics["test"][2][1];
    assert_eq!(all["n"].as_u64().unwrap() as usize, test);
    let jsd = all["profile_median_jsd"].as_f64().unwrap();
    assert!(jsd > 0.0 && jsd < (2f64.ln()).sqrt(), "{jsd}");
    assert!(metrics["plan"]["counts_weight"].as_f64().unwrap() >= 1.0);
    assert!(metrics["plan"]["bias_shift"].as_f64().unwrap().is_finite());

    // The predicted track: softmax × exp(log counts) over a test peak's central 1,000 nt.
    let first = tsv.lines().nth(1).unwrap();
    let f: Vec<&str> = first.split('\t').collect();
    let (chrom, centre): (&str, u64) = (f[0], f[1].parse().unwrap());
    let pred_lc: f64 = f[5].parse().unwrap();
    let sum = track_sum(&run.join("predicted.bw"), chrom, centre);
    assert!(
        (sum - pred_lc.exp()).abs() < 1e-3 * pred_lc.exp(),
        "{sum} vs {}",
        pred_lc.exp()
    );
    // New regions through the trained model (`predict atac`): every peak of the file, the
    // test chromosome's with the figures training wrote for them.
    let preds = d.path().join("preds");
    let (ok, stdout, err) = predict_atac(
        &run,
        &sim,
        &sim.join("peaks.narrowPeak"),
        &preds,
        &[
            "--signal",
            sim.join("signal.bw").to_str().unwrap(),
            "--quiet",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        stdout.contains("counts r") && stdout.contains("median JSD"),
        "{stdout}"
    );
    let trained: std::collections::HashMap<(String, String), (f64, f64, f64)> = tsv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap();
            ((f[0].into(), f[1].into()), (num(5), num(4), num(6)))
        })
        .collect();
    let predicted = std::fs::read_to_string(preds.join("predictions.tsv")).unwrap();
    let peaks = prixfixe::atac::inputs::read_peaks(&sim.join("peaks.narrowPeak")).unwrap();
    assert_eq!(predicted.lines().count(), peaks.len() + 1);
    let mut matched = 0;
    for l in predicted.lines().skip(1) {
        let f: Vec<&str> = l.split('\t').collect();
        let num = |i: usize| f[i].parse::<f64>().unwrap();
        if let Some(&(lc, measured, jsd)) = trained.get(&(f[0].to_string(), f[3].to_string())) {
            assert!((num(5) - lc).abs() < 1e-5, "{l}: trained {lc}");
            assert!(
                (num(6) - measured).abs() < 1e-5 && (num(7) - jsd).abs() < 1e-5,
                "{l}"
            );
            matched += 1;
        }
    }
    assert!(
        matched > 0 && matched < peaks.len(),
        "{matched} test peaks matched"
    );
    // Its track: the first region's central 1,000 nt sum to its predicted counts.
    let f: Vec<&str> = predicted.lines().nth(1).unwrap().split('\t').collect();
    let (centre, lc): (u64, f64) = (f[3].parse().unwrap(), f[5].parse().unwrap());
    let sum = track_sum(&preds.join("predicted.bw"), f[0], centre);
    assert!(
        (sum - lc.exp()).abs() < 1e-3 * lc.exp(),
        "{sum} vs {}",
        lc.exp()
    );
    // A region on a chromosome the genome lacks: refused with file and line, nothing written.
    let bad = d.path().join("bad.narrowPeak");
    std::fs::write(
        &bad,
        "chr1\t5000\t5400\tx\t0\t.\t0\t0\t0\t200\nchrQ\t5000\t5400\tx\t0\t.\t0\t0\t0\t200\n",
    )
    .unwrap();
    let (ok, _, err) = predict_atac(&run, &sim, &bad, &d.path().join("bad_out"), &[]);
    assert!(
        !ok && err.contains("bad.narrowPeak:2:") && err.contains("chrQ"),
        "{err}"
    );
    assert!(!d.path().join("bad_out/predictions.tsv").exists());
    // The plain `predict` names the command that scores a profile model.
    let (ok, _, err) = prixfixe(&[
        "predict",
        "--model-dir",
        run.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
        "--output",
        d.path().join("x.tsv").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("predict atac"), "{err}");
    // `attribute` and `ism` explain the accessibility model on its own (bias-free), its log
    // counts: integrated gradients sum to f(x) − f(0); ISM maps every substitution.
    let fa = d.path().join("region.fa");
    let region: String = (0..2114usize)
        .map(|i| b"ACGT"[(i * 7 + i / 3) % 4] as char)
        .collect();
    std::fs::write(&fa, format!(">r1\n{region}\n")).unwrap();
    let attr = d.path().join("attr");
    let (ok, _, err) = prixfixe(&[
        "attribute",
        "--model-dir",
        run.to_str().unwrap(),
        "--input",
        fa.to_str().unwrap(),
        "--out",
        attr.to_str().unwrap(),
        "--method",
        "integrated-gradients",
        "--steps",
        "16",
    ]);
    assert!(ok && err.contains("without the bias model"), "{err}");
    let (shape, values) =
        prixfixe::output::read_npz_f32(&attr.join("attributions.npz"), "arr_0").unwrap();
    assert_eq!(shape, vec![1, 4, 2114]);
    let row = std::fs::read_to_string(attr.join("attributions.tsv")).unwrap();
    let f: Vec<&str> = row.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(f[1], "log_counts", "{row}");
    let (pred, reference): (f32, f32) = (f[3].parse().unwrap(), f[4].parse().unwrap());
    let sum: f32 = values.iter().sum();
    assert!(
        (sum - (pred - reference)).abs() < 0.02 * (pred - reference).abs() + 1e-4,
        "Σ {sum} vs {pred} − {reference}"
    );
    let (ok, _, err) = prixfixe(&[
        "ism",
        "--model-dir",
        run.to_str().unwrap(),
        "--input",
        fa.to_str().unwrap(),
        "--out",
        d.path().join("ism").to_str().unwrap(),
        "--plots",
        "0",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let ism = std::fs::read_to_string(d.path().join("ism/ism.tsv")).unwrap();
    assert_eq!(ism.lines().count(), 2114 + 1);

    // Both models' runs and the frozen bias model the accessibility model used.
    for f in [
        "bias/best.safetensors",
        "model/bias.safetensors",
        "model/curves.svg",
        "model/plan.json",
    ] {
        assert!(whole.join(f).exists(), "{f}");
    }

    // Killed at the accessibility model's first commit (the bias model's two came first),
    // then resumed: the same predictions to the byte.
    let cut = d.path().join("cut");
    let o = train_cmd(&sim, d.path(), &cut, None, None)
        .env("PRIXFIXE_CRASH_AT", "state-committed:3")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!cut.join("model/metrics.json").exists());
    let o = train_cmd(&sim, d.path(), &cut, None, None)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(cut.join("model/test_predictions.tsv")).unwrap(),
        tsv
    );
    // Killed in the bias model's first commit, before any state: resumed, it starts that
    // run and ends with the same predictions.
    let early = d.path().join("early");
    let o = train_cmd(&sim, d.path(), &early, None, None)
        .env("PRIXFIXE_CRASH_AT", "model-written:1")
        .output()
        .unwrap();
    assert!(!o.status.success() && !early.join("bias/state.json").exists());
    let o = train_cmd(&sim, d.path(), &early, None, None)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(early.join("model/test_predictions.tsv")).unwrap(),
        tsv
    );
    // Without --resume the directory is refused, not overwritten.
    let o = train_cmd(&sim, d.path(), &cut, None, None)
        .output()
        .unwrap();
    assert!(!o.status.success());
}

#[test]
fn atac_bad_inputs_name_the_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let sim = simulate(d.path());
    let peaks = std::fs::read_to_string(sim.join("peaks.narrowPeak")).unwrap();
    let check = |name: &str, text: String, want: &[&str]| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let o = train_cmd(
            &sim,
            d.path(),
            &d.path().join(format!("out_{name}")),
            Some(&p),
            None,
        )
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name}");
        for w in want {
            assert!(err.contains(w), "{name}: {err}");
        }
    };
    let second = peaks.lines().nth(1).unwrap();
    check(
        "chrom.narrowPeak",
        format!(
            "{}\n{}\n",
            peaks.lines().next().unwrap(),
            second.replacen("chr", "chrZ", 1)
        ),
        &["chrom.narrowPeak:2:", "chrZ", "not in the genome"],
    );
    check(
        "end.narrowPeak",
        "chr1\t79990\t80500\tx\t0\t.\t0\t0\t0\t5\n".into(),
        &["end.narrowPeak:1:", "past the chromosome's end"],
    );
    check(
        "cols.narrowPeak",
        "chr1\t100\t300\n".into(),
        &["cols.narrowPeak:1:", "narrowPeak"],
    );
    // Overlapping folds.
    let folds = d.path().join("folds.json");
    std::fs::write(
        &folds,
        r#"{"train":["chr2","chr3"],"valid":["chr3"],"test":["chr1"]}"#,
    )
    .unwrap();
    let o = train_cmd(
        &sim,
        d.path(),
        &d.path().join("out_folds"),
        None,
        Some(&folds),
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("overlap") && err.contains("chr3"),
        "{err}"
    );
}

/// `benchmark atac` on two folds and two models: one bias model per fold shared by both
/// models, the table's rows per model, fold and group with the truth's, and a second run
/// that reuses every finished run and writes the same table.
#[test]
fn atac_benchmark_tables_models_by_fold_with_the_truth() {
    let d = tempfile::tempdir().unwrap();
    let sim = simulate(d.path());
    let (bias, main) = tiny_models(d.path());
    let other = d.path().join("wide.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&main)
            .unwrap()
            .replace("filters = 8", "filters = 12"),
    )
    .unwrap();
    let fold1 = d.path().join("fold1.json");
    std::fs::write(
        &fold1,
        r#"{"train":["chr1"],"valid":["chr3"],"test":["chr2"]}"#,
    )
    .unwrap();
    let out = d.path().join("bench");
    let s = |f: &str| sim.join(f).to_str().unwrap().to_string();
    let models = format!("{},{}", main.display(), other.display());
    let args = [
        "benchmark",
        "atac",
        "--out",
        out.to_str().unwrap(),
        "--genome",
        &s("genome.fa"),
        "--signal",
        &s("signal.bw"),
        "--peaks",
        &s("peaks.narrowPeak"),
        "--nonpeaks",
        &s("nonpeaks.narrowPeak"),
        "--folds",
        &s("folds.json"),
        fold1.to_str().unwrap(),
        "--models",
        &models,
        "--bias-config",
        bias.to_str().unwrap(),
        "--epochs",
        "1",
        "--bias-epochs",
        "1",
        "--batch-size",
        "8",
        "--quiet",
    ];
    let (ok, stdout, err) = prixfixe(&args);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("median JSD") && stdout.contains("truth"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("benchmark_atac.csv")).unwrap();
    // 2 folds × (2 models + the truth) × 3 groups.
    assert_eq!(csv.lines().count(), 1 + 2 * 3 * 3, "{csv}");
    for (fold, test) in [(0, "chr1"), (1, "chr2")] {
        let dir = out.join(format!("fold_{fold}"));
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("bias/state.json")).unwrap())
                .unwrap();
        assert_eq!(state["epochs_done"], 1, "one bias model per fold");
        for m in ["main", "wide"] {
            let tsv = std::fs::read_to_string(dir.join(m).join("test_predictions.tsv")).unwrap();
            assert!(
                tsv.lines()
                    .skip(1)
                    .all(|l| l.starts_with(&format!("{test}\t")))
            );
        }
    }
    for f in ["benchmark_atac_counts.png", "benchmark_atac_profile.svg"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 1000, "{f}");
    }
    let rows: Vec<&str> = csv.lines().filter(|l| l.starts_with("main,")).collect();
    assert_eq!(rows.len(), 6);
    assert!(rows[0].contains(",0,peaks,"), "{}", rows[0]);
    // Again: every run is reused, the same table.
    let (ok, _, err) = prixfixe(&args);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("benchmark_atac.csv")).unwrap(),
        csv
    );
}
