//! The BHI pair of parallel convolutions (kernels 9 and 15), each followed by ReLU and
//! Dropout, concatenated over channels — used by the BHI first block and the BHI core alike.
//! Tensors are named as the reference names them: `conv_list.{i}.conv`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::visit::{NamedWeights, WeightVisitor};
use super::{Conv1d, ConvInit, conv1d};

/// Parallel convolutions with `same` padding, concatenated.
#[derive(Module, Debug)]
pub struct ConvBranches {
    pub(crate) convs: Vec<Conv1d>,
    dropout: Dropout,
}

impl ConvBranches {
    /// Whether `out_channels` split evenly over the kernels; `block` names the block in the
    /// error.
    pub fn check(block: &str, out_channels: usize, kernels: &[usize]) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count};
        count(&format!("{block} out_channels"), out_channels, MAX_WIDTH)?;
        for &k in kernels {
            count(&format!("{block} kernels"), k, MAX_KERNEL)?;
        }
        if kernels.is_empty() || !out_channels.is_multiple_of(kernels.len()) {
            return Err(format!(
                "{block}: out_channels {out_channels} must split evenly over {} kernel(s)",
                kernels.len()
            ));
        }
        Ok(())
    }

    /// One convolution per kernel from `cin` channels, `out_channels` in all.
    pub fn new(
        cin: usize,
        out_channels: usize,
        kernels: &[usize],
        dropout: f64,
        device: &Device,
    ) -> Self {
        let each = out_channels / kernels.len();
        ConvBranches {
            convs: kernels
                .iter()
                .map(|&k| conv1d(cin, each, k, 1, true, ConvInit::Default, device))
                .collect(),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// `(batch, cin, L) -> (batch, out_channels, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let branches = self
            .convs
            .iter()
            .map(|c| crate::nn::dropout(&self.dropout, relu(c.forward(x.clone()))))
            .collect();
        Tensor::cat(branches, 1)
    }
}

impl NamedWeights for ConvBranches {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, c) in self.convs.iter_mut().enumerate() {
            c.visit_weights(&format!("{prefix}.conv_list.{i}.conv"), v);
        }
    }
}
