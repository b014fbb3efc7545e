//! Prediction with any Prix Fixe model: forward and reverse complement, averaged, with
//! `is_singleton` = 0 (SPEC §2.4), encoded per batch so memory stays bounded.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::PrixFixeNet;
use crate::data::formats::detect::{Format, open_sequences};
use crate::data::{
    BatchStream, Encoder, Item, Mode, ReadOptions, SeqDataset, StreamSpec, Targets, Trim,
    epoch_items,
};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::net::NetConfig;
use crate::weights::{WeightMap, tensor_values};

/// Metadata key under which a checkpoint stores its model config (TOML).
pub const CONFIG_KEY: &str = "prixfixe.model";
/// Metadata key of the writing version.
pub const VERSION_KEY: &str = "prixfixe.version";

/// Anything that maps encoded inputs to predictions: what interpretation and design are
/// written against, so they work with every model.
pub trait Predictor {
    /// How sequences become inputs.
    fn encoder(&self) -> &Encoder;
    /// Values per prediction.
    fn tasks(&self) -> usize;
    /// Predictions `(rows × tasks)` for `rows` encoded inputs `(rows × channels × length)`.
    fn predict_encoded(&self, x: Vec<f32>, rows: usize) -> Vec<f32>;
    /// The names of the prediction columns, one per task.
    fn columns(&self) -> Vec<String> {
        prediction_columns(self.tasks())
    }
}

/// A model ready to predict: its config, its network (inference mode) and its device.
pub struct Model {
    /// The config it was built from.
    pub config: NetConfig,
    net: PrixFixeNet,
    /// Where it runs.
    pub device: Device,
    encoder: Encoder,
    /// The CPU inference engine, when the device is the CPU and the blocks have one.
    engine: Option<Engine>,
}

impl Model {
    /// Wrap a network (in inference mode). On the CPU, blocks the [`Engine`] covers
    /// run there, with the same results.
    pub fn new(config: NetConfig, net: PrixFixeNet, device: Device) -> Result<Self> {
        let encoder = config.input.encoder()?;
        let engine = if device == Device::flex() {
            Engine::new(&config, &net)
        } else {
            None
        };
        Ok(Model {
            config,
            net,
            device,
            encoder,
            engine,
        })
    }

    /// Crop sequences too long for the input as `trim` says, instead of refusing them.
    pub fn with_crop(mut self, trim: Trim) -> Result<Self> {
        self.encoder = Encoder::new(
            &self.encoder.padding().with_trim(trim),
            self.encoder.channels(),
        )
        .and_then(|e| e.with_strands(self.encoder.strands()))
        .map_err(Error::Config)?;
        Ok(self)
    }

    /// The network.
    pub fn net(&self) -> &PrixFixeNet {
        &self.net
    }

    /// Give the network back.
    pub fn into_net(self) -> PrixFixeNet {
        self.net
    }

    /// Whether predictions run on the CPU inference engine.
    pub fn uses_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// Load a checkpoint written by prixfixe (its config is in the file's metadata).
    pub fn from_checkpoint(path: &Path, device: &Device) -> Result<Self> {
        let map = WeightMap::read(path)?;
        let text = map.metadata.get(CONFIG_KEY).ok_or_else(|| {
            Error::Config(format!(
                "{} has no prixfixe model config in its metadata; for weights from elsewhere \
                 name the model (--model/--config) as well",
                path.display()
            ))
        })?;
        let config = NetConfig::from_toml(text)?;
        Self::with_weights(config, &map, device)
    }

    /// Load the `checkpoint` (`best` or `last`) of a run directory written by `prixfixe train`;
    /// a directory without it is named as not a run directory.
    pub fn from_run_dir(dir: &Path, checkpoint: &str, device: &Device) -> Result<Self> {
        let path = dir.join(format!("{checkpoint}.safetensors"));
        if !path.exists() {
            return Err(Error::Config(format!(
                "{}: not a run directory of prixfixe train (it has no {checkpoint}.safetensors)",
                dir.display()
            )));
        }
        Self::from_checkpoint(&path, device)
    }

