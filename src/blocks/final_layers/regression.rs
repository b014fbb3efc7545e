//! Regression final block (SPEC §2.7): per task, `Conv1x1(C2 → 256)` → mean over length →
//! `Linear(256 → 1)`. Loss: MSE per task, summed over tasks.
//!
//! The reference release does not publish these heads' parameter names; ours are
//! `final.heads.{t}.conv.*` and `final.heads.{t}.linear.*`.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BuildBlock, FinalLayers, FinalLayersConfig};
use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{Conv1d, ConvInit, conv1d, linear};

/// Configuration of [`Regression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressionConfig {
    /// Number of outputs (Drosophila: 2, human: 1).
    pub tasks: usize,
    /// Width of each task's 1×1 convolution.
    #[serde(default = "default_hidden")]
    pub hidden: usize,
}

fn default_hidden() -> usize {
    256
}

impl RegressionConfig {
    /// `tasks` outputs with the SPEC's hidden width.
    pub fn new(tasks: usize) -> Self {
        RegressionConfig {
            tasks,
            hidden: default_hidden(),
        }
    }
}

impl FinalLayersConfig for RegressionConfig {
    fn tasks(&self) -> usize {
        self.tasks
    }

    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_WIDTH, count};
        count("[final] tasks", self.tasks, 1024)?;
        count("[final] hidden", self.hidden, MAX_WIDTH)
    }

    fn labels_wanted(&self) -> String {
        format!("{} label column(s)", self.tasks)
    }

    /// Any finite value (the readers refuse the others).
    fn check_labels(&self, _labels: &[f64]) -> Result<(), String> {
        Ok(())
    }

    fn score(&self, mse: f64, pearson: Option<f64>) -> f64 {
        task_score(self.tasks, mse, pearson)
    }
}

impl BuildBlock for RegressionConfig {
    type Block = Regression;

    /// Build the block for `cin` channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> Regression {
        Regression {
            heads: (0..self.tasks)
                .map(|_| TaskHead {
                    conv: conv1d(cin, self.hidden, 1, 1, true, ConvInit::Default, device),
                    linear: linear(self.hidden, 1, true, None, device),
                })
                .collect(),
        }
    }
}

/// One task's head.
#[derive(Module, Debug)]
pub struct TaskHead {
    pub(crate) conv: Conv1d,
    pub(crate) linear: Linear,
}

/// The regression head.
#[derive(Module, Debug)]
pub struct Regression {
    pub(crate) heads: Vec<TaskHead>,
}

impl FinalLayers for Regression {
    /// `(batch, C2, L) -> (batch, tasks)`.
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let outs = self
            .heads
            .iter()
            .map(|h| {
                let y = h.conv.forward(x.clone());
                let [b, c, _] = y.dims();
                h.linear.forward(y.mean_dim(2).reshape([b, c]))
            })
            .collect();
        Tensor::cat(outs, 1)
    }

    fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        summed_task_mse(pred, target)
    }
}

/// The checks of a dense head: `tasks` outputs after layers of `hidden` widths, `dropout`.
pub fn check_dense_head(tasks: usize, hidden: &[usize], dropout: f64) -> Result<(), String> {
    use crate::blocks::limits::{MAX_WIDTH, count};
    count("[final] tasks", tasks, 1024)?;
    for &h in hidden {
        count("[final] hidden", h, MAX_WIDTH)?;
    }
    crate::blocks::limits::dropout("[final] dropout", dropout)
}

/// The sum over tasks of each task's mean squared error (`MSE(dev) + MSE(hk)`).
pub fn summed_task_mse(pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let [b, _] = pred.dims();
    (pred - target)
        .powi_scalar(2)
        .sum()
        .div_scalar(b as f64)
        .reshape([1])
}

/// The epoch score of a regression head: Pearson r for one task (human), −MSE over several
/// (Drosophila: the lowest mean validation MSE; SPEC §4, SPEC_BENCHMARKS §1.4).
pub fn task_score(tasks: usize, mse: f64, pearson: Option<f64>) -> f64 {
    match tasks {
        1 => pearson.unwrap_or(f64::MIN),
        _ if mse.is_finite() => -mse,
        _ => f64::MIN,
    }
}

impl NamedWeights for Regression {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (t, h) in self.heads.iter_mut().enumerate() {
            h.conv.visit_weights(&format!("{prefix}.heads.{t}.conv"), v);
            h.linear
                .visit_weights(&format!("{prefix}.heads.{t}.linear"), v);
        }
    }
}
