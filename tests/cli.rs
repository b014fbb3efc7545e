//! End-to-end checks of the `prixfixe` command.

use std::path::PathBuf;

use crate::common;
use common::prixfixe;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn help_lists_the_subcommands() {
    let (ok, out, _) = prixfixe(&["--help"]);
    assert!(ok);
    for sub in [
        "simulate",
        "train",
        "predict",
        "score",
        "ism",
        "variants",
        "design",
        "inspect",
        "bench",
        "inspect-data",
    ] {
        assert!(out.contains(sub), "--help lacks {sub}:\n{out}");
    }
}

/// `--threads N` sizes the worker pool of any command (here, the one `bench` reports); 0 is
/// refused by name.
#[test]
fn threads_flag_sets_the_worker_pool() {
    let bench = [
        "bench",
        "--model",
        "dream-cnn",
        "--train-batches",
        "2",
        "--reps",
        "1",
        "--max-infer-batch",
        "16",
    ];
    for n in ["1", "3"] {
        let mut args = vec!["--threads", n];
        args.extend(bench);
        let (ok, out, err) = prixfixe(&args);
        assert!(ok, "{err}");
        assert!(
            out.contains(&format!("benchmark on cpu: {n} threads")),
            "{out}"
        );
    }
    let (ok, _, err) = prixfixe(&["bench", "--threads", "0", "--reps", "1"]);
    assert!(!ok && err.contains("--threads"), "{err}");
}

#[test]
fn inspect_data_summarises_the_yeast_sample() {
    let (ok, out, err) = prixfixe(&["inspect-data", &fixture("yeast_demo_train.txt")]);
    assert!(ok, "{err}");
    assert!(out.contains("rows            6370"), "{out}");
    assert!(out.contains("87–135 nt"), "{out}");
    assert!(out.contains("singletons"), "{out}");
}

#[test]
fn inspect_data_json() {
    let (ok, out, err) = prixfixe(&["inspect-data", "--json", &fixture("human_train_200.txt")]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 200);
    assert_eq!(v["format"], "table");
}

#[test]
fn inspect_data_reports_file_and_line_of_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, "ACGTACGT\t1.5\nACGTZCGT\t2\n").unwrap();
    let (ok, _, err) = prixfixe(&["inspect-data", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("bad.txt:2: invalid base 'Z'"), "{err}");
}

#[test]
fn inspect_data_custom_table_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "name,dna,y\na,ACGT,1\nb,GGCA,2.5\n").unwrap();
    let p = path.to_str().unwrap();
    let (ok, out, err) = prixfixe(&[
        "inspect-data",
        p,
        "--seq-col",
        "dna",
        "--target-col",
        "y",
        "--id-col",
        "name",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("rows            2"), "{out}");
    let (ok, _, err) = prixfixe(&["inspect-data", p, "--seq-col", "seq"]);
    assert!(!ok);
    assert!(err.contains("no column named \"seq\""), "{err}");
}