    /// Build `config` and load weights from `path` (.pth, .pt or .safetensors).
    pub fn from_weights(config: NetConfig, path: &Path, device: &Device) -> Result<Self> {
        let map = WeightMap::read(path)?;
        Self::with_weights(config, &map, device)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Save as a prixfixe checkpoint: safetensors with the model config in its metadata (so
    /// that `--model-dir`/[`Model::from_checkpoint`] can load it), e.g. to convert PyTorch
    /// weights once.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        let mut map = WeightMap::from_model(&mut self.net, "");
        map.metadata
            .insert(CONFIG_KEY.into(), self.config.to_toml());
        map.metadata
            .insert(VERSION_KEY.into(), env!("CARGO_PKG_VERSION").into());
        map.write_safetensors(path)
    }

    fn with_weights(config: NetConfig, map: &WeightMap, device: &Device) -> Result<Self> {
        let mut net = config.init(device)?;
        map.apply_to(&mut net, "", device)?;
        Self::new(config, net, device.clone())
    }

    /// Predictions for every row of `ds`: `rows × tasks`, each the mean of the forward and
    /// the reverse-complement prediction, or one pass with the row's own orientation where
    /// the model's [`Strands`](crate::data::Strands) say so. `on_batch` is told how many rows each batch held.
    pub fn predict(
        &self,
        ds: Arc<SeqDataset>,
        batch_size: usize,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let versions = self.encoder.strands().versions();
        let items: Vec<Item> = (0..ds.len())
            .flat_map(|r| {
                [Item::new(r, false), Item::new(r, true)]
                    .into_iter()
                    .take(versions)
            })
            .collect();
        let spec = StreamSpec::new(versions * batch_size.max(1), Targets::None, Mode::Predict);
        let stream = BatchStream::spawn(ds, self.encoder.clone(), items, spec);
        let tasks = self.tasks();
        let mut out = Vec::new();
        for batch in stream {
            let batch = batch?;
            let n = batch.size();
            let y = self.predict_encoded(batch.x, n);
            check_finite(&y)?;
            mean_of_versions(&y, tasks, versions, &mut out);
            on_batch(n / versions);
        }
        Ok(out)
    }

    /// Predictions per item as the trainer validates: each orientation its own row, with the
    /// row's real singleton flag.
    pub fn predict_items(
        &self,
        ds: Arc<SeqDataset>,
        rc: bool,
        batch_size: usize,
    ) -> Result<(Vec<Item>, Vec<f32>)> {
        let items = epoch_items(ds.len(), rc, None, 0);
        let spec = StreamSpec::new(batch_size, Targets::None, Mode::Train);
        let stream = BatchStream::spawn(ds, self.encoder.clone(), items.clone(), spec);
        let mut out = Vec::with_capacity(items.len() * self.tasks());
        for batch in stream {
            let batch = batch?;
            let n = batch.size();
            let y = self.predict_encoded(batch.x, n);
            check_finite(&y)?;
            out.extend(y);
        }
        Ok((items, out))
    }
}

pub use crate::blocks::prediction_columns;

/// Non-finite predictions mean broken weights or a broken input: never written as results.
fn check_finite(y: &[f32]) -> Result<()> {
    match y.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::Other(format!(
            "the model predicted {} (prediction {} of a batch): its weights or inputs are broken; \
             nothing was written",
            y[i],
            i + 1
        ))),
    }
}

/// The name under which `predict` writes an input column back: its own, unless that is one
/// of the output's (`id`, `sequence`, a prediction column, as when a `predict` output is
/// predicted again), which gets `_input` added.
fn kept_column_name(name: &str, columns: &[String]) -> String {
    if name == "id" || name == "sequence" || columns.iter().any(|c| c == name) {
        format!("{name}_input")
    } else {
        name.to_string()
    }
}

/// What [`predict_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PredictSummary {
    /// Rows predicted.
    pub rows: usize,
    /// Yeast reads without adapters, which got the plasmid's.
    pub adapters_added: usize,
    /// Sequences longer than the input, cropped as asked.
    pub cropped: usize,
}

