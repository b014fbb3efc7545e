//! BHI core (DREAM-RNN's core): a bidirectional LSTM over positions (hidden 320 per
//! direction → 640 channels), a BHI-style pair of convolutions (k=9 and k=15, ReLU,
//! Dropout 0.2) concatenated to 320 channels, then Dropout(0.5).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{BiLstm, ConvBranches};

/// Configuration of [`BhiCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BhiCoreConfig {
    /// LSTM hidden size per direction.
    #[serde(default = "default_320")]
    pub hidden: usize,
    /// Output channels, split evenly over the kernels.
    #[serde(default = "default_320")]
    pub out_channels: usize,
    /// One convolution per kernel size.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<usize>,
    /// Dropout after each convolution.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Dropout on the block's output.
    #[serde(default = "default_final_dropout")]
    pub final_dropout: f64,
}

fn default_320() -> usize {
    320
}
fn default_kernels() -> Vec<usize> {
    vec![9, 15]
}
fn default_dropout() -> f64 {
    0.2
}
fn default_final_dropout() -> f64 {
    0.5
}

impl Default for BhiCoreConfig {
    fn default() -> Self {
        BhiCoreConfig {
            hidden: 320,
            out_channels: 320,
            kernels: default_kernels(),
            dropout: default_dropout(),
            final_dropout: default_final_dropout(),
        }
    }
}

impl CoreLayersConfig for BhiCoreConfig {
    fn out_channels(&self, _cin: usize) -> usize {
        self.out_channels
    }

    /// Whether the configuration can be built.
    fn check(&self, _cin: usize) -> Result<(), String> {
        use crate::blocks::limits::{MAX_WIDTH, count, dropout};
        count("[core] hidden", self.hidden, MAX_WIDTH)?;
        dropout("[core] dropout", self.dropout)?;
        dropout("[core] final_dropout", self.final_dropout)?;
        ConvBranches::check("[core] bhi", self.out_channels, &self.kernels)
    }
}

impl BuildBlock for BhiCoreConfig {
    type Block = BhiCore;

    /// Build the block for `cin` input channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> BhiCore {
        BhiCore {
            lstm: BiLstm::new(cin, self.hidden, device),
            branches: ConvBranches::new(
                2 * self.hidden,
                self.out_channels,
                &self.kernels,
                self.dropout,
                device,
            ),
            final_dropout: DropoutConfig::new(self.final_dropout).init(),
        }
    }
}

/// The BHI core.
#[derive(Module, Debug)]
pub struct BhiCore {
    pub(crate) lstm: BiLstm,
    pub(crate) branches: ConvBranches,
    final_dropout: Dropout,
}

impl BhiCore {
    /// `(batch, C1, L) -> (batch, out_channels, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.lstm.forward(x.swap_dims(1, 2)).swap_dims(1, 2);
        crate::nn::dropout(&self.final_dropout, self.branches.forward(h))
    }
}

impl NamedWeights for BhiCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.lstm.visit_weights(&format!("{prefix}.lstm"), v);
        self.branches.visit_weights(prefix, v);
    }
}

impl CoreLayers for BhiCore {
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        BhiCore::forward(self, x).into()
    }
}
