//! The Prix Fixe blocks (SPEC §1, §3). Each block is one file: a `Config` that builds it,
//! `forward` read top to bottom, and its tensors named as the reference names them.
//!
//! To add a block: write its file under `first_layers/`, `core_layers/` or `final_layers/`, then add one
//! variant to the matching config and block enums below.

pub mod core_layers;
pub mod final_layers;
pub mod first_layers;
pub mod limits;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use core_layers::autosome::{AutosomeCore, AutosomeCoreConfig};
use core_layers::bhi::{BhiCore, BhiCoreConfig};
use core_layers::unlock_dna::{UnlockDnaConfig, UnlockDnaCore};
use final_layers::regression::{Regression, RegressionConfig};
use final_layers::soft_class::{SoftClass, SoftClassConfig};
use first_layers::autosome::{AutosomeFirst, AutosomeFirstConfig};
use first_layers::bhi::{BhiFirst, BhiFirstConfig};

/// What a first or core block hands on: its output and, if it has one, an auxiliary loss the
/// trainer adds to the task loss. (No block of the paper needs one; the interface allows it.)
pub struct BlockOutput {
    /// `(batch, channels, length)`.
    pub x: Tensor<3>,
    /// A scalar loss term, `[1]`.
    pub aux_loss: Option<Tensor<1>>,
}

impl From<Tensor<3>> for BlockOutput {
    fn from(x: Tensor<3>) -> Self {
        BlockOutput { x, aux_loss: None }
    }
}

/// Configuration of the first layers block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "block", rename_all = "kebab-case")]
pub enum FirstConfig {
    /// BHI: parallel k=9 / k=15 convolutions.
    Bhi(BhiFirstConfig),
    /// Autosome: conv k=7 → BN → SiLU.
    Autosome(AutosomeFirstConfig),
}

/// Configuration of the core layers block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "block", rename_all = "kebab-case")]
pub enum CoreConfig {
    /// Autosome: EfficientNet-like stages.
    Autosome(AutosomeCoreConfig),
    /// BHI: bidirectional LSTM + convolutions.
    Bhi(BhiCoreConfig),
    /// Unlock_DNA: conformer-style attention layers.
    UnlockDna(UnlockDnaConfig),
}

/// Configuration of the final layers block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "block", rename_all = "kebab-case")]
pub enum FinalConfig {
    /// 18-bin soft classification (yeast).
    SoftClass(SoftClassConfig),
    /// One regression output per task (Drosophila, human).
    Regression(RegressionConfig),
}

impl FirstConfig {
    /// Name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            FirstConfig::Bhi(_) => "bhi",
            FirstConfig::Autosome(_) => "autosome",
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        match self {
            FirstConfig::Bhi(c) => c.out_channels,
            FirstConfig::Autosome(c) => c.out_channels,
        }
    }

    /// Whether the block can be built.
    pub fn check(&self) -> Result<(), String> {
        match self {
            FirstConfig::Bhi(c) => c.check(),
            FirstConfig::Autosome(c) => c.check(),
        }
    }

    /// Build it.
    pub fn init(&self, cin: usize, device: &Device) -> FirstBlock {
        match self {
            FirstConfig::Bhi(c) => FirstBlock::Bhi(c.init(cin, device)),
            FirstConfig::Autosome(c) => FirstBlock::Autosome(c.init(cin, device)),
        }
    }
}

impl CoreConfig {
    /// Name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            CoreConfig::Autosome(_) => "autosome",
            CoreConfig::Bhi(_) => "bhi",
            CoreConfig::UnlockDna(_) => "unlock-dna",
        }
    }

    /// Output channels for `cin` input channels.
    pub fn out_channels(&self, cin: usize) -> usize {
        match self {
            CoreConfig::Autosome(c) => c.out_channels(cin),
            CoreConfig::Bhi(c) => c.out_channels,
            CoreConfig::UnlockDna(c) => c.d,
        }
    }

    /// Whether the block fits `cin` input channels.
    pub fn check(&self, cin: usize) -> Result<(), String> {
        match self {
            CoreConfig::Autosome(c) => c.check(cin),
            CoreConfig::Bhi(c) => c.check(),
            CoreConfig::UnlockDna(c) => c.check(cin),
        }
    }

    /// Build it for `cin` channels and `length` positions.
    pub fn init(&self, cin: usize, length: usize, device: &Device) -> CoreBlock {
        match self {
            CoreConfig::Autosome(c) => CoreBlock::Autosome(c.init(cin, device)),
            CoreConfig::Bhi(c) => CoreBlock::Bhi(c.init(cin, device)),
            CoreConfig::UnlockDna(c) => CoreBlock::UnlockDna(c.init(length, device)),
        }
    }
}