/// Predict every sequence of `input` (any format prixfixe reads; `-` or a pipe too) and write
/// `[id<TAB>]sequence<TAB>[kept…<TAB>]prediction…` to `output` in input order, as it goes.
/// Kept are a table's other columns, as they were (a name that clashes with an output column gets `_input` added), or a
/// DREAM file's measured values (`measured`, or `measured_1`, …). Memory holds
/// one chunk of rows, whatever the input's size. A regular file is validated whole before any
/// prediction; the output appears, atomically, only when every row is written.
pub fn predict_file(
    p: &(impl Predictor + ?Sized),
    input: &Path,
    format: Option<Format>,
    output: &Path,
    batch_size: usize,
    mut on_rows: impl FnMut(usize),
) -> Result<PredictSummary> {
    use std::io::Write;
    crate::output::refuse_overwriting_input(output, &[input])?;
    let opts = ReadOptions {
        padding: Some(p.encoder().padding().clone()),
    };
    if crate::data::io::is_regular_file(input) {
        let (_, mut records) = open_sequences(input, format.clone(), &opts)?;
        let mut n = 0;
        while records.next_record()?.is_some() {
            n += 1;
        }
        if n == 0 {
            return Err(Error::data(input, 0, crate::error::Problem::EmptyFile));
        }
    }
    let (_, mut records) = open_sequences(input, format, &opts)?;
    // A table's other columns go back out as they came in; a DREAM file's values as
    // `measured`.
    let other = records.keep_other_columns();
    let io = |e: std::io::Error| Error::io(output, e);
    let mut out = crate::output::AtomicFile::create(output)?;
    let tasks = p.tasks();
    let columns = p.columns();
    let chunk = 4 * batch_size.max(1);
    let mut rows = Vec::with_capacity(chunk);
    let mut summary = PredictSummary::default();
    let mut header = false;
    let mut measured = 0;
    loop {
        rows.clear();
        while rows.len() < chunk {
            match records.next_record()? {
                Some(r) => rows.push(r),
                None => break,
            }
        }
        if rows.is_empty() {
            break;
        }
        if !header {
            let id = if rows[0].id.is_some() { "id\t" } else { "" };
            let kept: String = match &other {
                Some(names) => names
                    .iter()
                    .map(|n| format!("{}\t", kept_column_name(n, &columns)))
                    .collect(),
                None => {
                    measured = rows[0].targets.len();
                    match measured {
                        0 => String::new(),
                        1 => "measured\t".into(),
                        n => (0..n).map(|i| format!("measured_{}\t", i + 1)).collect(),
                    }
                }
            };
            writeln!(out, "{id}sequence\t{kept}{}", columns.join("\t")).map_err(io)?;
            header = true;
        }
        let seqs: Vec<&[u8]> = rows.iter().map(|r| r.seq.as_slice()).collect();
        let reverse: Vec<bool> = rows.iter().map(|r| r.is_reverse).collect();
        let preds = predict_oriented(p, &seqs, Some(&reverse), batch_size)?;
        for (r, y) in rows.iter().zip(preds.chunks(tasks)) {
            if let Some(id) = &r.id {
                write!(out, "{id}\t").map_err(io)?;
            }
            out.write_all(crate::data::alphabet::decode(&r.seq).as_bytes())
                .map_err(io)?;
            for field in &r.other {
                // A quoted CSV field may hold a tab or a line break; TSV cannot.
                let field = field.replace(['\t', '\n', '\r'], " ");
                write!(out, "\t{field}").map_err(io)?;
            }
            // The measured value(s) the input carried, kept beside the prediction (NA where a
            // row has fewer than the first row).
            for i in 0..measured {
                match r.targets.get(i) {
                    Some(v) => write!(out, "\t{v}").map_err(io)?,
                    None => write!(out, "\tNA").map_err(io)?,
                }
            }
            for v in y {
                write!(out, "\t{v}").map_err(io)?;
            }
            writeln!(out).map_err(io)?;
        }
        summary.rows += rows.len();
        on_rows(rows.len());
    }
    if summary.rows == 0 {
        return Err(Error::data(input, 0, crate::error::Problem::EmptyFile));
    }
    let stats = records.stats();
    summary.adapters_added = stats.adapters_added;
    summary.cropped = stats.cropped;
    out.commit()?;
    Ok(summary)
}

impl Predictor for Model {
    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn tasks(&self) -> usize {
        self.config.final_block.tasks()
    }

    fn columns(&self) -> Vec<String> {
        self.config.columns()
    }

    fn predict_encoded(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
        if let Some(engine) = &self.engine {
            return engine.predict(&x, rows);
        }
        let shape = [rows, self.encoder.channels().count(), self.encoder.length()];
        let x = Tensor::<3>::from_data(TensorData::new(x, shape), &self.device);
        tensor_values(self.net.predict(x))
    }
}

/// Several models of the same input averaged (fold ensembles): one [`Predictor`].
pub struct Ensemble {
    models: Vec<Model>,
}

