//! Multi-head self-attention stored as PyTorch's `nn.MultiheadAttention` stores it:
//! `in_proj_weight [3d, d]` (Q, K, V stacked), `in_proj_bias [3d]`, `out_proj`. No mask, no
//! attention dropout.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::layers::linear;
use super::visit::{NamedWeights, WeightVisitor, join};

/// Multi-head self-attention.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// `[3d, d]`.
    pub in_proj_weight: Param<Tensor<2>>,
    /// `[3d]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// Output projection.
    pub out_proj: Linear,
    pub(crate) heads: usize,
}

impl MultiHeadAttention {
    /// PyTorch's initialisation: Xavier-uniform input projection, zero biases.
    pub fn new(d: usize, heads: usize, device: &Device) -> Self {
        let mut out_proj = linear(d, d, true, None, device);
        out_proj.bias = Some(Initializer::Zeros.init([d], device));
        MultiHeadAttention {
            in_proj_weight: Initializer::XavierUniform { gain: 1.0 }.init_with(
                [3 * d, d],
                Some(d),
                Some(3 * d),
                device,
            ),
            in_proj_bias: Initializer::Zeros.init([3 * d], device),
            out_proj,
            heads,
        }
    }

    /// `[batch, length, d] -> [batch, length, d]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let (w, bias) = (self.in_proj_weight.val(), self.in_proj_bias.val());
        let qkv = crate::ops::linear(&x, &w, crate::ops::WeightLayout::OutIn, Some(&bias))
            .unwrap_or_else(|| {
                (x.reshape([b * l, d]).matmul(w.transpose()) + bias.unsqueeze_dim::<2>(0))
                    .reshape([b, l, 3 * d])
            });
        let attn = crate::ops::attention(&qkv, h).unwrap_or_else(|| attend_ops(qkv, h));
        super::forward_linear(&self.out_proj, attn)
    }
}

/// Softmax attention of every head from stacked projections `qkv [b, l, 3d]`: `[b, l, d]`,
/// from burn's tensor operations (any backend).
pub(crate) fn attend_ops(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, l, d3] = qkv.dims();
    let (d, h) = (d3 / 3, heads);
    let dh = d / h;
    let split = |t: Tensor<3>| t.reshape([b, l, h, dh]).swap_dims(1, 2); // [b, h, l, dh]
    let mut parts = qkv.chunk(3, 2).into_iter();
    let q = split(parts.next().expect("q"));
    let k = split(parts.next().expect("k"));
    let v = split(parts.next().expect("v"));
    let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt());
    let attn = softmax(scores, 3).matmul(v); // [b, h, l, dh]
    attn.swap_dims(1, 2).reshape([b, l, d])
}

impl NamedWeights for MultiHeadAttention {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        v.param(&join(prefix, "in_proj_weight"), &mut self.in_proj_weight);
        v.param(&join(prefix, "in_proj_bias"), &mut self.in_proj_bias);
        self.out_proj.visit_weights(&join(prefix, "out_proj"), v);
    }
}