impl FinalConfig {
    /// Name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            FinalConfig::SoftClass(_) => "soft-class",
            FinalConfig::Regression(_) => "regression",
        }
    }

    /// Number of predicted values per sequence after decoding.
    pub fn tasks(&self) -> usize {
        match self {
            FinalConfig::SoftClass(_) => 1,
            FinalConfig::Regression(c) => c.tasks,
        }
    }

    /// Whether the block can be built.
    pub fn check(&self) -> Result<(), String> {
        match self {
            FinalConfig::SoftClass(c) => c.check(),
            FinalConfig::Regression(c) => c.check(),
        }
    }

    /// Build it for `cin` channels.
    pub fn init(&self, cin: usize, device: &Device) -> FinalBlock {
        match self {
            FinalConfig::SoftClass(c) => FinalBlock::SoftClass(c.init(cin, device)),
            FinalConfig::Regression(c) => FinalBlock::Regression(c.init(cin, device)),
        }
    }
}

/// A built first layers block.
// Built once per model; boxing the variants would buy nothing and complicate the derive.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum FirstBlock {
    /// BHI.
    Bhi(BhiFirst),
    /// Autosome.
    Autosome(AutosomeFirst),
}

/// A built core layers block.
// Built once per model; boxing the variants would buy nothing and complicate the derive.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum CoreBlock {
    /// Autosome.
    Autosome(AutosomeCore),
    /// BHI.
    Bhi(BhiCore),
    /// Unlock_DNA.
    UnlockDna(UnlockDnaCore),
}

/// A built final layers block.
// Built once per model; boxing the variants would buy nothing and complicate the derive.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum FinalBlock {
    /// Soft classification.
    SoftClass(SoftClass),
    /// Regression.
    Regression(Regression),
}

impl FirstBlock {
    /// `(batch, C_in, L) -> (batch, C1, L)`.
    pub fn forward(&self, x: Tensor<3>) -> BlockOutput {
        match self {
            FirstBlock::Bhi(b) => b.forward(x).into(),
            FirstBlock::Autosome(b) => b.forward(x).into(),
        }
    }
}

impl CoreBlock {
    /// `(batch, C1, L) -> (batch, C2, L)`.
    pub fn forward(&self, x: Tensor<3>) -> BlockOutput {
        match self {
            CoreBlock::Autosome(b) => b.forward(x).into(),
            CoreBlock::Bhi(b) => b.forward(x).into(),
            CoreBlock::UnlockDna(b) => b.forward(x).into(),
        }
    }
}

impl FinalBlock {
    /// `(batch, C2, L) -> (batch, outputs)`: logits or task values.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        match self {
            FinalBlock::SoftClass(b) => b.forward(x),
            FinalBlock::Regression(b) => b.forward(x),
        }
    }

    /// Raw outputs to predictions `(batch, tasks)`.
    pub fn decode(&self, out: Tensor<2>) -> Tensor<2> {
        match self {
            FinalBlock::SoftClass(b) => b.decode(out),
            FinalBlock::Regression(_) => out,
        }
    }

    /// The task loss; `target` is soft labels or task values, as the batcher made them.
    pub fn loss(&self, out: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        match self {
            FinalBlock::SoftClass(b) => b.loss(out, target),
            FinalBlock::Regression(b) => b.loss(out, target),
        }
    }
}

macro_rules! named_enum {
    ($ty:ident { $($variant:ident),* }) => {
        impl NamedWeights for $ty {
            fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
                match self {
                    $($ty::$variant(b) => b.visit_weights(prefix, v),)*
                }
            }
        }
    };
}
named_enum!(FirstBlock { Bhi, Autosome });
named_enum!(CoreBlock {
    Autosome,
    Bhi,
    UnlockDna
});
named_enum!(FinalBlock {
    SoftClass,
    Regression
});
