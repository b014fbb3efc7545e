//! The Prix Fixe blocks (SPEC §1, §3). Each block is one file: a `Config` that builds it,
//! `forward` read top to bottom, and its tensors named as the reference names them (once, in
//! `visit_weights`).
//!
//! # Adding a block
//!
//! 1. Write `first_layers/<name>.rs`, `core_layers/<name>.rs` or `final_layers/<name>.rs`
//!    (declared with `pub mod <name>;` in that folder's `mod.rs`) with
//!    - a config type (`serde`, `deny_unknown_fields`) implementing the slot's config trait
//!      ([`FirstLayersConfig`], [`CoreLayersConfig`] or [`FinalLayersConfig`]) and
//!      [`BuildBlock`];
//!    - a burn `Module` implementing the slot's block trait ([`FirstLayers`], [`CoreLayers`]
//!      or [`FinalLayers`]) and [`NamedWeights`] (the reference's tensor names).
//! 2. Add one line to the slot's list in the `registry!` call below: the name written in
//!    configs, the variant, the config type and the block type.
//!
//! That line generates the config and block enum variants, their `serde` name, dispatch,
//! weight naming and parameter counting. A block without a CPU engine twin runs through burn
//! (the engine's registry, `src/engine/mod.rs`, lists the twins; a twin is one file in
//! `src/engine/<slot>/` plus its arm there). `src/blocks/final_layers/bhi.rs` and
//! `src/engine/final_layers/bhi.rs` were added this way. A final block owns its task
//! contract ([`FinalLayersConfig`]): the targets the batcher makes, the label check, the
//! metric that picks the best epoch and the names of its prediction columns, so the trainer,
//! the predictor and the benchmark never ask which head they have.

pub mod core_layers;
pub mod final_layers;
pub mod first_layers;
pub mod limits;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::Targets;
use crate::nn::visit::{NamedWeights, WeightVisitor};

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

/// Building a block from its configuration, for `cin` input channels and inputs of `length`
/// positions.
pub trait BuildBlock {
    /// The built block.
    type Block;
    /// Build it on `device`.
    fn build(&self, cin: usize, length: usize, device: &Device) -> Self::Block;
}

/// A first layers block's configuration.
pub trait FirstLayersConfig {
    /// Output channels.
    fn out_channels(&self) -> usize;
    /// Whether the block can be built; the message names the field.
    fn check(&self) -> Result<(), String>;
    /// Whether the block takes inputs of `channels` × `length` (most take any).
    fn check_input(&self, _channels: usize, _length: usize) -> Result<(), String> {
        Ok(())
    }
    /// Positions out for `length` in (most blocks keep the length; an error where the input
    /// is too short for the block's valid convolutions and pooling).
    fn out_length(&self, length: usize) -> Result<usize, String> {
        Ok(length)
    }
}

/// A core layers block's configuration.
pub trait CoreLayersConfig {
    /// Output channels for `cin` input channels.
    fn out_channels(&self, cin: usize) -> usize;
    /// Whether the block fits `cin` input channels.
    fn check(&self, cin: usize) -> Result<(), String>;
    /// The one-cycle schedule's peak learning rate when the recipe gives none (SPEC §4).
    fn default_max_lr(&self) -> f64 {
        0.005
    }
    /// Positions out for `length` in (most blocks keep the length).
    fn out_length(&self, length: usize) -> Result<usize, String> {
        Ok(length)
    }
}

