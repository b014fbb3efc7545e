//! A training run's configuration: the model, the data and the recipe, kept apart (the
//! architecture is not the recipe). Read from TOML; every field has the DREAM default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::optim::AdamWConfig;
use crate::data::TableSpec;
use crate::error::{Error, Result};
use crate::net::{DataKind, NetConfig};

/// Which team's trainer runs the recipe (with its data processor's targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainerKind {
    /// Autosome.org's (SPEC §4): one-cycle schedule, reverse-complement doubling as rows.
    #[default]
    Autosome,
    /// BHI's (SPEC_GRID §3): cosine annealing over training rows × epochs (max_lr 0.0015 by
    /// default), each batch's loss the mean of the forward and the reverse-complement pass,
    /// targets standardised per file as `(bin − 11) / σ`, validated on the forward strand,
    /// the best epoch by Pearson r. Needs `rc_double = false`.
    Bhi,
    /// Unlock_DNA's (SPEC_GRID §6): Adam (β 0.9/0.98, eps 1e-9, no weight decay, whatever
    /// `[recipe.optimizer]` says) with the Transformer schedule
    /// `lr(n) = d^−½ · min(n^−½, n · warmup^−1.5)` (d the first block's width; one step per
    /// batch, n from 1: Q7), a fifth of the tokens masked each step, gradients clipped to a
    /// global norm of 1 and then to ±0.5, training targets z-scored by the training file,
    /// validation against the raw labels (its MSE is unscaled, Q5), the best epoch by
    /// Pearson r. Needs the Unlock_DNA final block and `rc_double = false`.
    UnlockDna,
    /// The Keras baselines' (DeepSTARR, MPRAnn; SPEC_BENCHMARKS §3.3, §4.3): Adam (β 0.9/0.999,
    /// eps 1e-7, no weight decay, whatever `[recipe.optimizer]` says) at a constant rate
    /// (`max_lr`; by default the core block's: DeepSTARR 0.002, MPRAnn 0.001), the best epoch
    /// by the lowest validation loss, and early stopping after `patience` epochs without a
    /// better one (Keras' `restore_best_weights`: `best.safetensors` is that epoch's).
    Keras,
}

/// The DREAM-optimised recipe (SPEC §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    /// Epochs.
    pub epochs: usize,
    /// Sequences per batch (1,024 yeast; 32 human and Drosophila).
    pub batch_size: usize,
    /// Peak learning rate; `None` = 0.005, or 0.001 for attention cores.
    pub max_lr: Option<f64>,
    /// An epoch as a fixed number of batches; the shuffled stream then runs on across epochs.
    pub batch_per_epoch: Option<usize>,
    /// Seed of initialisation, shuffling, dropout and the validation split.
    pub seed: u64,
    /// Show every row forward and reverse-complemented (SPEC §2.4).
    pub rc_double: bool,
    /// AdamW.
    pub optimizer: AdamWConfig,
    /// Where to run: `cpu`, `cuda[:N]`, `wgpu[:N]`, `vulkan[:N]`.
    pub device: String,
    /// Whose trainer: `autosome` (default), `bhi` or `unlock-dna`.
    pub trainer: TrainerKind,
    /// The Unlock_DNA trainer's warm-up steps (the team's 12,500).
    pub warmup: usize,
    /// Stop once this many epochs in a row bring no better validation score than the best
    /// (Keras' `EarlyStopping(patience)`); `None` runs every epoch.
    pub patience: Option<usize>,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            epochs: 80,
            batch_size: 1024,
            max_lr: None,
            batch_per_epoch: None,
            seed: 42,
            rc_double: true,
            optimizer: AdamWConfig::default(),
            device: "cpu".into(),
            trainer: TrainerKind::Autosome,
            warmup: 12_500,
            patience: None,
        }
    }
}

impl Recipe {
    /// The peak learning rate for a model.
    pub fn max_lr_for(&self, model: &NetConfig) -> f64 {
        self.max_lr.unwrap_or_else(|| match self.trainer {
            TrainerKind::Autosome | TrainerKind::Keras => model.core.default_max_lr(),
            TrainerKind::Bhi => 0.0015,
            // Unused: the Transformer schedule sets its own peak.
            TrainerKind::UnlockDna => 0.001,
        })
    }

