//! Autosome core (EfficientNet-like; DREAM-CNN's core). Each stage from `p` to `s` channels:
//! an inverted-residual branch (1×1 expand to `4s` → grouped conv k=7 → squeeze-excitation →
//! 1×1 project back to `p`), **concatenated** with its input (`2p` channels, not added), then
//! a k=7 convolution resizing to `s`. Convolutions have no bias; BatchNorm after each.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, CoreLayers, CoreLayersConfig};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{BatchNorm1d, Conv1d, ConvInit, conv1d, linear};

/// Linear layers of the Autosome blocks start at Normal(0, 0.001) (SPEC §3).
const LINEAR_STD: f64 = 0.001;

/// Configuration of [`AutosomeCore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutosomeCoreConfig {
    /// Output width of each stage.
    #[serde(default = "default_widths")]
    pub widths: Vec<usize>,
    /// Kernel of the grouped and the resize convolutions.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// Expansion of the inverted-residual branch (`4s` channels).
    #[serde(default = "default_expand")]
    pub expand: usize,
}

fn default_widths() -> Vec<usize> {
    vec![128, 128, 64, 64, 64, 64]
}
fn default_kernel() -> usize {
    7
}
fn default_expand() -> usize {
    4
}

impl Default for AutosomeCoreConfig {
    fn default() -> Self {
        AutosomeCoreConfig {
            widths: default_widths(),
            kernel: default_kernel(),
            expand: default_expand(),
        }
    }
}

impl CoreLayersConfig for AutosomeCoreConfig {
    /// Output channels.
    fn out_channels(&self, cin: usize) -> usize {
        self.widths.last().copied().unwrap_or(cin)
    }

    /// Whether the configuration fits `cin` input channels.
    fn check(&self, cin: usize) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count};
        if self.widths.is_empty() {
            return Err("core autosome: `widths` needs at least one stage".into());
        }
        if self.widths.len() > 256 {
            return Err(format!(
                "[core] widths has {} stages; at most 256",
                self.widths.len()
            ));
        }
        for &w in &self.widths {
            count("[core] widths", w, MAX_WIDTH)?;
        }
        count("[core] kernel", self.kernel, MAX_KERNEL)?;
        count("[core] expand", self.expand, 64)?;
        let mut p = cin;
        for (i, &s) in self.widths.iter().enumerate() {
            let e = self.expand * s;
            if !e.is_multiple_of(2) || p < 4 {
                return Err(format!(
                    "core autosome stage {i}: {p} → {s} channels does not fit (the grouped \
                     convolution needs an even expansion and squeeze-excitation at least 4 input channels)"
                ));
            }
            p = s;
        }
        Ok(())
    }
}

impl BuildBlock for AutosomeCoreConfig {
    type Block = AutosomeCore;

    /// Build the block for `cin` input channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> AutosomeCore {
        let mut p = cin;
        let mut stages = Vec::new();
        for &s in &self.widths {
            let e = self.expand * s;
            let k = self.kernel;
            let conv = |i, o, k, g| conv1d(i, o, k, g, false, ConvInit::Autosome, device);
            stages.push(Stage {
                expand: conv(p, e, 1, 1),
                expand_bn: BatchNorm1d::new(e, device),
                grouped: conv(e, e, k, e / 2),
                grouped_bn: BatchNorm1d::new(e, device),
                se_down: linear(e, p / 4, true, Some(LINEAR_STD), device),
                se_up: linear(p / 4, e, true, Some(LINEAR_STD), device),
                project: conv(e, p, 1, 1),
                project_bn: BatchNorm1d::new(p, device),
                resize: conv(2 * p, s, k, 1),
                resize_bn: BatchNorm1d::new(s, device),
            });
            p = s;
        }
        AutosomeCore { stages }
    }
}

/// One stage of the Autosome core.
#[derive(Module, Debug)]
pub struct Stage {
    pub(crate) expand: Conv1d,
    pub(crate) expand_bn: BatchNorm1d,
    pub(crate) grouped: Conv1d,
    pub(crate) grouped_bn: BatchNorm1d,
    pub(crate) se_down: Linear,
    pub(crate) se_up: Linear,
    pub(crate) project: Conv1d,
    pub(crate) project_bn: BatchNorm1d,
    pub(crate) resize: Conv1d,
    pub(crate) resize_bn: BatchNorm1d,
}

impl Stage {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.expand_bn.forward_silu(self.expand.forward(x.clone()));
        let h = self.grouped_bn.forward_silu(self.grouped.forward(h));
        // Squeeze-excitation: channel weights from the mean over positions.
        let [b, c, _] = h.dims();
        let w = h.clone().mean_dim(2).reshape([b, c]);
        let w = sigmoid(self.se_up.forward(silu(self.se_down.forward(w))));
        let h = crate::ops::channel_scale(&h, &w).unwrap_or_else(|| h * w.reshape([b, c, 1]));
        let h = self.project_bn.forward_silu(self.project.forward(h));
        let cat = Tensor::cat(vec![x, h], 1);
        self.resize_bn.forward_silu(self.resize.forward(cat))
    }
}

/// The Autosome core.
#[derive(Module, Debug)]
pub struct AutosomeCore {
    pub(crate) stages: Vec<Stage>,
}

impl AutosomeCore {
    /// `(batch, C1, L) -> (batch, widths.last(), L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.stages.iter().fold(x, |x, s| s.forward(x))
    }
}

impl NamedWeights for AutosomeCore {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        for (i, s) in self.stages.iter_mut().enumerate() {
            let inv = format!("{prefix}.seqextractor.inv_res_blc{i}");
            s.expand.visit_weights(&format!("{inv}.0"), v);
            s.expand_bn.visit_weights(&format!("{inv}.1"), v);
            s.grouped.visit_weights(&format!("{inv}.3"), v);
            s.grouped_bn.visit_weights(&format!("{inv}.4"), v);
            s.se_down.visit_weights(&format!("{inv}.6.fc.0"), v);
            s.se_up.visit_weights(&format!("{inv}.6.fc.2"), v);
            s.project.visit_weights(&format!("{inv}.7"), v);
            s.project_bn.visit_weights(&format!("{inv}.8"), v);
            let res = format!("{prefix}.seqextractor.resize_blc{i}");
            s.resize.visit_weights(&format!("{res}.0"), v);
            s.resize_bn.visit_weights(&format!("{res}.1"), v);
        }
    }
}

impl CoreLayers for AutosomeCore {
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        AutosomeCore::forward(self, x).into()
    }
}