/// A final layers block's configuration, and the task it defines.
pub trait FinalLayersConfig {
    /// Predicted values per sequence after decoding.
    fn tasks(&self) -> usize;
    /// Raw outputs per sequence (what the loss compares with the targets); by default one
    /// per task.
    fn outputs(&self) -> usize {
        self.tasks()
    }
    /// Values per row of the loss's target (by default one per raw output; the profile head
    /// takes the per-base counts).
    fn target_width(&self) -> usize {
        self.outputs()
    }
    /// Whether the block can be built.
    fn check(&self) -> Result<(), String>;
    /// Whether the block takes a core output of `length` positions (most take any).
    fn check_length(&self, _length: usize) -> Result<(), String> {
        Ok(())
    }
    /// How the batcher turns a row's labels into the loss's targets; by default the labels
    /// as they are.
    fn targets(&self) -> Targets {
        Targets::Raw
    }
    /// What labels a training file needs, in words ("2 label column(s)").
    fn labels_wanted(&self) -> String {
        match self.tasks() {
            1 => "one expression value per row".into(),
            n => format!("{n} label column(s)"),
        }
    }
    /// Whether one row's labels fit; the message says what is wrong with the value. By
    /// default any finite value does (the readers refuse the others).
    fn check_labels(&self, _labels: &[f64]) -> Result<(), String> {
        Ok(())
    }
    /// The validation figure that picks the best epoch, higher is better, from the validation
    /// MSE and Pearson r (averaged over tasks; `None` where undefined). Always finite, so the
    /// state that records it reads back. By default Pearson r (the BHI and Unlock_DNA
    /// trainers keep `model_best.pth` on the highest Pearson).
    fn score(&self, _mse: f64, pearson: Option<f64>) -> f64 {
        pearson.unwrap_or(f64::MIN)
    }
    /// The names of its prediction columns.
    fn columns(&self) -> Vec<String> {
        prediction_columns(self.tasks())
    }
}

/// The prediction columns for `tasks` values: `prediction`, or `prediction_0`, … per task.
pub fn prediction_columns(tasks: usize) -> Vec<String> {
    if tasks == 1 {
        vec!["prediction".into()]
    } else {
        (0..tasks).map(|t| format!("prediction_{t}")).collect()
    }
}

/// A first layers block: `(batch, C_in, L) -> (batch, C1, L1)` (`L1 = L` unless the config's
/// `out_length` says otherwise).
pub trait FirstLayers {
    /// The forward pass.
    fn forward(&self, x: Tensor<3>) -> BlockOutput;
}

/// A core layers block: `(batch, C1, L1) -> (batch, C2, L2)`.
pub trait CoreLayers {
    /// The forward pass.
    fn forward(&self, x: Tensor<3>) -> BlockOutput;
}

/// A final layers block: `(batch, C2, L) -> (batch, outputs)`.
pub trait FinalLayers {
    /// Raw outputs: logits or task values.
    fn forward(&self, x: Tensor<3>) -> Tensor<2>;
    /// Raw outputs to predictions `(batch, tasks)`.
    fn decode(&self, out: Tensor<2>) -> Tensor<2> {
        out
    }
    /// The task loss, `[1]`; `target` as [`FinalLayersConfig::targets`] makes it.
    fn loss(&self, out: Tensor<2>, target: Tensor<2>) -> Tensor<1>;
}

