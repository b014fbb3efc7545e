//! The cross-species benchmark (paper Fig. 3a,b): several models cross-validated under one
//! protocol on one data file, one table of Pearson r per task per model, a manifest of what
//! ran, and a bar plot. Each model's cross-validation is a directory of [`super::cv`] under
//! the benchmark's, so a killed benchmark resumes where its runs stopped.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::cv::{CvReport, GroupScore};
use crate::error::Result;
use crate::figure::{BARS_SIZE, Bars, Series, write_svg_png};

/// The table's file.
pub const TABLE_FILE: &str = "benchmark.csv";
/// The manifest's file.
pub const MANIFEST_FILE: &str = "benchmark.json";

/// One model's collected cross-validation.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The model's name.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Sequences per training batch.
    pub batch_size: usize,
    /// Its cross-validation.
    pub report: CvReport,
}

fn pooled(r: &CvReport) -> &GroupScore {
    r.scores
        .last()
        .expect("a collected report has its pooled row")
}

/// Every figure as CSV: one row per model, group (each test group, then `pooled`) and task:
/// each model's `cv_scores.csv` rows behind its name and parameter count.
pub fn table_csv(entries: &[Entry]) -> String {
    let mut out = format!("model,parameters,{}\n", super::cv::SCORES_HEADER);
    for e in entries {
        for row in super::cv::scores_csv(&e.report).lines().skip(1) {
            writeln!(out, "{},{},{row}", e.model, e.parameters).expect("a string takes writes");
        }
    }
    out
}

/// The printed table: pooled Pearson r per model (rows) and task (columns), with the runs
/// completed.
pub fn table_text(entries: &[Entry]) -> String {
    let tasks = entries
        .first()
        .map(|e| e.report.tasks.clone())
        .unwrap_or_default();
    let mut out = format!("{:<14} {:>11}", "model", "parameters");
    for t in &tasks {
        write!(out, " {:>22}", format!("Pearson {t}")).expect("writes");
    }
    writeln!(out, " {:>8}", "runs").expect("writes");
    for e in entries {
        write!(out, "{:<14} {:>11}", e.model, e.parameters).expect("writes");
        let p = pooled(&e.report);
        for t in 0..tasks.len() {
            let v = p.pearson.get(t).copied().flatten();
            write!(out, " {:>22}", v.map_or("NA".into(), |v| format!("{v:.4}"))).expect("w");
        }
        writeln!(out, " {:>8}", runs(e)).expect("writes");
    }
    out
}

/// `finished/planned`, or `-` for the truth of a simulation (no runs).
fn runs(e: &Entry) -> String {
    match e.report.runs {
        0 => "-".into(),
        n => format!("{}/{n}", e.report.runs_finished),
    }
}

/// Grouped bars: for each task, one bar per model, its pooled Pearson r.
fn bars(title: &str, entries: &[Entry]) -> Bars {
    let groups = entries
        .first()
        .map(|e| e.report.tasks.clone())
        .unwrap_or_default();
    let series: Vec<Series> = entries
        .iter()
        .map(|en| Series {
            label: match en.report.runs {
                0 => format!("{} (noise-free)", en.model),
                _ => format!("{} ({} runs)", en.model, runs(en)),
            },
            values: (0..groups.len())
                .map(|t| pooled(&en.report).pearson.get(t).copied().flatten())
                .collect(),
        })
        .collect();
    Bars {
        title: title.to_string(),
        y_desc: "Pearson r (pooled test predictions)".into(),
        groups,
        series,
        size: BARS_SIZE,
    }
}

/// Write `benchmark.csv`, `benchmark.json` (the manifest, `manifest` plus every entry's
/// scores) and the bar plot `benchmark.svg` / `benchmark.png` into `dir`, each atomically.
pub fn write(
    dir: &Path,
    title: &str,
    entries: &[Entry],
    manifest: serde_json::Value,
) -> Result<()> {
    crate::output::write_atomic(&dir.join(TABLE_FILE), table_csv(entries).as_bytes())?;
    let mut m = manifest;
    m["models"] = serde_json::to_value(entries).expect("entries serialise");
    let text = serde_json::to_string_pretty(&m).expect("json");
    crate::output::write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())?;
    write_svg_png(&dir.join("benchmark"), &bars(title, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(model: &str, r: [f64; 2]) -> Entry {
        let group = |g: &str, rows| GroupScore {
            group: g.into(),
            rows,
            models: 9,
            pearson: vec![Some(r[0]), Some(r[1])],
            spearman: vec![Some(r[0] - 0.01), None],
            mse: vec![0.5, 0.7],
        };
        Entry {
            model: model.into(),
            parameters: 1000,
            batch_size: 32,
            report: CvReport {
                tasks: vec!["dev".into(), "hk".into()],
                scores: vec![group("chr2L", 10), group("pooled", 10)],
                incomplete: vec![],
                runs_finished: 9,
                runs: 9,
            },
        }
    }

    /// The table, the manifest and both pictures are written and read back.
    #[test]
    fn writes_the_table_the_manifest_and_the_plot() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [
            entry("dream-rnn", [0.61, 0.72]),
            entry("deepstarr", [0.55, -0.1]),
        ];
        write(
            dir.path(),
            "test",
            &entries,
            serde_json::json!({"seed": 42}),
        )
        .unwrap();
        let csv = std::fs::read_to_string(dir.path().join(TABLE_FILE)).unwrap();
        assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2);
        assert!(
            csv.contains("deepstarr,1000,pooled,hk,10,9,-0.100000,NA,0.700000"),
            "{csv}"
        );
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap())
                .unwrap();
        assert_eq!(m["seed"], 42);
        assert_eq!(m["models"][1]["model"], "deepstarr");
        let png = std::fs::read(dir.path().join("benchmark.png")).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), BARS_SIZE);
        let svg = std::fs::read_to_string(dir.path().join("benchmark.svg")).unwrap();
        assert!(
            svg.contains("dream-rnn (9/9 runs)") && svg.contains("0.720"),
            "labels"
        );
        let text = table_text(&entries);
        assert!(text.contains("0.6100") && text.contains("9/9"), "{text}");
    }
}
