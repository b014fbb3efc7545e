//! Regression final block (SPEC §2.7): per task, `Conv1x1(C2 → 256)` → mean over length →
//! `Linear(256 → 1)`. Loss: MSE per task, summed over tasks.
//!
//! The reference release does not publish these heads' parameter names; ours are
//! `final.heads.{t}.conv.*` and `final.heads.{t}.linear.*`.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

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

    /// Whether the configuration can be built.
    pub fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_WIDTH, count};
        count("[final] tasks", self.tasks, 1024)?;
        count("[final] hidden", self.hidden, MAX_WIDTH)
    }

    /// Build the block for `cin` channels.
    pub fn init(&self, cin: usize, device: &Device) -> Regression {
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

impl Regression {
    /// `(batch, C2, L) -> (batch, tasks)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
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

    /// Sum over tasks of each task's mean squared error.
    pub fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        let [b, _] = pred.dims();
        (pred - target)
            .powi_scalar(2)
            .sum()
            .div_scalar(b as f64)
            .reshape([1])
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