    /// This recipe run by `trainer`. Row doubling stays only under the Autosome.org trainer
    /// and the Keras one: BHI's averages a reverse-complement pass itself, and Unlock_DNA's
    /// input holds both strands.
    pub fn with_trainer(&self, trainer: TrainerKind) -> Recipe {
        Recipe {
            trainer,
            rc_double: self.rc_double
                && matches!(trainer, TrainerKind::Autosome | TrainerKind::Keras),
            ..self.clone()
        }
    }

    /// Whether the values can work.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("recipe: {m}")));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        let own_strands = match self.trainer {
            TrainerKind::Autosome | TrainerKind::Keras => None,
            TrainerKind::Bhi => {
                Some("the BHI trainer averages each batch's loss over both strands itself")
            }
            TrainerKind::UnlockDna => {
                Some("the Unlock_DNA trainer's input holds both strands already")
            }
        };
        if let (Some(why), true) = (own_strands, self.rc_double) {
            return bad(format!("{why}; set rc_double = false"));
        }
        if self.warmup == 0 {
            return bad("warmup must be at least 1 step".into());
        }
        if self.patience == Some(0) {
            return bad(
                "patience must be at least 1 epoch (leave it out to run every epoch)".into(),
            );
        }
        if self.batch_per_epoch == Some(0) {
            return bad("batch_per_epoch must be at least 1".into());
        }
        if let Some(lr) = self.max_lr
            && !(lr > 0.0 && lr.is_finite())
        {
            return bad(format!("max_lr {lr} must be a positive number"));
        }
        use crate::blocks::limits::{count, within};
        let o = &self.optimizer;
        count("[recipe] epochs", self.epochs, 1_000_000)
            .and_then(|_| count("[recipe] batch_size", self.batch_size, 1 << 20))
            .and_then(|_| within("[recipe.optimizer] weight_decay", o.weight_decay, 0.0, 1.0))
            .and_then(|_| within("[recipe.optimizer] beta2", o.beta2, 0.0, 0.999_999_999))
            .and_then(|_| within("[recipe.optimizer] eps", o.eps, 1e-30, 1.0))
            .map_err(|m| Error::Config(format!("recipe: {m}")))?;
        if self.device.trim().is_empty() {
            return bad("device must name a device (cpu, cuda[:N], wgpu[:N], vulkan[:N])".into());
        }
        Ok(())
    }
}

/// The data of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training file.
    pub train: PathBuf,
    /// Validation file; without one, a seeded `valid_fraction` of the training rows is held out.
    #[serde(default)]
    pub valid: Option<PathBuf>,
    /// Fraction held out when there is no validation file.
    #[serde(default = "default_fraction")]
    pub valid_fraction: f64,
    /// For files with a fold column: hold out this fold instead of a random fraction.
    #[serde(default)]
    pub valid_fold: Option<u16>,
    /// Columns of a table file (the DeepSTARR and lentiMPRA layouts are recognised without).
    #[serde(default)]
    pub table: Option<TableSpec>,
    /// A fold per row of `train`, replacing the file's fold column: a text file with the
    /// header `fold` and one whole number per data row, in file order (what `prixfixe cv plan`
    /// writes for the Drosophila protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds: Option<PathBuf>,
    /// Rows of these folds are left out of training and validation: a cross-validation's
    /// test rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test_folds: Vec<u16>,
}

fn default_fraction() -> f64 {
    0.1
}

/// A run: model + data + recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The model.
    pub model: NetConfig,
    /// The data.
    pub data: DataSection,
    /// The recipe.
    #[serde(default)]
    pub recipe: Recipe,
}

