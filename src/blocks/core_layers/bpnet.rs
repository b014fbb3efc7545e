//! The BPNet tower's dilated residual layers (ChromBPNet, SPEC_BENCHMARKS §5.3): for
//! i = 1..D, `Conv1D(F, 3, valid, dilation 2^i)` → ReLU, added to its input cropped
//! symmetrically to the same length. Each layer takes `2·2^i` positions: 2,094 → 1,074 at
//! D = 8 (accessibility model), 2,094 → 2,034 at D = 4 (bias model). Tensors
//! `core.layers.{i}.{weight,bias}`; D·(3·F² + F) parameters (8 · 786,944 at F = 512).

use burn::module::Module;
use burn::nn::conv::Conv1d as BurnConv1d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};
use crate::nn::keras::valid_conv;
use crate::nn::visit::{NamedWeights, WeightVisitor};

/// Configuration of [`BpnetCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BpnetCoreConfig {
    /// Dilated layers `D`: 8 in the accessibility model, 4 in the bias model.
    pub layers: usize,
    /// Kernel width of each dilated convolution.
    pub kernel: usize,
}

impl Default for BpnetCoreConfig {
    fn default() -> Self {
        BpnetCoreConfig {
            layers: 8,
            kernel: 3,
        }
    }
}

impl BpnetCoreConfig {
    /// The dilation of layer `i` (0-based): `2^(i+1)`.
    fn dilation(i: usize) -> usize {
        1 << (i + 1)
    }
}

impl CoreLayersConfig for BpnetCoreConfig {
    fn out_channels(&self, cin: usize) -> usize {
        cin
    }

    fn check(&self, _cin: usize) -> Result<(), String> {
        use crate::blocks::limits::count;
        count("[core] layers", self.layers, 16)?;
        count("[core] kernel", self.kernel, 15)
    }

    fn out_length(&self, length: usize) -> Result<usize, String> {
        let taken: usize = (0..self.layers)
            .map(|i| Self::dilation(i) * (self.kernel - 1))
            .sum();
        if length <= taken {
            return Err(format!(
                "[core] layers: {} dilated layers take {taken} positions and their input has {length}",
                self.layers
            ));
        }
        Ok(length - taken)
    }
}

impl BuildBlock for BpnetCoreConfig {
    type Block = BpnetCore;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> BpnetCore {
        BpnetCore {
            layers: (0..self.layers)
                .map(|i| valid_conv(cin, cin, self.kernel, BpnetCoreConfig::dilation(i), device))
                .collect(),
        }
    }
}

/// The dilated residual tower.
#[derive(Module, Debug)]
pub struct BpnetCore {
    pub(crate) layers: Vec<BurnConv1d>,
}

impl CoreLayers for BpnetCore {
    /// `(batch, F, L) -> (batch, F, L − Σ 2·2^i)`.
    fn forward(&self, mut x: Tensor<3>) -> BlockOutput {
        for conv in &self.layers {
            let h = relu(crate::nn::keras::forward_valid(conv, x.clone()));
            let (l, out) = (x.dims()[2], h.dims()[2]);
            x = x.narrow(2, (l - out) / 2, out) + h;
        }
        x.into()
    }
}

impl NamedWeights for BpnetCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, conv) in self.layers.iter_mut().enumerate() {
            conv.visit_weights(&format!("{prefix}.layers.{i}"), v);
        }
    }
}