/// One slot's config enum and block enum from its list of blocks: `serde` names, dispatch
/// (both enums dereference to the slot's trait object, so `config.first.out_channels()` and
/// `block.forward(x)` reach the variant), building and weight naming.
macro_rules! registry {
    ($(
        $(#[$config_doc:meta])* $config:ident: $config_trait:ident,
        $(#[$block_doc:meta])* $block:ident: $block_trait:ident {
            $( $(#[$doc:meta])* $name:literal => $variant:ident($vconfig:ty, $vblock:ty), )+
        }
    )+) => {$(
        $(#[$config_doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "block")]
        pub enum $config {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($vconfig), )+
        }

        $(#[$block_doc])*
        // Built once per model; boxing the variants would buy nothing and complicate the derive.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum $block {
            $( $(#[$doc])* $variant($vblock), )+
        }

        impl $config {
            /// Name as written in configs.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )+
                }
            }

            /// Build the block for `cin` channels and inputs of `length` positions.
            pub fn init(&self, cin: usize, length: usize, device: &Device) -> $block {
                match self {
                    $( Self::$variant(c) => $block::$variant(c.build(cin, length, device)), )+
                }
            }
        }

        impl std::ops::Deref for $config {
            type Target = dyn $config_trait;
            fn deref(&self) -> &Self::Target {
                match self {
                    $( Self::$variant(c) => c, )+
                }
            }
        }

        impl std::ops::Deref for $block {
            type Target = dyn $block_trait;
            fn deref(&self) -> &Self::Target {
                match self {
                    $( Self::$variant(b) => b, )+
                }
            }
        }

        impl NamedWeights for $block {
            fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
                match self {
                    $( Self::$variant(b) => b.visit_weights(prefix, v), )+
                }
            }
        }
    )+};
}

registry! {
    /// Configuration of the first layers block.
    FirstConfig: FirstLayersConfig,
    /// A built first layers block.
    FirstBlock: FirstLayers {
        /// BHI: parallel k=9 / k=15 convolutions.
        "bhi" => Bhi(first_layers::bhi::BhiFirstConfig, first_layers::bhi::BhiFirst),
        /// Autosome: conv k=7 → BN → SiLU.
        "autosome" => Autosome(first_layers::autosome::AutosomeFirstConfig, first_layers::autosome::AutosomeFirst),
        /// Unlock_DNA: k-mer windows through one dense layer, plus a strand embedding.
        "unlock-dna" => UnlockDna(first_layers::unlock_dna::UnlockDnaFirstConfig, first_layers::unlock_dna::UnlockDnaFirst),
        /// DeepSTARR: conv k=7 → BN → ReLU → max-pool 2 (Keras semantics).
        "deepstarr" => DeepStarr(first_layers::deepstarr::DeepStarrFirstConfig, first_layers::deepstarr::DeepStarrFirst),
        /// MPRAnn: valid conv k=7 → ReLU → BN (Keras semantics).
        "mprann" => Mprann(first_layers::mprann::MprannFirstConfig, first_layers::mprann::MprannFirst),
        /// BPNet (ChromBPNet): valid conv k=21 → ReLU.
        "bpnet" => Bpnet(first_layers::bpnet::BpnetFirstConfig, first_layers::bpnet::BpnetFirst),
    }

    /// Configuration of the core layers block.
    CoreConfig: CoreLayersConfig,
    /// A built core layers block.
    CoreBlock: CoreLayers {
        /// Autosome: EfficientNet-like stages.
        "autosome" => Autosome(core_layers::autosome::AutosomeCoreConfig, core_layers::autosome::AutosomeCore),
        /// BHI: bidirectional LSTM + convolutions.
        "bhi" => Bhi(core_layers::bhi::BhiCoreConfig, core_layers::bhi::BhiCore),
        /// Unlock_DNA: conformer-style attention layers.
        "unlock-dna" => UnlockDna(core_layers::unlock_dna::UnlockDnaConfig, core_layers::unlock_dna::UnlockDnaCore),
        /// DeepSTARR: three conv → BN → ReLU → max-pool 2 layers.
        "deepstarr" => DeepStarr(core_layers::deepstarr::DeepStarrCoreConfig, core_layers::deepstarr::DeepStarrCore),
        /// MPRAnn: three valid convolutions with a softmax over channels.
        "mprann" => Mprann(core_layers::mprann::MprannCoreConfig, core_layers::mprann::MprannCore),
        /// BPNet (ChromBPNet): dilated residual valid convolutions.
        "bpnet" => Bpnet(core_layers::bpnet::BpnetCoreConfig, core_layers::bpnet::BpnetCore),
    }

    /// Configuration of the final layers block.
    FinalConfig: FinalLayersConfig,
    /// A built final layers block.
    FinalBlock: FinalLayers {
        /// 18-bin soft classification (yeast).
        "soft-class" => SoftClass(final_layers::soft_class::SoftClassConfig, final_layers::soft_class::SoftClass),
        /// One regression output per task (Drosophila, human).
        "regression" => Regression(final_layers::regression::RegressionConfig, final_layers::regression::Regression),
        /// BHI: a three-layer perceptron on the flattened features, Huber loss.
        "bhi" => Bhi(final_layers::bhi::BhiFinalConfig, final_layers::bhi::BhiFinal),
        /// Unlock_DNA: expression from the first positions, nucleotide logits for the
        /// masked-nucleotide loss.
        "unlock-dna" => UnlockDna(final_layers::unlock_dna::UnlockDnaFinalConfig, final_layers::unlock_dna::UnlockDnaFinal),
        /// DeepSTARR: flatten → two dense + BN + ReLU + dropout → one output per task.
        "deepstarr" => DeepStarr(final_layers::deepstarr::DeepStarrFinalConfig, final_layers::deepstarr::DeepStarrFinal),
        /// MPRAnn: flatten → dense 300 and 200, sigmoid → linear output.
        "mprann" => Mprann(final_layers::mprann::MprannFinalConfig, final_layers::mprann::MprannFinal),
        /// ChromBPNet's head: a cropped base-resolution profile and log total counts.
        "profile" => Profile(final_layers::profile::ProfileConfig, final_layers::profile::ProfileHead),
    }
}
