//! 1-D convolution with `same` padding. Pointwise (k = 1, ungrouped) convolutions run as one
//! matrix product over all positions: on the CPU backend this is ~3.7× faster forward +
//! backward than the general convolution (measured: 320→512 channels, batch 128 × 150,
//! 827 ms → 224 ms).

use burn::module::Module;
use burn::nn::conv::Conv1d as BurnConv1d;
use burn::tensor::Tensor;

use super::visit::{NamedWeights, WeightVisitor};

/// A convolution layer (weights `[out, in/groups, k]`, PyTorch layout).
#[derive(Module, Debug)]
pub struct Conv1d {
    conv: BurnConv1d,
}

impl Conv1d {
    /// Wrap burn's convolution.
    pub fn new(conv: BurnConv1d) -> Self {
        Conv1d { conv }
    }

    /// `(batch, in, L) -> (batch, out, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.conv.kernel_size != 1 || self.conv.groups != 1 || self.conv.stride != 1 {
            return self.conv.forward(x);
        }
        let [b, c, l] = x.dims();
        let [o, _, _] = self.conv.weight.dims();
        let w = self.conv.weight.val().reshape([o, c]).transpose();
        let mut y = x.swap_dims(1, 2).reshape([b * l, c]).matmul(w);
        if let Some(bias) = &self.conv.bias {
            y = y + bias.val().unsqueeze_dim::<2>(0);
        }
        y.reshape([b, l, o]).swap_dims(1, 2)
    }
}

impl NamedWeights for Conv1d {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.conv.visit_weights(prefix, v);
    }
}
