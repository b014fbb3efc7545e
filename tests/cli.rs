//! End-to-end checks of the `prixfixe` command.

use std::path::PathBuf;
use std::process::Command;

fn prixfixe(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prixfixe"))
        .args(args)
        .output()
        .expect("run prixfixe");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
        "design",
        "inspect",
        "bench",
        "inspect-data",
    ] {
        assert!(out.contains(sub), "--help lacks {sub}:\n{out}");
    }
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
fn missing_file_is_a_clear_error() {
    let (ok, _, err) = prixfixe(&["inspect-data", "/no/such/file.txt"]);
    assert!(!ok);
    assert!(err.contains("/no/such/file.txt"), "{err}");
}
