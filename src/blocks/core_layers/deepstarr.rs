//! DeepSTARR's convolution tower after its first layer (SPEC_BENCHMARKS §3.1, layers 2–4):
//! for each `(filters, kernel)` of `(60, 3)`, `(60, 5)`, `(120, 3)`: `Conv1D(same)` → BatchNorm
//! → ReLU → MaxPool(2), Keras semantics (124 → 62 → 31 → 15 positions at 249 nt). Tensors
//! `core.convs.{i}.conv.*`, `core.convs.{i}.bn.*`; 86,400 parameters after 256 channels.

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};
use crate::nn::keras::{ConvBn, max_pool, pooled_length};
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`DeepStarrCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepStarrCoreConfig {
    /// Filters of each convolution.
    pub filters: Vec<usize>,
    /// Kernel width of each (odd).
    pub kernels: Vec<usize>,
    /// Max-pooling size after each.
    pub pool: usize,
}

impl Default for DeepStarrCoreConfig {
    fn default() -> Self {
        DeepStarrCoreConfig {
            filters: vec![60, 60, 120],
            kernels: vec![3, 5, 3],
            pool: 2,
        }
    }
}

impl CoreLayersConfig for DeepStarrCoreConfig {
    fn out_channels(&self, cin: usize) -> usize {
        self.filters.last().copied().unwrap_or(cin)
    }

    fn check(&self, _cin: usize) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count, odd_kernel};
        if self.filters.is_empty() || self.filters.len() != self.kernels.len() {
            return Err(format!(
                "[core] filters ({}) and kernels ({}) must list the same number (at least one) of convolutions",
                self.filters.len(),
                self.kernels.len()
            ));
        }
        for (&f, &k) in self.filters.iter().zip(&self.kernels) {
            count("[core] filters", f, MAX_WIDTH)?;
            odd_kernel("[core] kernels", k, MAX_KERNEL)?;
        }
        count("[core] pool", self.pool, 64)
    }

    /// Adam's constant rate in DeepSTARR's recipe.
    fn default_max_lr(&self) -> f64 {
        0.002
    }

    fn out_length(&self, length: usize) -> Result<usize, String> {
        self.filters
            .iter()
            .try_fold(length, |l, _| pooled_length(l, self.pool, "[core] pool"))
    }
}

impl BuildBlock for DeepStarrCoreConfig {
    type Block = DeepStarrCore;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> DeepStarrCore {
        let mut c = cin;
        let convs = self
            .filters
            .iter()
            .zip(&self.kernels)
            .map(|(&f, &k)| {
                let layer = ConvBn::new(c, f, k, true, device);
                c = f;
                layer
            })
            .collect();
        DeepStarrCore {
            convs,
            pool: self.pool,
        }
    }
}

/// DeepSTARR's convolution tower.
#[derive(Module, Debug)]
pub struct DeepStarrCore {
    pub(crate) convs: Vec<ConvBn>,
    pool: usize,
}

impl CoreLayers for DeepStarrCore {
    fn forward(&self, mut x: Tensor<3>) -> BlockOutput {
        for layer in &self.convs {
            x = max_pool(relu(layer.bn.forward(layer.conv.forward(x))), self.pool);
        }
        x.into()
    }
}

impl NamedWeights for DeepStarrCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.convs.iter_mut().enumerate() {
            layer.visit_weights(&format!("{prefix}.convs.{i}"), v);
        }
    }
}
