//! New regions through a trained ATAC model (`prixfixe predict atac`): the accessibility model
//! combined with the adjusted frozen bias model it was trained with, as ChromBPNet predicts.
//!
//! The regions (narrowPeak, summit-centred, as training reads them) are taken in genome order;
//! each window is read from the FASTA through its index, a batch at a time, and the results
//! are written as they come: `predictions.tsv` (one row per region) and `predicted.bw` (the
//! predicted insertions `softmax(logits) × exp(log counts)` over each region's central 1,000
//! nt; where windows overlap, the earlier region's values stand). With a measured signal the
//! table also holds the measured log counts and the profile's Jensen–Shannon distance, and the
//! figures of [`GroupMetrics`] come back. Memory holds a batch, not the region set's tracks.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use super::inputs::{Signal, read_peaks, write_bigwig};
use super::metrics::{GroupMetrics, profile_jsd, softmax};
use super::model::{self, INPUT_LENGTH, PROFILE_LENGTH};
use super::regions::{checked_length, encode_window};
use crate::data::genome::Genome;
use crate::error::{Error, Result};
use crate::net::PrixFixeNet;
use crate::predict::Model;

/// A trained accessibility model and the frozen bias model its predictions include.
pub struct ProfileModel {
    main: PrixFixeNet,
    bias: PrixFixeNet,
}