/// Values that replace a config's, as command-line flags give them: each `Some` wins.
#[derive(Debug, Clone, Default)]
pub struct TrainOverrides {
    /// Training file.
    pub train: Option<PathBuf>,
    /// Validation file.
    pub valid: Option<PathBuf>,
    /// Fraction held out for validation when there is no validation file.
    pub valid_fraction: Option<f64>,
    /// Epochs.
    pub epochs: Option<usize>,
    /// Sequences per batch.
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    pub max_lr: Option<f64>,
    /// Batches per epoch.
    pub batch_per_epoch: Option<usize>,
    /// Early-stopping patience in epochs.
    pub patience: Option<usize>,
    /// Seed.
    pub seed: Option<u64>,
    /// Device.
    pub device: Option<String>,
}

impl Recipe {
    /// The DREAM recipe with the paper's changes for the data kind: on the human and
    /// Drosophila sets batches of 32 and no added reverse-complement rows (each row is seen
    /// once, with its own orientation flag; SPEC_BENCHMARKS §1.4, §2.4).
    pub fn for_data(kind: DataKind) -> Self {
        match kind {
            DataKind::Human | DataKind::Drosophila => Recipe {
                batch_size: 32,
                rc_double: false,
                ..Recipe::default()
            },
            DataKind::Yeast => Recipe::default(),
        }
    }

    /// The recipe `model` is trained with on `kind` data: the baselines' own (DeepSTARR:
    /// Adam 0.002, batch 128; MPRAnn: Adam 0.001, batch 32 as in the paper's comparison
    /// (`batch_size = 128` as published), every row also with its element turned; both up to
    /// 100 epochs with early stopping, patience 10; SPEC_BENCHMARKS §3.3, §4.3–4.4), the
    /// DREAM recipe otherwise.
    pub fn for_model(model: &NetConfig, kind: DataKind) -> Self {
        let keras = |batch_size, rc_double| Recipe {
            epochs: 100,
            batch_size,
            rc_double,
            trainer: TrainerKind::Keras,
            patience: Some(10),
            // What the Keras trainer runs, written out so the run's config.toml says so.
            optimizer: AdamWConfig {
                weight_decay: 0.0,
                beta2: 0.999,
                eps: 1e-7,
            },
            ..Recipe::default()
        };
        match (model.first.name(), model.core.name()) {
            ("deepstarr", "deepstarr") => keras(128, false),
            ("mprann", "mprann") => keras(32, model.input.strands.averages()),
            _ => Recipe::for_data(kind),
        }
    }
}

/// `base` with the keys of `given` (a config's `[recipe]` table) taken from `parsed` (that
/// table read with defaults).
fn overlay(base: Recipe, parsed: &Recipe, given: Option<&toml::Table>) -> Result<Recipe> {
    let Some(given) = given else {
        return Ok(base);
    };
    let to_table = |r: &Recipe| match toml::Value::try_from(r) {
        Ok(toml::Value::Table(t)) => t,
        _ => unreachable!("a recipe serialises to a table"),
    };
    let (mut out, parsed) = (to_table(&base), to_table(parsed));
    for key in given.keys() {
        match parsed.get(key) {
            Some(v) => {
                out.insert(key.clone(), v.clone());
            }
            None => {
                out.remove(key);
            }
        }
    }
    out.try_into()
        .map_err(|e: toml::de::Error| Error::Config(format!("train config: [recipe]: {e}")))
}

impl TrainConfig {
    /// `model` trained on `train` with the data kind's defaults, a tenth held out for
    /// validation.
    pub fn for_data(model: NetConfig, kind: DataKind, train: PathBuf) -> Self {
        TrainConfig {
            data: DataSection {
                train,
                valid: None,
                valid_fraction: 0.1,
                valid_fold: None,
                table: None,
                folds: None,
                test_folds: Vec::new(),
            },
            recipe: Recipe::for_model(&model, kind),
            model,
        }
    }

    /// Replace every value `o` gives.
    pub fn apply(&mut self, o: &TrainOverrides) {
        let (d, r) = (&mut self.data, &mut self.recipe);
        if let Some(t) = &o.train {
            d.train = t.clone();
        }
        if o.valid.is_some() {
            d.valid = o.valid.clone();
        }
        if let Some(f) = o.valid_fraction {
            d.valid_fraction = f;
        }
        if let Some(v) = o.epochs {
            r.epochs = v;
        }
        if let Some(v) = o.batch_size {
            r.batch_size = v;
        }
        if o.max_lr.is_some() {
            r.max_lr = o.max_lr;
        }
        if o.batch_per_epoch.is_some() {
            r.batch_per_epoch = o.batch_per_epoch;
        }
        if o.patience.is_some() {
            r.patience = o.patience;
        }
        if let Some(v) = o.seed {
            r.seed = v;
        }
        if let Some(v) = &o.device {
            r.device = v.clone();
        }
    }

