//! The layers of the Keras baselines (DeepSTARR, MPRAnn) with Keras semantics
//! (SPEC_BENCHMARKS §3.2, §4.2): glorot-uniform weights with zero biases, `same` or `valid`
//! convolutions, BatchNorm with Keras' momentum 0.99 (PyTorch's 0.01) and eps 1e-3,
//! flooring max pooling, and the position-major flatten of a `(length, channels)` tensor.

use burn::module::Module;
use burn::nn::conv::{Conv1d as BurnConv1d, Conv1dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{Device, Tensor};

use super::batch_norm::BatchNorm1d;
use super::conv::Conv1d;
use super::visit::{NamedWeights, WeightVisitor, join};

const GLOROT: Initializer = Initializer::XavierUniform { gain: 1.0 };

/// A Keras `Conv1D`: `same` (odd kernels, our fused kernels) or `valid` padding, stride 1.
#[derive(Module, Debug)]
pub enum KerasConv {
    /// `padding='same'`.
    Same(Conv1d),
    /// `padding='valid'`: `L − k + 1` positions out.
    Valid(BurnConv1d),
}

impl KerasConv {
    /// Glorot-uniform weights (fans `k·cin`, `k·cout`), zero bias.
    pub fn new(cin: usize, cout: usize, kernel: usize, same: bool, device: &Device) -> Self {
        let padding = if same {
            PaddingConfig1d::Same
        } else {
            PaddingConfig1d::Valid
        };
        let mut conv = Conv1dConfig::new(cin, cout, kernel)
            .with_padding(padding)
            .init(device);
        conv.weight = GLOROT.init_with(
            [cout, cin, kernel],
            Some(cin * kernel),
            Some(cout * kernel),
            device,
        );
        conv.bias = Some(Initializer::Zeros.init([cout], device));
        if same {
            KerasConv::Same(Conv1d::new(conv))
        } else {
            KerasConv::Valid(conv)
        }
    }

    /// `(batch, cin, L) -> (batch, cout, L or L − k + 1)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            KerasConv::Same(c) => c.forward(x),
            KerasConv::Valid(c) => forward_valid(c, x),
        }
    }
}

/// `conv.forward(x)` for a `valid`, stride-1 convolution (any dilation), as one node with our
/// kernels when training on the CPU (burn's backward pass for it measured ~2.7× slower than
/// PyTorch's on ChromBPNet's tower).
pub fn forward_valid(conv: &BurnConv1d, x: Tensor<3>) -> Tensor<3> {
    if conv.stride == 1 && matches!(conv.padding, PaddingConfig1d::Valid) {
        let bias = conv.bias.as_ref().map(|b| b.val());
        if let Some(y) = crate::ops::conv1d(
            &x,
            &conv.weight.val(),
            bias.as_ref(),
            conv.groups,
            conv.dilation,
            false,
        ) {
            return y;
        }
    }
    conv.forward(x)
}

impl NamedWeights for KerasConv {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        match self {
            KerasConv::Same(c) => c.visit_weights(prefix, v),
            KerasConv::Valid(c) => c.visit_weights(prefix, v),
        }
    }
}

/// A Keras `Conv1D(padding='valid', dilation_rate=dilation)`: glorot-uniform weights, zero
/// bias; `L − dilation·(k − 1)` positions out (the BPNet towers of ChromBPNet).
pub fn valid_conv(
    cin: usize,
    cout: usize,
    kernel: usize,
    dilation: usize,
    device: &Device,
) -> BurnConv1d {
    let mut conv = Conv1dConfig::new(cin, cout, kernel)
        .with_dilation(dilation)
        .with_padding(PaddingConfig1d::Valid)
        .init(device);
    conv.weight = GLOROT.init_with(
        [cout, cin, kernel],
        Some(cin * kernel),
        Some(cout * kernel),
        device,
    );
    conv.bias = Some(Initializer::Zeros.init([cout], device));
    conv
}

/// A Keras `Dense` layer: glorot-uniform weights, zero bias.
pub fn dense(din: usize, dout: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(din, dout).init(device);
    l.weight = GLOROT.init_with([din, dout], Some(din), Some(dout), device);
    l.bias = Some(Initializer::Zeros.init([dout], device));
    l
}

/// Keras' `BatchNormalization()` defaults in PyTorch's terms: momentum 0.01, eps 1e-3.
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm1d {
    BatchNorm1d::new(channels, device).with_momentum_eps(0.01, 1e-3)
}

/// Keras' BatchNorm of a dense layer's `(batch, features)` output, per feature.
pub fn batch_norm_features(bn: &BatchNorm1d, x: Tensor<2>) -> Tensor<2> {
    let [b, f] = x.dims();
    bn.forward(x.reshape([b, f, 1])).reshape([b, f])
}

