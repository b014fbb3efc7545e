//! ISM results into files: `ism.tsv`, optionally `ism.npy`, and figures under `plots/`.

use std::path::{Path, PathBuf};

use super::ism::{IsmMap, run, tsv_header, write_tsv_rows};
use crate::data::SeqDataset;
use crate::error::{Error, Result};
use crate::predict::Predictor;

/// Where [`write_files`] writes, and what.
#[derive(Debug, Clone)]
pub struct IsmOutput {
    /// Directory: `ism.tsv`, `ism.npy` (with `npy`), `plots/`.
    pub dir: PathBuf,
    /// Figures (SVG, logo over heatmap) for the first this many sequences.
    pub plots: usize,
    /// Also the effects as a NumPy array `[sequences, length, 4 (A,C,G,T)(, tasks)]`; needs
    /// sequences of one length.
    pub npy: bool,
    /// Sequences (references and mutants) per model call.
    pub batch: usize,
}

/// The id of row `i`: its own, or `seq{i+1}`.
pub(crate) fn row_id(ds: &SeqDataset, i: usize) -> String {
    ds.ids
        .as_ref()
        .map_or_else(|| format!("seq{}", i + 1), |v| v[i].clone())
}

/// ISM of every sequence of `ds` (read from `input`) into the files `out` names. Everything
/// that can be checked is checked before a file is made; every file is written atomically, and
/// on an error nothing is left (a directory this call made is removed).
pub fn write_files(
    p: &(impl Predictor + ?Sized),
    ds: &SeqDataset,
    input: &Path,
    out: &IsmOutput,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    use crate::output::{AtomicFile, create_dir, npy_f32_header, refuse_overwriting_input};
    for name in ["ism.tsv", "ism.npy"] {
        refuse_overwriting_input(&out.dir.join(name), &[input])?;
    }
    let tasks = p.tasks();
    let len0 = if ds.is_empty() { 0 } else { ds.seqs.seq_len(0) };
    if out.npy
        && let Some(i) = (0..ds.len()).find(|&i| ds.seqs.seq_len(i) != len0)
    {
        return Err(Error::Other(format!(
            "{}:{}: --npy needs sequences of one length, and this one has {} nt where the \
             first has {len0}; drop --npy (ism.tsv holds every length) or split the input",
            input.display(),
            ds.lines[i],
            ds.seqs.seq_len(i)
        )));
    }
    let created = create_dir(&out.dir)?;
    let plots = out.dir.join("plots");
    let result = (|| -> Result<()> {
        if out.plots > 0 {
            crate::output::create_dir(&plots)?;
        }
        let mut tsv = AtomicFile::create(&out.dir.join("ism.tsv"))?;
        tsv.put(tsv_header(tasks).as_bytes())?;
        let mut npy = if out.npy {
            let mut f = AtomicFile::create(&out.dir.join("ism.npy"))?;
            let shape = if tasks > 1 {
                vec![ds.len(), len0, 4, tasks]
            } else {
                vec![ds.len(), len0, 4]
            };
            f.put(&npy_f32_header(&shape))?;
            Some(f)
        } else {
            None
        };
        // The figures appear with the table, or not at all.
        let mut figures = crate::output::Staged::default();
        let mut sink = |i: usize, m: &IsmMap| -> Result<()> {
            let mut text = String::new();
            write_tsv_rows(&row_id(ds, i), m, &mut text);
            tsv.put(text.as_bytes())?;
            if let Some(f) = &mut npy {
                let mut bytes = Vec::with_capacity(m.seq.len() * 4 * tasks * 4);
                for pos in 0..m.seq.len() {
                    for b in [0u8, 2, 1, 3] {
                        for t in 0..tasks {
                            bytes.extend_from_slice(&m.effect(pos, b, t).to_le_bytes());
                        }
                    }
                }
                f.put(&bytes)?;
            }
            if i < out.plots {
                let id = row_id(ds, i);
                let name = id.replace(['/', '\\', ' ', ':'], "_");
                super::plot::plot_ism(m, 0, &id, &plots.join(&name), &mut figures)?;
            }
            Ok(())
        };
        run(p, ds, out.batch, &mut sink, progress)?;
        tsv.commit()?;
        if let Some(f) = npy {
            f.commit()?;
        }
        figures.commit()
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir(&plots); // only if empty: never a user's older figures
        crate::output::remove_if_created(&out.dir, created);
    }
    result
}