    /// Read from TOML. `[model]` may be `preset = "…"` (with `data = "yeast"` …) or full blocks.
    /// The text is deserialised in one pass, so an error's line is the line of the file.
    pub fn from_toml(text: &str) -> Result<Self> {
        let err = |e: toml::de::Error| Error::Config(format!("train config: {e}"));
        let value: toml::Table = toml::from_str(text).map_err(err)?;
        let model = value
            .get("model")
            .ok_or_else(|| Error::Config("train config: no [model] table".into()))?;
        let preset = model.get("preset").is_some();
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PresetModel {
            preset: String,
            #[serde(default)]
            data: Option<crate::net::DataKind>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc<M> {
            model: M,
            data: DataSection,
            #[serde(default)]
            recipe: Recipe,
        }
        let mut config = if preset {
            let d: Doc<PresetModel> = toml::from_str(text).map_err(err)?;
            let kind = d.model.data.unwrap_or(crate::net::DataKind::Yeast);
            let model = NetConfig::preset(&d.model.preset, kind)?;
            // The keys the file sets win; the others are the named model's recipe (the
            // baselines' own, the paper's changes for Drosophila and human), not yeast's.
            let given = value.get("recipe").and_then(|r| r.as_table());
            let recipe = overlay(Recipe::for_model(&model, kind), &d.recipe, given)?;
            TrainConfig {
                model,
                data: d.data,
                recipe,
            }
        } else {
            let d: Doc<NetConfig> = toml::from_str(text).map_err(err)?;
            d.model.check()?;
            TrainConfig {
                model: d.model,
                data: d.data,
                recipe: d.recipe,
            }
        };
        config.recipe.check()?;
        // A multi-task model without task names takes its table's label column names.
        if let Some(table) = &config.data.table {
            config.model.name_tasks_after(&table.targets);
        }
        Ok(config)
    }

    /// As TOML (the resolved config a run directory keeps).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(model: &str, recipe: &str) -> TrainConfig {
        TrainConfig::from_toml(&format!(
            "[model]\n{model}\n[data]\ntrain = \"t.txt\"\n{recipe}"
        ))
        .unwrap()
    }

    /// A named model in a config gets its own recipe where the file is silent: the
    /// baselines' Keras recipe, the paper's batch 32 without added reverse-complement rows on
    /// Drosophila and human data; the keys the file sets win.
    #[test]
    fn a_preset_in_a_config_brings_its_recipe() {
        let r = read("preset = \"deepstarr\"\ndata = \"drosophila\"", "").recipe;
        assert_eq!(
            (r.trainer, r.batch_size, r.epochs),
            (TrainerKind::Keras, 128, 100)
        );
        assert_eq!(
            (r.patience, r.rc_double, r.optimizer.eps),
            (Some(10), false, 1e-7)
        );
        let r = read(
            "preset = \"mprann\"\ndata = \"human\"",
            "[recipe]\nepochs = 3\n[recipe.optimizer]\nbeta2 = 0.99\n",
        )
        .recipe;
        assert_eq!(
            (r.trainer, r.batch_size, r.epochs),
            (TrainerKind::Keras, 32, 3)
        );
        assert!(r.rc_double, "MPRAnn trains on both versions of each oligo");
        assert_eq!(r.optimizer.beta2, 0.99);
        let r = read("preset = \"dream-rnn\"\ndata = \"human\"", "").recipe;
        assert_eq!(
            (r.trainer, r.batch_size, r.rc_double),
            (TrainerKind::Autosome, 32, false)
        );
        let r = read("preset = \"dream-rnn\"", "").recipe;
        assert_eq!(r, Recipe::default());
    }
}
