//! Autosome first block (`in → 256`): Conv(k=7, no bias) → BatchNorm → SiLU.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{BlockOutput, BuildBlock, FirstLayers, FirstLayersConfig};

use crate::nn::visit::{NamedWeights, WeightVisitor};
use crate::nn::{BatchNorm1d, Conv1d, ConvInit, conv1d};

/// Configuration of [`AutosomeFirst`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutosomeFirstConfig {
    /// Output channels.
    #[serde(default = "default_out")]
    pub out_channels: usize,
    /// Kernel size.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
}

fn default_out() -> usize {
    256
}
fn default_kernel() -> usize {
    7
}

impl Default for AutosomeFirstConfig {
    fn default() -> Self {
        AutosomeFirstConfig {
            out_channels: default_out(),
            kernel: default_kernel(),
        }
    }
}

impl FirstLayersConfig for AutosomeFirstConfig {
    fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Whether the configuration can be built.
    fn check(&self) -> Result<(), String> {
        use crate::blocks::limits::{MAX_KERNEL, MAX_WIDTH, count};
        count("[first] out_channels", self.out_channels, MAX_WIDTH)?;
        count("[first] kernel", self.kernel, MAX_KERNEL)
    }
}

impl BuildBlock for AutosomeFirstConfig {
    type Block = AutosomeFirst;

    /// Build the block for `cin` input channels.
    fn build(&self, cin: usize, _length: usize, device: &Device) -> AutosomeFirst {
        AutosomeFirst {
            conv: conv1d(
                cin,
                self.out_channels,
                self.kernel,
                1,
                false,
                ConvInit::Autosome,
                device,
            ),
            bn: BatchNorm1d::new(self.out_channels, device),
        }
    }
}

/// The Autosome first block.
#[derive(Module, Debug)]
pub struct AutosomeFirst {
    pub(crate) conv: Conv1d,
    pub(crate) bn: BatchNorm1d,
}

impl AutosomeFirst {
    /// `(batch, in, L) -> (batch, out, L)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.bn.forward_silu(self.conv.forward(x))
    }
}

impl NamedWeights for AutosomeFirst {
    fn visit_weights<V: WeightVisitor>(&mut self, prefix: &str, v: &mut V) {
        self.conv.visit_weights(&format!("{prefix}.block.0"), v);
        self.bn.visit_weights(&format!("{prefix}.block.1"), v);
    }
}

impl FirstLayers for AutosomeFirst {
    fn forward(&self, x: Tensor<3>) -> BlockOutput {
        AutosomeFirst::forward(self, x).into()
    }
}