#[test]
fn inspect_data_checks_lengths_against_a_model() {
    // Drosophila sequences (249 nt) for a human model (230 nt): the line is named.
    let (ok, _, err) = prixfixe(&[
        "inspect-data",
        &fixture("drosophila_train_200.txt"),
        "--model",
        "dream-cnn",
        "--data",
        "human",
    ]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(
            "drosophila_train_200.txt:2: sequence of 249 nt is longer than the model input (230 nt)"
        ),
        "{err}"
    );
    let (ok, _, err) = prixfixe(&[
        "inspect-data",
        &fixture("drosophila_train_200.txt"),
        "--model",
        "dream-cnn",
        "--data",
        "drosophila",
    ]);
    assert!(ok, "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let (ok, _, err) = prixfixe(&["inspect-data", "/no/such/file.txt"]);
    assert!(!ok);
    assert!(err.contains("/no/such/file.txt"), "{err}");
}

fn tiny_train_config(dir: &std::path::Path, rows: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixture("yeast_demo_train.txt")).unwrap();
    let train = dir.join("train.txt");
    std::fs::write(
        &train,
        text.lines().take(rows).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    let config = dir.join("run.toml");
    std::fs::write(&config, common::tiny_train_toml(&train, 1)).unwrap();
    config
}

#[test]
fn train_then_predict_then_score() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_train_config(dir.path(), 80);
    let run = dir.path().join("run");
    let (ok, out, err) = prixfixe(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("epoch   1/1"), "{out}");
    // The same directory again is refused, with the way out named.
    let (ok, _, err) = prixfixe(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!ok && err.contains("--resume"), "{err}");
    // Resuming takes the stored config; a changed recipe is refused, not silently ignored.
    let (ok, _, err) = prixfixe(&[
        "train",
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "--epochs",
        "5",
    ]);
    assert!(
        !ok && err.contains("recipe.epochs: stored 1, given 5"),
        "{err}"
    );
    // The very command the run was started with, with --resume added, is accepted.
    let (ok, _, err) = prixfixe(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--resume",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = prixfixe(&[
        "train",
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("best epoch 1"), "{out}");

    let test = dir.path().join("test.txt");
    let rows: Vec<String> = std::fs::read_to_string(fixture("yeast_demo_train.txt"))
        .unwrap()
        .lines()
        .skip(100)
        .take(30)
        .map(String::from)
        .collect();
    std::fs::write(&test, rows.join("\n") + "\n").unwrap();
    let preds = dir.path().join("pred.tsv");
    // predict from the run on the test rows, with `extra` flags.
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            "--model-dir",
            run.to_str().unwrap(),
            "--input",
            test.to_str().unwrap(),
            "--output",
            preds.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        prixfixe(&args)
    };
    let (ok, _, err) = predict(&[]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(text.lines().count(), 31);
    // The test file's measured values are kept beside the predictions.
    assert!(
        text.starts_with("sequence\tmeasured\tprediction\n"),
        "{text}"
    );
    let test_text = std::fs::read_to_string(&test).unwrap();
    let first_measured = test_text
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .nth(1)
        .unwrap();
    let first_row = text.lines().nth(1).unwrap();
    assert_eq!(
        first_row
            .split('\t')
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        first_measured.parse::<f64>().unwrap()
    );
    let (ok, out, err) = prixfixe(&[
        "score",
        "--test",
        test.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("Pearson score"), "{out}");
    // Predicted against measured: r and ρ of the written columns, and the scatter beside.
    let (ok, out, err) = predict(&["--measured"]);
    assert!(ok, "{err}");
    let (x, y) =
        prixfixe::eval::predictions::read_column_pair(&preds, "measured", "prediction").unwrap();
    assert_eq!(x.len(), 30);
    let r = prixfixe::eval::pearson(&x, &y).unwrap();
    assert!(out.contains(&format!("n 30  Pearson r {r:.4}")), "{out}");
    for ext in ["svg", "png"] {
        assert!(dir.path().join(format!("pred.scatter.{ext}")).exists());
    }
    // A measured column the output lacks is named, with the columns there are.
    let (ok, _, err) = predict(&["--measured", "activity"]);
    assert!(!ok && err.contains("no column named \"activity\""), "{err}");
    let figures = dir.path().join("figures");
    let (ok, _, err) = prixfixe(&[
        "score",
        "--test",
        test.to_str().unwrap(),
        "--predictions",
        preds.to_str().unwrap(),
        "--plots",
        figures.to_str().unwrap(),
        "--bootstrap",
        "20",
        "--plot",
        dir.path().join("ranks.svg").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    // Every figure reads back as an SVG document and a PNG image.
    let stems = ["subsets_pearson", "subsets_spearman", "scatter_pred"].map(|s| figures.join(s));
    for stem in stems.iter().chain([&dir.path().join("ranks")]) {
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem:?}"
        );
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{stem:?}");
    }
    let ranks = std::fs::read_to_string(dir.path().join("ranks.svg")).unwrap();
    assert!(ranks.contains("final rank"), "the rank histogram's axis");
}

#[test]
fn predict_with_pytorch_weights_and_a_named_model() {
    let dir = tempfile::tempdir().unwrap();
    let fasta = dir.path().join("x.fa");
    std::fs::write(&fasta, ">a\nTGCATTTTTTTCACATCAAAACCCGGGTTTGGTTACGGCTGTT\n>b\nTGCATTTTTTTCACATCGGGGGGGGGTTACGGCTGTT\n").unwrap();
    let out = dir.path().join("p.tsv");
    let weights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_dream-rnn.pth");
    // The tiny weights do not fit the full-size preset: a clear error naming the file.
    let (ok, _, err) = prixfixe(&[
        "predict",
        "--weights",
        weights.to_str().unwrap(),
        "--model",
        "dream-rnn",
        "--input",
        fasta.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        !ok && err.contains("tiny_dream-rnn.pth") && err.contains("do not fit"),
        "{err}"
    );
    // Without a model name, weights alone are refused with the way out named.
    let (ok, _, err) = prixfixe(&[
        "predict",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        fasta.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("--model"), "{err}");
    // With the config the weights were made for, predictions come out, one row per record.
    let config = dir.path().join("tiny_rnn.toml");
    std::fs::write(&config, common::TINY_RNN).unwrap();
    let (ok, _, err) = prixfixe(&[
        "predict",
        "--weights",
        weights.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--input",
        fasta.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id\tsequence\tprediction");
    assert_eq!(lines.len(), 3);
    let v: f64 = lines[1].split('\t').nth(2).unwrap().parse().unwrap();
    assert!((0.0..=17.0).contains(&v), "{v}");
}

#[test]
fn unknown_model_and_device_are_clear_errors() {
    let (ok, _, err) = prixfixe(&["inspect", "--model", "dream-gpt"]);
    assert!(
        !ok && err.contains("dream-cnn, dream-rnn, dream-attn, legnet"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_train_config(dir.path(), 40);
    let run = dir.path().join("run");
    let (ok, _, err) = prixfixe(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--device",
        "cuda",
    ]);
    if !cfg!(feature = "cuda") {
        assert!(!ok && err.contains("--features cuda"), "{err}");
    }
    // --data is a closed set on every command that takes it.
    for cmd in [
        "predict",
        "ism",
        "variants",
        "design",
        "attribute",
        "train",
        "inspect",
    ] {
        let (ok, _, err) = prixfixe(&[cmd, "--data", "mouse", "--model", "dream-cnn"]);
        assert!(
            !ok && err.contains("[possible values: yeast, human, drosophila]"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn inspect_prints_parameter_counts() {
    let (ok, out, err) = prixfixe(&["inspect", "--model", "dream-rnn"]);
    assert!(ok, "{err}");
    assert!(out.contains("4,130,578"), "{out}");
    let (ok, out, _) = prixfixe(&["inspect", "--model", "dream-attn", "--data", "human"]);
    assert!(ok && out.contains("4,619,521"), "{out}");
}

#[test]
fn grid_list_names_all_81_combinations_with_a_reason_for_each_incompatible_one() {
    let (ok, out, err) = prixfixe(&["grid", "list", "--size", "tiny"]);
    assert!(ok, "{err}");
    let cells: Vec<&str> = out
        .lines()
        .filter(|l| l.len() > 5 && l[..4].chars().all(|c| "ABU".contains(c)) && &l[4..6] == "  ")
        .collect();
    assert_eq!(cells.len(), 81, "{out}");
    let count = |what: &str| cells.iter().filter(|l| l[6..].starts_with(what)).count();
    assert_eq!(count("incompatible: "), 36, "{out}");
    // The 45 compatible ones give their input shape and parameter count.
    let built: Vec<&&str> = cells
        .iter()
        .filter(|l| {
            ["6×150", "4×110", "6×200"]
                .iter()
                .any(|s| l[6..].starts_with(s))
        })
        .collect();
    assert_eq!(built.len(), 45, "{out}");
    assert!(
        built
            .iter()
            .all(|l| l.split_whitespace().last().unwrap().parse::<u64>().is_ok())
    );
    assert!(out.contains("45 of the 81 combinations"), "{out}");
    assert!(
        out.contains("The published reference code runs 42"),
        "{out}"
    );
}

/// The columns of a TSV file: its header and its rows, split at tabs.
fn tsv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split('\t').map(String::from).collect());
    (lines.next().unwrap(), lines.collect())
}

#[test]
fn outputs_read_back_as_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let config = p("tiny_rnn.toml");
    std::fs::write(&config, common::TINY_RNN).unwrap();
    let weights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_dream-rnn.pth");
    let model = ["--weights", weights.to_str().unwrap(), "--config", &config];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&model);
        all.push("--quiet");
        let (ok, out, err) = prixfixe(&all);
        assert!(ok, "{args:?}: {err}");
        out
    };
    std::fs::write(
        p("x.fa"),
        ">a\nTGCATTTTTTTCACATCAAAACCCGGGTTTGGTTACGGCTGTT\n>b\nTGCATTTTTTTCACATCGGGGGGGGGTTACGGCTGTT\n",
    )
    .unwrap();
    run(&["predict", "--input", &p("x.fa"), "--output", &p("p1.tsv")]);
    // predict's own output predicted again: ids and the earlier predictions kept, the latter
    // renamed, and the same model gives the same values.
    run(&["predict", "--input", &p("p1.tsv"), "--output", &p("p2.tsv")]);
    let (head, rows) = tsv(dir.path().join("p2.tsv").as_path());
    assert_eq!(head, ["id", "sequence", "prediction_input", "prediction"]);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0][0].as_str(), rows[1][0].as_str()), ("a", "b"));
    for r in &rows {
        let (a, b): (f64, f64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        assert!((a - b).abs() < 1e-5, "{r:?}");
    }
    // ISM reads it too: one block of rows per sequence.
    run(&[
        "ism",
        "--input",
        &p("p2.tsv"),
        "--out",
        &p("ism"),
        "--plots",
        "0",
    ]);
    let ism = std::fs::read_to_string(dir.path().join("ism/ism.tsv")).unwrap();
    assert!(
        ism.lines().any(|l| l.starts_with("a\t")) && ism.lines().any(|l| l.starts_with("b\t")),
        "{ism}"
    );
    // design's table is an input of predict and of design itself; its fitness is the
    // prediction.
    let design = [
        "--population",
        "40",
        "--generations",
        "2",
        "--n",
        "3",
        "--seed",
        "7",
    ];
    let (d1, d2) = (p("d.tsv"), p("d2.tsv"));
    run(&[&["design", "--output", &d1][..], &design[..]].concat());
    run(&["predict", "--input", &p("d.tsv"), "--output", &p("p3.tsv")]);
    let (head, rows) = tsv(dir.path().join("p3.tsv").as_path());
    assert_eq!(head[..3], ["sequence", "rank", "fitness"]);
    assert_eq!(head.last().unwrap(), "prediction");
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let (fit, pred): (f64, f64) = (r[2].parse().unwrap(), r.last().unwrap().parse().unwrap());
        assert!((fit - pred).abs() < 1e-4, "{r:?}");
    }
    run(&[&["design", "--init", &d1, "--output", &d2][..], &design[..]].concat());
    assert_eq!(tsv(dir.path().join("d2.tsv").as_path()).1.len(), 3);
    run(&["predict", "--input", &p("d.fa"), "--output", &p("p4.tsv")]);
    assert_eq!(tsv(dir.path().join("p4.tsv").as_path()).1[0][0], "design_1");
    // Any table: columns named by flag, the other columns written back as they were.
    std::fs::write(
        p("mine.csv"),
        "gene,dna,note\ng1,TGCATTTTTTTCACATCAAAACCCGGGTTTGG,\"x, y\"\ng2,TGCATTTTTTTCACATCGGGG,z\n",
    )
    .unwrap();
    let (ok, _, err) = prixfixe(
        &[
            &[
                "predict",
                "--input",
                &p("mine.csv"),
                "--output",
                &p("p5.tsv"),
            ][..],
            &model[..],
        ]
        .concat(),
    );
    assert!(!ok && err.contains("--seq-col"), "{err}");
    run(&[
        "predict",
        "--input",
        &p("mine.csv"),
        "--seq-col",
        "dna",
        "--id-col",
        "gene",
        "--output",
        &p("p5.tsv"),
    ]);
    let (head, rows) = tsv(dir.path().join("p5.tsv").as_path());
    assert_eq!(head, ["id", "sequence", "note", "prediction"]);
    assert_eq!(
        rows[0][..3],
        ["g1", "TGCATTTTTTTCACATCAAAACCCGGGTTTGG", "x, y"]
    );
    assert_eq!(rows[1][2], "z");
    // Column flags on a format without columns are refused, naming why.
    let (ok, _, err) = prixfixe(
        &[
            &[
                "predict",
                "--input",
                &p("x.fa"),
                "--format",
                "fasta",
                "--seq-col",
                "s",
                "--output",
                &p("p6.tsv"),
            ][..],
            &model[..],
        ]
        .concat(),
    );
    assert!(
        !ok && err.contains("--format fasta has no named columns"),
        "{err}"
    );
    assert!(!dir.path().join("p6.tsv").exists());
    // A table on a pipe with named columns: its header is not taken away from the reader.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(
            [
                &[
                    "predict",
                    "--input",
                    "-",
                    "--seq-col",
                    "dna",
                    "--output",
                    &p("p7.tsv"),
                    "-q",
                ][..],
                &model[..],
            ]
            .concat(),
        )
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(std::fs::read(p("mine.csv")).unwrap().as_slice())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, rows) = tsv(dir.path().join("p7.tsv").as_path());
    assert_eq!(head, ["sequence", "gene", "note", "prediction"]);
    assert_eq!(rows.len(), 2);
}

