//! 1-D convolution with `same` padding. On the CPU training backend convolutions are
//! one graph node with our own forward and backward kernels (`ops`). Otherwise pointwise (k = 1, ungrouped) convolutions run as one
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
    pub(crate) conv: BurnConv1d,
}

impl Conv1d {
    /// Wrap burn's convolution.
    pub fn new(conv: BurnConv1d) -> Self {
        Conv1d { conv }
    }

    /// `(batch, in, L) -> (batch, out, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.conv.stride == 1 && self.conv.dilation == 1 {
            let bias = self.conv.bias.as_ref().map(|b| b.val());
            let w = self.conv.weight.val();
            if let Some(y) = crate::ops::conv1d_same(&x, &w, bias.as_ref(), self.conv.groups) {
                return y;
            }
        }
        self.forward_ops(x)
    }

    /// The same computation from burn's tensor operations (any backend).
    pub fn forward_ops(&self, x: Tensor<3>) -> Tensor<3> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{ConvInit, conv1d};
    use crate::ops::testing::normal;
    use burn::tensor::Device;

    /// Our kernels and burn's operations give the same outputs and gradients.
    #[test]
    fn fused_convolution_matches_burn_ops() {
        let device = Device::flex().autodiff();
        for (cin, cout, k, groups, bias, batch, len) in [
            (3, 5, 9, 1, true, 2, 17),
            (4, 3, 15, 1, false, 3, 20),
            (6, 4, 1, 1, true, 2, 9),
            (5, 2, 3, 1, true, 1, 2),
            (8, 8, 7, 4, false, 3, 12),
            (6, 6, 15, 6, false, 2, 10),
            (4, 8, 3, 2, true, 2, 5),
        ] {
            let conv = conv1d(cin, cout, k, groups, bias, ConvInit::Default, &device);
            let x: Tensor<3> = normal([batch, cin, len], 0.0, 1.0, 1, &device);
            let probe: Tensor<3> = normal([batch, cout, len], 0.0, 1.0, 2, &device);
            let run = |fused: bool| {
                let xg = x.clone().detach().require_grad();
                let y = if fused {
                    let b = conv.conv.bias.as_ref().map(|b| b.val());
                    let w = conv.conv.weight.val();
                    crate::ops::conv1d_same(&xg, &w, b.as_ref(), groups)
                        .expect("the fused kernel runs on Autodiff<Flex>")
                } else {
                    conv.forward_ops(xg.clone())
                };
                let (mut all, grads) = crate::ops::testing::probed(&xg, y, &probe);
                let w = conv.conv.weight.val().grad(&grads).unwrap();
                all.push(w.into_data().try_into_vec().unwrap());
                if let Some(b) = &conv.conv.bias {
                    let g = b.val().grad(&grads).unwrap();
                    all.push(g.into_data().try_into_vec().unwrap());
                }
                all
            };
            let (fused, ops) = (run(true), run(false));
            crate::ops::testing::assert_all_close(
                &fused,
                &ops,
                1e-4,
                &format!("k {k}, groups {groups}"),
            );
        }
    }
}