impl Ensemble {
    /// Models must share their input (padding, channels, length) and number of tasks.
    pub fn new(models: Vec<Model>) -> Result<Self> {
        let first = models
            .first()
            .ok_or_else(|| Error::Config("an ensemble needs at least one model".into()))?;
        for (i, m) in models.iter().enumerate().skip(1) {
            if m.encoder.padding() != first.encoder.padding()
                || m.encoder.channels() != first.encoder.channels()
                || m.tasks() != first.tasks()
            {
                return Err(Error::Config(format!(
                    "model {} of the ensemble takes other inputs or gives other outputs than \
                     model 1 ({} × {} → {} vs {} × {} → {})",
                    i + 1,
                    m.encoder.channels().count(),
                    m.encoder.length(),
                    m.tasks(),
                    first.encoder.channels().count(),
                    first.encoder.length(),
                    first.tasks()
                )));
            }
        }
        Ok(Self { models })
    }

    /// The members.
    pub fn models(&self) -> &[Model] {
        &self.models
    }
}

impl Predictor for Ensemble {
    fn encoder(&self) -> &Encoder {
        &self.models[0].encoder
    }

    fn tasks(&self) -> usize {
        self.models[0].tasks()
    }

    fn columns(&self) -> Vec<String> {
        self.models[0].columns()
    }

    fn predict_encoded(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
        let n = self.models.len() as f32;
        let mut sum: Option<Vec<f32>> = None;
        for m in &self.models {
            let p = m.predict_encoded(x.clone(), rows);
            match &mut sum {
                None => sum = Some(p),
                Some(s) => s.iter_mut().zip(p).for_each(|(a, b)| *a += b),
            }
        }
        let mut s = sum.expect("at least one model");
        s.iter_mut().for_each(|v| *v /= n);
        s
    }
}

/// Append to `out` the mean of each sequence's `versions` consecutive prediction rows (forward
/// then turned; one row is taken as it is).
fn mean_of_versions(y: &[f32], tasks: usize, versions: usize, out: &mut Vec<f32>) {
    if versions == 1 {
        out.extend_from_slice(y);
        return;
    }
    for pair in y.chunks(2 * tasks) {
        let (fwd, rev) = pair.split_at(tasks);
        out.extend(fwd.iter().zip(rev).map(|(a, b)| (a + b) / 2.0));
    }
}

/// Encode sequences (base codes) as the model predicts them, singleton 0: forward and
/// turned (`2 × seqs` rows) where its [`Strands`](crate::data::Strands) average two versions, else one row each with
/// its own orientation flag (`reverse`, forward when `None`). Rows are encoded in parallel.
pub fn encode_for_prediction(
    enc: &Encoder,
    seqs: &[&[u8]],
    reverse: Option<&[bool]>,
) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let row = enc.row_len();
    let versions = enc.strands().versions();
    let mut x = vec![0.0f32; versions * seqs.len() * row];
    x.par_chunks_mut(versions * row)
        .zip(seqs.par_iter())
        .enumerate()
        .try_for_each_init(Vec::new, |scratch, (i, (out, s))| {
            let own = reverse.is_some_and(|r| r[i]);
            for (v, o) in out.chunks_mut(row).enumerate() {
                let flip = v == 1;
                let flags = crate::data::RowFlags {
                    is_reverse: own ^ flip,
                    is_singleton: false,
                };
                enc.encode_row(s, flip, flags, scratch, o)
                    .map_err(|p| Error::Config(format!("sequence {} of the batch: {p}", i + 1)))?;
            }
            Ok(())
        })?;
    Ok(x)
}

/// Predictions (`seqs × tasks`) for forward sequences given as base codes, singleton 0 — what
/// [`Model::predict`] gives for a file — with `batch` sequences per call of the predictor.
pub fn predict_codes(
    p: &(impl Predictor + ?Sized),
    seqs: &[&[u8]],
    batch: usize,
) -> Result<Vec<f32>> {
    predict_oriented(p, seqs, None, batch)
}

/// [`predict_codes`] with each sequence's orientation flag (the `is_reverse` channel of
/// lentiMPRA's `_Reversed:` oligos and DeepSTARR's `-` strand rows).
pub fn predict_oriented(
    p: &(impl Predictor + ?Sized),
    seqs: &[&[u8]],
    reverse: Option<&[bool]>,
    batch: usize,
) -> Result<Vec<f32>> {
    let tasks = p.tasks();
    let versions = p.encoder().strands().versions();
    let mut out = Vec::with_capacity(seqs.len() * tasks);
    let batch = batch.max(1);
    for (c, chunk) in seqs.chunks(batch).enumerate() {
        let rev = reverse.map(|r| &r[c * batch..c * batch + chunk.len()]);
        let x = encode_for_prediction(p.encoder(), chunk, rev)?;
        let y = p.predict_encoded(x, versions * chunk.len());
        check_finite(&y)?;
        mean_of_versions(&y, tasks, versions, &mut out);
    }
    Ok(out)
}
