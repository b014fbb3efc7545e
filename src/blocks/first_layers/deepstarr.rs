//! DeepSTARR's first layer (SPEC_BENCHMARKS §3.1, layer 1): `Conv1D(256, k 7, same)` → BatchNorm
//! → ReLU → MaxPool(2), with Keras semantics (glorot-uniform, BN momentum 0.99 / eps 1e-3,
//! flooring pool: 249 → 124). Tensors `first.conv.{weight,bias}`, `first.bn.*`;
//! 7·4·256 + 256 + 2·256 = 7,936 parameters at 4 input channels.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, FirstLayers, FirstLayersConfig};
use crate::nn::keras::{ConvBn, max_pool, pooled_length};
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`DeepStarrFirst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepStarrFirstConfig {
    /// Filters.
    pub filters: usize,
    /// Kernel width (odd: `same` padding).
    pub kernel: usize,
    /// Max-pooling size after the activation.
    pub pool: usize,
}

impl Default for DeepStarrFirstConfig {
    fn default() -> Self {
        DeepStarrFirstConfig {
            filters: 256,
            kernel: 7,
            pool: 2,
        }
    }
}

impl FirstLayersConfig for DeepStarrFirstConfig {
    fn out_channels(&self) -> usize {
        self.filters
    }

    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count, odd_kernel};
        count("[first] filters", self.filters, MAX_WIDTH)?;
        odd_kernel("[first] kernel", self.kernel, MAX_KERNEL)?;
        count("[first] pool", self.pool, 64)
    }

    fn out_length(&self, length: usize) -> Result<usize, String> {
        pooled_length(length, self.pool, "[first] pool")
    }
}

impl BuildBlock for DeepStarrFirstConfig {
    type Block = DeepStarrFirst;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> DeepStarrFirst {
        DeepStarrFirst {
            layer: ConvBn::new(cin, self.filters, self.kernel, true, device),
            pool: self.pool,
        }
    }
}

/// DeepSTARR's first convolution.
#[derive(Module, Debug)]
pub struct DeepStarrFirst {
    pub(crate) layer: ConvBn,
    pool: usize,
}

impl FirstLayers for DeepStarrFirst {
    /// `(batch, 4, L) -> (batch, 256, ⌊L/2⌋)`.
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        let h = self.layer.bn.forward(self.layer.conv.forward(x));
        max_pool(relu(h), self.pool).into()
    }
}

impl NamedWeights for DeepStarrFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.layer.visit_weights(prefix, v);
    }
}
