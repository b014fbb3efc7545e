//! Attributions into files: `onehot.npz` and `attributions.npz` (each one array `arr_0`,
//! `(N, 4, L)`, A, C, G, T: what TF-MoDISco's `modisco motifs -s onehot.npz -a
//! attributions.npz` reads as is), `attributions.tsv` (per sequence: its prediction, the
//! reference's and the attributions' sum), and sequence-logo figures under `plots/`.

use std::path::{Path, PathBuf};

use super::attribute::{AttributeOptions, attribute};
use crate::data::SeqDataset;
use crate::error::{Error, Result};
use crate::output::{AtomicFile, NpzWriter, create_dir, refuse_overwriting_input};
use crate::predict::{Model, Predictor};

/// Where attributions go and how they are made.
#[derive(Debug, Clone)]
pub struct AttributeOutput {
    /// Directory: `onehot.npz`, `attributions.npz`, `attributions.tsv`, `plots/`.
    pub dir: PathBuf,
    /// Method and its settings.
    pub options: AttributeOptions,
    /// Figures for the first `plots` sequences.
    pub plots: usize,
    /// Input rows per gradient pass.
    pub batch: usize,
}

/// The files [`write_files`] writes.
pub const FILES: [&str; 3] = ["onehot.npz", "attributions.npz", "attributions.tsv"];

/// Attribute every sequence of `ds` (read from `input`) for `models` averaged. Sequences go
/// through 16 at a time and are written as they come, so memory holds a chunk; every file is
/// written atomically, and on an error nothing is left.
pub fn write_files(
    models: &[&Model],
    ds: &SeqDataset,
    input: &Path,
    out: &AttributeOutput,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    for name in FILES {
        refuse_overwriting_input(&out.dir.join(name), &[input])?;
    }
    let first = *models
        .first()
        .ok_or_else(|| Error::Config("attribution needs a model".into()))?;
    if ds.is_empty() {
        return Err(Error::data(input, 0, crate::error::Problem::EmptyFile));
    }
    let l = first.encoder().length();
    let created = create_dir(&out.dir)?;
    let plots = out.dir.join("plots");
    let result = (|| -> Result<()> {
        if out.plots > 0 {
            crate::output::create_dir(&plots)?;
        }
        let shape = [ds.len(), 4, l];
        let mut onehot = NpzWriter::create(&out.dir.join(FILES[0]), &shape)?;
        let mut values = NpzWriter::create(&out.dir.join(FILES[1]), &shape)?;
        let mut tsv = AtomicFile::create(&out.dir.join(FILES[2]))?;
        let task = &first.columns()[out.options.task];
        tsv.put(b"id\ttask\tmethod\tprediction\treference\tsum\n")?;
        // The figures appear with the arrays and the table, or not at all.
        let mut figures = crate::output::Staged::default();
        let mut done = 0;
        for start in (0..ds.len()).step_by(16) {
            let end = (start + 16).min(ds.len());
            let seqs: Vec<Vec<u8>> = (start..end).map(|i| ds.seqs.get(i).to_vec()).collect();
            let attrs = attribute(models, &seqs, &out.options, out.batch)?;
            for (k, a) in attrs.iter().enumerate() {
                let i = start + k;
                let id = super::ism_files::row_id(ds, i);
                onehot.put(&a.onehot)?;
                values.put(&a.values)?;
                let reference = a.reference.map_or("NA".to_string(), |r| r.to_string());
                let sum: f32 = a.values.iter().sum();
                tsv.put(
                    format!(
                        "{id}\t{task}\t{}\t{}\t{reference}\t{sum}\n",
                        out.options.method.name(),
                        a.prediction
                    )
                    .as_bytes(),
                )?;
                if i < out.plots {
                    let name = id.replace(['/', '\\', ' ', ':'], "_");
                    let title = format!("{id}: {} ({task})", out.options.method.name());
                    super::plot::plot_attribution(a, l, &title, &plots.join(&name), &mut figures)?;
                }
            }
            done += seqs.len();
            progress(done);
        }
        onehot.commit()?;
        values.commit()?;
        tsv.commit()?;
        figures.commit()
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir(&plots);
        crate::output::remove_if_created(&out.dir, created);
    }
    result
}
