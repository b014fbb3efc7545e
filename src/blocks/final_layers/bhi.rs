//! BHI final block (SPEC_GRID §4, `prixfixe/bhi/final_layers_block.py`): flatten `(B, C, L)`
//! channel-major (index `c·L + l`) → Linear(C·L → 64) → ReLU → Linear(64 → 64) → ReLU →
//! Linear(64 → 1). No dropout. Loss: Huber (δ = 1, mean) against the measured value. Returns
//! the prediction (the reference's `train_step` returns `y`: SPEC_GRID Q11).
//!
//! Parameters: `64·C·L + 4,289` (618,689 at C = 64, L = 150). PyTorch's default
//! initialisation. Tensors: `final.main.{0,2,4}.{weight,bias}`. Its CPU engine twin is
//! `src/engine/final_layers/bhi.rs`.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{forward_linear, linear};

/// Configuration of [`BhiFinal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BhiFinalConfig {
    /// Width of the two hidden layers.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
}

fn default_hidden() -> usize {
    64
}

impl Default for BhiFinalConfig {
    fn default() -> Self {
        BhiFinalConfig {
            hidden: default_hidden(),
        }
    }
}

/// Huber's δ.
const DELTA: f64 = 1.0;

impl FinalLayersConfig for BhiFinalConfig {
    fn tasks(&self) -> usize {
        1
    }

    fn check(&self) -> Result<(), String> {
        crate::blocks::limits::count(
            "[final] hidden",
            self.hidden,
            crate::blocks::limits::MAX_WIDTH,
        )
    }
}

impl BuildBlock for BhiFinalConfig {
    type Block = BhiFinal;

    /// Build the block for `cin` channels of `length` positions (the first layer sees all).
    fn build(&self, cin: usize, length: usize, device: &Device) -> BhiFinal {
        let h = self.hidden;
        BhiFinal {
            layers: vec![
                linear(cin * length, h, true, None, device),
                linear(h, h, true, None, device),
                linear(h, 1, true, None, device),
            ],
        }
    }
}

/// The BHI head: a three-layer perceptron on the flattened features.
#[derive(Module, Debug)]
pub struct BhiFinal {
    pub(crate) layers: Vec<Linear>,
}

impl FinalLayers for BhiFinal {
    /// `(batch, C, L) -> (batch, 1)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, c, l] = x.dims();
        let mut h = x.reshape([b, c * l]);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = forward_linear(layer, h);
            if i < last {
                h = relu(h);
            }
        }
        h
    }

    /// Huber loss (δ = 1), the mean over rows: `½d²` where `|d| ≤ δ`, else `δ(|d| − ½δ)`.
    fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let d = (pred - target).abs();
        let quadratic = d.clone().clamp_max(DELTA);
        let linear = d - quadratic.clone();
        (quadratic.powi_scalar(2).mul_scalar(0.5) + linear.mul_scalar(DELTA))
            .mean()
            .reshape([1])
    }
}

impl NamedWeights for BhiFinal {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_weights(&format!("{prefix}.main.{}", 2 * i), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::FinalConfig;
    use crate::net::{DataKind, NetConfig};

    /// SPEC_GRID §4's counts: `64·C·L + 4,289`, and DREAM-RNN's body with this head.
    #[test]
    fn parameter_counts_are_the_references() {
        let device = Device::flex();
        for (c, want) in [(64, 618_689), (256, 2_461_889), (320, 3_076_289)] {
            let mut head = BhiFinalConfig::default().build(c, 150, &device);
            assert_eq!(crate::weights::count_params(&mut head), want, "C = {c}");
        }
        // first BHI, core BHI, final BHI at L = 150: SPEC_GRID §9.4 (7,201,089)
        let mut config = NetConfig::preset("dream-rnn", DataKind::Yeast).unwrap();
        config.final_block = FinalConfig::Bhi(BhiFinalConfig::default());
        let mut net = config.init(&device).unwrap();
        assert_eq!(net.param_counts().total(), 7_201_089);
    }

    /// `½d²` inside δ, `|d| − ½` outside, averaged over rows; names as the reference's.
    #[test]
    fn huber_loss_and_names() {
        let device = Device::flex();
        let mut head = BhiFinalConfig::default().build(2, 3, &device);
        let pred = Tensor::<2>::from_floats([[0.5], [3.0], [-1.0]], &device);
        let target = Tensor::<2>::from_floats([[0.0], [0.0], [1.0]], &device);
        let loss: f32 = head.loss(pred, target).into_scalar();
        let want = (0.125 + 2.5 + 1.5) / 3.0;
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        let map = crate::weights::WeightMap::from_model(&mut head, "final");
        let names: Vec<&str> = map.tensors.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "final.main.0.bias",
                "final.main.0.weight",
                "final.main.2.bias",
                "final.main.2.weight",
                "final.main.4.bias",
                "final.main.4.weight"
            ]
        );
        assert_eq!(map.tensors["final.main.0.weight"].shape, [64, 6]);
        let y = head.forward(Tensor::<3>::zeros([5, 2, 3], &device));
        assert_eq!(y.dims(), [5, 1]);
    }
}
