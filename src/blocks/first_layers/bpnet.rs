//! The BPNet tower's first layer (ChromBPNet, SPEC_BENCHMARKS §5.3): `Conv1D(F, 21, valid)` →
//! ReLU, with Keras semantics (glorot-uniform, zero bias). 2,114 → 2,094 positions. Tensors
//! `first.conv.{weight,bias}`; 21·4·F + F parameters (43,520 at F = 512, 10,880 at F = 128).

use burn::module::Module;
use burn::nn::conv::Conv1d as BurnConv1d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, FirstLayers, FirstLayersConfig};
use crate::nn::keras::{valid_conv, valid_length};
use crate::nn::visit::{NamedWeights, WeightVisitor, join};

/// Configuration of [`BpnetFirst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BpnetFirstConfig {
    /// Filters: 512 in the accessibility model, 128 in the bias model.
    pub filters: usize,
    /// Kernel width of the valid convolution.
    pub kernel: usize,
}

impl Default for BpnetFirstConfig {
    fn default() -> Self {
        BpnetFirstConfig {
            filters: 512,
            kernel: 21,
        }
    }
}

impl FirstLayersConfig for BpnetFirstConfig {
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

impl BuildBlock for BpnetFirstConfig {
    type Block = BpnetFirst;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> BpnetFirst {
        BpnetFirst {
            conv: valid_conv(cin, self.filters, self.kernel, 1, device),
        }
    }
}

/// The BPNet tower's first convolution.
#[derive(Module, Debug)]
pub struct BpnetFirst {
    pub(crate) conv: BurnConv1d,
}

impl FirstLayers for BpnetFirst {
    /// `(batch, 4, L) -> (batch, F, L − k + 1)`.
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        relu(crate::nn::keras::forward_valid(&self.conv, x)).into()
    }
}

impl NamedWeights for BpnetFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.conv.visit_weights(&join(prefix, "conv"), v);
    }
}
