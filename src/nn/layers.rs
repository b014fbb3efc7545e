//! Constructors for burn's layers with the initialisations the blocks need.

use burn::nn::conv::Conv1dConfig;

use super::conv::Conv1d;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::{Device, Tensor};

/// How a convolution is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConvInit {
    /// PyTorch's default: Kaiming-uniform weights and bias in ±1/sqrt(fan_in) (burn's default
    /// matches it).
    Default,
    /// The Autosome blocks': weights ~ Normal(0, sqrt(2 / (k · C_out))), bias 0 (SPEC §3).
    Autosome,
}

/// A 1-D convolution with `same` padding.
pub fn conv1d(
    cin: usize,
    cout: usize,
    kernel: usize,
    groups: usize,
    bias: bool,
    init: ConvInit,
    device: &Device,
) -> Conv1d {
    let config = Conv1dConfig::new(cin, cout, kernel)
        .with_groups(groups)
        .with_bias(bias)
        .with_padding(PaddingConfig1d::Same);
    Conv1d::new(match init {
        ConvInit::Default => config.init(device),
        ConvInit::Autosome => {
            let std = (2.0 / (kernel * cout) as f64).sqrt();
            let mut conv = config
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            if let Some(b) = &mut conv.bias {
                *b = Initializer::Zeros.init([cout], device);
            }
            conv
        }
    })
}

/// A linear layer: PyTorch's default initialisation, or Normal(0, `std`) with zero bias.
pub fn linear(
    din: usize,
    dout: usize,
    bias: bool,
    normal_std: Option<f64>,
    device: &Device,
) -> Linear {
    let config = LinearConfig::new(din, dout).with_bias(bias);
    match normal_std {
        None => config.init(device),
        Some(std) => {
            let mut l = config
                .with_initializer(Initializer::Normal { mean: 0.0, std })
                .init(device);
            if let Some(b) = &mut l.bias {
                *b = Initializer::Zeros.init([dout], device);
            }
            l
        }
    }
}

/// `lin.forward(x)`, as one graph node with our CPU kernels where they apply (burn's operations
/// elsewhere).
pub fn forward_linear<const D: usize>(lin: &Linear, x: Tensor<D>) -> Tensor<D> {
    let bias = lin.bias.as_ref().map(|b| b.val());
    crate::ops::linear(
        &x,
        &lin.weight.val(),
        crate::ops::WeightLayout::InOut,
        bias.as_ref(),
    )
    .unwrap_or_else(|| lin.forward(x))
}

/// A layer norm over the last dimension.
pub fn layer_norm(d: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(eps).init(device)
}
