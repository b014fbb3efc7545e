//! BHI first block (`in → 320`): parallel convolutions of kernel 9 and 15, each followed by
//! ReLU and Dropout(0.2), concatenated.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, FirstLayers, FirstLayersConfig};

use crate::nn::ConvBranches;
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`BhiFirst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BhiFirstConfig {
    /// Output channels, split evenly over the kernels.
    #[serde(default = "default_out")]
    pub out_channels: usize,
    /// One convolution per kernel size.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<usize>,
    /// Dropout after each convolution.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_out() -> usize {
    320
}
fn default_kernels() -> Vec<usize> {
    vec![9, 15]
}
fn default_dropout() -> f64 {
    0.2
}

impl Default for BhiFirstConfig {
    fn default() -> Self {
        BhiFirstConfig {
            out_channels: default_out(),
            kernels: default_kernels(),
            dropout: default_dropout(),
        }
    }
}

impl FirstLayersConfig for BhiFirstConfig {
    fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Whether the configuration can be built.
    fn check(&self) -> Result<(), String> {
        ConvBranches::check("[first] bhi", self.out_channels, &self.kernels)?;
        crate::blocks::limits::dropout("[first] dropout", self.dropout)
    }
}

impl BuildBlock for BhiFirstConfig {
    type Block = BhiFirst;

    /// Build the block for `cin` input channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> BhiFirst {
        BhiFirst {
            branches: ConvBranches::new(
                cin,
                self.out_channels,
                &self.kernels,
                self.dropout,
                device,
            ),
        }
    }
}

/// The BHI first block.
#[derive(Module, Debug)]
pub struct BhiFirst {
    pub(crate) branches: ConvBranches,
}

impl BhiFirst {
    /// `(batch, in, L) -> (batch, out, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.branches.forward(x)
    }
}

impl NamedWeights for BhiFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.branches.visit_weights(prefix, v);
    }
}

impl FirstLayers for BhiFirst {
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        BhiFirst::forward(self, x).into()
    }
}
