//! Unlock_DNA final block (SPEC_GRID §8, `prixfixe/unlockdna/final_layers_block.py`): the
//! expression is read from the first `projectors` positions (Dropout → Linear(C → 1), mean
//! over the positions), and nucleotide logits from every position (Linear(C → 5), classes
//! A, C, G, T, N) for the Unlock_DNA trainer's masked-nucleotide loss.
//!
//! Its raw output per sequence is `1 + 5·L` values: the expression, then the logits
//! class-major (`1 + class·L + position`). Predictions are the expression alone.
//!
//! Loss (SPEC_GRID §6): `MSE(expression, y) + Σ mask·CE(logits, token) / (Σ mask + 1)`, with
//! the targets as [`Targets::MaskedTokens`] lays them out per row: `y`, the original tokens
//! one-hot (`5·L`, class-major), the mask (`L`). The reference reads the expression at
//! positions 0–7, which under the Unlock_DNA data processor hold sequence (Q3): kept.
//!
//! Parameters: `6·C + 6`, whatever `L` (1,542 at C = 256). PyTorch's default initialisation.
//! Tensors: `final.expression_dense.*`, `final.nucleotide_dense.*`. No CPU engine twin:
//! prediction runs through burn.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::data::Targets;
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{forward_linear, linear};

/// Nucleotide classes of the logits: A, C, G, T, N.
pub const CLASSES: usize = 5;

/// Configuration of [`UnlockDnaFinal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockDnaFinalConfig {
    /// Positions the expression is read from (`num_projectors`).
    #[serde(default = "default_projectors")]
    pub projectors: usize,
    /// Dropout on those positions.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Probability that the trainer masks a (non-N) token.
    #[serde(default = "default_mask")]
    pub mask_probability: f64,
}

fn default_projectors() -> usize {
    8
}
fn default_dropout() -> f64 {
    0.2
}
fn default_mask() -> f64 {
    0.2
}

impl Default for UnlockDnaFinalConfig {
    fn default() -> Self {
        UnlockDnaFinalConfig {
            projectors: default_projectors(),
            dropout: default_dropout(),
            mask_probability: default_mask(),
        }
    }
}

impl FinalLayersConfig for UnlockDnaFinalConfig {
    fn tasks(&self) -> usize {
        1
    }

    /// The expression only; the logits' width depends on the input length.
    fn outputs(&self) -> usize {
        1
    }

    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{count, dropout};
        count("[final] projectors", self.projectors, 4096)?;
        dropout("[final] dropout", self.dropout)?;
        dropout("[final] mask_probability", self.mask_probability)
    }

    /// Masked tokens; the Unlock_DNA trainer sets the seed per epoch and the label's
    /// standardisation from its training file.
    fn targets(&self) -> Targets {
        Targets::MaskedTokens {
            probability: self.mask_probability,
            seed: 0,
            shift: 0.0,
            scale: 1.0,
        }
    }
}

impl BuildBlock for UnlockDnaFinalConfig {
    type Block = UnlockDnaFinal;

    fn build(&self, cin: usize, _length: usize, device: &Device) -> UnlockDnaFinal {
        UnlockDnaFinal {
            expression_dense: linear(cin, 1, true, None, device),
            nucleotide_dense: linear(cin, CLASSES, true, None, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            projectors: self.projectors,
        }
    }
}

/// The Unlock_DNA head.
#[derive(Module, Debug)]
pub struct UnlockDnaFinal {
    pub(crate) expression_dense: Linear,
    pub(crate) nucleotide_dense: Linear,
    dropout: Dropout,
    projectors: usize,
}

impl FinalLayers for UnlockDnaFinal {
    /// `(batch, C, L) -> (batch, 1 + 5·L)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, c, l] = x.dims();
        let p = self.projectors.min(l);
        let at = x.swap_dims(1, 2); // (B, L, C)
        let heads = crate::nn::dropout(&self.dropout, at.clone().slice([0..b, 0..p, 0..c]));
        let expression = forward_linear(&self.expression_dense, heads) // (B, P, 1)
            .mean_dim(1)
            .reshape([b, 1]);
        let logits = forward_linear(&self.nucleotide_dense, at) // (B, L, 5)
            .swap_dims(1, 2)
            .reshape([b, CLASSES * l]);
        Tensor::cat(vec![expression, logits], 1)
    }

    fn decode(&self, out: Tensor<2>) -> Tensor<2> {
        let [b, _] = out.dims();
        out.slice([0..b, 0..1])
    }

    fn loss(&self, out: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let [b, width] = out.dims();
        let l = (width - 1) / CLASSES;
        let expression = out.clone().slice([0..b, 0..1]);
        let y = target.clone().slice([0..b, 0..1]);
        let mse = (expression - y).powi_scalar(2).mean();
        let logits = out.slice([0..b, 1..width]).reshape([b, CLASSES, l]);
        let tokens = target
            .clone()
            .slice([0..b, 1..1 + CLASSES * l])
            .reshape([b, CLASSES, l]);
        let mask = target.slice([0..b, 1 + CLASSES * l..1 + (CLASSES + 1) * l]);
        // Cross-entropy per position: −Σ_class onehot · log_softmax.
        let ce = (log_softmax(logits, 1) * tokens)
            .sum_dim(1)
            .reshape([b, l])
            .neg();
        let masked = (ce * mask.clone()).sum() / (mask.sum() + 1.0);
        (mse + masked).reshape([1])
    }
}

impl NamedWeights for UnlockDnaFinal {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.expression_dense
            .visit_weights(&format!("{prefix}.expression_dense"), v);
        self.nucleotide_dense
            .visit_weights(&format!("{prefix}.nucleotide_dense"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC_GRID §8: `6·C + 6` whatever `L`, under the reference's names.
    #[test]
    fn parameter_counts_and_names_are_the_references() {
        let device = Device::flex();
        for (c, want) in [(64, 390), (256, 1_542), (320, 1_926), (512, 3_078)] {
            for l in [110, 200] {
                let mut head = UnlockDnaFinalConfig::default().build(c, l, &device);
                assert_eq!(crate::weights::count_params(&mut head), want, "C = {c}");
            }
        }
        let mut head = UnlockDnaFinalConfig::default().build(4, 10, &device);
        let map = crate::weights::WeightMap::from_model(&mut head, "final");
        let names: Vec<&str> = map.tensors.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "final.expression_dense.bias",
                "final.expression_dense.weight",
                "final.nucleotide_dense.bias",
                "final.nucleotide_dense.weight"
            ]
        );
        let out = head.forward(Tensor::<3>::zeros([3, 4, 10], &device));
        assert_eq!(out.dims(), [3, 51]);
        assert_eq!(head.decode(out).dims(), [3, 1]);
    }
}