/// `-v` adds debug lines, `-q` (anywhere on the line, or `--quiet`) leaves warnings only,
/// `-qq` errors only; results still land in the output file.
#[test]
fn log_levels_follow_v_and_q() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("tiny.toml"), common::TINY_RNN).unwrap();
    let weights =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_dream-rnn.pth");
    // A bare insert gets the plasmid's adapters, with a warning.
    std::fs::write(p("x.txt"), "ACGTACGTAAAACCCGGGTTTAC\n").unwrap();
    let (input, output, config) = (p("x.txt"), p("p.tsv"), p("tiny.toml"));
    // predict with `before` ahead of the subcommand and `after` behind it.
    let predict_with = |before: &[&str], after: &[&str]| {
        let mut args = before.to_vec();
        args.extend_from_slice(&[
            "predict",
            "--weights",
            weights.to_str().unwrap(),
            "--config",
            &config,
            "--input",
            &input,
            "--output",
            &output,
        ]);
        args.extend_from_slice(after);
        let (ok, _, err) = prixfixe(&args);
        assert!(ok, "{err}");
        assert!(std::fs::read_to_string(&output).unwrap().lines().count() == 2);
        std::fs::remove_file(&output).unwrap();
        err
    };
    let predict = |flags: &[&str]| predict_with(flags, &[]);
    let err = predict(&[]);
    assert!(
        err.contains("1 predictions written") && !err.contains("debug:"),
        "{err}"
    );
    assert!(
        err.contains("warning: 1 sequence(s) lacked the yeast read adapters"),
        "{err}"
    );
    let err = predict(&["-v"]);
    assert!(
        err.contains("debug: model: 6 × 150 input, columns prediction"),
        "{err}"
    );
    assert!(
        err.contains("debug: ") && err.contains("format told from the file"),
        "{err}"
    );
    for quiet in [&["-q"][..], &["--quiet"][..]] {
        let err = predict(quiet);
        assert!(!err.contains("predictions written"), "{err}");
        assert!(err.contains("warning: "), "{err}");
    }
    assert_eq!(predict(&["-qq"]), "");
    // After the subcommand too.
    assert_eq!(predict_with(&[], &["-qq"]), "");
}
