//! A training run's configuration: the model, the data and the recipe, kept apart (the
//! architecture is not the recipe). Read from TOML; every field has the DREAM default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::optim::AdamWConfig;
use crate::blocks::CoreConfig;
use crate::data::TableSpec;
use crate::error::{Error, Result};
use crate::net::NetConfig;

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
        }
    }
}

impl Recipe {
    /// The peak learning rate for a model.
    pub fn max_lr_for(&self, model: &NetConfig) -> f64 {
        self.max_lr.unwrap_or(match model.core {
            CoreConfig::UnlockDna(_) => 0.001,
            _ => 0.005,
        })
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
        if self.batch_per_epoch == Some(0) {
            return bad("batch_per_epoch must be at least 1".into());
        }
        if let Some(lr) = self.max_lr
            && !(lr > 0.0 && lr.is_finite())
        {
            return bad(format!("max_lr {lr} must be a positive number"));
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

impl TrainConfig {
    /// Read from TOML. `[model]` may be `preset = "…"` (with `data = "yeast"` …) or full blocks.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut value: toml::Table =
            toml::from_str(text).map_err(|e| Error::Config(format!("train config: {e}")))?;
        let model = value
            .remove("model")
            .ok_or_else(|| Error::Config("train config: no [model] table".into()))?;
        let model = NetConfig::from_toml(&toml::to_string(&model).expect("toml"))?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rest {
            data: DataSection,
            #[serde(default)]
            recipe: Recipe,
        }
        let rest: Rest = toml::Value::Table(value)
            .try_into()
            .map_err(|e| Error::Config(format!("train config: {e}")))?;
        let config = TrainConfig {
            model,
            data: rest.data,
            recipe: rest.recipe,
        };
        config.recipe.check()?;
        Ok(config)
    }

    /// As TOML (the resolved config a run directory keeps).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs serialise")
    }
}
