//! MPRAnn's head (SPEC_BENCHMARKS §4.1, layers 5–8): Keras' position-major `Flatten` →
//! `Dense(300, sigmoid)` → Dropout(0.3) → `Dense(200, sigmoid)` → linear `Dense(tasks)`. Loss:
//! MSE (per task, summed). Glorot-uniform. Tensors `final.dense.{0,1,2}.*`;
//! 3,150,300 + 60,200 + 201 = 3,210,701 parameters on 105 × 100 features.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::regression::{check_dense_head, summed_task_mse, task_score};
use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::nn::keras::{dense, flatten_positions};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{dropout, forward_linear};

/// Configuration of [`MprannFinal`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MprannFinalConfig {
    /// Outputs (lentiMPRA: one activity).
    pub tasks: usize,
    /// Widths of the sigmoid dense layers.
    pub hidden: Vec<usize>,
    /// Dropout after the first dense layer (MPRAnn has none after the second).
    pub dropout: f64,
}

impl Default for MprannFinalConfig {
    fn default() -> Self {
        MprannFinalConfig {
            tasks: 1,
            hidden: vec![300, 200],
            dropout: 0.3,
        }
    }
}

impl FinalLayersConfig for MprannFinalConfig {
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

impl BuildBlock for MprannFinalConfig {
    type Block = MprannFinal;

    fn build(&self, cin: usize, length: usize, device: &Device) -> MprannFinal {
        let mut d = cin * length;
        let mut layers = Vec::new();
        for &h in self.hidden.iter().chain([self.tasks].iter()) {
            layers.push(dense(d, h, device));
            d = h;
        }
        MprannFinal {
            dense: layers,
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// MPRAnn's head.
#[derive(Module, Debug)]
pub struct MprannFinal {
    pub(crate) dense: Vec<Linear>,
    dropout: Dropout,
}

impl FinalLayers for MprannFinal {
    /// `(batch, C, L) -> (batch, tasks)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let mut h = flatten_positions(x);
        let last = self.dense.len() - 1;
        for (i, layer) in self.dense.iter().enumerate() {
            h = forward_linear(layer, h);
            if i < last {
                h = sigmoid(h);
            }
            if i == 0 && last > 0 {
                h = dropout(&self.dropout, h);
            }
        }
        h
    }

    fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        summed_task_mse(pred, target)
    }
}

impl NamedWeights for MprannFinal {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, layer) in self.dense.iter_mut().enumerate() {
            layer.visit_weights(&format!("{prefix}.dense.{i}"), v);
        }
    }
}
