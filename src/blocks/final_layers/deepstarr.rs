//! DeepSTARR's head (SPEC_BENCHMARKS §3.1, layers 5–8): Keras' position-major `Flatten` →
//! two `Dense(256)` → BatchNorm → ReLU → Dropout(0.4) → one linear `Dense(1)` per task
//! (`Dense_Dev`, `Dense_Hk`). Loss: MSE per task, summed. Glorot-uniform, Keras BatchNorm.
//! Tensors `final.dense.{i}.linear.*`, `final.dense.{i}.bn.*`, `final.heads.{t}.*`;
//! 461,056 + 65,792 + 2·2·256 + 514 = 528,386 parameters on 15 × 120 features.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::regression::{check_dense_head, summed_task_mse, task_score};
use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::nn::keras::{DenseBn, batch_norm, batch_norm_features, dense, flatten_positions};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{dropout, forward_linear};

/// Configuration of [`DeepStarrFinal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeepStarrFinalConfig {
    /// Outputs (Drosophila: dev, hk).
    pub tasks: usize,
    /// Widths of the dense layers.
    pub hidden: Vec<usize>,
    /// Dropout after each dense layer.
    pub dropout: f64,
}

impl Default for DeepStarrFinalConfig {
    fn default() -> Self {
        DeepStarrFinalConfig {
            tasks: 2,
            hidden: vec![256, 256],
            dropout: 0.4,
        }
    }
}

impl FinalLayersConfig for DeepStarrFinalConfig {
    fn tasks(&self) -> usize {
        self.tasks
    }

    fn check(&self) -> Result<(), String> {
        check_dense_head(self.tasks, &self.hidden, self.dropout)
    }

    fn score(&self, mse: f64, pearson: Option<f64>) -> f64 {
        task_score(self.tasks, mse, pearson)
    }
}

impl BuildBlock for DeepStarrFinalConfig {
    type Block = DeepStarrFinal;

    fn build(&self, cin: usize, length: usize, device: &Device) -> DeepStarrFinal {
        let mut d = cin * length;
        let dense_layers = self
            .hidden
            .iter()
            .map(|&h| {
                let layer = DenseBn {
                    linear: dense(d, h, device),
                    bn: batch_norm(h, device),
                };
                d = h;
                layer
            })
            .collect();
        DeepStarrFinal {
            dense: dense_layers,
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: (0..self.tasks).map(|_| dense(d, 1, device)).collect(),
        }
    }
}

/// DeepSTARR's head.
#[derive(Module, Debug)]
pub struct DeepStarrFinal {
    pub(crate) dense: Vec<DenseBn>,
    dropout: Dropout,
    pub(crate) heads: Vec<Linear>,
}

impl FinalLayers for DeepStarrFinal {
    /// `(batch, C, L) -> (batch, tasks)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let mut h = flatten_positions(x);
        for layer in &self.dense {
            let z = batch_norm_features(&layer.bn, forward_linear(&layer.linear, h));
            h = dropout(&self.dropout, relu(z));
        }
        Tensor::cat(
            self.heads
                .iter()
                .map(|head| forward_linear(head, h.clone()))
                .collect(),
            1,
        )
    }

    fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        summed_task_mse(pred, target)
    }
}

impl NamedWeights for DeepStarrFinal {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.dense.iter_mut().enumerate() {
            layer.visit_weights(&format!("{prefix}.dense.{i}"), v);
        }
        for (t, head) in self.heads.iter_mut().enumerate() {
            head.visit_weights(&format!("{prefix}.heads.{t}"), v);
        }
    }
}