/// `MaxPooling1D(size)`, stride = size, `valid`: `⌊L / size⌋` positions (the last `L mod size`
/// dropped).
pub fn max_pool(x: Tensor<3>, size: usize) -> Tensor<3> {
    if size == 1 {
        return x;
    }
    let [b, c, l] = x.dims();
    let out = l / size;
    x.narrow(2, 0, out * size)
        .reshape([b, c, out, size])
        .max_dim(3)
        .reshape([b, c, out])
}

/// Keras' `Flatten` of a `(length, channels)` tensor, held here as `(batch, channels, length)`:
/// index `position · channels + channel`, so Keras weights load as they are.
pub fn flatten_positions(x: Tensor<3>) -> Tensor<2> {
    let [b, c, l] = x.dims();
    x.swap_dims(1, 2).reshape([b, l * c])
}

/// Positions after a `valid` convolution of width `kernel`, or why there are none.
pub fn valid_length(length: usize, kernel: usize, what: &str) -> Result<usize, String> {
    if length < kernel {
        return Err(format!(
            "{what}: a valid convolution of width {kernel} needs at least {kernel} positions, and its input has {length}"
        ));
    }
    Ok(length - kernel + 1)
}

/// Positions after pooling by `size`, or why there are none.
pub fn pooled_length(length: usize, size: usize, what: &str) -> Result<usize, String> {
    if size == 0 || length / size == 0 {
        return Err(format!(
            "{what}: pooling by {size} leaves no position of the {length} it gets"
        ));
    }
    Ok(length / size)
}

/// A convolution followed by BatchNorm, as the baselines name them: `{prefix}.conv`,
/// `{prefix}.bn`.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: KerasConv,
    /// Its BatchNorm.
    pub bn: BatchNorm1d,
}

impl ConvBn {
    /// Glorot convolution + Keras BatchNorm.
    pub fn new(cin: usize, cout: usize, kernel: usize, same: bool, device: &Device) -> Self {
        ConvBn {
            conv: KerasConv::new(cin, cout, kernel, same, device),
            bn: batch_norm(cout, device),
        }
    }
}

impl NamedWeights for ConvBn {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.conv.visit_weights(&join(prefix, "conv"), v);
        self.bn.visit_weights(&join(prefix, "bn"), v);
    }
}

/// A dense layer followed by BatchNorm (DeepSTARR's): `{prefix}.linear`, `{prefix}.bn`.
#[derive(Module, Debug)]
pub struct DenseBn {
    /// The dense layer.
    pub linear: Linear,
    /// Its BatchNorm.
    pub bn: BatchNorm1d,
}

impl NamedWeights for DenseBn {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.linear.visit_weights(&join(prefix, "linear"), v);
        self.bn.visit_weights(&join(prefix, "bn"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{assert_all_close, normal, probed};

    /// Our `valid` kernel (any dilation) and burn's convolution give the same outputs and
    /// gradients, down to an output of one position.
    #[test]
    fn valid_convolutions_match_burn_ops() {
        let device = Device::flex().autodiff();
        for (cin, cout, k, dil, batch, len) in [
            (4, 6, 21, 1, 2, 30),
            (5, 5, 3, 2, 3, 17),
            (6, 6, 3, 8, 2, 17),
            (3, 1, 7, 1, 2, 12),
            (2, 3, 4, 3, 1, 10),
        ] {
            let conv = valid_conv(cin, cout, k, dil, &device);
            let x: Tensor<3> = normal([batch, cin, len], 0.0, 1.0, 1, &device);
            let lout = len - dil * (k - 1);
            let probe: Tensor<3> = normal([batch, cout, lout], 0.0, 1.0, 2, &device);
            let run = |ours: bool| {
                let xg = x.clone().detach().require_grad();
                let y = if ours {
                    let b = conv.bias.as_ref().map(|b| b.val());
                    crate::ops::conv1d(&xg, &conv.weight.val(), b.as_ref(), 1, dil, false)
                        .expect("our kernel runs on Autodiff<Flex>")
                } else {
                    conv.forward(xg.clone())
                };
                assert_eq!(y.dims(), [batch, cout, lout]);
                let (mut all, grads) = probed(&xg, y, &probe);
                for g in [
                    conv.weight.val().grad(&grads).unwrap(),
                    conv.bias
                        .as_ref()
                        .unwrap()
                        .val()
                        .grad(&grads)
                        .unwrap()
                        .unsqueeze(),
                ] {
                    all.push(g.into_data().try_into_vec().unwrap());
                }
                all
            };
            assert_all_close(
                &run(true),
                &run(false),
                1e-4,
                &format!("k {k}, dilation {dil}"),
            );
        }
        // Too short for the reach: declined, for burn to report.
        let conv = valid_conv(2, 2, 5, 2, &device);
        let x: Tensor<3> = normal([1, 2, 8], 0.0, 1.0, 3, &device);
        assert!(crate::ops::conv1d(&x, &conv.weight.val(), None, 1, 2, false).is_none());
    }
}
