//! The cross-species benchmark (paper Fig. 3a,b): several models cross-validated under one
//! protocol on one data file, one table of Pearson r per task per model, a manifest of what
//! ran, and a bar plot. Each model's cross-validation is a directory of [`super::cv`] under
//! the benchmark's, so a killed benchmark resumes where its runs stopped.

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::cv::{CvReport, GroupScore};
use crate::error::{Error, Result};

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

/// Width and height of the bar plot.
pub const SIZE: (u32, u32) = (900, 520);

/// Grouped bars: for each task, one bar per model, its pooled Pearson r.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[Entry],
) -> std::result::Result<(), String> {
    let tasks = entries
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
            values: (0..tasks.len())
                .map(|t| pooled(&en.report).pearson.get(t).copied().flatten())
                .collect(),
        })
        .collect();
    draw_bars(
        root,
        title,
        "Pearson r (pooled test predictions)",
        &tasks,
        &series,
    )
}

/// One model's bars: its key label and a value per group (`None`: no bar).
pub struct Series {
    /// The key's label.
    pub label: String,
    /// One value per group.
    pub values: Vec<Option<f64>>,
}

/// Grouped bars with their values printed: one group per name in `groups`, one bar per
/// series in each, a key above the tallest bar.
pub fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[Series],
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(0.0f64, f64::min).min(0.0);
    let hi = values.iter().copied().fold(0.0f64, f64::max).max(0.1);
    let pad = (hi - lo) * 0.12;
    // Room above the tallest bar for the key (a line per series).
    let room = (hi - lo) * (0.12 + 0.09 * series.len() as f64);
    let n = series.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            0.0..groups.len().max(1) as f64,
            (lo - pad.min(lo.abs()))..hi + room,
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(groups.len().max(1) * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 && i < groups.len() {
                groups[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
    for (m, s) in series.iter().enumerate() {
        let colour = palette[m % palette.len()];
        let value = |g: usize| s.values.get(g).copied().flatten().filter(|v| v.is_finite());
        let bars: Vec<Rectangle<(f64, f64)>> = (0..groups.len())
            .filter_map(|g| {
                let v = value(g)?;
                let x0 = g as f64 + 0.1 + 0.8 * m as f64 / n;
                let x1 = x0 + 0.8 / n * 0.9;
                Some(Rectangle::new([(x0, 0.0), (x1, v)], colour.filled()))
            })
            .collect();
        let labels: Vec<Text<(f64, f64), String>> = (0..groups.len())
            .filter_map(|g| {
                let v = value(g)?;
                let x = g as f64 + 0.1 + 0.8 * (m as f64 + 0.2) / n;
                let y = if v >= 0.0 {
                    v + pad * 0.45
                } else {
                    v - pad * 0.1
                };
                Some(Text::new(
                    format!("{v:.3}"),
                    (x, y),
                    ("sans-serif", 14).into_font(),
                ))
            })
            .collect();
        chart.draw_series(labels).map_err(e)?;
        chart
            .draw_series(bars)
            .map_err(e)?
            .label(s.label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    Ok(())
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
    crate::figure::fonts();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, title, entries).map_err(Error::Other)?;
        root.present().map_err(|e| Error::Other(e.to_string()))?;
    }
    crate::output::write_atomic(&dir.join("benchmark.svg"), svg.as_bytes())?;
    let png = crate::figure::png(SIZE.0, SIZE.1, |root| draw(root, title, entries))?;
    crate::output::write_atomic(&dir.join("benchmark.png"), &png)
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
        assert_eq!((info.info().width, info.info().height), SIZE);
        let svg = std::fs::read_to_string(dir.path().join("benchmark.svg")).unwrap();
        assert!(
            svg.contains("dream-rnn (9/9 runs)") && svg.contains("0.720"),
            "labels"
        );
        let text = table_text(&entries);
        assert!(text.contains("0.6100") && text.contains("9/9"), "{text}");
    }
}
