//! Twin of [`crate::blocks::first_layers::autosome`]: convolution → BatchNorm (folded) → SiLU.

use crate::blocks::first_layers::autosome::AutosomeFirst;
use crate::engine::{FirstTwin, rows};
use crate::kernels::{self, Conv};

/// One convolution, BatchNorm folded in, then SiLU.
pub(crate) struct ConvBnSilu(Conv);

impl ConvBnSilu {
    pub(crate) fn new(b: &AutosomeFirst) -> Self {
        Self(rows::conv_bn(&b.conv, &b.bn))
    }
}

impl FirstTwin for ConvBnSilu {
    fn out_channels(&self) -> usize {
        self.0.cout
    }

    fn pad(&self) -> usize {
        self.0.k / 2
    }

    fn apply(&self, x: &[f32], width: usize, out: &mut Vec<f32>) {
        out.resize(self.0.cout * width, 0.0);
        self.0.apply(x, width, out);
        kernels::silu(out);
    }
}