impl ProfileModel {
    /// The model of a `train --task atac` model directory (`<task>/<model>`): its best weights
    /// (`best.safetensors`) and the adjusted bias model beside them (`bias.safetensors`).
    pub fn load(dir: &Path) -> Result<Self> {
        let device = Device::flex();
        let file = |name: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else if dir.join("task.json").is_file() {
                // The task directory: name the models trained in it.
                let models: Vec<String> = std::fs::read_dir(dir)
                    .map(|d| {
                        d.flatten()
                            .filter(|e| e.path().join("bias.safetensors").is_file())
                            .map(|e| e.path().display().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                Err(Error::Config(format!(
                    "{} is a `train --task atac` output; give one of its models: {}",
                    dir.display(),
                    if models.is_empty() {
                        "none has finished yet".to_string()
                    } else {
                        models.join(", ")
                    }
                )))
            } else {
                Err(Error::Config(format!(
                    "{}: no {name} here; give the model's directory inside a `train --task \
                     atac` output (for example OUT/chrombpnet), once its training has finished",
                    dir.display()
                )))
            }
        };
        let main = Model::from_checkpoint(&file("best.safetensors")?, &device)?;
        if model::counts_weight(&main.config).is_none() {
            return Err(Error::Config(format!(
                "{}: not an ATAC profile model (its head is not ChromBPNet's); `prixfixe \
                 predict` scores it",
                dir.display()
            )));
        }
        let bias = Model::from_checkpoint(&file("bias.safetensors")?, &device)?;
        Ok(ProfileModel {
            main: main.into_net(),
            bias: bias.into_net(),
        })
    }

    /// The combined output of one-hot windows `x` (`n × 4 × 2,114`, A, C, G, T): per window
    /// the 1,000 profile logits, then the log counts.
    pub fn predict(&self, x: Vec<f32>, n: usize) -> Vec<f32> {
        let device = Device::flex();
        let x = Tensor::<3>::from_data(TensorData::new(x, [n, 4, INPUT_LENGTH]), &device);
        model::combined_forward(&self.main, Some(&self.bias), x, &device)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 output")
    }
}

/// What [`predict_regions`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RegionsSummary {
    /// Regions predicted.
    pub predicted: usize,
    /// Regions whose 2,114-nt window leaves its chromosome (skipped, as training skips them).
    pub off_chromosome: usize,
    /// With a measured signal: counts r / ρ / MSE and median JSD over the predicted regions.
    pub metrics: Option<GroupMetrics>,
}

/// Predict every region of `regions` (narrowPeak) on `genome` with `model`; write
/// `predictions.tsv` and `predicted.bw` into `out`; with `signal`, score against it.
/// `done(n)` is called after each batch.
pub fn predict_regions(
    model: &ProfileModel,
    genome: &Path,
    regions: &Path,
    signal: Option<&Path>,
    out: &Path,
    batch_size: usize,
    mut done: impl FnMut(usize),
) -> Result<RegionsSummary> {
    if batch_size == 0 {
        return Err(Error::Config("--batch-size must be at least 1".into()));
    }
    let mut genome = Genome::open(genome)?;
    let mut signal = signal.map(Signal::open).transpose()?;
    let peaks = read_peaks(regions)?;
    let half = (INPUT_LENGTH / 2) as u64;
    let order: std::collections::HashMap<String, usize> = genome
        .names()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    // Check every region before any work: its chromosome, in the genome and the signal.
    let mut keep = Vec::with_capacity(peaks.len());
    let mut off_chromosome = 0;
    for p in &peaks {
        let len = checked_length(p, regions, &genome, signal.as_ref())?;
        let chrom = order[&p.chrom];
        if p.centre < half || p.centre + half > len {
            off_chromosome += 1;
            continue;
        }
        keep.push((chrom, p));
    }
    keep.sort_by_key(|(c, p)| (*c, p.centre, p.line));

    crate::output::create_dir(out)?;
    let mut tsv = crate::output::AtomicFile::create(&out.join("predictions.tsv"))?;
    let measured = signal.is_some();
    tsv.put(if measured {
        b"chrom\tstart\tend\tcentre\tline\tpredicted_log_counts\tlog_counts\tjsd\tnorm_jsd\n"
            .as_slice()
    } else {
        b"chrom\tstart\tend\tcentre\tline\tpredicted_log_counts\n".as_slice()
    })?;
    // The track's runs go to a file as they come (chromosome index, position, value), then
    // stream into the bigWig writer.
    let runs_path = crate::output::temporary_path(&out.join("predicted.runs"));
    let mut runs =
        BufWriter::new(std::fs::File::create(&runs_path).map_err(|e| Error::io(&runs_path, e))?);
    let (mut truth, mut pred, mut jsds, mut norms) = (vec![], vec![], vec![], vec![]);
    // The end of the track written so far, per chromosome index.
    let mut written: Option<(usize, u64)> = None;
    let mut written_runs = 0usize;
    let result = (|| -> Result<()> {
        for chunk in keep.chunks(batch_size) {
            let mut x = vec![0f32; chunk.len() * 4 * INPUT_LENGTH];
            for (k, (_, p)) in chunk.iter().enumerate() {
                let codes = genome.fetch(&p.chrom, p.centre - half, p.centre + half)?;
                encode_window(
                    &codes,
                    false,
                    &mut x[k * 4 * INPUT_LENGTH..][..4 * INPUT_LENGTH],
                );
            }
            let y = model.predict(x, chunk.len());
            for ((chrom, p), row) in chunk.iter().zip(y.chunks(PROFILE_LENGTH + 1)) {
                let (logits, lc) = (&row[..PROFILE_LENGTH], row[PROFILE_LENGTH] as f64);
                let start = p.centre - (PROFILE_LENGTH / 2) as u64;
                let mut line = format!(
                    "{}\t{}\t{}\t{}\t{}\t{lc:.6}",
                    p.chrom, p.start, p.end, p.centre, p.line
                );
                if let Some(s) = signal.as_mut() {
                    let c = s.values(&p.chrom, start, start + PROFILE_LENGTH as u64)?;
                    let t = (1.0 + c.iter().map(|&v| v as f64).sum::<f64>()).ln();
                    let (jsd, norm) = profile_jsd(&c, logits);
                    line.push_str(&format!("\t{t:.6}\t{jsd:.6}\t{norm:.6}"));
                    truth.push(t);
                    pred.push(lc);
                    jsds.push(jsd);
                    norms.push(norm);
                }
                line.push('\n');
                tsv.put(line.as_bytes())?;
                let total = lc.exp();
                let from = match written {
                    Some((c, end)) if c == *chrom => end.max(start),
                    _ => start,
                };
                for (j, q) in softmax(logits).iter().enumerate() {
                    let pos = start + j as u64;
                    if pos >= from {
                        let mut rec = [0u8; 12];
                        rec[..4].copy_from_slice(&(*chrom as u32).to_le_bytes());
                        rec[4..8].copy_from_slice(&(pos as u32).to_le_bytes());
                        rec[8..].copy_from_slice(&((q * total) as f32).to_le_bytes());
                        runs.write_all(&rec).map_err(|e| Error::io(&runs_path, e))?;
                        written_runs += 1;
                    }
                }
                let end = start + PROFILE_LENGTH as u64;
                written = Some((*chrom, from.max(end)));
            }
            done(chunk.len());
        }
        runs.flush().map_err(|e| Error::io(&runs_path, e))?;
        let sizes = genome.sizes();
        let names = sizes.iter().map(|(n, _)| n.clone()).collect();
        let file = std::fs::File::open(&runs_path).map_err(|e| Error::io(&runs_path, e))?;
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let track = out.join("predicted.bw");
        write_bigwig(
            &track,
            &sizes,
            RunsReader {
                reader: BufReader::new(file),
                names,
                read: read.clone(),
            },
        )?;
        // The iterator cannot return a read error: it ends early instead, so a short count
        // means a truncated track, which does not stand.
        let read = read.load(std::sync::atomic::Ordering::Relaxed);
        if read != written_runs {
            let _ = std::fs::remove_file(&track);
            return Err(Error::Other(format!(
                "{}: read back {read} of the track's {written_runs} positions",
                runs_path.display()
            )));
        }
        tsv.commit()
    })();
    let _ = std::fs::remove_file(&runs_path);
    result?;
    Ok(RegionsSummary {
        predicted: keep.len(),
        off_chromosome,
        metrics: measured.then(|| GroupMetrics::of(&truth, &pred, &jsds, &norms)),
    })
}

/// The track's runs read back from their file, one position each.
struct RunsReader {
    reader: BufReader<std::fs::File>,
    names: Vec<String>,
    /// Positions read so far.
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Iterator for RunsReader {
    type Item = (String, u32, u32, f32);

    fn next(&mut self) -> Option<Self::Item> {
        let mut rec = [0u8; 12];
        self.reader.read_exact(&mut rec).ok()?;
        let word = |i: usize| [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
        let chrom = u32::from_le_bytes(word(0)) as usize;
        let pos = u32::from_le_bytes(word(4));
        let value = f32::from_le_bytes(word(8));
        self.read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some((self.names[chrom].clone(), pos, pos + 1, value))
    }
}
