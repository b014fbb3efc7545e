//! MPRAnn's first layer (SPEC_BENCHMARKS §4.1, layer 1): `Conv1D(250, k 7, valid, ReLU)` →
//! BatchNorm, Keras semantics (230 → 224 positions). Tensors `first.conv.*`, `first.bn.*`;
//! 7·4·250 + 250 + 2·250 = 7,750 parameters at 4 input channels.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, FirstLayers, FirstLayersConfig};
use crate::nn::keras::{ConvBn, valid_length};
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`MprannFirst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MprannFirstConfig {
    /// Filters.
    pub filters: usize,
    /// Kernel width (`valid`: `L − k + 1` positions out).
    pub kernel: usize,
}

impl Default for MprannFirstConfig {
    fn default() -> Self {
        MprannFirstConfig {
            filters: 250,
            kernel: 7,
        }
    }
}

impl FirstLayersConfig for MprannFirstConfig {
    fn out_channels(&self) -> usize {
        self.filters
    }

    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count};
        count("[first] filters", self.filters, MAX_WIDTH)?;
        count("[first] kernel", self.kernel, MAX_KERNEL)
    }

    fn out_length(&self, length: usize) -> Result<usize, String> {
        valid_length(length, self.kernel, "[first] kernel")
    }
}

impl BuildBlock for MprannFirstConfig {
    type Block = MprannFirst;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> MprannFirst {
        MprannFirst {
            layer: ConvBn::new(cin, self.filters, self.kernel, false, device),
        }
    }
}

/// MPRAnn's first convolution.
#[derive(Module, Debug)]
pub struct MprannFirst {
    pub(crate) layer: ConvBn,
}

impl FirstLayers for MprannFirst {
    /// `(batch, 4, L) -> (batch, 250, L − 6)`: the activation comes before the BatchNorm.
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        self.layer
            .bn
            .forward(relu(self.layer.conv.forward(x)))
            .into()
    }
}

impl NamedWeights for MprannFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.layer.visit_weights(prefix, v);
    }
}
