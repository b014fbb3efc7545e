//! Prediction with any Prix Fixe model: forward and reverse complement, averaged, with
//! `is_singleton` = 0 (SPEC §2.4), encoded per batch so memory stays bounded.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::PrixFixeNet;
use crate::data::{BatchStream, Encoder, Item, Mode, SeqDataset, StreamSpec, Targets, epoch_items};
use crate::error::{Error, Result};
use crate::fast::FastNet;
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
    fast: Option<FastNet>,
}

impl Model {
    /// Wrap a network (in inference mode). On the CPU, blocks the [`FastNet`] engine covers
    /// run there, with the same results.
    pub fn new(config: NetConfig, mut net: PrixFixeNet, device: Device) -> Result<Self> {
        let encoder = config.input.encoder()?;
        let fast = if device == Device::flex() && !FastNet::disabled() {
            FastNet::new(&config, &WeightMap::from_model(&mut net, ""))
        } else {
            None
        };
        Ok(Model {
            config,
            net,
            device,
            encoder,
            fast,
        })
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
    pub fn uses_fast_engine(&self) -> bool {
        self.fast.is_some()
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
    /// the reverse-complement prediction. `on_batch` is told how many rows each batch held.
    pub fn predict(
        &self,
        ds: Arc<SeqDataset>,
        batch_size: usize,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let items: Vec<Item> = (0..ds.len())
            .flat_map(|r| [Item::new(r, false), Item::new(r, true)])
            .collect();
        let spec = StreamSpec::new(2 * batch_size.max(1), Targets::None, Mode::Predict);
        let stream = BatchStream::spawn(ds, self.encoder.clone(), items, spec);
        let tasks = self.tasks();
        let mut out = Vec::new();
        for batch in stream {
            let batch = batch?;
            let n = batch.size();
            mean_of_strands(&self.predict_encoded(batch.x, n), tasks, &mut out);
            on_batch(n / 2);
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
            out.extend(self.predict_encoded(batch.x, n));
        }
        Ok((items, out))
    }
}

impl Model {
    /// The prediction columns: `prediction`, or `prediction_0`, `prediction_1`, … per task.
    pub fn prediction_columns(&self) -> Vec<String> {
        match &self.config.final_block {
            crate::blocks::FinalConfig::SoftClass(_) => vec!["prediction".into()],
            crate::blocks::FinalConfig::Regression(r) => {
                (0..r.tasks).map(|t| format!("prediction_{t}")).collect()
            }
        }
    }

    /// Write `[id<TAB>]sequence<TAB>prediction…` for every row of `ds`, in order (what
    /// `prixfixe score` reads back).
    pub fn write_predictions(&self, path: &Path, ds: &SeqDataset, preds: &[f32]) -> Result<()> {
        use std::io::Write;
        let io = |e: std::io::Error| Error::io(path, e);
        let columns = self.prediction_columns();
        let tasks = columns.len();
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        let id = if ds.ids.is_some() { "id\t" } else { "" };
        writeln!(w, "{id}sequence\t{}", columns.join("\t")).map_err(io)?;
        for (i, row) in preds.chunks(tasks).enumerate().take(ds.len()) {
            if let Some(ids) = &ds.ids {
                write!(w, "{}\t", ids[i]).map_err(io)?;
            }
            write!(w, "{}", crate::data::alphabet::decode(ds.seqs.get(i))).map_err(io)?;
            for v in row {
                write!(w, "\t{v}").map_err(io)?;
            }
            writeln!(w).map_err(io)?;
        }
        w.flush().map_err(io)
    }
}

impl Predictor for Model {
    fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    fn tasks(&self) -> usize {
        self.config.final_block.tasks()
    }

    fn predict_encoded(&self, x: Vec<f32>, rows: usize) -> Vec<f32> {
        if let Some(fast) = &self.fast {
            return fast.predict(&x, rows);
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

/// Append the mean of each (forward, reverse-complement) pair of prediction rows to `out`.
fn mean_of_strands(y: &[f32], tasks: usize, out: &mut Vec<f32>) {
    for pair in y.chunks(2 * tasks) {
        let (fwd, rev) = pair.split_at(tasks);
        out.extend(fwd.iter().zip(rev).map(|(a, b)| (a + b) / 2.0));
    }
}

/// Encode sequences (base codes) forward and reverse-complemented, singleton 0, into
/// `2 × seqs` rows; rows are encoded in parallel.
pub fn encode_both_strands(enc: &Encoder, seqs: &[&[u8]]) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let row = enc.row_len();
    let mut x = vec![0.0f32; 2 * seqs.len() * row];
    x.par_chunks_mut(2 * row)
        .zip(seqs.par_iter())
        .enumerate()
        .try_for_each_init(Vec::new, |scratch, (i, (out, s))| {
            let (fwd, rev) = out.split_at_mut(row);
            for (flip, o) in [(false, fwd), (true, rev)] {
                let flags = crate::data::RowFlags {
                    is_reverse: flip,
                    is_singleton: false,
                };
                enc.encode_row(s, flip, flags, scratch, o)
                    .map_err(|p| Error::Config(format!("sequence {} of the batch: {p}", i + 1)))?;
            }
            Ok(())
        })?;
    Ok(x)
}

/// Predictions (`seqs × tasks`) for sequences given as base codes: the mean of forward and
/// reverse complement with singleton 0 — what [`Model::predict`] gives for a file — with
/// `batch` sequences per call of the predictor.
pub fn predict_codes(
    p: &(impl Predictor + ?Sized),
    seqs: &[&[u8]],
    batch: usize,
) -> Result<Vec<f32>> {
    let tasks = p.tasks();
    let mut out = Vec::with_capacity(seqs.len() * tasks);
    for chunk in seqs.chunks(batch.max(1)) {
        let x = encode_both_strands(p.encoder(), chunk)?;
        mean_of_strands(&p.predict_encoded(x, 2 * chunk.len()), tasks, &mut out);
    }
    Ok(out)
}
