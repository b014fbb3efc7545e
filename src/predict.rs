//! Prediction with any Prix Fixe model: forward and reverse complement, averaged, with
//! `is_singleton` = 0 (SPEC §2.4), encoded per batch so memory stays bounded.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::PrixFixeNet;
use crate::data::{BatchStream, Encoder, Item, Mode, SeqDataset, StreamSpec, Targets, epoch_items};
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
}

/// A model ready to predict: its config, its network (inference mode) and its device.
pub struct Model {
    /// The config it was built from.
    pub config: NetConfig,
    /// The network.
    pub net: PrixFixeNet,
    /// Where it runs.
    pub device: Device,
    encoder: Encoder,
}

impl Model {
    /// Wrap a network.
    pub fn new(config: NetConfig, net: PrixFixeNet, device: Device) -> Result<Self> {
        let encoder = config.input.encoder()?;
        Ok(Model {
            config,
            net,
            device,
            encoder,
        })
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
            let p = self.predict_encoded(batch.x, n);
            for pair in p.chunks(2 * tasks) {
                let (fwd, rev) = pair.split_at(tasks);
                out.extend(fwd.iter().zip(rev).map(|(a, b)| (a + b) / 2.0));
            }
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
        let shape = [rows, self.encoder.channels().count(), self.encoder.length()];
        let x = Tensor::<3>::from_data(TensorData::new(x, shape), &self.device);
        tensor_values(self.net.predict(x))
    }
}
