//! MPRAnn's convolutions after its first layer (SPEC_BENCHMARKS §4.1, layers 2–4), every one
//! `valid`, stride 1, with a softmax over the **channels** at each position (Keras axis −1)
//! before its BatchNorm:
//! `Conv(250, k 8)` → softmax → BN → MaxPool(2) → Dropout(0.1) →
//! `Conv(250, k 3)` → softmax → BN →
//! `Conv(100, k 2)` → softmax → BN → MaxPool(1) (a no-op) → Dropout(0.1):
//! 224 → 217 → 108 → 106 → 105 positions at 230 nt. Tensors `core.convs.{i}.conv.*`,
//! `core.convs.{i}.bn.*`; 739,300 parameters after 250 channels.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};
use crate::nn::dropout;
use crate::nn::keras::{ConvBn, max_pool, pooled_length, valid_length};
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`MprannCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MprannCoreConfig {
    /// Filters of the three convolutions.
    pub filters: [usize; 3],
    /// Their kernel widths.
    pub kernels: [usize; 3],
    /// Dropout after the first pooling and at the end.
    pub dropout: f64,
}

impl Default for MprannCoreConfig {
    fn default() -> Self {
        MprannCoreConfig {
            filters: [250, 250, 100],
            kernels: [8, 3, 2],
            dropout: 0.1,
        }
    }
}

impl CoreLayersConfig for MprannCoreConfig {
    fn out_channels(&self, _cin: usize) -> usize {
        self.filters[2]
    }

    fn check(&self, _cin: usize) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count, dropout};
        for (&f, &k) in self.filters.iter().zip(&self.kernels) {
            count("[core] filters", f, MAX_WIDTH)?;
            count("[core] kernels", k, MAX_KERNEL)?;
        }
        dropout("[core] dropout", self.dropout)
    }

    /// Adam's constant rate in MPRAnn's recipe.
    fn default_max_lr(&self) -> f64 {
        0.001
    }

    fn out_length(&self, length: usize) -> Result<usize, String> {
        let [k1, k2, k3] = self.kernels;
        let l = valid_length(length, k1, "[core] kernels[0]")?;
        let l = pooled_length(l, 2, "[core] pooling after kernels[0]")?;
        let l = valid_length(l, k2, "[core] kernels[1]")?;
        valid_length(l, k3, "[core] kernels[2]")
    }
}

impl BuildBlock for MprannCoreConfig {
    type Block = MprannCore;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> MprannCore {
        let [f1, f2, f3] = self.filters;
        let [k1, k2, k3] = self.kernels;
        MprannCore {
            convs: vec![
                ConvBn::new(cin, f1, k1, false, device),
                ConvBn::new(f1, f2, k2, false, device),
                ConvBn::new(f2, f3, k3, false, device),
            ],
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// MPRAnn's softmax convolutions.
#[derive(Module, Debug)]
pub struct MprannCore {
    pub(crate) convs: Vec<ConvBn>,
    dropout: Dropout,
}

impl CoreLayers for MprannCore {
    fn forward(&self, mut x: Tensor<3>) -> BlockOutput {
        for (i, layer) in self.convs.iter().enumerate() {
            x = layer.bn.forward(softmax(layer.conv.forward(x), 1));
            if i == 0 {
                x = dropout(&self.dropout, max_pool(x, 2));
            }
        }
        dropout(&self.dropout, x).into()
    }
}

impl NamedWeights for MprannCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.convs.iter_mut().enumerate() {
            layer.visit_weights(&format!("{prefix}.convs.{i}"), v);
        }
    }
}
