//! BHI first block (`in → 320`): parallel convolutions of kernel 9 and 15, each followed by
//! ReLU and Dropout(0.2), concatenated.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{Conv1d, ConvInit, conv1d};

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

impl BhiFirstConfig {
    /// Whether the configuration can be built.
    pub fn check(&self) -> Result<(), String> {
        if self.kernels.is_empty() || !self.out_channels.is_multiple_of(self.kernels.len()) {
            return Err(format!(
                "first block bhi: out_channels {} must split evenly over {} kernel(s)",
                self.out_channels,
                self.kernels.len()
            ));
        }
        Ok(())
    }

    /// Build the block for `cin` input channels.
    pub fn init(&self, cin: usize, device: &Device) -> BhiFirst {
        let each = self.out_channels / self.kernels.len();
        BhiFirst {
            convs: self
                .kernels
                .iter()
                .map(|&k| conv1d(cin, each, k, 1, true, ConvInit::Default, device))
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// The BHI first block.
#[derive(Module, Debug)]
pub struct BhiFirst {
    convs: Vec<Conv1d>,
    dropout: Dropout,
}

impl BhiFirst {
    /// `(batch, in, L) -> (batch, out, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let branches = self
            .convs
            .iter()
            .map(|c| self.dropout.forward(relu(c.forward(x.clone()))))
            .collect();
        Tensor::cat(branches, 1)
    }
}

impl NamedWeights for BhiFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, c) in self.convs.iter_mut().enumerate() {
            c.visit_weights(&format!("{prefix}.conv_list.{i}.conv"), v);
        }
    }
}
