//! Autosome final block, soft classification (SPEC §2.5): `Conv1x1(C2 → 18, bias)` → mean
//! over length → 18 logits. Loss: KL divergence of `log_softmax(logits)` from the soft label,
//! summed over classes and averaged over rows. Decoding: `Σ i · softmax(logits)_i`.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::data::{N_BINS, Targets};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{Conv1d, ConvInit, conv1d};

/// Configuration of [`SoftClass`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftClassConfig {
    /// Number of expression bins.
    #[serde(default = "default_bins")]
    pub bins: usize,
}

fn default_bins() -> usize {
    N_BINS
}

impl Default for SoftClassConfig {
    fn default() -> Self {
        SoftClassConfig { bins: N_BINS }
    }
}

impl FinalLayersConfig for SoftClassConfig {
    fn tasks(&self) -> usize {
        1
    }

    fn outputs(&self) -> usize {
        self.bins
    }

    fn targets(&self) -> Targets {
        Targets::SoftBins
    }

    fn labels_wanted(&self) -> String {
        format!("one expression value (0–{}) per row", self.bins - 1)
    }

    fn check_labels(&self, labels: &[f64]) -> Result<(), String> {
        let top = (self.bins - 1) as f64;
        match labels {
            [v] if (0.0..=top).contains(v) => Ok(()),
            _ => Err(format!(
                "value {} is outside the {} sort bins (0–{top}) a soft-classification head needs",
                labels.first().copied().unwrap_or(f64::NAN),
                self.bins
            )),
        }
    }

    /// Pearson r; undefined (constant predictions) is below every defined figure.
    fn score(&self, _mse: f64, pearson: Option<f64>) -> f64 {
        pearson.unwrap_or(f64::MIN)
    }

    fn check(&self) -> Result<(), String> {
        if self.bins != N_BINS {
            return Err(format!(
                "final soft-class: bins must be {N_BINS} (the sort bins of the DREAM data), got {}",
                self.bins
            ));
        }
        Ok(())
    }
}

impl BuildBlock for SoftClassConfig {
    type Block = SoftClass;

    /// Build the block for `cin` channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> SoftClass {
        SoftClass {
            conv: conv1d(cin, self.bins, 1, 1, true, ConvInit::Autosome, device),
        }
    }
}

/// The soft-classification head.
#[derive(Module, Debug)]
pub struct SoftClass {
    pub(crate) conv: Conv1d,
}

impl FinalLayers for SoftClass {
    /// `(batch, C2, L) -> (batch, 18)` logits.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let y = self.conv.forward(x);
        let [b, c, _] = y.dims();
        y.mean_dim(2).reshape([b, c])
    }

    /// Logits to expression: `(batch, 18) -> (batch, 1)`, by the one row kernel the engine
    /// uses too (predictions carry no gradient).
    fn decode(&self, logits: Tensor<2>) -> Tensor<2> {
        let [b, c] = logits.dims();
        let device = logits.device();
        if logits.is_tracked() {
            // Differentiable (attributions): softmax(logits) · (0, 1, …, c − 1).
            let bins: Vec<f32> = (0..c).map(|i| i as f32).collect();
            let bins = Tensor::<2>::from_data(burn::tensor::TensorData::new(bins, [c, 1]), &device);
            return burn::tensor::activation::softmax(logits, 1).matmul(bins);
        }
        let rows: Vec<f32> = crate::weights::tensor_values(logits)
            .chunks(c)
            .map(crate::kernels::soft_class_expectation)
            .collect();
        Tensor::from_data(burn::tensor::TensorData::new(rows, [b, 1]), &device)
    }

    /// KL(p ‖ softmax(logits)), summed over classes, averaged over rows.
    fn loss(&self, logits: Tensor<2>, soft_labels: Tensor<2>) -> Tensor<1> {
        let [b, _] = logits.dims();
        let log_q = log_softmax(logits, 1);
        // p·log p is 0 where p is 0; clamping keeps log finite there.
        let log_p = soft_labels.clone().clamp_min(1e-30).log();
        (soft_labels * (log_p - log_q))
            .sum()
            .div_scalar(b as f64)
            .reshape([1])
    }
}

impl NamedWeights for SoftClass {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.conv.visit_weights(&format!("{prefix}.mapper.0"), v);
    }
}
